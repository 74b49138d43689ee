"""The Explainer's contract: modes, methods, targets, keywords, bad input (planted models)."""

from __future__ import annotations

import logging

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

import salvo as xai
from salvo.explainer import ExplainMode
from salvo.testing.planted import planted_cnn, planted_image, planted_image_with_object
from salvo.common.targets import resolve_targets
from support import logits


@pytest.fixture(scope="module")
def pm():
    return planted_cnn(size=56)


@pytest.fixture(scope="module")
def x(pm):
    return planted_image(pm, "uniform")


def test_public_names_import():
    from salvo.explainer import ExplainMode as EM  # noqa: F401
    from salvo.explainer import Explanation  # noqa: F401
    from salvo.explainer.explanation import Explanation as E2  # noqa: F401

    for name in ("Explainer", "Explanation", "insert_xai", "Task", "Method", "ExplainMode",
                 "Preset"):
        assert hasattr(xai, name), name
    assert xai.Method("rise") is xai.Method.RISE
    assert xai.Task("detection") is xai.Task.DETECTION
    assert xai.ExplainMode("auto") is xai.ExplainMode.AUTO
    assert xai.Preset("quality") is xai.Preset.QUALITY


def test_whitebox_maps_match_insert_xai_in_plain_openvino(pm, x, tmp_path):
    explainer = xai.Explainer(pm.model, xai.Task.CLASSIFICATION, inference_precision="f32")
    assert explainer.explain_mode == ExplainMode.WHITEBOX
    assert explainer.explain_method == xai.Method.RECIPROCAM
    ours = explainer(x, targets=-1, resize=False, colormap=False)
    path = tmp_path / "xai.xml"
    ov.save_model(xai.insert_xai(pm.model, xai.Task.CLASSIFICATION), str(path),
                  compress_to_fp16=False)
    compiled = ov.Core().compile_model(ov.Core().read_model(path), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    plain = compiled(x)["saliency_map"][0]
    for k in range(3):
        np.testing.assert_array_equal(ours.saliency_map[k], plain[k])
        assert ours.saliency_map[k].shape == (7, 7) and ours.saliency_map[k].dtype == np.uint8


@pytest.mark.parametrize("k", [0, 1, 2])
def test_targets_by_index_name_and_list(pm, k):
    names = ["alpha", "beta", "gamma"]
    explainer = xai.Explainer(pm.model, xai.Task.CLASSIFICATION, inference_precision="f32")
    image = planted_image_with_object(pm, k)
    by_name = explainer(image, targets=names[k], label_names=names, resize=False,
                        colormap=False)
    by_index = explainer(image, targets=k, resize=False, colormap=False)
    assert by_name.targets == by_index.targets == [k]
    np.testing.assert_array_equal(by_name.saliency_map[k], by_index.saliency_map[k])
    both = explainer(image, targets=[names[k], (k + 1) % 3], label_names=names)
    assert both.targets == [k, (k + 1) % 3]
    assert all(type(t) is int for t in both.targets)


def test_target_errors_name_the_value(pm, x):
    explainer = xai.Explainer(pm.model, xai.Task.CLASSIFICATION)
    with pytest.raises(ValueError, match="class index 3 is out of range"):
        explainer(x, targets=3)
    with pytest.raises(ValueError, match="'delta' is not in label_names; did you mean"):
        explainer(x, targets="delta", label_names=["alpha", "beta", "delta1"])
    with pytest.raises(ValueError, match="'alpha' needs label_names"):
        explainer(x, targets="alpha")
    with pytest.raises(ValueError, match="targets is empty"):
        explainer(x, targets=[])
    with pytest.raises(ValueError, match="not a class index or label name"):
        explainer(x, targets=[1.5])
    assert resolve_targets(None, 4, None) == [0, 1, 2, 3]
    assert resolve_targets([2, 2, 1], 4, None) == [2, 1]


def test_keyword_arguments(pm, x):
    with pytest.raises(TypeError, match="'num_maskz'"):
        xai.Explainer(pm.model, xai.Task.CLASSIFICATION, num_maskz=10)
    explainer = xai.Explainer(pm.model, xai.Task.CLASSIFICATION)
    with pytest.raises(TypeError, match="'bogus'"):
        explainer(x, bogus=1)
    # a black-box keyword when AUTO ended on white-box: a warning naming it
    with pytest.warns(UserWarning, match="'num_masks'.*RECIPROCAM"):
        xai.Explainer(pm.model, xai.Task.CLASSIFICATION, num_masks=100)
    with pytest.warns(UserWarning, match="'num_cells'"):
        explainer(x, targets=0, num_cells=4)


def test_blackbox_call_keywords_override_constructor_keywords(pm, x):
    explainer = xai.Explainer(
        pm.model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
        explain_mode=ExplainMode.BLACKBOX, explain_method=xai.Method.RISE,
        num_masks=64, num_cells=4, progress=False, inference_precision="f32",
    )
    first = explainer(x, targets=0, resize=False, colormap=False)
    assert first.num_inferences == 64 + 1
    second = explainer(x, targets=0, num_masks=96, resize=False, colormap=False)
    assert second.num_inferences == 96 + 1
    seeded = explainer(x, targets=0, seed=5, resize=False, colormap=False)
    assert not np.array_equal(seeded.saliency_map[0], first.saliency_map[0])
    assert first.predictions[0].label == 0
    assert first.predictions[0].score == pytest.approx(0.5 + 0.02, abs=1e-4)  # planted logit


def test_mode_and_method_errors(pm, x):
    with pytest.raises(ValueError, match="black-box explanation needs postprocess_fn"):
        xai.Explainer(pm.model, xai.Task.CLASSIFICATION, explain_mode=ExplainMode.BLACKBOX,
                      explain_method=xai.Method.RISE)
    with pytest.raises(ValueError, match="RISE is a black-box method"):
        xai.Explainer(pm.model, xai.Task.CLASSIFICATION, explain_mode=ExplainMode.WHITEBOX,
                      explain_method=xai.Method.RISE)
    with pytest.raises(ValueError, match="RECIPROCAM is a white-box method"):
        xai.Explainer(pm.model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                      explain_mode=ExplainMode.BLACKBOX, explain_method="reciprocam")
    with pytest.raises(ValueError, match="explain_mode must be one of"):
        xai.Explainer(pm.model, xai.Task.CLASSIFICATION, explain_mode="grey")
    with pytest.raises(ValueError, match="task must be one of"):
        xai.Explainer(pm.model, "segmentation")
    with pytest.raises(ValueError, match=r"device 'GPU\.7' is not available"):
        xai.Explainer(pm.model, xai.Task.CLASSIFICATION, device_name="GPU.7")
    with pytest.raises(ValueError, match="target_layer 'no/such/node'|'no/such/node'"):
        xai.Explainer(pm.model, xai.Task.CLASSIFICATION, target_layer="no/such/node")


def test_bad_data(pm, x):
    explainer = xai.Explainer(pm.model, xai.Task.CLASSIFICATION)
    with pytest.raises(ValueError, match=r"shape \(1, 3, 28, 28\).*expects"):
        explainer(np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        bad = x.copy()
        bad[0, 0, 0, 0] = np.nan
        explainer(bad)
    with pytest.raises(ValueError, match="batch size 2"):
        explainer(np.concatenate([x, x]))
    with pytest.raises(ValueError, match="overlay_weight must be"):
        explainer(x, overlay=True, overlay_weight=2.0)
    a = ops.parameter([1, 3, 8, 8], np.float32, name="a")
    b = ops.parameter([1, 3, 8, 8], np.float32, name="b")
    with pytest.raises(ValueError, match="2 inputs"):
        xai.Explainer(ov.Model([ops.add(a, b)], [a, b]), xai.Task.CLASSIFICATION)


def test_model_from_path_and_logs(pm, tmp_path, caplog):
    path = tmp_path / "planted.xml"
    ov.save_model(pm.model, str(path))
    with caplog.at_level(logging.INFO, logger="salvo"):
        explainer = xai.Explainer(str(path), "classification")
    assert "Assigning preprocess_fn to identity function" in caplog.text
    assert "Explaining the model in white-box mode." in caplog.text
    assert explainer.task == xai.Task.CLASSIFICATION
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        xai.Explainer(tmp_path / "missing.xml", xai.Task.CLASSIFICATION)


def test_activation_map_key_and_shape(pm, x):
    explainer = xai.Explainer(pm.model, xai.Task.CLASSIFICATION,
                              explain_method=xai.Method.ACTIVATIONMAP)
    explanation = explainer(x, resize=False, colormap=False)
    assert explanation.targets == ["per_image_map"]
    amap = explanation.saliency_map["per_image_map"]
    assert amap.shape == (7, 7)
    y, x_ = np.unravel_index(amap.argmax(), amap.shape)
    y0, y1, x0, x1 = pm.activation_region
    assert y0 <= y < y1 and x0 <= x_ < x1
