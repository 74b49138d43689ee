"""The reference toolkit's ``openvino_xai.inserter``: inserting an XAI branch into a graph
(:mod:`~salvo.inserter.inserter`) and finding its nodes (:mod:`~salvo.inserter.model_parser`).

Both are salvo's white-box machinery (:mod:`salvo.methods.white_box.graph`) under the
reference's names; to explain a model, use :func:`salvo.insert_xai` or an Explainer.
"""

from __future__ import annotations

from salvo.inserter import inserter, model_parser

__all__ = ["inserter", "model_parser"]
