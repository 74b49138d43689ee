"""Saliency-map post-processing: exact pixels on tiny arrays, layouts, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from salvo.explainer.visualizer import (
    BATCHED_MIN_MAPS,
    apply_colormap,
    image_size,
    overlay_image,
    process_saliency_maps,
    scale_to_uint8,
    scaling,
)

BOTH_PATHS = pytest.mark.parametrize("batched", [False, True], ids=["opencv", "numba"])


def jet_rgb(level: int) -> np.ndarray:
    """OpenCV's JET colour of one grey level, in RGB order."""
    bgr = cv2.applyColorMap(np.array([[level]], dtype=np.uint8), cv2.COLORMAP_JET)[0, 0]
    return bgr[::-1].astype(np.int64)


# ------------------------------------------------------------------------------- scaling


@BOTH_PATHS
def test_scaling_exact_values(batched):
    # min -1, max 3: 255 * (x + 1) / 4 -> 0, 63.75, 191.25, 255 -> truncated (as the reference
    # toolkit's scaling) -> 0, 63, 191, 255
    raw = np.array([[[-1.0, 0.0], [2.0, 3.0]]], dtype=np.float32)
    out = process_saliency_maps(
        raw, targets=[4], scaling=True, resize=False, colormap=False, batched=batched
    )
    assert list(out) == [4]
    assert out[4].dtype == np.uint8
    np.testing.assert_array_equal(out[4], [[0, 63], [191, 255]])


