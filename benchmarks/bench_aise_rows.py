"""Black-box AISE and D-RISE against the inference bound and the reference toolkit (issue 5).

Side by side in one run, on this machine:

* **Classification**: EfficientNet-Lite0 at 224 x 224 (``salvo.zoo``), the coffee photo, AISE at
  SPEED / BALANCE / QUALITY for one target (967, espresso) and for the five top-scoring classes,
  salvo's ``Explainer`` against the reference's (openvino-xai 1.1.0, loaded through
  ``_reference.load_reference``), both at the device-default precision; plus a BALANCE
  one-target pair at f32 (the reference's compiled model replaced by one compiled with
  ``INFERENCE_PRECISION_HINT=f32``, nothing else changed). ``postprocess_fn`` returns the logits
  (so both apply AISE's sigmoid).
* **Detection**: the SSDLite person detector (``salvo.zoo``) on the astronaut photo, every box:
  AISE (both toolkits) and salvo's D-RISE (``Method.RISE`` with ``Task.DETECTION``; the
  reference has no RISE for detection).

Per row: wall time of one ``Explainer`` call (after the Explainer is built and one warm-up call;
construction, i.e. compilation, is reported apart; maps returned raw: ``resize=False``,
``colormap=False``), the inferences it actually ran (salvo's ``num_inferences``; for the
reference, calls of its ``postprocess_fn``, which it calls once per model inference), wall /
inference bound (``inferences / best plain-OpenVINO throughput`` of a batch x requests x
precision sweep of an ``AsyncInferQueue`` over ready-made inputs, measured in this run), the
speed-up over the reference and the salvo / reference ratio of seconds per inference. Peak RSS
is measured per method in a fresh subprocess (build, warm-up, then the method's BALANCE call(s)).

The BALANCE one-target rows (default precision and f32) are measured in interleaved rounds
(salvo, reference, salvo, reference, ...) and the speed-up is the median of the per-round
ratios, which the machine's changing load hits alike; other rows are medians of their repeats.

* **Map quality** (f32 for both toolkits, equal presets): insertion / deletion AUC
  (``salvo.metrics.InsertionDeletionAUC``, 30 steps, softmax probabilities) and the pointing
  game (hand-drawn boxes of ``benchmarks/boxes.json``) on photos of ``salvo.zoo`` (explained with
  softmax probabilities, as ``bench_quality.py`` does), and the pointing game + insertion /
  deletion (logits) on the planted-ground-truth CNN and ViT of ``salvo.testing.planted``. The
  reference's photo maps are cached in ``results/reference_maps/aise_*.npy``
  (``--refresh-reference`` recomputes them); its timings are always measured live.
* **Planted CNN class 1** (why AISE's insertion AUC is below its deletion AUC there): the same
  searches with the logits shifted by +0.011, a constant that cancels in AISE's objective
  ``score(x*g) - score(x*(1-g))`` except through the sigmoid AISE applies to any inference
  whose scores leave [0, 1]; plus the per-width kernel-density extremes.

    python benchmarks/bench_aise_rows.py [--quick] [--out benchmarks/results/blackbox_aise]
    python benchmarks/bench_blackbox.py --aise [--quick]     # the same, through the hook

``--quick`` (under 5 minutes): SPEED and BALANCE only, D-RISE on 250 masks, the coffee photo
only. Writes ``<out>.json`` and ``<out>.md`` and prints the Markdown. Timings are never asserted.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # the reference's progress bars

import numpy as np
import openvino as ov

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import salvo
from _common import (
    current_rss_mb,
    lite0_at,
    loadavg,
    peak_rss_mb,
    pearson,
    reset_peak_rss,
    run_script,
)
from _reference import load_reference, reference_available
from salvo import zoo
from salvo.measure import PlainQueue
from salvo.inference import get_core

RESULTS = HERE / "results"
REF_MAPS = RESULTS / "reference_maps"
REF_MAPS_META = REF_MAPS / "aise_meta.json"
SIZE = 224
ESPRESSO = 967
PRESETS = ("SPEED", "BALANCE", "QUALITY")
QUICK_PRESETS = ("SPEED", "BALANCE")
KEY_PRESET = "BALANCE"
STEPS = 30  # insertion / deletion steps
#: The constant that lifts every planted-CNN logit into [0, 1] (class 1's bias is -0.01).
SHIFT = 0.011


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def logits(outputs: Any) -> np.ndarray:
    return outputs[0]


def softmax(outputs: Any) -> np.ndarray:
    z = np.asarray(outputs[0], np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def shifted_logits(outputs: Any) -> np.ndarray:
    return outputs[0] + np.float32(SHIFT)


class Counter:
    """Counts the calls of a wrapped ``postprocess_fn`` (the reference calls it once per
    inference)."""

    def __init__(self) -> None:
        self.calls = 0

    def wrap(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def counted(outputs: Any) -> Any:
            self.calls += 1
            return fn(outputs)

        return counted


def _ref_preset(name: str) -> Any:
    from openvino_xai.methods.black_box.base import Preset

    return Preset[name]


# ----------------------------------------------------------------------------- plain OpenVINO
def Plain(model: ov.Model, x: np.ndarray, batch: int, requests: int,
          precision: str | None) -> PlainQueue:
    """Plain OpenVINO over the real preprocessed image, every request kept busy."""
    return PlainQueue(model, x, "CPU", batch=batch, requests=requests, precision=precision)


def bound_sweep(name: str, model: ov.Model, x: np.ndarray, batches: list[int],
                requests: list[int], seconds: float, repeats: int) -> dict:
    """Sweep batch x requests x precision (default, f32); re-measure the best of each precision
    ``repeats`` times (median). Batches the model cannot take are skipped."""
    sweep: list[dict] = []
    for precision in (None, "f32"):
        for batch in batches:
            for req in requests:
                try:
                    ips = Plain(model, x, batch, req, precision).measure(seconds)
                except Exception as exc:  # noqa: BLE001 (a model with a fixed batch)
                    log(f"  {name} bound: batch {batch} unusable ({type(exc).__name__})")
                    break
                sweep.append({"batch": batch, "requests": req,
                              "precision": precision or "default", "ips": ips})
                log(f"  {name} bound: batch {batch:2d} req {req} {precision or 'default':7s} "
                    f"{ips:7.1f} img/s")
    out: dict[str, Any] = {"sweep": sweep}
    for prec in ("default", "f32"):
        cands = [r for r in sweep if r["precision"] == prec]
        best = max(cands, key=lambda r: r["ips"])
        q = Plain(model, x, best["batch"], best["requests"],
                  None if prec == "default" else prec)
        out[prec] = {"config": best,
                     "ips": statistics.median(q.measure(seconds) for _ in range(repeats)),
                     "queue": q}
    out["best"] = max(("default", "f32"), key=lambda p: out[p]["ips"])
    out["ips"] = out[out["best"]]["ips"]
    return out


def _public_bound(b: dict) -> dict:
    return {"sweep": b["sweep"], "best": b["best"], "ips": b["ips"],
            **{p: {"config": b[p]["config"], "ips": b[p]["ips"],
                   **({"ips_end": b[p]["ips_end"]} if "ips_end" in b[p] else {})}
               for p in ("default", "f32")}}


# ----------------------------------------------------------------------------- explainers
def salvo_explainer(model: ov.Model, task: Any, postprocess: Any, method: Any,
                    precision: str | None) -> tuple[Any, float]:
    t0 = time.perf_counter()
    ex = salvo.Explainer(model, task, postprocess_fn=postprocess,
                         explain_mode=salvo.ExplainMode.BLACKBOX, explain_method=method,
                         inference_precision=precision, progress=False)
    return ex, time.perf_counter() - t0


def engine_facts(ex: Any) -> dict:
    try:  # private, for the report only
        engine = ex.method.engine
        return {"batch_size": engine.batch_size, "num_requests": engine.num_requests}
    except AttributeError:
        return {}


def ref_explainer(xai: Any, model: ov.Model, task: str, postprocess: Any,
                  precision: str | None) -> tuple[Any, float]:
    """The reference's Explainer (AISE); ``precision="f32"`` recompiles its model in f32 with
    the same call as its ``prepare_model`` plus the precision hint only."""
    t0 = time.perf_counter()
    ref = xai.Explainer(model=model, task=getattr(xai.Task, task), postprocess_fn=postprocess,
                        explain_mode=xai.explainer.ExplainMode.BLACKBOX,
                        explain_method=xai.Method.AISE)
    if precision:
        ref.method._model_compiled = ov.Core().compile_model(
            ref.method._model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    return ref, time.perf_counter() - t0


def ref_facts(ref: Any) -> dict:
    c = ref.method._model_compiled
    out = {}
    for key in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "NUM_STREAMS"):
        try:
            out[key] = str(c.get_property(key))
        except RuntimeError:
            continue
    return out


def coffee_input() -> np.ndarray:
    return zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee"), size=SIZE)


def top5(x: np.ndarray) -> list[int]:
    compiled = get_core().compile_model(lite0_at(SIZE), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    scores = compiled(x)[0][0]
    return [int(i) for i in np.argsort(-scores)[:5]]


# ----------------------------------------------------------------------------- timing
class Runner:
    """Timed calls of one toolkit's explainer; returns (wall seconds, inferences).

    With a ``probe`` (plain OpenVINO at the best default-precision setting), every timed call
    is bracketed by probe runs of as many images as the call's inferences (half before, half
    after; the count of the previous call with the same arguments), and the probe's seconds for
    that many images are appended to :attr:`adjacent`: a bound measured under the same load.
    """

    probe: PlainQueue | None = None

    def __init__(self, toolkit: str, ex: Any, counter: Counter | None = None) -> None:
        self.toolkit, self.ex, self.counter = toolkit, ex, counter
        self.adjacent: list[float] = []
        self._counts: dict[str, int] = {}

    def __call__(self, x: np.ndarray, targets: Any, preset: str | None, **kw: Any
                 ) -> tuple[float, int, Any]:
        key = repr((targets, preset, sorted(kw.items())))
        probe, expected = Runner.probe, self._counts.get(key, 0)
        before = probe.measure_items(expected // 2) if probe and expected > 1 else None
        wall, count, e = self._timed(x, targets, preset, **kw)
        if probe is not None:
            n = count - count // 2 if before is not None else count
            after = probe.measure_items(n)
            ips = after if before is None else (before + after) / 2
            self.adjacent.append(count / ips)
        self._counts[key] = count
        return wall, count, e

    def _timed(self, x: np.ndarray, targets: Any, preset: str | None, **kw: Any
               ) -> tuple[float, int, Any]:
        if self.toolkit == "salvo":
            if preset is not None:
                kw["preset"] = salvo.Preset[preset]
            t0 = time.perf_counter()
            e = self.ex(x, targets=targets, resize=False, colormap=False, **kw)
            return time.perf_counter() - t0, int(e.num_inferences), e
        if preset is not None:
            kw["preset"] = _ref_preset(preset)
        self.counter.calls = 0
        t0 = time.perf_counter()
        e = self.ex(x, targets=targets, resize=False, colormap=False, **kw)
        return time.perf_counter() - t0, self.counter.calls, e


def make_row(task: str, model: str, method: str, toolkit: str, preset: str, targets: str,
             precision: str | None, walls: list[float], inferences: int, bound: dict,
             runner: Runner | None = None, **extra: Any) -> dict:
    wall = statistics.median(walls)
    if runner is not None and len(runner.adjacent) >= len(walls):
        # wall over the bound measured right around each call (same load), median
        adjacent = runner.adjacent[-len(walls):]
        extra["adjacent_bound_s"] = adjacent
        extra["wall_over_adjacent_bound"] = statistics.median(
            w / a for w, a in zip(walls, adjacent))
    prec = precision or "default"
    bound_s = inferences / bound["ips"]
    prec_bound_s = inferences / bound[prec]["ips"]
    row = {"task": task, "model": model, "method": method, "toolkit": toolkit,
           "preset": preset, "targets": targets, "precision": prec, "inferences": inferences,
           "wall_s": wall, "walls_s": walls, "s_per_inference": wall / inferences,
           "bound_s": bound_s, "wall_over_bound": wall / bound_s,
           "precision_bound_s": prec_bound_s, "wall_over_precision_bound": wall / prec_bound_s,
           "loadavg": loadavg()}
    row.update(extra)
    log(f"  {task[:3]} {method:6s} {toolkit:9s} {preset:8s} {targets:8s} {prec:7s} "
        f"{inferences:5d} inf  wall {wall:7.2f} s  bound {bound_s:6.2f} s  "
        f"w/b {wall / bound_s:5.2f}  adj {row.get('wall_over_adjacent_bound', float('nan')):5.2f}"
        f"  load {row['loadavg']}")
    return row


def pair_up(rows: list[dict]) -> None:
    """Speed-up vs the reference and the per-inference ratio on every salvo row that has a
    reference row with the same task, method, preset, targets and precision."""
    ref = {(r["task"], r["method"], r["preset"], r["targets"], r["precision"]): r
           for r in rows if r["toolkit"] == "reference"}
    for r in rows:
        if r["toolkit"] != "salvo":
            continue
        other = ref.get((r["task"], r["method"], r["preset"], r["targets"], r["precision"]))
        if other is None:
            continue
        r["reference_wall_s"] = other["wall_s"]
        r["reference_inferences"] = other["inferences"]
        r["speedup_vs_reference"] = other["wall_s"] / r["wall_s"]
        r["per_inference_ratio"] = r["s_per_inference"] / other["s_per_inference"]
        if "paired_speedups" in r:
            r["speedup_vs_reference"] = statistics.median(r["paired_speedups"])
            r["per_inference_ratio"] = statistics.median(r["paired_per_inference"])


def classification_rows(xai: Any | None, quick: bool, bound: dict, out: dict) -> list[dict]:
    x = coffee_input()
    five = top5(x)
    out["top5"] = five
    presets = QUICK_PRESETS if quick else PRESETS
    rows: list[dict] = []
    facts: dict[str, Any] = {}
    runners: dict[tuple[str, str], Runner] = {}
    for prec in (None, "f32"):
        label = prec or "default"
        ex, build_s = salvo_explainer(lite0_at(SIZE), salvo.Task.CLASSIFICATION, logits,
                                      salvo.Method.AISE, prec)
        run = Runner("salvo", ex)
        t0 = time.perf_counter()
        run(x, ESPRESSO, "SPEED", num_iterations_per_kernel=4)
        facts[f"salvo {label}"] = {"build_s": build_s, "warmup_s": time.perf_counter() - t0,
                                   **engine_facts(ex)}
        runners[("salvo", label)] = run
        if xai is not None:
            counter = Counter()
            ref, build_s = ref_explainer(xai, lite0_at(SIZE), "CLASSIFICATION",
                                         counter.wrap(logits),
                                         prec)
            run = Runner("reference", ref, counter)
            t0 = time.perf_counter()
            run(x, ESPRESSO, "SPEED", num_iterations_per_kernel=4)
            facts[f"reference {label}"] = {"build_s": build_s,
                                           "warmup_s": time.perf_counter() - t0,
                                           **ref_facts(ref)}
            runners[("reference", label)] = run
    out["classification_explainers"] = facts

    def paired(preset: str, prec: str, rounds: int) -> None:
        s_walls, r_walls, sp, pi = [], [], [], []
        s_inf = r_inf = 0
        for _ in range(rounds):
            w, s_inf, _ = runners[("salvo", prec)](x, ESPRESSO, preset)
            s_walls.append(w)
            if ("reference", prec) in runners:
                rw, r_inf, _ = runners[("reference", prec)](x, ESPRESSO, preset)
                r_walls.append(rw)
                sp.append(rw / w)
                pi.append((w / s_inf) / (rw / r_inf))
        extra = {"paired_rounds": rounds}
        if sp:
            extra.update(paired_speedups=sp, paired_per_inference=pi)
        rows.append(make_row("classification", "EfficientNet-Lite0", "AISE", "salvo", preset,
                             "1 (967)", None if prec == "default" else prec, s_walls, s_inf,
                             bound, runners[("salvo", prec)], **extra))
        if r_walls:
            rows.append(make_row("classification", "EfficientNet-Lite0", "AISE", "reference",
                                 preset, "1 (967)", None if prec == "default" else prec,
                                 r_walls, r_inf, bound, runners[("reference", prec)],
                                 paired_rounds=rounds))

    for preset in presets:
        for targets, label in ((ESPRESSO, "1 (967)"), (five, "5 (top-5)")):
            if preset == KEY_PRESET and targets == ESPRESSO:
                paired(preset, "default", 1 if quick else 5)
                continue
            walls, inf = [], 0
            for _ in range(1 if quick else (2 if label.startswith("5") else 3)):
                w, inf, _ = runners[("salvo", "default")](x, targets, preset)
                walls.append(w)
            rows.append(make_row("classification", "EfficientNet-Lite0", "AISE", "salvo",
                                 preset, label, None, walls, inf, bound,
                                 runners[("salvo", "default")]))
            if ("reference", "default") in runners:
                # the reference runs one synchronous inference at a time: one repeat
                w, inf, _ = runners[("reference", "default")](x, targets, preset)
                rows.append(make_row("classification", "EfficientNet-Lite0", "AISE",
                                     "reference", preset, label, None, [w], inf, bound,
                                     runners[("reference", "default")]))
    paired(KEY_PRESET, "f32", 1 if quick else 3)
    return rows


def detection_rows(xai: Any | None, quick: bool, bound: dict, out: dict) -> list[dict]:
    xd = zoo.ssdlite_preprocess(zoo.sample_image("astronaut"))
    model = zoo.ssdlite_person  # a fresh ov.Model per explainer
    presets = QUICK_PRESETS if quick else PRESETS
    rows: list[dict] = []
    facts: dict[str, Any] = {}
    ex, build_s = salvo_explainer(model(), salvo.Task.DETECTION, zoo.ssdlite_postprocess,
                                  salvo.Method.AISE, None)
    salvo_run = Runner("salvo", ex)
    t0 = time.perf_counter()
    _, _, e = salvo_run(xd, -1, "SPEED", num_iterations_per_kernel=4)
    facts["salvo AISE"] = {"build_s": build_s, "warmup_s": time.perf_counter() - t0,
                           **engine_facts(ex)}
    out["detection_boxes"] = {int(k): {"label": int(p.label), "score": float(p.score),
                                       "box": [float(v) for v in p.bounding_box]}
                              for k, p in e.predictions.items()}
    ref_run = None
    if xai is not None:
        counter = Counter()
        ref, build_s = ref_explainer(xai, model(), "DETECTION",
                                     counter.wrap(zoo.ssdlite_postprocess), None)
        ref_run = Runner("reference", ref, counter)
        t0 = time.perf_counter()
        ref_run(xd, -1, "SPEED", num_iterations_per_kernel=4)
        facts["reference AISE"] = {"build_s": build_s, "warmup_s": time.perf_counter() - t0,
                                   **ref_facts(ref)}
    nboxes = len(out["detection_boxes"])
    label = f"all ({nboxes} box{'es' if nboxes != 1 else ''})"
    for preset in presets:
        rounds = 1 if quick else 3
        s_walls, r_walls, sp, pi = [], [], [], []
        s_inf = r_inf = 0
        for _ in range(rounds):
            w, s_inf, _ = salvo_run(xd, -1, preset)
            s_walls.append(w)
            if ref_run is not None:
                rw, r_inf, _ = ref_run(xd, -1, preset)
                r_walls.append(rw)
                sp.append(rw / w)
                pi.append((w / s_inf) / (rw / r_inf))
        extra: dict[str, Any] = {"paired_rounds": rounds}
        if sp:
            extra.update(paired_speedups=sp, paired_per_inference=pi)
        rows.append(make_row("detection", "SSDLite person", "AISE", "salvo", preset, label,
                             None, s_walls, s_inf, bound, salvo_run, **extra))
        if r_walls:
            rows.append(make_row("detection", "SSDLite person", "AISE", "reference", preset,
                                 label, None, r_walls, r_inf, bound, ref_run,
                                 paired_rounds=rounds))
    del salvo_run, ex
    # D-RISE (salvo only)
    ex, build_s = salvo_explainer(model(), salvo.Task.DETECTION, zoo.ssdlite_postprocess,
                                  salvo.Method.RISE, None)
    run = Runner("salvo", ex)
    t0 = time.perf_counter()
    run(xd, -1, None, num_masks=32)
    facts["salvo D-RISE"] = {"build_s": build_s, "warmup_s": time.perf_counter() - t0,
                             **engine_facts(ex)}
    kw = {"num_masks": 250} if quick else {}
    w, inf, _ = run(xd, -1, "SPEED", **kw)
    rows.append(make_row("detection", "SSDLite person", "D-RISE", "salvo",
                         "SPEED" + (" (250 masks)" if quick else ""), label, None, [w], inf,
                         bound, run))
    out["detection_explainers"] = facts
    return rows


# ----------------------------------------------------------------------------- memory
def _probe(kind: str, quick: bool) -> dict:
    """In a fresh process: build one method at the default precision, warm it up, then run its
    BALANCE call(s); RSS after warm-up, the peak each call adds, the process peak."""
    xai = load_reference() if kind.startswith("ref") else None
    if xai is not None:
        logging.getLogger("openvino_xai").setLevel(logging.WARNING)
    out: dict[str, Any] = {"kind": kind}
    calls: list[tuple[str, Any, str | None, dict]] = []
    if kind.endswith("cls"):
        x = coffee_input()
        if kind == "salvo-cls":
            ex, out["build_s"] = salvo_explainer(lite0_at(SIZE), salvo.Task.CLASSIFICATION,
                                                 logits, salvo.Method.AISE, None)
            run = Runner("salvo", ex)
        else:
            counter = Counter()
            ex, out["build_s"] = ref_explainer(xai, lite0_at(SIZE), "CLASSIFICATION",
                                               counter.wrap(logits), None)
            run = Runner("reference", ex, counter)
        run(x, ESPRESSO, "SPEED", num_iterations_per_kernel=4)
        calls = [("BALANCE, 1 target", ESPRESSO, "BALANCE", {}),
                 ("BALANCE, 5 targets", top5(x), "BALANCE", {})]
    else:
        x = zoo.ssdlite_preprocess(zoo.sample_image("astronaut"))
        model = zoo.ssdlite_person()
        if kind == "salvo-det":
            ex, out["build_s"] = salvo_explainer(model, salvo.Task.DETECTION,
                                                 zoo.ssdlite_postprocess, salvo.Method.AISE,
                                                 None)
            run = Runner("salvo", ex)
        elif kind == "ref-det":
            counter = Counter()
            ex, out["build_s"] = ref_explainer(xai, model, "DETECTION",
                                               counter.wrap(zoo.ssdlite_postprocess), None)
            run = Runner("reference", ex, counter)
        else:  # salvo-drise
            ex, out["build_s"] = salvo_explainer(model, salvo.Task.DETECTION,
                                                 zoo.ssdlite_postprocess, salvo.Method.RISE,
                                                 None)
            run = Runner("salvo", ex)
        if kind == "salvo-drise":
            run(x, -1, None, num_masks=32)
            calls = [("SPEED, all boxes", -1, "SPEED", {"num_masks": 250} if quick else {})]
        else:
            run(x, -1, "SPEED", num_iterations_per_kernel=4)
            calls = [("BALANCE, all boxes", -1, "BALANCE", {})]
    out["rss_after_warmup_mb"] = current_rss_mb()
    peak = peak_rss_mb()
    out["calls"] = []
    for name, targets, preset, kw in calls:
        base = current_rss_mb()
        reset_peak_rss()
        wall, inf, e = run(x, targets, preset, **kw)
        added = peak_rss_mb() - base
        peak = max(peak, peak_rss_mb())
        out["calls"].append({"call": name, "added_mb": added, "wall_s": wall,
                             "inferences": inf})
        del e
    out["process_peak_mb"] = peak
    return out


def run_probe(kind: str, quick: bool, timeout: float = 600) -> dict:
    args = ["--_probe", kind] + (["--quick"] if quick else [])
    return run_script(Path(__file__).resolve(), args, timeout)


# ----------------------------------------------------------------------------- quality
def photo_preprocess(image: np.ndarray) -> np.ndarray:
    """A 224 x 224 RGB crop (uint8 or float) -> the Lite0 input (as zoo's preprocess)."""
    x = (np.asarray(image, np.float32) - np.float32(127.0)) / np.float32(128.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def hwc_to_nchw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1)[None])


