"""The Ray path's overhead: ``salvo explain`` locally vs ``--ray`` on a one-node and a two-node
Ray cluster on this machine.

About 60 images (the zoo's photos whose packages are installed, 6 to 8, each in up to 10
variants: flips, crops, rotations, scale, brightness), EfficientNet-Lite0, RISE SPEED (1000
masks; the target: the Ray path at >= 0.9x the local path's images/s) and ReciproCAM
(reported). Each round runs the three configurations
back to back (paired, the order rotated by ``--order``), each as its own ``salvo explain``
command into a fresh folder:

* ``local``: ``salvo explain …``;
* ``ray1``: ``… --ray ADDRESS`` on a one-node cluster (2 CPUs declared);
* ``ray2``: ``… --ray ADDRESS`` on a two-node cluster (2 CPUs declared per node) — on this
  2-core machine the two actors share the cores, so it cannot be faster.

The clusters run in network namespaces of their own (``tests/distributed/ray_harness.py``; as
root), started before the rounds and stopped after, by ``Cluster.shutdown()`` and process id.

Measured per command: wall seconds end to end (process start, model load and compile, Ray
connection and actor start included) and images/s from it; the run's own seconds (manifest
``summary``); the driver's CPU-seconds (user + system of the ``salvo`` process, from ``wait4``;
with ``--ray`` the cluster's work is elsewhere) and the bytes of rows sent and records received
(manifest ``runner``); and, apart, the cost of the driver's bookkeeping per record (journal,
table part, manifest rewrite) at 1 000 to 100 000 records, for the projection to many nodes.

    sudo python benchmarks/bench_ray.py [--quick] [--images 60] [--rounds 1] [--order 0]
        [--methods rise,reciprocam] [--configs local,ray1,ray2] [--out benchmarks/results/ray.json]

Writes JSON and a Markdown table beside it. Speed is never asserted here.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _common import current_rss_mb, loadavg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "distributed"))
from ray_harness import TestCluster, child_environment
from salvo.zoo import SAMPLE_IMAGES, sample_image

METHODS = {
    "rise": ["--method", "rise", "--preset", "speed"],
    "reciprocam": ["--method", "reciprocam"],
}


def make_images(folder: Path, count: int) -> list[Path]:
    """``count`` JPEGs: each zoo photo in up to 10 variants, in one sub-folder per photo."""
    variants = [
        ("orig", lambda a: a),
        ("flip", lambda a: a[:, ::-1]),
        ("crop", lambda a: a[a.shape[0] // 10: -a.shape[0] // 10,
                             a.shape[1] // 10: -a.shape[1] // 10]),
        ("rot90", lambda a: np.rot90(a)),
        ("half", lambda a: cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2),
                                      interpolation=cv2.INTER_AREA)),
        ("bright", lambda a: np.clip(a.astype(np.int16) + 40, 0, 255).astype(np.uint8)),
        ("dark", lambda a: (a * 0.6).astype(np.uint8)),
        ("left", lambda a: a[:, : a.shape[1] * 2 // 3]),
        ("rot180", lambda a: a[::-1, ::-1]),
        ("top", lambda a: a[: a.shape[0] * 2 // 3]),
    ]
    photos = {}
    for name in SAMPLE_IMAGES:  # those whose package is installed
        try:
            photos[name] = sample_image(name)
        except ModuleNotFoundError:
            continue
    written: list[Path] = []
    for vname, fn in variants:
        for photo, image in photos.items():
            if len(written) == count:
                return written
            rgb = np.ascontiguousarray(fn(image))
            path = folder / photo / f"{vname}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            written.append(path)
    return written


def run_command(prefix: list[str], argv: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run ``python -m salvo ARGV`` (after ``prefix``), measuring wall time and its CPU time and
    peak memory (``wait4``)."""
    t0 = time.perf_counter()
    # a session of its own, as the clusters have: with the kernel's autogroup scheduling each
    # session gets an equal share of a busy machine, so local and Ray runs compete alike
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "salvo", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"salvo {' '.join(argv)} took more than {timeout} s")
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"salvo {' '.join(argv)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "max_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout.strip()}


