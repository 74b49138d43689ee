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
    """Obvious per-map pipeline: NumPy min-max, cv2.resize, cv2.applyColorMap, BGR->RGB."""
    x = raw.astype(np.float64)
    lo, hi = x.min(), x.max()
    gray = np.rint(255.0 * (x - lo) / (hi - lo + 1e-12)).astype(np.uint8)
    if gray.shape != out_hw:
        gray = cv2.resize(gray, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_LINEAR)
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
        ref_colour = opencv_reference(maps[i], out_hw)
        assert np.abs(gray[i].astype(int) - ref_gray).max() <= 1
        assert np.abs(colour[i].astype(int) - ref_colour).max() <= 1, i
        # a neighbouring grey level can be a different JET colour, so compare the colour to
        # the LUT of the kernel's own grey level too (checks the colour step exactly)
        np.testing.assert_array_equal(colour[i], jet_lut_rgb()[gray[i]])


def test_mostly_bit_exact_on_imagenet_case():
    """±1 is the contract; on this OpenCV build nearly every pixel should be identical."""
    rng = np.random.default_rng(11)
    maps = rng.random((16, 7, 7)).astype(np.float32)
    out = process_maps_batched(maps, (224, 224), colormap=False)
    ref = np.stack([opencv_reference(m, (224, 224), colormap=False) for m in maps])
    assert (out == ref).mean() > 0.99


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
    for i in range(len(maps)):
        ref = np.rint(weight * opencv_reference(maps[i], (30, 20)) + (1 - weight) * image)
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
