"""RISE on planted-ground-truth models: correctness, determinism, statistics, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import openvino as ov
import pytest

from salvo.errors import PostprocessWarning
from salvo.methods.black_box.rise import RISE, resolve_params
from salvo.testing.planted import planted_image
from support import F32, logits


def in_region(y, x, region):
    y0, y1, x0, x1 = region
    return y0 <= y < y1 and x0 <= x < x1


@pytest.mark.parametrize("estimator", ["centered", "plain"])
def test_class_k_map_peaks_in_region_k(planted, model, estimator):
    rise = RISE(model, logits, precision=F32, batch_size=16, progress=False)
    x = planted_image(planted, "uniform")
    params = resolve_params(preset="speed", num_cells=7, estimator=estimator, scale_output=False)
    result = rise.run(x, None, params)
    assert result.maps.shape == (3, 56, 56)
    hits = []
    for k, region in enumerate(planted.regions):
        y, x_ = np.unravel_index(result.maps[k].argmax(), result.maps[k].shape)
        assert in_region(y, x_, region), f"class {k} map peaks at {(y, x_)}, not in {region}"
        hits.append((y, x_))
    # negative control: no class's peak lies in another class's region, and the transposed
    # map of class 0 (its region is off the diagonal) misses region 0
    for k, (y, x_) in enumerate(hits):
        for j, region in enumerate(planted.regions):
            if j != k:
                assert not in_region(y, x_, region)
    yt, xt = np.unravel_index(result.maps[0].T.argmax(), (56, 56))
    assert not in_region(yt, xt, planted.regions[0])


def test_maps_are_bit_identical_across_batch_sizes_and_requests(planted, model):
    x = planted_image(planted, "random", seed=3)
    params = resolve_params(num_masks=300, num_cells=5, seed=11)
    maps = []
    for batch_size in (1, 7, 32):
        for num_requests in (1, 3):
            rise = RISE(model, logits, precision=F32, batch_size=batch_size,
                        num_requests=num_requests, progress=False)
            assert rise.engine.batch_size == batch_size
            maps.append(rise.run(x, None, params).maps)
    for m in maps[1:]:
        assert np.array_equal(m, maps[0])
    other = RISE(model, logits, precision=F32, progress=False).run(
        x, None, resolve_params(num_masks=300, num_cells=5, seed=12)
    ).maps
    assert not np.array_equal(other, maps[0]), "the seed matters"


def test_plain_rise_matches_a_straightforward_numpy_rise_in_expectation(planted, model):
    """Mean over seeds of salvo's plain map vs the plain RISE formula (the score-weighted mean
    of the masks) with NumPy's RNG and cv2."""
    h = w = 56
    n_cells, prob, n_masks, n_seeds = 4, 0.5, 128, 12
    x = planted_image(planted, "random", seed=5)
    compiled = ov.Core().compile_model(planted.model, "CPU", {"INFERENCE_PRECISION_HINT": F32})
    rise = RISE(model, logits, precision=F32, batch_size=16, progress=False)

    def numpy_rise(seed):
        rng = np.random.default_rng(seed)
        cell = int(np.ceil(h / n_cells))
        total = np.zeros((3, h, w))
        for _ in range(n_masks):
            grid = (rng.random((n_cells, n_cells)) < prob).astype(np.float32)
            dy, dx = rng.integers(0, cell), rng.integers(0, cell)
            up = cv2.resize(grid, ((n_cells + 1) * cell,) * 2, interpolation=cv2.INTER_CUBIC)
            mask = np.clip(up[dy : dy + h, dx : dx + w], 0, 1)
            scores = compiled(mask[None, None] * x)[0][0]
            total += scores[:, None, None] * mask
        return total / n_masks

    ours = np.stack([
        rise.run(x, None, resolve_params(num_masks=n_masks, num_cells=n_cells, seed=s,
                                          estimator="plain", scale_output=False)).maps / n_masks
        for s in range(n_seeds)
    ])
    theirs = np.stack([numpy_rise(100 + s) for s in range(n_seeds)])
    se = np.sqrt(ours.var(0, ddof=1) / n_seeds + theirs.var(0, ddof=1) / n_seeds) + 1e-9
    z = np.abs(ours.mean(0) - theirs.mean(0)) / se
    assert np.quantile(z, 0.99) < 4.0 and z.max() < 6.5
    # and the test has power: a map from other masks' definition (no clip) would be caught
    assert np.corrcoef(ours.mean(0).ravel(), theirs.mean(0).ravel())[0, 1] > 0.95


