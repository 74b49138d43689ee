"""Every public name of the OpenVINO XAI toolkit 1.1 imports from the same path in salvo.

``tests/data/reference/reference_names.json`` lists, module by module, every public name of
``openvino_xai`` 1.1.0 (defined in the module or re-exported by it, ``__all__`` or not), with its
kind, signature, enum members and class methods. It was made with
``python tools/list_reference_names.py --output tests/data/reference/reference_names.json``
from the installed 1.1.0 wheel.

For each entry, ``openvino_xai.X`` becomes ``salvo.X``: the module imports, the name exists, is
of the same kind (a class, an enum with the same members, a function, a submodule, a constant of
the same value), and functions, classes and their methods take the reference's parameters in the
reference's order with the reference's defaults (salvo may add parameters after them). A name
that salvo does not provide is listed in :data:`EXCLUDED` with the reason; a deliberate
difference of value or signature in :data:`DIFFERENT` with the reason (the migration guide,
``docs/migration.md``, lists them too).
"""

from __future__ import annotations

import enum
import importlib
import inspect
import json
import math
import re
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

NAMES_FILE = Path(__file__).parents[1] / "data" / "reference" / "reference_names.json"
REFERENCE: dict[str, list[dict[str, Any]]] = json.loads(NAMES_FILE.read_text())

#: ``(module, name)`` (``"*"``: the whole module) -> why salvo does not provide it (shared with
#: the migration guide's generator, tools/migration_table.py).
EXCLUDED: dict[tuple[str, str], str] = {
    (module, name): reason
    for module, names in json.loads((NAMES_FILE.parent / "not_provided.json").read_text()).items()
    for name, reason in names.items()
}

#: ``(module, name)`` -> a deliberate difference of value (constants).
DIFFERENT: dict[tuple[str, str], str] = {
    ("openvino_xai.common.parameters", "WhiteBoxXAIMethods"): (
        "includes VITRECIPROCAM, a white-box method the reference's set leaves out"),
    ("openvino_xai.common.parameters", "ClassificationXAIMethods"): (
        "includes VITRECIPROCAM (a classification method the reference's set leaves out)"),
    ("openvino_xai.common.parameters", "DetectionXAIMethods"): (
        "includes RISE (D-RISE) and AISE, which explain detection models in salvo (and AISE in "
        "the reference too)"),
}

#: ``(module, qualified name, parameter)`` -> a deliberate difference of a default value.
DIFFERENT_DEFAULTS: dict[tuple[str, str, str], str] = {
    ("openvino_xai.explainer.utils", "preprocess_fn", "mean"): "a tuple, not a shared array",
    ("openvino_xai.explainer.utils", "preprocess_fn", "std"): "a tuple, not a shared array",
    ("openvino_xai.explainer.utils", "get_preprocess_fn", "mean"): "a tuple, not a shared array",
    ("openvino_xai.explainer.utils", "get_preprocess_fn", "std"): "a tuple, not a shared array",
}


def salvo_path(module: str) -> str:
    return "salvo" + module[len("openvino_xai"):]


def entries() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for module, items in REFERENCE.items():
        if (module, "*") in EXCLUDED:
            continue
        for entry in items:
            if (module, entry["name"]) not in EXCLUDED:
                out.append((module, entry))
    return out


ENTRIES = entries()


def test_the_list_is_the_whole_reference():
    assert len(REFERENCE) == 39
    assert sum(len(v) for v in REFERENCE.values()) == 268
    # the names the issue singles out are in it
    utils = {e["name"] for e in REFERENCE["openvino_xai.explainer.utils"]}
    assert {"get_preprocess_fn", "get_postprocess_fn", "ActivationType", "get_score",
            "get_target_indices", "convert_targets_to_numpy", "explains_all"} <= utils


def test_exclusions_name_real_entries_with_reasons():
    for (module, name), reason in {**EXCLUDED, **DIFFERENT}.items():
        assert module in REFERENCE, module
        if name != "*":
            assert name in {e["name"] for e in REFERENCE[module]}, (module, name)
        assert len(reason) > 20
    # everything else is checked: nearly the whole list
    assert len(ENTRIES) >= 250


