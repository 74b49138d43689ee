"""AISE for detection models (see :mod:`salvo.methods.black_box.aise.base`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._progress import warn_long_run
from salvo.common import Preset, Task
from salvo.inference import EngineConfig
from salvo.methods.base import MethodParams, MethodResult
from salvo.methods.black_box.aise.base import (
    AISE_DETECTION_PRESETS,
    AISEBase,
    AISEDetectionParams,
    _scaled_uint8,
)
from salvo.methods.black_box.base import warn_uninformative
from salvo.methods.black_box.detection import (
    DETECTION_CONTRACT,
    DetectionReader,
    _box_warning,
    Detections,
    match_scores,
    no_box_message,
    select_target_boxes,
)

__all__ = ["AISEDetection", "resolve_detection_params"]


class AISEDetection(AISEBase):
    """AISE for detection models on the batched asynchronous engine (the reference toolkit's
    ``AISEDetection``; parameters: :class:`~salvo.methods.black_box.base.BlackBoxXAIMethod`).
    A call's parameters are :class:`~salvo.methods.black_box.aise.base.AISEDetectionParams`;
    targets are box indices into the detections on the input."""

    tasks = (Task.DETECTION,)
    params_class = AISEDetectionParams
    presets = AISE_DETECTION_PRESETS
    other_variant = {"kernel_widths": "kernel_widths is a parameter of AISE for classification; "
                                      "for detection the widths are min(box width, height) / "
                                      "divisors: set divisors"}

    postprocess_contract = DETECTION_CONTRACT

    def detect(self, x: np.ndarray, engine: EngineConfig | None = None) -> Detections:
        """The detections on the unmasked input ``x`` ``(1, ...)`` (one inference)."""
        x = self._check_input(x, self.engine_for(engine))
        return DetectionReader(self.postprocess_fn)(self.unmasked_outputs(x, engine), 1)[0]

    def explain(
        self,
        x: np.ndarray,
        targets: Any = -1,
        params: MethodParams | None = None,
        *,
        label_names: Sequence[str] | None = None,
        progress: bool | None = None,
        engine: EngineConfig | None = None,
        **overrides: Any,
    ) -> MethodResult:
        """Explain the boxes ``targets`` (indices into the detections on ``x``; ``-1``/``None``
        for all) of the preprocessed input ``x`` ``(1, ...)``.

        ``params``: ``preset``, ``num_iterations_per_kernel``, ``divisors``, ``solver_epsilon``,
        ``locally_biased``, ``scale_output``; checked before any inference runs.

        Returns
        -------
        MethodResult
            One map per explained box (``(0, H, W)`` when the model found none); degenerate
            boxes are skipped with a warning. ``num_inferences = 1 + T * K * N``.
        """
        t0 = time.perf_counter()
        call = self._begin(x, params, overrides, engine)
        aise = call.params
        height, width = call.engine.input.image_size
        reader = DetectionReader(self.postprocess_fn)
        found = reader(self.unmasked_outputs(call.x, engine), 1)[0]
        chosen = select_target_boxes(found, targets, height, width)
        num_targets = len(chosen.indices)
        dtype = np.uint8 if aise.scale_output else np.float32
        if num_targets == 0:
            _box_warning(no_box_message("AISE", len(found)))
            return MethodResult(
                maps=np.zeros((0, height, width), dtype), targets=[], predictions={},
                num_inferences=1,
                extra={"history": np.zeros((0, len(aise.divisors),
                                            aise.num_iterations_per_kernel, 3)),
                       "num_rounds": 0, "seconds": time.perf_counter() - t0, "params": aise,
                       "kernel_widths": np.zeros((0, len(aise.divisors))),
                       "input_size": (height, width)},
            )
        divisors = np.asarray(aise.divisors, np.float64)
        num_widths = divisors.shape[0]
        per_target = num_widths * aise.num_iterations_per_kernel
        warn_long_run("AISE", 1 + per_target * num_targets, num_targets, per_target,
                      f"{num_widths} divisors x {aise.num_iterations_per_kernel} iterations",
                      stacklevel=4)
        scale = np.array([width, height, width, height], np.float64)
        norm = chosen.boxes / scale
        box_w = norm[:, 2] - norm[:, 0]
        box_h = norm[:, 3] - norm[:, 1]
        widths = np.minimum(box_w, box_h)[:, None] / divisors[None, :]  # (T, K)
        lo = np.stack([np.maximum(norm[:, 0] - 0.5 * box_w, 0.0),
                       np.maximum(norm[:, 1] - 0.5 * box_h, 0.0)], axis=1)
        hi = np.stack([np.minimum(norm[:, 2] + 0.5 * box_w, 1.0),
                       np.minimum(norm[:, 3] + 0.5 * box_h, 1.0)], axis=1)
        lower = np.repeat(lo, num_widths, axis=0)
        upper = np.repeat(hi, num_widths, axis=0)
        sigmas = widths.reshape(-1)
        target_of_search = np.repeat(np.arange(num_targets), num_widths)

        def image_values(outputs: OVDict, owner: np.ndarray, kind: np.ndarray) -> np.ndarray:
            detections = reader(outputs, owner.shape[0])
            out = np.empty(owner.shape[0], np.float64)
            for i, det in enumerate(detections):
                t = target_of_search[owner[i]]
                out[i] = match_scores(chosen.boxes[t], int(chosen.labels[t]), det)
            return out

        outcome = self._search(call, lower, upper, sigmas, num_targets, False, image_values,
                               progress)
        warn_uninformative("AISE", outcome.flat, list(chosen.indices),
                           "its objective (IoU x score of the best match) did not vary")
        maps = _scaled_uint8(outcome.maps) if aise.scale_output else outcome.maps
        return MethodResult(
            maps=maps,
            targets=list(chosen.indices),
            predictions=chosen.predictions,
            num_inferences=outcome.num_inferences + 1,
            extra={"history": outcome.history, "num_rounds": outcome.num_rounds,
                   "seconds": time.perf_counter() - t0, "params": aise,
                   "kernel_widths": widths, "input_size": (height, width)},
        )

    def generate_saliency_map(
        self,
        data: np.ndarray,
        target_indices: Sequence[int] | None,
        preset: Preset = Preset.BALANCE,
        num_iterations_per_kernel: int | None = None,
        divisors: Sequence[float] | np.ndarray | None = None,
        solver_epsilon: float = 0.05,
        locally_biased: bool = False,
        scale_output: bool = True,
    ) -> dict[int, np.ndarray]:
        """The reference toolkit's call: AISE maps of the boxes ``target_indices`` (``None``:
        every box) found on raw ``data`` (``preprocess_fn`` is applied), ``{box: (H, W)}``;
        :attr:`predictions` gets the boxes."""
        return self._maps_by_target(self._generate(
            data, target_indices, preset=preset,
            num_iterations_per_kernel=num_iterations_per_kernel,
            divisors=None if divisors is None else tuple(divisors),
            solver_epsilon=solver_epsilon, locally_biased=locally_biased,
            scale_output=scale_output,
        ))


def resolve_detection_params(preset: Preset | str | None = None,
                             **overrides: Any) -> AISEDetectionParams:
    """The preset (BALANCE by default), then explicit keywords, which win; validated (see
    :meth:`~salvo.methods.black_box.aise.base.AISEBase.resolve_params`).

    Raises
    ------
    TypeError
        An unknown keyword.
    ValueError
        A bad value, an unknown preset, or a parameter of AISE for classification (with a
        hint).
    """
    params = AISEDetection.resolve_params(preset=preset, **overrides)
    return cast(AISEDetectionParams, params)
