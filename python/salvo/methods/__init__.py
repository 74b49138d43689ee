"""Explanation methods: one contract (:mod:`salvo.methods.base`), white-box methods that edit
the graph (:mod:`salvo.methods.white_box`), black-box methods that only run the model
(:mod:`salvo.methods.black_box`), and one registry with the factories
(:mod:`salvo.methods.factory`)."""

from __future__ import annotations

from salvo.methods.black_box.aise.classification import AISEClassification
from salvo.methods.black_box.aise.detection import AISEDetection
from salvo.methods.black_box.base import BlackBoxXAIMethod
from salvo.methods.black_box.drise import DRISE
from salvo.methods.black_box.rise import RISE
from salvo.methods.white_box.activation_map import ActivationMap
from salvo.methods.white_box.base import WhiteBoxMethod
from salvo.methods.white_box.det_class_probability_map import DetClassProbabilityMap
from salvo.methods.white_box.recipro_cam import (
    FeatureMapPerturbationBase,
    ReciproCAM,
    ViTReciproCAM,
)

__all__ = [
    "AISEClassification",
    "AISEDetection",
    "ActivationMap",
    "BlackBoxXAIMethod",
    "DRISE",
    "DetClassProbabilityMap",
    "FeatureMapPerturbationBase",
    "RISE",
    "ReciproCAM",
    "ViTReciproCAM",
    "WhiteBoxMethod",
]
