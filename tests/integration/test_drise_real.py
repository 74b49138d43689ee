"""D-RISE on real detectors: SSDLite person and BlazeFace on the astronaut photo."""

from __future__ import annotations

import numpy as np
import pytest
from map_checks import box_mask, inside, peak_xy
from salvo import zoo
from salvo.common import ExplainMode, Method, Task
from salvo.errors import DetectionBoxWarning
from salvo.methods.black_box.drise import DRISE
from support import F32

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def face(astronaut, blazeface):
    """BlazeFace's D-RISE result on the astronaut (1000 masks, a few seconds)."""
    method = DRISE(blazeface, zoo.blazeface_postprocess, precision=F32, progress=False)
    return method.explain(zoo.blazeface_preprocess(astronaut), -1, num_masks=1000,
                          num_cells=8, seed=0)


def test_face_map_peaks_inside_the_face(face):
    assert face.targets == [0] and face.num_inferences == 1001
    box = face.predictions[0].bounding_box
    m = face.maps[0].astype(np.float64)
    region = box_mask(m.shape, box)
    assert region.mean() < 0.05
    assert inside(peak_xy(m), box), f"peak at {peak_xy(m)}, face {box}"
    assert m[region].mean() > 3 * m[~region].mean()
    assert not inside(peak_xy(m.T), box)


def test_person_map_peaks_inside_the_box_and_on_the_face(face, astronaut, ssdlite):
    x = zoo.ssdlite_preprocess(astronaut)
    method = DRISE(ssdlite, zoo.ssdlite_postprocess, precision=F32,
                   progress=False)
    result = method.explain(x, -1, num_masks=384, num_cells=8, seed=0)
    assert result.targets == [0] and result.num_inferences == 385
    prediction = result.predictions[0]
    assert prediction.label == 1
    m = result.maps[0].astype(np.float64)
    person = box_mask(m.shape, prediction.bounding_box)
    assert inside(peak_xy(m), prediction.bounding_box)
    top = m >= np.quantile(m, 0.99)
    assert person[top].mean() > 0.97
    assert m[person].mean() > 1.1 * m[~person].mean()
    # the person detector relies on the head most: its map peaks inside the face BlazeFace
    # found (both models take the whole photo resized, so boxes scale by 300 / 128)
    face_box = np.asarray(face.predictions[0].bounding_box) * (300 / 128)
    assert inside(peak_xy(m), face_box), f"peak at {peak_xy(m)}, face {face_box}"


def test_explainer_selects_drise_for_detection_with_rise(astronaut, blazeface):
    from salvo.explainer.explainer import Explainer

    explainer = Explainer(
        blazeface, Task.DETECTION, preprocess_fn=zoo.blazeface_preprocess,
        postprocess_fn=zoo.blazeface_postprocess, explain_mode=ExplainMode.BLACKBOX,
        explain_method=Method.RISE, precision=F32, progress=False,
    )
    explanation = explainer(astronaut, targets=-1, num_masks=256, resize=False, colormap=False)
    assert explanation.targets == [0] and explanation.num_inferences == 257
    assert explanation.saliency_map[0].shape == (128, 128)
    assert explanation.predictions[0].label == 0
    with pytest.warns(DetectionBoxWarning, match="found no box on this image"):
        empty = explainer(zoo.sample_image("coffee"), targets=-1, num_masks=64)
    assert empty.targets == [] and empty.num_inferences == 1
