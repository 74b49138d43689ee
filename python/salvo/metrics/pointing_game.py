"""Pointing game (Zhang et al., IJCV 2018): does the map's maximum fall on the object?"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from salvo.common import PER_IMAGE_MAP
from salvo.errors import MetricWarning
from salvo.metrics.base import (
    BaseMetric,
    check_map,
    check_same_length,
    explanation_maps,
)

logger = logging.getLogger(__name__)

__all__ = ["PointingGame"]

Box = tuple[float, float, float, float]


def _check_boxes(boxes: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    """``(B, 4)`` float64 boxes ``(x, y, w, h)`` that touch the ``shape`` map."""
    if isinstance(boxes, (str, bytes)) or not isinstance(boxes, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a list of (x, y, w, h) boxes, got {boxes!r}")
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a list of (x, y, w, h) boxes, got {boxes!r}") from None
    if arr.size == 0:
        return np.zeros((0, 4), np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be a list of (x, y, w, h) boxes, got {boxes!r}")
    h, w = shape
    for box in arr:
        x, y, bw, bh = box
        if not all(math.isfinite(v) for v in box):
            raise ValueError(f"{name}: box {tuple(box)} is not finite")
        if bw < 0 or bh < 0:
            raise ValueError(f"{name}: box {tuple(box)} has a negative width or height")
        if x > w - 1 or y > h - 1 or x + bw < 0 or y + bh < 0:
            raise ValueError(
                f"{name}: box (x={x:g}, y={y:g}, w={bw:g}, h={bh:g}) lies outside the "
                f"{h}x{w} saliency map; boxes and maps must be in the same pixels (explain "
                "with resize=True for maps at the image size)"
            )
    return arr


class PointingGame(BaseMetric):
    """Pointing game with ground-truth boxes (the reference's ``PointingGame``).

    A map scores 1.0 when one of its maximum pixels lies inside any ground-truth box of the
    class it explains, else 0.0. Boxes are ``(x, y, w, h)`` in map pixels and *inclusive*: a
    point ``(px, py)`` is inside when ``x <= px <= x + w`` and ``y <= py <= y + h`` (as in the
    reference). It needs no model.

    Defined results for edge cases (the reference's where it has one):

    - an empty box list scores 0.0 (nothing can be hit);
    - a box partly outside the map counts with its inside part; a box wholly outside the map,
      a negative width/height or a non-finite coordinate is a ``ValueError``;
    - ``evaluate`` skips maps whose class has no boxes (INFO log); if it could score no map at
      all it returns 0.0 with a WARNING (the reference returns 0.0 silently); an empty list of
      explanations is a ``ValueError``.
    """

    def __init__(self) -> None:
        self.model = None
        self.engine = None
        self.num_inferences = 0

    @staticmethod
    def __call__(
        saliency_map: np.ndarray, image_gt_bboxes: Sequence[Box]
    ) -> dict[str, float]:
        """Pointing game of one map for one class.

        Parameters
        ----------
        saliency_map
            ``(H, W)`` map, any real dtype.
        image_gt_bboxes
            Boxes ``(x, y, w, h)`` (map pixels, inclusive) of the objects of that class.

        Returns
        -------
        dict
            ``{"pointing_game": 1.0 or 0.0}``.
        """
        smap = check_map(saliency_map)
        boxes = _check_boxes(image_gt_bboxes, smap.shape, "image_gt_bboxes")
        peaks = np.argwhere(smap == smap.max())  # (P, 2) rows (y, x)
        if len(boxes) == 0:
            return {"pointing_game": 0.0}
        py = peaks[:, 0][:, None].astype(np.float64)
        px = peaks[:, 1][:, None].astype(np.float64)
        x, y, w, h = (boxes[:, i][None, :] for i in range(4))
        inside = (x <= px) & (px <= x + w) & (y <= py) & (py <= y + h)
        return {"pointing_game": 1.0 if bool(inside.any()) else 0.0}

    def evaluate(
        self,
        explanations: Sequence[Any],
        gt_bboxes: Sequence[Mapping[Any, Sequence[Box]]],
        **kwargs: Any,
    ) -> dict[str, float]:
        """Mean pointing game over every map of every explanation.

        Parameters
        ----------
        explanations
            One :class:`~salvo.explainer.explanation.Explanation` per image.
        gt_bboxes
            One dict per image, ``{label_name: [(x, y, w, h), …]}`` (the reference's form). For
            explanations without ``label_names``, the class index (int) is used as the key.
            A per-image (ActivationMap) map is checked against all boxes of the image.

        Returns
        -------
        dict
            ``{"pointing_game": mean over the maps that have boxes}``.
        """
        maps = list(explanation_maps(explanations))
        check_same_length(explanations, gt_bboxes, "gt_bboxes")
        hits = 0.0
        scored = 0
        skipped: list[str] = []
        for i, key, smap, explanation in maps:
            image_boxes = gt_bboxes[i]
            if not isinstance(image_boxes, Mapping):
                raise TypeError(
                    f"gt_bboxes[{i}] must be a dict {{label_name: [(x, y, w, h), ...]}}, got "
                    f"{type(image_boxes).__name__}"
                )
            if key == PER_IMAGE_MAP:
                boxes = [box for class_boxes in image_boxes.values() for box in class_boxes]
                where = "all classes"
            else:
                label_names = getattr(explanation, "label_names", None)
                idx = int(key)
                if label_names is not None:
                    if not 0 <= idx < len(label_names):
                        raise ValueError(
                            f"explanations[{i}] has a map for class {idx} but only "
                            f"{len(label_names)} label_names"
                        )
                    where = label_names[idx]
                else:
                    where = idx
                if where not in image_boxes:
                    logger.info(
                        "No ground-truth bbox for %s saliency map. Skip pointing game "
                        "evaluation for this saliency map.", where,
                    )
                    skipped.append(f"explanations[{i}][{key!r}] ({where})")
                    continue
                boxes = image_boxes[where]
            hits += self(smap, boxes)["pointing_game"]
            scored += 1
        if scored == 0:
            warnings.warn(
                "pointing game: no saliency map had ground-truth boxes for its class; "
                "returning 0.0 (gt_bboxes keys are label names, or class indices for "
                "explanations without label_names)",
                MetricWarning, stacklevel=2,
            )
            return {"pointing_game": 0.0}
        if skipped:
            warnings.warn(
                f"pointing game: {len(skipped)} of {len(maps)} saliency maps have no "
                f"ground-truth boxes for their class and are left out of the mean: "
                f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}",
                MetricWarning, stacklevel=2,
            )
        return {"pointing_game": hits / scored}
