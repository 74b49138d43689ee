"""``salvo explain --ray`` and ``salvo.distributed.explain_dataset`` on a real Ray cluster of
two one-CPU nodes started by these tests (``ray_harness.TestCluster``:
``ray.cluster_utils.Cluster`` in a network namespace of its own with only ``lo`` up, stopped with
``Cluster.shutdown()`` and by process id, the namespace deleted, also when a test fails). One-CPU
nodes are the tight case of the pool sizing: actors that reserve a node's only CPU still finish
a run of files, and a dataset read with ``read_images`` finishes because its pool reserves no
CPU. Every command has its own timeout (:data:`RUN_SECONDS`).

What is checked, against a local ``salvo explain`` of the same images with the same settings
(RISE, f32, engine batch size and requests pinned, seed fixed):

* the maps are bit-identical, with the same names, and both nodes did work;
* the results table has one row per image × target, once each, as the manifest records them;
* an actor killed mid-run is restarted and its batch redone: every image exactly once, every map
  identical, nothing half-written;
* a re-run (on Ray or locally) skips everything and rewrites no map;
* Ctrl-C on the driver leaves a manifest and a table that agree, and the re-run finishes the rest;
* the Python entry point on a Ray Dataset (``ray.data.read_images``) gives the same maps, and
  its re-run skips every row; ``--ray`` without an address starts a local Ray and gives them
  too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest
from support import require

require("ray", "pip install 'salvo-xai[ray]'", "The Ray cluster tests")
require("pyarrow", "pip install 'salvo-xai[ray]'", "The Ray cluster tests")

import pyarrow.parquet as pq
from ray_harness import TestCluster
from salvo.cli import main
from salvo.cli.table import table_rows
from salvo.testing.planted import batchable, planted_cnn, planted_image_with_object

LABELS = ["alpha", "beta", "gamma"]
NUM_IMAGES = 24
#: One setting for every run, so that one local run is the reference of all of them. The
#: engine settings and the precision are pinned: an actor's thread count is not this process's.
SETTINGS = ["--preprocess", "unit", "--method", "rise", "--num-masks", "1000", "--seed", "7",
            "--batch-size", "16", "--num-requests", "2", "--precision", "f32",
            "--targets", "top2", "--save-raw", "--recursive", "--no-progress"]
RUN_SECONDS = 300  # the longest any one command may take here

pytestmark = pytest.mark.slow  # a real cluster: 10-40 s a test on 2 cores


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A planted model, labels, and 24 photos in two folders whose file names repeat."""
    root = tmp_path_factory.mktemp("ray_data")
    planted = planted_cnn(size=56)
    ov.save_model(batchable(planted), str(root / "planted.xml"), compress_to_fp16=False)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    photos = root / "photos"
    for i in range(NUM_IMAGES):
        k = i % 3
        x = planted_image_with_object(planted, k)[0].transpose(1, 2, 0)
        rgb = cv2.resize(np.rint(x * 255).astype(np.uint8), (80, 64),
                         interpolation=cv2.INTER_NEAREST)
        rgb = rgb + np.random.default_rng(i).integers(0, 3, rgb.shape, dtype=np.uint8)
        folder = photos / ("a" if i % 2 else "b/c")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"shot{i // 2:02d}.png"), np.ascontiguousarray(rgb[:, :, ::-1]))
    return {"root": root, "model": str(root / "planted.xml"),
            "labels": str(root / "labels.txt"), "photos": photos}


def command(data, out: Path, *extra: str, photos: Path | None = None) -> list[str]:
    return ["explain", data["model"], str(photos or data["photos"]), "--out", str(out),
            "--labels", data["labels"], *SETTINGS, *extra]


def maps_in(out: Path) -> dict[str, bytes]:
    """Every map file under ``out``, the report's thumbnails too (relative path → bytes)."""
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.suffix in (".jpg", ".npy")}


def read_manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def journal_records(out: Path) -> list[dict]:
    path = out / ".salvo-journal.jsonl"
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "input" in entry:
            records.append(entry)
    return records


def consistent(out: Path) -> tuple[dict, list[dict]]:
    """Check what a finished or interrupted run leaves: the manifest, a table with exactly the
    rows of its records (each image × target once), every listed file present, no journal,
    lock, part or temporary file. Returns the manifest and the table's rows."""
    data = read_manifest(out)
    rows = pq.read_table(out / "results.parquet").to_pylist()
    method = data["parameters"]["method"]
    expected = [row for r in data["images"] for row in table_rows(r, method)]

    def key(row: dict) -> tuple:
        return (row["input"], -1 if row["target"] is None else row["target"])

    assert sorted(rows, key=key) == sorted(expected, key=key), "the table is the manifest's view"
    assert len({key(r) for r in rows}) == len(rows), "no image × target twice"
    assert len({r["input"] for r in data["images"]}) == len(data["images"])
    for r in data["images"]:
        for name in r.get("outputs", []) + r.get("raw", []):
            assert (out / name).is_file(), name
    hidden = sorted(p.relative_to(out).as_posix() for p in out.rglob(".*"))
    assert hidden == [], f"journal, lock, table parts or temporary files left: {hidden}"
    return data, rows


