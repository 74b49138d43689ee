"""``salvo bench``: inference and explanation speed per device and method.

Per device: plain-OpenVINO inference throughput (synchronous single image, and the inference
bound: an ``AsyncInferQueue`` over ready-made inputs, the best of a batch × requests sweep) and
salvo's engine (:func:`salvo.measure.measure_inference`). Per method and preset: the wall time
of one explanation (after a warm-up call, median over repeats), its inferences, the ratio to
what the device could do (``x bound``) and the process's peak resident memory
(:func:`time_method`). Written to ``--out`` as ``bench.json``, ``bench.md`` and ``bench.png``
(:mod:`salvo.cli.bench_report`); a table goes to the terminal. ``--compare-reference`` adds the
reference toolkit (openvino-xai 1.1) when it is installed, at its own defaults
(:mod:`salvo.cli.reference`).

The machine may be shared: ``/proc/loadavg`` is recorded before and after each device.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import salvo
from salvo import zoo
from salvo.cli.bench_report import fmt, format_markdown, format_table, write_chart
from salvo.cli.models import ScoresOutput, load_model, parse_targets
from salvo.cli.reference import load_reference, time_reference
from salvo.cli.shared import check_writable_folder, device_name, versions
from salvo.common import BLACKBOX_METHODS, ExplainMode, Method, Preset, Task
from salvo.errors import UsageError
from salvo.files import atomic_write
from salvo.inference import available_devices, check_device, get_core
from salvo.measure import (
    compile_config,
    loadavg,
    measure_inference,
    peak_rss_mb,
    reset_peak_rss,
)
from salvo.preprocess import apply_preprocess, parse_preprocess, prepare_model, read_image

__all__ = ["BenchSettings", "bench_settings", "run_bench", "time_method"]

BENCH_JSON = "bench.json"
BENCH_MD = "bench.md"
BENCH_PNG = "bench.png"
REFERENCE_CACHE = "reference_cache.json"


# ================================================================================ measuring


def time_method(model: Any, x: np.ndarray, device: str, method: str, preset: str | None,
                targets: list[int], *, precision: str | None, repeats: int,
                num_masks: int | None, postprocess_fn: Callable[[Any], Any]) -> dict[str, Any]:
    """Time one explanation of ``x`` (after a warm-up call); median over ``repeats``.

    Returns ``{"wall_s", "walls", "inferences", "compile_s", "warmup_s", "peak_rss_mb", "mode",
    "method", "preset", "kwargs"}``.
    """
    m = Method(method)
    blackbox = m in BLACKBOX_METHODS
    kwargs: dict[str, Any] = {}
    if precision:
        kwargs["precision"] = precision
    if blackbox:
        if preset:
            kwargs["preset"] = preset
        if num_masks is not None and m == Method.RISE:
            kwargs["num_masks"] = num_masks
    t0 = time.perf_counter()
    explainer = salvo.Explainer(
        model, salvo.Task.CLASSIFICATION, postprocess_fn=postprocess_fn,
        explain_mode=ExplainMode.BLACKBOX if blackbox else ExplainMode.WHITEBOX,
        explain_method=m, device_name=device, **kwargs,
    )
    compile_s = time.perf_counter() - t0
    call = {"resize": False, "colormap": False}
    if blackbox:
        call["progress"] = False
    t0 = time.perf_counter()
    explanation = explainer(x, targets=targets, **call)
    warmup_s = time.perf_counter() - t0
    reset = reset_peak_rss()
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        explanation = explainer(x, targets=targets, **call)
        walls.append(time.perf_counter() - t0)
    return {
        "mode": explainer.explain_mode.value, "method": explainer.explain_method.value,
        "preset": preset if blackbox else None, "kwargs": {k: str(v) for k, v in kwargs.items()},
        "wall_s": statistics.median(walls), "walls": walls,
        "inferences": int(explanation.num_inferences), "compile_s": compile_s,
        "warmup_s": warmup_s, "peak_rss_mb": peak_rss_mb(), "peak_rss_reset": reset,
    }


# ================================================================================ the command


@dataclass
class BenchSettings:
    """The checked options of a ``salvo bench`` run (``--quick`` applied)."""

    quick: bool
    repeats: int
    seconds: float  # per throughput measurement
    batches: tuple[int, ...]  # of the inference-bound sweep
    devices: list[str]
    methods: list[str]
    presets: list[str]
    num_masks: int | None
    precision: str | None


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def bench_settings(args: argparse.Namespace) -> BenchSettings:
    """Check the options of ``salvo bench`` (devices are checked to exist).

    Raises
    ------
    UsageError
        ``--repeats`` or ``--num-masks`` below 1, an unknown method or preset.
    """
    quick = bool(args.quick)
    repeats = args.repeats if args.repeats is not None else (2 if quick else 3)
    if repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {repeats}")
    devices = _split(args.devices) or available_devices()
    for device in devices:
        check_device(device)
    if args.methods:
        methods = []
        for name in _split(args.methods):
            try:
                methods.append(Method(name.lower()).value)
            except ValueError:
                raise UsageError(f"--methods: unknown method {name!r}; one of "
                                 f"{[m.value for m in Method]}") from None
    else:
        # deferred: the black-box methods load Numba, which every other command (and --help)
        # would otherwise wait for
        from salvo.methods.factory import REGISTRY

        methods = ["reciprocam", "rise"]
        if (Method.AISE, Task.CLASSIFICATION) in REGISTRY and not quick:
            methods.append("aise")
    presets = _split(args.presets) or ["speed"]
    for p in presets:
        try:
            Preset(p.lower())
        except ValueError:
            raise UsageError(f"--presets: unknown preset {p!r}; one of "
                             f"{[q.value for q in Preset]}") from None
    num_masks = args.num_masks if args.num_masks is not None else (128 if quick else None)
    if num_masks is not None and num_masks < 1:
        raise UsageError(f"--num-masks must be >= 1, got {num_masks}")
    return BenchSettings(
        quick=quick, repeats=repeats, seconds=0.5 if quick else 2.0,
        batches=(1, 8) if quick else (1, 4, 8, 16), devices=devices, methods=methods,
        presets=presets, num_masks=num_masks,
        precision=None if args.precision == "default" else args.precision,
    )


def run_bench(args: argparse.Namespace) -> int:
    """``salvo bench``: see ``salvo bench --help``. Returns the exit status."""
    s = bench_settings(args)
    model, zoo_entry = load_model(args.model)
    if zoo_entry is not None and zoo_entry.task != "classification":
        raise UsageError(f"salvo bench measures classifiers; {args.model} is a "
                         f"{zoo_entry.task} model")
    pre = parse_preprocess(args.preprocess or (zoo_entry.preprocess if zoo_entry else "raw"))
    model, info = prepare_model(model, pre)
    image = read_image(args.image) if args.image else zoo.sample_image("coffee")
    x, _ = apply_preprocess(image, pre, info)
    out = Path(args.out)
    check_writable_folder(out)
    postprocess = ScoresOutput(0)
    targets = _model_targets(model, x, s, args.targets, postprocess)

    results: dict[str, Any] = {
        "header": {
            "model": args.model, "input": {"size": list(info.size), "layout": info.layout,
                                           "dtype": str(info.dtype)},
            "preprocess": pre.name, "precision": s.precision or "device default",
            "repeats": s.repeats, "quick": s.quick, "targets": targets,
            "num_masks": s.num_masks, "presets": s.presets, "methods": s.methods,
            "versions": versions(), "when": _dt.datetime.now().isoformat(timespec="seconds"),
            "loadavg_start": loadavg(), "command": ["salvo", *getattr(args, "argv", [])],
            "cpu_count": os.cpu_count(),
        },
        "devices": {},
    }
    reference = _Reference.open(out) if args.compare_reference else None
    for device in s.devices:
        results["devices"][device] = _bench_device(
            device, model, x, targets, s, postprocess, reference, args.model)
    results["header"]["loadavg_end"] = loadavg()
    _write_results(results, out, reference)
    return 0


def _model_targets(model: Any, x: np.ndarray, s: BenchSettings, spec_text: str,
                   postprocess: ScoresOutput) -> list[int]:
    """The targets of ``--targets`` for ``x``, from the model's own prediction on the first
    device (``topK``) or as given."""
    compiled = get_core().compile_model(model, s.devices[0],
                                        compile_config("LATENCY", s.precision))
    scores = postprocess(compiled({0: x}))[0]
    del compiled
    spec = parse_targets(spec_text, None, scores.shape[0])
    return spec(scores) if callable(spec) else [int(t) for t in spec]


def _bench_device(device: str, model: Any, x: np.ndarray, targets: list[int], s: BenchSettings,
                  postprocess: ScoresOutput, reference: _Reference | None,
                  model_name: str) -> dict[str, Any]:
    """Everything measured on one device: its inference throughput, then one row per method
    and preset (with the reference's time when asked for)."""
    entry: dict[str, Any] = {"name": device_name(device), "loadavg_start": loadavg()}
    print(f"{device} ({entry['name']}):", file=sys.stderr)
    try:
        entry["inference"] = measure_inference(model, x, device, s.precision, seconds=s.seconds,
                                               repeats=s.repeats, batches=s.batches)
    except Exception as exc:
        entry["error"] = f"inference failed: {str(exc).splitlines()[0]}"
        print(f"  {entry['error']}", file=sys.stderr)
        return entry
    inf = entry["inference"]
    entry["methods"] = []
    for method in s.methods:
        blackbox = Method(method) in BLACKBOX_METHODS
        for preset in (s.presets if blackbox else [None]):
            label = method + (f"/{preset}" if preset else "")
            try:
                row = time_method(model, x, device, method, preset, targets,
                                  precision=s.precision, repeats=s.repeats,
                                  num_masks=s.num_masks, postprocess_fn=postprocess)
            except Exception as exc:  # e.g. a method not available in this version
                row = {"method": method, "preset": preset,
                       "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
                print(f"  {label}: unavailable: {row['error']}", file=sys.stderr)
                entry["methods"].append(row)
                continue
            if blackbox:
                row["ideal_s"] = row["inferences"] / inf["bound"]
            else:
                row["ideal_s"] = 1.0 / inf["sync"]
            row["x_bound"] = row["wall_s"] / row["ideal_s"]
            print(f"  {label}: {row['wall_s']:.3f} s, {row['inferences']} inferences, "
                  f"{row['x_bound']:.2f}x bound, peak {fmt(row['peak_rss_mb'], '.0f')} MB",
                  file=sys.stderr)
            if reference is not None and reference.xai is not None and \
                    method in ("rise", "reciprocam", "activationmap") and \
                    device.upper().startswith("CPU"):
                row["reference"] = reference.time(model, x, device, method, preset, targets, s,
                                                  postprocess, model_name)
            entry["methods"].append(row)
    entry["loadavg_end"] = loadavg()
    return entry


class _Reference:
    """The reference toolkit of ``--compare-reference`` and its timings cached in
    ``--out``/``reference_cache.json`` (keyed by model, device, method, masks, targets and
    precision), so a repeated bench does not time it again."""

    def __init__(self, xai: Any | None, cache: dict[str, Any]) -> None:
        self.xai = xai
        self.cache = cache

    @classmethod
    def open(cls, out: Path) -> _Reference:
        """Import the reference (a note when it is missing) and read the cache in ``out``."""
        xai = None
        try:
            xai = load_reference()
        except Exception as exc:  # installed but broken
            print(f"salvo: warning: the reference toolkit does not import: {exc}",
                  file=sys.stderr)
        if xai is None:
            print("salvo: note: --compare-reference: openvino-xai is not installed "
                  "(pip install --no-deps openvino-xai==1.1.0)", file=sys.stderr)
        cache: dict[str, Any] = {}
        cache_path = out / REFERENCE_CACHE
        if cache_path.is_file():
            try:
                cache = json.loads(cache_path.read_text())
            except ValueError:
                cache = {}
        return cls(xai, cache)

    def time(self, model: Any, x: np.ndarray, device: str, method: str, preset: str | None,
             targets: list[int], s: BenchSettings, postprocess: ScoresOutput,
             model_name: str) -> dict[str, Any]:
        """The reference's timing of ``method`` (cached), its RISE runs extrapolated to the
        masks salvo used."""
        ref_masks = 16 if s.quick else 48
        key = f"{model_name}|{device}|{method}|{ref_masks}|{targets}|{s.precision}"
        ref = self.cache.get(key)
        if ref is None:
            try:
                ref = time_reference(self.xai, model, x, method, targets, ref_masks,
                                     1 if s.quick else 2, postprocess, s.precision)
                ref["when"] = _dt.datetime.now().isoformat(timespec="seconds")
                self.cache[key] = ref
            except Exception as exc:
                ref = {"error": str(exc).splitlines()[0]}
        masks = s.num_masks or _preset_masks(preset)
        return {**ref, "runs": [
            {**run, "extrapolated_s": run["s_per_mask"] * masks,
             "extrapolated_masks": masks} if "s_per_mask" in run else run
            for run in ref.get("runs", [])]}


def _write_results(results: dict[str, Any], out: Path, reference: _Reference | None) -> None:
    """Write ``bench.json``, ``bench.md``, ``bench.png`` (and the reference cache) into ``out``
    and print the table."""
    out.mkdir(parents=True, exist_ok=True)
    png = out / BENCH_PNG
    wrote_png = write_chart(results, png)
    atomic_write(out / BENCH_JSON, json.dumps(results, indent=1, default=str).encode())
    atomic_write(out / BENCH_MD,
                 format_markdown(results, BENCH_PNG if wrote_png else None).encode())
    if reference is not None and reference.cache:
        atomic_write(out / REFERENCE_CACHE,
                     json.dumps(reference.cache, indent=1, default=str).encode())
    print(format_table(results))
    print(f"\nwrote {out / BENCH_JSON}, {out / BENCH_MD}"
          + (f", {png}" if wrote_png else "") + f"; load average {loadavg()}")


def _preset_masks(preset: str | None) -> int:
    """RISE's ``num_masks`` for a preset name (BALANCE when None)."""
    from salvo.methods.black_box.rise import RISE_PRESETS  # deferred: see bench_settings

    return RISE_PRESETS[Preset(preset or "balance")].num_masks
