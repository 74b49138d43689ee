"""RISE on the real EfficientNet-Lite0: the espresso map points at the cup."""

from __future__ import annotations

import numpy as np
import pytest
import salvo as xai
from salvo import zoo

pytestmark = pytest.mark.slow

# The cup's coffee surface in the 224 x 224 centre crop of skimage's coffee photo, as measured
# for the white-box test (tests/integration/test_whitebox_real.py, CUP_BOX_224: read off the crop
# on a 16-px grid): x 48-160, y 24-104, 18 % of the image.
CUP = (48, 160, 24, 104)  # x0, x1, y0, y1


@pytest.fixture(scope="module")
def explainer(lite0):
    return xai.Explainer(
        lite0, xai.Task.CLASSIFICATION, postprocess_fn=lambda out: out[0],
        explain_mode=xai.ExplainMode.BLACKBOX, explain_method=xai.Method.RISE,
        inference_precision="f32", progress=False,
    )


def in_cup(y, x):
    x0, x1, y0, y1 = CUP
    return x0 <= x < x1 and y0 <= y < y1


def test_espresso_map_points_at_the_cup(explainer):
    """The default (centred) estimator, 512 masks: the peak is on the cup."""
    x = zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee"))
    explanation = explainer(x, targets=967, num_masks=512, num_cells=8, resize=False,
                            colormap=False)
    smap = explanation.saliency_map[967]
    assert smap.shape == (224, 224) and smap.dtype == np.uint8
    y, x_ = np.unravel_index(smap.argmax(), smap.shape)
    assert in_cup(y, x_), f"peak at {(y, x_)}"
    # the cup is brighter than the rest on average, and an upside-down map misses it
    inside = np.zeros_like(smap, bool)
    inside[CUP[2] : CUP[3], CUP[0] : CUP[1]] = True
    assert smap[inside].mean() > 1.3 * smap[~inside].mean()
    fy, fx = np.unravel_index(smap[::-1].argmax(), smap.shape)
    assert not in_cup(fy, fx)
    assert explanation.predictions[967].score > 5  # a confident espresso logit


def test_plain_rise_puts_more_mass_on_the_cup(explainer):
    """Plain RISE (the reference's estimator) is noisier at 1024 masks: its peak may sit just off
    the cup, but the cup still holds more of the map than the rest does."""
    x = zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee"))
    explanation = explainer(x, targets=967, num_masks=1024, num_cells=8, estimator="plain",
                            resize=False, colormap=False)
    smap = explanation.saliency_map[967].astype(float)
    inside = np.zeros(smap.shape, bool)
    inside[CUP[2] : CUP[3], CUP[0] : CUP[1]] = True
    assert smap[inside].mean() > 1.2 * smap[~inside].mean()
    assert smap[::-1][inside].mean() < smap[inside].mean()  # flipped: less on the cup


def test_target_reliability_stops_early_with_an_honest_value(explainer):
    """Stopping at reliability 0.95 on the espresso: far fewer masks than the cap, and the map's
    measured correlation with the converged map (benchmarks/results/converged, logits) is at
    least 0.94 and not more than 0.03 below the value reported."""
    from pathlib import Path

    converged = np.load(Path(__file__).resolve().parents[2] / "benchmarks" / "results"
                        / "converged" / "coffee_967_224_c8_logits.npy").astype(np.float64)
    x = zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee"))
    for seed in (3, 4):
        explanation = explainer(x, targets=967, num_masks=4096, num_cells=8, seed=seed,
                                target_reliability=0.95, resize=False, colormap=False)
        assert explanation.num_inferences < 2000
        reported = explanation.reliability[967]
        assert reported >= 0.95
        measured = np.corrcoef(explanation.saliency_map[967].reshape(-1).astype(np.float64),
                               converged)[0, 1]
        assert measured >= 0.94 and reported - measured <= 0.03, (reported, measured)
