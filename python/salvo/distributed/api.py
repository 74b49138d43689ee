"""The Python entry point of the Ray path: :func:`explain_dataset`."""

from __future__ import annotations

import argparse
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salvo.cli.explain import explain_into, prepare_run
from salvo.cli.manifest import MANIFEST
from salvo.cli.parser import build_parser, explain_options
from salvo.cli.table import TABLE
from salvo.distributed.cluster import import_ray
from salvo.distributed.run import RayDatasetRun, RayExplainRun

__all__ = ["RunReport", "explain_dataset"]

#: Keywords of :func:`explain_dataset` that are not ``salvo explain`` options.
_OWN = ("model", "images", "out", "ray", "ray_workers", "ray_cpus", "ray_batch", "command",
        "debug")


@dataclass(frozen=True)
class RunReport:
    """What :func:`explain_dataset` did.

    Attributes
    ----------
    done, skipped, failed
        Images explained, skipped (done before with the same settings), failed.
    seconds
        Wall time of the run (after the model was loaded).
    out
        The output folder.
    manifest
        ``manifest.json`` (one record per image).
    table
        ``results.parquet`` (one row per image and target), ``None`` without pyarrow.
    exit_status
        What ``salvo explain`` would exit with: 0 (no failure) or 1.
    """

    done: int
    skipped: int
    failed: int
    seconds: float
    out: Path
    manifest: Path
    table: Path | None
    exit_status: int


def _is_dataset(images: Any) -> bool:
    return type(images).__module__.startswith("ray.data") and hasattr(images, "map_batches")


def _option_value(name: str, action: argparse.Action, value: Any) -> Any:
    """``value`` checked and converted as ``salvo explain`` would read ``--name``."""
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise TypeError(f"{name} must be True or False, got {value!r}")
        return bool(value)
    if value is None:
        return None
    if name == "param":
        items = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(v, str) for v in items):
            raise TypeError(f"param must be 'KEY=VALUE' strings, got {value!r}")
        return items
    convert: Any = action.type
    if convert is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        value = int(value)
    elif convert is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
    elif name == "kernel_widths" and isinstance(value, (list, tuple)):
        value = [float(v) for v in value]
    elif convert is not None:
        try:
            value = convert(str(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise ValueError(f"{name}: {exc}") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"{name} must be one of {sorted(action.choices)}, got {value!r}")
    return value


def explain_dataset(
    model: str | os.PathLike[str],
    images: Any,
    out: str | os.PathLike[str],
    *,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float | None = None,
    images_per_batch: int | None = None,
    root: str | None = None,
    **options: Any,
) -> RunReport:
    """Explain many images on a Ray cluster into a folder of maps, a manifest and a table:
    ``salvo explain … --ray`` from Python.

    The run is a ``salvo explain`` run (the same output names, manifest, results table,
    re-run rules and maps), with the images explained by Ray actors that write their maps into
    ``out`` themselves; nothing but each image's record comes back to this process.

    Parameters
    ----------
    model
        A model file OpenVINO reads, or ``"zoo:NAME"``; every node loads it, so a file must be
        at the same path on every node.
    images
        Files, folders, globs (a path or a list of them; as ``salvo explain`` takes them, at
        the same path on every node), or a ``ray.data.Dataset`` with an ``image`` column
        (``(H, W, 3)`` uint8 RGB, as ``ray.data.read_images`` gives) and a ``name`` column
        (the relative path the outputs are named after, unique) or a ``path`` column (see
        ``root``). A dataset row's manifest key is its ``path``, else ``dataset:<name>``.
    out
        The output folder, at the same path on every node (local or a shared mount; not a
        URI).
    address
        What ``ray.init`` connects to (``"host:6379"``, ``"ray://host:10001"``, ``"auto"``);
        ``None``: the Ray this process initialised already, else a new local one.
    workers
        Actors (``None``: one per node).
    cpus_per_worker
        CPUs each actor reserves (>= 0; ``None``: 1, or 0 for a dataset on nodes of fewer than
        2 CPUs, whose read tasks would otherwise find no CPU; see ``--ray-cpus``).
    images_per_batch
        Images per actor call (``None``: up to 16).
    root
        Dataset rows without ``name``: their ``path`` relative to ``root`` names the outputs
        (else the whole path without its leading ``/``).
    **options
        ``salvo explain`` options by their long names with ``_``: ``method="rise"``,
        ``num_masks=1000``, ``labels="zoo:imagenet"``, ``targets="top3"``,
        ``precision="f32"``, ``save_raw=True``, ``recursive=True``, ``force=True``, …
        (flags take ``True``/``False``).

    Returns
    -------
    RunReport

    Raises
    ------
    TypeError
        An unknown option or a value of the wrong type (named).
    ValueError
        A value out of its choices, empty ``images``, or ``root`` with file inputs.
    salvo.errors.UsageError
        What ``salvo explain`` refuses (named by its command-line flag), or Ray not installed.
    """
    dataset = _is_dataset(images)
    if dataset:
        paths = ["<ray dataset>"]
    elif isinstance(images, (str, os.PathLike)):
        paths = [os.fspath(images)]
    elif isinstance(images, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in images):
        paths = [os.fspath(p) for p in images]
    else:
        raise TypeError("images must be a path, a list of paths or a ray.data.Dataset, got "
                        f"{type(images).__name__}")
    if not paths:
        raise ValueError("images is empty")
    if root is not None and not dataset:
        raise ValueError("root is for a ray.data.Dataset without a name column; files are "
                         "named after their path relative to the folder or glob given")
    args = build_parser().parse_args(["explain", os.fspath(model), *paths, "--out",
                                      os.fspath(out)])
    actions = explain_options()
    for key, value in options.items():
        if key in _OWN or key not in actions:
            known = sorted(k for k in actions if k not in _OWN)
            raise TypeError(f"explain_dataset() got an unexpected keyword argument {key!r}; "
                            f"salvo explain options are: {', '.join(known)}")
        setattr(args, key, _option_value(key, actions[key], value))
    args.ray = address or ""
    args.ray_workers = _option_value("workers", actions["ray_workers"], workers)
    args.ray_cpus = _option_value("cpus_per_worker", actions["ray_cpus"], cpus_per_worker)
    args.ray_batch = _option_value("images_per_batch", actions["ray_batch"], images_per_batch)
    args.argv = ["explain", os.fspath(model), *paths, "--out", os.fspath(out),
                 f"--ray={address or ''}",
                 *(f"--{k.replace('_', '-')}={v!r}" for k, v in sorted(options.items()))]
    import_ray()
    if dataset:
        prepared = prepare_run(args, RayDatasetRun.factory(images, root), expand=False)
    else:
        prepared = prepare_run(args, RayExplainRun)
    code = explain_into(*prepared)
    run = prepared[4]
    folder = Path(args.out)
    return RunReport(run.done, run.skipped, run.failed, float(run.summary()["seconds"]), folder,
                     folder / MANIFEST, folder / TABLE if run.table is not None else None, code)
