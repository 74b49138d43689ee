"""``salvo info``: versions, native kernels, SIMD level and OpenVINO devices."""

from __future__ import annotations

import argparse
import json

from salvo._info import build_info

__all__ = ["run_info"]


def run_info(args: argparse.Namespace) -> int:
    """Print :func:`salvo.build_info` as aligned ``key  value`` lines, or as JSON with
    ``--json``. Returns 0."""
    info = build_info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0
