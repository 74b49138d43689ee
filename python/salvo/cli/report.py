"""``report/``: a static HTML report of a ``salvo explain`` run, browsable from disk.

The report is written from the run's manifest (:func:`write_report`), so a local run and a Ray
run give the same report. It is a folder inside the output folder::

    report/index.html          the page (opens from file://, no server, no network)
    report/report.js, .css     its code and style
    report/data/<run>-meta.js  the run: command, versions, device, model, method, legend
    report/data/<run>-N.js     the rows, in shards loaded by <script src> (no fetch/XHR,
                               which Chromium refuses to file:// pages)
    report/thumbs/...          small JPEG thumbnails, written with the maps (see below)

One row per image and target (as ``results.parquet``), one per failed image with its reason.
The page shows the first page of rows as soon as the first shard is loaded and loads the
others after it; filtering by class and sorting by score work once all are loaded.

Thumbnails (:func:`write_thumbnails`), long side at most :data:`THUMB_SIZE` pixels, are
written by whoever writes the maps (the ``salvo explain`` process, or a Ray actor):
``thumbs/input/<folder>/<file>.jpg`` (the part of the image the model saw),
``thumbs/map/<output>`` (the map as written) and ``thumbs/overlay/<output>`` (the map blended
over the image; for ``--overlay`` runs the written map is that blend and no plain map is kept).
Their paths, relative to the output folder, are in the image's manifest record (``thumbs``).
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from salvo.cli.inputs import output_place
from salvo.explainer.visualizer import apply_colormap
from salvo.files import atomic_write, fit_name

__all__ = [
    "REPORT",
    "ROW_FIELDS",
    "THUMB_SIZE",
    "report_rows",
    "thumbnail",
    "write_report",
    "write_thumbnails",
]

#: The report's folder in the output folder.
REPORT = "report"
#: Long side of the thumbnails, pixels.
THUMB_SIZE = 160
#: Rows of the first data shard (small, so the first page shows at once) and of the others.
FIRST_SHARD_ROWS = 1000
SHARD_ROWS = 20000
#: What each row of a data shard holds, in order (the page reads rows by these positions).
ROW_FIELDS = ("name", "status", "label", "class", "score", "target", "output", "thumb_input",
              "thumb_map", "thumb_overlay", "inferences", "seconds", "reason", "box")
_JPEG_QUALITY = 82
_ASSETS = ("report.js", "report.css")


# ================================================================================ thumbnails


def thumbnail(image: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """``image`` scaled down (area interpolation) so that its long side is at most ``size``.

    Parameters
    ----------
    image
        ``(H, W)`` or ``(H, W, 3)`` array; uint8, or any real type (min-max scaled to uint8).
    size
        Long side, pixels (>= 1).

    Returns
    -------
    numpy.ndarray
        uint8, same number of channels; the image itself (as uint8) when it is small already.
    """
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        lo, hi = (float(np.nanmin(a)), float(np.nanmax(a))) if a.size else (0.0, 0.0)
        a = np.nan_to_num((a - lo) * (255.0 / (hi - lo)) if hi > lo else a * 0)
        a = np.clip(a, 0, 255).astype(np.uint8)
    h, w = a.shape[:2]
    if max(h, w) <= size:
        return np.ascontiguousarray(a)
    scale = size / max(h, w)
    dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(a, dsize, interpolation=cv2.INTER_AREA)


def _write(path: Path, data: bytes) -> None:
    """``data`` into ``path`` atomically, its folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)


def _jpeg(rgb: np.ndarray) -> bytes:
    pixels = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise OSError("OpenCV could not encode a thumbnail as JPEG")
    return buf.tobytes()


