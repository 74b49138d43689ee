"""Overlays without float copies of the image: memory and agreement with the float64 formula."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from salvo.explainer.visualizer import process_saliency_maps


def reference_grey(raw: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """The reference toolkit's grey map: the float map resized in float32 (bilinear), then
    min-max scaled and truncated to uint8 (its ``scaling``)."""
    out_h, out_w = out_hw
    x = raw.astype(np.float32)
    if x.shape != out_hw:
        x = cv2.resize(x, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    lo, hi = x.min(), x.max()
    return (np.float32(255) * (x - lo) / (hi - lo + np.float32(1e-12))).astype(np.uint8)


def float64_blend(gray: np.ndarray, image: np.ndarray, out_hw: tuple[int, int],
                  weight: float) -> np.ndarray:
    """The blend of a grey map's JET colours over a float64 picture (float bilinear resize),
    ``rint(w * colour + (1 - w) * picture)``."""
    out_h, out_w = out_hw
    colour = cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    picture = image.astype(np.float64)
    if picture.shape[:2] != out_hw:
        picture = cv2.resize(picture, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    blend = np.rint(weight * colour.astype(np.float64) + (1.0 - weight) * picture)
    return np.clip(blend, 0, 255).astype(np.uint8)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(3, 40), w=st.integers(3, 40), out_h=st.integers(1, 60),
    out_w=st.integers(1, 60), same_size=st.booleans(), num_maps=st.integers(1, 9),
    weight=st.floats(0, 1), seed=st.integers(0, 2**32 - 1), batched=st.booleans(),
)
def test_overlay_is_the_float64_formula_within_one_level(h, w, out_h, out_w, same_size,
                                                         num_maps, weight, seed, batched):
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(num_maps, 5, 6)).astype(np.float32)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out_hw = (h, w) if same_size else (out_h, out_w)
    common = dict(targets=list(range(num_maps)), original_input_image=image, output_size=out_hw,
                  batched=batched)
    maps = process_saliency_maps(raw, overlay=True, overlay_weight=weight, **common)
    greys = process_saliency_maps(raw, colormap=False, **common)
    for k in range(num_maps):
        grey = greys[k]
        # the grey map is the reference's (the batched kernel's float resize may round a last
        # bit differently from OpenCV's, which the truncation can turn into one level)
        diff_grey = np.abs(grey.astype(int) - reference_grey(raw[k], out_hw))
        assert diff_grey.max() <= (1 if batched else 0)
        ref = float64_blend(grey, image, out_hw, weight)
        got = maps[k]
        assert got.dtype == np.uint8 and got.shape == (*out_hw, 3)
        diff = np.abs(got.astype(int) - ref.astype(int))
        assert diff.max() <= 1
        if same_size:
            assert diff.max() == 0, "without a resize the blend is the float64 formula exactly"


@pytest.mark.parametrize("num_maps, batched", [(1, False), (3, False), (8, True)])
def test_full_resolution_overlay_makes_no_float_copy_of_the_image(num_maps, batched):
    rng = np.random.default_rng(0)
    h, w = 1500, 2000
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image_bytes = image.nbytes
    raw = rng.random((num_maps, 7, 7)).astype(np.float32)
    # warm up caches (JET table, Numba compilation) outside the measurement
    process_saliency_maps(raw, targets=list(range(num_maps)), original_input_image=image[:8, :8],
                          overlay=True, batched=batched)
    tracemalloc.start()
    try:
        maps = process_saliency_maps(raw, targets=list(range(num_maps)),
                                     original_input_image=image, overlay=True, batched=batched)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(m.shape == (h, w, 3) and m.dtype == np.uint8 for m in maps.values())
    # the outputs themselves are num_maps images; a float64 copy of the image alone is 8 more
    assert peak <= (num_maps + 2) * image_bytes, (peak / image_bytes, num_maps)
