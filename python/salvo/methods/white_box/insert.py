"""``insert_xai``: add a white-box XAI branch to an OpenVINO model.

The returned model is a new graph (the user's model is cloned, never edited) with the original
outputs plus an output named ``saliency_map``. It saves with ``openvino.save_model`` and runs with
plain OpenVINO, without salvo. Which method and target were used is recorded in the model's
runtime info under ``["xai", "method"]`` and ``["xai", "target_layer"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from os import PathLike

import openvino as ov

from salvo._checks import check_flag
from salvo.common import Method, Task
from salvo.methods.white_box.activation_map import activation_map_branch
from salvo.methods.white_box.graph import (
    GraphIndex,
    TargetLayer,
    XAIInsertionError,
    build_model,
    find_cnn_target,
    find_node,
    find_vit_target,
    has_saliency_output,
    is_transformer,
    scale_maps,
    static_dims,
)
from salvo.methods.white_box.det_class_probability_map import det_class_probability_map_branch
from salvo.methods.white_box.recipro_cam import recipro_cam_branch
from salvo.methods.white_box.vit_recipro_cam import vit_recipro_cam_branch

logger = logging.getLogger(__name__)

__all__ = ["METHOD_KWARGS", "check_target_layer", "insert_xai", "resolve_whitebox_method"]

#: Keyword arguments each white-box method accepts (besides target_layer / embed_scaling).
METHOD_KWARGS: dict[Method, frozenset[str]] = {
    Method.ACTIVATIONMAP: frozenset(),
    Method.RECIPROCAM: frozenset(),
    Method.VITRECIPROCAM: frozenset({"use_gaussian", "cls_token", "final_norm", "num_blocks"}),
    Method.DETCLASSPROBABILITYMAP: frozenset({"num_anchors", "saliency_map_size", "layout"}),
}

_CLASSIFICATION_METHODS = (Method.ACTIVATIONMAP, Method.RECIPROCAM, Method.VITRECIPROCAM)

_USING = {
    Method.RECIPROCAM: "Using ReciproCAM method (for CNNs).",
    Method.ACTIVATIONMAP: "Using ActivationMap method (for CNNs).",
    Method.VITRECIPROCAM: "Using ViTReciproCAM method (for transformers).",
    Method.DETCLASSPROBABILITYMAP: "Using DetClassProbabilityMap method (for single-stage detectors).",
}


def _as_enum(value: object, enum: type, arg: str):
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.lower())
        except ValueError:
            pass
    choices = ", ".join(repr(m.value) for m in enum)
    raise ValueError(f"{arg} must be a {enum.__name__} or one of {choices}, got {value!r}")


def resolve_whitebox_method(
    model: ov.Model,
    task: Task | str,
    explain_method: Method | str | None = None,
    target_layer: object = None,
) -> Method:
    """The white-box method ``insert_xai`` would use.

    Classification: the given method, else ViT-ReciproCAM for transformer graphs (or a named
    target that is a rank-3 token tensor) and ReciproCAM otherwise. Detection:
    DetClassProbabilityMap.

    Raises
    ------
    ValueError
        The method is not white-box, or does not fit the task.
    """
    task = _as_enum(task, Task, "task")
    if explain_method is not None:
        method = _as_enum(explain_method, Method, "explain_method")
        if method not in METHOD_KWARGS:
            raise ValueError(
                f"explain_method {method.value!r} is not a white-box method; use ExplainMode.BLACKBOX for it"
            )
        if task is Task.DETECTION and method is not Method.DETCLASSPROBABILITYMAP:
            raise ValueError(
                f"explain_method {method.value!r} is for classification; detection uses 'detclassprobabilitymap'"
            )
        if task is Task.CLASSIFICATION and method is Method.DETCLASSPROBABILITYMAP:
            raise ValueError(
                "explain_method 'detclassprobabilitymap' is for detection, but task is classification"
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


def _check_kwargs(method: Method, kwargs: dict) -> None:
    unknown = sorted(set(kwargs) - METHOD_KWARGS[method])
    if unknown:
        allowed = sorted(METHOD_KWARGS[method])
        raise TypeError(
            f"{method.value} got unexpected keyword argument(s) {', '.join(unknown)}"
            + (f"; it accepts {', '.join(allowed)}" if allowed else "; it accepts none")
        )


def _classification_target(
    model_a: ov.Model, gi: GraphIndex, method: Method, target_layer: str | None, num_blocks: int = 1
) -> TargetLayer:
    if target_layer is not None:
        if not isinstance(target_layer, str):
            raise TypeError(
                f"target_layer must be a str for {method.value}, got {type(target_layer).__name__}"
            )
        index, node, port = find_node(model_a, target_layer, gi)
        kind = "transformer" if method is Method.VITRECIPROCAM else "cnn"
        return TargetLayer(
            kind,
            node.get_friendly_name(),
            index,
            port,
            tuple(static_dims(node.get_output_partial_shape(port))),
            "provided",
        )
    if method is Method.VITRECIPROCAM:
        return find_vit_target(model_a, gi, num_blocks)
    return find_cnn_target(model_a, gi)


def _detection_heads(model_a: ov.Model, gi: GraphIndex, target_layer: object) -> list[ov.Output]:
    if target_layer is None:
        raise XAIInsertionError(
            "DetClassProbabilityMap needs target_layer: the names of the detector's class-score head "
            "nodes, one per scale (e.g. target_layer=['head0/cls', 'head1/cls'])."
        )
    names = (
        [n.strip() for n in target_layer.split(",")]
        if isinstance(target_layer, str)
        else list(target_layer)
    )
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError(
            f"target_layer must be a str or a list of str for detection, got {target_layer!r}"
        )
    heads = []
    for name in names:
        _, node, port = find_node(model_a, name, gi)
        heads.append(node.output(port))
    return heads


def check_target_layer(target_layer: object) -> str | list[str] | None:
    """``target_layer`` checked: ``None``, a node name, or a non-empty list of node names.

    Raises
    ------
    TypeError
        Anything else (a layer number, say), naming the value.
    """
    if target_layer is None or isinstance(target_layer, str):
        return target_layer
    if isinstance(target_layer, (list, tuple)) and target_layer and all(
        isinstance(name, str) for name in target_layer
    ):
        return list(target_layer)
    raise TypeError(
        "target_layer must be the friendly name of a node (str) or, for detection, a list of "
        f"the class-score heads' names; got {target_layer!r:.80} ({type(target_layer).__name__})"
    )


def insert_xai(
    model: ov.Model | str | PathLike,
    task: Task | str,
    explain_method: Method | str | None = None,
    target_layer: str | Sequence[str] | None = None,
    embed_scaling: bool = True,
    **method_kwargs: object,
) -> ov.Model:
    """Return a new model with an XAI branch and an extra output named ``saliency_map``.

    Parameters
    ----------
    model : openvino.Model or path
        The model (not modified), or a path to ``.xml`` / ``.onnx`` / ``.tflite``.
    task : Task or str
        ``Task.CLASSIFICATION`` or ``Task.DETECTION``.
    explain_method : Method or str, optional
        ``RECIPROCAM``, ``VITRECIPROCAM``, ``ACTIVATIONMAP`` (classification) or
        ``DETCLASSPROBABILITYMAP`` (detection). Default: chosen from the graph (see
        :func:`resolve_whitebox_method`).
    target_layer : str or list of str, optional
        Friendly name of the node to hook (classification), or of the per-scale class-score heads
        (detection; a list or a comma-separated str). Default: found automatically
        (classification only).
    embed_scaling : bool
        Scale each map to 0..255 uint8 inside the graph.
    **method_kwargs
        ViT-ReciproCAM: ``use_gaussian`` (True), ``cls_token`` (True), ``num_blocks`` (1: how
        many last blocks are re-run when the target is found automatically), ``final_norm``
        (accepted for compatibility; whatever follows the target, a final norm included, is
        always re-run). DetClassProbabilityMap:
        ``num_anchors`` (list of int per scale), ``saliency_map_size`` ((23, 23)), ``layout``
        (``"NCHW"`` / ``"NHWC"`` / None to recognise).

    Returns
    -------
    openvino.Model
        Original outputs, then ``saliency_map``: (B, num_classes, h, w) for ReciproCAM,
        ViT-ReciproCAM and DetClassProbabilityMap, (B, h, w) for ActivationMap; uint8 when
        ``embed_scaling`` else float32. A model that already has ``saliency_map`` is returned as
        is.

    Raises
    ------
    ValueError
        Unknown ``target_layer`` name (with close names), or a method that does not fit.
    TypeError
        A keyword argument the method does not take.
    XAIInsertionError
        The branch could not be built (no target found, head not batchable, ...).
    """
    if isinstance(model, (str, PathLike)):
        from salvo.inference import read_model

        model = read_model(model)
    if not isinstance(model, ov.Model):
        raise TypeError(f"model must be an openvino.Model or a path, got {type(model).__name__}")
    target_layer = check_target_layer(target_layer)
    # None as the reference toolkit's signature allows it: no scaling
    embed_scaling = embed_scaling is not None and check_flag(embed_scaling, "embed_scaling")
    if has_saliency_output(model):
        logger.info("The model already has a saliency_map output; returning it unchanged.")
        return model
    task = _as_enum(task, Task, "task")
    if target_layer is None:
        logger.info("Target insertion layer is not provided - trying to find it in auto mode.")
    else:
        shown = target_layer if isinstance(target_layer, str) else ", ".join(map(str, target_layer))
        logger.info(f"Target insertion layer {shown} is provided.")
    method = resolve_whitebox_method(model, task, explain_method, target_layer)
    _check_kwargs(method, method_kwargs)
    logger.info(_USING[method])

    model_a = model.clone()
    gi = GraphIndex(model_a)
    try:
        if method is Method.DETCLASSPROBABILITYMAP:
            heads = _detection_heads(model_a, gi, target_layer)
            saliency = det_class_probability_map_branch(heads, **method_kwargs)  # type: ignore[arg-type]
            target_name = ",".join(h.get_node().get_friendly_name() for h in heads)
            scale_axes = [2, 3]
        else:
            num_blocks = int(method_kwargs.pop("num_blocks", 1))  # type: ignore[call-overload]
            method_kwargs.pop("final_norm", None)  # the grafted head always includes the final norm
            target = _classification_target(model_a, gi, method, target_layer, num_blocks)  # type: ignore[arg-type]
            target_name = target.name
            if method is Method.ACTIVATIONMAP:
                saliency = activation_map_branch(gi.ops[target.index].output(target.port))
                scale_axes = [1, 2]
            else:
                model_b = model.clone()
                if method is Method.RECIPROCAM:
                    saliency = recipro_cam_branch(model_a, model_b, target)
                else:
                    saliency = vit_recipro_cam_branch(model_a, model_b, target, **method_kwargs)  # type: ignore[arg-type]
                scale_axes = [2, 3]
        if embed_scaling:
            saliency = scale_maps(saliency, scale_axes)
        new_model = build_model(
            model_a, saliency, {"method": method.value, "target_layer": target_name}
        )
    except XAIInsertionError:
        raise
    except (ValueError, TypeError):
        raise
    except Exception as exc:  # OpenVINO errors while building nodes
        raise XAIInsertionError(f"Insertion of the XAI branch failed: {exc}") from exc
    logger.info("Insertion of the XAI branch into the model was successful.")
    return new_model
