"""Bulk explanation: RISE.run_many packing and Explainer.explain_many (planted models)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import salvo as xai
from salvo.bulk import BulkJob, explain_stream, top_k
from salvo.methods.black_box.rise import RISE, RISEJob, resolve_params
from salvo.testing.planted import planted_image, planted_image_with_object
from support import F32, logits


@pytest.fixture(scope="module")
def images(planted):
    return [planted_image(planted, "random", seed=s) for s in range(5)]


def peak(m):
    return np.unravel_index(np.asarray(m).argmax(), np.asarray(m).shape)


def in_region(yx, region):
    y0, y1, x0, x1 = region
    return y0 <= yx[0] < y1 and x0 <= yx[1] < x1


# ------------------------------------------------------------------------ RISE.run_many


@pytest.mark.parametrize("batch_size, num_requests", [(7, 2), (16, 3)])
def test_packed_maps_are_bit_identical_to_explaining_each_image_alone(
    model, images, batch_size, num_requests
):
    params = resolve_params(num_masks=100, num_cells=5, seed=11)
    # 101 items per image: with these batch sizes batches straddle two images
    assert 101 % batch_size != 0
    alone_rise = RISE(model, logits, precision=F32, batch_size=5, progress=False)
    alone = [alone_rise.run(x, None, params) for x in images]
    rise = RISE(model, logits, precision=F32, batch_size=batch_size,
                num_requests=num_requests, progress=False)
    got = []
    submitted = rise.run_many([RISEJob(x, None, i) for i, x in enumerate(images)], params,
                              lambda job, r: got.append((job.tag, r)))
    assert [tag for tag, _ in got] == list(range(len(images)))
    assert submitted == len(images) * 101  # the length is known: no padding batches
    for (_, r), a in zip(got, alone):
        assert np.array_equal(r.maps, a.maps)
        assert r.num_masks_used == 100 and r.num_inferences == 101
        np.testing.assert_array_equal(r.unmasked_scores, a.unmasked_scores)
    # negative control: the images differ, so must their maps
    assert not np.array_equal(got[0][1].maps, got[1][1].maps)


def test_a_generator_of_jobs_works_without_knowing_its_length(model, images):
    params = resolve_params(num_masks=64, num_cells=5, seed=3)
    rise = RISE(model, logits, precision=F32, batch_size=8, progress=False)
    alone = [rise.run(x, [1, 2], params) for x in images[:3]]
    got, progress = [], []
    rise.run_many((RISEJob(x, [1, 2], i) for i, x in enumerate(images[:3])), params,
                  lambda job, r: got.append(r), progress=progress.append)
    assert len(got) == 3
    for r, a in zip(got, alone):
        assert r.targets == [1, 2] and np.array_equal(r.maps, a.maps)
    assert sum(progress) == pytest.approx(3.0)


def test_tolerance_stops_each_image_where_it_stops_alone(planted, model):
    x_uniform = planted_image(planted, "uniform")
    x_object = planted_image_with_object(planted, 2)
    params = resolve_params(num_masks=4096, num_cells=7, seed=1, tolerance=1e-2,
                            check_every=128)
    rise = RISE(model, logits, precision=F32, batch_size=8, progress=False)
    alone = [rise.run(x, [0], params) for x in (x_uniform, x_object)]
    assert alone[0].num_masks_used < 4096  # the test needs an early stop
    got = []
    rise.run_many([RISEJob(x_uniform, [0]), RISEJob(x_object, [0])], params,
                  lambda job, r: got.append(r))
    for r, a in zip(got, alone):
        assert r.num_masks_used == a.num_masks_used
        assert np.array_equal(r.maps, a.maps)


def test_targets_from_the_unmasked_scores_and_a_failing_image(planted, model):
    xs = [planted_image_with_object(planted, k) for k in (2, 0, 1)]
    rise = RISE(model, logits, precision=F32, batch_size=8, progress=False)
    params = resolve_params(num_masks=256, num_cells=7, seed=0)
    bad = RISEJob(xs[0], [7], "bad")  # class 7 does not exist
    jobs = [RISEJob(xs[0], top_k(1), 0), bad, RISEJob(xs[1], top_k(1), 1),
            RISEJob(xs[2], top_k(1), 2)]
    got = []
    rise.run_many(jobs, params, lambda job, r: got.append((job.tag, r)))
    assert [tag for tag, _ in got] == [0, "bad", 1, 2]
    assert isinstance(got[1][1], ValueError) and "class index 7" in str(got[1][1])
    for (tag, r), k in zip([got[0], got[2], got[3]], (2, 0, 1)):
        assert r.targets == [k], "top1 is the class planted in the image"
        yx = peak(r.maps[0])
        assert in_region(yx, planted.regions[k])
        assert not any(in_region(yx, planted.regions[j]) for j in range(3) if j != k)


def test_should_stop_ends_the_run(model, images):
    rise = RISE(model, logits, precision=F32, batch_size=8, progress=False)
    params = resolve_params(num_masks=256, num_cells=5)
    got = []
    rise.run_many([RISEJob(x) for x in images], params, lambda job, r: got.append(r),
                  should_stop=lambda: len(got) >= 1)
    assert len(got) == 1


def test_top_k_validates_and_orders():
    assert top_k(2)(np.array([0.1, 0.9, 0.5, 0.9])) == [1, 3]
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_k(0)


# ------------------------------------------------------------------------ explain_many


@pytest.fixture(scope="module")
def rise_explainer(model):
    return xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                         explain_mode="blackbox", explain_method="rise", num_masks=96,
                         num_cells=7, precision=F32, batch_size=16)


def test_explain_many_equals_one_call_per_image(planted, rise_explainer):
    xs = [planted_image_with_object(planted, k % 3) for k in range(5)]
    many = list(rise_explainer.explain_many(xs, targets=[0, 2], resize=False, colormap=False,
                                            progress=False))
    assert len(many) == 5
    for x, e in zip(xs, many):
        alone = rise_explainer(x, targets=[0, 2], resize=False, colormap=False, progress=False)
        assert e.targets == alone.targets == [0, 2]
        for k in (0, 2):
            assert np.array_equal(e.saliency_map[k], alone.saliency_map[k])
        assert e.num_inferences == alone.num_inferences == 97
        assert e.predictions[0].score == pytest.approx(alone.predictions[0].score)


def test_explain_many_visualises_over_each_image(planted, rise_explainer):
    xs = [planted_image_with_object(planted, k) for k in range(3)]
    pictures = [np.full((70, 90, 3), 40 * (k + 1), np.uint8) for k in range(3)]
    many = list(rise_explainer.explain_many(xs, targets=top_k(1), overlay=True,
                                            original_input_image=pictures, progress=False))
    for k, e in enumerate(many):
        assert e.targets == [k]
        assert e.saliency_map[k].shape == (70, 90, 3) and e.saliency_map[k].dtype == np.uint8
    # the overlay is drawn on each image's own picture: half of it shows through
    means = [float(e.saliency_map[k].mean()) for k, e in enumerate(many)]
    assert means[0] < means[1] < means[2]
    with pytest.raises(ValueError, match="original_input_image has 2 images for 3 inputs"):
        rise_explainer.explain_many(xs, original_input_image=pictures[:2])


def test_explain_many_whitebox_and_top_k(planted):
    explainer = xai.Explainer(planted.model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              precision=F32)
    assert explainer.explain_mode == xai.ExplainMode.WHITEBOX
    xs = [planted_image_with_object(planted, k) for k in (1, 2, 0)]
    many = list(explainer.explain_many(xs, targets=top_k(1), resize=False, colormap=False))
    for k, x, e in zip((1, 2, 0), xs, many):
        assert e.targets == [k]
        alone = explainer(x, targets=k, resize=False, colormap=False)
        np.testing.assert_array_equal(e.saliency_map[k], alone.saliency_map[k])
        cy, cx = peak(e.saliency_map[k])
        y0, y1, x0, x1 = planted.cell_regions[k]
        assert y0 <= cy < y1 and x0 <= cx < x1


def test_a_bad_image_raises_at_its_turn_after_the_earlier_ones(planted, rise_explainer):
    good = planted_image(planted, "uniform")
    wrong = np.zeros((1, 3, 30, 30), np.float32)
    gen = rise_explainer.explain_many([good, good, wrong, good], targets=0, progress=False,
                                      resize=False, colormap=False)
    assert next(gen).targets == [0]
    assert next(gen).targets == [0]
    with pytest.raises(ValueError, match="preprocessed input has shape"):
        next(gen)


def test_closing_early_stops_the_worker(planted, rise_explainer):
    xs = [planted_image(planted, "random", seed=s) for s in range(20)]
    before = {t.ident for t in threading.enumerate()}
    gen = rise_explainer.explain_many(xs, targets=0, progress=False, resize=False,
                                      colormap=False)
    next(gen)
    gen.close()
    workers = [t for t in threading.enumerate()
               if t.name == "salvo-bulk" and t.ident not in before]
    assert not workers, "the worker thread is still running"
    # the explainer still works afterwards
    assert rise_explainer(xs[0], targets=0, progress=False).targets == [0]


def test_keyword_errors_come_before_any_work(rise_explainer, planted):
    x = planted_image(planted, "uniform")
    with pytest.raises(TypeError, match="num_maskz"):
        rise_explainer.explain_many([x], num_maskz=3)
    with pytest.raises(ValueError, match="overlay_weight"):
        rise_explainer.explain_many([x], overlay_weight=2)


def test_stream_reports_failed_loads_in_order(planted, rise_explainer):
    x = planted_image(planted, "uniform")

    def broken():
        raise OSError("cannot read this one")

    jobs = [BulkJob(lambda: (x, None), "a"), BulkJob(broken, "b"), BulkJob(lambda: (x, None), "c")]
    results = list(explain_stream(rise_explainer, jobs, 0, vis={"resize": False,
                                                                "colormap": False},
                                  keep_raw=True, num_jobs=3))
    assert [r.tag for r in results] == ["a", "b", "c"]
    assert results[1].error is not None and "cannot read" in str(results[1].error)
    for r in (results[0], results[2]):
        assert r.error is None and r.packed
        assert r.raw is not None and r.raw[0].shape == (56, 56)
        assert r.scores is not None and r.scores.shape == (3,)
