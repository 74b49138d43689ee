"""ActivationMap: the mean over channels of the target feature map (class-agnostic)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from salvo.common import Method, Task
from salvo.methods.base import IDENTITY
from salvo.methods.white_box.base import Branch, WhiteBoxMethod, check_target_layer
from salvo.methods.white_box.graph import GraphIndex, XAIInsertionError, const
# The reference toolkit's names in this module (re-exported, as it does).
from salvo.common.utils import IdentityPreprocessFN  # noqa: F401
from salvo.methods.white_box.model_parser import IRParserCls, ModelType  # noqa: F401

logger = logging.getLogger(__name__)

__all__ = ["ActivationMap", "activation_map_branch"]


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


class ActivationMap(WhiteBoxMethod):
    """ActivationMap: the target feature map's mean over channels, one class-agnostic map per
    image, ``(1, h, w)`` (the reference toolkit's ``ActivationMap``; parameters:
    :class:`~salvo.methods.white_box.base.WhiteBoxMethod`).

    Parameters
    ----------
    target_layer
        Friendly name of the (B, C, h, w) node; ``None`` finds it automatically.
    prepare_model
        Insert the branch and compile now.
    """

    method = Method.ACTIVATIONMAP
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
        super().__init__(model, preprocess_fn, embed_scaling, device_name, **kwargs)
        self.target_layer = check_target_layer(target_layer)
        self.per_class = False
        self._prepare_now(prepare_model)

    def build_branch(self, model: ov.Model, index: GraphIndex) -> Branch:
        target = self._classification_target(model, index, self.target_layer, "cnn")
        logger.info("Using ActivationMap method (for CNNs).")
        saliency = activation_map_branch(index.ops[target.index].output(target.port))
        return Branch(saliency, [1, 2], target.name)
