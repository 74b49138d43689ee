"""The ``salvo`` command line: ``salvo explain | bench | demo | info``.

``salvo explain`` explains files, folders and globs of images in bulk (the work of several images
is packed into the engine's batches), skips what an earlier run already wrote, keeps going past
bad images and records everything in ``manifest.json``. ``salvo bench`` measures inference and
explanation speed per device and method.

Errors are one line, ``salvo: error: …``; ``--debug`` shows the traceback.

Modules: :mod:`~salvo.cli.parser` (the options and help texts), one per command
(:mod:`~salvo.cli.explain`, :mod:`~salvo.cli.bench`, :mod:`~salvo.cli.demo`,
:mod:`~salvo.cli.info`), and what they use: :mod:`~salvo.cli.inputs` (images and output
names), :mod:`~salvo.cli.models` (``MODEL``, ``--labels``, ``--targets``, scores and detection
outputs), :mod:`~salvo.cli.manifest` (``manifest.json``, its journal, the fingerprint),
:mod:`~salvo.cli.shared`, :mod:`~salvo.cli.bench_report`, :mod:`~salvo.cli.reference`. The
preprocessing (``--preprocess``, image reading) is :mod:`salvo.preprocess`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from salvo.cli.bench import run_bench
from salvo.cli.demo import run_demo_command
from salvo.cli.explain import run_explain
from salvo.cli.info import run_info
from salvo.cli.parser import build_parser
from salvo.errors import UsageError

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

def explain_command(args: argparse.Namespace) -> int:
    """``salvo explain``: in this process, or with ``--ray`` on a Ray cluster
    (:mod:`salvo.distributed`, imported only then)."""
    if getattr(args, "ray", None) is not None:
        from salvo.distributed.command import run_ray_explain

        return run_ray_explain(args)
    return run_explain(args)


#: Command name → the function running it (returns the exit status).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "explain": explain_command,
    "bench": run_bench,
    "demo": run_demo_command,
    "info": run_info,
}


def _one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (at most 500 characters)."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"{type(exc).__name__}: {text}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 else " ".join(lines)[:500]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 error or failed images, 2 usage)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.debug:
        logging.basicConfig(level=logging.DEBUG)
    else:
        logging.basicConfig(level=logging.WARNING, format="salvo: %(levelname)s: %(message)s")
    show = warnings.showwarning

    def one_line_warning(message: Any, category: Any, *rest: Any, **kw: Any) -> None:
        print(f"salvo: warning: {message}", file=sys.stderr)

    if not args.debug:
        warnings.showwarning = one_line_warning
    try:
        return int(COMMANDS[args.command](args) or 0)
    except KeyboardInterrupt:
        print("salvo: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"salvo: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    finally:
        warnings.showwarning = show


# ------------------------------------------------------------------ salvo 0.1's names

#: Public names of salvo 0.1's single-module ``salvo.cli`` → (module, name) they moved to.
#: They still resolve, with a DeprecationWarning naming the new place, for one release.
_MOVED: dict[str, tuple[str, str]] = {
    **{name: ("salvo.preprocess", name) for name in (
        "DEFAULT_MAX_PIXELS", "PREPROCESS_PRESETS", "ModelInput", "Preprocess",
        "apply_preprocess", "describe_preprocess", "parse_preprocess", "prepare_model",
        "read_image", "shrink_to")},
    **{name: ("salvo.cli.models", name) for name in (
        "ZOO_LABELS", "ZOO_MODELS", "DetectionOutputs", "ScoresOutput", "ZooModel",
        "load_labels", "load_model", "parse_targets")},
    **{name: ("salvo.cli.inputs", name) for name in (
        "IMAGE_SUFFIXES", "ImageTask", "Inputs", "expand_inputs", "output_place")},
    **{name: ("salvo.cli.manifest", name) for name in (
        "JOURNAL", "LOCK", "MANIFEST", "MANIFEST_VERSION", "Manifest")},
    **{name: ("salvo.cli.parser", name) for name in (
        "BENCH_EPILOG", "DEFAULT_MAX_SIZE", "EXPLAIN_EPILOG")},
    "check_writable_folder": ("salvo.cli.shared", "check_writable_folder"),
    "draw_detection": ("salvo.cli.detection", "draw_detection"),
    "write_atomic": ("salvo.files", "atomic_write"),
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'salvo.cli' has no attribute {name!r}")
    module, new = _MOVED[name]
    warnings.warn(f"salvo.cli.{name} is deprecated; use {module}.{new} (the old name goes in "
                  "the next release)", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), new)
