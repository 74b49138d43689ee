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
) -> np.ndarray:
    """RISE masks ``first .. first+count-1`` as ``(count, height, width)`` float32 (C++).

    Mask ``i`` is a pure function of ``(seed, i)``: a ``num_cells`` x ``num_cells`` Bernoulli(prob)
    grid, bicubic-upsampled (OpenCV's INTER_CUBIC) to ``(num_cells + 1) * ceil(size / num_cells)``
    per axis, cropped at a random shift smaller than one cell, clipped to [0, 1]. ``out`` (if
    given) must be a C-contiguous float32 array of shape ``(>= count, height, width)``.
    """
    return _native.rise_masks(
        int(seed) & 0xFFFFFFFFFFFFFFFF, first, count, num_cells, prob, height, width, out,
        num_threads,
    )


__all__ += ["rise_masks"]


def accumulate_weighted(
    weighted: np.ndarray, scores: np.ndarray, masks: np.ndarray, num_threads: int = 1
) -> None:
    """``weighted (T, P) += scores (K, T)^T @ masks (K, P)`` in place (C++, GIL released).

    ``weighted`` must be a writable C-contiguous float32 array; ``scores`` and ``masks`` are
    converted to C-contiguous float32 if needed.
    """
    _native.accumulate_weighted(weighted, scores, masks, num_threads)


__all__ += ["accumulate_weighted"]
