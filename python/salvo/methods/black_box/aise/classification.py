"""AISE for classification models (see :mod:`salvo.methods.black_box.aise.base`)."""

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
    AISE_CLASSIFICATION_PRESETS,
    AISEBase,
    AISEClassificationParams,
    _scaled_uint8,
    _sigmoid,
)
from salvo.methods.black_box.base import Scorer, predictions_for, warn_uninformative

__all__ = ["AISEClassification", "resolve_classification_params"]


class AISEClassification(AISEBase):
    """AISE for classification models on the batched asynchronous engine (the reference
    toolkit's ``AISEClassification``; parameters:
    :class:`~salvo.methods.black_box.base.BlackBoxXAIMethod`). A call's parameters are
    :class:`~salvo.methods.black_box.aise.base.AISEClassificationParams`."""

    tasks = (Task.CLASSIFICATION,)
    params_class = AISEClassificationParams
    presets = AISE_CLASSIFICATION_PRESETS
    other_variant = {"divisors": "divisors is a parameter of AISE for detection; for "
                                 "classification set kernel_widths"}

    postprocess_contract = ("raw outputs -> class scores (B, num_classes), logits or "
                            "probabilities")

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
        """Explain ``x`` ``(1, ...)`` for ``targets`` (int, name, list, ``-1``/``None`` for all).

        ``params``: ``preset``, ``num_iterations_per_kernel``, ``kernel_widths``,
        ``solver_epsilon``, ``locally_biased``, ``scale_output``. They are checked before any
        inference runs.

        Returns
        -------
        MethodResult
            ``maps`` ``(T, H, W)``; ``num_inferences = 1 + 2 * T * K * N``; ``extra`` holds
            ``history`` ``(T, K, N, 3)`` (centre x, centre y, objective), ``num_rounds``,
            ``seconds`` and ``params``.
        """
        t0 = time.perf_counter()
        call = self._begin(x, params, overrides, engine)
        aise = call.params
        height, width = call.engine.input.image_size
        scorer = Scorer(self.postprocess_fn)
        unmasked = scorer(self.unmasked_outputs(call.x, engine), 1)[0]
        num_classes = unmasked.shape[0]
        keys = self.resolve_target_spec(targets, unmasked, num_classes, label_names)
        num_widths = len(aise.kernel_widths)
        per_target = 2 * num_widths * aise.num_iterations_per_kernel
        warn_long_run("AISE", 1 + per_target * len(keys), len(keys), per_target,
                      f"2 images x {num_widths} kernel widths x "
                      f"{aise.num_iterations_per_kernel} iterations", stacklevel=4)
        columns = np.asarray(keys, np.intp)
        num_searches = len(keys) * num_widths
        lower = np.zeros((num_searches, 2))
        upper = np.ones((num_searches, 2))
        sigmas = np.tile(np.asarray(aise.kernel_widths, np.float64), len(keys))
        search_column = np.repeat(columns, num_widths)

        def image_values(outputs: OVDict, owner: np.ndarray, kind: np.ndarray) -> np.ndarray:
            n = owner.shape[0]
            scores = scorer(outputs, n)
            if scores.shape[1] != num_classes:
                raise ValueError(
                    f"postprocess_fn returned {scores.shape[1]} classes for masked inputs and "
                    f"{num_classes} for the unmasked one"
                )
            picked = scores[np.arange(n), search_column[owner]].astype(np.float64)
            outside = (scores.max(axis=1) > 1) | (scores.min(axis=1) < 0)
            return np.where(outside, _sigmoid(picked), picked)

        outcome = self._search(call, lower, upper, sigmas, len(keys), True, image_values,
                               progress)
        warn_uninformative("AISE", outcome.flat, keys,
                           "its objective (the score difference of the preserved and the deleted "
                           "image, through the sigmoid for scores outside [0, 1]) did not vary")
        maps = _scaled_uint8(outcome.maps) if aise.scale_output else outcome.maps
        return MethodResult(
            maps=maps,
            targets=keys,
            predictions=predictions_for(unmasked, keys),
            num_inferences=outcome.num_inferences + 1,
            scores=unmasked,
            extra={"history": outcome.history, "num_rounds": outcome.num_rounds,
                   "seconds": time.perf_counter() - t0, "params": aise,
                   "kernel_widths": np.tile(np.asarray(aise.kernel_widths), (len(keys), 1)),
                   "input_size": (height, width)},
        )

    def generate_saliency_map(
        self,
        data: np.ndarray,
        target_indices: Sequence[int] | None,
        preset: Preset = Preset.BALANCE,
        num_iterations_per_kernel: int | None = None,
        kernel_widths: Sequence[float] | np.ndarray | None = None,
        solver_epsilon: float = 0.1,
        locally_biased: bool = False,
        scale_output: bool = True,
    ) -> dict[int, np.ndarray]:
        """The reference toolkit's call: AISE maps of raw ``data`` (``preprocess_fn`` is
        applied) for ``target_indices`` (``None``: every class), ``{target: (H, W)}``;
        :attr:`predictions` gets ``{target: Prediction(label, score)}``."""
        return self._maps_by_target(self._generate(
            data, target_indices, preset=preset,
            num_iterations_per_kernel=num_iterations_per_kernel,
            kernel_widths=None if kernel_widths is None else tuple(kernel_widths),
            solver_epsilon=solver_epsilon, locally_biased=locally_biased,
            scale_output=scale_output,
        ))


def resolve_classification_params(preset: Preset | str | None = None,
                                  **overrides: Any) -> AISEClassificationParams:
    """The preset (BALANCE by default), then explicit keywords, which win; validated (see
    :meth:`~salvo.methods.black_box.aise.base.AISEBase.resolve_params`).

    Raises
    ------
    TypeError
        An unknown keyword.
    ValueError
        A bad value, an unknown preset, or a parameter of AISE for detection (with a hint).
    """
    params = AISEClassification.resolve_params(preset=preset, **overrides)
    return cast(AISEClassificationParams, params)
