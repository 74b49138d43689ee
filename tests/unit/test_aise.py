"""AISE (classification and detection) and D-RISE on planted-ground-truth models."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from salvo.common import Method, Task
from salvo.errors import DetectionBoxWarning, PostprocessWarning
from salvo.kernels.gaussian import render_masks
from salvo.methods.factory import method_class
from salvo.methods.black_box.aise import (
    AISEClassification,
    AISEDetection,
    resolve_classification_params,
    resolve_detection_params,
)
from salvo.methods.black_box.drise import DRISE
from salvo.testing.planted import batchable, planted_cnn, planted_image
from scipy.optimize import direct
from support import F32, logits

SIZE = 56


@pytest.fixture(scope="module")
def aise(model):
    return AISEClassification(model, logits, precision=F32, batch_size=16, progress=False)


def in_region(y, x, region):
    y0, y1, x0, x1 = region
    return y0 <= y < y1 and x0 <= x < x1


def peak(m):
    return np.unravel_index(int(np.argmax(m)), m.shape)


def count_items(method):
    """Wrap the engine's run to count the items it infers."""
    engine = method.engine
    counter = {"items": 0, "runs": 0}
    original = engine.run

    def run(num_items, fill, consume, **kw):
        counter["items"] += num_items
        counter["runs"] += 1
        return original(num_items, fill, consume, **kw)

    engine.run = run
    return counter


# ------------------------------------------------------------------------ classification

@pytest.mark.parametrize("layout, element_type", [("NCHW", "f32"), ("NHWC", "u8")])
def test_class_k_map_peaks_in_region_k(layout, element_type):
    planted = planted_cnn(size=SIZE, layout=layout, element_type=element_type)
    aise = AISEClassification(batchable(planted.model), logits, precision=F32, batch_size=16,
                              progress=False)
    x = planted_image(planted, "uniform")
    result = aise.explain(x, -1, preset="speed")
    assert result.maps.shape == (3, SIZE, SIZE) and result.maps.dtype == np.uint8
    assert result.targets == [0, 1, 2]
    hits = []
    for k, region in enumerate(planted.regions):
        y, x_ = peak(result.maps[k])
        assert in_region(y, x_, region), f"class {k} map peaks at {(y, x_)}, not in {region}"
        hits.append((y, x_))
    # negative control: no peak lies in another class's region, and the transposed and the
    # flipped map of each class miss its region (the regions are off the diagonal)
    for k, (y, x_) in enumerate(hits):
        for j, region in enumerate(planted.regions):
            if j != k:
                assert not in_region(y, x_, region)
        assert not in_region(*peak(result.maps[k].T), planted.regions[k])
        assert not in_region(*peak(result.maps[k][::-1]), planted.regions[k])
    assert {k: p.label for k, p in result.predictions.items()} == {0: 0, 1: 1, 2: 2}


def reference_aise(compiled, x, target, budget, widths, eps, locally_biased):
    """The reference algorithm, written plainly: scipy's DIRECT calling a one-point objective
    (two synchronous batch-1 inferences, sigmoid when a score leaves [0, 1]), then the KDE over
    the first ``budget`` evaluations of each width, normalised per width, summed, normalised."""
    height, width = x.shape[2:]
    xs, ys = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    evaluations = 0

    def gaussian(cx, cy, s):
        g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * s * s))
        return g / g.max()

    def score(image):
        nonlocal evaluations
        evaluations += 1
        s = compiled(image.astype(np.float32))[0][0].astype(np.float64)
        if s.max() > 1 or s.min() < 0:
            s = 1 / (1 + np.exp(-s))
        return s[target]

    total = np.zeros((height, width))
    for sigma in widths:
        history = []

        def objective(p, sigma=sigma, history=history):
            g = gaussian(p[0], p[1], sigma)
            value = score(x * g) - score(x * (1 - g))
            history.append((p[0], p[1], value))
            return -value

        direct(objective, [(0, 1), (0, 1)], eps=eps, maxfun=budget,
               locally_biased=locally_biased)
        m = sum(v * gaussian(a, b, sigma) for a, b, v in history[:budget])
        if m.max() > 0:
            m = m / m.max()
        total += m
    return total / total.max(), evaluations


