"""AISE's Gaussian masks and density map (Numba) against the reference's NumPy formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from salvo.kernels.gaussian import gaussian_profiles, kde_accumulate, kde_map, render_masks


def reference_mask(cx: float, cy: float, sigma: float, height: int, width: int) -> np.ndarray:
    """The reference toolkit's definition, written plainly: a 2-D Gaussian on the
    ``linspace(0, 1)`` grid (x along the width), divided by its maximum on the grid."""
    xs, ys = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    return g / g.max()


# centres on and off the grid, near and on the borders; widths from sub-pixel to wide
CASES = [
    (0.2, 0.7, 0.1), (0.5, 0.5, 0.25), (0.0, 1.0, 0.175), (0.913, 0.041, 0.075),
    (0.33, 0.66, 0.02), (1.0, 0.0, 0.6),
]


@pytest.mark.parametrize("height, width", [(56, 56), (37, 53), (1, 9)])
def test_masks_match_the_reference_formula(height, width):
    cx, cy, sig = (np.array(v) for v in zip(*CASES))
    complement = np.array([False, True, False, True, False, True])
    masks = render_masks(cx, cy, sig, height, width, complement)
    assert masks.shape == (len(CASES), height, width) and masks.dtype == np.float32
    for k, (x, y, s) in enumerate(CASES):
        ref = reference_mask(x, y, s, height, width)
        expected = 1.0 - ref if complement[k] else ref
        np.testing.assert_allclose(masks[k], expected, atol=2e-7, rtol=0)
        # the peak is exactly 1 (0 for a complement) at the grid point nearest the centre
        i = int(np.argmin(np.abs(np.linspace(0, 1, height) - y)))
        j = int(np.argmin(np.abs(np.linspace(0, 1, width) - x)))
        assert masks[k, i, j] == (0.0 if complement[k] else 1.0)


def test_masks_are_not_transposed():
    """x runs along the width: an off-diagonal centre is not where its transpose would be."""
    mask = render_masks([0.8], [0.1], [0.1], 40, 40)[0]
    i, j = np.unravel_index(mask.argmax(), mask.shape)
    assert (i, j) == (round(0.1 * 39), round(0.8 * 39))
    assert not np.allclose(mask, reference_mask(0.1, 0.8, 0.1, 40, 40), atol=1e-3)


def test_tiny_width_keeps_a_peak_of_one():
    """sigma far below a pixel underflows the plain formula (0 / 0); the kernel keeps 1."""
    mask = render_masks([0.4], [0.6], [1e-4], 32, 32)[0]
    assert np.all(np.isfinite(mask)) and mask.max() == 1.0
    assert np.count_nonzero(mask) == 1


def test_profiles_peak_at_one():
    rows = gaussian_profiles(np.array([0.0, 0.37, 1.0]), np.array([0.1, 0.02, 0.3]), 11)
    assert rows.shape == (3, 11)
    np.testing.assert_array_equal(rows.max(axis=1), [1.0, 1.0, 1.0])
    assert rows[0].argmax() == 0 and rows[1].argmax() == 4 and rows[2].argmax() == 10


def test_density_map_matches_the_sum_of_masks():
    rng = np.random.default_rng(7)
    n, height, width = 45, 31, 47
    cx, cy = rng.random(n), rng.random(n)
    sig = rng.choice([0.05, 0.1, 0.25], n)
    values = rng.standard_normal(n)
    expected = sum(v * reference_mask(a, b, s, height, width)
                   for a, b, s, v in zip(cx, cy, sig, values))
    got = kde_map(cx, cy, sig, values, height, width)
    assert got.shape == (height, width) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, atol=1e-12, rtol=1e-10)
    # streaming in two parts gives the same map
    acc = np.zeros((height, width))
    kde_accumulate(acc, cx[:20], cy[:20], sig[:20], values[:20])
    kde_accumulate(acc, cx[20:], cy[20:], sig[20:], values[20:])
    np.testing.assert_allclose(acc, got, atol=1e-12, rtol=1e-12)
    # and the orientation matters: centres with x and y swapped give another map
    swapped = sum(v * reference_mask(b, a, s, height, width)
                  for a, b, s, v in zip(cx, cy, sig, values))
    assert not np.allclose(got, swapped, atol=1e-3)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="sigmas must be > 0"):
        render_masks([0.5], [0.5], [0.0], 8, 8)
    with pytest.raises(ValueError, match="same length"):
        render_masks([0.5, 0.2], [0.5], [0.1], 8, 8)
    with pytest.raises(ValueError, match="out must be C-contiguous float32"):
        render_masks([0.5], [0.5], [0.1], 8, 8, out=np.zeros((1, 8, 9), np.float32))
    with pytest.raises(ValueError, match="values must have length 1"):
        kde_map([0.5], [0.5], [0.1], [1.0, 2.0], 8, 8)
    with pytest.raises(ValueError, match="float64"):
        kde_accumulate(np.zeros((8, 8), np.float32), [0.5], [0.5], [0.1], [1.0])
