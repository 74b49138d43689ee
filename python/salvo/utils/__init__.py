"""Model export helpers (the reference toolkit's ``openvino_xai.utils``):
:mod:`~salvo.utils.model_export`."""

from __future__ import annotations

from salvo.utils import model_export

__all__ = ["model_export"]
