"""`salvo explain` and `salvo bench` end to end (planted model, the zoo's EfficientNet-Lite0)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest
import salvo
from salvo.cli import main
from salvo.testing.planted import batchable, planted_image_with_object

F32 = ["--precision", "f32"]
LABELS = ["alpha", "beta", "gamma"]
H, W = 84, 112  # input photos: not square, so a transposed map or a wrong size shows


@pytest.fixture(scope="module")
def files(planted, tmp_path_factory):
    """A planted model file, a labels file, and a folder: one photo per class + a corrupt one."""
    root = tmp_path_factory.mktemp("cli")
    model_path = root / "planted.xml"
    ov.save_model(batchable(planted), str(model_path), compress_to_fp16=False)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    photos = root / "photos"
    photos.mkdir()
    for k in range(3):
        x = planted_image_with_object(planted, k)[0].transpose(1, 2, 0)  # (56, 56, 3) in [0, 1]
        rgb = cv2.resize(np.rint(x * 255).astype(np.uint8), (W, H),
                         interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(photos / f"shot{k}.png"), rgb[:, :, ::-1])
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    return {"root": root, "model": str(model_path), "labels": str(root / "labels.txt"),
            "photos": photos}


def rise_args(files, out, *extra):
    return ["explain", files["model"], str(files["photos"]), "--out", str(out),
            "--method", "rise", "--num-masks", "64", "--num-cells", "7",
            "--preprocess", "unit", "--labels", files["labels"], "--no-progress", *F32, *extra]


def peak(m):
    return np.unravel_index(np.asarray(m).argmax(), np.asarray(m).shape)


def in_region(yx, region):
    y0, y1, x0, x1 = region
    return y0 <= yx[0] < y1 and x0 <= yx[1] < x1


@pytest.fixture(scope="module")
def first_run(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "maps"
    import contextlib
    import io

    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = main(rise_args(files, out, "--save-raw"))
    return {"out": out, "code": code, "stderr": err.getvalue(), "stdout": std.getvalue()}


# ------------------------------------------------------------------------------ explain


def test_outputs_are_named_after_input_and_label_with_the_input_size(first_run, planted):
    out = first_run["out"]
    assert first_run["code"] == 1, "a failed image makes the exit status non-zero"
    names = sorted(p.name for p in out.iterdir())
    expected = sorted([f"shot{k}.png.{LABELS[k]}.{ext}" for k in range(3) for ext in ("jpg", "npy")]
                      + ["manifest.json", "report", "results.parquet"])
    assert names == expected, "top1 is the planted class of each photo; nothing else written"
    for k in range(3):
        picture = cv2.imread(str(out / f"shot{k}.png.{LABELS[k]}.jpg"))
        assert picture.shape == (H, W, 3)
        raw = np.load(out / f"shot{k}.png.{LABELS[k]}.npy")
        assert raw.shape == (56, 56) and raw.dtype == np.float32
        assert len(np.unique(raw)) > 256, "unscaled floats, not a uint8 map"
        yx = peak(raw)
        assert in_region(yx, planted.regions[k])
        assert not any(in_region(yx, planted.regions[j]) for j in range(3) if j != k)


def test_a_corrupt_image_is_reported_and_the_rest_finish(first_run):
    err = first_run["stderr"]
    assert "corrupt.jpg" in err and "not an image" in err
    assert "Traceback" not in err
    assert "3 done, 0 skipped, 1 failed" in first_run["stdout"]


def test_manifest_is_complete(first_run, files):
    data = json.loads((first_run["out"] / "manifest.json").read_text())
    assert data["command"][:3] == ["salvo", "explain", files["model"]]
    assert data["versions"]["salvo"] == salvo.__version__
    assert data["versions"]["openvino"] == ov.get_version()
    assert data["device"]["requested"] == "CPU"
    params = data["parameters"]
    assert params["method"] == "rise" and params["mode"] == "blackbox"
    assert params["method_kwargs"] == {"num_masks": 64, "num_cells": 7, "precision": "f32"}
    assert params["targets"] == "top1" and params["preprocess"]["name"] == "unit"
    assert data["summary"]["done"] == 3 and data["summary"]["failed"] == 1
    records = {Path(r["input"]).name: r for r in data["images"]}
    assert records["corrupt.jpg"]["status"] == "failed"
    assert "not an image" in records["corrupt.jpg"]["reason"]
    for k in range(3):
        r = records[f"shot{k}.png"]
        assert r["status"] == "done" and r["outputs"] == [f"shot{k}.png.{LABELS[k]}.jpg"]
        assert r["raw"] == [f"shot{k}.png.{LABELS[k]}.npy"]
        (target,) = r["targets"]
        assert target["index"] == k and target["label"] == LABELS[k]
        assert target["score"] == pytest.approx(0.9, abs=0.05)  # logit = region mean + bias
        assert r["top5"][0]["index"] == k and r["top5"][0]["score"] == target["score"]
        assert r["inferences"] == 65 and r["seconds"] > 0
        assert r["image_size"] == [H, W] and r["region"] == [0, H, 0, W]
    assert not list(first_run["out"].glob(".*")), "no temporary files left"


def test_rerun_skips_and_force_redoes(first_run, files, capsys):
    out = first_run["out"]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shot*")}
    assert main(rise_args(files, out, "--save-raw")) == 1
    assert "0 done, 3 skipped, 1 failed" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shot*")} == before
    data = json.loads((out / "manifest.json").read_text())
    assert sorted(r["status"] for r in data["images"]) == ["failed", "skipped", "skipped",
                                                           "skipped"]
    # other settings are not "the same command": nothing is skipped
    assert main(rise_args(files, out, "--save-raw", "--seed", "5")) == 1
    assert "3 done, 0 skipped" in capsys.readouterr().out
    assert main(rise_args(files, out, "--save-raw", "--seed", "5", "--force")) == 1
    assert "3 done, 0 skipped" in capsys.readouterr().out


def test_packing_does_not_change_the_maps(files, tmp_path, capsys):
    packed, alone = tmp_path / "packed", tmp_path / "one_by_one"
    assert main(rise_args(files, packed, "--save-raw", "--seed", "3", "--batch-size", "24")) == 1
    assert main(rise_args(files, alone, "--save-raw", "--seed", "3", "--no-pack",
                          "--batch-size", "5")) == 1
    capsys.readouterr()
    flags = {out: [r.get("packed") for r in json.loads((out / "manifest.json").read_text())
                   ["images"] if r["status"] == "done"] for out in (packed, alone)}
    assert flags == {packed: [True] * 3, alone: [False] * 3}
    for k in range(3):
        name = f"shot{k}.png.{LABELS[k]}.npy"
        np.testing.assert_array_equal(np.load(alone / name), np.load(packed / name))


def test_whitebox_grey_maps_at_method_resolution(files, tmp_path, capsys):
    out = tmp_path / "wb"
    args = ["explain", files["model"], str(files["photos"] / "shot1.png"), "--out", str(out),
            "--mode", "whitebox", "--preprocess", "unit", "--targets", "0,gamma",
            "--labels", files["labels"], "--no-resize", "--no-colormap", "--no-progress", *F32]
    assert main(args) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.glob("*.jpg")) == ["shot1.png.alpha.jpg", "shot1.png.gamma.jpg"]
    grey = cv2.imread(str(out / "shot1.png.gamma.jpg"), cv2.IMREAD_UNCHANGED)
    assert grey.shape == (7, 7)
    data = json.loads((out / "manifest.json").read_text())
    assert data["parameters"]["method"] == "reciprocam"
    assert [t["index"] for t in data["images"][0]["targets"]] == [0, 2]


def test_top1_on_the_zoo_model_is_the_models_own_prediction(tmp_path, capsys):
    from salvo.zoo import efficientnet_lite0, efficientnet_lite0_preprocess, sample_image

    photos = tmp_path / "photos"
    photos.mkdir()
    plain = ov.Core().compile_model(efficientnet_lite0(), "CPU",
                                    {"INFERENCE_PRECISION_HINT": "f32"})
    expected = {}
    for name in ("coffee", "chelsea"):
        cv2.imwrite(str(photos / f"{name}.jpg"), sample_image(name)[:, :, ::-1])
        decoded = cv2.imread(str(photos / f"{name}.jpg"))[:, :, ::-1].copy()
        expected[name] = int(np.argmax(plain(efficientnet_lite0_preprocess(decoded))[0]))
    assert expected["coffee"] != expected["chelsea"]
    out = tmp_path / "maps"
    code = main(["explain", "zoo:efficientnet_lite0", str(photos / "*.jpg"), "--out", str(out),
                 "--mode", "whitebox", "--labels", "zoo:imagenet", "--overlay",
                 "--no-progress", *F32])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "manifest.json").read_text())
    for record in data["images"]:
        name = Path(record["input"]).stem
        (target,) = record["targets"]
        assert target["index"] == expected[name]
        (jpg,) = record["outputs"]
        assert jpg.startswith(f"{name}.jpg.") and " " not in jpg
        y0, y1, x0, x1 = record["region"]  # the centre crop (87.5 % of the short side)
        assert y1 - y0 == x1 - x0 == round(0.875 * min(record["image_size"]))
        assert cv2.imread(str(out / jpg)).shape == (y1 - y0, x1 - x0, 3)


# ------------------------------------------------------------------------------ bad input


def _expect_error(capsys, args, code, *fragments):
    assert main(args) == code
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.startswith("salvo: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_input_is_one_clear_line_and_leaves_nothing(files, tmp_path, capsys):
    photo = str(files["photos"] / "shot0.png")
    out = tmp_path / "never"
    not_a_model = tmp_path / "model.xml"
    not_a_model.write_text("hello")
    _expect_error(capsys, ["explain", str(not_a_model), photo, "--out", str(out)], 1,
                  "not a model OpenVINO can read")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(out),
                           "--device", "NOSUCHDEVICE"], 1, "not available", "CPU")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(out), "--overlay",
                           "--no-resize"], 2, "--overlay", "--no-resize")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(out), "--mode",
                           "whitebox", "--method", "rise"], 2, "contradicts")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(out), "--targets",
                           "beta"], 2, "--labels")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(out), "--targets",
                           "5", "--preprocess", "unit"], 2, "class index 5 is out of range")
    _expect_error(capsys, ["explain", files["model"], str(tmp_path / "missing.png"), "--out",
                           str(out)], 2, "no such file")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(out), "--preprocess",
                           "size=224"], 2, "contradicts the model input")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(out), "--param",
                           "num_maskz=4", "--preprocess", "unit"], 1, "num_maskz")
    assert not out.exists(), "a failed command created its output folder"
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(blocker)], 2,
                  "not a folder")
    _expect_error(capsys, ["explain", files["model"], photo, "--out", str(blocker / "sub")],
                  2, "is a file")
    assert blocker.read_text() == "in the way"


def test_only_bad_images_fail_with_a_reason(files, tmp_path, capsys):
    out = tmp_path / "bad"
    code = main(["explain", files["model"], str(files["photos"] / "corrupt.jpg"), "--out",
                 str(out), "--preprocess", "unit", "--no-progress", *F32])
    assert code == 1
    assert "0 done, 0 skipped, 1 failed" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report", "results.parquet"]
    assert not (out / "report" / "thumbs").exists(), "no thumbnail of an image never read"


def test_no_report_writes_no_report_and_no_thumbnails(files, tmp_path, capsys):
    out = tmp_path / "plain"
    code = main(["explain", files["model"], str(files["photos"] / "shot0.png"), "--out",
                 str(out), "--preprocess", "unit", "--no-progress", "--no-report", *F32])
    assert code == 0
    assert "index.html" not in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "results.parquet",
                                                     "shot0.png.0.jpg"]
    (record,) = json.loads((out / "manifest.json").read_text())["images"]
    assert "thumbs" not in record


@pytest.mark.parametrize("method", ["rise", "aise"])
def test_blackbox_methods_are_reached_through_method(files, tmp_path, capsys, method):
    from salvo.common import Method, Task
    from salvo.methods.factory import REGISTRY

    out = tmp_path / method
    args = ["explain", files["model"], str(files["photos"] / "shot2.png"), "--out", str(out),
            "--method", method, "--preset", "speed", "--preprocess", "unit", "--no-progress",
            *F32]
    if (Method(method), Task.CLASSIFICATION) not in REGISTRY:
        _expect_error(capsys, args, 1, "not available")
        return
    assert main(args) == 0, capsys.readouterr().err
    data = json.loads((out / "manifest.json").read_text())
    assert data["parameters"]["method"] == method
    (record,) = data["images"]
    assert record["targets"][0]["index"] == 2 and record["inferences"] > 1


# ------------------------------------------------------------------------------ help, bench


def test_help_is_complete(capsys):
    for argv, words in [
        (["--help"], ["explain", "bench", "demo", "info"]),
        (["explain", "--help"], ["--targets", "top1", "--preprocess", "imagenet", "lite0",
                                 "--save-raw", "--force", "manifest.json", "--num-masks",
                                 "--param", "--device", "--overlay", "exit status"]),
        (["bench", "--help"], ["--devices", "--methods", "--presets", "--quick",
                               "--compare-reference", "bench.json", "bound"]),
    ]:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        text = capsys.readouterr().out
        for word in words:
            assert word in text, (argv, word)


@pytest.mark.slow
def test_bench_quick_writes_json_markdown_and_chart(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "s/explanation" in printed and "reciprocam" in printed and str(out) in printed
    data = json.loads((out / "bench.json").read_text())
    cpu = data["devices"]["CPU"]
    inference = cpu["inference"]
    assert inference["sync"] > 0 and inference["bound"] > 0 and inference["engine"] > 0
    rows = {r["method"]: r for r in cpu["methods"]}
    assert rows["reciprocam"]["inferences"] == 1
    assert rows["rise"]["inferences"] == 129 and rows["rise"]["preset"] == "speed"  # quick: 128
    for r in rows.values():
        assert r["wall_s"] > 0 and r["x_bound"] > 0 and r["compile_s"] >= 0
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| CPU | rise/speed (128 masks)" in (out / "bench.md").read_text()
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_reliability_is_in_the_manifest_table_and_summary(files, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet", reason="pip install pyarrow")
    out = tmp_path / "rel"
    args = rise_args(files, out)
    args[args.index("--num-masks") + 1] = "4096"
    assert main([*args, "--target-reliability", "0.9"]) == 1  # the corrupt photo fails
    stdout = capsys.readouterr().out
    data = json.loads((out / "manifest.json").read_text())
    done = [r for r in data["images"] if r["status"] == "done"]
    assert len(done) == 3
    values = []
    for record in done:
        (target,) = record["targets"]
        assert 0.9 <= target["reliability"] <= 1.0
        assert record["inferences"] < 4097  # it stopped at the requested reliability
        values.append(target["reliability"])
    table = pq.read_table(out / "results.parquet").to_pylist()
    got = sorted(row["reliability"] for row in table if row["status"] == "done")
    assert got == sorted(values)
    assert f"map reliability median {float(np.median(values)):.3f}" in stdout


def test_target_reliability_with_all_classes_says_it_waits_for_every_class(tmp_path, capsys):
    from openvino import opset13 as ops

    x = ops.parameter([-1, 3, 16, 16], np.float32, name="x")
    flat = ops.reshape(x, ops.constant(np.array([-1, 768], np.int64)), False)
    weights = np.random.default_rng(0).normal(size=(768, 20)).astype(np.float32)
    scores = ops.matmul(flat, ops.constant(weights), False, False)
    model = tmp_path / "twenty.xml"
    ov.save_model(ov.Model([ops.result(scores)], [x], "twenty"), str(model),
                  compress_to_fp16=False)
    photo = tmp_path / "in" / "a.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.random.default_rng(1).integers(0, 256, (16, 16, 3), np.uint8))
    said = "--target-reliability waits for every explained class, and --targets all explains 20:"
    for targets, warned in (("all", True), ("top2", False)):
        out = tmp_path / f"out_{targets}"
        assert main(["explain", str(model), str(photo), "--out", str(out), "--method", "rise",
                     "--num-masks", "64", "--num-cells", "4", "--preprocess", "unit",
                     "--targets", targets, "--target-reliability", "0.9", "--no-progress",
                     *F32]) == 0
        assert (said in capsys.readouterr().err) is warned
