"""AISE on objectives that carry no information: saturated scores, constant detections."""

from __future__ import annotations

import warnings

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from salvo.errors import UninformativeMapWarning
from salvo.methods.black_box.aise import AISEClassification, AISEDetection
from salvo.methods.black_box.drise import DRISE
from salvo.testing.planted import planted_image
from support import F32, logits

SIZE = 56
FAST = dict(num_iterations_per_kernel=12, kernel_widths=[0.12, 0.2])


def with_scores(model: ov.Model, make) -> ov.Model:
    """The model with its scores output replaced by ``make(scores)`` (OpenVINO ops, f32)."""
    m = model.clone()
    result = m.get_results()[0]
    edited = make(result.input_value(0))
    result.input(0).replace_source_output(edited.output(0))
    m.validate_nodes_and_infer_types()
    return m


def test_saturated_logits_warn_that_the_map_is_uninformative(model, planted):
    """Logits >= 1e30 (in the graph, f32): the reference's sigmoid rule makes every score 1.0,
    so the objective is 0 everywhere. Before the fix: no warning."""
    saturated = with_scores(model, lambda s: ops.multiply(ops.add(s, np.float32(1.0)),
                                                          np.float32(1e30)))
    method = AISEClassification(saturated, logits, precision=F32, batch_size=8, progress=False)
    x = planted_image(planted, "random", seed=2)
    with pytest.warns(UninformativeMapWarning, match=r"AISE: the map of 2 of 2 target\(s\)"):
        result = method.explain(x, [0, 2], **FAST)
    assert (result.extra["history"][..., 2] == 0).all(), "every evaluation saturated"
    assert not result.maps.any()


def test_informative_logits_do_not_warn(model, planted):
    """Negative control: the same call on the planted logits gives a real map, no warning."""
    method = AISEClassification(model, logits, precision=F32, batch_size=8, progress=False)
    x = planted_image(planted, "random", seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninformativeMapWarning)
        result = method.explain(x, [0, 2], **FAST)
    assert (result.maps.max(axis=(1, 2)) == 255).all()


def test_a_constant_detector_gives_a_flat_map_and_a_warning(model, planted):
    """Detections that do not depend on the image: the objective is the same at every point,
    so a map would only show where DIRECT happened to sample. Before the fix: such a map (its
    peak at 255), no warning."""
    boxes = np.array([[[4.0, 4.0, 30.0, 30.0]]])

    def constant(outputs):
        n = np.asarray(outputs[0]).shape[0]
        return (np.repeat(boxes, n, axis=0), np.full((n, 1), 0.9), np.zeros((n, 1), np.int64))

    method = AISEDetection(model, constant, precision=F32, batch_size=8, progress=False)
    x = planted_image(planted, "random", seed=2)
    with pytest.warns(UninformativeMapWarning, match=r"AISE: the map of 1 of 1 target\(s\)"):
        result = method.explain(x, -1, num_iterations_per_kernel=12)
    assert not result.maps.any()
    assert result.predictions[0].score == pytest.approx(0.9)


def test_numpy_scalars_and_tuples_give_bit_equal_maps(model, planted):
    """A NumPy scalar is the Python number it holds; a tuple is the list."""
    method = AISEClassification(model, logits, precision=F32, batch_size=8, progress=False)
    x = planted_image(planted, "random", seed=2)
    reference = method.explain(x, [0, 2], num_iterations_per_kernel=12,
                               kernel_widths=[0.12, 0.2], solver_epsilon=0.1).maps
    same = method.explain(x, (0, 2), num_iterations_per_kernel=np.int64(12),
                          kernel_widths=(np.float64(0.12), np.float64(0.2)),
                          solver_epsilon=np.float64(0.1)).maps
    np.testing.assert_array_equal(same, reference)
    same = method.explain(x, np.array([0, 2]), num_iterations_per_kernel=12,
                          kernel_widths=np.array([0.12, 0.2]), solver_epsilon=0.1).maps
    np.testing.assert_array_equal(same, reference)
    # negative control: another width gives another map
    other = method.explain(x, [0, 2], num_iterations_per_kernel=12, kernel_widths=(0.12, 0.25),
                           solver_epsilon=0.1).maps
    assert not np.array_equal(other, reference)


def test_drise_names_the_box_whose_weights_do_not_vary(model, planted):
    """D-RISE runs RISE's accumulation with its own weights: box 1 is found with the same
    score on every masked image (flat, named by its box index), box 0's score follows the
    planted logit of class 0 (a real map)."""
    boxes = np.array([[[30.0, 0.0, 48.0, 24.0], [4.0, 4.0, 30.0, 30.0]]])

    def detector(outputs):
        z = np.asarray(outputs[0], np.float64)
        n = z.shape[0]
        scores = np.stack([1 / (1 + np.exp(-12 * (z[:, 0] - 0.25))), np.full(n, 0.8)], axis=1)
        return np.repeat(boxes, n, axis=0), scores, np.tile(np.array([0, 1]), (n, 1))

    drise = DRISE(model, detector, precision=F32, batch_size=8, progress=False)
    x = planted_image(planted, "uniform")
    with pytest.warns(UninformativeMapWarning, match=r"D-RISE: the map of 1 of 2 target\(s\) "
                                                     r"\(1\)") as record:
        result = drise.explain(x, [1, 0], num_masks=256, num_cells=7, seed=5)
    assert len(record) == 1
    assert result.targets == [1, 0]
    assert not result.maps[0].any() and result.maps[1].max() == 255
