"""AISE: Gaussian perturbations placed by a derivative-free optimiser (DIRECT), for
classification (:mod:`~.classification`) and detection (:mod:`~.detection`) models; what both
share is in :mod:`~.base`."""

from __future__ import annotations

from salvo.methods.black_box.aise.base import (
    AISE_CLASSIFICATION_PRESETS,
    AISE_DETECTION_PRESETS,
    AISEClassificationParams,
    AISEDetectionParams,
)
from salvo.methods.black_box.aise.classification import (
    AISEClassification,
    resolve_classification_params,
)
from salvo.methods.black_box.aise.detection import AISEDetection, resolve_detection_params

__all__ = [
    "AISE_CLASSIFICATION_PRESETS",
    "AISE_DETECTION_PRESETS",
    "AISEClassification",
    "AISEClassificationParams",
    "AISEDetection",
    "AISEDetectionParams",
    "resolve_classification_params",
    "resolve_detection_params",
]
