"""Connecting to Ray and sizing the work: :func:`import_ray`, :class:`RayOptions`,
:class:`Connection`, :func:`plan_pool`.

Ray is imported here and in the other modules of :mod:`salvo.distributed` only, inside
functions: ``import salvo`` (and ``import salvo.distributed``) never imports it.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from salvo.errors import UsageError

__all__ = ["INSTALL", "Connection", "Pool", "RayOptions", "connect", "import_ray", "plan_pool"]

#: How to install what the Ray path needs.
INSTALL = "pip install 'salvo-xai[ray]'"

#: Largest batch of images handed to one actor call by default.
MAX_DEFAULT_BATCH = 16
#: Batches per actor the default batch size aims at (so that the work spreads evenly and a
#: retried batch is a small part of it).
BATCHES_PER_WORKER = 4

_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[A-Za-z0-9_.\-\[\]:]+:\d+)$")


def import_ray() -> Any:
    """The ``ray`` module with Ray Data.

    Raises
    ------
    UsageError
        Ray (or Ray Data) is not installed; the message gives the install command.
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise UsageError(f"--ray needs Ray with Ray Data ({exc}): {INSTALL}") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """How a run uses Ray.

    Attributes
    ----------
    address
        What ``ray.init`` connects to (``"host:6379"``, ``"ray://host:10001"``, ``"auto"``: the
        cluster running on this machine or ``RAY_ADDRESS``); ``None`` starts a new local Ray
        (unless Ray is initialised already in this process, which is then used).
    workers
        Actors, each with its own compiled model (``None``: one per alive node with CPUs).
    cpus
        CPUs each actor reserves in Ray's bookkeeping (>= 0; ``None``: :func:`plan_pool`
        chooses). The model uses the node's cores whatever this says; the reservation only
        decides how many actors fit on a node and what is left for Ray Data's own tasks (a
        pool that leaves the read tasks of a dataset no CPU stalls).
    batch
        Images per actor call (``None``: :func:`plan_pool` chooses).
    """

    address: str | None = None
    workers: int | None = None
    cpus: float | None = None
    batch: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RayOptions:
        """The options of ``--ray [ADDRESS]``, ``--ray-workers``, ``--ray-cpus``,
        ``--ray-batch``.

        Raises
        ------
        UsageError
            An ADDRESS that is neither ``auto``, ``local``, ``ray://…`` nor ``host:port``.
        """
        address = getattr(args, "ray", None) or None
        if address is not None and not _ADDRESS.match(address):
            raise UsageError(f"--ray {address!r}: expected a Ray address: host:port, "
                             "ray://host:port, auto or local")
        cpus = getattr(args, "ray_cpus", None)
        return cls(address, getattr(args, "ray_workers", None),
                   None if cpus is None else float(cpus), getattr(args, "ray_batch", None))


class Connection:
    """This process's link to Ray for one run: :func:`connect` makes it, :meth:`close` ends it
    (shutting Ray down only when this run started or joined it, not when the caller had
    initialised Ray already)."""

    def __init__(self, ray: Any, owned: bool, address: str | None) -> None:
        self.ray = ray
        self.owned = owned
        self.address = address

    def nodes(self) -> list[dict[str, Any]]:
        """The alive nodes (``ray.nodes()`` entries)."""
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def close(self) -> None:
        """Disconnect (and stop a Ray this run started)."""
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()


def connect(options: RayOptions) -> Connection:
    """Connect to the cluster of ``options`` (or start a local Ray), quietly: Ray's own
    messages at WARNING and above, no worker output copied to this terminal, no Ray Data
    progress bars (the run has its own).

    Raises
    ------
    UsageError
        Ray is not installed.
    ConnectionError
        No cluster at the address (Ray's message).
    """
    ray = import_ray()
    owned = not ray.is_initialized()
    # Ray's C++ core logs (e.g. a warning that the actors' constructor arguments live in the
    # object store, which Ray Data's pools always do) go to the log files, not the terminal
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if owned:
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if options.address is None:  # a new local Ray, whatever RAY_ADDRESS says
            ray.init(address="local", include_dashboard=False, **kwargs)
        else:
            ray.init(address=options.address, **kwargs)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "Progress bars disabled": the run shows its own
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    return Connection(ray, owned, options.address)


@dataclass(frozen=True)
class Pool:
    """The actor pool of a run (:func:`plan_pool`).

    Attributes
    ----------
    workers
        Actors.
    batch
        Images per actor call.
    cpus
        CPUs each actor reserves.
    note
        Why ``cpus`` is not what was asked for, or a warning about it (``""``: nothing).
    """

    workers: int
    batch: int
    cpus: float
    note: str = ""


def plan_pool(options: RayOptions, connection: Connection, num_images: int | None, *,
              reading: bool = False) -> Pool:
    """The actor pool: how many actors, how many images per call, how many CPUs each reserves.

    Actors: ``options.workers``, else one per alive node with CPUs (at least one), never more
    than there are batches. Batch: ``options.batch``, else ``ceil(num_images / (actors * 4))``
    between 1 and 16 (8 when the number of images is not known). CPUs: ``options.cpus``, else
    1 — or 0 when ``reading`` (the rows come from a Ray Dataset whose read tasks need a whole
    CPU on some node, 1 by default) and no node has 2 CPUs: a pool leaving no node a whole CPU
    free stalls the read stage for ever.

    Raises
    ------
    UsageError
        The actors cannot all be placed (``workers`` × ``cpus`` does not fit in the nodes).
    """
    nodes = [float(n.get("Resources", {}).get("CPU", 0)) for n in connection.nodes()]
    nodes = [c for c in nodes if c > 0]
    note = ""
    if options.cpus is not None:
        cpus = options.cpus
        if reading and cpus > 0 and nodes and max(nodes) - cpus < 1:
            note = (f"with {cpus:g} CPU(s) per actor no node keeps a whole CPU for the "
                    "dataset's read tasks: the run waits for ever unless they need less; "
                    "reserve less per actor (0 is allowed) or give the nodes more CPUs")
    elif reading and nodes and max(nodes) < 2:
        cpus = 0.0
        note = ("the actors reserve no CPU, so that the dataset's read tasks can run on nodes "
                "of fewer than 2 CPUs (Ray may then place several actors on one node)")
    else:
        cpus = 1.0
    workers = options.workers or max(1, len(nodes))
    if options.batch is not None:
        batch = options.batch
    elif num_images is None:
        batch = 8
    else:
        batch = max(1, min(MAX_DEFAULT_BATCH,
                           math.ceil(num_images / (workers * BATCHES_PER_WORKER))))
    if num_images is not None:
        workers = max(1, min(workers, math.ceil(num_images / batch)))
    if cpus > 0:
        fit = sum(math.floor(c / cpus + 1e-9) for c in nodes)
        if workers > fit:
            raise UsageError(f"{workers} Ray actors of {cpus:g} CPU(s) do not fit in the "
                             f"cluster's nodes ({', '.join(f'{c:g}' for c in nodes) or 'none'} "
                             "CPUs): ask for fewer actors (--ray-workers) or fewer CPUs each "
                             "(--ray-cpus)")
    return Pool(workers, batch, cpus, note)
