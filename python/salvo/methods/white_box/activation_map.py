"""ActivationMap: the mean over channels of the target feature map (class-agnostic)."""

from __future__ import annotations

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from salvo.methods.white_box.graph import XAIInsertionError, const

__all__ = ["activation_map_branch"]


def activation_map_branch(feature_map: ov.Output) -> ov.Output:
    """Build the ActivationMap branch.

    Parameters
    ----------
    feature_map : openvino.Output
        (B, C, h, w) float feature map (the target layer).

    Returns
    -------
    openvino.Output
        (B, h, w) float32 mean over channels.

    Raises
    ------
    XAIInsertionError
        The target is not a rank-4 tensor.
    """
    ps = feature_map.get_partial_shape()
    if ps.rank.is_dynamic or ps.rank.get_length() != 4:
        raise XAIInsertionError(f"ActivationMap needs a (B, C, h, w) feature map, got shape {ps}.")
    x = feature_map
    if x.get_element_type() != ov.Type.f32:
        x = ops.convert(x, ov.Type.f32).output(0)
    return ops.reduce_mean(x, const([1], np.int64), keep_dims=False).output(0)
