"""Faithfulness metrics on hand-computed cases, tiny models, and planted ground truth."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from salvo.common import ExplainMode, Method, Task
from salvo.errors import MetricWarning
from salvo.explainer.explanation import Explanation
from salvo.metrics import ADCC, InsertionDeletionAUC, PointingGame
from salvo.metrics.adcc import adcc_from_components
from salvo.metrics.insertion_deletion_auc import AUC, pixel_order
from salvo.testing.planted import batchable, planted_cnn, planted_image
from support import F32, logits

H, W = 20, 24  # N = 480 pixels; steps 7 does not divide it
REGION = (2, 8, 14, 22)  # (y0, y1, x0, x1): top right, off the diagonal, 48 pixels


def _axes(*values: int) -> ov.Node:
    return ops.constant(np.array(values, np.int64))


def hwc_to_nchw(image: np.ndarray) -> np.ndarray:
    """preprocess_fn of the tiny models: one (H, W, C) image -> (1, C, H, W) float32."""
    return np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1)[None])


def visible_fraction_model() -> tuple[ov.Model, np.ndarray]:
    """Two classes on a (B, 3, H, W) input: class 0 = fraction of pixels that are not black,
    class 1 = the same fraction inside REGION. Batch is dynamic (the engine batches it)."""
    x = ops.parameter(ov.PartialShape([-1, 3, H, W]), ov.Type.f32, name="image")
    visible = ops.convert(ops.not_equal(x, ops.constant(np.float32(0))), ov.Type.f32)
    visible = ops.reduce_max(visible, _axes(1), keep_dims=False)  # (B, H, W)
    region = np.zeros((H, W), np.float32)
    y0, y1, x0, x1 = REGION
    region[y0:y1, x0:x1] = 1.0
    overall = ops.reduce_mean(visible, _axes(1, 2), keep_dims=False)
    inside = ops.reduce_sum(ops.multiply(visible, ops.constant(region[None])), _axes(1, 2),
                            keep_dims=False)
    inside = ops.divide(inside, ops.constant(np.float32(region.sum())))
    scores = ops.concat([ops.unsqueeze(overall, _axes(1)), ops.unsqueeze(inside, _axes(1))], 1)
    return ov.Model([ops.result(scores)], [x], "visible_fraction"), region


def mean_intensity_model(offset: float = 0.0) -> ov.Model:
    """Two classes: class 0 = mean of the image + offset, class 1 = mean of channel 0 + offset."""
    x = ops.parameter(ov.PartialShape([-1, 3, H, W]), ov.Type.f32, name="image")
    c0 = ops.reduce_mean(x, _axes(1, 2, 3), keep_dims=False)
    first = ops.gather(x, ops.constant(np.int64(0)), ops.constant(np.int64(1)))
    c1 = ops.reduce_mean(first, _axes(1, 2), keep_dims=False)
    scores = ops.concat([ops.unsqueeze(c0, _axes(1)), ops.unsqueeze(c1, _axes(1))], 1)
    scores = ops.add(scores, ops.constant(np.float32(offset)))
    return ov.Model([ops.result(scores)], [x], "mean_intensity")


def trapezoid_auc(curve: np.ndarray) -> float:
    """Area under a curve on x = 0, 1/S, ..., 1 (an independent formula)."""
    curve = np.asarray(curve, np.float64)
    steps = len(curve) - 1
    return float(np.sum((curve[1:] + curve[:-1]) / 2) / steps)


def counts(steps: int, n: int = H * W) -> np.ndarray:
    return np.array([int(i * n / steps) for i in range(steps + 1)])


@pytest.fixture(scope="module")
def visible():
    model, region = visible_fraction_model()
    return InsertionDeletionAUC(model, hwc_to_nchw, logits, precision=F32, batch_size=8,
                                num_requests=3), region


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).uniform(0.1, 1.0, (H, W, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def region_first_map(visible):
    """Distinct values, every REGION pixel above every other pixel."""
    _, region = visible
    rng = np.random.default_rng(1)
    return rng.random((H, W)) + 2.0 * region


# ============================================================================ PointingGame


def peak_map(shape=(30, 30), peak=(5, 21)):
    smap = np.random.default_rng(2).random(shape).astype(np.float32) * 0.5
    smap[peak] = 1.0
    return smap


@pytest.mark.parametrize(
    "box, hit",
    [
        ((19, 3, 4, 4), 1.0),  # around the peak (x=21, y=5)
        ((21, 5, 0, 0), 1.0),  # a single pixel, inclusive
        ((16, 0, 5, 5), 1.0),  # the peak on the box's far corner (x + w = 21, y + h = 5)
        ((22, 5, 3, 3), 0.0),  # one pixel to the right
        ((19, 6, 4, 4), 0.0),  # one pixel below
        ((3, 19, 4, 4), 0.0),  # around the transposed peak
    ],
)
def test_pointing_game_on_a_known_argmax(box, hit):
    assert PointingGame()(peak_map(), [box]) == {"pointing_game": hit}


def test_pointing_game_transposed_map_misses_and_any_maximum_counts():
    box = (19, 3, 4, 4)
    smap = peak_map()
    assert PointingGame()(smap, [box])["pointing_game"] == 1.0
    assert PointingGame()(smap.T, [box])["pointing_game"] == 0.0  # negative control
    two = smap.T.copy()
    two[5, 21] = two.max()  # a second maximum, inside the box
    assert PointingGame()(two, [(0, 0, 1, 1), box])["pointing_game"] == 1.0
    assert PointingGame()(smap, [])["pointing_game"] == 0.0  # no boxes: nothing to hit


def test_pointing_game_evaluate_by_label_name_and_per_image_map(caplog):
    names = ["zero", "one", "two"]
    hit, miss = peak_map(), peak_map().T
    e1 = Explanation({0: hit, 2: miss}, label_names=names)
    e2 = Explanation({1: hit, 0: hit}, label_names=names)  # "zero" has no box in image 2
    e3 = Explanation({"per_image_map": miss})  # checked against every box of image 3
    gt = [
        {"zero": [(19, 3, 4, 4)], "two": [(19, 3, 4, 4)]},
        {"one": [(0, 0, 2, 2), (20, 4, 2, 2)]},
        {"a": [(19, 3, 4, 4)], "b": [(3, 19, 2, 2)]},
    ]
    with caplog.at_level(logging.INFO, logger="salvo.metrics.pointing_game"), \
            pytest.warns(MetricWarning, match=r"1 of 5 saliency maps have no ground-truth boxes"):
        result = PointingGame().evaluate([e1, e2, e3], gt)
    # scored: e1/0 hit, e1/2 miss, e2/1 hit, e3 hit (box b) -> 3 / 4; e2/0 skipped
    assert result == {"pointing_game": pytest.approx(3 / 4)}
    assert "No ground-truth bbox for zero" in caplog.text
    # without label names the class index is the key
    assert PointingGame().evaluate([Explanation({1: hit})], [{1: [(19, 3, 4, 4)]}]) == {
        "pointing_game": 1.0
    }


def test_pointing_game_bad_input(caplog):
    pg = PointingGame()
    smap = peak_map()
    with pytest.raises(ValueError, match="outside the 30x30 saliency map"):
        pg(smap, [(30, 0, 5, 5)])
    with pytest.raises(ValueError, match="outside"):
        pg(smap, [(-10, -10, 5, 5)])
    assert pg(smap, [(15, -4, 20, 10)])["pointing_game"] == 1.0  # partly outside: kept
    with pytest.raises(ValueError, match="negative width"):
        pg(smap, [(19, 3, -1, 4)])
    with pytest.raises(ValueError, match="not finite"):
        pg(smap, [(np.nan, 3, 1, 4)])
    with pytest.raises(ValueError, match="list of"):
        pg(smap, [(1, 2, 3)])
    bad = smap.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pg(bad, [(19, 3, 4, 4)])
    with pytest.raises(ValueError, match="colormap=False"):
        pg(np.zeros((30, 30, 3), np.uint8), [(19, 3, 4, 4)])
    with pytest.raises(ValueError, match="empty"):
        pg.evaluate([], [])
    with pytest.raises(ValueError, match="1 entries but there are 2"):
        pg.evaluate([Explanation({0: smap}), Explanation({0: smap})], [{}])
    with pytest.warns(MetricWarning, match="no saliency map had ground-truth boxes"):
        assert pg.evaluate([Explanation({0: smap})], [{5: [(0, 0, 1, 1)]}]) == {
            "pointing_game": 0.0
        }


# ==================================================================== InsertionDeletionAUC


@pytest.mark.parametrize("steps", [7, 30])
def test_insertion_deletion_curves_are_known_exactly(visible, image, region_first_map, steps):
    metric, region = visible
    k = counts(steps)
    n, r = H * W, int(region.sum())
    res = metric.evaluate_maps([region_first_map, region_first_map], [0, 1], [image, image],
                               steps)
    # class 0 = fraction of visible pixels, whatever the order
    np.testing.assert_allclose(res.insertion_curve[0], k / n, atol=1e-6)
    np.testing.assert_allclose(res.deletion_curve[0], 1 - k / n, atol=1e-6)
    # class 1 = visible fraction of REGION, which this map ranks first
    np.testing.assert_allclose(res.insertion_curve[1], np.minimum(k, r) / r, atol=1e-6)
    np.testing.assert_allclose(res.deletion_curve[1], 1 - np.minimum(k, r) / r, atol=1e-6)
    for m, cls in enumerate((0, 1)):
        expected = trapezoid_auc(res.insertion_curve[m])
        assert res.insertion[m] == pytest.approx(expected, abs=1e-6)
    assert res.insertion[0] == pytest.approx(trapezoid_auc(k / n), abs=1e-6)
    assert res.insertion[1] == pytest.approx(trapezoid_auc(np.minimum(k, r) / r), abs=1e-6)
    assert res.deletion[1] == pytest.approx(trapezoid_auc(1 - np.minimum(k, r) / r), abs=1e-6)
    assert res.num_inferences == 2 * 2 * (steps + 1)
    # __call__ gives the same numbers
    one = metric(region_first_map, 1, image, steps=steps)
    assert one == {"insertion": res.insertion[1], "deletion": res.deletion[1]}


def test_reversed_map_swaps_insertion_and_deletion(visible, image, region_first_map):
    metric, region = visible
    steps, r, n = 12, int(region.sum()), H * W
    k = counts(steps)
    good = metric(region_first_map, 1, image, steps)
    worst = metric(-region_first_map, 1, image, steps)  # REGION ranked last
    assert good["insertion"] > 0.9 and good["deletion"] < 0.1
    assert worst["insertion"] < worst["deletion"]  # negative control
    assert worst["insertion"] == pytest.approx(
        trapezoid_auc(np.clip(k - (n - r), 0, r) / r), abs=1e-6)


def test_uint8_maps_rank_by_value_not_by_wrapped_negation(visible, image):
    """Explanation maps are uint8; negating uint8 wraps (the reference's order)."""
    metric, region = visible
    steps, r = 10, int(region.sum())
    u8 = (np.random.default_rng(3).random((H, W)) * 100 + 1).astype(np.uint8)
    u8[region > 0] = 255
    u8[0, :] = 0
    got = metric(u8, 1, image, steps)
    k = counts(steps)
    assert got["insertion"] == pytest.approx(trapezoid_auc(np.minimum(k, r) / r), abs=1e-6)
    wrapped = np.argsort(-u8.flatten())  # what the reference does
    assert not np.array_equal(wrapped[:r], pixel_order(u8)[:r])
    assert set(pixel_order(u8)[:r]) == set(np.flatnonzero(region))


def test_per_image_map_is_scored_on_the_top1_class(visible, image, region_first_map):
    metric, _ = visible
    # the unmasked image is fully visible: both scores are 1.0, argmax picks class 0
    res = metric.evaluate_maps([region_first_map], [None], [image], 5)
    assert res.class_indices.tolist() == [0]
    e = Explanation({"per_image_map": region_first_map})
    got = metric.evaluate([e], [image], steps=5)
    assert got["insertion"] == pytest.approx(res.insertion[0])
    assert got["delta"] == pytest.approx(got["insertion"] - got["deletion"])


@pytest.fixture(scope="module")
def planted_batchable(planted):
    return batchable(planted)


def planted_raw(pm, seed=0):
    """The planted test image as a raw (H, W, 3) float image for preprocess_fn."""
    return np.ascontiguousarray(planted_image(pm, "random", seed=seed)[0].transpose(1, 2, 0))


def test_batched_and_one_at_a_time_give_identical_numbers(planted, planted_batchable):
    steps = 9
    rng = np.random.default_rng(4)
    images = [planted_raw(planted, s) for s in (0, 1)]
    explanations = [Explanation({k: rng.random((56, 56)).astype(np.float32) for k in range(3)})
                    for _ in images]
    batched = InsertionDeletionAUC(planted_batchable, hwc_to_nchw, logits, precision=F32,
                                   batch_size=8, num_requests=3)
    runs = []
    original_run = batched.engine.run

    def counting_run(num_items, fill, consume, **kw):
        runs.append(num_items)
        return original_run(num_items, fill, consume, **kw)

    batched.engine.run = counting_run
    got = batched.evaluate(explanations, images, steps=steps)
    assert runs == [2 * 3 * 2 * (steps + 1)]  # every perturbed image, one engine run
    assert batched.engine.batch_size == 8

    single = InsertionDeletionAUC(planted.model, hwc_to_nchw, logits, precision=F32,
                                  batch_size=1, num_requests=1)
    per_map = [single(smap, k, img, steps) for e, img in zip(explanations, images)
               for k, smap in e.saliency_map.items()]
    # a plain synchronous loop, one compiled_model(x) per image, as the reference does it
    compiled = ov.Core().compile_model(planted.model, "CPU", {"INFERENCE_PRECISION_HINT": F32})
    plain = []
    for e, img in zip(explanations, images):
        for k, smap in e.saliency_map.items():
            rows, cols = np.unravel_index(np.argsort(-smap.flatten()), smap.shape)
            ins, dele = [], []
            for i in range(steps + 1):
                num = int(i * smap.size / steps)
                a, b = np.zeros_like(img), img.copy()
                a[rows[:num], cols[:num]] = img[rows[:num], cols[:num]]
                b[rows[:num], cols[:num]] = 0
                ins.append(compiled(hwc_to_nchw(a))[0][0, k])
                dele.append(compiled(hwc_to_nchw(b))[0][0, k])
            plain.append({"insertion": AUC(np.array(ins)), "deletion": AUC(np.array(dele))})
    assert per_map == plain
    assert got["insertion"] == pytest.approx(np.mean([p["insertion"] for p in plain]), abs=1e-12)
    assert got["deletion"] == pytest.approx(np.mean([p["deletion"] for p in plain]), abs=1e-12)
    assert got["insertion"] != got["deletion"]


def test_uint8_nhwc_model_takes_the_raw_image_as_it_is():
    """The seed walkthrough's input convention: a uint8 NHWC batch, normalised in the graph."""
    pm = planted_cnn(size=56, layout="NHWC", element_type="u8")
    raw = planted_image(pm, "random", seed=2)[0]  # (56, 56, 3) uint8
    smap = np.random.default_rng(8).random((56, 56)).astype(np.float32)
    add_batch = lambda im: np.asarray(im)[None]  # noqa: E731
    metric = InsertionDeletionAUC(pm.model, add_batch, logits, precision=F32)
    assert metric.engine.input.dtype == np.uint8 and metric.engine.input.layout == "NHWC"
    got = metric(smap, 2, raw, steps=6)
    compiled = ov.Core().compile_model(pm.model, "CPU", {"INFERENCE_PRECISION_HINT": F32})
    order = np.argsort(-smap.flatten())
    curves = {"insertion": [], "deletion": []}
    for i in range(7):
        shown = np.zeros(smap.size, bool)
        shown[order[: int(i * smap.size / 6)]] = True
        shown = shown.reshape(56, 56, 1)
        curves["insertion"].append(compiled(np.where(shown, raw, 0)[None])[0][0, 2])
        curves["deletion"].append(compiled(np.where(shown, 0, raw)[None])[0][0, 2])
    assert got == {k: AUC(np.array(v)) for k, v in curves.items()}
    # ADCC's masked image is float: it is rounded into the uint8 input, not truncated
    adcc = ADCC(pm.model, add_batch, logits, StubExplainer(smap), precision=F32)
    result = adcc(smap, 2, raw)
    masked = np.clip(np.rint(raw * smap[:, :, None]), 0, 255).astype(np.uint8)
    on_input = compiled(raw[None])[0][0, 2]
    on_masked = compiled(masked[None])[0][0, 2]
    assert result["average_drop"] == pytest.approx(
        max(0.0, on_input - on_masked) / on_input, rel=1e-6)


def test_insertion_deletion_bad_input(visible, image, region_first_map):
    metric, _ = visible
    with pytest.raises(ValueError, match="20x25 .* but the saliency map is 20x24"):
        metric(region_first_map, 0, np.zeros((H, W + 1, 3), np.float32))
    for steps in (0, -3):
        with pytest.raises(ValueError, match="steps must be a positive int"):
            metric(region_first_map, 0, image, steps)
    for steps in (2.5, True, "10"):
        with pytest.raises(TypeError, match="steps must be a positive int"):
            metric(region_first_map, 0, image, steps)
    with pytest.raises(ValueError, match="empty"):
        metric.evaluate([], [], steps=5)
    with pytest.raises(ValueError, match="no saliency maps"):
        metric.evaluate([Explanation({})], [image], steps=5)
    with pytest.raises(ValueError, match="0 entries but there are 1"):
        metric.evaluate([Explanation({0: region_first_map})], [], steps=5)
    bad = region_first_map.copy()
    bad[3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        metric(bad, 0, image, 5)
    with pytest.raises(ValueError, match="class index 7 is out of range"):
        metric(region_first_map, 7, image, 5)
    with pytest.raises(ValueError, match="class_idx must be >= 0"):
        metric(region_first_map, -1, image, 5)

    def in_place(im):
        im -= 0.5
        return hwc_to_nchw(im)

    other = InsertionDeletionAUC(metric.model, in_place, logits, precision=F32)
    with pytest.raises(ValueError, match="modify the image it was given in place"):
        other(region_first_map, 0, image, 5)


# ==================================================================================== ADCC


class StubExplainer:
    """Returns a fixed map for any input and records its calls."""

    def __init__(self, smap):
        self.smap = smap
        self.calls = []

    def __call__(self, data, **kwargs):
        self.calls.append((np.array(data, copy=True), kwargs))
        return Explanation({kwargs["targets"]: self.smap}, num_inferences=3)


def hand_adcc(smap, again, image, score):
    """ADCC from its definition, independently of salvo's code."""
    unit = smap
    if not (0 <= smap.min() and smap.max() <= 1):
        unit = (smap - smap.min()) / (smap.max() - smap.min())
    masked = image * unit[:, :, None]
    drop = max(0.0, score(image) - score(masked)) / score(image)
    again = (again - again.min()) / (again.max() - again.min())
    coherency = (np.corrcoef(unit.ravel(), again.ravel())[0, 1] + 1) / 2
    complexity = unit.mean()
    adcc = 3 / (1 / coherency + 1 / (1 - complexity) + 1 / (1 - drop))
    return {"adcc": adcc, "coherency": coherency, "complexity": complexity,
            "average_drop": drop}, masked


@pytest.fixture(scope="module")
def mean_model():
    return mean_intensity_model()


def test_adcc_matches_its_definition(mean_model, image):
    rng = np.random.default_rng(5)
    smap = rng.random((H, W)) * 3 - 1  # outside [0, 1]: min-max scaled first
    again = rng.random((H, W)) + smap
    explainer = StubExplainer(again)
    metric = ADCC(mean_model, hwc_to_nchw, logits, explainer, precision=F32, num_masks=77)
    got = metric(smap, 1, image)
    expected, masked = hand_adcc(smap, again, image, lambda im: float(im[:, :, 0].mean()))
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert 0 < got["adcc"] < 1
    (data, kwargs), = explainer.calls
    np.testing.assert_allclose(data, masked, rtol=1e-5, atol=1e-7)  # float32 scaling
    assert kwargs == {"targets": 1, "colormap": False, "scaling": False, "num_masks": 77}
    assert metric.num_inferences == 2 and metric.explainer_inferences == 3
    # a map already in [0, 1] is used as it is (not re-scaled)
    unit = np.clip(rng.random((H, W)) * 0.5 + 0.2, 0, 1)
    got = metric(unit, 0, image)
    assert got["complexity"] == pytest.approx(unit.mean())


def test_adcc_evaluate_averages_components_then_combines(mean_model, image):
    rng = np.random.default_rng(6)
    maps = [rng.random((H, W)), rng.random((H, W)) ** 3]
    again = rng.random((H, W))
    metric = ADCC(mean_model, hwc_to_nchw, logits, StubExplainer(again), precision=F32)
    images = [image, image[::-1].copy()]
    explanations = [Explanation({0: maps[0]}), Explanation({"per_image_map": maps[1]})]
    got = metric.evaluate(explanations, images)
    def scores(im):
        return np.array([im.mean(), im[:, :, 0].mean()])

    rows = []
    for smap, img, cls in zip(maps, images, (0, int(np.argmax(scores(images[1]))))):
        expected, _ = hand_adcc(smap, again, img, lambda im, c=cls: float(scores(im)[c]))
        rows.append(expected)
    for key in ("coherency", "complexity", "average_drop"):
        assert got[key] == pytest.approx(np.mean([r[key] for r in rows]), rel=1e-5), key
    assert got["adcc"] == pytest.approx(adcc_from_components(
        got["coherency"], got["complexity"], got["average_drop"]))
    assert metric.num_inferences == 2 + 2  # two images, two masked images, one run


def test_adcc_defined_results_and_bad_input(mean_model, image, caplog):
    rng = np.random.default_rng(7)
    metric = ADCC(mean_model, hwc_to_nchw, logits, StubExplainer(rng.random((H, W))),
                  precision=F32)
    with pytest.warns(MetricWarning, match="constant"):
        flat = metric(np.full((H, W), 0.3), 0, image)  # constant map: no correlation
    assert flat["coherency"] == 0.5
    assert all(np.isfinite(v) for v in flat.values())
    with pytest.warns(MetricWarning, match="constant"):
        black = metric(np.zeros((H, W)), 0, image)  # shows nothing: the score drops to 0
    assert black["average_drop"] == pytest.approx(1.0) and black["adcc"] == 0.0
    with pytest.raises(ValueError, match="same size"):
        metric(rng.random((H, W - 1)), 0, image)
    with pytest.raises(ValueError, match="empty"):
        metric.evaluate([], [])
    negative = ADCC(mean_intensity_model(offset=-5.0), hwc_to_nchw, logits,
                    StubExplainer(rng.random((H, W))), precision=F32)
    with pytest.raises(ValueError, match="positive confidences"):
        negative(rng.random((H, W)), 0, image)
    wrong_size = ADCC(mean_model, hwc_to_nchw, logits, StubExplainer(rng.random((7, 7))),
                      precision=F32)
    with pytest.raises(ValueError, match="resize=True"):
        wrong_size(rng.random((H, W)), 0, image)
    with pytest.raises(TypeError, match="explainer must be callable"):
        ADCC(mean_model, hwc_to_nchw, logits, None)


class ForeignExplainer:
    """Like another toolkit's explainer: its explanations do not report inferences."""

    def __init__(self, smap):
        self.smap = smap
        self.calls = []

    def __call__(self, data, **kwargs):
        self.calls.append(kwargs)
        return SimpleNamespace(saliency_map={kwargs["targets"]: self.smap})


def test_adcc_can_swap_its_explainer_and_takes_foreign_explanations(mean_model, image):
    """One ADCC (one compiled model) serves several explainers, as bench_quality.py uses it:
    assigning ``explainer`` and ``black_box_kwargs`` changes what re-explains; an explanation
    without ``num_inferences`` counts 0 explainer inferences."""
    rng = np.random.default_rng(8)
    smap = rng.random((H, W))
    again = rng.random((H, W)) + smap
    metric = ADCC(mean_model, hwc_to_nchw, logits, StubExplainer(again), precision=F32,
                  num_masks=5)
    first = metric(smap, 1, image)
    assert metric.explainer_inferences == 3
    foreign = ForeignExplainer(again)
    metric.explainer, metric.black_box_kwargs = foreign, {"preset": "speed"}
    second = metric(smap, 1, image)
    assert second == pytest.approx(first, rel=1e-6)  # the same re-explained map
    assert foreign.calls == [{"targets": 1, "colormap": False, "scaling": False,
                              "preset": "speed"}]
    assert metric.num_inferences == 2 and metric.explainer_inferences == 0


# ============================================================ planted ground truth, real methods


@pytest.fixture(scope="module")
def planted_maps(planted, planted_batchable):
    """{method: (raw image, Explanation of the three classes)} on the planted CNN."""
    from salvo.explainer.explainer import Explainer

    raw = planted_raw(planted, seed=11)
    out = {}
    rise = Explainer(planted_batchable, Task.CLASSIFICATION, preprocess_fn=hwc_to_nchw,
                     postprocess_fn=logits, explain_mode=ExplainMode.BLACKBOX,
                     explain_method=Method.RISE, precision=F32, progress=False)
    out["rise"] = (rise, rise(raw, targets=[0, 1, 2], colormap=False, num_masks=1000,
                              num_cells=7, seed=0))
    reci = Explainer(planted_batchable, Task.CLASSIFICATION, preprocess_fn=hwc_to_nchw,
                     explain_mode=ExplainMode.WHITEBOX, explain_method=Method.RECIPROCAM,
                     precision=F32)
    out["reciprocam"] = (reci, reci(raw, targets=[0, 1, 2], colormap=False))
    return raw, out


def planted_boxes(pm):
    """Ground truth per class: its region as an inclusive (x, y, w, h) box."""
    return {k: [(x0, y0, x1 - x0 - 1, y1 - y0 - 1)]
            for k, (y0, y1, x0, x1) in enumerate(pm.regions)}


@pytest.mark.parametrize("method", ["rise", "reciprocam"])
def test_planted_pointing_game_and_insertion_above_deletion(planted, planted_batchable,
                                                           planted_maps, method):
    raw, results = planted_maps
    _, explanation = results[method]
    assert all(m.shape == (56, 56) for m in explanation.saliency_map.values())
    boxes = planted_boxes(planted)
    assert PointingGame().evaluate([explanation], [boxes]) == {"pointing_game": 1.0}
    metric = InsertionDeletionAUC(planted_batchable, hwc_to_nchw, logits, precision=F32)
    maps = [explanation.saliency_map[k] for k in range(3)]
    res = metric.evaluate_maps(maps, [0, 1, 2], [raw] * 3, steps=28)
    assert np.all(res.insertion > res.deletion + 0.1), (res.insertion, res.deletion)
    # negative control: transposed maps (regions are off the diagonal) miss and insert worse
    flipped = Explanation({k: m.T.copy() for k, m in enumerate(maps)})
    assert PointingGame().evaluate([flipped], [boxes]) == {"pointing_game": 0.0}
    worse = metric.evaluate_maps([m.T for m in maps], [0, 1, 2], [raw] * 3, steps=28)
    assert np.all(worse.insertion < res.insertion)
    assert np.all(worse.deletion > res.deletion)


def test_planted_adcc_reexplains_with_the_same_explainer(planted, planted_batchable,
                                                         planted_maps):
    raw, results = planted_maps
    explainer, explanation = results["rise"]
    metric = ADCC(planted_batchable, hwc_to_nchw, logits, explainer, precision=F32,
                  num_masks=1000, num_cells=7, seed=0, progress=False)
    got = metric.evaluate([explanation], [raw])
    assert metric.explainer_inferences == 3 * 1001  # one RISE run per map
    assert all(np.isfinite(v) for v in got.values())
    assert 0.0 < got["adcc"] < 1.0
    assert got["coherency"] > 0.75  # the masked image still shows the region: similar map
    # negative control: a map on the wrong region keeps little of the class score
    wrong = Explanation({k: explanation.saliency_map[k].T.copy() for k in range(3)})
    bad = metric.evaluate([wrong], [raw])
    assert bad["average_drop"] > got["average_drop"]


def test_the_metric_contract_makes_a_metric_without_both_methods_abstract():
    from salvo.metrics import BaseMetric

    # the base class and a metric missing one of its two methods cannot be instantiated, and
    # the error names what is missing (as abc does)
    with pytest.raises(TypeError, match="__call__, evaluate"):
        BaseMetric()

    class PerMapOnly(BaseMetric):
        def __call__(self, saliency_map):
            return {"peak": float(np.max(saliency_map))}

    with pytest.raises(TypeError, match="evaluate"):
        PerMapOnly()

    class Peak(PerMapOnly):  # the missing method, defined by a subclass
        def evaluate(self, explanations):
            return {"peak": max(self(m)["peak"] for e in explanations
                                for m in e.saliency_map.values())}

    metric = Peak()
    assert metric(np.eye(3) * 2.0) == {"peak": 2.0}
    assert metric.evaluate([SimpleNamespace(saliency_map={0: np.eye(2) * 3.0})]) == {"peak": 3.0}
    # the three reference metrics are concrete, each with its own signatures
    for cls in (ADCC, InsertionDeletionAUC, PointingGame):
        assert cls.__abstractmethods__ == frozenset()
    assert PointingGame()(np.eye(3), [(0, 0, 1, 1)]) == {"pointing_game": 1.0}


def test_correlation_is_pearsons_and_undefined_for_a_constant_array():
    from salvo.metrics.adcc import correlation, pearson

    rng = np.random.default_rng(11)
    a = rng.random((9, 9))
    b = a + rng.random((9, 9))
    assert correlation(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], abs=1e-12)
    assert correlation(a, 3 * a + 1) == 1.0 and correlation(a, -a) == -1.0  # clipped exactly
    assert correlation(a, np.full_like(a, 0.5)) is None
    assert pearson(a, b) == correlation(a, b)
    with pytest.warns(MetricWarning, match="constant"):
        assert pearson(np.ones(5), a.ravel()[:5]) == 0.0