@pytest.mark.parametrize("locally_biased", [False, True])
def test_matches_the_reference_algorithm_with_fewer_inferences(planted, model,
                                                               locally_biased):
    compiled = ov.Core().compile_model(planted.model, "CPU", {"INFERENCE_PRECISION_HINT": F32})
    x = planted_image(planted, "random", seed=2)
    method = AISEClassification(model, logits, precision=F32, batch_size=7, progress=False)
    result = method.explain(x, [0, 2], preset="speed", scale_output=False,
                            locally_biased=locally_biased)
    assert result.maps.dtype == np.float32
    for i, target in enumerate([0, 2]):
        expected, their_inferences = reference_aise(
            compiled, x, target, 20, (0.1, 0.175, 0.25), 0.1, locally_biased
        )
        np.testing.assert_allclose(result.maps[i], expected, atol=1e-4)
        ours = 2 * 3 * 20
        assert their_inferences > ours, "scipy overshoots maxfun; salvo does not"
    assert result.num_inferences == 1 + 2 * 2 * 3 * 20


def test_inference_count_is_exact(planted, aise):
    counter = count_items(aise)
    x = planted_image(planted, "uniform")
    try:
        result = aise.explain(x, [1, 2], num_iterations_per_kernel=7, kernel_widths=[0.1, 0.3])
    finally:
        del aise.engine.run
    expected = 1 + 2 * 2 * 2 * 7  # unmasked + 2 images x 2 targets x 2 widths x 7 evaluations
    assert result.num_inferences == counter["items"] == expected
    history = result.extra["history"]
    assert history.shape == (2, 2, 7, 3)
    # the first evaluation of every search is the centre of the image
    np.testing.assert_array_equal(history[:, :, 0, :2], 0.5)
    # one engine run for the unmasked input, then one per DIRECT round (all searches together)
    assert counter["runs"] == 1 + result.extra["num_rounds"]
    assert result.extra["num_rounds"] < 7


def test_maps_are_identical_across_batch_sizes_and_requests(planted, model):
    x = planted_image(planted, "random", seed=3)
    maps, histories = [], []
    for batch_size in (1, 5, 16):
        for num_requests in (1, 3):
            method = AISEClassification(model, logits, precision=F32, batch_size=batch_size,
                                        num_requests=num_requests, progress=False)
            assert method.engine.batch_size == batch_size
            result = method.explain(x, -1, num_iterations_per_kernel=12,
                                    kernel_widths=[0.12, 0.2], scale_output=False)
            maps.append(result.maps)
            histories.append(result.extra["history"])
    for m, h in zip(maps[1:], histories[1:]):
        np.testing.assert_array_equal(m, maps[0])
        np.testing.assert_array_equal(h, histories[0])


