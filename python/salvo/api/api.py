"""``insert_xai``: a copy of a model with a white-box XAI branch (the reference toolkit's
``openvino_xai.api.api``)."""

from __future__ import annotations

from typing import TypeVar

from salvo.common import Method, Task
from salvo.common.utils import IdentityPreprocessFN, has_xai, logger
from salvo.methods.factory import WhiteBoxMethodFactory, insert_xai

#: The reference toolkit's type variable of the model argument (for annotations).
Model = TypeVar("Model")

__all__ = [
    "IdentityPreprocessFN",
    "Method",
    "Model",
    "Task",
    "WhiteBoxMethodFactory",
    "has_xai",
    "insert_xai",
    "logger",
]
