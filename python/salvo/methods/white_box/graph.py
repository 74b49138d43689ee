"""Shared machinery of the white-box methods: graph search, head grafting and in-graph scaling.

White-box methods add an XAI branch to a copy of the user's OpenVINO model. The pieces here:

- :func:`find_node` / :func:`find_target_layer`: the node to hook, by name or automatically
  (CNN feature map, global-pooling input, or the residual Add before a transformer's last block).
- :func:`graft_head`: re-run the part of the network between the target and the class scores
  (the *head*) on a new, batched input, inside the same graph. The head is taken from a second
  clone of the model, its inputs are rewired to the new tensors and to the first clone's trunk,
  and its constant batch-1 reshapes are made batch-agnostic.
- :func:`scale_maps`: per-map min-max to 0..255 and conversion to uint8 inside the graph.
- :func:`build_model`: the new model with the original outputs plus ``saliency_map``.

Every function works on clones: the user's model is never mutated.
"""

from __future__ import annotations

import difflib
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from salvo.common import SALIENCY_MAP_OUTPUT_NAME

logger = logging.getLogger(__name__)

__all__ = [
    "GraphIndex",
    "TargetLayer",
    "XAIInsertionError",
    "attention_block_at",
    "build_model",
    "cnn_target_candidates",
    "const",
    "find_cnn_target",
    "find_node",
    "find_target_layer",
    "find_vit_target",
    "graft_head",
    "has_saliency_output",
    "insert_xai_branch_into_model",
    "is_transformer",
    "last_global_pool",
    "logits_output",
    "scale_maps",
    "scores_to_maps",
    "static_dims",
    "transformer_blocks",
    "typed_const",
]


class XAIInsertionError(RuntimeError):
    """The XAI branch could not be inserted into the model (callers may fall back to black-box)."""


CONV_TYPES = frozenset({"Convolution", "GroupConvolution"})
#: Ops a CNN feature map may pass through after its convolution and still count as "produced
#: from convolutions" (elementwise, activations, normalisations, local pooling, concatenation).
PASS_THROUGH_TYPES = frozenset(
    {
        "Add",
        "Subtract",
        "Multiply",
        "Divide",
        "Maximum",
        "Minimum",
        "Relu",
        "Clamp",
        "Sigmoid",
        "HSigmoid",
        "HSwish",
        "Swish",
        "Mish",
        "Gelu",
        "Elu",
        "PRelu",
        "Tanh",
        "SoftPlus",
        "BatchNormInference",
        "Convert",
        "FakeQuantize",
        "Pad",
        "MaxPool",
        "AvgPool",
        "Concat",
        "Negative",
        "Abs",
        "Exp",
        "Power",
        "Sqrt",
        "SquaredDifference",
        "Selu",
        "LogSoftmax",
    }
)
GLOBAL_REDUCE_TYPES = frozenset({"ReduceMean", "ReduceMax", "ReduceSum"})
NORM_CHAIN_TYPES = frozenset(
    {
        "MVN",
        "ReduceMean",
        "Subtract",
        "Power",
        "Multiply",
        "Add",
        "Sqrt",
        "Divide",
        "Convert",
        "SquaredDifference",
    }
)
_SCORE_PASS_TYPES = frozenset({"Convert", "Reshape", "Squeeze", "Unsqueeze", "Identity"})


def const(value: np.ndarray | float | list, dtype: type = np.float32) -> ov.Node:
    """A Constant node of ``value`` as ``dtype``."""
    return ops.constant(np.asarray(value, dtype=dtype))


def typed_const(value: np.ndarray, like: ov.Output) -> ov.Node:
    """A float Constant of ``value`` in the element type of ``like`` (f32, f16 or bf16)."""
    node = const(value)
    if like.get_element_type() != ov.Type.f32:
        node = ops.convert(node, like.get_element_type())
    return node


def _is_const(node: ov.Node) -> bool:
    return node.get_type_name() == "Constant"


def _const_value(out: ov.Output) -> np.ndarray | None:
    node = out.get_node()
    if node.get_type_name() != "Constant":
        return None
    return node.get_data()


