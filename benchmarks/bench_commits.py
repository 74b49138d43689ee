"""Two source trees of salvo side by side: RISE and AISE against the inference bound, and the
white-box latency, in interleaved rounds.

A refactoring must not cost speed. This starts one long-lived worker process per tree (each
imports its own salvo), builds the same Explainers in both (EfficientNet-Lite0 at 224 px, the
coffee photo, target 967), and then alternates: in every round each worker measures, one after
the other and in a shuffled order, the plain-OpenVINO inference bound (an ``AsyncInferQueue``
keeping every request busy), one RISE call (SPEED preset), one AISE call (SPEED preset) and the
median latency of 20 ReciproCAM calls. ``x bound`` is a call's wall time over the time the bound
needs for the same number of inferences, measured right before it in the same worker. The table
gives, per measure, each tree's median and the median of the per-round ratios new / old with
their range.

    python benchmarks/bench_commits.py --old /path/to/old/tree --new . [--rounds 5] \\
        [--precision f32|default]

Writes ``benchmarks/results/commits.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MEASURES = ("rise_x_bound", "aise_x_bound", "reciprocam_ms")


# ----------------------------------------------------------------------------------- worker

def _worker(precision: str | None) -> None:
    import numpy as np
    import openvino as ov

    import salvo as xai
    from salvo.zoo import efficientnet_lite0, efficientnet_lite0_preprocess, sample_image

    model = efficientnet_lite0()
    x = efficientnet_lite0_preprocess(sample_image("coffee"))
    keywords = {} if precision is None else {"inference_precision": precision}

    def logits(outputs):
        return outputs[0]

    rise = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                         explain_mode=xai.ExplainMode.BLACKBOX, explain_method=xai.Method.RISE,
                         preset="speed", progress=False, **keywords)
    aise = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                         explain_mode=xai.ExplainMode.BLACKBOX, explain_method=xai.Method.AISE,
                         preset="speed", progress=False, **keywords)
    white = xai.Explainer(model, xai.Task.CLASSIFICATION, explain_mode=xai.ExplainMode.WHITEBOX,
                          explain_method=xai.Method.RECIPROCAM, **keywords)
    config = {"PERFORMANCE_HINT": "THROUGHPUT"}
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = ov.Core().compile_model(model, "CPU", config)
    queue = ov.AsyncInferQueue(compiled, 2 * int(compiled.get_property(
        "OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    data = np.ascontiguousarray(x, dtype=np.float32)

    def bound(n: int = 400) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            queue.start_async({0: data})
        queue.wait_all()
        return n / (time.perf_counter() - t0)

    def call(explainer) -> tuple[float, int]:
        t0 = time.perf_counter()
        e = explainer(x, targets=967, resize=False, colormap=False)
        return time.perf_counter() - t0, e.num_inferences

    for explainer in (rise, aise, white):  # warm-up
        call(explainer)
    bound()
    for line in sys.stdin:
        if line.strip() != "round":
            break
        out = {}
        order = ["rise", "aise", "white"]
        random.shuffle(order)
        for name in order:
            if name == "white":
                out["reciprocam_ms"] = 1000 * statistics.median(call(white)[0]
                                                                for _ in range(20))
            else:
                per_second = bound()
                seconds, inferences = call(rise if name == "rise" else aise)
                out[f"{name}_x_bound"] = seconds / (inferences / per_second)
        print(json.dumps(out), flush=True)


# ----------------------------------------------------------------------------------- driver

def _start(tree: Path, precision: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(tree / "python"), TQDM_DISABLE="1",
               PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", "--precision", precision],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(tree))


def _round(worker: subprocess.Popen) -> dict:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write("round\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    if not line:
        raise RuntimeError("a worker ended early (see its stderr above)")
    return json.loads(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="the old source tree (has python/salvo)")
    parser.add_argument("--new", type=Path, default=HERE.parent)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", default="f32", help="f32, bf16 or default")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "commits.json")
    args = parser.parse_args()
    precision = None if args.precision == "default" else args.precision
    if args.worker:
        _worker(precision)
        return 0
    if args.old is None:
        parser.error("--old is required")
    workers = {"old": _start(args.old.resolve(), args.precision),
               "new": _start(args.new.resolve(), args.precision)}
    rounds: list[dict[str, dict]] = []
    try:
        for r in range(args.rounds):
            order = list(workers)
            random.Random(r).shuffle(order)
            got = {name: _round(workers[name]) for name in order}
            rounds.append(got)
            print(f"round {r}: " + "  ".join(
                f"{m} old {got['old'][m]:.3f} new {got['new'][m]:.3f}" for m in MEASURES),
                file=sys.stderr)
    finally:
        for worker in workers.values():
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait(timeout=60)
    summary = {}
    for m in MEASURES:
        ratios = [g["new"][m] / g["old"][m] for g in rounds]
        summary[m] = {"old_median": statistics.median(g["old"][m] for g in rounds),
                      "new_median": statistics.median(g["new"][m] for g in rounds),
                      "ratio_median": statistics.median(ratios),
                      "ratio_min": min(ratios), "ratio_max": max(ratios),
                      "old_range": [min(g["old"][m] for g in rounds),
                                    max(g["old"][m] for g in rounds)],
                      "new_range": [min(g["new"][m] for g in rounds),
                                    max(g["new"][m] for g in rounds)]}
    result = {"old": str(args.old), "new": str(args.new), "precision": args.precision,
              "rounds": args.rounds, "loadavg": os.getloadavg(), "summary": summary,
              "per_round": rounds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.rounds} interleaved rounds, precision {args.precision}, load "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    print("| measure | old (median, range) | new (median, range) | new / old (median, range) |")
    print("|---|---|---|---|")
    for m, s in summary.items():
        print(f"| {m} | {s['old_median']:.3f} ({s['old_range'][0]:.3f}-{s['old_range'][1]:.3f}) "
              f"| {s['new_median']:.3f} ({s['new_range'][0]:.3f}-{s['new_range'][1]:.3f}) | "
              f"{s['ratio_median']:.3f} ({s['ratio_min']:.3f}-{s['ratio_max']:.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