def _aise_salvo(model: ov.Model, postprocess: Any) -> Any:
    from salvo.methods.black_box.aise import AISEClassification

    return AISEClassification(model, postprocess, precision="f32", progress=False)


def _aise_ref(model: ov.Model, postprocess: Any) -> Any:
    from openvino_xai.methods.black_box.aise.classification import AISEClassification as Ref

    ref = Ref(model, postprocess, prepare_model=False)
    ref._model_compiled = ov.Core().compile_model(model, "CPU",
                                                  {"INFERENCE_PRECISION_HINT": "f32"})
    return ref


def positive_part_map(res: Any, height: int, width: int) -> np.ndarray:
    """A counterfactual, not a salvo feature: the map rebuilt from the same evaluations
    (``res.extra["history"]``) with negative objective values clipped to 0 before the
    kernel-density estimate, so no width is amplified by a tiny positive maximum and the
    final division never flips the order."""
    from salvo.kernels.gaussian import kde_map

    hist = res.extra["history"][0]
    widths = res.extra["kernel_widths"][0]
    total = np.zeros((height, width))
    for k, sigma in enumerate(widths):
        v = np.maximum(hist[k][:, 2], 0.0)
        m = kde_map(hist[k][:, 0], hist[k][:, 1], np.full(len(v), sigma), v, height, width)
        if m.max() > 0:
            total += m / m.max()
    return total / total.max() if total.max() > 0 else total


