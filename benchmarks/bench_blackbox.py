"""Black-box RISE against the inference bound and the reference toolkit (issue 4, Benchmark).

On EfficientNet-Lite0 at 224x224 and 128x128, the coffee photo, target 967 (espresso) or all
1000 classes, at the SPEED / BALANCE / QUALITY presets, side by side in one run:

* **salvo vs the inference bound.** salvo's wall time for one ``Explainer`` call (after the
  Explainer is built and one warm-up call; compile time reported apart) against
  ``num_inferences / best plain-OpenVINO throughput`` (an ``AsyncInferQueue`` loop over ready-made
  inputs swept over batch x requests x precision, :func:`_common.inference_bound`, measured in this
  run). Because the machine is shared, plain OpenVINO at a fixed near-best configuration
  (batch 1, 4 requests, device-default precision: the *adjacent bound*) is also measured right
  before and after every timed run, for 1-3 s each; ``wall/adj.`` divides by it.
* **salvo vs the reference toolkit** (openvino-xai 1.1.0 driven through its own ``Explainer``) at
  equal num_masks, at the defaults of each (both bf16 on this CPU: the reference compiles with
  the device defaults, latency mode) and at equal precision f32 (the reference's compiled model
  is replaced by one compiled with ``{"INFERENCE_PRECISION_HINT": "f32"}``, nothing else
  changed). The reference is timed on a few hundred masks (one target) or a few dozen (all
  targets) and reported per mask; its results are cached in
  ``benchmarks/results/reference_blackbox.json`` (``--refresh-reference`` re-measures).
* **Peak RSS**: salvo at QUALITY with one target (added over the RSS after compile and one
  warm-up call) and with all 1000 targets (process total), each in a fresh subprocess; the same
  for the reference.
* **Map agreement** in plain mode at equal num_masks: Pearson correlation of salvo's map with the
  reference's, beside two reference runs (and two salvo runs) with different seeds.

Prints tables and writes JSON + Markdown. Timings are never asserted here.

    python benchmarks/bench_blackbox.py [--quick] [--sizes 224 128] [--refresh-reference]
    python benchmarks/bench_blackbox.py --paired 5   # interleaved A/B rounds (diagnostics)

``--designs ROUNDS`` times RISE with each mask design (``mask_design="balanced"``, the default,
and ``"iid"``) against the adjacent bound, interleaved in rounds (results/rise_designs_timing.*).

``--paired ROUNDS`` runs every variant (plain OpenVINO at two configurations, salvo with its
defaults / another engine configuration / NumPy's BLAS on one thread / f32 / all targets, and
the reference at both precisions) once per round, back to back, and reports ratios taken within
a round: on a shared machine these are the most trustworthy numbers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # the reference's per-mask progress bar

import numpy as np
import openvino as ov

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import salvo
from _common import (
    PlainQueue as _PlainQueue,
)
from _common import (
    current_rss_mb,
    inference_bound,
    lite0_at,
    loadavg,
    peak_rss_mb,
    pearson,
    reset_peak_rss,
    run_script,
)
from _reference import load_reference, reference_available
from salvo.kernels import rise_masks
from salvo.methods.black_box.rise import RISE, resolve_params
from salvo.zoo import efficientnet_lite0_preprocess, sample_image

RESULTS = HERE / "results"
REF_CACHE = RESULTS / "reference_blackbox.json"
REF_MAPS = RESULTS / "reference_maps"
PHOTO = "coffee"
TARGET = 967  # espresso
PRESETS = {"SPEED": (1000, 4), "BALANCE": (5000, 8), "QUALITY": (10000, 12)}
#: Seconds of adjacent-bound measurement before and after a run, per preset.
PROBE_SECONDS = {"SPEED": 1.0, "BALANCE": 2.0, "QUALITY": 3.0}
#: The adjacent bound / load probe: plain OpenVINO at a fixed configuration (device default
#: precision), the best or near the best of the sweeps seen on this machine at both sizes.
PROBE_CONFIG = {"batch": 1, "requests": 4, "precision": None}


def postprocess(outputs: Any) -> np.ndarray:
    """Logits ``(B, 1000)`` from the raw outputs."""
    return outputs[0]


# ----------------------------------------------------------------------------- plain OpenVINO
class PlainQueue(_PlainQueue):
    """Plain OpenVINO on Lite0 at ``size``, ``batch`` x ``requests``, kept alive so it can be
    re-measured next to each timed run without recompiling."""

    def __init__(self, size: int, batch: int, requests: int, precision: str | None) -> None:
        x = (np.random.default_rng(0).random((1, 3, size, size)) * 2 - 1).astype(np.float32)
        super().__init__(lite0_at(size), x, "CPU", batch=batch, requests=requests,
                         precision=precision)


class Probe:
    """Measures the fixed load probe before and after a timed block."""

    def __init__(self, size: int, seconds: float) -> None:
        c = PROBE_CONFIG
        self.plain = PlainQueue(size, c["batch"], c["requests"], c["precision"])
        self.seconds = seconds

    def around(self, fn: Callable[..., Any], *args: Any, probe_seconds: float | None = None,
               **kwargs: Any) -> tuple[Any, float, float]:
        """``(fn(*args, **kwargs), its wall seconds, mean probe ips before/after)``."""
        seconds = probe_seconds or self.seconds
        before = self.plain.measure(seconds)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        wall = time.perf_counter() - t0
        after = self.plain.measure(seconds)
        return out, wall, (before + after) / 2


# ----------------------------------------------------------------------------- salvo
@dataclass(frozen=True)
class Spec:
    """One measured salvo configuration."""

    precision: str | None  # None: the device default
    preset: str
    targets: str  # "one" (TARGET) or "all" (-1)
    estimator: str
    repeats: int
    vis: bool = False  # resize + colormap (the Explainer's defaults)
    engine: tuple[int, int] | None = None  # (batch_size, num_requests); None: salvo's defaults
    blas1: bool = False  # NumPy's BLAS limited to one thread during the call
    fresh_process: bool = False
    num_masks: int | None = None

    def engine_label(self) -> str:
        prec = self.precision or "default"
        return prec if self.engine is None else f"{prec} b{self.engine[0]} r{self.engine[1]}"

    def label(self) -> str:
        parts = [self.precision or "default", self.estimator]
        if self.vis:
            parts.append("+resize+colormap")
        if self.engine is not None:
            parts.append(f"engine b{self.engine[0]} r{self.engine[1]}")
        if self.blas1:
            parts.append("BLAS 1 thread")
        if self.fresh_process:
            parts.append("fresh process")
        return ", ".join(parts)


def _threadpoolctl() -> Any:
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


@contextmanager
def _blas_limit(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    with _threadpoolctl().threadpool_limits(limits=1, user_api="blas"):
        yield


def build_salvo(size: int, precision: str | None,
                engine: tuple[int, int] | None = None) -> tuple[Any, float, dict]:
    """An Explainer (RISE, black-box) on Lite0 at ``size``; compile seconds; engine facts."""
    model = lite0_at(size)
    knobs = {} if engine is None else {"batch_size": engine[0], "num_requests": engine[1]}
    t0 = time.perf_counter()
    explainer = salvo.Explainer(
        model, salvo.Task.CLASSIFICATION, postprocess_fn=postprocess,
        explain_mode=salvo.ExplainMode.BLACKBOX, explain_method=salvo.Method.RISE,
        inference_precision=precision, progress=False, **knobs,
    )
    compile_s = time.perf_counter() - t0
    facts: dict[str, Any] = {}
    try:  # private, for the report only
        engine = explainer.method.engine
        facts = {"batch_size": engine.batch_size, "num_requests": engine.num_requests,
                 "config": {k: str(v) for k, v in engine.config.items()}}
    except AttributeError:
        pass
    return explainer, compile_s, facts


def salvo_call(explainer: Any, x: np.ndarray, targets: int, preset: str, estimator: str,
               vis: bool = False, num_masks: int | None = None) -> Any:
    kwargs: dict[str, Any] = {"preset": salvo.Preset[preset], "estimator": estimator}
    if num_masks is not None:
        kwargs["num_masks"] = num_masks
    return explainer(x, targets=targets, resize=vis, colormap=vis, **kwargs)


# ----------------------------------------------------------------------------- reference
def build_reference(xai: Any, size: int, precision: str | None) -> tuple[Any, float]:
    """The reference's Explainer (RISE); ``precision="f32"`` recompiles its model in f32."""
    model = lite0_at(size)
    t0 = time.perf_counter()
    ref = xai.Explainer(
        model=model, task=xai.Task.CLASSIFICATION, postprocess_fn=postprocess,
        explain_mode=xai.explainer.ExplainMode.BLACKBOX, explain_method=xai.Method.RISE,
    )
    if precision:
        # same compile call as the reference's prepare_model, plus the precision hint only
        ref.method._model_compiled = ov.Core().compile_model(
            ref.method._model, "CPU", {"INFERENCE_PRECISION_HINT": precision}
        )
    compile_s = time.perf_counter() - t0
    return ref, compile_s


