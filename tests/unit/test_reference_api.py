"""The reference toolkit's API at its paths in salvo, with the reference's behaviour.

Facts about the reference (OpenVINO XAI 1.1.0) quoted here were established by calling it. Where
salvo deliberately differs, the test says so (``docs/migration.md`` lists every difference).
"""

from __future__ import annotations

import sys

import cv2
import matplotlib
import numpy as np
import openvino as ov
import pytest
from openvino.utils.data_helpers.wrappers import OVDict

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import salvo  # noqa: E402
from salvo.common import Method, Task  # noqa: E402
from salvo.errors import (  # noqa: E402
    ArgumentError,
    IgnoredArgumentWarning,
    MapShapeError,
    ModelTypeError,
    PlotWarning,
)
from salvo.explainer.explanation import (  # noqa: E402
    COLOR_MAPPED_LAYOUTS,
    GRAY_LAYOUTS,
    MULTIPLE_MAP_LAYOUTS,
    ONE_MAP_LAYOUTS,
    Explanation,
    Layout,
)
from salvo.testing import planted_cnn, planted_image  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def cnn():
    return planted_cnn()


def maps4(n: int = 5, h: int = 6, w: int = 8) -> np.ndarray:
    """(1, n, h, w) float32 maps; map k has its maximum at (k % h, k % w)."""
    m = np.zeros((1, n, h, w), np.float32)
    for k in range(n):
        m[0, k, k % h, k % w] = 1.0 + k
    return m


# ------------------------------------------------------------------------- Explanation


def test_explanation_from_an_array_of_class_maps():
    raw = maps4()
    e = Explanation(raw, targets=[3, 1], task=Task.CLASSIFICATION, label_names=list("abcde"))
    assert e.targets == [3, 1]  # the caller's order
    np.testing.assert_array_equal(e.saliency_map[3], raw[0, 3])
    assert e.shape == (6, 8)
    assert e.layout is Layout.MULTIPLE_MAPS_PER_IMAGE_GRAY
    assert e.total_num_targets == 5
    every = Explanation(raw, targets=-1, task=Task.CLASSIFICATION)
    assert every.targets == [0, 1, 2, 3, 4]
    assert Explanation(raw, targets=[-1], task=Task.CLASSIFICATION).targets == every.targets
    by_name = Explanation(raw, targets=["d", "b"], task=Task.CLASSIFICATION,
                          label_names=list("abcde"))
    assert by_name.targets == [3, 1]
    # ints and NumPy ints are the same keys
    assert 3 in e.saliency_map and np.int64(3) in e.saliency_map


def test_explanation_from_a_per_image_map_ignores_targets():
    raw = maps4()[:, 0]  # (1, h, w)
    e = Explanation(raw, targets=[3], task=Task.CLASSIFICATION)
    assert e.targets == ["per_image_map"]
    assert e.layout is Layout.ONE_MAP_PER_IMAGE_GRAY
    one = Explanation({"per_image_map": raw[0]}, targets="per_image_map", task=Task.CLASSIFICATION)
    assert one.targets == ["per_image_map"]  # one string target, not 13 characters


def test_explanation_from_a_dict_keeps_the_targets():
    maps = {k: np.full((4, 4), k, np.float32) for k in range(6)}
    e = Explanation(maps, targets=[5, 2], task=Task.CLASSIFICATION)
    assert e.targets == [5, 2]
    assert e.total_num_targets is None
    with pytest.raises(ValueError, match=r"\[7\].*no map"):
        Explanation(maps, targets=[2, 7], task=Task.CLASSIFICATION)


