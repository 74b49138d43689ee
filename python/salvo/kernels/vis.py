"""Numba kernels for post-processing many saliency maps at once.

One parallel pass over a stack of ``T`` raw maps does, per map: min-max scaling to 0..255,
bilinear resize, JET colour map and (optionally) the overlay blend, writing straight into one
preallocated ``(T, H, W, C)`` uint8 array. It reproduces OpenCV's per-map pipeline
(``cv2.resize(INTER_LINEAR)`` on uint8, ``cv2.applyColorMap(COLORMAP_JET)``, BGR→RGB):

* resize coefficients are computed exactly as OpenCV does for 8-bit images: half-pixel
  centres, source offset and fraction in float32, 11-bit fixed-point weights
  (``round(w * 2048)``), an exact integer horizontal pass and the vertical pass of OpenCV's
  SIMD path (``((r0 >> 4) * b0 >> 16) + ((r1 >> 4) * b1 >> 16) + 2 >> 2``); rows above/below
  the image reuse the border row with the unclamped weights, as OpenCV does;
* the colour map is a 256-entry RGB table taken once from ``cv2.applyColorMap``;
* the overlay is a lookup in a ``(256, 3, 256)`` uint8 table, ``table[g, c, v] =
  rint(overlay_weight * jet[g, c] + (1 - overlay_weight) * v)`` (computed once in float64, see
  :func:`overlay_table`), so the blend needs no float image at all.

On the shapes tested (see ``tests/kernels/test_vis_kernels.py``) this is bit-exact with
OpenCV 5 on this machine; the contract is ±1 per channel (OpenCV's scalar tail uses a slightly
different rounding on some CPUs).

The per-map work lives in a plain ``@njit(cache=True)`` function so its machine code is cached
on disk; only the small ``parallel=True`` driver is compiled in each process.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import numba
import numpy as np
from numba import njit, prange

from salvo.kernels.colour import jet_lut_rgb, overlay_table

logger = logging.getLogger(__name__)

__all__ = [
    "NonFiniteMapError",
    "jet_lut_rgb",
    "linear_resize_coefficients",
    "overlay_table",
    "process_maps_batched",
]


class NonFiniteMapError(ValueError):
    """Some maps hold NaN or infinity; ``positions`` lists their indices in the stack."""

    def __init__(self, positions: list[int]) -> None:
        self.positions = positions
        super().__init__(f"saliency maps at positions {positions[:10]} contain NaN or infinity")

#: OpenCV's ``INTER_RESIZE_COEF_BITS``: bilinear weights for 8-bit images are 11-bit fixed point.
_COEF_SCALE = 2048

def linear_resize_coefficients(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and fixed-point weights of OpenCV's 8-bit bilinear resize along one axis.

    Parameters
    ----------
    src
        Source length (pixels), >= 1.
    dst
        Destination length (pixels), >= 1.

    Returns
    -------
    index : numpy.ndarray
        ``(dst, 2)`` int32: the two source pixels each destination pixel reads, clamped to
        ``[0, src - 1]``.
    weight : numpy.ndarray
        ``(dst, 2)`` int32: their weights, scaled by 2048 (each rounded separately, as OpenCV
        does).
    clamp_fraction : numpy.ndarray
        ``(dst,)`` bool: True where OpenCV zeroes the fraction because the sample falls
        before the first or after the last source pixel (used for the horizontal axis only;
        the vertical axis keeps the fraction and reads the clamped row twice).
    """
    if src < 1 or dst < 1:
        raise ValueError(f"resize lengths must be >= 1, got src={src}, dst={dst}")
    # OpenCV: inv_scale = dst / src (double), scale = 1 / inv_scale; position in double, then
    # the float32 cast, floor and fraction in float32.
    scale = 1.0 / (float(dst) / float(src))
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    start = np.floor(pos)
    frac = (pos - start).astype(np.float32)
    start = start.astype(np.int64)
    clamp = (start < 0) | (start >= src - 1)
    index = np.empty((dst, 2), dtype=np.int32)
    index[:, 0] = np.clip(start, 0, src - 1)
    index[:, 1] = np.clip(start + 1, 0, src - 1)
    weight = np.empty((dst, 2), dtype=np.int32)
    one = np.float32(1.0)
    coef = np.float32(_COEF_SCALE)
    weight[:, 0] = np.rint((one - frac) * coef).astype(np.int32)
    weight[:, 1] = np.rint(frac * coef).astype(np.int32)
    return index, weight, clamp


