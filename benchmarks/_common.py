"""What every benchmark script shares: models and inputs, the plain-OpenVINO inference bound,
interleaved rounds with medians and spreads, the reference toolkit, and the JSON / Markdown
output.

How the scripts measure
-----------------------
* **Parameters are axes.** A script takes lists of models (``--models lite0@224 ssdlite``),
  devices, precisions, batch sizes and numbers of requests, methods and presets, and measures
  their product (:func:`grid`).
* **A warm-up is kept apart.** :func:`interleaved` calls every variant once before the rounds
  and reports that call's seconds separately (compilation, first-call JIT, caches).
* **Rounds are interleaved.** Every round calls every variant once, in a shuffled order, so
  the load of other processes on a shared machine hits all variants alike. Figures are medians
  over the rounds.
* **Ratios are paired.** :func:`paired` divides each variant by a baseline measured in the same
  round (plain OpenVINO's inference bound, the plain model, the sequential call, the reference
  toolkit) and reports the median ratio with its range (min-max over the rounds): the spread.
* **The machine's load is recorded** at the start and at the end (``/proc/loadavg``).

Results go to ``benchmarks/results/<name>.json`` and ``.md`` (``--quick``:
``benchmarks/results/quick/``, not kept in git); ``--out PATH`` writes elsewhere.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import itertools
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # the reference toolkit's per-mask progress bars

import numpy as np
import openvino as ov
import salvo
from salvo.files import atomic_write
from salvo.measure import PlainQueue, peak_rss_mb, reset_peak_rss
from salvo.metrics.adcc import correlation
from salvo.testing.reference import REFERENCE_INSTALL, load_reference, reference_available

__all__ = [
    "HERE",
    "REFERENCE_INSTALL",
    "RESULTS",
    "PlainQueue",
    "Report",
    "Sample",
    "blas_one_thread",
    "bound_sweep",
    "cells",
    "current_rss_mb",
    "grid",
    "hwc_to_nchw",
    "interleaved",
    "inverted",
    "loadavg",
    "log",
    "logits",
    "model_case",
    "paired",
    "parser",
    "peak_rss_mb",
    "pearson",
    "photo_preprocess",
    "reference",
    "reference_explainer",
    "reset_peak_rss",
    "run_script",
    "softmax",
    "span",
    "summary",
    "table",
]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ESPRESSO = 967  # the coffee photo's class


def log(message: str) -> None:
    """A progress line on stderr, with the time and the machine's load."""
    print(f"[{time.strftime('%H:%M:%S')} load {loadavg()}] {message}", file=sys.stderr,
          flush=True)


def loadavg() -> str:
    """The machine's load averages (1, 5, 15 min) as text."""
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def current_rss_mb() -> float:
    """This process's resident set size now (MB)."""
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ================================================================================ models

def logits(outputs: Any) -> np.ndarray:
    """``postprocess_fn`` returning a classifier's first output (its logits)."""
    return outputs[0]


