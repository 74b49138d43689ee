"""Drive the reference toolkit (openvino-xai 1.1.0) on the current OpenVINO, for benchmarks only.

openvino-xai 1.1 imports ``openvino.runtime``, a namespace OpenVINO removed in 2026.0 (it only
re-exported the top-level ``openvino`` API). :func:`load_reference` registers modules under the
old names that point at the current equivalents, then imports the toolkit. Nothing else changes,
so both toolkits run on the same OpenVINO build. salvo itself never does this.

Install the reference with ``pip install --no-deps openvino-xai==1.1.0``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any


def _alias(name: str, target: Any) -> None:
    if name in sys.modules:
        return
    module = types.ModuleType(name)
    module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})
    module.__path__ = []  # a package, so submodules can be imported
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)


def reference_available() -> bool:
    """Whether openvino-xai is installed (without importing it)."""
    return importlib.util.find_spec("openvino_xai") is not None


def load_reference() -> Any:
    """Import and return the reference toolkit (``openvino_xai``) with the runtime shim."""
    import openvino
    import openvino.opset10
    import openvino.utils.data_helpers.wrappers as wrappers

    _alias("openvino.runtime", openvino)
    _alias("openvino.runtime.opset10", openvino.opset10)
    _alias("openvino.runtime.utils", openvino.utils)
    _alias("openvino.runtime.utils.data_helpers", openvino.utils.data_helpers)
    _alias("openvino.runtime.utils.data_helpers.wrappers", wrappers)
    return importlib.import_module("openvino_xai")
