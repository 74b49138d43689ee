"""D-RISE: RISE for object detectors (Petsiuk et al., arXiv 2006.03204), batched.

The masks are RISE's (counter-based, generated in C++; SPEC section 6) and so are the engine and
the streaming accumulation (:class:`salvo.methods.blackbox.rise.RISE` does the work). What
changes is the weight of a mask: for a target box ``t`` (found on the unmasked image) it is the
best similarity between ``t`` and the detections on the masked image,

    w_i(t) = max over detections j of the masked image of IoU(box_t, box_j) * s(t, j),

where the paper's class-score similarity ``s`` is the objectness of ``j`` times the cosine of
the two class-probability vectors. With the ``(boxes, scores, labels)`` contract of SPEC section
6 each detection carries one class and one score, so the probability vectors are one-hot and
``s(t, j) = score_j`` when ``label_j == label_t``, else 0. The map of ``t`` is
``sum_i w_i(t) * mask_i`` (RISE's ``"centered"`` estimator by default, ``"plain"`` on request),
min-max scaled.

``explain_method=Method.RISE`` with ``Task.DETECTION`` selects this class; it takes RISE's
parameters (``preset``, ``num_masks``, ``num_cells``, ``prob``, ``seed``, ``scale_output``,
``estimator``, ``tolerance``, ``check_every``). Targets are box indices (``-1`` for every box).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from openvino.utils.data_helpers.wrappers import OVDict

from salvo.methods.blackbox.aise import (
    DETECTION_CONTRACT,
    DetectionReader,
    Detections,
    box_iou,
    no_box_message,
    select_target_boxes,
)
from salvo.errors import DetectionBoxWarning
from salvo.methods.blackbox.base import BlackBoxMethod, BlackBoxResult, warn_uninformative
from salvo.methods.blackbox.rise import RISE, resolve_params

logger = logging.getLogger(__name__)

__all__ = ["DRISE", "drise_weights"]


def drise_weights(found: Detections, boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """D-RISE weights of one masked image for ``T`` target boxes.

    Parameters
    ----------
    found
        The detections on the masked image.
    boxes
        ``(T, 4)`` float64 target boxes ``x1, y1, x2, y2`` (input pixels).
    labels
        ``(T,)`` int64 their labels.

    Returns
    -------
    numpy.ndarray
        ``(T,)`` float64: ``max_j IoU(box_t, box_j) * score_j`` over the detections ``j`` with
        ``label_j == label_t`` (0 when there is none).
    """
    out = np.zeros(boxes.shape[0], np.float64)
    if len(found) == 0:
        return out
    for t in range(boxes.shape[0]):
        same = found.labels == labels[t]
        if np.any(same):
            out[t] = float(np.max(box_iou(boxes[t], found.boxes[same]) * found.scores[same]))
    return out


class DRISE(BlackBoxMethod):
    """D-RISE on the batched asynchronous engine (parameters:
    :class:`~salvo.methods.blackbox.base.BlackBoxMethod`)."""

    name = "D-RISE"
    postprocess_contract = DETECTION_CONTRACT

    def _setup(self) -> None:
        # RISE does the masks and the accumulation on this engine; each call passes it the
        # function that turns the detections of a batch into its target boxes' weights
        self._rise = RISE.on_engine(self.engine, self.postprocess_fn, progress=self.progress,
                                    warn_flat=False)  # D-RISE names its own targets

    def detect(self, x: np.ndarray) -> Detections:
        """The detections on the unmasked input ``x`` ``(1, ...)`` (one inference)."""
        return DetectionReader(self.postprocess_fn)(self.unmasked_outputs(x), 1)[0]

    def explain(
        self,
        x: np.ndarray,
        targets: Any,
        *,
        label_names: Sequence[str] | None = None,
        progress: bool | None = None,
        **params: Any,
    ) -> BlackBoxResult:
        """Explain the boxes ``targets`` (indices into the detections on ``x``; ``-1``/``None``
        for all) of the preprocessed input ``x`` ``(1, ...)``.

        ``params`` are RISE's; they are checked before any inference runs.

        Returns
        -------
        BlackBoxResult
            One map per explained box (``(0, H, W)`` when the model found none; degenerate boxes
            are skipped with a warning). ``num_inferences`` counts the unmasked inference and
            every mask.
        """
        t0 = time.perf_counter()
        rise_params = resolve_params(**params)
        height, width = self.engine.input.image_size
        rise_params = rise_params.validate(height, width)
        x = np.asarray(x)
        expected = self.engine.input.shape[1:]
        if x.ndim == len(expected):
            x = x[None]
        if x.shape[0] != 1 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must be one preprocessed input of shape (1, {', '.join(map(str, expected))}),"
                f" got {x.shape}"
            )
        found = self.detect(x)
        chosen = select_target_boxes(found, targets, height, width)
        if not chosen.indices:
            warnings.warn(no_box_message("D-RISE", len(found)), DetectionBoxWarning,
                          stacklevel=4)
            dtype = np.uint8 if rise_params.scale_output else np.float32
            return BlackBoxResult(
                maps=np.zeros((0, height, width), dtype), targets=[], predictions={},
                num_inferences=1,
                extra={"num_masks_used": 0, "seconds": time.perf_counter() - t0,
                       "params": rise_params},
            )
        reader = DetectionReader(self.postprocess_fn)
        boxes, labels = chosen.boxes, chosen.labels

        def weights(outputs: OVDict) -> np.ndarray:
            n = next(iter(outputs.values())).shape[0]
            return np.stack([drise_weights(d, boxes, labels) for d in reader(outputs, n)])

        unmasked = drise_weights(found, boxes, labels)
        result = self._rise.run(x, None, rise_params, unmasked_scores=unmasked,
                                progress=progress, postprocess_fn=weights)
        warn_uninformative("D-RISE", result.flat, list(chosen.indices),
                           f"its weights did not vary over the {result.num_masks_used} masks")
        return BlackBoxResult(
            maps=result.maps,
            targets=list(chosen.indices),
            predictions=chosen.predictions,
            num_inferences=result.num_inferences + 1,
            extra={"num_masks_used": result.num_masks_used,
                   "seconds": time.perf_counter() - t0, "params": rise_params},
        )
