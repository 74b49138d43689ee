"""What the explainer's modules share about saliency maps: their keys and their uint8 scaling.

(:mod:`~salvo.explainer.explanation` and :mod:`~salvo.explainer.visualizer` both need these;
the visualizer re-exports them under its own name.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from salvo.common.parameters import PER_IMAGE_MAP

__all__ = ["PER_IMAGE_MAP_KEY", "normalise_target_key", "scale_to_uint8"]

#: Key of ActivationMap's class-agnostic map.
PER_IMAGE_MAP_KEY = PER_IMAGE_MAP

_EPS = 1e-12


def _check_real(array: np.ndarray, name: str) -> None:
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")


def scale_to_uint8(saliency_map: np.ndarray) -> np.ndarray:
    """Min-max scale one map to 0..255.

    Parameters
    ----------
    saliency_map
        Any shape, any real dtype (the whole array is one map). No NaN or infinity.

    Returns
    -------
    numpy.ndarray
        Same shape, uint8: ``rint(255 * (x - min) / (max - min + 1e-12))`` computed in
        float64. A constant map gives zeros.

    Raises
    ------
    ValueError
        Empty map, or NaN / infinity in it.
    """
    x = np.asarray(saliency_map)
    _check_real(x, "saliency_map")
    if x.size == 0:
        raise ValueError(f"saliency_map is empty (shape {x.shape})")
    x = x.astype(np.float64, copy=False)
    lo = x.min()
    hi = x.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("saliency_map contains NaN or infinity")
    factor = 255.0 / (hi - lo + _EPS)
    return np.rint((x - lo) * factor).astype(np.uint8)


def normalise_target_key(key: Any, name: str = "targets") -> int | str:
    """A saliency-map key as a plain Python int, or ``"per_image_map"``.

    Parameters
    ----------
    key
        An int (NumPy ints included) or ``"per_image_map"``.
    name
        Argument name used in the error message.

    Raises
    ------
    TypeError
        Anything else (bools and other strings included).
    """
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return int(key)
    if isinstance(key, str) and key == PER_IMAGE_MAP_KEY:
        return PER_IMAGE_MAP_KEY
    raise TypeError(f"{name} must be ints or {PER_IMAGE_MAP_KEY!r}, got {key!r}")
