"""RISE's native mask generator and streaming aggregation against slow NumPy references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from salvo import _native
from salvo.kernels import rise_masks
from salvo.methods.black_box.rise import CHUNK, Accumulator
from salvo.testing.hooks import rise_grid

M64 = (1 << 64) - 1


def ref_fmix(z: int) -> int:
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & M64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return z


def ref_hash(seed: int, i: int, j: int) -> int:
    per_mask = ref_fmix((seed * 0x9E3779B97F4A7C15 + i + 1) & M64)
    return ref_fmix(per_mask ^ (((j + 1) * 0xD1B54A32D192ED03) & M64))


def ref_mask(seed: int, i: int, n: int, prob: float, h: int, w: int) -> np.ndarray:
    """The mask's definition (counter-based draws, a cell grid, a random shift, bicubic
    upsampling, clipping to [0, 1]), written plainly with OpenCV's bicubic resize."""
    cell_h, cell_w = -(-h // n), -(-w // n)
    draws = [ref_hash(seed, i, k) for k in range(n * n + 2)]
    grid = np.array([(d >> 40) / 2**24 < prob for d in draws[: n * n]], np.float32)
    grid = grid.reshape(n, n)
    dy, dx = draws[n * n] % cell_h, draws[n * n + 1] % cell_w
    up = cv2.resize(grid, ((n + 1) * cell_w, (n + 1) * cell_h), interpolation=cv2.INTER_CUBIC)
    return np.clip(up[dy : dy + h, dx : dx + w], 0, 1)


def test_hash_matches_reference():
    for seed in (0, 1, 12345, 2**63 + 7):
        for i in (0, 1, 999, 2**40):
            for j in (0, 5, 63):
                assert _native.rise_hash(seed, i, j) == ref_hash(seed, i, j)


@pytest.mark.parametrize(
    "seed, n, prob, h, w",
    [(0, 8, 0.5, 224, 224), (3, 4, 0.5, 128, 128), (11, 12, 0.3, 224, 224),
     (5, 7, 0.5, 100, 60), (2, 1, 0.5, 16, 9), (9, 5, 0.8, 37, 41)],
)
def test_masks_match_reference(seed, n, prob, h, w):
    first, count = 17, 6
    got = rise_masks(seed, first, count, n, prob, h, w, num_threads=2)
    assert got.shape == (count, h, w) and got.dtype == np.float32
    for t in range(count):
        np.testing.assert_allclose(got[t], ref_mask(seed, first + t, n, prob, h, w), atol=2e-6)
    assert got.min() >= 0.0 and got.max() <= 1.0


def test_mask_is_a_function_of_seed_and_index_only():
    a = rise_masks(4, 0, 40, 8, 0.5, 64, 64, num_threads=1)
    b = np.concatenate([rise_masks(4, s, 8, 8, 0.5, 64, 64, num_threads=3) for s in range(0, 40, 8)])
    assert np.array_equal(a, b)
    c = rise_masks(5, 0, 40, 8, 0.5, 64, 64)
    assert not np.array_equal(a, c), "another seed gives other masks"


def test_cells_are_on_with_probability_prob():
    on = [rise_grid(1, i, 8, 0.3, 64, 64)[0].mean() for i in range(400)]
    assert abs(np.mean(on) - 0.3) < 0.01


def test_masks_write_into_given_buffer_and_check_it():
    out = np.zeros((5, 32, 32), np.float32)
    res = rise_masks(0, 0, 3, 4, 0.5, 32, 32, out=out)
    assert np.shares_memory(res, out) and out[:3].any() and not out[3:].any()
    with pytest.raises(ValueError, match="out must be"):
        rise_masks(0, 0, 3, 4, 0.5, 32, 32, out=np.zeros((2, 32, 32), np.float32))
    with pytest.raises(ValueError, match="num_cells .* must not exceed"):
        rise_masks(0, 0, 1, 40, 0.5, 32, 32)
    with pytest.raises(ValueError, match="prob must be in"):
        rise_masks(0, 0, 1, 4, 1.0, 32, 32)


@pytest.mark.parametrize("splits", [[1] * 70, [7] * 10, [32, 32, 6], [70], [5, 64, 1]])
def test_accumulator_equals_direct_sum(splits):
    rng = np.random.default_rng(0)
    n, t, p = sum(splits), 5, 300
    masks = rng.random((n, p)).astype(np.float32)
    scores = rng.standard_normal((n, t)).astype(np.float32)
    acc = Accumulator(t, p)
    start = 0
    for k in splits:
        acc.add(masks[start : start + k], scores[start : start + k])
        start += k
    acc.finish()
    assert acc.count == n
    direct = np.einsum("nt,np->tp", scores.astype(np.float64), masks.astype(np.float64))
    np.testing.assert_allclose(acc.maps("plain"), direct, rtol=1e-5, atol=1e-4)
    centred = np.einsum(
        "nt,np->tp", (scores - scores.mean(0)).astype(np.float64), masks.astype(np.float64)
    )
    np.testing.assert_allclose(acc.maps("centered"), centred, rtol=1e-4, atol=1e-3)


def test_accumulator_is_bit_identical_across_batch_splits():
    rng = np.random.default_rng(1)
    masks = rng.random((3 * CHUNK + 5, 100)).astype(np.float32)
    scores = rng.standard_normal((len(masks), 3)).astype(np.float32)
    results = []
    for step in (1, 7, 32, len(masks)):
        acc = Accumulator(3, 100)
        for s in range(0, len(masks), step):
            acc.add(masks[s : s + step], scores[s : s + step])
        acc.finish()
        results.append(acc.maps("centered"))
    for r in results[1:]:
        assert np.array_equal(r, results[0])


@pytest.mark.parametrize("t, k, p", [(1, 32, 50176), (5, 7, 1000), (3, 9, 2049), (16, 1, 33)])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_native_accumulate_matches_reference(t, k, p, num_threads):
    from salvo.kernels import accumulate_weighted

    rng = np.random.default_rng(t * 1000 + k)
    weighted = rng.standard_normal((t, p)).astype(np.float32)
    scores = rng.standard_normal((k, t)).astype(np.float32)
    masks = rng.random((k, p)).astype(np.float32)
    expected = weighted.astype(np.float64) + scores.T.astype(np.float64) @ masks
    accumulate_weighted(weighted, scores, masks, num_threads)
    np.testing.assert_allclose(weighted, expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="shapes do not agree"):
        accumulate_weighted(weighted, scores[:, :1] if t > 1 else scores.T, masks)


@pytest.mark.parametrize("k, p", [(32, 50176), (7, 2049), (1, 33)])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_native_accumulate_mask_sum_matches_reference(k, p, num_threads):
    from salvo.kernels import accumulate_weighted

    rng = np.random.default_rng(k + p)
    masks = rng.random((k, p)).astype(np.float32)
    scores = rng.standard_normal((k, 2)).astype(np.float32)
    weighted = np.zeros((2, p), np.float32)
    start = rng.random(p)
    mask_sum = start.copy()
    accumulate_weighted(weighted, scores, masks, num_threads, mask_sum=mask_sum)
    # the slow, obvious reference: add mask after mask in float64
    expected = start.copy()
    for m in masks:
        expected = expected + m.astype(np.float64)
    np.testing.assert_array_equal(mask_sum, expected)
    np.testing.assert_allclose(weighted, scores.T.astype(np.float64) @ masks, rtol=1e-5,
                               atol=1e-4)
    with pytest.raises(ValueError, match="mask_sum must be a C-contiguous float64"):
        accumulate_weighted(weighted, scores, masks, mask_sum=mask_sum.astype(np.float32))
    with pytest.raises(ValueError, match=r"mask_sum must have shape \(%d,\)" % p):
        accumulate_weighted(weighted, scores, masks, mask_sum=np.zeros(p + 1))


@pytest.mark.parametrize("num_targets", [3, 40])
def test_accumulator_paths_equal_direct_sum_across_chunk_boundaries(num_targets):
    from salvo.methods.black_box.rise import chunk_size

    rng = np.random.default_rng(num_targets)
    chunk = chunk_size(num_targets)
    n, p = 2 * chunk + 13, 257
    masks = rng.random((n, p)).astype(np.float32)
    scores = rng.standard_normal((n, num_targets)).astype(np.float32)
    counts = []
    acc = Accumulator(num_targets, p, on_check=lambda count, a: counts.append(count),
                      check_every=chunk)
    for s in range(0, n, 11):
        assert acc.add(masks[s : s + 11], scores[s : s + 11]) is False
    assert counts == [chunk, 2 * chunk], "folded exactly at chunk boundaries"
    acc.finish()
    assert acc.count == n
    direct = scores.T.astype(np.float64) @ masks.astype(np.float64)
    np.testing.assert_allclose(acc.maps("plain"), direct, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(acc.mask_sum, masks.sum(0, dtype=np.float64), rtol=1e-9)