def test_explanation_errors_are_the_reference_classes():
    with pytest.raises(RuntimeError):  # the reference's class ...
        Explanation(np.zeros((2, 3, 4, 4)), targets=-1, task=Task.CLASSIFICATION)
    with pytest.raises(ValueError, match="batch"):  # ... and salvo's
        Explanation(np.zeros((2, 3, 4, 4)), targets=-1, task=Task.CLASSIFICATION)
    with pytest.raises(MapShapeError, match="empty"):
        Explanation(np.zeros((1, 0, 4, 4)), targets=-1, task=Task.CLASSIFICATION)
    with pytest.raises(ValueError, match=r"0\.\.4"):
        Explanation(maps4(), targets=[5], task=Task.CLASSIFICATION)
    with pytest.raises(ValueError, match="label_names"):
        Explanation(maps4(), targets=["cat"], task=Task.CLASSIFICATION)
    with pytest.raises(ValueError):  # the reference: ValueError; salvo: also a TypeError
        Explanation([np.zeros((4, 4))], targets=-1, task=Task.CLASSIFICATION)
    with pytest.raises(ValueError, match="2- or 3-dimensional"):
        Explanation({0: np.zeros((1, 2, 4, 4))}, targets=-1, task=Task.CLASSIFICATION)


def test_layout_sets():
    assert GRAY_LAYOUTS == {Layout.ONE_MAP_PER_IMAGE_GRAY, Layout.MULTIPLE_MAPS_PER_IMAGE_GRAY}
    assert COLOR_MAPPED_LAYOUTS == {Layout.ONE_MAP_PER_IMAGE_COLOR,
                                    Layout.MULTIPLE_MAPS_PER_IMAGE_COLOR}
    assert MULTIPLE_MAP_LAYOUTS == {Layout.MULTIPLE_MAPS_PER_IMAGE_GRAY,
                                    Layout.MULTIPLE_MAPS_PER_IMAGE_COLOR}
    assert ONE_MAP_LAYOUTS == {Layout.ONE_MAP_PER_IMAGE_GRAY, Layout.ONE_MAP_PER_IMAGE_COLOR}
    colour = Explanation({1: np.zeros((4, 4, 3), np.uint8)}, targets=-1, task=Task.CLASSIFICATION)
    assert colour.layout is Layout.MULTIPLE_MAPS_PER_IMAGE_COLOR


def test_save_names_as_the_reference(tmp_path):
    raw = (maps4() * 40).astype(np.uint8)
    e = Explanation(raw, targets=[0, 3], task=Task.CLASSIFICATION, label_names=list("abcde"))
    assert [p.name for p in e.save(tmp_path / "a")] == ["a.jpg", "d.jpg"]
    assert [p.name for p in e.save(tmp_path / "b", "pre_")] == ["pre_a.jpg", "pre_d.jpg"]
    scores = {0: 0.8512}
    names = [p.name for p in e.save(tmp_path / "c", prefix="p_", postfix="_conf_",
                                    confidence_scores=scores)]
    assert names == ["p_a_conf_0.85.jpg", "p_d_conf_.jpg"]
    plain = Explanation(raw, targets=[0, 3], task=Task.CLASSIFICATION)
    assert [p.name for p in plain.save(tmp_path / "d")] == ["0.jpg", "3.jpg"]
    det = Explanation(raw, targets=[0, 3], task=Task.DETECTION, label_names=list("abcde"))
    assert [p.name for p in det.save(tmp_path / "e")] == ["0.jpg", "3.jpg"]
    one = Explanation(raw[:, 0], targets=-1, task=Task.CLASSIFICATION)
    assert [p.name for p in one.save(tmp_path / "f")] == ["activation_map.jpg"]


def test_plot_skips_missing_classes_visibly():
    e = Explanation(maps4(), targets=[0, 1, 2], task=Task.CLASSIFICATION)
    e.plot(-1)
    assert len(plt.gcf().axes) == 3 and all(ax.get_visible() for ax in plt.gcf().axes)
    plt.close("all")
    with pytest.warns(PlotWarning, match=r"\[3\]"):
        e.plot([0, 3])
    assert [ax.get_title() for ax in plt.gcf().axes] == ["Class 0"]


