"""Detection through the Explainer: predictions carry boxes in the user's image pixels."""

from __future__ import annotations

import numpy as np
import pytest
import salvo as xai

from salvo import zoo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detector(ssdlite):
    return ssdlite


def test_black_box_detection_boxes_are_rescaled_to_the_photo(detector):
    photo = zoo.sample_image("astronaut")  # 512 x 512
    explainer = xai.Explainer(
        detector, xai.Task.DETECTION,
        preprocess_fn=zoo.ssdlite_preprocess, postprocess_fn=zoo.ssdlite_postprocess,
        explain_mode=xai.ExplainMode.BLACKBOX, explain_method=xai.Method.AISE,
        progress=False,
    )
    explanation = explainer(photo, targets=0, preset="speed", resize=False, colormap=False)
    (box_in_photo,) = [p.bounding_box for p in explanation.predictions.values()]
    boxes, _, _ = zoo.ssdlite_postprocess(_raw(detector, photo))
    expected = np.asarray(boxes[0, 0]) * (512 / 300)  # model input is 300 x 300
    np.testing.assert_allclose(box_in_photo, expected, rtol=1e-3, atol=1.0)
    x0, y0, x1, y1 = box_in_photo
    assert x1 - x0 > 100 and y1 - y0 > 200, "a person-sized box in 512-px photo coordinates"
    assert explanation.saliency_map[0].shape == (300, 300)


def _raw(model, photo):
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU")
    return compiled(zoo.ssdlite_preprocess(photo))
