"""Small utilities every layer uses (the reference toolkit's ``openvino_xai.common.utils``).

The array helpers take the reference's arguments and give its results, with two kinds of
deliberate difference: input it would misread or crash on deep inside (NaN maps, a 4-D map, a
3-D "batch" given to :func:`is_bhwc_layout`) is a ``ValueError`` naming the argument, and
:func:`softmax` is correct for a batch of several rows (the reference's broadcasts wrongly).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import openvino as ov

from salvo.common.parameters import PER_IMAGE_MAP, SALIENCY_MAP_OUTPUT_NAME

__all__ = [
    "PER_IMAGE_MAP",
    "SALIENCY_MAP_OUTPUT_NAME",
    "IdentityPreprocessFN",
    "format_to_bhwc",
    "get_min_max",
    "has_xai",
    "infer_size_from_image",
    "is_bhwc_layout",
    "logger",
    "scaling",
    "sigmoid",
    "softmax",
]

#: salvo's package logger (diagnostics only; ``import salvo`` gives it a ``NullHandler``).
#: Unlike the reference toolkit, salvo configures no handler and no level of its own: what the
#: caller can act on is a warning (:mod:`salvo.errors`), not a log record.
logger = logging.getLogger("salvo")


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


def _real_array(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def scaling(saliency_map: np.ndarray, cast_to_uint8: bool = True, max_value: int = 255
            ) -> np.ndarray:
    """Min-max scale each map to ``[0, max_value]``, as the reference toolkit does.

    Parameters
    ----------
    saliency_map
        One map ``(h, w)`` or a stack ``(N, h, w)``, any real dtype. Each map of a stack is
        scaled on its own.
    cast_to_uint8
        Return uint8 (the scaled values truncated toward zero, as the reference's
        ``astype(np.uint8)`` does); otherwise float32.
    max_value
        The top of the range (a number; 255 for grey levels, 1 for the unit interval).

    Returns
    -------
    numpy.ndarray
        The input's shape (a ``(1, 1)`` map stays ``(1, 1)``): ``max_value * (x - min) /
        (max - min + 1e-12)`` computed in float32, per map; a constant map gives zeros.

    Raises
    ------
    ValueError
        Not 2-D or 3-D, empty, NaN or infinity in a map, or ``max_value`` outside the uint8
        range with ``cast_to_uint8`` (the reference would wrap such values around).
    TypeError
        Not real numbers; ``max_value`` not a number.
    """
    from salvo._checks import check_flag, is_number

    arr = _real_array(saliency_map, "saliency_map")
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"saliency_map must be one map (h, w) or a stack (N, h, w), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"saliency_map is empty (shape {arr.shape})")
    cast = check_flag(cast_to_uint8, "cast_to_uint8")
    if not is_number(max_value):
        raise TypeError(f"max_value must be a number, got {max_value!r}")
    if cast and not 0 <= max_value <= 255:
        raise ValueError(f"max_value must be in [0, 255] with cast_to_uint8=True, got {max_value}")
    stack = arr.reshape((-1,) + arr.shape[-2:]).astype(np.float32)
    flat = stack.reshape(stack.shape[0], -1)
    lo, hi = get_min_max(flat)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        bad = int(np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))[0])
        where = f"map {bad} of the stack" if arr.ndim == 3 else "saliency_map"
        raise ValueError(f"{where} contains NaN or infinity")
    # the reference's order of float32 operations, so that the truncation agrees exactly
    out = np.float32(max_value) * (flat - lo[:, None]) / (hi - lo + np.float32(1e-12))[:, None]
    out = out.reshape(arr.shape)
    return out.astype(np.uint8) if cast else out.astype(np.float32, copy=False)


def get_min_max(saliency_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimum and maximum along the last axis: ``(x.min(-1), x.max(-1))``.

    Parameters
    ----------
    saliency_map
        Maps flattened to ``(N, h * w)`` (any shape works: the last axis is reduced).
    """
    arr = np.asarray(saliency_map)
    return np.min(arr, axis=-1), np.max(arr, axis=-1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))``, elementwise, without overflow warnings
    for large negative values."""
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    out = np.empty_like(arr)
    pos = arr >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-arr[pos]))
    e = np.exp(arr[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Correct for any shape, e.g. a batch of score rows ``(B, C)`` (the reference's broadcasting
    is only right for one row).
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    e = np.exp(arr - np.max(arr, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _four_d(image: Any, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 4:
        raise ValueError(f"{name} must be a batch of images (B, H, W, C) or (B, C, H, W), got "
                         f"shape {arr.shape}")
    return arr


def is_bhwc_layout(image: np.ndarray) -> bool:
    """Whether a 4-D image batch is channels-last: ``(B, H, W, C)`` with ``H > C`` and
    ``W > C`` (the reference's rule; ``(B, C, H, W)`` otherwise).

    Raises
    ------
    ValueError
        ``image`` is not 4-D.
    """
    _, d1, d2, d3 = _four_d(image, "image").shape
    return bool(d1 > d3 and d2 > d3)


def format_to_bhwc(image: np.ndarray) -> np.ndarray:
    """A 3-D image or a 4-D batch as ``(B, H, W, C)``: a 3-D image gets a batch axis, a
    channels-first batch (see :func:`is_bhwc_layout`) is transposed. Returns a view.

    Raises
    ------
    ValueError
        ``image`` is neither 3-D nor 4-D.
    """
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = arr[None]
    arr = _four_d(arr, "image (3-D or 4-D)")
    return arr if is_bhwc_layout(arr) else arr.transpose(0, 2, 3, 1)


def infer_size_from_image(image: np.ndarray) -> tuple[int, int]:
    """``(H, W)`` of an image: ``(H, W)``, ``(H, W, C)``, ``(C, H, W)`` or a batch of them,
    with the reference's layout rule (channels-last when both leading dimensions exceed the
    last one).

    Raises
    ------
    ValueError
        ``image`` is not 2-, 3- or 4-dimensional.
    """
    arr = np.asarray(image)
    if arr.ndim not in (2, 3, 4):
        raise ValueError(
            f"image must be 2-, 3- or 4-dimensional, got {arr.ndim} dimensions (shape "
            f"{arr.shape})"
        )
    if arr.ndim == 2:
        return int(arr.shape[0]), int(arr.shape[1])
    shape = arr.shape[-3:]
    if shape[0] > shape[2] and shape[1] > shape[2]:
        return int(shape[0]), int(shape[1])
    return int(shape[1]), int(shape[2])
