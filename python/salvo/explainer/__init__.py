"""The Explainer and its result, under the reference toolkit's import paths."""

from __future__ import annotations

from salvo.common import ExplainMode
from salvo.explainer.explainer import Explainer
from salvo.explainer.explanation import Explanation, Prediction

__all__ = ["ExplainMode", "Explainer", "Explanation", "Prediction"]
