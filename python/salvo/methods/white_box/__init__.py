"""White-box methods: XAI branches inserted into the OpenVINO graph (one inference per image).

:mod:`~salvo.methods.white_box.base` (the base class), :mod:`~.activation_map`,
:mod:`~.recipro_cam` (ReciproCAM and ViT-ReciproCAM), :mod:`~.det_class_probability_map`, and
:mod:`~.graph` (graph search, head grafting, in-graph scaling: what the branches are built
with).
"""

from __future__ import annotations

from salvo.methods.white_box.graph import (
    TargetLayer,
    XAIInsertionError,
    find_cnn_target,
    find_node,
    find_target_layer,
    find_vit_target,
    is_transformer,
    logits_output,
)

__all__ = [
    "TargetLayer",
    "XAIInsertionError",
    "find_cnn_target",
    "find_node",
    "find_target_layer",
    "find_vit_target",
    "is_transformer",
    "logits_output",
]
