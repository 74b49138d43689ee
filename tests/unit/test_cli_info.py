"""`salvo info` and build_info()."""

from __future__ import annotations

import json

import numpy
import openvino

import salvo
from salvo.cli import main


def test_build_info_reports_versions_native_and_devices():
    info = salvo.build_info()
    assert info["openvino"] == openvino.get_version()
    assert info["numpy"] == numpy.__version__
    assert info["native"] is True and info["native_error"] is None
    assert info["simd_build"] in {"sse2", "avx", "avx2", "avx512f", "neon", "generic"}
    assert info["devices"] == list(openvino.Core().available_devices)


def test_salvo_info_prints_json(capsys):
    assert main(["info", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["devices"] == list(openvino.Core().available_devices)
    assert printed["native"] is True


def test_salvo_errors_are_one_line(capsys, tmp_path):
    target = tmp_path / "file"
    target.write_text("not a folder")
    code = main(["demo", "--out", str(target), "--no-rise"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("salvo: error:") and str(target) in err
    assert "Traceback" not in err
