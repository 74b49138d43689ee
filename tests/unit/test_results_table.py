"""``results.parquet`` (salvo.cli.table): the rows of a manifest record, part files and the
atomic merge, the table ``salvo explain`` writes, and a run without pyarrow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest
import salvo
from salvo.cli import main
from salvo.cli.table import (
    COLUMNS,
    NO_PYARROW_NOTE,
    PARTS,
    TABLE,
    ResultsTable,
    schema,
    table_rows,
)
from salvo.testing.planted import batchable, planted_cnn, planted_image_with_object
from support import require

require("pyarrow", "pip install 'salvo-xai[table]'", "The results table tests")

import pyarrow.parquet as pq

# child processes import the salvo these tests import (a checkout's or an installed one)
SALVO_PARENT = str(Path(salvo.__file__).resolve().parents[1])
WORKER = {"host": "h", "node": None, "pid": 7}
DONE = {"input": "/p/a.png", "name": "a.png", "path": "p/a.png", "status": "done",
        "image_size": [64, 80], "outputs": ["a.png.cat.jpg", "a.png.dog.jpg"],
        "raw": ["a.png.cat.npy", "a.png.dog.npy"],
        "targets": [{"index": 3, "label": "cat", "score": 0.5},
                    {"index": 9, "label": "dog", "score": None}],
        "inferences": 1001, "seconds": 1.25, "worker": WORKER}


def test_a_done_record_gives_one_row_per_target_with_its_own_files():
    rows = table_rows(DONE, "rise")
    assert [(r["target"], r["label"], r["score"], r["output"], r["raw_output"]) for r in rows] \
        == [(3, "cat", 0.5, "a.png.cat.jpg", "a.png.cat.npy"),
            (9, "dog", None, "a.png.dog.jpg", "a.png.dog.npy")]
    for r in rows:
        assert set(r) == {name for name, _ in COLUMNS}
        assert (r["image_height"], r["image_width"], r["inferences"], r["seconds"]) == \
            (64, 80, 1001, 1.25)
        assert (r["method"], r["host"], r["node"], r["pid"], r["error"]) == \
            ("rise", "h", None, 7, None)


def test_a_failed_record_gives_one_row_without_target():
    (row,) = table_rows({"input": "/p/b.png", "name": "b.png", "path": "b.png",
                         "status": "failed", "reason": "cannot decode"}, "rise")
    assert row["status"] == "failed" and row["error"] == "cannot decode"
    assert row["target"] is None and row["output"] is None and row["image_height"] is None


def test_detection_and_per_image_targets():
    record = {**DONE, "outputs": ["x.0.jpg", "x.per_image_map.jpg"], "raw": [],
              "targets": [{"index": 0, "score": 0.9, "class": 1, "label": "person",
                           "box": [1, 2, 30, 40]},
                          {"index": "per_image_map", "label": None, "score": None}]}
    box, per_image = table_rows(record, "drise")
    assert (box["target"], box["box_class"], box["label"], box["box"]) == \
        (0, 1, "person", [1.0, 2.0, 30.0, 40.0])
    assert per_image["target"] is None and per_image["label"] == "per_image_map"
    assert per_image["output"] == "x.per_image_map.jpg" and per_image["raw_output"] is None


def test_parts_are_written_atomically_and_the_merge_replaces_them(tmp_path):
    table = ResultsTable(tmp_path, "rise")
    assert table.write_part() is None, "nothing queued, no part"
    table.add(DONE)
    part = table.write_part()
    assert part is not None and part.parent == tmp_path / PARTS
    assert pq.read_table(part).num_rows == 2
    table.add({**DONE, "input": "/p/c.png", "name": "c.png"})
    second = table.write_part()
    assert second != part and pq.read_table(second).num_rows == 2
    records = [DONE, {"input": "/p/b.png", "name": "b.png", "status": "failed", "reason": "x"}]
    path = table.merge(records)
    assert path == tmp_path / TABLE and not (tmp_path / PARTS).exists()
    merged = pq.read_table(path)
    assert merged.schema.names == [name for name, _ in COLUMNS]
    assert merged.schema.equals(schema()), "the declared types, whatever the rows hold"
    assert merged.to_pylist() == table_rows(records[0], "rise") + table_rows(records[1], "rise")
    assert [p.name for p in tmp_path.iterdir()] == [TABLE], "no temporary file left"


# ------------------------------------------------------------------ salvo explain's table


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    planted = planted_cnn(size=56)
    ov.save_model(batchable(planted), str(root / "planted.xml"), compress_to_fp16=False)
    (root / "labels.txt").write_text("alpha\nbeta\ngamma\n")
    photos = root / "photos"
    photos.mkdir()
    for k in range(3):
        x = planted_image_with_object(planted, k)[0].transpose(1, 2, 0)
        cv2.imwrite(str(photos / f"shot{k}.png"),
                    np.ascontiguousarray(np.rint(x * 255).astype(np.uint8)[:, :, ::-1]))
    (photos / "broken.png").write_bytes(b"not a png")
    return {"model": str(root / "planted.xml"), "labels": str(root / "labels.txt"),
            "photos": str(photos)}


def explain(files, out, *extra):
    return ["explain", files["model"], files["photos"], "--out", str(out), "--mode",
            "whitebox", "--preprocess", "unit", "--labels", files["labels"], "--targets",
            "top2", "--precision", "f32", "--no-progress", *extra]


def test_salvo_explain_writes_the_table_of_its_manifest(files, tmp_path, capsys):
    out = tmp_path / "maps"
    assert main(explain(files, out)) == 1, "the broken image fails"
    manifest = json.loads((out / "manifest.json").read_text())
    rows = pq.read_table(out / TABLE).to_pylist()
    assert len(rows) == 3 * 2 + 1, "two targets for each of 3 photos, one row for the failure"
    expected = [r for rec in manifest["images"] for r in table_rows(rec, "reciprocam")]
    assert rows == expected
    for k in range(3):  # top2, best first: the planted class of each photo leads
        assert next(r["target"] for r in rows if r["name"] == f"shot{k}.png") == k
    for r in rows:
        if r["status"] == "done":
            assert (out / r["output"]).is_file()
            assert r["pid"] == os.getpid() and r["node"] is None
    assert f"table {out / TABLE}" in capsys.readouterr().out
    assert main(explain(files, out)) == 1
    again = pq.read_table(out / TABLE).to_pylist()

    def status_of(r: dict, status: str) -> tuple:
        return (r["name"], -1 if r["target"] is None else r["target"], status)

    assert sorted(status_of(r, r["status"]) for r in again) == sorted(
        status_of(r, "failed" if r["status"] == "failed" else "skipped") for r in rows), \
        "the re-run's table: the same rows, skipped"


NO_PYARROW = """
import sys
sys.modules["pyarrow"] = None  # import pyarrow raises ImportError
from salvo.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_pyarrow_the_run_works_without_a_table_and_says_so_once(files, tmp_path):
    out = tmp_path / "maps"
    assert main(explain(files, out)) == 1
    assert (out / TABLE).is_file()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SALVO_PARENT,
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", NO_PYARROW, *explain(files, out, "--force")],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count(NO_PYARROW_NOTE) == 1
    assert "removed" in done.stderr and not (out / TABLE).exists(), \
        "a table the manifest no longer matches is not left behind"
    assert "3 done, 0 skipped, 1 failed" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["images"]) == 4


def test_a_table_that_cannot_be_written_leaves_the_manifest_and_no_stale_table(
        files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "maps"
    assert main(explain(files, out)) == 1
    assert (out / TABLE).is_file()

    def refuse(self, records):
        raise ValueError("a value pyarrow refuses")

    monkeypatch.setattr(ResultsTable, "merge", refuse)
    assert main(explain(files, out, "--force")) == 1, "the run itself is not failed by it"
    err = capsys.readouterr().err
    assert "could not write the results table: a value pyarrow refuses" in err
    assert not (out / TABLE).exists(), "the earlier table no longer matches: removed"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["done"] == 3