def static_dims(pshape: ov.PartialShape) -> list[int | None]:
    """The dimensions of ``pshape`` (of static rank): their lengths, ``None`` where dynamic."""
    return [None if d.is_dynamic else d.get_length() for d in pshape]


# --------------------------------------------------------------------------------------------
# graph index


class GraphIndex:
    """Topologically ordered ops of a model with name lookups and producer/consumer helpers.

    Parameters
    ----------
    model : openvino.Model
        The graph to index (not modified).
    """

    def __init__(self, model: ov.Model) -> None:
        self.model = model
        self.ops: list[ov.Node] = list(model.get_ordered_ops())
        self.pos: dict[str, int] = {n.get_name(): i for i, n in enumerate(self.ops)}

    def index(self, node: ov.Node) -> int:
        """Position of ``node`` in topological order."""
        return self.pos[node.get_name()]

    @staticmethod
    def producers(node: ov.Node, skip_constants: bool = True) -> list[ov.Node]:
        """Nodes feeding ``node`` (constants skipped by default)."""
        out = []
        for inp in node.inputs():
            src = inp.get_source_output().get_node()
            if skip_constants and _is_const(src):
                continue
            out.append(src)
        return out

    @staticmethod
    def consumers(out: ov.Output) -> list[ov.Input]:
        """Inputs fed by ``out``."""
        return list(out.get_target_inputs())

    def ancestors(self, node: ov.Node) -> set[str]:
        """Names of ``node`` and every node it depends on."""
        seen = {node.get_name()}
        stack = [node]
        while stack:
            n = stack.pop()
            for p in self.producers(n, skip_constants=False):
                if p.get_name() not in seen:
                    seen.add(p.get_name())
                    stack.append(p)
        return seen

    def all_names(self) -> list[str]:
        """Friendly names of all non-constant ops."""
        return [n.get_friendly_name() for n in self.ops if not _is_const(n)]


# --------------------------------------------------------------------------------------------
# target layer


@dataclass(frozen=True)
class TargetLayer:
    """Where the XAI branch hooks into the model.

    Attributes
    ----------
    kind : str
        ``"cnn"`` (a (B, C, h, w) feature map) or ``"transformer"`` (a (B, N, D) token tensor, the
        residual Add before the last block).
    name : str
        Friendly name of the node.
    index : int
        Position of the node in ``model.get_ordered_ops()``.
    port : int
        Output port of the node.
    shape : tuple
        Partial shape of that output (``None`` for dynamic dimensions).
    found_by : str
        ``"provided"``, ``"convolution"``, ``"pooling"`` or ``"transformer"``.
    """

    kind: str
    name: str
    index: int
    port: int
    shape: tuple
    found_by: str


