"""Explaining many images (the public path of :mod:`salvo.explainer.stream`).

:func:`explain_many` (what :meth:`salvo.Explainer.explain_many` calls), :func:`explain_stream`
(the stream behind ``salvo explain``), :class:`BulkJob`, :class:`BulkResult`, and :func:`top_k`
(a ``targets`` function: the k best classes of each image).
"""

from __future__ import annotations

from salvo.explainer.stream import BulkJob, BulkResult, explain_many, explain_stream, top_k

__all__ = ["BulkJob", "BulkResult", "explain_many", "explain_stream", "top_k"]
