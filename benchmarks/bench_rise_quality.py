"""RISE map quality per inference: salvo's centered estimator against plain RISE.

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
4. **Time to quality**: inferences needed x seconds per mask, measured in this invocation in
   ``--rounds`` interleaved rounds: salvo = one Explainer call (its default engine and
   estimator, one target, 2000 masks); the reference (openvino-xai 1.1.0, plain RISE) = 200
   masks; both in f32 (the reference's model recompiled with the precision hint) and at the
   device defaults. So the reference's time is *masks needed by plain RISE x the reference's
   seconds per mask*, and salvo's is *masks needed by the centered estimator x salvo's*.
5. On coffee: the reference's own map with 10 000 masks (f32, seed 0; cached as .npy) against
   the converged map, beside salvo's with 1000 masks (default estimator, seeds 0-4).

6. **Mask designs** (``--mask-design``). One design: the curves above use it (default ``iid``,
   the design ``results/rise_quality.*`` were produced with, and plain RISE's; another design
   writes ``results/rise_quality_<design>.*`` and ``rise_quality_<design>_photos/``). Two designs
   (``--mask-design iid balanced``): instead of the study above, each photo's curves with both
   designs side by side (the same seeds, interleaved; the centered estimator), the inferences
   to each quality per design and the ratio of the second over the first, beside the design
   study's ratio (``results/rise_designs.json``) when present; results
   ``results/rise_designs_confirm.{json,md,png}``, per photo
   ``results/rise_designs_confirm_photos/<photo>.json`` (default 3 runs x 2048 masks on coffee;
   ``--quick``: 1 run x 1024 masks). Converged maps are always built with iid masks.

7. **Reliability** (``--reliability``). Instead of the study above: for every photo, 5 runs
   (seeds 0-4, balanced masks, 4096 masks; ``--quick``: coffee, 1 x 1024) read every 128 masks
   the reliability salvo reports (``Explanation.reliability``, and its point estimate) beside
   the measured correlation with the converged map, logits and softmax; the share of budgets
   from 512 to 4096 masks where the reported value is within +-0.03 of the measured one, and
   above it by more than 0.03. Then, per seed and score type, a run with
   ``target_reliability`` (default 0.95, capped at ``--stop-cap`` 8192 masks): the masks it
   used and its measured correlation. Results ``results/rise_reliability.{json,md,png}``, per
   photo ``results/rise_reliability_photos/<photo>.json`` (resumable as below).

Resumable: each photo's curves go to ``benchmarks/results/rise_quality_photos/<photo>.json``
(``--quick``: under ``results/quick/``); every invocation does the photos not done yet (or those
of ``--photos``), measures the seconds per mask and rebuilds the summary (JSON, Markdown and a
PNG of the curves) from all photos done so far. With every photo done, a run only re-times and
rebuilds the summary.

    python benchmarks/bench_rise_quality.py [--quick] [--photos coffee chelsea ...] [--rounds 3]
    python benchmarks/bench_rise_quality.py --mask-design iid balanced [--photos coffee rocket]
        [--runs 3] [--curve-masks 2048]
    python benchmarks/bench_rise_quality.py --reliability [--photos coffee ...] [--runs 5]
        [--target-reliability 0.95]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import salvo
from _common import (
    RESULTS,
    Report,
    Sample,
    blas_one_thread,
    finish_args,
    interleaved,
    log,
    logits,
    model_case,
    paired,
    parser,
    pearson,
    reference,
    reference_explainer,
    span,
)
from salvo.files import atomic_write
from salvo.inference import get_core
from salvo.kernels import rise_masks
from salvo.methods.black_box.rise import MASK_DESIGNS, RISE, Accumulator, resolve_params
from salvo.zoo import SAMPLE_IMAGES, efficientnet_lite0_preprocess, sample_image

CONVERGED = RESULTS / "converged"
SIZE = 224
NUM_CELLS = 8
PROB = 0.5
QUALITIES = (0.9, 0.95)
SCORES = ("logits", "softmax")
CHECK_EVERY = 64
NUM_CLASSES = 1000


def lite0_at(size: int) -> Any:
    return model_case(f"lite0@{size}").model()


def logits_and_softmax(outputs: Any) -> np.ndarray:
    """``(B, 2000)``: the logits, then their softmax (so one run gives both maps)."""
    z = np.asarray(outputs[0], np.float32)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.concatenate([z, e / e.sum(axis=1, keepdims=True)], axis=1)


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
        self.rise = RISE(lite0_at(SIZE), logits_and_softmax, device_name="CPU",
                         precision="f32", progress=False, batch_size=batch_size,
                         num_requests=num_requests)

    def run(self, x: np.ndarray, c: int, seed: int, num_masks: int, on_check: Any = None,
            check_every: int | None = None, mask_design: str = "iid") -> dict:
        """Raw per-mask-normalised centered maps ``(2, P)`` and score means ``(2,)``, with
        ``mask_design`` masks (iid unless told: RISE's default is balanced)."""
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
            out = runner.run(x, c, seed, chunk, mask_design="iid")  # as the cached ones
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
    """Correlation with the converged map every CHECK_EVERY masks, both estimators, with
    ``mask_design`` masks."""
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
    return salvo.Explainer(lite0_at(SIZE), salvo.Task.CLASSIFICATION, postprocess_fn=logits,
                           explain_mode=salvo.ExplainMode.BLACKBOX,
                           explain_method=salvo.Method.RISE, inference_precision=precision,
                           progress=False)


def ref_rise(xai: Any, precision: str | None) -> Any:
    """The reference's RISE Explainer on Lite0 (its defaults; ``precision``: recompiled)."""
    return reference_explainer(xai, lite0_at(SIZE), salvo.Task.CLASSIFICATION,
                               salvo.Method.RISE, logits, precision)


def measure_speeds(xai: Any | None, quick: bool, rounds: int) -> dict:
    """Seconds per inference (one target, num_cells 8, coffee) of salvo and the reference, in
    f32 and at the device defaults, in interleaved rounds; the reference / salvo ratios are
    paired per round."""
    x = efficientnet_lite0_preprocess(sample_image("coffee"), size=SIZE)
    n_salvo = 500 if quick else 2000
    n_ref = 40 if quick else 200

    def call(fn: Any, n: int) -> Any:
        def run() -> Sample:
            t0 = time.perf_counter()
            e = fn(x, targets=0, num_masks=n, num_cells=NUM_CELLS, resize=False,
                   colormap=False)
            return Sample(time.perf_counter() - t0, getattr(e, "num_inferences", 0) or n)
        return run

    variants = {}
    for prec, key in (("f32", "f32"), (None, "default")):
        variants[f"salvo_{key}"] = call(salvo_explainer(prec), n_salvo)
        if xai is not None:
            variants[f"reference_{key}"] = call(ref_rise(xai, prec), n_ref)
    measured = interleaved(variants, rounds, label="seconds per mask")
    out: dict[str, Any] = {"salvo_masks": n_salvo, "rounds": rounds, "loads": measured["loads"],
                           "when": _dt.datetime.now().isoformat(timespec="seconds")}
    if xai is not None:
        out["reference_masks"] = n_ref
    for key, r in paired(measured).items():
        out[key] = r["per_item"]["median"]
        out[f"{key}_spread"] = r["per_item"]
    for key in ("f32", "default"):
        if f"reference_{key}" in variants:
            out[f"paired_ratio_{key}"] = paired(measured, f"salvo_{key}")[
                f"reference_{key}"]["over_baseline"]
    return out


# ----------------------------------------------------------------------------- reference map
def reference_map_10k(xai: Any | None, x: np.ndarray, c: int, truth: np.ndarray,
                      runner_f32: RISE, quick: bool) -> dict | None:
    """Coffee: the reference's plain map with 10 000 masks vs salvo's with 1000."""
    path = CONVERGED / f"reference_coffee_{c}_{SIZE}_c{NUM_CELLS}_n10000_seed0_f32.npy"
    if path.is_file():
        ref_map = np.load(path)
    elif xai is not None and not quick:
        ref = ref_rise(xai, "f32")
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
                                scale_output=False)
        with blas_one_thread():
            salvo_r.append(pearson(runner_f32.run(x, [c], params).maps[0], truth))
    return {"reference_10000": pearson(ref_map, truth), "salvo_1000_by_seed": salvo_r,
            "salvo_1000_median": float(np.median(salvo_r)), "salvo_1000_min": min(salvo_r)}


