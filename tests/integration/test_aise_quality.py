"""AISE map quality on the planted CNN: why class 1's insertion AUC falls below its deletion AUC.

``benchmarks/results/quality_quick.md`` reports "AISE speed, planted c1: Ins 0.179, Del 0.305".
These tests pin down the cause and show it is the method as the reference defines it, not a
salvo bug:

1. The reference toolkit (openvino-xai 1.1.0) computes the same map (same DIRECT points, same
   kernel-density aggregation), with the same inverted insertion / deletion.
2. The planted CNN's class-1 logit is ``mean intensity of region 1 - 0.01``: when a mask
   darkens region 1 the logit goes below 0, and AISE then puts *that inference's* scores through
   a sigmoid (as the reference does). The objective ``score(x*g) - score(x*(1-g))``
   then compares a sigmoid (about 0.5) with a raw logit (about 0.5 too), so it is nearly flat
   where it should separate region 1 from the rest. Shifting every logit by +0.011 (into
   [0, 1]) cancels in the objective except through that rule, and gives a correct map.
3. At the smallest kernel width the nearly flat objective leaves a kernel-density map whose
   maximum is a tiny positive number; dividing by it (per width, as the reference does)
   amplifies the map's negative lobes ~60x, and they dominate the sum over widths.
"""

from __future__ import annotations

import numpy as np
import pytest
from salvo.kernels.gaussian import kde_map
from salvo.methods.black_box.aise import AISEClassification
from salvo.metrics import InsertionDeletionAUC
from salvo.testing.planted import planted_cnn, planted_image
from support import F32, logits, reference_toolkit

SHIFT = 0.011  # lifts class 1's bias (-0.01) above 0; the logits stay below 1
STEPS = 30


def shifted(outputs):
    return outputs[0] + np.float32(SHIFT)


def hwc_to_nchw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1)[None])


@pytest.fixture(scope="module")
def planted():
    pm = planted_cnn(size=112, static_batch=False)
    raw = np.ascontiguousarray(planted_image(pm, "random", seed=7)[0].transpose(1, 2, 0))
    return pm, raw, hwc_to_nchw(raw)


@pytest.fixture(scope="module")
def metric(planted):
    pm, _, _ = planted
    return InsertionDeletionAUC(pm.model, hwc_to_nchw, logits, precision=F32)


def _explain(pm, x, post, cls=1, preset="speed"):
    method = AISEClassification(pm.model, post, precision=F32, progress=False)
    return method.explain(x, [cls], preset=preset, scale_output=False)


def _auc(metric, smap, cls, raw):
    res = metric.evaluate_maps([smap], [cls], [raw], STEPS)
    return float(res.insertion[0]), float(res.deletion[0])


def _peak(m: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    return int(x), int(y)


def _inside(xy, region) -> bool:
    y0, y1, x0, x1 = region
    return x0 <= xy[0] < x1 and y0 <= xy[1] < y1


def test_class_1_logit_leaves_0_1_when_region_1_is_dark(planted):
    """The precondition of the sigmoid rule: the planted class-1 logit goes below 0."""
    import openvino as ov

    pm, raw, x = planted
    compiled = ov.Core().compile_model(pm.model, "CPU", {"INFERENCE_PRECISION_HINT": F32})
    y0, y1, x0, x1 = pm.regions[1]
    dark = x.copy()
    dark[..., y0:y1, x0:x1] = 0
    z = compiled(dark)[0][0]
    assert z[1] < 0 <= z[1] + SHIFT
    assert np.all(compiled(x)[0][0] + SHIFT <= 1)
    assert np.all(z + SHIFT >= 0)


def test_shifted_logits_give_a_correct_class_1_map(planted, metric):
    """Only the sigmoid rule sees the shift; without it the map is right, with it inverted."""
    pm, raw, x = planted
    bad = _explain(pm, x, logits)
    good = _explain(pm, x, shifted)
    assert bad.num_inferences == good.num_inferences == 1 + 2 * 3 * 20
    ins_bad, del_bad = _auc(metric, bad.maps[0], 1, raw)
    ins_good, del_good = _auc(metric, good.maps[0], 1, raw)
    assert ins_bad < del_bad  # the reported inversion (same numbers as the reference, below)
    assert ins_good > del_good + 0.3
    assert ins_good > ins_bad + 0.2 and del_good < del_bad - 0.2
    region = pm.regions[1]
    assert _inside(_peak(good.maps[0]), region)
    assert not _inside(_peak(good.maps[0].T), region)  # negative control
    # the other two classes have biases >= 0 and need no shift
    for cls in (0, 2):
        ins, dele = _auc(metric, _explain(pm, x, logits, cls).maps[0], cls, raw)
        assert ins > dele + 0.3, (cls, ins, dele)


def test_smallest_width_is_amplified_by_a_tiny_maximum(planted):
    """The per-width normalisation of the reference: a near-zero positive maximum blows the
    width's negative lobes up; with the shift the same width has no such amplification."""
    pm, _, x = planted
    h = w = pm.input_size

    def extremes(result, k):
        pts = result.extra["history"][0, k]
        sigma = result.extra["kernel_widths"][0, k]
        m = kde_map(pts[:, 0], pts[:, 1], np.full(len(pts), sigma), pts[:, 2], h, w)
        return m.max(), m.min()

    bad = _explain(pm, x, logits)
    top, low = extremes(bad, 0)  # sigma = 0.1
    assert 0 < top < 0.05 and low < -0.5
    assert low / top < -10
    for k in (1, 2):  # the wider kernels separate the region fine
        top_k, low_k = extremes(bad, k)
        assert top_k > 0.5 and low_k / top_k > -5
    top_s, low_s = extremes(_explain(pm, x, shifted), 0)
    assert not (0 < top_s < 0.05 and low_s / top_s < -10)


def _reference_aise():
    reference_toolkit()
    from openvino_xai.methods.black_box.aise.classification import AISEClassification as Ref
    from openvino_xai.methods.black_box.base import Preset

    return Ref, Preset


@pytest.mark.parametrize("post", [logits, shifted], ids=["logits", "logits+0.011"])
def test_the_reference_computes_the_same_class_1_map(planted, metric, post):
    """openvino-xai's own AISE (scipy's DIRECT, one inference at a time) on the same model,
    class and preset: the same map, hence the same inversion with raw logits."""
    import openvino as ov

    Ref, Preset = _reference_aise()
    pm, raw, x = planted
    ref = Ref(pm.model, post, prepare_model=False)
    ref._model_compiled = ov.Core().compile_model(pm.model, "CPU",
                                                  {"INFERENCE_PRECISION_HINT": F32})
    theirs = np.asarray(ref.generate_saliency_map(x, [1], preset=Preset.SPEED,
                                                  scale_output=False)[1], np.float64)
    ours = _explain(pm, x, post).maps[0].astype(np.float64)
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999
    ins_o, del_o = _auc(metric, ours, 1, raw)
    ins_t, del_t = _auc(metric, theirs, 1, raw)
    assert abs(ins_o - ins_t) < 0.01 and abs(del_o - del_t) < 0.01
    if post is logits:
        assert ins_t < del_t  # the reference inverts too
    else:
        assert ins_t > del_t + 0.3
