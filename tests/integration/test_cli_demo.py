"""`salvo demo`: file permissions, --no-rise after a RISE run, the install hint of --help."""

from __future__ import annotations

import os

import pytest
from salvo.cli import main
from salvo.cli.demo import run_demo


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_demo_files_are_readable_by_everyone(tmp_path, umask_022):
    out = tmp_path / "demo"
    written = run_demo(out, rise=True, num_masks=16)
    assert {p.name for p in written} >= {"original.jpg", "grid.png"}
    for path in written:
        mode = path.stat().st_mode & 0o777
        assert mode == 0o644, (path.name, oct(mode))
    assert not [n for n in os.listdir(out) if n.startswith(".")], "no temporary files"


def test_no_rise_removes_the_rise_maps_of_an_earlier_run(tmp_path, capsys):
    out = tmp_path / "demo"
    first = run_demo(out, rise=True, num_masks=16)  # an earlier run with RISE
    rise_maps = sorted(p.name for p in first if p.name.startswith("rise_"))
    assert len(rise_maps) == 3
    (out / "rise_notes.txt").write_text("not the demo's")  # not a map this demo writes
    assert main(["demo", "--out", str(out), "--no-rise"]) == 0
    printed = capsys.readouterr().out
    assert "removed 3 RISE maps" in printed
    for name in rise_maps:
        assert name in printed
    names = sorted(os.listdir(out))
    assert not [n for n in names if n.startswith("rise_") and n.endswith(".jpg")]
    assert "rise_notes.txt" in names


def test_demo_help_gives_an_install_command_that_works_from_a_checkout(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "pip install '.[demo]'" in text and "checkout" in text
