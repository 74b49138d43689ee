"""White-box methods (graph edits) and insert_xai, on planted-ground-truth models."""

from __future__ import annotations

import logging

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops
from salvo.common import SALIENCY_MAP_OUTPUT_NAME, Method, Task
from salvo.methods.factory import insert_xai, resolve_whitebox_method
from salvo.methods.white_box import XAIInsertionError, find_target_layer, recipro_cam
from salvo.methods.white_box.graph import GraphIndex, TargetLayer, find_node
from salvo.methods.white_box.recipro_cam import closed_form_plan
from salvo.testing.planted import (
    planted_cnn,
    planted_detector,
    planted_image,
    planted_image_with_object,
    planted_vit,
)
from support import F32_CONFIG as F32

INSERT_LOGGER = "salvo"


def _run(model: ov.Model, x: np.ndarray) -> dict:
    res = ov.Core().compile_model(model, "CPU", F32)(x)
    return {next(iter(port.get_names()), str(i)): v for i, (port, v) in enumerate(res.items())}


def _saliency(model: ov.Model, x: np.ndarray) -> np.ndarray:
    return _run(model, x)[SALIENCY_MAP_OUTPUT_NAME]


def _argmax_cell(m: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(np.argmax(m), m.shape))  # type: ignore[return-value]


def _inside(cell: tuple[int, int], rect) -> bool:
    y0, y1, x0, x1 = rect
    return y0 <= cell[0] < y1 and x0 <= cell[1] < x1


def _op_signature(model: ov.Model) -> list[tuple]:
    return [
        (
            op.get_type_name(),
            op.get_friendly_name(),
            tuple(str(op.get_output_partial_shape(i)) for i in range(op.get_output_size())),
            tuple(len(op.output(i).get_target_inputs()) for i in range(op.get_output_size())),
        )
        for op in model.get_ordered_ops()
    ]


def _assert_planted_maps(pm, maps: np.ndarray) -> None:
    """Per class: argmax in its own region; negative controls: not in another class's region,
    and the transposed and flipped maps miss the region."""
    assert maps.shape == (1, pm.num_classes, pm.feature_size, pm.feature_size)
    for k, rect in enumerate(pm.cell_regions):
        m = maps[0, k].astype(np.float64)
        cell = _argmax_cell(m)
        assert _inside(cell, rect), (k, cell, rect)
        for j, other in enumerate(pm.cell_regions):
            if j != k:
                assert not _inside(cell, other)
        assert not _inside(_argmax_cell(m.T), rect)  # transposed map misses
        assert not _inside(_argmax_cell(m[:, ::-1]), rect)  # horizontally flipped map misses


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cnn():
    return planted_cnn()


@pytest.fixture(scope="module")
def vit():
    return planted_vit()


@pytest.fixture(scope="module")
def cnn_xai(cnn):
    return insert_xai(cnn.model, Task.CLASSIFICATION, Method.RECIPROCAM, embed_scaling=False)


# ------------------------------------------------------------------------------------ ReciproCAM


@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_reciprocam_planted_cnn(cnn, cnn_xai, kind):
    _assert_planted_maps(cnn, _saliency(cnn_xai, planted_image(cnn, kind, seed=2)))


def test_reciprocam_equals_the_analytic_map(cnn, cnn_xai):
    # the head of the planted CNN is linear: score_k at cell c = bias_k + [c in R_k] * cellmean / |R_k|
    x = planted_image(cnn, "random", seed=9)
    maps = _saliency(cnn_xai, x)[0]
    bias = _run(cnn.model, np.zeros_like(x))["logits"][0]
    c = cnn.cell
    cell_means = x[0].reshape(3, 7, c, 7, c).mean(axis=(0, 2, 4))
    for k, (y0, y1, x0, x1) in enumerate(cnn.cell_regions):
        expected = np.full((7, 7), bias[k], np.float64)
        expected[y0:y1, x0:x1] += cell_means[y0:y1, x0:x1] / ((y1 - y0) * (x1 - x0))
        np.testing.assert_allclose(maps[k], expected, atol=1e-5)


def test_reciprocam_object_image(cnn, cnn_xai):
    for k, rect in enumerate(cnn.cell_regions):
        maps = _saliency(cnn_xai, planted_image_with_object(cnn, k))
        assert _inside(_argmax_cell(maps[0, k]), rect)


