"""salvo's inference engine against the plain-OpenVINO inference bound and a synchronous loop.

Per model x device x precision:

* ``bound``: plain OpenVINO at its best (:func:`_common.bound_sweep`: THROUGHPUT hint, an
  ``AsyncInferQueue`` kept busy over ready-made inputs, swept over ``--batches`` x
  ``--requests``; the best setting is the baseline);
* ``sync``: one synchronous ``infer`` per image, LATENCY hint (the reference toolkit's loop);
* ``engine auto``: :class:`salvo.inference.InferenceEngine` at its defaults (the automatic
  batch rule, twice the optimal number of requests), the producer writing masked images into
  the request tensors with the native kernel, the consumer summing the outputs;
* ``engine BxR``: the engine at each ``--engines`` setting.

Each variant runs ``--images`` images per round; rounds are interleaved; the table gives
images/s and the per-round ratio to the bound (median and range).

    python benchmarks/bench_engine.py [--quick] [--models lite0@224 lite0@128]
        [--precisions default f32] [--batches 1 4 8 16] [--requests 2 4] [--engines 1x4 4x4]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _common import (
    Report,
    Sample,
    bound_sweep,
    bound_variant,
    cells,
    finish_args,
    grid,
    interleaved,
    label,
    log,
    model_case,
    paired,
    parser,
    span,
    table,
)
from salvo.inference import InferenceEngine, get_core
from salvo.kernels import fill_masked


def sync_variant(model: Any, x: np.ndarray, device: str, precision: str | None,
                 images: int) -> Any:
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    request = get_core().compile_model(model, device, config).create_infer_request()

    def run() -> Sample:
        t0 = time.perf_counter()
        for _ in range(images):
            request.infer({0: x})
        return Sample(time.perf_counter() - t0, images)
    return run


def engine_variant(engine: InferenceEngine, x: np.ndarray, images: int) -> Any:
    """The engine over ``images`` masked copies of ``x`` (64 random masks, reused)."""
    rng = np.random.default_rng(0)
    image = np.ascontiguousarray(x[0], np.float32)
    masks = rng.random((64, *image.shape[1:])).astype(np.float32)
    sink = np.zeros(1, np.float64)

    def fill(out: np.ndarray, start: int, stop: int) -> None:
        idx = np.arange(start, stop) % len(masks)
        fill_masked(image, masks[idx], out, "NCHW", 1)

    def consume(start: int, stop: int, outputs: Any) -> None:
        sink[0] += float(outputs[0].sum())

    def run() -> Sample:
        t0 = time.perf_counter()
        engine.run(images, fill, consume)
        return Sample(time.perf_counter() - t0, images)
    return run


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], rounds=5)
    p.add_argument("--models", nargs="+", default=["lite0@224", "lite0@128"])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16],
                   help="batch sizes of the bound's sweep")
    p.add_argument("--requests", type=int, nargs="+", default=[2, 4],
                   help="infer requests of the bound's sweep")
    p.add_argument("--engines", type=cells, nargs="*", default=[(1, 4), (4, 4)],
                   metavar="BxR", help="engine settings besides its defaults")
    p.add_argument("--images", type=int, default=400, help="images per variant and round")
    args = finish_args(p.parse_args(argv))
    if args.quick:
        args.batches, args.requests, args.engines, args.images = [1, 8], [4], [], 160
    report = Report("engine", args)
    rows: list[dict[str, Any]] = []
    for point in grid(model=args.models, device=args.devices, precision=args.precisions):
        case = model_case(point["model"])
        device, precision = point["device"], point["precision"]
        log(f"{case.name} on {device}, {label(precision)}")
        bound = bound_sweep(case.model(), case.x, device, precision, batches=args.batches,
                            requests=args.requests, seconds=0.4 if args.quick else 1.0)
        variants = {"bound": bound_variant(bound["queue"], args.images),
                    "sync": sync_variant(case.model(), case.x, device, precision,
                                         max(8, args.images // 4))}
        engines = {"engine auto": InferenceEngine(case.model(), device, precision=precision)}
        for b, r in args.engines:
            engines[f"engine {b}x{r}"] = InferenceEngine(case.model(), device, batch_size=b,
                                                         num_requests=r, precision=precision)
        for name, engine in engines.items():
            variants[name] = engine_variant(engine, case.x, args.images)
        measured = interleaved(variants, args.rounds, label=f"{case.name} {label(precision)}")
        result = paired(measured, "bound")
        best = bound["best"]
        for name, r in result.items():
            engine = engines.get(name)
            setting = (f"{engine.batch_size}x{engine.num_requests}" if engine is not None
                       else f"{best['batch']}x{best['requests']}" if name == "bound" else "1x1")
            rows.append({**point, "variant": name, "setting": setting,
                         "ips": 1 / r["per_item"]["median"],
                         "over_bound": {k: v for k, v in r["over_baseline"].items()},
                         "warmup_seconds": r["warmup_seconds"], "loads": measured["loads"]})
        rows[-len(result)]["sweep"] = bound["sweep"]
        del engines, variants, bound

    def markdown(rep: Report) -> str:
        return "\n".join([
            "# Engine throughput", "", rep.header(), "",
            (f"Images/s, median of {args.rounds} interleaved rounds of {args.images} images "
            "per variant (sync: a quarter as many); `x bound` = seconds per image over plain "
            "OpenVINO's at its best setting, in the same round: median (range). Setting = batch "
            "x requests."), "",
            table(rows, [("model", "model"), ("device", "device"),
                         ("precision", lambda r: label(r["precision"])),
                         ("variant", "variant"), ("setting", "setting"),
                         ("images/s", lambda r: f"{r['ips']:.1f}"),
                         ("x bound", lambda r: span(r["over_bound"]))]),
        ])

    report.write({"rows": rows, "rounds": args.rounds, "images": args.images}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
