"""Offline stand-ins for the files the reference's guide and examples download.

The snippets in this folder are the user guide's and the examples' code with ``openvino_xai``
replaced by ``salvo``; models and photos come from salvo's zoo (installed wheels, no network):

* the classification model is EfficientNet-Lite0 (``salvo.zoo.efficientnet_lite0``), written
  once as IR into a temporary folder when a snippet wants a ``model.xml`` path;
* photos are written as JPEG (BGR on disk, as any photo) so that ``cv2.imread`` returns BGR;
* a snippet's own ``preprocess_fn`` (written for the guide's model) is replaced by
  :func:`preprocess_bgr`, EfficientNet-Lite0's preprocessing of a BGR photo.

``tests/conformance/test_user_guide.py`` runs every snippet here with salvo, each in its own
process and working folder. The same files run against the reference package itself when
salvo's zoo is put into ``sys.modules["_salvo_zoo"]`` and ``salvo`` is aliased to
``openvino_xai``, which is how it was checked which snippets fail with the reference too.
"""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

zoo = sys.modules.get("_salvo_zoo") or importlib.import_module("salvo.zoo")

_DIR = Path(os.environ.get("SNIPPET_DATA_DIR") or tempfile.mkdtemp(prefix="snippet_data_"))


def model_xml(layout: str = "NHWC") -> str:
    """EfficientNet-Lite0 as an IR file (``.xml``), standing in for the guide's "path/to/model.xml".

    The model takes raw pixels (0..255, any numeric dtype: OpenVINO converts) and normalises
    inside the graph, like the guide's models whose preprocess_fn only resizes: ``"NHWC"`` is
    ``salvo.zoo.efficientnet_lite0_uint8_nhwc`` (input ``[1, 224, 224, 3]``), ``"NCHW"`` the same
    network with an ``[1, 3, 224, 224]`` input (for preprocess_fns that transpose to CHW).
    """
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    path = _DIR / f"efficientnet_lite0_{layout.lower()}.xml"
    if not path.is_file():
        if layout == "NHWC":
            model = zoo.efficientnet_lite0_uint8_nhwc()
        else:
            model = zoo.efficientnet_lite0()
            ppp = PrePostProcessor(model)
            ppp.input("image").tensor().set_element_type(ov.Type.u8)
            steps = ppp.input("image").preprocess()
            steps.convert_element_type(ov.Type.f32).mean(127.0).scale(128.0)
            model = ppp.build()
        ov.save_model(model, str(path))
    return str(path)


def onnx_classifier() -> str:
    """A small CNN classifier as an ``.onnx`` file, for the guide's "model.onnx".

    Built with the ``onnx`` package (conv 3->16 stride 2, ReLU, conv 16->32 stride 2, ReLU,
    global average pooling, flatten, dense 32->10; fixed random weights; input ``"data"``
    float32 ``[1, 3, 64, 64]``, output ``"logits"`` ``[1, 10]``). Without ``onnx``, the copy of
    that file in ``tests/data`` (written by this function with onnx 1.23.1) is used.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:  # the file this function wrote once (tests/data/small_cnn.onnx)
        return str(Path(__file__).resolve().parents[2] / "data" / "small_cnn.onnx")
    path = _DIR / "small_cnn.onnx"
    if path.is_file():
        return str(path)
    rng = np.random.default_rng(0)

    def init(name: str, shape: tuple[int, ...]) -> Any:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["data", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "small_cnn",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [init("w1", (16, 3, 3, 3)), init("b1", (16,)), init("w2", (32, 16, 3, 3)),
         init("b2", (32,)), init("w3", (10, 32)), init("b3", (10,))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return str(path)


def detector_xml() -> str:
    """The SSDLite person detector (reshaped to 1x300x300x3) as an IR file."""
    import openvino as ov

    path = _DIR / "ssdlite_person.xml"
    if not path.is_file():
        ov.save_model(zoo.ssdlite_person(), str(path))
    return str(path)


def image_path(name: str = "coffee") -> str:
    """A photo of the zoo written as JPEG, like the guide's "path/to/image.jpg"."""
    path = _DIR / f"{name}.jpg"
    if not path.is_file():
        cv2.imwrite(str(path), cv2.cvtColor(zoo.sample_image(name), cv2.COLOR_RGB2BGR))
    return str(path)


def preprocess_bgr(x: np.ndarray) -> np.ndarray:
    """EfficientNet-Lite0 preprocessing of an (H, W, 3) BGR photo -> (1, 3, 224, 224) float32.

    uint8 photos go through ``salvo.zoo.efficientnet_lite0_preprocess``; other dtypes (e.g. the
    float images the metrics build by masking a photo) get the same resize, crop and
    normalisation in float32.
    """
    rgb = np.ascontiguousarray(x[:, :, ::-1])
    if rgb.dtype == np.uint8:
        return zoo.efficientnet_lite0_preprocess(rgb)
    rgb = rgb.astype(np.float32)
    short = 256
    h, w = rgb.shape[:2]
    if h <= w:
        new_h, new_w = short, max(short, round(w * short / h))
    else:
        new_h, new_w = max(short, round(h * short / w)), short
    interp = cv2.INTER_AREA if new_h < h else cv2.INTER_LINEAR
    rgb = cv2.resize(rgb, (new_w, new_h), interpolation=interp)
    top, left = (new_h - 224) // 2, (new_w - 224) // 2
    crop = rgb[top: top + 224, left: left + 224]
    x = ((crop - 127.0) / 128.0).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x, dtype=np.float32)


def headless_cv2() -> None:
    """Make ``cv2.imshow``/``waitKey``/``destroyAllWindows`` no-ops when there is no display."""
    if os.environ.get("DISPLAY"):
        return
    cv2.imshow = lambda *a, **k: None
    cv2.waitKey = lambda *a, **k: -1
    cv2.destroyAllWindows = lambda *a, **k: None
    cv2.destroyWindow = lambda *a, **k: None
