"""Test support: models with planted ground truth, for salvo's tests and benchmarks and for
users who want to check a method on a model whose right answer is known.

Test hooks into salvo's internals (the random grid of one RISE mask, the native thread pool's
error path, one DIRECT search) are in :mod:`salvo.testing.hooks`.

Nothing here is needed to explain a model; ``import salvo`` does not import it.
"""

from __future__ import annotations

from salvo.testing.planted import (
    PlantedModel,
    batchable,
    planted_cnn,
    planted_detector,
    planted_image,
    planted_image_with_object,
    planted_vit,
)

__all__ = [
    "PlantedModel",
    "batchable",
    "planted_cnn",
    "planted_detector",
    "planted_image",
    "planted_image_with_object",
    "planted_vit",
]