def ref_compiled_facts(ref: Any) -> dict:
    c = ref.method._model_compiled
    out = {}
    for key in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "NUM_STREAMS"):
        try:
            out[key] = str(c.get_property(key))
        except RuntimeError:  # a property this plugin does not report
            continue
    return out


def load_ref_cache() -> dict:
    if REF_CACHE.is_file():
        return json.loads(REF_CACHE.read_text())
    return {"entries": {}}


def save_ref_cache(cache: dict) -> None:
    REF_CACHE.parent.mkdir(parents=True, exist_ok=True)
    REF_CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True, default=str))


def measure_reference(xai: Any, size: int, x: np.ndarray, probe: Probe, cache: dict,
                      quick: bool, refresh: bool) -> None:
    """Per-mask reference timings at both precisions (cached)."""
    entries = cache["entries"]
    plan = []
    for precision in (None, "f32"):
        for cells in sorted({c for _, c in PRESETS.values()}):
            plan.append((precision, "one", cells, 60 if quick else 200))
        plan.append((precision, "all", 8, 6 if quick else 24))
    def stale(p: tuple) -> bool:
        entry = entries.get(_ref_key(size, *p[:3]))
        return (refresh or entry is None or (entry.get("quick") and not quick)
                or entry.get("probe_config") != PROBE_CONFIG)

    todo = [p for p in plan if stale(p)]
    if not todo:
        return
    by_prec: dict[str | None, list] = {}
    for p in todo:
        by_prec.setdefault(p[0], []).append(p)
    for precision, items in by_prec.items():
        ref, compile_s = build_reference(xai, size, precision)
        facts = ref_compiled_facts(ref)
        ref(x, targets=TARGET, num_masks=4, num_cells=8, resize=False, colormap=False)  # warm-up
        for _, which, cells, masks in items:
            targets = TARGET if which == "one" else -1
            _, wall, probe_ips = probe.around(
                ref, x, targets=targets, num_masks=masks, num_cells=cells, resize=False,
                colormap=False,
            )
            key = _ref_key(size, precision, which, cells)
            entries[key] = {
                "s_per_mask": wall / masks, "masks": masks, "wall_s": wall,
                "probe_ips": probe_ips, "probe_config": PROBE_CONFIG,
                "compile_s": compile_s, "compiled": facts,
                "loadavg": loadavg(), "quick": quick,
                "when": _dt.datetime.now().isoformat(timespec="seconds"),
                "openvino": ov.__version__,
            }
            print(f"  reference {key}: {wall / masks * 1e3:8.2f} ms/mask "
                  f"({masks} masks, probe {probe_ips:.0f} img/s)", file=sys.stderr)
            save_ref_cache(cache)
        del ref


def _ref_key(size: int, precision: str | None, which: str, cells: int) -> str:
    return f"{size}/{precision or 'default'}/{which}/c{cells}"


