"""Checks of what a ``postprocess_fn`` returns, as the reference toolkit makes them."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_classification_output", "check_detection_output"]


def check_classification_output(x: Any) -> None:
    """Check class scores of ONE image: a ``(1, num_classes)`` NumPy array.

    Raises
    ------
    RuntimeError
        Not a NumPy array, or not two-dimensional with batch size 1.
    """
    if not isinstance(x, np.ndarray):
        raise RuntimeError("Postprocess function should return numpy array.")
    if x.ndim != 2 or x.shape[0] != 1:
        raise RuntimeError(
            "Postprocess function should return two dimentional numpy array with batch size of "
            f"1 (got shape {x.shape})."
        )


def check_detection_output(x: Any) -> None:
    """Check detections of ONE image: ``(boxes (1, N, 4), scores (1, N), labels (1, N))``.

    Raises
    ------
    RuntimeError
        Not three containers of NumPy arrays, a batch size other than 1, or wrong ranks.
    """
    if not hasattr(x, "__len__"):
        raise RuntimeError("Postprocess function should return sized object.")
    if len(x) != 3:
        raise RuntimeError(
            "Postprocess function should return three containers: boxes (format: [x1, y1, x2, "
            "y2]), scores, labels."
        )
    for item in x:
        if not isinstance(item, np.ndarray):
            raise RuntimeError("Postprocess function should return numpy arrays.")
        if item.shape[0] != 1:
            raise RuntimeError("Postprocess function should return numpy arrays with batch "
                               "size of 1.")
    boxes, scores, labels = x
    if boxes.ndim != 3:
        raise RuntimeError("Boxes should be three-dimentional [Batch, NumBoxes, BoxCoords].")
    if scores.ndim != 2:
        raise RuntimeError("Scores should be two-dimentional [Batch, Scores].")
    if labels.ndim != 2:
        raise RuntimeError("Labels should be two-dimentional [Batch, Labels].")
