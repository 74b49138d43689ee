"""How faithful the maps are, and how fast the insertion/deletion metric runs.

Part 1 — quality. EfficientNet-Lite0 on every photo of ``salvo.zoo.SAMPLE_IMAGES`` that loads
(224 x 224 centre crop, top-1 class), plus the planted-ground-truth CNN (``salvo.testing.planted``,
its three classes); for every classification method that works at run time (ActivationMap,
ReciproCAM, RISE at each preset and with ``tolerance``, AISE when it lands — else a "pending"
row): pointing game (planted regions; hand-drawn boxes of ``benchmarks/boxes.json`` on the
photos), insertion AUC, deletion AUC, ADCC, model inferences and wall time per explanation,
next to the time plain OpenVINO takes for as many inferences at that moment (the machine is
shared). Where the reference toolkit (openvino-xai 1.1.0) is installed, its RISE and AISE at the
same presets are rows of the same table, scored by the same ``salvo.metrics`` on the same
images (with --quick, on one photo and the planted classes only). Outputs a Markdown table,
JSON and a PNG grid of overlays (rows methods, columns images).

Part 2 — speed of the insertion/deletion metric on 100 maps (224 x 224, 30 steps: 6,200
perturbed images; 15 steps with --quick): salvo's batched evaluation against

- the **inference bound**: plain OpenVINO, an ``AsyncInferQueue`` loop over ready-made inputs
  at the same batch x requests x precision as salvo's metric engine (and the best of a small
  sweep), measured alternately with salvo's run so machine load hits both alike;
- the **reference's loop style**: one synchronous ``compiled_model(x)`` per perturbed image,
  as ``openvino_xai.metrics.InsertionDeletionAUC`` does (its code is mirrored here so it runs
  at the same f32 precision; salvo's numbers are checked equal to it).

Everything runs in f32 (``INFERENCE_PRECISION_HINT``) unless said otherwise. RISE explains with
softmax probabilities (the RISE paper's choice) and the metrics score probabilities on the
photos; the planted model's scores are its logits (mean intensities, positive).

Rows of the reference toolkit also give the Pearson correlation of their maps with salvo's at
the same preset (``r vs salvo``): AISE is deterministic and should agree; RISE draws other
masks, so its correlation is that of two independent estimates.

    python benchmarks/bench_quality.py --quick          # a few minutes
    python benchmarks/bench_quality.py [--photos coffee astronaut ...]
        [--methods activationmap reciprocam rise aise] [--presets speed balance quality]
"""

from __future__ import annotations

import faulthandler
import gc
import json
import logging
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openvino as ov
from _common import (
    HERE,
    PlainQueue,
    Report,
    finish_args,
    hwc_to_nchw,
    log,
    logits,
    parser,
    pearson,
    reference,
    reference_explainer,
    softmax,
    table,
)
from _common import photo_preprocess as preprocess
from salvo.common import ExplainMode, Method, Task
from salvo.explainer.explainer import Explainer
from salvo.inference import get_core
from salvo.metrics import ADCC, InsertionDeletionAUC, PointingGame
from salvo.testing.planted import batchable, planted_cnn, planted_image
from salvo.zoo import (
    SAMPLE_IMAGES,
    efficientnet_lite0,
    imagenet_labels,
    resize_crop_uint8,
    sample_image,
)

F32 = "f32"
STEPS = 30  # insertion/deletion steps (quality part; speed part without --quick)
QUICK_SPEED_STEPS = 15  # speed part with --quick: 40 maps, 1,280 perturbed images
QUICK_SPEED_MAPS = 40
QUICK_PHOTOS = ("coffee",)
#: With --quick the reference (one synchronous inference per mask) explains this many photos.
QUICK_REFERENCE_PHOTOS = 1
REFERENCE_NAME = "openvino-xai 1.1.0"


# ------------------------------------------------------------------------------ the cases


@dataclass
class Image:
    """One column of the grid: a raw image, the class to explain and its boxes."""

    name: str
    raw: np.ndarray  # (H, W, 3) what preprocess_fn takes
    target: int
    label: str
    boxes: list[list[int]] | None  # None: no pointing game for this image
    note: str = ""


@dataclass
class Group:
    """A model and the images explained with it."""

    name: str
    model: ov.Model
    preprocess: Any
    postprocess: Any
    label_names: list[str] | None
    images: list[Image] = field(default_factory=list)


