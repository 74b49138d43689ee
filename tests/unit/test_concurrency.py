"""One object, many threads: every call returns exactly what the same call made alone returns.

Each test first makes every call one after the other (the oracle), then makes the same calls
from several threads at once, in a shuffled order, on the same shared objects, and compares the
results bit for bit.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import salvo as xai
from salvo.inference import InferenceEngine
from salvo.metrics import InsertionDeletionAUC
from salvo.methods.black_box.rise import RISE, resolve_params
from salvo.testing.planted import batchable, planted_image
from support import F32, logits

THREADS = 4


@pytest.fixture(scope="module")
def images(planted):
    return [planted_image(planted, "random", seed=s) for s in range(6)]


def run_concurrently(calls, threads=THREADS, rounds=1, seed=0):
    """Run every ``(key, fn)`` of ``calls`` ``rounds`` times from ``threads`` threads at once, in
    a shuffled order; return ``{key: [results]}``. All threads start together."""
    work = [(key, fn) for _ in range(rounds) for key, fn in calls]
    random.Random(seed).shuffle(work)
    barrier = threading.Barrier(threads)
    lanes = [work[i::threads] for i in range(threads)]

    def lane(items):
        barrier.wait()
        return [(key, fn()) for key, fn in items]

    out: dict = {}
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(lane, items) for items in lanes]:
            for key, value in done.result():
                out.setdefault(key, []).append(value)
    return out


def maps_of(explanation):
    return {k: np.array(v) for k, v in explanation.saliency_map.items()}


def assert_same_maps(alone, together, what):
    assert alone.keys() == together.keys(), what
    for k in alone:
        assert alone[k].dtype == together[k].dtype, what
        np.testing.assert_array_equal(together[k], alone[k], err_msg=f"{what}, target {k}")


def test_one_blackbox_explainer_many_threads(planted, images):
    # the reproducer of the issue: 4 threads on one RISE Explainer with 2 requests of batch 2
    explainer = xai.Explainer(
        batchable(planted), xai.Task.CLASSIFICATION, postprocess_fn=logits,
        explain_mode=xai.ExplainMode.BLACKBOX, explain_method=xai.Method.RISE,
        num_masks=96, batch_size=2, num_requests=2, inference_precision=F32, progress=False,
    )
    targets = [0, [1, 2], -1]
    calls = []
    for i, image in enumerate(images):
        for t, target in enumerate(targets):
            calls.append(((i, t), lambda image=image, target=target: maps_of(
                explainer(image, targets=target, resize=False, colormap=False, seed=7))))
    alone = {key: fn() for key, fn in calls}
    together = run_concurrently(calls, rounds=3)
    for key, results in together.items():
        for result in results:
            assert_same_maps(alone[key], result, f"call {key}")


def test_per_call_engine_settings_do_not_disturb_other_threads(planted, images):
    # calls with different engine settings on one Explainer: each gets its own compiled engine
    explainer = xai.Explainer(
        batchable(planted), xai.Task.CLASSIFICATION, postprocess_fn=logits,
        explain_mode=xai.ExplainMode.BLACKBOX, explain_method=xai.Method.RISE,
        num_masks=64, inference_precision=F32, progress=False,
    )
    calls = []
    for i, image in enumerate(images[:4]):
        for batch in (1, 3):
            calls.append(((i, batch), lambda image=image, batch=batch: maps_of(
                explainer(image, targets=1, resize=False, colormap=False, batch_size=batch))))
    alone = {key: fn() for key, fn in calls}
    # the map does not depend on the batch size either
    for i in range(4):
        assert_same_maps(alone[(i, 1)], alone[(i, 3)], f"image {i}, batch 1 vs 3")
    together = run_concurrently(calls, rounds=2, seed=1)
    for key, results in together.items():
        for result in results:
            assert_same_maps(alone[key], result, f"call {key}")


def test_mixed_methods_and_objects_many_threads(planted, images):
    # white-box, RISE, AISE, the RISE method object and a metric, all shared, all at once
    model = batchable(planted)
    whitebox = xai.Explainer(planted.model, xai.Task.CLASSIFICATION,
                             explain_mode=xai.ExplainMode.WHITEBOX,
                             inference_precision=F32)
    rise = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                         explain_mode=xai.ExplainMode.BLACKBOX, explain_method="rise",
                         num_masks=64, batch_size=2, inference_precision=F32, progress=False)
    aise = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                         explain_mode=xai.ExplainMode.BLACKBOX, explain_method="aise",
                         num_iterations_per_kernel=6, kernel_widths=[0.2],
                         inference_precision=F32, progress=False)
    method = RISE(model, logits, precision=F32, batch_size=4, num_requests=2, progress=False)
    params = resolve_params(num_masks=64, num_cells=7, scale_output=False)
    auc = InsertionDeletionAUC(model, preprocess_fn=lambda im: im.transpose(2, 0, 1)[None],
                               postprocess_fn=logits, precision=F32)
    unit_map = np.linspace(0, 1, 56 * 56, dtype=np.float32).reshape(56, 56)

    calls = []
    for i, image in enumerate(images[:4]):
        calls += [
            (("wb", i), lambda image=image: maps_of(whitebox(image, targets=[0, 2], resize=False,
                                                               colormap=False))),
            (("rise", i), lambda image=image: maps_of(rise(image, targets=1, resize=False,
                                                           colormap=False))),
            (("aise", i), lambda image=image: maps_of(aise(image, targets=2, resize=False,
                                                           colormap=False))),
            (("method", i), lambda image=image: {0: method.run(image, [0, 1], params).maps}),
            (("auc", i), lambda image=image: {0: np.array(auc(unit_map, class_idx=0,
                                                              input_image=image[0].transpose(1, 2, 0),
                                                              steps=10))}),
        ]
    alone = {key: fn() for key, fn in calls}
    together = run_concurrently(calls, rounds=2, seed=2)
    for key, results in together.items():
        for result in results:
            assert_same_maps(alone[key], result, f"call {key}")


def detections_of(planted):
    """A detection postprocess over the planted CNN: box k is region k with label k, scored by
    how bright region k is."""
    boxes = np.array([[x0, y0, x1, y1] for (y0, y1, x0, x1) in planted.regions], np.float32)

    def postprocess(outputs):
        z = np.asarray(outputs[0], np.float64)
        n = z.shape[0]
        return (np.broadcast_to(boxes, (n, len(boxes), 4)).copy(),
                1 / (1 + np.exp(-12 * (z - 0.25))),
                np.broadcast_to(np.arange(len(boxes)), (n, len(boxes))).copy())

    return postprocess


def test_drise_shared_between_threads(planted, images):
    from salvo.methods.black_box.drise import DRISE

    drise = DRISE(batchable(planted), detections_of(planted), precision=F32, batch_size=2,
                  num_requests=2, progress=False)
    # the weights of a mask depend on the call's target boxes: calls must not share them
    calls = [((i, j), lambda image=image, t=t: {0: drise.explain(image, t, num_masks=64,
                                                                 num_cells=4).maps})
             for i, image in enumerate(images[:3]) for j, t in enumerate(([0], [2, 1], -1))]
    alone = {key: fn() for key, fn in calls}
    together = run_concurrently(calls, rounds=2, seed=3)
    for key, results in together.items():
        for result in results:
            assert_same_maps(alone[key], result, f"call {key}")


def test_explain_many_from_several_threads(planted, images):
    explainer = xai.Explainer(
        batchable(planted), xai.Task.CLASSIFICATION, postprocess_fn=logits,
        explain_mode=xai.ExplainMode.BLACKBOX, explain_method=xai.Method.RISE,
        num_masks=64, batch_size=2, inference_precision=F32, progress=False,
    )
    whitebox = xai.Explainer(planted.model, xai.Task.CLASSIFICATION,
                             explain_mode=xai.ExplainMode.WHITEBOX, inference_precision=F32)

    def many(e, subset, target):
        return [maps_of(x) for x in e.explain_many(subset, targets=target, resize=False,
                                                  colormap=False, progress=False)]

    calls = [
        (("rise", 0), lambda: many(explainer, images[:3], 0)),
        (("rise", 1), lambda: many(explainer, images[2:], [1, 2])),
        (("wb", 0), lambda: many(whitebox, images, -1)),
        (("wb", 1), lambda: many(whitebox, images[:2], 1)),
        (("rise-call", 2), lambda: [maps_of(explainer(images[1], targets=2, resize=False,
                                                       colormap=False))]),
    ]
    alone = {key: fn() for key, fn in calls}
    together = run_concurrently(calls, rounds=2, seed=4)
    for key, results in together.items():
        for result in results:
            assert len(result) == len(alone[key])
            for a, b in zip(alone[key], result):
                assert_same_maps(a, b, f"call {key}")


def test_engine_runs_from_many_threads_share_the_requests():
    # a raw engine: each run gets exactly its own items back, in order, while runs overlap
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 4], np.float32, name="x")
    model = ov.Model([ops.multiply(x, ops.constant(np.float32(2.0)))], [x])
    engine = InferenceEngine(model, batch_size=3, num_requests=3, config={
        "INFERENCE_PRECISION_HINT": F32})
    peak = {"in_flight": 0, "max": 0}
    lock = threading.Lock()

    def one(seed):
        data = np.random.default_rng(seed).random((50, 4)).astype(np.float32)
        got = []

        def fill(out, start, stop):
            with lock:
                peak["in_flight"] += 1
                peak["max"] = max(peak["max"], peak["in_flight"])
            out[: stop - start] = data[start:stop]

        def consume(start, stop, outputs):
            with lock:
                peak["in_flight"] -= 1
            got.append((start, np.array(outputs[0])))

        engine.run(len(data), fill, consume)
        assert [s for s, _ in got] == list(range(0, 50, 3))
        np.testing.assert_array_equal(np.concatenate([g for _, g in got]), 2 * data)
        return True

    assert all(run_concurrently([((s,), lambda s=s: one(s)) for s in range(8)], rounds=3)
               .values())
    # the device was shared: never more batches filled and undelivered than requests exist
    assert peak["max"] <= engine.num_requests


def test_threads_saving_into_one_folder(planted, images, tmp_path: Path):
    explainer = xai.Explainer(planted.model, xai.Task.CLASSIFICATION,
                              explain_mode=xai.ExplainMode.WHITEBOX, inference_precision=F32)
    names = ["alpha", "beta", "gamma"]
    alone_dir, together_dir = tmp_path / "alone", tmp_path / "together"

    def save(i, folder):
        e = explainer(images[i], targets=-1, label_names=names)
        return sorted(p.name for p in e.save(folder, prefix=f"img{i}_"))

    expected = [save(i, alone_dir) for i in range(len(images))]
    results = run_concurrently([((i,), lambda i=i: save(i, together_dir))
                                for i in range(len(images))], rounds=3, seed=5)
    for i in range(len(images)):
        assert all(r == expected[i] for r in results[(i,)])
    alone_files = sorted(p.name for p in alone_dir.iterdir())
    together_files = sorted(p.name for p in together_dir.iterdir())
    assert together_files == alone_files  # no temporary file left, nothing missing
    for name in alone_files:
        assert (together_dir / name).read_bytes() == (alone_dir / name).read_bytes(), name


def test_drise_calls_never_see_each_others_weights(planted, images, monkeypatch):
    # both calls are held inside RISE's run at once (after their setup, before their masks):
    # a call that kept its weights function on the shared object would now use the other's
    from salvo.methods.black_box import rise as rise_module
    from salvo.methods.black_box.drise import DRISE

    drise = DRISE(batchable(planted), detections_of(planted), precision=F32, batch_size=2,
                  num_requests=2, progress=False)
    cases = [(images[0], [0]), (images[1], [2, 1])]
    alone = [drise.explain(image, t, num_masks=64, num_cells=4).maps for image, t in cases]
    barrier = threading.Barrier(2, timeout=20)
    real = rise_module.image_for_fill

    def held(x, engine):
        barrier.wait()
        return real(x, engine)

    monkeypatch.setattr(rise_module, "image_for_fill", held)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(drise.explain, image, t, num_masks=64, num_cells=4)
                   for image, t in cases]
        together = [f.result().maps for f in futures]
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(b, a)


def test_metric_counts_are_per_thread(planted, images):
    model = batchable(planted)
    auc = InsertionDeletionAUC(model, preprocess_fn=lambda im: im.transpose(2, 0, 1)[None],
                               postprocess_fn=logits, precision=F32)
    unit_map = np.linspace(0, 1, 56 * 56, dtype=np.float32).reshape(56, 56)
    image = images[0][0].transpose(1, 2, 0)
    barrier = threading.Barrier(2)

    def call(steps):
        barrier.wait()
        auc(unit_map, class_idx=0, input_image=image, steps=steps)
        barrier.wait()  # both calls done before either reads its count
        return auc.num_inferences

    with ThreadPoolExecutor(2) as pool:
        counts = [f.result() for f in [pool.submit(call, s) for s in (5, 12)]]
    assert counts == [2 * (5 + 1), 2 * (12 + 1)]
