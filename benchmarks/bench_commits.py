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

    python benchmarks/bench_commits.py [--old /path/to/old/tree | --old REVISION] [--new .]
        [--rounds 5]
        [--precisions f32|default] [--quick]

The worker imports only the tree's own salvo (not this folder's ``_common``), so any two trees
with the public API compare.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
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
        [sys.executable, str(Path(__file__).resolve()), "--worker", "--precisions", precision],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(tree))


def _round(worker: subprocess.Popen) -> dict:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write("round\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    if not line:
        raise RuntimeError("a worker ended early (see its stderr above)")
    return json.loads(line)


def main(argv: list[str] | None = None) -> int:
    if "--worker" in (sys.argv[1:] if argv is None else argv):
        # the worker imports the other tree's salvo: nothing of this tree's (not _common)
        args = argparse.ArgumentParser()
        args.add_argument("--worker", action="store_true")
        args.add_argument("--precisions", default="f32")
        ns, _ = args.parse_known_args(argv)
        _worker(None if ns.precisions == "default" else ns.precisions)
        return 0
    from _common import finish_args, parser

    p = parser(__doc__.split("\n\n")[0], rounds=5)
    p.set_defaults(precisions=["f32"])
    p.add_argument("--old", default="HEAD",
                   help="the old source tree (a folder with python/salvo) or a git revision of "
                        "this repository, exported with its python/ folder and given this tree's "
                        "compiled extension (default HEAD: the last commit)")
    p.add_argument("--new", type=Path, default=HERE.parent, help="the new tree (default: this one)")
    args = finish_args(p.parse_args(argv))
    with tempfile.TemporaryDirectory(prefix="bench-commits-") as tmp:
        args.old = _tree(args.old, args.new.resolve(), Path(tmp))
        return _compare(args)


def _tree(old: str, new: Path, tmp: Path) -> Path:
    """``old`` as a folder, or the export of git revision ``old`` into ``tmp``."""
    if Path(old, "python", "salvo").is_dir():
        return Path(old).resolve()
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", old, "python"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"--old {old!r} is neither a source tree nor a git revision: "
                         f"{archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    for so in (new / "python" / "salvo").glob("_native*"):
        if so.suffix in (".so", ".pyd"):
            shutil.copy2(so, tmp / "python" / "salvo" / so.name)
    return tmp


def _compare(args: argparse.Namespace) -> int:
    from _common import Report, log, span, summary, table

    precision = args.precisions[0] or "default"
    report = Report("commits", args)
    workers = {"old": _start(args.old.resolve(), precision),
               "new": _start(args.new.resolve(), precision)}
    rounds: list[dict[str, dict]] = []
    try:
        for r in range(args.rounds):
            order = list(workers)
            random.Random(r).shuffle(order)
            got = {name: _round(workers[name]) for name in order}
            rounds.append(got)
            log(f"round {r + 1}/{args.rounds}: " + "  ".join(
                f"{m} old {got['old'][m]:.3f} new {got['new'][m]:.3f}" for m in MEASURES))
    finally:
        for worker in workers.values():
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait(timeout=60)
    rows = [{"measure": m,
             "old": summary(g["old"][m] for g in rounds),
             "new": summary(g["new"][m] for g in rounds),
             "new_over_old": summary(g["new"][m] / g["old"][m] for g in rounds)}
            for m in MEASURES]

    def markdown(rep: Report) -> str:
        return "\n".join([
            "# Two source trees side by side", "", rep.header(), "",
            (f"Old tree `{args.old}`, new tree `{args.new}`, precision {precision}, "
            f"{args.rounds} interleaved rounds: median (range); `new / old` = per-round ratio."),
            "", table(rows, [("measure", "measure"), ("old", lambda r: span(r["old"], ".3f")),
                             ("new", lambda r: span(r["new"], ".3f")),
                             ("new / old", lambda r: span(r["new_over_old"], ".3f"))])])

    report.write({"rows": rows, "per_round": rounds, "old": str(args.old),
                  "new": str(args.new), "precision": precision}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
