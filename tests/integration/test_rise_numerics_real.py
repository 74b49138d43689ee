"""RISE offset and scale invariance on the real EfficientNet-Lite0 (f32)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from salvo.errors import UninformativeMapWarning
from salvo.methods.black_box.rise import RISE, resolve_params
from support import ESPRESSO

pytestmark = pytest.mark.slow

PARAMS = resolve_params(num_masks=512, num_cells=8, seed=3)


@pytest.fixture(scope="module")
def engine(lite0):
    # one compiled model; each run passes its own postprocess_fn
    return RISE(lite0, lambda o: o[0], precision="f32", progress=False)


def run(engine, x, postprocess_fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninformativeMapWarning)
        return engine.run(x, [ESPRESSO, 0], PARAMS, postprocess_fn=postprocess_fn).maps.astype(int)


@pytest.fixture(scope="module")
def base(engine, lite0_coffee):
    return run(engine, lite0_coffee, lambda o: o[0])


@pytest.mark.parametrize("transform", [
    pytest.param(lambda s: s + 1e6, id="plus 1e6"),
    pytest.param(lambda s: s - 1e6, id="minus 1e6"),
    pytest.param(lambda s: s * 1e-6, id="times 1e-6"),
    pytest.param(lambda s: s * 1e30, id="times 1e30"),
])
def test_espresso_map_is_offset_and_scale_invariant(engine, lite0_coffee, base, transform):
    """Before the fix: 1e6 added to the logits moved the map by most of the uint8 range."""
    maps = run(engine, lite0_coffee, lambda o: transform(np.asarray(o[0], np.float64)))
    assert np.abs(maps - base).max() <= 1
    assert base[0].max() == 255 and base[0].std() > 20  # a real map, not a flat one