def write_thumbnails(out: Path, name: str, picture: np.ndarray | None,
                     maps: Sequence[np.ndarray], outputs: Sequence[Path], *,
                     overlaid: bool, overlay_weight: float) -> dict[str, Any]:
    """Write the thumbnails of one image and its maps into ``out/report/thumbs``.

    Parameters
    ----------
    out
        The output folder.
    name
        The image's relative path (its outputs are named after it).
    picture
        Thumbnail (or full picture) of the part of the image the model saw, ``(H, W, 3)``
        uint8 RGB; ``None``: no input thumbnail, no overlays.
    maps, outputs
        The maps as written (``(H, W, 3)`` RGB or ``(H, W)`` grey) and their files (inside
        ``out``), in the same order.
    overlaid
        The maps are overlays already (``--overlay``): they are the overlay thumbnails.
    overlay_weight
        Weight of the map in the overlays made here.

    Returns
    -------
    dict
        ``{"input": path | None, "maps": [path | None], "overlays": [path | None]}``,
        paths relative to ``out`` (POSIX).
    """
    base = out / REPORT / "thumbs"
    folder, prefix = output_place(name)
    small = None if picture is None else thumbnail(picture)
    record: dict[str, Any] = {"input": None, "maps": [], "overlays": []}
    if small is not None:
        path = base / "input" / folder / fit_name(prefix[:-1], ".jpg")
        _write(path, _jpeg(small))
        record["input"] = path.relative_to(out).as_posix()
    for smap, output in zip(maps, outputs):
        rel = Path(output).relative_to(out)
        thumb = thumbnail(smap)
        plain = overlay = None
        if overlaid:
            overlay = thumb
        else:
            plain = thumb
            if small is not None and thumb.ndim == 3:
                under = cv2.resize(small, (thumb.shape[1], thumb.shape[0]),
                                   interpolation=cv2.INTER_AREA)
                blend = under * (1 - overlay_weight) + thumb * overlay_weight
                overlay = np.clip(blend, 0, 255).astype(np.uint8)
        for kind, image in (("map", plain), ("overlay", overlay)):
            if image is None:
                record[kind + "s"].append(None)
                continue
            path = base / kind / rel
            _write(path, _jpeg(image))
            record[kind + "s"].append(path.relative_to(out).as_posix())
    return record


# ================================================================================ the report


