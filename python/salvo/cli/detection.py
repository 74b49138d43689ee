"""Detection boxes drawn on saliency maps (``salvo explain --task detection``)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from salvo.cli.models import label_of
from salvo.explainer.explanation import Explanation

__all__ = ["draw_detection", "with_boxes"]


def with_boxes(e: Explanation, labels: Sequence[str] | None, input_size: tuple[int, int]
               ) -> Explanation:
    """The explanation with each map's detection box and class name drawn on it."""
    maps = {}
    for key, smap in e.saliency_map.items():
        p = e.predictions.get(key)
        arr = np.asarray(smap)
        if p is None or p.bounding_box is None or arr.dtype != np.uint8 or arr.ndim not in (2, 3):
            maps[key] = smap
            continue
        name = label_of(labels, p.label) or ("class ?" if p.label is None else f"class {p.label}")
        text = name if p.score is None else f"{name} {float(p.score):.2f}"
        maps[key] = draw_detection(arr, p.bounding_box, text, input_size)
    return Explanation(maps, targets=e.targets, task=e.task, label_names=e.label_names,
                       predictions=e.predictions, num_inferences=e.num_inferences,
                       method=e.method, reliability=e.reliability)


def draw_detection(smap: np.ndarray, box: Sequence[float], text: str,
                   input_size: tuple[int, int]) -> np.ndarray:
    """A copy of a saliency map with a detection's box and caption drawn on it.

    Parameters
    ----------
    smap
        ``(H, W, 3)`` RGB or ``(H, W)`` grey uint8 map of the part of the image the model saw.
    box
        ``(x1, y1, x2, y2)`` in model-input pixels.
    text
        The caption (class name and score), drawn above the box (inside it at the top edge).
    input_size
        ``(h, w)`` of the model input: the box is scaled by the map's size over it.

    Returns
    -------
    numpy.ndarray
        A new array; white lines with a black outline, so they show on any colour.
    """
    out = np.array(smap, dtype=np.uint8, copy=True)  # maps may be views into a shared block
    height, width = out.shape[:2]
    sy, sx = height / input_size[0], width / input_size[1]
    x1, y1, x2, y2 = (float(v) for v in box)
    p1 = (int(np.clip(round(x1 * sx), 0, width - 1)), int(np.clip(round(y1 * sy), 0, height - 1)))
    p2 = (int(np.clip(round(x2 * sx), 0, width - 1)), int(np.clip(round(y2 * sy), 0, height - 1)))
    thick = max(1, round(max(height, width) / 320))
    white, black = (255, 255, 255), (0, 0, 0)
    if out.ndim == 2:
        white, black = (255,), (0,)
    cv2.rectangle(out, p1, p2, black, thick + 2)
    cv2.rectangle(out, p1, p2, white, thick)
    scale = max(0.4, max(height, width) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    tx = min(max(p1[0], 0), max(0, width - tw))
    ty = p1[1] - base - thick if p1[1] - th - base - thick >= 0 else p1[1] + th + thick + 2
    cv2.putText(out, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, black, thick + 2,
                cv2.LINE_AA)
    cv2.putText(out, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, white, thick, cv2.LINE_AA)
    return out
