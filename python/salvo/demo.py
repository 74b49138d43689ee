"""Deprecated: ``salvo.demo`` moved to :mod:`salvo.cli.demo`.

This module re-exports :func:`~salvo.cli.demo.run_demo` and :class:`~salvo.cli.demo.DemoFiles`
for one release and warns on import.
"""

from __future__ import annotations

import warnings

from salvo.cli.demo import DemoFiles, run_demo

warnings.warn("salvo.demo is deprecated: use salvo.cli.demo (run_demo, DemoFiles); salvo.demo "
              "goes in the next release", DeprecationWarning, stacklevel=2)

__all__ = ["DemoFiles", "run_demo"]
