"""One registry of salvo's methods, and the factories that pick and build them.

:data:`REGISTRY` maps ``(Method, Task)`` to the class implementing it, white-box and black-box
alike. The factories (the reference toolkit's ``MethodFactory``, ``WhiteBoxMethodFactory``,
``BlackBoxMethodFactory``) choose a class for a task and build it; :func:`insert_xai` is the
white-box factory's model edit on its own.
"""

from __future__ import annotations

import logging
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import openvino as ov

from salvo._checks import check_flag
from salvo.common import Method, Task
from salvo.errors import ModelTypeError
from salvo.inference import read_model
from salvo.methods.base import IDENTITY, MethodBase
from salvo.methods.black_box.aise.classification import AISEClassification
from salvo.methods.black_box.aise.detection import AISEDetection
from salvo.methods.black_box.base import BlackBoxXAIMethod
from salvo.methods.black_box.drise import DRISE
from salvo.methods.black_box.rise import RISE
from salvo.methods.white_box.activation_map import ActivationMap
from salvo.methods.white_box.base import WhiteBoxMethod, check_target_layer
from salvo.methods.white_box.det_class_probability_map import DetClassProbabilityMap
from salvo.methods.white_box.graph import find_node, is_transformer
from salvo.methods.white_box.recipro_cam import ReciproCAM, ViTReciproCAM
# The reference toolkit's names in this module (re-exported, as it does).
from salvo.common.utils import IdentityPreprocessFN  # noqa: F401

logger = logging.getLogger(__name__)

__all__ = [
    "REGISTRY",
    "BlackBoxMethodFactory",
    "MethodFactory",
    "WhiteBoxMethodFactory",
    "all_keywords",
    "insert_xai",
    "method_class",
    "resolve_whitebox_method",
]

#: ``(method, task) -> class``: every method salvo implements.
REGISTRY: dict[tuple[Method, Task], type[MethodBase]] = {
    (Method.ACTIVATIONMAP, Task.CLASSIFICATION): ActivationMap,
    (Method.RECIPROCAM, Task.CLASSIFICATION): ReciproCAM,
    (Method.VITRECIPROCAM, Task.CLASSIFICATION): ViTReciproCAM,
    (Method.DETCLASSPROBABILITYMAP, Task.DETECTION): DetClassProbabilityMap,
    (Method.RISE, Task.CLASSIFICATION): RISE,
    (Method.RISE, Task.DETECTION): DRISE,
    (Method.AISE, Task.CLASSIFICATION): AISEClassification,
    (Method.AISE, Task.DETECTION): AISEDetection,
}


def method_class(method: Method, task: Task) -> type[MethodBase]:
    """The class implementing ``method`` for ``task``.

    Raises
    ------
    NotImplementedError
        salvo has no such method for that task.
    """
    try:
        return REGISTRY[(method, task)]
    except KeyError:
        raise NotImplementedError(
            f"{method.name} for {task.name} is not available in this version of salvo "
            f"(available: {[f'{m.name}/{t.name}' for m, t in REGISTRY]})"
        ) from None


def all_keywords() -> frozenset[str]:
    """Every method keyword of every registered method (parameters and branch parameters)."""
    return frozenset().union(*(cls.keywords() for cls in REGISTRY.values()))


#: The reference toolkit's names of method keywords: ``k`` (ViT-ReciproCAM's blocks) is
#: ``num_blocks``.
KEYWORD_ALIASES = {"k": "num_blocks"}


