"""Gaussian perturbation masks and their kernel-density map, for AISE.

AISE perturbs the input with a Gaussian ``g`` of width ``sigma`` centred at ``(cx, cy)``, all in
normalised image coordinates: pixel ``(i, j)`` of an ``H x W`` image sits at
``(x, y) = (j / (W - 1), i / (H - 1))`` (``numpy.linspace(0, 1, W)`` per axis, as the reference
toolkit lays out its grid), and ``g`` is divided by its largest value on that grid, so it peaks
at exactly 1 on the pixel nearest the centre:

    g[i, j] = exp(-((x_j - cx)^2 + (y_i - cy)^2) / (2 sigma^2)) / max over the grid

The Gaussian is separable, ``g = gy (outer) gx``, and so is its grid maximum, so a mask costs
``H + W`` exponentials; each 1-D profile is shifted by its own minimum distance before the
exponential, which keeps the peak at 1 even when ``sigma`` is far below one pixel (where the
plain formula underflows to 0 / 0).

Kernels
-------
gaussian_profiles
    The normalised 1-D profiles of many Gaussians along one axis.
render_masks
    ``(N, H, W)`` float32 masks ``g`` or ``1 - g`` (per mask), for
    :func:`salvo.kernels.fill_masked`.
kde_accumulate, kde_map
    ``sum_i value_i * g_i`` over many Gaussians, added into a float64 map row by row from the
    value-weighted profiles (no mask is ever formed), in a fixed order.

Both loops are Numba kernels. Measured here (2 cores, 224 x 224): 16 masks take 0.38 ms in
Numba against 4.6 ms with NumPy broadcasting (which needs temporaries and a second pass for
``1 - g``); a 50-Gaussian density map takes 1.2 ms in Numba against 3.7 ms as the equivalent
``(H, N) @ (N, W)`` BLAS product (STYLE boundary rule 1: measured, and the loop wins at these
sizes, where OpenBLAS's threading costs more than it saves).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["gaussian_profiles", "kde_accumulate", "kde_map", "render_masks"]


#: Smallest width the profiles use (its square is still a normal float64).
_MIN_SIGMA = 1e-150


@njit(cache=True, nogil=True)
def _profiles(centres: np.ndarray, sigmas: np.ndarray, size: int, out: np.ndarray) -> None:
    step = 1.0 / (size - 1) if size > 1 else 0.0
    for k in range(centres.shape[0]):
        c = centres[k]
        # a width below 1e-150 would square to 0 (a division by zero); any width far below
        # one grid step gives the same one-point profile, so it is raised to that floor
        s = max(sigmas[k], _MIN_SIGMA)
        inv = 1.0 / (2.0 * s * s)
        nearest = np.inf
        for j in range(size):
            d = j * step - c
            nearest = min(nearest, d * d)
        for j in range(size):
            d = j * step - c
            out[k, j] = np.exp(-(d * d - nearest) * inv)


def gaussian_profiles(centres: np.ndarray, sigmas: np.ndarray, size: int) -> np.ndarray:
    """Normalised 1-D Gaussian profiles on the grid ``linspace(0, 1, size)``.

    Parameters
    ----------
    centres
        ``(N,)`` centres in normalised coordinates.
    sigmas
        ``(N,)`` widths (> 0) in normalised coordinates.
    size
        Grid points along the axis (>= 1).

    Returns
    -------
    numpy.ndarray
        ``(N, size)`` float64; row ``k`` is ``exp(-(t - c_k)^2 / (2 s_k^2))`` divided by its
        maximum over the grid (so it is exactly 1 at the grid point nearest ``c_k``).
    """
    centres = np.ascontiguousarray(centres, dtype=np.float64).reshape(-1)
    sigmas = np.ascontiguousarray(sigmas, dtype=np.float64).reshape(-1)
    if centres.shape != sigmas.shape:
        raise ValueError(f"centres and sigmas must have the same length, got {centres.shape} "
                         f"and {sigmas.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not np.all(sigmas > 0):
        raise ValueError(f"sigmas must be > 0, got {sigmas[~(sigmas > 0)][:5]}")
    out = np.empty((centres.shape[0], int(size)), np.float64)
    _profiles(centres, sigmas, int(size), out)
    return out


@njit(cache=True, nogil=True)
def _render(gy: np.ndarray, gx: np.ndarray, complement: np.ndarray, out: np.ndarray) -> None:
    n, h = gy.shape
    w = gx.shape[1]
    for k in range(n):
        flip = complement[k]
        for i in range(h):
            a = gy[k, i]
            for j in range(w):
                v = np.float32(a * gx[k, j])
                out[k, i, j] = np.float32(1.0) - v if flip else v


def render_masks(
    cx: np.ndarray,
    cy: np.ndarray,
    sigmas: np.ndarray,
    height: int,
    width: int,
    complement: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gaussian masks ``g`` (or ``1 - g`` where ``complement``) on an ``height x width`` grid.

    Parameters
    ----------
    cx, cy
        ``(N,)`` centres, normalised: ``cx`` along the width (columns), ``cy`` along the
        height (rows).
    sigmas
        ``(N,)`` widths (> 0), normalised.
    height, width
        Mask size in pixels.
    complement
        ``(N,)`` bool: give ``1 - g`` for these masks. Default: none.
    out
        Optional C-contiguous float32 ``(>= N, height, width)`` buffer to write into.

    Returns
    -------
    numpy.ndarray
        ``(N, height, width)`` float32 (a view of ``out`` when given), values in [0, 1].
    """
    cx = np.asarray(cx, dtype=np.float64).reshape(-1)
    cy = np.asarray(cy, dtype=np.float64).reshape(-1)
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    n = cx.shape[0]
    if cy.shape[0] != n or sigmas.shape[0] != n:
        raise ValueError(f"cx, cy and sigmas must have the same length, got {cx.shape[0]}, "
                         f"{cy.shape[0]} and {sigmas.shape[0]}")
    if complement is None:
        complement = np.zeros(n, np.bool_)
    complement = np.ascontiguousarray(complement, dtype=np.bool_).reshape(-1)
    if complement.shape[0] != n:
        raise ValueError(f"complement must have length {n}, got {complement.shape[0]}")
    if out is None:
        out = np.empty((n, height, width), np.float32)
    elif (out.dtype != np.float32 or not out.flags.c_contiguous or out.ndim != 3
          or out.shape[0] < n or out.shape[1:] != (height, width)):
        raise ValueError(
            f"out must be C-contiguous float32 of shape (>= {n}, {height}, {width}), got "
            f"{out.dtype} {out.shape}"
        )
    gx = gaussian_profiles(cx, sigmas, width)
    gy = gaussian_profiles(cy, sigmas, height)
    _render(gy, gx, complement, out)
    return out[:n]