def _pg(smap: np.ndarray, boxes: list | None) -> float | None:
    from salvo.metrics import PointingGame

    if boxes is None:
        return None
    return float(PointingGame()(smap, boxes)["pointing_game"])


def quality_photos(xai: Any | None, quick: bool, refresh: bool) -> list[dict]:
    from salvo.metrics import InsertionDeletionAUC

    names = ("coffee",) if quick else ("coffee", "astronaut", "rocket")
    presets = QUICK_PRESETS if quick else PRESETS
    boxes = json.loads((HERE / "boxes.json").read_text())["photos"]
    model = zoo.efficientnet_lite0()
    metric = InsertionDeletionAUC(model, photo_preprocess, softmax, precision="f32")
    s_aise = _aise_salvo(model, softmax)
    r_aise = _aise_ref(model, softmax) if xai is not None else None
    meta = json.loads(REF_MAPS_META.read_text()) if REF_MAPS_META.is_file() else {}
    REF_MAPS.mkdir(parents=True, exist_ok=True)
    compiled = get_core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rows = []
    for name in names:
        crop = zoo.resize_crop_uint8(zoo.sample_image(name), SIZE)[0]
        x = photo_preprocess(crop)
        top1 = int(np.argmax(compiled(x)[0][0]))
        target = ESPRESSO if name == "coffee" else top1
        entry = boxes.get(name)
        pg_boxes = entry["boxes"] if entry and entry["expected_top1"] == target else None
        for preset in presets:
            res = s_aise.explain(x, [target], preset=preset.lower(), scale_output=False)
            smap = res.maps[0]
            maps = {"salvo": (smap, res.num_inferences)}
            key = f"aise_{name}_{target}_{preset.lower()}_f32_softmax"
            path = REF_MAPS / f"{key}.npy"
            if path.is_file() and not refresh and meta.get(key, {}).get("openvino") == \
                    ov.__version__:
                maps["reference"] = (np.load(path), meta[key]["inferences"])
            elif r_aise is not None:
                from openvino_xai.methods.black_box.base import Preset

                counter = Counter()
                r_aise.postprocess_fn = counter.wrap(softmax)
                rmap = np.asarray(r_aise.generate_saliency_map(
                    x, [target], preset=Preset[preset], scale_output=False)[target], np.float32)
                np.save(path, rmap)
                meta[key] = {"inferences": counter.calls, "openvino": ov.__version__,
                             "when": _dt.datetime.now().isoformat(timespec="seconds")}
                REF_MAPS_META.write_text(json.dumps(meta, indent=1, sort_keys=True))
                maps["reference"] = (rmap, counter.calls)
            maps["positive part"] = (positive_part_map(res, SIZE, SIZE), res.num_inferences)
            curves = metric.evaluate_maps([m for m, _ in maps.values()], [target] * len(maps),
                                          [crop] * len(maps), STEPS)
            corr = pearson(maps["salvo"][0], maps["reference"][0]) if "reference" in maps \
                else None
            for i, t in enumerate(maps):
                rows.append({"image": name, "class": target, "preset": preset, "toolkit": t,
                             "insertion": float(curves.insertion[i]),
                             "deletion": float(curves.deletion[i]),
                             "ins_minus_del": float(curves.insertion[i] - curves.deletion[i]),
                             "pointing_game": _pg(maps[t][0], pg_boxes),
                             "inferences": int(maps[t][1]),
                             "pearson_salvo_ref": None if t == "positive part" else corr})
            log(f"  quality {name} {preset}: " + ", ".join(
                f"{r['toolkit']} ins {r['insertion']:.3f} del {r['deletion']:.3f}"
                for r in rows[-len(maps):]) + (f", r={corr:.4f}" if corr is not None else ""))
    return rows


