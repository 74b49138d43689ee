"""The Explainer: picks the method for a model, turns keywords into settings once, explains
inputs and returns :class:`~salvo.explainer.explanation.Explanation` s.

The path of one image: :meth:`Explainer.__call__` -> :meth:`Explainer.preprocess` (the user's
``preprocess_fn``, checked against the model input) -> the method's
:meth:`~salvo.methods.base.MethodBase.explain` (white-box: one inference of the XAI model;
black-box: many, through :class:`~salvo.inference.InferenceEngine`) -> :meth:`Explainer.visualise`
(resize, colour map, overlay: :class:`~salvo.explainer.visualizer.VisOptions`) -> an
``Explanation``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import openvino as ov

from salvo._checks import as_real_array, check_int, check_progress, fit_dtype
from salvo.common import ExplainMode, Method, Task
from salvo.common.targets import check_label_names
from salvo.common.utils import IdentityPreprocessFN, infer_size_from_image
from salvo.errors import IgnoredArgumentWarning, ModelTypeError
from salvo.explainer.explanation import Explanation
from salvo.explainer.stream import explain_many
from salvo.explainer.utils import convert_targets_to_numpy, explains_all, get_target_indices
from salvo.explainer.visualizer import VisOptions, Visualizer
from salvo.inference import EngineConfig, read_model, with_input_shape
from salvo.methods.base import (
    IDENTITY,
    CallSettings,
    MethodBase,
    MethodParams,
    MethodResult,
    Prediction,
)
from salvo.methods.black_box.base import BlackBoxXAIMethod
from salvo.methods.factory import (
    REGISTRY,
    BlackBoxMethodFactory,
    WhiteBoxMethodFactory,
    all_keywords,
    apply_aliases,
    as_enum,
    resolve_whitebox_method,
)
from salvo.methods.white_box.base import WhiteBoxMethod, check_target_layer
from salvo.methods.white_box.graph import XAIInsertionError

logger = logging.getLogger(__name__)

__all__ = [
    "BlackBoxMethodFactory",
    "BlackBoxXAIMethod",
    "CallSettings",
    "ExplainMode",
    "Explainer",
    "Explanation",
    "IdentityPreprocessFN",
    "Method",
    "MethodBase",
    "Task",
    "Visualizer",
    "WhiteBoxMethodFactory",
    "convert_targets_to_numpy",
    "explains_all",
    "get_target_indices",
    "infer_size_from_image",
    "logger",
]

#: salvo 0.1's name of the default ``preprocess_fn`` (the methods' shared
#: :data:`~salvo.methods.base.IDENTITY`).
identity = IDENTITY


def method_keywords() -> frozenset[str]:
    """Every keyword an Explainer accepts besides its named arguments: the parameters of every
    method, the engine settings, and ``progress``."""
    return all_keywords() | EngineConfig.keywords() | {"progress"}


#: Arguments of the Explainer's constructor. Given to a call (the reference toolkit's user guide
#: passes ``embed_scaling`` and ``explain_method`` to one, where the reference ignores them) they
#: are ignored with an :class:`~salvo.errors.IgnoredArgumentWarning`, not rejected.
CONSTRUCTOR_ARGUMENTS = frozenset({
    "preprocess_fn", "postprocess_fn", "explain_mode", "explain_method", "target_layer",
    "embed_scaling", "device_name", "input_shape",
})


def _check_keywords(kwargs: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(kwargs) - method_keywords())
    if unknown:
        raise TypeError(
            f"{where} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"method keywords are: {', '.join(sorted(method_keywords()))}"
        )


def _image_hw(image: Any) -> tuple[int, int] | None:
    """(H, W) of an (H, W, 3) image or a batch of one; None for anything else."""
    a = np.asarray(image) if isinstance(image, np.ndarray) else None
    if a is None:
        return None
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        return int(a.shape[0]), int(a.shape[1])
    return None


def _boxes_to_image(predictions: dict, input_size: Any, image: Any) -> dict:
    """Rescale detection boxes from model-input pixels to the user's image, when there is one."""
    hw = _image_hw(image)
    if hw is None:
        return predictions
    in_h, in_w = (int(v) for v in input_size)
    sy, sx = hw[0] / in_h, hw[1] / in_w
    if sy == 1 and sx == 1:
        return predictions
    out = {}
    for key, p in predictions.items():
        box = p.bounding_box
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
            box = [x0 * sx, y0 * sy, x1 * sx, y1 * sy]
        out[key] = Prediction(label=p.label, score=p.score, bounding_box=box)
    return out


