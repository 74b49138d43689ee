"""The Numba map-finishing kernel against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from salvo.kernels.maps import finish_maps


@pytest.mark.parametrize("centered", [False, True])
def test_finish_maps_matches_numpy(centered):
    rng = np.random.default_rng(3)
    weighted = rng.standard_normal((7, 300)).astype(np.float32)
    mask_sum = rng.random(300) * 50
    mean = rng.standard_normal(7).astype(np.float32) if centered else None
    raw = weighted.astype(np.float64)
    if centered:
        raw = raw - mean.astype(np.float64)[:, None] * mask_sum.astype(np.float32)[None, :]
    lo, hi = raw.min(1, keepdims=True), raw.max(1, keepdims=True)
    unit = (raw - lo) / (hi - lo + 1e-12)
    np.testing.assert_allclose(finish_maps(weighted, mean, mask_sum, scale=None), raw,
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(finish_maps(weighted, mean, mask_sum, scale="unit"), unit,
                               atol=1e-5)
    u8 = finish_maps(weighted, mean, mask_sum, scale="uint8")
    assert u8.dtype == np.uint8
    assert np.abs(u8.astype(int) - np.rint(255 * unit)).max() <= 1
    assert (u8.min(1) == 0).all() and (u8.max(1) == 255).all()


def test_constant_map_scales_to_zeros_not_nan():
    out = finish_maps(np.ones((2, 10), np.float32), None, np.ones(10), scale="unit")
    assert np.all(out == 0)
    with pytest.raises(ValueError, match="scale must be"):
        finish_maps(np.ones((1, 3), np.float32), None, np.ones(3), scale="percent")


@pytest.mark.parametrize("scale", [None, "uint8", "unit"])
def test_flat_and_constant_rows_give_zeros_and_leave_the_others_alone(scale):
    rng = np.random.default_rng(4)
    weighted = rng.standard_normal((4, 50)).astype(np.float32)
    weighted[0] = 2.5  # constant: no span to scale
    mask_sum = rng.random(50) * 10
    flat = np.array([False, True, False, False])  # row 1 varies but is declared flat
    out = finish_maps(weighted, None, mask_sum, scale=scale, flat=flat)
    assert out.dtype == (np.uint8 if scale == "uint8" else np.float32)
    assert np.all(out[1] == 0)
    if scale is None:  # unscaled: a constant row keeps its value
        assert np.all(out[0] == np.float32(2.5))
    else:
        assert np.all(out[0] == 0)
    alone = finish_maps(weighted[2:], None, mask_sum, scale=scale)
    np.testing.assert_array_equal(out[2:], alone)
    assert not np.all(alone == 0)
