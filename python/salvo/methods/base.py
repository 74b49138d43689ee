"""The one method contract: every salvo explanation method is a :class:`MethodBase`.

A method is built once for a model (``prepare_model`` compiles it, a white-box method edits a
copy of the graph first) and then explains any number of inputs, from any number of threads:

- :meth:`MethodBase.explain` explains one preprocessed input for some targets, with the method's
  parameters (a frozen dataclass, :attr:`MethodBase.params_class`; presets are named instances
  of it) and an :class:`~salvo.inference.EngineConfig`, and returns a :class:`MethodResult`;
- :meth:`MethodBase.explain_stream` explains a stream of inputs (the hook a method overrides to
  keep the device busy across images: RISE packs the masks of consecutive images into shared
  batches, white-box methods keep several images in flight);
- :meth:`MethodBase.generate_saliency_map` is the reference toolkit's entry point (raw data in,
  the reference's return types out).

The engines a method runs on are compiled on first use, one per engine config, and shared by
every call: a call never changes the method object.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import openvino as ov
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._checks import check_progress
from salvo.common import Method, Preset, Task
from salvo.common.targets import resolve_targets
from salvo.common.utils import IdentityPreprocessFN
from salvo.errors import ModelTypeError
from salvo.inference import EngineConfig, InferenceEngine, check_device, read_model

__all__ = [
    "CallSettings",
    "MethodBase",
    "MethodParams",
    "MethodResult",
    "NoParams",
    "Prediction",
    "StreamJob",
    "TargetsSpec",
]

#: The default ``preprocess_fn`` of every method (one shared instance, as in the reference).
IDENTITY = IdentityPreprocessFN()

#: The reference toolkit's type variables and alias (for annotations).
Model = TypeVar("Model")
CompiledModel = TypeVar("CompiledModel")
PreprocessFn = Callable[[np.ndarray], np.ndarray]


class Prediction(NamedTuple):
    """What the model predicted for one target.

    Attributes
    ----------
    label
        Class index (classification) or the box's class (detection).
    score
        The model's score for it (as ``postprocess_fn`` returned it).
    bounding_box
        ``(x1, y1, x2, y2)`` in input pixels for detection, ``None`` for classification.
    """

    label: int | None = None
    score: float | None = None
    bounding_box: tuple[float, float, float, float] | None = None


@dataclass
class MethodResult:
    """What a method returns for one input.

    Attributes
    ----------
    maps
        ``(T, h, w)`` raw maps, one per target, in target order: uint8 when scaled, else
        float32. White-box maps are at the feature map's size, black-box maps at the input's.
    targets
        The target keys: class indices, box indices (detection), or ``["per_image_map"]``.
    predictions
        ``{target: Prediction(label, score, bounding_box)}`` (may be empty).
    num_inferences
        Model inferences the explanation ran.
    scores
        The unmasked class scores ``(num_classes,) float32`` when the method computed them.
    extra
        Method-specific facts (``seconds``, ``num_masks_used``, ``input_size``, …).
    reliability
        ``{target: float}``: for Monte-Carlo methods (RISE, D-RISE), a conservative estimate of
        each map's correlation with the map infinitely many masks would give (NaN for a map
        without information); empty for other methods.
    """

    maps: np.ndarray
    targets: list[Any]
    predictions: dict[Any, Prediction] = field(default_factory=dict)
    num_inferences: int = 0
    scores: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    reliability: dict[Any, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodParams:
    """Base class of the methods' parameter dataclasses (frozen; presets are named instances)."""

    def validate(self, height: int, width: int) -> MethodParams:
        """This parameter set checked for an input of ``height`` x ``width`` (with canonical
        Python types); raises ``ValueError``/``TypeError`` naming a bad field."""
        return self

    @classmethod
    def keywords(cls) -> frozenset[str]:
        """The field names: the keywords a caller may set."""
        return frozenset(f.name for f in fields(cls))


@dataclass(frozen=True)
class NoParams(MethodParams):
    """The parameters of a method that has none per call."""


@dataclass(frozen=True)
class CallSettings:
    """The settings of one method call: what the method keywords of an Explainer call mean,
    resolved once at the Explainer's boundary (:meth:`Explainer.call_settings
    <salvo.explainer.explainer.Explainer.call_settings>`) and handed to
    :meth:`MethodBase.explain` / :meth:`MethodBase.explain_stream` as they are.

    Attributes
    ----------
    params
        The method's parameters (a frozen dataclass; ``None`` for a method without per-call
        parameters).
    engine
        Engine settings over the method's own.
    progress
        Progress bars (``None``: when stderr is a terminal).
    """

    params: MethodParams | None
    engine: EngineConfig
    progress: bool | None