def quality_planted(xai: Any | None, quick: bool) -> tuple[list[dict], dict]:
    """Pointing game and insertion / deletion (logits) on the planted CNN and ViT; the planted
    CNN again with logits + SHIFT; the per-width diagnosis of CNN class 1 at SPEED."""
    from salvo.metrics import InsertionDeletionAUC
    from salvo.testing.planted import planted_cnn, planted_image, planted_vit

    presets = PRESETS  # cheap models: every preset even in --quick
    rows: list[dict] = []
    diagnosis: dict[str, Any] = {}
    cases = [("planted CNN", planted_cnn(size=112, static_batch=False), logits, "logits"),
             ("planted ViT", planted_vit(static_batch=False), logits, "logits")]
    cases += [("planted CNN", cases[0][1], shifted_logits, f"logits + {SHIFT}"),
              ("planted ViT", cases[1][1], shifted_logits, f"logits + {SHIFT}")]
    for name, pm, post, post_name in cases:
        raw = np.ascontiguousarray(planted_image(pm, "random", seed=7)[0].transpose(1, 2, 0))
        x = hwc_to_nchw(raw)
        metric = InsertionDeletionAUC(pm.model, hwc_to_nchw, logits, precision="f32")
        s_aise = _aise_salvo(pm.model, post)
        counter = Counter()
        r_aise = _aise_ref(pm.model, counter.wrap(post)) if xai is not None else None
        for preset in presets:
            for k, (y0, y1, x0, x1) in enumerate(pm.regions):
                box = [[x0, y0, x1 - x0 - 1, y1 - y0 - 1]]
                res = s_aise.explain(x, [k], preset=preset.lower(), scale_output=False)
                maps = {"salvo": (res.maps[0], res.num_inferences)}
                cf = positive_part_map(res, pm.input_size, pm.input_size)
                if r_aise is not None:
                    from openvino_xai.methods.black_box.base import Preset

                    counter.calls = 0
                    rmap = r_aise.generate_saliency_map(x, [k], preset=Preset[preset],
                                                        scale_output=False)[k]
                    maps["reference"] = (np.asarray(rmap, np.float32), counter.calls)
                maps["positive part"] = (cf, res.num_inferences)
                curves = metric.evaluate_maps([m for m, _ in maps.values()], [k] * len(maps),
                                              [raw] * len(maps), STEPS)
                corr = pearson(maps["salvo"][0], maps["reference"][0]) \
                    if "reference" in maps else None
                for i, t in enumerate(maps):
                    rows.append({"model": name, "scores": post_name, "class": k,
                                 "preset": preset, "toolkit": t,
                                 "pointing_game": _pg(maps[t][0], box),
                                 "insertion": float(curves.insertion[i]),
                                 "deletion": float(curves.deletion[i]),
                                 "ins_minus_del": float(curves.insertion[i]
                                                        - curves.deletion[i]),
                                 "inferences": int(maps[t][1]),
                             "pearson_salvo_ref": None if t == "positive part" else corr})
                if name == "planted CNN" and k == 1 and preset == "SPEED":
                    diagnosis[post_name] = _diagnose(res, post, pm, x)
        log(f"  planted {name} ({post_name}) done")
    return rows, diagnosis


