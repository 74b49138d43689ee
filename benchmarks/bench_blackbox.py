"""Black-box methods (RISE, D-RISE, AISE) against the inference bound and the reference toolkit.

Per model x device x precision, interleaved rounds of:

* ``bound``: plain OpenVINO at its best setting for that model, device and precision (a
  batch x requests sweep, :func:`_common.bound_sweep`), ``--bound-images`` images a round;
* ``salvo METHOD PRESET TARGETS ENGINE``: one ``Explainer`` call (raw maps: ``resize=False,
  colormap=False``) for every method x preset x targets x engine setting: ``rise`` on a
  classifier is RISE, on a detector D-RISE; ``aise`` is AISE; targets ``one`` (one class),
  ``many`` (the top-5 classes), ``all`` (every class, or every box of a detector; not for AISE
  on a classifier); engine ``auto`` (salvo's defaults) or ``BxR`` (batch x requests);
* ``reference METHOD PRESET TARGETS``: the reference toolkit's (openvino-xai 1.1) Explainer
  for the same call, built as a user builds it (the device default precision, LATENCY hint; at
  ``f32`` its compiled model is replaced by one compiled with the precision hint only). Its
  RISE is one synchronous inference per mask: it runs ``--reference-masks`` masks (an eighth
  for all classes) and is compared per inference; its AISE runs the whole preset. The
  reference has no RISE for detection.

Reported per row: inferences (salvo's ``num_inferences``; the reference's counted calls of its
``postprocess_fn``), seconds per call, ``x bound`` (seconds per inference over the bound's, in
the same round), and against the reference in the same round: ``ref/salvo per call`` and
``ref/salvo per inference``; all medians (range) over the rounds. The warm-up call (compile
excluded) is reported apart.

    python benchmarks/bench_blackbox.py [--quick] [--models lite0@224 lite0@128 ssdlite]
        [--methods rise aise] [--presets speed balance quality] [--targets one many all]
        [--engines auto 4x4] [--precisions default f32] [--rounds 3]

``--designs ROUNDS`` measures instead RISE's two mask designs (``mask_design="balanced"``, the
default, and ``"iid"``) in ROUNDS interleaved rounds, per classifier of ``--models`` x device x
precision x engine setting: the bound (as above, ``--design-masks`` images a round), RISE with
balanced masks and RISE with iid masks (one target, ``--design-masks`` masks, num_cells 8, raw
maps). Reported: seconds per inference, ``x bound`` and balanced / iid, paired within rounds;
and the mask generator alone (:func:`salvo.kernels.rise_masks`, one thread, each design, its own
interleaved rounds). Results: ``results/rise_designs_timing.{json,md}``. Detectors are left out
(D-RISE is not part of this comparison).

    python benchmarks/bench_blackbox.py --designs 5 [--models lite0@224] [--precisions default]
        [--design-masks 1000]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import salvo
from _common import (
    CallCounter,
    Report,
    Sample,
    bound_sweep,
    bound_variant,
    finish_args,
    interleaved,
    label,
    log,
    model_case,
    paired,
    parser,
    reference,
    reference_explainer,
    reference_preset,
    span,
    summary,
    table,
)
from salvo.kernels import rise_masks
from salvo.methods.black_box.rise import MASK_DESIGNS

DESIGN_CELLS = 8  # num_cells of the mask-design comparison


def engine_setting(text: str) -> str:
    if text != "auto":
        b, _, r = text.lower().partition("x")
        if not (b.isdigit() and r.isdigit()):
            raise ValueError(f"engine settings are auto or BATCHxREQUESTS, got {text!r}")
    return text


def salvo_variant(explainer: Any, x: Any, targets: Any, preset: str) -> Any:
    def run() -> Sample:
        t0 = time.perf_counter()
        e = explainer(x, targets=targets, preset=preset, resize=False, colormap=False)
        return Sample(time.perf_counter() - t0, int(e.num_inferences))
    return run


def reference_variant(ref: Any, counter: CallCounter, x: Any, targets: Any, preset: str,
                      num_masks: int | None) -> Any:
    kwargs: dict[str, Any] = {"preset": reference_preset(preset)}
    if num_masks is not None:
        kwargs["num_masks"] = num_masks

    def run() -> Sample:
        counter.calls = 0
        t0 = time.perf_counter()
        ref(x, targets=targets, resize=False, colormap=False, **kwargs)
        return Sample(time.perf_counter() - t0, counter.calls)
    return run


def applicable(method: str, task: salvo.Task, targets: str, case_targets: dict) -> bool:
    if targets not in case_targets:
        return False
    return not (method == "aise" and task == salvo.Task.CLASSIFICATION and targets == "all")


def method_name(method: str, task: salvo.Task) -> str:
    if method == "rise":
        return "D-RISE" if task == salvo.Task.DETECTION else "RISE"
    return "AISE"


def measure(case: Any, device: str, precision: str | None, args: Any, xai: Any) -> list[dict]:
    """The rows of one model x device x precision."""
    bound = bound_sweep(case.model(), case.x, device, precision, batches=args.batches,
                        requests=args.requests, seconds=0.4 if args.quick else 0.8)
    variants = {"bound": bound_variant(bound["queue"], args.bound_images)}
    facts: dict[str, dict[str, Any]] = {"bound": {"setting": "{batch}x{requests}".format(
        **bound["best"])}}
    pairs: dict[str, str] = {}  # salvo variant -> the reference variant it is compared with
    for method in args.methods:
        engines = {}
        for setting in args.engines:
            knobs = {} if setting == "auto" else dict(
                zip(("batch_size", "num_requests"), map(int, setting.lower().split("x"))))
            ex = salvo.Explainer(case.model(), case.task, postprocess_fn=case.postprocess,
                                 explain_mode=salvo.ExplainMode.BLACKBOX,
                                 explain_method=salvo.Method(method), device_name=device,
                                 inference_precision=precision, progress=False, **knobs)
            engines[setting] = ex
        ref = counter = None
        reference_ok = xai is not None and not (method == "rise"
                                                and case.task == salvo.Task.DETECTION)
        if reference_ok:
            counter = CallCounter()
            ref = reference_explainer(xai, case.model(), case.task, salvo.Method(method),
                                      counter.wrap(case.postprocess), precision, device)
        for preset in args.presets:
            for targets in args.targets:
                if not applicable(method, case.task, targets, case.targets):
                    continue
                t = case.targets[targets]
                for setting, ex in engines.items():
                    name = f"salvo {method_name(method, case.task)} {preset} {targets} {setting}"
                    variants[name] = salvo_variant(ex, case.x, t, preset)
                    engine = getattr(ex.method, "engine", None)
                    facts[name] = {"setting": setting if engine is None else
                                   f"{engine.batch_size}x{engine.num_requests}"}
                    if ref is not None:
                        pairs[name] = f"reference {method_name(method, case.task)} {preset} " \
                                      f"{targets}"
                if ref is not None:
                    masks = None
                    if method == "rise":
                        masks = args.reference_masks // (8 if targets == "all" else 1)
                    rname = f"reference {method_name(method, case.task)} {preset} {targets}"
                    variants[rname] = reference_variant(ref, counter, case.x, t, preset, masks)
                    facts[rname] = {"setting": "sync", "masks": masks}
    measured = interleaved(variants, args.rounds, label=f"{case.name} {label(precision)}")
    result = paired(measured, "bound")
    rows = []
    for name, r in result.items():
        row = {"model": case.name, "device": device, "precision": precision, "variant": name,
               **facts[name], "inferences": r["items"], "seconds": r["seconds"],
               "warmup_seconds": r["warmup_seconds"], "over_bound": r["over_baseline"],
               "loads": measured["loads"]}
        if name in pairs:
            for per in ("call", "item"):
                ratio = paired(measured, name, per=per)[pairs[name]]["over_baseline"]
                row[f"reference_over_salvo_per_{per}"] = ratio
        rows.append(row)
    rows[0]["sweep"] = bound["sweep"]
    return rows


# ================================================================================ mask designs

def scaled(s: dict[str, Any], factor: float) -> dict[str, Any]:
    """A :func:`_common.summary` with every value multiplied by ``factor`` (a unit change)."""
    return summary(v * factor for v in s["values"])


def design_variant(explainer: Any, x: Any, target: int, design: str, num_masks: int) -> Any:
    """One Explainer call of RISE with ``design`` masks (raw maps); items = inferences."""
    def run() -> Sample:
        t0 = time.perf_counter()
        e = explainer(x, targets=target, num_masks=num_masks, num_cells=DESIGN_CELLS,
                      mask_design=design, resize=False, colormap=False)
        seconds = time.perf_counter() - t0
        if e.num_inferences != num_masks + 1:
            raise RuntimeError(f"RISE {design}: {e.num_inferences} inferences, expected "
                               f"{num_masks + 1}")
        return Sample(seconds, int(e.num_inferences))
    return run


def generator_variant(design: str, num_masks: int, size: int) -> Any:
    """The mask generator alone: ``num_masks`` masks of ``design`` (one thread, a new seed per
    call, into one reused buffer); items = masks."""
    buf = np.empty((num_masks, size, size), np.float32)
    calls = iter(range(1 << 30))

    def run() -> Sample:
        seed = next(calls)
        t0 = time.perf_counter()
        rise_masks(seed, 0, num_masks, DESIGN_CELLS, 0.5, size, size, out=buf, design=design)
        return Sample(time.perf_counter() - t0, num_masks)
    return run


def measure_designs(case: Any, device: str, precision: str | None, args: Any) -> list[dict]:
    """The rows of one classifier x device x precision: the bound, then RISE with each design
    per engine setting (interleaved rounds, ratios paired within a round)."""
    bound = bound_sweep(case.model(), case.x, device, precision, batches=args.batches,
                        requests=args.requests, seconds=0.4 if args.quick else 0.8)
    n = args.design_masks
    target = case.targets["one"]
    variants = {"bound": bound_variant(bound["queue"], n)}
    facts: dict[str, dict[str, Any]] = {"bound": {"setting": "{batch}x{requests}".format(
        **bound["best"]), "design": None}}
    pairs: list[tuple[str, str]] = []  # (balanced, iid) variants of one engine setting
    for setting in args.engines:
        knobs = {} if setting == "auto" else dict(
            zip(("batch_size", "num_requests"), map(int, setting.lower().split("x"))))
        ex = salvo.Explainer(case.model(), case.task, postprocess_fn=case.postprocess,
                             explain_mode=salvo.ExplainMode.BLACKBOX,
                             explain_method=salvo.Method.RISE, device_name=device,
                             inference_precision=precision, progress=False, **knobs)
        engine = ex.method.engine
        for design in MASK_DESIGNS:
            used = ex.method.explain(case.x, target, num_masks=16, num_cells=DESIGN_CELLS,
                                     mask_design=design).extra["mask_design"]
            if used != design:  # the comparison would be of one design with itself
                raise SystemExit(f"RISE ran {used!r} masks when asked for {design!r}")
            name = f"RISE {design} {setting}"
            variants[name] = design_variant(ex, case.x, target, design, n)
            facts[name] = {"setting": f"{engine.batch_size}x{engine.num_requests}",
                           "design": design}
        pairs.append((f"RISE balanced {setting}", f"RISE iid {setting}"))
    measured = interleaved(variants, args.rounds,
                           label=f"{case.name} {label(precision)} designs")
    result = paired(measured, "bound")
    rows = []
    for name, r in result.items():
        rows.append({"model": case.name, "device": device, "precision": precision,
                     "variant": name, **facts[name], "inferences": r["items"],
                     "per_inference": r["per_item"], "over_bound": r["over_baseline"],
                     "warmup_seconds": r["warmup_seconds"], "loads": measured["loads"]})
    for balanced, iid in pairs:
        ratio = paired(measured, iid, per="item")[balanced]["over_baseline"]
        next(row for row in rows if row["variant"] == balanced)["balanced_over_iid"] = ratio
    rows[0]["sweep"] = bound["sweep"]
    return rows


def measure_generator(size: int, args: Any) -> dict[str, Any]:
    """Seconds per mask of :func:`rise_masks` for each design at ``size`` (interleaved rounds)
    and balanced / iid paired within rounds."""
    variants = {design: generator_variant(design, args.design_masks, size)
                for design in MASK_DESIGNS}
    measured = interleaved(variants, args.rounds, label=f"rise_masks {size}px")
    result = paired(measured, "iid")
    return {"size": size, "num_masks": args.design_masks,
            "per_mask": {d: result[d]["per_item"] for d in MASK_DESIGNS},
            "balanced_over_iid": result["balanced"]["over_baseline"],
            "loads": measured["loads"]}


def main_designs(args: Any) -> int:
    """``--designs ROUNDS``: RISE's mask designs against the bound, and the generator alone."""
    args.rounds = args.designs
    report = Report("rise_designs_timing", args)
    rows: list[dict[str, Any]] = []
    sizes: list[int] = []
    for model in args.models:
        case = model_case(model)
        if case.task != salvo.Task.CLASSIFICATION:
            log(f"{case.name}: not a classifier, left out of the mask-design comparison")
            continue
        for device in args.devices:
            for precision in args.precisions:
                log(f"{case.name} on {device}, {label(precision)}: mask designs")
                rows += measure_designs(case, device, precision, args)
        if case.size not in sizes:
            sizes.append(case.size)
    if not rows:
        raise SystemExit("--designs needs a classifier among --models (lite0@SIZE, "
                         "planted-cnn, planted-vit)")
    generator = [measure_generator(size, args) for size in sizes]

    def markdown(rep: Report) -> str:
        lines = [
            "# RISE time per inference: balanced vs iid mask designs", "",
            rep.header(), "",
            (f"Median (range) over {args.rounds} interleaved rounds. One target, "
             f"{args.design_masks} masks, num_cells {DESIGN_CELLS}, raw maps; one Explainer "
             "call per variant and round. `x bound` = seconds per inference over plain "
             "OpenVINO's at its best setting for the model and precision, in the same round. "
             "`balanced/iid` = the time per inference with balanced masks over that with iid "
             "masks, paired within a round. Setting = batch x requests. Warm-up = the first "
             "call, not in the medians."), "",
            table(rows, [("model", "model"), ("device", "device"),
                         ("precision", lambda r: label(r["precision"])),
                         ("variant", "variant"), ("setting", "setting"),
                         ("inferences", "inferences"),
                         ("ms per inference",
                          lambda r: span(scaled(r["per_inference"], 1e3), ".3f")),
                         ("x bound", lambda r: span(r["over_bound"])),
                         ("balanced/iid", lambda r: span(r.get("balanced_over_iid"), ".3f")),
                         ("warm-up s", lambda r: f"{r['warmup_seconds']:.2f}")]),
            "",
            (f"The mask generator alone (`salvo.kernels.rise_masks`, one thread, "
             f"{args.design_masks} masks a call, num_cells {DESIGN_CELLS}), microseconds per "
             "mask, median (range) over the rounds:"), "",
            table(generator, [
                ("size", lambda g: f"{g['size']}x{g['size']}"),
                *((f"{d} us/mask",
                   (lambda g, d=d: span(scaled(g["per_mask"][d], 1e6), ".1f")))
                  for d in MASK_DESIGNS),
                ("balanced/iid", lambda g: span(g["balanced_over_iid"], ".3f"))]),
        ]
        return "\n".join(lines)

    report.write({"rows": rows, "generator": generator, "rounds": args.rounds,
                  "num_masks": args.design_masks, "num_cells": DESIGN_CELLS}, markdown)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], rounds=3)
    p.add_argument("--models", nargs="+", default=["lite0@224", "lite0@128", "ssdlite"])
    p.add_argument("--methods", nargs="+", default=["rise", "aise"], choices=["rise", "aise"])
    p.add_argument("--presets", nargs="+", default=["speed"],
                   choices=["speed", "balance", "quality"])
    p.add_argument("--targets", nargs="+", default=["one", "many", "all"],
                   choices=["one", "many", "all"])
    p.add_argument("--engines", type=engine_setting, nargs="+", default=["auto"],
                   metavar="auto|BxR", help="salvo engine settings")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8],
                   help="batch sizes of the bound's sweep")
    p.add_argument("--requests", type=int, nargs="+", default=[2, 4],
                   help="infer requests of the bound's sweep")
    p.add_argument("--bound-images", type=int, default=1000, help="bound images per round")
    p.add_argument("--reference-masks", type=int, default=200,
                   help="masks of the reference's RISE per call (an eighth for all classes)")
    p.add_argument("--designs", type=int, default=0, metavar="ROUNDS",
                   help="instead: RISE with balanced vs iid masks against the bound, and the "
                        "mask generator alone, in ROUNDS interleaved rounds (instead of --rounds) "
                        "(results/rise_designs_timing.*)")
    p.add_argument("--design-masks", type=int, default=None,
                   help="masks per RISE call and per generator call with --designs "
                        "(default 1000; --quick 200)")
    args = finish_args(p.parse_args(argv))
    if args.designs < 0:
        p.error(f"--designs takes a number of rounds >= 1, got {args.designs}")
    if args.design_masks is None:
        args.design_masks = 200 if args.quick else 1000
    if args.design_masks < 1:
        p.error(f"--design-masks must be >= 1, got {args.design_masks}")
    if args.quick:
        args.models = [m for m in args.models if m != "lite0@128"]
        args.targets = [t for t in args.targets if t != "many"]
        args.precisions = args.precisions[:1]
        args.batches, args.requests = [1, 4], [4]
        args.bound_images, args.reference_masks = 400, 48
    if args.designs:
        return main_designs(args)
    xai = reference(args)
    report = Report("blackbox", args)
    rows: list[dict[str, Any]] = []
    for model in args.models:
        case = model_case(model)
        for device in args.devices:
            for precision in args.precisions:
                log(f"{case.name} on {device}, {label(precision)}")
                rows += measure(case, device, precision, args, xai)

    def markdown(rep: Report) -> str:
        return "\n".join([
            "# Black-box methods against the inference bound and the reference", "",
            rep.header(), "",
            (f"Median (range) over {args.rounds} interleaved rounds. Seconds = one call, raw "
            "maps. `x bound` = seconds per inference over plain OpenVINO's at its best "
            "setting for the model and precision, in the same round. `ref/salvo` = the "
            "reference's time over salvo's in the same round, per call and per inference (its "
            f"RISE runs {args.reference_masks} masks, an eighth for all classes, and is "
            "compared per inference). Setting = batch x requests. Warm-up = the first call, "
            "not in the medians."), "",
            table(rows, [("model", "model"), ("device", "device"),
                         ("precision", lambda r: label(r["precision"])),
                         ("variant", "variant"), ("setting", "setting"),
                         ("inferences", "inferences"),
                         ("seconds", lambda r: span(r["seconds"])),
                         ("x bound", lambda r: span(r["over_bound"])),
                         ("ref/salvo per call",
                          lambda r: span(r.get("reference_over_salvo_per_call"))),
                         ("ref/salvo per inference",
                          lambda r: span(r.get("reference_over_salvo_per_item"))),
                         ("warm-up s", lambda r: f"{r['warmup_seconds']:.2f}")]),
        ])

    report.write({"rows": rows, "rounds": args.rounds}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
