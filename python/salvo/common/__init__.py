"""Names shared by every layer of salvo: tasks, methods, modes and presets, and small utilities.

The reference toolkit's ``openvino_xai.common`` (``Task``, ``Method``, ``has_xai``, ``scaling``)
lives here too, with its submodules :mod:`~salvo.common.parameters` and
:mod:`~salvo.common.utils`.
"""

from __future__ import annotations

from salvo.common.parameters import (
    BLACKBOX_METHODS,
    PER_IMAGE_MAP,
    SALIENCY_MAP_OUTPUT_NAME,
    WHITEBOX_METHODS,
    ExplainMode,
    Method,
    Preset,
    Task,
)
from salvo.common.utils import IdentityPreprocessFN, has_xai, scaling

__all__ = [
    "BLACKBOX_METHODS",
    "PER_IMAGE_MAP",
    "IdentityPreprocessFN",
    "has_xai",
    "scaling",
    "SALIENCY_MAP_OUTPUT_NAME",
    "WHITEBOX_METHODS",
    "ExplainMode",
    "Method",
    "Preset",
    "Task",
]
