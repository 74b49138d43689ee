"""``results.parquet``: the results of ``salvo explain`` as a table, one row per image × target.

The manifest decides (what a later run skips, what is done); the table is a view of the
manifest's records, computed by one function (:func:`table_rows`), so the two never disagree:

* while a run goes on, whenever it rewrites ``manifest.json`` it also writes the rows of the
  records added since as a *part* file, ``.salvo-table/part-<run>-<n>.parquet`` (Parquet files
  cannot be appended to);
* at the end of the run (and when a later run recovers an interrupted one), ``results.parquet``
  is rewritten atomically from the final manifest's records and the part files are removed.

Only the run holding the output folder's lock (:class:`salvo.files.FolderLock`) touches these
files, so two runs never write them at once. Every file is written with
:func:`salvo.files.atomic_write`: a reader sees the previous table or the new one, never a
partial one.

The table needs pyarrow (the ``table`` extra; the ``ray`` extra brings it too). Without it,
``salvo explain`` writes no table and says so in one line (:data:`NO_PYARROW_NOTE`).

Columns (:func:`schema`): ``input`` (the manifest key), ``name``, ``path``, ``status`` (done,
skipped, failed), ``image_height``, ``image_width``, ``target`` (class index, box index for
detection; null for a per-image map or a failed image), ``label``, ``score``, ``box_class``,
``box`` (detection: class and ``[x1, y1, x2, y2]`` in model-input pixels), ``method``,
``inferences`` and ``seconds`` (of the image, repeated on each of its rows), ``reliability``
(RISE and D-RISE: the map's estimated correlation with the converged map; null for other
methods and for a map without information), ``output`` and
``raw_output`` (files relative to the output folder), ``host``, ``node`` (the Ray node id;
null for a local run), ``pid`` (of the process that explained the image), ``error``.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from salvo.cli.shared import say
from salvo.files import atomic_write

__all__ = [
    "COLUMNS",
    "NO_PYARROW_NOTE",
    "PARTS",
    "TABLE",
    "ResultsTable",
    "have_pyarrow",
    "rows_to_table",
    "schema",
    "table_rows",
]

#: The table's file name in the output folder.
TABLE = "results.parquet"
#: The folder of the running command's part files (hidden; removed at the end of a run).
PARTS = ".salvo-table"
#: The one line said when pyarrow is missing.
NO_PYARROW_NOTE = ("salvo: note: no results table (results.parquet): pyarrow is not installed "
                   "(pip install 'salvo-xai[table]')")

#: Column names and their Arrow types (as :func:`schema` builds them).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("input", "string"), ("name", "string"), ("path", "string"), ("status", "string"),
    ("image_height", "int32"), ("image_width", "int32"),
    ("target", "int64"), ("label", "string"), ("score", "float64"),
    ("box_class", "int64"), ("box", "list<float64>"),
    ("method", "string"), ("inferences", "int64"), ("seconds", "float64"),
    ("reliability", "float64"),
    ("output", "string"), ("raw_output", "string"),
    ("host", "string"), ("node", "string"), ("pid", "int64"), ("error", "string"),
)


def have_pyarrow() -> bool:
    """Whether pyarrow can be imported (then :class:`ResultsTable` works)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def schema() -> Any:
    """The table's ``pyarrow.Schema`` (:data:`COLUMNS`; every column nullable)."""
    import pyarrow as pa

    types = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64(),
             "float64": pa.float64(), "list<float64>": pa.list_(pa.float64())}
    return pa.schema([pa.field(name, types[kind]) for name, kind in COLUMNS])


