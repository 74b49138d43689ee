"""``salvo explain … --ray [ADDRESS]``: the command line's Ray path (:func:`run_ray_explain`)."""

from __future__ import annotations

import argparse

from salvo.cli.explain import run_explain
from salvo.distributed.cluster import import_ray
from salvo.distributed.run import RayExplainRun

__all__ = ["run_ray_explain"]


def run_ray_explain(args: argparse.Namespace) -> int:
    """``salvo explain`` with ``--ray``: the same run as a local one (inputs, plan, manifest,
    table, summary), the images explained on a Ray cluster (:class:`RayExplainRun`). Returns
    the exit status.

    Raises
    ------
    UsageError
        Ray is not installed (checked first, before any model is loaded), or a bad command
        line.
    """
    import_ray()
    return run_explain(args, RayExplainRun)
