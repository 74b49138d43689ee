"""White-box maps of a model whose outputs are not finite: a clear error, never a map."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
import salvo as xai
from salvo.testing.planted import planted_image
from support import F32


def with_scores(model: ov.Model, make) -> ov.Model:
    """The model with its scores output replaced by ``make(scores, input)`` (OpenVINO ops)."""
    m = model.clone()
    result = m.get_results()[0]
    edited = make(result.input_value(0), m.get_parameters()[0].output(0))
    result.input(0).replace_source_output(edited.output(0))
    m.validate_nodes_and_infer_types()
    return m


def nan_where_dark(scores: ov.Output, x: ov.Output) -> ov.Node:
    """``scores`` + log(mean(x) - 0.2): NaN for dark images (mean below 0.2), finite else."""
    mean = ops.reduce_mean(x, np.array([1, 2, 3], np.int64), keep_dims=False)
    shift = ops.log(ops.subtract(mean, np.float32(0.2)))
    return ops.add(scores, ops.unsqueeze(ops.multiply(shift, np.float32(0.0)),
                                         np.array([1], np.int64)))


@pytest.fixture(scope="module")
def nan_model(planted):
    return with_scores(planted.model, nan_where_dark)


@pytest.mark.parametrize("method", [xai.Method.RECIPROCAM, xai.Method.ACTIVATIONMAP])
@pytest.mark.parametrize("embed_scaling", [True, False])
def test_nan_outputs_are_a_clear_error(planted, nan_model, method, embed_scaling):
    """Before the fix: an all-zero map (embed_scaling) or a NaN map, and no error."""
    explainer = xai.Explainer(nan_model, xai.Task.CLASSIFICATION, explain_method=method,
                              embed_scaling=embed_scaling, inference_precision=F32)
    assert explainer.explain_mode == xai.ExplainMode.WHITEBOX
    bright = planted_image(planted, "random", seed=1)
    dark = bright * 0.1
    # negative control: the same model on a bright image is finite and gives a real map
    good = explainer(bright, targets=-1, resize=False, colormap=False)
    assert all(np.isfinite(np.asarray(m, np.float64)).all() and np.ptp(m) > 0
               for m in good.saliency_map.values())
    with pytest.raises(ValueError, match=r"output 'logits' holds a non-finite value \(nan\)"):
        explainer(dark, targets=-1, resize=False, colormap=False)


def test_infinite_outputs_are_a_clear_error(planted):
    model = with_scores(planted.model, lambda s, x: ops.add(s, np.float32(np.inf)))
    explainer = xai.Explainer(model, xai.Task.CLASSIFICATION, inference_precision=F32)
    with pytest.raises(ValueError, match=r"non-finite value \(inf\)"):
        explainer(planted_image(planted, "random", seed=1), targets=0)


def test_explain_many_raises_at_the_nan_image(planted, nan_model):
    """The bulk white-box path (several images in flight) checks each image the same way."""
    explainer = xai.Explainer(nan_model, xai.Task.CLASSIFICATION, inference_precision=F32)
    bright = planted_image(planted, "random", seed=1)
    gen = explainer.explain_many([bright, bright * 0.1, bright], targets=0, resize=False,
                                 colormap=False)
    first = next(gen)
    assert np.ptp(first.saliency_map[0]) > 0
    with pytest.raises(ValueError, match=r"non-finite value \(nan\)"):
        next(gen)