# ---------------------------------------------------------------------------- signatures


def _split_top(text: str) -> list[str]:
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def parse_signature(text: str) -> list[tuple[str, str, str | None]]:
    """``[(kind, name, default text or None)]`` of a signature text; kind is ``"param"``,
    ``"*"``, ``"**"`` or ``"/"``."""
    body = text[text.index("(") + 1:]
    depth, end = 1, 0
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            end = i
            break
    out = []
    for part in _split_top(body[:end]):
        if part in ("*", "/"):
            out.append((part, part, None))
            continue
        kind = "**" if part.startswith("**") else "*" if part.startswith("*") else "param"
        part = part.lstrip("*")
        match = re.match(r"(\w+)\s*(?::[^=]*)?(?:=\s*(.*))?$", part, re.S)
        assert match, part
        out.append((kind, match.group(1), match.group(2)))
    return out


def _reference_default(text: str) -> Any:
    enum_repr = re.fullmatch(r"<(\w+)\.(\w+): .*>", text)
    if enum_repr:
        return ("enum", enum_repr.group(1), enum_repr.group(2))
    if text.endswith("()") and re.fullmatch(r"\w+\(\)", text):
        return ("instance", text[:-2])
    return ("value", eval(text, {"array": np.array, "inf": math.inf, "nan": math.nan}))


def _same_default(reference_text: str, value: Any) -> bool:
    kind, *rest = _reference_default(reference_text)
    if kind == "enum":
        return isinstance(value, enum.Enum) and (type(value).__name__, value.name) == tuple(rest)
    if kind == "instance":
        return type(value).__name__ == rest[0]
    expected = rest[0]
    if isinstance(expected, np.ndarray) or isinstance(value, np.ndarray):
        return np.array_equal(np.asarray(expected), np.asarray(value))
    return type(value) is type(expected) and value == expected


def _salvo_parameters(obj: Any, drop_first: bool) -> list[inspect.Parameter]:
    if inspect.isclass(obj):
        for klass in obj.__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None and inspect.isfunction(init):
                return list(inspect.signature(init).parameters.values())[1:]
        return list(inspect.signature(obj).parameters.values())  # e.g. a NamedTuple
    params = list(inspect.signature(obj).parameters.values())
    return params[1:] if drop_first else params


def check_signature(module: str, qualname: str, reference: str, obj: Any,
                    drop_first: bool = False) -> list[str]:
    """Problems of ``obj``'s signature against the reference's text (empty when it fits)."""
    problems = []
    ref = parse_signature(reference)
    params = _salvo_parameters(obj, drop_first)
    by_name = {p.name: p for p in params}
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    ref_positional = [name for kind, name, _ in ref if kind == "param"]
    if positional[:len(ref_positional)] != ref_positional:
        problems.append(f"{qualname}: parameters {positional} do not start with the "
                        f"reference's {ref_positional}")
    if any(kind == "**" for kind, _, _ in ref) and not any(
            p.kind is p.VAR_KEYWORD for p in params):
        problems.append(f"{qualname}: the reference takes **kwargs, salvo does not")
    for kind, name, default in ref:
        if kind != "param" or name not in by_name:
            continue
        ours = by_name[name].default
        if default is None:
            continue  # salvo may give a default where the reference has none
        if ours is inspect.Parameter.empty:
            problems.append(f"{qualname}({name}): the reference's default is {default}, salvo "
                            "has none")
        elif (module, qualname, name) not in DIFFERENT_DEFAULTS and not _same_default(
                default, ours):
            problems.append(f"{qualname}({name}): default {ours!r}, the reference's {default}")
    return problems


# ---------------------------------------------------------------------------------- test


def _kind(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "enum" if issubclass(obj, enum.Enum) else "class"
    return "function" if callable(obj) else "constant"


def _id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0][len('openvino_xai'):] or '.'}:{item[1]['name']}"


