"""The batched Numba map post-processing against OpenCV, one map at a time."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from salvo.kernels.vis import (
    NonFiniteMapError,
    jet_lut_rgb,
    linear_resize_coefficients,
    process_maps_batched,
)


def opencv_reference(raw: np.ndarray, out_hw: tuple[int, int], colormap: bool = True) -> np.ndarray:
    """The reference toolkit's per-map pipeline: cv2.resize of the map in its own kind of
    numbers (uint8 as uint8, floats as float32), then its ``scaling`` (float32 min-max,
    truncated to uint8), cv2.applyColorMap, BGR->RGB."""
    x = raw if raw.dtype == np.uint8 else raw.astype(np.float32)
    if x.shape != out_hw:
        x = cv2.resize(x, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_LINEAR)
    x = x.astype(np.float32)
    lo, hi = x.min(), x.max()
    gray = (np.float32(255) * (x - lo) / (hi - lo + np.float32(1e-12))).astype(np.uint8)
    if not colormap:
        return gray
    return cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def random_maps(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return (rng.normal(size=shape) * 3.0 + 1.0).astype(dtype)


SHAPES = [
    ((7, 7), (224, 224)),  # ImageNet CNN feature map -> input size
    ((23, 23), (100, 60)),  # DetClassProbabilityMap size -> non-square output
    ((5, 9), (37, 113)),  # non-square input, odd ratios
    ((14, 10), (7, 5)),  # exact 2x downscale (OpenCV switches to INTER_AREA here)
    ((31, 17), (12, 9)),  # general downscale
    ((1, 1), (4, 6)),  # single pixel
]


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize(("in_hw", "out_hw"), SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_opencv_within_one(dtype, in_hw, out_hw):
    rng = np.random.default_rng(hash((in_hw, out_hw)) % 2**32)
    maps = random_maps(rng, (6, *in_hw), dtype)
    colour = process_maps_batched(maps, out_hw)
    gray = process_maps_batched(maps, out_hw, colormap=False)
    assert colour.shape == (6, *out_hw, 3) and colour.dtype == np.uint8
    assert gray.shape == (6, *out_hw) and gray.dtype == np.uint8
    for i in range(len(maps)):
        ref_gray = opencv_reference(maps[i], out_hw, colormap=False)
        diff = np.abs(gray[i].astype(int) - ref_gray)
        assert diff.max() <= 1
        if dtype == np.uint8:  # OpenCV's 8-bit arithmetic is reproduced exactly
            assert diff.max() == 0
        # the colour is the JET colour of the kernel's own grey level
        np.testing.assert_array_equal(colour[i], jet_lut_rgb()[gray[i]])


def test_mostly_bit_exact_on_imagenet_case():
    """±1 is the contract; on this OpenCV build nearly every pixel should be identical."""
    rng = np.random.default_rng(11)
    maps = rng.random((16, 7, 7)).astype(np.float32)
    out = process_maps_batched(maps, (224, 224), colormap=False)
    ref = np.stack([opencv_reference(m, (224, 224), colormap=False) for m in maps])
    assert (out == ref).mean() > 0.99
    # negative control: salvo 0.1's order (scale the 7x7 map, then resize it) is another map
    old = np.stack([cv2.resize(np.rint(255 * (m - m.min()) / (m.max() - m.min())).astype(
        np.uint8), (224, 224), interpolation=cv2.INTER_LINEAR) for m in maps])
    assert (old == ref).mean() < 0.9


def test_maps_are_not_transposed_or_mixed_up():
    maps = np.zeros((3, 4, 6), np.float32)
    maps[0, 0, 5] = 1.0  # top right
    maps[1, 3, 0] = 1.0  # bottom left
    maps[2, 3, 5] = 1.0  # bottom right
    out = process_maps_batched(maps, (40, 60), colormap=False)
    corners = [(0, 59), (39, 0), (39, 59)]
    for i, (r, c) in enumerate(corners):
        assert out[i, r, c] == out[i].max() > 0
        # negative control: the opposite corner stays at the minimum
        assert out[i, 39 - r, 59 - c] == 0


def test_constant_map_gives_zero_level_not_nan():
    maps = np.full((2, 5, 5), 3.25, np.float32)
    maps[1] = 0.0
    gray = process_maps_batched(maps, (9, 11), colormap=False)
    assert not gray.any()
    colour = process_maps_batched(maps, (9, 11))
    assert (colour == jet_lut_rgb()[0]).all()


def test_non_finite_maps_are_reported_by_position():
    maps = np.zeros((4, 3, 3), np.float32)
    maps[1, 0, 0] = np.inf
    maps[3, 2, 2] = np.nan
    with pytest.raises(NonFiniteMapError) as info:
        process_maps_batched(maps, (5, 5))
    assert info.value.positions == [1, 3]


def test_overlay_matches_blend_of_opencv_maps():
    rng = np.random.default_rng(12)
    maps = rng.random((5, 7, 7)).astype(np.float32)
    image = rng.integers(0, 256, (30, 20, 3)).astype(np.uint8)
    weight = 0.35
    out = process_maps_batched(maps, (30, 20), image=image, overlay_weight=weight)
    gray = process_maps_batched(maps, (30, 20), colormap=False)
    for i in range(len(maps)):
        assert np.abs(gray[i].astype(int) - opencv_reference(maps[i], (30, 20), False)).max() <= 1
        ref = np.rint(weight * jet_lut_rgb()[gray[i]] + (1 - weight) * image)
        assert np.abs(out[i].astype(int) - ref).max() <= 1
    # negative control: a different image changes the result
    other = process_maps_batched(
        maps, (30, 20), image=image[::-1].copy(), overlay_weight=weight
    )
    assert not np.array_equal(other, out)


def test_same_size_is_exact_scaling():
    maps = np.random.default_rng(13).normal(size=(3, 9, 7))
    out = process_maps_batched(maps, (9, 7), colormap=False)
    for i in range(3):
        np.testing.assert_array_equal(out[i], opencv_reference(maps[i], (9, 7), colormap=False))
    # uint8 maps that already span 0..255 are unchanged (white-box maps scaled in the graph)
    u8 = np.random.default_rng(15).integers(0, 256, (2, 9, 7), dtype=np.uint8)
    u8[:, 0, 0], u8[:, -1, -1] = 0, 255
    np.testing.assert_array_equal(process_maps_batched(u8, (9, 7), colormap=False), u8)


def test_thread_count_does_not_change_results():
    maps = np.random.default_rng(14).random((9, 7, 7)).astype(np.float32)
    one = process_maps_batched(maps, (50, 50), num_threads=1)
    two = process_maps_batched(maps, (50, 50), num_threads=2)
    np.testing.assert_array_equal(one, two)


def test_lut_and_coefficients():
    lut = jet_lut_rgb()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0]
    np.testing.assert_array_equal(lut, bgr[:, ::-1])
    index, weight, _ = linear_resize_coefficients(7, 7)
    np.testing.assert_array_equal(index[:, 0], np.arange(7))
    assert (weight[:, 0] == 2048).all() and (weight[:, 1] == 0).all()
    index, weight, _ = linear_resize_coefficients(2, 4)  # centres at 0.25 steps
    # dst pixel 1 sits at (1 + 0.5) * 0.5 - 0.5 = 0.25: weights 0.75, 0.25 of pixels 0, 1
    np.testing.assert_array_equal(weight[1], [1536, 512])
    np.testing.assert_array_equal(index[1], [0, 1])


def test_argument_errors():
    with pytest.raises(ValueError, match=r"\(T, h, w\)"):
        process_maps_batched(np.zeros((3, 3)), (4, 4))
    with pytest.raises(ValueError, match="out_size"):
        process_maps_batched(np.zeros((1, 3, 3)), (0, 4))
    with pytest.raises(ValueError, match="image"):
        process_maps_batched(np.zeros((1, 3, 3)), (4, 4), image=np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        process_maps_batched(np.zeros((1, 3, 3)), (4, 4), image=np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="colormap"):
        process_maps_batched(
            np.zeros((1, 3, 3)), (4, 4), colormap=False, image=np.zeros((4, 4, 3), np.uint8)
        )
    with pytest.raises(TypeError, match="real numbers"):
        process_maps_batched(np.zeros((1, 3, 3), dtype=complex), (4, 4))
    # other integer dtypes are accepted (converted)
    ints = np.arange(9, dtype=np.int16).reshape(1, 3, 3)
    out = process_maps_batched(ints, (3, 3), colormap=False)
    np.testing.assert_array_equal(out[0], opencv_reference(ints[0], (3, 3), colormap=False))