# one evaluation cannot vary: the map is flagged as uninformative (tested in test_aise_numerics)
@pytest.mark.filterwarnings("ignore::salvo.errors.UninformativeMapWarning")
def test_probabilities_are_used_as_they_are(planted):
    """Scores inside [0, 1] (softmax) are not passed through a sigmoid; logits are."""
    soft = planted_cnn(size=SIZE, softmax=True)
    method = AISEClassification(batchable(soft.model), logits, precision=F32, batch_size=4,
                                progress=False)
    compiled = ov.Core().compile_model(soft.model, "CPU", {"INFERENCE_PRECISION_HINT": F32})
    x = planted_image(soft, "random", seed=1)
    result = method.explain(x, [1], num_iterations_per_kernel=1, kernel_widths=[0.2])
    g = render_masks([0.5], [0.5], [0.2], SIZE, SIZE)[0]
    p_keep = compiled(x * g)[0][0, 1]
    p_drop = compiled(x * (1 - g))[0][0, 1]
    assert result.extra["history"][0, 0, 0, 2] == pytest.approx(p_keep - p_drop, abs=1e-6)
    sigmoid = 1 / (1 + np.exp(-np.array([p_keep, p_drop])))
    assert abs((sigmoid[0] - sigmoid[1]) - (p_keep - p_drop)) > 1e-4  # the test can tell


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(kernel_widths=[0.1, 0.0]), ValueError, "kernel_widths must all be finite and > 0"),
        (dict(kernel_widths=[-0.2]), ValueError, "kernel_widths must all be finite and > 0"),
        (dict(kernel_widths=[]), ValueError, "kernel_widths must not be empty"),
        (dict(kernel_widths="wide"), ValueError, "kernel_widths must be a sequence"),
        (dict(num_iterations_per_kernel=0), ValueError, "num_iterations_per_kernel must be a"),
        (dict(num_iterations_per_kernel=2.5), ValueError, "num_iterations_per_kernel must be"),
        (dict(solver_epsilon=-0.1), ValueError, "solver_epsilon must be a finite number >= 0"),
        (dict(locally_biased="yes"), ValueError, "locally_biased must be True or False"),
        (dict(preset="fastest"), ValueError, "preset must be one of"),
        (dict(divisors=[7, 1]), ValueError, "divisors is a parameter of AISE for detection"),
        (dict(num_masks=100), TypeError, "unknown AISE parameter"),
    ],
)
def test_bad_parameters_fail_before_any_inference(planted, aise, params, error, match):
    counter = count_items(aise)
    try:
        with pytest.raises(error, match=match):
            aise.explain(planted_image(planted, "uniform"), 0, **params)
    finally:
        del aise.engine.run
    assert counter["runs"] == 0


def test_presets_follow_the_spec():
    speed = resolve_classification_params("speed")
    assert (speed.num_iterations_per_kernel, speed.kernel_widths) == (20, (0.1, 0.175, 0.25))
    assert resolve_classification_params().num_iterations_per_kernel == 50
    quality = resolve_classification_params("quality")
    np.testing.assert_allclose(quality.kernel_widths, np.linspace(0.075, 0.25, 5))
    assert quality.solver_epsilon == 0.1 and quality.locally_biased is False
    explicit = resolve_classification_params("speed", kernel_widths=np.array([0.3]))
    assert explicit.kernel_widths == (0.3,) and explicit.num_iterations_per_kernel == 20
    det = resolve_detection_params("quality")
    np.testing.assert_allclose(det.divisors, np.linspace(8, 1, 5))
    assert det.solver_epsilon == 0.05
    with pytest.raises(ValueError, match="kernel_widths is a parameter of AISE for classif"):
        resolve_detection_params(kernel_widths=[0.1])
    assert method_class(Method.AISE, Task.CLASSIFICATION) is AISEClassification
    assert method_class(Method.AISE, Task.DETECTION) is AISEDetection
    assert method_class(Method.RISE, Task.DETECTION) is DRISE


# ------------------------------------------------------------------------ detection

def region_boxes(planted):
    """The planted regions as xyxy boxes."""
    return np.array([[x0, y0, x1, y1] for (y0, y1, x0, x1) in planted.regions], np.float32)


def make_detector(planted, *, edit=None, batch_one=False):
    """A detection postprocess over the planted CNN: box k is region k with label k, scored by
    how bright region k is (sigmoid of its logit), so box k's evidence is region k only."""
    boxes = region_boxes(planted)

    def postprocess(outputs):
        z = np.asarray(outputs[0], np.float64)
        n = z.shape[0]
        if batch_one:
            z = z[:1]
            n = 1
        out = (np.broadcast_to(boxes, (n, len(boxes), 4)).copy(),
               1 / (1 + np.exp(-12 * (z - 0.25))),
               np.broadcast_to(np.arange(len(boxes)), (n, len(boxes))).copy())
        return edit(*out) if edit is not None else out

    return postprocess


@pytest.fixture(scope="module")
def detector(planted, model):
    return AISEDetection(model, make_detector(planted), precision=F32, batch_size=8,
                         progress=False)


