"""AISE (adaptive input sampling for explanation) for classification and detection, batched.

AISE perturbs the input with Gaussian masks and lets a derivative-free optimiser (DIRECT) look
for the mask centre that matters most; the saliency map is the kernel-density estimate of
every mask it tried, weighted by the objective it scored.

For each target and each kernel width ``sigma`` a DIRECT search maximises the objective over
the mask centre ``(x, y)`` (normalised image coordinates). The map of one width is
``sum_i value_i * g_i`` over the search's evaluations, divided by its maximum when that is
positive; the target's map is the sum over widths, divided by its maximum. As in the reference
that last division happens whatever the maximum's sign: when every evaluation lowered the score
(a negative maximum) it reverses the map's order, so the peak is where the evaluations summed
most negatively. Predictions and boxes are in the pixels of the model input (``x``);
``extra["input_size"]`` is its ``(H, W)`` for rescaling them to the original photo.

Classification
    ``value = score(x * g) - score(x * (1 - g))``: two inferences per evaluation. Scores outside
    [0, 1] (for any class of that inference) go through a sigmoid first, as in the reference.
Detection
    ``value = max over the boxes predicted on x * g with the target's label of IoU * score``:
    one inference per evaluation. Widths are ``min(box w, h) / divisors`` and the search is
    bounded to the box grown by 50 % on each side (clipped to the image).

What salvo does differently from the reference (which calls ``scipy.optimize.direct`` with a
one-point objective, one synchronous inference at a time): every DIRECT iteration proposes all
its points at once (:class:`salvo.kernels.direct.BatchedDirect`), the searches of all widths and
all targets advance together, and each round of points is one stream of masked images through
the batched asynchronous engine. The optimiser reproduces SciPy's DIRECT point for point, and
each search stops at exactly ``num_iterations_per_kernel`` evaluations (SciPy overshoots its
``maxfun``; the reference then ignores the extra evaluations in its map), so the maps are the
reference's, computed with fewer inferences. ``num_inferences`` is exact.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._progress import RunProgress
from salvo.common import Method, Preset
from salvo.inference import EngineConfig, InferenceEngine, is_cpu_only
from salvo.kernels import fill_masked
from salvo.kernels.direct import BatchedDirect
from salvo.kernels.gaussian import kde_accumulate, render_masks
from salvo.methods.base import MethodParams
from salvo.methods.black_box.base import BlackBoxXAIMethod, image_for_fill, is_flat

logger = logging.getLogger(__name__)

__all__ = [
    "AISE_CLASSIFICATION_PRESETS",
    "AISE_DETECTION_PRESETS",
    "AISEBase",
    "AISEClassificationParams",
    "AISEDetectionParams",
    "CPU_BATCH_STEPS",
    "DEFAULT_BATCH_SIZE",
    "SearchOutcome",
    "run_searches",
]

#: Masks rendered per fill call at most (the engine's batch is usually smaller).
_MASK_BUFFER = 64
#: Engine batch size when the caller does not choose one, off CPU. A DIRECT round is a few
#: dozen images, and the device computes a round's last, partial batch in full; on this CPU (2
#: cores, EfficientNet-Lite0, one target) batch 2 took 1.6 s / 3.6 s at SPEED / BALANCE
#: against 2.0 s / 4.4 s at batch 4 and 2.6 s / 5.0 s at batch 8, while OpenVINO's own
#: throughput hardly depends on the batch size there. Pass ``batch_size`` to override.
DEFAULT_BATCH_SIZE = 2
#: On CPU the engine picks 1 or 2 from the measured time of one image: a slow image gains
#: nothing from batching and a half-empty last batch of a round costs a whole inference.
#: Measured (BALANCE, quiet 2-core machine, wall over the plain-OpenVINO bound): SSDLite
#: (9 ms per image) batch 1: 1.30, batch 2: 1.69; EfficientNet-Lite0 224 px (3.3 ms) batch 2:
#: 1.01, batch 1: 1.14.
CPU_BATCH_STEPS = ((6e-3, 1), (0.0, 2))


# ----------------------------------------------------------------------------- parameters

def _check_budget(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"num_iterations_per_kernel must be a positive int, got {value!r}")
    return int(value)


def _check_epsilon(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"solver_epsilon must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _positive_floats(name: str, values: Any) -> tuple[float, ...]:
    """A non-empty sequence of finite numbers > 0, as a tuple of floats."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        if isinstance(values, (int, float, np.integer, np.floating)) and not isinstance(
            values, bool
        ):
            values = [values]
        else:
            raise ValueError(f"{name} must be a sequence of positive numbers, got {values!r}")
    out = []
    for v in np.asarray(list(values), dtype=object).reshape(-1):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must hold numbers, got {v!r} in {values!r}")
        f = float(v)
        if not math.isfinite(f) or f <= 0:
            raise ValueError(f"{name} must all be finite and > 0, got {v!r} in {list(values)!r}")
        out.append(f)
    if not out:
        raise ValueError(f"{name} must not be empty")
    return tuple(out)