@njit(cache=True, nogil=True)
def _accumulate(gy: np.ndarray, gx: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    n, h = gy.shape
    w = gx.shape[1]
    for k in range(n):
        for i in range(h):
            a = values[k] * gy[k, i]
            for j in range(w):
                out[i, j] += a * gx[k, j]


def kde_accumulate(
    out: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    sigmas: np.ndarray,
    values: np.ndarray,
) -> np.ndarray:
    """Add ``sum_i values_i * g_i`` into ``out`` (in place), Gaussians in the order given.

    Parameters
    ----------
    out
        ``(H, W)`` float64, C-contiguous; the map so far.
    cx, cy, sigmas
        ``(N,)`` centres and widths, as in :func:`render_masks`.
    values
        ``(N,)`` weights.

    Returns
    -------
    numpy.ndarray
        ``out``.
    """
    if out.dtype != np.float64 or out.ndim != 2 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous (H, W) float64 array, got {out.dtype} "
                         f"{out.shape}")
    values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    cx = np.asarray(cx, dtype=np.float64).reshape(-1)
    if values.shape[0] != cx.shape[0]:
        raise ValueError(f"values must have length {cx.shape[0]}, got {values.shape[0]}")
    if values.shape[0] == 0:
        return out
    height, width = out.shape
    gx = gaussian_profiles(cx, sigmas, width)
    gy = gaussian_profiles(cy, sigmas, height)
    _accumulate(gy, gx, values, out)
    return out


def kde_map(
    cx: np.ndarray,
    cy: np.ndarray,
    sigmas: np.ndarray,
    values: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """The kernel-density map ``sum_i values_i * g_i`` of many Gaussians.

    Parameters
    ----------
    cx, cy, sigmas
        ``(N,)`` centres and widths, as in :func:`render_masks`.
    values
        ``(N,)`` weights.
    height, width
        Map size in pixels.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` float64.
    """
    return kde_accumulate(np.zeros((height, width), np.float64), cx, cy, sigmas, values)