def test_reciprocam_softmax_model_uses_scores_before_softmax(cnn, cnn_xai):
    sm = planted_cnn(softmax=True)
    x = planted_image(cnn, "random", seed=4)
    xai_sm = insert_xai(sm.model, Task.CLASSIFICATION, Method.RECIPROCAM, embed_scaling=False)
    out = _run(xai_sm, x)
    np.testing.assert_allclose(out[SALIENCY_MAP_OUTPUT_NAME], _saliency(cnn_xai, x), atol=1e-6)
    assert np.isclose(out["probabilities"].sum(), 1.0, atol=1e-5)  # the original output is kept


def test_reciprocam_uint8_nhwc_and_dynamic_batch(cnn, cnn_xai):
    u8 = planted_cnn(layout="NHWC", element_type="u8")
    x8 = planted_image(u8, "random", seed=6)
    xf = (x8.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
    ref = _saliency(cnn_xai, xf)
    maps8 = _saliency(insert_xai(u8.model, "classification", embed_scaling=False), x8)
    np.testing.assert_allclose(maps8, ref, atol=1e-5)
    _assert_planted_maps(u8, maps8)

    dyn = planted_cnn(static_batch=False)
    xai_dyn = insert_xai(dyn.model, "classification", embed_scaling=False)
    two = np.concatenate([xf, planted_image_with_object(dyn, 2)])
    maps = _saliency(xai_dyn, two)
    assert maps.shape == (2, 3, 7, 7)
    np.testing.assert_allclose(maps[:1], ref, atol=1e-5)
    assert _inside(_argmax_cell(maps[1, 2]), dyn.cell_regions[2])


def test_reciprocam_by_target_name_and_logging(cnn, caplog):
    with caplog.at_level(logging.INFO, logger=INSERT_LOGGER):
        model = insert_xai(
            cnn.model,
            "classification",
            "reciprocam",
            target_layer=cnn.target_layer,
            embed_scaling=False,
        )
    text = caplog.text
    assert f"Target insertion layer {cnn.target_layer} is provided." in text
    assert "Using ReciproCAM method (for CNNs)." in text
    assert "Insertion of the XAI branch into the model was successful." in text
    _assert_planted_maps(cnn, _saliency(model, planted_image(cnn, "random", seed=8)))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=INSERT_LOGGER):
        insert_xai(cnn.model, "classification")
    assert "Target insertion layer is not provided - trying to find it in auto mode." in caplog.text
    assert "Using ReciproCAM method (for CNNs)." in caplog.text


def test_auto_target_is_the_relu_feature_map(cnn, vit):
    t = find_target_layer(cnn.model)
    assert (t.kind, t.name, t.shape[1:]) == ("cnn", cnn.target_layer, (16, 7, 7))
    tv = find_target_layer(vit.model)
    assert (tv.kind, tv.name, len(tv.shape)) == ("transformer", vit.target_layer, 3)
    assert resolve_whitebox_method(cnn.model, "classification") is Method.RECIPROCAM
    assert resolve_whitebox_method(vit.model, "classification") is Method.VITRECIPROCAM


def test_pooling_fallback_target():
    # a feature map that is not produced by a convolution: only the global pooling identifies it
    p = ops.parameter([1, 16, 6, 6], ov.Type.f32, name="features")
    act = ops.relu(ops.multiply(p, ops.constant(np.float32(2.0))))
    act.set_friendly_name("features/relu")
    pooled = ops.reduce_mean(act, ops.constant(np.array([2, 3], np.int64)), False)
    w = np.zeros((16, 2), np.float32)
    w[0, 0] = w[1, 1] = 1.0
    logits = ops.matmul(pooled, ops.constant(w), False, False)
    model = ov.Model([logits], [p])
    t = find_target_layer(model)
    assert (t.name, t.found_by) == ("features/relu", "pooling")
    x = np.zeros((1, 16, 6, 6), np.float32)
    x[0, 0, 4, 1] = 1.0  # class 0 evidence at (4, 1), class 1 evidence at (0, 5)
    x[0, 1, 0, 5] = 1.0
    maps = _saliency(insert_xai(model, "classification", embed_scaling=False), x)
    assert _argmax_cell(maps[0, 0]) == (4, 1) and _argmax_cell(maps[0, 1]) == (0, 5)


# --------------------------------------------------------------------------------- ActivationMap


