"""The user guide in ``docs/`` and the README against the code they describe: every
command-line option, every method parameter, the generated tables, the links between pages and
their anchors, the ``salvo.*`` names they cite, their Python snippets (compiled, their imports
resolved, and run: the ones on real models are ``slow``) and their shell commands (every
``salvo ...`` line parses with salvo's parser, every ``python benchmarks/...`` line with the
script's); every benchmark script's ``--help``; and no docstring points at a document outside
the repository."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import re
import shlex
import sys
import warnings
from pathlib import Path

import pytest
from salvo.cli.parser import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
README = REPO / "README.md"
#: Every Markdown file a reader gets: the README and the user guide.
DOCUMENTS = [README, *PAGES]
BENCHMARKS = REPO / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py"))


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


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, code quotes and punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    in_code = False
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6} (.+)", line)):
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def broken_links(path: Path) -> list[str]:
    """Relative links and images of a Markdown file whose target file is missing, or whose
    ``#anchor`` names no heading of the target page."""
    broken = []
    text = re.sub(r"^```.*?^```", "", path.read_text("utf-8"), flags=re.MULTILINE | re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        where = (path.parent / file).resolve() if file else path
        if not where.exists():
            broken.append(f"{path.name} -> {target}")
        elif anchor and where.suffix == ".md" and anchor not in _anchors(where):
            broken.append(f"{path.name} -> {target} (no such heading)")
    return broken


def test_the_index_links_every_page():
    index = _page("index.md")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]+)?\)", index))
    assert {p.name for p in PAGES} - {"index.md"} <= linked


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(path):
    assert broken_links(path) == []


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    """Negative control of the link check."""
    (tmp_path / "b.md").write_text("# Real heading\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#real-heading) [gone](c.md) [bad](b.md#nothing) [self](#top)\n"
                    "```\n[in code](ignored.md)\n```\n## Top\n", encoding="utf-8")
    assert broken_links(page) == ["a.md -> c.md", "a.md -> b.md#nothing (no such heading)"]


def test_the_readme_links_the_user_guide_and_the_thread_model():
    text = README.read_text("utf-8")
    assert "](docs/index.md)" in text
    section = text.split("## Thread model", 1)[1].split("\n## ", 1)[0]
    for words in ("shared", "per call", "num_requests", "batch_size", "](docs/threads.md)"):
        assert words in section.lower(), words


def missing_names(text: str) -> list[str]:
    """The ``salvo.x.y`` names in code quotes that do not resolve to a module or an attribute
    (a deprecated alias of salvo 0.1 resolves, with its warning; a struck-through name,
    ``~~`salvo.x`~~``, is one the text says salvo does not provide)."""
    missing = []
    for dotted in sorted(set(re.findall(r"(?<!~~)`(salvo(?:\.\w+)+)`", text))):
        parts = dotted.split(".")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
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
    return missing


@pytest.mark.parametrize("path", [p for p in DOCUMENTS if p.name != "changelog.md"],
                         ids=lambda p: p.name)
def test_every_dotted_salvo_name_exists(path):
    """Names such as `salvo.errors.UninformativeMapWarning` resolve to an object (the changelog
    is left out: it names what was removed)."""
    assert missing_names(path.read_text("utf-8")) == []


def test_a_missing_name_is_reported():
    """Negative control of the name check."""
    assert missing_names("`salvo.errors.NoSuchWarning` `salvo.nowhere.x` `salvo.errors`") == [
        "salvo.errors.NoSuchWarning", "salvo.nowhere.x"]


# ------------------------------------------------------------------------ code in the documents


