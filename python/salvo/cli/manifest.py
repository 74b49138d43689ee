"""``manifest.json`` and its journal: what ``salvo explain`` records about a run, how a killed
run's records are recovered, and the fingerprint that decides which images a later run skips.

Only the run holding the output folder's lock (:data:`LOCK`) touches these files. Every image's
record is appended to the journal (:data:`JOURNAL`) as soon as its files are written;
``manifest.json`` is rewritten atomically every few seconds (less often when it is large: at most
5 % of the time) and at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from salvo.cli.inputs import ImageTask
from salvo.cli.models import label_of
from salvo.cli.shared import say
from salvo.common import Task
from salvo.files import atomic_write
from salvo.preprocess import Preprocess

__all__ = [
    "JOURNAL",
    "LOCK",
    "MANIFEST",
    "MANIFEST_VERSION",
    "Manifest",
    "explain_fingerprint",
    "file_fingerprint",
    "json_default",
    "manifest_text",
    "target_record",
]

#: The manifest's file name in the output folder.
MANIFEST = "manifest.json"
#: 2: outputs named after the input's relative path (``sub/cat.jpg.tabby.jpg``), records carry
#: ``name``; 1: ``{stem}_{target}.jpg`` in one folder.
MANIFEST_VERSION = 2
#: Per-image journal of the running command (merged into the manifest; see :class:`Manifest`).
JOURNAL = ".salvo-journal.jsonl"
#: The lock a run holds on its output folder.
LOCK = ".salvo.lock"
#: ``manifest.json`` is rewritten at most every this many seconds while a run goes on …
_FLUSH_SECONDS = 5.0
#: … and at most this fraction of the time (a rewrite is O(records): with very many images the
#: interval grows, the journal keeps every record meanwhile).
_FLUSH_DUTY = 0.05


def manifest_text(data: dict[str, Any]) -> str:
    """``data`` (a manifest) as the text of ``manifest.json``: the header indented, then one
    image record per line (readable, and written by the fast C encoder: a manifest of 100 000
    images takes a second, not five)."""
    images = data.get("images", [])
    head = {k: v for k, v in data.items() if k != "images"}
    text = json.dumps(head, indent=1, default=json_default, ensure_ascii=False)
    text = text[:-2] + ",\n" if head else "{\n"
    lines = [json.dumps(r, default=json_default, ensure_ascii=False) for r in images]
    body = "\n  " + ",\n  ".join(lines) + "\n " if lines else ""
    return f'{text} "images": [{body}]\n}}\n'


def file_fingerprint(path: str) -> str:
    """``path`` as a fingerprint records it: resolved path, size and modification time (so a
    changed model file gives another fingerprint)."""
    try:
        st = os.stat(path)
        return f"{Path(path).resolve()}:{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        return path


def json_default(value: Any) -> Any:
    """``json.dumps``'s ``default``: NumPy numbers and arrays as Python ones, anything else as
    its ``str``."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


