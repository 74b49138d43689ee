"""How a photo becomes a model input: the ``--preprocess`` spec, image reading, resizing.

Shared by ``salvo explain``, ``salvo bench`` and the zoo's preprocessing functions.

* :class:`Preprocess` and :func:`parse_preprocess`: a preset name (:data:`PREPROCESS_PRESETS`)
  or a spec such as ``imagenet,size=256`` or ``size=224,mean=127,std=128,rgb,nchw``.
* :func:`prepare_model`: checks the model's one image input against a :class:`Preprocess` and
  makes a dynamic batch or size static; returns the :class:`ModelInput` it takes.
* :func:`read_image`: decodes a file to RGB, refusing decompression bombs from the header
  (:func:`salvo.imagefile.header_size`) before decoding.
* :func:`apply_preprocess`: photo → model input (and the part of the photo the model sees);
  :func:`describe_preprocess` says it in words.
* :func:`resize` (area when shrinking, bilinear when enlarging) and :func:`shrink_to`;
  :func:`check_rgb_uint8` checks an image argument.

Bad specs raise :class:`~salvo.errors.UsageError` (a ``ValueError``) naming the option.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import openvino as ov

from salvo.errors import UsageError
from salvo.imagefile import header_size

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "PREPROCESS_PRESETS",
    "ModelInput",
    "Preprocess",
    "apply_preprocess",
    "check_rgb_uint8",
    "describe_preprocess",
    "parse_preprocess",
    "prepare_model",
    "read_image",
    "resize",
    "shrink_to",
]


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
        """Whether ``mean`` or ``std`` changes the pixel values (so the input must be float)."""
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
    """The one image input of a model, as :func:`apply_preprocess` feeds it (found by
    :func:`prepare_model`)."""

    name: str
    layout: str  # NCHW or NHWC
    size: tuple[int, int]
    channels: int
    dtype: np.dtype


def _layout_of(port: Any, dims: list[int | None]) -> str | None:
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

    Parameters
    ----------
    model
        An ``openvino.Model`` with one 4-D image input (batch 1 or dynamic).
    pre
        The preprocessing; its ``size`` and ``layout`` (when given) must agree with the model.

    Returns
    -------
    model
        ``model`` itself, or a reshaped clone when its input had a dynamic dimension.
    ModelInput
        The input's name, layout, ``(H, W)``, channels and element type.

    Raises
    ------
    ValueError
        Not one 4-D image input, an unknown layout, other than 1 or 3 channels, or a fixed
        batch above 1.
    UsageError
        ``pre.size`` contradicts the model's size, the size is dynamic and ``pre`` gives none,
        or ``pre`` normalises for an integer input.
    """
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


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width`` x ``height`` with OpenCV: area averaging when the result
    has fewer pixels (anti-aliased), bilinear interpolation otherwise.

    Parameters
    ----------
    image
        ``(H, W)`` or ``(H, W, C)`` array OpenCV can resize (uint8 or float32).
    width, height
        The new size in pixels (>= 1).

    Returns
    -------
    numpy.ndarray
        A new ``(height, width[, C])`` array of the same dtype.
    """
    shrink = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def shrink_to(image: np.ndarray, max_size: int) -> np.ndarray:
    """``image`` scaled down (``cv2.INTER_AREA``) so that its long side is at most
    ``max_size`` pixels, keeping the aspect ratio; a C-contiguous copy or the image itself.
    ``max_size`` 0: unchanged."""
    h, w = image.shape[:2]
    if max_size and max(h, w) > max_size:
        scale = max_size / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return resize(image, *size)
    return np.ascontiguousarray(image)


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
        resized = resize(rgb, w, h)
        box = (0, h0, 0, w0)
    else:
        # the crop is `size`; the photo is scaled so that `size` is `crop` of its short side
        scale = max(h / h0, w / w0) / pre.crop
        new_h, new_w = max(h, round(h0 * scale)), max(w, round(w0 * scale))
        resized = resize(rgb, new_w, new_h)
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
    """What :func:`apply_preprocess` does to a photo, in words (for messages and the manifest),
    e.g. ``"short side scaled to 224x224/0.875 and centre-cropped to 224x224, RGB, NCHW
    float32, (x - 127) / 128"``."""
    h, w = info.size
    how = f"resized to {h}x{w}" if pre.crop is None else (
        f"short side scaled to {h}x{w}/{pre.crop:g} and centre-cropped to {h}x{w}")
    norm = "no normalisation" if not pre.normalises else (
        f"(x - {'/'.join(f'{m:g}' for m in pre.mean)}) / {'/'.join(f'{s:g}' for s in pre.std)}")
    return (f"{how}, {'BGR' if pre.bgr else 'RGB'}, {info.layout} {info.dtype}, {norm}")


def check_rgb_uint8(image: Any, arg: str = "image") -> np.ndarray:
    """``image`` if it is an ``(H, W, 3)`` uint8 array (H, W >= 1).

    Raises
    ------
    TypeError
        Not a ``numpy.ndarray``, or not uint8 (the message names ``arg`` and the dtype).
    ValueError
        Another shape (the message names ``arg`` and the shape).
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{arg} must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"{arg} must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{arg} must have shape (H, W, 3), got {image.shape}")
    return image
