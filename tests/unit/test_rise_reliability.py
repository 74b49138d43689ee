"""RISE's reliability (every map's estimated correlation with the converged map) and the
``target_reliability`` stopping rule: honesty against a planted model's exact map, determinism
of the stopping point, the stopped map equal to a fixed-count map, no information -> NaN,
argument errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import openvino as ov
import pytest
import salvo as xai
from openvino import opset13 as ops
from salvo.cli.explain import method_kwargs
from salvo.cli.parser import build_parser
from salvo.errors import LongRunWarning, UninformativeMapWarning
from salvo.kernels import rise_masks
from salvo.methods.black_box.rise import (
    RISE,
    Accumulator,
    RISEJob,
    RISEParams,
    reliability_step,
    reliability_unit,
    resolve_params,
)
from salvo.testing.hooks import rise_grid
from support import F32, logits

SIZE, CELLS = 12, 3
#: Weight of the planted model's quadratic term.
QUADRATIC = 8.0


# ------------------------------------------ a planted model whose expected map is known exactly


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    """``(144, 4)`` float64: columns ``a_0, a_1, u_0, u_1`` of the planted model's scores
    ``s_t(x) = a_t . x + (u_t . x)**2 / 144`` (a smooth pattern for class 0, pixel noise for
    class 1; the squares add score noise that does not average out within a block)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    blob = (np.exp(-((yy - 0.3) ** 2 + (xx - 0.6) ** 2) / 0.02)
            - 0.7 * np.exp(-((yy - 0.7) ** 2 + (xx - 0.3) ** 2) / 0.03))
    a = np.stack([blob + 0.3 * rng.normal(size=blob.shape), rng.normal(size=blob.shape)], -1)
    u = rng.normal(size=(SIZE, SIZE, 2)) * QUADRATIC
    return np.concatenate([a, u], axis=-1).reshape(-1, 4)


