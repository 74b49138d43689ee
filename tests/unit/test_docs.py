"""The user guide in ``docs/`` against the code it describes: every command-line option, every
method parameter, the generated tables, the links between pages; and no docstring points at a
document outside the repository."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
from salvo.cli.parser import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _tables_module():
    spec = importlib.util.spec_from_file_location("_salvo_docs_tables", DOCS / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"salvo": parser, **{f"salvo {name}": p for name, p in sub.choices.items()}}


def _options() -> list[tuple[str, str, argparse.Action]]:
    return [(command, option, action)
            for command, parser in _commands().items()
            for action in parser._actions if not isinstance(action, (
                argparse._HelpAction, argparse._SubParsersAction))
            for option in action.option_strings]


def test_the_parser_has_options_to_check():
    options = {o for _, o, _ in _options()}
    assert len(options) > 40 and {"--num-masks", "--max-pixels", "--json"} <= options


@pytest.mark.parametrize("command", list(_commands()))
def test_every_command_has_a_section(command):
    if command == "salvo":
        return
    assert f"## `{command}`" in _page("cli.md")


@pytest.mark.parametrize(("command", "option"), [(c, o) for c, o, _ in _options()])
def test_every_option_is_in_the_cli_page(command, option):
    """Each option string, in code quotes, in the section of its command (``--debug`` in the
    part before the first command's section)."""
    page = _page("cli.md")
    sections = re.split(r"^## ", page, flags=re.MULTILINE)
    if command == "salvo":
        text = sections[0] + "".join(s for s in sections if s.startswith("Exit"))
    else:
        text = next(s for s in sections if s.startswith(f"`{command}`"))
    assert re.search(rf"`{re.escape(option)}[ `=\[]", text), f"{command} {option}"


@pytest.mark.parametrize(("command", "option"),
                         [(c, o) for c, o, a in _options() if a.choices and o.startswith("--")])
def test_every_choice_of_an_option_is_in_the_cli_page(command, option):
    action = next(a for c, o, a in _options() if (c, o) == (command, option))
    page = _page("cli.md")
    missing = [str(c) for c in action.choices if f"`{c}`" not in page and str(c) not in page]
    assert missing == [], f"{command} {option}: {missing}"


def _parameter_classes():
    from salvo.inference import EngineConfig
    from salvo.methods.black_box.aise import AISEClassificationParams, AISEDetectionParams
    from salvo.methods.black_box.rise import RISEParams
    from salvo.methods.white_box.det_class_probability_map import DetClassProbabilityMapParams
    from salvo.methods.white_box.recipro_cam import ViTReciproCAMParams

    return [RISEParams, AISEClassificationParams, AISEDetectionParams, ViTReciproCAMParams,
            DetClassProbabilityMapParams, EngineConfig]


@pytest.mark.parametrize("cls", _parameter_classes(), ids=lambda c: c.__name__)
def test_every_parameter_is_in_the_methods_page_with_its_default(cls):
    page = _page("methods.md")
    block = re.search(rf"<!-- table: {cls.__name__} -->\n(.*?)<!-- end table -->", page,
                      re.DOTALL)
    assert block, f"no generated table of {cls.__name__} in methods.md"
    rows = {cells[0]: cells for cells in (
        [c.strip() for c in line.strip().strip("|").split(" | ")]
        for line in block.group(1).splitlines() if line.startswith("| `"))}
    value = _tables_module()._value
    for f in dataclasses.fields(cls):
        assert f"`{f.name}`" in rows, f"{cls.__name__}.{f.name}"
        assert rows[f"`{f.name}`"][1] == f"`{value(f.default)}`", f"{cls.__name__}.{f.name}"


def test_every_field_has_a_description():
    """The tables take the meaning from the docstring's Attributes section: none may be empty."""
    tables = _tables_module()
    for cls in _parameter_classes():
        docs = tables.attribute_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert missing == [], f"{cls.__name__}: {missing}"


def test_the_generated_tables_match_the_code():
    stale = [page.name for page, (old, new) in _tables_module().pages().items() if old != new]
    assert stale == [], f"run python docs/tables.py: {stale}"


def test_a_changed_default_makes_the_table_stale(monkeypatch):
    """Negative control: the check sees a difference."""
    from salvo.methods.black_box import rise

    tables = _tables_module()
    changed = dataclasses.replace(rise.RISE_PRESETS[next(iter(rise.RISE_PRESETS))],
                                  num_masks=1234)
    monkeypatch.setitem(rise.RISE_PRESETS, next(iter(rise.RISE_PRESETS)), changed)
    stale = [page.name for page, (old, new) in tables.pages().items() if old != new]
    assert "methods.md" in stale


def test_the_index_links_every_page_and_every_link_resolves():
    index = _page("index.md")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]+)?\)", index))
    assert {p.name for p in PAGES} - {"index.md"} <= linked
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[\w-]+)?\)", page.read_text("utf-8")):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.name} -> {target}")
    assert broken == []


@pytest.mark.parametrize("name", ["methods.md", "engine.md", "threads.md", "cli.md",
                                  "numerics.md"])
def test_every_dotted_salvo_name_exists(name):
    """Names such as `salvo.errors.UninformativeMapWarning` in a page resolve to an object."""
    import importlib

    missing = []
    for dotted in sorted(set(re.findall(r"`(salvo(?:\.\w+)+)`", _page(name)))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(dotted)
            break
        else:
            missing.append(dotted)
    assert missing == []


def test_no_docstring_points_outside_the_repository():
    """A docstring states its contract; it does not send the reader to a tracker issue or to
    a specification that is not in the repository (the parser's ``SPEC`` metavars are fine)."""
    pattern = re.compile(r"SPEC\.md|SPEC section|see SPEC|\(issue[ :]|issue \d+",
                         re.IGNORECASE)
    found = [f"{path.relative_to(REPO)}:{n}"
             for folder in ("python/salvo", "benchmarks")
             for path in sorted((REPO / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert found == []