def test_box_k_map_peaks_in_box_k(planted, detector):
    x = planted_image(planted, "uniform")
    counter = count_items(detector)
    try:
        result = detector.explain(x, -1, preset="speed")
    finally:
        del detector.engine.run
    assert result.targets == [0, 1, 2] and result.maps.shape == (3, SIZE, SIZE)
    assert result.num_inferences == counter["items"] == 1 + 3 * 3 * 20
    boxes = region_boxes(planted)
    for k, region in enumerate(planted.regions):
        assert in_region(*peak(result.maps[k]), region), f"box {k}"
        for j, other in enumerate(planted.regions):
            if j != k:
                assert not in_region(*peak(result.maps[k]), other)
        prediction = result.predictions[k]
        assert prediction.label == k and prediction.score > 0.9
        np.testing.assert_allclose(prediction.bounding_box, boxes[k])
    # widths follow the boxes: min(w, h) / divisors, normalised
    w = (boxes[:, 2:] - boxes[:, :2]).min(axis=1) / SIZE
    np.testing.assert_allclose(result.extra["kernel_widths"],
                               w[:, None] / np.array([7.0, 4.0, 1.0]))
    # every centre was searched inside the box grown by half its size a side
    history = result.extra["history"]
    for k, (x0, y0, x1, y1) in enumerate(boxes / SIZE):
        bw, bh = x1 - x0, y1 - y0
        assert np.all(history[k, :, :, 0] >= max(x0 - bw / 2, 0) - 1e-12)
        assert np.all(history[k, :, :, 0] <= min(x1 + bw / 2, 1) + 1e-12)
        assert np.all(history[k, :, :, 1] >= max(y0 - bh / 2, 0) - 1e-12)
        assert np.all(history[k, :, :, 1] <= min(y1 + bh / 2, 1) + 1e-12)


def test_detection_maps_are_identical_across_batch_sizes(planted, model, detector):
    x = planted_image(planted, "random", seed=4)
    expected = detector.explain(x, -1, num_iterations_per_kernel=9, scale_output=False)
    assert expected.reliability == {}  # AISE is not a Monte-Carlo average: no reliability
    for batch_size, num_requests in ((1, 1), (3, 2)):
        other = AISEDetection(model, make_detector(planted), precision=F32,
                              batch_size=batch_size, num_requests=num_requests,
                              progress=False)
        result = other.explain(x, -1, num_iterations_per_kernel=9, scale_output=False)
        np.testing.assert_array_equal(result.maps, expected.maps)
        np.testing.assert_array_equal(result.extra["history"], expected.extra["history"])


def test_drise_box_k_map_peaks_in_box_k(planted, model):
    drise = DRISE(model, make_detector(planted), precision=F32, batch_size=16, progress=False)
    x = planted_image(planted, "uniform")
    result = drise.explain(x, [2, 0], num_masks=600, num_cells=7, seed=5)
    assert result.targets == [2, 0] and result.num_inferences == 601
    assert set(result.reliability) == {2, 0}  # every D-RISE map reports its reliability
    assert all(0.5 < v <= 1.0 for v in result.reliability.values()), result.reliability
    for i, k in enumerate([2, 0]):
        assert in_region(*peak(result.maps[i]), planted.regions[k]), f"box {k}"
        assert not in_region(*peak(result.maps[i]), planted.regions[1])
        assert not in_region(*peak(result.maps[i].T), planted.regions[k])
    again = DRISE(model, make_detector(planted), precision=F32, batch_size=5, num_requests=1,
                  progress=False).explain(x, [2, 0], num_masks=600, num_cells=7, seed=5)
    np.testing.assert_array_equal(again.maps, result.maps)


