"""``IRParser``, ``IRParserCls`` and ``ModelType`` (the reference toolkit's
``openvino_xai.inserter.model_parser``); see :mod:`salvo.methods.white_box.model_parser`."""

from __future__ import annotations

from salvo.methods.white_box.model_parser import IRParser, IRParserCls, ModelType

__all__ = ["IRParser", "IRParserCls", "ModelType"]