def test_plot_rejects_a_4d_map():
    e = Explanation(maps4(), targets=[0, 1], task=Task.CLASSIFICATION)
    e.saliency_map[1] = np.zeros((1, 2, 3, 4))  # put in place, past the setter's check
    with pytest.raises(ValueError, match="2- or 3-dimensional"):
        e.plot()


# ------------------------------------------------------------------------- errors


def test_model_of_the_wrong_type_is_a_value_error_too(cnn):
    post = lambda outputs: np.asarray(outputs[0])  # noqa: E731
    for call in (
        lambda: salvo.Explainer(model=b"not a model", task=Task.CLASSIFICATION),
        lambda: salvo.Explainer(model=123, task=Task.CLASSIFICATION, postprocess_fn=post),
        lambda: salvo.methods.ReciproCAM(b"x"),
        lambda: salvo.methods.RISE(b"x", post),
        lambda: salvo.insert_xai(b"x", Task.CLASSIFICATION),
    ):
        with pytest.raises(ValueError) as info:
            call()
        assert isinstance(info.value, TypeError)  # salvo's class
        assert "bytes" in str(info.value) or "int" in str(info.value)
    assert issubclass(ModelTypeError, ValueError) and issubclass(ModelTypeError, TypeError)


def test_reference_assertions_are_assertion_errors_too():
    from salvo.explainer.utils import get_score
    from salvo.metrics import PointingGame

    e = Explanation(maps4(), targets=[0], task=Task.CLASSIFICATION)
    with pytest.raises(AssertionError, match="gt_bboxes"):
        PointingGame().evaluate([e, e], [{0: []}])
    with pytest.raises(AssertionError):
        get_score(np.zeros((2, 5)), 1)
    assert issubclass(ArgumentError, ValueError)


def test_pointing_game_label_names_and_per_image_targets():
    from salvo.metrics import PointingGame

    raw = maps4(3, 20, 30)
    named = Explanation(raw, targets=-1, task=Task.CLASSIFICATION)  # no label_names
    gt = [{"a": [(0, 0, 3, 3)], "b": [(0, 0, 3, 3)]}]
    with pytest.raises(AssertionError, match="label_names"):  # not a silent 0.0
        PointingGame().evaluate([named], gt)
    with pytest.raises(ValueError, match="label_names"):
        PointingGame().evaluate([named], gt)
    # with label_names the same boxes score: map a (max at (0, 0)) hits, b (at (1, 1)) too
    labelled = Explanation(raw, targets=-1, task=Task.CLASSIFICATION, label_names=["a", "b", "c"])
    with pytest.warns(salvo.errors.MetricWarning):  # class c has no box
        assert PointingGame().evaluate([labelled], gt)["pointing_game"] == 1.0
    per_image = Explanation({"per_image_map": raw[0, 2]}, targets="per_image_map",
                            task=Task.CLASSIFICATION)
    assert per_image.targets == ["per_image_map"]
    assert PointingGame().evaluate([per_image], [{"x": [(1, 1, 2, 2)]}])["pointing_game"] == 1.0
    assert PointingGame().evaluate([per_image], [{"x": [(10, 10, 2, 2)]}])["pointing_game"] == 0.0


# ------------------------------------------------------------------------- Explainer


@pytest.fixture(scope="module")
def whitebox(cnn):
    return salvo.Explainer(cnn.model, Task.CLASSIFICATION, explain_mode=salvo.ExplainMode.WHITEBOX,
                           precision="f32")


def test_constructor_arguments_in_a_call_are_ignored_with_a_warning(cnn, whitebox):
    x = planted_image(cnn, "random", 3)
    plain = whitebox(x, targets=[1], colormap=False, resize=False)
    with pytest.warns(IgnoredArgumentWarning, match="embed_scaling.*explain_method"):
        guided = whitebox(x, targets=[1], colormap=False, resize=False, embed_scaling=True,
                          explain_method=Method.RECIPROCAM)
    np.testing.assert_array_equal(guided.saliency_map[1], plain.saliency_map[1])
    with pytest.raises(TypeError, match="embed_scalling"):  # a typo is still an error
        whitebox(x, targets=[1], embed_scalling=True)


