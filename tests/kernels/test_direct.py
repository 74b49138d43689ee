"""The batched DIRECT optimiser against scipy.optimize.direct on standard test functions."""

from __future__ import annotations

import numpy as np
import pytest
from salvo.kernels.direct import BatchedDirect
from salvo.testing.hooks import direct_minimize
from scipy.optimize import direct


def branin(p: np.ndarray) -> np.ndarray:
    x, y = p[:, 0], p[:, 1]
    return ((y - 5.1 / (4 * np.pi**2) * x**2 + 5 / np.pi * x - 6) ** 2
            + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x) + 10)


def six_hump_camel(p: np.ndarray) -> np.ndarray:
    x, y = p[:, 0], p[:, 1]
    return (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2


def rosenbrock(p: np.ndarray) -> np.ndarray:
    x, y = p[:, 0], p[:, 1]
    return 100 * (y - x**2) ** 2 + (1 - x) ** 2


_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547],
                      [381, 5743, 8828]])
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3(p: np.ndarray) -> np.ndarray:
    return -np.sum(_ALPHA * np.exp(-np.sum(_A * (p[:, None, :] - _P) ** 2, axis=2)), axis=1)


def wave(p: np.ndarray) -> np.ndarray:
    return np.sin(3 * p[:, 0]) + 0.1 * p[:, 0] ** 2


# (function, lower, upper, known global minimum): Branin and the six-hump camel are symmetric
# enough to produce exact ties, which exercise DIRECT's tie rules
PROBLEMS = {
    "branin": (branin, [-5.0, 0.0], [10.0, 15.0], 0.397887),
    "camel": (six_hump_camel, [-3.0, -2.0], [3.0, 2.0], -1.031628),
    "rosenbrock": (rosenbrock, [-2.048, -2.048], [2.048, 2.048], 0.0),
    "rosenbrock_symmetric": (rosenbrock, [-2.0, -2.0], [2.0, 2.0], 0.0),
    "hartmann3": (hartmann3, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], -3.86278),
    "wave_1d": (wave, [-4.0], [5.0], None),
}


def scipy_run(func, lower, upper, maxfun, locally_biased, eps=1e-4):
    """scipy's evaluations in order, its iteration ends (from the callback) and its result."""
    points: list[np.ndarray] = []
    ends: list[int] = []

    def f(x):
        points.append(np.array(x, dtype=np.float64))
        return float(func(np.array(x, dtype=np.float64)[None])[0])

    res = direct(f, list(zip(lower, upper)), maxfun=maxfun, locally_biased=locally_biased,
                 eps=eps, vol_tol=0.0, len_tol=0.0, callback=lambda x: ends.append(len(points)))
    return np.array(points), ends, res


def ours(func, lower, upper, budget, locally_biased, eps=1e-4, strict_hull=False):
    opt = BatchedDirect(np.array(lower), np.array(upper), budget, eps=eps,
                        locally_biased=locally_biased, strict_hull=strict_hull)
    rounds = []
    while not opt.done:
        points, owner = opt.ask()
        assert np.all(owner == 0)
        rounds.append(len(points))
        opt.tell(func(points))
    return opt.result(0), rounds


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("locally_biased", [True, False])
@pytest.mark.parametrize("eps", [1e-4, 0.1])
def test_samples_the_same_points_as_scipy(name, locally_biased, eps):
    """Bit-identical points in the same order, so the optimum is as good at every budget."""
    func, lower, upper, _ = PROBLEMS[name]
    budget = 150
    theirs, ends, _ = scipy_run(func, lower, upper, budget, locally_biased, eps)
    assert len(theirs) > budget  # scipy overshoots its maxfun
    result, rounds = ours(func, lower, upper, budget, locally_biased, eps)
    assert result.nfev == budget and result.points.shape == (budget, len(lower))
    np.testing.assert_array_equal(result.points, theirs[:budget])
    np.testing.assert_array_equal(result.values, func(theirs[:budget]))
    # one round per DIRECT iteration: the first is the centre and its division, then every
    # round ends where a scipy iteration ends (the last one cut at the budget)
    cumulative = np.cumsum(rounds)
    assert cumulative[0] == 1 + 2 * len(lower)
    assert list(cumulative[1:-1]) == [e for e in ends if e < budget]
    assert cumulative[-1] == budget
    assert result.fun == func(theirs[:budget]).min()


@pytest.mark.parametrize("name", ["branin", "camel", "rosenbrock", "hartmann3"])
@pytest.mark.parametrize("locally_biased", [True, False])
@pytest.mark.parametrize("maxfun", [20, 50, 300])
def test_optimum_at_least_as_good_as_scipy_with_the_same_evaluations(name, locally_biased,
                                                                     maxfun):
    func, lower, upper, fglobal = PROBLEMS[name]
    theirs, _, res = scipy_run(func, lower, upper, maxfun, locally_biased)
    # the evaluations scipy actually spent...
    same_count = direct_minimize(func, np.array(lower), np.array(upper), res.nfev,
                                 locally_biased=locally_biased)
    assert same_count.nfev == res.nfev
    assert same_count.fun <= res.fun
    # ...and the budget it was asked for (scipy's best among its first maxfun evaluations)
    asked = direct_minimize(func, np.array(lower), np.array(upper), maxfun,
                            locally_biased=locally_biased)
    assert asked.nfev == maxfun
    assert asked.fun <= func(theirs[:maxfun]).min()
    if maxfun == 300 and fglobal is not None:
        assert asked.fun - fglobal < 0.02 * max(1.0, abs(fglobal))


