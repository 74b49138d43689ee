"""``insert_xai``: a copy of a model with a white-box XAI branch (the reference toolkit's
``openvino_xai.api.api``)."""

from __future__ import annotations

from salvo.methods.factory import insert_xai

__all__ = ["insert_xai"]
