"""List every public name of an installed Python package, module by module, as JSON.

Written for the OpenVINO XAI toolkit (``openvino_xai``), whose public surface is wider than its
``__all__`` lists (``openvino_xai.explainer.utils.get_preprocess_fn`` is in none of them). The
script imports every module of the package (walking it with :mod:`pkgutil`) and records, for each
module, each name a user can import from it.

Which names are kept
--------------------
A name is kept when it does not start with ``_`` and its object belongs to the package:

* ``module`` — a submodule of the package bound as an attribute (``openvino_xai.explainer`` has
  ``explainer``, ``explanation``, ``utils``, ``visualizer``). Third-party modules (``np``, ``ov``,
  ``cv2``) are dropped.
* ``class``, ``enum``, ``function`` — classes and functions whose ``__module__`` is inside the
  package. Third-party classes and functions that a module merely imports (``Path``, ``partial``,
  ``OVDict``, ``tqdm``) are dropped.
* ``type_alias`` — ``TypeVar`` objects and typing aliases assigned at the top level of a package
  module (``Model = TypeVar(...)``, ``PreprocessFn: TypeAlias = ...``). They are kept because they
  are importable names of the module, but marked so that a consumer can treat them as optional.
* ``constant`` — any other value assigned at the top level of a package module, whatever its type
  (``SALIENCY_MAP_OUTPUT_NAME``, the layout sets, the package ``logger``), or imported into it from
  another package module. The value's type name is recorded; its value too when it is a str,
  number, bool or a set/list/tuple of such or of enum members.

Every entry says whether the name is ``defined`` in the module or a ``reexport`` (with the
module it comes from) and whether it is listed in the module's ``__all__``. Many re-exports are
incidental (a module imports ``logger`` for its own use); they are listed all the same, because
user code can and does import them from there (the toolkit's own examples import ``logger`` from
``openvino_xai.common.utils``).

Stand-ins for optional dependencies are dropped: a name bound inside an ``except ImportError``
handler that replaces a failed ``import`` of the same name (``openvino_xai.utils.torch`` defines a
dummy ``torch`` class when PyTorch is missing) is not part of the API, and neither are its
re-exports.

A module that cannot be imported (``openvino_xai.methods.white_box.torch`` needs PyTorch) is
listed from its source text instead: its top-level classes, functions and assignments, and the
names it imports from the package. Such entries carry ``"from_source": true`` and their
signatures are the source text of the parameter list.

Signatures
----------
``signature`` is ``str(inspect.signature(...))`` for functions, and for classes the signature of
the constructor as a user calls it: the first user-defined ``__init__`` along the MRO without
``self`` (``inspect.signature`` would prefer a user-defined ``__new__(cls, model=None, *args,
**kwargs)``, which hides the real parameters). Default values whose ``repr`` contains a memory
address are written as ``ClassName()``, so that the output is the same from run to run. Classes
also get ``methods`` (public methods, ``__call__`` included, and properties, defined by a class of
the package, with signatures without ``self``); enums get ``members`` (name -> value).

Output
------
A JSON object ``{module name: [entry, ...]}`` with modules and names sorted; each entry has at
least ``name``, ``kind`` and ``signature`` (``null`` for modules, constants and enums).

OpenVINO 2026 removed the ``openvino.runtime`` namespace that openvino_xai 1.1 imports (it only
re-exported the top-level ``openvino`` API). Unless ``--no-runtime-alias`` is given, the script
registers alias modules under the old names before importing the package, when
``openvino.runtime`` itself cannot be imported.

Usage::

    python list_reference_names.py                      # openvino_xai -> reference_names.json
    python list_reference_names.py --package openvino_xai --output names.json
"""

from __future__ import annotations

import argparse
import ast
import enum
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import logging
import pkgutil
import sys
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["alias_openvino_runtime", "list_package", "main"]

