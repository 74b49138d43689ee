"""salvo.imagefile.header_size: the size an image file declares, for every format folders are
read for, without decoding it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from salvo.imagefile import header_size

FORMATS = [".jpg", ".png", ".bmp", ".webp", ".tif", ".ppm", ".pgm", ".pbm", ".jp2"]


@pytest.mark.parametrize("suffix", FORMATS)
@settings(max_examples=8, deadline=None)
@given(height=st.integers(1, 300), width=st.integers(1, 300))
def test_the_declared_size_is_the_decoded_size(suffix, height, width):
    image = np.random.default_rng(height * 1000 + width).integers(0, 256, (height, width, 3),
                                                                  dtype=np.uint8)
    if suffix in (".pgm", ".pbm"):
        image = image[:, :, 0]
    if suffix == ".jp2" and min(height, width) < 40:  # OpenJPEG's default levels need 32 px
        return
    ok, data = cv2.imencode(suffix, image)
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert header_size(data.tobytes()) == (decoded.shape[1], decoded.shape[0])


def test_unknown_or_truncated_headers_give_none():
    ok, data = cv2.imencode(".png", np.zeros((5, 7, 3), np.uint8))
    assert header_size(data.tobytes()[:20]) is None  # cut inside IHDR
    assert header_size(b"") is None
    assert header_size(b"hello world, not an image") is None
    assert header_size(b"\xff\xd8\xff\xd9") is None  # a JPEG without a frame header