def planted_scores(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``s (B, 2)`` float64 of inputs ``x (B, 144)``."""
    z = x @ weights
    return z[:, :2] + z[:, 2:] ** 2 / (SIZE * SIZE)


@pytest.fixture(scope="module")
def linear(weights: np.ndarray) -> ov.Model:
    """``(B, 1, 12, 12)`` -> ``(B, 2)``: :func:`planted_scores` in float32."""
    x = ops.parameter([-1, 1, SIZE, SIZE], np.float32, name="x")
    flat = ops.reshape(x, ops.constant(np.array([-1, SIZE * SIZE], np.int64)), False)
    z = ops.matmul(flat, ops.constant(weights.astype(np.float32)), False, False)
    lin = ops.slice(z, ops.constant(np.array([0])), ops.constant(np.array([2])),
                    ops.constant(np.array([1])), ops.constant(np.array([1])))
    quad = ops.slice(z, ops.constant(np.array([2])), ops.constant(np.array([4])),
                     ops.constant(np.array([1])), ops.constant(np.array([1])))
    quad = ops.multiply(ops.multiply(quad, quad), ops.constant(np.float32(1 / (SIZE * SIZE))))
    return ov.Model([ops.result(ops.add(lin, quad))], [x], "planted")


@pytest.fixture(scope="module")
def exact_map(weights: np.ndarray) -> np.ndarray:
    """The centred estimator's exact expectation per mask, ``Cov(m, s(m))`` ``(2, 144)``, over
    the production generator's masks: every (grid, shift) pair of 3 x 3 cells on 12 x 12 pixels
    (512 grids x 16 shifts, equally likely), each mask taken from ``rise_masks`` itself (found
    among its first 120 000 iid masks), its scores :func:`planted_scores` in float64 (the model
    sees the all-ones image masked, i.e. the mask)."""
    count = 120_000
    masks = rise_masks(321, 0, count, CELLS, 0.5, SIZE, SIZE).reshape(count, -1)
    table: dict[tuple[bytes, int, int], int] = {}
    for i in range(count):
        grid, dy, dx = rise_grid(321, i, CELLS, 0.5, SIZE, SIZE)
        table.setdefault((grid.tobytes(), dy, dx), i)
    step = math.ceil(SIZE / CELLS)
    assert len(table) == 2 ** (CELLS * CELLS) * step * step  # every pair found
    m = masks[list(table.values())].astype(np.float64)
    s = planted_scores(weights, m)
    return ((s - s.mean(axis=0)).T @ m) / len(m)


def curves(linear, design: str, seeds, budgets) -> list[tuple]:
    """``(map (P,), reported reliability, point estimate, target)`` per seed, budget and
    target, read at ``budgets`` masks of one run per seed."""
    rise = RISE(linear, logits, precision=F32, batch_size=64, progress=False)
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []

    def on_check(count: int, acc: Accumulator) -> None:
        if count in budgets:
            bound, estimate = acc.reliability()
            rows.append((count, acc.maps("centered").astype(np.float64), bound, estimate))

    out = []
    for seed in seeds:
        rows.clear()
        params = resolve_params(num_masks=max(budgets), num_cells=CELLS, seed=seed,
                                mask_design=design, check_every=128)
        result = rise.run(x, None, params, on_check=on_check)
        assert [r[0] for r in rows] == sorted(budgets)
        # the result reports what the accumulator said at its last mask
        np.testing.assert_array_equal(result.reliability, rows[-1][2])
        for _count, maps, bound, estimate in rows:
            for t in range(2):
                out.append((maps[t], bound[t], estimate[t], t))
    return out


@pytest.mark.parametrize("design", ["iid", "balanced"])
def test_reported_reliability_tracks_the_correlation_with_the_exact_map(
    linear, exact_map, design
):
    budgets = (256, 512, 1024, 2048, 4096)
    rows = curves(linear, design, range(6), budgets)
    true = np.array([np.corrcoef(m, exact_map[t])[0, 1] for m, _, _, t in rows])
    bound = np.array([r[1] for r in rows], float)
    estimate = np.array([r[2] for r in rows], float)
    assert np.isfinite(bound).all() and np.isfinite(estimate).all()
    assert (bound <= estimate).all()  # the reported value is the conservative one
    error = bound - true
    assert np.mean(np.abs(error) <= 0.03) >= 0.9, error
    assert np.mean(error > 0.03) <= 0.05, error
    if design == "iid":
        assert true.min() < 0.95  # the study covers maps far from converged


# --------------------------------------------------------------------------- stopping rule


def test_stop_point_and_map_do_not_depend_on_batches_requests_or_packing(linear):
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    params = resolve_params(num_masks=4096, num_cells=CELLS, seed=3, mask_design="iid",
                            target_reliability=0.97)
    ref = RISE(linear, logits, precision=F32, batch_size=1, progress=False).run(x, None, params)
    step = reliability_step(params.validate(SIZE, SIZE), 2)
    assert ref.num_masks_used < 4096 and ref.num_masks_used % step == 0
    assert (ref.reliability >= 0.97).all()
    for batch_size, num_requests in ((7, 3), (64, 2), (100, 1)):
        rise = RISE(linear, logits, precision=F32, batch_size=batch_size,
                    num_requests=num_requests, progress=False)
        got = rise.run(x, None, params)
        assert got.num_masks_used == ref.num_masks_used
        assert np.array_equal(got.maps, ref.maps)
        np.testing.assert_array_equal(got.reliability, ref.reliability)
        packed: list = []
        rise.run_many([RISEJob(x), RISEJob(x)], params,
                      lambda job, r, out=packed: out.append(r))
        for r in packed:
            assert r.num_masks_used == ref.num_masks_used
            assert np.array_equal(r.maps, ref.maps)
            np.testing.assert_array_equal(r.reliability, ref.reliability)


@pytest.mark.parametrize("design", ["iid", "balanced"])
def test_stopped_map_equals_the_map_of_that_many_masks(linear, design):
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    rise = RISE(linear, logits, precision=F32, batch_size=48, progress=False)
    target = 0.97 if design == "iid" else 0.995
    stopped = rise.run(x, None, resolve_params(num_masks=8192, num_cells=CELLS, seed=5,
                                               mask_design=design,
                                               target_reliability=target))
    assert stopped.num_masks_used < 8192
    assert stopped.num_inferences >= stopped.num_masks_used  # masks in flight are counted
    fixed = rise.run(x, None, resolve_params(num_masks=stopped.num_masks_used,
                                             num_cells=CELLS, seed=5, mask_design=design))
    assert np.array_equal(stopped.maps, fixed.maps)
    np.testing.assert_array_equal(stopped.reliability, fixed.reliability)
    # the run stopped at the first check that reached the target, not later
    step = reliability_step(resolve_params(num_cells=CELLS, mask_design=design)
                            .validate(SIZE, SIZE), 2)
    earlier = rise.run(x, None, resolve_params(num_masks=stopped.num_masks_used - step,
                                               num_cells=CELLS, seed=5, mask_design=design))
    assert not (earlier.reliability >= target).all()


def test_target_reliability_caps_at_num_masks(linear):
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    rise = RISE(linear, logits, precision=F32, batch_size=64, progress=False)
    got = rise.run(x, None, resolve_params(num_masks=300, num_cells=CELLS, seed=1,
                                           mask_design="iid", target_reliability=0.9999))
    assert got.num_masks_used == 300


# ------------------------------------------------------------------------- no information


@pytest.fixture(scope="module")
def constant() -> ov.Model:
    """``(B, 1, 12, 12)`` -> ``(B, 2)``: the same scores whatever the input."""
    x = ops.parameter([-1, 1, SIZE, SIZE], np.float32, name="x")
    flat = ops.reshape(x, ops.constant(np.array([-1, SIZE * SIZE], np.int64)), False)
    zero = ops.multiply(ops.reduce_sum(flat, ops.constant(np.array([1], np.int64)), True),
                        ops.constant(np.float32(0)))
    scores = ops.add(zero, ops.constant(np.array([[3.0, -1.0]], np.float32)))
    return ov.Model([ops.result(scores)], [x], "constant")


def test_constant_model_reports_nan_and_never_stops_early(constant):
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    rise = RISE(constant, logits, precision=F32, batch_size=64, progress=False)
    with pytest.warns(UninformativeMapWarning):
        got = rise.run(x, None, resolve_params(num_masks=1024, num_cells=CELLS, seed=0,
                                               target_reliability=0.5))
    assert got.num_masks_used == 1024
    assert np.isnan(got.reliability).all()
    with pytest.warns(UninformativeMapWarning):
        explanation = xai.Explainer(constant, task=xai.Task.CLASSIFICATION,
                                    explain_mode=xai.ExplainMode.BLACKBOX,
                                    explain_method=xai.Method.RISE,
                                    postprocess_fn=logits, precision=F32, progress=False)(
            x, targets=[0, 1], num_masks=256, num_cells=CELLS, target_reliability=0.5)
    assert set(explanation.reliability) == {0, 1}
    assert all(math.isnan(v) for v in explanation.reliability.values())
    assert explanation.num_inferences == 257


def test_reliability_is_nan_without_three_folds():
    acc = Accumulator(1, 16, shape=(4, 4), fold_unit=64)
    rng = np.random.default_rng(0)
    for folds in (1, 2):  # one fold: nothing to compare; two: too little to bound the noise
        acc.add(rng.integers(0, 2, (64, 16)).astype(np.float32), rng.normal(size=(64, 1)))
        assert acc.count == 64 * folds
        assert np.isnan(acc.reliability()[0]).all() and np.isnan(acc.reliability()[1]).all()
    acc.add(rng.integers(0, 2, (64, 16)).astype(np.float32), rng.normal(size=(64, 1)))
    bound, estimate = acc.reliability()
    assert np.isfinite(bound).all() and np.isfinite(estimate).all()


def test_target_reliability_never_stops_before_three_folds(linear):
    """An easy map passes any bound early, yet no run stops before three fold units."""
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    rise = RISE(linear, logits, precision=F32, batch_size=64, progress=False)
    params = resolve_params(num_masks=4096, num_cells=CELLS, seed=3, target_reliability=0.01)
    got = rise.run(x, [0], params)
    valid = params.validate(SIZE, SIZE)
    step, unit = reliability_step(valid, 1), reliability_unit(valid)
    assert got.num_masks_used == -(-3 * unit // step) * step  # the first check with 3 folds
    assert 0.01 <= got.reliability[0] <= 1.0


# ------------------------------------------------------------------------------- plumbing


def test_all_classes_with_target_reliability_warn_at_the_callers_line(linear):
    """targets=-1 waits for every class: said before the run (of more than a handful of
    classes), at the caller's line."""
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    explainer = xai.Explainer(linear, task=xai.Task.CLASSIFICATION,
                              explain_mode=xai.ExplainMode.BLACKBOX,
                              explain_method=xai.Method.RISE,
                              postprocess_fn=lambda out: np.tile(logits(out), 10),  # 20 classes
                              precision=F32, progress=False)
    with pytest.warns(LongRunWarning, match=r"target_reliability=0\.9 waits for every "
                                            r"explained target, here all 20 classes") as record:
        explainer(x, targets=-1, num_masks=256, num_cells=CELLS, target_reliability=0.9)
    warning = next(w for w in record if issubclass(w.category, LongRunWarning))
    assert warning.filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", LongRunWarning)  # named targets, or no target: quiet
        explainer(x, targets=[0], num_masks=256, num_cells=CELLS, target_reliability=0.9)
        explainer(x, targets=-1, num_masks=256, num_cells=CELLS)


def test_explanation_and_method_result_carry_the_reliability(linear):
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    explainer = xai.Explainer(linear, task=xai.Task.CLASSIFICATION,
                              explain_mode=xai.ExplainMode.BLACKBOX,
                                    explain_method=xai.Method.RISE, postprocess_fn=logits,
                              precision=F32, progress=False)
    explanation = explainer(x, targets=[1], num_masks=1024, num_cells=CELLS)
    assert list(explanation.reliability) == [1]
    assert 0.5 < explanation.reliability[1] <= 1.0
    result = explainer.method.explain(x, [0, 1], num_masks=1024, num_cells=CELLS)
    assert set(result.reliability) == {0, 1}
    assert set(result.extra["reliability_estimate"]) == {0, 1}
    for t in (0, 1):
        assert result.reliability[t] <= result.extra["reliability_estimate"][t]
    stopped = explainer(x, targets=[0], num_masks=4096, num_cells=CELLS,
                        target_reliability=0.99)
    assert stopped.reliability[0] >= 0.99 and stopped.num_inferences < 4097
    assert xai.Explanation({0: np.zeros((4, 4))}).reliability == {}


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.2, True, "0.9", float("nan"), float("inf")])
def test_bad_target_reliability_is_an_error_naming_it(value):
    with pytest.raises(ValueError, match=r"target_reliability.*" + repr(value)[:3]):
        RISEParams(target_reliability=value).validate(SIZE, SIZE)


