"""Reading a detector's outputs and matching boxes: what AISE and D-RISE for detection share.

A detection ``postprocess_fn`` returns ``(boxes (B, N, 4), scores (B, N), labels (B, N))`` for a
batch, boxes ``x1, y1, x2, y2`` in the pixels of the model input. :class:`DetectionReader` checks
and splits that per image into :class:`Detections`; :func:`select_target_boxes` turns the
caller's ``targets`` into the boxes to explain; :func:`box_iou` and :func:`match_scores` score a
masked image's detections against a target box.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from openvino.utils.data_helpers.wrappers import OVDict

from salvo.common.targets import _scalar, resolve_targets
from salvo.errors import DetectionBoxWarning, PostprocessWarning
from salvo.methods.base import Prediction

logger = logging.getLogger(__name__)

__all__ = [
    "DETECTION_CONTRACT",
    "DetectionReader",
    "Detections",
    "TargetBoxes",
    "box_iou",
    "match_scores",
    "no_box_message",
    "select_target_boxes",
]

#: What a detection model's ``postprocess_fn`` returns.
DETECTION_CONTRACT = ("raw outputs -> (boxes (B, N, 4), scores (B, N), labels (B, N)), boxes "
                      "x1, y1, x2, y2 in input pixels")
#: Extra room, in pixels, a target box may extend past the image before salvo warns.
_BOX_SLACK = 1.0


@dataclass(frozen=True)
class Detections:
    """The boxes a detector found on one image.

    Attributes
    ----------
    boxes
        ``(N, 4)`` float64 ``x1, y1, x2, y2`` in input pixels.
    scores
        ``(N,)`` float64.
    labels
        ``(N,)`` int64.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one ``xyxy`` box with each of ``boxes`` ``(M, 4)``.

    Returns
    -------
    numpy.ndarray
        ``(M,)`` float64 in [0, 1]; 0 where a box is empty or the boxes do not overlap.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    box = np.asarray(box, dtype=np.float64)
    iw = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    ih = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0,
                                                                   None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_scores(target_box: np.ndarray, target_label: int, found: Detections) -> float:
    """``max`` over the found boxes with the target's label of ``IoU * score`` (0 if none)."""
    same = found.labels == target_label
    if not np.any(same):
        return 0.0
    return float(np.max(box_iou(target_box, found.boxes[same]) * found.scores[same]))


