"""salvo: fast saliency maps for OpenVINO image models.

A drop-in for the OpenVINO XAI toolkit's API (``import salvo as xai``).
"""

from __future__ import annotations

import logging

from salvo import _deprecated
from salvo._info import __version__, build_info
from salvo.common import ExplainMode, Method, Preset, Task
from salvo.explainer import Explainer, Explanation
from salvo.api import insert_xai

logging.getLogger(__name__).addHandler(logging.NullHandler())
_deprecated.install()

#: Subpackages imported on first use as attributes (``salvo.metrics.ADCC`` after ``import salvo``,
#: as with the reference toolkit), so that ``import salvo`` stays light.
_LAZY_SUBMODULES = frozenset({"inserter", "metrics", "utils"})


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"salvo.{name}")
    raise AttributeError(f"module 'salvo' has no attribute {name!r}")

__all__ = [
    "ExplainMode",
    "Explainer",
    "Explanation",
    "Method",
    "Preset",
    "Task",
    "__version__",
    "build_info",
    "insert_xai",
]
