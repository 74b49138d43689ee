"""ReciproCAM (Byun & Lee, arXiv 2209.14074): class maps from re-running the head on masked features.

For a (B, C, h, w) feature map ``F`` the branch builds ``h * w`` copies of ``F``; copy ``k`` keeps
spatial cell ``k`` (all channels) and zeros every other cell (a constant one-hot mask). The head
of the network (everything between the feature map and the class scores) runs on this batch, and
the score of class ``c`` for copy ``k`` is the saliency of class ``c`` at cell ``k``. Scores are
taken before a final Softmax.

Closed form. When every op between ``F`` and a global spatial pooling is per-position and
elementwise (activations, or arithmetic with a scalar or per-channel constant), the pooled vector
of copy ``k`` is known without building the masked batch: with ``act`` that pointwise chain,

    mean pooling:  (act(F[:, :, k]) + (h*w - 1) * act(0)) / (h*w)
    sum pooling:    act(F[:, :, k]) + (h*w - 1) * act(0)

so the branch applies ``act`` to the ``h * w`` feature vectors, reshaped to (B*h*w, C, 1, 1), and
to a constant zero vector (which OpenVINO folds at compile time), and feeds the combination to
the part of the head after the pooling. It gives the same maps as the masked batch up to float
rounding, without the (B*h*w, C, h, w) tensor. :func:`closed_form_plan` decides when it applies;
otherwise the general path runs.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from salvo._checks import check_flag, check_int
from salvo.common import Method, Task
from salvo.methods.base import IDENTITY, MethodParams
from salvo.methods.white_box.base import Branch, WhiteBoxMethod, check_target_layer
from salvo.methods.white_box.graph import (
    GraphIndex,
    TargetLayer,
    XAIInsertionError,
    const,
    graft_head,
    logits_output,
    scores_to_maps,
    static_dims,
    typed_const,
)
from salvo.methods.white_box.vit_recipro_cam import vit_recipro_cam_branch
# The reference toolkit's names in this module (re-exported, as it does).
from salvo.common.utils import IdentityPreprocessFN  # noqa: F401
from salvo.methods.white_box.model_parser import IRParserCls, ModelType  # noqa: F401

logger = logging.getLogger(__name__)

__all__ = [
    "CLOSED_FORM",
    "FeatureMapPerturbationBase",
    "ReciproCAM",
    "ViTReciproCAM",
    "ViTReciproCAMParams",
    "ClosedFormPlan",
    "GlobalPool",
    "closed_form_plan",
    "recipro_cam_branch",
    "scores_to_maps",
]

#: Default of ``recipro_cam_branch(closed_form=None)``: use the closed form whenever it is exact.
#: Set to False to force the general masked-batch path (to benchmark or cross-check it).
CLOSED_FORM = True

#: Elementwise ops of one tensor input (further inputs, if any, must be scalar/per-channel
#: constants, like Swish's beta or Selu's alpha and lambda).
POINTWISE_UNARY_TYPES = frozenset(
    {
        "Relu",
        "Clamp",
        "Sigmoid",
        "HSigmoid",
        "HSwish",
        "Swish",
        "Mish",
        "Gelu",
        "Elu",
        "Selu",
        "Tanh",
        "SoftPlus",
        "SoftSign",
        "Exp",
        "Log",
        "Abs",
        "Negative",
        "Sqrt",
        "Erf",
        "Floor",
        "Ceiling",
        "Round",
        "Sign",
        "Convert",
        "PRelu",
    }
)
#: Elementwise ops of two inputs under numpy broadcasting; each input is either a value of the
#: pointwise chain or a scalar/per-channel constant.
POINTWISE_BINARY_TYPES = frozenset(
    {
        "Add",
        "Subtract",
        "Multiply",
        "Divide",
        "Maximum",
        "Minimum",
        "Power",
        "SquaredDifference",
    }
)


# --------------------------------------------------------------------------------------------
# closed form: analysis


@dataclass(frozen=True)
class GlobalPool:
    """A global spatial pooling that ends the pointwise chain.

    Attributes
    ----------
    index : int
        Position of the pooling node in ``model.get_ordered_ops()``.
    source : tuple of (int, int)
        (position, output port) of the tensor it pools: the target or a node of the chain.
    kind : {"mean", "sum"}
        ReduceMean / AvgPool / AdaptiveAvgPool average, ReduceSum sums.
    keep_dims : bool
        The output is (N, C, 1, 1) (else (N, C)).
    """

    index: int
    source: tuple[int, int]
    kind: Literal["mean", "sum"]
    keep_dims: bool


@dataclass(frozen=True)
class ClosedFormPlan:
    """Where the closed form cuts the head (positions in ``model.get_ordered_ops()``).

    Attributes
    ----------
    chain : tuple of int
        The pointwise nodes between the target and the poolings, in topological order (empty
        when the target feeds the pooling directly).
    pools : tuple of GlobalPool
        The global poolings; everything after them is the rest of the head.
    """

    chain: tuple[int, ...]
    pools: tuple[GlobalPool, ...]


def _is_constant(out: ov.Output) -> bool:
    """A Constant, or a Convert of one (weight decompression)."""
    node = out.get_node()
    t = node.get_type_name()
    if t == "Convert":
        node = node.input(0).get_source_output().get_node()
        t = node.get_type_name()
    return t == "Constant" and out.get_partial_shape().is_static


def _per_channel(out: ov.Output, c: int) -> bool:
    """A constant that numpy-broadcasts against (N, C, h, w) as a scalar or per channel."""
    if not _is_constant(out):
        return False
    shape = [d.get_length() for d in out.get_partial_shape()]
    if len(shape) > 4:
        return False
    padded = [1] * (4 - len(shape)) + shape
    return padded[0] == 1 and padded[2] == 1 and padded[3] == 1 and padded[1] in (1, c)


def _pool_of(node: ov.Node, h: int, w: int) -> tuple[Literal["mean", "sum"], bool] | None:
    """(kind, keep_dims) when ``node`` averages or sums its input 0 over the whole h x w map."""
    t = node.get_type_name()
    if t not in ("ReduceMean", "ReduceSum", "AvgPool", "AdaptiveAvgPool"):
        return None
    ps = node.get_input_partial_shape(0)
    if ps.rank.is_dynamic or ps.rank.get_length() != 4 or static_dims(ps)[2:] != [h, w]:
        return None
    if t in ("ReduceMean", "ReduceSum"):
        axes_out = node.input(1).get_source_output()
        if axes_out.get_node().get_type_name() != "Constant":
            return None
        axes = {int(a) % 4 for a in np.ravel(axes_out.get_node().get_data())}
        if axes != {2, 3}:
            return None
        keep = bool(node.get_attributes().get("keep_dims", False))
        return ("mean" if t == "ReduceMean" else "sum"), keep
    if t == "AdaptiveAvgPool":
        size_out = node.input(1).get_source_output()
        if size_out.get_node().get_type_name() != "Constant":
            return None
        if [int(s) for s in np.ravel(size_out.get_node().get_data())] != [1, 1]:
            return None
        return "mean", True
    attrs = node.get_attributes()
    pads = list(attrs.get("pads_begin", [])) + list(attrs.get("pads_end", []))
    if (
        [int(k) for k in attrs.get("kernel", [])] != [h, w]
        or any(int(p) != 0 for p in pads)
        or str(attrs.get("auto_pad", "explicit")).lower() not in ("explicit", "valid", "notset")
        or static_dims(node.get_output_partial_shape(0))[2:] != [1, 1]
    ):
        return None
    return "mean", True


def _pointwise(
    node: ov.Node, c: int, h: int, w: int, is_chain_value: Callable[[ov.Output], bool]
) -> bool:
    """``node`` maps each (n, :, y, x) position of chain values on its own, with constants
    that are scalar or per channel, and keeps the (N, C, h, w) shape in a real type."""
    t = node.get_type_name()
    if node.get_output_size() != 1 or not node.get_output_element_type(0).is_real():
        return False
    out_dims = node.get_output_partial_shape(0)
    if out_dims.rank.is_dynamic or static_dims(out_dims)[1:] != [c, h, w]:
        return False
    srcs = [inp.get_source_output() for inp in node.inputs()]
    if t in POINTWISE_UNARY_TYPES:
        if not srcs or not is_chain_value(srcs[0]):
            return False
        rest = srcs[1:]
        if t == "PRelu":  # a 1-D slope of length C applies along the channel axis
            slope = rest[0]
            dims = static_dims(slope.get_partial_shape())
            return _is_constant(slope) and (dims in ([1], [c]) or _per_channel(slope, c))
        return all(_per_channel(s, c) for s in rest)
    if t in POINTWISE_BINARY_TYPES:
        if str(node.get_attributes().get("auto_broadcast", "numpy")).lower() != "numpy":
            return False
        chain = [is_chain_value(s) for s in srcs]
        return any(chain) and all(ch or _per_channel(s, c) for ch, s in zip(chain, srcs))
    return False


def closed_form_plan(
    model: ov.Model, target: TargetLayer, index: GraphIndex | None = None
) -> ClosedFormPlan | None:
    """Decide whether ReciproCAM's closed form is exact for this head.

    It is when every node of the head (the ancestors of the class scores fed by the target)
    reached from the target before a global spatial pooling is per-position elementwise
    (:data:`POINTWISE_UNARY_TYPES`, :data:`POINTWISE_BINARY_TYPES` with scalar or per-channel
    constants), and every such path ends in a ReduceMean / ReduceSum over axes (2, 3), an
    AvgPool whose kernel is the whole map (no padding) or an AdaptiveAvgPool to 1 x 1.

    Parameters
    ----------
    model : openvino.Model
        The model (not modified).
    target : TargetLayer
        The (B, C, h, w) feature map, indexed in ``model``'s topological order.
    index : GraphIndex, optional
        Pre-built index of ``model``.

    Returns
    -------
    ClosedFormPlan or None
        None when the closed form does not apply (the general path must run).
    """
    gi = index or GraphIndex(model)
    feat = gi.ops[target.index].output(target.port)
    ps = feat.get_partial_shape()
    if ps.rank.is_dynamic or ps.rank.get_length() != 4 or not feat.get_element_type().is_real():
        return None
    _, c, h, w = static_dims(ps)
    if c is None or h is None or w is None:
        return None
    scores = logits_output(model).get_node()
    up = gi.ancestors(scores)
    target_key = (feat.get_node().get_name(), target.port)
    # nodes of the head reached from the target, not walking past a global pooling
    reached: set[str] = set()
    queue = deque(inp.get_node() for inp in feat.get_target_inputs())
    while queue:
        n = queue.popleft()
        name = n.get_name()
        if name in reached or name not in up:
            continue
        reached.add(name)
        if _pool_of(n, h, w) is None:
            for out in n.outputs():
                queue.extend(inp.get_node() for inp in out.get_target_inputs())
    if not reached:
        return None
    chain: list[int] = []
    chain_names: set[str] = set()
    pools: list[GlobalPool] = []

    def is_chain_value(out: ov.Output) -> bool:
        key = (out.get_node().get_name(), out.get_index())
        return key == target_key or key[0] in chain_names

    for i, n in enumerate(gi.ops):
        if n.get_name() not in reached:
            continue
        pool = _pool_of(n, h, w)
        src = n.input(0).get_source_output() if n.get_input_size() else None
        if pool is not None and src is not None and is_chain_value(src):
            if any(is_chain_value(inp.get_source_output()) for inp in n.inputs()[1:]):
                return None
            kind, keep = pool
            pools.append(GlobalPool(i, (gi.index(src.get_node()), src.get_index()), kind, keep))
        elif _pointwise(n, c, h, w, is_chain_value):
            chain.append(i)
            chain_names.add(n.get_name())
        else:
            logger.debug(
                "ReciproCAM closed form does not apply: %r (%s) between the target and the pooling",
                n.get_friendly_name(),
                n.get_type_name(),
            )
            return None
    if not pools:
        return None
    return ClosedFormPlan(tuple(chain), tuple(pools))


# --------------------------------------------------------------------------------------------
# closed form: graph


def _apply_chain(
    model: ov.Model, target: TargetLayer, plan: ClosedFormPlan, source: ov.Output
) -> dict[tuple[int, int], ov.Output]:
    """Rewire ``model``'s pointwise chain to start from ``source`` instead of the target.

    Returns the pooled tensors of the plan, keyed by (position, port), as computed from
    ``source``. ``model`` is a private clone; its chain nodes are edited in place.
    """
    gi = GraphIndex(model)
    feat = gi.ops[target.index].output(target.port)
    target_key = (feat.get_node().get_name(), target.port)
    for i in plan.chain:
        node = gi.ops[i]
        for inp in node.inputs():
            src = inp.get_source_output()
            if (src.get_node().get_name(), src.get_index()) == target_key:
                inp.replace_source_output(source)
        node.validate_and_infer_types()
    values = {}
    for pool in plan.pools:
        pos, port = pool.source
        values[pool.source] = (
            source if (pos, port) == (target.index, target.port) else gi.ops[pos].output(port)
        )
    return values


def _closed_form_branch(
    model_a: ov.Model, model_b: ov.Model, target: TargetLayer, plan: ClosedFormPlan
) -> ov.Output:
    """Class scores (B * h * w, ...) of the closed form (see the module docstring)."""
    ga = GraphIndex(model_a)
    feat = ga.ops[target.index].output(target.port)
    _, c, h, w = static_dims(feat.get_partial_shape())
    hw = h * w
    # (B, C, h, w) -> (B * h * w, C, 1, 1); row b * h * w + k holds F[b, :, k // w, k % w]
    # (a Transpose to NHWC, then a Reshape that moves no data)
    cells = ops.transpose(feat, const([0, 2, 3, 1], np.int64))  # (B, h, w, C)
    cells = ops.reshape(cells, const([-1, c, 1, 1], np.int64), False).output(0)
    zero = typed_const(np.zeros((1, c, 1, 1), np.float32), feat).output(0)
    if plan.chain:
        # two more clones of the head's pointwise chain: one on the cells, one on zeros (folded)
        on_cells = _apply_chain(model_b.clone(), target, plan, cells)
        on_zero = _apply_chain(model_b.clone(), target, plan, zero)
    else:
        on_cells = {p.source: cells for p in plan.pools}
        on_zero = {}
    gb = GraphIndex(model_b)
    scores_b = logits_output(model_b)
    cuts: list[tuple[ov.Input, ov.Output]] = []
    for pool in plan.pools:
        y = on_cells[pool.source]
        if pool.source in on_zero:  # act(0) != 0 in general: add the h*w - 1 zeroed cells
            z = on_zero[pool.source]
            y = ops.add(y, ops.multiply(z, typed_const(np.float32(hw - 1), z))).output(0)
        if pool.kind == "mean":
            y = ops.divide(y, typed_const(np.float32(hw), y)).output(0)
        if not pool.keep_dims:
            y = ops.squeeze(y, const([2, 3], np.int64)).output(0)
        pool_b = gb.ops[pool.index]
        if pool_b.get_name() == scores_b.get_node().get_name():
            return y  # the pooling is the class-score tensor itself
        cuts.extend((inp, y) for inp in pool_b.output(0).get_target_inputs())
    return graft_head(model_a, model_b, cuts, scores_b)


# --------------------------------------------------------------------------------------------
# branch


def recipro_cam_branch(
    model_a: ov.Model,
    model_b: ov.Model,
    target: TargetLayer,
    closed_form: bool | None = None,
) -> ov.Output:
    """Build the ReciproCAM branch.

    Parameters
    ----------
    model_a, model_b : openvino.Model
        Two clones of the user's model: ``model_a`` becomes the returned model, ``model_b``
        lends its head.
    target : TargetLayer
        The (B, C, h, w) feature map, indexed in ``model_a``'s topological order.
    closed_form : bool, optional
        Use the closed form when :func:`closed_form_plan` says it is exact (default: the
        module-level :data:`CLOSED_FORM`, True). False always builds the masked batch.

    Returns
    -------
    openvino.Output
        (B, num_classes, h, w) float32 saliency maps.
    """
    ga, gb = GraphIndex(model_a), GraphIndex(model_b)
    feat = ga.ops[target.index].output(target.port)
    ps = feat.get_partial_shape()
    if ps.rank.is_dynamic or ps.rank.get_length() != 4 or any(d.is_dynamic for d in list(ps)[1:]):
        raise XAIInsertionError(
            f"ReciproCAM needs a (B, C, h, w) feature map with static C, h, w; {target.name!r} has shape {ps}."
        )
    _, c, h, w = (d.get_length() if d.is_static else None for d in ps)
    if not (h < c and w < c):  # type: ignore[operator]
        raise XAIInsertionError(
            f"ReciproCAM supports NCHW feature maps only; {target.name!r} has shape {ps} (h or w >= C looks like NHWC)."
        )
    use_closed_form = CLOSED_FORM if closed_form is None else closed_form
    plan = closed_form_plan(model_b, target, gb) if use_closed_form else None
    if plan is not None:
        logger.debug(
            "ReciproCAM: closed form (%d pointwise node(s), %d pooling(s)).",
            len(plan.chain),
            len(plan.pools),
        )
        return scores_to_maps(_closed_form_branch(model_a, model_b, target, plan), h, w)
    logger.debug("ReciproCAM: general path (a batch of %d masked feature maps).", h * w)
    hw = h * w
    mask = np.zeros((hw, 1, h, w), np.float32)
    cells = np.arange(hw)
    mask[cells, 0, cells // w, cells % w] = 1.0
    x5 = ops.unsqueeze(feat, const([1], np.int64))  # (B, 1, C, h, w)
    mosaic = ops.multiply(x5, typed_const(mask, feat))  # (B, h*w, C, h, w)
    mosaic = ops.reshape(mosaic, const([-1, c, h, w], np.int64), False)

    out_b = gb.ops[target.index].output(target.port)
    cuts = [(inp, mosaic.output(0)) for inp in out_b.get_target_inputs()]
    if not cuts:
        raise XAIInsertionError(f"The target layer {target.name!r} feeds nothing.")
    scores = graft_head(model_a, model_b, cuts, logits_output(model_b))
    return scores_to_maps(scores, h, w)


# --------------------------------------------------------------------------------------------
# the methods


class FeatureMapPerturbationBase(WhiteBoxMethod):
    """Base class of the methods that re-run the head on perturbed copies of a feature map
    (ReciproCAM, ViT-ReciproCAM): one class map per class, ``(1, num_classes, h, w)``.

    Parameters
    ----------
    model, preprocess_fn, embed_scaling, device_name
        See :class:`~salvo.methods.white_box.base.WhiteBoxMethod`.
    target_layer
        Friendly name of the node to perturb; ``None`` finds it automatically.
    """

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        target_layer: str | None = None,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        **kwargs: Any,
    ) -> None:
        super().__init__(model, preprocess_fn, embed_scaling, device_name, **kwargs)
        self.target_layer = check_target_layer(target_layer)
        self.per_class = True


class ReciproCAM(FeatureMapPerturbationBase):
    """ReciproCAM (arXiv 2209.14074) for CNNs: the head re-run once per feature-map cell, in
    one inference (the reference toolkit's ``ReciproCAM``; parameters:
    :class:`FeatureMapPerturbationBase`, plus ``prepare_model`` — insert and compile now)."""

    method = Method.RECIPROCAM
    tasks = (Task.CLASSIFICATION,)

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        target_layer: str | None = None,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        prepare_model: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, preprocess_fn, target_layer, embed_scaling, device_name,
                         **kwargs)
        self._prepare_now(prepare_model)

    def build_branch(self, model: ov.Model, index: GraphIndex) -> Branch:
        target = self._classification_target(model, index, self.target_layer, "cnn")
        logger.info("Using ReciproCAM method (for CNNs).")
        saliency = recipro_cam_branch(model, self._model_ori.clone(), target)
        return Branch(saliency, [2, 3], target.name)


@dataclass(frozen=True)
class ViTReciproCAMParams(MethodParams):
    """How ViT-ReciproCAM builds its branch.

    Attributes
    ----------
    use_gaussian
        Each copy keeps a 3 x 3 Gaussian neighbourhood of one token (True) or one token only.
    cls_token
        Keep the class (and other auxiliary) tokens in every copy (True) or zero them.
    final_norm
        Accepted for the reference's signature: whatever follows the target, a final norm
        included, is always re-run.
    num_blocks
        How many last transformer blocks are re-run when the target is found automatically
        (the reference's ``k``).
    """

    use_gaussian: bool = True
    cls_token: bool = True
    final_norm: bool = True
    num_blocks: int = 1

    def validate(self, height: int = 0, width: int = 0) -> ViTReciproCAMParams:
        """Check every field (the input size does not matter); return a copy with canonical
        types.

        Raises
        ------
        ValueError
            A flag that is not a bool, or ``num_blocks`` not an int >= 1 (naming it and the
            value).
        """
        return replace(self, use_gaussian=check_flag(self.use_gaussian, "use_gaussian"),
                       cls_token=check_flag(self.cls_token, "cls_token"),
                       final_norm=check_flag(self.final_norm, "final_norm"),
                       num_blocks=check_int(self.num_blocks, "num_blocks", minimum=1))


class ViTReciproCAM(FeatureMapPerturbationBase):
    """ViT-ReciproCAM (arXiv 2310.02588) for vision transformers: the last block(s) re-run on
    token-masked copies (the reference toolkit's ``ViTReciproCAM``; parameters:
    :class:`FeatureMapPerturbationBase` and :class:`ViTReciproCAMParams`; ``k`` is the
    reference's name of ``num_blocks``)."""

    method = Method.VITRECIPROCAM
    tasks = (Task.CLASSIFICATION,)
    build_params_class = ViTReciproCAMParams

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        target_layer: str | None = None,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        use_gaussian: bool = True,
        cls_token: bool = True,
        final_norm: bool = True,
        k: int = 1,
        prepare_model: bool = True,
        *,
        num_blocks: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, preprocess_fn, target_layer, embed_scaling, device_name,
                         **kwargs)
        if k is None:
            k = 1
        if num_blocks is not None and k != 1 and k != num_blocks:
            raise ValueError(f"k and num_blocks name the same setting; got {k} and {num_blocks}")
        blocks = num_blocks if num_blocks is not None else k
        self.build_params = ViTReciproCAMParams(use_gaussian, cls_token, final_norm,
                                                blocks).validate()
        self._prepare_now(prepare_model)

    def build_branch(self, model: ov.Model, index: GraphIndex) -> Branch:
        p = self.build_params
        target = self._classification_target(model, index, self.target_layer, "transformer",
                                             p.num_blocks)
        logger.info("Using ViTReciproCAM method (for transformers).")
        saliency = vit_recipro_cam_branch(model, self._model_ori.clone(), target,
                                          use_gaussian=p.use_gaussian, cls_token=p.cls_token)
        return Branch(saliency, [2, 3], target.name)
