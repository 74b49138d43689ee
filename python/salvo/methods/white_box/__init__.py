"""White-box methods: XAI branches inserted into the OpenVINO graph (one inference per image)."""

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
from salvo.methods.white_box.insert import METHOD_KWARGS, insert_xai, resolve_whitebox_method

__all__ = [
    "METHOD_KWARGS",
    "TargetLayer",
    "XAIInsertionError",
    "find_cnn_target",
    "find_node",
    "find_target_layer",
    "find_vit_target",
    "insert_xai",
    "is_transformer",
    "logits_output",
    "resolve_whitebox_method",
]