def test_numpy_target_reliability_is_accepted():
    got = RISEParams(target_reliability=np.float32(0.5)).validate(SIZE, SIZE)
    assert type(got.target_reliability) is float and got.target_reliability == 0.5


def test_cli_flag_reaches_the_method_keywords():
    parser = build_parser()
    args = parser.parse_args(["explain", "m.xml", "a.png", "--out", "o",
                              "--target-reliability", "0.95"])
    assert method_kwargs(args)["target_reliability"] == 0.95
    args = parser.parse_args(["explain", "m.xml", "a.png", "--out", "o"])
    assert "target_reliability" not in method_kwargs(args)


def test_reliability_of_targets_in_many_target_chunks_does_not_depend_on_batches(linear):
    """With 16 or more targets the accumulation chunk (256) spans several fold units: the
    folds still follow the mask index."""
    rng = np.random.default_rng(1)
    masks = rng.integers(0, 2, (1024, 64)).astype(np.float32)
    scores = masks @ rng.normal(size=(64, 20)) + rng.normal(size=(1024, 20))
    results = []
    for batch in (1024, 100, 7):
        acc = Accumulator(20, 64, shape=(8, 8), fold_unit=64)
        for start in range(0, 1024, batch):
            acc.add(masks[start:start + batch], scores[start:start + batch])
        acc.finish()
        results.append(acc.reliability())
    for r in results[1:]:
        np.testing.assert_array_equal(r[0], results[0][0])
    # and equal to a run with the few-target chunk, fold by fold (same folds, same maps)
    one = Accumulator(1, 64, shape=(8, 8), fold_unit=64)
    one.add(masks, scores[:, :1])
    one.finish()
    np.testing.assert_allclose(one.reliability()[1], results[0][1][:1], rtol=1e-5)
    assert np.isfinite(results[0][0]).all()