@pytest.mark.parametrize("variant", ["f32", "u8"])
def test_activation_map_peaks_on_activation_region(variant):
    pm = planted_cnn() if variant == "f32" else planted_cnn(layout="NHWC", element_type="u8")
    model = insert_xai(pm.model, Task.CLASSIFICATION, Method.ACTIVATIONMAP, embed_scaling=False)
    m = _saliency(model, planted_image(pm, "random", seed=1))
    assert m.shape == (1, 7, 7)
    assert _inside(_argmax_cell(m[0]), pm.activation_region)
    assert not _inside(_argmax_cell(m[0].T), pm.activation_region)
    assert not any(_inside(_argmax_cell(m[0]), r) for r in pm.cell_regions)


# ------------------------------------------------------------------------------- ViT-ReciproCAM


@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_vit_reciprocam_planted_vit(vit, kind, caplog):
    with caplog.at_level(logging.INFO, logger=INSERT_LOGGER):
        model = insert_xai(vit.model, Task.CLASSIFICATION, embed_scaling=False)
    assert "Using ViTReciproCAM method (for transformers)." in caplog.text
    _assert_planted_maps(vit, _saliency(model, planted_image(vit, kind, seed=12)))


def test_vit_reciprocam_variants(vit):
    x = planted_image(vit, "random", seed=13)
    ref = _saliency(
        insert_xai(
            vit.model,
            "classification",
            "vitreciprocam",
            target_layer=vit.target_layer,
            embed_scaling=False,
        ),
        x,
    )
    dyn = planted_vit(static_batch=False)
    np.testing.assert_allclose(
        _saliency(insert_xai(dyn.model, "classification", embed_scaling=False), x), ref, atol=1e-5
    )
    deep = planted_vit(depth=3)
    _assert_planted_maps(
        deep, _saliency(insert_xai(deep.model, "classification", embed_scaling=False), x)
    )
    one_hot = _saliency(
        insert_xai(
            vit.model, "classification", "vitreciprocam", embed_scaling=False, use_gaussian=False
        ),
        x,
    )
    _assert_planted_maps(vit, one_hot)
    assert not np.allclose(one_hot, ref)  # the Gaussian neighbourhood changes the map


def test_reciprocam_refuses_a_transformer(vit):
    with pytest.raises(XAIInsertionError, match="target_layer"):
        insert_xai(vit.model, "classification", Method.RECIPROCAM)


# ---------------------------------------------------------------------------------- embed scaling


def test_embed_scaling_uint8_per_map(cnn, cnn_xai, vit):
    x = planted_image(cnn, "random", seed=21)
    scaled = _saliency(insert_xai(cnn.model, "classification"), x)
    assert scaled.dtype == np.uint8 and scaled.shape == (1, 3, 7, 7)
    assert np.all(scaled.reshape(3, -1).min(axis=1) == 0)
    assert np.all(scaled.reshape(3, -1).max(axis=1) == 255)
    raw = _saliency(cnn_xai, x)[0].astype(np.float64)
    lo = raw.reshape(3, -1).min(axis=1)[:, None, None]
    hi = raw.reshape(3, -1).max(axis=1)[:, None, None]
    expected = np.rint(255 * (raw - lo) / (hi - lo + 1e-12))
    assert np.abs(scaled[0].astype(np.int32) - expected).max() <= 1
    act = _saliency(insert_xai(cnn.model, "classification", "activationmap"), x)
    assert act.dtype == np.uint8 and act.min() == 0 and act.max() == 255
    v = _saliency(insert_xai(vit.model, "classification"), planted_image(vit, "random"))
    assert v.dtype == np.uint8 and np.all(v.reshape(3, -1).max(axis=1) == 255)


# -------------------------------------------------------------------------------------- insert_xai