def test_explain_create_method_model_forward(cnn, whitebox):
    x = planted_image(cnn, "random", 4)
    a = whitebox.explain(x, targets=[0, 2], colormap=False)
    b = whitebox(x, targets=[0, 2], colormap=False)
    assert a.targets == b.targets == [0, 2]
    np.testing.assert_array_equal(a.saliency_map[2], b.saliency_map[2])
    assert a.total_num_targets == 3
    outputs = whitebox.model_forward(x)
    assert isinstance(outputs, OVDict)
    assert np.asarray(outputs["saliency_map"]).shape == (1, 3, 7, 7)
    method = whitebox.create_method(salvo.ExplainMode.WHITEBOX, Task.CLASSIFICATION)
    assert isinstance(method, salvo.methods.ReciproCAM) and method is not whitebox.method
    from salvo.testing import planted_vit

    with pytest.raises(RuntimeError, match="black-box"):  # as the reference: WHITEBOX failed
        salvo.Explainer(planted_vit().model, Task.CLASSIFICATION,
                        explain_mode=salvo.ExplainMode.WHITEBOX, explain_method=Method.RECIPROCAM)
    assert isinstance(whitebox.visualizer, salvo.explainer.Visualizer)


def test_vit_k_keyword(cnn):
    from salvo.methods import ViTReciproCAM
    from salvo.testing import planted_vit

    vit = planted_vit(static_batch=False)
    method = ViTReciproCAM(vit.model, k=1, prepare_model=False)
    assert method.build_params.num_blocks == 1
    explainer = salvo.Explainer(vit.model, Task.CLASSIFICATION,
                                explain_mode=salvo.ExplainMode.WHITEBOX, k=1)
    assert explainer.method.build_params.num_blocks == 1
    with pytest.raises(ValueError, match="k and num_blocks"):
        ViTReciproCAM(vit.model, k=2, num_blocks=1, prepare_model=False)


# ------------------------------------------------------------------------- explainer.utils


def test_targets_helpers():
    from salvo.explainer.utils import convert_targets_to_numpy, explains_all, get_target_indices

    np.testing.assert_array_equal(convert_targets_to_numpy(3), [3])
    np.testing.assert_array_equal(convert_targets_to_numpy([1, 2]), [1, 2])
    with pytest.raises(ValueError, match="dimensions"):
        convert_targets_to_numpy([[1, 2]])
    for yes in (-1, [-1], np.array([-1]), "-1", np.int64(-1), (-1,)):
        assert explains_all(yes), yes
    for no in (1, [-1, 2], [], None, -1.0, True, "cat"):
        assert not explains_all(no), no
    assert get_target_indices([3, 1]) == [3, 1]
    names = ["tabby, tabby cat", "tiger cat", "Egyptian cat"]
    # the caller's order (the reference returns label_names order), synonyms and case
    assert get_target_indices(["egyptian cat", "tabby"], names) == [2, 0]
    for bad, match in (([1.5], "int"), ([True], "int"), (["x"], "label_names"), ([], "empty"),
                       ([-2], "negative")):
        with pytest.raises(ValueError, match=match):
            get_target_indices(bad)


