"""Shared measuring code for the benchmarks: the plain-OpenVINO inference bound and timing."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable, Iterable

import numpy as np
import openvino as ov
from salvo.measure import PlainQueue, items_per_second, peak_rss_mb, reset_peak_rss
from salvo.metrics.adcc import correlation
from salvo.zoo import efficientnet_lite0

__all__ = [
    "PlainQueue",
    "bound_one",
    "current_rss_mb",
    "inference_bound",
    "lite0_at",
    "loadavg",
    "peak_rss_mb",
    "pearson",
    "reset_peak_rss",
    "run_script",
    "timed",
]


def lite0_at(size: int, batch: int = 1) -> ov.Model:
    """The zoo's EfficientNet-Lite0 reshaped to (batch, 3, size, size)."""
    model = efficientnet_lite0().clone()
    model.reshape({model.inputs[0]: ov.PartialShape([batch, 3, size, size])})
    return model


def timed(fn: Callable[[], int], min_seconds: float) -> float:
    """Run ``fn()`` (returns items done) until ``min_seconds`` passed; items per second."""
    return items_per_second(fn, min_seconds)


def bound_one(model: ov.Model, batch: int, requests: int, precision: str | None,
              seconds: float, device: str = "CPU") -> float:
    """Plain OpenVINO: an AsyncInferQueue loop over ready-made inputs, every request kept
    busy; images/s."""
    shape = list(model.inputs[0].get_partial_shape().to_shape())
    x = (np.random.default_rng(0).random([1, *shape[1:]]) * 100).astype(
        model.inputs[0].get_element_type().to_dtype())
    plain = PlainQueue(model, x, device, batch=batch, requests=requests, precision=precision)
    return plain.measure(seconds)


def inference_bound(model: ov.Model, *, batches: Iterable[int], requests: Iterable[int],
                    precisions: Iterable[str | None], seconds: float, repeats: int,
                    device: str = "CPU", verbose: bool = True) -> dict:
    """Sweep batch x requests x precision; re-measure the best with repeats (median)."""
    sweep = []
    for precision in precisions:
        for batch in batches:
            for req in requests:
                ips = bound_one(model, batch, req, precision, seconds, device)
                sweep.append({"batch": batch, "requests": req,
                              "precision": precision or "default", "ips": ips})
                if verbose:
                    print(f"  bound: batch {batch:2d} req {req} {precision or 'default':7s} "
                          f"{ips:7.1f} img/s", file=sys.stderr)
    best = max(sweep, key=lambda r: r["ips"])
    prec = None if best["precision"] == "default" else best["precision"]
    ips = statistics.median(
        bound_one(model, best["batch"], best["requests"], prec, seconds, device)
        for _ in range(repeats)
    )
    return {"ips": ips, "config": best, "sweep": sweep}


def current_rss_mb() -> float:
    """Current resident set size (MB)."""
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (:func:`salvo.metrics.adcc.correlation`: flattened,
    float64, clipped to [-1, 1]); NaN if either is constant."""
    r = correlation(a, b)
    return float("nan") if r is None else r


def run_script(script: str | os.PathLike[str], args: list[str], timeout: float = 900) -> dict:
    """Run ``script args`` in a fresh Python process with this process's salvo and the
    benchmarks folder on its path; return the last JSON line it printed (a fresh process is how
    the benchmarks measure peak memory)."""
    import json
    import subprocess
    from pathlib import Path

    import salvo

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(salvo.__file__).resolve().parent.parent), str(Path(__file__).resolve().parent),
         env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(script).name} {args} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1])


def loadavg() -> str:
    """The machine's load averages (1, 5, 15 min) as text, for the reports."""
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"