def photo_group(names: list[str]) -> tuple[Group, list[dict]]:
    model = efficientnet_lite0()
    labels = imagenet_labels()
    boxes = json.loads((HERE / "boxes.json").read_text())["photos"]
    compiled = get_core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": F32})
    group = Group("EfficientNet-Lite0", model, preprocess, softmax, labels)
    skipped = []
    for name in names:
        try:
            crop = resize_crop_uint8(sample_image(name))[0]
        except Exception as exc:  # noqa: BLE001 (a photo package may be missing)
            skipped.append({"photo": name, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        top1 = int(np.argmax(compiled(preprocess(crop))[0][0]))
        entry = boxes.get(name)
        note = ""
        photo_boxes = None
        if entry is None:
            note = "no hand-drawn box"
        elif entry["expected_top1"] != top1:
            note = (f"top-1 is {top1}, boxes were drawn for {entry['expected_top1']}: "
                    "no pointing game")
        else:
            photo_boxes = entry["boxes"]
        group.images.append(Image(name, crop, top1, labels[top1], photo_boxes, note))
    return group, skipped


def planted_group() -> Group:
    pm = planted_cnn(size=112)
    raw = np.ascontiguousarray(planted_image(pm, "random", seed=7)[0].transpose(1, 2, 0))
    group = Group("planted CNN", batchable(pm), hwc_to_nchw, logits, None)
    for k, (y0, y1, x0, x1) in enumerate(pm.regions):
        group.images.append(Image(f"planted c{k}", raw, k, f"class {k}",
                                  [[x0, y0, x1 - x0 - 1, y1 - y0 - 1]]))
    return group


@dataclass
class MethodSpec:
    name: str
    mode: ExplainMode
    method: Method
    kwargs: dict[str, Any]
    toolkit: str = "salvo"  # or "reference" (openvino-xai 1.1.0)


def method_specs(methods: list[str], presets: list[str]) -> list[MethodSpec]:
    """The classification methods asked for; the reference's RISE and AISE right after salvo's
    row at the same preset (its budget: num_masks and num_cells, or iterations and kernel
    widths); with the balance preset, RISE also with ``tolerance=0.02``."""
    wb, bb = ExplainMode.WHITEBOX, ExplainMode.BLACKBOX
    specs = []
    for name in methods:
        method = Method(name)
        if method == Method.ACTIVATIONMAP:
            specs.append(MethodSpec("ActivationMap", wb, method, {}))
        elif method == Method.RECIPROCAM:
            specs.append(MethodSpec("ReciproCAM", wb, method, {}))
        else:
            for preset in presets:
                specs += [MethodSpec(f"{method.name} {preset}", bb, method, {"preset": preset}),
                          MethodSpec(f"{method.name} {preset}", bb, method, {"preset": preset},
                                     "reference")]
            if method == Method.RISE and "balance" in presets:
                specs.append(MethodSpec("RISE balance, tolerance 0.02", bb, Method.RISE,
                                        {"preset": "balance", "tolerance": 0.02}))
    return specs


# ------------------------------------------------------------------------------ quality


class SalvoRunner:
    """A salvo Explainer for one method: explains one image, reports its inferences."""

    toolkit = "salvo"

    def __init__(self, group: Group, spec: MethodSpec) -> None:
        extra: dict[str, Any] = {"precision": F32}
        if spec.mode == ExplainMode.BLACKBOX:
            extra["progress"] = False
        self.explainer = Explainer(group.model, Task.CLASSIFICATION,
                                   preprocess_fn=group.preprocess,
                                   postprocess_fn=group.postprocess, explain_mode=spec.mode,
                                   explain_method=spec.method, **extra)
        self.kwargs = dict(spec.kwargs)  # what every call (and ADCC's re-explanation) gets

    def warm_up(self, spec: MethodSpec, img: Image) -> None:
        warm = dict(spec.kwargs)
        if spec.method == Method.RISE:
            warm.update(num_masks=64, tolerance=None)
        self.explainer(img.raw, targets=[img.target], colormap=False, **warm)

    def explain(self, img: Image, label_names: list[str] | None) -> tuple[Any, np.ndarray, int]:
        explanation = self.explainer(img.raw, targets=[img.target], colormap=False,
                                     label_names=label_names, **self.kwargs)
        key, smap = next(iter(explanation.saliency_map.items()))
        return key, smap, int(explanation.num_inferences)

    def reexplained_inferences(self, adcc: ADCC) -> int:
        return adcc.explainer_inferences  # the Explanations report them


class ReferenceRunner:
    """The reference toolkit's Explainer (openvino-xai 1.1.0), black-box, for one method.

    Built as a user would (its own compile: the device's default latency hint), then its model
    recompiled with the f32 precision hint only, so both toolkits infer at the same precision
    (as ``bench_blackbox.py`` does). Its explanations do not report inferences: every call of
    its ``model_forward`` is counted instead.
    """

    toolkit = "reference"

    def __init__(self, xai: Any, group: Group, spec: MethodSpec) -> None:
        from openvino_xai.methods.black_box.base import Preset as RefPreset

        self.explainer = reference_explainer(xai, group.model, Task.CLASSIFICATION, spec.method,
                                             group.postprocess, F32, preprocess=group.preprocess)
        impl = self.explainer.method
        self.count = 0
        forward = impl.model_forward

        def counted(x: np.ndarray, preprocess: bool = True) -> Any:
            self.count += 1
            return forward(x, preprocess)

        impl.model_forward = counted
        self.kwargs = {k: RefPreset(v) if k == "preset" else v for k, v in spec.kwargs.items()}
        self._mark = 0

    def warm_up(self, spec: MethodSpec, img: Image) -> None:
        tiny = ({"num_masks": 8} if spec.method == Method.RISE
                else {"num_iterations_per_kernel": 4, "kernel_widths": [0.1]})
        self.explainer(img.raw, targets=[img.target], colormap=False, **tiny)

    def explain(self, img: Image, label_names: list[str] | None) -> tuple[Any, np.ndarray, int]:
        before = self.count
        explanation = self.explainer(img.raw, targets=[img.target], colormap=False,
                                     label_names=label_names, **self.kwargs)
        key, smap = next(iter(explanation.saliency_map.items()))
        self._mark = self.count
        return key, smap, self.count - before

    def reexplained_inferences(self, adcc: ADCC) -> int:
        """Inferences of the re-explanation(s) since the last ``mark()``."""
        return self.count - self._mark

    def mark(self) -> None:
        self._mark = self.count


def bound_sample(bound: BoundLoop, seconds: float = 0.25) -> tuple[float, float]:
    """Plain OpenVINO over about ``seconds``, now: (images/s, process CPU seconds per image)."""
    c0 = time.process_time()
    ips = bound.seconds(seconds)
    cpu = time.process_time() - c0
    return ips, cpu / (ips * seconds)


def run_method(group: Group, spec: MethodSpec, ctx: dict[str, Any]) -> dict[str, Any]:
    """Explain the group's images with one method (salvo's or the reference's), score the maps.

    ``ctx`` holds the group's insertion/deletion metric (``metric``), its ADCC metric
    (``adcc``, made on the first call and reused: one compiled model per group), the plain
    OpenVINO loop that measures the inference bound (``bound``), the reference toolkit
    (``xai``, None when not installed) and the images the reference explains
    (``reference_images``).
    """
    row: dict[str, Any] = {"group": group.name, "method": spec.name, "toolkit": spec.toolkit,
                           "kwargs": spec.kwargs}
    images = group.images if spec.toolkit == "salvo" else ctx["reference_images"]
    t0 = time.perf_counter()
    runner: Any = (SalvoRunner(group, spec) if spec.toolkit == "salvo"
                   else ReferenceRunner(ctx["xai"], group, spec))
    row["setup_seconds"] = time.perf_counter() - t0
    runner.warm_up(spec, images[0])  # kept apart from the timed calls
    row["status"] = "ok"
    blackbox = spec.mode == ExplainMode.BLACKBOX
    # the bound is sampled right before and right after every black-box explanation
    before = bound_sample(ctx["bound"]) if blackbox else None
    per_image = []
    maps, classes = [], []
    for img in images:
        t0, c0 = time.perf_counter(), time.process_time()
        key, smap, inferences = runner.explain(img, group.label_names)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        entry = {"image": img.name, "target": img.target, "label": img.label,
                 "key": str(key), "seconds": seconds, "cpu_seconds": cpu,
                 "inferences": inferences}
        if blackbox:
            after = bound_sample(ctx["bound"])
            entry["bound_ips"] = (before[0] + after[0]) / 2
            entry["bound_seconds"] = inferences / entry["bound_ips"]
            entry["bound_cpu_seconds"] = inferences * (before[1] + after[1]) / 2
            before = after
        if img.boxes is not None:
            entry["pointing_game"] = PointingGame()(smap, img.boxes)["pointing_game"]
        maps.append(smap)
        classes.append(None if key == "per_image_map" else int(key))
        per_image.append(entry)
    # insertion / deletion: all maps of the method in one batched run
    t0 = time.perf_counter()
    curves = ctx["metric"].evaluate_maps(maps, classes, [img.raw for img in images], STEPS)
    row["auc_seconds"] = time.perf_counter() - t0
    for entry, ins, dele, cls in zip(per_image, curves.insertion, curves.deletion,
                                     curves.class_indices, strict=True):
        entry.update(insertion=float(ins), deletion=float(dele), scored_class=int(cls))
    # ADCC: the same explainer re-explains each masked image, with the same settings
    if ctx.get("adcc") is None:
        ctx["adcc"] = ADCC(group.model, group.preprocess, group.postprocess, runner.explainer,
                           precision=F32)
    adcc = ctx["adcc"]
    adcc.explainer, adcc.black_box_kwargs = runner.explainer, runner.kwargs
    t0 = time.perf_counter()
    for entry, smap, img, cls in zip(per_image, maps, images, curves.class_indices,
                                     strict=True):
        if isinstance(runner, ReferenceRunner):
            runner.mark()
        entry.update({f"adcc_{k}" if k != "adcc" else k: v
                      for k, v in adcc(smap, int(cls), img.raw).items()})
        entry["adcc_inferences"] = adcc.num_inferences + runner.reexplained_inferences(adcc)
    row["adcc_seconds"] = time.perf_counter() - t0
    row["images"] = per_image
    row["maps"] = maps

    def mean(key: str) -> float | None:
        values = [e[key] for e in per_image if key in e]
        return float(np.mean(values)) if values else None

    row.update(
        num_images=len(per_image),
        pointing_game=mean("pointing_game"),
        pointing_game_n=sum("pointing_game" in e for e in per_image),
        insertion=mean("insertion"), deletion=mean("deletion"), adcc=mean("adcc"),
        inferences=mean("inferences"), seconds=mean("seconds"),
        bound_seconds=mean("bound_seconds"), cpu_seconds=mean("cpu_seconds"),
        bound_cpu_seconds=mean("bound_cpu_seconds"),
    )
    bound_note = ("" if row["bound_seconds"] is None
                  else f" (bound {row['bound_seconds']:.2f} s; CPU {row['cpu_seconds']:.2f} s, "
                       f"bound {row['bound_cpu_seconds']:.2f} s)")
    log(f"  {spec.name:34s} PG {_f(row['pointing_game'])}  ins {_f(row['insertion'])}  "
        f"del {_f(row['deletion'])}  ADCC {_f(row['adcc'])}  "
        f"{row['inferences']:.0f} inf  {row['seconds']:.2f} s{bound_note}; "
        f"ins/del {row['auc_seconds']:.1f} s, ADCC {row['adcc_seconds']:.1f} s")
    return row


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


# ------------------------------------------------------------------------------ speed


def smooth_maps(count: int, size: int, seed: int) -> list[np.ndarray]:
    """Deterministic smooth random maps (7 x 7 noise upsampled), no ties."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        coarse = rng.random((7, 7)).astype(np.float32)
        fine = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        out.append(fine + rng.random((size, size)).astype(np.float32) * 1e-4)
    return out


def reference_loop(compiled: ov.CompiledModel, smap: np.ndarray, class_idx: int,
                   image: np.ndarray, steps: int) -> dict[str, float]:
    """The reference's algorithm: one synchronous inference per perturbed image."""
    def predict(x: np.ndarray) -> np.ndarray:
        return softmax(compiled([preprocess(x)]))[0]

    rows, cols = np.unravel_index(np.argsort(-smap.flatten()), smap.shape)
    ins_scores, del_scores = [], []
    for i in range(steps + 1):
        num = int(i * len(rows) / steps)
        ins, dele = np.full_like(image, 0), image.copy()
        ins[rows[:num], cols[:num]] = image[rows[:num], cols[:num]]
        dele[rows[:num], cols[:num]] = 0
        ins_scores.append(predict(ins)[class_idx])
        del_scores.append(predict(dele)[class_idx])

    def auc(arr: np.ndarray) -> float:
        return float(np.abs((arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1)))

    return {"insertion": auc(np.array(ins_scores)), "deletion": auc(np.array(del_scores))}


class BoundLoop(PlainQueue):
    """Plain OpenVINO at a compiled setting: an AsyncInferQueue loop over ready-made inputs (no
    host work), for an already batched ``model`` and the engine ``config`` it runs with."""

    def __init__(self, model: ov.Model, config: dict[str, Any], requests: int) -> None:
        shape = tuple(int(d) for d in model.inputs[0].get_shape())
        x = np.random.default_rng(0).standard_normal((1, *shape[1:])).astype(np.float32)
        super().__init__(model, x, "CPU", batch=shape[0], requests=requests,
                         precision=config.get("INFERENCE_PRECISION_HINT"))

    def images(self, count: int) -> tuple[int, float]:
        """Run at least ``count`` images; (images run, seconds)."""
        done = -(-count // self.batch) * self.batch
        return done, done / self.measure_items(count)

    def seconds(self, seconds: float) -> float:
        """Images/s over about ``seconds``."""
        return self.measure(seconds)


def _bracketed(bound: BoundLoop, work: Any, images: int) -> dict[str, float]:
    """Run ``work()`` (``images`` images) between two halves of as many bound images.

    Returns images/s and process CPU ms per image of both, and their ratios. Load changes on a
    shared machine hit both sides alike.
    """
    c0 = time.process_time()
    n1, s1 = bound.images(images // 2)
    c1, t1 = time.process_time(), time.perf_counter()
    work()
    seconds = time.perf_counter() - t1
    c2 = time.process_time()
    n2, s2 = bound.images(images // 2)
    c3 = time.process_time()
    bound_ips = (n1 + n2) / (s1 + s2)
    bound_cpu = 1000 * ((c1 - c0) + (c3 - c2)) / (n1 + n2)
    work_cpu = 1000 * (c2 - c1) / images
    return {"ips": images / seconds, "bound_ips": bound_ips, "ratio": images / seconds / bound_ips,
            "cpu_ms": work_cpu, "bound_cpu_ms": bound_cpu, "cpu_ratio": bound_cpu / work_cpu}


def bench_speed(group: Group, quick: bool, rounds: int) -> dict[str, Any]:
    num_maps = QUICK_SPEED_MAPS if quick else 100
    steps = QUICK_SPEED_STEPS if quick else STEPS
    photos = group.images
    maps = smooth_maps(num_maps, 224, seed=0)
    images = [photos[m % len(photos)].raw for m in range(num_maps)]
    classes = [photos[m % len(photos)].target for m in range(num_maps)]
    per_map = 2 * (steps + 1)
    items = num_maps * per_map
    metric = InsertionDeletionAUC(group.model, preprocess, softmax, precision=F32)
    engine = metric.engine
    log(f"  salvo metric engine: batch {engine.batch_size}, {engine.num_requests} requests, "
        f"{engine.config}")
    metric.evaluate_maps(maps[:2], classes[:2], images[:2], steps)  # warm-up
    bound = BoundLoop(engine.model, engine.config, engine.num_requests)
    out: dict[str, Any] = {
        "maps": num_maps, "steps": steps, "images": items,
        "engine": {"batch_size": engine.batch_size, "num_requests": engine.num_requests,
                   "config": {k: str(v) for k, v in engine.config.items()}},
    }

    # 1. whole evaluations of all the maps, each bracketed by bound images
    whole, host_ms = [], []
    holder: dict[str, Any] = {}

    def run_all() -> None:
        cpu0 = time.thread_time()
        holder["res"] = metric.evaluate_maps(maps, classes, images, steps)
        host_ms.append(1000 * (time.thread_time() - cpu0) / items)

    for r in range(rounds):
        whole.append(_bracketed(bound, run_all, items))
        w = whole[-1]
        log(f"  {num_maps} maps, round {r}: bound {w['bound_ips']:.1f} img/s, salvo {w['ips']:.1f} "
            f"img/s (ratio {w['ratio']:.3f}); CPU per image bound {w['bound_cpu_ms']:.2f} ms, "
            f"salvo {w['cpu_ms']:.2f} ms (host thread {host_ms[-1]:.3f} ms)")
    results = holder["res"]
    # 2. finer interleaving: chunks of maps, each bracketed (--quick: 4 chunks of 10 maps)
    chunk, chunked_maps = (10, num_maps) if quick else (5, num_maps)
    chunks = []
    for c in range(0, chunked_maps, chunk):
        sl = slice(c, c + chunk)
        chunks.append(_bracketed(
            bound, lambda sl=sl: metric.evaluate_maps(maps[sl], classes[sl], images[sl], steps),
            chunk * per_map))
    ratios = [c["ratio"] for c in chunks]
    cpu_ratios = [c["cpu_ratio"] for c in chunks + whole]
    log(f"  chunks of {chunk} maps: salvo / bound median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f} - {max(ratios):.3f}); CPU-efficiency median "
        f"{statistics.median(cpu_ratios):.3f}")
    out.update(
        whole_runs=whole, host_thread_cpu_ms_per_image=host_ms,
        chunk_maps=chunk, chunks=chunks,
        ratio_whole_median=statistics.median(w["ratio"] for w in whole),
        ratio_chunks_median=statistics.median(ratios),
        cpu_efficiency_median=statistics.median(cpu_ratios),
        salvo_ips_median=statistics.median(w["ips"] for w in whole),
        bound_ips_median=statistics.median(w["bound_ips"] for w in whole),
    )
    # 3. the bound at other batch x requests settings, each next to the engine's setting
    sweep = []
    for batch in ((8, 16) if quick else (1, 4, 8, 16)):
        for requests in ((3, 4) if quick else (2, 3, 4)):
            if (batch, requests) == (engine.batch_size, engine.num_requests):
                continue
            model = group.model.clone()
            model.reshape({model.inputs[0]: ov.PartialShape([batch, 3, 224, 224])})
            other = BoundLoop(model, {"PERFORMANCE_HINT": "THROUGHPUT",
                                      "INFERENCE_PRECISION_HINT": F32}, requests)
            m = _bracketed(bound, lambda other=other: other.images(160), 160)
            sweep.append({"batch": batch, "requests": requests, "ips": m["ips"],
                          "vs_engine_config": m["ratio"]})
            log(f"  bound at batch {batch:2d}, {requests} requests: {m['ratio']:.3f} x the "
                "engine's setting")
            del other
    out["bound_sweep"] = sweep
    out["best_config_vs_engine_config"] = max([1.0] + [s["vs_engine_config"] for s in sweep])
    # 4. the reference's loop style: f32, latency hint (its default hint), on a subset
    n_ref = 3 if quick else 20
    compiled = get_core().compile_model(group.model, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                             "INFERENCE_PRECISION_HINT": F32})
    reference_loop(compiled, maps[0], classes[0], images[0], 2)  # warm-up
    ref: list[dict[str, float]] = []
    ref_m = _bracketed(bound, lambda: ref.extend(
        reference_loop(compiled, maps[m], classes[m], images[m], steps) for m in range(n_ref)),
        n_ref * per_map)
    diff = max(max(abs(ref[m]["insertion"] - results.insertion[m]),
                   abs(ref[m]["deletion"] - results.deletion[m])) for m in range(n_ref))
    out.update(reference_loop_maps=n_ref, reference_loop=ref_m,
               speedup_vs_reference_loop=out["ratio_chunks_median"] / ref_m["ratio"],
               max_abs_auc_difference_vs_reference_loop=diff)
    log(f"  reference loop (sync, f32) on {n_ref} maps: {ref_m['ratio']:.3f} x the bound; "
        f"max |AUC difference| vs salvo {diff:.2e}")
    metric = engine = bound = compiled = None  # release the compiled models now
    gc.collect()
    return out


# ------------------------------------------------------------------------------ outputs


def _cpu(r: dict) -> str:
    """Process CPU seconds of an explanation, and the bound's for as many inferences."""
    if r.get("bound_cpu_seconds") is None:
        return _f(r.get("cpu_seconds"))
    return f"{r['cpu_seconds']:.2f} ({r['bound_cpu_seconds']:.2f})"


def _toolkit(r: dict) -> str:
    return "salvo" if r["toolkit"] == "salvo" else f"**reference** ({REFERENCE_NAME})"


def markdown(rows: list[dict], speed: dict | None, meta: dict, header: str) -> str:
    lines = ["# Quality", "", header, "", f"f32; {STEPS} insertion/deletion steps.", ""]
    lines += [("Means over the images of each row (`images`). PG: pointing game (planted "
              "regions; hand-drawn boxes of `benchmarks/boxes.json` on the photos, over the "
              "photos whose top-1 class the boxes were drawn for; `n` maps scored; chance level "
              "= box area, see below). Ins/Del: insertion/deletion AUC (probabilities on the "
              "photos, logits = region mean intensities on the planted model). ADCC "
              "re-explains each masked image with the same explainer and settings (the "
              "reference's rows with the reference's explainer). All maps are the explainers' "
              "default uint8 maps, scored by `salvo.metrics` for both toolkits. Inferences and "
              "seconds: per explanation (one class), after a warm-up call, excluding "
              "compilation. Bound s: what plain OpenVINO (`AsyncInferQueue`, batch 1, 4 "
              "requests, throughput hint, f32) takes for the same number of inferences, "
              "measured right before and right after each black-box explanation: the machine is "
              "shared, and this is how fast it ran inference at that moment. CPU s: the "
              "process's CPU time per explanation (all threads), and in brackets the bound's "
              "CPU time for as many inferences; it moves much less with the load of other jobs "
              "than wall-clock time does."), ""]
    lines += [(f"**Reference rows** ({REFERENCE_NAME}, imported by "
               "`salvo.testing.reference`): same preset, hence the same budget (RISE: "
               "num_masks and num_cells; AISE: iterations per kernel and kernel widths), as the "
               "salvo row above them; its model is compiled as the toolkit does it (latency "
               "hint) plus the f32 precision hint, and it runs one synchronous inference per "
               "mask or perturbation (its tqdm bar disabled); its inferences are counted at its "
               "`model_forward`. There is no reference row for RISE with `tolerance` (the "
               "reference has no such option). `r vs salvo`: the median over images of the "
               "Pearson correlation of the reference's map with salvo's at the same preset. "
               + (f"With --quick the reference explains only the photo(s) "
                  f"{meta['reference_images']} (and every planted class) to keep the run "
                  "short: compare it with salvo's per-image rows below."
                  if meta["quick"] else "It explains the same images as salvo.")), ""]
    lines.append(table([r for r in rows if r["status"] == "ok"], [
        ("model", "group"), ("toolkit", _toolkit), ("method", "method"),
        ("images", "num_images"),
        ("PG (n)", lambda r: f"{_f(r['pointing_game'], 2)} ({r['pointing_game_n']})"),
        ("Ins ↑", lambda r: _f(r["insertion"])), ("Del ↓", lambda r: _f(r["deletion"])),
        ("Ins − Del", lambda r: _f(r["insertion"] - r["deletion"])),
        ("ADCC ↑", lambda r: _f(r["adcc"])), ("inferences", lambda r: f"{r['inferences']:.0f}"),
        ("s / explanation", lambda r: f"{r['seconds']:.3f}"),
        ("bound s", lambda r: _f(r["bound_seconds"])), ("CPU s (bound)", _cpu),
        ("r vs salvo", lambda r: _f(r.get("pearson_vs_salvo")))]))
    lines += ["", "## Per image", "", ("| model | toolkit | method | image | class | PG | Ins "
              "| Del | ADCC | inferences | s | bound s | CPU s (bound) |"),
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for e in r.get("images", []):
            lines.append(
                f"| {r['group']} | {_toolkit(r)} | {r['method']} | {e['image']} | "
                f"{e['label'][:24]} | {_f(e.get('pointing_game'), 0)} | {_f(e['insertion'])} | "
                f"{_f(e['deletion'])} | {_f(e['adcc'])} | {e['inferences']} | "
                f"{e['seconds']:.3f} | {_f(e.get('bound_seconds'))} | {_cpu(e)} |")
    lines += ["", "Pointing-game chance level (share of the image the boxes cover): "
              + ", ".join(f"{k} {v:.2f}" for k, v in meta["box_area"].items()), ""]
    if meta["skipped"]:
        lines += ["Photos skipped: " + "; ".join(f"{s['photo']} ({s['reason']})"
                                                 for s in meta["skipped"]), ""]
    notes = [f"{img['image']}: {img['note']}" for img in meta["image_notes"] if img["note"]]
    if notes:
        lines += ["Notes: " + "; ".join(notes), ""]
    if speed:
        s = speed
        bound_time = s["images"] / s["bound_ips_median"]
        lines += [
            (f"## Insertion/deletion speed ({s['maps']} maps, {s['steps']} steps: "
             f"{s['images']:,} perturbed 224 x 224 images)"), "",
            ("Every row is measured next to the inference bound (plain OpenVINO "
             "`AsyncInferQueue` over ready-made inputs, at the metric engine's setting: batch "
             f"{s['engine']['batch_size']}, {s['engine']['num_requests']} requests, f32, "
             "throughput hint), half of an equal number of bound images right before and half "
             "right after, so the load of other jobs on this shared machine hits both alike."),
            "",
            "| path | × bound (wall clock) | × bound (CPU per image) | notes |",
            "|---|---|---|---|",
            (f"| **salvo `InsertionDeletionAUC.evaluate_maps`**, whole {s['maps']}-map runs | **"
             + ", ".join(f"{w['ratio']:.3f}" for w in s["whole_runs"]) + "** | "
             + ", ".join(f"{w['cpu_ratio']:.3f}" for w in s["whole_runs"]) + " | "
             f"{s['salvo_ips_median']:.1f} img/s vs bound {s['bound_ips_median']:.1f}; "
             f"{s['images'] / s['salvo_ips_median']:.1f} s vs {bound_time:.1f} s |"),
            (f"| **salvo**, {len(s['chunks'])} chunks of {s['chunk_maps']} maps "
             f"(median; range) | **{s['ratio_chunks_median']:.3f}** "
             f"({min(c['ratio'] for c in s['chunks']):.2f} – "
             f"{max(c['ratio'] for c in s['chunks']):.2f}) | "
             f"{statistics.median(c['cpu_ratio'] for c in s['chunks']):.3f} | one engine run "
             "per chunk |"),
            (f"| reference loop style: sync `compiled_model(x)` per image, f32, latency hint, "
             f"{s['reference_loop_maps']} maps | {s['reference_loop']['ratio']:.3f} | "
             f"{s['reference_loop']['cpu_ratio']:.3f} | "
             f"{s['reference_loop']['ips']:.1f} img/s; same AUCs as salvo to "
             f"{s['max_abs_auc_difference_vs_reference_loop']:.1e} |"),
            "",
            f"salvo is {s['speedup_vs_reference_loop']:.2f}x the reference loop style. "
            "'CPU per image' is the bound's process CPU time per image over salvo's (1.0 = "
            "salvo spends no CPU beyond the inference); it moves much less with the "
            "machine's load than wall-clock ratios do. salvo's host thread (building each "
            "perturbed image from the previous step, "
            "`preprocess_fn`, the copy into the request, scoring) used "
            + ", ".join(f"{v:.3f}" for v in s["host_thread_cpu_ms_per_image"])
            + " ms of CPU per image. Other settings of the bound, relative to the engine's: "
            + ", ".join(f"batch {w['batch']} × {w['requests']} req {w['vs_engine_config']:.2f}"
                        for w in s["bound_sweep"])
            + f" (best / engine's setting: {s['best_config_vs_engine_config']:.2f}).", ""]
    return "\n".join(lines)


def grid_png(rows: list[dict], groups: list[Group], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    methods = list(dict.fromkeys(_label(r) for r in ok))
    columns = [(g, img) for g in groups for img in g.images]
    by = {(r["group"], _label(r)): r for r in ok}
    fig, axes = plt.subplots(len(methods) + 1, len(columns),
                             figsize=(1.9 * len(columns), 2.0 * (len(methods) + 1)),
                             squeeze=False)
    for c, (g, img) in enumerate(columns):
        picture = _picture(img.raw)
        ax = axes[0][c]
        ax.imshow(picture)
        _boxes(ax, img.boxes)
        ax.set_title(f"{img.name}\n{img.label[:22]}", fontsize=7)
        for r, method in enumerate(methods, start=1):
            ax = axes[r][c]
            row = by.get((g.name, method))
            names = [] if row is None else [e["image"] for e in row["images"]]
            if img.name not in names:  # not run (the reference on fewer photos with --quick)
                ax.axis("off")
                if c == 0:
                    ax.text(0.5, 0.5, method, fontsize=7, ha="center", va="center",
                            transform=ax.transAxes)
                continue
            i = names.index(img.name)
            smap = np.asarray(row["maps"][i], np.float32)
            span = float(smap.max() - smap.min()) or 1.0
            grey = np.uint8(np.rint(255 * (smap - smap.min()) / span))
            color = cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
            ax.imshow(np.uint8(0.5 * color + 0.5 * picture))
            _boxes(ax, img.boxes)
            y, x = np.unravel_index(np.argmax(smap), smap.shape)
            ax.plot([x], [y], marker="+", color="white", markersize=9, mew=2)
            e = row["images"][i]
            ax.set_title(f"PG {_f(e.get('pointing_game'), 0)} ins {e['insertion']:.2f} "
                         f"del {e['deletion']:.2f}", fontsize=6)
            if c == 0:
                ax.set_ylabel(method, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].set_ylabel("image + boxes", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def _label(row: dict) -> str:
    return row["method"] if row["toolkit"] == "salvo" else f"reference {row['method']}"


def _picture(raw: np.ndarray) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.dtype != np.uint8:
        arr = np.uint8(np.clip(np.rint(arr * 255 if arr.max() <= 1.0 else arr), 0, 255))
    return arr


def _boxes(ax: Any, boxes: list[list[int]] | None) -> None:
    from matplotlib import patches

    for x, y, w, h in boxes or []:
        ax.add_patch(patches.Rectangle((x - 0.5, y - 0.5), w + 1, h + 1, fill=False,
                                       edgecolor="lime", linewidth=1))


# ------------------------------------------------------------------------------ main


def agreement(rows: list[dict]) -> None:
    """On every reference row: the median Pearson correlation of its maps with salvo's for the
    same images, model and method (``pearson_vs_salvo``)."""
    salvo_rows = {(r["group"], r["method"]): r for r in rows
                  if r["toolkit"] == "salvo" and r["status"] == "ok"}
    for r in rows:
        mine = salvo_rows.get((r["group"], r["method"]))
        if r["toolkit"] != "reference" or mine is None:
            continue
        theirs = {e["image"]: m for e, m in zip(mine["images"], mine["maps"])}
        values = [pearson(np.asarray(m, np.float64), np.asarray(theirs[e["image"]], np.float64))
                  for e, m in zip(r["images"], r["maps"]) if e["image"] in theirs]
        r["pearson_vs_salvo_per_image"] = values
        r["pearson_vs_salvo"] = float(np.median(values)) if values else None


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], rounds=3, quick_rounds=1, devices=False)
    p.add_argument("--photos", nargs="+", default=None, choices=SAMPLE_IMAGES,
                   help=f"photos to explain (default all; --quick: {' '.join(QUICK_PHOTOS)}, the "
                        f"reference on the first {QUICK_REFERENCE_PHOTOS})")
    p.add_argument("--methods", nargs="+", default=["activationmap", "reciprocam", "rise", "aise"],
                   choices=["activationmap", "reciprocam", "rise", "aise"])
    p.add_argument("--presets", nargs="+", default=None, choices=["speed", "balance", "quality"],
                   help="black-box presets (default all; --quick: speed)")
    p.add_argument("--skip-speed", action="store_true", help="quality part only")
    p.add_argument("--skip-quality", action="store_true", help="speed part only")
    p.epilog = "--rounds: whole runs over all the maps in the speed part (100 maps; --quick 40)."
    args = finish_args(p.parse_args(argv))
    presets = args.presets or (["speed"] if args.quick else ["speed", "balance", "quality"])
    faulthandler.enable()  # a native crash leaves a traceback
    logging.getLogger("salvo").setLevel(logging.ERROR)
    warnings.simplefilter("ignore", UserWarning)
    report = Report("quality", args)

    names = args.photos or list(QUICK_PHOTOS if args.quick else SAMPLE_IMAGES)
    photos, skipped = photo_group(names)
    planted = planted_group()
    groups = [planted, photos]
    xai = None if args.skip_quality else reference(args)
    specs = [s for s in method_specs(args.methods, presets)
             if not (xai is None and s.toolkit == "reference")]
    rows: list[dict] = []
    reference_images = {}
    for group in [] if args.skip_quality else groups:
        log(f"{group.name}: {[img.name for img in group.images]}")
        ref_images = group.images
        if args.quick and group is photos:
            ref_images = group.images[:QUICK_REFERENCE_PHOTOS]
        reference_images[group.name] = [img.name for img in ref_images]
        ctx: dict[str, Any] = {
            "metric": InsertionDeletionAUC(group.model, group.preprocess, group.postprocess,
                                           precision=F32),
            "adcc": None, "xai": xai, "reference_images": ref_images,
            "bound": BoundLoop(group.model, {"PERFORMANCE_HINT": "THROUGHPUT",
                                             "INFERENCE_PRECISION_HINT": F32}, 4),
        }
        for spec in specs:
            rows.append(run_method(group, spec, ctx))
        ctx.clear()  # release the group's compiled models
        gc.collect()
    agreement(rows)
    speed = None
    if not args.skip_speed:
        log("insertion/deletion speed")
        speed = bench_speed(photos, args.quick, args.rounds)
        gc.collect()

    boxes = json.loads((HERE / "boxes.json").read_text())["photos"]
    box_area = {}
    for img in photos.images:
        if img.boxes is not None:
            mask = np.zeros(img.raw.shape[:2], bool)
            for x, y, w, h in boxes[img.name]["boxes"]:
                mask[y:y + h + 1, x:x + w + 1] = True
            box_area[img.name] = float(mask.mean())
    meta = {
        "quick": args.quick, "skipped": skipped, "box_area": box_area,
        "image_notes": [{"image": i.name, "note": i.note} for g in groups for i in g.images],
        "reference_images": ", ".join(reference_images.get(photos.name, [])) or "none",
        "reference": (REFERENCE_NAME if xai is not None else "not run"),
    }
    if rows:
        grid_png(rows, groups, report.path.with_name(report.path.stem + "_grid.png"))
    clean = [{k: v for k, v in r.items() if k != "maps"} for r in rows]
    report.write({"notes": meta, "rows": clean, "speed": speed},
                 lambda rep: markdown(rows, speed, meta, rep.header()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
