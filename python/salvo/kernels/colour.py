"""The colour tables of the saliency-map pictures: the JET colour map and the overlay blend.

Both the per-map OpenCV path (:mod:`salvo.explainer.visualizer`) and the batched Numba kernel
(:mod:`salvo.kernels.vis`) read these tables, so the two paths colour and blend alike.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["jet_lut_rgb", "overlay_table"]

_JET_LUT: np.ndarray | None = None


def jet_lut_rgb() -> np.ndarray:
    """The JET colour map as OpenCV draws it, in RGB order.

    Returns
    -------
    numpy.ndarray
        ``(256, 3)`` uint8, C-contiguous; row ``v`` is the RGB colour of grey level ``v``
        (``cv2.applyColorMap(v, COLORMAP_JET)`` converted BGR→RGB). Built once and cached;
        treat it as read-only.
    """
    global _JET_LUT
    if _JET_LUT is None:
        grey = np.arange(256, dtype=np.uint8).reshape(256, 1)
        bgr = cv2.applyColorMap(grey, cv2.COLORMAP_JET).reshape(256, 3)
        lut = np.ascontiguousarray(bgr[:, ::-1])
        lut.setflags(write=False)
        _JET_LUT = lut
    return _JET_LUT


_TABLES: dict[float, np.ndarray] = {}


def overlay_table(overlay_weight: float) -> np.ndarray:
    """The overlay blend of a JET colour and an image value, for every pair.

    Parameters
    ----------
    overlay_weight
        Weight of the saliency map, in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(256, 3, 256)`` uint8, read-only: ``table[g, c, v] = rint(overlay_weight *
        jet[g, c] + (1 - overlay_weight) * v)`` clipped to 0..255, where ``jet[g]`` is the RGB
        colour of grey level ``g`` and ``v`` the image's value in channel ``c``. The products
        and the sum are float64, as ``rint(w * colour + (1 - w) * image)`` computed on whole
        float64 arrays. Cached per weight.
    """
    weight = float(overlay_weight)
    table = _TABLES.get(weight)
    if table is None:
        colour = weight * jet_lut_rgb().astype(np.float64)  # (256, 3)
        image = (1.0 - weight) * np.arange(256, dtype=np.float64)  # (256,)
        blend = np.rint(colour[:, :, None] + image[None, None, :])
        table = np.clip(blend, 0.0, 255.0).astype(np.uint8)
        table.setflags(write=False)
        if len(_TABLES) > 64:
            _TABLES.clear()
        _TABLES[weight] = table
    return table
