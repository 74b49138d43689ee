"""What every black-box method shares: the engine, the scoring of raw outputs, predictions."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import openvino as ov
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._checks import as_real_array, check_progress, fit_dtype
from salvo.errors import PostprocessWarning
from salvo.inference import InferenceEngine

logger = logging.getLogger(__name__)

#: Engine keywords every black-box method accepts.
ENGINE_KEYS = ("batch_size", "num_requests", "precision", "inference_precision",
               "performance_hint", "cache_dir", "timeout")


def make_engine(model: ov.Model, device_name: str, **kwargs: Any) -> InferenceEngine:
    """Compile ``model`` for black-box use: batched, throughput hint, several requests."""
    precision = kwargs.pop("inference_precision", None) or kwargs.pop("precision", None)
    kwargs.pop("precision", None)
    return InferenceEngine(model, device_name, precision=precision, **kwargs)


class BlackBoxMethod:
    """A black-box method: it owns one compiled engine and calls the user's ``postprocess_fn``.

    Parameters
    ----------
    model
        The model (compiled once here).
    postprocess_fn
        Raw outputs (``OVDict``) of a batch -> what the method scores (see
        :attr:`postprocess_contract` of each method).
    device_name
        OpenVINO device.
    progress
        Show a progress bar (on stderr, for runs longer than a second): ``True`` always,
        ``False`` never, ``None`` (default) only when stderr is a terminal. A call's own
        ``progress`` overrides it.
    **engine_kwargs
        ``batch_size``, ``num_requests``, ``precision``, ``performance_hint``, ``cache_dir``,
        ``timeout``.
    """

    #: The method's name in error messages.
    name = "black-box"
    #: What ``postprocess_fn`` must return.
    postprocess_contract = "raw outputs -> class scores (B, num_classes)"

    def __init__(
        self,
        model: ov.Model,
        postprocess_fn: Callable[[OVDict], Any],
        device_name: str = "CPU",
        *,
        progress: bool | None = None,
        **engine_kwargs: Any,
    ) -> None:
        unknown = set(engine_kwargs) - set(ENGINE_KEYS)
        if unknown:
            raise TypeError(f"unknown engine keyword(s) for {self.name}: {sorted(unknown)}; "
                            f"known: {sorted(ENGINE_KEYS)}")
        if postprocess_fn is None or not callable(postprocess_fn):
            raise TypeError(f"{self.name} needs a callable postprocess_fn "
                            f"({self.postprocess_contract}), got {postprocess_fn!r}")
        self.engine = make_engine(model, device_name,
                                  **self.engine_defaults(device_name, dict(engine_kwargs)))
        self.postprocess_fn = postprocess_fn
        self.progress = check_progress(progress)
        self._setup()

    def _setup(self) -> None:
        """Called at the end of ``__init__``, once the engine exists (for subclasses)."""

    def unmasked_outputs(self, x: np.ndarray) -> OVDict:
        """The raw outputs of the unmasked input ``x`` ``(1, ...)`` (one inference)."""
        x = fit_input(x, self.engine)
        result: list[OVDict] = []

        def fill(out: np.ndarray, start: int, stop: int) -> None:
            out[0] = x[0]

        self.engine.run(1, fill, lambda s, e, o: result.append(o))
        return result[0]

    def engine_defaults(self, device_name: str, engine_kwargs: dict[str, Any]
                        ) -> dict[str, Any]:
        """The engine keywords to compile with: the caller's plus the method's defaults."""
        return engine_kwargs


class Scorer:
    """Turn raw outputs into class scores with the user's ``postprocess_fn``, checked.

    salvo calls ``postprocess_fn`` once per batch and expects ``(B, num_classes)``. If it returns a
    leading dimension of 1 for ``B > 1`` (a function written for one image), the scorer says so
    once and calls it one item at a time from then on.
    """

    def __init__(self, postprocess_fn: Callable[[OVDict], Any]) -> None:
        self.postprocess_fn = postprocess_fn
        self.per_item = False
        self.num_classes: int | None = None

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
        """Scores ``(n, num_classes)`` float32 for a batch of ``n`` items."""
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
        scores = scores.astype(np.float32, copy=False)
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
    from salvo.explainer.explanation import Prediction

    return {k: Prediction(label=k, score=float(scores[k]), bounding_box=None) for k in keys}


@dataclass
class BlackBoxResult:
    """What a black-box method returns to the Explainer.

    Attributes
    ----------
    maps
        ``(T, H, W)`` raw maps (uint8 when scaled, else float32), one per target, in order.
    targets
        The target keys (class indices, or box indices for detection).
    predictions
        ``{target: Prediction(label, score, bounding_box)}``.
    num_inferences
        Model inferences the explanation ran (the unmasked one included).
    extra
        Method-specific facts (masks used, seconds, …).
    """

    maps: np.ndarray
    targets: list[int]
    predictions: dict[int, Any]
    num_inferences: int
    extra: dict[str, Any] = field(default_factory=dict)
