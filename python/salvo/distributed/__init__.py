"""Explaining datasets on a Ray cluster.

``salvo explain MODEL IMAGES… --out DIR --ray [ADDRESS]`` and :func:`explain_dataset` run the
bulk explanation of ``salvo explain`` on Ray: the images become a Ray Dataset, a pool of actors
(each owning one compiled Explainer) explains batches of them with the same packing as a local
run and writes the maps into the output folder; the driver keeps the manifest and the results
table (``results.parquet``). Output names, fingerprints, re-runs and the maps themselves are
those of a local run. See ``docs/distributed.md``.

Ray is an optional extra (``pip install 'salvo-xai[ray]'``), imported only when a run starts:
``import salvo`` and ``import salvo.distributed`` never import it.

Modules: :mod:`~salvo.distributed.cluster` (connecting, sizing the actor pool),
:mod:`~salvo.distributed.run` (the runs and the actor), :mod:`~salvo.distributed.command`
(``--ray``), :mod:`~salvo.distributed.api` (:func:`explain_dataset`).
"""

from __future__ import annotations

from salvo.distributed.api import RunReport, explain_dataset

__all__ = ["RunReport", "explain_dataset"]
