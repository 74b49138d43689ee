"""`salvo explain` on a detector: each map shows its box and names its class."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from salvo.cli import main


def near_white(pixels: np.ndarray) -> np.ndarray:
    return (np.asarray(pixels).reshape(-1, 3) > 200).all(axis=1)


def test_draw_detection_draws_the_scaled_box_and_caption_on_a_copy():
    from salvo.cli.detection import draw_detection

    jet = cv2.applyColorMap(np.tile(np.arange(0, 256, 2, dtype=np.uint8), (100, 1)),
                            cv2.COLORMAP_JET)[:, :, ::-1].copy()  # (100, 128, 3), never white
    assert not near_white(jet).any()
    before = jet.copy()
    drawn = draw_detection(jet, (20, 20, 40, 40), "person 0.93", input_size=(50, 64))
    np.testing.assert_array_equal(jet, before)  # the input is not modified
    # box scaled by (100 / 50, 128 / 64) = 2: from (40, 40) to (80, 80) in map pixels
    assert near_white(drawn[40, 45:75]).mean() > 0.9 and near_white(drawn[80, 45:75]).mean() > 0.9
    assert near_white(drawn[45:75, 40]).mean() > 0.9 and near_white(drawn[45:75, 80]).mean() > 0.9
    assert not near_white(drawn[50:70, 50:70]).any(), "inside the box is the map"
    assert near_white(drawn[20:38, 40:110]).sum() > 30, "the caption above the box"
    grey = draw_detection(jet[:, :, 0], (20, 20, 40, 40), "face", input_size=(50, 64))
    assert grey.ndim == 2 and (grey[40, 45:75] == 255).mean() > 0.9


@pytest.mark.slow
def test_detector_maps_show_their_box_and_the_manifest_names_the_class(tmp_path):
    from salvo.zoo import sample_image

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "grace_hopper.jpg"), sample_image("grace_hopper")[:, :, ::-1])
    out = tmp_path / "maps"
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = main(["explain", "zoo:ssdlite_person", str(photos), "--out", str(out),
                     "--no-progress", "--precision", "f32", "--preset", "speed"])
    assert code == 0, err.getvalue()
    data = json.loads((out / "manifest.json").read_text())
    (record,) = data["images"]
    in_h, in_w = data["model"]["size"]
    assert record["targets"], "at least one box"
    for target, name in zip(record["targets"], record["outputs"]):
        assert target["class"] == 1 and target["label"] == "person"
        smap = cv2.imread(str(out / name))[:, :, ::-1]
        h, w = smap.shape[:2]
        x1, y1, x2, y2 = target["box"]
        sx, sy = w / in_w, h / in_h
        left, right = round(x1 * sx), round(x2 * sx)
        top, bottom = round(y1 * sy), round(y2 * sy)
        lo, hi = top + (bottom - top) // 4, bottom - (bottom - top) // 4
        for x in (left, right):  # the vertical edges of the box are white lines
            column = smap[lo:hi, max(0, x - 2) : x + 3]
            assert near_white(column).reshape(hi - lo, -1).any(axis=1).mean() > 0.9
        assert not near_white(smap[lo:hi, left + 20 : right - 20]).mean() > 0.01
    # the report: a thumbnail of each box's map (its box drawn), one row per box, named person
    thumbs = record["thumbs"]
    assert len(thumbs["maps"]) == len(thumbs["overlays"]) == len(record["outputs"])
    for rel in thumbs["maps"]:
        small = cv2.imread(str(out / rel))
        assert small is not None and max(small.shape[:2]) == 160
        assert near_white(small[:, :, ::-1]).any(), "the box shows in the thumbnail"
    from salvo.cli.report import ROW_FIELDS, report_rows

    rows = [dict(zip(ROW_FIELDS, row)) for row in report_rows(data["images"])]
    assert [r["label"] for r in rows] == ["person"] * len(record["targets"])
    assert all(r["box"] == t["box"] for r, t in zip(rows, record["targets"]))
    assert (out / "report" / "index.html").is_file()
