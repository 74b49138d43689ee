"""Import paths of salvo 0.1 that moved in 0.2: they keep working for one release.

``import salvo.visualization`` (say) gives the module now at ``salvo.explainer.visualizer``, under
the old name too, with a :class:`DeprecationWarning` naming the new path. A package that moved
(``salvo.methods.whitebox``) carries its submodules along (``salvo.methods.whitebox.insert`` is
``salvo.methods.white_box.insert``). The finder is installed by ``import salvo``; it imports
nothing until an old path is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

#: Old path -> new path. A package entry also maps the old package's submodules.
MOVED: dict[str, str] = {
    "salvo.visualization": "salvo.explainer.visualizer",
    "salvo.targets": "salvo.common.targets",
    "salvo.planted": "salvo.testing.planted",
    "salvo.methods.whitebox": "salvo.methods.white_box",
    "salvo.methods.whitebox.base": "salvo.methods.white_box.graph",
    "salvo.methods.whitebox.insert": "salvo.methods.factory",
    "salvo.methods.blackbox": "salvo.methods.black_box",
    "salvo.methods.blackbox.aise": "salvo.methods.black_box.aise",
}

#: Where a removal is announced.
REMOVED_IN = "0.3"


def new_path(old: str) -> str | None:
    """The module that replaced ``old``, or ``None`` when ``old`` did not move."""
    if old in MOVED:
        return MOVED[old]
    package, _, leaf = old.rpartition(".")
    while package:
        if package in MOVED:
            return f"{MOVED[package]}.{leaf}"
        package, _, head = package.rpartition(".")
        leaf = f"{head}.{leaf}"
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{self.old} moved to {self.new}; the old path goes away in salvo {REMOVED_IN}",
            DeprecationWarning,
            stacklevel=6,
        )
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        # the module is the new one, already executed; it is also known by its old name now
        sys.modules[self.old] = module


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("salvo."):
            return None
        new = new_path(fullname)
        if new is None or importlib.util.find_spec(new) is None:
            return None
        is_package = hasattr(importlib.import_module(new), "__path__")
        return importlib.util.spec_from_loader(fullname, _Alias(fullname, new),
                                               is_package=is_package)


_FINDER = _Finder()


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    # first: the path finder would otherwise load an old submodule path a second time, from
    # the new package's folder, as a different module object
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