def test_scaling_keeps_full_range_uint8_map():
    rng = np.random.default_rng(3)
    m = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    m[0, 0], m[5, 4] = 0, 255
    np.testing.assert_array_equal(scale_to_uint8(m), m)
    # negative control: a map that does not span 0..255 is stretched
    narrow = (m // 2).astype(np.uint8)
    assert scale_to_uint8(narrow).max() == 255
    assert not np.array_equal(scale_to_uint8(narrow), narrow)


@BOTH_PATHS
def test_constant_map_gives_zeros_without_nan(batched):
    raw = np.full((BATCHED_MIN_MAPS, 3, 4), 7.5, dtype=np.float32)
    out = process_saliency_maps(
        raw, targets=list(range(len(raw))), output_size=(6, 8), colormap=False, batched=batched
    )
    for m in out.values():
        assert m.shape == (6, 8)
        assert m.dtype == np.uint8
        assert not m.any()


def test_raw_maps_returned_untouched_when_everything_is_off():
    raw = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    out = process_saliency_maps(
        raw, targets=[1, 0], scaling=False, resize=False, colormap=False, overlay=False
    )
    assert out[1].dtype == np.float32
    np.testing.assert_array_equal(out[1], raw[0])
    np.testing.assert_array_equal(out[0], raw[1])
    assert np.shares_memory(out[1], raw)


def test_non_finite_map_is_rejected_naming_the_target():
    raw = np.zeros((BATCHED_MIN_MAPS, 3, 3), dtype=np.float32)
    raw[2, 1, 1] = np.nan
    targets = list(range(100, 100 + len(raw)))
    for batched in (False, True):
        with pytest.raises(ValueError, match="102"):
            process_saliency_maps(raw, targets=targets, output_size=(5, 5), batched=batched)


# ------------------------------------------------------------------------------- colormap


@BOTH_PATHS
def test_colormap_is_rgb_dark_red_high_dark_blue_low(batched):
    raw = np.array([[[0.0, 1.0]]])  # one map, 1 x 2: left low, right high
    out = process_saliency_maps(raw, targets=[0], resize=False, batched=batched)[0]
    assert out.shape == (1, 2, 3) and out.dtype == np.uint8
    low, high = out[0, 0].astype(int), out[0, 1].astype(int)
    assert high[0] > 100 and high[2] < 20, f"255 must be dark red in RGB, got {high}"
    assert low[2] > 100 and low[0] < 20, f"0 must be dark blue in RGB, got {low}"
    np.testing.assert_array_equal(high, jet_rgb(255))
    np.testing.assert_array_equal(low, jet_rgb(0))


def test_apply_colormap_reverses_opencv_channel_order():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    bgr = cv2.applyColorMap(gray, cv2.COLORMAP_JET)
    np.testing.assert_array_equal(apply_colormap(gray), bgr[:, :, ::-1])
    with pytest.raises(ValueError, match="uint8"):
        apply_colormap(gray.astype(np.float32))


# ------------------------------------------------------------------------------- resize


@BOTH_PATHS
def test_resize_to_output_size_is_h_w(batched):
    rng = np.random.default_rng(1)
    raw = rng.random((BATCHED_MIN_MAPS, 3, 5)).astype(np.float32)
    out = process_saliency_maps(
        raw, targets=list(range(len(raw))), output_size=(7, 11), colormap=False, batched=batched
    )
    # the reference toolkit's order: resize the float map, then min-max scale it (truncating)
    resized = cv2.resize(raw[0], (11, 7), interpolation=cv2.INTER_LINEAR)
    expected = scaling(resized)
    assert out[0].shape == (7, 11)
    assert np.abs(out[0].astype(int) - expected).max() <= 1
    # negative control: scaling before the resize (salvo 0.1's order) is a different map
    before = cv2.resize(scale_to_uint8(raw[0]), (11, 7), interpolation=cv2.INTER_LINEAR)
    assert np.abs(before.astype(int) - expected).max() > 1
    colour = process_saliency_maps(
        raw[:1], targets=[0], output_size=(7, 11), batched=batched
    )[0]
    assert colour.shape == (7, 11, 3)


@BOTH_PATHS
def test_planted_hot_spot_lands_in_the_right_place(batched):
    raw = np.zeros((1, 7, 9), dtype=np.float32)
    raw[0, 1, 6] = 1.0  # row 1 of 7, column 6 of 9: a transposed or flipped map misses it
    out = process_saliency_maps(
        raw, targets=[0], output_size=(70, 90), colormap=False, batched=batched
    )[0]
    row, col = np.unravel_index(np.argmax(out), out.shape)
    assert 10 <= row < 20 and 60 <= col < 70
    # negative control: far from the hot spot the map is at its minimum
    assert out[60:, :20].max() == 0


def test_resize_takes_size_from_data_in_any_layout():
    raw = np.random.default_rng(2).random((1, 4, 4))
    for data in (
        np.zeros((1, 3, 20, 30), np.float32),  # NCHW, normalised values are fine for a size
        np.zeros((1, 20, 30, 3), np.uint8),
        np.zeros((20, 30, 3), np.uint8),
        np.zeros((3, 20, 30), np.float32),
    ):
        out = process_saliency_maps(raw, targets=[0], data=data)[0]
        assert out.shape == (20, 30, 3), data.shape
    assert image_size(np.zeros((1, 3, 20, 30))) == (20, 30)
    # original_input_image wins over data, output_size over both
    out = process_saliency_maps(
        raw, targets=[0], data=np.zeros((1, 3, 20, 30)), original_input_image=np.zeros((9, 13, 3))
    )[0]
    assert out.shape == (9, 13, 3)
    out = process_saliency_maps(
        raw, targets=[0], data=np.zeros((1, 3, 20, 30)), output_size=(5, 6)
    )[0]
    assert out.shape == (5, 6, 3)


def test_resize_without_any_size_is_an_error():
    with pytest.raises(ValueError, match="output_size"):
        process_saliency_maps(np.zeros((1, 3, 3)), targets=[0])
    with pytest.raises(ValueError, match="output_size"):
        process_saliency_maps(np.zeros((1, 3, 3)), targets=[0], output_size=(0, 4))


# ------------------------------------------------------------------------------- overlay


@BOTH_PATHS
def test_overlay_weight_is_the_weight_of_the_map(batched):
    # constant map -> level 0 everywhere -> JET(0); blend with a constant image
    maps = np.full((BATCHED_MIN_MAPS, 2, 2), 3.0)
    image = np.empty((4, 6, 3), np.uint8)
    image[:] = (12, 200, 60)
    out = process_saliency_maps(
        maps,
        targets=list(range(len(maps))),
        original_input_image=image,
        overlay=True,
        overlay_weight=0.25,
        batched=batched,
    )
    expected = np.rint(0.25 * jet_rgb(0) + 0.75 * np.array([12, 200, 60]))
    assert out[0].shape == (4, 6, 3)
    assert (out[0] == expected.astype(np.uint8)).all()
    # the two ends of the weight: all image, all map
    only_image = process_saliency_maps(
        maps[:1], targets=[0], original_input_image=image, overlay=True, overlay_weight=0.0
    )[0]
    only_map = process_saliency_maps(
        maps[:1], targets=[0], original_input_image=image, overlay=True, overlay_weight=1.0
    )[0]
    np.testing.assert_array_equal(only_image, image)
    assert (only_map == jet_rgb(0)).all()


@BOTH_PATHS
def test_overlay_two_levels_exact(batched):
    maps = np.array([[[0.0, 1.0]]])  # 1 x 2: levels 0 and 255
    image = np.array([[[12, 200, 60], [248, 20, 32]]], np.uint8)
    out = process_saliency_maps(
        maps, targets=[0], original_input_image=image, overlay=True, overlay_weight=0.25,
        batched=batched,
    )[0]
    expected = np.rint(
        0.25 * np.stack([jet_rgb(0), jet_rgb(255)])[None] + 0.75 * image.astype(float)
    )
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


def test_overlay_image_layouts_agree():
    rng = np.random.default_rng(5)
    hwc = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)  # not symmetric: H != W
    raw = rng.random((1, 3, 3))
    results = []
    for image in (hwc, hwc[None], hwc.transpose(2, 0, 1)[None], hwc.transpose(2, 0, 1)):
        results.append(
            process_saliency_maps(raw, targets=[0], original_input_image=image, overlay=True)[0]
        )
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    # negative control: a different image gives a different overlay
    other = process_saliency_maps(
        raw, targets=[0], original_input_image=hwc[::-1].copy(), overlay=True
    )[0]
    assert not np.array_equal(other, results[0])