def test_many_target_stop_is_the_first_check_where_every_target_passes():
    """The stopping check looks at the targets that failed last time first; it must still stop
    exactly where every target's bound first reaches the target, not earlier or later."""
    rng = np.random.default_rng(2)
    num = 4096
    masks = rng.integers(0, 2, (num, 64)).astype(np.float32)
    noise = rng.normal(size=(num, 20)) * np.linspace(0.5, 6.0, 20)
    scores = masks @ rng.normal(size=(64, 20)) + noise
    seen: dict[int, np.ndarray] = {}

    def record(count: int, acc: Accumulator) -> None:
        seen[count] = acc.reliability()[0]
        np.testing.assert_allclose(acc.reliability(np.array([3, 17]))[0],
                                   seen[count][[3, 17]], rtol=1e-12)

    free = Accumulator(20, 64, shape=(8, 8), fold_unit=64, on_check=record, check_every=256)
    free.add(masks, scores)
    passing = [c for c in sorted(seen) if (seen[c] >= 0.94).all()]
    assert passing and passing[0] < num  # the study stops somewhere inside the run
    stopped = Accumulator(20, 64, shape=(8, 8), fold_unit=64, target_reliability=0.94)
    for start in range(0, num, 100):
        if stopped.add(masks[start:start + 100], scores[start:start + 100]):
            break
    assert stopped.converged and stopped.count == passing[0]
    assert (stopped.reliability()[0] >= 0.94).all()