def test_preprocess_and_postprocess_functions():
    from salvo.explainer.utils import (
        ActivationType,
        get_postprocess_fn,
        get_preprocess_fn,
        get_score,
        postprocess_fn,
        preprocess_fn,
    )

    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    out = preprocess_fn(image)
    assert out.shape == (1, 4, 6, 3) and out.dtype == np.float64  # as the reference
    fn = get_preprocess_fn(change_channel_order=True, input_size=(12, 8), mean=[1, 2, 3],
                           std=[2, 2, 2], hwc_to_chw=True)
    got = fn(image)
    want = ((cv2.resize(image[:, :, ::-1].copy(), (12, 8)) - [1, 2, 3]) / 2).transpose(2, 0, 1)
    np.testing.assert_allclose(got, want[None])
    logits = np.array([[1.0, 3.0, 2.0]], np.float32)
    e = np.exp(logits - 3.0)
    softmax = e / e.sum()
    # a plain dict works (the reference reads x[0] first and fails on it)
    np.testing.assert_allclose(postprocess_fn({"logits": logits}, activation=ActivationType.SOFTMAX),
                               softmax, rtol=1e-6)
    np.testing.assert_allclose(get_postprocess_fn(activation="sigmoid")({"logits": logits}),
                               1 / (1 + np.exp(-logits)), rtol=1e-6)
    assert get_score(logits, 1) == 3.0
    assert get_score(logits[0], 1, ActivationType.SOFTMAX) == pytest.approx(softmax[0, 1])
    with pytest.raises(ValueError, match="activation"):
        postprocess_fn({"logits": logits}, activation="relu")


# ------------------------------------------------------------------------- common.utils


def test_common_utils():
    from salvo.common.utils import (
        format_to_bhwc,
        get_min_max,
        infer_size_from_image,
        is_bhwc_layout,
        sigmoid,
        softmax,
    )

    batch = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 10.0]])
    rows = softmax(batch)  # a batch of rows: the reference's broadcasting fails here
    np.testing.assert_allclose(rows.sum(axis=1), [1.0, 1.0])
    np.testing.assert_allclose(rows[1], softmax(batch[1]))
    assert np.all(np.isfinite(sigmoid(np.array([-1000.0, 0.0, 1000.0]))))
    assert sigmoid(np.array([0.0]))[0] == 0.5
    lo, hi = get_min_max(np.array([[1, 5, 3], [2, 0, 9]]))
    assert lo.tolist() == [1, 0] and hi.tolist() == [5, 9]
    assert is_bhwc_layout(np.zeros((1, 10, 20, 3)))
    assert not is_bhwc_layout(np.zeros((1, 3, 10, 20)))
    assert not is_bhwc_layout(np.zeros((1, 4, 4, 4)))
    with pytest.raises(ValueError, match="batch"):
        is_bhwc_layout(np.zeros((10, 20, 3)))
    assert format_to_bhwc(np.zeros((3, 10, 20))).shape == (1, 10, 20, 3)
    assert infer_size_from_image(np.zeros((10, 20))) == (10, 20)
    assert infer_size_from_image(np.zeros((1, 3, 10, 20))) == (10, 20)
    assert infer_size_from_image(np.zeros((10, 20, 3))) == (10, 20)
    with pytest.raises(ValueError, match="5 dimensions"):
        infer_size_from_image(np.zeros((1, 1, 1, 1, 1)))


