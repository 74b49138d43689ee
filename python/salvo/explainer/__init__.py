"""The Explainer and its result, under the reference toolkit's import paths.

Submodules: :mod:`~salvo.explainer.explainer` (the Explainer), :mod:`~salvo.explainer.explanation`
(Explanation, Layout), :mod:`~salvo.explainer.visualizer` (post-processing: Visualizer, resize,
colormap, overlay), :mod:`~salvo.explainer.utils` (targets, ready-made pre- and post-processing),
:mod:`~salvo.explainer.stream` (many images).
"""

from __future__ import annotations

from salvo.common import ExplainMode
from salvo.explainer import explainer, explanation, utils, visualizer
from salvo.explainer.explainer import Explainer
from salvo.explainer.explanation import Explanation, Layout, Prediction
from salvo.explainer.visualizer import Visualizer, colormap, overlay, resize

__all__ = [
    "ExplainMode",
    "Explainer",
    "Explanation",
    "Layout",
    "Prediction",
    "Visualizer",
    "colormap",
    "explainer",
    "explanation",
    "overlay",
    "resize",
    "utils",
    "visualizer",
]