def test_round_trip_save_and_plain_openvino(cnn, cnn_xai, tmp_path):
    x = planted_image(cnn, "random", seed=30)
    path = tmp_path / "planted_xai.xml"
    ov.save_model(cnn_xai, str(path), compress_to_fp16=False)
    reloaded = ov.Core().read_model(str(path))
    names = [o.get_names() for o in reloaded.outputs]
    assert SALIENCY_MAP_OUTPUT_NAME in names[-1] and "logits" in names[0]
    out_plain = ov.Core().compile_model(reloaded, "CPU", F32)(x)
    np.testing.assert_allclose(
        out_plain[SALIENCY_MAP_OUTPUT_NAME], _saliency(cnn_xai, x), atol=1e-6
    )
    np.testing.assert_allclose(out_plain["logits"], _run(cnn.model, x)["logits"], atol=1e-6)
    assert reloaded.get_rt_info(["xai", "method"]).astype(str) == "reciprocam"
    # the default save compresses constants to fp16: close, and the planted answer still holds
    ov.save_model(cnn_xai, str(tmp_path / "fp16.xml"))
    fp16 = ov.Core().compile_model(str(tmp_path / "fp16.xml"), "CPU", F32)(x)[
        SALIENCY_MAP_OUTPUT_NAME
    ]
    np.testing.assert_allclose(fp16, _saliency(cnn_xai, x), atol=1e-3)
    _assert_planted_maps(cnn, fp16)


def test_vit_round_trip(vit, tmp_path):
    model = insert_xai(vit.model, "classification")
    path = tmp_path / "vit_xai.xml"
    ov.save_model(model, str(path), compress_to_fp16=False)
    x = planted_image(vit, "random", seed=31)
    reloaded = ov.Core().read_model(str(path))
    out = ov.Core().compile_model(reloaded, "CPU", F32)(x)[SALIENCY_MAP_OUTPUT_NAME]
    np.testing.assert_array_equal(out, _saliency(model, x))


def test_model_with_saliency_map_is_returned_unchanged(cnn_xai):
    assert insert_xai(cnn_xai, "classification") is cnn_xai


def test_original_model_is_not_mutated(cnn, vit):
    for pm in (cnn, vit, planted_cnn(softmax=True)):
        before = _op_signature(pm.model)
        x = planted_image(pm, "random", seed=1)
        ref = _run(pm.model, x)
        insert_xai(pm.model, "classification", embed_scaling=True)
        insert_xai(pm.model, "classification", embed_scaling=False)
        assert _op_signature(pm.model) == before
        assert len(pm.model.outputs) == 1
        after = _run(pm.model, x)
        for k in ref:
            np.testing.assert_array_equal(after[k], ref[k])


def test_unknown_target_layer_names_it(cnn):
    with pytest.raises(ValueError, match=r"backbone/relux.*backbone/relu"):
        insert_xai(cnn.model, "classification", target_layer="backbone/relux")


def test_no_trunk_no_pooling_asks_for_target_layer():
    p = ops.parameter([1, 10], ov.Type.f32)
    logits = ops.add(
        ops.matmul(p, ops.constant(np.ones((10, 4), np.float32)), False, False),
        ops.constant(np.zeros(4, np.float32)),
    )
    model = ov.Model([logits], [p])
    with pytest.raises(XAIInsertionError, match="target_layer"):
        insert_xai(model, "classification")
    with pytest.raises(XAIInsertionError, match="target_layer"):
        insert_xai(model, "classification", "activationmap")


def test_argument_errors(cnn):
    with pytest.raises(TypeError, match="num_masks"):
        insert_xai(cnn.model, "classification", "reciprocam", num_masks=10)
    with pytest.raises(ValueError, match="not a white-box method"):
        insert_xai(cnn.model, "classification", "rise")
    with pytest.raises(ValueError, match="task"):
        insert_xai(cnn.model, "segmentation")
    with pytest.raises(ValueError, match="detection"):
        insert_xai(cnn.model, "classification", "detclassprobabilitymap")


# ------------------------------------------------------------------------- DetClassProbabilityMap


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_det_class_probability_map_planted(layout):
    pm = planted_detector(layout=layout)
    heads = pm.target_layer.split(",")
    model = insert_xai(
        pm.model, Task.DETECTION, target_layer=heads, num_anchors=[2, 3], embed_scaling=False
    )
    maps = _saliency(model, planted_image(pm))
    assert maps.shape == (1, 2, 23, 23)
    np.testing.assert_allclose(maps.sum(axis=1), 1.0, atol=1e-5)  # softmax over classes
    for k, (y0, y1, x0, x1) in enumerate(pm.regions):
        cell = _argmax_cell(maps[0, k])
        # map pixel -> input pixel
        py, px = (cell[0] + 0.5) * pm.input_size / 23, (cell[1] + 0.5) * pm.input_size / 23
        assert y0 <= py < y1 and x0 <= px < x1, (k, cell)
        ty, tx = (cell[1] + 0.5) * pm.input_size / 23, (cell[0] + 0.5) * pm.input_size / 23
        assert not (y0 <= ty < y1 and x0 <= tx < x1)  # transposed location misses
    scaled = _saliency(
        insert_xai(pm.model, "detection", target_layer=heads, num_anchors=[2, 3], layout=layout),
        planted_image(pm),
    )
    assert scaled.dtype == np.uint8 and np.all(scaled.reshape(2, -1).max(axis=1) == 255)


