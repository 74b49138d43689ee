"""The native masked-batch filler against a slow NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

from salvo import _native
from salvo.kernels import fill_masked
from salvo.testing.hooks import parallel_selftest


def reference_fill(image: np.ndarray, masks: np.ndarray, layout: str, dtype) -> np.ndarray:
    """Obvious NumPy: broadcast each mask over the channels, multiply, convert."""
    out = []
    for m in masks:
        if layout == "NCHW":
            prod = m[None, :, :] * image
        else:
            prod = m[:, :, None] * image
        if dtype == np.uint8:
            prod = np.clip(np.rint(prod), 0, 255).astype(np.uint8)
        out.append(prod.astype(dtype))
    return np.stack(out)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_fill_matches_reference(layout, dtype, num_threads):
    rng = np.random.default_rng(7)
    c, h, w, n = 3, 19, 23, 5
    shape = (c, h, w) if layout == "NCHW" else (h, w, c)
    image = (rng.random(shape) * 255).astype(np.float32)
    masks = rng.random((n, h, w)).astype(np.float32)
    out = np.zeros((n + 2, *shape), dtype)  # larger than needed, like a padded batch tensor
    fill_masked(image, masks, out, layout, num_threads)
    expected = reference_fill(image, masks, layout, dtype)
    np.testing.assert_array_equal(out[:n], expected)
    assert not out[n:].any(), "items past len(masks) must not be touched"


def test_uint8_rounds_and_clamps():
    image = np.array([[[100.0, 255.0, -4.0, 2.5]]], np.float32)  # (C=1, H=1, W=4)
    masks = np.array([[[0.5, 2.0, 1.0, 1.0]]], np.float32)
    out = np.zeros((1, 1, 1, 4), np.uint8)
    fill_masked(image, masks, out, "NCHW")
    # 50, 510 -> 255, -4 -> 0, 2.5 -> 2 (ties to even)
    assert out.ravel().tolist() == [50, 255, 0, 2]


def test_fill_accepts_float64_image_by_conversion():
    image = np.full((2, 4, 4), 3.0)  # float64
    masks = np.full((1, 4, 4), 0.5, np.float32)
    out = np.zeros((1, 2, 4, 4), np.float32)
    fill_masked(image, masks, out)
    assert np.all(out == 1.5)


@pytest.mark.parametrize(
    "image_shape, masks_shape, out_shape, out_dtype, layout, match",
    [
        ((3, 8, 8), (2, 8, 7), (2, 3, 8, 8), np.float32, "NCHW", "masks shape"),
        ((3, 8, 8), (2, 8, 8), (1, 3, 8, 8), np.float32, "NCHW", "cannot hold 2"),
        ((3, 8, 8), (2, 8, 8), (2, 8, 8, 3), np.float32, "NCHW", "out shape"),
        ((3, 8, 8), (2, 8, 8), (2, 3, 8, 8), np.int32, "NCHW", "out dtype"),
        ((8, 8), (2, 8, 8), (2, 3, 8, 8), np.float32, "NCHW", "image must be 3-D"),
        ((3, 8, 8), (2, 8, 8), (2, 3, 8, 8), np.float32, "CHWN", "layout must be"),
    ],
)
def test_fill_rejects_bad_arguments(image_shape, masks_shape, out_shape, out_dtype, layout, match):
    with pytest.raises(ValueError, match=match):
        fill_masked(
            np.zeros(image_shape, np.float32),
            np.zeros(masks_shape, np.float32),
            np.zeros(out_shape, out_dtype),
            layout,
        )


def test_fill_rejects_non_contiguous_or_readonly_out():
    image = np.zeros((3, 8, 8), np.float32)
    masks = np.zeros((2, 8, 8), np.float32)
    strided = np.zeros((2, 3, 8, 16), np.float32)[..., ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        fill_masked(image, masks, strided)
    ro = np.zeros((2, 3, 8, 8), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        fill_masked(image, masks, ro)
    with pytest.raises(ValueError, match="num_threads"):
        fill_masked(image, masks, np.zeros((2, 3, 8, 8), np.float32), "NCHW", 0)


@pytest.mark.parametrize("num_threads", [1, 2, 4])
def test_worker_exceptions_reach_the_caller(num_threads):
    assert parallel_selftest(64, -1, num_threads) == 64
    with pytest.raises(RuntimeError, match="task 13 failed"):
        parallel_selftest(64, 13, num_threads)


def test_simd_levels_are_reported():
    assert _native.build_simd_level() in {"sse2", "avx", "avx2", "avx512f", "neon", "generic"}
    assert _native.runtime_simd_level() in {"default", "avx2", "avx512f", "sse2", "neon", "generic"}
