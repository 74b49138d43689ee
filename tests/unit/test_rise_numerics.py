"""RISE's numerics: offset and scale invariance, huge scores, flat maps, parameter types.

There is no exact answer to compare a RISE map with, so most tests here are metamorphic: a
transformation that changes nothing in theory (adding a constant to every score, multiplying
them by a positive factor, a NumPy scalar for a Python number) must change the map by at most
one uint8 level (float rounding) or not at all. The scores flow through the real pipeline: the
planted model on OpenVINO, the engine, ``postprocess_fn``, the scorer and the accumulator.
"""

from __future__ import annotations

import warnings

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from salvo.errors import UninformativeMapWarning
from salvo.kernels import rise_masks
from salvo.methods.black_box.rise import RISE, RISEJob, resolve_params
from salvo.testing.planted import planted_image
from support import F32, logits

PARAMS = dict(num_masks=500, num_cells=5, seed=11)


@pytest.fixture(scope="module")
def x(planted):
    return planted_image(planted, "random", seed=3)


@pytest.fixture(scope="module")
def rise(model):
    return RISE(model, logits, precision=F32, batch_size=8, progress=False)


def run(model, postprocess_fn, x, *, batch_size=8, num_requests=None, **params):
    rise = RISE(model, postprocess_fn, precision=F32, batch_size=batch_size,
                num_requests=num_requests, progress=False)
    return rise.run(x, None, resolve_params(**{**PARAMS, **params}))


@pytest.fixture(scope="module")
def base(model, x):
    """The maps of the plain logits (no warning expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninformativeMapWarning)
        return {est: run(model, logits, x, estimator=est).maps.astype(int)
                for est in ("centered", "plain")}


def with_scores(model: ov.Model, make) -> ov.Model:
    """The model with its scores output replaced by ``make(scores)`` (OpenVINO ops, f32)."""
    m = model.clone()
    result = m.get_results()[0]
    edited = make(result.input_value(0))
    result.input(0).replace_source_output(edited.output(0))
    m.validate_nodes_and_infer_types()
    return m


def levels(a, b) -> int:
    return int(np.abs(np.asarray(a, int) - np.asarray(b, int)).max())


# ------------------------------------------------------------------ offset and scale


@pytest.mark.parametrize("offset", [1e3, 1e5, 1e6, -1e6])
def test_adding_a_constant_to_every_score_moves_the_map_by_at_most_one_level(
        model, x, base, offset):
    """Before the fix: 1e5 moved the map by 129 levels, 1e6 by 234 (float32 accumulation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninformativeMapWarning)
        maps = run(model, lambda o: np.asarray(o[0], np.float64) + offset, x).maps
    assert levels(maps, base["centered"]) <= 1, f"offset {offset:g}"


@pytest.mark.parametrize("factor", [1e-6, 3.7, 1e30])
@pytest.mark.parametrize("estimator", ["centered", "plain"])
def test_multiplying_every_score_moves_the_map_by_at_most_one_level(
        model, x, base, factor, estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninformativeMapWarning)
        maps = run(model, lambda o: np.asarray(o[0], np.float64) * factor, x,
                   estimator=estimator).maps
    assert levels(maps, base[estimator]) <= 1, f"factor {factor:g}"


def test_a_power_of_two_factor_changes_nothing(model, x, base):
    """Scores are rescaled by a power of two before the float32 sums: 2**k is exact."""
    maps = run(model, lambda o: np.asarray(o[0], np.float64) * 2.0 ** 90, x).maps
    np.testing.assert_array_equal(maps, base["centered"])


@pytest.mark.parametrize("factor", [1e37, 2e37])
@pytest.mark.parametrize("estimator", ["centered", "plain"])
def test_logits_near_1e37_do_not_overflow(model, x, base, factor, estimator):
    """Scores scaled inside the graph (float32); before the fix the float32 sums overflowed
    and the map was all zeros."""
    huge = with_scores(model, lambda s: ops.multiply(s, np.float32(factor)))
    maps = run(huge, logits, x, estimator=estimator).maps
    assert maps.max() == 255, "the map is not all zeros"
    assert levels(maps, base[estimator]) <= 1