def test_det_flattened_heads_and_single_class():
    pm = planted_detector(num_classes=1)
    flat = [
        op.get_friendly_name()
        for op in pm.model.get_ordered_ops()
        if op.get_type_name() == "Reshape" and op.get_output_partial_shape(0).rank.get_length() == 3
    ]
    maps = _saliency(
        insert_xai(
            pm.model, "detection", target_layer=flat, num_anchors=[2, 3], embed_scaling=False
        ),
        planted_image(pm),
    )
    assert maps.shape == (1, 1, 23, 23)
    assert 0.0 < maps.min() < maps.max() < 1.0  # sigmoid, not a constant softmax
    cell = _argmax_cell(maps[0, 0])
    y0, y1, x0, x1 = pm.regions[0]
    assert y0 <= (cell[0] + 0.5) * 64 / 23 < y1 and x0 <= (cell[1] + 0.5) * 64 / 23 < x1
    nhwc = _saliency(
        insert_xai(
            pm.model,
            "detection",
            target_layer=pm.target_layer,
            num_anchors=[2, 3],
            embed_scaling=False,
        ),
        planted_image(pm),
    )
    np.testing.assert_allclose(maps, nhwc, atol=1e-6)


def test_detector_needs_target_layer():
    pm = planted_detector()
    with pytest.raises(XAIInsertionError, match="target_layer"):
        insert_xai(pm.model, Task.DETECTION)
    with pytest.raises(ValueError, match="nope"):
        insert_xai(pm.model, Task.DETECTION, target_layer=["head0/scores", "nope"])


# --------------------------------------------------------------------- ReciproCAM closed form

# The closed form replaces the (h*w, C, h, w) masked batch when the head is pointwise up to a
# global pooling. Every check below compares the maps with an independent NumPy/OpenVINO
# reference: the head alone, run on the masked batch built in NumPy.

_TINY_C, _TINY_H, _TINY_W, _TINY_K = 12, 5, 6, 4  # h != w: a transposed cell order fails


