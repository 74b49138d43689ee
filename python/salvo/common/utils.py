"""Small utilities every layer uses (the reference toolkit's ``openvino_xai.common.utils``)."""

from __future__ import annotations

from typing import Any

import openvino as ov

from salvo.common.parameters import PER_IMAGE_MAP, SALIENCY_MAP_OUTPUT_NAME

__all__ = ["PER_IMAGE_MAP", "SALIENCY_MAP_OUTPUT_NAME", "IdentityPreprocessFN", "has_xai"]


class IdentityPreprocessFN:
    """The default ``preprocess_fn``: returns its argument (the caller passes model inputs)."""

    def __call__(self, x: Any) -> Any:
        return x

    def __repr__(self) -> str:
        return "IdentityPreprocessFN()"


def has_xai(model: Any) -> bool:
    """Whether ``model`` already has an output named ``saliency_map``.

    Raises
    ------
    ValueError
        ``model`` is not an ``openvino.Model`` (or, with PyTorch installed, a ``torch.nn.Module``
        carrying salvo's ``has_xai`` attribute).
    """
    if isinstance(model, ov.Model):
        return any(SALIENCY_MAP_OUTPUT_NAME in out.get_names() for out in model.outputs)
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return bool(getattr(model, "has_xai", False))
    raise ValueError(
        f"has_xai needs an openvino.Model or a torch.nn.Module, got {type(model).__name__}"
    )
