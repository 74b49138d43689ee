"""salvo's architecture, checked from the source: every module sits in one declared layer, no
module imports a module of a higher layer, and no import cycle exists anywhere in the package.
The deprecated aliases of salvo 0.1 (``salvo.bench``, ``salvo.demo``, the old names of
``salvo.cli``) still resolve, with a warning naming the new place, and nothing imports them.

Imports are read from the source with :mod:`ast` (every ``import`` statement: function-local
ones and those under ``if TYPE_CHECKING:`` included), so an import hidden inside a function
counts as much as one at the top of a module. Importing ``a.b.c`` counts as importing the module
``a.b.c`` only, not its parent packages. ``docs/architecture.md`` describes the layers.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import salvo

PACKAGE = Path(salvo.__file__).parent
# the checkout these tests are in (salvo itself may be imported from an install)
REPO = Path(__file__).resolve().parents[2]

#: The layers, lowest first. A module may import modules of its own layer (without a cycle) and
#: of lower layers, never of a higher one. ``"x.*"`` is the package ``x`` and everything below
#: it; any other entry is that one module. Every module of the package must be in exactly one
#: layer (a new module is placed here deliberately).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # what every layer uses: argument checks, errors and warnings, the build's facts, progress
    # bars, atomic files, image files, the shared names (Task, Method, ...) and target lookup
    ("foundation", ("salvo._native", "salvo._checks", "salvo.errors", "salvo._info",
                    "salvo._progress", "salvo.files", "salvo.imagefile", "salvo.common.*")),
    # running a model and the hot loops; and what makes models and inputs without knowing any
    # method (the zoo only needs OpenVINO and the preprocessing; the planted test models only
    # OpenVINO; the measuring helpers the engine)
    ("engine", ("salvo.kernels.*", "salvo.inference", "salvo.preprocess", "salvo.zoo.*",
                "salvo.testing.*", "salvo.measure")),
    # the explanation methods: the contract, the registry, white-box and black-box methods;
    # salvo.methods.white_box.torch (insert_xai for torch modules, the only module importing
    # torch) is here too: the factory imports it inside insert_xai, for a torch module only
    ("methods", ("salvo.methods.*",)),
    # what users call: the Explainer and its Explanations, bulk explanation, metrics, the
    # reference's insertion API and utilities
    ("front", ("salvo.explainer.*", "salvo.metrics.*", "salvo.api.*", "salvo.inserter.*",
               "salvo.utils.*", "salvo.bulk")),
    # the package itself (``import salvo as xai``: the front layer's names) and the finder of
    # salvo 0.1's moved module paths it installs
    ("package", ("salvo", "salvo._deprecated")),
    # the command line: a client of the package as a user is (``salvo.Explainer``); and the
    # Ray runner, which runs the command line's explain steps (inputs, manifest, results table)
    # on a cluster and which ``salvo explain --ray`` calls (Ray itself is imported only there)
    ("cli", ("salvo.cli.*", "salvo.distributed.*")),
    # ``python -m salvo`` and salvo 0.1's deprecated modules, which re-export the command line
    ("top", ("salvo.__main__", "salvo.bench", "salvo.demo")),
)


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
KNOWN = set(MODULES) | NATIVE


def _imported(path: Path, package: str, known: set[str] | None = None) -> set[str]:
    """The salvo modules a file imports (``from salvo import zoo`` → ``salvo.zoo``;
    ``from salvo import __version__`` → ``salvo``; ``import salvo.a.b`` → ``salvo.a.b``)."""
    known = KNOWN if known is None else known
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
                found.add(sub if sub in known else module)
    return {m for m in found if m in known}


def _graph() -> dict[str, set[str]]:
    """Module → the salvo modules it imports (compiled modules are leaves)."""
    graph: dict[str, set[str]] = {name: set() for name in NATIVE}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imported(path, package) - {name}
    return graph


def _matches(module: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        root = pattern[:-2]
        return module == root or module.startswith(root + ".")
    return module == pattern


def _layer_of(modules: Sequence[str], layers: Sequence[tuple[str, Sequence[str]]]
              ) -> tuple[dict[str, int], list[str]]:
    """Module → index of its layer; and the problems (a module in no layer or in several)."""
    index: dict[str, int] = {}
    problems: list[str] = []
    for module in sorted(modules):
        found = [i for i, (_, patterns) in enumerate(layers)
                 if any(_matches(module, p) for p in patterns)]
        if len(found) != 1:
            where = [layers[i][0] for i in found]
            problems.append(f"{module} is in {len(found)} layers {where}: give it exactly one")
        else:
            index[module] = found[0]
    return index, problems


def _upward(graph: Mapping[str, set[str]], layers: Sequence[tuple[str, Sequence[str]]]
            ) -> list[str]:
    """Every import of a module of a higher layer, as ``"a (layer) imports b (layer)"``."""
    index, _ = _layer_of(list(graph), layers)
    out = []
    for module in sorted(graph):
        for dep in sorted(graph[module]):
            if module in index and dep in index and index[dep] > index[module]:
                out.append(f"{module} ({layers[index[module]][0]}) imports {dep} "
                           f"({layers[index[dep]][0]})")
    return out


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
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
        for w in sorted(graph.get(v, ())):
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# ------------------------------------------------------------------ the checkers themselves


def test_the_walker_sees_function_local_imports_and_resolves_submodules(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from salvo import zoo, __version__\n"
                      "def f():\n    from salvo.cli.models import load_model\n"
                      "    import salvo.preprocess\n"
                      "from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from salvo.explainer.explainer import Explainer\n"
                      "from .visualizer import VisOptions\n")
    # importing a submodule counts as importing that module only, not its parent packages
    assert _imported(source, "salvo.explainer") == {
        "salvo.zoo", "salvo", "salvo.cli.models", "salvo.preprocess",
        "salvo.explainer.explainer", "salvo.explainer.visualizer"}


def test_the_cycle_finder_reports_a_cycle_and_only_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}) == [["a", "b"], ["c", "d"]]


def test_the_layer_check_reports_an_upward_import_and_only_that():
    layers = (("low", ("p.low.*",)), ("mid", ("p.mid",)), ("high", ("p.high.*", "p")))
    down = {"p": {"p.mid"}, "p.high.x": {"p.mid", "p.low.a"}, "p.mid": {"p.low"},
            "p.low": {"p.low.a"}, "p.low.a": set()}
    assert _upward(down, layers) == []
    up = {**down, "p.low.a": {"p.mid"}, "p.mid": {"p.low", "p"}}
    assert _upward(up, layers) == ["p.low.a (low) imports p.mid (mid)",
                                   "p.mid (mid) imports p (high)"]
    # a module in no layer, or in two, is reported
    _, problems = _layer_of(["p.low.a", "p.other", "p.mid"],
                            (*layers, ("again", ("p.mid",))))
    assert problems == ["p.mid is in 2 layers ['mid', 'again']: give it exactly one",
                        "p.other is in 0 layers []: give it exactly one"]


# ------------------------------------------------------------------ the package


def _resolve(dotted: str) -> object:
    """The object a dotted ``salvo.…`` name stands for: the longest importable module prefix,
    then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_the_architecture_page_declares_these_layers_and_names_real_functions():
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and cells[0] in dict(LAYERS):
            rows[cells[0]] = tuple(re.findall(r"`([^`]+)`", cells[1]))
    assert rows == dict(LAYERS)
    assert list(rows) == [name for name, _ in LAYERS]  # in the same order
    # every dotted name in backticks (the table's "x.*" patterns are not names)
    names = sorted(set(re.findall(r"`(salvo(?:\.\w+)*)`", page)))
    assert len(names) > 40
    missing = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # salvo.bench, salvo.demo
        for name in names:
            try:
                _resolve(name)
            except (ImportError, AttributeError):
                missing.append(name)
    assert missing == []


def test_every_module_is_in_exactly_one_layer():
    _, problems = _layer_of(sorted(_graph()), LAYERS)
    assert problems == [], "\n".join(problems)


def test_no_import_cycle_anywhere():
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_a_higher_layer():
    upward = _upward(_graph(), LAYERS)
    assert upward == [], "upward imports:\n" + "\n".join(upward)


def test_no_type_ignore_hides_a_drifted_override():
    """A method whose signature differs from its base class's is a contract to state (as
    :class:`salvo.metrics.base.BaseMetric` states its metrics'), not a ``type: ignore``."""
    found = sorted(f"{path.relative_to(PACKAGE.parent)}:{n}"
                   for path in MODULES.values()
                   for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                   if "type: ignore[override]" in line)
    assert found == []


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
