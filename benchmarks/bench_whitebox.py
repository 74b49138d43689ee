"""White-box cost: the latency of a model with an XAI branch against the plain model, and the
end-to-end time of an Explainer call.

Per model x device x precision, interleaved rounds of:

* ``plain``: ``--runs`` synchronous inferences of the model (LATENCY hint, one request): the
  baseline;
* one such variant per method of ``--methods`` (the model with the method's branch from
  :func:`salvo.insert_xai`), and for ReciproCAM the general masked-batch branch as well (the
  closed form switched off, ``recipro_cam.CLOSED_FORM = False``);
* ``explain one``: one ``Explainer`` call for one class (maps resized to the input and
  colour-mapped), per method; ``explain all``: the same for every class;
  ``explain all, raw``: every class, raw maps;
* ``reference explain one``: the reference toolkit's Explainer (openvino-xai 1.1, its defaults)
  for one class, when it is installed.

Latencies are medians of ``--runs`` inferences; ``x plain`` is the per-round ratio to the plain
model's latency, median (range).

    python benchmarks/bench_whitebox.py [--quick] [--models lite0@224]
        [--methods reciprocam activationmap] [--precisions default f32]
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import salvo
from _common import (
    Report,
    Sample,
    finish_args,
    grid,
    interleaved,
    label,
    log,
    model_case,
    paired,
    parser,
    reference,
    reference_explainer,
    span,
    table,
)
from salvo.inference import get_core
from salvo.methods.white_box import recipro_cam
from salvo.methods.white_box.graph import XAIInsertionError


def latency_variant(model: Any, x: Any, device: str, precision: str | None, runs: int) -> Any:
    """``runs`` synchronous inferences; the Sample's seconds are their median latency."""
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    request = get_core().compile_model(model, device, config).create_infer_request()

    def run() -> Sample:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            request.infer({0: x})
            times.append(time.perf_counter() - t0)
        return Sample(statistics.median(times))
    return run


def call_variant(explainer: Any, x: Any, targets: Any, **kwargs: Any) -> Any:
    def run() -> Sample:
        t0 = time.perf_counter()
        explainer(x, targets=targets, **kwargs)
        return Sample(time.perf_counter() - t0)
    return run


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], rounds=7, quick_rounds=3)
    p.add_argument("--models", nargs="+", default=["lite0@224"])
    p.add_argument("--methods", nargs="+", default=["reciprocam", "activationmap"],
                   choices=["reciprocam", "vitreciprocam", "activationmap"])
    p.add_argument("--runs", type=int, default=50, help="inferences per latency measurement")
    args = finish_args(p.parse_args(argv))
    if args.quick:
        args.runs = 20
    xai = reference(args)
    report = Report("whitebox", args)
    rows: list[dict[str, Any]] = []
    for point in grid(model=args.models, device=args.devices, precision=args.precisions):
        case = model_case(point["model"])
        device, precision = point["device"], point["precision"]
        log(f"{case.name} on {device}, {label(precision)}")
        model, x = case.model(), case.x
        variants = {"plain": latency_variant(model, x, device, precision, args.runs)}
        one, every = case.targets["one"], case.targets["all"]
        skipped = []
        for name in args.methods:
            method = salvo.Method(name)
            try:
                xai_model = salvo.insert_xai(model, case.task, explain_method=method)
            except XAIInsertionError as exc:  # the method does not apply to this model
                log(f"  {name} on {case.name}: not applicable ({str(exc).splitlines()[0]})")
                skipped.append({**point, "variant": name, "not_applicable": str(exc)})
                continue
            variants[name] = latency_variant(xai_model, x, device, precision, args.runs)
            if method == salvo.Method.RECIPROCAM:
                recipro_cam.CLOSED_FORM = False
                try:
                    general = salvo.insert_xai(model, case.task, explain_method=method)
                finally:
                    recipro_cam.CLOSED_FORM = True
                variants[f"{name} (masked batch)"] = latency_variant(general, x, device,
                                                                     precision, args.runs)
            explainer = salvo.Explainer(model, case.task, explain_method=method,
                                        device_name=device, inference_precision=precision)
            variants[f"{name}: explain one"] = call_variant(explainer, x, one)
            if method != salvo.Method.ACTIVATIONMAP:  # one class-agnostic map
                variants[f"{name}: explain all"] = call_variant(explainer, x, every)
                variants[f"{name}: explain all, raw"] = call_variant(
                    explainer, x, every, resize=False, colormap=False)
            if xai is not None:
                ref = reference_explainer(xai, case.model(), case.task, method,
                                          precision=precision, device=device)
                variants[f"{name}: reference explain one"] = call_variant(ref, x, one)
        measured = interleaved(variants, args.rounds, label=f"{case.name} {label(precision)}")
        vs_reference = {}
        for name in args.methods:
            if f"{name}: reference explain one" in variants:
                vs_reference[f"{name}: explain one"] = paired(
                    measured, f"{name}: explain one",
                    per="call")[f"{name}: reference explain one"]["over_baseline"]
        for name, r in paired(measured, "plain", per="call").items():
            latency = ":" not in name
            rows.append({**point, "variant": name, "ms": 1000 * r["seconds"]["median"],
                         "spread_ms": {k: 1000 * v if k != "n" else v
                                       for k, v in r["seconds"].items() if k != "values"},
                         "over_plain": r["over_baseline"] if latency else None,
                         "reference_over_salvo": vs_reference.get(name),
                         "first_call_ms": 1000 * r["warmup_seconds"]})
        del variants
        rows += skipped

    def markdown(rep: Report) -> str:
        return "\n".join([
            "# White-box cost", "", rep.header(), "",
            (f"Latency = median of {args.runs} synchronous inferences (LATENCY hint, one "
            f"request); explain = one Explainer call (maps resized and colour-mapped unless "
            f"`raw`); median (range) over {args.rounds} interleaved rounds. `x plain` = the "
            "per-round ratio to the plain model's latency; `ref/salvo` = the reference's call over "
            "salvo's in the same round. First call = the warm-up call (JIT "
            "and caches), not in the median."), "",
            table([r for r in rows if "not_applicable" not in r],
                  [("model", "model"), ("device", "device"),
                   ("precision", lambda r: label(r["precision"])),
                   ("variant", "variant"),
                   ("ms", lambda r: span(r["spread_ms"], ".2f")),
                   ("x plain", lambda r: span(r["over_plain"])),
                   ("ref/salvo", lambda r: span(r["reference_over_salvo"])),
                   ("first call ms", lambda r: f"{r['first_call_ms']:.1f}")]),
            *[f"\n{r['variant']} on {r['model']}: not applicable "
              f"({r['not_applicable'].splitlines()[0]})" for r in rows if "not_applicable" in r],
        ])

    report.write({"rows": rows, "rounds": args.rounds, "runs": args.runs}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
