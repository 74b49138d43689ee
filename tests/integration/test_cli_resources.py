"""`salvo explain` resources: peak memory of overlays on a large photo, --max-size, and images
that declare too many pixels (decompression bombs)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest
import salvo
from salvo.cli import main
from salvo.testing.planted import batchable, planted_image_with_object

# child processes import the salvo this process imports (the source tree or an install)
SALVO_PARENT = str(Path(salvo.__file__).resolve().parents[1])
F32 = ["--precision", "f32"]


def run(args):
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = main(args)
    return code, std.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def planted_model(planted, tmp_path_factory):
    root = tmp_path_factory.mktemp("res")
    path = root / "planted.xml"
    ov.save_model(batchable(planted), str(path), compress_to_fp16=False)
    return planted, str(path)


def smooth_photo(height: int, width: int) -> np.ndarray:
    """A BGR photo that compresses well (gradients and a disc)."""
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = x.astype(np.uint8)
    img[..., 1] = y.astype(np.uint8)
    img[..., 2] = ((x + y) / 2).astype(np.uint8)
    cv2.circle(img, (width // 2, height // 3), min(height, width) // 6, (20, 200, 30), -1)
    return img


# ------------------------------------------------------------------------------ memory


@pytest.mark.slow
def test_overlays_of_a_6000_pixel_photo_stay_under_1_gb(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "big.jpg"), smooth_photo(6000, 6000),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    out = tmp_path / "maps"
    command = [sys.executable, "-m", "salvo", "explain", "zoo:efficientnet_lite0", str(photos),
               "--out", str(out), "--overlay", "--targets", "top3", "--no-progress"]
    # a fresh parent process, so that RUSAGE_CHILDREN covers this one command only
    probe = ("import resource, subprocess, sys; "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.stderr.write(r.stderr)")
    env = {**os.environ, "PYTHONPATH": SALVO_PARENT + os.pathsep + os.environ.get("PYTHONPATH",
                                                                                 "")}
    result = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True,
                            text=True, env=env, timeout=900)
    code, max_rss_kb = (int(v) for v in result.stdout.split())
    assert code == 0, result.stderr
    peak_gb = max_rss_kb * 1024 / 1e9  # ru_maxrss is in kilobytes on Linux
    assert peak_gb < 1.0, f"peak RSS {peak_gb:.2f} GB"
    (record,) = json.loads((out / "manifest.json").read_text())["images"]
    assert len(record["outputs"]) == 3
    y0, y1, x0, x1 = record["region"]
    assert (y1 - y0, x1 - x0) == (5250, 5250)  # lite0: the centre crop, 87.5 % of the side
    for name in record["outputs"]:
        assert cv2.imread(str(out / name)).shape == (2048, 2048, 3), "--max-size default 2048"
    assert record["output_size"] == [2048, 2048]


def test_max_size_bounds_the_long_side_and_0_keeps_the_full_size(planted_model, tmp_path):
    planted, model = planted_model
    photos = tmp_path / "photos"
    photos.mkdir()
    x = planted_image_with_object(planted, 1)[0].transpose(1, 2, 0)
    rgb = cv2.resize(np.rint(x * 255).astype(np.uint8), (900, 500),
                     interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(photos / "wide.png"), rgb[:, :, ::-1])
    shapes = {}
    for max_size in ("300", "0", "2048"):
        out = tmp_path / f"maps{max_size}"
        code, _, err = run(["explain", model, str(photos), "--out", str(out), "--mode",
                            "whitebox", "--preprocess", "unit", "--overlay", "--max-size",
                            max_size, "--no-progress", *F32])
        assert code == 0, err
        (record,) = json.loads((out / "manifest.json").read_text())["images"]
        (name,) = record["outputs"]
        shapes[max_size] = cv2.imread(str(out / name)).shape
    assert shapes == {"300": (167, 300, 3), "0": (500, 900, 3), "2048": (500, 900, 3)}
    with pytest.raises(SystemExit) as info:
        main(["explain", model, str(photos), "--out", str(tmp_path / "bad"), "--max-size", "-1"])
    assert info.value.code == 2


# ------------------------------------------------------------------- decompression bombs


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels but holds only a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


def jpeg_header_only(width: int, height: int) -> bytes:
    """A JPEG start that declares width x height pixels in its frame header."""
    sof = struct.pack(">BBHBHHB", 0xFF, 0xC0, 17, 8, height, width, 3) + bytes(9)
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9) + sof


def test_images_declaring_too_many_pixels_fail_alone_before_decoding(planted_model, tmp_path):
    planted, model = planted_model
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "bomb.png").write_bytes(png_header_only(50_000, 50_000))
    (photos / "bomb.jpg").write_bytes(jpeg_header_only(30_000, 30_000))
    x = planted_image_with_object(planted, 0)[0].transpose(1, 2, 0)
    cv2.imwrite(str(photos / "ok.png"), np.rint(x * 255).astype(np.uint8)[:, :, ::-1])
    out = tmp_path / "maps"
    code, printed, err = run(["explain", model, str(photos), "--out", str(out), "--mode",
                              "whitebox", "--preprocess", "unit", "--no-progress", *F32])
    assert code == 1
    assert "1 done, 0 skipped, 2 failed" in printed
    records = {Path(r["input"]).name: r for r in
               json.loads((out / "manifest.json").read_text())["images"]}
    assert records["ok.png"]["status"] == "done"
    for name, (w, h) in (("bomb.png", (50_000, 50_000)), ("bomb.jpg", (30_000, 30_000))):
        reason = records[name]["reason"]
        assert records[name]["status"] == "failed"
        assert f"{w}x{h}" in reason and "--max-pixels" in reason, reason
        assert name in err


def test_max_pixels_is_the_limit(planted_model, tmp_path):
    planted, model = planted_model
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "small.png"), smooth_photo(60, 80))
    for limit, expected in (("4799", 1), ("4800", 0), ("0", 0)):
        code, _, err = run(["explain", model, str(photos), "--out", str(tmp_path / limit),
                            "--mode", "whitebox", "--preprocess", "unit", "--max-pixels", limit,
                            "--no-progress", *F32])
        assert code == expected, (limit, err)
        if expected:
            assert "80x60 = 4,800 pixels" in err
