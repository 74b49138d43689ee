"""RISE's mask designs through the method: a planted linear model (the balanced design's map
converges to the estimator's exact expectation faster than iid masks), determinism across batch
sizes, requests and packing, the parameter's plumbing and its errors."""

from __future__ import annotations

import re

import numpy as np
import openvino as ov
import pytest
import salvo as xai
from openvino import opset13 as ops

from salvo.cli.explain import method_kwargs
from salvo.cli.parser import build_parser
from salvo.common import Preset
from salvo.kernels import rise_masks
from salvo.methods.black_box.drise import DRISE
from salvo.methods.black_box.rise import (
    MASK_DESIGNS,
    RISE,
    RISE_PRESETS,
    RISEJob,
    RISEParams,
    mask_design_used,
    resolve_params,
)
from salvo.testing.hooks import rise_grid
from salvo.testing.planted import planted_image
from support import F32, logits

SIZE, CELLS = 8, 2


# ------------------------------------------------------------------ a model linear in the mask


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    """``(64, 2)`` float32: class t's score is ``sum_p weights[p, t] * pixel_p``."""
    return np.random.default_rng(0).normal(size=(SIZE * SIZE, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def linear(weights: np.ndarray) -> ov.Model:
    """``(B, 1, 8, 8)`` -> ``(B, 2)`` scores exactly linear in the input (so, on an all-ones
    image, in the mask)."""
    x = ops.parameter([-1, 1, SIZE, SIZE], np.float32, name="x")
    flat = ops.reshape(x, ops.constant(np.array([-1, SIZE * SIZE], np.int64)), False)
    scores = ops.matmul(flat, ops.constant(weights), False, False)
    return ov.Model([ops.result(scores)], [x], "linear")


@pytest.fixture(scope="module")
def expected_map(weights: np.ndarray) -> np.ndarray:
    """The centred estimator's exact expectation per mask, ``Cov(m) @ weights`` ``(2, 64)``,
    over the production generator's masks: every (grid, shift) pair of 2 x 2 cells on 8 x 8
    pixels (16 grids x 16 shifts, equally likely), each mask taken from ``rise_masks`` itself
    (found among its first 4096 iid masks)."""
    count = 4096
    masks = rise_masks(123, 0, count, CELLS, 0.5, SIZE, SIZE).reshape(count, -1)
    table: dict[tuple[bytes, int, int], np.ndarray] = {}
    for i in range(count):
        grid, dy, dx = rise_grid(123, i, CELLS, 0.5, SIZE, SIZE)
        table.setdefault((grid.tobytes(), dy, dx), masks[i].astype(np.float64))
    assert len(table) == 2 ** (CELLS * CELLS) * (SIZE // CELLS) ** 2  # every pair found
    m = np.array(list(table.values()))
    cov = m.T @ m / len(m) - np.outer(m.mean(axis=0), m.mean(axis=0))
    return (cov @ weights.astype(np.float64)).T


def relative_errors(linear, design: str, num_masks: int, seeds, expected) -> np.ndarray:
    rise = RISE(linear, logits, precision=F32, batch_size=256, progress=False)
    x = np.ones((1, 1, SIZE, SIZE), np.float32)
    errors = []
    for seed in seeds:
        params = resolve_params(num_masks=num_masks, num_cells=CELLS, seed=seed,
                                scale_output=False, mask_design=design)
        got = rise.run(x, None, params).maps.reshape(2, -1).astype(np.float64) / num_masks
        errors.append(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    return np.array(errors)


def test_balanced_map_converges_to_the_exact_expectation_faster_than_iid(linear,
                                                                         expected_map):
    """Negative control built in: were the balanced design silently iid masks, the two error
    levels would be equal and the first assertion would fail. Measured: mean relative error at
    512 masks about 0.016 balanced vs 0.067 iid."""
    seeds = range(5)
    iid = relative_errors(linear, "iid", 512, seeds, expected_map)
    balanced = relative_errors(linear, "balanced", 512, seeds, expected_map)
    print("relative errors at 512 masks: balanced", balanced, "iid", iid)
    assert balanced.mean() < 0.5 * iid.mean(), (balanced, iid)
    # and it converges to the same expectation (each mask is distributed as an iid mask): a
    # biased design would level off
    assert balanced.max() < 0.05 and iid.max() < 0.2
    more = relative_errors(linear, "balanced", 1536, range(2), expected_map)
    print("balanced at 1536 masks", more)
    assert more.mean() < 0.7 * balanced.mean()


# ------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("design, num_cells, num_masks", [
    ("balanced", 5, 300),   # blocks of 64: 4 full blocks and a partial one
    ("balanced", 16, 200),  # blocks of 512: less than one block
    ("iid", 5, 300),
])
def test_maps_are_bit_identical_across_batch_sizes_requests_and_packing(
    planted, model, design, num_cells, num_masks
):
    images = [planted_image(planted, "random", seed=s) for s in range(3)]
    params = resolve_params(num_masks=num_masks, num_cells=num_cells, seed=7,
                            mask_design=design)
    alone = [RISE(model, logits, precision=F32, batch_size=1, progress=False).run(x, None, params)
             .maps for x in images]
    for batch_size, num_requests in ((7, 3), (32, 2)):
        rise = RISE(model, logits, precision=F32, batch_size=batch_size,
                    num_requests=num_requests, progress=False)
        assert np.array_equal(rise.run(images[0], None, params).maps, alone[0])
        got: list = []
        rise.run_many([RISEJob(x) for x in images], params, lambda job, r: got.append(r.maps))
        for g, a in zip(got, alone):
            assert np.array_equal(g, a)
    other = "iid" if design == "balanced" else "balanced"
    changed = RISE(model, logits, precision=F32, batch_size=8, progress=False).run(
        images[0], None, resolve_params(num_masks=num_masks, num_cells=num_cells, seed=7,
                                        mask_design=other)).maps
    assert not np.array_equal(changed, alone[0]), "the design matters"


# ------------------------------------------------------------------------ parameter plumbing


def test_default_is_balanced_and_results_name_the_design(planted, model):
    assert RISEParams().mask_design == "balanced" and MASK_DESIGNS == ("balanced", "iid")
    assert all(p.mask_design == "balanced" for p in RISE_PRESETS.values())
    rise = RISE(model, logits, precision=F32, batch_size=16, progress=False)
    x = planted_image(planted, "random", seed=1)
    default = rise.explain(x, 0, num_masks=64, num_cells=4)
    assert default.extra["mask_design"] == "balanced"
    iid = rise.explain(x, 0, num_masks=64, num_cells=4, mask_design="iid")
    assert iid.extra["mask_design"] == "iid"
    assert not np.array_equal(default.maps, iid.maps)


def test_prob_other_than_half_uses_iid_masks(planted, model):
    """Only prob 0.5 has a balanced design: other probs run exactly the iid masks."""
    assert mask_design_used(RISEParams(prob=0.3).validate(56, 56)) == "iid"
    assert mask_design_used(RISEParams(prob=np.float32(0.5)).validate(56, 56)) == "balanced"
    rise = RISE(model, logits, precision=F32, batch_size=16, progress=False)
    x = planted_image(planted, "random", seed=2)
    a = rise.explain(x, 0, num_masks=64, num_cells=4, prob=0.3)
    b = rise.explain(x, 0, num_masks=64, num_cells=4, prob=0.3, mask_design="iid")
    assert a.extra["mask_design"] == "iid"
    assert np.array_equal(a.maps, b.maps)


def test_explainer_keyword_selects_the_design(planted, model):
    explainer = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              explain_mode=xai.ExplainMode.BLACKBOX,
                              explain_method=xai.Method.RISE, num_masks=64, num_cells=4,
                              progress=False, inference_precision="f32")
    x = planted_image(planted, "random", seed=4)
    iid = explainer(x, targets=0, mask_design="iid", resize=False, colormap=False)
    again = explainer(x, targets=0, mask_design="iid", resize=False, colormap=False)
    balanced = explainer(x, targets=0, resize=False, colormap=False)
    assert np.array_equal(iid.saliency_map[0], again.saliency_map[0])
    assert not np.array_equal(iid.saliency_map[0], balanced.saliency_map[0])
    with pytest.raises(ValueError, match=r"mask_design must be one of .*got 'hadamard'"):
        explainer(x, targets=0, mask_design="hadamard")


@pytest.mark.parametrize("value", ["Balanced", "hadamard", 1, True, ("iid",)])
def test_bad_mask_design_is_an_error_naming_the_value(value):
    with pytest.raises(ValueError, match=f"mask_design must be one of .*got {re.escape(repr(value))}"):
        RISEParams(mask_design=value).validate(56, 56)


def test_drise_presets_keep_iid_masks():
    assert DRISE.presets is not RISE_PRESETS
    for preset in Preset:
        p = DRISE.resolve_params(preset=preset)
        assert p.mask_design == "iid"
        assert p == RISE_PRESETS[preset].__class__(
            **{**RISE_PRESETS[preset].__dict__, "mask_design": "iid"})
    assert DRISE.resolve_params(mask_design="balanced").mask_design == "balanced"


def test_cli_flag_reaches_the_method_keywords():
    parser = build_parser()
    args = parser.parse_args(["explain", "m.xml", "a.png", "--out", "o",
                              "--mask-design", "iid"])
    assert method_kwargs(args)["mask_design"] == "iid"
    args = parser.parse_args(["explain", "m.xml", "a.png", "--out", "o"])
    assert "mask_design" not in method_kwargs(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["explain", "m.xml", "a.png", "--out", "o", "--mask-design", "x"])