def find_node(
    model: ov.Model, name: str, index: GraphIndex | None = None
) -> tuple[int, ov.Node, int]:
    """Find a node by friendly name (or by output tensor name).

    Parameters
    ----------
    model : openvino.Model
    name : str
        Friendly name of the node, or a name of one of its output tensors.
    index : GraphIndex, optional
        Pre-built index of ``model``.

    Returns
    -------
    (int, openvino.Node, int)
        Position in topological order, the node, and the output port.

    Raises
    ------
    ValueError
        No node has that name; the message suggests close names.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"target_layer must be a non-empty str, got {name!r}")
    gi = index or GraphIndex(model)
    matches = [
        (i, n) for i, n in enumerate(gi.ops) if n.get_friendly_name() == name and not _is_const(n)
    ]
    if matches:
        i, n = matches[-1]
        return i, n, 0
    for i, n in enumerate(gi.ops):
        for port, out in enumerate(n.outputs()):
            if name in out.get_names():
                return i, n, port
    names = gi.all_names()
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    if not close:
        low = name.lower()
        close = [c for c in names if low in c.lower() or c.lower() in low][:5]
    hint = f" Close names: {', '.join(repr(c) for c in close)}." if close else ""
    raise ValueError(f"target_layer {name!r} is not a node of the model.{hint}")


def _cnn_shape_ok(pshape: ov.PartialShape) -> bool:
    if pshape.rank.is_dynamic or pshape.rank.get_length() != 4:
        return False
    b, c, h, w = static_dims(pshape)
    if b not in (None, 1) or c is None or h is None or w is None:
        return False
    return 1 < h < c and 1 < w < c


def _conv_produced(gi: GraphIndex, node: ov.Node, memo: dict[str, bool]) -> bool:
    """True when ``node`` is a Convolution, or passes through elementwise ops from one."""
    key = node.get_name()
    if key in memo:
        return memo[key]
    memo[key] = False  # guards cycles (none in OV graphs) and stops re-walking
    stack: list[ov.Node] = [node]
    order: list[ov.Node] = []
    # iterative post-order to avoid deep recursion on long residual chains
    visited: set[str] = set()
    while stack:
        n = stack.pop()
        if n.get_name() in visited:
            continue
        visited.add(n.get_name())
        order.append(n)
        if n.get_type_name() in PASS_THROUGH_TYPES:
            for p in gi.producers(n):
                if p.get_name() not in memo:
                    stack.append(p)
    for n in reversed(order):
        t = n.get_type_name()
        if t in CONV_TYPES:
            memo[n.get_name()] = True
        elif t in PASS_THROUGH_TYPES:
            memo[n.get_name()] = any(memo.get(p.get_name(), False) for p in gi.producers(n))
        else:
            memo[n.get_name()] = False
    return memo[key]


def _is_global_pool(node: ov.Node) -> bool:
    t = node.get_type_name()
    if node.get_input_size() == 0:
        return False
    in_shape = node.get_input_partial_shape(0)
    if in_shape.rank.is_dynamic or in_shape.rank.get_length() != 4:
        return False
    dims = static_dims(in_shape)
    if dims[2] in (None, 1) and dims[3] in (None, 1):
        return False
    if t in GLOBAL_REDUCE_TYPES:
        axes = _const_value(node.input(1).get_source_output())
        if axes is None:
            return False
        axes = {int(a) % 4 for a in np.ravel(axes)}
        return {2, 3} <= axes and 1 not in axes
    if t in ("AvgPool", "MaxPool", "AdaptiveAvgPool", "AdaptiveMaxPool"):
        out = static_dims(node.get_output_partial_shape(0))
        return len(out) == 4 and out[2] == 1 and out[3] == 1
    return False


def cnn_target_candidates(model: ov.Model, index: GraphIndex | None = None
                          ) -> Iterator[TargetLayer]:
    """The CNN feature maps that may be explained, the best first (see
    :func:`find_cnn_target`): the convolutional feature maps from the last one back, then, if
    there is none, the input of the last global pooling."""
    gi = index or GraphIndex(model)
    score_node = logits_output(model).get_node()
    anc = gi.ancestors(score_node)
    blocks = transformer_blocks(model, gi)
    if blocks:
        # a transformer's patch embedding is not a CNN feature map: keep only what follows the blocks
        anc -= gi.ancestors(blocks[0].x.get_node())
    memo: dict[str, bool] = {}
    found = False
    for i in range(len(gi.ops) - 1, -1, -1):
        n = gi.ops[i]
        if n.get_name() not in anc or _is_const(n) or n.get_output_size() < 1:
            continue
        if _cnn_shape_ok(n.get_output_partial_shape(0)) and _conv_produced(gi, n, memo):
            found = True
            yield TargetLayer(
                "cnn",
                n.get_friendly_name(),
                i,
                0,
                tuple(static_dims(n.get_output_partial_shape(0))),
                "convolution",
            )
    if found:
        return
    for i in range(len(gi.ops) - 1, -1, -1):
        n = gi.ops[i]
        if n.get_name() not in anc or not _is_global_pool(n):
            continue
        src = n.input(0).get_source_output()
        p = src.get_node()
        yield TargetLayer(
            "cnn",
            p.get_friendly_name(),
            gi.index(p),
            src.get_index(),
            tuple(static_dims(src.get_partial_shape())),
            "pooling",
        )
        return


def find_cnn_target(model: ov.Model, index: GraphIndex | None = None) -> TargetLayer:
    """Find the CNN feature map to explain.

    The last node (in topological order, among the ancestors of the class scores) whose output
    has shape (1 or ?, C, h, w) with ``1 < h < C`` and ``1 < w < C`` and that is produced from a
    Convolution/GroupConvolution through elementwise/activation ops only (never a reshape of
    token tensors); failing that, the input of the last global pooling.

    Raises
    ------
    XAIInsertionError
        Neither was found; the message asks for ``target_layer``.
    """
    for target in cnn_target_candidates(model, index):
        return target
    raise XAIInsertionError(
        "Could not find a target layer automatically: the model has no convolutional feature map "
        "(B, C, h, w) with 1 < h, w < C and no global pooling. Pass `target_layer` with the name of "
        "the last backbone node that outputs [1, num_channels, feature_map_height, feature_map_width]."
    )


def last_global_pool(model: ov.Model, index: GraphIndex | None = None) -> ov.Node | None:
    """The last global spatial pooling (mean, max or sum over H and W) among the ancestors of
    the class scores, or ``None``."""
    gi = index or GraphIndex(model)
    anc = gi.ancestors(logits_output(model).get_node())
    for i in range(len(gi.ops) - 1, -1, -1):
        n = gi.ops[i]
        if n.get_name() in anc and _is_global_pool(n):
            return n
    return None


def _layer_norm_consumers(gi: GraphIndex, x: ov.Output) -> list[ov.Node]:
    """Consumers of ``x`` that start a LayerNorm over its last axis (MVN or ReduceMean+Subtract)."""
    rank = x.get_partial_shape().rank
    if rank.is_dynamic:
        return []
    r = rank.get_length()
    found = []
    cons = [c.get_node() for c in x.get_target_inputs()]
    for n in cons:
        t = n.get_type_name()
        if t == "MVN":
            found.append(n)
        elif t == "ReduceMean":
            axes = _const_value(n.input(1).get_source_output())
            if axes is None or {int(a) % r for a in np.ravel(axes)} != {r - 1}:
                continue
            rm_name = n.get_name()
            for m in cons:
                if m.get_type_name() == "Subtract" and any(
                    i.get_source_output().get_node().get_name() == rm_name for i in m.inputs()
                ):
                    found.append(n)
                    break
    return found


def _is_attention_softmax(node: ov.Node) -> bool:
    if node.get_type_name() != "Softmax":
        return False
    ps = node.get_input_partial_shape(0)
    if ps.rank.is_dynamic or ps.rank.get_length() < 3:
        return False
    # walk back through scaling / masking to a MatMul of two non-constant tensors
    n = node.input(0).get_source_output().get_node()
    for _ in range(6):
        t = n.get_type_name()
        if t == "MatMul":
            return all(not _is_const(i.get_source_output().get_node()) for i in n.inputs())
        if t in ("Add", "Multiply", "Divide", "Convert", "Reshape", "Select"):
            srcs = [
                i.get_source_output().get_node()
                for i in n.inputs()
                if not _is_const(i.get_source_output().get_node())
            ]
            if not srcs:
                return False
            n = srcs[0]
            continue
        return False
    return False


@dataclass(frozen=True)
class _Block:
    x: ov.Output  # block input (token tensor)
    residual: ov.Input  # the residual Add's input fed by x
    norm_end: ov.Output  # LayerNorm output feeding the attention projections


def attention_block_at(gi: GraphIndex, x: ov.Output, max_nodes: int = 200) -> _Block | None:
    """If ``x`` is the input of a pre-norm attention block, describe the block."""
    ps = x.get_partial_shape()
    if ps.rank.is_dynamic or ps.rank.get_length() != 3:
        return None
    if not _layer_norm_consumers(gi, x):
        return None
    xname = x.get_node().get_name()
    cons = list(x.get_target_inputs())
    residual = None
    for c in cons:
        n = c.get_node()
        if n.get_type_name() == "Add" and all(
            not _is_const(i.get_source_output().get_node()) for i in n.inputs()
        ):
            residual = c
            break
    if residual is None:
        return None
    res_name = residual.get_node().get_name()
    # forward walk from x, not through the residual Add, looking for an attention Softmax
    seen = {xname}
    queue: deque[ov.Node] = deque(c.get_node() for c in cons if c.get_node().get_name() != res_name)
    softmax_found = False
    steps = 0
    while queue and steps < max_nodes:
        n = queue.popleft()
        steps += 1
        if n.get_name() in seen:
            continue
        seen.add(n.get_name())
        if _is_attention_softmax(n):
            softmax_found = True
            break
        if n.get_type_name() == "Result":
            continue
        for out in n.outputs():
            for c in out.get_target_inputs():
                if c.get_node().get_name() != res_name:
                    queue.append(c.get_node())
    if not softmax_found:
        return None
    # end of the LayerNorm chain: the node of the chain whose output feeds a MatMul
    chain_seen = {xname}
    frontier: deque[ov.Node] = deque(
        c.get_node() for c in cons if c.get_node().get_name() != res_name
    )
    norm_end = None
    while frontier:
        n = frontier.popleft()
        if n.get_name() in chain_seen or n.get_type_name() not in NORM_CHAIN_TYPES:
            continue
        chain_seen.add(n.get_name())
        out = n.output(0)
        feeds_matmul = any(
            c.get_node().get_type_name() == "MatMul" for c in out.get_target_inputs()
        )
        if feeds_matmul and static_dims(out.get_partial_shape())[1:] == static_dims(ps)[1:]:
            norm_end = out
            break
        for c in out.get_target_inputs():
            frontier.append(c.get_node())
    if norm_end is None:
        return None
    return _Block(x=x, residual=residual, norm_end=norm_end)


def transformer_blocks(model: ov.Model, index: GraphIndex | None = None) -> list[_Block]:
    """All pre-norm attention blocks of the model, in topological order of their inputs."""
    gi = index or GraphIndex(model)
    blocks = []
    for n in gi.ops:
        if _is_const(n) or n.get_type_name() == "Result":
            continue
        for out in n.outputs():
            b = attention_block_at(gi, out)
            if b is not None:
                blocks.append(b)
    return blocks


def is_transformer(model: ov.Model, index: GraphIndex | None = None) -> bool:
    """True when the graph has pre-norm attention blocks on rank-3 token tensors."""
    return bool(transformer_blocks(model, index))


def find_vit_target(
    model: ov.Model, index: GraphIndex | None = None, num_blocks: int = 1
) -> TargetLayer:
    """The residual Add (B, N, D) that feeds the last ``num_blocks`` transformer blocks.

    Raises
    ------
    XAIInsertionError
        No transformer block was found, or the last block's input is not a residual Add.
    """
    gi = index or GraphIndex(model)
    blocks = transformer_blocks(model, gi)
    if not blocks:
        raise XAIInsertionError(
            "Could not find transformer blocks (rank-3 tokens through LayerNorm, attention Softmax and "
            "a residual Add). Pass `target_layer` with the name of the residual Add before the last block."
        )
    if not 1 <= num_blocks <= len(blocks):
        raise ValueError(
            f"num_blocks must be in [1, {len(blocks)}] for this model, got {num_blocks}"
        )
    last = blocks[-num_blocks]
    node = last.x.get_node()
    if node.get_type_name() != "Add":
        raise XAIInsertionError(
            f"The input of transformer block -{num_blocks} ({node.get_friendly_name()!r}, {node.get_type_name()}) "
            "is not a residual Add. Pass `target_layer` explicitly."
        )
    return TargetLayer(
        "transformer",
        node.get_friendly_name(),
        gi.index(node),
        last.x.get_index(),
        tuple(static_dims(last.x.get_partial_shape())),
        "transformer",
    )


def find_target_layer(
    model: ov.Model, kind: str | None = None, index: GraphIndex | None = None
) -> TargetLayer:
    """Find the target layer automatically.

    Parameters
    ----------
    model : openvino.Model
    kind : {"cnn", "transformer", None}
        Restrict the search; ``None`` tries transformer blocks first, then the CNN search.
    """
    gi = index or GraphIndex(model)
    if kind == "transformer":
        return find_vit_target(model, gi)
    if kind == "cnn":
        return find_cnn_target(model, gi)
    if kind is not None:
        raise ValueError(f"kind must be 'cnn', 'transformer' or None, got {kind!r}")
    if is_transformer(model, gi):
        return find_vit_target(model, gi)
    return find_cnn_target(model, gi)


# --------------------------------------------------------------------------------------------
# scores


def logits_output(model: ov.Model) -> ov.Output:
    """The class-score tensor, taken before a final Softmax.

    The first rank-2 output (else the first output) is followed back through Convert / Reshape /
    Squeeze; if a Softmax (or LogSoftmax) produced it, its input is returned.
    """
    results = list(model.get_results())
    if not results:
        raise XAIInsertionError("The model has no outputs.")
    chosen = results[0]
    for r in results:
        ps = r.get_input_partial_shape(0)
        if ps.rank.is_static and ps.rank.get_length() == 2:
            chosen = r
            break
    out = chosen.input(0).get_source_output()
    n = out.get_node()
    for _ in range(8):
        t = n.get_type_name()
        if t in ("Softmax", "LogSoftmax"):
            return n.input(0).get_source_output()
        if t in _SCORE_PASS_TYPES:
            n = n.input(0).get_source_output().get_node()
            continue
        break
    return out


def scores_to_maps(scores: ov.Output, h: int, w: int) -> ov.Output:
    """Turn (B * h * w, ...) head scores into (B, num_classes, h, w) maps.

    Raises
    ------
    XAIInsertionError
        The number of classes is not static.
    """
    dims = scores.get_partial_shape()
    if dims.rank.is_dynamic or any(d.is_dynamic for d in list(dims)[1:]):
        raise XAIInsertionError(
            f"The class-score output needs static class dimensions, got shape {dims}."
        )
    k = int(np.prod([d.get_length() for d in list(dims)[1:]]))
    x = scores
    if x.get_element_type() != ov.Type.f32:
        x = ops.convert(x, ov.Type.f32).output(0)
    x = ops.reshape(x, const([-1, h * w, k], np.int64), False)
    x = ops.transpose(x, const([0, 2, 1], np.int64))
    return ops.reshape(x, const([-1, k, h, w], np.int64), False).output(0)


# --------------------------------------------------------------------------------------------
# head grafting


def _fix_batch_reshape(node: ov.Node, orig_in0: int | None, orig_out0: int | None) -> None:
    """Make a Reshape whose constant pattern hard-codes batch 1 keep the incoming batch."""
    pattern_out = node.input(1).get_source_output()
    pattern = _const_value(pattern_out)
    if pattern is None or pattern.ndim != 1 or pattern.size == 0:
        return
    if not (int(pattern[0]) == 1 and orig_in0 == 1 and orig_out0 == 1):
        return
    special_zero = bool(node.get_attributes().get("special_zero", False))
    new = pattern.astype(np.int64).copy()
    if special_zero or not np.any(new[1:] == 0):
        new[0] = 0
        special_zero = True
    elif not np.any(new == -1):
        new[0] = -1
    else:
        raise XAIInsertionError(
            f"Cannot make Reshape {node.get_friendly_name()!r} batch-agnostic (pattern {pattern.tolist()})."
        )
    node.input(1).replace_source_output(const(new, np.int64).output(0))
    node.set_attribute("special_zero", special_zero)


def graft_head(
    model_a: ov.Model,
    model_b: ov.Model,
    cuts: Iterable[tuple[ov.Input, ov.Output]],
    scores_b: ov.Output,
) -> ov.Output:
    """Re-run the head of ``model_b`` on new inputs, sharing ``model_a``'s trunk.

    ``model_a`` and ``model_b`` must be two clones of the same model. The *head* is every node of
    ``model_b`` that lies downstream of a cut input and upstream of ``scores_b``. Each cut input
    (an input of a ``model_b`` node) is rewired to its replacement output (built on
    ``model_a``); any other non-constant input of the head that comes from outside the head is
    rewired to the same node of ``model_a``; constant batch-1 Reshape patterns in the head are
    made batch-agnostic; then shapes are re-inferred in topological order.

    Returns
    -------
    openvino.Output
        ``scores_b``, now computed by the grafted head.

    Raises
    ------
    XAIInsertionError
        The clones differ, or the head cannot take the new batch.
    """
    ga, gb = GraphIndex(model_a), GraphIndex(model_b)
    if len(ga.ops) != len(gb.ops) or any(
        x.get_type_name() != y.get_type_name() or x.get_friendly_name() != y.get_friendly_name()
        for x, y in zip(ga.ops, gb.ops)
    ):
        raise XAIInsertionError("Internal error: the two model clones differ in structure.")
    cuts = list(cuts)
    cut_keys = {(inp.get_node().get_name(), inp.get_index()): rep for inp, rep in cuts}
    # downstream of the cut nodes
    down: set[str] = set()
    queue = deque(inp.get_node() for inp, _ in cuts)
    while queue:
        n = queue.popleft()
        if n.get_name() in down:
            continue
        down.add(n.get_name())
        for out in n.outputs():
            for c in out.get_target_inputs():
                queue.append(c.get_node())
    up = gb.ancestors(scores_b.get_node())
    head_names = down & up
    if not head_names:
        raise XAIInsertionError("The target layer does not lead to the class scores.")
    head = [n for n in gb.ops if n.get_name() in head_names]
    orig = {
        n.get_name(): (
            static_dims(n.get_input_partial_shape(0))[:1] if n.get_input_size() else [None],
            static_dims(n.get_output_partial_shape(0))[:1] if n.get_output_size() else [None],
        )
        for n in head
    }
    for n in head:
        for inp in n.inputs():
            key = (n.get_name(), inp.get_index())
            if key in cut_keys:
                inp.replace_source_output(cut_keys[key])
                continue
            src = inp.get_source_output()
            src_node = src.get_node()
            if src_node.get_name() in head_names or _is_const(src_node):
                continue
            twin = ga.ops[gb.index(src_node)]
            inp.replace_source_output(twin.output(src.get_index()))
    for n in head:
        if n.get_type_name() == "Reshape":
            (in0,), (out0,) = orig[n.get_name()]
            _fix_batch_reshape(n, in0, out0)
        try:
            n.validate_and_infer_types()
        except Exception as exc:  # OpenVINO raises its own exception types
            raise XAIInsertionError(
                f"The model head cannot run on a batch of perturbed feature maps: node "
                f"{n.get_friendly_name()!r} ({n.get_type_name()}) failed shape inference: {exc}"
            ) from exc
    return scores_b


# --------------------------------------------------------------------------------------------
# output


def scale_maps(x: ov.Output, axes: list[int]) -> ov.Output:
    """Min-max each map to 0..255 over ``axes`` and convert to uint8, in the graph.

    ``(x - min) / (max - min + 1e-12) * 255`` in float32, truncated to uint8: the reference
    toolkit's in-graph scaling (its uint8 conversion truncates), so that white-box maps are the
    reference's. The value is clamped to [0, 255] and floored explicitly, so the result does not
    depend on how a device converts floats to integers.
    """
    ax = const(axes, np.int64)
    lo = ops.reduce_min(x, ax, keep_dims=True)
    hi = ops.reduce_max(x, ax, keep_dims=True)
    den = ops.add(ops.subtract(hi, lo), const(1e-12))
    y = ops.multiply(ops.divide(ops.subtract(x, lo), den), const(255.0))
    y = ops.floor(ops.clamp(y, 0.0, 255.0))
    return ops.convert(y, ov.Type.u8).output(0)


def has_saliency_output(model: ov.Model) -> bool:
    """True when the model already has an output named ``saliency_map``."""
    return any(SALIENCY_MAP_OUTPUT_NAME in out.get_names() for out in model.outputs)


def build_model(
    model_a: ov.Model, saliency: ov.Output, rt: dict[str, str] | None = None
) -> ov.Model:
    """The model with ``model_a``'s outputs plus ``saliency`` named ``saliency_map``.

    Raises
    ------
    XAIInsertionError
        The new graph fails validation.
    """
    saliency.get_tensor().set_names({SALIENCY_MAP_OUTPUT_NAME})
    result = ops.result(saliency)
    result.set_friendly_name(SALIENCY_MAP_OUTPUT_NAME)
    try:
        new = ov.Model(
            list(model_a.get_results()) + [result],
            list(model_a.get_sinks()),
            list(model_a.get_parameters()),
            model_a.get_friendly_name(),
        )
        new.validate_nodes_and_infer_types()
    except Exception as exc:
        raise XAIInsertionError(f"The model with the XAI branch is not valid: {exc}") from exc
    for key, value in (rt or {}).items():
        new.set_rt_info(value, ["xai", key])
        if key == "method":
            new.set_rt_info(value, "salvo_method")
    return new


def insert_xai_branch_into_model(model: ov.Model, xai_output_node: ov.Node | ov.Output,
                                 set_uint8: bool) -> ov.Model:
    """A new model with ``model``'s outputs plus the output of ``xai_output_node``, named
    ``saliency_map`` (the reference toolkit's ``inserter.insert_xai_branch_into_model``).

    Parameters
    ----------
    model
        The model whose graph ``xai_output_node`` was built on (its parameters are the new
        model's; its nodes are shared, not copied).
    xai_output_node
        The node (its output 0) or the output computing the saliency maps.
    set_uint8
        Convert the maps to uint8: the values, expected in [0, 255], are clamped to it and
        truncated (the reference truncates; values outside wrap around there).

    Returns
    -------
    openvino.Model

    Raises
    ------
    XAIInsertionError
        The new graph is not valid (e.g. the node is not part of ``model``'s graph).
    TypeError
        Arguments of the wrong type.
    """
    if not isinstance(model, ov.Model):
        raise TypeError(f"model must be an openvino.Model, got {type(model).__name__}")
    if isinstance(xai_output_node, ov.Node):
        out = xai_output_node.output(0)
    elif isinstance(xai_output_node, ov.Output):
        out = xai_output_node
    else:
        raise TypeError(
            f"xai_output_node must be an openvino Node or Output, got "
            f"{type(xai_output_node).__name__}"
        )
    if set_uint8:
        y = ops.clamp(out, 0.0, 255.0)
        if out.get_element_type().is_real():
            y = ops.floor(y)
        out = ops.convert(y, ov.Type.u8).output(0)
    return build_model(model, out)


def check_finite_outputs(arrays: list[np.ndarray], ports: list, item: int = 0) -> None:
    """Raise when item ``item`` of any floating-point output holds NaN or an infinity.

    A white-box map is computed from the same activations as the model's outputs (ReciproCAM
    re-runs the head on them, ActivationMap reads them, DetClassProbabilityMap reads the class
    heads), so an image on which the model's outputs are not finite has no meaningful map. With
    ``embed_scaling=True`` the in-graph uint8 scaling turns a NaN map into zeros, which is why
    the outputs are checked, not only a float map.

    Parameters
    ----------
    arrays
        The XAI model's outputs for a batch, each ``(B, ...)``: the original outputs and the
        ``saliency_map`` (checked too when it is floating point, i.e. ``embed_scaling=False``).
    ports
        Their ports (``openvino`` outputs), for the names in the message.
    item
        The batch item to check.

    Raises
    ------
    ValueError
        Naming the output, the first offending value and its position.
    """
    for i, (port, arr) in enumerate(zip(ports, arrays)):
        a = np.asarray(arr)
        if not np.issubdtype(a.dtype, np.floating) or a.ndim == 0:
            continue
        one = a[item]
        bad = ~np.isfinite(one)
        if bad.any():
            names = sorted(port.get_names())
            name = names[0] if names else f"#{i}"
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"the model's output {name!r} holds a non-finite value ({one[where]}) at "
                f"{where} for this input ({int(bad.sum())} of {one.size} values); a white-box "
                "saliency map computed from it would be meaningless"
            )
