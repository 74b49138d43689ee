"""RISE map quality per inference: salvo's centered estimator vs plain RISE (issue 4, item 5).

For each photo (EfficientNet-Lite0 at 224x224, f32, its top-1 class, num_cells 8, prob 0.5):

1. **Converged map** (cached in ``benchmarks/results/converged/``): two independent halves, built
   from runs with different seeds (centered estimator, each run's raw map normalised by its mask
   count), grown until the halves correlate >= 0.99 (Pearson); the converged map is their mean.
   Built for logits and for softmax probabilities from the same inferences (``postprocess_fn``
   returns both; targets ``c`` and ``1000 + c``).
2. **Curves**: independent runs (seeds 0, 1, ...); every 64 masks ``on_check`` reads the
   accumulator, whose plain (``sum s_i m_i``) and centered (``sum (s_i - mean s) m_i``) maps come
   from the same masks and inferences, and records their Pearson correlation with the converged
   map. Plain RISE's expectation differs from the centered one by ``mean(s) * E[m]`` (flat up to
   border effects); that map (``E[m]`` from 100 000 masks, no inference) is also used as plain's
   ground truth, and the better of the two correlations is kept for plain, so the comparison
   cannot favour salvo through the choice of ground truth.
3. **Inferences to a quality q** (0.9, 0.95): the first count from which a run's curve stays
   >= q to the end of the run (median over runs); when a run ends below q, the count is
   extrapolated from a fit ``1/r^2 = a + b/n`` over the run (marked ``~``).
4. **Time to quality**: inferences needed x seconds per mask, each measured in this invocation
   on the same machine: salvo = one Explainer call (f32, its default engine and estimator,
   one target, 2000 masks); the reference (openvino-xai 1.1.0, compiled f32, plain RISE) =
   200 masks. So the reference's time is *masks needed by plain RISE x the reference's measured
   seconds per mask*, and salvo's is *masks needed by the centered estimator x salvo's*.
   The same at the device defaults (bf16 for both) is reported beside it.
5. On coffee: the reference's own map with 10 000 masks (f32, seed 0; cached as .npy) against
   the converged map, beside salvo's with 1000 masks (default estimator, seeds 0-4).

6. Mask designs (``--mask-design iid balanced``): instead of the above, each photo's curves with
   both designs side by side (the same seeds; the centered estimator), inferences to each quality
   per design and the ratio balanced / iid (results/rise_designs_confirm.*). With one design the
   study above runs its curves with that design (``iid``, the default here, is what
   ``results/rise_quality.*`` were produced with). Converged maps are always built with iid
   masks (the cached ones were).

Resumable: each photo's results go to ``benchmarks/results/rise_quality_photos/<photo>.json``;
the summary (JSON, Markdown, PNG of the curves) is rebuilt from all photos done so far.

    python benchmarks/bench_rise_quality.py [--quick] [--photos coffee chelsea ...]
    python benchmarks/bench_rise_quality.py --speeds-only 3   # re-time, rebuild the summary
    python benchmarks/bench_rise_quality.py --mask-design iid balanced --photos coffee \
        --runs 3 --curve-masks 2048                             # the designs, side by side

Time ratios in the summary use ``results/rise_quality_speeds.json`` when present (salvo and the
reference timed in interleaved rounds by ``--speeds-only``), else the per-invocation timings.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # the reference's per-mask progress bar

import numpy as np
import openvino as ov

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import salvo
from _common import lite0_at, loadavg, pearson
from _reference import load_reference, reference_available
from salvo.inference import get_core
from salvo.kernels import rise_masks
from salvo.methods.black_box.rise import MASK_DESIGNS, RISE, Accumulator, resolve_params
from salvo.zoo import SAMPLE_IMAGES, efficientnet_lite0_preprocess, sample_image

RESULTS = HERE / "results"
CONVERGED = RESULTS / "converged"
PHOTO_DIR = RESULTS / "rise_quality_photos"
SIZE = 224
NUM_CELLS = 8
PROB = 0.5
QUALITIES = (0.9, 0.95)
SCORES = ("logits", "softmax")
CHECK_EVERY = 64
NUM_CLASSES = 1000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {loadavg()}] {msg}", file=sys.stderr, flush=True)


def logits_only(outputs: Any) -> np.ndarray:
    return outputs[0]


def logits_and_softmax(outputs: Any) -> np.ndarray:
    """``(B, 2000)``: the logits, then their softmax (so one run gives both maps)."""
    z = np.asarray(outputs[0], np.float32)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.concatenate([z, e / e.sum(axis=1, keepdims=True)], axis=1)


@contextmanager
def blas_one_thread() -> Iterator[None]:
    """NumPy's BLAS on one thread (so it does not fight OpenVINO for the 2 cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def top1(x: np.ndarray) -> tuple[int, float]:
    compiled = get_core().compile_model(lite0_at(SIZE), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    z = compiled(x)[0][0]
    p = np.exp(z - z.max())
    p /= p.sum()
    c = int(np.argmax(z))
    return c, float(p[c])


def label_of(c: int) -> str:
    try:
        from salvo.zoo import imagenet_labels

        return str(imagenet_labels()[c]).split(",")[0]
    except Exception:  # noqa: BLE001 - labels are decoration only
        return str(c)


# ----------------------------------------------------------------------------- E[m]
def mask_mean(num: int = 100_000) -> np.ndarray:
    """``E[m]`` (H*W,) float64 over ``num`` masks (seed 987654321), cached."""
    path = CONVERGED / f"mask_mean_{SIZE}_c{NUM_CELLS}_p{PROB}_n{num}.npy"
    if path.is_file():
        return np.load(path)
    total = np.zeros(SIZE * SIZE, np.float64)
    step = 2000
    for first in range(0, num, step):
        m = rise_masks(987654321, first, step, NUM_CELLS, PROB, SIZE, SIZE, num_threads=2)
        total += m.reshape(step, -1).sum(axis=0, dtype=np.float64)
    mean = total / num
    CONVERGED.mkdir(parents=True, exist_ok=True)
    np.save(path, mean)
    return mean


# ----------------------------------------------------------------------------- converged
class Runner:
    """RISE with both score types as targets, f32, the bound's engine (results do not depend on
    the engine's batch size or number of requests)."""

    def __init__(self, batch_size: int = 1, num_requests: int = 4) -> None:
        self.rise = RISE(lite0_at(SIZE), logits_and_softmax, device_name="CPU", precision="f32",
                         progress=False, batch_size=batch_size, num_requests=num_requests)

    def run(self, x: np.ndarray, c: int, seed: int, num_masks: int, on_check: Any = None,
            check_every: int | None = None, mask_design: str = "iid") -> dict:
        """Raw per-mask-normalised centered maps ``(2, P)`` and score means ``(2,)``."""
        state: dict[str, Any] = {}

        def grab(count: int, acc: Accumulator) -> None:
            if on_check is not None:
                on_check(count, acc)
            if count == num_masks:
                state["centered"] = acc.maps("centered").astype(np.float64) / count
                state["mean_score"] = acc.score_sum / count

        params = resolve_params(num_masks=num_masks, num_cells=NUM_CELLS, prob=PROB, seed=seed,
                                estimator="centered", scale_output=False,
                                check_every=check_every or num_masks,
                                mask_design=mask_design)
        t0 = time.perf_counter()
        with blas_one_thread():
            self.rise.run(x, [c, NUM_CLASSES + c], params, on_check=grab)
        state["seconds"] = time.perf_counter() - t0
        return state


def converged_paths(photo: str, c: int) -> dict[str, Path]:
    stem = f"{photo}_{c}_{SIZE}_c{NUM_CELLS}"
    return {
        "meta": CONVERGED / f"{stem}.json",
        **{f"{s}": CONVERGED / f"{stem}_{s}.npy" for s in SCORES},
        **{f"{s}_half{h}": CONVERGED / f"{stem}_{s}_half{h}.npy" for s in SCORES for h in "AB"},
    }


def converged_map(runner: Runner, photo: str, x: np.ndarray, c: int, *, chunk: int,
                  min_half: int, max_half: int, target: float, save: bool) -> dict:
    """Grow two halves until they correlate >= ``target`` for both score types (cached)."""
    paths = converged_paths(photo, c)
    meta: dict[str, Any] = {"photo": photo, "class": c, "size": SIZE, "num_cells": NUM_CELLS,
                            "prob": PROB, "precision": "f32", "estimator": "centered",
                            "n_half": 0, "seeds": {"A": [], "B": []}, "runs": []}
    sums = {s: {h: np.zeros(SIZE * SIZE) for h in "AB"} for s in SCORES}
    mean_scores = {s: [] for s in SCORES}
    if paths["meta"].is_file():
        meta = json.loads(paths["meta"].read_text())
        for s in SCORES:
            for h in "AB":
                sums[s][h] = np.load(paths[f"{s}_half{h}"]).astype(np.float64) * meta["n_half"]
            mean_scores[s] = meta["mean_score"][s]
        if meta.get("converged"):
            return _converged_result(meta, sums)
    while meta["n_half"] < max_half:
        k = len(meta["seeds"]["A"])
        for h, seed in (("A", 100_000 + 2 * k), ("B", 100_001 + 2 * k)):
            out = runner.run(x, c, seed, chunk)
            meta["seeds"][h].append(seed)
            meta["runs"].append({"half": h, "seed": seed, "masks": chunk,
                                 "seconds": out["seconds"]})
            for i, s in enumerate(SCORES):
                sums[s][h] += out["centered"][i] * chunk
                if h == "A":
                    mean_scores[s].append(float(out["mean_score"][i]))
        meta["n_half"] += chunk
        meta["mean_score"] = mean_scores
        corr = {s: pearson(sums[s]["A"], sums[s]["B"]) for s in SCORES}
        meta["half_correlation"] = corr
        meta["converged"] = bool(meta["n_half"] >= min_half and
                                 all(v >= target for v in corr.values()))
        log(f"  {photo}: converged-map halves of {meta['n_half']} masks: "
            + ", ".join(f"{s} r={v:.4f}" for s, v in corr.items()))
        if save:
            _save_converged(paths, meta, sums)
        if meta["converged"]:
            break
    return _converged_result(meta, sums)


def _save_converged(paths: dict[str, Path], meta: dict, sums: dict) -> None:
    CONVERGED.mkdir(parents=True, exist_ok=True)
    n = meta["n_half"]
    for s in SCORES:
        for h in "AB":
            np.save(paths[f"{s}_half{h}"], (sums[s][h] / n).astype(np.float32))
        np.save(paths[s], ((sums[s]["A"] + sums[s]["B"]) / (2 * n)).astype(np.float32))
    meta["when"] = _dt.datetime.now().isoformat(timespec="seconds")
    paths["meta"].write_text(json.dumps(meta, indent=1))


def _converged_result(meta: dict, sums: dict) -> dict:
    n = meta["n_half"]
    maps = {s: (sums[s]["A"] + sums[s]["B"]) / (2 * n) for s in SCORES}
    return {"meta": meta, "maps": maps,
            "mean_score": {s: float(np.mean(meta["mean_score"][s])) for s in SCORES}}


# ----------------------------------------------------------------------------- curves
def curves(runner: Runner, x: np.ndarray, c: int, truth: dict, plain_truth: dict, seed: int,
           num_masks: int, mask_design: str = "iid") -> dict:
    """Correlation with the converged map every CHECK_EVERY masks, both estimators."""
    rec: dict[str, list] = {"count": []}
    for s in SCORES:
        for key in ("centered", "plain_vs_centered_truth", "plain_vs_plain_truth"):
            rec[f"{s}/{key}"] = []

    def on_check(count: int, acc: Accumulator) -> None:
        plain = acc.maps("plain")
        centered = acc.maps("centered")
        rec["count"].append(count)
        for i, s in enumerate(SCORES):
            rec[f"{s}/centered"].append(pearson(centered[i], truth[s]))
            rec[f"{s}/plain_vs_centered_truth"].append(pearson(plain[i], truth[s]))
            rec[f"{s}/plain_vs_plain_truth"].append(pearson(plain[i], plain_truth[s]))

    out = runner.run(x, c, seed, num_masks, on_check=on_check, check_every=CHECK_EVERY,
                     mask_design=mask_design)
    rec["seconds"] = out["seconds"]
    rec["seed"] = seed
    rec["mask_design"] = mask_design
    for s in SCORES:
        a = np.asarray(rec[f"{s}/plain_vs_centered_truth"])
        b = np.asarray(rec[f"{s}/plain_vs_plain_truth"])
        rec[f"{s}/plain"] = np.maximum(a, b).tolist()  # the more favourable to plain RISE
    return rec


def needed(counts: list[int], r: list[float], q: float, ceiling_r: float
           ) -> tuple[float, bool]:
    """Masks from which ``r`` stays >= ``q`` (measured), else extrapolated.

    The extrapolation uses ``1/r^2 = a + b/n`` (a map = expectation + noise whose variance falls
    as 1/n), with ``a = 1/ceiling_r^2`` fixed by the converged map's own noise and ``b`` the
    median of ``n (1/r^2 - a)`` over the second half of the run.
    """
    counts_a = np.asarray(counts, float)
    r_a = np.asarray(r, float)
    below = np.nonzero(r_a < q)[0]
    if len(below) == 0:
        return float(counts_a[0]), True
    if below[-1] < len(r_a) - 1:
        return float(counts_a[below[-1] + 1]), True
    a = 1.0 / ceiling_r**2
    gap = 1.0 / q**2 - a
    sel = (counts_a >= counts_a[-1] / 2) & (r_a > 0)
    if gap <= 0 or not sel.any():
        return float("inf"), False
    b = float(np.median(counts_a[sel] * (1.0 / r_a[sel] ** 2 - a)))
    return float(max(b / gap, counts_a[-1])), False


def spearman_brown(half_r: float) -> float:
    """Expected correlation of a noiseless map with the mean of two halves correlating
    ``half_r``."""
    return float(np.sqrt(2 * half_r / (1 + half_r)))


# ----------------------------------------------------------------------------- timings
def salvo_explainer(precision: str | None) -> Any:
    """salvo's Explainer as a user builds it (default engine), RISE, one image at a time."""
    return salvo.Explainer(lite0_at(SIZE), salvo.Task.CLASSIFICATION, postprocess_fn=logits_only,
                           explain_mode=salvo.ExplainMode.BLACKBOX,
                           explain_method=salvo.Method.RISE, inference_precision=precision,
                           progress=False)


def reference_explainer(xai: Any, precision: str | None) -> Any:
    ref = xai.Explainer(model=lite0_at(SIZE), task=xai.Task.CLASSIFICATION,
                        postprocess_fn=logits_only,
                        explain_mode=xai.explainer.ExplainMode.BLACKBOX,
                        explain_method=xai.Method.RISE)
    if precision:
        ref.method._model_compiled = ov.Core().compile_model(
            ref.method._model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    return ref


def measure_speeds(xai: Any | None, quick: bool, rounds: int = 1) -> dict:
    """Seconds per mask (one target, num_cells 8, coffee), salvo and the reference, measured
    in interleaved rounds (every variant once per round, back to back)."""
    x = efficientnet_lite0_preprocess(sample_image("coffee"), size=SIZE)
    n_salvo = 1000 if quick else 2000
    n_ref = 60 if quick else 200
    out: dict[str, Any] = {"load_before": loadavg(), "salvo_masks": n_salvo, "rounds": rounds,
                           "when": _dt.datetime.now().isoformat(timespec="seconds")}
    calls: dict[str, tuple[Any, int]] = {}
    for prec, key in (("f32", "f32"), (None, "default")):
        calls[f"salvo_{key}"] = (salvo_explainer(prec), n_salvo)
        if xai is not None:
            calls[f"reference_{key}"] = (reference_explainer(xai, prec), n_ref)
            out["reference_masks"] = n_ref
    for fn, _ in calls.values():  # warm-up
        fn(x, targets=0, num_masks=64, num_cells=NUM_CELLS, resize=False, colormap=False)
    per_round: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for key, (fn, n) in calls.items():
            t0 = time.perf_counter()
            e = fn(x, targets=0, num_masks=n, num_cells=NUM_CELLS, resize=False, colormap=False)
            wall = time.perf_counter() - t0
            inferences = getattr(e, "num_inferences", 0) or n + 1
            per_round[key].append(wall / inferences)
    for key, v in per_round.items():
        out[key] = float(np.median(v))
    out["per_round"] = per_round
    for key in ("f32", "default"):
        if f"reference_{key}" in per_round:
            out[f"paired_ratio_{key}"] = float(np.median(
                [r / s_ for r, s_ in zip(per_round[f"reference_{key}"],
                                         per_round[f"salvo_{key}"])]))
    out["load_after"] = loadavg()
    log("  seconds per mask: " + ", ".join(
        f"{k} {v * 1e3:.2f} ms" for k, v in out.items() if isinstance(v, float)
        and not k.startswith("paired")))
    return out


# ----------------------------------------------------------------------------- reference map
def reference_map_10k(xai: Any | None, x: np.ndarray, c: int, truth: np.ndarray,
                      runner_f32: RISE, quick: bool, mask_design: str = "iid") -> dict | None:
    """Coffee: the reference's plain map with 10 000 masks vs salvo's with 1000."""
    path = CONVERGED / f"reference_coffee_{c}_{SIZE}_c{NUM_CELLS}_n10000_seed0_f32.npy"
    if path.is_file():
        ref_map = np.load(path)
    elif xai is not None and not quick:
        ref = reference_explainer(xai, "f32")
        log("  reference: 10 000 masks on coffee (f32, once; cached)")
        t0 = time.perf_counter()
        m = ref.method.generate_saliency_map(x, target_indices=[c], num_masks=10_000,
                                             num_cells=NUM_CELLS, seed=0, scale_output=False)
        log(f"  reference 10 000 masks: {time.perf_counter() - t0:.0f} s")
        ref_map = np.asarray(m[c], np.float32)
        CONVERGED.mkdir(parents=True, exist_ok=True)
        np.save(path, ref_map)
    else:
        return None
    salvo_r = []
    for seed in range(5):
        params = resolve_params(num_masks=1000, num_cells=NUM_CELLS, seed=seed,
                                scale_output=False, mask_design=mask_design)
        with blas_one_thread():
            salvo_r.append(pearson(runner_f32.run(x, [c], params).maps[0], truth))
    return {"reference_10000": pearson(ref_map, truth), "salvo_1000_by_seed": salvo_r,
            "salvo_1000_median": float(np.median(salvo_r)), "salvo_1000_min": min(salvo_r)}


# ----------------------------------------------------------------------------- per photo
def do_photo(photo: str, args: argparse.Namespace, runner: Runner, xai: Any | None,
             speeds: dict) -> dict:
    t_photo = time.perf_counter()
    x = efficientnet_lite0_preprocess(sample_image(photo), size=SIZE)
    c, p = top1(x)
    log(f"{photo}: top-1 class {c} ({label_of(c)}, p={p:.3f})")
    conv = converged_map(
        runner, photo, x, c,
        chunk=2048 if args.quick else 8192,
        min_half=2048 if args.quick else 8192,
        max_half=4096 if args.quick else args.max_half,
        target=0.99, save=not args.quick,
    )
    truth = conv["maps"]
    em = mask_mean()
    plain_truth = {s: truth[s] + conv["mean_score"][s] * em for s in SCORES}
    res: dict[str, Any] = {
        "photo": photo, "class": c, "label": label_of(c), "probability": p,
        "converged": {k: v for k, v in conv["meta"].items() if k != "runs"},
        "plain_truth_vs_centered_truth": {s: pearson(plain_truth[s], truth[s]) for s in SCORES},
        "quick": args.quick, "when": _dt.datetime.now().isoformat(timespec="seconds"),
        "speeds": speeds, "runs": [], "mask_design": args.mask_design[0],
    }
    for k in range(args.runs):
        log(f"  {photo}: curve run seed {k}, {args.curve_masks} masks")
        res["runs"].append(curves(runner, x, c, truth, plain_truth, seed=k,
                                  num_masks=args.curve_masks, mask_design=args.mask_design[0]))
    res["needed"] = {}
    for s in SCORES:
        for est in ("centered", "plain"):
            for q in QUALITIES:
                ceiling = spearman_brown(res["converged"]["half_correlation"][s])
                per_run = [needed(r["count"], r[f"{s}/{est}"], q, ceiling)
                           for r in res["runs"]]
                vals = [v for v, _ in per_run]
                res["needed"][f"{s}/{est}/{q}"] = {
                    "masks": float(np.median(vals)), "per_run": vals,
                    "measured": all(m for _, m in per_run),
                }
    if photo == "coffee":
        res["reference_10000"] = reference_map_10k(xai, x, c, truth["logits"], runner_f32(),
                                                   args.quick, args.mask_design[0])
    res["seconds"] = time.perf_counter() - t_photo
    return res


_RUNNER_F32: RISE | None = None


def runner_f32() -> RISE:
    """Plain one-target RISE (salvo's defaults except the tuned engine), f32."""
    global _RUNNER_F32
    if _RUNNER_F32 is None:
        _RUNNER_F32 = RISE(lite0_at(SIZE), logits_only, device_name="CPU", precision="f32", progress=False,
                           batch_size=1, num_requests=4)
    return _RUNNER_F32


# ----------------------------------------------------------------------------- summary
def pooled_speeds(photos: list[dict]) -> dict[str, float]:
    """Median per-mask seconds over the distinct invocations' measurements."""
    distinct = {json.dumps(p["speeds"], sort_keys=True): p["speeds"] for p in photos}
    keys = ("salvo_f32", "salvo_default", "reference_f32", "reference_default")
    return {k: float(np.median([d[k] for d in distinct.values() if k in d])) for k in keys
            if any(k in d for d in distinct.values())}


def summarise(photos: list[dict], quick: bool) -> tuple[dict, str]:
    rows = []
    speeds_file = RESULTS / ("rise_quality_speeds_quick.json" if quick else "rise_quality_speeds.json")
    if speeds_file.is_file():
        sp = json.loads(speeds_file.read_text())
        sp["source"] = f"{speeds_file.name} ({sp['rounds']} interleaved rounds, {sp['when']})"
    else:
        sp = pooled_speeds(photos)
        sp["source"] = "median of the per-invocation measurements"
    for r in photos:
        row: dict[str, Any] = {"photo": r["photo"], "class": r["class"], "label": r["label"]}
        for s in SCORES:
            for q in QUALITIES:
                cen = r["needed"][f"{s}/centered/{q}"]
                pla = r["needed"][f"{s}/plain/{q}"]
                row[f"{s}/{q}/centered"] = cen["masks"] + 1
                row[f"{s}/{q}/plain"] = pla["masks"] + 1
                row[f"{s}/{q}/plain_measured"] = pla["measured"]
                row[f"{s}/{q}/centered_measured"] = cen["measured"]
                row[f"{s}/{q}/ratio"] = (pla["masks"] + 1) / (cen["masks"] + 1)
                salvo_t = (cen["masks"] + 1) * sp["salvo_f32"]
                row[f"{s}/{q}/salvo_s"] = salvo_t
                row[f"{s}/{q}/salvo_default_s"] = (cen["masks"] + 1) * sp["salvo_default"]
                if "reference_f32" in sp:
                    ref_t = pla["masks"] * sp["reference_f32"]
                    row[f"{s}/{q}/reference_s"] = ref_t
                    row[f"{s}/{q}/time_ratio"] = ref_t / salvo_t
                    ref_d = pla["masks"] * sp["reference_default"]
                    row[f"{s}/{q}/reference_default_s"] = ref_d
                    row[f"{s}/{q}/time_ratio_default"] = ref_d / row[f"{s}/{q}/salvo_default_s"]
                inv = r["speeds"]
                if "reference_f32" in inv:
                    row[f"{s}/{q}/time_ratio_invocation"] = (
                        pla["masks"] * inv["reference_f32"]
                        / ((cen["masks"] + 1) * inv["salvo_f32"]))
        row["half_correlation"] = r["converged"]["half_correlation"]
        row["n_half"] = r["converged"]["n_half"]
        row["plain_truth_vs_centered_truth"] = r["plain_truth_vs_centered_truth"]
        rows.append(row)
    agg: dict[str, Any] = {}
    for s in SCORES:
        for q in QUALITIES:
            ratios = [row[f"{s}/{q}/ratio"] for row in rows]
            if ratios:
                agg[f"{s}/{q}/ratio_median"] = float(np.median(ratios))
                agg[f"{s}/{q}/ratio_worst"] = float(np.min(ratios))
            for suffix in ("", "_default"):
                tr = [row[f"{s}/{q}/time_ratio{suffix}"] for row in rows
                      if f"{s}/{q}/time_ratio{suffix}" in row]
                if tr:
                    agg[f"{s}/{q}/time_ratio{suffix}_median"] = float(np.median(tr))
                    agg[f"{s}/{q}/time_ratio{suffix}_worst"] = float(np.min(tr))
    coffee = next((r for r in photos if r["photo"] == "coffee"), None)
    summary = {"rows": rows, "aggregate": agg, "seconds_per_mask": sp,
               "coffee_reference_10000": coffee.get("reference_10000") if coffee else None,
               "photos": [r["photo"] for r in photos]}
    return summary, markdown(summary, photos, quick)


def _n(v: float, measured: bool = True) -> str:
    if not np.isfinite(v):
        return "unreachable"
    return f"{'' if measured else '~'}{v:,.0f}"


def markdown(summary: dict, photos: list[dict], quick: bool) -> str:
    lines: list[str] = []
    a = lines.append
    sp = summary["seconds_per_mask"]
    a(f"# RISE map quality per inference{' (quick)' if quick else ''}")
    a("")
    a(f"EfficientNet-Lite0 at {SIZE}x{SIZE}, f32, top-1 class of each photo, num_cells "
      f"{NUM_CELLS}, prob {PROB}. Quality = Pearson correlation with a converged map (two "
      "independent halves built with the centered estimator, correlating >= 0.99). "
      "Inferences = masks + 1 (the unmasked one); median over independent runs; `~` = "
      "extrapolated from 1/r^2 = a + b/n (a fixed by the converged map's own noise) because "
      "the run ended below the threshold. Plain RISE's correlation is the better of (vs the "
      "converged map, vs the converged map plus mean(score) x E[m], plain RISE's own "
      "expectation).")
    a("")
    a("Time to quality = inferences needed x measured seconds per mask: salvo = centered "
      "inferences x salvo's (one Explainer call, default engine and estimator, one target); "
      "the reference (openvino-xai 1.1.0) = plain-RISE masks needed x the reference's measured "
      "seconds per mask. f32 for both (the reference's model recompiled with the f32 hint); "
      "`defaults` = both at the device default precision (bf16 here), masks needed as measured "
      f"in f32. Seconds per mask from {sp.get('source')}: salvo f32 "
      f"{sp['salvo_f32'] * 1e3:.2f} ms, salvo default {sp['salvo_default'] * 1e3:.2f} ms"
      + (f", reference f32 {sp['reference_f32'] * 1e3:.2f} ms, reference default "
         f"{sp['reference_default'] * 1e3:.2f} ms" if "reference_f32" in sp else "")
      + (f" (load {sp['load_before']} -> {sp['load_after']})" if "load_before" in sp else "")
      + ".")
    for s in SCORES:
        a("")
        a(f"## Scores = {s}")
        a("")
        a("| photo (class) | halves r | inf. to 0.9: plain | centered | ratio | "
          "inf. to 0.95: plain | centered | ratio | time to 0.95: reference | salvo | "
          "ref/salvo | ref/salvo (defaults) |")
        a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in summary["rows"]:
            cells = [f"{row['photo']} ({row['class']} {row['label']})",
                     f"{row['half_correlation'][s]:.3f}"]
            for q in QUALITIES:
                cells += [_n(row[f"{s}/{q}/plain"], row[f"{s}/{q}/plain_measured"]),
                          _n(row[f"{s}/{q}/centered"], row[f"{s}/{q}/centered_measured"]),
                          f"{row[f'{s}/{q}/ratio']:.1f}x"]
            q = 0.95
            if f"{s}/{q}/reference_s" in row:
                cells += [f"{row[f'{s}/{q}/reference_s']:,.1f} s",
                          f"{row[f'{s}/{q}/salvo_s']:.2f} s",
                          f"{row[f'{s}/{q}/time_ratio']:.0f}x",
                          f"{row[f'{s}/{q}/time_ratio_default']:.0f}x"]
            else:
                cells += ["", f"{row[f'{s}/{q}/salvo_s']:.2f} s", "", ""]
            a("| " + " | ".join(cells) + " |")
        agg = summary["aggregate"]
        for q in QUALITIES:
            key = f"{s}/{q}"
            if f"{key}/ratio_median" in agg:
                a("")
                text = (f"To {q}: inferences plain/centered median "
                        f"{agg[f'{key}/ratio_median']:.1f}x, worst {agg[f'{key}/ratio_worst']:.1f}x")
                if f"{key}/time_ratio_median" in agg:
                    text += (f"; time reference/salvo (f32) median "
                             f"{agg[f'{key}/time_ratio_median']:.0f}x, worst "
                             f"{agg[f'{key}/time_ratio_worst']:.0f}x; at the defaults median "
                             f"{agg[f'{key}/time_ratio_default_median']:.0f}x, worst "
                             f"{agg[f'{key}/time_ratio_default_worst']:.0f}x")
                a(text + ".")
    a("")
    a("Converged maps: masks per half, halves' correlation, and the correlation between the "
      "centered and the plain estimator's expected maps (logits / softmax):")
    a("")
    a("| photo | masks per half | halves r | plain-vs-centered expectation r |")
    a("|---|---:|---:|---:|")
    for row in summary["rows"]:
        hc = row["half_correlation"]
        pt = row["plain_truth_vs_centered_truth"]
        a(f"| {row['photo']} | {row['n_half']:,} | {hc['logits']:.4f} / {hc['softmax']:.4f} | "
          f"{pt['logits']:.4f} / {pt['softmax']:.4f} |")
    cr = summary.get("coffee_reference_10000")
    if cr:
        a("")
        a(f"Coffee, logits: the reference's map with 10 000 masks (f32, seed 0) correlates "
          f"{cr['reference_10000']:.3f} with the converged map; salvo's with 1000 masks "
          f"(default estimator) {cr['salvo_1000_median']:.3f} (median of seeds 0-4, min "
          f"{cr['salvo_1000_min']:.3f}).")
    return "\n".join(lines) + "\n"


def plot(photos: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(photos)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, r in zip(axes.ravel(), photos):
        for s, style in (("logits", "-"), ("softmax", ":")):
            for est, color in (("plain", "tab:red"), ("centered", "tab:blue")):
                for k, run in enumerate(r["runs"]):
                    ax.plot(np.asarray(run["count"]) + 1, run[f"{s}/{est}"], style, color=color,
                            lw=1.2, alpha=0.9 if k == 0 else 0.4,
                            label=f"{'salvo (centered)' if est == 'centered' else 'plain RISE'}"
                                  f", {s}" if k == 0 else None)
        for q in QUALITIES:
            ax.axhline(q, color="grey", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_title(f"{r['photo']}: {r['label']}", fontsize=9)
        ax.set_xlabel("inferences", fontsize=8)
        ax.set_ylabel("Pearson r vs converged", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6, loc="lower right")
    fig.suptitle("RISE map quality vs inferences: EfficientNet-Lite0 224, num_cells 8 "
                 "(solid: logits, dotted: softmax)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- mask designs
DESIGN_DIR = RESULTS / "rise_designs_confirm_photos"


def do_photo_designs(photo: str, args: argparse.Namespace, runner: Runner) -> dict:
    """Curves of each mask design (same seeds), centered estimator, against the cached
    converged map; inferences to each quality per design."""
    t_photo = time.perf_counter()
    x = efficientnet_lite0_preprocess(sample_image(photo), size=SIZE)
    c, p = top1(x)
    log(f"{photo}: top-1 class {c} ({label_of(c)}, p={p:.3f}); designs {args.mask_design}")
    conv = converged_map(runner, photo, x, c, chunk=8192, min_half=8192,
                         max_half=args.max_half, target=0.99, save=True)
    truth = conv["maps"]
    plain_truth = {s: truth[s] + conv["mean_score"][s] * mask_mean() for s in SCORES}
    ceiling = {s: spearman_brown(conv["meta"]["half_correlation"][s]) for s in SCORES}
    res: dict[str, Any] = {"photo": photo, "class": c, "label": label_of(c), "probability": p,
                           "designs": list(args.mask_design), "runs": {}, "needed": {},
                           "when": _dt.datetime.now().isoformat(timespec="seconds")}
    for design in args.mask_design:
        res["runs"][design] = []
    for k in range(args.runs):
        for design in args.mask_design:  # interleaved: a load change hits both designs
            log(f"  {photo}: seed {k}, {design}, {args.curve_masks} masks")
            res["runs"][design].append(curves(runner, x, c, truth, plain_truth, seed=k,
                                              num_masks=args.curve_masks, mask_design=design))
    for design in args.mask_design:
        for s in SCORES:
            for q in QUALITIES:
                per_run = [needed(r["count"], r[f"{s}/centered"], q, ceiling[s])
                           for r in res["runs"][design]]
                res["needed"][f"{design}/{s}/{q}"] = {
                    "inferences": [v + 1 for v, _ in per_run],
                    "measured": [m for _, m in per_run],
                    "median": float(np.median([v + 1 for v, _ in per_run])),
                }
    res["seconds"] = time.perf_counter() - t_photo
    return res


def designs_summary(photos: list[dict], research: dict | None) -> tuple[dict, str]:
    designs = photos[0]["designs"]
    base, new = designs[0], designs[1]
    lines = ["# RISE mask designs: confirmation with the production generator", "",
             f"EfficientNet-Lite0 at {SIZE}x{SIZE}, f32, top-1 class, num_cells {NUM_CELLS}, "
             f"prob {PROB}, centered estimator, against the cached converged maps "
             "(benchmarks/results/converged/). Inferences = masks + 1 to reach correlation q "
             "with the converged map and stay there (`~` = extrapolated; see "
             "bench_rise_quality.py); median over seeds [min-max]. Produced by "
             "`python benchmarks/bench_rise_quality.py --mask-design "
             f"{' '.join(designs)} --runs R --curve-masks N --photos ...`.", ""]
    agg: dict[str, Any] = {}
    for s in SCORES:
        for q in QUALITIES:
            lines += [f"## {s}, q = {q}", "",
                      f"| photo | seeds x masks | {base} | {new} | {new}/{base} |"
                      + (" research ratio |" if research else ""),
                      "|---|---:|---:|---:|---:|" + ("---:|" if research else "")]
            ratios = []
            for r in photos:
                a = r["needed"][f"{base}/{s}/{q}"]
                b = r["needed"][f"{new}/{s}/{q}"]
                ratio = b["median"] / a["median"]
                ratios.append(ratio)

                def cell(d: dict) -> str:
                    mark = "" if all(d["measured"]) else "~"
                    v = d["inferences"]
                    return f"{mark}{d['median']:,.0f} [{min(v):,.0f}-{max(v):,.0f}]"

                n_runs = len(r["runs"][base])
                n_masks = r["runs"][base][0]["count"][-1]
                row = (f"| {r['photo']} | {n_runs} x {n_masks} | {cell(a)} | {cell(b)} | "
                       f"{ratio:.2f} |")
                if research:
                    rr = research.get(f"{s}/{q}", {}).get(r["photo"])
                    row += f" {rr:.2f} |" if rr is not None else " |"
                lines.append(row)
            agg[f"{s}/{q}"] = {"median_ratio": float(np.median(ratios)),
                               "worst_ratio": float(np.max(ratios)),
                               "ratios": dict(zip([r["photo"] for r in photos], ratios))}
            lines += ["", f"{new}/{base}: median {np.median(ratios):.2f}, worst "
                      f"{np.max(ratios):.2f} over {len(photos)} photos.", ""]
    return {"aggregate": agg, "photos": [r["photo"] for r in photos],
            "designs": designs}, "\n".join(lines) + "\n"


def research_ratios() -> dict | None:
    """The design study's ratios per photo (results/rise_designs.json), if present."""
    path = RESULTS / "rise_designs.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data.get("ratio_had4_bs_over_iid")


def plot_designs(photos: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(photos)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    colors = {"iid": "tab:red", "balanced": "tab:blue"}
    for ax, r in zip(axes.ravel(), photos):
        for s, style in (("logits", "-"), ("softmax", ":")):
            for design in r["designs"]:
                for k, run in enumerate(r["runs"][design]):
                    ax.plot(np.asarray(run["count"]) + 1, run[f"{s}/centered"], style,
                            color=colors.get(design, "k"), lw=1.1, alpha=0.9 if k == 0 else 0.4,
                            label=f"{design}, {s}" if k == 0 else None)
        for q in QUALITIES:
            ax.axhline(q, color="grey", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_ylim(0.5, 1)
        ax.set_title(f"{r['photo']}: {r['label']}", fontsize=9)
        ax.set_xlabel("inferences", fontsize=8)
        ax.set_ylabel("Pearson r vs converged", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6, loc="lower right")
    fig.suptitle("RISE mask designs (production generator), centered estimator, "
                 "EfficientNet-Lite0 224, num_cells 8 (solid: logits, dotted: softmax)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main_designs(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    DESIGN_DIR.mkdir(parents=True, exist_ok=True)
    todo = args.photos or ["coffee"]
    runner = Runner()
    for photo in todo:
        if time.perf_counter() - t0 > args.budget:
            log(f"time budget: stopping; resume with --photos {photo} ...")
            break
        res = do_photo_designs(photo, args, runner)
        (DESIGN_DIR / f"{photo}.json").write_text(json.dumps(res, default=float))
        log(f"{photo}: done in {res['seconds']:.0f} s")
    photos = [json.loads((DESIGN_DIR / f"{p}.json").read_text()) for p in SAMPLE_IMAGES
              if (DESIGN_DIR / f"{p}.json").is_file()]
    photos = [p for p in photos if p["designs"] == list(args.mask_design)]
    summary, md = designs_summary(photos, research_ratios())
    (RESULTS / "rise_designs_confirm.json").write_text(json.dumps(
        {"summary": summary, "when": _dt.datetime.now().isoformat(timespec="seconds")},
        indent=1))
    (RESULTS / "rise_designs_confirm.md").write_text(md)
    plot_designs(photos, RESULTS / "rise_designs_confirm.png")
    print(md)
    print(f"total {time.perf_counter() - t0:.0f} s; wrote "
          f"{RESULTS / 'rise_designs_confirm'}.{{json,md,png}}")
    return 0


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="coffee, one short run, cached converged map if any (< 5 min)")
    parser.add_argument("--photos", nargs="+", default=None, choices=SAMPLE_IMAGES,
                        help="photos to (re)do; default: all not done yet (quick: coffee)")
    parser.add_argument("--runs", type=int, default=None, help="curve runs per photo")
    parser.add_argument("--curve-masks", type=int, default=None, help="masks per curve run")
    parser.add_argument("--max-half", type=int, default=49152,
                        help="most masks per half for a converged map")
    parser.add_argument("--budget", type=float, default=1080,
                        help="stop starting new photos after this many seconds")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--speeds-only", type=int, default=0, metavar="ROUNDS",
                        help="only measure seconds per mask (interleaved rounds) and rebuild "
                             "the summary with them")
    parser.add_argument("--mask-design", nargs="+", default=["iid"], choices=MASK_DESIGNS,
                        help="the curves' mask design (default iid, as results/rise_quality.*); "
                             "two designs (e.g. iid balanced): compare them side by side")
    args = parser.parse_args(argv)
    if len(args.mask_design) > 2 or len(set(args.mask_design)) != len(args.mask_design):
        parser.error("--mask-design takes one design, or two different ones to compare")
    if len(args.mask_design) == 2:
        args.runs = args.runs or 3
        args.curve_masks = args.curve_masks or 2048
        return main_designs(args)
    if args.runs is None:
        args.runs = 1 if args.quick else 2
    if args.curve_masks is None:
        args.curve_masks = 4096 if args.quick else 20480
    t0 = time.perf_counter()
    xai = None
    if not args.no_reference and reference_available():
        import logging

        xai = load_reference()
        logging.getLogger("openvino_xai").setLevel(logging.WARNING)
    photo_dir = PHOTO_DIR if not args.quick else RESULTS / "rise_quality_quick_photos"
    photo_dir.mkdir(parents=True, exist_ok=True)
    if args.photos is None:
        todo = ["coffee"] if args.quick else [
            p for p in SAMPLE_IMAGES if not (photo_dir / f"{p}.json").is_file()]
    else:
        todo = args.photos
    log(f"photos to do: {todo}")
    if args.speeds_only:
        todo = []
        speeds = measure_speeds(xai, args.quick, args.speeds_only)
        name = "rise_quality_speeds_quick.json" if args.quick else "rise_quality_speeds.json"
        (RESULTS / name).write_text(json.dumps(speeds, indent=1))
    else:
        speeds = measure_speeds(xai, args.quick) if todo else {}
    runner = Runner()
    last = None
    for i, photo in enumerate(todo):
        elapsed = time.perf_counter() - t0
        if i and elapsed + (last or 0) > args.budget:
            log(f"time budget: stopping after {elapsed:.0f} s (last photo took {last:.0f} s); "
                f"resume with --photos {' '.join(todo[i:])}")
            break
        try:
            sample_image(photo)
        except (ImportError, ModuleNotFoundError, OSError) as exc:
            log(f"{photo}: skipped ({exc})")
            continue
        res = do_photo(photo, args, runner, xai, speeds)
        (photo_dir / f"{photo}.json").write_text(json.dumps(res, default=float))
        last = res["seconds"]
        log(f"{photo}: done in {last:.0f} s")
    photos = [json.loads((photo_dir / f"{p}.json").read_text()) for p in SAMPLE_IMAGES
              if (photo_dir / f"{p}.json").is_file()]
    summary, md = summarise(photos, args.quick)
    stem = "rise_quality_quick" if args.quick else "rise_quality"
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"summary": summary, "load_end": loadavg(),
         "when": _dt.datetime.now().isoformat(timespec="seconds")}, indent=1, default=float))
    (RESULTS / f"{stem}.md").write_text(md)
    if photos:
        plot(photos, RESULTS / f"{stem}.png")
    print(md)
    print(f"total {time.perf_counter() - t0:.0f} s; wrote {RESULTS / stem}.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
