"""The model-editing entry point: :func:`insert_xai`."""

from __future__ import annotations

from salvo.api.api import insert_xai

__all__ = ["insert_xai"]
