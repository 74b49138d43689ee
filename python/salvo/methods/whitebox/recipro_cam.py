"""ReciproCAM (Byun & Lee, arXiv 2209.14074): class maps from re-running the head on masked features.

For a (B, C, h, w) feature map ``F`` the branch builds ``h * w`` copies of ``F``; copy ``k`` keeps
spatial cell ``k`` (all channels) and zeros every other cell (a constant one-hot mask). The head
of the network (everything between the feature map and the class scores) runs on this batch, and
the score of class ``c`` for copy ``k`` is the saliency of class ``c`` at cell ``k``. Scores are
taken before a final Softmax.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from salvo.methods.whitebox.base import (
    GraphIndex,
    TargetLayer,
    XAIInsertionError,
    const,
    graft_head,
    logits_output,
    typed_const,
)

__all__ = ["recipro_cam_branch", "scores_to_maps"]


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


def recipro_cam_branch(model_a: ov.Model, model_b: ov.Model, target: TargetLayer) -> ov.Output:
    """Build the ReciproCAM branch.

    Parameters
    ----------
    model_a, model_b : openvino.Model
        Two clones of the user's model: ``model_a`` becomes the returned model, ``model_b``
        lends its head.
    target : TargetLayer
        The (B, C, h, w) feature map, indexed in ``model_a``'s topological order.

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
