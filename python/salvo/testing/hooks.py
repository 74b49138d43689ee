"""Test hooks: entry points into salvo's internals that only tests and studies call.

salvo's own code never calls anything here; it exists so that tests can check a kernel's
pieces on their own (the random grid of one RISE mask, the error path of the native thread
pool) or drive a kernel without the method around it (one DIRECT search). None of it is part
of the API that explains models, and it may change without a deprecation period.

``import salvo`` does not import this module (nor :mod:`salvo.testing`).
"""

from __future__ import annotations

import numpy as np

from salvo import _native
from salvo.kernels.direct import BatchedDirect, DirectResult

__all__ = ["direct_minimize", "parallel_selftest", "rise_grid"]


def rise_grid(
    seed: int, mask_index: int, num_cells: int, prob: float, height: int, width: int,
    design: str = "iid",
) -> tuple[np.ndarray, int, int]:
    """The random parts of RISE mask ``mask_index`` of ``seed``, as the native kernel draws them.

    Parameters
    ----------
    seed, mask_index
        Which mask (masks are a pure function of the two).
    num_cells
        Grid cells per side, ``1 <= num_cells <= min(height, width)``.
    prob
        Probability that a cell is on, in ``(0, 1)``.
    height, width
        The mask's size in pixels (positive).
    design
        ``"iid"`` or ``"balanced"`` (``prob`` 0.5 only), as
        :func:`salvo.kernels.rise_masks`.

    Returns
    -------
    grid : ndarray
        ``(num_cells, num_cells)`` uint8, 1 where the cell is on.
    dy, dx : int
        The shift of the upsampled grid, ``0 <= dy < ceil(height / num_cells)`` and
        ``0 <= dx < ceil(width / num_cells)``.

    Raises
    ------
    ValueError
        An argument is out of range (the message names it and its value).
    """
    return _native._rise_grid(seed, mask_index, num_cells, prob, height, width, design)


def parallel_selftest(n: int, fail_at: int, num_threads: int) -> int:
    """Run ``n`` empty tasks on the native thread pool, task ``fail_at`` raising.

    Parameters
    ----------
    n
        Tasks to run.
    fail_at
        Index of the task that throws a C++ exception (``-1``: none does).
    num_threads
        Threads of the pool (``>= 1``).

    Returns
    -------
    int
        How many tasks succeeded (``n`` when none failed).

    Raises
    ------
    RuntimeError
        ``"task {fail_at} failed"``: the exception of the failing task, carried to Python.
    ValueError
        ``num_threads < 1``.
    """
    return _native._parallel_selftest(n, fail_at, num_threads)


def direct_minimize(
    func: object,
    lower: np.ndarray,
    upper: np.ndarray,
    budget: int,
    eps: float = 1e-4,
    locally_biased: bool = True,
    strict_hull: bool = False,
) -> DirectResult:
    """Minimise ``func`` over one box with exactly ``budget`` evaluations (one DIRECT search of
    :class:`~salvo.kernels.direct.BatchedDirect`, for comparing with ``scipy.optimize.direct``).

    Parameters
    ----------
    func
        ``func(points (P, n) float64) -> (P,)`` values: called once per DIRECT iteration with
        all of that iteration's points.
    lower, upper
        ``(n,)`` float bounds.
    budget, eps, locally_biased, strict_hull
        As in :class:`~salvo.kernels.direct.BatchedDirect`.

    Returns
    -------
    DirectResult
        The best point, its value and the history of the search.

    Raises
    ------
    ValueError
        ``lower`` and ``upper`` describe more than one search (they must be ``(n,)``).
    """
    opt = BatchedDirect(lower, upper, budget, eps=eps, locally_biased=locally_biased,
                        strict_hull=strict_hull)
    if opt.num_searches != 1:
        raise ValueError("direct_minimize runs one search; lower and upper must be (n,), got "
                         f"shapes {np.shape(lower)} and {np.shape(upper)}")
    while not opt.done:
        points, _ = opt.ask()
        opt.tell(np.asarray(func(points), dtype=np.float64))  # type: ignore[operator]
    return opt.result(0)
