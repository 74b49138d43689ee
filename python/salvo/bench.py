"""``salvo bench``: inference and explanation speed per device and method.

Per device: plain-OpenVINO inference throughput (synchronous single image, and the inference
bound: an ``AsyncInferQueue`` over ready-made inputs, the best of a batch × requests sweep) and
salvo's engine. Per method and preset: the wall time of one explanation (after a warm-up call,
median over repeats), its inferences, the ratio to what the device could do (``x bound``) and the
process's peak resident memory. Written to ``--out`` as ``bench.json``, ``bench.md`` and
``bench.png``; a table goes to the terminal. ``--compare-reference`` adds the reference toolkit
(openvino-xai 1.1) when it is installed, at its own defaults.

The machine may be shared: ``/proc/loadavg`` is recorded before and after each device.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import importlib.util
import io
import json
import logging
import os
import statistics
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["measure_inference", "run_bench", "time_method"]

BENCH_JSON = "bench.json"
BENCH_MD = "bench.md"
BENCH_PNG = "bench.png"
REFERENCE_CACHE = "reference_cache.json"


# ------------------------------------------------------------------------------ measuring


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
        import resource

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


def _config(hint: str, precision: str | None) -> dict[str, str]:
    config = {"PERFORMANCE_HINT": hint}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


def _batched(model: Any, batch: int) -> Any:
    import openvino as ov

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
        import openvino as ov

        from salvo.inference import get_core

        self.compiled = get_core().compile_model(_batched(model, batch), device,
                                                 _config("THROUGHPUT", precision))
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

    from salvo.inference import InferenceEngine, get_core

    core = get_core()
    t0 = time.perf_counter()
    compiled = core.compile_model(model, device, _config("LATENCY", precision))
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


def time_method(model: Any, x: np.ndarray, device: str, method: str, preset: str | None,
                targets: list[int], *, precision: str | None, repeats: int,
                num_masks: int | None, postprocess_fn: Callable[[Any], Any]) -> dict[str, Any]:
    """Time one explanation of ``x`` (after a warm-up call); median over ``repeats``.

    Returns ``{"wall_s", "walls", "inferences", "compile_s", "warmup_s", "peak_rss_mb", "mode",
    "method", "preset", "kwargs"}``.
    """
    import salvo
    from salvo.common import BLACKBOX_METHODS, ExplainMode, Method

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


# ------------------------------------------------------------------------------- reference


def _alias(name: str, target: Any) -> None:
    """Register ``name`` as a module that re-exports ``target`` (the openvino.runtime shim)."""
    if name in sys.modules:
        return
    module = types.ModuleType(name)
    module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})
    module.__path__ = []
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)


def load_reference() -> Any | None:
    """The reference toolkit ``openvino_xai`` (with the ``openvino.runtime`` shim), or None."""
    if importlib.util.find_spec("openvino_xai") is None:
        return None
    import openvino
    import openvino.opset10
    from openvino.utils.data_helpers import wrappers

    # openvino-xai 1.1 imports openvino.runtime, which OpenVINO 2026 removed (a re-export)
    _alias("openvino.runtime", openvino)
    _alias("openvino.runtime.opset10", openvino.opset10)
    _alias("openvino.runtime.utils", openvino.utils)
    _alias("openvino.runtime.utils.data_helpers", openvino.utils.data_helpers)
    _alias("openvino.runtime.utils.data_helpers.wrappers", wrappers)
    return importlib.import_module("openvino_xai")


def _quiet_reference(xai: Any) -> None:
    """Switch off the reference's INFO logs and per-mask progress bars (its modules' ``tqdm``).

    Call it after the reference's Explainer is built (its method modules load lazily).
    """
    import functools

    from tqdm import tqdm

    logging.getLogger(xai.__name__).setLevel(logging.WARNING)
    for name, module in list(sys.modules.items()):
        if name.startswith(xai.__name__) and getattr(module, "tqdm", None) is tqdm:
            module.tqdm = functools.partial(tqdm, disable=True)


def time_reference(xai: Any, model: Any, x: np.ndarray, method: str, targets: list[int],
                   masks: int, repeats: int, postprocess_fn: Callable[[Any], Any],
                   precision: str | None) -> dict[str, Any]:
    """Time the reference toolkit on CPU: at its defaults (the device's default precision,
    latency hint), and at ``precision`` when given (its model recompiled with only that hint).

    Returns ``{"compile_s", "runs": [{"precision", "wall_s", "walls"[, "s_per_mask", "masks"]}]}``;
    RISE runs use ``masks`` masks (the caller extrapolates per mask).
    """
    import openvino as ov

    _quiet_reference(xai)  # its logger exists once it is imported
    t0 = time.perf_counter()
    if method == "rise":
        ref = xai.Explainer(model=model, task=xai.Task.CLASSIFICATION,
                            postprocess_fn=postprocess_fn,
                            explain_mode=xai.explainer.ExplainMode.BLACKBOX,
                            explain_method=xai.Method.RISE)
        call = {"num_masks": masks}
    else:
        ref = xai.Explainer(model=model, task=xai.Task.CLASSIFICATION,
                            explain_mode=xai.explainer.ExplainMode.WHITEBOX,
                            explain_method=getattr(xai.Method, method.upper()))
        call = {}
    compile_s = time.perf_counter() - t0
    _quiet_reference(xai)  # again: building the Explainer imported the method's module
    out: dict[str, Any] = {"compile_s": compile_s, "runs": []}
    settings: list[str | None] = [None] + ([precision] if precision else [])
    for setting in settings:
        if setting is not None:  # the same compile call as the reference's, plus the hint
            ref.method._model_compiled = ov.Core().compile_model(
                ref.method._model, "CPU", {"INFERENCE_PRECISION_HINT": setting})
        try:
            used = str(ref.method._model_compiled.get_property("INFERENCE_PRECISION_HINT"))
        except Exception:  # an older reference without the attribute
            used = setting or "default"
        ref(x, targets=targets, resize=False, colormap=False, **call)
        walls = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ref(x, targets=targets, resize=False, colormap=False, **call)
            walls.append(time.perf_counter() - t0)
        run: dict[str, Any] = {"precision": used.lower().replace("<type: '", "").rstrip("'>"),
                               "default": setting is None, "wall_s": statistics.median(walls),
                               "walls": walls}
        if method == "rise":
            run["masks"] = masks
            run["s_per_mask"] = run["wall_s"] / masks
        out["runs"].append(run)
    return out


# ---------------------------------------------------------------------------------- reports


def _fmt(value: Any, spec: str = ".3g") -> str:
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
                         f"{r['x_bound']:.2f}", _fmt(r.get("peak_rss_mb"), ".0f"),
                         f"{r['compile_s']:.2f}", ref_text])
        if not d.get("methods") and "error" in d:
            rows.append([device, "-", "-", "-", "-", "-", "-", d["error"][:60]])
    return rows


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
    from salvo.cli import write_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return True


# ---------------------------------------------------------------------------------- command


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def run_bench(args: argparse.Namespace) -> int:
    """``salvo bench``: see ``salvo bench --help``. Returns the exit status."""
    from salvo.cli import (
        ScoresOutput,
        UsageError,
        _device_name,
        _versions,
        apply_preprocess,
        check_writable_folder,
        load_model,
        parse_preprocess,
        parse_targets,
        prepare_model,
        read_image,
        write_atomic,
    )
    from salvo.common import BLACKBOX_METHODS, Method, Preset, Task
    from salvo.inference import available_devices, check_device, get_core
    from salvo.methods.black_box import REGISTRY

    quick = bool(args.quick)
    repeats = args.repeats if args.repeats is not None else (2 if quick else 3)
    if repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {repeats}")
    seconds = 0.5 if quick else 2.0
    batches = (1, 8) if quick else (1, 4, 8, 16)
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
    precision = None if args.precision == "default" else args.precision

    model, zoo_entry = load_model(args.model)
    if zoo_entry is not None and zoo_entry.task != "classification":
        raise UsageError(f"salvo bench measures classifiers; {args.model} is a "
                         f"{zoo_entry.task} model")
    pre = parse_preprocess(args.preprocess or (zoo_entry.preprocess if zoo_entry else "raw"))
    model, info = prepare_model(model, pre)
    if args.image:
        image = read_image(args.image)
    else:
        from salvo.zoo import sample_image

        image = sample_image("coffee")
    x, _ = apply_preprocess(image, pre, info)
    out = Path(args.out)
    check_writable_folder(out)
    postprocess = ScoresOutput(0)

    # the targets: from the model's own prediction on the first device
    compiled = get_core().compile_model(model, devices[0], _config("LATENCY", precision))
    scores = postprocess(compiled({0: x}))[0]
    del compiled
    spec = parse_targets(args.targets, None, scores.shape[0])
    targets = spec(scores) if callable(spec) else [int(t) for t in spec]

    results: dict[str, Any] = {
        "header": {
            "model": args.model, "input": {"size": list(info.size), "layout": info.layout,
                                           "dtype": str(info.dtype)},
            "preprocess": pre.name, "precision": precision or "device default",
            "repeats": repeats, "quick": quick, "targets": targets,
            "num_masks": num_masks, "presets": presets, "methods": methods,
            "versions": _versions(), "when": _dt.datetime.now().isoformat(timespec="seconds"),
            "loadavg_start": loadavg(), "command": ["salvo", *getattr(args, "argv", [])],
            "cpu_count": os.cpu_count(),
        },
        "devices": {},
    }
    xai_ref = None
    ref_cache: dict[str, Any] = {}
    if args.compare_reference:
        try:
            xai_ref = load_reference()
        except Exception as exc:  # installed but broken
            print(f"salvo: warning: the reference toolkit does not import: {exc}",
                  file=sys.stderr)
        if xai_ref is None:
            print("salvo: note: --compare-reference: openvino-xai is not installed "
                  "(pip install --no-deps openvino-xai==1.1.0)", file=sys.stderr)
        cache_path = out / REFERENCE_CACHE
        if cache_path.is_file():
            try:
                ref_cache = json.loads(cache_path.read_text())
            except ValueError:
                ref_cache = {}

    for device in devices:
        entry: dict[str, Any] = {"name": _device_name(device), "loadavg_start": loadavg()}
        results["devices"][device] = entry
        print(f"{device} ({entry['name']}):", file=sys.stderr)
        try:
            entry["inference"] = measure_inference(model, x, device, precision, seconds=seconds,
                                                   repeats=repeats, batches=batches)
        except Exception as exc:
            entry["error"] = f"inference failed: {str(exc).splitlines()[0]}"
            print(f"  {entry['error']}", file=sys.stderr)
            continue
        inf = entry["inference"]
        entry["methods"] = []
        for method in methods:
            blackbox = Method(method) in BLACKBOX_METHODS
            for preset in (presets if blackbox else [None]):
                label = method + (f"/{preset}" if preset else "")
                try:
                    row = time_method(model, x, device, method, preset, targets,
                                      precision=precision, repeats=repeats,
                                      num_masks=num_masks, postprocess_fn=postprocess)
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
                      f"{row['x_bound']:.2f}x bound, peak {_fmt(row['peak_rss_mb'], '.0f')} MB",
                      file=sys.stderr)
                if xai_ref is not None and method in ("rise", "reciprocam", "activationmap") \
                        and device.upper().startswith("CPU"):
                    ref_masks = 16 if quick else 48
                    key = f"{args.model}|{device}|{method}|{ref_masks}|{targets}|{precision}"
                    ref = ref_cache.get(key)
                    if ref is None:
                        try:
                            ref = time_reference(xai_ref, model, x, method, targets, ref_masks,
                                                 1 if quick else 2, postprocess, precision)
                            ref["when"] = _dt.datetime.now().isoformat(timespec="seconds")
                            ref_cache[key] = ref
                        except Exception as exc:
                            ref = {"error": str(exc).splitlines()[0]}
                    masks = num_masks or _preset_masks(preset)
                    ref = {**ref, "runs": [
                        {**run, "extrapolated_s": run["s_per_mask"] * masks,
                         "extrapolated_masks": masks} if "s_per_mask" in run else run
                        for run in ref.get("runs", [])]}
                    row["reference"] = ref
                entry["methods"].append(row)
        entry["loadavg_end"] = loadavg()
    results["header"]["loadavg_end"] = loadavg()

    out.mkdir(parents=True, exist_ok=True)
    png = out / BENCH_PNG
    wrote_png = write_chart(results, png)
    write_atomic(out / BENCH_JSON, json.dumps(results, indent=1, default=str).encode())
    write_atomic(out / BENCH_MD,
                 format_markdown(results, BENCH_PNG if wrote_png else None).encode())
    if ref_cache:
        write_atomic(out / REFERENCE_CACHE, json.dumps(ref_cache, indent=1, default=str).encode())
    print(format_table(results))
    print(f"\nwrote {out / BENCH_JSON}, {out / BENCH_MD}"
          + (f", {png}" if wrote_png else "") + f"; load average {loadavg()}")
    return 0


def _preset_masks(preset: str | None) -> int:
    """RISE's ``num_masks`` for a preset name (BALANCE when None)."""
    from salvo.common import Preset
    from salvo.methods.black_box.rise import RISE_PRESETS

    return RISE_PRESETS[Preset(preset or "balance")].num_masks
