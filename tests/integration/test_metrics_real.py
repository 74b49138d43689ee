"""Metrics on the real EfficientNet-Lite0 and a real photo, and against the reference toolkit."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from salvo.common import ExplainMode, Method, Task
from salvo.metrics import ADCC, InsertionDeletionAUC, PointingGame
from support import ESPRESSO, F32, reference_toolkit

pytestmark = pytest.mark.slow

BOXES = Path(__file__).resolve().parents[2] / "benchmarks" / "boxes.json"


def preprocess(image: np.ndarray) -> np.ndarray:
    """A 224 x 224 (H, W, 3) crop, uint8 or float in 0..255 -> (1, 3, 224, 224) float32."""
    x = (np.asarray(image, np.float32) - np.float32(127.0)) / np.float32(128.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def softmax(outputs) -> np.ndarray:
    z = np.asarray(outputs[0], np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def coffee():
    from salvo.zoo import resize_crop_uint8, sample_image

    return resize_crop_uint8(sample_image("coffee"))[0]


@pytest.fixture(scope="module")
def coffee_boxes():
    photo = json.loads(BOXES.read_text())["photos"]["coffee"]
    assert photo["expected_top1"] == ESPRESSO
    return photo["boxes"]


@pytest.fixture(scope="module")
def maps(lite0, coffee):
    """{method: map of the espresso class, (224, 224) uint8} plus the explainers."""
    from salvo.explainer.explainer import Explainer

    out = {}
    rise = Explainer(lite0, Task.CLASSIFICATION, preprocess_fn=preprocess, postprocess_fn=softmax,
                     explain_mode=ExplainMode.BLACKBOX, explain_method=Method.RISE,
                     precision=F32, progress=False)
    out["rise"] = (rise, rise(coffee, targets=[ESPRESSO], colormap=False, num_masks=500,
                              num_cells=8, seed=0).saliency_map[ESPRESSO])
    reci = Explainer(lite0, Task.CLASSIFICATION, preprocess_fn=preprocess,
                     explain_mode=ExplainMode.WHITEBOX, explain_method=Method.RECIPROCAM,
                     precision=F32)
    out["reciprocam"] = (reci, reci(coffee, targets=[ESPRESSO], colormap=False)
                         .saliency_map[ESPRESSO])
    return out


@pytest.fixture(scope="module")
def auc(lite0):
    return InsertionDeletionAUC(lite0, preprocess, softmax, precision=F32)


@pytest.mark.parametrize("method", ["rise", "reciprocam"])
def test_real_maps_point_at_the_cup_and_insert_better_than_they_delete(
    maps, auc, coffee, coffee_boxes, method
):
    _, smap = maps[method]
    assert smap.shape == (224, 224)
    assert PointingGame()(smap, coffee_boxes) == {"pointing_game": 1.0}
    good = auc(smap, ESPRESSO, coffee, steps=20)
    assert good["insertion"] > good["deletion"] + 0.2
    # negative control: the map rolled by half the image height points below the cup, at the
    # saucer, and inserts worse
    rolled = np.roll(smap, 112, axis=0)
    assert PointingGame()(rolled, coffee_boxes) == {"pointing_game": 0.0}
    bad = auc(rolled, ESPRESSO, coffee, steps=20)
    assert bad["insertion"] < good["insertion"] - 0.1


# ------------------------------------------------------------------ the reference toolkit


def test_same_numbers_as_the_reference_metrics(lite0, maps, auc, coffee, coffee_boxes):
    """Float maps (the reference ranks uint8 maps wrongly), both compiled in f32."""
    reference_toolkit()
    reference = importlib.import_module("openvino_xai.metrics")
    rng = np.random.default_rng(0)
    _, rise_map = maps["rise"]
    smap = rise_map.astype(np.float32) / 255 + rng.random((224, 224)).astype(np.float32) * 1e-3
    f32 = ov.Core().compile_model(lite0, "CPU", {"INFERENCE_PRECISION_HINT": F32})

    assert PointingGame()(smap, coffee_boxes) == reference.PointingGame()(smap, coffee_boxes)
    assert PointingGame()(smap[::-1], coffee_boxes) == reference.PointingGame()(
        smap[::-1], coffee_boxes)

    theirs = reference.InsertionDeletionAUC(lite0, preprocess, softmax)
    theirs.model_compiled = f32  # the reference compiles at the device default (bf16)
    ours = auc(smap, ESPRESSO, coffee, steps=8)
    ref = theirs(smap, ESPRESSO, coffee, steps=8)
    assert ours["insertion"] == pytest.approx(float(ref["insertion"]), abs=1e-6)
    assert ours["deletion"] == pytest.approx(float(ref["deletion"]), abs=1e-6)

    explainer, reci_map = maps["reciprocam"]
    unit = reci_map.astype(np.float32) / 255
    theirs = reference.ADCC(lite0, preprocess, softmax, explainer)
    theirs.model_compiled = f32
    ref = theirs(unit, ESPRESSO, coffee)
    ours = ADCC(lite0, preprocess, softmax, explainer, precision=F32)(unit, ESPRESSO, coffee)
    for key in ("adcc", "coherency", "complexity", "average_drop"):
        assert ours[key] == pytest.approx(float(ref[key]), rel=1e-5, abs=1e-6), key