def test_overlay_on_data_when_no_original_image():
    image = np.random.default_rng(6).integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    raw = np.random.default_rng(7).random((1, 2, 2))
    a = process_saliency_maps(raw, targets=[0], data=image, overlay=True)[0]
    b = process_saliency_maps(raw, targets=[0], original_input_image=image[0], overlay=True)[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "bad",
    [
        np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32),  # mean/std
        np.random.default_rng(0).random((1, 8, 8, 3)).astype(np.float32),  # 0..1
    ],
    ids=["standardised", "unit-range"],
)
def test_overlay_on_normalised_data_asks_for_original_input_image(bad):
    with pytest.raises(ValueError, match="original_input_image"):
        process_saliency_maps(np.ones((1, 2, 2)), targets=[0], data=bad, overlay=True)
    # the same tensor is fine for a plain resize (only its size is used)
    out = process_saliency_maps(np.ones((1, 2, 2)), targets=[0], data=bad)[0]
    assert out.shape == (8, 8, 3)


def test_overlay_image_value_checks():
    ok = overlay_image(np.full((4, 4, 3), 254.0))  # float picture in 0..255 is accepted
    assert ok.dtype == np.uint8 and ok.max() == 254
    with pytest.raises(ValueError, match="0..255"):
        overlay_image(np.full((4, 4, 3), 300, np.int32))
    with pytest.raises(ValueError, match="batch of one"):
        overlay_image(np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="channels"):
        overlay_image(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="needs an image"):
        process_saliency_maps(np.ones((1, 2, 2)), targets=[0], overlay=True, output_size=(4, 4))
    with pytest.raises(ValueError, match="overlay_weight"):
        process_saliency_maps(
            np.ones((1, 2, 2)), targets=[0], original_input_image=np.zeros((4, 4, 3), np.uint8),
            overlay=True, overlay_weight=1.5,
        )


def test_overlay_image_is_resized_to_output_size():
    image = np.random.default_rng(8).integers(0, 256, (10, 20, 3), dtype=np.uint8)
    out = process_saliency_maps(
        np.ones((1, 2, 2)), targets=[0], original_input_image=image, overlay=True,
        output_size=(5, 10), overlay_weight=0.0,
    )[0]
    expected = cv2.resize(image.astype(np.float64), (10, 5), interpolation=cv2.INTER_LINEAR)
    # the image is resized as uint8 (no float copy of it): within one level of the float resize
    assert np.abs(out.astype(int) - np.rint(expected)).max() <= 1


# ------------------------------------------------------------------------------- keys, paths


def test_keys_and_inputs():
    raw = np.random.default_rng(9).random((1, 2, 3, 3))  # (1, T, h, w)
    out = process_saliency_maps(raw, targets=[np.int64(5), "per_image_map"], output_size=(4, 4))
    assert list(out) == [5, "per_image_map"]
    assert all(type(k) in (int, str) for k in out)
    from_dict = process_saliency_maps({7: raw[0, 0], 9: raw[0, 1]}, output_size=(4, 4))
    np.testing.assert_array_equal(from_dict[7], out[5])
    with pytest.raises(ValueError, match="targets"):
        process_saliency_maps(raw, targets=[1], output_size=(4, 4))
    with pytest.raises(ValueError, match="duplicates"):
        process_saliency_maps(raw, targets=[1, 1], output_size=(4, 4))
    with pytest.raises(TypeError, match="per_image_map"):
        process_saliency_maps(raw, targets=[1, "cat"], output_size=(4, 4))
    with pytest.raises(TypeError, match="real numbers"):
        process_saliency_maps(raw.astype(complex), targets=[1, 2], output_size=(4, 4))


def test_batched_and_opencv_paths_agree_within_one():
    rng = np.random.default_rng(10)
    raw = rng.normal(size=(12, 7, 7)).astype(np.float32)
    image = rng.integers(0, 256, (1, 3, 50, 40), dtype=np.uint8)
    kwargs = dict(
        targets=list(range(12)), original_input_image=image, overlay=True, overlay_weight=0.6
    )
    a = process_saliency_maps(raw, batched=True, **kwargs)
    b = process_saliency_maps(raw, batched=False, **kwargs)
    for k in a:
        assert a[k].shape == b[k].shape == (50, 40, 3)
        assert np.abs(a[k].astype(int) - b[k].astype(int)).max() <= 1
    # the batched maps are views into one preallocated block
    assert a[0].base is not None and a[0].base is a[11].base
