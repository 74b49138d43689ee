"""Closed choices shared across salvo: tasks, methods, modes and presets.

Members are UPPER case with lower-case string values, so ``Method("rise") is Method.RISE``.
"""

from __future__ import annotations

from enum import Enum


class Task(Enum):
    """What the model does."""

    CLASSIFICATION = "classification"
    DETECTION = "detection"


class Method(Enum):
    """Explanation methods."""

    ACTIVATIONMAP = "activationmap"
    RECIPROCAM = "reciprocam"
    VITRECIPROCAM = "vitreciprocam"
    DETCLASSPROBABILITYMAP = "detclassprobabilitymap"
    RISE = "rise"
    AISE = "aise"


class ExplainMode(Enum):
    """How the model is treated: edited (white-box), only run (black-box), or either."""

    WHITEBOX = "whitebox"
    BLACKBOX = "blackbox"
    AUTO = "auto"


class Preset(Enum):
    """Speed/quality trade-off of the black-box methods."""

    SPEED = "speed"
    BALANCE = "balance"
    QUALITY = "quality"


WHITEBOX_METHODS = frozenset(
    {Method.ACTIVATIONMAP, Method.RECIPROCAM, Method.VITRECIPROCAM, Method.DETCLASSPROBABILITYMAP}
)
BLACKBOX_METHODS = frozenset({Method.RISE, Method.AISE})

# The reference toolkit's names of the method sets. They list what salvo implements (its
# registry, ``salvo.methods.factory.REGISTRY``, is checked against them by the tests), so they
# differ from the reference's where salvo does more: ViT-ReciproCAM is a white-box
# classification method (the reference's sets leave it out) and RISE (as D-RISE) and AISE
# explain detection models too.
#: Methods that edit the model graph.
WhiteBoxXAIMethods = WHITEBOX_METHODS
#: Methods that only run the model.
BlackBoxXAIMethods = BLACKBOX_METHODS
#: Methods for classification models.
ClassificationXAIMethods = frozenset(
    {Method.ACTIVATIONMAP, Method.RECIPROCAM, Method.VITRECIPROCAM, Method.RISE, Method.AISE}
)
#: Methods for detection models.
DetectionXAIMethods = frozenset({Method.DETCLASSPROBABILITYMAP, Method.RISE, Method.AISE})

#: Name of the output a white-box XAI branch adds to the model.
SALIENCY_MAP_OUTPUT_NAME = "saliency_map"
#: Target key of a class-agnostic map (one map per image, e.g. ActivationMap's).
PER_IMAGE_MAP = "per_image_map"
