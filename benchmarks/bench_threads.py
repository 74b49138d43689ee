"""One Explainer shared by several threads against the same calls made one after the other.

A web service or a thread pool calls one Explainer from several threads. Per method and
precision, each round makes the same calls (4 of RISE or AISE, 64 of a white-box method; the
raw photos in turn, each run through the model's preprocessing, one target) on one thread and
spread over each number of ``--threads``, in a shuffled order; ``x sequential`` is the
throughput (calls per second) over the sequential throughput of the same round, median (range).

``--engines`` compares, instead, white-box engine settings of a ReciproCAM model: the
single-caller latency and the 4-thread throughput of a LATENCY engine with one infer request
(salvo 0.1's), a LATENCY engine with several requests, and a THROUGHPUT engine, and checks that
their outputs are identical.

    python benchmarks/bench_threads.py [--quick] [--methods rise reciprocam aise]
        [--threads 2 4] [--precisions f32]
    python benchmarks/bench_threads.py --engines [--rounds 5]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import salvo
from _common import (
    ESPRESSO,
    Report,
    Sample,
    finish_args,
    interleaved,
    inverted,
    label,
    log,
    logits,
    paired,
    parser,
    span,
    table,
)
from salvo.inference import InferenceEngine
from salvo.zoo import efficientnet_lite0, efficientnet_lite0_preprocess, sample_image

PHOTOS = ("coffee", "chelsea", "rocket", "astronaut")


def spread_over(call: Callable[[int], Any], num_calls: int, threads: int) -> Callable[[], Sample]:
    """A variant making ``call(0..num_calls-1)`` over ``threads`` threads started together."""
    lanes = [list(range(t, num_calls, threads)) for t in range(threads)]

    def run() -> Sample:
        barrier = threading.Barrier(threads + 1)

        def lane(items: list[int]) -> None:
            barrier.wait()
            for i in items:
                call(i)

        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(lane, items) for items in lanes]
            barrier.wait()
            t0 = time.perf_counter()
            for f in futures:
                f.result()
        return Sample(time.perf_counter() - t0, num_calls)
    return run


def explainer_rows(args: Any) -> list[dict[str, Any]]:
    model = efficientnet_lite0()
    photos = [sample_image(name) for name in PHOTOS]
    rows = []
    for precision in args.precisions:
        for name in args.methods:
            method = salvo.Method(name)
            kwargs: dict[str, Any] = {"inference_precision": precision}
            if method in (salvo.Method.RISE, salvo.Method.AISE):
                kwargs.update(postprocess_fn=logits, explain_mode=salvo.ExplainMode.BLACKBOX,
                              preset="speed", progress=False)
                if method == salvo.Method.RISE:
                    kwargs["num_masks"] = args.rise_masks
            explainer = salvo.Explainer(model, salvo.Task.CLASSIFICATION,
                                        preprocess_fn=efficientnet_lite0_preprocess,
                                        explain_method=method, **kwargs)

            def call(i: int, explainer: Any = explainer) -> None:
                explainer(photos[i % len(photos)], targets=ESPRESSO)

            calls = args.calls[name]
            variants = {"sequential": spread_over(call, calls, 1)}
            for t in args.threads:
                variants[f"{t} threads"] = spread_over(call, calls, t)
            measured = interleaved(variants, args.rounds, label=f"{name} {label(precision)}")
            for variant, r in paired(measured, "sequential", per="call").items():
                rows.append({"method": name, "precision": precision, "variant": variant,
                             "calls": calls, "calls_per_s": calls / r["seconds"]["median"],
                             # throughput ratio = sequential seconds / threaded seconds
                             "over_sequential": inverted(r["over_baseline"]),
                             "loads": measured["loads"]})
    return rows


def engine_rows(args: Any) -> list[dict[str, Any]]:
    """Single-caller latency and 4-thread throughput of white-box engine settings."""
    precision = args.precisions[0]
    model = salvo.insert_xai(efficientnet_lite0(), salvo.Task.CLASSIFICATION,
                             explain_method=salvo.Method.RECIPROCAM)
    x = [efficientnet_lite0_preprocess(sample_image(name)) for name in PHOTOS]
    settings = {
        "LATENCY, 1 request (0.1)": {"performance_hint": "LATENCY", "num_requests": 1},
        "LATENCY, 4 requests": {"performance_hint": "LATENCY", "num_requests": 4},
        "THROUGHPUT": {"performance_hint": "THROUGHPUT", "num_requests": None},
    }
    engines = {k: InferenceEngine(model, "CPU", batch_size=1, precision=precision, **v)
               for k, v in settings.items()}
    first = engines["LATENCY, 1 request (0.1)"]
    expected = [first.infer_items(a)[-1] for a in x]
    calls = 16 if args.quick else args.engine_calls
    variants = {}
    for k, engine in engines.items():
        def call(i: int, engine: InferenceEngine = engine) -> None:
            engine.infer_items(x[i % len(x)])
        variants[f"{k}: 1 thread"] = spread_over(call, calls, 1)
        variants[f"{k}: 4 threads"] = spread_over(call, calls, 4)
    measured = interleaved(variants, args.rounds, label="engines")
    base = "LATENCY, 1 request (0.1): 1 thread"
    result = paired(measured, base, per="call")
    rows = []
    for k, engine in engines.items():
        one = result[f"{k}: 1 thread"]
        four = paired(measured, f"{k}: 1 thread", per="call")[f"{k}: 4 threads"]
        rows.append({
            "engine": k, "num_requests": engine.num_requests, "precision": precision,
            "latency_ms": 1000 * one["per_item"]["median"],
            "latency_over_0.1": one["over_baseline"],
            "four_threads_speedup": inverted(four["over_baseline"]),
            "outputs_identical": all(np.array_equal(engine.infer_items(a)[-1], e)
                                     for a, e in zip(x, expected)),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], rounds=5)
    p.set_defaults(precisions=["f32"])
    p.add_argument("--methods", nargs="+", default=["rise", "reciprocam"],
                   choices=["rise", "aise", "reciprocam", "activationmap"])
    p.add_argument("--threads", type=int, nargs="+", default=[2, 4])
    p.add_argument("--engines", action="store_true",
                   help="compare white-box engine settings instead")
    p.add_argument("--rise-masks", type=int, default=500, help="masks per RISE call")
    p.add_argument("--engine-calls", type=int, default=48,
                   help="--engines: calls per measurement (longer measurements, less noise)")
    args = finish_args(p.parse_args(argv))
    args.calls = {"rise": 4, "aise": 4, "reciprocam": 64, "activationmap": 64}
    if args.quick:
        args.rise_masks = 100
        args.calls.update(reciprocam=16, activationmap=16)
    name = "threads_engines" if args.engines else "threads"
    report = Report(name, args)
    if args.engines:
        rows = engine_rows(args)
        columns = [("engine", "engine"), ("requests", "num_requests"),
                   ("precision", lambda r: label(r["precision"])),
                   ("latency ms", lambda r: f"{r['latency_ms']:.2f}"),
                   ("latency / 0.1's", lambda r: span(r["latency_over_0.1"])),
                   ("4 threads / 1 thread", lambda r: span(r["four_threads_speedup"])),
                   ("outputs identical", "outputs_identical")]
        intro = ("Throughput of 4 threads over 1 thread on the same engine, and latency over "
                 "salvo 0.1's engine (LATENCY hint, one request), per-round ratios: median "
                 "(range).")
    else:
        rows = explainer_rows(args)
        columns = [("method", "method"), ("precision", lambda r: label(r["precision"])),
                   ("variant", "variant"), ("calls", "calls"),
                   ("calls/s", lambda r: f"{r['calls_per_s']:.2f}"),
                   ("x sequential", lambda r: span(r["over_sequential"]))]
        intro = ("One shared Explainer (EfficientNet-Lite0, raw photos through its "
                 "preprocessing, one target; RISE and AISE at the speed preset, RISE with "
                 f"{args.rise_masks} masks). `x sequential` "
                 "= throughput over the sequential throughput in the same round: median "
                 "(range).")
    log("done")

    def markdown(rep: Report) -> str:
        return "\n".join([f"# Threads{': engine settings' if args.engines else ''}", "",
                          rep.header(), "", intro, "", table(rows, columns)])

    report.write({"rows": rows, "rounds": args.rounds}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
