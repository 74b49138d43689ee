"""The RISE accumulator against a float64 reference, whatever the scores' offset and scale."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from salvo.kernels.maps import finish_maps
from salvo.methods.blackbox.rise import CHUNK, Accumulator


def reference_uint8(scores: np.ndarray, masks: np.ndarray, centred: bool) -> np.ndarray:
    """``sum_i (s_i - mean) m_i`` (or ``sum_i s_i m_i``) in float64, min-max to [0, 255]."""
    s = scores - scores.mean(axis=0) if centred else scores
    raw = s.T @ masks
    lo, hi = raw.min(axis=1, keepdims=True), raw.max(axis=1, keepdims=True)
    return np.rint(255 * (raw - lo) / (hi - lo))


def accumulate(scores: np.ndarray, masks: np.ndarray, estimator: str, step: int = 13,
               **kwargs) -> Accumulator:
    acc = Accumulator(scores.shape[1], masks.shape[1], estimator=estimator, **kwargs)
    for s in range(0, len(masks), step):
        acc.add(masks[s : s + step], scores[s : s + step])
    acc.finish()
    return acc


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n, p = 3 * CHUNK + 9, 400
    masks = (rng.random((n, p)) < 0.5).astype(np.float32)
    # two targets whose scores depend on a few pixels (a signal) plus noise
    scores = np.stack([masks[:, :40].mean(1) * 3 + 0.1 * rng.standard_normal(n),
                       masks[:, 200:260].mean(1) - 0.05 * rng.standard_normal(n)], axis=1)
    return scores, masks


@settings(max_examples=40, deadline=None)
@given(offset=st.floats(-1e6, 1e6), log2_factor=st.integers(-20, 100),
       factor_fraction=st.floats(1.0, 2.0), estimator=st.sampled_from(["centered", "plain"]))
def test_maps_match_the_float64_reference(data, offset, log2_factor, factor_fraction,
                                          estimator):
    """Offsets up to 1e6 with scale factors 2**-20 .. 2**101: within one level of float64,
    unless the scores' spread fell below float32 resolution at their magnitude (flat, zeros)."""
    scores, masks = data
    transformed = scores * (factor_fraction * 2.0 ** log2_factor) + offset
    acc = accumulate(transformed, masks, estimator)
    got = acc.result("uint8").astype(int)
    expected = reference_uint8(transformed, masks.astype(np.float64), estimator == "centered")
    flat = np.ptp(transformed, axis=0) <= 2.0 ** -23 * np.abs(transformed).max(axis=0)
    assert acc.flat_targets().tolist() == flat.tolist()
    assert not got[flat].any()
    if not flat.all():
        assert np.abs(got[~flat] - expected[~flat]).max() <= 1


def test_score_sum_and_unscaled_maps_are_in_score_units(data):
    scores, masks = data
    shifted = scores * 1e20 + 5e20
    acc = accumulate(shifted, masks, "centered")
    np.testing.assert_allclose(acc.score_sum, shifted.sum(axis=0), rtol=1e-12)
    direct = (shifted - shifted.mean(0)).T @ masks.astype(np.float64)
    np.testing.assert_allclose(acc.maps("centered"), direct, rtol=1e-5,
                               atol=1e-5 * np.abs(direct).max())
    np.testing.assert_allclose(acc.maps("plain"), shifted.T @ masks.astype(np.float64),
                               rtol=1e-6)
    np.testing.assert_allclose(acc.result(None), direct, rtol=1e-5,
                               atol=1e-5 * np.abs(direct).max())


def test_a_later_chunk_far_larger_than_the_first_rescales_exactly(data):
    """The first chunk fixes the scale; a chunk 2**60 times larger lowers it (no overflow)."""
    scores, masks = data
    grown = scores.copy()
    grown[2 * CHUNK :] *= 2.0 ** 60
    acc = accumulate(grown, masks, "centered")
    assert (acc.exponent > 40).all(), "the scale was lowered"
    expected = reference_uint8(grown, masks.astype(np.float64), True)
    assert np.abs(acc.result("uint8").astype(int) - expected).max() <= 1


def test_the_map_does_not_depend_on_how_the_masks_arrive(data):
    scores, masks = data
    shifted = scores + 1e6
    maps = [accumulate(shifted, masks, "centered", step=k).result("uint8") for k in (1, 7, 32,
                                                                                       len(masks))]
    for m in maps[1:]:
        np.testing.assert_array_equal(m, maps[0])


@pytest.mark.parametrize("spread, flat", [(0.0, True), (1e-9, True), (1e-6, False)])
def test_flat_targets_follow_float32_resolution(data, spread, flat):
    """Relative spread <= 2**-23 (1.2e-7) is flat; 1e-6 is not."""
    _, masks = data
    rng = np.random.default_rng(1)
    scores = 1e3 * (1 + spread * rng.random((len(masks), 1)))
    acc = accumulate(scores, masks, "centered")
    assert acc.flat_targets().tolist() == [flat]
    assert acc.result("uint8").any() != flat


def test_finish_maps_flat_rows_and_units():
    weighted = np.arange(12, dtype=np.float32).reshape(2, 6)
    msum = np.ones(6)
    out = finish_maps(weighted, np.array([1.0, 0.0]), msum, scale=None,
                      unit=np.array([2.0, 0.5]), flat=np.array([False, True]))
    np.testing.assert_array_equal(out[0], (np.arange(6) - 1.0) * 2.0)
    assert not out[1].any()
    u8 = finish_maps(weighted, None, msum, scale="uint8", flat=np.array([True, False]))
    assert not u8[0].any() and u8[1].min() == 0 and u8[1].max() == 255
