"""What every black-box method shares: the base class, the scoring of raw outputs, predictions,
the check for maps that carry no information."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import openvino as ov
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._checks import as_real_array, fit_dtype
from salvo.errors import PostprocessWarning
from salvo.errors import UninformativeMapWarning
from salvo.inference import EngineConfig, InferenceEngine
from salvo.methods.base import IDENTITY, MethodBase, MethodResult, Prediction

logger = logging.getLogger(__name__)

#: Relative spread at or below which scores count as constant: float32's machine epsilon
#: ``2**-23``. Rounding a real number ``v`` to float32 moves it by at most ``2**-24 * |v|`` (the
#: unit roundoff), so two roundings of one constant ``c`` can differ by up to ``2**-23 * |c|``:
#: scores whose spread over the perturbations is at most ``FLAT_RELATIVE`` times their magnitude
#: are what float32 rounding alone makes of a constant, and a map built from them shows rounding
#: noise, not the model.
FLAT_RELATIVE = 2.0 ** -23

class BlackBoxXAIMethod(MethodBase):
    """A black-box method: it only runs the model (many times) and reads its outputs through
    the user's ``postprocess_fn`` (the reference toolkit's ``BlackBoxXAIMethod``).

    Parameters
    ----------
    model
        The model (never modified).
    postprocess_fn
        Raw outputs (``OVDict``) of a batch -> what the method scores (see
        :attr:`postprocess_contract` of each method).
    preprocess_fn
        Raw data -> model input, for :meth:`generate_saliency_map`; identity by default.
    device_name
        Any OpenVINO device string.
    prepare_model
        Compile the model now (otherwise on first use, or with :meth:`prepare_model`).
    progress
        Show a progress bar (on stderr, for runs longer than a second): ``True`` always,
        ``False`` never, ``None`` (default) only when stderr is a terminal. A call's own
        ``progress`` overrides it.
    **engine
        :class:`~salvo.inference.EngineConfig` fields: ``batch_size``, ``num_requests``,
        ``precision`` (or ``inference_precision``), ``performance_hint``, ``cache_dir``,
        ``timeout``. By default the engine picks its batch size and request count from the
        device and the model (:class:`~salvo.inference.InferenceEngine`).
    """

    #: The method's name in messages.
    name = "black-box"
    #: What ``postprocess_fn`` must return.
    postprocess_contract = "raw outputs -> class scores (B, num_classes)"

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        postprocess_fn: Callable[[OVDict], Any],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        device_name: str = "CPU",
        prepare_model: bool = True,
        *,
        progress: bool | None = None,
        **engine: Any,
    ) -> None:
        super().__init__(model, preprocess_fn, device_name, progress=progress, **engine)
        if postprocess_fn is None or not callable(postprocess_fn):
            raise TypeError(f"{self.name} needs a callable postprocess_fn "
                            f"({self.postprocess_contract}), got {postprocess_fn!r}")
        self.postprocess_fn = postprocess_fn
        if prepare_model:
            self.prepare_model()

    def prepare_model(self, load_model: bool = True) -> ov.Model:
        """Compile the model (with ``load_model``) for the method's own engine settings;
        return it."""
        if load_model:
            self.engine_for(None)
        return self._engine_model()

    def unmasked_outputs(self, x: np.ndarray, engine: EngineConfig | None = None) -> OVDict:
        """The raw outputs of the unmasked input ``x`` ``(1, ...)`` (one inference)."""
        runner = self.engine_for(engine)
        x = fit_input(x, runner)
        result: list[OVDict] = []

        def fill(out: np.ndarray, start: int, stop: int) -> None:
            out[0] = x[0]

        runner.run(1, fill, lambda s, e, o: result.append(o))
        return result[0]

    def scores_of(self, x: np.ndarray, engine: EngineConfig | None = None) -> np.ndarray:
        """Class scores ``(num_classes,)`` float32 of the unmasked input ``x`` ``(1, …)``."""
        return Scorer(self.postprocess_fn)(self.unmasked_outputs(x, engine), 1)[0]

    def _generate(self, data: Any, target_indices: Sequence[int] | None, **params: Any
                  ) -> MethodResult:
        """What every black-box ``generate_saliency_map`` does: :meth:`explain` raw ``data``
        (``preprocess_fn`` applied) for ``target_indices`` (``None``: every target) with the
        parameter keywords ``params``, and keep the result's predictions in
        :attr:`predictions`."""
        result = self.explain(self.preprocess_fn(data),
                              -1 if target_indices is None else list(target_indices), **params)
        self.predictions = dict(result.predictions)
        return result

    @staticmethod
    def _maps_by_target(result: MethodResult) -> dict[int, np.ndarray]:
        """``{target: (H, W) map}`` of a result (the reference's return value)."""
        return {int(t): result.maps[i] for i, t in enumerate(result.targets)}

    def get_logits(self, data_preprocessed: np.ndarray) -> np.ndarray:
        """``postprocess_fn`` of the model's outputs for one preprocessed input, as the
        reference returns it (``(1, num_classes)``; checked by
        :func:`~salvo.methods.black_box.utils.check_classification_output`)."""
        from salvo.methods.black_box.utils import check_classification_output

        logits = self.postprocess_fn(self.unmasked_outputs(np.asarray(data_preprocessed)))
        check_classification_output(logits)
        return logits


#: salvo 0.1's names.
BlackBoxMethod = BlackBoxXAIMethod
BlackBoxResult = MethodResult


def is_flat(spread: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """Which score series carry no information: ``spread <= FLAT_RELATIVE * magnitude``.

    Parameters
    ----------
    spread
        ``(T,)`` float64: ``max - min`` of each series (of scores, or of an objective made of
        them).
    magnitude
        ``(T,)`` float64: the largest absolute score of each series.

    Returns
    -------
    numpy.ndarray
        ``(T,)`` bool. A series of zeros is flat; so is one that does not vary beyond float32
        resolution at its magnitude (see :data:`FLAT_RELATIVE`).
    """
    spread = np.asarray(spread, np.float64)
    magnitude = np.asarray(magnitude, np.float64)
    return ~(spread > FLAT_RELATIVE * magnitude)


def warn_uninformative(method: str, flat: np.ndarray, targets: Sequence[Any], what: str,
                       *, stacklevel: int = 3) -> None:
    """Warn (:class:`~salvo.errors.UninformativeMapWarning`) about the flat maps, if any.

    Parameters
    ----------
    method
        The method's name, for the message.
    flat
        ``(T,)`` bool, one per map.
    targets
        The maps' targets (class or box indices), in the same order.
    what
        What did not vary, e.g. ``"the scores did not vary over the 1000 masks"``.
    stacklevel
        Passed to :func:`warnings.warn`.
    """
    flat = np.asarray(flat, bool)
    if not flat.any():
        return
    names = [targets[i] for i in np.flatnonzero(flat)]
    shown = ", ".join(str(t) for t in names[:10]) + (", ..." if len(names) > 10 else "")
    warnings.warn(
        f"{method}: the map of {len(names)} of {len(flat)} target(s) ({shown}) carries no "
        f"information: {what} beyond float32 resolution (relative spread <= 2**-23); "
        f"returned flat (all zeros)",
        UninformativeMapWarning, stacklevel=stacklevel,
    )


class Scorer:
    """Turn raw outputs into class scores with the user's ``postprocess_fn``, checked.

    salvo calls ``postprocess_fn`` once per batch and expects ``(B, num_classes)``. If it returns a
    leading dimension of 1 for ``B > 1`` (a function written for one image), the scorer says so
    once and calls it one item at a time from then on.

    Parameters
    ----------
    postprocess_fn
        Raw outputs -> class scores.
    dtype
        The scores' dtype: ``numpy.float32`` (default) or ``numpy.float64``, which keeps a
        float64 ``postprocess_fn`` output exact (RISE subtracts a common offset from the scores
        before it narrows them, so score differences far below float32 resolution at the scores'
        magnitude survive).
    """

    def __init__(self, postprocess_fn: Callable[[OVDict], Any],
                 dtype: type = np.float32) -> None:
        self.postprocess_fn = postprocess_fn
        self.per_item = False
        self.num_classes: int | None = None
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")

    def _call(self, outputs: OVDict) -> np.ndarray:
        try:
            scores = self.postprocess_fn(outputs)
        except Exception as exc:
            raise ValueError(f"postprocess_fn raised {type(exc).__name__}: {exc}") from exc
        scores = np.asarray(scores)
        if scores.dtype == object or not np.issubdtype(scores.dtype, np.number):
            raise ValueError(
                f"postprocess_fn must return numeric class scores, got dtype {scores.dtype}"
            )
        return scores

    def __call__(self, outputs: OVDict, n: int) -> np.ndarray:
        """Scores ``(n, num_classes)`` (:attr:`dtype`) for a batch of ``n`` items."""
        if not self.per_item:
            scores = self._call(outputs)
            if scores.ndim == 1 and n == 1:
                scores = scores[None]
            if scores.ndim == 2 and scores.shape[0] == n:
                return self._check(scores)
            if n > 1 and scores.ndim == 2 and scores.shape[0] == 1:
                warnings.warn(
                    f"postprocess_fn returned scores of shape {scores.shape} for a batch of "
                    f"{n}; calling it one item at a time (return (B, num_classes), one row per "
                    "item, to avoid this)",
                    PostprocessWarning, stacklevel=2,
                )
                self.per_item = True
            else:
                raise ValueError(
                    f"postprocess_fn returned shape {scores.shape} for a batch of {n} items; "
                    f"expected ({n}, num_classes)"
                )
        rows = []
        for i in range(n):
            one = OVDict({port: arr[i : i + 1] for port, arr in outputs.items()})
            s = self._call(one).reshape(-1)
            rows.append(s)
        return self._check(np.stack(rows))

    def _check(self, scores: np.ndarray) -> np.ndarray:
        scores = scores.astype(self.dtype, copy=False)
        if self.num_classes is None:
            self.num_classes = scores.shape[1]
        elif scores.shape[1] != self.num_classes:
            raise ValueError(
                f"postprocess_fn returned {scores.shape[1]} classes, earlier {self.num_classes}"
            )
        if not np.all(np.isfinite(scores)):
            bad = np.argwhere(~np.isfinite(scores))[0]
            raise ValueError(
                f"postprocess_fn returned a non-finite score ({scores[tuple(bad)]}) for item "
                f"{bad[0]}, class {bad[1]}"
            )
        return scores


def fit_input(x: np.ndarray, engine: InferenceEngine) -> np.ndarray:
    """``x`` in the model input's element type; values that do not fit it (floats in [0, 1]
    for a uint8 input, integers outside 0..255, …) are a ``ValueError``, never truncated or
    wrapped (see :func:`salvo._checks.fit_dtype`)."""
    x = as_real_array(x, "x (the preprocessed input)")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValueError("x (the preprocessed input) contains NaN or infinite values")
    return fit_dtype(x, engine.input.dtype, name="x (the preprocessed input)",
                     target=f"the model input {engine.input.name!r}")


def image_for_fill(x: np.ndarray, engine: InferenceEngine) -> np.ndarray:
    """The preprocessed image ``(1, …)`` as float32 ``(C, H, W)`` or ``(H, W, C)``.

    Raises
    ------
    ValueError
        Not an image model, or values of ``x`` that do not fit the model input's element type.
    """
    layout = engine.input.layout
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(
            f"black-box methods need an image input (NCHW or NHWC); the model input has shape "
            f"{engine.input.shape}"
        )
    return np.ascontiguousarray(fit_input(x, engine)[0], dtype=np.float32)


def predictions_for(scores: np.ndarray, keys: Sequence[int]) -> dict[int, Any]:
    """``{target: Prediction(label=target, score, None)}`` from unmasked scores ``(C,)``."""
    return {k: Prediction(label=k, score=float(scores[k]), bounding_box=None) for k in keys}


