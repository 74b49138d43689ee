"""Faithfulness metrics of saliency maps, on salvo's batched inference engine.

- :class:`PointingGame` — does the map's maximum fall inside a ground-truth box?
- :class:`InsertionDeletionAUC` — how fast the class score rises as the most salient pixels are
  inserted on a black image, and falls as they are deleted (all perturbed images of all maps
  in one batched engine run).
- :class:`ADCC` — harmonic mean of coherency, 1 - complexity and 1 - average drop.

Call signatures and results follow the OpenVINO XAI toolkit 1.1's ``openvino_xai.metrics``:
a per-map ``__call__`` and a dataset-level ``evaluate``.
"""

from __future__ import annotations

from salvo.metrics.adcc import ADCC
from salvo.metrics.base import BaseMetric
from salvo.metrics.insertion_deletion_auc import InsertionDeletionAUC, InsertionDeletionCurves
from salvo.metrics.pointing_game import PointingGame

__all__ = ["ADCC", "BaseMetric", "InsertionDeletionAUC", "InsertionDeletionCurves",
           "PointingGame"]