def _checked_search_fields(params: Any) -> dict[str, Any]:
    """The search fields both parameter classes share, checked and in canonical types."""
    return {
        "num_iterations_per_kernel": _check_budget(params.num_iterations_per_kernel),
        "solver_epsilon": _check_epsilon(params.solver_epsilon),
        "locally_biased": _check_flag("locally_biased", params.locally_biased),
        "scale_output": _check_flag("scale_output", params.scale_output),
    }


@dataclass(frozen=True)
class AISEClassificationParams(MethodParams):
    """AISE hyper-parameters for classification.

    Attributes
    ----------
    num_iterations_per_kernel
        Objective evaluations per kernel width and target (each costs two inferences).
    kernel_widths
        Gaussian widths ``sigma`` in normalised image coordinates (> 0).
    solver_epsilon
        DIRECT's epsilon (Jones' ``eps``, >= 0).
    locally_biased
        DIRECT-L (True) or the original DIRECT (False, the reference's choice).
    scale_output
        Min-max scale each map to uint8 [0, 255]; otherwise float32 maps (max 1).
    """

    num_iterations_per_kernel: int = 50
    kernel_widths: tuple[float, ...] = (0.1, 0.175, 0.25)
    solver_epsilon: float = 0.1
    locally_biased: bool = False
    scale_output: bool = True

    def validate(self, height: int = 0, width: int = 0) -> AISEClassificationParams:
        """Check every field; return a copy with canonical types (the input size does not
        matter: widths are relative).

        Raises
        ------
        ValueError
            A field out of range, naming it and the value.
        """
        return replace(self, **_checked_search_fields(self),
                       kernel_widths=_positive_floats("kernel_widths", self.kernel_widths))


@dataclass(frozen=True)
class AISEDetectionParams(MethodParams):
    """AISE hyper-parameters for detection.

    Attributes
    ----------
    num_iterations_per_kernel
        Objective evaluations (inferences) per kernel width and box.
    divisors
        Kernel widths are ``min(box width, box height) / divisor`` (normalised), one per divisor.
    solver_epsilon
        DIRECT's epsilon (>= 0).
    locally_biased
        DIRECT-L (True) or the original DIRECT (False, the reference's choice).
    scale_output
        Min-max scale each map to uint8 [0, 255]; otherwise float32 maps (max 1).
    """

    num_iterations_per_kernel: int = 50
    divisors: tuple[float, ...] = (7.0, 4.0, 1.0)
    solver_epsilon: float = 0.05
    locally_biased: bool = False
    scale_output: bool = True

    def validate(self, height: int = 0, width: int = 0) -> AISEDetectionParams:
        """Check every field; return a copy with canonical types (the input size does not
        matter: widths are relative to each box).

        Raises
        ------
        ValueError
            A field out of range, naming it and the value.
        """
        return replace(self, **_checked_search_fields(self),
                       divisors=_positive_floats("divisors", self.divisors))


