"""The reference toolkit (OpenVINO XAI 1.1, ``openvino_xai``) loaded next to salvo, for tests,
benchmarks and ``salvo bench --compare-reference``.

openvino-xai 1.1 imports ``openvino.runtime`` (``import openvino.runtime as ov``, ``from
openvino.runtime import opset10``, ``from openvino.runtime.utils.data_helpers.wrappers import
OVDict``), a namespace OpenVINO removed in 2026.0; it only re-exported the top-level
``openvino`` API. :func:`load_reference` imports the toolkit and every one of its modules while
stand-in modules for those names sit in ``sys.modules``, then takes the stand-ins out again: the
toolkit's modules keep the objects they bound at import time (today's ``openvino`` classes), and
``import openvino.runtime`` fails afterwards exactly as it did before. Nothing in OpenVINO or in
salvo is patched beyond that import, and ``import salvo`` never imports this module.

Install the reference with ``pip install --no-deps openvino-xai==1.1.0`` (its declared
dependencies pin an older OpenVINO).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["REFERENCE_INSTALL", "load_reference", "openvino_runtime_stand_ins",
           "reference_available"]

#: The command that installs the reference toolkit.
REFERENCE_INSTALL = "pip install --no-deps openvino-xai==1.1.0"

#: The toolkit's PyTorch helpers: imported only when torch is installed (without it they log an
#: error on import); every other module must load.
_TORCH_MODULES = ("openvino_xai.methods.white_box.torch", "openvino_xai.utils.torch")

_lock = threading.Lock()


def reference_available() -> bool:
    """Whether ``openvino_xai`` is installed (it is not imported)."""
    return importlib.util.find_spec("openvino_xai") is not None


def _stand_ins() -> dict[str, Any]:
    """The names openvino-xai 1.1 imports, each with today's module it re-exports."""
    import openvino
    import openvino.opset10
    import openvino.utils
    import openvino.utils.data_helpers
    from openvino.utils.data_helpers import wrappers

    return {
        "openvino.runtime": openvino,
        "openvino.runtime.opset10": openvino.opset10,
        "openvino.runtime.utils": openvino.utils,
        "openvino.runtime.utils.data_helpers": openvino.utils.data_helpers,
        "openvino.runtime.utils.data_helpers.wrappers": wrappers,
    }


@contextmanager
def openvino_runtime_stand_ins() -> Iterator[list[str]]:
    """Within the block, ``openvino.runtime`` and its sub-modules openvino-xai uses import as
    module objects re-exporting today's ``openvino`` ones; after it they are gone again.

    Names already present in ``sys.modules`` (an OpenVINO that still has ``openvino.runtime``,
    or someone else's alias) are used as they are and left in place. Yields the names it added.
    """
    added: list[str] = []
    attributes: list[tuple[types.ModuleType, str]] = []
    try:
        for name, target in _stand_ins().items():
            if name in sys.modules:
                continue
            module = types.ModuleType(name, f"stand-in for {name}: re-exports {target.__name__}")
            module.__dict__.update({k: v for k, v in vars(target).items()
                                    if not k.startswith("__")})
            module.__path__ = []  # a package, so its sub-modules import
            sys.modules[name] = module
            added.append(name)
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and not hasattr(sys.modules[parent], child):
                setattr(sys.modules[parent], child, module)
                attributes.append((sys.modules[parent], child))
        yield added
    finally:
        for parent_module, child in attributes:
            if child in vars(parent_module):
                delattr(parent_module, child)
        for name in added:
            sys.modules.pop(name, None)


def load_reference() -> Any:
    """Import and return the reference toolkit ``openvino_xai`` with all its modules.

    Every module is imported inside :func:`openvino_runtime_stand_ins` (the toolkit imports some
    of them lazily, when an ``Explainer`` is built, and they must find their names then too).
    Calling it again returns the same module.

    Raises
    ------
    ModuleNotFoundError
        openvino-xai is not installed (the message gives :data:`REFERENCE_INSTALL`).
    ImportError
        One of its modules does not import on this OpenVINO (its PyTorch helpers are imported
        only when torch is installed).
    """
    with _lock:
        if not reference_available():
            raise ModuleNotFoundError(
                f"the reference toolkit openvino-xai is not installed ({REFERENCE_INSTALL})",
                name="openvino_xai")
        with openvino_runtime_stand_ins():
            package = importlib.import_module("openvino_xai")
            torch = importlib.util.find_spec("torch") is not None
            for info in pkgutil.walk_packages(package.__path__, "openvino_xai."):
                if info.name in sys.modules or (info.name in _TORCH_MODULES and not torch):
                    continue
                importlib.import_module(info.name)
        return package