# ----------------------------------------------------------------------------- memory probes
def _probe_salvo_memory(size: int, num_masks: int, num_cells: int) -> dict:
    """Run in a fresh process: QUALITY one target (added RSS) then all targets (total RSS)."""
    x = efficientnet_lite0_preprocess(sample_image(PHOTO), size=size)
    explainer, compile_s, facts = build_salvo(size, None)
    kwargs = {"num_masks": num_masks, "num_cells": num_cells, "resize": False,
              "colormap": False}
    explainer(x, targets=TARGET, num_masks=64, num_cells=num_cells, resize=False,
              colormap=False)  # warm-up
    out: dict[str, Any] = {"engine": facts, "compile_s": compile_s, "num_masks": num_masks,
                           "num_cells": num_cells}
    out["rss_after_warmup_mb"] = base = current_rss_mb()
    out["peak_before_mb"] = peak0 = peak_rss_mb()
    reset_peak_rss()
    t0 = time.perf_counter()
    e = explainer(x, targets=TARGET, **kwargs)
    out["one_wall_s"] = time.perf_counter() - t0
    out["one_inferences"] = e.num_inferences
    out["one_peak_mb"] = peak_rss_mb()
    out["one_added_mb"] = out["one_peak_mb"] - base
    del e
    base_all = current_rss_mb()
    t0 = time.perf_counter()
    e = explainer(x, targets=-1, **kwargs)
    out["all_wall_s"] = time.perf_counter() - t0
    out["all_inferences"] = e.num_inferences
    out["all_added_mb"] = peak_rss_mb() - base_all
    out["all_total_peak_mb"] = max(peak0, peak_rss_mb())
    del e
    # all targets with the default visualisation (resize + colormap): memory only
    e = explainer(x, targets=-1, num_masks=min(num_masks, 1000), num_cells=num_cells)
    out["all_vis_total_peak_mb"] = max(peak0, peak_rss_mb())
    del e
    return out


def _probe_reference_memory(size: int) -> dict:
    """Run in a fresh process: the reference's RSS, one target then all targets."""
    x = efficientnet_lite0_preprocess(sample_image(PHOTO), size=size)
    xai = load_reference()
    ref, _ = build_reference(xai, size, None)
    ref(x, targets=TARGET, num_masks=4, num_cells=12, resize=False, colormap=False)
    out: dict[str, Any] = {}
    out["rss_after_warmup_mb"] = base = current_rss_mb()
    peak0 = peak_rss_mb()
    reset_peak_rss()
    ref(x, targets=TARGET, num_masks=100, num_cells=12, resize=False, colormap=False)
    out["one_added_mb"] = peak_rss_mb() - base
    out["one_masks"] = 100
    base_all = current_rss_mb()
    ref(x, targets=-1, num_masks=4, num_cells=12, resize=False, colormap=False)
    out["all_added_mb"] = peak_rss_mb() - base_all
    out["all_total_peak_mb"] = max(peak0, peak_rss_mb())
    out["all_masks"] = 4
    return out


def run_probe(args: list[str], timeout: float = 900) -> dict:
    return run_script(Path(__file__).resolve(), args, timeout)