def _diagnose(res: Any, post: Any, pm: Any, x: np.ndarray) -> dict:
    """Per kernel width: the kernel-density map's extremes before normalisation, and how many
    evaluations the sigmoid rule touched (an inference whose scores leave [0, 1])."""
    from salvo.kernels.gaussian import kde_map

    hist = res.extra["history"][0]
    widths = res.extra["kernel_widths"][0]
    h = w = pm.input_size
    per_width = []
    for kk, sigma in enumerate(widths):
        pts = hist[kk]
        m = kde_map(pts[:, 0], pts[:, 1], np.full(len(pts), sigma), pts[:, 2], h, w)
        per_width.append({"sigma": float(sigma), "value_max": float(pts[:, 2].max()),
                          "value_min": float(pts[:, 2].min()), "kde_max": float(m.max()),
                          "kde_min": float(m.min()),
                          "kde_min_after_norm": float(m.min() / m.max()) if m.max() > 0
                          else float(m.min())})
    # the sigmoid rule on the search's own masked images, re-scored in plain OpenVINO
    from salvo.kernels.gaussian import render_masks

    compiled = get_core().compile_model(pm.model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    touched = total = 0
    for kk, sigma in enumerate(widths):
        pts = hist[kk]
        for comp in (False, True):
            masks = render_masks(pts[:, 0], pts[:, 1], np.full(len(pts), sigma), h, w,
                                 np.full(len(pts), comp))
            for m in masks:
                s = np.asarray(post(compiled(x * m[None, None])))
                touched += int(s.max() > 1 or s.min() < 0)
                total += 1
    final = res.maps[0]
    y0, y1, x0, x1 = pm.regions[1]
    return {"per_width": per_width, "sigmoid_images": touched, "images": total,
            "final_peak_xy": [int(v) for v in np.unravel_index(np.argmax(final),
                                                               final.shape)[::-1]],
            "region_xyxy": [x0, y0, x1, y1]}


# ----------------------------------------------------------------------------- report
def _f(v: float | None, fmt: str = ".2f", suffix: str = "") -> str:
    return "" if v is None else f"{v:{fmt}}{suffix}"


def _joined(rows: list[dict], key: str, fmt: str) -> str:
    return " ".join(format(r[key], fmt) for r in rows)


def markdown(res: dict) -> str:
    lines: list[str] = []
    a = lines.append
    a(f"# Black-box AISE / D-RISE vs the reference{' (quick)' if res['quick'] else ''}")
    a("")
    a(f"{res['when']}, OpenVINO {res['openvino']}, salvo {res['salvo']}, reference "
      f"openvino-xai {res.get('reference_version') or 'not run'}, {res['cpu']}, "
      f"{os.cpu_count()} cores. Load average at start {res['load_start']}, at end "
      f"{res['load_end']} (shared machine). Total {res['total_s']:.0f} s.")
    a("")
    a("Wall = one `Explainer` call (raw maps: resize=False, colormap=False) after the "
      "Explainer is built and one warm-up call; median of the repeats. Inferences: salvo's "
      "`num_inferences`; the reference's counted calls of its `postprocess_fn` (once per "
      "inference). Bound = inferences / best plain-OpenVINO throughput of the sweep (any "
      "precision; `AsyncInferQueue` over the real preprocessed image); `w/prec.b` uses the "
      "best throughput at the row's own precision; `adj.` = wall / the same bound configuration "
      "(default precision) re-measured right around each call for as many images (half before, "
      "half after), median over the repeats: robust to the machine's changing load. Speed-up = reference wall / salvo wall at "
      "the same preset, targets and precision; `per inf.` = salvo s per inference / reference "
      "s per inference. Rows with `×N` rounds were measured interleaved (salvo, reference, "
      "...) and their speed-up is the median of the per-round ratios; other reference rows "
      "are one run. `default` = device-default precision (both toolkits compile with it; "
      "the reference in latency mode); `f32` = both at INFERENCE_PRECISION_HINT f32. Peak RSS "
      "= the method's fresh-process peak (see the memory table).")
    for task in [t for t in ("classification", "detection") if t in res.get("bounds", {})]:
        b = res["bounds"][task]
        dc, fc = b["default"]["config"], b["f32"]["config"]
        a("")
        model = "EfficientNet-Lite0 224x224, coffee" if task == "classification" else \
            "SSDLite person 300x300, astronaut"
        a(f"## {task.capitalize()}: {model}")
        a("")
        end = "".join(f"; re-measured at the end {b[p]['ips_end']:.0f}" if "ips_end" in b[p]
                      else "" for p in ("default",))
        a(f"Bound: default precision {b['default']['ips']:.0f} img/s (batch {dc['batch']}, "
          f"{dc['requests']} requests){end}; f32 {b['f32']['ips']:.0f} img/s (batch "
          f"{fc['batch']}, {fc['requests']} requests). Best: {b['best']}.")
        for k, v in res[f"{task}_explainers"].items():
            eng = ""
            if "batch_size" in v:
                eng = f", engine batch {v['batch_size']} x {v['num_requests']} requests"
            elif "INFERENCE_PRECISION_HINT" in v:
                eng = (f", compiled {v.get('INFERENCE_PRECISION_HINT')} "
                       f"{v.get('PERFORMANCE_HINT', '')}")
            a(f"- {k}: build {v['build_s']:.2f} s, warm-up {v['warmup_s']:.2f} s{eng}")
        if task == "classification":
            a(f"- top-5 classes: {res['top5']}")
        else:
            a(f"- boxes: {res['detection_boxes']}")
        a("")
        a("| method | toolkit | preset | targets | precision | inferences | wall s | ms / inf. "
          "| bound s | wall/bound | adj. | w/prec.b | speed-up vs ref | per inf. salvo/ref | "
          "peak RSS MB |")
        a("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in res["rows"]:
            if r["task"] != task:
                continue
            rounds = r.get("paired_rounds")
            sp = r.get("speedup_vs_reference")
            a(f"| {r['method']} | {r['toolkit']} | {r['preset']} | {r['targets']} | "
              f"{r['precision']} | {r['inferences']} | {r['wall_s']:.2f}"
              f"{f' (×{rounds})' if rounds and rounds > 1 else ''} | "
              f"{r['s_per_inference'] * 1e3:.2f} | {r['bound_s']:.2f} | "
              f"{r['wall_over_bound']:.2f} | {_f(r.get('wall_over_adjacent_bound'))} | "
              f"{r['wall_over_precision_bound']:.2f} | {_f(sp, '.2f', 'x')} | {_f(r.get('per_inference_ratio'))} | "
              f"{_f(r.get('peak_rss_mb'), '.0f')} |")
        key = [r for r in res["rows"] if r["task"] == task and r["toolkit"] == "salvo"
               and r["preset"] == KEY_PRESET and r["targets"].startswith("1")
               and "reference_wall_s" in r]
        for r in key:
            a("")
            ips = res["bounds"][task][r["precision"]]["ips"]  # the row's own precision
            a(f"{KEY_PRESET}, one target, {r['precision']}: the reference took "
              f"{r['reference_wall_s']:.2f} s for {r['reference_inferences']} inferences, "
              f"{r['reference_wall_s'] * ips / r['reference_inferences']:.2f} x the "
              f"{r['precision']} inference bound; salvo running exactly at that bound with its "
              f"{r['inferences']} inferences would be "
              f"{r['reference_wall_s'] / r['precision_bound_s']:.2f}x faster than the "
              f"reference (measured: {r['speedup_vs_reference']:.2f}x).")
    mem = res.get("memory", {})
    if mem:
        a("")
        a("## Memory (fresh process per method, default precision)")
        a("")
        a("| method | RSS after build + warm-up MB | call: added peak MB (wall s, inferences) | "
          "process peak MB |")
        a("|---|---:|---|---:|")
        for kind, m in mem.items():
            if "error" in m:
                a(f"| {kind} | | failed: {m['error'][:80]} | |")
                continue
            calls = "; ".join(f"{c['call']}: +{c['added_mb']:.0f} ({c['wall_s']:.2f} s, "
                              f"{c['inferences']})" for c in m["calls"])
            a(f"| {kind} | {m['rss_after_warmup_mb']:.0f} | {calls} | "
              f"{m['process_peak_mb']:.0f} |")
    q = res.get("quality_photos")
    if q:
        a("")
        a(f"## Map quality on photos (EfficientNet-Lite0, f32, softmax, {STEPS} steps)")
        a("")
        a("Pointing game with the hand-drawn boxes of benchmarks/boxes.json (when the class "
          "is the one they were drawn for). Pearson = correlation of salvo's map with the "
          "reference's at the same preset. `positive part` is a counterfactual, not a salvo "
          "feature: salvo's own evaluations re-aggregated with negative objective values "
          "clipped to 0 before the kernel-density estimate (see the last section).")
        a("")
        a("| image | class | preset | toolkit | inferences | Ins ↑ | Del ↓ | Ins − Del | PG | "
          "Pearson |")
        a("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
        for r in q:
            a(f"| {r['image']} | {r['class']} | {r['preset']} | {r['toolkit']} | "
              f"{r['inferences']} | {r['insertion']:.3f} | {r['deletion']:.3f} | "
              f"{r['ins_minus_del']:.3f} | {_f(r['pointing_game'], '.0f')} | "
              f"{_f(r['pearson_salvo_ref'], '.4f')} |")
        a("")
        a("Means over photos:")
        a("")
        a("| preset | toolkit | Ins | Del | Ins − Del | PG |")
        a("|---|---|---:|---:|---:|---:|")
        for preset in dict.fromkeys(r["preset"] for r in q):
            for t in ("salvo", "reference", "positive part"):
                sel = [r for r in q if r["preset"] == preset and r["toolkit"] == t]
                if not sel:
                    continue
                pgs = [r["pointing_game"] for r in sel if r["pointing_game"] is not None]
                a(f"| {preset} | {t} | {np.mean([r['insertion'] for r in sel]):.3f} | "
                  f"{np.mean([r['deletion'] for r in sel]):.3f} | "
                  f"{np.mean([r['ins_minus_del'] for r in sel]):.3f} | "
                  f"{_f(np.mean(pgs) if pgs else None)} ({len(pgs)}) |")
    p = res.get("quality_planted")
    if p:
        a("")
        a(f"## Map quality on the planted models (f32, {STEPS} steps, Ins/Del on logits)")
        a("")
        a("Classes 0, 1, 2 in order; the image is planted_image(random, seed 7). `scores` is "
          "what the explainer's postprocess_fn returns (the metric always scores the raw "
          f"logits); `logits + {SHIFT}` lifts every logit into [0, 1], which changes AISE "
          "only through its sigmoid rule. `positive part`: as above (counterfactual).")
        a("")
        a("| model | scores | preset | toolkit | PG per class | Ins per class | Del per class | "
          "mean Ins − Del | Pearson (min) |")
        a("|---|---|---|---|---|---|---|---:|---:|")
        groups = dict.fromkeys((r["model"], r["scores"], r["preset"], r["toolkit"]) for r in p)
        for g in groups:
            sel = [r for r in p if (r["model"], r["scores"], r["preset"], r["toolkit"]) == g]
            corr = [r["pearson_salvo_ref"] for r in sel if r["pearson_salvo_ref"] is not None]
            a(f"| {g[0]} | {g[1]} | {g[2]} | {g[3]} | "
              f"{_joined(sel, 'pointing_game', '.0f')} | "
              f"{_joined(sel, 'insertion', '.3f')} | {_joined(sel, 'deletion', '.3f')} | "
              f"{np.mean([r['ins_minus_del'] for r in sel]):.3f} | "
              f"{_f(min(corr) if corr else None, '.4f')} |")
    d = res.get("diagnosis")
    if d:
        a("")
        a("## Planted CNN class 1 at SPEED: why insertion < deletion")
        a("")
        a("Class 1's logit is the mean intensity of region 1 minus 0.01, so a mask that darkens "
          "region 1 drives it below 0 and AISE (salvo and the reference alike) "
          "puts that inference's scores through a sigmoid; the objective then compares "
          "sigmoid(-0.01) = 0.4975 with a raw logit of about 0.5 and hardly separates region 1 "
          "from the rest. At the smallest width its kernel-density map has a tiny positive "
          "maximum, and the per-width division by it blows the negative lobes up; they "
          "dominate the sum over widths. Per width, from salvo's search history:")
        a("")
        for post_name, dd in d.items():
            a(f"- scores = {post_name}: {dd['sigmoid_images']} of {dd['images']} masked images "
              f"went through the sigmoid (some score outside [0, 1]); map peak at "
              f"{tuple(dd['final_peak_xy'])}, region x0 y0 x1 y1 = {tuple(dd['region_xyxy'])}.")
            for w in dd["per_width"]:
                a(f"  - sigma {w['sigma']:.3f}: objective values {w['value_min']:+.3f} .. "
                  f"{w['value_max']:+.3f}; kernel-density map {w['kde_min']:+.3f} .. "
                  f"{w['kde_max']:+.3f}, after division by its max: min "
                  f"{w['kde_min_after_norm']:+.1f}")
    return "\n".join(lines) + "\n"


def timing(res: dict, xai: Any | None, quick: bool) -> None:
    """The timed rows, the bounds and the memory probes, into ``res``."""
    sweep_kw = ({"batches": [1, 4], "requests": [2, 4], "seconds": 0.5, "repeats": 1} if quick
                else {"batches": [1, 2, 4, 8], "requests": [1, 2, 4], "seconds": 0.8,
                      "repeats": 3})
    log(f"bounds (load {loadavg()})")
    bounds = {
        "classification": bound_sweep("Lite0", lite0_at(SIZE), coffee_input(), **sweep_kw),
        "detection": bound_sweep("SSDLite", zoo.ssdlite_person(),
                                 zoo.ssdlite_preprocess(zoo.sample_image("astronaut")),
                                 **sweep_kw),
    }
    for b in bounds.values():  # keep only the default-precision queue (re-measured at the end)
        b["f32"]["queue"] = None
    rows: list[dict] = []
    log(f"classification (load {loadavg()})")
    Runner.probe = bounds["classification"]["default"]["queue"]
    rows += classification_rows(xai, quick, bounds["classification"], res)
    log(f"detection (load {loadavg()})")
    Runner.probe = bounds["detection"]["default"]["queue"]
    rows += detection_rows(xai, quick, bounds["detection"], res)
    Runner.probe = None
    # the bound again at the end of the timed part (load drift)
    for b in bounds.values():
        b["default"]["ips_end"] = b["default"]["queue"].measure(1.0)
    pair_up(rows)
    res["rows"] = rows
    res["bounds"] = {k: _public_bound(v) for k, v in bounds.items()}
    del bounds
    log(f"memory probes (load {loadavg()})")
    kinds = ["salvo-cls", "salvo-det", "salvo-drise"]
    if xai is not None:
        kinds += ["ref-cls", "ref-det"]
    res["memory"] = {}
    for kind in kinds:
        try:
            res["memory"][kind] = run_probe(kind, quick)
        except Exception as exc:  # noqa: BLE001 (reported, the rest goes on)
            res["memory"][kind] = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"  {kind}: {res['memory'][kind].get('process_peak_mb', 'failed')} MB")
    which = {("classification", "AISE", "salvo"): "salvo-cls",
             ("classification", "AISE", "reference"): "ref-cls",
             ("detection", "AISE", "salvo"): "salvo-det",
             ("detection", "AISE", "reference"): "ref-det",
             ("detection", "D-RISE", "salvo"): "salvo-drise"}
    for r in rows:
        m = res["memory"].get(which.get((r["task"], r["method"], r["toolkit"]), ""), {})
        if "process_peak_mb" in m:
            r["peak_rss_mb"] = m["process_peak_mb"]


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="SPEED and BALANCE only, short sweeps (under 5 minutes)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output prefix: writes <out>.json and <out>.md (default "
                             "results/blackbox_aise[_quick])")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference toolkit")
    parser.add_argument("--refresh-reference", action="store_true",
                        help="recompute the reference's cached photo maps")
    parser.add_argument("--skip-quality", action="store_true", help="timing rows only")
    parser.add_argument("--skip-timing", action="store_true", help="map quality only")
    parser.add_argument("--markdown-from", type=Path, default=None, metavar="JSON",
                        help="only re-render the Markdown of an earlier run's JSON")
    parser.add_argument("--_probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._probe:
        print(json.dumps(_probe(args._probe, args.quick)))
        return 0
    if args.markdown_from:
        md = markdown(json.loads(args.markdown_from.read_text()))
        args.markdown_from.with_suffix(".md").write_text(md)
        print(md)
        return 0

    out = args.out or RESULTS / ("blackbox_aise_quick" if args.quick else "blackbox_aise")
    if out.suffix in (".json", ".md"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    xai = None
    if not args.no_reference:
        if reference_available():
            xai = load_reference()
            logging.getLogger("openvino_xai").setLevel(logging.WARNING)
        else:
            log("reference toolkit not installed (pip install --no-deps openvino-xai==1.1.0): "
                "skipping it")
    res: dict[str, Any] = {
        "quick": args.quick, "when": _dt.datetime.now().isoformat(timespec="seconds"),
        "openvino": ov.__version__, "salvo": salvo.__version__,
        "reference_version": getattr(xai, "__version__", "1.1.0") if xai else None,
        "cpu": platform.processor() or platform.machine(), "load_start": loadavg(),
        "command": " ".join([Path(sys.argv[0]).name, *argv]),
    }
    quick = args.quick
    res["rows"] = []
    if not args.skip_timing:
        timing(res, xai, quick)
    if not args.skip_quality:
        log(f"quality (load {loadavg()})")
        res["quality_photos"] = quality_photos(xai, quick, args.refresh_reference)
        res["quality_planted"], res["diagnosis"] = quality_planted(xai, quick)
    res["load_end"] = loadavg()
    res["total_s"] = time.perf_counter() - t_start
    md = markdown(res)
    print(md)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    out.with_suffix(".md").write_text(md)
    print(f"total {res['total_s']:.0f} s; wrote {out.with_suffix('.json')} and "
          f"{out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