@pytest.mark.parametrize("cls", [AISEDetection, DRISE])
def test_no_boxes_gives_an_empty_explanation(planted, model, cls):
    def nothing(boxes, scores, labels):
        return boxes[:, :0], scores[:, :0], labels[:, :0]

    method = cls(model, make_detector(planted, edit=nothing), precision=F32, progress=False)
    with pytest.warns(DetectionBoxWarning, match="found no box on this image"):
        result = method.explain(planted_image(planted, "uniform"), -1)
    assert result.maps.shape == (0, SIZE, SIZE)
    assert result.targets == [] and result.predictions == {} and result.num_inferences == 1
    with pytest.raises(ValueError, match="found no boxes"):
        method.explain(planted_image(planted, "uniform"), [0])


def test_degenerate_and_outside_boxes_are_skipped_with_a_warning(planted, model):
    def damage(boxes, scores, labels):
        boxes[:, 1] = [50, 30, 40, 20]  # x2 < x1: empty
        boxes[:, 2] = [-30, 40, -10, 52]  # left of the image
        return boxes, scores, labels

    method = AISEDetection(model, make_detector(planted, edit=damage), precision=F32,
                           progress=False)
    with pytest.warns(DetectionBoxWarning) as record:
        result = method.explain(planted_image(planted, "uniform"), -1,
                                num_iterations_per_kernel=3)
    assert result.targets == [0] and result.maps.shape == (1, SIZE, SIZE)
    text = "\n".join(str(w.message) for w in record)
    assert "skipping box 1 (x1=50, y1=30, x2=40, y2=20)" in text
    assert "skipping box 2" in text and "outside" in text


def test_boxes_past_the_border_are_clipped_with_a_warning(planted, model):
    def stretch(boxes, scores, labels):
        boxes[:, 0, 2] = 70.0  # box 0 ends 14 px right of the image
        return boxes, scores, labels

    method = AISEDetection(model, make_detector(planted, edit=stretch), precision=F32,
                           progress=False)
    with pytest.warns(DetectionBoxWarning, match=r"box 0 \(x1=32, y1=0, x2=70, y2=24\) extends "
                      "past"):
        result = method.explain(planted_image(planted, "uniform"), [0],
                                num_iterations_per_kernel=3)
    assert result.predictions[0].bounding_box[2] == 70.0  # reported as the model gave it
    assert result.extra["history"][0, :, :, 0].max() <= 1.0


@pytest.mark.parametrize("cls", [AISEDetection, DRISE])
def test_mismatched_detection_outputs_are_a_clear_error(planted, model, cls):
    def short_scores(boxes, scores, labels):
        return boxes, scores[:, :2], labels

    method = cls(model, make_detector(planted, edit=short_scores), precision=F32,
                 progress=False)
    with pytest.raises(ValueError, match="3 boxes, 2 scores and 3 labels"):
        method.explain(planted_image(planted, "uniform"), -1)

    def two_things(boxes, scores, labels):
        return boxes, scores

    method = cls(model, make_detector(planted, edit=two_things), precision=F32, progress=False)
    with pytest.raises(ValueError, match="must return three arrays"):
        method.explain(planted_image(planted, "uniform"), -1)


def test_detection_targets_are_box_indices(planted, detector):
    x = planted_image(planted, "uniform")
    with pytest.raises(ValueError, match="detection targets are box indices"):
        detector.explain(x, "person")
    with pytest.raises(ValueError, match="box index 5 is out of range"):
        detector.explain(x, [5])
    result = detector.explain(x, [2], num_iterations_per_kernel=2)
    assert result.targets == [2] and result.num_inferences == 1 + 3 * 2


def test_single_image_postprocess_falls_back_to_one_image_at_a_time(planted, model):
    method = AISEDetection(model, make_detector(planted, batch_one=True), precision=F32,
                           batch_size=8, progress=False)
    reference = AISEDetection(model, make_detector(planted), precision=F32, batch_size=8,
                              progress=False)
    x = planted_image(planted, "uniform")
    with pytest.warns(PostprocessWarning, match="one image at a time"):
        result = method.explain(x, [1], num_iterations_per_kernel=9)
    expected = reference.explain(x, [1], num_iterations_per_kernel=9)
    np.testing.assert_array_equal(result.maps, expected.maps)
