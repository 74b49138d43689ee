"""The planted-ground-truth models: class k's score depends on region k only."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from salvo.testing.planted import (
    DEFAULT_ACTIVATION_CELLS,
    DEFAULT_CELL_REGIONS,
    planted_cnn,
    planted_detector,
    planted_image,
    planted_image_with_object,
    planted_vit,
)
from support import F32_CONFIG as F32


def _run(model: ov.Model, x: np.ndarray) -> np.ndarray:
    return ov.Core().compile_model(model, "CPU", F32)(x)[0]


def _disjoint(a, b) -> bool:
    return a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2]


@pytest.fixture(scope="module")
def cnn():
    return planted_cnn()


@pytest.fixture(scope="module")
def vit():
    return planted_vit()


def _outside_all(pm) -> tuple[int, int, int, int]:
    """A cell-aligned pixel rectangle that touches no class region."""
    c = pm.cell
    for y in range(pm.feature_size):
        for x in range(pm.feature_size):
            r = (y, y + 1, x, x + 1)
            if all(_disjoint(r, q) for q in pm.cell_regions):
                return (y * c, (y + 1) * c, x * c, (x + 1) * c)
    raise AssertionError("no free cell")


def _region_sensitivity(pm, base: np.ndarray) -> np.ndarray:
    """change[k, j]: |logit j change| when region k is brightened; last row: outside all regions."""
    ref = _run(pm.model, base)[0]
    rects = list(pm.regions) + [_outside_all(pm)]
    out = np.zeros((len(rects), pm.num_classes))
    for i, (y0, y1, x0, x1) in enumerate(rects):
        x = base.copy()
        x[:, :, y0:y1, x0:x1] += 0.2
        out[i] = np.abs(_run(pm.model, x)[0] - ref)
    return out


def test_default_regions_are_asymmetric():
    grid = 7
    for k, r in enumerate(DEFAULT_CELL_REGIONS):
        y0, y1, x0, x1 = r
        assert (y1 - y0) * (x1 - x0) <= grid * grid / 4
        transposed = (x0, x1, y0, y1)
        hflip = (y0, y1, grid - x1, grid - x0)
        assert _disjoint(r, transposed), f"region {k} touches the diagonal"
        assert _disjoint(r, hflip), f"region {k} touches the middle column"
        for j, q in enumerate(DEFAULT_CELL_REGIONS):
            if j != k:
                assert _disjoint(r, q)
                assert q != transposed and q != hflip and q != (grid - y1, grid - y0, x0, x1)
    a = DEFAULT_ACTIVATION_CELLS
    assert _disjoint(a, (a[2], a[3], a[0], a[1]))
    assert all(_disjoint(a, q) for q in DEFAULT_CELL_REGIONS)


def test_cnn_logit_depends_only_on_its_region(cnn):
    base = planted_image(cnn, "random", seed=3)
    change = _region_sensitivity(cnn, base)
    for k in range(cnn.num_classes):
        assert change[k, k] > 0.05
        others = np.delete(change[k], k)
        assert np.all(others < 1e-5), change
    assert np.all(change[-1] < 1e-5)


def test_cnn_logit_is_mean_intensity_of_region(cnn):
    x = planted_image(cnn, "random", seed=5)
    logits = _run(cnn.model, x)[0]
    zero = _run(cnn.model, np.zeros_like(x))[0]  # the bias
    for k, (y0, y1, x0, x1) in enumerate(cnn.regions):
        np.testing.assert_allclose(logits[k] - zero[k], x[0, :, y0:y1, x0:x1].mean(), atol=1e-5)


def test_cnn_positive_image_and_object_images(cnn):
    assert np.all(_run(cnn.model, planted_image(cnn))[0] > 0)
    for k in range(cnn.num_classes):
        logits = _run(cnn.model, planted_image_with_object(cnn, k))[0]
        assert int(np.argmax(logits)) == k


def test_nhwc_uint8_matches_nchw_float(cnn):
    u8 = planted_cnn(layout="NHWC", element_type="u8")
    x8 = planted_image(u8, "random", seed=7)
    assert x8.dtype == np.uint8 and x8.shape == (1, 112, 112, 3)
    assert u8.model.input(0).get_element_type() == ov.Type.u8
    xf = (x8.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(_run(u8.model, x8), _run(cnn.model, xf), atol=1e-5)


def test_softmax_and_dynamic_batch_variants(cnn):
    x = planted_image(cnn, "random", seed=1)
    logits = _run(cnn.model, x)
    probs = _run(planted_cnn(softmax=True).model, x)
    e = np.exp(logits - logits.max())
    np.testing.assert_allclose(probs, e / e.sum(), atol=1e-6)
    dyn = planted_cnn(static_batch=False)
    assert dyn.model.input(0).get_partial_shape()[0].is_dynamic
    assert cnn.model.input(0).get_partial_shape()[0].get_length() == 1
    batch = np.concatenate([x, planted_image(cnn, "uniform")])
    out = _run(dyn.model, batch)
    np.testing.assert_allclose(out[:1], logits, atol=1e-6)


def test_vit_logit_depends_only_on_its_region(vit):
    base = planted_image(vit, "random", seed=11)
    change = _region_sensitivity(vit, base)
    for k in range(vit.num_classes):
        assert change[k, k] > 1e-2
        assert np.all(np.delete(change[k], k) < 1e-5), change
    assert np.all(change[-1] < 1e-5)


def test_vit_object_images_and_structure(vit):
    for k in range(vit.num_classes):
        assert int(np.argmax(_run(vit.model, planted_image_with_object(vit, k))[0])) == k
    types = [op.get_type_name() for op in vit.model.get_ordered_ops()]
    assert types.count("MVN") == 2 * 2 + 1  # two per block plus the final norm
    assert types.count("Softmax") == 2
    target = next(
        op for op in vit.model.get_ordered_ops() if op.get_friendly_name() == vit.target_layer
    )
    assert target.get_type_name() == "Add"
    assert target.get_output_partial_shape(0).rank.get_length() == 3


def test_detector_scores_live_in_their_regions():
    pm = planted_detector()
    scores = _run(pm.model, planted_image(pm))[0]  # (N, C)
    assert scores.shape == (8 * 8 * 2 + 4 * 4 * 3, 2)
    # scale 0 rows: 8x8 cells x 2 anchors, NHWC order
    s0 = scores[: 8 * 8 * 2].reshape(8, 8, 2, 2).max(axis=2)
    for k, (y0, y1, x0, x1) in enumerate(pm.cell_regions):
        m = np.zeros((8, 8), bool)
        m[y0 * 2 : y1 * 2, x0 * 2 : x1 * 2] = True
        assert s0[..., k][m].min() > s0[..., k][~m].max()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 100}, "multiple of 7"),
        ({"channels": 7}, "channels"),
        ({"regions": [(0, 32, 0, 30), (48, 64, 0, 16), (96, 112, 0, 16)]}, "aligned"),
        ({"regions": [(0, 32, 0, 32), (16, 48, 16, 48), (96, 112, 0, 16)]}, "overlap"),
        ({"layout": "NWHC"}, "layout"),
        ({"num_classes": 4}, "regions"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        planted_cnn(**kwargs)


def test_image_kind_is_checked(cnn):
    with pytest.raises(ValueError, match="kind"):
        planted_image(cnn, "noise")
    with pytest.raises(ValueError, match="k must be"):
        planted_image_with_object(cnn, 3)