def _horizontal_coefficients(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal axis: OpenCV sets the fraction to 0 (weights 2048, 0) outside the image."""
    index, weight, clamp = linear_resize_coefficients(src, dst)
    weight[clamp, 0] = _COEF_SCALE
    weight[clamp, 1] = 0
    return index, weight


@njit(cache=True, nogil=True)
def _process_one(
    raw: np.ndarray,
    xi: np.ndarray,
    xw: np.ndarray,
    yi: np.ndarray,
    yw: np.ndarray,
    lut: np.ndarray,
    colormap: bool,
    overlay: bool,
    table: np.ndarray,
    image: np.ndarray,
    out: np.ndarray,
) -> bool:
    """Scale, resize, colour and blend one ``(h, w)`` map into ``out`` ``(H, W, C)``.

    ``table`` is :func:`overlay_table` and ``image`` the ``(H, W, 3)`` uint8 picture; both
    only read when ``overlay``.

    Returns False (and writes nothing) if the map holds a NaN or an infinity.
    """
    h, w = raw.shape
    out_h = out.shape[0]
    out_w = out.shape[1]

    # min-max, rejecting non-finite values
    lo = np.inf
    hi = -np.inf
    for i in range(h):
        for j in range(w):
            v = np.float64(raw[i, j])
            if not np.isfinite(v):
                return False
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    factor = 255.0 / (hi - lo + 1e-12)

    # scaled uint8 levels, then the exact integer horizontal pass (weights sum to ~2048)
    levels = np.empty((h, w), dtype=np.int32)
    for i in range(h):
        for j in range(w):
            levels[i, j] = np.int32(np.rint((np.float64(raw[i, j]) - lo) * factor))
    rows = np.empty((h, out_w), dtype=np.int32)
    for i in range(h):
        for x in range(out_w):
            rows[i, x] = levels[i, xi[x, 0]] * xw[x, 0] + levels[i, xi[x, 1]] * xw[x, 1]

    # vertical pass as OpenCV's SIMD path: pre-shift by 4, high half of the 16-bit product
    for y in range(out_h):
        r0 = rows[yi[y, 0]]
        r1 = rows[yi[y, 1]]
        b0 = yw[y, 0]
        b1 = yw[y, 1]
        for x in range(out_w):
            g = ((((r0[x] >> 4) * b0) >> 16) + (((r1[x] >> 4) * b1) >> 16) + 2) >> 2
            if g > 255:
                g = 255
            elif g < 0:
                g = 0
            if colormap:
                if overlay:
                    for c in range(3):
                        out[y, x, c] = table[g, c, image[y, x, c]]
                else:
                    out[y, x, 0] = lut[g, 0]
                    out[y, x, 1] = lut[g, 1]
                    out[y, x, 2] = lut[g, 2]
            else:
                out[y, x, 0] = np.uint8(g)
    return True


@njit(parallel=True)
def _process_all(
    raw: np.ndarray,
    xi: np.ndarray,
    xw: np.ndarray,
    yi: np.ndarray,
    yw: np.ndarray,
    lut: np.ndarray,
    colormap: bool,
    overlay: bool,
    table: np.ndarray,
    image: np.ndarray,
    out: np.ndarray,
    ok: np.ndarray,
) -> None:
    for t in prange(raw.shape[0]):
        ok[t] = _process_one(
            raw[t], xi, xw, yi, yw, lut, colormap, overlay, table, image, out[t]
        )


@contextmanager
def _numba_threads(num_threads: int | None) -> Iterator[None]:
    if num_threads is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(num_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


_NATIVE_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32), np.dtype(np.float64))


def process_maps_batched(
    maps: np.ndarray,
    out_size: tuple[int, int],
    *,
    colormap: bool = True,
    image: np.ndarray | None = None,
    overlay_weight: float = 0.5,
    num_threads: int | None = None,
) -> np.ndarray:
    """Scale, resize, colour-map and blend a stack of maps in one parallel pass.

    Per map: min-max to 0..255 (``rint(255 * (x - min) / (max - min + 1e-12))``), bilinear
    resize as ``cv2.resize(..., INTER_LINEAR)`` on uint8, JET colour map in RGB order, and with
    ``image`` the blend ``rint(overlay_weight * colour + (1 - overlay_weight) * image)``
    (through :func:`overlay_table`; no float image is made).

    Parameters
    ----------
    maps
        ``(T, h, w)`` uint8, float32 or float64 (other real dtypes are converted to float64).
        No NaN or infinity.
    out_size
        ``(H, W)`` of the output maps; ``(h, w)`` leaves the size unchanged (exactly).
    colormap
        Apply the JET colour map (output ``(T, H, W, 3)``); otherwise the output is the
        scaled, resized grey map ``(T, H, W)``.
    image
        ``(H, W, 3)`` uint8 RGB picture. Given, the coloured maps are blended over it (needs
        ``colormap=True``).
    overlay_weight
        Weight of the saliency map in the blend, in [0, 1].
    num_threads
        Numba threads to use (``None``: Numba's current setting).

    Returns
    -------
    numpy.ndarray
        ``(T, H, W, 3)`` uint8 (colour) or ``(T, H, W)`` uint8 (grey), freshly allocated; no
        other array of that size is allocated.

    Raises
    ------
    ValueError
        Bad shapes; :class:`NonFiniteMapError` (a ValueError) for maps holding NaN or
        infinity.
    TypeError
        ``image`` is not uint8.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (T, h, w), got shape {maps.shape}")
    if maps.dtype not in _NATIVE_DTYPES:
        if not (np.issubdtype(maps.dtype, np.integer) or np.issubdtype(maps.dtype, np.floating)):
            raise TypeError(f"maps must hold real numbers, got dtype {maps.dtype}")
        maps = maps.astype(np.float64)
    maps = np.ascontiguousarray(maps)
    num_maps, h, w = maps.shape
    if h < 1 or w < 1:
        raise ValueError(f"maps must be non-empty, got shape {maps.shape}")
    out_h, out_w = (int(out_size[0]), int(out_size[1]))
    if out_h < 1 or out_w < 1:
        raise ValueError(f"out_size must be positive (H, W), got {out_size}")
    overlay = image is not None
    if overlay:
        if not colormap:
            raise ValueError("overlay (image) needs colormap=True")
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise TypeError(f"image must be uint8, got {image.dtype}")
        if image.shape != (out_h, out_w, 3):
            raise ValueError(
                f"image must be (H, W, 3) = {(out_h, out_w, 3)}, got {image.shape}"
            )
        image = np.ascontiguousarray(image)
        if not 0.0 <= overlay_weight <= 1.0:
            raise ValueError(f"overlay_weight must be in [0, 1], got {overlay_weight}")
        table = overlay_table(overlay_weight)
    else:
        image = np.zeros((1, 1, 3), dtype=np.uint8)
        table = np.zeros((1, 3, 1), dtype=np.uint8)

    xi, xw = _horizontal_coefficients(w, out_w)
    yi, yw, _ = linear_resize_coefficients(h, out_h)
    channels = 3 if colormap else 1
    out = np.empty((num_maps, out_h, out_w, channels), dtype=np.uint8)
    ok = np.ones(num_maps, dtype=np.bool_)
    if num_maps:
        with _numba_threads(num_threads):
            _process_all(
                maps,
                xi,
                xw,
                yi,
                yw,
                jet_lut_rgb(),
                bool(colormap),
                bool(overlay),
                table,
                image,
                out,
                ok,
            )
    if not ok.all():
        raise NonFiniteMapError(np.flatnonzero(~ok).tolist())
    return out if colormap else out[..., 0]