def _declared_abstract(cls: Any, method: str) -> bool:
    """An abstract method the class declares as a typed attribute, not a function (salvo's
    ``BaseMetric`` declares ``__call__`` and ``evaluate`` so, since every metric has its own
    reference signature for them): a subclass must define it, as the reference's
    ``@abstractmethod`` requires."""
    return (inspect.isclass(cls) and method in getattr(cls, "__abstractmethods__", ())
            and any(method in getattr(k, "__annotations__", {}) for k in cls.__mro__))


@pytest.mark.parametrize("module, entry", ENTRIES, ids=[_id(e) for e in ENTRIES])
def test_name_imports_from_the_reference_path(module, entry):
    mod = importlib.import_module(salvo_path(module))
    name, kind = entry["name"], entry["kind"]
    if kind == "module":
        sub = importlib.import_module(f"{salvo_path(module)}.{name}")
        assert getattr(mod, name) is sub
        return
    assert hasattr(mod, name), f"{salvo_path(module)} has no {name}"
    obj = getattr(mod, name)
    if kind == "type_alias":
        return
    if kind == "enum":
        assert _kind(obj) == "enum", f"{name} is not an Enum"
        assert {m.name: m.value for m in obj} == entry["members"]
        return
    if kind == "constant":
        if (module, name) in DIFFERENT:
            return
        if "value" in entry:
            value = entry["value"]
            if isinstance(obj, (set, frozenset)):
                assert sorted(f"{type(m).__name__}.{m.name}" for m in obj) == sorted(value)
            else:
                assert obj == value
        return
    if kind == "class":
        assert inspect.isclass(obj), f"{name} is not a class"
    else:
        assert callable(obj), f"{name} is not callable"
    problems = []
    if entry.get("signature") and not entry.get("from_source"):
        problems += check_signature(module, name, entry["signature"], obj)
    for method, signature in (entry.get("methods") or {}).items():
        if _declared_abstract(obj, method):
            continue
        attr = inspect.getattr_static(obj, method, None)
        if attr is None:
            problems.append(f"{name}.{method} is missing")
            continue
        if signature == "property":
            if not isinstance(attr, property):
                problems.append(f"{name}.{method} is not a property")
            continue
        if signature is None:
            continue
        func = getattr(obj, method)
        bound = not isinstance(attr, staticmethod)
        problems += check_signature(module, f"{name}.{method}", signature, func,
                                    drop_first=bound and not inspect.ismethod(func))
    assert not problems, "\n".join(problems)


def test_the_torch_module_is_salvos_path_and_not_the_references_classes():
    """The guide lists the reference's Torch* classes as not provided: the module at that path
    is salvo's PyTorch path (reached through ``insert_xai``) and has none of them."""
    module_name = "openvino_xai.methods.white_box.torch"
    assert (module_name, "*") in EXCLUDED
    torch_classes = {entry["name"] for entry in REFERENCE[module_name]
                     if entry["name"].startswith("Torch")}
    assert {"TorchReciproCAM", "TorchViTReciproCAM", "TorchActivationMap"} <= torch_classes
    module = importlib.import_module("salvo.methods.white_box.torch")
    assert callable(module.insert_xai_torch)
    assert sorted(name for name in torch_classes if hasattr(module, name)) == []


def test_migration_guide_lists_every_name():
    """docs/migration.md's name table is tools/migration_table.py's output for the list."""
    import importlib.util

    root = Path(__file__).parents[2]
    spec = importlib.util.spec_from_file_location("migration_table",
                                                  root / "tools" / "migration_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.update(check=True), "run python tools/migration_table.py"
    guide = (root / "docs" / "migration.md").read_text()
    for module_name, entries in REFERENCE.items():
        assert f"`{salvo_path(module_name)}`" in guide
        for entry in entries:
            assert f"`{entry['name']}`" in guide
    # the deliberate differences of the name test are in the guide too
    for phrase in ("VITRECIPROCAM", "estimator=\"plain\"", "argsort", "overlay_weight",
                   "ModelTypeError", "ArgumentError", "MapShapeError", "IgnoredArgumentWarning"):
        assert phrase in guide, phrase