def test_tolerance_stops_early_and_reports_inferences(planted, model):
    rise = RISE(model, logits, precision=F32, batch_size=8, progress=False)
    x = planted_image(planted, "uniform")
    full = rise.run(x, [0], resolve_params(num_masks=4096, num_cells=7, seed=1))
    early = rise.run(x, [0], resolve_params(num_masks=4096, num_cells=7, seed=1, tolerance=5e-3,
                                             check_every=128))
    assert early.num_masks_used < 4096 and early.num_masks_used % 128 == 0
    assert early.num_inferences < full.num_inferences
    assert np.corrcoef(early.maps[0].ravel().astype(float),
                       full.maps[0].ravel().astype(float))[0, 1] > 0.95
    # same tolerance, other batch size: same stopping point and same map
    rise2 = RISE(model, logits, precision=F32, batch_size=5, progress=False)
    again = rise2.run(x, [0], resolve_params(num_masks=4096, num_cells=7, seed=1, tolerance=5e-3,
                                              check_every=128))
    assert again.num_masks_used == early.num_masks_used
    assert np.array_equal(again.maps, early.maps)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(num_masks=0), "num_masks must be a positive int"),
        (dict(num_cells=100), "num_cells=100 is larger than the image"),
        (dict(prob=1.5), r"prob must be in \(0, 1\)"),
        (dict(prob=0.0), r"prob must be in \(0, 1\)"),
        (dict(estimator="fancy"), "estimator must be one of"),
        (dict(tolerance=-1), "tolerance must be a positive number"),
    ],
)
def test_bad_parameters_fail_before_any_inference(planted, model, params, match):
    rise = RISE(model, logits, precision=F32, progress=False)
    calls = []
    rise.postprocess_fn = lambda o: calls.append(1) or o[0]
    with pytest.raises(ValueError, match=match):
        rise.run(planted_image(planted), None, resolve_params(**params))
    assert not calls


def test_bad_postprocess_outputs_are_clear_errors(planted, model):
    x = planted_image(planted)
    nan = RISE(model, lambda o: np.full_like(o[0], np.nan), precision=F32, progress=False)
    with pytest.raises(ValueError, match="non-finite score"):
        nan.run(x, None, resolve_params(num_masks=64))
    wrong = RISE(model, lambda o: o[0][:, :, None, None].repeat(2, 2), precision=F32,
                 progress=False)
    with pytest.raises(ValueError, match=r"postprocess_fn returned shape \(1, 3, 2, 1\)"):
        wrong.run(x, None, resolve_params(num_masks=64))
    rise = RISE(model, logits, precision=F32, progress=False)
    with pytest.raises(ValueError, match="class index 3 is out of range"):
        rise.run(x, [3], resolve_params(num_masks=64))


def test_single_item_postprocess_falls_back_with_one_warning(planted, model):
    x = planted_image(planted, "random", seed=2)
    params = resolve_params(num_masks=96, num_cells=5)
    batched = RISE(model, logits, precision=F32, batch_size=8, progress=False).run(x, None, params)
    first_only = RISE(model, lambda o: o[0][:1], precision=F32, batch_size=8, progress=False)
    with pytest.warns(PostprocessWarning) as record:
        result = first_only.run(x, None, params)
    assert sum("one item at a time" in str(w.message) for w in record) == 1
    assert np.array_equal(result.maps, batched.maps)


def test_memory_does_not_grow_with_the_number_of_masks(planted, model):
    """Peak traced allocations of a run are the same for 160 and 1600 masks."""
    import tracemalloc

    rise = RISE(model, logits, precision=F32, batch_size=4, num_requests=2, progress=False)
    x = planted_image(planted)
    peaks = []
    for n in (160, 1600):
        rise.run(x, None, resolve_params(num_masks=32, num_cells=5))  # warm caches
        tracemalloc.start()
        rise.run(x, None, resolve_params(num_masks=n, num_cells=5))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    one_mask = 56 * 56 * 4
    assert peaks[1] < peaks[0] + 8 * one_mask, peaks
    assert peaks[1] < 200 * one_mask, "far less than all masks"
