"""The report's rows, thumbnails and files (salvo.cli.report), without a browser; the page itself
is tested in Chromium by tests/integration/test_report_browser.py."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from salvo.cli.report import (
    ROW_FIELDS,
    THUMB_SIZE,
    report_rows,
    thumbnail,
    write_report,
    write_thumbnails,
)

F = {name: i for i, name in enumerate(ROW_FIELDS)}


def detection_record():
    return {"input": "/p/a.jpg", "name": "a.jpg", "status": "done", "inferences": 61,
            "seconds": 0.5, "outputs": ["a.jpg.0.jpg", "a.jpg.1.jpg"],
            "targets": [{"index": 0, "score": 0.9, "class": 1, "label": "person",
                         "box": [1.0, 2.0, 30.0, 40.0]},
                        {"index": 1, "score": 0.4, "class": 3, "label": None,
                         "box": [5.0, 5.0, 9.0, 9.0]}],
            "thumbs": {"input": "report/thumbs/input/a.jpg.jpg",
                       "maps": ["report/thumbs/map/a.jpg.0.jpg", "report/thumbs/map/a.jpg.1.jpg"],
                       "overlays": [None, None]}}


def test_rows_of_detection_boxes_carry_their_class_score_box_and_thumbnails():
    rows = report_rows([detection_record()])
    assert len(rows) == 2
    first, second = ({k: row[i] for k, i in F.items()} for row in rows)
    assert (first["label"], first["class"], first["target"], first["score"]) == \
        ("person", 1, 0, 0.9)
    assert first["box"] == [1.0, 2.0, 30.0, 40.0] and first["output"] == "a.jpg.0.jpg"
    assert first["thumb_map"] == "report/thumbs/map/a.jpg.0.jpg"
    assert first["thumb_input"] == "report/thumbs/input/a.jpg.jpg"
    assert (second["label"], second["class"], second["target"]) == (None, 3, 1)
    assert second["thumb_map"] == "report/thumbs/map/a.jpg.1.jpg"


def test_rows_of_classification_failures_and_images_without_targets():
    records = [
        {"input": "/p/b.jpg", "name": "b.jpg", "status": "done", "inferences": 1,
         "seconds": 0.1, "outputs": ["b.jpg.tabby.jpg"],
         "targets": [{"index": 281, "label": "tabby", "score": 7.5}]},
        {"input": "/p/c.jpg", "name": "c.jpg", "status": "failed", "reason": "not an image"},
        {"input": "/p/d.jpg", "name": "d.jpg", "status": "done", "targets": [], "outputs": []},
    ]
    rows = report_rows(records)
    assert [r[F["name"]] for r in rows] == ["b.jpg", "c.jpg", "d.jpg"]
    assert (rows[0][F["label"]], rows[0][F["class"]], rows[0][F["score"]]) == ("tabby", 281, 7.5)
    assert rows[0][F["thumb_map"]] is None, "a record without thumbnails (--no-report run)"
    assert (rows[1][F["status"]], rows[1][F["reason"]]) == ("failed", "not an image")
    assert rows[2][F["output"]] is None and rows[2][F["target"]] is None


@pytest.mark.parametrize("shape", [(300, 200, 3), (50, 70, 3), (400, 1000), (161, 161, 3)])
def test_thumbnails_keep_the_aspect_and_are_at_most_160_pixels(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    small = thumbnail(image)
    h, w = shape[:2]
    assert max(small.shape[:2]) == min(THUMB_SIZE, max(h, w))
    assert small.ndim == image.ndim and small.dtype == np.uint8
    assert abs(small.shape[0] / small.shape[1] - h / w) < 0.02


def test_a_float_map_thumbnail_is_scaled_to_uint8():
    small = thumbnail(np.linspace(-1, 3, 200 * 100, dtype=np.float32).reshape(200, 100))
    assert small.dtype == np.uint8 and small.min() <= 1 and small.max() >= 254


def test_thumbnails_are_written_under_report_thumbs_and_overlays_blend(tmp_path):
    picture = np.zeros((120, 240, 3), np.uint8)
    picture[:, :120] = 255  # left half white
    smap = np.zeros((120, 240, 3), np.uint8)
    smap[:, :, 2] = 200  # blue map
    output = tmp_path / "sub" / "x.png.cat.jpg"
    record = write_thumbnails(tmp_path, "sub/x.png", picture, [smap], [output],
                              overlaid=False, overlay_weight=0.5)
    assert record == {"input": "report/thumbs/input/sub/x.png.jpg",
                      "maps": ["report/thumbs/map/sub/x.png.cat.jpg"],
                      "overlays": ["report/thumbs/overlay/sub/x.png.cat.jpg"]}
    over = cv2.imread(str(tmp_path / record["overlays"][0]))[:, :, ::-1].astype(int)
    assert over.shape == (80, 160, 3)
    # left: white and blue averaged; right: black and blue averaged
    assert np.allclose(over[40, 20], [128, 128, 228], atol=12)
    assert np.allclose(over[40, 140], [0, 0, 100], atol=12)
    overlaid = write_thumbnails(tmp_path, "y.png", picture, [smap], [tmp_path / "y.png.1.jpg"],
                                overlaid=True, overlay_weight=0.5)
    assert overlaid["maps"] == [None] and overlaid["overlays"] == [
        "report/thumbs/overlay/y.png.1.jpg"]
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                   if p.is_file())
    assert all(f.startswith("report/thumbs/") for f in files)


def test_the_report_replaces_the_previous_one_and_writes_only_in_report(tmp_path):
    data = {"command": ["salvo", "explain", "m.xml", "p", "--out", "o"],
            "versions": {"salvo": "x"}, "parameters": {"task": "detection"},
            "images": [detection_record()] * 1500}
    (tmp_path / "keep.txt").write_text("mine")
    write_report(tmp_path, data)
    first = sorted(p.name for p in (tmp_path / "report" / "data").iterdir())
    assert len(first) == 3, "the meta file and two shards: 1000 rows, then 2000"
    data["images"] = data["images"][:10]
    page = write_report(tmp_path, data)
    second = sorted(p.name for p in (tmp_path / "report" / "data").iterdir())
    assert len(second) == 2 and not set(first) & set(second), "the old data files are gone"
    meta = next(n for n in second if n.endswith("-meta.js"))
    assert f'src="data/{meta}"' in page.read_text()
    text = (tmp_path / "report" / "data" / meta).read_text()
    parsed = json.loads(re.fullmatch(r"var SALVO_REPORT = \{shards: \{\}, meta: (.*)\};\n", text,
                                     re.DOTALL).group(1))
    assert parsed["rows"] == 20 and parsed["command"] == "salvo explain m.xml p --out o"
    assert parsed["fields"] == list(ROW_FIELDS) and len(parsed["legend"]) == 11
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "report"]
    assert not [p for p in tmp_path.rglob(".*")], "no temporary file left"


def test_labels_and_names_are_data_not_code(tmp_path):
    record = {"input": "/p/e.jpg", "name": "</script><b>e.jpg", "status": "failed",
              "reason": "bad \u2028 line"}
    write_report(tmp_path, {"images": [record]})
    (shard,) = [p for p in (tmp_path / "report" / "data").iterdir()
                if not p.name.endswith("-meta.js")]
    text = shard.read_text()
    assert "\u2028" not in text and "\\u2028" in text
    rows = json.loads(re.fullmatch(r"SALVO_REPORT\.shard\(0, (.*)\);\n", text, re.DOTALL).group(1))
    assert rows[0][F["name"]] == "</script><b>e.jpg"