def one_run(config: str, method: str, images: Path, out: Path, clusters: dict[str, TestCluster],
            env: dict[str, str], num_images: int) -> dict:
    argv = ["explain", "zoo:efficientnet_lite0", str(images), "--recursive", "--out", str(out),
            "--targets", "top1", "--no-progress", *METHODS[method]]
    prefix: list[str] = []
    if config != "local":
        cluster = clusters[config]
        argv += ["--ray", cluster.address]
        prefix = cluster.prefix
    load_before = loadavg()
    measured = run_command(prefix, argv, env, timeout=1500)
    manifest = json.loads((out / "manifest.json").read_text())
    summary = manifest["summary"]
    assert summary["done"] == num_images and summary["failed"] == 0, summary
    runner = manifest.get("runner", {})
    written = sum(p.stat().st_size for p in out.rglob("*") if p.suffix in (".jpg", ".npy"))
    row = {
        "config": config, "method": method, "images": num_images,
        "wall_s": round(measured["wall"], 2),
        "images_per_s": round(num_images / measured["wall"], 3),
        "run_s": summary["seconds"], "run_images_per_s": summary["images_per_second"],
        "driver_cpu_s": round(measured["cpu"], 2),
        "driver_cpu_s_per_image": round(measured["cpu"] / num_images, 4),
        "driver_max_rss_mb": round(measured["max_rss_mb"], 1),
        "in_run_driver_cpu_s": runner.get("driver_cpu_seconds"),
        "sent_bytes_per_image": None if runner.get("sent_bytes") is None
        else round(runner["sent_bytes"] / num_images, 1),
        "received_bytes_per_image": None if not runner
        else round(runner["received_bytes"] / num_images, 1),
        "map_bytes_per_image": round(written / num_images),
        "workers": runner.get("workers"), "batch": runner.get("batch"),
        "load_before": load_before, "load_after": loadavg(),
    }
    print(f"  {method:10s} {config:6s} {row['wall_s']:7.1f} s  {row['images_per_s']:6.3f} img/s "
          f"(run {row['run_s']:.1f} s)  driver {row['driver_cpu_s']:.1f} CPU-s  "
          f"load {load_before}", flush=True)
    return row