_ALIASES = {
    "openvino.runtime": "openvino",
    "openvino.runtime.opset10": "openvino.opset10",
    "openvino.runtime.utils": "openvino.utils",
    "openvino.runtime.utils.data_helpers": "openvino.utils.data_helpers",
    "openvino.runtime.utils.data_helpers.wrappers": "openvino.utils.data_helpers.wrappers",
}
_SCALARS = (str, int, float, bool, type(None))


# ----------------------------------------------------------------------------- runtime alias


def alias_openvino_runtime() -> bool:
    """Make ``openvino.runtime`` and the submodules openvino_xai 1.1 uses importable again.

    Each old name becomes a module object whose attributes are those of the current module
    (``openvino.runtime`` -> ``openvino``). Nothing happens when ``openvino.runtime`` imports.

    Returns
    -------
    bool
        True when the aliases were registered, False when they were not needed.
    """
    try:
        importlib.import_module("openvino.runtime")
        return False
    except ImportError:
        pass
    for old, new in _ALIASES.items():
        target = importlib.import_module(new)
        alias = types.ModuleType(old)
        alias.__dict__.update(
            {key: value for key, value in vars(target).items() if not key.startswith("__")}
        )
        alias.__path__ = []  # a package: ``import openvino.runtime.x`` looks up sys.modules
        sys.modules[old] = alias
        parent, _, child = old.rpartition(".")
        setattr(sys.modules[parent], child, alias)
    return True


# ----------------------------------------------------------------------------- source analysis


class _SourceFacts:
    """What the source text of one module says about its top-level names."""

    def __init__(self, source: str, module: str, is_package: bool) -> None:
        tree = ast.parse(source)
        package = module.split(".")[0]
        self.assigned: set[str] = set()  # top-level assignments (x = ..., x: T = ...)
        self.imported_from: dict[str, str] = {}  # name -> package module it is imported from
        self.standins: set[str] = set()  # fallbacks bound in `except ImportError`
        self.defs: dict[str, ast.AST] = {}  # top-level def / class nodes
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defs[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.assigned.add(target.id)
            elif isinstance(node, ast.ImportFrom):
                source_module = _resolve_import(node, module, is_package)
                if source_module.split(".")[0] == package:
                    for alias in node.names:
                        self.imported_from[alias.asname or alias.name] = source_module
            elif isinstance(node, ast.Try):
                self._note_standins(node)

    def _note_standins(self, node: ast.Try) -> None:
        imported: set[str] = set()
        for stmt in node.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                imported.update((a.asname or a.name).split(".")[0] for a in stmt.names)
        for handler in node.handlers:
            caught = handler.type
            names = [caught] if not isinstance(caught, ast.Tuple) else list(caught.elts)
            if not any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
                       for n in names):
                continue
            for stmt in handler.body:
                bound: list[str] = []
                if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
                    bound = [stmt.name]
                elif isinstance(stmt, ast.Assign):
                    bound = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                self.standins.update(name for name in bound if name in imported)


