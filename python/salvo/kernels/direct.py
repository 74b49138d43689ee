"""A batched DIRECT optimiser: many searches, each iteration's points proposed at once.

DIRECT (Jones, Perttunen and Stuckman, 1993) divides the search box into hyper-rectangles and,
in every iteration, picks the *potentially optimal* ones (those on the lower-right convex hull
of size versus centre value, with Jones' epsilon test) and trisects them along their longest
sides. Which points an iteration samples is decided before any of them is evaluated, so an
iteration is one batch of independent function evaluations.

:class:`BatchedDirect` runs ``S`` independent searches (one per kernel width and target in AISE)
in lockstep through an ask/tell interface: :meth:`~BatchedDirect.ask` returns the points of the
next iteration of every unfinished search together, :meth:`~BatchedDirect.tell` takes their
values. Each search stops after exactly ``budget`` evaluations: the last iteration is cut at
the budget, its points kept in the order DIRECT generates them.

The rules are those of Gablonsky's DIRECT 2.0.4, the implementation behind
``scipy.optimize.direct``, so the points sampled are the ones SciPy samples (bit for bit on the
test functions of ``tests/kernels/test_direct.py``):

* ``locally_biased=False`` is the original DIRECT: rectangles are grouped by the distance from
  centre to vertex, and every rectangle of a chosen group whose value ties the group's best
  (within ``1e-13``) is divided too;
* ``locally_biased=True`` is DIRECT-L: rectangles are grouped by their longest side and one
  rectangle per group is divided;
* in both, a group's best rectangle is potentially optimal when no larger group has a value
  at most its own, no smaller chosen group has a value at least its own, and
  ``f - K * d <= f_min - eps * |f_min|`` for ``K`` the smallest slope to a larger group;
* SciPy skips one test of Jones' rule: a rectangle whose slopes to smaller chosen groups exceed
  its slopes to larger ones (it lies above the lower convex hull) is still divided. In SciPy's
  C code the ``goto`` that rejects it sits under ``if (logfile)`` after the log line was
  commented out, so it only runs with a log file (``disp=True`` of the private ``_direct``).
  ``strict_hull=False`` (the default) reproduces what ``scipy.optimize.direct`` -- and hence the
  reference AISE -- does; ``strict_hull=True`` applies the full test;
* a chosen rectangle is sampled at ``c +- delta * e_i`` for each of its longest sides ``i``
  (in increasing ``i``; ``delta`` is a third of that side), and divided first along the side
  whose better sample is lowest (ties by ``i``);
* groups are lists sorted by value; a new rectangle goes after the rectangles of equal value,
  except that a rectangle becomes the head of a list only with a strictly lower value (and the
  second point of a pair whose first point became the head goes before an old head of equal
  value).

Unlike SciPy, which checks its budget only between iterations (``maxfun=20`` costs about 29
evaluations in two dimensions), a search here never evaluates more than its budget, and its
history (every point and value in evaluation order) is kept for the caller.

All state lives in NumPy arrays; the work per iteration is two ``@njit(cache=True)`` kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["BatchedDirect", "DirectResult"]

# search states
_RUNNING = 1  # ready to be asked
_PENDING = 2  # asked, waiting for values
_DONE = 3

#: Two values within this of a group's best count as ties in the original DIRECT.
_TIE = 1e-13


def _thirds(size: int) -> np.ndarray:
    """``3**-k`` for k = 0..size-1, computed as SciPy's DIRECT does (``1 / 3**k``)."""
    out = np.empty(size, np.float64)
    out[0] = 1.0
    power = 3.0
    for k in range(1, size):
        out[k] = 1.0 / power
        power *= 3.0
    return out


