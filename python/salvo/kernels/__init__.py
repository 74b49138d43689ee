"""salvo's hot loops: thin wrappers over the C++ kernels (``salvo._native``) and Numba kernels.

Each kernel has one production implementation; the tests check it against a slow NumPy
reference.
"""

from __future__ import annotations

import numpy as np

from salvo import _native

__all__ = ["fill_masked"]


def fill_masked(
    image: np.ndarray,
    masks: np.ndarray,
    out: np.ndarray,
    layout: str = "NCHW",
    num_threads: int = 1,
) -> None:
    """Write ``masks[i] * image`` into ``out[i]`` for every mask (C++, GIL released).

    Parameters
    ----------
    image
        ``(C, H, W)`` for ``layout="NCHW"`` or ``(H, W, C)`` for ``"NHWC"``; converted to
        float32 if needed.
    masks
        ``(N, H, W)`` float32.
    out
        ``(>= N, C, H, W)`` or ``(>= N, H, W, C)``, float32 or uint8, C-contiguous and writable
        (for instance an infer request's input tensor). uint8 values are rounded to nearest
        (ties to even) and clamped to [0, 255].
    layout
        ``"NCHW"`` or ``"NHWC"``.
    num_threads
        Threads the kernel uses (the calling thread included).
    """
    _native.fill_masked(image, masks, out, layout, num_threads)


def rise_masks(
    seed: int,
    first: int,
    count: int,
    num_cells: int,
    prob: float,
    height: int,
    width: int,
    out: np.ndarray | None = None,
    num_threads: int = 1,
    design: str = "iid",
) -> np.ndarray:
    """RISE masks ``first .. first+count-1`` as ``(count, height, width)`` float32 (C++).

    Mask ``i`` is a pure function of ``(seed, i)``: a ``num_cells`` x ``num_cells`` binary
    grid, bicubic-upsampled (OpenCV's INTER_CUBIC) to ``(num_cells + 1) * ceil(size / num_cells)``
    per axis, cropped at a shift smaller than one cell, clipped to [0, 1]. The grid and the shift
    come from ``design``:

    ``"iid"``
        Every cell an independent Bernoulli(``prob``) draw, every mask its own random shift
        (the reference toolkit's masks).
    ``"balanced"``
        ``prob`` must be 0.5. Blocks of :func:`balanced_block_length` masks in which every cell
        is on in exactly half the masks and every pair of cells in exactly a quarter (a
        resolution-IV foldover of a Sylvester-Hadamard design with random columns and
        complements per block), one shift per block from a randomly rotated R2 sequence. Each
        mask on its own has the distribution of an ``"iid"`` mask; see ``docs/rise_designs.md``.

    ``out`` (if given) must be a C-contiguous float32 array of shape ``(>= count, height,
    width)``.

    Raises
    ------
    ValueError
        An argument out of range, an unknown ``design``, or ``"balanced"`` with ``prob != 0.5``
        (the message names the value).
    """
    return _native.rise_masks(
        int(seed) & 0xFFFFFFFFFFFFFFFF, first, count, num_cells, prob, height, width, out,
        num_threads, design,
    )


def balanced_block_length(num_cells: int) -> int:
    """Masks per block of the ``"balanced"`` design: ``2 * (least power of two >= num_cells**2)``
    (128 for 8 x 8 cells, 512 for 16 x 16)."""
    return int(_native.balanced_block_length(num_cells))


__all__ += ["balanced_block_length", "rise_masks"]


def accumulate_weighted(
    weighted: np.ndarray,
    scores: np.ndarray,
    masks: np.ndarray,
    num_threads: int = 1,
    mask_sum: np.ndarray | None = None,
) -> None:
    """``weighted (T, P) += scores (K, T)^T @ masks (K, P)`` in place (C++, GIL released).

    ``weighted`` must be a writable C-contiguous float32 array; ``scores`` and ``masks`` are
    converted to C-contiguous float32 if needed. With ``mask_sum`` (a writable C-contiguous
    float64 ``(P,)`` array), the masks' column sums are added to it in the same pass, in
    float64, mask after mask.
    """
    _native.accumulate_weighted(weighted, scores, masks, num_threads, mask_sum)


__all__ += ["accumulate_weighted"]


_BLAS_LOCAL_THREADS = None  # resolved on first use: a ctypes function, or False


def _openblas_local_threads():
    """``openblas_set_num_threads_local`` of the OpenBLAS that ``scipy.linalg.blas`` uses, if any.

    OpenBLAS >= 0.3.27 exports it: it sets the number of threads for BLAS calls made from the
    calling thread only and returns the previous setting.
    """
    global _BLAS_LOCAL_THREADS
    if _BLAS_LOCAL_THREADS is None:
        _BLAS_LOCAL_THREADS = False
        try:
            import ctypes
            import os

            import scipy.linalg.blas  # noqa: F401  (loads scipy's BLAS)

            with open("/proc/self/maps") as fh:
                paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
            for path in sorted(paths):
                name = os.path.basename(path)
                if "openblas" in name and "64_" not in name and os.path.exists(path):
                    fn = getattr(ctypes.CDLL(path), "openblas_set_num_threads_local", None)
                    if fn is not None:
                        fn.argtypes = [ctypes.c_int]
                        fn.restype = ctypes.c_int
                        _BLAS_LOCAL_THREADS = fn
                        break
        except Exception:  # not Linux, another BLAS: leave BLAS as it is
            _BLAS_LOCAL_THREADS = False
    return _BLAS_LOCAL_THREADS or None


def sgemm_accumulate_single_thread(weighted: np.ndarray, scores: np.ndarray,
                                   masks: np.ndarray) -> None:
    """``weighted (T, P) += scores (K, T)^T @ masks (K, P)`` in place with scipy's BLAS sgemm,
    on the calling thread only where the BLAS allows it (the inference engine owns the cores)."""
    from scipy.linalg.blas import sgemm

    set_local = _openblas_local_threads()
    previous = set_local(1) if set_local is not None else None
    try:
        # column-major view of the row-major sums: weighted^T (P, T) += masks^T (P, K) @ scores
        sgemm(1.0, masks.T, scores.T, beta=1.0, c=weighted.T, trans_b=True, overwrite_c=True)
    finally:
        if set_local is not None and previous is not None and previous > 0:
            set_local(previous)


__all__ += ["sgemm_accumulate_single_thread"]