def _tiny_head_model(head: str) -> tuple[ov.Model, ov.Model, ov.Model]:
    """(full model, trunk model -> target, head model on a (N, C, h, w) parameter).

    Trunk: (1, 3, 10, 12) -> 2x2 stride-2 conv + per-channel bias ("trunk/feat", the target).
    ``head`` picks one of the branches of ``head_graph`` below; the full and the head-only model
    share its weights.
    """
    rng = np.random.default_rng(7)
    c, h, w, k = _TINY_C, _TINY_H, _TINY_W, _TINY_K
    conv_w = rng.normal(0.0, 0.5, (c, 3, 2, 2)).astype(np.float32)
    conv_b = rng.normal(0.0, 0.3, (1, c, 1, 1)).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, (1, c, 1, 1)).astype(np.float32)
    shift = rng.normal(0.0, 0.5, (c, 1, 1)).astype(np.float32)  # rank 3: right-aligned per channel
    spatial = rng.uniform(0.5, 1.5, (1, c, h, w)).astype(np.float32)
    mix = rng.normal(0.0, 0.3, (c, c, 1, 1)).astype(np.float32)
    fc_w = rng.normal(0.0, 1.0, (c, k)).astype(np.float32)
    fc_b = rng.normal(0.0, 0.1, (1, k)).astype(np.float32)
    axes = ops.constant(np.array([2, 3], np.int64))

    def head_graph(x: ov.Output, batch1: bool) -> ov.Output:
        flat_shape = [1, c] if batch1 else [-1, c]  # constant batch-1 shape, as exported models
        if head == "sigmoid_mean_reshape":  # closed form, act(0) != 0, keep_dims + Reshape [1, C]
            y = ops.sigmoid(ops.add(ops.multiply(x, ops.constant(scale)), ops.constant(shift)))
            y = ops.reduce_mean(y, axes, True)
            y = ops.reshape(y, ops.constant(np.array(flat_shape, np.int64)), False)
        elif head == "swish_sum":  # closed form: x * sigmoid(x) on two chain values, ReduceSum
            y = ops.clamp(x, -1.0, 3.0)
            y = ops.multiply(y, ops.sigmoid(y))
            y = ops.reduce_sum(y, ops.constant(np.array([-1, -2], np.int64)), False)
        elif head == "hswish_avgpool":  # closed form: AvgPool over the whole map
            y = ops.hswish(ops.add(x, ops.constant(np.float32(0.25))))
            y = ops.avg_pool(y, [1, 1], [0, 0], [0, 0], [h, w], True)
            y = ops.reshape(y, ops.constant(np.array(flat_shape, np.int64)), False)
        elif head == "conv_between":  # general path: a 1x1 conv mixes channels before pooling
            y = ops.convolution(x, ops.constant(mix), [1, 1], [0, 0], [0, 0], [1, 1])
            y = ops.reduce_mean(ops.relu(y), axes, False)
        elif head == "spatial_constant":  # general path: a per-position (not per-channel) gain
            y = ops.reduce_mean(ops.relu(ops.multiply(x, ops.constant(spatial))), axes, False)
        elif head == "max_pool":  # general path: ReduceMax is not a mean
            y = ops.reduce_max(ops.relu(x), axes, False)
        else:
            raise AssertionError(head)
        logits = ops.add(ops.matmul(y, ops.constant(fc_w), False, False), ops.constant(fc_b))
        return logits.output(0)

    image = ops.parameter([1, 3, 2 * h, 2 * w], ov.Type.f32, name="image")
    feat = ops.add(
        ops.convolution(image, ops.constant(conv_w), [2, 2], [0, 0], [0, 0], [1, 1]),
        ops.constant(conv_b),
    )
    feat.set_friendly_name("trunk/feat")
    full = ov.Model([head_graph(feat.output(0), True)], [image], "tiny")
    trunk = ov.Model([feat.output(0)], [image], "tiny_trunk")
    p = ops.parameter([-1, c, h, w], ov.Type.f32, name="features")
    head_only = ov.Model([head_graph(p.output(0), False)], [p], "tiny_head")
    return full, trunk, head_only


def _masked_batch_reference(trunk: ov.Model, head_only: ov.Model, x: np.ndarray) -> np.ndarray:
    """(1, K, h, w) ReciproCAM maps computed the slow way, outside the graph."""
    feat = _run(trunk, x)
    feat = next(iter(feat.values()))[0]  # (C, h, w)
    _, h, w = feat.shape
    masks = np.zeros((h * w, 1, h, w), np.float32)
    masks[np.arange(h * w), 0, np.arange(h * w) // w, np.arange(h * w) % w] = 1.0
    scores = next(iter(_run(head_only, (feat[None] * masks).astype(np.float32)).values()))
    return scores.T.reshape(1, -1, h, w)


def _has_masked_batch(model: ov.Model) -> bool:
    """The general path's signature: a rank-5 (B, h*w, C, h, w) masking tensor."""
    return any(
        op.get_output_partial_shape(0).rank.get_length() == 5
        for op in model.get_ordered_ops()
        if op.get_type_name() != "Constant"
        and op.get_output_size()
        and op.get_output_partial_shape(0).rank.is_static
    )


def _assert_close_rel(actual: np.ndarray, expected: np.ndarray, rel: float = 1e-4) -> None:
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rel * scale)


def _closed_form_off(monkeypatch) -> None:
    monkeypatch.setattr(recipro_cam, "CLOSED_FORM", False)


