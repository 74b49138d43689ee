"""The edges of salvo (the command line, the zoo, the preprocessing and the measuring helpers):
no import cycle runs through them, the libraries never import the command line, and nothing
imports the deprecated aliases ``salvo.bench`` / ``salvo.demo``.

Imports are read from the source (every ``import`` statement, function-local ones included),
so an import hidden inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest
import salvo

PACKAGE = Path(salvo.__file__).parent
REPO = PACKAGE.parent.parent


def _module_names() -> dict[str, Path]:
    """Dotted name → file of every Python module of the package."""
    names: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


MODULES = _module_names()
#: Compiled modules (``salvo._native``): importable names that are no ``.py`` file.
NATIVE = {f"salvo.{p.name.split('.')[0]}" for p in PACKAGE.glob("*.so")} | {"salvo._native"}


def _imported(path: Path, package: str) -> set[str]:
    """The salvo modules a file imports (``from salvo import zoo`` → ``salvo.zoo``;
    ``from salvo import __version__`` → ``salvo``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "salvo"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "salvo":
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in MODULES or sub in NATIVE else module)
    return {m for m in found if m in MODULES}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imported(path, package) - {name}
    return graph


def _is_edge(name: str) -> bool:
    return name in ("salvo.preprocess", "salvo.measure", "salvo.bench", "salvo.demo") or \
        name.startswith(("salvo.cli", "salvo.zoo"))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walker_sees_function_local_imports_and_resolves_submodules(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from salvo import zoo, __version__\n"
                      "def f():\n    from salvo.cli.models import load_model\n"
                      "    import salvo.preprocess\n")
    assert _imported(source, "salvo") == {"salvo.zoo", "salvo", "salvo.cli.models",
                                          "salvo.preprocess"}
    # a negative control for the cycle finder: a chain is no cycle, closing it makes one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_runs_through_the_edges():
    cycles = [c for c in _cycles(_graph()) if any(_is_edge(m) for m in c)]
    assert cycles == [], f"import cycles through the command line / zoo / preprocess: {cycles}"


def test_the_libraries_never_import_the_command_line_or_the_explainer():
    graph = _graph()
    # the zoo and the preprocessing sit below the engine and the methods; the measuring
    # helpers use the engine only
    forbidden = ("salvo.cli", "salvo.bench", "salvo.demo", "salvo.explainer", "salvo.methods",
                 "salvo.bulk", "salvo.metrics")
    for name in sorted(graph):
        if not (name.startswith("salvo.zoo") or name in ("salvo.preprocess", "salvo.measure")):
            continue
        up = sorted(m for m in graph[name]
                    if m == "salvo" or m.startswith(forbidden) or
                    (m == "salvo.inference" and name != "salvo.measure"))
        assert up == [], f"{name} imports {up}"


def test_nothing_imports_the_deprecated_aliases():
    graph = _graph()
    users = sorted(name for name, deps in graph.items()
                   if deps & {"salvo.bench", "salvo.demo"} and name not in ("salvo.bench",
                                                                            "salvo.demo"))
    assert users == []
    scripts = sorted(p for folder in ("tests", "benchmarks") for p in (REPO / folder).rglob("*.py")
                     if p.resolve() != Path(__file__).resolve()
                     and _imported(p, "") & {"salvo.bench", "salvo.demo"})
    assert scripts == []


@pytest.mark.parametrize(("alias", "new_module", "name"), [
    ("salvo.bench", "salvo.measure", "PlainQueue"),
    ("salvo.bench", "salvo.cli.bench", "run_bench"),
    ("salvo.demo", "salvo.cli.demo", "run_demo"),
])
def test_the_moved_modules_still_import_with_a_deprecation_warning(monkeypatch, alias,
                                                                    new_module, name):
    monkeypatch.delitem(sys.modules, alias, raising=False)
    with pytest.warns(DeprecationWarning, match=new_module.replace(".", r"\.")):
        module = importlib.import_module(alias)
    assert getattr(module, name) is getattr(importlib.import_module(new_module), name)


def test_old_names_of_salvo_cli_resolve_with_a_deprecation_warning():
    import salvo.cli
    import salvo.files
    import salvo.preprocess

    with pytest.warns(DeprecationWarning, match=r"salvo\.preprocess\.read_image"):
        assert salvo.cli.read_image is salvo.preprocess.read_image
    with pytest.warns(DeprecationWarning, match=r"salvo\.files\.atomic_write"):
        assert salvo.cli.write_atomic is salvo.files.atomic_write
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the command line's own names do not warn
        assert callable(salvo.cli.main) and callable(salvo.cli.build_parser)
    with pytest.raises(AttributeError, match="no_such_name"):
        salvo.cli.no_such_name  # noqa: B018