def report_rows(images: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """The rows of the report (:data:`ROW_FIELDS`) from manifest records, in their order.

    A done (or skipped) image gives one row per target: its label (the class name, else
    ``None``), its class index (classification: the target; detection: the box's class),
    score, output and thumbnails; a failed image gives one row with its ``reason``.
    """
    rows: list[list[Any]] = []
    for r in images:
        name = r.get("name") or r.get("input")
        status = r.get("status", "done")
        thumbs = r.get("thumbs") or {}
        inferences, seconds = r.get("inferences"), r.get("seconds")
        if status == "failed":
            rows.append([name, status, None, None, None, None, None, thumbs.get("input"),
                         None, None, inferences, seconds, r.get("reason") or "failed", None])
            continue
        targets = r.get("targets") or []
        outputs = r.get("outputs") or []
        maps, overlays = thumbs.get("maps") or [], thumbs.get("overlays") or []
        if not targets:
            rows.append([name, status, None, None, None, None, None, thumbs.get("input"),
                         None, None, inferences, seconds, r.get("reason"), None])
            continue
        for i, t in enumerate(targets):
            index = t.get("index")
            cls = t.get("class", index if isinstance(index, int) else None)
            rows.append([
                name, status, t.get("label"), cls, t.get("score"), index,
                outputs[i] if i < len(outputs) else None, thumbs.get("input"),
                maps[i] if i < len(maps) else None, overlays[i] if i < len(overlays) else None,
                inferences, seconds, r.get("reason"), t.get("box"),
            ])
    return rows


def legend(colormap: bool) -> list[str]:
    """CSS colours from a map's lowest value to its highest (JET, or grey)."""
    levels = np.linspace(0, 255, 11).astype(np.uint8)
    if colormap:
        rgb = apply_colormap(levels[None, :])[0]
    else:
        rgb = np.repeat(levels[:, None], 3, axis=1)
    return [f"rgb({r},{g},{b})" for r, g, b in rgb.tolist()]


def report_meta(data: Mapping[str, Any], shards: list[str], num_rows: int) -> dict[str, Any]:
    """What the page shows about the run (the manifest's header, summarised)."""
    params = data.get("parameters") or {}
    command = data.get("command") or []
    return {
        "title": "salvo explain report",
        "command": shlex.join(str(c) for c in command) if isinstance(command, list)
        else str(command),
        "cwd": data.get("cwd"), "versions": data.get("versions") or {},
        "device": data.get("device") or {}, "model": data.get("model") or {},
        "task": params.get("task"), "mode": params.get("mode"), "method": params.get("method"),
        "method_kwargs": params.get("method_kwargs") or {}, "targets": params.get("targets"),
        "labels": params.get("labels"), "overlay": bool(params.get("overlay")),
        "summary": data.get("summary") or {}, "ignored": len(data.get("ignored") or []),
        "legend": legend(params.get("colormap", True) is not False),
        "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "fields": list(ROW_FIELDS), "rows": num_rows, "shards": shards,
    }


def _js(value: Any) -> str:
    """``value`` as a JavaScript literal (JSON; U+2028/2029, line ends in older JavaScript,
    escaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                      default=str)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or np.isfinite(value) else None


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>salvo explain report</title>
<link rel="stylesheet" href="report.css">
<script src="data/{meta}"></script>
<script src="report.js" defer></script>
</head>
<body data-loaded="none">
<noscript>This report needs JavaScript. The same results are in ../manifest.json.</noscript>
<header id="run"></header>
<section id="controls">
  <label>class <select id="class-filter" disabled><option value="">all</option></select></label>
  <label>sort <select id="sort" disabled>
    <option value="input">input order</option>
    <option value="score-desc">score, highest first</option>
    <option value="score-asc">score, lowest first</option>
  </select></label>
  <button id="prev" type="button">&larr; previous</button>
  <span id="page-info"></span>
  <button id="next" type="button">next &rarr;</button>
  <span id="status">loading…</span>
</section>
<table id="rows">
<thead><tr><th>#</th><th>input</th><th>map</th><th>overlay</th><th>label</th><th>score</th>
<th>method</th><th>inferences</th><th>seconds</th><th>status</th></tr></thead>
<tbody></tbody>
</table>
</body>
</html>
"""


def write_report(out: Path, data: Mapping[str, Any]) -> Path:
    """Write ``out/report/`` for the manifest ``data`` (header and ``images``).

    Every file is written atomically; the data files carry a new run token and the page,
    written last, names them, so a reader sees the previous report or the new one. Data files
    of earlier reports are removed afterwards. Nothing is written outside ``out/report``.

    Returns
    -------
    pathlib.Path
        ``out/report/index.html``.
    """
    folder = out / REPORT
    data_dir = folder / "data"
    rows = report_rows(r for r in data.get("images", []) if isinstance(r, Mapping))
    for row in rows:
        row[4] = _finite(row[4])
    token = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    bounds = [0, min(len(rows), FIRST_SHARD_ROWS)]
    while bounds[-1] < len(rows):
        bounds.append(min(len(rows), bounds[-1] + SHARD_ROWS))
    shards = []
    for n, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        shard = f"{token}-{n:04d}.js"
        text = f"SALVO_REPORT.shard({n}, {_js(rows[lo:hi])});\n"
        _write(data_dir / shard, text.encode())
        shards.append(shard)
    meta = f"{token}-meta.js"
    text = "var SALVO_REPORT = {shards: {}, meta: " + _js(report_meta(data, shards, len(rows)))
    text += "};\n"
    _write(data_dir / meta, text.encode())
    for asset in _ASSETS:
        _write(folder / asset, resources.files("salvo.cli").joinpath(
            "report_assets", asset).read_bytes())
    page = folder / "index.html"
    _write(page, _PAGE.replace("{meta}", meta).encode())
    keep = set(shards) | {meta}
    for old in data_dir.iterdir():
        if old.name not in keep and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}-(meta|\d{4})\.js",
                                                 old.name):
            old.unlink(missing_ok=True)
    return page