class Explainer:
    """Explain an OpenVINO image model: white-box (graph edit) or black-box (many inferences).

    One Explainer may be shared by any number of threads: a call never changes it, and
    concurrent calls share its compiled engines (black-box calls draw from one pool of infer
    requests; white-box calls overlap).

    Parameters
    ----------
    model
        An ``openvino.Model`` or a path to a model file (.xml, .onnx, …). Not modified.
    task
        :class:`~salvo.Task` (or its string value).
    preprocess_fn
        Turns the user's image into the model input; identity by default (the user then passes an
        already preprocessed batch).
    postprocess_fn
        Turns the raw model outputs (an ``OVDict``) into class scores ``(B, num_classes)``;
        needed by black-box methods (for detection: ``(boxes, scores, labels)``). With a
        white-box method it adds predictions to the explanations.
    explain_mode
        :class:`~salvo.ExplainMode`: ``AUTO`` tries white-box, then falls back to black-box.
    explain_method
        :class:`~salvo.Method`; ``None`` chooses (ReciproCAM / ViT-ReciproCAM for white-box
        classification, DetClassProbabilityMap for detection, AISE for black-box).
    target_layer
        White-box insertion point (a node name; for detection, a list of class-head names).
    embed_scaling
        Min-max scale white-box maps to uint8 inside the graph.
    device_name
        Any OpenVINO device string (``CPU``, ``GPU.1``, ``AUTO``, ``MULTI:…``, ``HETERO:…``).
    input_shape
        Per-item input shape without the batch dimension, e.g. ``(3, 224, 224)``, for a model
        whose input has dynamic dimensions (``[?,3,?,?]``): the Explainer works on a copy of the
        model reshaped to it (the batch dimension is kept as it is), so white-box insertion and
        every engine see static dimensions. Dimensions the model fixes must match. ``None``
        (default): the model's own shape, which must then be static apart from the batch.
    **kwargs
        Method parameters (``preset``, ``num_masks``, …; a white-box method's branch
        parameters such as ``use_gaussian``), engine settings (``batch_size``,
        ``num_requests``, ``precision``/``inference_precision``, ``performance_hint``,
        ``cache_dir``, ``timeout``) and ``progress``. Method parameters and engine settings can
        also be given per call, where they win.

    Attributes
    ----------
    method
        The method object (:class:`~salvo.methods.base.MethodBase`) that does the work.
    explain_method, explain_mode
        The method chosen and the mode it runs in.

    Raises
    ------
    ModelTypeError
        ``model`` is neither an ``openvino.Model`` nor a path (a ``TypeError``; also a
        ``ValueError``, as the reference raises).
    TypeError
        An unknown keyword (a keyword of another method is a warning instead).
    ValueError
        A bad argument, naming it and its value.
    RuntimeError
        ``explain_mode=WHITEBOX`` and the XAI branch cannot be inserted.
    """

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        task: Task | str,
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        postprocess_fn: Callable[[Any], Any] | None = None,
        explain_mode: ExplainMode | str = ExplainMode.AUTO,
        explain_method: Method | str | None = None,
        target_layer: str | Sequence[str] | None = None,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        input_shape: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs = apply_aliases(kwargs)
        _check_keywords(kwargs, "Explainer()")
        if "progress" in kwargs:
            check_progress(kwargs["progress"])
        if not isinstance(model, (ov.Model, str, os.PathLike)):
            raise ModelTypeError(
                f"model must be an openvino.Model or a path to a model file, got "
                f"{type(model).__name__}"
            )
        self.model = read_model(model)
        self.input_shape: tuple[int, ...] | None = None
        if input_shape is not None:
            self.model, self.input_shape = with_input_shape(self.model, input_shape)
        if len(self.model.inputs) != 1:
            raise ValueError(
                f"model has {len(self.model.inputs)} inputs; salvo explains models with one "
                "image input"
            )
        self.task = as_enum(task, Task, "task")
        mode = as_enum(explain_mode, ExplainMode, "explain_mode")
        requested = None if explain_method is None else as_enum(explain_method, Method,
                                                                "explain_method")
        if preprocess_fn is None:
            preprocess_fn = IDENTITY
        if not callable(preprocess_fn):
            raise TypeError(f"preprocess_fn must be callable, got {type(preprocess_fn).__name__}")
        if postprocess_fn is not None and not callable(postprocess_fn):
            raise TypeError(f"postprocess_fn must be callable, got {type(postprocess_fn).__name__}")
        if isinstance(preprocess_fn, IdentityPreprocessFN):
            logger.info(
                "Assigning preprocess_fn to identity function assumes that input images were "
                "already preprocessed by user before passing it to the model. Please define "
                "preprocessing function OR preprocess images beforehand."
            )
        self.preprocess_fn = preprocess_fn
        self.postprocess_fn = postprocess_fn
        self.target_layer = check_target_layer(target_layer)
        self.embed_scaling = embed_scaling
        self.device_name = device_name
        #: The reference toolkit's post-processing (an Explainer call does its own, faster).
        self.visualizer = Visualizer()
        #: The keywords given to the constructor (method parameters, engine settings).
        self.method_kwargs = dict(kwargs)
        #: The reference toolkit's name of :attr:`method_kwargs`.
        self.white_box_method_kwargs = self.method_kwargs
        self._engine = EngineConfig.from_keywords(kwargs)
        self._progress = check_progress(kwargs.get("progress"))

        #: The method asked for (``None``: chosen); after construction, the method in use.
        self.explain_method: Method | None = requested
        self.method: MethodBase = self.create_method(mode, self.task)
        method = self.method
        self.explain_method = method.method
        self.explain_mode = (ExplainMode.WHITEBOX if isinstance(method, WhiteBoxMethod)
                             else ExplainMode.BLACKBOX)
        self._params = {k: v for k, v in kwargs.items()
                        if k in type(method).keywords() and not self._builds(k)}
        self._warn_foreign(kwargs, stacklevel=3)
        # the constructor's parameters are checked now, not at the first call
        self._resolve_params({})

    # ------------------------------------------------------------------ building
    def create_method(self, explain_mode: ExplainMode | str, task: Task | str) -> MethodBase:
        """Build the method that explains the model (the constructor calls it): white-box
        (:class:`~salvo.methods.factory.WhiteBoxMethodFactory`), black-box
        (:class:`~salvo.methods.factory.BlackBoxMethodFactory`), or for ``AUTO`` white-box with
        a fall-back to black-box when the XAI branch cannot be inserted. Uses the Explainer's
        model, functions, ``explain_method``, ``target_layer``, ``embed_scaling`` and keywords.

        Raises
        ------
        RuntimeError
            ``WHITEBOX`` and the branch cannot be inserted.
        ValueError
            A method that does not fit the mode or the task; black-box without
            ``postprocess_fn``; an unknown mode.
        """
        mode = as_enum(explain_mode, ExplainMode, "explain_mode")
        task = as_enum(task, Task, "task")
        requested = self.explain_method
        whitebox_method = requested is not None and _is_whitebox(requested, task)
        if mode == ExplainMode.WHITEBOX and requested is not None and not whitebox_method:
            raise ValueError(
                f"explain_method {requested.name} is a black-box method; use "
                "explain_mode=ExplainMode.BLACKBOX or AUTO"
            )
        if mode == ExplainMode.BLACKBOX and whitebox_method:
            raise ValueError(
                f"explain_method {requested.name} is a white-box method; use "
                "explain_mode=ExplainMode.WHITEBOX or AUTO"
            )
        method: MethodBase | None = None
        if mode != ExplainMode.BLACKBOX and (requested is None or whitebox_method):
            try:
                method = self._build_whitebox(requested, task)
                logger.info("Explaining the model in white-box mode.")
            except XAIInsertionError as exc:
                if mode == ExplainMode.WHITEBOX:
                    raise RuntimeError(
                        f"Insertion of the XAI branch into the model failed ({exc}); try "
                        "black-box mode instead (explain_mode=ExplainMode.BLACKBOX, which needs "
                        "postprocess_fn)"
                    ) from exc
                if self.postprocess_fn is None:
                    raise ValueError(
                        "white-box explanation is not possible for this model "
                        f"({exc}) and the black-box fallback needs postprocess_fn "
                        "(raw model outputs -> class scores)"
                    ) from exc
                logger.info(
                    "Failed to insert XAI into the model (%s). Falling back to black-box mode.",
                    exc,
                )
                requested = None
        if method is None:
            if self.postprocess_fn is None:
                raise ValueError(
                    "black-box explanation needs postprocess_fn (raw model outputs -> class "
                    "scores (B, num_classes))"
                )
            method = BlackBoxMethodFactory.create_method(
                task, self.model, self.postprocess_fn, self.preprocess_fn, requested,
                self.device_name, progress=self._progress, **self._engine.engine_kwargs(),
            )
            logger.info("Explaining the model in black-box mode.")
        return method

    # ------------------------------------------------------------------ building
    def _build_whitebox(self, requested: Method | None, task: Task) -> WhiteBoxMethod:
        chosen = resolve_whitebox_method(self.model, task, requested, self.target_layer)
        cls = REGISTRY[(chosen, task)]
        build = {k: v for k, v in self.method_kwargs.items()
                 if k in cls.build_params_class.keywords()}
        return WhiteBoxMethodFactory.create_method(
            task, self.model, self.preprocess_fn, chosen, self.target_layer,
            self.embed_scaling, self.device_name, postprocess_fn=self.postprocess_fn,
            **build, **self._engine.engine_kwargs(),
        )

    def _builds(self, key: str) -> bool:
        """Whether ``key`` is a parameter of the method's construction (a white-box branch
        parameter), not of a call."""
        return key in type(self.method).build_params_class.keywords()

    def _warn_foreign(self, kwargs: Mapping[str, Any], *, stacklevel: int, call: bool = False
                      ) -> None:
        own = type(self.method).keywords() | EngineConfig.keywords() | {"progress"}
        foreign = sorted(k for k in kwargs if k not in own)
        if foreign:
            warnings.warn(
                f"keyword argument(s) {', '.join(map(repr, foreign))} do not apply to "
                f"{self.explain_method.name} ({self.explain_mode.name.lower()} mode) and are "
                "ignored",
                IgnoredArgumentWarning,
                stacklevel=stacklevel + 1,
            )
        if call:
            late = sorted(k for k in kwargs if k in own and self._builds(k))
            if late:
                warnings.warn(
                    f"keyword argument(s) {', '.join(map(repr, late))} shape "
                    f"{self.explain_method.name}'s XAI branch, which is built with the "
                    "Explainer; give them to the Explainer's constructor (ignored here)",
                    IgnoredArgumentWarning,
                    stacklevel=stacklevel + 1,
                )

    def _resolve_params(self, call: Mapping[str, Any]) -> MethodParams | None:
        cls = type(self.method)
        merged = {**self._params, **{k: v for k, v in call.items()
                                     if k in cls.keywords() and not self._builds(k)}}
        params = cls.resolve_params(**merged)
        if isinstance(self.method, BlackBoxXAIMethod):
            height, width = self.method.engine.input.image_size
            params = params.validate(height, width)
        return params

    # ------------------------------------------------------------------ settings
    def call_settings(self, kwargs: Mapping[str, Any] | None = None, *,
                      where: str = "Explainer.__call__()", stacklevel: int = 2) -> CallSettings:
        """What the method keywords of a call mean: the method's parameters (the
        constructor's, then the call's), the engine settings (the same) and ``progress``.

        Raises
        ------
        TypeError
            An unknown keyword. A keyword of another method, or an argument of the
            Explainer's constructor (``embed_scaling``, ``explain_method``, ...), is a warning
            (:class:`~salvo.errors.IgnoredArgumentWarning`) and is ignored.
        ValueError
            A bad value, naming it.
        """
        kwargs = dict(kwargs or {})
        ignored = sorted(k for k in kwargs if k in CONSTRUCTOR_ARGUMENTS)
        if ignored:
            warnings.warn(
                f"keyword argument(s) {', '.join(map(repr, ignored))} of {where} are arguments of "
                "the Explainer's constructor, not of a call, and are ignored (give them to "
                "Explainer(...))",
                IgnoredArgumentWarning,
                stacklevel=stacklevel + 1,
            )
            kwargs = {k: v for k, v in kwargs.items() if k not in CONSTRUCTOR_ARGUMENTS}
        kwargs = apply_aliases(kwargs)
        _check_keywords(kwargs, where)
        self._warn_foreign(kwargs, stacklevel=stacklevel + 1, call=True)
        progress = (check_progress(kwargs["progress"]) if "progress" in kwargs
                    else self._progress)
        engine = self._engine.merged(EngineConfig.from_keywords(kwargs))
        return CallSettings(self._resolve_params(kwargs), engine, progress)

    # ------------------------------------------------------------------ call
    def __call__(
        self,
        data: Any,
        targets: int | str | Iterable[int | str] | None = -1,
        original_input_image: np.ndarray | None = None,
        label_names: Sequence[str] | None = None,
        output_size: tuple[int, int] | None = None,
        scaling: bool = False,
        resize: bool = True,
        colormap: bool = True,
        overlay: bool = False,
        overlay_weight: float = 0.5,
        overlay_prediction: bool = True,
        **kwargs: Any,
    ) -> Explanation:
        """Explain ``data``.

        Parameters
        ----------
        data
            What ``preprocess_fn`` takes (by default: the model input, ``(1, …)`` or without
            the batch axis).
        targets
            Class indices, label names (with ``label_names``), a list of those, or ``-1`` /
            ``None`` for every class; for detection, box indices (``-1`` for every box).
        original_input_image
            The picture to draw overlays on and to take the output size from (RGB, 0..255).
        label_names
            Class names, a sequence of str or an ``{index: name}`` dict.
        output_size, scaling, resize, colormap, overlay, overlay_weight, overlay_prediction
            Visualisation (see :class:`~salvo.explainer.visualizer.VisOptions`).
        **kwargs
            Method parameters, engine settings and ``progress`` for this call (they win over
            the constructor's).

        Returns
        -------
        Explanation
        """
        settings = self.call_settings(kwargs)
        vis = VisOptions(output_size, scaling, resize, colormap, overlay, overlay_weight,
                         overlay_prediction)
        return self._explain(data, targets, original_input_image, label_names, vis, settings)

    def explain(
        self,
        data: Any,
        targets: int | str | Iterable[int | str] | None = -1,
        original_input_image: np.ndarray | None = None,
        label_names: Sequence[str] | None = None,
        output_size: tuple[int, int] | None = None,
        scaling: bool = False,
        resize: bool = True,
        colormap: bool = True,
        overlay: bool = False,
        overlay_weight: float = 0.5,
        overlay_prediction: bool = True,
        **kwargs: Any,
    ) -> Explanation:
        """The same as calling the Explainer (the reference toolkit's name for it)."""
        settings = self.call_settings(kwargs, where="Explainer.explain()", stacklevel=2)
        return self._explain(data, targets, original_input_image, label_names,
                             VisOptions(output_size, scaling, resize, colormap, overlay,
                                        overlay_weight, overlay_prediction), settings)

    def _explain(self, data: Any, targets: Any, original_input_image: Any, label_names: Any,
                 vis: VisOptions, settings: CallSettings) -> Explanation:
        label_names = check_label_names(label_names)
        x = self.preprocess(data)
        result = self.method.explain(x, targets, settings.params, label_names=label_names,
                                     progress=settings.progress, engine=settings.engine)
        return self.visualise(result, data, original_input_image, vis, label_names)

    def model_forward(self, x: np.ndarray, preprocess: bool = True) -> Mapping[Any, np.ndarray]:
        """The raw outputs of the method's compiled model for ``x`` (``preprocess_fn`` applied
        first when ``preprocess``), as an ``OVDict``; a white-box model's include
        ``saliency_map``. See :meth:`~salvo.methods.base.MethodBase.model_forward`."""
        return self.method.model_forward(x, preprocess)

    @property
    def compiled_model(self) -> ov.CompiledModel | None:
        """The method's compiled model (once compiled)."""
        return self.method.model_compiled

    def preprocess(self, data: Any) -> np.ndarray:
        """``preprocess_fn(data)`` as one model input ``(1, …)`` in the model's element type.

        Raises
        ------
        ValueError
            A ragged list, a shape the model does not take, more than one image, NaN or
            infinity, or values that do not fit the model's element type (floats in [0, 1] or
            with fractions for a uint8 input, integers outside 0..255, …; see
            :func:`salvo._checks.fit_dtype`).
        TypeError
            Not real numbers.
        """
        what = "the preprocessed input"
        x = as_real_array(self.preprocess_fn(data), what)
        port = self.model.inputs[0]
        pshape = port.get_partial_shape()
        rank = pshape.rank.get_length()
        if x.ndim == rank - 1:
            x = x[None]
        if x.ndim != rank:
            raise ValueError(
                f"{what} has shape {x.shape}, but the model input "
                f"{port.get_any_name()!r} expects {pshape}; check preprocess_fn"
            )
        if x.shape[0] != 1:
            raise ValueError(
                f"{what} has batch size {x.shape[0]}; salvo explains one image "
                "per call (use a loop, or explain_many)"
            )
        for i, dim in enumerate(pshape):
            if dim.is_static and dim.get_length() != x.shape[i] and i > 0:
                raise ValueError(
                    f"{what} has shape {x.shape}, but the model input "
                    f"{port.get_any_name()!r} expects {pshape}; check preprocess_fn"
                )
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise ValueError(f"{what} contains NaN or infinite values")
        want = np.dtype(port.get_element_type().to_dtype())
        return fit_dtype(x, want, name=what,
                         target=f"the model input {port.get_any_name()!r}")

    def visualise(self, result: MethodResult, data: Any, original_input_image: Any,
                  vis: VisOptions, label_names: Sequence[str] | None, *,
                  boxes_on: Any = None) -> Explanation:
        """The :class:`~salvo.explainer.explanation.Explanation` of a method's result: maps
        post-processed with ``vis`` (sized to ``original_input_image``, else to ``data`` when it
        is a picture); detection boxes rescaled from model-input pixels to the picture
        ``boxes_on`` (default: ``original_input_image``, else ``data``), when it is one."""
        predictions = result.predictions
        if self.task == Task.DETECTION and "input_size" in result.extra:
            if boxes_on is None:
                boxes_on = original_input_image if original_input_image is not None else data
            predictions = _boxes_to_image(predictions, result.extra["input_size"], boxes_on)
        keys = list(result.targets)
        maps = vis.process(result.maps, keys, data, original_input_image) if keys else {}
        total = result.extra.get("num_classes")
        if total is None and result.scores is not None and self.task is Task.CLASSIFICATION:
            total = int(result.scores.shape[0])
        return Explanation(
            saliency_map=maps,
            targets=keys,
            task=self.task,
            label_names=label_names,
            predictions=predictions,
            num_inferences=result.num_inferences,
            method=self.explain_method,
            total_num_targets=total,
            reliability=result.reliability,
        )

    # ------------------------------------------------------------------ many images
    def explain_many(
        self,
        images: Iterable[Any],
        targets: Any = -1,
        **call_kwargs: Any,
    ) -> Iterable[Explanation]:
        """Explain several images; yields one :class:`Explanation` per image, in order.

        Equivalent to ``(self(image, targets, **call_kwargs) for image in images)``, but RISE
        packs the masks of consecutive images into the same engine batches and white-box
        methods keep several images in flight, so the device stays busy; maps are
        bit-identical to explaining each image alone. See :func:`salvo.bulk.explain_many` for
        the details (``targets`` may also be a function of the class scores, e.g.
        ``salvo.bulk.top_k(1)``; ``original_input_image`` may be a list with one image per
        input).
        """
        return explain_many(self, images, targets, **call_kwargs)


def _is_whitebox(method: Method, task: Task) -> bool:
    cls = REGISTRY.get((method, task))
    if cls is not None:
        return issubclass(cls, WhiteBoxMethod)
    return any(issubclass(c, WhiteBoxMethod) for (m, _), c in REGISTRY.items() if m is method)
