import numpy as np
import numpy.typing as npt

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
def _parallel_selftest(n: int, fail_at: int, num_threads: int) -> int: ...