@pytest.mark.parametrize(
    ("head", "closed"),
    [
        ("sigmoid_mean_reshape", True),
        ("swish_sum", True),
        ("hswish_avgpool", True),
        ("conv_between", False),
        ("spatial_constant", False),
        ("max_pool", False),
    ],
)
def test_reciprocam_closed_form_only_when_exact(head, closed, monkeypatch):
    full, trunk, head_only = _tiny_head_model(head)
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, (1, 3, 2 * _TINY_H, 2 * _TINY_W)).astype(np.float32)
    expected = _masked_batch_reference(trunk, head_only, x)
    # the reference itself must vary over cells and differ from its transpose-order twin
    assert np.ptp(expected) > 1e-3
    cells_in_w_major_order = expected.reshape(1, _TINY_K, _TINY_W, _TINY_H).transpose(0, 1, 3, 2)
    assert not np.allclose(expected, cells_in_w_major_order, atol=1e-3)

    gi = GraphIndex(full)
    index, _, port = find_node(full, "trunk/feat", gi)
    target = TargetLayer(
        "cnn", "trunk/feat", index, port, (1, _TINY_C, _TINY_H, _TINY_W), "provided"
    )
    plan = closed_form_plan(full, target, gi)
    assert (plan is not None) is closed
    if closed:
        assert len(plan.pools) == 1
        assert plan.pools[0].kind == ("sum" if head == "swish_sum" else "mean")

    kw = {"target_layer": "trunk/feat", "embed_scaling": False}
    fast = insert_xai(full, "classification", "reciprocam", **kw)
    assert _has_masked_batch(fast) is not closed
    _assert_close_rel(_saliency(fast, x), expected)

    _closed_form_off(monkeypatch)
    general = insert_xai(full, "classification", "reciprocam", **kw)
    assert _has_masked_batch(general)
    _assert_close_rel(_saliency(general, x), expected)


@pytest.mark.parametrize("embed_scaling", [False, True])
def test_reciprocam_closed_form_equals_general_on_planted_cnn(cnn, embed_scaling, monkeypatch):
    x = planted_image(cnn, "random", seed=40)
    fast = insert_xai(cnn.model, "classification", "reciprocam", embed_scaling=embed_scaling)
    assert not _has_masked_batch(fast)
    maps_fast = _saliency(fast, x)
    _closed_form_off(monkeypatch)
    general = insert_xai(cnn.model, "classification", "reciprocam", embed_scaling=embed_scaling)
    assert _has_masked_batch(general)
    maps_general = _saliency(general, x)
    if embed_scaling:
        assert maps_fast.dtype == np.uint8
        assert np.abs(maps_fast.astype(np.int32) - maps_general).max() <= 1
    else:
        _assert_close_rel(maps_fast, maps_general)
    _assert_planted_maps(cnn, maps_fast.astype(np.float32))


def test_reciprocam_closed_form_dynamic_batch(monkeypatch):
    # batch 2 checks the (b, cell) row order of the closed form; image 1 differs from image 0
    dyn = planted_cnn(static_batch=False)
    two = np.concatenate([planted_image(dyn, "random", seed=41), planted_image_with_object(dyn, 1)])
    fast = _saliency(insert_xai(dyn.model, "classification", embed_scaling=False), two)
    _closed_form_off(monkeypatch)
    general = _saliency(insert_xai(dyn.model, "classification", embed_scaling=False), two)
    assert fast.shape == (2, 3, 7, 7)
    _assert_close_rel(fast, general)
    assert not np.allclose(fast[0], fast[1], atol=1e-3)
    assert _inside(_argmax_cell(fast[1, 1]), dyn.cell_regions[1])


@pytest.mark.parametrize("embed_scaling", [False, True])
@pytest.mark.parametrize("target_layer", [None, "head_conv"])
def test_reciprocam_closed_form_equals_general_on_efficientnet(
    lite0, lite0_coffee, target_layer, embed_scaling, monkeypatch
):
    # auto target: head_relu6 -> ReduceMean (no chain); head_conv: a chain of bias Add -> Clamp
    # before the ReduceMean (its biases are all negative, so act(0) = 0 here; the tiny heads
    # above cover act(0) != 0)
    model, x = lite0, lite0_coffee
    kw = {"target_layer": target_layer, "embed_scaling": embed_scaling}
    fast = insert_xai(model, "classification", "reciprocam", **kw)
    assert not _has_masked_batch(fast)
    maps_fast = _saliency(fast, x)
    _closed_form_off(monkeypatch)
    general = insert_xai(model, "classification", "reciprocam", **kw)
    assert _has_masked_batch(general)
    maps_general = _saliency(general, x)
    assert maps_fast.shape == maps_general.shape == (1, 1000, 7, 7)
    if embed_scaling:
        assert np.abs(maps_fast.astype(np.int32) - maps_general).max() <= 1
    else:
        _assert_close_rel(maps_fast, maps_general)
        assert np.ptp(maps_fast[0, 967]) > 0  # espresso: a map that varies over the cells
