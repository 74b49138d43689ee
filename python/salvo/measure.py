"""Measuring helpers for ``salvo bench`` and the scripts in ``benchmarks/``.

* :func:`loadavg`, :func:`peak_rss_mb`, :func:`reset_peak_rss`: the machine's load and this
  process's peak memory (Linux ``/proc``; ``ru_maxrss`` elsewhere).
* :func:`items_per_second`: repeat a step for at least some seconds.
* :class:`PlainQueue`: plain OpenVINO at its best (THROUGHPUT hint, an ``AsyncInferQueue`` kept
  busy over ready-made inputs): the inference bound other timings are compared with.
* :func:`measure_inference`: a device's synchronous, bound and engine throughput.

Nothing here asserts a time; callers report what they measure.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import openvino as ov

from salvo.inference import InferenceEngine, get_core

__all__ = [
    "PlainQueue",
    "compile_config",
    "items_per_second",
    "loadavg",
    "measure_inference",
    "peak_rss_mb",
    "reset_peak_rss",
]


def loadavg() -> list[float] | None:
    """``/proc/loadavg``'s three averages, or ``None`` where there is none."""
    try:
        with open("/proc/loadavg") as fh:
            return [float(v) for v in fh.read().split()[:3]]
    except OSError:
        return None


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process (MB): ``VmHWM`` or ``ru_maxrss``."""
    try:
        with open(f"/proc/{os.getpid()}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource  # not on Windows

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
    except (ImportError, OSError):
        return None


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` (Linux: write 5 to ``/proc/self/clear_refs``); whether it worked."""
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def items_per_second(step: Callable[[], int], seconds: float) -> float:
    """Call ``step()`` (returns items done) for at least ``seconds``; items per second."""
    done, t0 = 0, time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def compile_config(hint: str, precision: str | None) -> dict[str, str]:
    """OpenVINO compile properties: ``PERFORMANCE_HINT`` ``hint`` (``"LATENCY"`` or
    ``"THROUGHPUT"``) and, when ``precision`` is given, ``INFERENCE_PRECISION_HINT``."""
    config = {"PERFORMANCE_HINT": hint}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


def _batched(model: Any, batch: int) -> Any:
    """A clone of ``model`` whose (static) input shape has batch ``batch``."""
    clone = model.clone()
    shape = list(clone.inputs[0].get_partial_shape().to_shape())
    shape[0] = batch
    clone.reshape({clone.inputs[0]: ov.PartialShape(shape)})
    return clone


class PlainQueue:
    """Plain OpenVINO at its best: ``model`` compiled with the THROUGHPUT hint at ``batch``, an
    ``AsyncInferQueue`` of ``requests`` over ready-made inputs ``x`` (repeated to the batch), kept
    alive so it can be re-measured next to other timed work without recompiling.
    ``requests=None``: the device's optimal number."""

    def __init__(self, model: Any, x: np.ndarray, device: str = "CPU", *, batch: int = 1,
                 requests: int | None = None, precision: str | None = None) -> None:
        self.compiled = get_core().compile_model(_batched(model, batch), device,
                                                 compile_config("THROUGHPUT", precision))
        if requests is None:
            requests = max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.batch, self.requests = batch, int(requests)
        self.queue = ov.AsyncInferQueue(self.compiled, self.requests)
        data = np.repeat(np.asarray(x)[:1], batch, axis=0)
        for i in range(self.requests):
            self.queue[i].get_input_tensor(0).data[:] = data
        self.measure_items(2 * self.requests * batch)  # warm-up

    def measure_items(self, n: int) -> float:
        """Images per second over ``n`` images. ``start_async`` waits for an idle request, so
        every request stays busy until the end (a start-N-then-wait-all loop leaves gaps)."""
        done, t0 = 0, time.perf_counter()
        while done < n:
            self.queue.start_async()
            done += self.batch
        self.queue.wait_all()
        return done / (time.perf_counter() - t0)

    def measure(self, seconds: float) -> float:
        """Images per second over at least ``seconds``, every request kept busy."""
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            self.queue.start_async()
            done += self.batch
        self.queue.wait_all()
        return done / (time.perf_counter() - t0)


def measure_inference(model: Any, x: np.ndarray, device: str, precision: str | None, *,
                      seconds: float, repeats: int, batches: Sequence[int],
                      verbose: bool = True) -> dict[str, Any]:
    """Plain inference throughput on ``device``, images/s.

    Returns ``{"sync": …, "bound": …, "bound_config": {batch, requests}, "engine": …,
    "engine_config": …, "sweep": [...], "compile_s": …}``. ``sync``: one synchronous
    ``infer`` per image (LATENCY hint). ``bound``: plain ``AsyncInferQueue`` over ready-made
    inputs, THROUGHPUT hint, best of the batch × requests sweep, then re-measured ``repeats``
    times (median). ``engine``: salvo's :class:`~salvo.inference.InferenceEngine` at its
    defaults.
    """
    core = get_core()
    t0 = time.perf_counter()
    compiled = core.compile_model(model, device, compile_config("LATENCY", precision))
    compile_s = time.perf_counter() - t0
    request = compiled.create_infer_request()
    for _ in range(3):
        request.infer({0: x})

    def sync_step() -> int:
        request.infer({0: x})
        return 1

    sync = statistics.median(items_per_second(sync_step, seconds) for _ in range(repeats))
    if verbose:
        print(f"  {device}: sync {sync:8.1f} img/s", file=sys.stderr)

    def bound_one(batch: int, requests: int | None) -> tuple[float, int]:
        plain = PlainQueue(model, x, device, batch=batch, requests=requests,
                           precision=precision)
        return plain.measure(seconds), plain.requests

    sweep: list[dict[str, Any]] = []
    for batch in batches:
        for requests in (None, "x2"):
            try:
                if requests == "x2":
                    if not sweep or sweep[-1].get("batch") != batch:
                        continue
                    ips, n = bound_one(batch, 2 * sweep[-1]["requests"])
                else:
                    ips, n = bound_one(batch, None)
            except Exception as exc:  # a model that cannot take this batch
                sweep.append({"batch": batch, "error": str(exc).splitlines()[0][:200]})
                break
            sweep.append({"batch": batch, "requests": n, "ips": ips})
            if verbose:
                print(f"  {device}: bound batch {batch:2d} requests {n:2d} {ips:8.1f} img/s",
                      file=sys.stderr)
    good = [s for s in sweep if "ips" in s]
    best = max(good, key=lambda s: s["ips"])
    bound = statistics.median(
        [best["ips"]] + [bound_one(best["batch"], best["requests"])[0]
                         for _ in range(max(0, repeats - 1))]
    )

    engine = InferenceEngine(model, device, precision=precision)
    batch = engine.batch_size
    items = 4 * batch * engine.num_requests

    def fill(out: np.ndarray, start: int, stop: int) -> None:
        out[: stop - start] = x[0]

    def engine_step() -> int:
        return engine.run(items, fill, lambda s, e, o: None)

    engine_step()
    engine_ips = statistics.median(items_per_second(engine_step, seconds) for _ in range(repeats))
    if verbose:
        print(f"  {device}: bound {bound:8.1f} img/s (batch {best['batch']}, "
              f"{best['requests']} requests); engine {engine_ips:8.1f} img/s", file=sys.stderr)
    return {"sync": sync, "bound": bound,
            "bound_config": {"batch": best["batch"], "requests": best["requests"]},
            "engine": engine_ips,
            "engine_config": {"batch": engine.batch_size, "requests": engine.num_requests},
            "sweep": sweep, "compile_s": compile_s}
