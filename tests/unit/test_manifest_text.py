"""``manifest.json``'s text (one image record per line, by the C encoder) and how often a run
rewrites it (every 5 s at most, and at most 5 % of the time)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from salvo.cli import manifest as manifest_module
from salvo.cli.manifest import Manifest, manifest_text

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(head=st.dictionaries(st.text().filter(lambda k: k != "images"), _values, max_size=4),
       images=st.lists(st.dictionaries(st.text(), _values, max_size=4), max_size=4))
def test_the_text_reads_back_as_the_manifest(head, images):
    data = {**head, "images": images}
    text = manifest_text(data)
    assert json.loads(text) == data
    body = text[text.index('"images": [') + len('"images": ['):]
    assert body.count("\n  {") == len(images), "one image record per line"


def test_the_rewrite_interval_grows_with_the_time_a_rewrite_takes(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(manifest_module.time, "monotonic", lambda: clock[0])
    manifest = Manifest(tmp_path, {"fingerprint": "f"})
    manifest.add({"input": "a"})
    assert manifest.write({}, force=False), "the first rewrite is due at once"
    manifest._write_seconds = 1.0  # as if that rewrite had taken a second
    manifest.add({"input": "b"})
    clock[0] += 6.0
    assert not manifest.write({}, force=False), "6 s later: a 1 s rewrite may take 5 % only"
    clock[0] += 14.5
    assert manifest.write({}, force=False), "20 s after the last one it is due"
    clock[0] += 100.0
    assert not manifest.write({}, force=False), "nothing new: nothing to write"
    manifest.close()
    assert [r["input"] for r in json.loads((tmp_path / "manifest.json").read_text())["images"]] \
        == ["a", "b"]