def comparable(rows: list[dict]) -> list[tuple]:
    """Table rows without what differs between runs (time, host, node, process, status)."""
    drop = {"seconds", "host", "node", "pid", "status"}
    return sorted(tuple(sorted((k, v) for k, v in r.items() if k not in drop)) for r in rows)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The local run: maps and table every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("ray_reference") / "maps"
    assert main(command(data, out)) == 0
    manifest, rows = consistent(out)
    assert len(rows) == 2 * NUM_IMAGES
    return {"out": out, "maps": maps_in(out), "manifest": manifest, "rows": rows}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray_cluster")
    started = TestCluster(folder, nodes=2, cpus=1)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def ray_run(data, cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_run") / "maps"
    done = cluster.run(["-m", "salvo", *command(data, out, "--ray", cluster.address)],
                       timeout=RUN_SECONDS)
    assert done.returncode == 0, done.stderr
    assert f"{NUM_IMAGES} done, 0 skipped, 0 failed" in done.stdout
    return out


# ------------------------------------------------------------------------------ the tests


def test_ray_maps_are_the_local_maps_and_the_table_is_complete(ray_run, reference):
    out = ray_run
    assert maps_in(out) == reference["maps"], "the same files, bit for bit"
    manifest, rows = consistent(out)
    local = {r["input"]: r for r in reference["manifest"]["images"]}
    for r in manifest["images"]:
        mine = local[r["input"]]
        for field in ("name", "outputs", "raw", "targets", "top5", "inferences", "image_size"):
            assert r[field] == mine[field], (r["input"], field)
    assert len(rows) == 2 * NUM_IMAGES
    assert comparable(rows) == comparable(reference["rows"])
    nodes = {r["node"] for r in rows}
    assert len(nodes) == 2 and None not in nodes, "both nodes explained images"
    runner = manifest["runner"]
    assert runner["nodes"] == 2 and runner["workers"] == 2
    assert runner["records"] == NUM_IMAGES and runner["received_bytes"] > 0


def test_a_rerun_skips_everything_on_ray_and_locally(ray_run, data, cluster, tmp_path):
    out = tmp_path / "maps"
    shutil.copytree(ray_run, out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".jpg", ".npy")}
    again = cluster.run(["-m", "salvo", *command(data, out, "--ray", cluster.address)],
                        timeout=RUN_SECONDS)
    assert again.returncode == 0, again.stderr
    assert f"0 done, {NUM_IMAGES} skipped, 0 failed" in again.stdout
    _, rows = consistent(out)
    assert {r["status"] for r in rows} == {"skipped"} and len(rows) == 2 * NUM_IMAGES
    assert main(command(data, out)) == 0, "the local run shares the fingerprint"
    manifest, rows = consistent(out)
    assert manifest["summary"]["skipped"] == NUM_IMAGES and manifest["summary"]["done"] == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "no map was rewritten"


def test_a_killed_actor_is_restarted_and_nothing_is_lost_or_doubled(data, cluster, reference,
                                                                     tmp_path):
    out = tmp_path / "maps"
    driver = cluster.start(["-m", "salvo", *command(data, out, "--ray", cluster.address,
                                                     "--ray-batch", "2")])
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while not journal_records(out):
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "no image was recorded in time"
            time.sleep(0.05)
        victim = journal_records(out)[0]["worker"]["pid"]
        assert victim in cluster.pids(), "the actor is a process of the test's cluster"
        os.kill(victim, signal.SIGKILL)
        recorded_at_kill = len(journal_records(out))
        stdout, stderr = driver.communicate(timeout=RUN_SECONDS)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert recorded_at_kill < NUM_IMAGES, "the actor was killed mid-run"
    assert driver.returncode == 0, stderr
    assert f"{NUM_IMAGES} done, 0 skipped, 0 failed" in stdout
    manifest, rows = consistent(out)
    assert len(manifest["images"]) == NUM_IMAGES and len(rows) == 2 * NUM_IMAGES
    pids = {r["worker"]["pid"] for r in manifest["images"]}
    assert len(pids) >= 3, f"a restarted actor (a new process) took over: {pids}"
    assert maps_in(out) == reference["maps"], "every map whole and the same as locally"


