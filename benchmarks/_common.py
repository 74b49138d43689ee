"""Shared measuring code for the benchmarks: the plain-OpenVINO inference bound and timing."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable

import numpy as np
import openvino as ov

from salvo.inference import get_core
from salvo.zoo import efficientnet_lite0


def lite0_at(size: int, batch: int = 1) -> ov.Model:
    """The zoo's EfficientNet-Lite0 reshaped to (batch, 3, size, size)."""
    model = efficientnet_lite0().clone()
    model.reshape({model.inputs[0]: ov.PartialShape([batch, 3, size, size])})
    return model


def timed(fn: Callable[[], int], min_seconds: float) -> float:
    """Run ``fn()`` (returns items done) until ``min_seconds`` passed; items per second."""
    done, t0 = 0, time.perf_counter()
    while True:
        done += fn()
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return done / dt


def bound_one(model: ov.Model, batch: int, requests: int, precision: str | None,
              seconds: float, device: str = "CPU") -> float:
    """Plain OpenVINO: an AsyncInferQueue loop over ready-made inputs; images/s."""
    model = model.clone()
    shape = list(model.inputs[0].get_partial_shape().to_shape())
    shape[0] = batch
    model.reshape({model.inputs[0]: ov.PartialShape(shape)})
    config = {"PERFORMANCE_HINT": "THROUGHPUT"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = get_core().compile_model(model, device, config)
    queue = ov.AsyncInferQueue(compiled, requests)
    dtype = compiled.inputs[0].get_element_type().to_dtype()
    x = (np.random.default_rng(0).random(shape) * 100).astype(dtype)
    for i in range(requests):
        queue[i].get_input_tensor(0).data[:] = x

    # keep every request busy: start_async waits for an idle request, so the queue never drains
    # until the measurement ends (a start-N-then-wait-all loop leaves gaps and understates it)
    for _ in range(requests * 2):
        queue.start_async()
    queue.wait_all()  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        queue.start_async()
        done += batch
    queue.wait_all()
    return done / (time.perf_counter() - t0)


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


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB), from /proc or resource."""
    try:
        with open(f"/proc/{os.getpid()}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Current resident set size (MB)."""
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Reset VmHWM (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