def softmax(outputs: Any) -> np.ndarray:
    """``postprocess_fn`` returning the softmax of a classifier's first output, ``(B, C)``
    float32 (computed in float64)."""
    z = np.asarray(outputs[0], np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def photo_preprocess(image: np.ndarray) -> np.ndarray:
    """EfficientNet-Lite0's input from an ``(H, W, 3)`` RGB crop (uint8 or float 0..255):
    ``(1, 3, H, W)`` float32, ``(x - 127) / 128``; a transposed view (whoever consumes it copies
    it once)."""
    x = (np.asarray(image, np.float32) - np.float32(127.0)) / np.float32(128.0)
    return x.transpose(2, 0, 1)[None]


def hwc_to_nchw(image: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` -> ``(1, C, H, W)`` float32 (the planted models' input)."""
    return np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1)[None])


@dataclass
class Case:
    """A model with an input ready for it.

    ``model()`` builds a fresh ``openvino.Model`` (the reference toolkit edits the model it is
    given); ``x`` is one preprocessed input ``(1, ...)``; ``targets`` names the classes a
    benchmark explains (``one``: a single class; ``many``: a few; ``all``: ``-1``).
    """

    name: str
    task: salvo.Task
    model: Callable[[], ov.Model]
    x: np.ndarray
    postprocess: Callable[[Any], Any]
    targets: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.x.shape[-1])


@functools.cache
def model_case(spec: str) -> Case:
    """A :class:`Case` from a name: ``lite0@SIZE`` (EfficientNet-Lite0 at SIZE px, the coffee
    photo, class 967; many = its top-5 classes), ``ssdlite`` (the SSDLite person detector on the
    astronaut photo, every box), ``planted-cnn`` / ``planted-vit`` (salvo.testing's models with
    planted ground truth, class 0)."""
    from salvo import zoo

    name, _, arg = spec.partition("@")
    if name == "lite0":
        size = int(arg or 224)

        def lite0() -> ov.Model:
            model = zoo.efficientnet_lite0().clone()
            model.reshape({model.inputs[0]: ov.PartialShape([1, 3, size, size])})
            return model

        x = zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee"), size=size)
        scores = ov.Core().compile_model(lite0(), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)
        top5 = [int(i) for i in np.argsort(-scores[0][0])[:5]]
        return Case(spec, salvo.Task.CLASSIFICATION, lite0, x, logits,
                    {"one": ESPRESSO, "many": top5, "all": -1})
    if name == "ssdlite":
        x = zoo.ssdlite_preprocess(zoo.sample_image("astronaut"))
        return Case(spec, salvo.Task.DETECTION, zoo.ssdlite_person, x, zoo.ssdlite_postprocess,
                    {"all": -1})
    if name in ("planted-cnn", "planted-vit"):
        from salvo.testing.planted import planted_cnn, planted_image, planted_vit

        pm = planted_cnn(size=112, static_batch=False) if name == "planted-cnn" else \
            planted_vit(static_batch=False)
        x = np.ascontiguousarray(planted_image(pm, "random", seed=7), np.float32)
        return Case(spec, salvo.Task.CLASSIFICATION, lambda: pm.model.clone(), x, logits,
                    {"one": 0, "many": [0, 1, 2], "all": -1})
    raise SystemExit(f"unknown model {spec!r}: lite0@SIZE, ssdlite, planted-cnn, planted-vit")


# ================================================================================ measuring

@dataclass(frozen=True)
class Sample:
    """One timed call: its wall ``seconds`` and the ``items`` it did (images, inferences)."""

    seconds: float
    items: int = 1

    @property
    def per_item(self) -> float:
        return self.seconds / max(1, self.items)


def summary(values: Iterable[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "n", "values"}`` of ``values`` (at least one)."""
    v = [float(x) for x in values]
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v),
            "values": v}


def inverted(s: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`summary` of the reciprocals (a time ratio turned into a speed ratio)."""
    return summary(1 / v for v in s["values"])


def span(s: Mapping[str, Any] | None, fmt: str = ".2f") -> str:
    """``"1.05 (0.98-1.10)"``: a :func:`summary`'s median and range; ``""`` for ``None``."""
    if not s:
        return ""
    if s["n"] == 1:
        return format(s["median"], fmt)
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}-{s['max']:{fmt}})"


def grid(**axes: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Every combination of the axes' values, as dicts (the last axis varies fastest)."""
    names = list(axes)
    for values in itertools.product(*(axes[n] for n in names)):
        yield dict(zip(names, values))


def cells(text: str) -> tuple[int, int]:
    """``"BxR"`` -> ``(batch, requests)`` (an engine setting on the command line)."""
    try:
        b, r = text.lower().split("x")
        return int(b), int(r)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BATCHxREQUESTS such as 4x4, got {text!r}")


def interleaved(variants: Mapping[str, Callable[[], Sample]], rounds: int, *,
                seed: int = 0, label: str = "") -> dict[str, Any]:
    """Call every variant once as a warm-up, then ``rounds`` times in a shuffled order per
    round.

    Returns ``{"warmup": {name: Sample}, "rounds": [{name: Sample}, ...], "loads": [...]}``.
    """
    rng = random.Random(seed)
    warmup = {}
    for name, fn in variants.items():
        warmup[name] = fn()
    out: dict[str, Any] = {"warmup": warmup, "rounds": [], "loads": []}
    for r in range(rounds):
        order = list(variants)
        rng.shuffle(order)
        got = {name: variants[name]() for name in order}
        out["rounds"].append({name: got[name] for name in variants})
        out["loads"].append(loadavg())
        log(f"{label} round {r + 1}/{rounds}: " + ", ".join(
            f"{k} {v.seconds:.2f}s" for k, v in out["rounds"][-1].items()))
    return out


def paired(measured: Mapping[str, Any], baseline: str | None = None, *,
           per: str = "item") -> dict[str, dict[str, Any]]:
    """Per variant of an :func:`interleaved` result: ``seconds`` and ``per_item`` summaries,
    ``items``, the warm-up's seconds and, with a ``baseline``, ``over_baseline``: the summary of
    the per-round ratios variant / baseline (``per="item"``: seconds per item, ``"call"``:
    seconds per call)."""
    rounds = measured["rounds"]
    out: dict[str, dict[str, Any]] = {}
    for name in rounds[0]:
        samples = [r[name] for r in rounds]
        row: dict[str, Any] = {
            "seconds": summary(s.seconds for s in samples),
            "per_item": summary(s.per_item for s in samples),
            "items": samples[-1].items,
            "warmup_seconds": measured["warmup"][name].seconds,
        }
        if baseline is not None:
            def value(s: Sample) -> float:
                return s.per_item if per == "item" else s.seconds
            row["over_baseline"] = summary(value(r[name]) / value(r[baseline]) for r in rounds)
        out[name] = row
    return out


def bound_sweep(model: ov.Model, x: np.ndarray, device: str, precision: str | None, *,
                batches: Sequence[int], requests: Sequence[int], seconds: float
                ) -> dict[str, Any]:
    """Plain OpenVINO (:class:`salvo.measure.PlainQueue`: THROUGHPUT hint, an
    ``AsyncInferQueue`` kept busy over ready-made inputs) at every batch x requests; returns
    ``{"sweep": [{batch, requests, ips}], "best": {...}, "queue": PlainQueue at the best}``.
    Batches the model cannot take are left out."""
    sweep, queues = [], {}
    for batch in batches:
        for req in requests:
            try:
                q = PlainQueue(model, x, device, batch=batch, requests=req, precision=precision)
            except Exception as exc:  # noqa: BLE001 - a model with a fixed batch
                log(f"  bound: batch {batch} unusable ({str(exc).splitlines()[0][:80]})")
                break
            ips = q.measure(seconds)
            sweep.append({"batch": batch, "requests": req, "ips": ips})
            queues[(batch, req)] = q
            log(f"  bound {device} {precision or 'default'}: batch {batch:2d} x {req} requests "
                f"{ips:7.1f} img/s")
    best = max(sweep, key=lambda r: r["ips"])
    return {"sweep": sweep, "best": best, "queue": queues[(best["batch"], best["requests"])]}


def bound_variant(queue: PlainQueue, images: int) -> Callable[[], Sample]:
    """A variant that runs ``images`` images through the plain-OpenVINO queue."""
    def run() -> Sample:
        t0 = time.perf_counter()
        queue.measure_items(images)
        return Sample(time.perf_counter() - t0, -(-images // queue.batch) * queue.batch)
    return run


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (flattened, float64); NaN if either is constant."""
    r = correlation(a, b)
    return float("nan") if r is None else r


@contextmanager
def blas_one_thread() -> Iterator[None]:
    """NumPy's BLAS limited to one thread in the block (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_script(script: str | os.PathLike[str], args: list[str], timeout: float = 900) -> dict:
    """Run ``script args`` in a fresh Python process (this salvo and the benchmarks folder on
    its path) and return the last JSON line it printed: how the scripts measure a process's
    own peak memory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(salvo.__file__).resolve().parent.parent), str(HERE), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(script).name} {args} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1])


# ================================================================================ reference

def reference(args: argparse.Namespace) -> Any | None:
    """The reference toolkit (openvino-xai 1.1, :func:`salvo.testing.reference.load_reference`)
    unless ``--no-reference`` was given or it is not installed (then ``None``, said on stderr).
    Its INFO logs are switched off."""
    if getattr(args, "no_reference", False):
        return None
    if not reference_available():
        log(f"the reference toolkit is not installed ({REFERENCE_INSTALL}): its rows are left "
            "out")
        return None
    xai = load_reference()
    logging.getLogger("openvino_xai").setLevel(logging.ERROR)
    return xai


class CallCounter:
    """Counts the calls of a wrapped function (the reference calls its ``postprocess_fn`` once
    per inference, and its explanations do not report inferences)."""

    def __init__(self) -> None:
        self.calls = 0

    def wrap(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def counted(outputs: Any) -> Any:
            self.calls += 1
            return fn(outputs)
        return counted


def reference_explainer(xai: Any, model: ov.Model, task: salvo.Task, method: salvo.Method,
                        postprocess: Callable[[Any], Any] | None = None,
                        precision: str | None = None, device: str = "CPU",
                        preprocess: Callable[[Any], Any] | None = None) -> Any:
    """The reference's ``Explainer`` built as a user builds it (its defaults: the device's
    default precision, LATENCY hint), black-box for RISE and AISE, white-box otherwise. With
    ``precision`` its compiled model is replaced by the same compile call plus
    ``INFERENCE_PRECISION_HINT`` and nothing else."""
    blackbox = method in (salvo.Method.RISE, salvo.Method.AISE)
    kwargs: dict[str, Any] = {"model": model, "task": getattr(xai.Task, task.name)}
    if preprocess is not None:
        kwargs["preprocess_fn"] = preprocess
    if blackbox:
        kwargs.update(postprocess_fn=postprocess,
                      explain_mode=xai.explainer.ExplainMode.BLACKBOX,
                      explain_method=getattr(xai.Method, method.name))
    else:
        kwargs.update(explain_mode=xai.explainer.ExplainMode.WHITEBOX,
                      explain_method=getattr(xai.Method, method.name))
    if device != "CPU":
        kwargs["device_name"] = device
    ref = xai.Explainer(**kwargs)
    if precision:
        ref.method._model_compiled = ov.Core().compile_model(
            ref.method._model, device, {"INFERENCE_PRECISION_HINT": precision})
    return ref


def reference_preset(name: str) -> Any:
    """The reference's ``Preset`` member called ``name`` (``speed``, ``balance``, ``quality``)."""
    from openvino_xai.methods.black_box.base import Preset

    return Preset[name.upper()]


# ================================================================================ output

def parser(description: str, *, rounds: int, quick_rounds: int = 2,
           devices: bool = True) -> argparse.ArgumentParser:
    """The options every script has: ``--quick``, ``--out``, ``--rounds``, ``--no-reference``
    and, with ``devices``, ``--devices`` and ``--precisions``. ``--quick`` sets ``--rounds`` to
    ``quick_rounds`` unless it is given (see :func:`finish_args`)."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a short run (a few minutes) to check the script; results go to "
                        "benchmarks/results/quick/")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file to write (the Markdown goes beside it, .md)")
    p.add_argument("--rounds", type=int, default=None,
                   help=f"interleaved rounds (default {rounds}; --quick {quick_rounds})")
    if devices:
        p.add_argument("--devices", nargs="+", default=["CPU"], help="OpenVINO devices")
        p.add_argument("--precisions", nargs="+", default=["default", "f32"],
                       help="inference precisions: default (the device's), f32, f16, bf16")
    p.add_argument("--no-reference", action="store_true",
                   help="leave out the reference toolkit (openvino-xai 1.1)")
    p.set_defaults(_rounds=(rounds, quick_rounds))
    return p


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Apply ``--quick``'s default rounds and turn ``default`` precisions into ``None``."""
    if args.rounds is None:
        args.rounds = args._rounds[1] if args.quick else args._rounds[0]
    if hasattr(args, "precisions"):
        args.precisions = [None if p == "default" else p for p in args.precisions]
    return args


class Report:
    """The header every result has, and where it is written.

    ``Report(name, args)`` records the command, the start time, the versions, the CPU and the
    load; :meth:`write` adds the end time and load, writes ``<out>.json`` and ``<out>.md``
    atomically and prints the Markdown.
    """

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        default = (RESULTS / "quick" if args.quick else RESULTS) / f"{name}.json"
        self.path = Path(args.out) if args.out else default
        self.t0 = time.perf_counter()
        self.meta: dict[str, Any] = {
            "benchmark": name,
            "command": "python benchmarks/" + " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "quick": bool(args.quick),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "salvo": salvo.__version__, "openvino": ov.__version__.split("-")[0],
            "python": platform.python_version(),
            "cpu": _cpu_name(), "cores": len(os.sched_getaffinity(0)),
            "load_start": loadavg(),
        }

    def header(self) -> str:
        """The Markdown lines under a result's title: command, machine, load, duration."""
        m = self.meta
        return (f"`{m['command']}` — {m['started']}, {m['cpu']}, {m['cores']} cores, salvo "
                f"{m['salvo']}, OpenVINO {m['openvino']}; load average {m['load_start']} at the "
                f"start, {m.get('load_end', loadavg())} at the end (a shared machine: compare "
                f"the ratios measured side by side); {m.get('seconds', 0):.0f} s.")

    def write(self, data: Mapping[str, Any], markdown: Callable[[Report], str]) -> Path:
        """Write ``{"meta": ..., **data}`` as JSON and ``markdown(self)`` beside it."""
        self.meta["load_end"] = loadavg()
        self.meta["seconds"] = time.perf_counter() - self.t0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        blob = json.dumps({"meta": self.meta, **data}, indent=1, default=_jsonable)
        atomic_write(self.path, (blob + "\n").encode())
        text = markdown(self)
        atomic_write(self.path.with_suffix(".md"), (text.rstrip() + "\n").encode())
        print(text)
        log(f"wrote {self.path} and {self.path.with_suffix('.md').name}")
        return self.path


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Sample):
        return {"seconds": value.seconds, "items": value.items}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, Any]]) -> str:
    """A Markdown table: ``columns`` are ``(header, key)`` with ``key`` a row key or a function
    of the row; ``None`` values print empty."""
    head = "| " + " | ".join(h for h, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, rule]
    for row in rows:
        cells_ = []
        for _, key in columns:
            v = key(row) if callable(key) else row.get(key)
            cells_.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells_) + " |")
    return "\n".join(lines)


def label(precision: str | None) -> str:
    """``"default"`` for the device's default precision, else the precision."""
    return precision or "default"