def _resolve_import(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    # level 1 is the module's own package: the module itself when it is a package's __init__
    base = base[: len(base) - node.level + int(is_package)]
    return ".".join(base + ([node.module] if node.module else []))


def _module_source(module_name: str) -> tuple[str, bool] | None:
    """The source text of a module and whether it is a package, or None."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return (Path(spec.origin).read_text(encoding="utf-8"),
            spec.submodule_search_locations is not None)


# ----------------------------------------------------------------------------- formatting


class _Literal:
    """A default value shown by a fixed text (instead of a repr with a memory address)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _stable_signature(sig: inspect.Signature) -> str:
    params = []
    for param in sig.parameters.values():
        default = param.default
        if default is not inspect.Parameter.empty and " at 0x" in repr(default):
            param = param.replace(default=_Literal(f"{type(default).__name__}()"))
        params.append(param)
    return str(sig.replace(parameters=params))


def _callable_signature(func: Any, drop_first: bool = False) -> str | None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    if drop_first:
        params = list(sig.parameters.values())[1:]
        sig = sig.replace(parameters=params)
    return _stable_signature(sig)


def _class_signature(cls: type) -> str | None:
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and inspect.isfunction(init):
            return _callable_signature(init, drop_first=True)
    return _callable_signature(cls)


def _belongs(obj: Any, package: str) -> bool:
    name = getattr(obj, "__module__", None) or ""
    return name == package or name.startswith(package + ".")


def _class_members(cls: type, package: str) -> dict[str, str | None]:
    members: dict[str, str | None] = {}
    for klass in reversed(cls.__mro__):
        if not _belongs(klass, package):
            continue
        for name, raw in vars(klass).items():
            if name.startswith("_") and name != "__call__":
                continue
            if isinstance(raw, property):
                members[name] = "property"
            elif isinstance(raw, staticmethod):
                members[name] = _callable_signature(raw.__func__)
            elif isinstance(raw, classmethod):
                members[name] = _callable_signature(raw.__func__, drop_first=True)
            elif inspect.isfunction(raw):
                members[name] = _callable_signature(raw, drop_first=True)
    return dict(sorted(members.items()))


def _value_summary(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (set, frozenset, list, tuple)):
        items = [_value_summary(v) for v in value]
        if all(isinstance(v, _SCALARS) for v in items):
            return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    return None


def _is_type_alias(value: Any) -> bool:
    if isinstance(value, typing.TypeVar):
        return True
    origin = typing.get_origin(value)
    return origin is not None and not isinstance(value, type)


# ----------------------------------------------------------------------------- listing


def _entry_for(name: str, obj: Any, package: str,
               facts: _SourceFacts | None) -> dict[str, Any] | None:
    if isinstance(obj, types.ModuleType):
        if not _belongs_module(obj, package):
            return None
        return {"name": name, "kind": "module", "signature": None}
    if inspect.isclass(obj):
        if not _belongs(obj, package):
            return None
        if issubclass(obj, enum.Enum):
            return {"name": name, "kind": "enum", "signature": None,
                    "members": {m.name: m.value for m in obj}}
        return {"name": name, "kind": "class", "signature": _class_signature(obj),
                "methods": _class_members(obj, package)}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        if not _belongs(obj, package):
            return None
        return {"name": name, "kind": "function", "signature": _callable_signature(obj)}
    # a value: keep it if the package binds it (here or in the module it is imported from)
    if facts is None or (name not in facts.assigned and name not in facts.imported_from):
        return None
    if _is_type_alias(obj):
        return {"name": name, "kind": "type_alias", "signature": None, "value": repr(obj)}
    entry: dict[str, Any] = {"name": name, "kind": "constant", "signature": None,
                             "type": type(obj).__name__}
    summary = _value_summary(obj)
    if summary is not None:
        entry["value"] = summary
    return entry


def _belongs_module(mod: types.ModuleType, package: str) -> bool:
    return mod.__name__ == package or mod.__name__.startswith(package + ".")


def _origin(name: str, obj: Any, module: str, facts: _SourceFacts | None) -> dict[str, Any]:
    if facts is not None and name in facts.imported_from:
        return {"origin": "reexport", "from": facts.imported_from[name]}
    if isinstance(obj, types.ModuleType):
        return {"origin": "submodule"}
    home = getattr(obj, "__module__", None)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and home and home != module:
        return {"origin": "reexport", "from": home}
    return {"origin": "defined"}


def _list_imported(module: types.ModuleType, package: str, facts: _SourceFacts | None,
                   standin_ids: set[int]) -> list[dict[str, Any]]:
    exported = set(getattr(module, "__all__", ()) or ())
    entries = []
    for name, obj in vars(module).items():
        if name.startswith("_") or id(obj) in standin_ids:
            continue
        entry = _entry_for(name, obj, package, facts)
        if entry is None:
            continue
        entry.update(_origin(name, obj, module.__name__, facts))
        entry["in_all"] = name in exported
        entries.append(entry)
    return sorted(entries, key=lambda e: e["name"])


def _list_from_source(module_name: str, facts: _SourceFacts, package: str,
                      all_facts: dict[str, _SourceFacts]) -> list[dict[str, Any]]:
    entries = []
    for name, node in facts.defs.items():
        if name.startswith("_") or name in facts.standins:
            continue
        if isinstance(node, ast.ClassDef):
            init = next((n for n in node.body
                         if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            signature = None
            if init is not None:
                args = ast.unparse(init.args)
                signature = "(" + args.split(",", 1)[1].strip() + ")" if "," in args else "()"
            entries.append({"name": name, "kind": "class", "signature": signature,
                            "origin": "defined"})
        else:
            entries.append({"name": name, "kind": "function",
                            "signature": "(" + ast.unparse(node.args) + ")",
                            "origin": "defined"})
    for name in facts.assigned:
        if not name.startswith("_") and name not in facts.standins:
            entries.append({"name": name, "kind": "constant", "signature": None,
                            "origin": "defined"})
    for name, source in facts.imported_from.items():
        if name.startswith("_"):
            continue
        entry = None
        home = sys.modules.get(source)
        if home is not None and hasattr(home, name):  # describe it as its own module does
            entry = _entry_for(name, getattr(home, name), package, all_facts.get(source))
        if entry is None:
            entry = {"name": name, "kind": "unknown", "signature": None}
        entry.update({"origin": "reexport", "from": source})
        entries.append(entry)
    for entry in entries:
        entry["from_source"] = True
        entry["in_all"] = False
    return sorted(entries, key=lambda e: e["name"])


def list_package(package: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Import every module of ``package`` and list its public names.

    Parameters
    ----------
    package : str
        Top-level package name, e.g. ``"openvino_xai"``.

    Returns
    -------
    names : dict
        ``{module name: [entry, ...]}``, sorted; see the module docstring for the entries.
    failures : dict
        ``{module name: "ExceptionType: message"}`` for modules that did not import (they are
        listed from source in ``names``).
    """
    root = importlib.import_module(package)
    module_names = [package]
    failures: dict[str, str] = {}

    def onerror(name: str) -> None:
        failures.setdefault(name, f"{sys.exc_info()[0].__name__}: {sys.exc_info()[1]}")

    if hasattr(root, "__path__"):
        for info in pkgutil.walk_packages(root.__path__, prefix=package + ".", onerror=onerror):
            module_names.append(info.name)

    modules: dict[str, types.ModuleType] = {}
    for name in sorted(set(module_names)):
        try:
            modules[name] = importlib.import_module(name)
        except Exception as exc:  # an optional dependency is missing: list it from source
            failures[name] = f"{type(exc).__name__}: {exc}"

    facts = {name: _SourceFacts(src[0], name, src[1])
             for name in set(module_names) | set(failures)
             if (src := _module_source(name)) is not None}
    standin_ids = {id(getattr(modules[name], standin))
                   for name, fact in facts.items() if name in modules
                   for standin in fact.standins if hasattr(modules[name], standin)}

    result: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(set(modules) | set(failures)):
        if name in modules:
            result[name] = _list_imported(modules[name], package, facts.get(name), standin_ids)
        elif name in facts:
            result[name] = _list_from_source(name, facts[name], package, facts)
    return result, failures


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default="openvino_xai",
                        help="installed package to list (default: openvino_xai)")
    parser.add_argument("--output", type=Path, default=Path("reference_names.json"),
                        help="JSON file to write (default: reference_names.json; '-' = stdout)")
    parser.add_argument("--no-runtime-alias", action="store_true",
                        help="do not register openvino.runtime aliases before importing")
    args = parser.parse_args(argv)

    if not args.no_runtime_alias:
        alias_openvino_runtime()
    logging.disable(logging.CRITICAL)  # the package may log while its modules import
    try:
        names, failures = list_package(args.package)
    finally:
        logging.disable(logging.NOTSET)

    text = json.dumps(names, indent=1, sort_keys=False, default=repr) + "\n"
    if str(args.output) == "-":
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    try:
        version = importlib.metadata.version(args.package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    total = sum(len(v) for v in names.values())
    print(f"{args.package} {version}: {len(names)} modules, {total} names", file=sys.stderr)
    for module, error in sorted(failures.items()):
        print(f"  listed from source (import failed): {module}: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