def _int(value: Any) -> int | None:
    return None if value is None or isinstance(value, bool) else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def table_rows(record: Mapping[str, Any], method: str | None) -> list[dict[str, Any]]:
    """The table rows of one manifest record: one per target of a done (or skipped) image, one
    (without target) for a failed image.

    Parameters
    ----------
    record
        An image's record in ``manifest.json`` (``input``, ``name``, ``path``, ``status``,
        ``image_size``, ``targets``, ``outputs``, ``raw``, ``inferences``, ``seconds``,
        ``worker``, ``reason``).
    method
        The run's method (``manifest.json``'s ``parameters.method``).

    Returns
    -------
    list of dict
        Rows with the keys of :data:`COLUMNS`.
    """
    size = record.get("image_size") or [None, None]
    worker = record.get("worker") or {}
    status = str(record.get("status", ""))
    base = {
        "input": str(record.get("input", "")), "name": record.get("name"),
        "path": record.get("path"), "status": status,
        "image_height": _int(size[0]), "image_width": _int(size[1]),
        "target": None, "label": None, "score": None, "box_class": None, "box": None,
        "method": method, "inferences": _int(record.get("inferences")),
        "seconds": _float(record.get("seconds")), "reliability": None,
        "output": None, "raw_output": None,
        "host": worker.get("host"), "node": worker.get("node"), "pid": _int(worker.get("pid")),
        "error": None,
    }
    if status == "failed":
        return [{**base, "error": record.get("reason")}]
    outputs = list(record.get("outputs") or [])
    raw = list(record.get("raw") or [])
    rows = []
    for i, target in enumerate(record.get("targets") or []):
        index = target.get("index")
        row = {**base,
               "target": index if isinstance(index, int) else None,
               "label": target.get("label") if isinstance(index, int) else str(index),
               "score": _float(target.get("score")),
               "reliability": _float(target.get("reliability")),
               "output": outputs[i] if i < len(outputs) else None,
               "raw_output": raw[i] if i < len(raw) else None}
        if "class" in target:
            row["box_class"] = _int(target.get("class"))
            box = target.get("box")
            row["box"] = None if box is None else [float(v) for v in box]
        rows.append(row)
    return rows


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> Any:
    """A ``pyarrow.Table`` of ``rows`` (dicts with the keys of :data:`COLUMNS`)."""
    import pyarrow as pa

    rows = list(rows)
    columns = {name: [row.get(name) for row in rows] for name, _ in COLUMNS}
    return pa.Table.from_pydict(columns, schema=schema())


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


class ResultsTable:
    """The results table of one run in ``folder`` (which the run has locked).

    Parameters
    ----------
    folder
        The output folder.
    method
        The run's method, a column of every row.

    Raises
    ------
    ModuleNotFoundError
        pyarrow is not installed (check :func:`have_pyarrow` first).
    """

    def __init__(self, folder: Path, method: str | None) -> None:
        if not have_pyarrow():
            raise ModuleNotFoundError("the results table needs pyarrow: pip install "
                                      "'salvo-xai[table]'")
        self.folder = folder
        self.path = folder / TABLE
        self.parts = folder / PARTS
        self.method = method
        self.run_id = uuid.uuid4().hex[:12]
        self._pending: list[dict[str, Any]] = []
        self._count = 0

    def add(self, record: Mapping[str, Any]) -> None:
        """Queue the rows of a record for the next part file."""
        self._pending.extend(table_rows(record, self.method))

    def write_part(self) -> Path | None:
        """Write the queued rows as a new part file (atomically); return it (``None``: nothing
        was queued)."""
        if not self._pending:
            return None
        self.parts.mkdir(exist_ok=True)
        self._count += 1
        path = self.parts / f"part-{self.run_id}-{self._count:06d}.parquet"
        atomic_write(path, _parquet_bytes(rows_to_table(self._pending)))
        self._pending = []
        return path

    def merge(self, records: Iterable[Mapping[str, Any]]) -> Path:
        """Rewrite ``results.parquet`` atomically from ``records`` (the final manifest's), then
        remove the part files."""
        rows = [row for record in records for row in table_rows(record, self.method)]
        atomic_write(self.path, _parquet_bytes(rows_to_table(rows)))
        self._pending = []
        remove_parts(self.folder)
        return self.path


def remove_parts(folder: Path) -> int:
    """Remove the part files (and their folder) of a run in ``folder``; return how many."""
    parts = folder / PARTS
    if not parts.is_dir():
        return 0
    count = sum(1 for _ in parts.glob("*.parquet"))
    shutil.rmtree(parts, ignore_errors=True)
    return count


def drop_stale_table(folder: Path) -> None:
    """Remove a ``results.parquet`` that could not be rebuilt (no pyarrow, or the write
    failed): it would no longer match the manifest. Part files go too; said in one line."""
    remove_parts(folder)
    path = folder / TABLE
    if path.is_file():
        try:
            os.unlink(path)
            say(f"salvo: note: removed {path}: it could not be brought up to date with "
                "manifest.json")
        except OSError as exc:
            say(f"salvo: warning: {path} is out of date and could not be removed ({exc})")