@settings(max_examples=10, deadline=None)
@given(offset=st.floats(-1e6, 1e6, allow_nan=False))
def test_offset_invariance_property(model, x, base, offset):
    maps = run(model, lambda o: np.asarray(o[0], np.float64) + offset, x).maps
    assert levels(maps, base["centered"]) <= 1


@settings(max_examples=10, deadline=None)
@given(log10_factor=st.floats(-6, 30, allow_nan=False))
def test_scale_invariance_property(model, x, base, log10_factor):
    factor = 10.0 ** log10_factor
    maps = run(model, lambda o: np.asarray(o[0], np.float64) * factor, x).maps
    assert levels(maps, base["centered"]) <= 1


def test_offset_scores_stay_bit_identical_across_batch_sizes_requests_and_packing(model, x,
                                                                                   planted):
    """The offset and the scale are chosen from fixed chunks of masks, never from a batch."""
    def shifted(o):
        return np.asarray(o[0], np.float64) * 1e30 + 1e36

    maps = [run(model, shifted, x, batch_size=b, num_requests=r).maps
            for b, r in ((1, 1), (7, 3), (32, 2))]
    for m in maps[1:]:
        np.testing.assert_array_equal(m, maps[0])
    images = [x, planted_image(planted, "random", seed=4), x]
    rise = RISE(model, shifted, precision=F32, batch_size=7, num_requests=2, progress=False)
    got = []
    rise.run_many([RISEJob(im, None) for im in images], resolve_params(**PARAMS),
                  lambda job, r: got.append(r))
    np.testing.assert_array_equal(got[0].maps, maps[0])
    np.testing.assert_array_equal(got[2].maps, maps[0])
    alone = run(model, shifted, images[1], batch_size=5).maps
    np.testing.assert_array_equal(got[1].maps, alone)


def test_plain_is_the_reference_sum_computed_precisely(model, x):
    """Plain RISE is ``sum_i s_i m_i`` (the reference's formula), here with scores offset by
    1e6: compared with the same sum in float64 over the same masks and scores."""
    h = w = 56
    n = 256
    batched = model.clone()
    batched.reshape([8, 3, h, w])
    compiled = ov.Core().compile_model(batched, "CPU", {"INFERENCE_PRECISION_HINT": F32})
    masks = rise_masks(11, 0, n, 5, 0.5, h, w)
    scores = np.concatenate([compiled(x * masks[i : i + 8, None])[0] for i in range(0, n, 8)])
    scores = scores.astype(np.float64) + 1e6
    reference = np.einsum("nt,np->tp", scores, masks.reshape(n, -1).astype(np.float64))
    lo, hi = reference.min(1, keepdims=True), reference.max(1, keepdims=True)
    expected = np.rint(255 * (reference - lo) / (hi - lo)).reshape(-1, h, w)
    maps = run(model, lambda o: np.asarray(o[0], np.float64) + 1e6, x, num_masks=n,
               estimator="plain", mask_design="iid").maps  # the reference's masks
    assert levels(maps, expected) <= 1


# ------------------------------------------------------------------ flat maps


def test_a_constant_model_gives_a_flat_map_and_a_warning(model, x):
    """Before the fix: a full 0..255 map of rounding noise, and no warning."""
    constant = with_scores(model, lambda s: ops.add(ops.multiply(s, np.float32(0)),
                                                    np.float32(7.25)))
    for scale_output in (True, False):
        with pytest.warns(UninformativeMapWarning, match=r"3 of 3 target\(s\) \(0, 1, 2\)"):
            result = run(constant, logits, x, scale_output=scale_output)
        assert not result.maps.any(), "a flat map"
        assert result.flat.tolist() == [True, True, True]


def test_float32_scores_that_only_flip_by_an_ulp_give_a_flat_map(model, x):
    """Scores near 1000 that move by at most one float32 ulp (6e-5) under masking: what float32
    rounding makes of a constant. Before the fix: a full-range map."""
    noise = with_scores(model, lambda s: ops.add(ops.multiply(s, np.float32(2e-5)),
                                                 np.float32(1000.0)))
    with pytest.warns(UninformativeMapWarning, match="did not vary over the 500 masks"):
        result = run(noise, logits, x)
    assert not result.maps.any()


