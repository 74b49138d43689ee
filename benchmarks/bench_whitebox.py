"""White-box cost on EfficientNet-Lite0 (issue: API / white-box).

Latency of one synchronous inference (LATENCY hint) of the plain model, of the model with a
ReciproCAM branch (closed form, and the general masked-batch path for comparison) and with an
ActivationMap branch; and the end-to-end time of an Explainer call
that returns all 1000 class maps resized to 224x224 and colour-mapped. Medians of repeated runs
after warm-up. Prints a table and writes JSON.

    python benchmarks/bench_whitebox.py [--quick] [--out benchmarks/results/whitebox.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import salvo
from salvo.inference import get_core
from salvo.methods.white_box import recipro_cam
from salvo.zoo import efficientnet_lite0, efficientnet_lite0_preprocess, sample_image


def latency_ms(model, x, precision: str | None, runs: int) -> float:
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = get_core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    for _ in range(5):
        request.infer([x])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        request.infer([x])
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/whitebox.json"))
    args = parser.parse_args(argv)
    runs = 30 if args.quick else 100
    repeats = 3 if args.quick else 7

    model = efficientnet_lite0()
    x = efficientnet_lite0_preprocess(sample_image("coffee"))
    task = salvo.Task.CLASSIFICATION
    recipro_cam.CLOSED_FORM = False  # the masked-batch path, for comparison
    general = salvo.insert_xai(model, task, salvo.Method.RECIPROCAM)
    recipro_cam.CLOSED_FORM = True
    models = {
        "plain": model,
        "reciprocam": salvo.insert_xai(model, task, salvo.Method.RECIPROCAM),
        "reciprocam_general": general,
        "activationmap": salvo.insert_xai(model, task, salvo.Method.ACTIVATIONMAP),
    }
    results: dict = {"build": salvo.build_info(), "latency_ms": {}, "quick": args.quick}
    for precision in ("f32", None):
        row = {name: latency_ms(m, x, precision, runs) for name, m in models.items()}
        results["latency_ms"][precision or "default"] = row

    explainer = salvo.Explainer(model, task, explain_method=salvo.Method.RECIPROCAM)
    t0 = time.perf_counter()
    explainer(x, targets=-1)  # first call: includes Numba JIT of the batched visualisation
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        explanation = explainer(x, targets=-1)
        times.append(time.perf_counter() - t0)
        assert len(explanation.targets) == 1000 and explanation.shape == (224, 224, 3)
    results["all_classes_seconds"] = statistics.median(times)
    results["all_classes_first_call_seconds"] = first
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        explainer(x, targets=-1, resize=False, colormap=False)
        times.append(time.perf_counter() - t0)
    results["all_classes_raw_seconds"] = statistics.median(times)

    print(f"{'precision':>9} | {'plain ms':>8} | {'ReciproCAM ms':>13} | {'ratio':>5} | "
          f"{'(general) ms':>12} | {'ratio':>5} | {'ActivationMap ms':>16} | {'ratio':>5}")
    print("-" * 95)
    for precision, row in results["latency_ms"].items():
        print(f"{precision:>9} | {row['plain']:8.2f} | {row['reciprocam']:13.2f} | "
              f"{row['reciprocam'] / row['plain']:5.2f} | {row['reciprocam_general']:12.2f} | "
              f"{row['reciprocam_general'] / row['plain']:5.2f} | {row['activationmap']:16.2f} | "
              f"{row['activationmap'] / row['plain']:5.2f}")
    print("(general): ReciproCAM with the closed form switched off (the masked h*w batch)")
    print()
    print(f"all 1000 classes, resize 224x224 + JET, end to end: "
          f"{results['all_classes_seconds']:.3f} s (median; first call "
          f"{results['all_classes_first_call_seconds']:.2f} s incl. JIT); raw maps only "
          f"{results['all_classes_raw_seconds']:.3f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