class DetectionReader:
    """Read detections with the user's ``postprocess_fn``, checked.

    ``postprocess_fn(outputs)`` must return ``(boxes (B, N, 4), scores (B, N), labels (B, N))``
    with boxes ``x1, y1, x2, y2`` in input pixels, for a batch of ``B`` images (rows may be
    padded with zero-score boxes). A function written for one image (leading dimension 1 for
    ``B > 1``) is detected once and then called image by image.
    """

    def __init__(self, postprocess_fn: Callable[[OVDict], Any]) -> None:
        if not callable(postprocess_fn):
            raise TypeError(
                f"postprocess_fn must be callable (outputs -> (boxes, scores, labels)), got "
                f"{type(postprocess_fn).__name__}"
            )
        self.postprocess_fn = postprocess_fn
        self.per_item = False

    def _call(self, outputs: OVDict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            result = self.postprocess_fn(outputs)
        except Exception as exc:
            raise ValueError(f"postprocess_fn raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            what = f"a {type(result).__name__}"
            if isinstance(result, (tuple, list)):
                what += f" of {len(result)} items"
            raise ValueError(
                "for detection, postprocess_fn must return three arrays (boxes (B, N, 4) "
                f"x1, y1, x2, y2 in input pixels, scores (B, N), labels (B, N)); got {what}"
            )
        arrays = []
        for name, value in zip(("boxes", "scores", "labels"), result):
            arr = np.asarray(value)
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                           or arr.dtype == np.bool_):
                raise ValueError(f"postprocess_fn returned {name} of dtype {arr.dtype}; expected "
                                 "numbers")
            arrays.append(arr)
        boxes, scores, labels = arrays
        if boxes.ndim == 2 and boxes.shape[-1] == 4 and scores.ndim == 1 and labels.ndim == 1:
            boxes, scores, labels = boxes[None], scores[None], labels[None]
        if boxes.ndim != 3 or boxes.shape[-1] != 4:
            raise ValueError(f"postprocess_fn returned boxes of shape {boxes.shape}; expected "
                             "(B, N, 4)")
        if scores.ndim != 2 or labels.ndim != 2:
            raise ValueError(f"postprocess_fn returned scores of shape {scores.shape} and labels "
                             f"of shape {labels.shape}; expected (B, N) each")
        return boxes, scores, labels

    def __call__(self, outputs: OVDict, n: int) -> list[Detections]:
        """The detections of each of the ``n`` images of a batch."""
        if not self.per_item:
            boxes, scores, labels = self._call(outputs)
            lead = {boxes.shape[0], scores.shape[0], labels.shape[0]}
            if lead == {n}:
                return self._split(boxes, scores, labels)
            if n > 1 and lead == {1}:
                warnings.warn(
                    f"postprocess_fn returned detections for 1 image for a batch of {n}; "
                    "calling it one image at a time (return (B, N, ...) arrays, one row per "
                    "image, to avoid this)",
                    PostprocessWarning, stacklevel=2,
                )
                self.per_item = True
            else:
                raise ValueError(
                    f"postprocess_fn returned boxes {boxes.shape}, scores {scores.shape} and "
                    f"labels {labels.shape} for a batch of {n} images; expected a leading "
                    f"dimension of {n}"
                )
        found: list[Detections] = []
        for i in range(n):
            one = OVDict({port: arr[i: i + 1] for port, arr in outputs.items()})
            found.extend(self._split(*self._call(one))[:1])
        return found

    @staticmethod
    def _split(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> list[Detections]:
        out = []
        for b in range(boxes.shape[0]):
            nb, ns, nl = boxes.shape[1], scores.shape[1], labels.shape[1]
            if not nb == ns == nl:
                raise ValueError(
                    f"postprocess_fn returned {nb} boxes, {ns} scores and {nl} labels for image "
                    f"{b}; the three must have the same length"
                )
            bx = boxes[b].astype(np.float64)
            sc = scores[b].astype(np.float64)
            if not (np.all(np.isfinite(bx)) and np.all(np.isfinite(sc))):
                raise ValueError(f"postprocess_fn returned a non-finite box or score for image "
                                 f"{b}")
            lb = labels[b]
            if np.issubdtype(lb.dtype, np.floating):
                if not np.all(np.isfinite(lb)):
                    raise ValueError(f"postprocess_fn returned a non-finite label for image {b}")
                lb = np.rint(lb)
            out.append(Detections(bx, sc, lb.astype(np.int64)))
        return out


@dataclass(frozen=True)
class TargetBoxes:
    """The boxes chosen for explanation.

    Attributes
    ----------
    indices
        Box indices (as the postprocess function numbered them) that are explained.
    boxes
        ``(T, 4)`` float64, those boxes clipped to the image (what the search uses).
    labels
        ``(T,)`` int64.
    predictions
        ``{index: Prediction(label, score, box as returned)}``.
    """

    indices: list[int]
    boxes: np.ndarray
    labels: np.ndarray
    predictions: dict[int, Any]


def _box_warning(message: str) -> None:
    logger.debug(message)
    warnings.warn(message, DetectionBoxWarning, stacklevel=3)


def select_target_boxes(found: Detections, targets: Any, height: int, width: int
                        ) -> TargetBoxes:
    """Resolve detection ``targets`` (box indices; ``-1``/``None`` for all) on the unmasked
    detections; clip boxes to the image, skip degenerate ones with a warning naming them.

    Raises
    ------
    ValueError
        A label name or other non-integer target, or an index out of range.
    """
    targets = _scalar(targets)
    items = [targets] if isinstance(targets, (str, int, np.integer)) or targets is None \
        else list(targets) if isinstance(targets, (list, tuple, np.ndarray)) else [targets]
    for t in items:
        if t is None:
            continue
        if isinstance(t, str):
            raise ValueError(
                f"targets: {t!r} is a name, but detection targets are box indices (ints, or -1 "
                "for every box the model found)"
            )
    n = len(found)
    all_boxes = targets is None or (
        isinstance(targets, (int, np.integer)) and not isinstance(targets, bool)
        and int(targets) == -1
    )
    if n == 0 and not all_boxes:
        raise ValueError(
            f"targets: box indices {targets!r} were asked, but the model found no boxes on this "
            "image"
        )
    keys = [] if n == 0 else resolve_targets(targets, n, None, what="box")
    indices: list[int] = []
    boxes = []
    labels = []
    predictions: dict[int, Any] = {}
    normalised = n > 0 and float(np.max(np.abs(found.boxes))) <= 1.5 and min(height, width) > 16
    for k in keys:
        raw = found.boxes[k]
        x1, y1, x2, y2 = (float(v) for v in raw)
        if not (x2 > x1 and y2 > y1):
            _box_warning(f"skipping box {k} (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}): it "
                         "is empty (x2 <= x1 or y2 <= y1)")
            continue
        clipped = np.array([min(max(x1, 0.0), width), min(max(y1, 0.0), height),
                            min(max(x2, 0.0), width), min(max(y2, 0.0), height)])
        if not (clipped[2] > clipped[0] and clipped[3] > clipped[1]):
            _box_warning(f"skipping box {k} (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}): it "
                         f"lies outside the {width}x{height} input image")
            continue
        if np.max(np.abs(clipped - raw)) > _BOX_SLACK:
            _box_warning(f"box {k} (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}) extends past "
                         f"the {width}x{height} input image; it is clipped to it")
        indices.append(int(k))
        boxes.append(clipped)
        labels.append(int(found.labels[k]))
        predictions[int(k)] = Prediction(label=int(found.labels[k]),
                                         score=float(found.scores[k]),
                                         bounding_box=(x1, y1, x2, y2))
    if normalised:
        _box_warning(f"all boxes from postprocess_fn lie within [0, 1.5]: they look normalised, "
                     f"but salvo expects x1, y1, x2, y2 in input pixels ({width}x{height}); "
                     "multiply them by the input size in postprocess_fn")
    return TargetBoxes(indices, np.asarray(boxes, np.float64).reshape(-1, 4),
                       np.asarray(labels, np.int64), predictions)


def no_box_message(method: str, num_found: int) -> str:
    """Why a detection explanation holds no map."""
    if num_found == 0:
        return (f"{method}: the model found no box on this image, so there is nothing to explain "
                "(check postprocess_fn's score threshold and the input)")
    return (f"{method}: none of the {num_found} boxes the model found could be explained (see "
            "the warnings about them)")
