"""The reports of ``salvo bench``: the terminal table, ``bench.md`` and ``bench.png``."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from salvo.files import atomic_write

__all__ = ["HEADERS", "fmt", "format_markdown", "format_table", "write_chart"]

logger = logging.getLogger(__name__)


def fmt(value: Any, spec: str = ".3g") -> str:
    """``value`` formatted with ``spec`` (floats), as ``str`` (others), ``"-"`` for ``None``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _label(row: dict[str, Any]) -> str:
    name = row["method"] + (f"/{row['preset']}" if row.get("preset") else "")
    masks = (row.get("kwargs") or {}).get("num_masks")
    return f"{name} ({masks} masks)" if masks else name


def _rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for device, d in results["devices"].items():
        for r in d.get("methods", []):
            name = _label(r)
            if "error" in r:
                rows.append([device, name, "-", "-", "-", "-", "-", r["error"][:60]])
                continue
            ref = r.get("reference") or {}
            parts = []
            for run in ref.get("runs", []):
                wall = run.get("extrapolated_s", run["wall_s"])
                tag = f"{run['precision']}{' default' if run['default'] else ''}"
                parts.append(f"{tag} {wall:.3g} s ({wall / r['wall_s']:.1f}x)")
            ref_text = "; ".join(parts) or ("-" if "error" not in ref else "error")
            rows.append([device, name, f"{r['wall_s']:.3g}", str(r["inferences"]),
                         f"{r['x_bound']:.2f}", fmt(r.get("peak_rss_mb"), ".0f"),
                         f"{r['compile_s']:.2f}", ref_text])
        if not d.get("methods") and "error" in d:
            rows.append([device, "-", "-", "-", "-", "-", "-", d["error"][:60]])
    return rows


#: Columns of the per-method table.
HEADERS = ["device", "method", "s/explanation", "inferences", "x bound", "peak MB", "compile s",
           "reference"]


def format_table(results: dict[str, Any]) -> str:
    """The terminal table: inference throughput per device, then one row per method."""
    lines = []
    inf_rows = [[dev, f"{d['inference']['sync']:.1f}", f"{d['inference']['bound']:.1f}",
                 (f"b{d['inference']['bound_config']['batch']}"
                  f"r{d['inference']['bound_config']['requests']}"),
                 f"{d['inference']['engine']:.1f}"]
                for dev, d in results["devices"].items() if "inference" in d]
    if inf_rows:
        lines += _grid(["device", "sync img/s", "bound img/s", "bound cfg", "engine img/s"],
                       inf_rows)
        lines.append("")
    lines += _grid(HEADERS, _rows(results))
    return "\n".join(lines)


def _grid(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return out


def format_markdown(results: dict[str, Any], png: str | None) -> str:
    h = results["header"]
    lines = [f"# salvo bench — {h['model']}", "",
             (f"{h['when']}; salvo {h['versions']['salvo']}, OpenVINO "
              f"{h['versions']['openvino']}; precision {h['precision']}; repeats {h['repeats']}; "
              f"targets {h['targets']}; load average before {h['loadavg_start']}, after "
              f"{h.get('loadavg_end')}."), "",
             "## Inference (plain OpenVINO unless noted)", "",
             "| device | sync img/s | bound img/s | bound config | salvo engine img/s |",
             "|---|---|---|---|---|"]
    for dev, d in results["devices"].items():
        if "inference" not in d:
            continue
        i = d["inference"]
        lines.append(f"| {dev} ({d.get('name', dev)}) | {i['sync']:.1f} | {i['bound']:.1f} | "
                     f"batch {i['bound_config']['batch']}, {i['bound_config']['requests']} "
                     f"requests | {i['engine']:.1f} |")
    lines += ["", "## Explanations", "",
              "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(results)]
    lines += ["", ("`x bound` = wall time / (inferences / bound) for black-box methods, wall "
                   "time / one sync inference for white-box ones (1.0 = the device's limit). "
                   "Wall times are medians after one warm-up call; compilation is timed apart.")]
    if any(r.get("reference") for d in results["devices"].values()
           for r in d.get("methods", [])):
        lines += ["", ("Reference: openvino-xai 1.1 at its defaults (device-default precision, "
                       "latency hint) and at salvo's precision (its model recompiled with that "
                       "hint only); RISE timed on fewer masks and extrapolated per mask. "
                       "(Nx) = reference time / salvo time.")]
    if png:
        lines += ["", f"![chart]({png})"]
    return "\n".join(lines) + "\n"


def write_chart(results: dict[str, Any], path: Path) -> bool:
    """Bars of seconds per explanation per device × method (log scale); False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no chart")
        return False
    labels, values, refs = [], [], []
    for dev, d in results["devices"].items():
        for r in d.get("methods", []):
            if "wall_s" not in r:
                continue
            labels.append(f"{dev}\n{_label(r)}")
            values.append(r["wall_s"])
            runs = (r.get("reference") or {}).get("runs", [])
            run = runs[-1] if runs else {}  # equal precision when measured
            refs.append(run.get("extrapolated_s", run.get("wall_s")))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(labels) + 1.5), 3.6), dpi=110)
    pos = np.arange(len(labels))
    width = 0.38 if any(v is not None for v in refs) else 0.6
    ax.bar(pos, values, width, label="salvo", color="#2f6db3")
    for p, v in zip(pos, values):
        ax.annotate(f"{v:.3g}s", (p, v), ha="center", va="bottom", fontsize=7)
    if any(v is not None for v in refs):
        ref_vals = [np.nan if v is None else v for v in refs]
        ax.bar(pos + width, ref_vals, width, label="reference (openvino-xai 1.1, same precision)",
               color="#c0504d")
        ax.legend(fontsize=7)
        ax.set_xticks(pos + width / 2)
    else:
        ax.set_xticks(pos)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per explanation")
    ax.set_title(f"salvo bench: {results['header']['model']}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return True
