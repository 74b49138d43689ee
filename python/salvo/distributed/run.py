"""The Ray runs: :class:`RayExplainRun` (files, folders and globs, as ``salvo explain``
takes them) and :class:`RayDatasetRun` (a Ray Dataset with an image column), and the actor
that does the work, :class:`ExplainActor`.

What stays on the driver (this process) is what ``salvo explain`` does around the images: the
lock on the output folder, the plan (what an earlier run did, conflicts), the manifest, its
journal and the results table — :class:`~salvo.cli.explain.ExplainRun`'s code, unchanged. What
moves to the cluster is :meth:`~salvo.cli.explain.ExplainRun.explain`: the images become a Ray
Dataset; a pool of :class:`ExplainActor` s, each owning one compiled Explainer (built once per
actor from the same command line) and an :class:`~salvo.cli.explain.ImageWorker`, explains
batches of them with the same packing as a local run and writes their maps into the output
folder itself; only each image's record (about a kilobyte of JSON) comes back. The driver
never holds a map.

Faults: Ray Data restarts an actor that dies and retries its batch (actor pools are created
with ``max_restarts=-1``, ``max_task_retries=-1``). Maps are written atomically and are the
same whoever writes them (same seed, same settings), so a batch that is redone rewrites the
same bytes; a record that comes twice is taken once (:meth:`ExplainRun.accept`).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from salvo.cli.explain import (
    ExplainRun,
    ImageWorker,
    build_explainer,
    resolve_setup,
)
from salvo.cli.inputs import ImageTask
from salvo.cli.manifest import Manifest, json_default
from salvo.cli.shared import say
from salvo.distributed.cluster import Connection, Pool, RayOptions, connect, plan_pool

__all__ = ["DatasetPlan", "ExplainActor", "RayDatasetRun", "RayExplainRun", "dataset_name",
           "worker_args"]

#: ``status`` of the marker an actor returns for a dataset row that an earlier run did.
SKIP = "skip"


def worker_args(args: argparse.Namespace, out: Path) -> argparse.Namespace:
    """A copy of the command line for the actors: the model and label files and ``--out`` as
    absolute paths (an actor's working folder is not the driver's)."""
    copied = copy.copy(args)
    if not str(args.model).startswith("zoo:"):
        copied.model = os.path.abspath(args.model)
    if args.labels is not None and not str(args.labels).startswith("zoo:"):
        copied.labels = os.path.abspath(args.labels)
    copied.out = str(out)
    return copied


def dataset_name(name: Any, path: Any, root: str | None) -> str:
    """The name (relative path) of a dataset row's outputs: its ``name`` when the dataset has
    that column; else its ``path`` relative to ``root`` (when inside it), else the path without
    its scheme and leading ``/`` (``/data/a/cat.jpg`` → ``data/a/cat.jpg``).

    Raises
    ------
    ValueError
        The row has neither a name nor a path, or an empty one.
    """
    if name is not None and str(name):
        text = str(name)
    elif path is not None and str(path):
        text = str(path)
        if root:
            base = str(root).rstrip("/") + "/"
            text = text.removeprefix(base)
        text = text.split("://", 1)[-1]
    else:
        raise ValueError("a dataset row needs a 'name' or a 'path' column with a value")
    parts = [p for p in PurePosixPath(text.replace("\\", "/")).parts if p not in ("/", "")]
    if not parts:
        raise ValueError(f"the dataset row name {text!r} has no file name")
    return "/".join(parts)


@dataclass(frozen=True)
class DatasetPlan:
    """What an actor needs to sort the rows of a Ray Dataset as :meth:`ExplainRun.plan` sorts
    files (the driver cannot list a dataset's rows without reading it).

    Attributes
    ----------
    skip
        Keys done before with the same settings whose outputs are all present.
    owners
        ``{name: key}`` of the images done before (any settings): a row with that name and
        another key would overwrite their outputs.
    force
        ``--force``: redo and replace.
    root
        See :func:`dataset_name`.
    """

    skip: frozenset[str] = frozenset()
    owners: dict[str, str] = field(default_factory=dict)
    force: bool = False
    root: str | None = None


def _where() -> dict[str, Any]:
    import ray

    return {"host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid()}


class ExplainActor:
    """A Ray Data actor (``map_batches`` callable class): one compiled Explainer, built once
    from the command line exactly as ``salvo explain`` builds it, and an
    :class:`~salvo.cli.explain.ImageWorker` writing into the output folder.

    Parameters
    ----------
    args
        The command line (:func:`worker_args`).
    out
        The output folder, an absolute path that every node sees.
    plan
        ``None`` for file rows (columns ``key``, ``path``, ``name``; the driver planned them);
        a :class:`DatasetPlan` for the rows of a Ray Dataset (column ``image``, optional
        ``name`` and ``path``).
    """

    def __init__(self, args: argparse.Namespace, out: str, plan: DatasetPlan | None = None
                 ) -> None:
        setup = resolve_setup(args)
        explainer, call_kwargs = build_explainer(args, setup)
        self.worker = ImageWorker(args, setup, explainer, Path(out), call_kwargs, _where())
        self.plan = plan

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Explain one batch, writing its maps; return ``{"record": JSON texts}``, one per row
        (a manifest record, or a skip marker for a dataset row an earlier run did)."""
        if self.plan is None:
            records = self._files(batch)
        else:
            records = self._rows(batch, self.plan)
        texts = [json.dumps(r, default=json_default, ensure_ascii=False) for r in records]
        return {"record": np.array(texts, dtype=object)}

    def _files(self, batch: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        keys, paths, names = (list(map(str, batch[c])) for c in ("key", "path", "name"))
        # the file is read by its absolute key; the record keeps the path as it was given
        tasks = [ImageTask(Path(k), k, n) for k, n in zip(keys, names)]
        records = list(self.worker.records(tasks, num_jobs=len(tasks)))
        given = dict(zip(keys, paths))
        for r in records:
            r["path"] = given.get(r["input"], r["path"])
        return records

    def _rows(self, batch: dict[str, np.ndarray], plan: DatasetPlan) -> list[dict[str, Any]]:
        count = len(batch["image"])
        names = batch.get("name")
        paths = batch.get("path")
        out: list[dict[str, Any]] = []
        tasks: list[ImageTask] = []
        images: dict[str, np.ndarray] = {}
        for i in range(count):
            path = None if paths is None else str(paths[i])
            try:
                name = dataset_name(None if names is None else names[i], path, plan.root)
            except ValueError as exc:
                out.append({"input": f"row:{path}", "name": None, "path": path,
                            "status": "failed", "reason": str(exc), "worker": self.worker.where})
                continue
            key = path if path else f"dataset:{name}"
            if key in plan.skip and not plan.force:
                out.append({"input": key, "name": name, "status": SKIP})
                continue
            owner = plan.owners.get(name)
            if owner is not None and owner != key and not plan.force:
                out.append({"input": key, "name": name, "path": path or name, "status": "failed",
                            "reason": f"its outputs belong to '{owner}', explained into this "
                                      "folder before; force=True replaces them, or use "
                                      "another output folder", "worker": self.worker.where})
                continue
            task = ImageTask(Path(path or name), key, name)
            tasks.append(task)
            images[key] = batch["image"][i]
        records = list(self.worker.records(tasks, images=images, num_jobs=len(tasks)))
        for r in records:
            owner = plan.owners.get(str(r.get("name")))
            if owner is not None and owner != r["input"]:
                r["replaces"] = owner
        return out + records


class RayExplainRun(ExplainRun):
    """:class:`~salvo.cli.explain.ExplainRun` with the images explained on a Ray cluster
    (``--ray``; see the module). Ray is started or joined only when there is something to do.

    Attributes
    ----------
    options
        :class:`~salvo.distributed.cluster.RayOptions` of the command line.
    runner
        What the manifest records about the cluster and the driver (``runner`` in its header):
        address, nodes, actors, batch, bytes of rows sent and records received, driver
        CPU-seconds.
    """

    def __init__(self, args: argparse.Namespace, explainer: Any, setup: Any, out: Path,
                 call_kwargs: dict[str, Any]) -> None:
        super().__init__(args, explainer, setup, out, call_kwargs)
        self.options = RayOptions.from_args(args)
        self.connection: Connection | None = None
        self.runner: dict[str, Any] = {"kind": "ray", "address": self.options.address}
        self._cpu0 = _cpu_seconds()

    # ------------------------------------------------------------------ the cluster
    def _connect(self) -> Connection:
        if self.connection is None:
            self.connection = connect(self.options)
            ray = self.connection.ray
            self.runner.update(ray=ray.__version__, nodes=len(self.connection.nodes()))
        return self.connection

    def _stream(self, dataset: Any, pool: Pool, plan: DatasetPlan | None,
                progress: Callable[[float], None] | None) -> Iterator[dict[str, Any]]:
        """Run ``dataset`` through the actor ``pool``; yield the records as they come back."""
        ray = self._connect().ray
        out = self.out.resolve()
        if pool.note:
            say(f"salvo: note: {pool.note}")
        self.runner.update(workers=pool.workers, batch=pool.batch, cpus_per_worker=pool.cpus,
                           received_bytes=0, records=0)
        results = dataset.map_batches(
            ExplainActor, batch_size=pool.batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool.workers), num_cpus=pool.cpus,
            fn_constructor_args=(worker_args(self.args, out), str(out), plan),
        )
        for block in results.iter_batches(batch_size=None, batch_format="numpy",
                                          prefetch_batches=1):
            for text in block["record"]:
                self.runner["received_bytes"] += len(text.encode("utf-8"))
                self.runner["records"] += 1
                record = json.loads(text)
                if progress is not None and record.get("status") != SKIP:
                    progress(1.0)
                yield record

    def explain(self, tasks: list[ImageTask], progress: Callable[[float], None] | None
                ) -> Iterator[dict[str, Any]]:
        """Explain ``tasks`` on the cluster (see the class); yield their records."""
        connection = self._connect()
        pool = plan_pool(self.options, connection, len(tasks))
        rows = [{"key": t.key, "path": str(t.path), "name": t.name} for t in tasks]
        self.runner["sent_bytes"] = sum(len(json.dumps(r).encode("utf-8")) for r in rows)
        dataset = connection.ray.data.from_items(
            rows, override_num_blocks=max(1, math.ceil(len(rows) / pool.batch)))
        yield from self._stream(dataset, pool, None, progress)

    def finish(self, manifest: Manifest) -> None:
        """Record the runner (cluster, actors, bytes, driver CPU-seconds) in the manifest's
        header, then finish as a local run does."""
        self.runner["driver_cpu_seconds"] = round(_cpu_seconds() - self._cpu0, 3)
        if self.connection is not None:
            manifest.header["runner"] = dict(self.runner)
        super().finish(manifest)

    def run(self, tasks: list[ImageTask] | None, manifest: Manifest) -> int:
        """As :meth:`ExplainRun.run`; then leave the cluster (stopping a Ray this run
        started)."""
        try:
            return super().run(tasks, manifest)
        finally:
            if self.connection is not None:
                self.connection.close()


class RayDatasetRun(RayExplainRun):
    """A :class:`RayExplainRun` over the rows of a Ray Dataset (column ``image``: ``(H, W, 3)``
    uint8 RGB; ``name`` and/or ``path``: see :func:`dataset_name`).

    The driver cannot list the rows without reading the dataset, so the plan travels to the
    actors (:class:`DatasetPlan`): the earlier records stay in the manifest, a row done before
    comes back as a skip marker, a row whose outputs belong to another input fails.
    """

    def __init__(self, args: argparse.Namespace, explainer: Any, setup: Any, out: Path,
                 call_kwargs: dict[str, Any], *, dataset: Any, root: str | None = None) -> None:
        super().__init__(args, explainer, setup, out, call_kwargs)
        self.dataset = dataset
        self.root = root
        self.dataset_plan = DatasetPlan()
        self._previous: dict[str, dict[str, Any]] = {}

    @classmethod
    def factory(cls, dataset: Any, root: str | None) -> Callable[..., RayDatasetRun]:
        """A run factory for :func:`~salvo.cli.explain.prepare_run`."""
        def make(args: argparse.Namespace, explainer: Any, setup: Any, out: Path,
                 call_kwargs: dict[str, Any]) -> RayDatasetRun:
            return cls(args, explainer, setup, out, call_kwargs, dataset=dataset, root=root)
        return make

    def plan(self, tasks: list[ImageTask] | None, manifest: Manifest) -> None:
        """Keep the earlier records (same settings) and work out what the actors skip."""
        manifest.carry_over(set(), set())
        same = manifest.previous_fingerprint == manifest.header["fingerprint"]
        skip = frozenset(k for k in manifest.previous
                         if same and manifest.done_before(k, self.out) is not None)
        owners = {str(r["name"]): k for k, r in manifest.previous.items()
                  if r.get("name") and r.get("status") in ("done", "skipped")}
        self._previous = manifest.previous
        self.dataset_plan = DatasetPlan(skip, owners, bool(self.args.force), self.root)

    def summary(self) -> dict[str, Any]:
        """As :meth:`ExplainRun.summary`; ``complete`` when the run ended without an error
        (every row was seen)."""
        summary = super().summary()
        summary["complete"] = self.error is None  # every row was seen
        return summary

    def explain(self, tasks: list[ImageTask], progress: Callable[[float], None] | None
                ) -> Iterator[dict[str, Any]]:
        """Explain the dataset's rows on the cluster; yield their records and skip markers."""
        connection = self._connect()
        pool = plan_pool(self.options, connection, None, reading=True)
        self.runner["sent_bytes"] = None  # the rows never pass through the driver
        yield from self._stream(self.dataset, pool, self.dataset_plan, progress)

    def accept(self, record: dict[str, Any], manifest: Manifest) -> None:
        """Skip markers become ``skipped`` records (the earlier record, kept); a record that
        replaces another input's outputs drops that input's record; the rest as
        :meth:`ExplainRun.accept`."""
        key = record["input"]
        if record.get("status") == SKIP:
            if key in self.seen:
                return
            self.seen.add(key)
            previous = self._previous.get(key, {})
            manifest.images[key] = {**previous, "name": record.get("name"), "status": "skipped",
                                    "reason": "outputs exist (force=True to redo)"}
            self.skipped += 1
            return
        replaced = record.pop("replaces", None)
        if replaced is not None and replaced != key:
            manifest.images.pop(replaced, None)
        super().accept(record, manifest)

    def expected(self) -> int | None:
        return None  # the dataset decides


def _cpu_seconds() -> float:
    """User + system CPU-seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