#: (iterations per kernel, kernel widths) per preset: SPEED 20 and BALANCE 50 evaluations per
#: width over the widths (0.1, 0.175, 0.25); QUALITY 50 over five widths from 0.075 to 0.25.
AISE_CLASSIFICATION_PRESETS: dict[Preset, AISEClassificationParams] = {
    Preset.SPEED: AISEClassificationParams(20, (0.1, 0.175, 0.25)),
    Preset.BALANCE: AISEClassificationParams(50, (0.1, 0.175, 0.25)),
    Preset.QUALITY: AISEClassificationParams(
        50, tuple(float(v) for v in np.linspace(0.075, 0.25, 5))
    ),
}
#: (iterations per kernel, divisors) per preset, as the reference defines them.
AISE_DETECTION_PRESETS: dict[Preset, AISEDetectionParams] = {
    Preset.SPEED: AISEDetectionParams(20, (7.0, 4.0, 1.0)),
    Preset.BALANCE: AISEDetectionParams(50, (7.0, 4.0, 1.0)),
    Preset.QUALITY: AISEDetectionParams(50, tuple(float(v) for v in np.linspace(8, 1, 5))),
}


# ----------------------------------------------------------------------------- the search

def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) overflows for x < -709: the sigmoid is then 0
        return 1.0 / (1.0 + np.exp(-x))


@dataclass
class SearchOutcome:
    """What the batched searches produced.

    Attributes
    ----------
    maps
        ``(T, H, W)`` float32, the unscaled AISE maps (each normalised to max 1 when positive).
    history
        ``(T, K, N, 3)`` float64: for every target, width and evaluation, ``(cx, cy, value)``.
    num_inferences
        Masked inferences run.
    num_rounds
        DIRECT iterations (rounds of batched inference).
    flat
        ``(T,)`` bool: targets whose objective was flat (it did not vary over their evaluations
        beyond float32 resolution at the magnitude of the scores it is made of, e.g. every
        score saturated by the sigmoid); their maps are zeros.
    """

    maps: np.ndarray
    history: np.ndarray
    num_inferences: int
    num_rounds: int
    flat: np.ndarray | None = None


