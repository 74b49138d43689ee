"""Deprecated: ``salvo.bench`` moved. The ``salvo bench`` command is :mod:`salvo.cli.bench`
(its reports :mod:`salvo.cli.bench_report`, the reference toolkit :mod:`salvo.cli.reference`);
the measuring helpers the benchmark scripts use are :mod:`salvo.measure`.

This module re-exports salvo 0.1's names from there for one release and warns on import.
"""

from __future__ import annotations

import warnings

from salvo.cli.bench import run_bench, time_method
from salvo.cli.bench_report import format_markdown, format_table, write_chart
from salvo.cli.reference import load_reference, time_reference
from salvo.measure import (
    PlainQueue,
    items_per_second,
    loadavg,
    measure_inference,
    peak_rss_mb,
    reset_peak_rss,
)

warnings.warn("salvo.bench is deprecated: use salvo.measure (PlainQueue, peak_rss_mb, "
              "measure_inference, …) or salvo.cli.bench (run_bench, time_method); salvo.bench "
              "goes in the next release", DeprecationWarning, stacklevel=2)

__all__ = [
    "PlainQueue",
    "format_markdown",
    "format_table",
    "items_per_second",
    "load_reference",
    "loadavg",
    "measure_inference",
    "peak_rss_mb",
    "reset_peak_rss",
    "run_bench",
    "time_method",
    "time_reference",
    "write_chart",
]
