"""Numba kernels that finish black-box maps: estimator combination and per-map scaling.

For all 1000 ImageNet classes at 224x224 the maps are 200 MB of float32; NumPy's
``(x - min) / (max - min)`` then ``round(* 255)`` makes four temporaries of that size (about
1 s here). These kernels do it in two passes over each row, rows in parallel, into the output.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=False)
def _finish_rows(weighted, mean, mask_sum, centered, mode, out_u8, out_f32):
    # mode 0: raw float32, 1: min-max to uint8 [0, 255], 2: min-max to float32 [0, 1]
    t, p = weighted.shape
    for i in prange(t):
        shift = mean[i] if centered else np.float32(0.0)
        lo = np.inf
        hi = -np.inf
        for x in range(p):
            v = weighted[i, x] - shift * mask_sum[x]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        if mode == 1:
            scale = 255.0 / (hi - lo + 1e-12)
            for x in range(p):
                v = weighted[i, x] - shift * mask_sum[x]
                out_u8[i, x] = np.uint8(np.rint((v - lo) * scale))
        elif mode == 2:
            scale = 1.0 / (hi - lo + 1e-12)
            for x in range(p):
                out_f32[i, x] = (weighted[i, x] - shift * mask_sum[x] - lo) * scale
        else:
            for x in range(p):
                out_f32[i, x] = weighted[i, x] - shift * mask_sum[x]


def finish_maps(
    weighted: np.ndarray,
    score_mean: np.ndarray | None,
    mask_sum: np.ndarray,
    *,
    scale: str | None,
) -> np.ndarray:
    """Combine the streamed sums into maps and optionally min-max them to uint8.

    Parameters
    ----------
    weighted
        ``(T, P)`` float32: ``sum_i s_i[t] m_i``.
    score_mean
        ``(T,)``: mean score per target for the centred estimator (``weighted - mean * mask_sum``);
        ``None`` for plain RISE.
    mask_sum
        ``(P,)``: ``sum_i m_i``.
    scale
        ``"uint8"``: per map ``rint(255 * (v - min) / (max - min + 1e-12))`` as uint8 (a constant
        map gives zeros); ``"unit"``: per map ``(v - min) / (max - min + 1e-12)`` as float32;
        ``None``: the float32 maps.

    Returns
    -------
    numpy.ndarray
        ``(T, P)`` uint8 or float32.
    """
    t, p = weighted.shape
    centered = score_mean is not None
    mean = (np.asarray(score_mean, np.float32) if centered else np.zeros(t, np.float32))
    msum = np.ascontiguousarray(mask_sum, dtype=np.float32)
    w = np.ascontiguousarray(weighted, dtype=np.float32)
    if scale not in (None, "uint8", "unit"):
        raise ValueError(f"scale must be None, 'uint8' or 'unit', got {scale!r}")
    if scale == "uint8":
        out_u8 = np.empty((t, p), np.uint8)
        _finish_rows(w, mean, msum, centered, 1, out_u8, np.empty((1, 1), np.float32))
        return out_u8
    out_f32 = np.empty((t, p), np.float32)
    _finish_rows(w, mean, msum, centered, 0 if scale is None else 2,
                 np.empty((1, 1), np.uint8), out_f32)
    return out_f32