# ----------------------------------------------------------------------------- agreement
def agreement(xai: Any | None, num_masks: int, cache: dict, refresh: bool) -> dict:
    """Plain mode, f32, 224, num_cells 8: salvo vs reference maps (Pearson)."""
    size, cells = 224, 8
    x = efficientnet_lite0_preprocess(sample_image(PHOTO), size=size)
    rise = RISE(lite0_at(size), postprocess, device_name="CPU", precision="f32", progress=False)
    salvo_maps = {}
    for seed in (0, 1):
        params = resolve_params(num_masks=num_masks, num_cells=cells, seed=seed,
                                estimator="plain", scale_output=False)
        salvo_maps[seed] = rise.run(x, [TARGET], params).maps[0]
    ref_maps = {}
    REF_MAPS.mkdir(parents=True, exist_ok=True)
    for seed in (0, 1):
        path = REF_MAPS / f"rise_{size}_c{cells}_n{num_masks}_seed{seed}_f32.npy"
        if path.is_file() and not refresh:
            ref_maps[seed] = np.load(path)
            continue
        if xai is None:
            continue
        ref, _ = build_reference(xai, size, "f32")
        t0 = time.perf_counter()
        m = ref.method.generate_saliency_map(
            x, target_indices=[TARGET], num_masks=num_masks, num_cells=cells, seed=seed,
            scale_output=False,
        )
        print(f"  reference map seed {seed}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        ref_maps[seed] = np.asarray(m[TARGET], np.float32)
        np.save(path, ref_maps[seed])
        cache.setdefault("maps", {})[path.name] = {
            "num_masks": num_masks, "num_cells": cells, "seed": seed, "precision": "f32",
            "when": _dt.datetime.now().isoformat(timespec="seconds"),
        }
        save_ref_cache(cache)
        del ref
    out: dict[str, Any] = {"num_masks": num_masks, "num_cells": cells, "size": size,
                           "precision": "f32", "estimator": "plain", "pearson": {}}
    p = out["pearson"]
    p["salvo0-salvo1"] = pearson(salvo_maps[0], salvo_maps[1])
    if len(ref_maps) == 2:
        p["ref0-ref1"] = pearson(ref_maps[0], ref_maps[1])
        for s in (0, 1):
            for r in (0, 1):
                p[f"salvo{s}-ref{r}"] = pearson(salvo_maps[s], ref_maps[r])
    return out


# ----------------------------------------------------------------------------- paired rounds
def paired(sizes: list[int], rounds: int, xai: Any | None) -> dict:
    """Interleaved rounds, one target, SPEED (1000 masks, num_cells 4): every variant once per
    round, so ratios within a round share the machine's load (median over rounds)."""
    n, cells = PRESETS["SPEED"]
    n_ref = 200
    out: dict[str, Any] = {"rounds": rounds, "num_masks": n, "num_cells": cells,
                           "reference_masks": n_ref, "sizes": {}}
    for size in sizes:
        x = efficientnet_lite0_preprocess(sample_image(PHOTO), size=size)
        variants: dict[str, Callable[[], float]] = {}

        def plain(q: PlainQueue) -> Callable[[], float]:
            def go() -> float:
                return n / q.measure_items(n)
            return go

        def with_salvo(ex: Any, targets: int, blas1: bool, x: np.ndarray = x
                       ) -> Callable[[], float]:
            def go() -> float:
                with _blas_limit(blas1):
                    t0 = time.perf_counter()
                    ex(x, targets=targets, num_masks=n, num_cells=cells, resize=False,
                       colormap=False)
                    return time.perf_counter() - t0
            return go

        def with_ref(ref: Any, x: np.ndarray = x) -> Callable[[], float]:
            def go() -> float:
                t0 = time.perf_counter()
                ref(x, targets=TARGET, num_masks=n_ref, num_cells=cells, resize=False,
                    colormap=False)
                return (time.perf_counter() - t0) * n / n_ref  # per 1000 masks
            return go

        variants["plain OV b1 r4 default"] = plain(PlainQueue(size, 1, 4, None))
        variants["plain OV b8 r3 default"] = plain(PlainQueue(size, 8, 3, None))
        variants["plain OV b1 r4 f32"] = plain(PlainQueue(size, 1, 4, "f32"))
        salvos = {}
        for label, prec, engine in (("default", None, None), ("b1 r4", None, (1, 4)),
                                    ("f32", "f32", None), ("f32 b1 r4", "f32", (1, 4))):
            ex, _, _ = build_salvo(size, prec, engine)
            ex(x, targets=TARGET, num_masks=64, num_cells=cells, resize=False, colormap=False)
            salvos[label] = ex
        variants["salvo default"] = with_salvo(salvos["default"], TARGET, False)
        variants["salvo default, BLAS 1 thread"] = with_salvo(salvos["default"], TARGET, True)
        variants["salvo engine b1 r4"] = with_salvo(salvos["b1 r4"], TARGET, False)
        variants["salvo engine b1 r4, BLAS 1 thread"] = with_salvo(salvos["b1 r4"], TARGET,
                                                                    True)
        variants["salvo f32"] = with_salvo(salvos["f32"], TARGET, False)
        variants["salvo f32 engine b1 r4, BLAS 1 thread"] = with_salvo(salvos["f32 b1 r4"],
                                                                        TARGET, True)
        variants["salvo default, all targets"] = with_salvo(salvos["default"], -1, False)
        variants["salvo default, all targets, BLAS 1 thread"] = with_salvo(
            salvos["default"], -1, True)
        variants["salvo engine b1 r4, all targets, BLAS 1 thread"] = with_salvo(
            salvos["b1 r4"], -1, True)
        if xai is not None:
            for label, prec in (("reference default", None), ("reference f32", "f32")):
                ref, _ = build_reference(xai, size, prec)
                ref(x, targets=TARGET, num_masks=4, num_cells=cells, resize=False,
                    colormap=False)
                variants[label] = with_ref(ref)
        times: dict[str, list[float]] = {k: [] for k in variants}
        loads = []
        for r in range(rounds):
            loads.append(loadavg())
            for name, fn in variants.items():
                times[name].append(fn())
            print(f"  [{size}] round {r + 1}/{rounds} (load {loads[-1]}): " + ", ".join(
                f"{k} {v[-1]:.2f}" for k, v in times.items()), file=sys.stderr)
        base = "plain OV b1 r4 default"
        ratios = {k: statistics.median(t / b for t, b in zip(v, times[base]))
                  for k, v in times.items()}
        speedups = {}
        for sv, rv in (("salvo default", "reference default"),
                       ("salvo engine b1 r4, BLAS 1 thread", "reference default"),
                       ("salvo f32", "reference f32"),
                       ("salvo f32 engine b1 r4, BLAS 1 thread", "reference f32")):
            if rv in times:
                speedups[f"{sv} vs {rv}"] = statistics.median(
                    r_ / s_ for r_, s_ in zip(times[rv], times[sv]))
        all_one = {
            "default": statistics.median(
                a / o for a, o in zip(times["salvo default, all targets"],
                                      times["salvo default"])),
            "default, BLAS 1 thread": statistics.median(
                a / o for a, o in zip(times["salvo default, all targets, BLAS 1 thread"],
                                      times["salvo default, BLAS 1 thread"])),
            "engine b1 r4, BLAS 1 thread": statistics.median(
                a / o for a, o in zip(times["salvo engine b1 r4, all targets, BLAS 1 thread"],
                                      times["salvo engine b1 r4, BLAS 1 thread"])),
        }
        out["sizes"][str(size)] = {"seconds_per_1000": times, "over_bound": ratios,
                                   "speedup_vs_reference": speedups, "all_over_one": all_one,
                                   "loads": loads}
        del variants, salvos
    return out


def designs(sizes: list[int], rounds: int, num_masks: int = 1000, cells: int = 8) -> dict:
    """Seconds per mask of RISE with each mask design against the adjacent bound (plain
    OpenVINO, batch 1, 4 requests, default precision), one target, interleaved rounds: every
    round runs bound, balanced, iid, bound, in an order that alternates between rounds."""
    out: dict[str, Any] = {"rounds": rounds, "num_masks": num_masks, "num_cells": cells,
                           "sizes": {}}
    for size in sizes:
        x = efficientnet_lite0_preprocess(sample_image(PHOTO), size=size)
        ex, _, facts = build_salvo(size, None)
        ex(x, targets=TARGET, num_masks=64, num_cells=cells, resize=False, colormap=False)
        queue = PlainQueue(size, 1, 4, None)

        def with_design(design: str) -> Callable[[], float]:
            def go() -> float:
                t0 = time.perf_counter()
                e = ex(x, targets=TARGET, num_masks=num_masks, num_cells=cells,
                       mask_design=design, resize=False, colormap=False)
                assert e.num_inferences == num_masks + 1
                return (time.perf_counter() - t0) / (num_masks + 1)
            return go

        # the generator alone (what differs between the designs), interleaved
        generate: dict[str, list[float]] = {"balanced": [], "iid": []}
        buf = np.empty((num_masks, size, size), np.float32)
        for r in range(rounds):
            for design in (("balanced", "iid") if r % 2 == 0 else ("iid", "balanced")):
                t0 = time.perf_counter()
                rise_masks(r, 0, num_masks, cells, 0.5, size, size, out=buf, design=design)
                generate[design].append((time.perf_counter() - t0) / num_masks)
        variants = {"balanced": with_design("balanced"), "iid": with_design("iid")}
        times: dict[str, list[float]] = {"bound": [], "balanced": [], "iid": []}
        loads = []
        for r in range(rounds):
            loads.append(loadavg())
            order = ["balanced", "iid"] if r % 2 == 0 else ["iid", "balanced"]
            bound = [1.0 / queue.measure_items(num_masks)]
            for name in order:
                times[name].append(variants[name]())
            bound.append(1.0 / queue.measure_items(num_masks))
            times["bound"].append(statistics.mean(bound))
            print(f"  [{size}] round {r + 1}/{rounds} (load {loads[-1]}): " + ", ".join(
                f"{k} {v[-1] * 1e3:.3f} ms/mask" for k, v in times.items()), file=sys.stderr)
        over = {k: [t / b for t, b in zip(v, times["bound"])] for k, v in times.items()
                if k != "bound"}
        ratio = [b / i for b, i in zip(times["balanced"], times["iid"])]
        out["sizes"][str(size)] = {
            "seconds_per_mask": times, "over_bound": over, "balanced_over_iid": ratio,
            "engine": facts, "loads": loads,
            "median": {k: statistics.median(v) for k, v in times.items()},
            "median_over_bound": {k: statistics.median(v) for k, v in over.items()},
            "median_balanced_over_iid": statistics.median(ratio),
            "generate_seconds_per_mask": generate,
            "generate_balanced_over_iid": statistics.median(
                b / i for b, i in zip(generate["balanced"], generate["iid"])),
        }
    return out


def designs_markdown(p: dict) -> str:
    lines = [f"# RISE time per mask: balanced vs iid mask designs ({p['when']})", "",
             f"EfficientNet-Lite0, coffee, one target ({TARGET}), {p['num_masks']} masks, "
             f"num_cells {p['num_cells']}, salvo's default engine and precision. Each of "
             f"{p['rounds']} rounds times the adjacent bound (plain OpenVINO, batch 1, 4 "
             "requests, default precision; mean of one measurement before and one after), RISE "
             "with balanced masks and RISE with iid masks (alternating order). `x bound` = "
             "seconds per inference / the round's bound; spread = min-max over rounds. Load: "
             f"{p['load_start']} -> {p['load_end']}.", ""]
    for size, d in p["sizes"].items():
        lines += [f"## {size}x{size}", "",
                  "| variant | median ms per inference | x bound: median (min-max) |",
                  "|---|---:|---:|"]
        for k in ("bound", "balanced", "iid"):
            ms = statistics.median(d["seconds_per_mask"][k]) * 1e3
            if k == "bound":
                lines.append(f"| plain OpenVINO (bound) | {ms:.3f} | 1 |")
            else:
                v = d["over_bound"][k]
                lines.append(f"| RISE, mask_design={k} | {ms:.3f} | "
                             f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f}) |")
        r = d["balanced_over_iid"]
        lines += ["", f"balanced / iid time per mask, paired within rounds: median "
                  f"{statistics.median(r):.3f} (min-max {min(r):.3f}-{max(r):.3f}).", ""]
        g = d.get("generate_seconds_per_mask")
        if g:
            lines += [f"The mask generator alone (`rise_masks`, one thread, {p['num_masks']} "
                      "masks per call, interleaved): balanced "
                      f"{statistics.median(g['balanced']) * 1e6:.1f} us per mask, iid "
                      f"{statistics.median(g['iid']) * 1e6:.1f} us; paired ratio "
                      f"{d['generate_balanced_over_iid']:.3f}.", ""]
    return "\n".join(lines)