def _blocks(path: Path, languages: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """``(line, language, code)`` of every fenced block in one of ``languages`` ("" = no
    language given)."""
    found, lines = [], path.read_text("utf-8").splitlines()
    start = language = None
    for n, line in enumerate(lines, 1):
        if line.startswith("```"):
            if start is None:
                start, language = n, line[3:].strip()
            else:
                if language in languages:
                    found.append((start, language, "\n".join(lines[start:n - 1])))
                start = None
    return found


PYTHON_BLOCKS = [(path, line, code) for path in DOCUMENTS
                 for line, _, code in _blocks(path, ("python",))]


def _ids(value):
    return value.name if isinstance(value, Path) else str(value) if isinstance(value, int) else ""


def unresolved_imports(code: str) -> list[str]:
    """The imports of a snippet that fail: a module that does not import, or a name it lacks."""
    bad = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            pairs = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            pairs = [(node.module, a.name) for a in node.names]
        else:
            continue
        for module, name in pairs:
            try:
                obj = importlib.import_module(module)
            except ImportError:
                bad.append(module)
                continue
            if name is not None and not hasattr(obj, name):
                try:
                    importlib.import_module(f"{module}.{name}")
                except ImportError:
                    bad.append(f"{module}.{name}")
    return bad


def test_the_documents_have_python_snippets():
    assert {p.name for p, _, _ in PYTHON_BLOCKS} >= {"README.md", "index.md", "methods.md"}


@pytest.mark.parametrize(("path", "line", "code"), PYTHON_BLOCKS, ids=_ids)
def test_every_python_snippet_compiles_and_imports_what_exists(path, line, code):
    compile(code, f"{path.name}:{line}", "exec")
    assert unresolved_imports(code) == []


def test_a_bad_import_is_reported():
    """Negative control of the import check."""
    code = "import salvo\nfrom salvo.errors import NoSuchThing\nimport salvo_nowhere\n"
    assert unresolved_imports(code) == ["salvo.errors.NoSuchThing", "salvo_nowhere"]


def _snippet(name: str, line: int | None = None) -> str:
    path = REPO / name if name == "README.md" else DOCS / name
    codes = [code for n, _, code in _blocks(path, ("python",)) if line in (None, n)]
    assert len(codes) == 1, f"{name}: expected one Python snippet, found {len(codes)}"
    return codes[0]


def test_the_numerics_snippet_runs():
    code = _snippet("numerics.md")
    from salvo.errors import UninformativeMapWarning

    with warnings.catch_warnings():
        exec(compile(code, "numerics.md", "exec"), {})  # noqa: S102 - the page's own code
        with pytest.raises(UninformativeMapWarning):
            warnings.warn("flat", UninformativeMapWarning, stacklevel=1)


@pytest.fixture
def lite0_given(lite0, lite0_coffee, tmp_path, monkeypatch):
    """The names the guide's snippets take as given (a model, its input, an image and its
    preprocessing, labels), for EfficientNet-Lite0 and the coffee photo; the working directory
    is a temporary folder, where the snippets save their maps."""
    from salvo import zoo

    monkeypatch.chdir(tmp_path)
    image = zoo.sample_image("coffee")
    return {"model": lite0, "x": lite0_coffee, "image": image, "images": [image],
            "preprocess": zoo.efficientnet_lite0_preprocess,
            "labels": [f"class {i}" for i in range(1000)]}


@pytest.mark.slow
def test_the_readme_snippet_runs(lite0_given, tmp_path):
    """The README's first example, as written (it builds EfficientNet-Lite0 itself)."""
    exec(compile(_snippet("README.md"), "README.md", "exec"), {})  # noqa: S102
    names = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert sum(n.startswith("reciprocam_") for n in names) == 1
    assert sum(n.startswith("rise_") for n in names) == 1000


@pytest.mark.slow
def test_the_index_snippet_runs(lite0_given, tmp_path, capsys):
    exec(compile(_snippet("index.md"), "index.md", "exec"), dict(lite0_given))  # noqa: S102
    assert [p.name.startswith("rise_") for p in (tmp_path / "maps").iterdir()] == [True]
    assert capsys.readouterr().out.split("\n") == ["[967]", ""]


@pytest.mark.slow
def test_the_methods_snippet_runs(lite0_given):
    namespace = dict(lite0_given)
    exec(compile(_snippet("methods.md"), "methods.md", "exec"), namespace)  # noqa: S102
    explanation = namespace["explanation"]
    assert list(explanation.targets) == [967, 968]
    assert namespace["explainer"].method.__class__.__name__ == "ReciproCAM"


# ---------------------------------------------------------------------- commands in the documents


def _commands_in(path: Path) -> list[tuple[int, list[str]]]:
    """``(line, argv)`` of the commands in a document's shell blocks: continuation lines
    joined, comments dropped; in a block whose lines start with ``$ `` only those lines."""
    found = []
    for line, _, code in _blocks(path, ("bash", "console")):  # plain blocks: usage synopses
        lines = code.replace("\\\n", " ").splitlines()
        prompted = any(x.startswith("$ ") for x in lines)
        for text in lines:
            if prompted and not text.startswith("$ "):
                continue
            text = text.removeprefix("$ ").split("  #")[0].strip()
            if text:
                found.append((line, shlex.split(text)))
    return found


SALVO_COMMANDS = [(path, line, argv[1:]) for path in DOCUMENTS
                  for line, argv in _commands_in(path)
                  if argv[0] == "salvo" and not any(a.isupper() and a.isalpha() or
                                                    a.endswith("...") for a in argv)]
SCRIPT_COMMANDS = [(path, line, argv[1], argv[2:]) for path in DOCUMENTS
                   for line, argv in _commands_in(path)
                   if argv[:1] == ["python"] and argv[1:2] and argv[1].startswith("benchmarks/")]


def test_the_documents_have_commands_to_check():
    assert len(SALVO_COMMANDS) >= 4 and len(SCRIPT_COMMANDS) >= 6


@pytest.mark.parametrize(("path", "line", "argv"), SALVO_COMMANDS, ids=_ids)
def test_every_salvo_command_parses(path, line, argv):
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{path.name}:{line}: salvo {' '.join(argv)} does not parse ({exc})")


class _Parsed(Exception):
    pass


def _script(path: Path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_salvo_bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def _parse_only(module, argv: list[str], monkeypatch):
    """Run a script's ``main`` up to its parsed arguments (``finish_args`` raises them)."""
    import _common

    def stop(args):
        raise _Parsed(args)

    monkeypatch.setattr(_common, "finish_args", stop)
    if hasattr(module, "finish_args"):
        monkeypatch.setattr(module, "finish_args", stop)
    with pytest.raises(_Parsed) as parsed:
        module.main(argv)
    return parsed.value.args[0]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_script_has_a_working_help(path, monkeypatch, capsys):
    """Each script imports, its ``--help`` exits 0 and offers ``--quick`` and ``--out``, and its
    defaults parse (running it is a benchmark, minutes long, not a test)."""
    module = _script(path, monkeypatch)
    with pytest.raises(SystemExit) as exited:
        module.main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--quick" in text and "--out" in text
    assert _parse_only(module, [], monkeypatch).quick is False


@pytest.mark.parametrize(("path", "line", "script", "argv"), SCRIPT_COMMANDS, ids=_ids)
def test_every_benchmark_command_in_the_documents_parses(path, line, script, argv, monkeypatch,
                                                         capsys):
    assert (REPO / script).is_file(), f"{path.name}:{line}: no {script}"
    module = _script(REPO / script, monkeypatch)
    argv = ["HEAD" if a == "REV" else a for a in argv]
    try:
        _parse_only(module, argv, monkeypatch)
    except SystemExit:
        pytest.fail(f"{path.name}:{line}: {script} {' '.join(argv)} does not parse: "
                    f"{capsys.readouterr().err.strip()}")


def test_an_unknown_benchmark_option_is_reported(monkeypatch, capsys):
    """Negative control: a script's parser rejects an option it does not have."""
    module = _script(BENCHMARKS / "bench_blackbox.py", monkeypatch)
    with pytest.raises(SystemExit):
        _parse_only(module, ["--paired", "5"], monkeypatch)
    assert "--paired" in capsys.readouterr().err


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


def _development_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Development"):]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "README's Development section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_development_commands():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    setup = ("#", "set ", "cd ", "export ")
    commands = [line for line in ci if line.strip() and not line.startswith(setup)]
    assert commands == _development_block()
    assert "apt-get install -y chromium chromium-driver" in commands, "the browser tests need it"