def test_scores_varying_by_1e9_relative_give_a_flat_map(model, x):
    """Below float32 resolution at the scores' magnitude (2**-23 = 1.2e-7 relative)."""
    with pytest.warns(UninformativeMapWarning, match="carries no information"):
        result = run(model, lambda o: 1.0 + 2e-9 * np.asarray(o[0], np.float64), x)
    assert not result.maps.any()


@pytest.mark.parametrize("relative", [1e-3, 1e-6])
def test_scores_varying_by_more_than_float32_resolution_give_the_real_map(
        model, x, base, relative):
    """The same construction 1e3 (and 10) times above the threshold: the planted map, and no
    warning (the logits span about 0.5, so the relative spread is ``relative``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninformativeMapWarning)
        result = run(model, lambda o: 1.0 + 2 * relative * np.asarray(o[0], np.float64), x)
    assert levels(result.maps, base["centered"]) <= 1
    assert not result.flat.any()


def test_only_the_constant_target_is_flat(model, x, base):
    def one_constant(o):
        s = np.asarray(o[0], np.float64).copy()
        s[:, 1] = 3.0
        return s

    with pytest.warns(UninformativeMapWarning, match=r"1 of 3 target\(s\) \(1\)") as record:
        result = run(model, one_constant, x)
    assert len(record) == 1
    assert result.flat.tolist() == [False, True, False]
    assert not result.maps[1].any()
    assert levels(result.maps[[0, 2]], base["centered"][[0, 2]]) <= 1


def test_run_many_warns_about_the_flat_image_only(model, x):
    def third_constant(o):
        s = np.asarray(o[0], np.float64).copy()
        s[:, 2] = -4.0
        return s

    rise = RISE(model, third_constant, precision=F32, batch_size=7, progress=False)
    got = []
    with pytest.warns(UninformativeMapWarning) as record:
        rise.run_many([RISEJob(x, [0]), RISEJob(x, [2]), RISEJob(x, [1])],
                      resolve_params(**PARAMS), lambda job, r: got.append(r))
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and "(job 1)" in messages[0] and "(2)" in messages[0]
    assert [r.flat.tolist() for r in got] == [[False], [True], [False]]
    assert not got[1].maps.any() and got[0].maps.max() == got[2].maps.max() == 255


# ------------------------------------------------------------------ parameter types


def test_numpy_scalars_and_tuples_give_bit_equal_maps(rise, x):
    """A NumPy scalar is the Python number it holds; a tuple of targets is the list."""
    reference = rise.explain(x, [0, 2], num_masks=300, num_cells=5, prob=0.5, seed=11,
                             tolerance=None).maps
    variants = [
        dict(targets=(0, 2), num_masks=np.int64(300), num_cells=np.int32(5),
             prob=np.float64(0.5), seed=np.uint32(11)),
        dict(targets=np.array([0, 2]), num_masks=300, num_cells=5, prob=np.float32(0.5),
             seed=np.int64(11)),
    ]
    for v in variants:
        targets = v.pop("targets")
        np.testing.assert_array_equal(rise.explain(x, targets, **v).maps, reference)
    # negative control: a different probability gives a different map
    other = rise.explain(x, [0, 2], num_masks=300, num_cells=5, prob=np.float64(0.3),
                         seed=11).maps
    assert not np.array_equal(other, reference)
    assert np.array_equal(other, rise.explain(x, (0, 2), num_masks=300, num_cells=5, prob=0.3,
                                              seed=11).maps)


@pytest.mark.parametrize("params, match", [
    (dict(num_masks=True), "num_masks must be a positive int, got True"),
    (dict(num_cells=np.bool_(True)), "num_cells must be a positive int"),
    (dict(seed=False), r"seed must be an int in \[0, 2\*\*64\), got False"),
    (dict(prob=True), "prob must be in"),
    (dict(check_every=True), "check_every must be a positive multiple"),
    (dict(tolerance=float("nan")), "tolerance must be a positive number"),
])
def test_bools_are_not_numbers(rise, x, params, match):
    with pytest.raises(ValueError, match=match):
        rise.explain(x, [0], **{**dict(num_masks=64, num_cells=5), **params})