def bookkeeping_cost(sizes: tuple[int, ...]) -> list[dict]:
    """CPU-seconds the driver spends on its records, without Ray: adding one record (journal
    line, table row) and one rewrite of manifest.json + a table part, at several sizes."""
    from salvo.cli.manifest import Manifest
    from salvo.cli.table import ResultsTable

    record = {"input": "/data/photos/x/{i}.jpg", "name": "x/{i}.jpg", "path": "photos/x/{i}.jpg",
              "image_size": [480, 640], "region": [0, 480, 80, 560], "output_size": [480, 480],
              "status": "done", "outputs": ["x/{i}.jpg.tabby.jpg"], "raw": [],
              "targets": [{"index": 281, "label": "tabby", "score": 9.5}], "inferences": 1001,
              "seconds": 2.5, "packed": True,
              "worker": {"host": "node-17", "node": "a" * 56, "pid": 12345},
              "top5": [{"index": i, "label": "label", "score": 1.0} for i in range(5)]}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: pyarrow's and zstd's first use
        warm = ResultsTable(Path(tmp), "rise")
        warm.add(record)
        warm.write_part()
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            manifest = Manifest(folder, {"fingerprint": "f", "parameters": {"method": "rise"}})
            table = ResultsTable(folder, "rise")
            rss0 = current_rss_mb()
            t0 = _cpu()
            for i in range(n):
                # as the driver holds them: decoded from the actor's JSON
                r = json.loads(json.dumps({**record, "input": f"/data/photos/x/{i}.jpg",
                                           "name": f"x/{i}.jpg"}))
                manifest.add(r)
                table.add(r)
            add = (_cpu() - t0) / n
            table.write_part()  # the pending rows go; the records stay in the manifest
            held_kb = (current_rss_mb() - rss0) * 1024 / n
            t0 = _cpu()
            manifest.write({"done": n}, force=True)
            rewrite = _cpu() - t0
            for i in range(n):
                table.add(manifest.images[f"/data/photos/x/{i}.jpg"])
            t0 = _cpu()
            table.write_part()
            part = (_cpu() - t0) / n
            t0 = _cpu()
            table.merge(manifest.images.values())
            merge = _cpu() - t0
            manifest_mb = (folder / "manifest.json").stat().st_size / 1e6
            manifest.close()
        rows.append({"records": n, "add_ms_per_record": round(add * 1e3, 4),
                     "manifest_rewrite_s": round(rewrite, 3),
                     "part_ms_per_record": round(part * 1e3, 4),
                     "final_merge_s": round(merge, 3), "manifest_mb": round(manifest_mb, 1),
                     "driver_kb_per_record": round(held_kb, 2)})
        print(f"  bookkeeping at {n:>7,} records: add {add * 1e3:.3f} ms/record, manifest "
              f"rewrite {rewrite:.3f} s, table part {part * 1e3:.4f} ms/record, final table "
              f"{merge:.3f} s, manifest {manifest_mb:.1f} MB, {held_kb:.2f} kB held per record",
              flush=True)
    return rows


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_markdown(path: Path, result: dict) -> None:
    title = (f"# salvo explain: local vs --ray ({result['images']} images, "
             f"EfficientNet-Lite0, {os.cpu_count()} cores)")
    load = f"load average at the start: {result['load_start']}, at the end: {result['load_end']}"
    header = ("| round | method | config | wall s | images/s | x local | run s | driver CPU-s | "
              "CPU-s/image | bytes in+out/image | map bytes/image | load before |")
    lines = [title, "", load, "", header, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        local = next((x for x in result["runs"] if x["round"] == r["round"]
                      and x["method"] == r["method"] and x["config"] == "local"), r)
        io = "" if r["received_bytes_per_image"] is None else \
            f"{(r['sent_bytes_per_image'] or 0) + r['received_bytes_per_image']:.0f}"
        lines.append(f"| {r['round']} | {r['method']} | {r['config']} | {r['wall_s']} | "
                     f"{r['images_per_s']} | {r['images_per_s'] / local['images_per_s']:.3f} | "
                     f"{r['run_s']} | {r['driver_cpu_s']} | {r['driver_cpu_s_per_image']} | "
                     f"{io} | {r.get('map_bytes_per_image', '')} | {r['load_before']} |")
    caption = ("Driver bookkeeping (no Ray): per record (journal line + table row), one "
               "rewrite of manifest.json, table part per record, the final table:")
    header = ("| records | add ms/record | manifest rewrite s | part ms/record | final table s | "
              "manifest MB | driver kB/record |")
    lines += ["", caption, "", header, "|---|---|---|---|---|---|---|"]
    for b in result["bookkeeping"]:
        lines.append(f"| {b['records']:,} | {b['add_ms_per_record']} | "
                     f"{b['manifest_rewrite_s']} | {b['part_ms_per_record']} | "
                     f"{b['final_merge_s']} | {b['manifest_mb']} | "
                     f"{b['driver_kb_per_record']} |")
    path.write_text("\n".join(lines) + "\n")


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Apply ``--quick`` (a small run whose results go to ``benchmarks/results/quick/``)."""
    if args.quick:
        args.images, args.configs, args.bookkeeping = 8, "local,ray1", "1000"
        if args.out == str(REPO / "benchmarks/results/ray.json"):
            args.out = str(REPO / "benchmarks/results/quick/ray.json")
    return args


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="8 images, local and one-node Ray, bookkeeping at 1000 records, "
                             "results in benchmarks/results/quick/")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--order", type=int, default=0, help="rotation of the first round")
    parser.add_argument("--methods", default="rise,reciprocam")
    parser.add_argument("--configs", default="local,ray1,ray2",
                        help="which of local, ray1, ray2 (to split the work over invocations)")
    parser.add_argument("--bookkeeping", default="1000,10000,100000",
                        help="record counts for the driver's bookkeeping cost ('' to skip)")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/ray.json"))
    args = finish_args(parser.parse_args(argv))
    methods = [m for m in args.methods.split(",") if m]
    work = Path(tempfile.mkdtemp(prefix="salvo-bench-ray-"))
    clusters: dict[str, TestCluster] = {}
    result: dict = {"images": args.images, "load_start": loadavg(), "runs": []}
    try:
        images = work / "images"
        make_images(images, args.images)
        print(f"{args.images} images in {images}; starting the clusters (load {loadavg()})",
              flush=True)
        configs = [c for c in args.configs.split(",") if c]
        if "ray1" in configs:
            clusters["ray1"] = TestCluster(work / "cluster1", nodes=1, cpus=2)
        if "ray2" in configs:
            clusters["ray2"] = TestCluster(work / "cluster2", nodes=2, cpus=2)
        env = child_environment()
        for rnd in range(args.rounds):
            shift = (args.order + rnd) % len(configs)
            order = configs[shift:] + configs[:shift]
            print(f"round {rnd + 1}: {' → '.join(order)}", flush=True)
            for method in methods:
                for config in order:
                    out = work / f"out-{rnd}-{method}-{config}"
                    row = one_run(config, method, images, out, clusters, env, args.images)
                    result["runs"].append({"round": rnd + 1, **row})
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        for cluster in clusters.values():
            cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    sizes = tuple(int(s) for s in args.bookkeeping.split(",") if s)
    result["bookkeeping"] = bookkeeping_cost(sizes) if sizes else []
    result["load_end"] = loadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    write_markdown(out.with_suffix(".md"), result)
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