# ----------------------------------------------------------------------------- per photo
def do_photo(photo: str, args: argparse.Namespace, runner: Runner, xai: Any | None) -> dict:
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
        "mask_design": args.mask_design[0], "runs": [],
    }
    for k in range(args.runs):
        log(f"  {photo}: curve run seed {k}, {args.curve_masks} masks")
        res["runs"].append(curves(runner, x, c, truth, plain_truth, seed=k,
                                  num_masks=args.curve_masks,
                                  mask_design=args.mask_design[0]))
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
                                                   args.quick)
    res["seconds"] = time.perf_counter() - t_photo
    return res


_RUNNER_F32: RISE | None = None


def runner_f32() -> RISE:
    """Plain one-target RISE (salvo's defaults except the tuned engine), f32."""
    global _RUNNER_F32
    if _RUNNER_F32 is None:
        _RUNNER_F32 = RISE(lite0_at(SIZE), logits, precision="f32", progress=False,
                           batch_size=1, num_requests=4)
    return _RUNNER_F32


# ----------------------------------------------------------------------------- summary
def summarise(photos: list[dict], sp: dict) -> dict:
    """Masks and time to each quality per photo (``sp``: :func:`measure_speeds`), and their
    medians and worst cases over the photos."""
    rows = []
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
    designs = sorted({r.get("mask_design", "iid") for r in photos})
    summary = {"rows": rows, "aggregate": agg, "seconds_per_mask": sp, "mask_designs": designs,
               "coffee_reference_10000": coffee.get("reference_10000") if coffee else None,
               "photos": [r["photo"] for r in photos]}
    return summary


