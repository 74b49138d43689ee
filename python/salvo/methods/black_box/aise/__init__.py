"""AISE: Gaussian perturbations placed by a derivative-free optimiser (DIRECT), for
classification (:mod:`~.classification`) and detection (:mod:`~.detection`) models; what both
share is in :mod:`~.base`."""

from __future__ import annotations

from salvo.methods.black_box.aise.base import AISEClassificationParams, AISEDetectionParams
from salvo.methods.black_box.aise.classification import AISEClassification
from salvo.methods.black_box.aise.detection import AISEDetection

__all__ = [
    "AISEClassification",
    "AISEClassificationParams",
    "AISEDetection",
    "AISEDetectionParams",
]