def test_ctrl_c_leaves_a_consistent_table_and_the_rerun_finishes(data, cluster, reference,
                                                                 tmp_path, capsys):
    out = tmp_path / "maps"
    driver = cluster.start(["-m", "salvo", *command(data, out, "--ray", cluster.address,
                                                     "--ray-batch", "2")])
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while not journal_records(out):
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "no image was recorded in time"
            time.sleep(0.05)
        os.kill(driver.pid, signal.SIGINT)
        stdout, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 130, (stdout, stderr)
    assert "salvo: interrupted" in stderr
    manifest, rows = consistent(out)
    done = [r for r in manifest["images"] if r["status"] == "done"]
    assert 0 < len(done) < NUM_IMAGES and len(done) == len(manifest["images"])
    assert manifest["summary"]["complete"] is False
    assert len(rows) == 2 * len(done)
    for r in done:
        for name in r["outputs"] + r["raw"]:
            assert (out / name).read_bytes() == reference["maps"][name], name
    # the re-run (here a local one: the plan of what to skip is the driver's, the same code
    # for both; a re-run on Ray is test_a_rerun_skips_everything_on_ray_and_locally)
    assert main(command(data, out)) == 0
    assert f"{NUM_IMAGES - len(done)} done, {len(done)} skipped, 0 failed" in capsys.readouterr().out
    manifest, rows = consistent(out)
    assert len(rows) == 2 * NUM_IMAGES and manifest["summary"]["complete"] is True
    assert maps_in(out) == reference["maps"]


DATASET_SCRIPT = """
import json, sys
import ray
from salvo.distributed import explain_dataset

cfg = json.loads(sys.argv[1])
ray.init(address=cfg["address"], logging_level="WARNING", log_to_driver=False)
ds = ray.data.read_images(cfg["photos"], include_paths=True, mode="RGB")
reports = [explain_dataset(cfg["model"], ds, cfg["out"], root=cfg["photos"], **cfg["options"])
           for _ in range(2)]
print(json.dumps([[r.done, r.skipped, r.failed, r.exit_status] for r in reports]))
ray.shutdown()
"""


def test_the_python_entry_point_on_a_ray_dataset(data, cluster, reference, tmp_path):
    """``read_images`` needs a whole CPU per read task: on one-CPU nodes the pool reserves none
    (a pool leaving the reads no CPU waits for ever), says so, and the run finishes."""
    out = tmp_path / "maps"
    script = tmp_path / "dataset_run.py"
    script.write_text(DATASET_SCRIPT)
    options = {"labels": data["labels"], "preprocess": "unit", "method": "rise",
               "num_masks": 1000, "seed": 7, "batch_size": 16, "num_requests": 2,
               "precision": "f32", "targets": "top2", "save_raw": True, "no_progress": True}
    cfg = {"photos": str(data["photos"]), "model": data["model"], "out": str(out),
           "options": options, "address": cluster.address}
    done = cluster.run([str(script), json.dumps(cfg)], timeout=RUN_SECONDS)
    assert done.returncode == 0, done.stderr
    assert "the actors reserve no CPU" in done.stderr
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    assert first == [NUM_IMAGES, 0, 0, 0]
    assert second == [0, NUM_IMAGES, 0, 0], "the re-run skipped every row"
    assert maps_in(out) == reference["maps"], "named after the path under root, same bytes"
    _, rows = consistent(out)
    assert comparable(rows) == comparable(reference["rows"])


def test_ray_without_an_address_starts_a_local_ray(data, cluster, reference, tmp_path):
    out = tmp_path / "maps"
    done = cluster.run(["-m", "salvo", *command(data, out, "--ray",
                                                 photos=data["photos"] / "a")],
                       timeout=RUN_SECONDS)
    assert done.returncode == 0, done.stderr
    assert f"{NUM_IMAGES // 2} done" in done.stdout
    expected = {name[2:]: blob for name, blob in reference["maps"].items()
                if name.startswith("a/")}
    thumbs = "report/thumbs/"  # the report's thumbnails mirror the outputs: input/a/…, map/a/…
    for name, blob in reference["maps"].items():
        kind, _, rest = name.removeprefix(thumbs).partition("/")
        if name.startswith(thumbs) and rest.startswith("a/"):
            expected[f"{thumbs}{kind}/{rest[2:]}"] = blob
    assert any(name.startswith(thumbs) for name in expected)
    assert maps_in(out) == expected
    manifest, _ = consistent(out)
    assert manifest["runner"]["address"] is None and manifest["runner"]["nodes"] == 1


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30,
                            check=True)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}


def _gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def test_a_cluster_that_fails_to_start_leaves_no_process_and_no_namespace(tmp_path,
                                                                          monkeypatch):
    """The harness's own cleanup on failure: a cluster given no time to start raises, and the
    process it started and every process that was in its namespace are gone, and so is the
    namespace."""
    closed: list[tuple[TestCluster, list[int]]] = []
    real_close = TestCluster.close

    def close(self):
        inside = self.pids()
        closed.append((self, inside))
        return real_close(self)

    monkeypatch.setattr(TestCluster, "close", close)
    before = _namespaces()
    with pytest.raises(TimeoutError, match=r"did not start in 1\.5 s"):
        TestCluster(tmp_path / "cluster", nodes=2, cpus=1, timeout=1.5)
    [(cluster, inside)] = closed
    assert cluster.process is not None and cluster.process.pid in inside, \
        "the cluster's process ran inside the namespace"
    assert cluster.process.returncode is not None
    assert all(_gone(pid) for pid in inside), inside
    assert cluster.netns.name not in _namespaces() and _namespaces() <= before
