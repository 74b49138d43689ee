"""Engine throughput against the inference bound, on EfficientNet-Lite0 (issue: foundation).

Measures images/s at 224x224 and 128x128 for

(a) ``sync``: one synchronous ``compiled_model(x)`` call per image, default compile settings
    (what the reference toolkit's black-box loop does);
(b) ``engine``: salvo's engine with its defaults, the producer doing real work (writing masked
    inputs into the request tensors with the native kernel);
(c) ``bound``: plain OpenVINO, an ``AsyncInferQueue`` loop over ready-made inputs, best of a sweep
    over batch x requests x precision.

Prints a table and writes JSON (``--out``). Speed is never asserted here.

    python benchmarks/bench_engine.py [--quick] [--out benchmarks/results/engine.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import openvino as ov
from _common import inference_bound, lite0_at, timed
from salvo import build_info
from salvo.inference import InferenceEngine, get_core
from salvo.kernels import fill_masked


def model_at(size: int, batch: int) -> ov.Model:
    return lite0_at(size, batch)


def bench_sync(size: int, seconds: float, repeats: int) -> float:
    compiled = get_core().compile_model(model_at(size, 1), "CPU")
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    compiled(x)  # warm-up

    def step() -> int:
        compiled(x)
        return 1

    return statistics.median(timed(step, seconds) for _ in range(repeats))


def bench_engine(size: int, seconds: float, repeats: int, **engine_kwargs) -> tuple[float, dict]:
    engine = InferenceEngine(model_at(size, 1), "CPU", **engine_kwargs)
    rng = np.random.default_rng(0)
    image = (rng.random((3, size, size)) * 2 - 1).astype(np.float32)
    masks = rng.random((64, size, size)).astype(np.float32)
    n_items = max(engine.batch_size * engine.num_requests * 4, 64)

    def fill(out: np.ndarray, start: int, stop: int) -> None:
        idx = np.arange(start, stop) % len(masks)
        lo = idx[0]
        if idx[-1] >= lo:  # contiguous slice of the mask pool
            fill_masked(image, masks[lo : lo + len(idx)], out, "NCHW", 1)
        else:
            fill_masked(image, masks[idx], out, "NCHW", 1)

    sink = np.zeros(1000, np.float32)

    def consume(start: int, stop: int, outputs) -> None:
        sink[:] += outputs[0].sum(axis=0)

    def step() -> int:
        engine.run(n_items, fill, consume)
        return n_items

    step()  # warm-up
    ips = statistics.median(timed(step, seconds) for _ in range(repeats))
    return ips, {"batch_size": engine.batch_size, "num_requests": engine.num_requests,
                 "config": {k: str(v) for k, v in engine.config.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweep, shorter runs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/engine.json"))
    args = parser.parse_args(argv)

    seconds = 1.0 if args.quick else 2.5
    repeats = 2 if args.quick else 3
    batches = [1, 8, 16] if args.quick else [1, 4, 8, 16, 32]
    requests_list = [1, 2, 4] if not args.quick else [2, 4]
    precisions = ["f32", None]
    results: dict = {"build": build_info(), "quick": args.quick, "sizes": {}}

    for size in args.sizes:
        row: dict = {}
        row["sync"] = bench_sync(size, seconds, repeats)
        bound = inference_bound(model_at(size, 1), batches=batches, requests=requests_list,
                                precisions=precisions, seconds=seconds, repeats=repeats)
        row["bound"] = bound["ips"]
        row["bound_config"] = bound["config"]
        row["sweep"] = bound["sweep"]
        row["engine"], row["engine_config"] = bench_engine(size, seconds, repeats)
        row["engine_over_bound"] = row["engine"] / row["bound"]
        row["engine_over_sync"] = row["engine"] / row["sync"]
        results["sizes"][str(size)] = row

    print()
    print(f"{'size':>5} | {'(a) sync':>9} | {'(b) engine':>10} | {'(c) bound':>9} | "
          f"{'b/c':>5} | {'b/a':>5} | bound config | engine config")
    print("-" * 100)
    for size, row in results["sizes"].items():
        bc = row["bound_config"]
        ec = row["engine_config"]
        print(f"{size:>5} | {row['sync']:9.1f} | {row['engine']:10.1f} | {row['bound']:9.1f} | "
              f"{row['engine_over_bound']:5.2f} | {row['engine_over_sync']:5.2f} | "
              f"b{bc['batch']} r{bc['requests']} {bc['precision']} | "
              f"b{ec['batch_size']} r{ec['num_requests']} "
              f"{ec['config'].get('INFERENCE_PRECISION_HINT', 'default')}")
    print("images/s; medians of repeated runs after a warm-up; (c) is plain OpenVINO")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
