"""Numba kernels that finish black-box maps: estimator combination and per-map scaling.

For all 1000 ImageNet classes at 224x224 the maps are 200 MB of float32; NumPy's
``(x - min) / (max - min)`` then ``round(* 255)`` makes four temporaries of that size (about
1 s here). These kernels do it in two passes over each row, rows in parallel, into the output.
Each value is combined in float64 (``weighted - shift * mask_sum``), so the subtraction that
makes the centred estimator loses nothing beyond the float32 sums' own rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _zero_row(i, mode, out_u8, out_f32):
    # a row that carries no information: zeros in the output of its mode
    if mode == 1:
        out_u8[i, :] = 0
    else:
        out_f32[i, :] = 0.0


@njit(parallel=True, fastmath=False)
def _finish_rows(weighted, shift, mask_sum, unit, flat, mode, out_u8, out_f32):
    # v = weighted - shift * mask_sum, in float64
    # mode 0: v * unit as float32, 1: min-max to uint8 [0, 255], 2: min-max to float32 [0, 1]
    # a flat row (flat[i], or max == min) gives zeros
    t, p = weighted.shape
    for i in prange(t):
        s = shift[i]
        if flat[i]:
            _zero_row(i, mode, out_u8, out_f32)
            continue
        if mode == 0:
            u = unit[i]
            for x in range(p):
                out_f32[i, x] = np.float32((np.float64(weighted[i, x]) - s * mask_sum[x]) * u)
            continue
        lo = np.inf
        hi = -np.inf
        for x in range(p):
            v = np.float64(weighted[i, x]) - s * mask_sum[x]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        span = hi - lo
        if not span > 0.0:
            _zero_row(i, mode, out_u8, out_f32)
            continue
        if mode == 1:
            scale = 255.0 / span
            for x in range(p):
                v = np.float64(weighted[i, x]) - s * mask_sum[x]
                out_u8[i, x] = np.uint8(np.rint((v - lo) * scale))
        else:
            scale = 1.0 / span
            for x in range(p):
                v = np.float64(weighted[i, x]) - s * mask_sum[x]
                out_f32[i, x] = np.float32((v - lo) * scale)


def finish_maps(
    weighted: np.ndarray,
    shift: np.ndarray | None,
    mask_sum: np.ndarray,
    *,
    scale: str | None,
    unit: np.ndarray | None = None,
    flat: np.ndarray | None = None,
) -> np.ndarray:
    """Combine the streamed sums into maps and optionally min-max them to uint8.

    Each map is ``v[t] = weighted[t] - shift[t] * mask_sum``, computed in float64.

    Parameters
    ----------
    weighted
        ``(T, P)`` float32: ``sum_i w_i[t] m_i`` for some per-mask weights ``w``.
    shift
        ``(T,)`` float64 (or ``None`` for zeros): for RISE's centred estimator the mean weight,
        so that ``v = sum_i (w_i - mean) m_i``; for plain RISE on offset weights, minus the
        offset.
    mask_sum
        ``(P,)``: ``sum_i m_i`` (used in float64).
    scale
        ``"uint8"``: per map ``rint(255 * (v - min) / (max - min))`` as uint8; ``"unit"``: per map
        ``(v - min) / (max - min)`` as float32; ``None``: ``v * unit`` as float32. A map with
        ``max == min`` scales to zeros.
    unit
        ``(T,)`` float64 factors for ``scale=None`` (the units the weights were divided by);
        ``None`` for ones. Ignored when scaling.
    flat
        ``(T,)`` bool: maps returned as zeros whatever the sums hold (maps that carry no
        information); ``None`` for none.

    Returns
    -------
    numpy.ndarray
        ``(T, P)`` uint8 or float32.

    Raises
    ------
    ValueError
        ``scale`` is not one of the three.
    """
    t, p = weighted.shape
    if scale not in (None, "uint8", "unit"):
        raise ValueError(f"scale must be None, 'uint8' or 'unit', got {scale!r}")
    shift64 = np.zeros(t) if shift is None else np.ascontiguousarray(shift, dtype=np.float64)
    unit64 = np.ones(t) if unit is None else np.ascontiguousarray(unit, dtype=np.float64)
    flat_b = np.zeros(t, np.bool_) if flat is None else np.ascontiguousarray(flat, np.bool_)
    msum = np.ascontiguousarray(mask_sum, dtype=np.float64)
    w = np.ascontiguousarray(weighted, dtype=np.float32)
    if scale == "uint8":
        out_u8 = np.empty((t, p), np.uint8)
        _finish_rows(w, shift64, msum, unit64, flat_b, 1, out_u8, np.empty((1, 1), np.float32))
        return out_u8
    out_f32 = np.empty((t, p), np.float32)
    _finish_rows(w, shift64, msum, unit64, flat_b, 0 if scale is None else 2,
                 np.empty((1, 1), np.uint8), out_f32)
    return out_f32