def _n(v: float, measured: bool = True) -> str:
    if not np.isfinite(v):
        return "unreachable"
    return f"{'' if measured else '~'}{v:,.0f}"


def markdown(summary: dict, header: str) -> str:
    lines: list[str] = []
    a = lines.append
    sp = summary["seconds_per_mask"]
    a("# RISE map quality per inference")
    a("")
    a(header)
    a("")
    a(f"EfficientNet-Lite0 at {SIZE}x{SIZE}, f32, top-1 class of each photo, num_cells "
      f"{NUM_CELLS}, prob {PROB}, {' and '.join(summary.get('mask_designs') or ['iid'])} "
      "masks. Quality = Pearson correlation with a converged map (two "
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
      "`defaults` = both at the device default precision, masks needed as measured "
      f"in f32. Seconds per inference, median of {sp['rounds']} interleaved rounds: salvo f32 "
      f"{sp['salvo_f32'] * 1e3:.2f} ms, salvo default {sp['salvo_default'] * 1e3:.2f} ms"
      + (f", reference f32 {sp['reference_f32'] * 1e3:.2f} ms, reference default "
         f"{sp['reference_default'] * 1e3:.2f} ms; reference / salvo per inference, paired "
         f"per round: f32 {span(sp['paired_ratio_f32'])}, defaults "
         f"{span(sp['paired_ratio_default'])}" if "reference_f32" in sp else "")
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
                        f"{agg[f'{key}/ratio_median']:.1f}x, "
                        f"worst {agg[f'{key}/ratio_worst']:.1f}x")
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
        _curve_axis(ax, r, ymin=0)
    _finish_grid(fig, axes, n)
    fig.suptitle("RISE map quality vs inferences: EfficientNet-Lite0 224, num_cells 8 "
                 "(solid: logits, dotted: softmax)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _curve_axis(ax: Any, r: dict, ymin: float) -> None:
    """One photo's panel: the quality lines, log inferences, labels."""
    for q in QUALITIES:
        ax.axhline(q, color="grey", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_ylim(ymin, 1)
    ax.set_title(f"{r['photo']}: {r['label']}", fontsize=9)
    ax.set_xlabel("inferences", fontsize=8)
    ax.set_ylabel("Pearson r vs converged", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _finish_grid(fig: Any, axes: Any, n: int) -> None:
    """Blank the unused panels and put the legend on the first."""
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6, loc="lower right")


# ----------------------------------------------------------------------------- mask designs
def do_photo_designs(photo: str, args: argparse.Namespace, runner: Runner) -> dict:
    """Curves of each design of ``args.mask_design`` (the same seeds, interleaved so a change
    of load hits both), centered estimator, against the converged map (built with iid masks);
    the inferences (masks + 1) to each quality per design and run."""
    t_photo = time.perf_counter()
    x = efficientnet_lite0_preprocess(sample_image(photo), size=SIZE)
    c, p = top1(x)
    log(f"{photo}: top-1 class {c} ({label_of(c)}, p={p:.3f}); designs {args.mask_design}")
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
    ceiling = {s: spearman_brown(conv["meta"]["half_correlation"][s]) for s in SCORES}
    res: dict[str, Any] = {"photo": photo, "class": c, "label": label_of(c), "probability": p,
                           "designs": list(args.mask_design), "quick": args.quick,
                           "when": _dt.datetime.now().isoformat(timespec="seconds"),
                           "runs": {d: [] for d in args.mask_design}, "needed": {}}
    for k in range(args.runs):
        for design in args.mask_design:
            log(f"  {photo}: seed {k}, {design} masks, {args.curve_masks} masks")
            res["runs"][design].append(curves(runner, x, c, truth, plain_truth, seed=k,
                                              num_masks=args.curve_masks, mask_design=design))
    for design in args.mask_design:
        for s in SCORES:
            for q in QUALITIES:
                per_run = [needed(r["count"], r[f"{s}/centered"], q, ceiling[s])
                           for r in res["runs"][design]]
                inferences = [v + 1 for v, _ in per_run]
                res["needed"][f"{design}/{s}/{q}"] = {
                    "inferences": inferences, "measured": [m for _, m in per_run],
                    "median": float(np.median(inferences))}
    res["seconds"] = time.perf_counter() - t_photo
    return res


def research_ratios() -> dict | None:
    """The design study's ratios balanced / iid per quality and photo
    (``results/rise_designs.json``, key ``ratio_had4_bs_over_iid``), if present."""
    path = RESULTS / "rise_designs.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("ratio_had4_bs_over_iid")


def designs_summary(photos: list[dict], research: dict | None) -> dict:
    """Per score type and quality: each photo's inferences per design and the ratio second /
    first design, with their median and worst (largest) over the photos."""
    base, new = photos[0]["designs"]
    tables: dict[str, Any] = {}
    for s in SCORES:
        for q in QUALITIES:
            rows = []
            for r in photos:
                a = r["needed"][f"{base}/{s}/{q}"]
                b = r["needed"][f"{new}/{s}/{q}"]
                row = {"photo": r["photo"], "runs": len(r["runs"][base]),
                       "masks": r["runs"][base][0]["count"][-1], base: a, new: b,
                       "ratio": b["median"] / a["median"]}
                if research is not None:
                    row["research_ratio"] = research.get(f"{s}/{q}", {}).get(r["photo"])
                rows.append(row)
            ratios = [row["ratio"] for row in rows]
            tables[f"{s}/{q}"] = {"rows": rows, "median_ratio": float(np.median(ratios)),
                                  "worst_ratio": float(np.max(ratios))}
    return {"designs": [base, new], "photos": [r["photo"] for r in photos], "tables": tables,
            "research": research is not None}


def designs_markdown(summary: dict, header: str) -> str:
    base, new = summary["designs"]
    lines = ["# RISE mask designs side by side", "", header, "",
             f"EfficientNet-Lite0 at {SIZE}x{SIZE}, f32, top-1 class, num_cells {NUM_CELLS}, "
             f"prob {PROB}, centered estimator, the same seeds for both designs, against the "
             "converged maps (benchmarks/results/converged/, built with iid masks). Inferences "
             "= masks + 1 to reach correlation q with the converged map and stay there (`~` = "
             "extrapolated from 1/r^2 = a + b/n); median over seeds [min-max]."
             + (" `study` = the design study's ratio (results/rise_designs.json)."
                if summary["research"] else ""), ""]

    def cell(d: dict) -> str:
        mark = "" if all(d["measured"]) else "~"
        v = d["inferences"]
        return f"{mark}{d['median']:,.0f} [{min(v):,.0f}-{max(v):,.0f}]"

    for s in SCORES:
        for q in QUALITIES:
            t = summary["tables"][f"{s}/{q}"]
            research = summary["research"]
            lines += [f"## {s}, q = {q}", "",
                      f"| photo | seeds x masks | {base} | {new} | {new}/{base} |"
                      + (" study |" if research else ""),
                      "|---|---:|---:|---:|---:|" + ("---:|" if research else "")]
            for row in t["rows"]:
                text = (f"| {row['photo']} | {row['runs']} x {row['masks']} | "
                        f"{cell(row[base])} | {cell(row[new])} | {row['ratio']:.2f} |")
                if research:
                    rr = row.get("research_ratio")
                    text += " |" if rr is None else f" {rr:.2f} |"
                lines.append(text)
            lines += ["", (f"{new}/{base}: median {t['median_ratio']:.2f}, worst "
                           f"{t['worst_ratio']:.2f} over {len(t['rows'])} photos."), ""]
    return "\n".join(lines)


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
                            color=colors.get(design, "k"), lw=1.1,
                            alpha=0.9 if k == 0 else 0.4,
                            label=f"{design}, {s}" if k == 0 else None)
        _curve_axis(ax, r, ymin=0.5)
    _finish_grid(fig, axes, n)
    fig.suptitle("RISE mask designs, centered estimator, EfficientNet-Lite0 224, num_cells 8 "
                 "(solid: logits, dotted: softmax)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main_designs(args: argparse.Namespace) -> int:
    """``--mask-design A B``: each photo's curves with both designs; the summary over every
    photo done with these two designs."""
    t0 = time.perf_counter()
    report = Report("rise_designs_confirm", args)
    photo_dir = report.path.parent / "rise_designs_confirm_photos"
    photos = run_photos(args.photos or ["coffee"], photo_dir, do_photo_designs, args, t0,
                        f"--mask-design {' '.join(args.mask_design)} ")
    photos = [r for r in photos if r["designs"] == list(args.mask_design)]
    summary = designs_summary(photos, research_ratios())
    plot_designs(photos, report.path.with_suffix(".png"))
    report.write({"summary": summary}, lambda rep: designs_markdown(summary, rep.header()))
    return 0


# ----------------------------------------------------------------------------- reliability
#: ``--reliability``: the budgets judged (every RELIABILITY_EVERY masks from the first to the
#: last) and the honesty criteria (reported within +-TOLERANCE of the measured correlation in at
#: least WITHIN_GOAL of the cases, above it by more than TOLERANCE in at most ABOVE_GOAL).
RELIABILITY_EVERY = 128
RELIABILITY_BUDGETS = (512, 4096)
TOLERANCE = 0.03
WITHIN_GOAL = 0.90
ABOVE_GOAL = 0.05
#: ``--reliability``: a target_reliability run passes at this measured correlation, and the mean
#: inferences over the photos should be at most this fraction of the fixed budget the worst
#: photo needs (about 1 900 masks for correlation 0.95, ``results/rise_quality.md``).
STOP_FLOOR = 0.94
STOP_MEAN_GOAL = 0.6 * 1900


def do_photo_reliability(photo: str, args: argparse.Namespace, runner: Runner) -> dict:
    """Every ``RELIABILITY_EVERY`` masks of ``args.runs`` balanced-mask runs (seeds 0, 1, ...):
    the reliability salvo reports (``Accumulator.reliability``: the bound and the point
    estimate) beside the measured correlation with the converged map, for logits and softmax
    (one run, both targets: the state at ``n`` masks is that of a run with ``num_masks=n``).
    Then, per seed and score, a one-target run with ``target_reliability``: the masks it used,
    the value it reported and its measured correlation."""
    t_photo = time.perf_counter()
    x = efficientnet_lite0_preprocess(sample_image(photo), size=SIZE)
    c, p = top1(x)
    log(f"{photo}: top-1 class {c} ({label_of(c)}, p={p:.3f}); reliability")
    conv = converged_map(runner, photo, x, c, chunk=8192, min_half=8192, max_half=args.max_half,
                         target=0.99, save=True)
    truth = conv["maps"]
    res: dict[str, Any] = {
        "photo": photo, "class": c, "label": label_of(c), "probability": p,
        "half_correlation": conv["meta"]["half_correlation"], "n_half": conv["meta"]["n_half"],
        "target_reliability": args.target_reliability, "curve_masks": args.curve_masks,
        "when": _dt.datetime.now().isoformat(timespec="seconds"), "runs": [], "stops": [],
    }
    for seed in range(args.runs):
        rec: dict[str, Any] = {"seed": seed, "count": []}
        for s in SCORES:
            rec[f"{s}/reported"], rec[f"{s}/estimate"], rec[f"{s}/true"] = [], [], []

        def on_check(count: int, acc: Accumulator, rec: dict = rec) -> None:
            bound, estimate = acc.reliability()
            maps = acc.maps("centered")
            rec["count"].append(count)
            for i, s in enumerate(SCORES):
                rec[f"{s}/reported"].append(float(bound[i]))
                rec[f"{s}/estimate"].append(float(estimate[i]))
                rec[f"{s}/true"].append(pearson(maps[i], truth[s]))

        log(f"  {photo}: seed {seed}, {args.curve_masks} masks")
        runner.run(x, c, seed, args.curve_masks, on_check=on_check,
                   check_every=RELIABILITY_EVERY, mask_design="balanced")
        res["runs"].append(rec)
        for i, s in enumerate(SCORES):
            params = resolve_params(num_masks=args.stop_cap, num_cells=NUM_CELLS, prob=PROB,
                                    seed=seed, scale_output=False,
                                    target_reliability=args.target_reliability)
            with blas_one_thread():
                out = runner.rise.run(x, [i * NUM_CLASSES + c], params)
            res["stops"].append({"seed": seed, "score": s, "masks": int(out.num_masks_used),
                                 "reported": float(out.reliability[0]),
                                 "true": pearson(out.maps[0], truth[s])})
            log(f"  {photo}: seed {seed}, {s}: target_reliability {args.target_reliability} "
                f"stopped at {out.num_masks_used} masks, reported "
                f"{res['stops'][-1]['reported']:.3f}, measured {res['stops'][-1]['true']:.3f}")
    res["seconds"] = time.perf_counter() - t_photo
    return res


def _honesty(diff: np.ndarray, true: np.ndarray) -> dict:
    return {"cases": int(diff.size), "true_median": float(np.median(true)),
            "true_min": float(true.min()), "median_error": float(np.median(diff)),
            "within": float(np.mean(np.abs(diff) <= TOLERANCE)),
            "above": float(np.mean(diff > TOLERANCE)), "largest_excess": float(diff.max()),
            "nan": 0}


def reliability_summary(photos: list[dict]) -> dict:
    """Honesty per budget band and score type (reported value and point estimate against the
    measured correlation), and the target_reliability runs per photo."""
    lo, hi = RELIABILITY_BUDGETS
    bands = [(lo, 1024), (1025, 2048), (2049, hi), (lo, hi)]
    # and, both score types together, single budgets (the smallest ones are the hardest)
    single = [(n, n) for n in (*range(lo, 1025, RELIABILITY_EVERY), 2048, hi)]
    honesty = []
    for s in (*SCORES, "both"):
        for a, b in bands + (single if s == "both" else []):
            for value in ("reported", "estimate"):
                diff, true, nans = [], [], 0
                for r in photos:
                    for run in r["runs"]:
                        for k, n in enumerate(run["count"]):
                            if not a <= n <= b:
                                continue
                            for t in (SCORES if s == "both" else (s,)):
                                v = run[f"{t}/{value}"][k]
                                if not np.isfinite(v):
                                    nans += 1
                                    continue
                                diff.append(v - run[f"{t}/true"][k])
                                true.append(run[f"{t}/true"][k])
                if diff:
                    row = _honesty(np.asarray(diff), np.asarray(true))
                    row.update(score=s, masks=[a, b], value=value, nan=nans)
                    honesty.append(row)
    per_photo, stops = [], [st for r in photos for st in r["stops"]]
    for r in photos:
        row = {"photo": r["photo"], "label": r["label"]}
        for s in SCORES:
            mine = [st for st in r["stops"] if st["score"] == s]
            row[s] = {"masks_mean": float(np.mean([st["masks"] for st in mine])),
                      "masks": [st["masks"] for st in mine],
                      "true_min": float(min(st["true"] for st in mine)),
                      "reported_min": float(min(st["reported"] for st in mine))}
        per_photo.append(row)
    overall = {}
    for s in SCORES:
        mine = [st for st in stops if st["score"] == s]
        if mine:
            # mean over the photos of each photo's mean inferences (masks + the unmasked image)
            mean = float(np.mean([row[s]["masks_mean"] + 1 for row in per_photo]))
            overall[s] = {"runs": len(mine), "inferences_mean": mean,
                          "masks_min": min(st["masks"] for st in mine),
                          "masks_max": max(st["masks"] for st in mine),
                          "true_min": float(min(st["true"] for st in mine)),
                          "floor_met": bool(min(st["true"] for st in mine) >= STOP_FLOOR),
                          "mean_met": bool(mean <= STOP_MEAN_GOAL)}
    both = next((h for h in honesty if h["score"] == "both" and h["masks"] == [lo, hi]
                 and h["value"] == "reported"), None)
    goals = {"within": bool(both and both["within"] >= WITHIN_GOAL),
             "above": bool(both and both["above"] <= ABOVE_GOAL),
             "stop_floor": all(v["floor_met"] for v in overall.values()) if overall else False,
             "stop_mean": all(v["mean_met"] for v in overall.values()) if overall else False}
    return {"photos": [r["photo"] for r in photos],
            "measured": {"seconds": float(sum(r["seconds"] for r in photos)),
                         "first": min((r["when"] for r in photos), default=None),
                         "last": max((r["when"] for r in photos), default=None)},
            "runs_per_photo": sorted({len(r["runs"]) for r in photos}),
            "target_reliability": sorted({r["target_reliability"] for r in photos}),
            "honesty": honesty, "stops_per_photo": per_photo, "stops": overall, "goals": goals}


def reliability_markdown(summary: dict, header: str) -> str:
    lo, hi = RELIABILITY_BUDGETS
    target = ", ".join(str(t) for t in summary["target_reliability"])
    out = [
        "# RISE reliability: the value each map reports against its measured quality", "",
        header, "",
        (f"The photos were measured from {summary['measured']['first']} to "
         f"{summary['measured']['last']} ({summary['measured']['seconds']:.0f} s of runs in all; "
         "a run with every photo done only rebuilds this summary)."), "",
        (f"Photos: {', '.join(summary['photos'])} "
         f"({'/'.join(map(str, summary['runs_per_photo']))} seeds each); EfficientNet-Lite0 "
         f"224, f32, num_cells {NUM_CELLS}, balanced masks, the photo's top-1 class, logits and "
         "softmax. *Measured*: Pearson correlation with the converged map "
         "(`results/converged/`); *reported*: `Explanation.reliability` (the conservative "
         f"value), *estimate*: its point estimate, read every {RELIABILITY_EVERY} masks from "
         f"{lo} to {hi} (the state of a run with that `num_masks`)."), "",
        (f"Goals: reported within ±{TOLERANCE} of the measured value in ≥ {WITHIN_GOAL:.0%} of "
         f"the cases, above it by more than {TOLERANCE} in ≤ {ABOVE_GOAL:.0%}."), "",
        ("| score | masks | value | cases | measured (median, min) | reported − measured "
         f"(median) | within ±{TOLERANCE} | above by > {TOLERANCE} | largest excess |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for h in summary["honesty"]:
        a, b = h["masks"]
        out.append(
            f"| {h['score']} | {a if a == b else f'{a}–{b}'} | {h['value']} | {h['cases']} | {h['true_median']:.3f}, "
            f"{h['true_min']:.3f} | {h['median_error']:+.3f} | {h['within']:.1%} | "
            f"{h['above']:.1%} | {h['largest_excess']:+.3f} |")
    out += ["", f"## `target_reliability={target}`", "",
            (f"Goals: every run's measured correlation ≥ {STOP_FLOOR}; the mean inferences "
             f"over the photos ≤ {STOP_MEAN_GOAL:.0f} (0.6 × the ~1 900 masks the worst photo "
             "needs at a fixed budget)."), "",
            ("| photo | logits: masks (mean) | logits: measured min | softmax: masks (mean) | "
             "softmax: measured min |"), "|---|---|---|---|---|"]
    for row in summary["stops_per_photo"]:
        out.append(f"| {row['photo']} ({row['label']}) | "
                   + " | ".join(f"{row[s]['masks_mean']:.0f} ({min(row[s]['masks'])}–"
                                f"{max(row[s]['masks'])}) | {row[s]['true_min']:.3f}"
                                for s in SCORES) + " |")
    for s, v in summary["stops"].items():
        out.append("")
        out.append(f"- {s}: {v['runs']} runs, {v['masks_min']}–{v['masks_max']} masks, mean "
                   f"inferences over the photos {v['inferences_mean']:.0f}; lowest measured "
                   f"correlation {v['true_min']:.3f}.")
    g = summary["goals"]
    out += ["", "Goals met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in g.items())
            + "."]
    return "\n".join(out)


def plot_reliability(photos: list[dict], path: Path) -> None:
    """Reported minus measured against masks, per score type (every photo and seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, s in zip(axes, SCORES):
        for value, color in (("estimate", "tab:grey"), ("reported", "tab:blue")):
            xs, ys = [], []
            for r in photos:
                for run in r["runs"]:
                    xs += run["count"]
                    ys += list(np.asarray(run[f"{s}/{value}"]) - np.asarray(run[f"{s}/true"]))
            ax.scatter(xs, ys, s=3, alpha=0.35, color=color, label=value)
        for y in (-TOLERANCE, TOLERANCE):
            ax.axhline(y, color="tab:red", lw=0.8, ls="--")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xscale("log")
        ax.set_title(f"{s}: value − measured correlation", fontsize=9)
        ax.set_xlabel("masks", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main_reliability(args: argparse.Namespace) -> int:
    """``--reliability``: the honesty of the reported reliability and what
    ``target_reliability`` pays, over every photo done (resumable per photo)."""
    t0 = time.perf_counter()
    report = Report("rise_reliability", args)
    photo_dir = report.path.parent / "rise_reliability_photos"
    photos = run_photos(photos_to_do(args, photo_dir), photo_dir, do_photo_reliability, args,
                        t0, "--reliability ")
    summary = reliability_summary(photos)
    if photos:
        plot_reliability(photos, report.path.with_suffix(".png"))
    report.write({"summary": summary}, lambda rep: reliability_markdown(summary, rep.header()))
    return 0


# ----------------------------------------------------------------------------- photo loop
def photos_to_do(args: argparse.Namespace, photo_dir: Path) -> list[str]:
    """``--photos``, else every photo (``--quick``: coffee) without a result in ``photo_dir``."""
    if args.photos is not None:
        return list(args.photos)
    return [p for p in (["coffee"] if args.quick else SAMPLE_IMAGES)
            if not (photo_dir / f"{p}.json").is_file()]


def run_photos(todo: list[str], photo_dir: Path, do: Any, args: argparse.Namespace,
               t0: float, resume: str) -> list[dict]:
    """``do(photo, args, runner)`` for each photo of ``todo`` (one :class:`Runner`), each result
    written atomically to ``photo_dir/<photo>.json``, no new photo started once ``args.budget``
    seconds (from ``t0``) would be passed (the log says how to resume: ``resume`` + the
    options); a photo whose package is missing is skipped. Returns every result in
    ``photo_dir``, in :data:`SAMPLE_IMAGES` order."""
    photo_dir.mkdir(parents=True, exist_ok=True)
    log(f"photos to do: {todo}")
    runner = Runner()
    last = None
    for i, photo in enumerate(todo):
        elapsed = time.perf_counter() - t0
        if i and elapsed + (last or 0) > args.budget:
            log(f"time budget: stopping after {elapsed:.0f} s (last photo took {last or 0:.0f} s); "
                f"resume with {resume}--photos {' '.join(todo[i:])}")
            break
        try:
            sample_image(photo)
        except (ImportError, ModuleNotFoundError, OSError) as exc:
            log(f"{photo}: skipped ({exc})")
            continue
        res = do(photo, args, runner)
        atomic_write(photo_dir / f"{photo}.json", json.dumps(res, default=float).encode())
        last = res["seconds"]
        log(f"{photo}: done in {last:.0f} s")
    del runner
    return [json.loads((photo_dir / f"{p}.json").read_text()) for p in SAMPLE_IMAGES
            if (photo_dir / f"{p}.json").is_file()]


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], rounds=3, quick_rounds=1, devices=False)
    p.add_argument("--photos", nargs="+", default=None, choices=SAMPLE_IMAGES,
                   help="photos to (re)do; default: all not done yet (--quick: coffee)")
    p.add_argument("--runs", type=int, default=None,
                   help="curve runs per photo (default 2; --quick 1; two designs: 3, --quick 1)")
    p.add_argument("--curve-masks", type=int, default=None,
                   help="masks per curve run (default 20480; --quick 4096; two designs: 2048, "
                        "--quick 1024)")
    p.add_argument("--max-half", type=int, default=49152,
                   help="most masks per half for a converged map")
    p.add_argument("--budget", type=float, default=1080,
                   help="stop starting new photos after this many seconds")
    p.add_argument("--mask-design", nargs="+", default=["iid"], choices=MASK_DESIGNS,
                   help="the curves' mask design (default iid, as results/rise_quality.*); two "
                        "designs (e.g. iid balanced): compare them side by side instead "
                        "(results/rise_designs_confirm.*)")
    p.add_argument("--reliability", action="store_true",
                   help="instead: the reliability each map reports against its measured "
                        "correlation, and target_reliability runs (results/rise_reliability.*;"
                        " default 5 seeds x 4096 masks per photo, --quick 1 x 1024)")
    p.add_argument("--target-reliability", type=float, default=0.95,
                   help="with --reliability: the target_reliability of the stopping runs")
    p.add_argument("--stop-cap", type=int, default=8192,
                   help="with --reliability: num_masks of the stopping runs (their cap)")
    p.epilog = "--rounds: interleaved rounds of the seconds-per-mask measurement."
    args = finish_args(p.parse_args(argv))
    if len(args.mask_design) > 2 or len(set(args.mask_design)) != len(args.mask_design):
        p.error("--mask-design takes one design, or two different ones to compare, got "
                f"{' '.join(args.mask_design)}")
    for name in ("runs", "curve_masks"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.reliability:
        if not 0 < args.target_reliability < 1:
            p.error(f"--target-reliability must be in (0, 1), got {args.target_reliability}")
        if args.runs is None:
            args.runs = 1 if args.quick else 5
        if args.curve_masks is None:
            args.curve_masks = 1024 if args.quick else 4096
        if args.curve_masks % RELIABILITY_EVERY:
            p.error(f"--curve-masks must be a multiple of {RELIABILITY_EVERY} with "
                    f"--reliability, got {args.curve_masks}")
        return main_reliability(args)
    if len(args.mask_design) == 2:
        if args.runs is None:
            args.runs = 1 if args.quick else 3
        if args.curve_masks is None:
            args.curve_masks = 1024 if args.quick else 2048
        return main_designs(args)
    if args.runs is None:
        args.runs = 1 if args.quick else 2
    if args.curve_masks is None:
        args.curve_masks = 4096 if args.quick else 20480
    t0 = time.perf_counter()
    xai = reference(args)
    design = args.mask_design[0]
    name = "rise_quality" if design == "iid" else f"rise_quality_{design}"
    report = Report(name, args)  # one folder of photos per design: never mixed or overwritten
    photo_dir = report.path.parent / f"{name}_photos"

    def do(photo: str, args: argparse.Namespace, runner: Runner) -> dict:
        return do_photo(photo, args, runner, xai)

    photos = run_photos(photos_to_do(args, photo_dir), photo_dir, do, args, t0, "")
    speeds = measure_speeds(xai, args.quick, args.rounds)
    summary = summarise(photos, speeds)
    if photos:
        plot(photos, report.path.with_suffix(".png"))
    report.write({"summary": summary}, lambda rep: markdown(summary, rep.header()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
