"""D-RISE: RISE for object detectors (Petsiuk et al., arXiv 2006.03204), batched.

The masks are RISE's (counter-based, generated in C++) and so are the engine and the streaming
accumulation (:func:`salvo.methods.black_box.rise.run_rise` does the work). What
changes is the weight of a mask: for a target box ``t`` (found on the unmasked image) it is the
best similarity between ``t`` and the detections on the masked image,

    w_i(t) = max over detections j of the masked image of IoU(box_t, box_j) * s(t, j),

where the paper's class-score similarity ``s`` is the objectness of ``j`` times the cosine of
the two class-probability vectors. With the ``(boxes, scores, labels)`` contract of a detection
``postprocess_fn`` each detection carries one class and one score, so the probability vectors are one-hot and
``s(t, j) = score_j`` when ``label_j == label_t``, else 0. The map of ``t`` is
``sum_i w_i(t) * mask_i`` (RISE's ``"centered"`` estimator by default, ``"plain"`` on request),
min-max scaled.

``explain_method=Method.RISE`` with ``Task.DETECTION`` selects this class; it takes RISE's
parameters (``preset``, ``num_masks``, ``num_cells``, ``prob``, ``seed``, ``scale_output``,
``estimator``, ``tolerance``, ``check_every``, ``mask_design``). Targets are box indices (``-1``
for every box).

Masks. D-RISE's presets use RISE's ``"iid"`` masks (:data:`DRISE_PRESETS`): the balanced design
(RISE's default) was measured on classifiers only, not on detectors. It can be asked for
(``mask_design="balanced"``, or a :class:`RISEParams` built with the dataclass defaults): the
same generator and estimators run, unmeasured here.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from openvino.utils.data_helpers.wrappers import OVDict

from salvo.common import Method, Preset, Task
from salvo.errors import DetectionBoxWarning
from salvo.inference import EngineConfig
from salvo.methods.base import MethodResult
from salvo.methods.black_box.base import BlackBoxXAIMethod, warn_uninformative
from salvo.methods.black_box.detection import (
    DETECTION_CONTRACT,
    DetectionReader,
    Detections,
    box_iou,
    no_box_message,
    select_target_boxes,
)
from salvo.methods.black_box.rise import (
    RISE_PRESETS,
    RISEParams,
    mask_design_used,
    reliability_by_target,
    run_rise,
)

logger = logging.getLogger(__name__)

__all__ = ["DRISE", "DRISE_PRESETS", "drise_weights"]

#: RISE's presets with iid masks (the balanced design is unmeasured on detectors).
DRISE_PRESETS: dict[Preset, RISEParams] = {
    preset: replace(params, mask_design="iid") for preset, params in RISE_PRESETS.items()
}


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


class DRISE(BlackBoxXAIMethod):
    """D-RISE on the batched asynchronous engine (parameters:
    :class:`~salvo.methods.black_box.base.BlackBoxXAIMethod`). A call's parameters are RISE's
    (:class:`~salvo.methods.black_box.rise.RISEParams`); targets are box indices into the
    detections on the input."""

    name = "D-RISE"
    method = Method.RISE
    tasks = (Task.DETECTION,)
    params_class = RISEParams
    presets = DRISE_PRESETS
    default_preset = Preset.BALANCE
    postprocess_contract = DETECTION_CONTRACT

    def detect(self, x: np.ndarray, engine: EngineConfig | None = None) -> Detections:
        """The detections on the unmasked input ``x`` ``(1, ...)`` (one inference)."""
        return DetectionReader(self.postprocess_fn)(self.unmasked_outputs(x, engine), 1)[0]

    def explain(
        self,
        x: np.ndarray,
        targets: Any = -1,
        params: RISEParams | None = None,
        *,
        label_names: Sequence[str] | None = None,
        progress: bool | None = None,
        engine: EngineConfig | None = None,
        **overrides: Any,
    ) -> MethodResult:
        """Explain the boxes ``targets`` (indices into the detections on ``x``; ``-1``/``None``
        for all) of the preprocessed input ``x`` ``(1, ...)``.

        Keyword ``overrides`` are RISE's parameters; they are checked before any inference
        runs.

        Returns
        -------
        MethodResult
            One map per explained box (``(0, H, W)`` when the model found none; degenerate boxes
            are skipped with a warning). ``num_inferences`` counts the unmasked inference and
            every mask.
        """
        t0 = time.perf_counter()
        rise_params = self.resolve_params(params, **overrides)
        runner = self.engine_for(engine)
        height, width = runner.input.image_size
        rise_params = rise_params.validate(height, width)
        x = np.asarray(x)
        expected = runner.input.shape[1:]
        if x.ndim == len(expected):
            x = x[None]
        if x.shape[0] != 1 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must be one preprocessed input of shape (1, {', '.join(map(str, expected))}),"
                f" got {x.shape}"
            )
        found = self.detect(x, engine)
        chosen = select_target_boxes(found, targets, height, width)
        if not chosen.indices:
            warnings.warn(no_box_message("D-RISE", len(found)), DetectionBoxWarning,
                          stacklevel=4)
            dtype = np.uint8 if rise_params.scale_output else np.float32
            return MethodResult(
                maps=np.zeros((0, height, width), dtype), targets=[], predictions={},
                num_inferences=1,
                extra={"num_masks_used": 0, "seconds": time.perf_counter() - t0,
                       "params": rise_params, "input_size": (height, width),
                       "mask_design": mask_design_used(rise_params)},
            )
        reader = DetectionReader(self.postprocess_fn)
        boxes, labels = chosen.boxes, chosen.labels

        def weights(outputs: OVDict) -> np.ndarray:
            n = next(iter(outputs.values())).shape[0]
            return np.stack([drise_weights(d, boxes, labels) for d in reader(outputs, n)])

        unmasked = drise_weights(found, boxes, labels)
        result = run_rise(runner, x, None, rise_params, weights, unmasked_scores=unmasked,
                          progress=self.progress if progress is None else progress,
                          warn_flat=False)  # D-RISE names its own targets
        warn_uninformative("D-RISE", result.flat, list(chosen.indices),
                           f"its weights did not vary over the {result.num_masks_used} masks")
        return MethodResult(
            maps=result.maps,
            targets=list(chosen.indices),
            predictions=chosen.predictions,
            num_inferences=result.num_inferences + 1,
            extra={"num_masks_used": result.num_masks_used, "flat": result.flat,
                   "seconds": time.perf_counter() - t0, "params": rise_params,
                   "input_size": (height, width), "mask_design": mask_design_used(rise_params),
                   "reliability_estimate": reliability_by_target(
                       chosen.indices, result.reliability_estimate)},
            reliability=reliability_by_target(chosen.indices, result.reliability),
        )

    def generate_saliency_map(self, data: np.ndarray, target_indices: Sequence[int] | None = None,
                              **params: Any) -> dict[int, np.ndarray]:
        """Maps of the boxes ``target_indices`` (all when ``None``) of raw ``data``
        (``preprocess_fn`` is applied), ``{box index: (H, W)}``; :attr:`predictions` gets the
        boxes."""
        return self._maps_by_target(self._generate(data, target_indices, **params))
