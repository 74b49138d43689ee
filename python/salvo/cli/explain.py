"""``salvo explain``: explain files, folders and globs of images into a folder of saliency maps.

The run, step by step (:func:`run_explain`):

1. :func:`check_explain_flags`, :func:`~salvo.cli.inputs.expand_inputs`: the command line and
   the images, checked before anything is loaded.
2. :func:`resolve_setup`: the model, its preprocessing, labels, task, scores and targets
   (:class:`ExplainSetup`).
3. :func:`build_explainer`: the :class:`salvo.Explainer` and the keywords of its calls.
4. :func:`manifest_header`: what ``manifest.json`` records about the run.
5. :func:`explain_into`: locks ``--out``, recovers an interrupted run's journal, and hands the
   images to an :class:`ExplainRun`, which skips what an earlier run did, has the rest
   explained by an :class:`ImageWorker` (streaming them through
   :func:`salvo.bulk.explain_stream` and writing each image's maps) and records each image in
   the manifest and the results table (:mod:`salvo.cli.table`).

:mod:`salvo.distributed` runs the same steps with the images explained by Ray actors, each
owning an :class:`ImageWorker`: the same output names, fingerprints, records and maps.
"""

from __future__ import annotations

import argparse
import ast
import io
import logging
import math
import os
import re
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import salvo
from salvo.bulk import BulkJob, BulkResult, explain_stream
from salvo.cli.detection import with_boxes
from salvo.cli.inputs import ImageTask, Inputs, expand_inputs, report_ignored, target_file_label
from salvo.cli.manifest import (
    LOCK,
    MANIFEST,
    MANIFEST_VERSION,
    Manifest,
    explain_fingerprint,
    file_fingerprint,
    target_record,
)
from salvo.cli.models import (
    DetectionOutputs,
    ScoresOutput,
    ZooModel,
    classes_in_output,
    label_of,
    load_labels,
    load_model,
    parse_targets,
    target_text,
)
from salvo.cli.report import REPORT, thumbnail, write_report, write_thumbnails
from salvo.cli.shared import check_writable_folder, device_name, say, versions
from salvo.cli.table import (
    NO_PYARROW_NOTE,
    TABLE,
    ResultsTable,
    drop_stale_table,
    have_pyarrow,
    remove_parts,
)
from salvo.common import BLACKBOX_METHODS, WHITEBOX_METHODS, ExplainMode, Method, Task
from salvo.errors import UsageError
from salvo.explainer.explanation import Explanation
from salvo.files import FolderBusyError, FolderLock, atomic_write, remove_temporaries
from salvo.methods.black_box.rise import MANY_TARGETS
from salvo.preprocess import (
    ModelInput,
    Preprocess,
    apply_preprocess,
    describe_preprocess,
    parse_preprocess,
    prepare_model,
    read_image,
    shrink_to,
)

__all__ = ["ExplainRun", "ExplainSetup", "ImageWorker", "run_explain"]

logger = logging.getLogger(__name__)

#: ``--flag`` → method keyword, passed to the Explainer when given.
_METHOD_FLAGS = ("preset", "num_masks", "num_cells", "prob", "seed", "mask_design",
                 "target_reliability",
                 "num_iterations_per_kernel", "kernel_widths", "solver_epsilon", "batch_size",
                 "num_requests", "precision")


def with_reliability(entry: dict[str, Any], value: float | None) -> dict[str, Any]:
    """``entry`` with the map's ``reliability`` (RISE, D-RISE) when the method reported one;
    ``None`` (JSON null) for NaN, a map without information."""
    if value is not None:
        entry["reliability"] = None if math.isnan(value) else round(float(value), 6)
    return entry


# ================================================================================ command line