def test_scaling_differs_from_the_reference_only_on_bad_input():
    from salvo.common.utils import scaling

    assert scaling(np.array([[3.0]])).shape == (1, 1)  # the reference squeezes it to 0-d
    with pytest.raises(ValueError, match="NaN"):
        scaling(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        scaling(np.zeros((1, 2, 3, 4)))


def test_method_sets_list_the_registry():
    from salvo.common.parameters import (
        BlackBoxXAIMethods,
        ClassificationXAIMethods,
        DetectionXAIMethods,
        WhiteBoxXAIMethods,
    )
    from salvo.methods.base import MethodBase
    from salvo.methods.black_box.base import BlackBoxXAIMethod
    from salvo.methods.factory import REGISTRY

    registered = {(m, t): cls for (m, t), cls in REGISTRY.items()}
    assert ClassificationXAIMethods == {m for m, t in registered if t is Task.CLASSIFICATION}
    assert DetectionXAIMethods == {m for m, t in registered if t is Task.DETECTION}
    assert BlackBoxXAIMethods == {m for (m, _), c in registered.items()
                                  if issubclass(c, BlackBoxXAIMethod)}
    assert WhiteBoxXAIMethods == {m for (m, _), c in registered.items()
                                  if issubclass(c, MethodBase)
                                  and not issubclass(c, BlackBoxXAIMethod)}


# ------------------------------------------------------------------------- inserter, utils


def test_insert_xai_branch_into_model(cnn):
    from salvo.inserter.inserter import insert_xai_branch_into_model
    from salvo.inserter.model_parser import IRParserCls, ModelType

    model = cnn.model.clone()
    target = IRParserCls.get_target_node(model, ModelType.CNN)
    assert target.get_friendly_name() == cnn.target_layer
    assert IRParserCls.get_target_node(model, target_node_name=cnn.target_layer) is not None
    with pytest.raises(ValueError, match="nope"):
        IRParserCls.get_target_node(model, target_node_name="nope")
    from openvino import opset13 as ops

    mean = ops.reduce_mean(target.output(0), ops.constant(np.array([1], np.int64)), False)
    scaled = ops.multiply(mean, ops.constant(np.float32(1000.0)))
    xai = insert_xai_branch_into_model(model, scaled, set_uint8=True)
    assert salvo.common.has_xai(xai)
    assert [o.get_element_type() for o in xai.outputs][-1] == ov.Type.u8
    x = planted_image(cnn, "random", 1)
    out = ov.Core().compile_model(xai, "CPU")(x)
    assert np.asarray(out["saliency_map"]).shape == (1, 7, 7)
    logit = IRParserCls.get_logit_node(model)
    assert logit.get_type_name() != "Result"
    pool = IRParserCls.get_post_target_node(model, ModelType.CNN)
    assert [n.get_type_name() for n in pool] == ["ReduceMean"]
    assert IRParserCls.get_first_conv_node(model).get_type_name() == "Convolution"


def test_export_to_ir(tmp_path, monkeypatch):
    from pathlib import Path

    from salvo.utils.model_export import export_to_ir, export_to_onnx

    onnx = Path(__file__).parents[1] / "data" / "small_cnn.onnx"  # a 10-class CNN, 64 x 64
    target = tmp_path / "sub" / "model.xml"
    export_to_ir(onnx, target)
    assert target.is_file() and target.with_suffix(".bin").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.bin", "model.xml"]
    exported = ov.Core().read_model(str(target))
    assert [tuple(o.get_partial_shape().to_shape()) for o in exported.outputs] == [(1, 10)]
    with pytest.raises(FileNotFoundError):
        export_to_ir(tmp_path / "missing.onnx", tmp_path / "x.xml")
    # without PyTorch, export_to_onnx says what it needs (None in sys.modules: import fails)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="PyTorch"):
        export_to_onnx(object(), tmp_path / "m.onnx", None, False)


def test_adcc_re_explains_a_masked_uint8_picture():
    """The guide's metrics snippet: a model taking uint8 pictures, a preprocess_fn that passes
    the (float) masked picture on; salvo rounds it for the explainer instead of refusing it."""
    from salvo.metrics import ADCC

    pm = planted_cnn(layout="NHWC", element_type="u8")
    image = (planted_image(pm, "random", 5)[0]).astype(np.uint8)
    explainer = salvo.Explainer(pm.model, Task.CLASSIFICATION, preprocess_fn=lambda x: x[None],
                                explain_mode=salvo.ExplainMode.WHITEBOX, precision="f32")
    explanation = explainer(image, targets=1, colormap=False)
    adcc = ADCC(pm.model, lambda x: x[None], lambda o: np.asarray(o[0]), explainer,
                precision="f32")
    result = adcc.evaluate([explanation], [image])
    assert set(result) == {"adcc", "coherency", "complexity", "average_drop"}
    assert 0.5 < result["coherency"] <= 1.0  # the same method on the masked picture agrees
