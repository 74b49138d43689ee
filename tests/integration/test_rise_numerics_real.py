"""RISE offset and scale invariance on the real EfficientNet-Lite0 (f32)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from salvo.errors import UninformativeMapWarning
from salvo.methods.blackbox.rise import RISE, resolve_params

zoo = pytest.importorskip("salvo.zoo")
pytestmark = pytest.mark.slow

ESPRESSO = 967
PARAMS = resolve_params(num_masks=512, num_cells=8, seed=3)


@pytest.fixture(scope="module")
def model():
    try:
        return zoo.efficientnet_lite0()
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def coffee():
    return zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee"))


@pytest.fixture(scope="module")
def engine(model):
    return RISE(model, lambda o: o[0], precision="f32", progress=False).engine


def run(engine, x, postprocess_fn):
    rise = RISE.on_engine(engine, postprocess_fn, progress=False)  # one compiled model
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninformativeMapWarning)
        return rise.run(x, [ESPRESSO, 0], PARAMS).maps.astype(int)


@pytest.fixture(scope="module")
def base(engine, coffee):
    return run(engine, coffee, lambda o: o[0])


@pytest.mark.parametrize("transform", [
    pytest.param(lambda s: s + 1e6, id="plus 1e6"),
    pytest.param(lambda s: s - 1e6, id="minus 1e6"),
    pytest.param(lambda s: s * 1e-6, id="times 1e-6"),
    pytest.param(lambda s: s * 1e30, id="times 1e30"),
])
def test_espresso_map_is_offset_and_scale_invariant(engine, coffee, base, transform):
    """Before the fix: 1e6 added to the logits moved the map by most of the uint8 range."""
    maps = run(engine, coffee, lambda o: transform(np.asarray(o[0], np.float64)))
    assert np.abs(maps - base).max() <= 1
    assert base[0].max() == 255 and base[0].std() > 20  # a real map, not a flat one