def _measures(size: int, n: int, locally_biased: bool) -> np.ndarray:
    """Size of a rectangle per group index.

    DIRECT-L: the group is the longest side ``3**-k``, so the measure is ``3**-k``. Original
    DIRECT: the group ``k * n + j`` holds rectangles with ``n - j`` sides ``3**-k`` and ``j``
    sides ``3**-(k+1)``; the measure is the distance from the centre to a vertex.
    """
    if locally_biased:
        return _thirds(size)
    out = np.empty(size, np.float64)
    half = np.array([math.sqrt(n - j + j / 9.0) * 0.5 for j in range(n)])
    power = 1.0
    for k in range(size // n + 1):
        for j in range(n):
            i = k * n + j
            if i < size:
                out[i] = half[j] / power
        power *= 3.0
    return out


@njit(cache=True, nogil=True)
def _group(lev: np.ndarray, n: int, original: bool) -> int:
    """Group index of a rectangle with side exponents ``lev`` (n,)."""
    k = lev[0]
    for i in range(1, n):
        k = min(k, lev[i])
    if not original:
        return k
    shorter = 0
    for i in range(n):
        if lev[i] > k:
            shorter += 1
    return k * n + shorter


@njit(cache=True, nogil=True)
def _unlink(head: np.ndarray, nxt: np.ndarray, g: int, p: int) -> None:
    """Remove rectangle ``p`` from the list of group ``g``."""
    q = head[g]
    if q == p:
        head[g] = nxt[p]
        nxt[p] = -1
        return
    while q >= 0:
        if nxt[q] == p:
            nxt[q] = nxt[p]
            nxt[p] = -1
            return
        q = nxt[q]


@njit(cache=True, nogil=True)
def _insert(head: np.ndarray, nxt: np.ndarray, f: np.ndarray, g: int, p: int) -> None:
    """Insert ``p`` in the sorted list of group ``g``: after the rectangles of equal value;
    it becomes the head only with a strictly lower value than the head's."""
    h = head[g]
    if h < 0 or f[p] < f[h]:
        nxt[p] = h
        head[g] = p
        return
    q = h
    while nxt[q] >= 0 and not (f[p] < f[nxt[q]]):
        q = nxt[q]
    nxt[p] = nxt[q]
    nxt[q] = p


@njit(cache=True, nogil=True)
def _ask_kernel(
    state: np.ndarray,
    c: np.ndarray,
    lev: np.ndarray,
    f: np.ndarray,
    nxt: np.ndarray,
    head: np.ndarray,
    cnt: np.ndarray,
    nev: np.ndarray,
    minf: np.ndarray,
    poh: np.ndarray,
    poh_first: np.ndarray,
    npoh: np.ndarray,
    cut: np.ndarray,
    measures: np.ndarray,
    thirds: np.ndarray,
    budget: int,
    eps: float,
    original: bool,
    strict_hull: bool,
    cand: np.ndarray,
    cand_g: np.ndarray,
    keep: np.ndarray,
) -> None:
    """Choose the rectangles to divide and create their sample points, for every running
    search. New points are appended after ``cnt[s]``; the iteration is cut at ``budget``."""
    num_searches, _, n = c.shape
    num_groups = head.shape[1]
    for s in range(num_searches):
        if state[s] != 1:
            continue
        m = 0  # rectangles to divide this iteration
        if cnt[s] == 0:
            # the first iteration: the centre of the box, then its division
            for i in range(n):
                c[s, 0, i] = 0.5
                lev[s, 0, i] = 0
            cnt[s] = 1
            poh[s, 0] = 0
            m = 1
        else:
            # the best rectangle of each group, largest group first
            nc = 0
            for g in range(num_groups):
                if head[s, g] >= 0:
                    cand[nc] = head[s, g]
                    cand_g[nc] = g
                    nc += 1
            threshold = minf[s] - eps * abs(minf[s])
            for j in range(nc - 1, -1, -1):
                fj = f[s, cand[j]]
                dj = measures[cand_g[j]]
                lower = np.inf
                greater = 0.0
                ok = True
                for i in range(j):  # larger rectangles
                    slope = (f[s, cand[i]] - fj) / (measures[cand_g[i]] - dj)
                    if slope <= 0.0:
                        ok = False
                        break
                    lower = min(lower, slope)
                if ok:
                    for i in range(j + 1, nc):  # smaller rectangles still chosen
                        if not keep[i]:
                            continue
                        slope = (f[s, cand[i]] - fj) / (measures[cand_g[i]] - dj)
                        if slope <= 0.0:
                            ok = False
                            break
                        greater = max(greater, slope)
                if ok:
                    if greater <= lower:
                        if fj - lower * dj > threshold:
                            ok = False
                    elif strict_hull:
                        ok = False
                keep[j] = ok
            for j in range(nc):
                if keep[j]:
                    poh[s, m] = cand[j]
                    m += 1
            if original:
                # original DIRECT: also every rectangle tying its group's best
                first_m = m
                for r in range(first_m):
                    h = poh[s, r]
                    q = nxt[s, h]
                    while q >= 0 and f[s, q] - f[s, h] <= 1e-13:
                        poh[s, m] = q
                        m += 1
                        q = nxt[s, q]
            for r in range(m):
                p = poh[s, r]
                _unlink(head[s], nxt[s], _group(lev[s, p], n, original), p)
        # sample: c +- delta e_i along each longest side, in increasing i, up to the budget
        done = 0
        for r in range(m):
            p = poh[s, r]
            k = lev[s, p, 0]
            for i in range(1, n):
                k = min(k, lev[s, p, i])
            delta = thirds[k + 1]
            poh_first[s, r] = cnt[s]
            done = r + 1
            for i in range(n):
                if lev[s, p, i] != k:
                    continue
                for sign in range(2):
                    if cnt[s] >= budget:
                        break
                    q = cnt[s]
                    for d in range(n):
                        c[s, q, d] = c[s, p, d]
                        lev[s, q, d] = lev[s, p, d]
                    if sign == 0:
                        c[s, q, i] = c[s, p, i] + delta
                    else:
                        c[s, q, i] = c[s, p, i] - delta
                    cnt[s] += 1
            if cnt[s] >= budget:
                break
        npoh[s] = done
        cut[s] = cnt[s] >= budget
        state[s] = 2


@njit(cache=True, nogil=True)
def _tell_kernel(
    state: np.ndarray,
    lev: np.ndarray,
    f: np.ndarray,
    nxt: np.ndarray,
    head: np.ndarray,
    cnt: np.ndarray,
    nev: np.ndarray,
    minf: np.ndarray,
    minpos: np.ndarray,
    poh: np.ndarray,
    poh_first: np.ndarray,
    npoh: np.ndarray,
    cut: np.ndarray,
    values: np.ndarray,
    budget: int,
    original: bool,
    order: np.ndarray,
    w: np.ndarray,
    dims: np.ndarray,
) -> None:
    """Store the values of every pending search's points (``values`` in ask order), then
    divide the chosen rectangles and file the pieces in their groups."""
    num_searches, _, n = lev.shape
    at = 0
    for s in range(num_searches):
        if state[s] != 2:
            continue
        for q in range(nev[s], cnt[s]):
            v = values[at]
            at += 1
            f[s, q] = v
            if v < minf[s]:
                minf[s] = v
                minpos[s] = q
        nev[s] = cnt[s]
        if cut[s] or cnt[s] >= budget:
            state[s] = 3
            continue
        for r in range(npoh[s]):
            p = poh[s, r]
            first = poh_first[s, r]
            k = lev[s, p, 0]
            for i in range(1, n):
                k = min(k, lev[s, p, i])
            md = 0
            for i in range(n):
                if lev[s, p, i] == k:
                    dims[md] = i
                    md += 1
            # divide along the side whose better sample is lowest first (stable on ties)
            for r2 in range(md):
                a = f[s, first + 2 * r2]
                b = f[s, first + 2 * r2 + 1]
                w[r2] = min(a, b)
                order[r2] = r2
            for i in range(1, md):
                key = order[i]
                j = i - 1
                while j >= 0 and w[order[j]] > w[key]:
                    order[j + 1] = order[j]
                    j -= 1
                order[j + 1] = key
            for rr in range(md):
                dim = dims[order[rr]]
                lev[s, p, dim] = k + 1
                for qq in range(rr, md):
                    pair = first + 2 * order[qq]
                    lev[s, pair, dim] = k + 1
                    lev[s, pair + 1, dim] = k + 1
            # file the new pairs (in sampling order), then the divided rectangle
            for r2 in range(md):
                p1 = first + 2 * r2
                p2 = p1 + 1
                g = _group(lev[s, p1], n, original)
                h = head[s, g]
                special = h >= 0 and f[s, p1] <= f[s, p2] and f[s, p1] < f[s, h] \
                    and f[s, p2] == f[s, h]
                _insert(head[s], nxt[s], f[s], g, p1)
                if special:
                    nxt[s, p2] = nxt[s, p1]
                    nxt[s, p1] = p2
                else:
                    _insert(head[s], nxt[s], f[s], g, p2)
            _insert(head[s], nxt[s], f[s], _group(lev[s, p], n, original), p)
        state[s] = 1


@dataclass(frozen=True)
class DirectResult:
    """Outcome of one search.

    Attributes
    ----------
    x
        ``(n,)`` float64, the best point found.
    fun
        Its value.
    nfev
        Evaluations used (equal to the budget).
    nit
        Rounds of evaluations (DIRECT iterations, the first one included) the optimiser ran.
    points
        ``(nfev, n)`` float64, every point in evaluation order.
    values
        ``(nfev,)`` float64, their values.
    """

    x: np.ndarray
    fun: float
    nfev: int
    nit: int
    points: np.ndarray
    values: np.ndarray


class BatchedDirect:
    """``S`` independent DIRECT searches (minimisation) that advance together.

    Parameters
    ----------
    lower, upper
        ``(S, n)`` (or ``(n,)`` for one search) bounds of each search's box; ``lower < upper``.
    budget
        Evaluations per search, exactly (the last iteration is cut to fit).
    eps
        Jones' epsilon (``>= 0``), SciPy's ``eps``.
    locally_biased
        DIRECT-L (True, SciPy's default) or the original DIRECT (False).
    strict_hull
        Reject rectangles above the lower convex hull (Jones' full rule). False (default)
        divides them as ``scipy.optimize.direct`` does (see the module notes).

    Examples
    --------
    Two searches (two boxes) of a quadratic, 30 evaluations each:

    >>> opt = BatchedDirect([[-1.0, -1.0], [0.0, 0.0]], [[1.0, 2.0], [3.0, 1.0]], budget=30)
    >>> while not opt.done:
    ...     points, owner = opt.ask()  # every unfinished search's next iteration
    ...     opt.tell(((points - 0.3) ** 2).sum(axis=1))
    >>> [round(opt.result(s).fun, 3) for s in range(2)], opt.num_evaluations.tolist()
    ([0.001, 0.001], [30, 30])
    """

    def __init__(
        self,
        lower: np.ndarray,
        upper: np.ndarray,
        budget: int,
        eps: float = 1e-4,
        locally_biased: bool = True,
        strict_hull: bool = False,
    ) -> None:
        lower = np.asarray(lower, dtype=np.float64)
        upper = np.asarray(upper, dtype=np.float64)
        if lower.ndim == 1:
            lower = lower[None]
        if upper.ndim == 1:
            upper = upper[None]
        if lower.ndim != 2 or lower.shape != upper.shape or lower.shape[1] < 1:
            raise ValueError(
                f"lower and upper must have the same shape (S, n) with n >= 1, got "
                f"{lower.shape} and {upper.shape}"
            )
        if lower.shape[0] < 1:
            raise ValueError("at least one search is needed (lower has 0 rows)")
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            raise ValueError("bounds must be finite")
        if not np.all(lower < upper):
            bad = np.argwhere(~(lower < upper))[0]
            raise ValueError(
                f"bounds of search {bad[0]}, dimension {bad[1]} are empty: lower "
                f"{lower[tuple(bad)]!r} >= upper {upper[tuple(bad)]!r}"
            )
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
            raise ValueError(f"budget must be a positive int, got {budget!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
                or not math.isfinite(float(eps)) or float(eps) < 0:
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
        if not isinstance(locally_biased, (bool, np.bool_)):
            raise ValueError(f"locally_biased must be True or False, got {locally_biased!r}")
        if not isinstance(strict_hull, (bool, np.bool_)):
            raise ValueError(f"strict_hull must be True or False, got {strict_hull!r}")

        num, n = lower.shape
        self.lower = lower
        self.upper = upper
        self.budget = int(budget)
        self.eps = float(eps)
        self.locally_biased = bool(locally_biased)
        self.strict_hull = bool(strict_hull)
        self.num_searches = num
        self.ndim = n
        # the unit cube maps to the box as SciPy's DIRECT does: x = (c + l / (u - l)) * (u - l)
        self._xs1 = upper - lower
        self._xs2 = lower / self._xs1
        cap = self.budget
        num_groups = (cap + 2) * n + 1
        self._measures = _measures(num_groups, n, self.locally_biased)
        self._thirds = _thirds(cap + 3)
        self._state = np.full(num, _RUNNING, np.int8)
        self._c = np.zeros((num, cap, n), np.float64)
        self._lev = np.zeros((num, cap, n), np.int32)
        self._f = np.zeros((num, cap), np.float64)
        self._nxt = np.full((num, cap), -1, np.int32)
        self._head = np.full((num, num_groups), -1, np.int32)
        self._cnt = np.zeros(num, np.int32)
        self._nev = np.zeros(num, np.int32)
        self._minf = np.full(num, np.inf, np.float64)
        self._minpos = np.zeros(num, np.int32)
        self._poh = np.zeros((num, cap), np.int32)
        self._poh_first = np.zeros((num, cap), np.int32)
        self._npoh = np.zeros(num, np.int32)
        self._cut = np.zeros(num, np.bool_)
        self._cand = np.zeros(num_groups, np.int32)
        self._cand_g = np.zeros(num_groups, np.int32)
        self._keep = np.zeros(num_groups, np.bool_)
        self._order = np.zeros(n, np.int32)
        self._w = np.zeros(n, np.float64)
        self._dims = np.zeros(n, np.int32)
        self._pending: tuple[np.ndarray, np.ndarray] | None = None
        self.num_rounds = 0

    @property
    def done(self) -> bool:
        """True once every search has used its budget."""
        return bool(np.all(self._state == _DONE))

    @property
    def num_evaluations(self) -> np.ndarray:
        """``(S,)`` int, evaluations each search has received so far."""
        return self._nev.copy()

    def ask(self) -> tuple[np.ndarray, np.ndarray]:
        """The points of the next iteration of every unfinished search.

        Returns
        -------
        points : numpy.ndarray
            ``(P, n)`` float64, in the boxes' coordinates; search by search (in search order),
            each search's points in DIRECT's order. ``P = 0`` when :attr:`done`.
        owner : numpy.ndarray
            ``(P,)`` int64, the search each point belongs to.

        Raises
        ------
        RuntimeError
            The previous points have not been told yet.
        """
        if self._pending is not None:
            raise RuntimeError("tell() the values of the previous ask() first")
        _ask_kernel(
            self._state, self._c, self._lev, self._f, self._nxt, self._head, self._cnt,
            self._nev, self._minf, self._poh, self._poh_first, self._npoh, self._cut,
            self._measures, self._thirds, self.budget, self.eps, not self.locally_biased,
            self.strict_hull, self._cand, self._cand_g, self._keep,
        )
        pending = np.nonzero(self._state == _PENDING)[0]
        sizes = self._cnt[pending] - self._nev[pending]
        owner = np.repeat(pending, sizes).astype(np.int64)
        index = np.concatenate(
            [np.arange(self._nev[s], self._cnt[s]) for s in pending]
        ) if len(pending) else np.zeros(0, np.int64)
        unit = self._c[owner, index]
        points = (unit + self._xs2[owner]) * self._xs1[owner]
        self._pending = (owner, index)
        if len(owner):
            self.num_rounds += 1
        return points, owner

    def tell(self, values: np.ndarray) -> None:
        """Give the values ``(P,)`` of the points the last :meth:`ask` returned, in order.

        Raises
        ------
        ValueError
            Wrong length, or a value that is not finite.
        RuntimeError
            Nothing was asked.
        """
        if self._pending is None:
            raise RuntimeError("ask() for points before tell()")
        owner, _ = self._pending
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape[0] != owner.shape[0]:
            raise ValueError(
                f"tell() needs {owner.shape[0]} values (one per point asked), got "
                f"{values.shape[0]}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError(f"values must be finite (not at positions "
                             f"{np.nonzero(~np.isfinite(values))[0][:10].tolist()})")
        _tell_kernel(
            self._state, self._lev, self._f, self._nxt, self._head, self._cnt, self._nev,
            self._minf, self._minpos, self._poh, self._poh_first, self._npoh, self._cut,
            np.ascontiguousarray(values), self.budget, not self.locally_biased, self._order,
            self._w, self._dims,
        )
        self._pending = None

    def points(self, s: int) -> np.ndarray:
        """``(m, n)`` float64: the points search ``s`` has been told, in evaluation order."""
        m = self._nev[s]
        return (self._c[s, :m] + self._xs2[s]) * self._xs1[s]

    def values(self, s: int) -> np.ndarray:
        """``(m,)`` float64: their values."""
        return self._f[s, : self._nev[s]].copy()

    def result(self, s: int) -> DirectResult:
        """Best point, value and history of search ``s``."""
        m = int(self._nev[s])
        if m == 0:
            raise RuntimeError(f"search {s} has no evaluations yet")
        best = int(self._minpos[s])
        x = (self._c[s, best] + self._xs2[s]) * self._xs1[s]
        return DirectResult(x=x, fun=float(self._f[s, best]), nfev=m, nit=self.num_rounds,
                            points=self.points(s), values=self.values(s))
