"""The parameter tables of the user guide, generated from the code.

Each table sits in a Markdown page between ``<!-- table: NAME -->`` and ``<!-- end table -->``;
this script rewrites what is between them from the parameter dataclass ``NAME`` (its fields,
defaults and the ``Attributes`` section of its docstring) and, when the class has presets, one
column per preset.

    python docs/tables.py           # rewrite the tables in docs/*.md
    python docs/tables.py --check   # exit 1 if a table differs from the code

``tests/unit/test_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
BLOCK = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- end table -->)", re.DOTALL)


def _classes() -> dict[str, tuple[type, Mapping[Any, Any] | None]]:
    """Table name -> (parameter dataclass, its presets or None)."""
    from salvo.inference import EngineConfig
    from salvo.methods.black_box.aise import (
        AISE_CLASSIFICATION_PRESETS,
        AISE_DETECTION_PRESETS,
        AISEClassificationParams,
        AISEDetectionParams,
    )
    from salvo.methods.black_box.rise import RISE_PRESETS, RISEParams
    from salvo.methods.white_box.det_class_probability_map import DetClassProbabilityMapParams
    from salvo.methods.white_box.recipro_cam import ViTReciproCAMParams

    return {
        "RISEParams": (RISEParams, RISE_PRESETS),
        "AISEClassificationParams": (AISEClassificationParams, AISE_CLASSIFICATION_PRESETS),
        "AISEDetectionParams": (AISEDetectionParams, AISE_DETECTION_PRESETS),
        "ViTReciproCAMParams": (ViTReciproCAMParams, None),
        "DetClassProbabilityMapParams": (DetClassProbabilityMapParams, None),
        "EngineConfig": (EngineConfig, None),
    }


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` from the ``Attributes`` section of a numpydoc docstring."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^Attributes\n-+\n(.*?)(?:\n\n[A-Z][a-z]+\n-+\n|\Z)", doc,
                      re.DOTALL | re.MULTILINE)
    if not match:
        return {}
    out: dict[str, str] = {}
    name = None
    for line in match.group(1).splitlines():
        if line and not line.startswith(" "):
            name = line.split(":")[0].strip()
            out[name] = ""
        elif name is not None and line.strip():
            out[name] = (out[name] + " " + line.strip()).strip()
    return out


def _value(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v)


def _markdown(text: str) -> str:
    """reStructuredText of a docstring as Markdown: ````x```` and ``:role:`~a.b.C``` become
    code; ``|`` is escaped (it would end the table cell)."""
    text = re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1)}`", text)
    return text.replace("``", "`").replace("|", "\\|")


def table(cls: type, presets: Mapping[Any, Any] | None) -> str:
    """The Markdown table of ``cls``'s fields."""
    docs = attribute_docs(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    head = ["field", "default"]
    if presets:
        head += [f"`{p.value}` preset" for p in presets]
    head.append("meaning")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in fields:
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        row = [f"`{f.name}`", f"`{_value(default)}`"]
        if presets:
            row += [f"`{_value(getattr(p, f.name))}`" for p in presets.values()]
        row.append(_markdown(docs.get(f.name, "")))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def render(text: str, make: Callable[[str], str]) -> str:
    """``text`` with every table block rewritten by ``make(name)``."""
    return BLOCK.sub(lambda m: m.group(1) + make(m.group(2)) + m.group(4), text)


def pages() -> dict[Path, tuple[str, str]]:
    """``{page: (current text, text with the tables regenerated)}`` of every page with a table."""
    classes = _classes()

    def make(name: str) -> str:
        if name not in classes:
            raise KeyError(f"no parameter class named {name!r} (known: {sorted(classes)})")
        return table(*classes[name])

    out = {}
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        if BLOCK.search(text):
            out[page] = (text, render(text, make))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 on a difference")
    args = p.parse_args(argv)
    stale = []
    for page, (old, new) in pages().items():
        if old != new:
            stale.append(page.name)
            if not args.check:
                page.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"tables out of date in {', '.join(stale)}: run python docs/tables.py",
              file=sys.stderr)
        return 1
    print(("rewrote " if stale else "up to date: ") + ", ".join(stale or ["all tables"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