def check_explain_flags(args: argparse.Namespace) -> None:
    """Refuse contradictory or out-of-range options (:class:`UsageError` naming them)."""
    if args.overlay and args.no_resize:
        raise UsageError("--overlay draws on the image, so it cannot be combined with --no-resize")
    if args.overlay and args.no_colormap:
        raise UsageError("--overlay blends a coloured map, so it cannot be combined with "
                         "--no-colormap")
    if not 0 <= args.overlay_weight <= 1:
        raise UsageError(f"--overlay-weight must be in [0, 1], got {args.overlay_weight}")
    method = Method(args.method) if args.method else None
    if args.mode == "whitebox" and method in BLACKBOX_METHODS:
        raise UsageError(f"--mode whitebox contradicts --method {args.method} (a black-box "
                         "method)")
    if args.mode == "blackbox" and method in WHITEBOX_METHODS:
        raise UsageError(f"--mode blackbox contradicts --method {args.method} (a white-box "
                         "method)")
    for flag in ("num_masks", "num_cells", "batch_size", "num_requests",
                 "num_iterations_per_kernel", "ray_workers", "ray_batch"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if "://" in str(args.out):
        raise UsageError(f"--out '{args.out}' is a URI: give a folder path (local, or a shared "
                         "folder mounted at the same path on every node for --ray)")
    check_ray_flags(args)


def check_ray_flags(args: argparse.Namespace) -> None:
    """Refuse Ray options without ``--ray``, a CPU count that is not positive, and an
    ``--ray`` ADDRESS that is an existing file or folder (an image taken as the address)."""
    ray = getattr(args, "ray", None)
    if ray is None:
        for flag in ("ray_workers", "ray_batch", "ray_cpus"):
            if getattr(args, flag, None) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} is for --ray runs; add --ray")
        return
    cpus = getattr(args, "ray_cpus", None)
    if cpus is not None and not cpus >= 0:
        raise UsageError(f"--ray-cpus must be >= 0, got {cpus}")
    if ray and os.path.exists(ray):
        raise UsageError(f"--ray took '{ray}' as the cluster's address, but it is a file or "
                         "folder: put --ray after the images, or write --ray=ADDRESS")


