"""Explanation.save: no file outside the folder, one file per map, names that fit, full disks.

Each test fails on the commit before salvo.files existed (see the test names in the notes of
the change); property-based tests cover the space of prefixes, postfixes and label names.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from salvo import Explanation

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def grey(seed: int, shape=(8, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def explanation(num: int, labels=None, shape=(8, 8)) -> Explanation:
    return Explanation({k: grey(k, shape) for k in range(num)}, label_names=labels)


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -------------------------------------------------------------------- prefix and postfix


@pytest.mark.parametrize("argument", ["prefix", "postfix"])
@pytest.mark.parametrize("value", ["../", "../../evil_", "sub/", "/tmp/evil_", "a\\b", "x\x00"])
def test_prefix_or_postfix_that_leads_out_is_an_error_naming_it(tmp_path, argument, value):
    inside = tmp_path / "inside"
    with pytest.raises(ValueError, match=argument) as info:
        explanation(2).save(inside, **{argument: value})
    assert repr(value) in str(info.value)
    assert all_files(tmp_path) == [], "nothing written, inside or outside"


def test_a_prefix_without_separators_is_kept_as_it_is(tmp_path):
    written = explanation(1).save(tmp_path, prefix="..", postfix="..")
    assert [p.name for p in written] == ["..0...jpg"]
    assert written[0].parent == tmp_path


@SETTINGS
@given(prefix=st.text(max_size=12), postfix=st.text(max_size=12))
def test_no_prefix_or_postfix_writes_outside_the_folder(tmp_path_factory, prefix, postfix):
    root = tmp_path_factory.mktemp("p")
    folder = root / "a" / "b"
    try:
        written = explanation(2).save(folder, prefix=prefix, postfix=postfix)
    except ValueError as err:
        assert "prefix" in str(err) or "postfix" in str(err)
        assert all_files(root) == []
        return
    except UnicodeEncodeError:  # lone surrogates cannot be file names on this system
        assert all_files(root) == []
        return
    assert len(written) == 2
    for path in written:
        assert path.parent == folder and path.is_file()
        assert os.path.realpath(path).startswith(os.path.realpath(folder) + os.sep)
    assert all_files(root) == sorted(written)


# ---------------------------------------------------------------------- one file per map


def test_labels_x2_x_x_give_three_files(tmp_path):
    e = explanation(3, labels=["x_2", "x", "x"])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        written = e.save(tmp_path)
    assert len(written) == 3 and len(set(written)) == 3
    assert len(all_files(tmp_path)) == 3
    for path, k in zip(written, range(3)):  # each file holds its own map
        np.testing.assert_allclose(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), grey(k), atol=40)


def test_collisions_are_a_warning_the_caller_sees(tmp_path):
    from salvo.errors import SalvoWarning

    with pytest.warns(SalvoWarning, match="made unique"):
        explanation(2, labels=["Cat", "cat"]).save(tmp_path)  # equal on case-insensitive disks
    assert len(all_files(tmp_path)) == 2


label_text = st.text(alphabet=st.sampled_from(list("xX_2/\\:. -é")), max_size=5)


@SETTINGS
@given(labels=st.lists(label_text, min_size=1, max_size=7), with_scores=st.booleans())
def test_every_map_gets_its_own_file(tmp_path_factory, labels, with_scores):
    folder = tmp_path_factory.mktemp("u")
    e = explanation(len(labels), labels=labels)
    scores = {k: 0.5 for k in range(len(labels))} if with_scores else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = e.save(folder, confidence_scores=scores)
        again = e.save(folder, confidence_scores=scores)
    assert written == again, "names are deterministic"
    assert len({p.name.casefold() for p in written}) == len(labels)
    assert all_files(folder) == sorted(written)


# ------------------------------------------------------------------------ long names, scores


@pytest.mark.parametrize("length", [200, 238, 245, 251])
def test_labels_that_fit_are_written_under_their_own_name(tmp_path, length):
    label = "l" * length
    (path,) = Explanation({0: grey(0)}, label_names=[label]).save(tmp_path)
    assert path.name == label + ".jpg"
    assert all_files(tmp_path) == [path]


@pytest.mark.parametrize("label", ["l" * 252, "l" * 400, "é" * 200, "😀" * 100],
                         ids=["ascii252", "ascii400", "latin200", "emoji100"])
def test_long_names_are_shortened_deterministically(tmp_path, label):
    e = Explanation({0: grey(0), 1: grey(1)}, label_names=[label, label + "2"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # shortening alone is not a collision
        first = e.save(tmp_path)
        second = e.save(tmp_path)
    assert first == second and len(set(first)) == 2
    for path in first:
        name = path.name
        assert len(os.fsencode(name)) <= 255 and name.endswith(".jpg")
        head, _, tail = name[:-4].rpartition("~")
        assert label.startswith(head) and len(head) >= 50 and len(tail) == 12
    assert all_files(tmp_path) == sorted(first)


@pytest.mark.parametrize("score, text", [(float("nan"), "nan"), (float("inf"), "inf"),
                                         (-float("inf"), "-inf"), (1e300, "1e+300"),
                                         (-1e300, "-1e+300"), (np.float32(0.456), "0.46")])
def test_scores_print_as_valid_text(tmp_path, score, text):
    (path,) = Explanation({3: grey(3)}).save(tmp_path, confidence_scores={3: score})
    assert path.name == f"3{text}.jpg"
    assert path.is_file()


def test_bad_scores_are_an_error_naming_them(tmp_path):
    with pytest.raises(TypeError, match="confidence_scores"):
        Explanation({3: grey(3)}).save(tmp_path, confidence_scores={3: "high"})
    assert all_files(tmp_path) == []


# --------------------------------------------------------------------------- the write


def test_files_are_readable_by_everyone_as_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        (path,) = explanation(1).save(tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


class _FullDisk:
    """A file object that takes ``room[0]`` more bytes, then fails as a full file system does:
    it writes what fits and raises ``ENOSPC``."""

    def __init__(self, handle, room: list[int]) -> None:
        self._handle, self._room = handle, room

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        fits = min(len(data), self._room[0])
        self._handle.write(data[:fits])
        self._room[0] -= fits
        if fits < len(data):
            self._handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fits

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "64k"):
    """A folder with room for ``size``: a real tmpfs where the test may mount one (root), else
    the same folder with salvo's file writes into it failing with ``ENOSPC`` once ``size``
    bytes are written (the error a full tmpfs gives, after writing what fits)."""
    path.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                  str(path)], check=False, capture_output=True).returncode == 0
    except OSError:  # no mount command
        mounted = False
    if mounted:
        try:
            yield path
        finally:
            subprocess.run(["umount", str(path)], check=False, capture_output=True)
        return
    from salvo import files

    room = [int(size.removesuffix("k")) * 1024]
    fdopen = os.fdopen

    def fdopen_on_a_small_disk(fd, *args, **kwargs):
        handle = fdopen(fd, *args, **kwargs)
        inside = Path(os.readlink(f"/proc/self/fd/{fd}")).parent == path.resolve()
        return _FullDisk(handle, room) if inside else handle

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files.os, "fdopen", fdopen_on_a_small_disk)
        yield path


def test_a_full_disk_leaves_no_partial_file_and_names_the_file(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    small = Explanation({0: noise[:16, :16]}, label_names=["small"])
    big = Explanation({1: noise}, label_names=["small", "big"])  # ~300 kB as a JPEG
    with small_tmpfs(tmp_path / "disk") as disk:
        (kept,) = small.save(disk)
        with pytest.raises(OSError) as info:
            big.save(disk)
        assert info.value.errno == errno.ENOSPC
        assert "big.jpg" in str(info.value)
        assert sorted(os.listdir(disk)) == ["small.jpg"], "no partial or temporary file"
        assert cv2.imread(str(kept)) is not None
