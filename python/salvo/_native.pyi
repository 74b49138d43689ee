"""Type stubs of the compiled module ``salvo._native`` (``cpp/bindings.cpp``).

Every binding is listed here (``tests/kernels/test_native_stub.py`` checks it). The names with
a leading underscore are test hooks: salvo's own code never calls them, and tests reach them
through :mod:`salvo.testing.hooks`.
"""

import numpy as np
import numpy.typing as npt

#: Whether the kernels were built with GCC's ``target_clones`` (AVX2 / AVX-512 variants).
HAS_TARGET_CLONES: bool

def fill_masked(
    image: npt.NDArray[np.float32],
    masks: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32] | npt.NDArray[np.uint8],
    layout: str = "NCHW",
    num_threads: int = 1,
) -> None: ...
def build_simd_level() -> str: ...
def runtime_simd_level() -> str: ...
def rise_masks(
    seed: int,
    first: int,
    count: int,
    num_cells: int,
    prob: float,
    height: int,
    width: int,
    out: npt.NDArray[np.float32] | None = None,
    num_threads: int = 1,
    design: str = "iid",
) -> npt.NDArray[np.float32]: ...
def rise_hash(seed: int, mask_index: int, draw: int) -> int: ...
def balanced_block_length(num_cells: int) -> int: ...
def accumulate_weighted(
    weighted: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    masks: npt.NDArray[np.float32],
    num_threads: int = 1,
    mask_sum: npt.NDArray[np.float64] | None = None,
) -> None: ...

# test hooks (salvo.testing.hooks)
def _rise_grid(
    seed: int, mask_index: int, num_cells: int, prob: float, height: int, width: int,
    design: str = "iid",
) -> tuple[npt.NDArray[np.uint8], int, int]: ...
def _parallel_selftest(n: int, fail_at: int, num_threads: int) -> int: ...