class _Round:
    """The masked images of one DIRECT round: ``per_eval`` images per point, in point order
    (``x * g`` first, then ``x * (1 - g)`` when two), written into the engine's requests."""

    def __init__(self, points: np.ndarray, owner: np.ndarray, sigmas: np.ndarray,
                 per_eval: int, image: np.ndarray, layout: str, buffer: np.ndarray,
                 image_values: Callable[[OVDict, np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.num_images = points.shape[0] * per_eval
        index = np.arange(self.num_images)
        evaluation = index // per_eval
        self.cx = points[evaluation, 0]
        self.cy = points[evaluation, 1]
        self.sigma = sigmas[owner[evaluation]]
        self.owner = owner[evaluation]
        self.kind = index % per_eval
        self.scores = np.empty(self.num_images, np.float64)
        self.image = image
        self.layout = layout
        self.buffer = buffer
        self.image_values = image_values

    def fill(self, out: np.ndarray, start: int, stop: int) -> None:
        height, width = self.buffer.shape[1:]
        for a in range(start, stop, self.buffer.shape[0]):
            b = min(stop, a + self.buffer.shape[0])
            masks = render_masks(self.cx[a:b], self.cy[a:b], self.sigma[a:b], height, width,
                                 self.kind[a:b] == 1, out=self.buffer)
            fill_masked(self.image, masks, out[a - start: b - start], self.layout, 1)

    def consume(self, start: int, stop: int, outputs: OVDict) -> None:
        self.scores[start:stop] = self.image_values(outputs, self.owner[start:stop],
                                                    self.kind[start:stop])


def run_searches(
    engine: InferenceEngine,
    image: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    sigmas: np.ndarray,
    budget: int,
    eps: float,
    locally_biased: bool,
    num_targets: int,
    preserve_and_delete: bool,
    image_values: Callable[[OVDict, np.ndarray, np.ndarray], np.ndarray],
    bar: Any = None,
) -> SearchOutcome:
    """Run ``S = T * K`` AISE searches together and build the ``T`` maps.

    Parameters
    ----------
    engine
        The compiled model.
    image
        The preprocessed image as :func:`~salvo.methods.black_box.base.image_for_fill` gives it.
    lower, upper
        ``(S, 2)`` search boxes for ``(cx, cy)``; search ``s`` belongs to target ``s // K``.
    sigmas
        ``(S,)`` kernel widths.
    budget, eps, locally_biased
        DIRECT's evaluations per search, epsilon and variant.
    num_targets
        ``T``.
    preserve_and_delete
        Two images per evaluation (``x * g`` then ``x * (1 - g)``, value = difference) or one
        (``x * g``, value = its score).
    image_values
        ``image_values(outputs, search_of_image, kind_of_image) -> (n,)`` float64: the score of
        each image of a batch for its search's target (``kind`` 0 = ``x * g``, 1 = ``x * (1-g)``).
    bar
        Optional progress (a :class:`~salvo._progress.RunProgress` or a tqdm bar: anything
        with ``update(n)``), advanced by images.

    A target whose objective is flat — the spread of its values over all its evaluations (all
    widths) at most :data:`~salvo.methods.black_box.base.FLAT_RELATIVE` times the largest
    absolute image score its evaluations were made of — gets a zero map and is marked in
    :attr:`SearchOutcome.flat` (the kernel-density of the points DIRECT happened to try would
    otherwise look like a confident map).
    """
    height, width = engine.input.image_size
    layout = engine.input.layout
    num_searches = lower.shape[0]
    per_eval = 2 if preserve_and_delete else 1
    opt = BatchedDirect(lower, upper, budget, eps=eps, locally_biased=locally_biased)
    buffer = np.empty((min(_MASK_BUFFER, max(engine.batch_size, 1)), height, width), np.float32)
    inferences = 0
    magnitude = np.zeros(num_searches, np.float64)  # the largest |image score| per search
    while not opt.done:
        points, owner = opt.ask()
        batch = _Round(points, owner, sigmas, per_eval, image, layout, buffer, image_values)
        engine.run(batch.num_images, batch.fill, batch.consume,
                   progress=None if bar is None else bar.update)
        inferences += batch.num_images
        np.maximum.at(magnitude, batch.owner, np.abs(batch.scores))
        if preserve_and_delete:
            values = batch.scores[0::2] - batch.scores[1::2]
        else:
            values = batch.scores
        opt.tell(-values)  # DIRECT minimises

    kernels = num_searches // num_targets
    history = np.empty((num_targets, kernels, budget, 3), np.float64)
    maps = np.empty((num_targets, height, width), np.float32)
    per_width = np.empty((height, width), np.float64)
    flat = np.zeros(num_targets, bool)
    for t in range(num_targets):
        total = np.zeros((height, width), np.float64)
        for k in range(kernels):
            s = t * kernels + k
            pts = opt.points(s)
            vals = -opt.values(s)
            history[t, k, :, :2] = pts
            history[t, k, :, 2] = vals
            per_width[:] = 0.0
            kde_accumulate(per_width, pts[:, 0], pts[:, 1], np.full(len(vals), sigmas[s]), vals)
            peak = per_width.max()
            if peak > 0:
                per_width /= peak
            total += per_width
        values = history[t, :, :, 2]
        flat[t] = bool(is_flat(values.max() - values.min(),
                               magnitude[t * kernels : (t + 1) * kernels].max())[()])
        if flat[t]:
            maps[t] = 0.0
            continue
        peak = total.max()
        if peak != 0:
            # as the reference: a negative maximum flips the map's order
            total /= peak
        if peak <= 0:
            logger.debug("AISE map of target %d has no positive value (max %g)", t, peak)
        maps[t] = total
    return SearchOutcome(maps=maps, history=history, num_inferences=inferences,
                         num_rounds=opt.num_rounds, flat=flat)


def _scaled_uint8(maps: np.ndarray) -> np.ndarray:
    """Min-max each map of ``(T, H, W)`` to uint8 [0, 255] (rounded)."""
    flat = maps.reshape(maps.shape[0], -1).astype(np.float64)
    lo = flat.min(axis=1, keepdims=True) if flat.size else flat
    hi = flat.max(axis=1, keepdims=True) if flat.size else flat
    scaled = np.round(255.0 * (flat - lo) / (hi - lo + 1e-12))
    return scaled.astype(np.uint8).reshape(maps.shape)


class _Call(NamedTuple):
    """One ``explain`` call of AISE: its validated parameters, the engine, the checked input
    ``(1, ...)`` and the image the fill reads (see
    :func:`~salvo.methods.black_box.base.image_for_fill`)."""

    params: Any
    engine: InferenceEngine
    x: np.ndarray
    image: np.ndarray


class AISEBase(BlackBoxXAIMethod):
    """What the classification and detection variants of AISE share (parameters:
    :class:`~salvo.methods.black_box.base.BlackBoxXAIMethod`).

    Engine: without a ``batch_size``, on CPU the batch is 1 or 2 chosen from the measured time
    of one image (:data:`CPU_BATCH_STEPS`), elsewhere :data:`DEFAULT_BATCH_SIZE`.
    """

    name = "AISE"
    method = Method.AISE
    default_preset = Preset.BALANCE
    #: Keywords of the other AISE variant, with the hint a caller gets for them.
    other_variant: ClassVar[Mapping[str, str]] = {}

    def _call_config(self, engine: EngineConfig | None, stream: bool) -> EngineConfig:
        config = super()._call_config(engine, stream)
        if config.batch_size is None and not is_cpu_only(self.device_name):
            config = config.with_defaults(batch_size=DEFAULT_BATCH_SIZE)
        return config

    def _engine_extra(self, config: EngineConfig, stream: bool) -> dict[str, Any]:
        return {"batch_steps": CPU_BATCH_STEPS} if config.batch_size is None else {}

    @classmethod
    def resolve_params(cls, params: MethodParams | None = None, /, *,
                       preset: Preset | str | None = None, **overrides: Any) -> MethodParams:
        """The parameters (see :meth:`~salvo.methods.base.MethodBase.resolve_params`),
        validated.

        Raises
        ------
        TypeError
            An unknown keyword.
        ValueError
            A bad value, or a parameter of the other AISE variant (with a hint).
        """
        for key, hint in cls.other_variant.items():
            if overrides.get(key) is not None:
                raise ValueError(hint)
            overrides.pop(key, None)
        return super().resolve_params(params, preset=preset, **overrides).validate()

    def _check_input(self, x: np.ndarray, engine: InferenceEngine) -> np.ndarray:
        expected = engine.input.shape[1:]
        x = np.asarray(x)
        if x.ndim == len(expected):
            x = x[None]
        if x.ndim != len(expected) + 1 or x.shape[0] != 1 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must be one preprocessed input of shape (1, {', '.join(map(str, expected))}),"
                f" got {x.shape}"
            )
        return x

    def _begin(self, x: np.ndarray, params: MethodParams | None, overrides: dict[str, Any],
               settings: EngineConfig | None) -> _Call:
        """What both variants' ``explain`` start with: the validated parameters, the engine for
        ``settings``, ``x`` checked as one input ``(1, ...)`` and the image the fill reads."""
        aise = self.resolve_params(params, **overrides)
        engine = self.engine_for(settings)
        x = self._check_input(x, engine)
        return _Call(aise, engine, x, image_for_fill(x, engine))

    def _search(self, call: _Call, lower: np.ndarray, upper: np.ndarray, sigmas: np.ndarray,
                num_targets: int, preserve_and_delete: bool,
                image_values: Callable[[OVDict, np.ndarray, np.ndarray], np.ndarray],
                progress: bool | None) -> SearchOutcome:
        """:func:`run_searches` with the call's parameters, under a progress bar (``progress``
        ``None``: the method's setting) counting the inferences."""
        show = self.progress if progress is None else progress
        budget = call.params.num_iterations_per_kernel
        per_point = 2 if preserve_and_delete else 1
        bar = RunProgress(per_point * sigmas.shape[0] * budget, desc="AISE", unit="inference",
                          show=show)
        try:
            return run_searches(
                call.engine, call.image, lower, upper, sigmas, budget, call.params.solver_epsilon,
                call.params.locally_biased, num_targets, preserve_and_delete, image_values, bar,
            )
        finally:
            bar.close()