def paired_markdown(p: dict) -> str:
    intro = (
        f"EfficientNet-Lite0, coffee, one target (967) unless stated, {p['num_masks']} masks, "
        f"num_cells {p['num_cells']}. Each round runs every variant once, back to back; "
        "ratios are taken within a round (same load) and the median over "
        f"{p['rounds']} rounds is shown. Seconds are per 1000 masks (the reference is run on "
        f"{p['reference_masks']} masks and scaled). Load: {p['load_start']} -> "
        f"{p['load_end']}."
    )
    lines = [f"# Black-box RISE: paired rounds ({p['when']})", "", intro, ""]
    for size, d in p["sizes"].items():
        lines += [f"## {size}x{size}", "", "| variant | median s per 1000 | / plain OV b1 r4 |",
                  "|---|---:|---:|"]
        for k, v in d["seconds_per_1000"].items():
            lines.append(f"| {k} | {statistics.median(v):.2f} | {d['over_bound'][k]:.2f} |")
        lines += ["", "| speed-up (paired) | x |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in d["speedup_vs_reference"].items()]
        lines += ["", "| all targets / one target (paired) | x |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in d["all_over_one"].items()]
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def bench_size(size: int, args: argparse.Namespace, xai: Any | None, cache: dict) -> dict:
    quick = args.quick
    out: dict[str, Any] = {"size": size}
    x = efficientnet_lite0_preprocess(sample_image(PHOTO), size=size)
    probe_s = 0.5 if quick else 0.75
    probe = Probe(size, probe_s)

    # the bound: plain OpenVINO sweep, best config re-measured (median)
    print(f"[{size}] bound sweep (load {loadavg()})", file=sys.stderr)
    bound = inference_bound(
        lite0_at(size),
        batches=[1, 8] if quick else [1, 4, 8, 16, 32],
        requests=[2, 4] if quick else [1, 2, 4],
        precisions=["f32", None],
        seconds=0.6 if quick else 1.0,
        repeats=1 if quick else 3,
    )
    out["probe_at_bound_ips"] = probe.plain.measure(probe_s * 2)
    best_f32 = max((r for r in bound["sweep"] if r["precision"] == "f32"),
                   key=lambda r: r["ips"])
    f32q = PlainQueue(size, best_f32["batch"], best_f32["requests"], "f32")
    f32_ips = statistics.median(f32q.measure(1.0) for _ in range(1 if quick else 3))
    del f32q
    out["bound"] = {"ips": bound["ips"], "config": bound["config"], "sweep": bound["sweep"],
                    "f32_ips": f32_ips, "f32_config": best_f32}

    # reference (cached)
    if xai is not None:
        measure_reference(xai, size, x, probe, cache, quick, args.refresh_reference)

    rows: list[dict] = []
    out["rows"] = rows
    out["explainers"] = {}
    best_default = max((r for r in bound["sweep"] if r["precision"] == "default"),
                       key=lambda r: r["ips"])
    tuned = (best_default["batch"], best_default["requests"])
    out["tuned_engine"] = {"batch_size": tuned[0], "num_requests": tuned[1]}
    plan: list[Spec] = []
    rep = {"SPEED": 1 if quick else 3}
    diag = 1 if quick else 2  # repeats of the diagnostic rows
    plan += [Spec(None, "SPEED", "one", "centered", rep["SPEED"]),
             Spec(None, "SPEED", "one", "plain", rep["SPEED"]),
             Spec(None, "SPEED", "all", "centered", rep["SPEED"])]
    if not quick:
        plan += [Spec(None, "BALANCE", "one", "centered", 1),
                 Spec(None, "BALANCE", "all", "centered", 1)]
    if not quick:
        plan += [Spec(None, "SPEED", "one", "centered", 1, vis=True),
                 Spec(None, "SPEED", "all", "centered", 1, vis=True)]
    # diagnostics: the engine at the bound's batch x requests; and BLAS limited to one thread
    plan += [Spec(None, "SPEED", "one", "centered", diag, engine=tuned),
             Spec(None, "SPEED", "all", "centered", 1, engine=tuned)]
    if _threadpoolctl() is not None:
        plan += [Spec(None, "SPEED", "one", "centered", diag, blas1=True)]
        if not quick:
            plan += [Spec(None, "SPEED", "all", "centered", 1, blas1=True),
                     Spec(None, "SPEED", "one", "centered", diag, engine=tuned, blas1=True),
                     Spec(None, "SPEED", "all", "centered", 1, engine=tuned, blas1=True)]
    plan += [Spec("f32", "SPEED", "one", "centered", rep["SPEED"])]
    if not quick:
        plan += [Spec("f32", "SPEED", "one", "plain", rep["SPEED"]),
                 Spec("f32", "BALANCE", "one", "centered", 1)]
    plan += [Spec("f32", "SPEED", "all", "centered", 1)]

    explainers: dict[tuple, Any] = {}
    for spec in plan:
        key = (spec.precision, spec.engine)
        if key not in explainers:
            ex, compile_s, facts = build_salvo(size, spec.precision, spec.engine)
            t0 = time.perf_counter()
            ex(x, targets=TARGET, num_masks=64, num_cells=8, resize=False, colormap=False)
            warm = time.perf_counter() - t0
            explainers[key] = ex
            out["explainers"][spec.engine_label()] = {
                "compile_s": compile_s, "warmup_s": warm, **facts}
        ex = explainers[key]
        targets = TARGET if spec.targets == "one" else -1
        walls, probes, inferences = [], [], 0
        for _ in range(spec.repeats):
            with _blas_limit(spec.blas1):
                e, wall, p = probe.around(
                    salvo_call, ex, x, targets, spec.preset, spec.estimator, spec.vis,
                    probe_seconds=PROBE_SECONDS[spec.preset] * (0.5 if quick else 1))
            walls.append(wall)
            probes.append(p)
            inferences = e.num_inferences
            del e
        rows.append(_row(size, spec, walls, probes, inferences, out, cache))
        _print_row(rows[-1])
    del explainers

    # QUALITY at the default precision, in a fresh process: timing + memory
    n_q, c_q = PRESETS["QUALITY"]
    if quick:
        n_q = 1000
    mem, _, p = probe.around(
        run_probe, ["--_probe-salvo-memory", str(size), str(n_q), str(c_q)],
        probe_seconds=PROBE_SECONDS["QUALITY"])
    out["salvo_memory"] = mem
    for which in ("one", "all"):
        spec = Spec(None, "QUALITY", which, "centered", 1, fresh_process=True, num_masks=n_q)
        rows.append(_row(size, spec, [mem[f"{which}_wall_s"]], [p], mem[f"{which}_inferences"],
                         out, cache))
        _print_row(rows[-1])
    # the reference's memory (cached)
    mkey = f"{size}/memory"
    if xai is not None and (mkey not in cache["entries"] or args.refresh_reference):
        cache["entries"][mkey] = run_probe(["--_probe-reference-memory", str(size)])
        save_ref_cache(cache)
    out["reference_memory"] = cache["entries"].get(mkey)
    return out


def _row(size: int, spec: Spec, walls: list[float], probes: list[float], inferences: int,
         out: dict, cache: dict) -> dict:
    wall = statistics.median(walls)
    probe = statistics.median(probes)
    bound_ips = out["bound"]["ips"] if spec.precision is None else out["bound"]["f32_ips"]
    best_ips = out["bound"]["ips"]
    bound_s = inferences / best_ips
    prec_bound_s = inferences / bound_ips
    load = probe / out["probe_at_bound_ips"]  # <1: the machine was busier than at the bound
    adjacent_s = inferences / probe
    masks, cells = PRESETS[spec.preset]
    if spec.num_masks is not None:
        masks = spec.num_masks
    row = {
        "size": size, "precision": spec.precision or "default", "preset": spec.preset,
        "targets": spec.targets, "estimator": spec.estimator, "visualisation": spec.vis,
        "engine": spec.engine_label(), "blas_one_thread": spec.blas1,
        "fresh_process": spec.fresh_process, "label": spec.label(),
        "num_masks": masks, "num_cells": cells, "inferences": inferences,
        "wall_s": wall, "walls_s": walls, "adjacent_bound_ips": probe, "load_factor": load,
        "bound_s": bound_s, "wall_over_bound": wall / bound_s,
        "adjacent_bound_s": adjacent_s, "wall_over_adjacent_bound": wall / adjacent_s,
        "precision_bound_s": prec_bound_s,
        "wall_over_precision_bound": wall / prec_bound_s,
    }
    ref = cache["entries"].get(
        _ref_key(size, spec.precision, spec.targets, cells if spec.targets == "one" else 8))
    if ref is not None:
        ref_time = ref["s_per_mask"] * masks
        row["reference_s_per_mask"] = ref["s_per_mask"]
        row["reference_s_equal_masks"] = ref_time
        row["speedup_vs_reference"] = ref_time / wall
        row["speedup_vs_reference_load_norm"] = (ref_time * ref["probe_ips"]) / (wall * probe)
    return row


def _print_row(r: dict) -> None:
    sp = r.get("speedup_vs_reference")
    spn = r.get("speedup_vs_reference_load_norm")
    print(f"  {r['size']} {r['preset']:8s} {r['targets']:3s} {r['label']:40s} "
          f"{r['inferences']:6d} inf  wall {r['wall_s']:7.2f} s  bound {r['bound_s']:6.2f} s  "
          f"w/b {r['wall_over_bound']:5.2f} (adj {r['wall_over_adjacent_bound']:5.2f})  "
          f"vs ref {sp or float('nan'):5.2f}x (norm {spn or float('nan'):5.2f}x)  "
          f"load {loadavg()}", file=sys.stderr)


def tables(results: dict) -> str:
    """Markdown tables of the results."""
    lines: list[str] = []
    a = lines.append
    a(f"# Black-box RISE benchmark{' (quick)' if results['quick'] else ''}")
    a("")
    a(f"{results['when']}, OpenVINO {results['openvino']}, salvo {results['salvo']}, "
      f"{results['cpu']}, {os.cpu_count()} cores. Load average at start {results['load_start']}, "
      f"at end {results['load_end']} (the machine is shared: ratios measured side by side are "
      "what count).")
    a("")
    a("EfficientNet-Lite0, coffee photo, target 967 (espresso) or all 1000 classes. Wall = one "
      "Explainer call (raw scaled maps: resize=False, colormap=False, unless `+vis`), after "
      "building and one warm-up call; median of the repeats. Bound = num_inferences / best "
      "plain-OpenVINO throughput of the sweep (any precision). `adj.` = wall / (num_inferences / "
      "plain OpenVINO at batch 1, 4 requests, default precision, measured right before and "
      "after the run): the bound adjacent in time, robust to the machine's changing load. `prec.bound` "
      "uses the best throughput at the row's own precision. Speed-up vs the reference at equal "
      "num_masks: reference per-mask time (cached, see reference_blackbox.json) x num_masks / "
      "salvo wall; default rows compare with the reference at its defaults (bf16, latency), "
      "f32 rows with the reference compiled in f32; `norm` multiplies each time by the adjacent "
      "bound's throughput measured next to it (corrects for load). "
      "QUALITY at default precision runs in a fresh process (with the memory probe).")
    for size, s in results["sizes"].items():
        b = s["bound"]
        a("")
        a(f"## {size}x{size}")
        a("")
        bc = b["config"]
        fc = b["f32_config"]
        a(f"Bound: {b['ips']:.0f} img/s (batch {bc['batch']}, {bc['requests']} requests, "
          f"{bc['precision']}); best f32 {b['f32_ips']:.0f} img/s (batch {fc['batch']}, "
          f"{fc['requests']} requests). Adjacent-bound configuration measured just after: "
          f"{s['probe_at_bound_ips']:.0f} img/s.")
        for prec, facts in s["explainers"].items():
            a(f"salvo engine ({prec}): batch {facts.get('batch_size')}, "
              f"{facts.get('num_requests')} requests, compile {facts['compile_s']:.2f} s, "
              f"warm-up {facts['warmup_s']:.2f} s.")
        a("")
        a("| preset | targets | precision, estimator, variant | inferences | wall s | bound s | "
          "wall/bound | adj. | wall/prec.bound | ref s/mask | speed-up vs ref | norm |")
        a("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in s["rows"]:
            ref_ms = r.get("reference_s_per_mask")
            a(f"| {r['preset']} | {r['targets']} | {r['label']} | {r['inferences']} | {r['wall_s']:.2f} | {r['bound_s']:.2f} | "
              f"{r['wall_over_bound']:.2f} | {r['wall_over_adjacent_bound']:.2f} | "
              f"{r['wall_over_precision_bound']:.2f} | "
              f"{'' if ref_ms is None else f'{ref_ms * 1e3:.1f} ms'} | "
              f"{_fmt(r.get('speedup_vs_reference'))} | "
              f"{_fmt(r.get('speedup_vs_reference_load_norm'))} |")
        # all targets vs one target
        a("")
        a("All targets / one target (same precision, preset, estimator centered):")
        a("")
        a("| preset | precision, estimator, variant | one s | all s | all/one |")
        a("|---|---|---:|---:|---:|")
        idx = {(r["preset"], r["targets"], r["label"].replace(" all", "")): r
               for r in s["rows"]}
        for (preset, which, label), r in idx.items():
            if which != "all":
                continue
            one = idx.get((preset, "one", label))
            if one:
                a(f"| {preset} | {label} | {one['wall_s']:.2f} | {r['wall_s']:.2f} | "
                  f"{r['wall_s'] / one['wall_s']:.2f} |")
        m = s["salvo_memory"]
        a("")
        a(f"Memory (salvo, fresh process, default precision, {m['num_masks']} masks, "
          f"num_cells {m['num_cells']}; engine batch {m['engine'].get('batch_size')}, "
          f"{m['engine'].get('num_requests')} requests): RSS after compile + warm-up "
          f"{m['rss_after_warmup_mb']:.0f} MB; one target adds {m['one_added_mb']:.0f} MB; "
          f"all 1000 targets add {m['all_added_mb']:.0f} MB, process peak "
          f"{m['all_total_peak_mb']:.0f} MB (with resize+colormap of the 1000 maps: "
          f"{m['all_vis_total_peak_mb']:.0f} MB).")
        rm = s.get("reference_memory")
        if rm:
            a(f"Memory (reference, fresh process, defaults): RSS after compile + warm-up "
              f"{rm['rss_after_warmup_mb']:.0f} MB; one target adds {rm['one_added_mb']:.0f} MB "
              f"({rm['one_masks']} masks); all targets add {rm['all_added_mb']:.0f} MB, process "
              f"peak {rm['all_total_peak_mb']:.0f} MB ({rm['all_masks']} masks).")
    ag = results.get("agreement")
    if ag:
        a("")
        a(f"## Map agreement (plain mode, {ag['size']}x{ag['size']}, {ag['num_masks']} masks, "
          f"num_cells {ag['num_cells']}, f32)")
        a("")
        a("| pair | Pearson |")
        a("|---|---:|")
        for k, v in ag["pearson"].items():
            a(f"| {k} | {v:.3f} |")
    return "\n".join(lines) + "\n"


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}x"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_probe-salvo-memory":
        size, n, c = map(int, argv[1:4])
        print(json.dumps(_probe_salvo_memory(size, n, c)))
        return 0
    if argv and argv[0] == "--_probe-reference-memory":
        print(json.dumps(_probe_reference_memory(int(argv[1]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="SPEED only, short sweeps (< 5 min)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    parser.add_argument("--no-reference", action="store_true", help="skip the reference toolkit")
    parser.add_argument("--refresh-reference", action="store_true",
                        help="re-measure the reference's timings and memory (not its maps)")
    parser.add_argument("--refresh-reference-maps", action="store_true",
                        help="re-compute the reference's maps for the agreement table")
    parser.add_argument("--paired", type=int, default=0, metavar="ROUNDS",
                        help="instead: interleaved diagnostic rounds (results/blackbox_paired.*)")
    parser.add_argument("--designs", type=int, default=0, metavar="ROUNDS",
                        help="instead: RISE balanced vs iid masks against the bound, "
                             "interleaved rounds (results/rise_designs_timing.*)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (default results/blackbox[_quick].json; .md beside it)")
    parser.add_argument("--aise", action="store_true",
                        help="instead: AISE / D-RISE rows vs the reference (bench_aise_rows.py)")
    args = parser.parse_args(argv)
    if args.aise:
        import bench_aise_rows

        return bench_aise_rows.main(["--quick"] * args.quick + ["--no-reference"] * args.no_reference
                                    + ([] if args.out is None else ["--out", str(args.out)]))
    out_path = args.out or RESULTS / ("blackbox_quick.json" if args.quick else "blackbox.json")

    t_start = time.perf_counter()
    xai = None
    if not args.no_reference:
        if reference_available():
            import logging

            xai = load_reference()
            logging.getLogger("openvino_xai").setLevel(logging.WARNING)
        else:
            print("reference toolkit not installed (pip install --no-deps "
                  "openvino-xai==1.1.0): skipping it", file=sys.stderr)
    if args.designs:
        p = {"when": _dt.datetime.now().isoformat(timespec="seconds"), "load_start": loadavg()}
        p.update(designs(args.sizes, args.designs))
        p["load_end"] = loadavg()
        p["total_s"] = time.perf_counter() - t_start
        path = args.out or RESULTS / "rise_designs_timing.json"
        path.write_text(json.dumps(p, indent=1))
        md = designs_markdown(p)
        path.with_suffix(".md").write_text(md)
        print(md)
        print(f"total {p['total_s']:.0f} s; wrote {path} and {path.with_suffix('.md')}")
        return 0
    if args.paired:
        p = {"when": _dt.datetime.now().isoformat(timespec="seconds"), "load_start": loadavg()}
        p.update(paired(args.sizes, args.paired, xai))
        p["load_end"] = loadavg()
        p["total_s"] = time.perf_counter() - t_start
        path = args.out or RESULTS / "blackbox_paired.json"
        path.write_text(json.dumps(p, indent=1))
        md = paired_markdown(p)
        path.with_suffix(".md").write_text(md)
        print(md)
        print(f"total {p['total_s']:.0f} s; wrote {path} and {path.with_suffix('.md')}")
        return 0
    cache = load_ref_cache()
    results: dict[str, Any] = {
        "quick": args.quick, "when": _dt.datetime.now().isoformat(timespec="seconds"),
        "openvino": ov.__version__, "salvo": salvo.__version__,
        "cpu": platform.processor() or platform.machine(), "load_start": loadavg(),
        "photo": PHOTO, "target": TARGET, "probe_config": PROBE_CONFIG, "sizes": {},
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        results["sizes"][str(size)] = bench_size(size, args, xai, cache)
        out_path.with_suffix(".partial.json").write_text(json.dumps(results, default=str))
    print(f"agreement (load {loadavg()})", file=sys.stderr)
    results["agreement"] = agreement(xai, 1000 if args.quick else 5000, cache,
                                     args.refresh_reference_maps)
    results["load_end"] = loadavg()
    results["total_s"] = time.perf_counter() - t_start
    md = tables(results)
    print(md)
    print(f"total {results['total_s']:.0f} s")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1, default=str))
    out_path.with_suffix(".md").write_text(md)
    out_path.with_suffix(".partial.json").unlink(missing_ok=True)
    print(f"wrote {out_path} and {out_path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
