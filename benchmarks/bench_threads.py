"""One Explainer shared by 1, 2 and 4 threads vs the same calls made one after the other.

A web service or a thread pool calls one Explainer from several threads. This measures the
throughput (calls per second) of the same set of calls made (a) one after the other on one
thread and (b) spread over 2 and 4 threads at once, on one shared Explainer, for RISE (SPEED
preset, one target) and ReciproCAM (one target), EfficientNet-Lite0 at 224 px; each call takes
the raw photo and runs the model's preprocessing, as a service would. Rounds are interleaved
(sequential, 2 threads, 4 threads, in a shuffled order each round) and every threaded figure is
divided by the sequential one of the same round; the table gives the median of those paired
ratios and their range.

``--whitebox-engines`` also compares white-box engine settings for the Explainer: the
single-caller latency and the 4-thread throughput of a LATENCY engine with one infer request
(salvo 0.1), a LATENCY engine with several requests, and a THROUGHPUT engine.

    python benchmarks/bench_threads.py [--rounds 5] [--precision f32|default] [--quick]
    python benchmarks/bench_threads.py --whitebox-engines [--rounds 5]

Writes ``benchmarks/results/threads.json`` (``threads_<precision>.json``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np

import salvo as xai
from _common import loadavg
from salvo.inference import InferenceEngine
from salvo.zoo import efficientnet_lite0, efficientnet_lite0_preprocess, sample_image

RESULTS = HERE / "results"
PHOTOS = ("coffee", "chelsea", "rocket", "astronaut")
TARGET = 967  # espresso


def logits(outputs):
    return outputs[0]


def throughput(call, num_calls: int, threads: int) -> float:
    """Calls per second of ``num_calls`` calls ``call(i)`` spread over ``threads`` threads."""
    lanes = [list(range(t, num_calls, threads)) for t in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def lane(items):
        barrier.wait()
        for i in items:
            call(i)

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(lane, items) for items in lanes]
        barrier.wait()
        t0 = time.perf_counter()
        for f in futures:
            f.result()
    return num_calls / (time.perf_counter() - t0)


def summary(ratios: list[float]) -> dict:
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
            "rounds": ratios}


def bench_explainers(args: argparse.Namespace) -> dict:
    precision = None if args.precision == "default" else args.precision
    model = efficientnet_lite0()
    photos = [sample_image(name) for name in PHOTOS]
    rise = xai.Explainer(model, xai.Task.CLASSIFICATION,
                         preprocess_fn=efficientnet_lite0_preprocess, postprocess_fn=logits,
                         explain_mode=xai.ExplainMode.BLACKBOX, explain_method=xai.Method.RISE,
                         preset="speed", inference_precision=precision, progress=False)
    recipro = xai.Explainer(model, xai.Task.CLASSIFICATION,
                            preprocess_fn=efficientnet_lite0_preprocess,
                            explain_mode=xai.ExplainMode.WHITEBOX,
                            explain_method=xai.Method.RECIPROCAM, inference_precision=precision)
    cases = {
        "rise": (lambda i: rise(photos[i % len(photos)], targets=TARGET), args.rise_calls),
        "reciprocam": (lambda i: recipro(photos[i % len(photos)], targets=TARGET),
                       args.whitebox_calls),
    }
    for call, _ in cases.values():  # warm-up, outside the rounds
        for i in range(4):
            call(i)
    out: dict = {"precision": args.precision, "rounds": args.rounds, "loadavg_start": loadavg(),
                 "methods": {}}
    rng = random.Random(0)
    for name, (call, num_calls) in cases.items():
        per_round: list[dict[int, float]] = []
        for r in range(args.rounds):
            order = [1, 2, 4]
            rng.shuffle(order)
            got = {threads: throughput(call, num_calls, threads) for threads in order}
            per_round.append(got)
            print(f"  {name} round {r}: " + "  ".join(
                f"{t} thr {got[t]:.2f}/s" for t in (1, 2, 4)), file=sys.stderr)
        out["methods"][name] = {
            "calls_per_round": num_calls,
            "sequential_calls_per_s": statistics.median(g[1] for g in per_round),
            "ratio_2_threads": summary([g[2] / g[1] for g in per_round]),
            "ratio_4_threads": summary([g[4] / g[1] for g in per_round]),
        }
    out["loadavg_end"] = loadavg()
    return out


def bench_whitebox_engines(args: argparse.Namespace) -> dict:
    """Single-caller latency and 4-thread throughput of white-box engine settings."""
    precision = None if args.precision == "default" else args.precision
    model = efficientnet_lite0()
    xai_model = xai.insert_xai(model, xai.Task.CLASSIFICATION,
                               explain_method=xai.Method.RECIPROCAM)
    x = [efficientnet_lite0_preprocess(sample_image(name)) for name in PHOTOS]
    settings = {
        "LATENCY, 1 request (0.1)": dict(performance_hint="LATENCY", num_requests=1),
        "LATENCY, 4 requests": dict(performance_hint="LATENCY", num_requests=4),
        "THROUGHPUT": dict(performance_hint="THROUGHPUT", num_requests=None),
    }
    engines = {k: InferenceEngine(xai_model, "CPU", batch_size=1, precision=precision, **v)
               for k, v in settings.items()}
    reference = [engines["LATENCY, 1 request (0.1)"].infer_items(a)[-1] for a in x]
    identical = {k: all(np.array_equal(e.infer_items(a)[-1], ref)
                        for a, ref in zip(x, reference)) for k, e in engines.items()}
    rows: dict[str, dict[str, list[float]]] = {k: {"latency_ms": [], "tput4": []}
                                               for k in engines}
    rng = random.Random(1)
    calls = args.whitebox_calls
    for r in range(args.rounds):
        order = list(engines)
        rng.shuffle(order)
        for k in order:
            engine = engines[k]
            rate1 = throughput(lambda i: engine.infer_items(x[i % 4]), calls, 1)
            rate4 = throughput(lambda i: engine.infer_items(x[i % 4]), calls, 4)
            rows[k]["latency_ms"].append(1000 / rate1)
            rows[k]["tput4"].append(rate4 / rate1)
        print(f"  engines round {r}: " + "  ".join(
            f"{k}: {rows[k]['latency_ms'][-1]:.1f} ms, x{rows[k]['tput4'][-1]:.2f}"
            for k in engines), file=sys.stderr)
    base = rows["LATENCY, 1 request (0.1)"]["latency_ms"]
    return {
        "precision": args.precision, "rounds": args.rounds, "loadavg_end": loadavg(),
        "engines": {
            k: {"latency_ms": statistics.median(v["latency_ms"]),
                "latency_vs_0.1": summary([a / b for a, b in zip(v["latency_ms"], base)]),
                "tput_4_threads_vs_1": summary(v["tput4"]),
                "outputs_identical_to_0.1": identical[k],
                "num_requests": engines[k].num_requests}
            for k, v in rows.items()
        },
    }


def markdown(result: dict) -> str:
    lines = []
    if "methods" in result:
        lines += [f"One shared Explainer, EfficientNet-Lite0 224 px, precision "
                  f"{result['precision']}, {result['rounds']} interleaved rounds "
                  f"(load {result['loadavg_start']} -> {result['loadavg_end']}).", "",
                  "| method | calls/round | sequential calls/s | 2 threads / sequential | "
                  "4 threads / sequential |", "|---|---|---|---|---|"]
        for name, m in result["methods"].items():
            r2, r4 = m["ratio_2_threads"], m["ratio_4_threads"]
            lines.append(f"| {name} | {m['calls_per_round']} | "
                         f"{m['sequential_calls_per_s']:.2f} | {r2['median']:.2f} "
                         f"({r2['min']:.2f}-{r2['max']:.2f}) | {r4['median']:.2f} "
                         f"({r4['min']:.2f}-{r4['max']:.2f}) |")
    if "engines" in result:
        lines += ["", f"White-box engine settings (ReciproCAM model, precision "
                  f"{result['precision']}, {result['rounds']} interleaved rounds):", "",
                  "| engine | requests | latency ms | latency / 0.1's | 4 threads / 1 thread | "
                  "outputs identical |", "|---|---|---|---|---|---|"]
        for name, e in result["engines"].items():
            lv, t4 = e["latency_vs_0.1"], e["tput_4_threads_vs_1"]
            lines.append(f"| {name} | {e['num_requests']} | {e['latency_ms']:.2f} | "
                         f"{lv['median']:.2f} ({lv['min']:.2f}-{lv['max']:.2f}) | "
                         f"{t4['median']:.2f} ({t4['min']:.2f}-{t4['max']:.2f}) | "
                         f"{e['outputs_identical_to_0.1']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", default="f32", help="f32, bf16 or default")
    parser.add_argument("--rise-calls", type=int, default=8, help="RISE calls per measurement")
    parser.add_argument("--whitebox-calls", type=int, default=96,
                        help="ReciproCAM calls per measurement")
    parser.add_argument("--whitebox-engines", action="store_true",
                        help="compare white-box engine settings instead")
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer calls")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.rise_calls, args.whitebox_calls = 2, 4, 32
    if args.whitebox_engines:
        result = bench_whitebox_engines(args)
        name = f"threads_engines_{args.precision}.json"
    else:
        result = bench_explainers(args)
        name = f"threads_{args.precision}.json"
    out = args.out or RESULTS / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
