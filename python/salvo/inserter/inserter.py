"""``insert_xai_branch_into_model`` (the reference toolkit's ``openvino_xai.inserter.inserter``)."""

from __future__ import annotations

from salvo.common.parameters import SALIENCY_MAP_OUTPUT_NAME
from salvo.methods.white_box.graph import insert_xai_branch_into_model

__all__ = ["SALIENCY_MAP_OUTPUT_NAME", "insert_xai_branch_into_model"]
