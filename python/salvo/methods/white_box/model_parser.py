"""Finding nodes of an OpenVINO classification graph: the reference toolkit's ``IRParser``,
``IRParserCls`` and ``ModelType`` (``openvino_xai.inserter.model_parser``), with its signatures,
answered by salvo's own graph search (:mod:`salvo.methods.white_box.graph`).

What differs from the reference: the automatic CNN target is salvo's (the last convolutional
feature map that leads to the class scores; the reference takes the last rank-4 node of any
kind), the CNN pooling node is found by what it does (a global mean / max / sum over H and W),
not by ``"Pool"`` in its name, and without a ``model_type`` the type is detected from the graph
(the reference then gives up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

import openvino as ov

from salvo.methods.white_box.graph import (
    GraphIndex,
    XAIInsertionError,
    cnn_target_candidates,
    find_node,
    is_transformer,
    last_global_pool,
)

__all__ = ["IRParser", "IRParserCls", "ModelType"]


class ModelType(Enum):
    """The kind of classification network."""

    CNN = "cnn"
    TRANSFORMER = "transformer"


def _model_type(value: ModelType | str | None, model: ov.Model) -> ModelType:
    if value is None:
        return ModelType.TRANSFORMER if is_transformer(model) else ModelType.CNN
    if isinstance(value, ModelType):
        return value
    if isinstance(value, str):
        try:
            return ModelType(value.lower())
        except ValueError:
            pass
    raise ValueError(f"model_type must be one of {[m.name for m in ModelType]}, got {value!r}")


def _check_k(k: object) -> int:
    from salvo._checks import check_int

    return check_int(k, "k", minimum=1)


class IRParser:
    """Look-ups in an OpenVINO model graph."""

    @staticmethod
    def get_logit_node(model: ov.Model, output_id: int = 0) -> ov.Node:
        """The node producing output ``output_id`` of ``model``.

        Raises
        ------
        IndexError
            ``model`` has no such output.
        """
        results = list(model.get_results())
        if not 0 <= output_id < len(results):
            raise IndexError(f"output_id {output_id} is out of range: the model has "
                             f"{len(results)} outputs")
        return results[output_id].input(0).get_source_output().get_node()

    @staticmethod
    def get_node_by_condition(ops: Iterable[ov.Node], condition: Callable[[ov.Node], bool],
                              k: int = 1) -> ov.Node | None:
        """The ``k``-th node of ``ops`` (in their order) for which ``condition`` holds, or
        ``None``."""
        k = _check_k(k)
        for op in ops:
            if condition(op):
                k -= 1
                if k == 0:
                    return op
        return None


def _non_constant(out: ov.Output) -> bool:
    return out.get_node().get_type_name() not in ("Constant", "Convert")


def _is_token_add(op: ov.Node) -> bool:
    """An Add of two non-constant rank-3 tensors (a transformer's residual connection)."""
    if op.get_type_name() != "Add":
        return False
    for inp in op.inputs():
        rank = inp.get_partial_shape().rank
        if rank.is_dynamic or rank.get_length() != 3:
            return False
        if not _non_constant(inp.get_source_output()):
            return False
    return True


def _has_spatial_size(op: ov.Node) -> bool:
    if op.get_output_size() < 1:
        return False
    shape = op.get_output_partial_shape(0)
    if shape.rank.is_dynamic or shape.rank.get_length() != 4:
        return False
    dims = [None if d.is_dynamic else d.get_length() for d in shape]
    nchw = dims[2] != 1 and dims[3] != 1
    nhwc = dims[1] != 1 and dims[2] != 1
    return nchw or nhwc


class IRParserCls(IRParser):
    """Look-ups in a classification graph: its class scores, the node to explain (the target)
    and the nodes after it."""

    @classmethod
    def get_logit_node(cls, model: ov.Model, output_id: int = 0,
                       search_softmax: bool = False) -> ov.Node:
        """The node producing the class scores: with ``search_softmax``, the input of the last
        Softmax over a 2-D tensor (if there is one); else the producer of output
        ``output_id``."""
        if search_softmax:
            ops = reversed(list(model.get_ordered_ops()))
            softmax = cls.get_node_by_condition(ops, lambda op: op.get_type_name() == "Softmax")
            if softmax is not None:
                rank = softmax.get_output_partial_shape(0).rank
                if rank.is_static and rank.get_length() == 2:
                    return softmax.input(0).get_source_output().get_node()
        return super().get_logit_node(model, output_id)

    @classmethod
    def get_target_node(
        cls,
        model: ov.Model,
        model_type: ModelType | None = None,
        target_node_name: str | None = None,
        k: int = 1,
    ) -> ov.Node:
        """The node whose output a white-box method explains.

        Parameters
        ----------
        model
            The classification model.
        model_type
            ``CNN``: the ``k``-th convolutional feature map from the end that leads to the class
            scores (``(1, C, h, w)`` with ``1 < h, w < C``; salvo's automatic target for
            ReciproCAM and ActivationMap), else the input of the last global pooling.
            ``TRANSFORMER``: the ``k``-th Add of two non-constant token tensors from the end.
            ``None``: detected from the graph.
        target_node_name
            A node's friendly name (or an output tensor's name): that node, whatever
            ``model_type`` says.
        k
            Which candidate, counting from the end (``1``: the last).

        Raises
        ------
        ValueError
            No node has ``target_node_name`` (the message suggests close names).
        RuntimeError
            No candidate was found (an ``XAIInsertionError``).
        """
        if target_node_name:
            _, node, _ = find_node(model, target_node_name)
            return node
        k = _check_k(k)
        kind = _model_type(model_type, model)
        index = GraphIndex(model)
        if kind is ModelType.CNN:
            for i, target in enumerate(cnn_target_candidates(model, index), start=1):
                if i == k:
                    return index.ops[target.index]
        else:
            found = cls.get_node_by_condition(reversed(index.ops), _is_token_add, k)
            if found is not None:
                return found
        raise XAIInsertionError(
            f"Cannot find the target node of this {kind.value} model automatically (k={k}); "
            "give target_layer (the name of the node to explain)."
        )

    @classmethod
    def get_post_target_node(
        cls,
        model: ov.Model,
        model_type: ModelType | None = None,
        target_node_name: str | None = None,
        target_node_output_id: int = 0,
    ) -> list[ov.Node]:
        """The nodes that read the target's output: with ``target_node_name``, the consumers of
        its output ``target_node_output_id``; for a CNN, the last global pooling.

        Raises
        ------
        ValueError
            No node has ``target_node_name``.
        RuntimeError
            Nothing found (an ``XAIInsertionError``).
        """
        if target_node_name:
            node = cls.get_target_node(model, model_type, target_node_name)
            out = node.output(int(target_node_output_id))
            return [inp.get_node() for inp in out.get_target_inputs()]
        if _model_type(model_type, model) is ModelType.CNN:
            pool = last_global_pool(model)
            if pool is not None:
                return [pool]
        raise XAIInsertionError(
            "Cannot find the first head node automatically; give target_node_name."
        )

    @classmethod
    def get_first_conv_node(cls, model: ov.Model) -> ov.Node:
        """The first Convolution (in topological order) with a spatial output.

        Raises
        ------
        RuntimeError
            There is none (an ``XAIInsertionError``).
        """
        found = cls.get_node_by_condition(
            model.get_ordered_ops(),
            lambda op: op.get_type_name() == "Convolution" and _has_spatial_size(op))
        if found is None:
            raise XAIInsertionError("The model has no convolution with a spatial output.")
        return found

    @classmethod
    def get_first_concat_node(cls, model: ov.Model) -> ov.Node:
        """The first Concat (in topological order) whose inputs are all computed (none
        constant), e.g. a ViT's class token joined to the patch tokens.

        Raises
        ------
        RuntimeError
            There is none (an ``XAIInsertionError``).
        """
        found = cls.get_node_by_condition(
            model.get_ordered_ops(),
            lambda op: op.get_type_name() == "Concat" and all(
                inp.get_source_output().get_node().get_type_name() != "Constant"
                for inp in op.inputs()))
        if found is None:
            raise XAIInsertionError("The model has no Concat of computed inputs.")
        return found