def apply_aliases(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the reference's keyword names (:data:`KEYWORD_ALIASES`) renamed.

    Raises
    ------
    ValueError
        Both names given with different values.
    """
    out = dict(kwargs)
    for old, new in KEYWORD_ALIASES.items():
        if old in out:
            value = out.pop(old)
            if new in out and out[new] is not None and out[new] != value:
                raise ValueError(f"{old} and {new} name the same setting; got {value!r} and "
                                 f"{out[new]!r}")
            out[new] = value
    return out


def as_enum(value: Any, enum: type, argument: str) -> Any:
    """``value`` as a member of ``enum`` (a member, or its value as a string in any case).

    Raises
    ------
    ValueError
        Naming ``argument``, the value and the choices.
    """
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.lower())
        except ValueError:
            pass
    choices = ", ".join(m.name for m in enum)
    raise ValueError(f"{argument} must be one of {choices}; got {value!r}")


def resolve_whitebox_method(
    model: ov.Model,
    task: Task | str,
    explain_method: Method | str | None = None,
    target_layer: object = None,
) -> Method:
    """The white-box method to use.

    Classification: the given method, else ViT-ReciproCAM for transformer graphs (or a named
    target that is a rank-3 token tensor) and ReciproCAM otherwise. Detection:
    DetClassProbabilityMap.

    Raises
    ------
    ValueError
        The method is not white-box, or does not fit the task.
    """
    task = as_enum(task, Task, "task")
    if explain_method is not None:
        method = as_enum(explain_method, Method, "explain_method")
        cls = REGISTRY.get((method, task))
        if cls is None or not issubclass(cls, WhiteBoxMethod):
            if not any(issubclass(c, WhiteBoxMethod) for (m, _), c in REGISTRY.items()
                       if m is method):
                raise ValueError(
                    f"explain_method {method.value!r} is not a white-box method; use "
                    "ExplainMode.BLACKBOX for it"
                )
            if task is Task.DETECTION:
                raise ValueError(
                    f"explain_method {method.value!r} is for classification; detection uses "
                    "'detclassprobabilitymap'"
                )
            raise ValueError(
                f"explain_method {method.value!r} is for detection, but task is classification"
            )
        return method
    if task is Task.DETECTION:
        return Method.DETCLASSPROBABILITYMAP
    if isinstance(target_layer, str):
        _, node, port = find_node(model, target_layer)
        rank = node.get_output_partial_shape(port).rank
        return (
            Method.VITRECIPROCAM if rank.is_static and rank.get_length() == 3 else Method.RECIPROCAM
        )
    return Method.VITRECIPROCAM if is_transformer(model) else Method.RECIPROCAM


class MethodFactory(ABC):
    """Chooses and builds a method for a task (the reference toolkit's ``MethodFactory``)."""

    @classmethod
    @abstractmethod
    def create_method(cls, *args: Any, **kwargs: Any) -> MethodBase:
        """Build the method for the task."""

    @staticmethod
    @abstractmethod
    def create_classification_method(*args: Any, **kwargs: Any) -> MethodBase:
        """Build a classification method."""

    @staticmethod
    @abstractmethod
    def create_detection_method(*args: Any, **kwargs: Any) -> MethodBase:
        """Build a detection method."""


def _check_build_keywords(cls: type[MethodBase], kwargs: dict[str, Any]) -> None:
    from salvo.inference import EngineConfig

    allowed = cls.keywords() | EngineConfig.keywords() | {"postprocess_fn", "progress",
                                                           "input_shape"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        mine = sorted(cls.keywords())
        raise TypeError(
            f"{cls.method.value} got unexpected keyword argument(s) {', '.join(unknown)}"
            + (f"; it accepts {', '.join(mine)}" if mine else "; it accepts none")
        )


class WhiteBoxMethodFactory(MethodFactory):
    """Builds white-box methods (the reference toolkit's ``WhiteBoxMethodFactory``)."""

    @classmethod
    def create_method(
        cls,
        task: Task | str,
        model: ov.Model | str | os.PathLike[str],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        explain_method: Method | str | None = None,
        target_layer: str | Sequence[str] | None = None,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        **kwargs: Any,
    ) -> WhiteBoxMethod:
        """The white-box method for ``task`` (see :func:`resolve_whitebox_method`), built and,
        unless ``prepare_model=False``, compiled.

        ``kwargs``: the method's branch parameters (ViT-ReciproCAM: ``use_gaussian``,
        ``cls_token``, ``final_norm``, ``num_blocks``/``k``; DetClassProbabilityMap:
        ``num_anchors``, ``saliency_map_size``, ``layout``), ``prepare_model``,
        ``postprocess_fn`` and engine settings.

        Raises
        ------
        ValueError
            A method that does not fit the task, an unknown target layer.
        TypeError
            A keyword the method does not take.
        XAIInsertionError
            The branch could not be built.
        """
        task = as_enum(task, Task, "task")
        if task is Task.CLASSIFICATION:
            return cls.create_classification_method(model, preprocess_fn, explain_method,
                                                    target_layer, embed_scaling, device_name,
                                                    **kwargs)
        return cls.create_detection_method(model, preprocess_fn, explain_method, target_layer,
                                           embed_scaling, device_name, **kwargs)

    @staticmethod
    def create_classification_method(
        model: ov.Model | str | os.PathLike[str],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        explain_method: Method | str | None = None,
        target_layer: str | None = None,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        **kwargs: Any,
    ) -> WhiteBoxMethod:
        """A classification white-box method (see :meth:`create_method`)."""
        return _create_whitebox(Task.CLASSIFICATION, model, preprocess_fn, explain_method,
                                target_layer, embed_scaling, device_name, kwargs)

    @staticmethod
    def create_detection_method(
        model: ov.Model | str | os.PathLike[str],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        explain_method: Method | str | None = None,
        target_layer: Sequence[str] | None = None,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        **kwargs: Any,
    ) -> WhiteBoxMethod:
        """A detection white-box method (see :meth:`create_method`)."""
        return _create_whitebox(Task.DETECTION, model, preprocess_fn, explain_method,
                                target_layer, embed_scaling, device_name, kwargs)


def _create_whitebox(task: Task, model: Any, preprocess_fn: Any, explain_method: Any,
                     target_layer: Any, embed_scaling: Any, device_name: str,
                     kwargs: dict[str, Any]) -> WhiteBoxMethod:
    model = read_model(model)
    target_layer = check_target_layer(target_layer)
    if target_layer is None:
        logger.info("Target insertion layer is not provided - trying to find it in auto mode.")
    else:
        shown = target_layer if isinstance(target_layer, str) else ", ".join(target_layer)
        logger.info("Target insertion layer %s is provided.", shown)
    method = resolve_whitebox_method(model, task, explain_method, target_layer)
    cls = REGISTRY[(method, task)]
    kwargs = apply_aliases(kwargs)
    prepare = check_flag(kwargs.pop("prepare_model", True), "prepare_model")
    _check_build_keywords(cls, kwargs)
    return cls(model, preprocess_fn, target_layer=target_layer, embed_scaling=embed_scaling,
               device_name=device_name, prepare_model=prepare, **kwargs)


class BlackBoxMethodFactory(MethodFactory):
    """Builds black-box methods (the reference toolkit's ``BlackBoxMethodFactory``)."""

    @classmethod
    def create_method(
        cls,
        task: Task | str,
        model: ov.Model | str | os.PathLike[str],
        postprocess_fn: Callable[[Any], Any],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        explain_method: Method | str | None = None,
        device_name: str = "CPU",
        **kwargs: Any,
    ) -> BlackBoxXAIMethod:
        """The black-box method for ``task``: ``explain_method`` (AISE by default), built and,
        unless ``prepare_model=False``, compiled. ``kwargs``: ``prepare_model``, ``progress``
        and engine settings.

        Raises
        ------
        ValueError
            A method that is not black-box.
        NotImplementedError
            salvo has no such method for the task.
        """
        task = as_enum(task, Task, "task")
        if task is Task.CLASSIFICATION:
            return cls.create_classification_method(model, postprocess_fn, preprocess_fn,
                                                    explain_method, device_name, **kwargs)
        return cls.create_detection_method(model, postprocess_fn, preprocess_fn, explain_method,
                                           device_name, **kwargs)

    @staticmethod
    def create_classification_method(
        model: ov.Model | str | os.PathLike[str],
        postprocess_fn: Callable[[Any], Any],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        explain_method: Method | str | None = None,
        device_name: str = "CPU",
        **kwargs: Any,
    ) -> BlackBoxXAIMethod:
        """A classification black-box method (see :meth:`create_method`)."""
        return _create_blackbox(Task.CLASSIFICATION, model, postprocess_fn, preprocess_fn,
                                explain_method, device_name, kwargs)

    @staticmethod
    def create_detection_method(
        model: ov.Model | str | os.PathLike[str],
        postprocess_fn: Callable[[Any], Any],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        explain_method: Method | str | None = None,
        device_name: str = "CPU",
        **kwargs: Any,
    ) -> BlackBoxXAIMethod:
        """A detection black-box method (see :meth:`create_method`)."""
        return _create_blackbox(Task.DETECTION, model, postprocess_fn, preprocess_fn,
                                explain_method, device_name, kwargs)


def _create_blackbox(task: Task, model: Any, postprocess_fn: Any, preprocess_fn: Any,
                     explain_method: Any, device_name: str,
                     kwargs: dict[str, Any]) -> BlackBoxXAIMethod:
    method = Method.AISE if explain_method is None else as_enum(explain_method, Method,
                                                                "explain_method")
    cls = method_class(method, task)
    if not issubclass(cls, BlackBoxXAIMethod):
        raise ValueError(
            f"explain_method {method.value!r} is a white-box method; use ExplainMode.WHITEBOX "
            "for it"
        )
    kwargs = dict(kwargs)
    prepare = check_flag(kwargs.pop("prepare_model", True), "prepare_model")
    return cls(model, postprocess_fn, preprocess_fn, device_name, prepare, **kwargs)


def insert_xai(
    model: ov.Model | str | os.PathLike[str] | Any,
    task: Task | str,
    explain_method: Method | str | None = None,
    target_layer: str | Sequence[str] | None = None,
    embed_scaling: bool | None = True,
    **kwargs: Any,
) -> ov.Model:
    """Return a new model with a white-box XAI branch and an extra output named
    ``saliency_map``.

    The returned model is a new graph (the user's model is cloned, never edited) with the
    original outputs plus ``saliency_map``. It saves with ``openvino.save_model`` and runs with
    plain OpenVINO, without salvo. Which method and target were used is recorded in the model's
    runtime info under ``["xai", "method"]`` and ``["xai", "target_layer"]``.

    A ``torch.nn.Module`` (classification) gets the PyTorch path instead
    (:func:`salvo.methods.white_box.torch.insert_xai_torch`): a copy whose ``forward`` returns
    ``{"prediction": ..., "saliency_map": ...}``. torch is only looked at when the caller has
    already imported it.

    Parameters
    ----------
    model
        The model (not modified), or a path to ``.xml`` / ``.onnx`` / ``.tflite``.
    task
        ``Task.CLASSIFICATION`` or ``Task.DETECTION``.
    explain_method
        ``RECIPROCAM``, ``VITRECIPROCAM``, ``ACTIVATIONMAP`` (classification) or
        ``DETCLASSPROBABILITYMAP`` (detection). Default: chosen from the graph (see
        :func:`resolve_whitebox_method`).
    target_layer
        Friendly name of the node to hook (classification), or of the per-scale class-score
        heads (detection; a list or a comma-separated str). Default: found automatically
        (classification only).
    embed_scaling
        Scale each map to 0..255 uint8 inside the graph.
    **kwargs
        The method's branch parameters (see :meth:`WhiteBoxMethodFactory.create_method`), and
        ``input_shape``: the per-item input shape (e.g. ``(3, 224, 224)``) to build for when the
        model's input has dynamic dimensions (``openvino.convert_model`` gives ``[?,3,?,?]``).

    Returns
    -------
    openvino.Model
        Original outputs, then ``saliency_map``: (B, num_classes, h, w) for ReciproCAM,
        ViT-ReciproCAM and DetClassProbabilityMap, (B, h, w) for ActivationMap; uint8 when
        ``embed_scaling`` else float32. A model that already has ``saliency_map`` is returned
        as it is.

    Raises
    ------
    ValueError
        Unknown ``target_layer`` name (with close names), or a method that does not fit.
    TypeError
        A keyword argument the method does not take, or a model that is not one (then a
        :class:`~salvo.errors.ModelTypeError`, also a ``ValueError`` as in the reference).
    XAIInsertionError
        The branch could not be built (no target found, head not batchable, ...).
    """
    torch = sys.modules.get("torch")  # a torch module can only exist once torch is imported
    if torch is not None and isinstance(model, torch.nn.Module):
        from salvo.methods.white_box.torch import insert_xai_torch

        return insert_xai_torch(model, task, explain_method, target_layer, embed_scaling,
                                **kwargs)
    if not isinstance(model, (ov.Model, str, os.PathLike)):
        raise ModelTypeError(
            f"model must be an openvino.Model, a path or a torch.nn.Module, got "
            f"{type(model).__name__}"
        )
    model = read_model(model)
    kwargs.pop("prepare_model", None)
    method = WhiteBoxMethodFactory.create_method(task, model, IDENTITY, explain_method,
                                                 target_layer, embed_scaling,
                                                 prepare_model=False, **kwargs)
    return method.prepare_model(load_model=False)