@pytest.mark.parametrize("locally_biased", [True, False])
def test_strict_hull_matches_scipys_logged_run(locally_biased, capfd):
    """With a log file scipy's C code applies Jones' full convex-hull test; strict_hull=True
    reproduces that run (and differs from the default one)."""
    from scipy.optimize import _direct as private  # SciPy's C DIRECT (a dependency)
    func, lower, upper, _ = PROBLEMS["branin"]
    points: list[np.ndarray] = []

    def f(x):
        points.append(np.array(x, dtype=np.float64))
        return float(func(np.array(x, dtype=np.float64)[None])[0])

    private.direct(f, np.array(lower), np.array(upper), (), True, 1e-4, 200, 1000,
                   locally_biased, -np.inf, 1e-4, 0.0, 0.0, None)
    capfd.readouterr()  # the log went to stdout
    strict, _ = ours(func, lower, upper, 200, locally_biased, strict_hull=True)
    np.testing.assert_array_equal(strict.points, np.array(points)[:200])
    default, _ = ours(func, lower, upper, 200, locally_biased)
    assert not np.array_equal(default.points, strict.points)


@pytest.mark.parametrize("budget", [1, 2, 4, 5, 6, 7, 11, 20, 33, 50])
@pytest.mark.parametrize("locally_biased", [True, False])
def test_uses_exactly_the_budget(budget, locally_biased):
    func, lower, upper, _ = PROBLEMS["camel"]
    calls = []

    def counted(p):
        calls.append(len(p))
        return func(p)

    result = direct_minimize(counted, np.array(lower), np.array(upper), budget,
                             locally_biased=locally_biased)
    assert sum(calls) == budget == result.nfev
    assert len(result.values) == budget
    # a truncated run is the prefix of a longer one (deterministic cut)
    longer = direct_minimize(func, np.array(lower), np.array(upper), budget + 9,
                             locally_biased=locally_biased)
    np.testing.assert_array_equal(longer.points[:budget], result.points)
    best = int(np.argmin(result.values))
    assert result.fun == result.values[best]
    np.testing.assert_array_equal(result.x, result.points[best])


def test_searches_advance_together_and_stay_independent():
    """Four searches (different functions, boxes and dimensions padded to 2-D) in one
    optimiser: each round holds every unfinished search's iteration, and every search samples
    exactly what it samples alone."""
    funcs = [branin, six_hump_camel, rosenbrock, branin]
    lower = np.array([[-5.0, 0.0], [-3.0, -2.0], [-2.048, -2.048], [0.0, 5.0]])
    upper = np.array([[10.0, 15.0], [3.0, 2.0], [2.048, 2.048], [10.0, 15.0]])
    budget = 37
    opt = BatchedDirect(lower, upper, budget, locally_biased=False)
    sizes = []
    while not opt.done:
        points, owner = opt.ask()
        assert np.all(np.diff(owner) >= 0), "points come search by search"
        values = np.empty(len(points))
        for s in range(4):
            values[owner == s] = funcs[s](points[owner == s])
        sizes.append(np.bincount(owner, minlength=4))
        opt.tell(values)
    sizes = np.array(sizes)
    assert np.all(sizes[0] == 5), "first round: every search's centre and its division"
    assert np.all(sizes.sum(axis=0) == budget)
    assert np.all(opt.num_evaluations == budget)
    for s in range(4):
        alone = direct_minimize(funcs[s], lower[s], upper[s], budget, locally_biased=False)
        np.testing.assert_array_equal(opt.points(s), alone.points)
        np.testing.assert_array_equal(opt.values(s), alone.values)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="budget must be a positive int"):
        BatchedDirect([0.0, 0.0], [1.0, 1.0], 0)
    with pytest.raises(ValueError, match="budget must be a positive int"):
        BatchedDirect([0.0, 0.0], [1.0, 1.0], 2.5)
    with pytest.raises(ValueError, match=r"search 0, dimension 1 are empty"):
        BatchedDirect([0.0, 1.0], [1.0, 1.0], 5)
    with pytest.raises(ValueError, match="same shape"):
        BatchedDirect([0.0, 0.0], [1.0, 1.0, 1.0], 5)
    with pytest.raises(ValueError, match="finite"):
        BatchedDirect([0.0, -np.inf], [1.0, 1.0], 5)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        BatchedDirect([0.0], [1.0], 5, eps=-0.1)
    with pytest.raises(ValueError, match="locally_biased must be True or False"):
        BatchedDirect([0.0], [1.0], 5, locally_biased="yes")
    opt = BatchedDirect([0.0, 0.0], [1.0, 1.0], 5)
    with pytest.raises(RuntimeError, match="ask"):
        opt.tell([1.0])
    points, _ = opt.ask()
    with pytest.raises(RuntimeError, match="tell"):
        opt.ask()
    with pytest.raises(ValueError, match=f"needs {len(points)} values"):
        opt.tell(np.zeros(len(points) + 1))
    with pytest.raises(ValueError, match="finite"):
        opt.tell(np.array([0.0, np.nan, 0.0, 0.0, 0.0]))
    opt.tell(np.arange(len(points), dtype=float))
    assert opt.done and opt.result(0).fun == 0.0