class Manifest:
    """``manifest.json``: the command, versions, device, parameters, and one record per image.

    Only the run holding the folder's lock (``.salvo.lock``) touches it. Every record is
    appended to a journal (``.salvo-journal.jsonl``) as soon as its image's files are written;
    ``manifest.json`` is rewritten atomically every few seconds and at the end, and the journal
    then emptied. A run that was killed leaves its journal; the next run merges it into
    ``manifest.json`` first (:meth:`recover`), so no finished image is lost or redone.
    """

    def __init__(self, folder: Path, header: dict[str, Any]) -> None:
        self.folder = folder
        self.path = folder / MANIFEST
        self.journal_path = folder / JOURNAL
        self.header = header
        self.images: dict[str, dict[str, Any]] = {}
        self.previous: dict[str, dict[str, Any]] = {}
        self.previous_fingerprint: str | None = None
        self._last_write = 0.0
        self._write_seconds = 0.0
        self._dirty = False
        self._journal: Any = None

    # ------------------------------------------------------------------ reading
    def _read(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("images", []), list):
                raise ValueError("not a salvo manifest")
            return data
        except (OSError, ValueError, TypeError) as exc:
            say(f"salvo: warning: ignoring the unreadable {self.path} ({exc})")
            return None

    def recover(self) -> int:
        """Merge the journal of an interrupted run into ``manifest.json``; return the number
        of records it held."""
        if not self.journal_path.is_file():
            return 0
        lines = self.journal_path.read_bytes().split(b"\n")
        entries = []
        for line in lines:
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # the line being written when the run was killed
        head = entries[0] if entries and isinstance(entries[0], dict) else {}
        header = head.get("journal_header") if isinstance(head, dict) else None
        records = [e for e in entries[1:] if isinstance(e, dict) and "input" in e]
        if not isinstance(header, dict) or "fingerprint" not in header:
            self.journal_path.unlink(missing_ok=True)
            return 0
        data = self._read()
        images: dict[str, dict[str, Any]] = {}
        if data is not None and data.get("fingerprint") == header["fingerprint"]:
            images = {r["input"]: r for r in data.get("images", []) if "input" in r}
        for record in records:
            images[record["input"]] = record
        summary = {"complete": False, "interrupted": True,
                   "note": "recovered from the journal of a run that was stopped"}
        merged = {**header, "summary": summary, "images": list(images.values())}
        atomic_write(self.path, manifest_text(merged).encode("utf-8"))
        self.journal_path.unlink(missing_ok=True)
        return len(records)

    def load_previous(self) -> None:
        """Read the records of an earlier run (``previous``, ``previous_fingerprint``)."""
        data = self._read()
        if data is None:
            return
        self.previous_fingerprint = data.get("fingerprint")
        self.previous = {r["input"]: r for r in data.get("images", [])
                         if isinstance(r, dict) and "input" in r}

    def done_before(self, key: str, folder: Path) -> dict[str, Any] | None:
        """The previous record of ``key`` if it was explained with the same settings and all its
        outputs are still there."""
        if self.previous_fingerprint != self.header["fingerprint"]:
            return None
        record = self.previous.get(key)
        if not record or record.get("status") not in ("done", "skipped"):
            return None
        outputs = list(record.get("outputs", [])) + list(record.get("raw", []))
        if not outputs or not all((folder / o).is_file() for o in outputs):
            return None
        return record

    def owner_of(self, task: ImageTask) -> dict[str, Any] | None:
        """A previous record (any settings) of another input whose outputs carry the same
        names as ``task``'s."""
        for key, record in self.previous.items():
            if key != task.key and record.get("name") == task.name and \
                    record.get("status") in ("done", "skipped"):
                return record
        return None

    def carry_over(self, keys: set[str], dropped: set[str]) -> None:
        """Keep earlier records (same settings) of images this run does not touch."""
        if self.previous_fingerprint == self.header["fingerprint"]:
            for key, record in self.previous.items():
                if key not in keys and key not in dropped:
                    self.images[key] = record

    # ------------------------------------------------------------------ writing
    def _start_journal(self) -> None:
        line = json.dumps({"journal_header": self.header}, default=json_default,
                          ensure_ascii=False)
        atomic_write(self.journal_path, (line + "\n").encode("utf-8"))
        self._journal = open(self.journal_path, "ab", buffering=0)  # noqa: SIM115

    def add(self, record: dict[str, Any]) -> None:
        """Record an image (its files are written): in memory and, at once, in the journal."""
        self.images[record["input"]] = record
        self._dirty = True
        if self._journal is None:
            self._start_journal()
        line = json.dumps(record, default=json_default, ensure_ascii=False) + "\n"
        self._journal.write(line.encode("utf-8"))

    def write(self, summary: dict[str, Any], *, force: bool = True, final: bool = False) -> bool:
        """Rewrite ``manifest.json`` atomically with ``summary`` and every record.

        ``force=False``: only when something was added and the last write is a few seconds
        old. The journal is then started afresh, or removed when ``final``. Returns whether
        the file was written.
        """
        now = time.monotonic()
        wait = max(_FLUSH_SECONDS, self._write_seconds / _FLUSH_DUTY)
        if not force and (not self._dirty or now - self._last_write < wait):
            return False
        data = {**self.header, "summary": summary, "images": list(self.images.values())}
        atomic_write(self.path, manifest_text(data).encode("utf-8"))
        self._write_seconds = time.monotonic() - now
        self._last_write, self._dirty = now, False
        if self._journal is not None:  # everything is in manifest.json now
            self._journal.close()
            self._journal = None
            if final:
                self.journal_path.unlink(missing_ok=True)
            else:
                self._start_journal()
        return True

    def close(self) -> None:
        """Close the journal (left on disk: a later run recovers it)."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def explain_fingerprint(args: argparse.Namespace, model_id: str, pre: Preprocess,
                        method_kwargs: dict[str, Any], labels: list[str] | None) -> str:
    """A hash of every setting of ``salvo explain`` that changes its outputs.

    A later run into the same folder skips an image only when its fingerprint is the same
    (:meth:`Manifest.done_before`). ``model_id`` is ``zoo:NAME`` or :func:`file_fingerprint`.
    """
    parts = {
        "manifest_version": MANIFEST_VERSION,
        "model": model_id, "task": args.task, "mode": args.mode, "method": args.method,
        "target_layer": args.target_layer, "targets": args.targets,
        "scores_output": args.scores_output, "activation": args.activation,
        "postprocess": args.postprocess,
        "preprocess": asdict(pre), "method_kwargs": method_kwargs, "device": args.device,
        "overlay": args.overlay, "overlay_weight": args.overlay_weight,
        "colormap": not args.no_colormap, "resize": not args.no_resize,
        "max_size": args.max_size, "save_raw": args.save_raw,
        "labels": None if labels is None else hashlib.sha256(
            "\n".join(labels).encode()).hexdigest()[:16],
    }
    text = json.dumps(parts, sort_keys=True, default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def target_record(key: int | str, prediction: Any, labels: list[str] | None,
                  task: Any) -> dict[str, Any]:
    """A manifest entry for one target: index, label, score (and the box for detection)."""
    score = None if prediction is None or prediction.score is None else float(prediction.score)
    if isinstance(key, str):
        return {"index": key, "label": None, "score": score}
    if task is Task.CLASSIFICATION:
        return {"index": int(key), "label": label_of(labels, key), "score": score}
    entry: dict[str, Any] = {"index": int(key), "score": score}
    if prediction is not None:
        entry["class"] = None if prediction.label is None else int(prediction.label)
        entry["label"] = label_of(labels, prediction.label)
        if prediction.bounding_box is not None:
            entry["box"] = [float(v) for v in prediction.bounding_box]
    return entry