def method_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The method keywords of the command line: the method flags that were given, then every
    ``--param KEY=VALUE`` (values read as Python literals, else kept as strings)."""
    kwargs: dict[str, Any] = {}
    for flag in _METHOD_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            kwargs[flag] = value
    for item in args.param or []:
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key.isidentifier():
            raise UsageError(f"--param {item!r}: expected KEY=VALUE")
        try:
            kwargs[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            kwargs[key] = value.strip()
    return kwargs


@dataclass
class ExplainSetup:
    """What the command line resolves to before any image is read.

    Attributes
    ----------
    model
        The model, reshaped to a static input where it had a dynamic one.
    zoo_entry
        Its :data:`~salvo.cli.models.ZOO_MODELS` entry (``zoo:NAME`` models).
    pre, info
        The preprocessing and the model input it feeds.
    default_pre
        No ``--preprocess`` was given and the model is not a zoo model (a note says what is
        done).
    labels
        Class names (``--labels``, or a zoo detector's own).
    task
        Classification or detection.
    post_kind
        ``--postprocess`` (or the zoo detector's), ``None`` for classification.
    output
        ``--scores-output`` as an index or a name.
    num_classes
        Classes of that output (classification; ``None`` when unknown).
    targets
        What to explain: ``-1``, a list of indices, or a ``topK`` function.
    method_kwargs
        The method keywords (:func:`method_kwargs`).
    """

    model: Any
    zoo_entry: ZooModel | None
    pre: Preprocess
    info: ModelInput
    default_pre: bool
    labels: list[str] | None
    task: Task
    post_kind: str | None
    output: int | str
    num_classes: int | None
    targets: Any
    method_kwargs: dict[str, Any]


def resolve_setup(args: argparse.Namespace) -> ExplainSetup:
    """Load the model and check everything the images will need (:class:`ExplainSetup`).

    Raises
    ------
    UsageError
        A bad ``--param``, model, ``--preprocess``, ``--labels``, ``--postprocess``,
        ``--scores-output`` or ``--targets``.
    """
    kwargs = method_kwargs(args)
    model, zoo_entry = load_model(args.model)
    default_pre = args.preprocess is None and zoo_entry is None
    pre = parse_preprocess(args.preprocess or (zoo_entry.preprocess if zoo_entry else "raw"))
    model, info = prepare_model(model, pre)
    labels = load_labels(args.labels)
    task = Task(args.task or (zoo_entry.task if zoo_entry else "classification"))
    if labels is None and zoo_entry is not None and zoo_entry.labels is not None and \
            task is not Task.CLASSIFICATION:
        labels = list(zoo_entry.labels)
    post_kind = args.postprocess or (zoo_entry.postprocess if zoo_entry else None)
    if post_kind is not None and task is Task.CLASSIFICATION:
        raise UsageError("--postprocess is for --task detection (classification scores come "
                         "from --scores-output)")
    output: int | str = int(args.scores_output) if re.fullmatch(r"\d+", args.scores_output) \
        else args.scores_output
    num_classes = classes_in_output(model, output) if task is Task.CLASSIFICATION else None
    if labels is not None and num_classes is not None and len(labels) != num_classes:
        say(f"salvo: warning: --labels has {len(labels)} names for a model with "
            f"{num_classes} classes")
    targets = parse_targets(args.targets or ("top1" if task is Task.CLASSIFICATION else "all"),
                            labels, num_classes)
    if task is not Task.CLASSIFICATION and callable(targets):
        raise UsageError("--targets topK is for classification; give box indices or 'all'")
    if (isinstance(targets, int) and targets == -1 and num_classes is not None
            and num_classes > MANY_TARGETS and getattr(args, "target_reliability", None)):
        say(f"salvo: warning: --target-reliability waits for every explained class, and "
            f"--targets all explains {num_classes}: classes whose scores hardly react to the "
            "masks rarely reach it, so each image will likely use all --num-masks; use "
            "--targets topK or name the classes of interest")
    return ExplainSetup(model, zoo_entry, pre, info, default_pre, labels, task, post_kind,
                        output, num_classes, targets, kwargs)


def build_explainer(args: argparse.Namespace, setup: ExplainSetup
                    ) -> tuple[salvo.Explainer, dict[str, Any]]:
    """The Explainer of the run (its warnings said as one line each) and the keywords of its
    calls."""
    task = setup.task
    if task is Task.CLASSIFICATION:
        postprocess: Any = ScoresOutput(setup.output, args.activation)
    else:
        postprocess = None if setup.post_kind is None else DetectionOutputs(setup.post_kind,
                                                                            setup.info.size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explainer = salvo.Explainer(
            setup.model, task, postprocess_fn=postprocess,
            explain_mode=ExplainMode(args.mode),
            explain_method=None if args.method is None else Method(args.method),
            target_layer=(args.target_layer.split(",") if args.target_layer and task is not
                          Task.CLASSIFICATION else args.target_layer),
            embed_scaling=not args.save_raw, device_name=args.device, **setup.method_kwargs,
        )
    for w in caught:
        say(f"salvo: warning: {w.message}")
    call_kwargs: dict[str, Any] = {"progress": False}
    if args.save_raw and "scale_output" in type(explainer.method).keywords():
        call_kwargs["scale_output"] = False
    return explainer, call_kwargs


def manifest_header(args: argparse.Namespace, setup: ExplainSetup, explainer: salvo.Explainer,
                    inputs: Inputs) -> dict[str, Any]:
    """Everything ``manifest.json`` records about the run besides its images, fingerprint
    included."""
    pre, info = setup.pre, setup.info
    model_id = args.model if args.model.startswith("zoo:") else file_fingerprint(args.model)
    return {
        "manifest_version": MANIFEST_VERSION,
        "command": ["salvo", *args.argv],
        "cwd": os.getcwd(),
        "versions": versions(),
        "device": {"requested": args.device, "name": device_name(args.device)},
        "model": {"source": args.model, "input": info.name, "layout": info.layout,
                  "size": list(info.size), "dtype": str(info.dtype),
                  "num_classes": setup.num_classes},
        "parameters": {
            "task": setup.task.value, "mode": explainer.explain_mode.value,
            "method": explainer.explain_method.value, "requested_mode": args.mode,
            "requested_method": args.method, "method_kwargs": setup.method_kwargs,
            "target_layer": args.target_layer, "targets": target_text(setup.targets),
            "scores": {"output": setup.output, "activation": args.activation},
            "postprocess": setup.post_kind,
            "labels": args.labels, "preprocess": {**asdict(pre), "description":
                                                  describe_preprocess(pre, info)},
            "overlay": args.overlay, "overlay_weight": args.overlay_weight,
            "colormap": not args.no_colormap, "resize": not args.no_resize,
            "max_size": args.max_size, "max_pixels": args.max_pixels,
            "save_raw": args.save_raw,
        },
        "fingerprint": explain_fingerprint(args, model_id, pre, setup.method_kwargs,
                                           setup.labels),
        "notes": "name: the image's path relative to the folder, glob or file it was given "
                 "by; its outputs are <name's folders>/<name's file name>.<target>.jpg. "
                 "seconds: wall time of the image (packed runs: from its first inference's "
                 "submission to its map; images overlap). scores: as the model outputs them "
                 "(--activation). box (detection): x1, y1, x2, y2 in model-input pixels. "
                 "image_size: [H, W] of the file; region: the part of it the model saw, "
                 "[y0, y1, x0, x1]; output_size: [H, W] of the written maps (--max-size). "
                 "outputs: file paths inside this folder.",
        "ignored": [{"path": str(p), "reason": why} for p, why in inputs.ignored],
    }


#: Makes the run of :func:`prepare_run`: ``(args, explainer, setup, out, call_kwargs)`` →
#: :class:`ExplainRun` (the class itself, a subclass, or a function making one).
RunFactory = Callable[[argparse.Namespace, "salvo.Explainer", ExplainSetup, Path, dict[str, Any]],
                      "ExplainRun"]


def run_explain(args: argparse.Namespace, run_class: RunFactory | None = None) -> int:
    """``salvo explain``: see ``salvo explain --help``. Returns the exit status (0: every image
    done or skipped, 1: at least one failed).

    ``run_class`` explains the images that are to be done (default :class:`ExplainRun`: in
    this process; :mod:`salvo.distributed` passes its Ray runner).
    """
    prepared = prepare_run(args, run_class or ExplainRun)
    return explain_into(*prepared)


def prepare_run(args: argparse.Namespace, run_class: RunFactory, *,
                expand: bool = True) -> tuple[Path, bool, dict[str, Any], argparse.Namespace,
                                              ExplainRun, list[ImageTask] | None]:
    """Everything :func:`explain_into` takes, checked before anything is written: the output
    folder, whether it existed, the manifest header, the command line, the run (a
    ``run_class``) and the images (``expand=False``: ``None``, the run knows its images).

    Raises
    ------
    UsageError
        A bad command line, model, input or output folder.
    """
    check_explain_flags(args)
    out = Path(args.out)
    inputs = expand_inputs(args.images, args.recursive, out) if expand else Inputs([])
    report_ignored(inputs.ignored)
    setup = resolve_setup(args)
    existed = check_writable_folder(out)
    explainer, call_kwargs = build_explainer(args, setup)
    note_default_preprocess(setup)
    header = manifest_header(args, setup, explainer, inputs)
    run = run_class(args, explainer, setup, out, call_kwargs)
    return out, existed, header, args, run, (inputs.tasks if expand else None)


def note_default_preprocess(setup: ExplainSetup) -> None:
    """Say how images become the model input when no ``--preprocess`` was given for a model
    that is not a zoo model."""
    if setup.default_pre:
        say(f"salvo: note: no --preprocess given: images are "
            f"{describe_preprocess(setup.pre, setup.info)} (right for models that normalise "
            "inside the graph; see --help for presets)")


# ================================================================================ the run


def explain_into(out: Path, existed: bool, header: dict[str, Any], args: argparse.Namespace,
                 run: ExplainRun, tasks: list[ImageTask] | None) -> int:
    """Lock ``out``, bring its manifest up to date (an interrupted run's journal, temporaries
    and table parts), then explain ``tasks`` with ``run`` (``None``: the run knows its images
    itself). A folder this call created and left empty is removed."""
    out.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(out, LOCK, description="salvo " + " ".join(args.argv)[:300])
    try:
        lock.acquire()
    except FolderBusyError:
        if not existed:
            _remove_if_empty(out)
        raise
    manifest = Manifest(out, header)
    wrote = False
    try:
        stale = remove_temporaries(out)
        if stale:
            say(f"salvo: note: removed {len(stale)} partial file(s) of an interrupted run")
        remove_parts(out)  # the table is rebuilt from the manifest's records at the end
        recovered = manifest.recover()
        if recovered:
            say(f"salvo: note: {recovered} image(s) of an interrupted run were recovered "
                f"from its journal into {manifest.path}")
        manifest.load_previous()
        if manifest.previous and manifest.previous_fingerprint != header["fingerprint"]:
            say(f"salvo: note: {manifest.path} was written with other settings; its images "
                "are explained again")
        code = run.run(tasks, manifest)
        wrote = run.wrote
        return code
    finally:
        manifest.close()
        nothing = not wrote and not manifest.path.exists()
        lock.release(remove=True)
        if not existed and nothing:
            _remove_if_empty(out)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # nothing was written: leave nothing behind
    except OSError:
        pass


def local_worker() -> dict[str, Any]:
    """Where an image is explained, as records and the table give it: host name, Ray node id
    (``None`` here) and process id."""
    return {"host": socket.gethostname(), "node": None, "pid": os.getpid()}


class ImageWorker:
    """Explains images and writes their files into the output folder: the part of a run that
    can happen anywhere (in the ``salvo explain`` process, or in a Ray actor of
    :mod:`salvo.distributed`). It touches neither the manifest nor the table.

    Parameters
    ----------
    args
        The command line (``--save-raw``, ``--max-size``, visualisation flags, …).
    setup, explainer, call_kwargs
        What :func:`resolve_setup` and :func:`build_explainer` made of it.
    out
        The output folder (an absolute path when the worker runs in another process).
    where
        ``{"host", "node", "pid"}`` recorded with each image (default :func:`local_worker`).
    """

    def __init__(self, args: argparse.Namespace, setup: ExplainSetup,
                 explainer: salvo.Explainer, out: Path, call_kwargs: dict[str, Any],
                 where: dict[str, Any] | None = None) -> None:
        self.args = args
        self.setup = setup
        self.explainer = explainer
        self.out = out
        self.call_kwargs = call_kwargs
        self.where = where or local_worker()
        #: thumbnails of the pictures loaded and not yet recorded, by task key (the report)
        self._pictures: dict[str, np.ndarray] = {}
        self.report = not getattr(args, "no_report", False)

    def loader(self, task: ImageTask, image: np.ndarray | None = None
               ) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        """A function reading ``task``'s image (or taking ``image``, an ``(H, W, 3)`` uint8
        RGB array): returns the model input and the picture to draw the maps on (the part the
        model saw, at most ``--max-size``); sets ``task.info``'s ``image_size`` and
        ``region``."""
        pre, info, args = self.setup.pre, self.setup.info, self.args

        def load() -> tuple[np.ndarray, np.ndarray]:
            rgb = read_image(task.path, args.max_pixels) if image is None else \
                check_rgb(image, task.name)
            x, (y0, y1, x0, x1) = apply_preprocess(rgb, pre, info)
            task.info["image_size"] = [int(rgb.shape[0]), int(rgb.shape[1])]
            task.info["region"] = [y0, y1, x0, x1]
            picture = shrink_to(rgb[y0:y1, x0:x1], args.max_size)
            del rgb
            if self.report:
                self._pictures[task.key] = thumbnail(picture)
            return x, picture
        return load

    def records(self, tasks: Iterable[ImageTask], *,
                images: Mapping[str, np.ndarray] | None = None,
                progress: Callable[[float], None] | None = None,
                num_jobs: int | None = None) -> Iterator[dict[str, Any]]:
        """Explain ``tasks`` (packed as :func:`salvo.bulk.explain_stream` packs them), write
        each image's files and yield its manifest record, in task order.

        ``images`` gives the pixels of tasks that are no files (``{task.key: (H, W, 3) uint8
        RGB}``); ``progress`` is called with fractions of an image.
        """
        args, labels = self.args, self.setup.labels
        # label names in file names: whitespace and dots become "_" (the manifest keeps names)
        file_labels = None if labels is None else [target_file_label(n) for n in labels]
        vis = {"resize": not args.no_resize, "colormap": not args.no_colormap,
               "overlay": args.overlay, "overlay_weight": args.overlay_weight}
        jobs = (BulkJob(self.loader(t, None if images is None else images.get(t.key)), t)
                for t in tasks)
        stream = explain_stream(
            self.explainer, jobs, self.setup.targets, label_names=file_labels, vis=vis,
            method_kwargs=self.call_kwargs, keep_raw=args.save_raw, progress=progress,
            num_jobs=num_jobs, pack=not args.no_pack,
        )
        for result in stream:
            yield self.record(result)

    def record(self, result: BulkResult) -> dict[str, Any]:
        """Write one image's files (a failed write fails this image only) and return its
        manifest record (``status`` ``"done"`` or ``"failed"`` with a ``reason``)."""
        t: ImageTask = result.tag
        record: dict[str, Any] = {"input": t.key, "name": t.name, "path": str(t.path), **t.info}
        e = result.explanation
        picture = self._pictures.pop(t.key, None)
        thumbs = None
        if result.error is None:
            try:
                assert e is not None
                written, raw_files, thumbs = self._save(result, e, t, picture)
                if e.shape is not None and len(e.shape) >= 2:
                    record["output_size"] = [int(e.shape[0]), int(e.shape[1])]
            except Exception as exc:  # a write failed: this image only
                result.error = exc
        if result.error is not None:
            reason = f"{type(result.error).__name__}: {result.error}" if not isinstance(
                result.error, (ValueError, OSError)) else str(result.error)
            record.update(status="failed", reason=reason, worker=self.where)
            logger.debug("failure of %s", t.path, exc_info=result.error)
            return record
        assert e is not None
        labels, task = self.setup.labels, self.setup.task
        record.update(
            status="done", outputs=[p.relative_to(self.out).as_posix() for p in written],
            raw=raw_files,
            targets=[with_reliability(target_record(k, e.predictions.get(k), labels, task),
                                      e.reliability.get(k)) for k in e.targets],
            inferences=int(result.num_inferences), seconds=round(result.seconds, 4),
            packed=result.packed, worker=self.where,
        )
        if thumbs is not None:
            record["thumbs"] = thumbs
        scores = result.scores
        if scores is not None and scores.size > 1:
            best = np.argsort(-scores, kind="stable")[:5]
            record["top5"] = [{"index": int(i), "label": label_of(labels, int(i)),
                               "score": float(scores[i])} for i in best]
        return record

    def _save(self, result: BulkResult, e: Explanation, t: ImageTask,
              picture: np.ndarray | None) -> tuple[list[Path], list[str], dict[str, Any] | None]:
        """Write the maps (and with ``--save-raw`` the raw ``.npy`` maps, unless
        ``--no-report`` the report's thumbnails of ``picture`` and the maps) of one image;
        return the map files, the raw files (relative to ``--out``) and the thumbnails'
        record (``None`` with ``--no-report``)."""
        if self.setup.task is not Task.CLASSIFICATION:
            e = with_boxes(e, self.setup.labels, self.setup.info.size)
        folder = self.out / t.folder if t.folder else self.out
        written = e.save(folder, prefix=t.prefix)
        raw_files: list[str] = []
        if self.args.save_raw and result.raw:
            for path, key in zip(written, e.targets):
                npy = path.with_suffix(".npy")
                atomic_write(npy, _npy_bytes(result.raw[key]))
                raw_files.append(npy.relative_to(self.out).as_posix())
        thumbs = None
        if self.report:
            thumbs = write_thumbnails(
                self.out, t.name, picture, [e.saliency_map[k] for k in e.targets], written,
                overlaid=bool(self.args.overlay), overlay_weight=float(self.args.overlay_weight))
        return written, raw_files, thumbs


def check_rgb(image: Any, name: str) -> np.ndarray:
    """``image`` as an ``(H, W, 3)`` uint8 RGB array (a grey ``(H, W)`` or ``(H, W, 1)`` one
    is repeated on three channels; RGBA drops alpha).

    Raises
    ------
    ValueError
        Another shape or element type (the message names the image ``name``).
    """
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"image {name!r}: expected uint8 pixels, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"image {name!r}: expected an (H, W, 3) RGB array, got shape "
                         f"{a.shape}")
    return np.ascontiguousarray(a[:, :, :3])


class ExplainRun:
    """The images of one ``salvo explain`` run, explained into a locked output folder.

    :meth:`run` sorts the images (:meth:`plan`: skipped, in conflict with another input's
    outputs, to do), records the conflicts, has the rest explained (:meth:`explain`: here by
    an :class:`ImageWorker` in this process; :mod:`salvo.distributed` overrides it) and takes
    each image's record as it comes (:meth:`accept`: into the manifest's journal and the
    table's next part), then writes the final manifest, the table and the summary line.

    Attributes
    ----------
    done, skipped, failed
        Images explained, skipped (their outputs exist), failed.
    wrote
        Whether anything was written into the folder.
    table
        The :class:`~salvo.cli.table.ResultsTable` (``None`` without pyarrow).
    """

    def __init__(self, args: argparse.Namespace, explainer: salvo.Explainer,
                 setup: ExplainSetup, out: Path, call_kwargs: dict[str, Any]) -> None:
        self.args = args
        self.explainer = explainer
        self.setup = setup
        self.out = out
        self.call_kwargs = call_kwargs
        self.todo: list[ImageTask] = []
        self.conflicts: list[tuple[ImageTask, dict[str, Any]]] = []
        self.done = self.skipped = self.failed = 0
        self.wrote = False
        self.error: BaseException | None = None
        self.t_start = time.perf_counter()
        self.seen: set[str] = set()
        #: the maps' reliabilities (RISE, D-RISE) of the images explained in this run
        self.reliabilities: list[float] = []
        method = explainer.explain_method.value if explainer.explain_method else None
        self.table: ResultsTable | None = ResultsTable(out, method) if have_pyarrow() else None

    # ------------------------------------------------------------------ planning
    def plan(self, tasks: list[ImageTask] | None, manifest: Manifest) -> None:
        """Sort ``tasks``: skipped (done before with the same settings, outputs present;
        recorded at once), in conflict (another input's outputs have their names; not
        ``--force``), or to do. Earlier records of images not in ``tasks`` are kept."""
        assert tasks is not None, "a run of files is given its images"
        dropped: set[str] = set()
        for t in tasks:
            previous = None if self.args.force else manifest.done_before(t.key, self.out)
            if previous is not None:
                manifest.images[t.key] = {**previous, "name": t.name, "status": "skipped",
                                          "reason": "outputs exist (--force to redo)"}
                self.skipped += 1
                continue
            owner = manifest.owner_of(t)
            if owner is not None and not self.args.force:
                self.conflicts.append((t, owner))
                continue
            if owner is not None:
                dropped.add(owner["input"])
            self.todo.append(t)
        manifest.carry_over({t.key for t in tasks}, dropped)

    def summary(self) -> dict[str, Any]:
        """The manifest's ``summary``: counts, seconds, images per second, complete."""
        elapsed = time.perf_counter() - self.t_start
        done = self.done
        return {"done": done, "skipped": self.skipped, "failed": self.failed,
                "seconds": round(elapsed, 3),
                "images_per_second": round(done / elapsed, 3) if elapsed > 0 and done else None,
                "complete": self.error is None and
                done + self.failed == len(self.todo) + len(self.conflicts)}

    def record_conflicts(self, manifest: Manifest) -> None:
        """Record every image in conflict as failed, with the input that owns the names."""
        for t, owner in self.conflicts:
            reason = (f"its outputs ({t.folder + '/' if t.folder else ''}{t.prefix}*) belong to "
                      f"'{owner['input']}', explained into this folder before; --force replaces "
                      "them, or use another --out")
            self.accept({"input": t.key, "name": t.name, "path": str(t.path),
                         "status": "failed", "reason": reason}, manifest)

    # ------------------------------------------------------------------ explaining
    def explain(self, tasks: list[ImageTask], progress: Callable[[float], None] | None
                ) -> Iterator[dict[str, Any]]:
        """Explain ``tasks``, writing their files; yield one manifest record per image (in any
        order). ``progress`` takes fractions of an image."""
        worker = ImageWorker(self.args, self.setup, self.explainer, self.out, self.call_kwargs)
        yield from worker.records(tasks, progress=progress, num_jobs=len(tasks))

    def accept(self, record: dict[str, Any], manifest: Manifest) -> None:
        """Take one image's record (its files are written): count it, add it to the manifest
        (its journal at once) and to the table's next part; rewrite both every few seconds.
        A second record of an image already taken in this run is dropped."""
        key = record["input"]
        if key in self.seen:
            logger.debug("a second record of %s was dropped", key)
            return
        self.seen.add(key)
        if record.get("status") == "failed":
            self.failed += 1
            say(f"salvo: failed: {record.get('path')}: {record.get('reason')}")
        else:
            self.done += 1
            if record.get("status") == "done":
                for target in record.get("targets") or []:
                    if "reliability" in target:
                        value = target["reliability"]
                        self.reliabilities.append(math.nan if value is None else float(value))
        manifest.add(record)
        self.wrote = True
        if self.table is not None:
            self.table.add(record)
        if manifest.write(self.summary(), force=False) and self.table is not None:
            self._table_step(self.table.write_part)

    def _table_step(self, step: Callable[[], Any]) -> bool:
        """Run a table write; a failure is said and leaves the manifest the record of the run
        (the table is only a view of it). Returns whether it worked."""
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - OSError, or any of pyarrow's errors
            say(f"salvo: error: could not write the results table: {exc}")
            return False
        return True

    def finish(self, manifest: Manifest) -> None:
        """Write the final manifest and rebuild the table from its records (also after an
        error or an interrupt: what was done is recorded)."""
        if not (self.wrote or self.skipped or manifest.previous):
            return
        try:
            manifest.write(self.summary(), final=True)
            self.wrote = True
        except OSError as exc:
            say(f"salvo: error: could not write {manifest.path}: {exc}")
            return
        if self.table is not None:
            table = self.table
            if not self._table_step(lambda: table.merge(manifest.images.values())):
                drop_stale_table(self.out)
        else:
            drop_stale_table(self.out)
            say(NO_PYARROW_NOTE)
        if not getattr(self.args, "no_report", False):
            data = {**manifest.header, "summary": self.summary(),
                    "images": list(manifest.images.values())}
            try:
                write_report(self.out, data)
            except Exception as exc:  # noqa: BLE001 - a view of the manifest: never fail the run
                say(f"salvo: error: could not write the report {self.out / REPORT}: {exc}")

    def _progress_bar(self, total: int | None) -> Any:
        if (total is not None and not total) or self.args.no_progress:
            return None
        # disable=None: no bar when stderr is not a terminal (logs get the summary only)
        return tqdm(total=total, desc="explain", unit="img", file=sys.stderr,
                    dynamic_ncols=True, mininterval=0.5, disable=None,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} "
                               "[{elapsed}<{remaining}, {rate_fmt}]")

    def expected(self) -> int | None:
        """How many images :meth:`explain` will explain (``None``: not known beforehand)."""
        return len(self.todo)

    def run(self, tasks: list[ImageTask] | None, manifest: Manifest) -> int:
        """Explain ``tasks`` (see the class); return the exit status."""
        self.plan(tasks, manifest)
        self.t_start = time.perf_counter()
        self.record_conflicts(manifest)
        total = self.expected()
        bar = self._progress_bar(total)
        try:
            if total is None or total:
                for record in self.explain(self.todo, None if bar is None else bar.update):
                    self.accept(record, manifest)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            if bar is not None:
                bar.close()
            self.finish(manifest)
        self.print_summary()
        return 1 if self.failed else 0

    def print_summary(self) -> None:
        """The last line of the run on stdout."""
        s = self.summary()
        rate = f", {s['images_per_second']:.2f} images/s" if s["images_per_second"] else ""
        table = f", table {self.out / TABLE}" if self.table is not None else ""
        report = "" if getattr(self.args, "no_report", False) else \
            f", report {self.out / REPORT / 'index.html'}"
        print(f"salvo explain: {self.done} done, {self.skipped} skipped, {self.failed} failed "
              f"in {s['seconds']:.1f} s{rate}{self.reliability_note()}; outputs in {self.out}/ "
              f"(manifest {self.out / MANIFEST}{table}{report})")

    def reliability_note(self) -> str:
        """``", map reliability median R (lowest L[, K without information])"`` over the maps
        explained in this run that report one; empty when none does."""
        if not self.reliabilities:
            return ""
        values = np.asarray(self.reliabilities)
        finite = values[~np.isnan(values)]
        missing = int(np.isnan(values).sum())
        note = f", {missing} maps without information" if missing else ""
        if not finite.size:
            return note
        return (f", map reliability median {float(np.median(finite)):.3f} "
                f"(lowest {float(finite.min()):.3f}){note}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, np.float32), allow_pickle=False)
    return buf.getvalue()
