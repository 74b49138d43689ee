"""AISE on real pretrained models and photos: EfficientNet-Lite0, SSDLite person, BlazeFace."""

from __future__ import annotations

import numpy as np
import pytest
from map_checks import box_mask, inside, peak_xy
from salvo import zoo
from salvo.methods.black_box.aise import AISEClassification, AISEDetection
from support import ESPRESSO, F32

pytestmark = pytest.mark.slow

# The espresso cup's bowl in the 224 x 224 centre crop of skimage's coffee photo (the input
# of zoo.efficientnet_lite0_preprocess), (x0, y0, x1, y1) half-open: measured once by eye on
# the crop drawn at 2x with a 28-pixel grid -- the inner rim runs from x ~ 40 to 170 and from
# y ~ 12 to 108 (the saucer, spoon and handle lie below). 130 x 96 = 24.9 % of the image.
CUP_BOX = (40, 12, 170, 108)


def _softmax(outputs):
    z = outputs[0] - outputs[0].max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_cup_box_is_at_most_a_quarter_of_the_image():
    x0, y0, x1, y1 = CUP_BOX
    assert (x1 - x0) * (y1 - y0) <= 224 * 224 / 4


@pytest.mark.parametrize("postprocess", [lambda o: o[0], _softmax], ids=["logits", "softmax"])
def test_espresso_map_hits_the_cup(lite0, lite0_coffee, postprocess):
    """The seed's setting (logits, BALANCE, the default preset) and probabilities."""
    method = AISEClassification(lite0, postprocess, precision=F32, progress=False)
    result = method.explain(lite0_coffee, [ESPRESSO])
    assert result.predictions[ESPRESSO].label == ESPRESSO
    assert result.num_inferences == 1 + 2 * 3 * 50
    m = result.maps[0].astype(np.float64)
    assert inside(peak_xy(m), CUP_BOX), f"peak at {peak_xy(m)}, cup {CUP_BOX}"
    cup = box_mask(m.shape, CUP_BOX)
    assert m[cup].mean() > 1.3 * m[~cup].mean()
    # negative control: the upside-down map misses the cup
    assert not inside(peak_xy(m[::-1]), CUP_BOX)


def test_person_box_map_peaks_inside_the_box(ssdlite, astronaut):
    x = zoo.ssdlite_preprocess(astronaut)
    method = AISEDetection(ssdlite, zoo.ssdlite_postprocess, precision=F32, progress=False)
    result = method.explain(x, -1, preset="speed")
    assert result.targets == [0]
    prediction = result.predictions[0]
    assert prediction.label == 1 and prediction.score > 0.8  # person
    assert result.num_inferences == 1 + 3 * 20
    m = result.maps[0].astype(np.float64)
    box = prediction.bounding_box
    assert inside(peak_xy(m), box)
    # the box covers two thirds of the photo, so also: the top 1 % of the map lies inside it
    # and the map is much higher inside than outside
    person = box_mask(m.shape, box)
    assert person.mean() < 0.75
    top = m >= np.quantile(m, 0.99)
    assert person[top].mean() > 0.97
    assert m[person].mean() > 1.8 * m[~person].mean()


def test_face_box_map_peaks_inside_the_face(blazeface, astronaut):
    x = zoo.blazeface_preprocess(astronaut)
    method = AISEDetection(blazeface, zoo.blazeface_postprocess, precision=F32,
                           progress=False)
    result = method.explain(x, -1, preset="speed")
    assert result.targets == [0] and result.num_inferences == 1 + 3 * 20
    box = result.predictions[0].bounding_box
    m = result.maps[0].astype(np.float64)
    face = box_mask(m.shape, box)
    assert face.mean() < 0.05  # a small target: the pointing game means something
    assert inside(peak_xy(m), box), f"peak at {peak_xy(m)}, face {box}"
    assert m[face].mean() > 3 * m[~face].mean()
    assert not inside(peak_xy(m.T), box)