TargetsSpec = Any
"""An int, a label name, a list of either, ``-1``/``None`` (all), or a function of the unmasked
class scores ``(num_classes,) float32`` returning one of those (classification)."""


@dataclass
class StreamJob:
    """One input of :meth:`MethodBase.explain_stream`.

    Attributes
    ----------
    x
        The preprocessed input ``(1, …)`` in the model's element type and layout.
    targets
        As :meth:`MethodBase.explain` takes them (a function of the unmasked scores too).
    tag
        Anything; handed back with the result.
    """

    x: np.ndarray
    targets: TargetsSpec = -1
    tag: Any = None


class MethodBase(ABC):
    """Base class of every explanation method (the reference toolkit's ``MethodBase``).

    Parameters
    ----------
    model
        An ``openvino.Model`` (or a path OpenVINO can read). Never modified.
    preprocess_fn
        Raw data -> model input, used by :meth:`generate_saliency_map` and
        :meth:`model_forward`; identity by default.
    device_name
        Any OpenVINO device string.
    progress
        Progress bars for long runs: ``None`` shows them when stderr is a terminal.
    **engine
        :class:`~salvo.inference.EngineConfig` fields (``batch_size``, ``num_requests``,
        ``precision``/``inference_precision``, ``performance_hint``, ``cache_dir``,
        ``timeout``): the engine settings of this method when a call does not set them.

    Raises
    ------
    ModelTypeError
        ``model`` is neither an ``openvino.Model`` nor a path (a ``ValueError``, as the
        reference raises, and a ``TypeError``).
    ValueError
        A bad engine setting.
    TypeError
        An engine keyword that does not exist.
    """

    #: The method this class implements.
    method: ClassVar[Method]
    #: The tasks it explains.
    tasks: ClassVar[tuple[Task, ...]] = (Task.CLASSIFICATION,)
    #: Its per-call parameters.
    params_class: ClassVar[type[MethodParams]] = NoParams
    #: Its parameters of construction, which a call cannot change (a white-box method's branch
    #: parameters, such as ViT-ReciproCAM's); :class:`NoParams` for a method without.
    build_params_class: ClassVar[type[MethodParams]] = NoParams
    #: Named parameter sets; the parameters of a call start from ``presets[preset]``.
    presets: ClassVar[Mapping[Preset, MethodParams]] = {}
    #: The preset a call uses when it names none.
    default_preset: ClassVar[Preset | None] = None
    #: Engine settings of a call that neither the call nor the constructor sets.
    engine_defaults: ClassVar[Mapping[str, Any]] = {}
    #: Engine settings of a stream of images (:meth:`explain_stream`), where they differ.
    stream_engine_defaults: ClassVar[Mapping[str, Any]] = {}
    #: Engines kept compiled at once (per engine config; least recently used dropped first).
    MAX_ENGINES = 4

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str] | None = None,
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        device_name: str = "CPU",
        *,
        progress: bool | None = None,
        **engine: Any,
    ) -> None:
        unknown = sorted(set(engine) - EngineConfig.keywords())
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) "
                f"{', '.join(map(repr, unknown))}; engine keywords are "
                f"{', '.join(sorted(EngineConfig.keywords()))}"
            )
        if model is not None and not isinstance(model, (ov.Model, str, os.PathLike)):
            raise ModelTypeError(
                f"{type(model)} is not supported: model must be an openvino.Model or a path to "
                "a model file"
            )
        self._model: ov.Model | None = None if model is None else read_model(model)
        if preprocess_fn is None:
            preprocess_fn = IDENTITY
        if not callable(preprocess_fn):
            raise TypeError(f"preprocess_fn must be callable, got {type(preprocess_fn).__name__}")
        self.preprocess_fn = preprocess_fn
        self._device_name = check_device(device_name)
        self.engine_config = EngineConfig.from_keywords(engine)
        self.progress = check_progress(progress)
        #: ``{target: Prediction}`` of the last :meth:`generate_saliency_map` call (reference).
        self.predictions: dict[Any, Prediction] = {}
        self._engines: OrderedDict[tuple[EngineConfig, bool], InferenceEngine] = OrderedDict()
        self._engines_lock = threading.Lock()

    # ------------------------------------------------------------------ the model
    @property
    def device_name(self) -> str:
        """The OpenVINO device the method runs on."""
        return self._device_name

    @property
    def model(self) -> ov.Model | None:
        """The model the method runs (for a white-box method: with its XAI branch, once
        :meth:`prepare_model` ran)."""
        return self._model

    @property
    def model_compiled(self) -> ov.CompiledModel | None:
        """The compiled model of the method's default engine, once compiled."""
        with self._engines_lock:
            for (config, stream), engine in self._engines.items():
                if not stream and config == self._call_config(None, False):
                    return engine.compiled
        return None

    @abstractmethod
    def prepare_model(self, load_model: bool = True) -> ov.Model:
        """Build what the method runs (a white-box method inserts its XAI branch) and, with
        ``load_model``, compile it; return the model."""

    def _engine_model(self) -> ov.Model:
        """The model the engines compile."""
        if self._model is None:
            raise RuntimeError(f"{type(self).__name__} has no model")
        return self._model

    def _engine_extra(self, config: EngineConfig, stream: bool) -> dict[str, Any]:
        """Further :class:`~salvo.inference.InferenceEngine` keywords for ``config``."""
        return {}

    def _call_config(self, engine: EngineConfig | None, stream: bool) -> EngineConfig:
        defaults = dict(self.engine_defaults)
        if stream:
            defaults.update(self.stream_engine_defaults)
        return self.engine_config.merged(engine).with_defaults(**defaults)

    @property
    def engine(self) -> InferenceEngine:
        """The method's default engine (its own settings; compiled on first use)."""
        return self.engine_for(None)

    def engine_for(self, engine: EngineConfig | None = None, *, stream: bool = False
                   ) -> InferenceEngine:
        """The engine for ``engine`` settings over the method's own (compiled on first use,
        then shared by every call that asks for the same settings; thread-safe)."""
        config = self._call_config(engine, stream)
        key = (config, stream)
        with self._engines_lock:
            found = self._engines.get(key)
            if found is not None:
                self._engines.move_to_end(key)
                return found
            built = InferenceEngine(self._engine_model(), self._device_name,
                                    **config.engine_kwargs(), **self._engine_extra(config, stream))
            self._engines[key] = built
            while len(self._engines) > self.MAX_ENGINES:
                self._engines.popitem(last=False)
            return built

    def model_forward(self, x: np.ndarray, preprocess: bool = True) -> OVDict:
        """The raw outputs of the compiled model for ``x`` (``preprocess_fn`` applied first when
        ``preprocess``), as an ``OVDict``.

        Raises
        ------
        RuntimeError
            The model is not compiled yet (call :meth:`prepare_model`).
        """
        if self.model_compiled is None:
            raise RuntimeError("Model is not compiled. Call prepare_model() first.")
        if preprocess:
            x = self.preprocess_fn(x)
        engine = self.engine
        x = np.asarray(x)
        if x.ndim == len(engine.input.shape) - 1:
            x = x[None]
        outputs = engine.infer_items(x.astype(engine.input.dtype, copy=False))
        return OVDict(dict(zip(engine.compiled.outputs, outputs)))

    # ------------------------------------------------------------------ parameters
    @classmethod
    def keywords(cls) -> frozenset[str]:
        """The method's parameter keywords: the per-call parameter fields, ``preset`` when the
        method has presets, and the parameters of construction (:attr:`build_params_class`)."""
        extra = {"preset"} if cls.presets else set()
        return cls.params_class.keywords() | cls.build_params_class.keywords() | extra

    @classmethod
    def resolve_params(cls, params: MethodParams | None = None, /, *,
                       preset: Preset | str | None = None, **overrides: Any) -> MethodParams:
        """A parameter set: ``params`` (or ``presets[preset]``, or the default preset, or the
        dataclass defaults) with ``overrides`` applied. ``None`` overrides are ignored.

        Raises
        ------
        TypeError
            A keyword that is not a parameter of this method.
        ValueError
            An unknown preset.
        """
        unknown = sorted(set(overrides) - cls.params_class.keywords())
        if unknown:
            raise TypeError(
                f"unknown {cls.method.name} parameter(s) {', '.join(map(repr, unknown))}; its "
                f"parameters are {', '.join(sorted(cls.keywords())) or 'none'}"
            )
        if params is None:
            if preset is not None or cls.default_preset is not None:
                params = cls.presets[_as_preset(preset if preset is not None
                                                else cls.default_preset, cls)]
            else:
                params = cls.params_class()
        elif preset is not None:
            raise TypeError("give either a parameter set or a preset, not both")
        if not isinstance(params, cls.params_class):
            raise TypeError(
                f"params must be a {cls.params_class.__name__}, got {type(params).__name__}"
            )
        set_ = {k: v for k, v in overrides.items() if v is not None}
        return replace(params, **set_) if set_ else params

    # ------------------------------------------------------------------ explaining
    @abstractmethod
    def explain(
        self,
        x: np.ndarray,
        targets: TargetsSpec = -1,
        params: MethodParams | None = None,
        *,
        label_names: Sequence[str] | None = None,
        progress: bool | None = None,
        engine: EngineConfig | None = None,
        **overrides: Any,
    ) -> MethodResult:
        """Explain one preprocessed input ``x`` ``(1, …)`` for ``targets``.

        Parameters
        ----------
        x
            The model input, ``(1, …)`` (or without the batch axis) in the model's layout.
        targets
            Class indices, label names (with ``label_names``), ``-1``/``None`` for all, or a
            function of the unmasked class scores returning one of those; for detection, box
            indices into the detections on ``x``.
        params
            The method's parameters; ``None`` takes the default preset. Keyword ``overrides``
            (and ``preset``) are applied on top (see :meth:`resolve_params`).
        label_names
            Class names, for name targets.
        progress
            Progress bar for this call (``None``: the method's setting).
        engine
            Engine settings for this call over the method's own.

        Returns
        -------
        MethodResult
        """

    def explain_stream(
        self,
        jobs: Iterable[StreamJob],
        params: MethodParams | None,
        on_result: Callable[[StreamJob, MethodResult | Exception], None],
        *,
        label_names: Sequence[str] | None = None,
        engine: EngineConfig | None = None,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[float], None] | None = None,
        num_jobs: int | None = None,
    ) -> int:
        """Explain a stream of inputs; the hook a method overrides to keep the device busy
        across images. This base version explains one job after the other with
        :meth:`explain`.

        Parameters
        ----------
        jobs
            :class:`StreamJob` s, consumed lazily (an input is pulled when its turn comes).
        params
            The parameters, shared by every job.
        on_result
            ``on_result(job, result_or_error)``, once per job, in job order, on the calling
            thread. An error that concerns only this job (its targets) is passed as the
            exception; one that concerns the whole run (the model, ``postprocess_fn``) is
            raised.
        label_names
            Class names, for name targets.
        engine
            Engine settings over the method's own.
        should_stop
            Polled between batches; ``True`` ends the run (unfinished jobs get no call).
        progress
            Called with the fraction of an image just done (a sum of 1.0 per image).
        num_jobs
            How many jobs at most (a method that packs images may use it to stop sooner).

        Returns
        -------
        int
            Model inferences run.
        """
        total = 0
        for job in jobs:
            if should_stop is not None and should_stop():
                break
            try:
                result = self.explain(job.x, job.targets, params, label_names=label_names,
                                      progress=False, engine=engine)
            except Exception as exc:  # one job after the other: an error is this job's
                on_result(job, exc)
            else:
                total += result.num_inferences
                on_result(job, result)
            if progress is not None:
                progress(1.0)
        return total

    @abstractmethod
    def generate_saliency_map(self, data: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        """The reference toolkit's entry point: explain raw ``data`` (``preprocess_fn`` is
        applied) and return the reference's types."""

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def resolve_target_spec(targets: TargetsSpec, scores: np.ndarray | None, num_classes: int,
                            label_names: Sequence[str] | None) -> list[int]:
        """Class indices of ``targets`` (a function of ``scores`` is called first)."""
        if callable(targets):
            if scores is None:
                raise ValueError(
                    "targets is a function of the class scores, but no scores are available "
                    "(give the method a postprocess_fn)"
                )
            targets = targets(scores)
        return resolve_targets(targets, num_classes, label_names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device_name={self._device_name!r})"


def _as_preset(value: Preset | str, cls: type[MethodBase]) -> Preset:
    if isinstance(value, Preset):
        return value
    try:
        preset = Preset(str(value).lower())
    except ValueError:
        raise ValueError(
            f"preset must be one of {[p.name for p in Preset]}, got {value!r}"
        ) from None
    if preset not in cls.presets:
        raise ValueError(f"{cls.method.name} has no preset {preset.name}")
    return preset
