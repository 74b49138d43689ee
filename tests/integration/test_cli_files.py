"""`salvo explain` files: output names, mirrored folders, --out inside the inputs, symbolic-link
loops, messages and exit codes, a kill mid-run and two runs at once (planted model)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import salvo
from salvo.cli import main
from salvo.testing.planted import batchable, planted_image_with_object

F32 = ["--precision", "f32"]
LABELS = ["alpha", "beta", "gamma"]
# child processes import the salvo this process imports (the source tree or an install)
SALVO_PARENT = str(Path(salvo.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def model_files(planted, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_files")
    model_path = root / "planted.xml"
    ov.save_model(batchable(planted), str(model_path), compress_to_fp16=False)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return {"model": str(model_path), "labels": str(root / "labels.txt"), "root": root}


def photo(planted, k: int, seed: int = 0) -> np.ndarray:
    """A 64x80 BGR photo with the planted object of class k (plus a little noise)."""
    x = planted_image_with_object(planted, k)[0].transpose(1, 2, 0)
    rgb = cv2.resize(np.rint(x * 255).astype(np.uint8), (80, 64), interpolation=cv2.INTER_NEAREST)
    noise = np.random.default_rng(seed).integers(0, 3, rgb.shape, dtype=np.uint8)
    return np.ascontiguousarray((rgb + noise)[:, :, ::-1])


def write_photo(path: Path, planted, k: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), photo(planted, k, seed))
    return path


def run(args, capsys=None):
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = main(args)
    return code, std.getvalue(), err.getvalue()


def explain_args(model_files, inputs, out, *extra):
    return ["explain", model_files["model"], *map(str, inputs), "--out", str(out),
            "--mode", "whitebox", "--preprocess", "unit", "--labels", model_files["labels"],
            "--no-progress", *F32, *extra]


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def files_under(root: Path, report: bool = False) -> list[str]:
    """Files under ``root`` (relative POSIX paths); those of ``report/`` only if ``report``."""
    names = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(n for n in names if report or not n.startswith("report/"))


def outputs_of(data: dict, root: Path) -> dict[str, list[str]]:
    """{input path relative to root: its outputs}."""
    return {Path(r["input"]).relative_to(root.resolve()).as_posix(): r.get("outputs", [])
            for r in data["images"]}


# --------------------------------------------------------------------------- output names


def test_two_images_whose_names_and_labels_concatenate_alike_never_collide(planted, model_files,
                                                                            tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("b_c\nc\nother\n")
    photos = tmp_path / "photos"
    write_photo(photos / "a.png", planted, 0)
    write_photo(photos / "a_b.png", planted, 1)
    out = tmp_path / "maps"
    args = explain_args(model_files, [photos], out, "--targets", "b_c,c")
    args[args.index("--labels") + 1] = str(labels)
    code, _, err = run(args)
    assert code == 0, err
    data = manifest(out)
    outputs = outputs_of(data, photos)
    assert len(outputs["a.png"]) == len(outputs["a_b.png"]) == 2
    assert not set(outputs["a.png"]) & set(outputs["a_b.png"])
    assert files_under(out) == sorted(outputs["a.png"] + outputs["a_b.png"] + ["manifest.json",
                                                                    "results.parquet"])


def test_a_same_named_image_added_elsewhere_does_not_take_the_old_images_outputs(
        planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "x" / "cat.png", planted, 0)
    out = tmp_path / "maps"
    code, _, err = run(explain_args(model_files, [photos], out, "--recursive"))
    assert code == 0, err
    (old,) = manifest(out)["images"]
    old_bytes = {o: (out / o).read_bytes() for o in old["outputs"]}
    write_photo(photos / "a" / "cat.png", planted, 0, seed=7)  # sorts first, same label
    code, printed, err = run(explain_args(model_files, [photos], out, "--recursive"))
    assert code == 0, err
    assert "1 done, 1 skipped, 0 failed" in printed
    records = {Path(r["input"]).relative_to(photos.resolve()).as_posix(): r
               for r in manifest(out)["images"]}
    assert records["x/cat.png"]["status"] == "skipped"
    assert records["x/cat.png"]["outputs"] == old["outputs"]
    assert records["a/cat.png"]["status"] == "done"
    assert not set(records["a/cat.png"]["outputs"]) & set(old_bytes)
    for name, data in old_bytes.items():
        assert (out / name).read_bytes() == data, "the old image's maps were not touched"


def test_recursive_mirrors_the_input_tree(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "rocket.png", planted, 0)
    write_photo(photos / "sub" / "rocket.png", planted, 1)
    write_photo(photos / "sub" / "deeper" / "rocket.png", planted, 2)
    out = tmp_path / "maps"
    code, _, err = run(explain_args(model_files, [photos], out, "--recursive", "--save-raw"))
    assert code == 0, err
    assert files_under(out) == sorted([
        "manifest.json", "results.parquet", "rocket.png.alpha.jpg", "rocket.png.alpha.npy",
        "sub/rocket.png.beta.jpg", "sub/rocket.png.beta.npy",
        "sub/deeper/rocket.png.gamma.jpg", "sub/deeper/rocket.png.gamma.npy",
    ])
    records = {Path(r["input"]).relative_to(photos.resolve()).as_posix(): r
               for r in manifest(out)["images"]}
    assert records["sub/deeper/rocket.png"]["outputs"] == ["sub/deeper/rocket.png.gamma.jpg"]
    assert records["sub/deeper/rocket.png"]["raw"] == ["sub/deeper/rocket.png.gamma.npy"]


def test_globs_mirror_the_tree_below_their_fixed_part(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "d1" / "img.png", planted, 0)
    write_photo(photos / "d2" / "img.png", planted, 1)
    out = tmp_path / "maps"
    code, _, err = run(explain_args(model_files, [f"{photos}/*/img.png"], out))
    assert code == 0, err
    outputs = outputs_of(manifest(out), photos)
    assert outputs == {"d1/img.png": ["d1/img.png.alpha.jpg"],
                       "d2/img.png": ["d2/img.png.beta.jpg"]}


def test_inputs_that_would_share_outputs_are_a_usage_error(planted, model_files, tmp_path):
    a = write_photo(tmp_path / "one" / "cat.png", planted, 0)
    b = write_photo(tmp_path / "two" / "cat.png", planted, 1)
    out = tmp_path / "maps"
    code, _, err = run(explain_args(model_files, [a, b], out))
    assert code == 2
    assert "same outputs" in err and str(a) in err and str(b) in err
    assert not out.exists()


def test_an_earlier_runs_outputs_of_another_input_are_not_overwritten(planted, model_files,
                                                                      tmp_path):
    a = write_photo(tmp_path / "one" / "cat.png", planted, 0)
    b = write_photo(tmp_path / "two" / "cat.png", planted, 1)
    out = tmp_path / "maps"
    assert run(explain_args(model_files, [a], out))[0] == 0
    before = {p: (out / p).read_bytes() for p in files_under(out) if p.endswith(".jpg")}
    code, _, err = run(explain_args(model_files, [b], out))
    assert code == 1 and "belong to" in err and str(a.resolve()) in err
    assert {p: (out / p).read_bytes() for p in before} == before
    records = {r["input"]: r for r in manifest(out)["images"]}
    assert records[str(a.resolve())]["status"] == "done"
    assert records[str(b.resolve())]["status"] == "failed"
    # --force replaces them (and the old record)
    code, _, err = run(explain_args(model_files, [b], out, "--force"))
    assert code == 0, err
    assert [r["input"] for r in manifest(out)["images"]] == [str(b.resolve())]


@settings(max_examples=200, deadline=None)
@given(
    paths=st.lists(st.lists(st.text(st.sampled_from(list("ab._%:/\\ é")), min_size=1,
                                    max_size=6), min_size=1, max_size=3),
                   min_size=2, max_size=2, unique_by=lambda p: tuple(p)),
    labels=st.lists(st.text(st.sampled_from(list("ab._%: ")), max_size=6), min_size=2,
                    max_size=2),
)
def test_output_names_are_an_injective_function_of_the_relative_path(paths, labels):
    from salvo.cli.inputs import output_place, target_file_label
    from salvo.files import UNSAFE_CHARACTERS, fit_name

    # the path components of a real file system hold no "/" and are never "" or "."/".."
    names = ["/".join(part.replace("/", "-") for part in p) for p in paths]
    if len(set(names)) < 2 or any(part in ("", ".", "..") for n in names
                                  for part in n.split("/")):
        return
    files = []
    for name, label in zip(names, labels):
        folder, prefix = output_place(name)
        target = UNSAFE_CHARACTERS.sub("_", target_file_label(label)) or "0"
        assert "/" not in prefix and ".." not in folder.split("/")
        files.append(f"{folder}/{fit_name(prefix + target, '.jpg')}")
        assert output_place(name) == (folder, prefix), "the same on every call"
    assert files[0] != files[1]


# ----------------------------------------------------------------------- input discovery


def test_out_inside_the_input_tree_is_never_read_back(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "p0.png", planted, 0)
    write_photo(photos / "sub" / "p1.png", planted, 1)
    out = photos / "maps"
    code, _, err = run(explain_args(model_files, [photos], out, "--recursive"))
    assert code == 0, err
    code, printed, err = run(explain_args(model_files, [photos], out, "--recursive"))
    assert code == 0, err
    assert "0 done, 2 skipped, 0 failed" in printed
    assert sorted(outputs_of(manifest(out), photos)) == ["p0.png", "sub/p1.png"]
    code, _, err = run(explain_args(model_files, [f"{photos}/**/*.jpg"], out))
    assert code == 2 and "no file matches" in err  # the maps (.jpg) under --out are not inputs


def test_out_equal_to_an_input_folder_is_an_error(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "p0.png", planted, 0)
    code, _, err = run(explain_args(model_files, [photos], photos))
    assert code == 2 and "input folder" in err
    assert sorted(os.listdir(photos)) == ["p0.png"]


def test_symbolic_link_loops_end(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "p0.png", planted, 0)
    write_photo(photos / "sub" / "p1.png", planted, 1)
    os.symlink(photos, photos / "sub" / "loop")
    os.symlink(photos / "sub", photos / "sub" / "self")
    out = tmp_path / "maps"
    code, printed, err = run(explain_args(model_files, [photos], out, "--recursive"))
    assert code == 0, err
    assert "2 done" in printed
    assert sorted(outputs_of(manifest(out), photos)) == ["p0.png", "sub/p1.png"]


# --------------------------------------------------------------------------------- messages


def test_a_folder_of_subfolders_suggests_recursive(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "a" / "p0.png", planted, 0)
    write_photo(photos / "b" / "p1.png", planted, 1)
    code, _, err = run(explain_args(model_files, [photos], tmp_path / "maps"))
    assert code == 2
    error = [line for line in err.splitlines() if line.startswith("salvo: error:")]
    assert len(error) == 1 and "--recursive" in error[0] and "2 sub-folders" in error[0]


def test_files_skipped_by_suffix_are_listed_with_the_reason(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "p0.png", planted, 0)
    (photos / "cat.gif").write_bytes(b"GIF89a" + bytes(20))
    (photos / "phone.heic").write_bytes(b"\x00" * 20)
    (photos / ".hidden.txt").write_text("not listed")
    out = tmp_path / "maps"
    code, _, err = run(explain_args(model_files, [photos], out))
    assert code == 0, err
    for name in ("cat.gif", "phone.heic"):
        assert name in err
    assert "not an image suffix (.gif)" in err and "not an image suffix (.heic)" in err
    assert ".hidden" not in err
    ignored = {Path(i["path"]).name: i["reason"] for i in manifest(out)["ignored"]}
    assert set(ignored) == {"cat.gif", "phone.heic"}


def test_top5_entries_carry_label_names(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    write_photo(photos / "p1.png", planted, 1)
    out = tmp_path / "maps"
    code, _, err = run(explain_args(model_files, [photos], out))
    assert code == 0, err
    (record,) = manifest(out)["images"]
    top = record["top5"]
    assert [t.get("label") for t in top] == [LABELS[t["index"]] for t in top]
    assert top[0]["index"] == 1 and top[0]["label"] == "beta"


def test_exit_codes_are_those_the_help_states(planted, model_files, tmp_path):
    photo_path = write_photo(tmp_path / "photos" / "p0.png", planted, 0)
    out = tmp_path / "maps"
    broken = tmp_path / "broken.xml"
    broken.write_text("<net>")
    cases = [
        (["explain", str(tmp_path / "missing.xml"), str(photo_path), "--out", str(out)], 2,
         "no such file"),
        (["explain", model_files["model"], str(tmp_path / "missing_folder"), "--out", str(out)],
         2, "no such file or folder"),
        (["explain", model_files["model"], f"{tmp_path}/nothing/*.png", "--out", str(out)], 2,
         "no file matches"),
        (["explain", str(broken), str(photo_path), "--out", str(out)], 1, "not a model"),
    ]
    for args, expected, fragment in cases:
        code, _, err = run(args)
        assert code == expected, (args, err)
        assert fragment in err
    with pytest.raises(SystemExit) as info:
        main(["explain", "--help"])
    assert info.value.code == 0


# ------------------------------------------------------------------- kill, resume, two runs


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SALVO_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _many_photos(planted, folder: Path, count: int) -> list[Path]:
    return [write_photo(folder / f"img{i:03d}.png", planted, i % 3, seed=i) for i in range(count)]


def _count_raw_maps(out: Path) -> int:
    return len(list(out.rglob("*.npy"))) if out.exists() else 0


def _journal_records(out: Path) -> list[dict]:
    path = out / ".salvo-journal.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().split(b"\n")[1:]:
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    return records


def _slow_args(model_files, photos, out):
    """RISE with many masks: a few tenths of a second per image on the planted model."""
    return [sys.executable, "-m", "salvo", "explain", model_files["model"], str(photos),
            "--out", str(out), "--method", "rise", "--num-masks", "3000", "--num-cells", "7",
            "--preprocess", "unit", "--labels", model_files["labels"], "--no-progress",
            "--save-raw", "--no-pack", *F32]


@pytest.mark.slow
def test_a_killed_run_resumes_without_losing_or_redoing_anything(planted, model_files, tmp_path):
    photos = tmp_path / "photos"
    names = [p.name for p in _many_photos(planted, photos, 36)]
    out = tmp_path / "maps"
    args = _slow_args(model_files, photos, out)
    with subprocess.Popen(args, env=_subprocess_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:  # the pipes are closed at the end
        deadline = time.monotonic() + 240
        while _count_raw_maps(out) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed: make it slower"
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    # what the killed run had recorded: manifest.json (written every few seconds) + journal
    saved = manifest(out)["images"] if (out / "manifest.json").exists() else []
    done_records = [r for r in saved + _journal_records(out) if r["status"] == "done"]
    recorded = {Path(r["input"]).name for r in done_records}
    assert 3 <= len(recorded) < len(names)
    stamps = {o: (out / o).stat().st_mtime_ns
              for r in done_records for o in r["outputs"] + r["raw"]}

    result = subprocess.run(args, env=_subprocess_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{len(names) - len(recorded)} done, {len(recorded)} skipped, 0 failed" in \
        result.stdout
    data = manifest(out)  # valid JSON
    assert data["summary"]["complete"] is True
    records = {Path(r["input"]).name: r for r in data["images"]}
    assert sorted(records) == sorted(names), "nothing lost"
    for name, r in records.items():
        assert r["status"] == ("skipped" if name in recorded else "done"), name
        for o in r["outputs"]:
            assert cv2.imread(str(out / o)) is not None
        for o in r["raw"]:
            assert np.load(out / o).shape == (56, 56)
    assert {o: (out / o).stat().st_mtime_ns for o in stamps} == stamps, "nothing redone"
    leftovers = [p for p in out.rglob(".*")]
    assert leftovers == [], f"partial, temporary, journal or lock files left: {leftovers}"
    listed = {o for r in data["images"] for o in r["outputs"] + r["raw"]}
    assert set(files_under(out)) == listed | {"manifest.json", "results.parquet"}, \
        "no file the manifest misses"
    thumbs = {t for r in data["images"] for t in [r["thumbs"]["input"], *r["thumbs"]["maps"],
                                                 *r["thumbs"]["overlays"]]}
    assert len(thumbs) == 3 * len(names)  # input, map, overlay (one target each)
    report = {n for n in files_under(out, report=True) if n.startswith("report/")}
    pages = {n for n in report - thumbs if not n.startswith("report/data/")}
    assert pages == {"report/index.html", "report/report.js", "report/report.css"}
    assert all(n.startswith("report/thumbs/") for n in thumbs) and thumbs <= report, \
        "every thumbnail the manifest lists is there, none it misses"
    assert not {n for n in report - thumbs if n.startswith("report/thumbs/")}
    table = pq.read_table(out / "results.parquet").to_pylist()
    assert sorted((row["input"], row["output"]) for row in table) == sorted(
        (r["input"], o) for r in data["images"] for o in r["outputs"]), \
        "the table has each image's rows once, as the manifest records them"


@pytest.mark.slow
def test_a_second_run_into_the_same_folder_refuses_to_start_and_loses_nothing(
        planted, model_files, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _many_photos(planted, first, 40)
    for i in range(3):
        write_photo(second / f"other{i}.png", planted, i, seed=100 + i)
    out = tmp_path / "maps"
    proc = subprocess.Popen(_slow_args(model_files, first, out), env=_subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    lock = out / ".salvo.lock"
    while proc.poll() is None and time.monotonic() < deadline and not _count_raw_maps(out):
        time.sleep(0.02)
    code, _, err = run(explain_args(model_files, [second], out))
    still_running = proc.poll() is None
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert still_running, "the first run ended before the second started: make it slower"
    assert code == 1
    error = [line for line in err.splitlines() if line.startswith("salvo: error:")]
    assert len(error) == 1 and str(lock) in error[0] and "in use" in error[0]
    assert f"pid {proc.pid}" in error[0]
    assert len(manifest(out)["images"]) == 40
    # once the first has finished, the second runs and both runs' records are kept
    code, _, err = run(_slow_args(model_files, second, out)[3:])  # same settings, in-process
    assert code == 0, err
    assert len(manifest(out)["images"]) == 43
    assert not list(out.glob(".*"))
