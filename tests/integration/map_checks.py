"""Where a saliency map points, for the real-model tests."""

from __future__ import annotations

import numpy as np


def peak_xy(m: np.ndarray) -> tuple[int, int]:
    """(x, y) of the map's maximum."""
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    return int(x), int(y)


def inside(xy: tuple[int, int], box) -> bool:
    """Whether the point (x, y) lies in the box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    return x0 <= xy[0] < x1 and y0 <= xy[1] < y1


def box_mask(shape, box) -> np.ndarray:
    """A boolean mask of ``shape`` that is True inside the box (rounded to pixels)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    m = np.zeros(shape, bool)
    m[max(y0, 0): y1, max(x0, 0): x1] = True
    return m
