"""The Explainer: resolves mode and method, normalises targets, returns an Explanation."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import openvino as ov

from salvo._checks import (
    as_real_array,
    check_flag,
    check_int,
    check_number,
    check_progress,
    fit_dtype,
)
from salvo.common import (
    BLACKBOX_METHODS,
    SALIENCY_MAP_OUTPUT_NAME,
    WHITEBOX_METHODS,
    ExplainMode,
    Method,
    Task,
)
from salvo.errors import IgnoredArgumentWarning
from salvo.explainer.explanation import Explanation
from salvo.inference import InferenceEngine, check_device, read_model
from salvo.methods.whitebox.insert import METHOD_KWARGS as WHITEBOX_KWARGS
from salvo.targets import check_label_names, resolve_targets

logger = logging.getLogger(__name__)

PER_IMAGE_MAP = "per_image_map"

#: Keyword arguments each method understands (constructor or call).
METHOD_KWARGS: dict[Method, frozenset[str]] = {
    **WHITEBOX_KWARGS,
    Method.RISE: frozenset(
        {"preset", "num_masks", "num_cells", "prob", "seed", "scale_output", "tolerance",
         "estimator", "check_every"}
    ),
    Method.AISE: frozenset(
        {"preset", "num_iterations_per_kernel", "kernel_widths", "solver_epsilon",
         "locally_biased", "divisors", "scale_output"}
    ),
}
#: Keywords that configure how the model is run, accepted by every method.
ENGINE_KWARGS = frozenset(
    {"batch_size", "num_requests", "precision", "inference_precision", "performance_hint",
     "cache_dir", "timeout", "progress"}
)
ALL_METHOD_KWARGS = frozenset().union(*METHOD_KWARGS.values()) | ENGINE_KWARGS


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
    from salvo.explainer.explanation import Prediction

    out = {}
    for key, p in predictions.items():
        box = p.bounding_box
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
            box = [x0 * sx, y0 * sy, x1 * sx, y1 * sy]
        out[key] = Prediction(label=p.label, score=p.score, bounding_box=box)
    return out


def _with_input_shape(model: ov.Model, input_shape: Any) -> tuple[ov.Model, tuple[int, ...]]:
    """A copy of ``model`` whose input has the per-item shape ``input_shape`` (batch kept)."""
    port = model.inputs[0] if len(model.inputs) == 1 else None
    if port is None:
        raise ValueError(
            f"model has {len(model.inputs)} inputs; salvo explains models with one image input"
        )
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Iterable):
        raise ValueError(
            f"input_shape must be the per-item input shape without the batch dimension (a "
            f"tuple of ints such as (3, 224, 224)), got {input_shape!r}"
        )
    item = tuple(check_int(d, "input_shape dimensions", minimum=1) for d in input_shape)
    pshape = port.get_partial_shape()
    if pshape.rank.is_dynamic:
        raise ValueError("the model input has a dynamic rank; give it a static rank first")
    rank = pshape.rank.get_length()
    if len(item) != rank - 1:
        raise ValueError(
            f"input_shape must have {rank - 1} dimensions (the model input is {pshape}; "
            f"without the batch dimension), got {tuple(input_shape)!r}"
        )
    for i, (dim, want) in enumerate(zip(list(pshape)[1:], item)):
        if dim.is_static and dim.get_length() != want:
            raise ValueError(
                f"input_shape {item} does not fit the model input {pshape}: dimension {i + 1} "
                f"is fixed to {dim.get_length()}"
            )
    if all(d.is_static for d in list(pshape)[1:]):
        return model, item
    copy = model.clone()
    try:
        copy.reshape({copy.inputs[0]: ov.PartialShape([pshape[0], *item])})
    except Exception as exc:
        from salvo.inference import openvino_cause

        raise ValueError(
            f"the model cannot take input_shape {item}: {openvino_cause(exc)}"
        ) from exc
    return copy, item


def identity(x: Any) -> Any:
    """The default ``preprocess_fn``: the input is already what the model takes."""
    return x


def _as_enum(enum: type, value: Any, argument: str) -> Any:
    if isinstance(value, enum):
        return value
    try:
        return enum(value.lower() if isinstance(value, str) else value)
    except (ValueError, AttributeError):
        valid = ", ".join(f"{m.name}" for m in enum)
        raise ValueError(f"{argument} must be one of {valid}; got {value!r}") from None


def _check_kwargs(kwargs: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(kwargs) - ALL_METHOD_KWARGS)
    if unknown:
        raise TypeError(
            f"{where} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"method keywords are: {', '.join(sorted(ALL_METHOD_KWARGS))}"
        )


class Explainer:
    """Explain an OpenVINO image model: white-box (graph edit) or black-box (many inferences).

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
        needed by black-box methods.
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
    **method_kwargs
        Method parameters (``preset``, ``num_masks``, …); they can also be given per call.
    """

    #: Infer requests of the white-box engine: one call uses one, so several threads calling
    #: the same Explainer overlap (one caller's pre- and post-processing runs while another's
    #: inference does). The engine keeps the LATENCY hint, so a lone call is as fast as before.
    WHITEBOX_REQUESTS = 4

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        task: Task | str,
        preprocess_fn: Callable[[Any], np.ndarray] = identity,
        postprocess_fn: Callable[[Any], Any] | None = None,
        explain_mode: ExplainMode | str = ExplainMode.AUTO,
        explain_method: Method | str | None = None,
        target_layer: str | Sequence[str] | None = None,
        embed_scaling: bool = True,
        device_name: str = "CPU",
        input_shape: Sequence[int] | None = None,
        **method_kwargs: Any,
    ) -> None:
        from salvo.methods.whitebox.insert import check_target_layer

        _check_kwargs(method_kwargs, "Explainer()")
        if "progress" in method_kwargs:
            check_progress(method_kwargs["progress"])
        self.model = read_model(model)
        self.input_shape: tuple[int, ...] | None = None
        if input_shape is not None:
            self.model, self.input_shape = _with_input_shape(self.model, input_shape)
        self.task = _as_enum(Task, task, "task")
        self.explain_mode = _as_enum(ExplainMode, explain_mode, "explain_mode")
        requested = None if explain_method is None else _as_enum(
            Method, explain_method, "explain_method"
        )
        self.device_name = check_device(device_name)
        if preprocess_fn is None:
            preprocess_fn = identity
        if not callable(preprocess_fn):
            raise TypeError(f"preprocess_fn must be callable, got {type(preprocess_fn).__name__}")
        if postprocess_fn is not None and not callable(postprocess_fn):
            raise TypeError(f"postprocess_fn must be callable, got {type(postprocess_fn).__name__}")
        if preprocess_fn is identity:
            logger.info(
                "Assigning preprocess_fn to identity function assumes that input images were "
                "already preprocessed by user before passing it to the model. Please define "
                "preprocessing function OR preprocess images beforehand."
            )
        self.preprocess_fn = preprocess_fn
        self.postprocess_fn = postprocess_fn
        self.target_layer = check_target_layer(target_layer)
        # None as the reference toolkit's signature allows it: no scaling
        self.embed_scaling = embed_scaling is not None and check_flag(embed_scaling,
                                                                      "embed_scaling")
        self.method_kwargs = dict(method_kwargs)

        if len(self.model.inputs) != 1:
            raise ValueError(
                f"model has {len(self.model.inputs)} inputs; salvo explains models with one "
                "image input"
            )

        self._engine: InferenceEngine | None = None
        self._xai_model: ov.Model | None = None
        self._blackbox: Any = None

        mode = self.explain_mode
        if mode == ExplainMode.WHITEBOX and requested in BLACKBOX_METHODS:
            raise ValueError(
                f"explain_method {requested.name} is a black-box method; use "
                "explain_mode=ExplainMode.BLACKBOX or AUTO"
            )
        if mode == ExplainMode.BLACKBOX and requested in WHITEBOX_METHODS:
            raise ValueError(
                f"explain_method {requested.name} is a white-box method; use "
                "explain_mode=ExplainMode.WHITEBOX or AUTO"
            )
        if mode in (ExplainMode.WHITEBOX, ExplainMode.AUTO) and requested not in BLACKBOX_METHODS:
            try:
                self._init_whitebox(requested)
                self.explain_mode = ExplainMode.WHITEBOX
            except Exception as exc:
                from salvo.methods.whitebox import XAIInsertionError

                if mode == ExplainMode.WHITEBOX or not isinstance(exc, XAIInsertionError):
                    if isinstance(exc, XAIInsertionError):
                        raise RuntimeError(
                            f"Insertion of the XAI branch into the model failed ({exc}); "
                            "try black-box mode instead (explain_mode=ExplainMode.BLACKBOX, which "
                            "needs postprocess_fn)"
                        ) from exc
                    raise
                if postprocess_fn is None:
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
                mode = ExplainMode.BLACKBOX
        if mode == ExplainMode.BLACKBOX or requested in BLACKBOX_METHODS:
            self.explain_mode = ExplainMode.BLACKBOX
            if postprocess_fn is None:
                raise ValueError(
                    "black-box explanation needs postprocess_fn (raw model outputs -> class "
                    "scores (B, num_classes))"
                )
            self._init_blackbox(requested)
        self._warn_foreign_kwargs(self.method_kwargs)

    # ------------------------------------------------------------------ modes
    def _init_whitebox(self, requested: Method | None) -> None:
        from salvo.methods.whitebox import insert_xai, resolve_whitebox_method

        method = resolve_whitebox_method(self.model, self.task, requested, self.target_layer)
        wb_kwargs = {k: v for k, v in self.method_kwargs.items() if k in METHOD_KWARGS[method]}
        self._xai_model = insert_xai(
            self.model,
            self.task,
            explain_method=method,
            target_layer=self.target_layer,
            embed_scaling=self.embed_scaling,
            **wb_kwargs,
        )
        self.explain_method = method
        engine_kwargs = self._engine_kwargs(self.method_kwargs)
        requests = self.method_kwargs.get("num_requests")
        self._engine = InferenceEngine(
            self._xai_model,
            self.device_name,
            batch_size=1,
            num_requests=self.WHITEBOX_REQUESTS if requests is None else requests,
            performance_hint=engine_kwargs.pop("performance_hint", "LATENCY"),
            **engine_kwargs,
        )
        logger.info("Explaining the model in white-box mode.")

    def _init_blackbox(self, requested: Method | None) -> None:
        from salvo.methods.blackbox import BlackBoxRunner

        method = requested or Method.AISE
        self.explain_method = method
        self._blackbox = BlackBoxRunner(
            method, self.model, self.task, self.postprocess_fn, self.device_name
        )
        # compile now, so the first call does not pay for it
        engine_kwargs, _, _ = self._split_blackbox_kwargs(self.method_kwargs)
        self._blackbox.impl(engine_kwargs)
        logger.info("Explaining the model in black-box mode.")

    @staticmethod
    def _split_blackbox_kwargs(
        kwargs: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any], bool]:
        from salvo.methods.blackbox import ENGINE_KEYS

        engine = {k: v for k, v in kwargs.items() if k in ENGINE_KEYS}
        progress = check_progress(kwargs.get("progress"))
        params = {k: v for k, v in kwargs.items()
                  if k not in ENGINE_KEYS and k != "progress"}
        return engine, params, progress

    @staticmethod
    def _engine_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        precision = kwargs.get("inference_precision") or kwargs.get("precision")
        if precision is not None:
            out["precision"] = precision
        for key in ("performance_hint", "cache_dir", "timeout"):
            if key in kwargs:
                out[key] = kwargs[key]
        return out

    def _warn_foreign_kwargs(self, kwargs: Mapping[str, Any]) -> None:
        own = METHOD_KWARGS[self.explain_method] | ENGINE_KWARGS
        foreign = sorted(set(kwargs) - own)
        if foreign:
            warnings.warn(
                f"keyword argument(s) {', '.join(map(repr, foreign))} do not apply to "
                f"{self.explain_method.name} ({self.explain_mode.name.lower()} mode) and are "
                "ignored",
                IgnoredArgumentWarning,
                stacklevel=3,
            )

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
        **method_kwargs: Any,
    ) -> Explanation:
        """Explain ``data``; see the class docstring and SPEC section 2 for the arguments."""
        _check_kwargs(method_kwargs, "Explainer.__call__()")
        if method_kwargs:
            self._warn_foreign_kwargs(method_kwargs)
        label_names = check_label_names(label_names)
        overlay_weight = check_number(overlay_weight, "overlay_weight", minimum=0.0, maximum=1.0)
        scaling, resize, colormap, overlay = (
            check_flag(value, name) for value, name in ((scaling, "scaling"), (resize, "resize"),
                                                        (colormap, "colormap"),
                                                        (overlay, "overlay"))
        )
        check_flag(overlay_prediction, "overlay_prediction")
        if "progress" in method_kwargs:
            check_progress(method_kwargs["progress"])
        x = self._preprocess(data)
        if self._blackbox is not None:
            kwargs = {**self.method_kwargs, **method_kwargs}
            own = METHOD_KWARGS[self.explain_method] | ENGINE_KWARGS
            engine_kwargs, params, progress = self._split_blackbox_kwargs(
                {k: v for k, v in kwargs.items() if k in own}
            )
            impl = self._blackbox.impl(engine_kwargs)
            result = impl.explain(
                x, targets, label_names=label_names, progress=progress, **params
            )
            raw, predictions = result.maps, result.predictions
            num_inferences, target_keys = result.num_inferences, result.targets
            if self.task == Task.DETECTION and "input_size" in result.extra:
                predictions = _boxes_to_image(
                    predictions, result.extra["input_size"],
                    original_input_image if original_input_image is not None else data,
                )
        else:
            raw, predictions, num_inferences, target_keys = self._explain_whitebox(
                x, targets, label_names
            )
        return self._visualise(
            raw, target_keys, data, x, predictions, num_inferences, label_names,
            original_input_image=original_input_image, output_size=output_size,
            scaling=scaling, resize=resize, colormap=colormap, overlay=overlay,
            overlay_weight=overlay_weight,
        )

    def _preprocess(self, data: Any) -> np.ndarray:
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

    def _explain_whitebox(
        self, x: np.ndarray, targets: Any, label_names: list[str] | None
    ) -> tuple[np.ndarray, dict, int, list]:
        assert self._engine is not None and self._xai_model is not None
        outputs = self._engine.infer_items(x)
        names = [o.get_names() for o in self._xai_model.outputs]
        idx = next(i for i, n in enumerate(names) if SALIENCY_MAP_OUTPUT_NAME in n)
        from salvo.methods.whitebox.base import check_finite_outputs

        check_finite_outputs(outputs, list(self._engine.compiled.outputs))
        smap = outputs[idx][0]
        predictions: dict = {}
        if self.explain_method == Method.ACTIVATIONMAP:
            if smap.ndim == 3:
                smap = smap[0]
            return smap[None], predictions, 1, [PER_IMAGE_MAP]
        num_classes = smap.shape[0]
        keys = resolve_targets(targets, num_classes, label_names)
        if self.postprocess_fn is not None and self.task == Task.CLASSIFICATION:
            from openvino.utils.data_helpers.wrappers import OVDict

            raw = OVDict({port: outputs[i] for i, port in enumerate(self._engine.compiled.outputs)
                          if i != idx})
            try:
                scores = np.asarray(self.postprocess_fn(raw)).reshape(-1)
                from salvo.explainer.explanation import Prediction

                for k in keys:
                    if k < scores.size:
                        predictions[k] = Prediction(
                            label=k, score=float(scores[k]), bounding_box=None
                        )
            except Exception as exc:  # predictions are a courtesy in white-box mode
                logger.debug("postprocess_fn failed on the white-box outputs: %s", exc)
        return smap[keys], predictions, 1, keys

    def _visualise(self, raw, keys, data, x, predictions, num_inferences, label_names, **vis):
        from salvo.visualization import process_saliency_maps

        maps = process_saliency_maps(raw, targets=keys, data=data, **vis)
        return Explanation(
            saliency_map=maps,
            targets=list(keys),
            task=self.task,
            label_names=label_names,
            predictions=predictions,
            num_inferences=num_inferences,
            method=self.explain_method,
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
        methods keep several images in flight, so the device stays busy; RISE maps are
        bit-identical to explaining each image alone. See :func:`salvo.bulk.explain_many` for the details
        (``targets`` may also be a function of the class scores, e.g. ``salvo.bulk.top_k(1)``;
        ``original_input_image`` may be a list with one image per input).
        """
        from salvo.bulk import explain_many

        return explain_many(self, images, targets, **call_kwargs)
