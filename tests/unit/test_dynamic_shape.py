"""White-box methods on models whose input shape is dynamic, as ``openvino.convert_model`` makes
every PyTorch model (``[?,3,?,?]``): the target search and the branch run on a copy reshaped to
the data's shape (or to ``input_shape``), and give the maps of the same network converted with
a static shape."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from support import F32, F32_CONFIG, require

require("torch", "pip install torch==2.13.0", "Converting a PyTorch model")

import torch  # noqa: E402

import salvo as xai  # noqa: E402
from salvo.common import SALIENCY_MAP_OUTPUT_NAME  # noqa: E402
from salvo.methods.base import StreamJob  # noqa: E402
from salvo.methods.white_box.recipro_cam import ReciproCAM  # noqa: E402


def _small_cnn() -> torch.nn.Module:
    """Two convolutions, global average pooling and a linear layer (5 classes)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 5),
    ).eval()


@pytest.fixture(scope="module")
def converted() -> tuple[ov.Model, ov.Model]:
    """(dynamic, static): the small CNN converted with ``example_input`` ([?,3,?,?]) and with
    ``input=[1, 3, 32, 32]``."""
    net = _small_cnn()
    dynamic = ov.convert_model(net, example_input=torch.zeros(1, 3, 32, 32))
    static = ov.convert_model(net, input=[1, 3, 32, 32])
    return dynamic, static


def _images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def _saliency(model: ov.Model, x: np.ndarray) -> np.ndarray:
    compiled = ov.Core().compile_model(model, "CPU", F32_CONFIG)
    return np.asarray(compiled(x)[SALIENCY_MAP_OUTPUT_NAME])


def test_converted_model_really_is_dynamic(converted):
    dynamic, static = converted
    assert dynamic.inputs[0].get_partial_shape().is_dynamic
    assert static.inputs[0].get_partial_shape().is_static


def test_insert_xai_on_a_dynamic_model_with_input_shape_matches_the_static_conversion(converted):
    dynamic, static = converted
    xai_dynamic = xai.insert_xai(dynamic, xai.Task.CLASSIFICATION, input_shape=(3, 32, 32),
                                 embed_scaling=False)
    xai_static = xai.insert_xai(static, xai.Task.CLASSIFICATION, embed_scaling=False)
    assert dynamic.inputs[0].get_partial_shape().is_dynamic  # the user's model is untouched
    x = _images(1)
    expected = _saliency(xai_static, x)
    assert expected.shape == (1, 5, 16, 16)
    np.testing.assert_allclose(_saliency(xai_dynamic, x), expected, rtol=1e-4, atol=1e-5)
    # the batch stays dynamic: three images at once are the three maps of one image each
    three = _images(3, seed=1)
    maps = _saliency(xai_dynamic, three)
    for i in range(3):
        np.testing.assert_allclose(maps[i], _saliency(xai_static, three[i:i + 1])[0],
                                   rtol=1e-4, atol=1e-5)


def test_insert_xai_on_a_dynamic_model_without_a_shape_asks_for_input_shape(converted):
    dynamic, _ = converted
    with pytest.raises(ValueError, match=r"input_shape.*\(3, 224, 224\)") as info:
        xai.insert_xai(dynamic, xai.Task.CLASSIFICATION)
    assert "[?,3,?,?]" in str(info.value)


@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
def test_explainer_on_a_dynamic_model_builds_for_the_data_shape(converted, method):
    dynamic, static = converted
    explainer = xai.Explainer(dynamic, xai.Task.CLASSIFICATION, explain_method=method,
                              explain_mode=xai.ExplainMode.WHITEBOX, inference_precision=F32)
    reference = xai.Explainer(static, xai.Task.CLASSIFICATION, explain_method=method,
                              explain_mode=xai.ExplainMode.WHITEBOX, inference_precision=F32)
    x = _images(1, seed=2)
    got = explainer(x, targets=-1, resize=False, colormap=False)
    want = reference(x, targets=-1, resize=False, colormap=False)
    assert set(got.saliency_map) == set(want.saliency_map)
    for key, smap in want.saliency_map.items():
        np.testing.assert_array_equal(got.saliency_map[key], smap)
    # another size: a second XAI model, built for it (16 x 16 input -> 8 x 8 cells)
    small = explainer(_images(1, size=16, seed=3), targets=-1, resize=False, colormap=False)
    assert next(iter(small.saliency_map.values())).shape == (8, 8)


def test_whitebox_method_on_a_dynamic_model_explains_and_streams(converted):
    dynamic, static = converted
    method = ReciproCAM(dynamic, inference_precision=F32)
    reference = ReciproCAM(static, inference_precision=F32)
    x = _images(1, seed=4)
    np.testing.assert_array_equal(method.explain(x, targets=[0, 3]).maps,
                                  reference.explain(x, targets=[0, 3]).maps)
    np.testing.assert_array_equal(method.generate_saliency_map(x),
                                  reference.generate_saliency_map(x))
    results = []
    jobs = [StreamJob(_images(1, size=s, seed=s), targets=[1], tag=s)
            for s in (32, 32, 16, 32)]
    done = method.explain_stream(jobs, None, lambda job, r: results.append((job.tag, r)))
    assert done == 4
    assert [tag for tag, _ in results].count(32) == 3
    assert {tag: r.maps.shape for tag, r in results} == {32: (1, 16, 16), 16: (1, 8, 8)}
