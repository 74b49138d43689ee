"""The async batched inference engine on tiny models built in code."""

from __future__ import annotations

import logging
import threading

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from salvo import inference
from salvo.inference import EngineTimeoutError, InferenceEngine, check_device, read_model
from support import F32_CONFIG as F32


def mean_model(shape=(1, 3, 16, 16), dtype=np.float32) -> ov.Model:
    """Output (N, C): the per-channel spatial mean, so every item's answer is known."""
    x = ops.parameter(list(shape), dtype, name="image")
    y = ops.convert(x, np.float32) if dtype != np.float32 else x
    axes = [2, 3] if shape[1] in (1, 3) else [1, 2]
    r = ops.reduce_mean(y, axes, keep_dims=False)
    r.output(0).get_tensor().set_names({"scores"})
    return ov.Model([r], [x], "mean")


@pytest.fixture(scope="module")
def items():
    return np.random.default_rng(0).random((37, 3, 16, 16)).astype(np.float32)


@pytest.mark.parametrize("batch_size, num_requests", [(1, 1), (4, 2), (7, 3), (32, 4)])
def test_results_match_and_arrive_in_order(items, batch_size, num_requests):
    engine = InferenceEngine(
        mean_model(), batch_size=batch_size, num_requests=num_requests, config=F32
    )
    assert engine.batch_size == batch_size
    seen: list[tuple[int, int]] = []
    result = np.zeros((len(items), 3), np.float32)

    def fill(out, start, stop):
        out[: stop - start] = items[start:stop]

    def consume(start, stop, outputs):
        seen.append((start, stop))
        result[start:stop] = outputs["scores"]
        assert outputs[0].shape == (stop - start, 3)

    engine.run(len(items), fill, consume)
    np.testing.assert_allclose(result, items.mean(axis=(2, 3)), rtol=1e-6)
    assert [s for s, _ in seen] == list(range(0, len(items), batch_size))
    assert seen[-1][1] == len(items)


def test_out_of_order_completion_is_delivered_in_order(items):
    """Requests are slowed at random in the producer, so they complete out of order."""
    engine = InferenceEngine(mean_model(), batch_size=2, num_requests=4, config=F32)
    order: list[int] = []
    rng = np.random.default_rng(1)

    def fill(out, start, stop):
        out[: stop - start] = items[start:stop]
        if rng.random() < 0.5:
            threading.Event().wait(0.005)

    engine.run(len(items), fill, lambda s, e, o: order.append(s))
    assert order == sorted(order)


def test_uint8_nhwc_input(items):
    engine = InferenceEngine(mean_model((1, 8, 8, 3), np.uint8), batch_size=4, config=F32)
    assert engine.input.dtype == np.uint8 and engine.input.layout == "NHWC"
    assert engine.input.image_size == (8, 8) and engine.input.channels == 3
    data = np.random.default_rng(2).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    (out,) = engine.infer_items(data)
    np.testing.assert_allclose(out, data.mean(axis=(1, 2)), rtol=1e-5)


def test_producer_and_consumer_errors_reach_the_caller(items):
    engine = InferenceEngine(mean_model(), batch_size=4, num_requests=2, config=F32)

    def bad_fill(out, start, stop):
        if start >= 8:
            raise KeyError("producer broke")
        out[: stop - start] = items[start:stop]

    with pytest.raises(KeyError, match="producer broke") as info:
        engine.run(len(items), bad_fill, lambda *a: None)
    assert any(entry.name == "bad_fill" for entry in info.traceback)

    def bad_consume(start, stop, outputs):
        raise ZeroDivisionError("consumer broke")

    with pytest.raises(ZeroDivisionError, match="consumer broke"):
        engine.run(len(items), lambda o, s, e: None, bad_consume)

    # the engine is still usable afterwards
    (out,) = engine.infer_items(items[:5])
    np.testing.assert_allclose(out, items[:5].mean(axis=(2, 3)), rtol=1e-6)


def test_keyboard_interrupt_stops_cleanly(items):
    engine = InferenceEngine(mean_model(), batch_size=2, num_requests=2, config=F32)
    consumed = []

    def consume(start, stop, outputs):
        consumed.append(start)
        if len(consumed) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.run(len(items), lambda o, s, e: None, consume)
    assert len(consumed) == 3
    (out,) = engine.infer_items(items[:3])
    assert out.shape == (3, 3)


class _StuckRequest:
    """An infer request that never completes (a hung device)."""

    def __init__(self, real):
        self.real = real

    def get_input_tensor(self, i):
        return self.real.get_input_tensor(i)

    def start_async(self):
        pass

    def wait_for(self, milliseconds):
        threading.Event().wait(milliseconds / 1000)
        return False


def test_a_request_that_never_completes_times_out(items):
    engine = InferenceEngine(mean_model(), batch_size=4, num_requests=2, timeout=0.3, config=F32)
    engine._requests = [_StuckRequest(r) for r in engine.requests]
    with pytest.raises(EngineTimeoutError, match="did not complete within 0.3 s"):
        engine.run(len(items), lambda o, s, e: None, lambda *a: None)


@pytest.mark.parametrize("device", ["AUTO", "MULTI:CPU", "HETERO:CPU", "CPU"])
def test_device_strings_pass_through(items, device):
    engine = InferenceEngine(mean_model(), device, batch_size=3, config=F32)
    (out,) = engine.infer_items(items[:7])
    np.testing.assert_allclose(out, items[:7].mean(axis=(2, 3)), rtol=1e-5)


@pytest.mark.parametrize(
    "device, missing",
    [("GPU", "GPU"), ("GPU.1", "GPU.1"), ("NPU", "NPU"), ("MULTI:CPU,GPU", "GPU"),
     ("HETERO:NPU,CPU", "NPU"), ("AUTO:GPU(2),CPU", "GPU")],
)
def test_missing_device_lists_available(device, missing, monkeypatch):
    # this machine's devices less the one the test needs missing (a machine with a GPU or an
    # NPU runs the same test)
    available = [a for a in ov.Core().available_devices
                 if a != missing and a.split(".")[0] != missing.split(".")[0]]
    monkeypatch.setattr(inference, "available_devices", lambda: list(available))
    with pytest.raises(ValueError, match=f"device '{missing}' is not available") as info:
        check_device(device)
    assert f"available devices: {available}" in str(info.value)


def test_batch_fallback_when_model_cannot_be_reshaped(caplog):
    # a Reshape with a hard-coded leading 1 keeps the batch at 1 whatever the input says
    x = ops.parameter([1, 3, 4, 4], np.float32, name="image")
    r = ops.reshape(x, ops.constant(np.array([1, -1], np.int64)), special_zero=False)
    model = ov.Model([r], [x])
    with caplog.at_level(logging.INFO, logger="salvo.inference"):
        engine = InferenceEngine(model, batch_size=8, config=F32)
    assert engine.batch_size == 1
    assert "cannot be reshaped to batch 8" in caplog.text
    data = np.random.default_rng(3).random((3, 3, 4, 4)).astype(np.float32)
    (out,) = engine.infer_items(data)
    np.testing.assert_allclose(out, data.reshape(3, -1), rtol=1e-6)


def test_dynamic_batch_model_is_reshaped():
    x = ops.parameter(ov.PartialShape([-1, 3, 8, 8]), np.float32, name="image")
    model = ov.Model([ops.reduce_mean(x, [2, 3], keep_dims=False)], [x])
    engine = InferenceEngine(model, batch_size=5, config=F32)
    assert engine.input.shape == (5, 3, 8, 8)


def test_dynamic_spatial_dims_need_input_shape():
    x = ops.parameter(ov.PartialShape([1, 3, -1, -1]), np.float32, name="image")
    model = ov.Model([ops.reduce_mean(x, [2, 3], keep_dims=False)], [x])
    with pytest.raises(ValueError, match="pass input_shape"):
        InferenceEngine(model)
    engine = InferenceEngine(model, input_shape=(3, 12, 10), batch_size=2)
    assert engine.input.shape == (2, 3, 12, 10) and engine.input.image_size == (12, 10)


def test_user_model_is_not_modified():
    model = mean_model()
    InferenceEngine(model, batch_size=6)
    assert list(model.inputs[0].get_shape()) == [1, 3, 16, 16]


def test_bad_models_and_arguments(tmp_path):
    a = ops.parameter([1, 3, 4, 4], np.float32, name="a")
    b = ops.parameter([1, 3, 4, 4], np.float32, name="b")
    two = ov.Model([ops.add(a, b)], [a, b])
    with pytest.raises(ValueError, match=r"2 inputs \['a', 'b'\]"):
        InferenceEngine(two)
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        read_model(tmp_path / "nope.xml")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(ValueError, match="junk.onnx.*not a model"):
        read_model(junk)
    with pytest.raises(ValueError, match="is a folder"):
        read_model(tmp_path)
    with pytest.raises(TypeError, match="got int"):
        read_model(3)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        InferenceEngine(mean_model(), batch_size=0)
    with pytest.raises(ValueError, match="precision must be one of"):
        InferenceEngine(mean_model(), precision="int4")
    engine = InferenceEngine(mean_model(), batch_size=2)
    with pytest.raises(ValueError, match=r"items must have shape \(N, 3, 16, 16\)"):
        engine.infer_items(np.zeros((2, 3, 8, 8), np.float32))


def test_model_path_and_cache_dir(tmp_path):
    path = tmp_path / "m.xml"
    ov.save_model(mean_model(), str(path))
    cache = tmp_path / "cache"
    engine = InferenceEngine(path, batch_size=2, cache_dir=cache)
    assert engine.config["CACHE_DIR"] == str(cache)
    assert any(cache.iterdir()), "OpenVINO wrote no cache blob"
    (out,) = engine.infer_items(np.ones((2, 3, 16, 16), np.float32))
    np.testing.assert_allclose(out, 1.0)


@pytest.mark.parametrize("batch_size, num_requests", [(1, 1), (3, 2), (8, 4)])
def test_consumer_can_stop_the_run_early(items, batch_size, num_requests):
    engine = InferenceEngine(
        mean_model(), batch_size=batch_size, num_requests=num_requests, config=F32
    )
    delivered: list[int] = []

    def consume(start, stop, outputs):
        delivered.extend(range(start, stop))
        return stop >= 10

    submitted = engine.run(len(items), lambda o, s, e: None, consume)
    last = delivered[-1] + 1
    assert last >= 10 and last < 10 + batch_size
    assert delivered == list(range(last)), "nothing is delivered after the stop"
    assert last <= submitted <= len(items)
    assert submitted <= last + batch_size * num_requests
    (out,) = engine.infer_items(items[:2])  # usable afterwards
    assert out.shape == (2, 3)


def test_cpu_default_batch_is_chosen_from_the_measured_inference_time(monkeypatch):
    # a tiny model takes far less than a millisecond: batched
    engine = InferenceEngine(mean_model(), config=F32)
    assert engine.batch_size == 8 and engine.input.shape[0] == 8
    (out,) = engine.infer_items(np.ones((3, 3, 16, 16), np.float32))
    np.testing.assert_allclose(out, 1.0)
    # the same model when "one image takes long": one image per request
    monkeypatch.setattr(InferenceEngine, "AUTO_BATCH_STEPS", ((0.0, 1),))
    assert InferenceEngine(mean_model(), config=F32).batch_size == 1
    # an explicit batch size is never second-guessed
    monkeypatch.setattr(InferenceEngine, "AUTO_BATCH_STEPS", ((0.0, 8),))
    assert InferenceEngine(mean_model(), batch_size=2, config=F32).batch_size == 2


@pytest.mark.parametrize("num_requests", [1, 2, 5])
def test_a_batch_is_filled_only_once_an_older_one_was_delivered(items, num_requests):
    # memory bound: batches filled but not yet delivered never exceed num_requests
    engine = InferenceEngine(mean_model(), batch_size=2, num_requests=num_requests, config=F32)
    filled, delivered, worst = [0], [0], [0]

    def fill(out, start, stop):
        out[: stop - start] = items[start:stop]
        filled[0] += 1
        worst[0] = max(worst[0], filled[0] - delivered[0])

    def consume(start, stop, outputs):
        delivered[0] += 1
        np.testing.assert_allclose(next(iter(outputs.values())),
                                   items[start:stop].mean(axis=(2, 3)), rtol=1e-6)

    engine.run(len(items), fill, consume)
    assert delivered[0] == filled[0] == -(-len(items) // 2)
    assert worst[0] == min(num_requests, filled[0])


def test_batch_steps_choose_the_automatic_cpu_batch():
    # the first step whose seconds the measured single-image time reaches gives the batch
    engine = InferenceEngine(mean_model(), batch_steps=((1e9, 1), (0.0, 5)), config=F32)
    assert engine.batch_size == 5 and engine.input.shape[0] == 5
    engine = InferenceEngine(mean_model(), batch_steps=((0.0, 3),), config=F32)
    assert engine.batch_size == 3
    engine = InferenceEngine(mean_model(), batch_size=2, batch_steps=((0.0, 3),), config=F32)
    assert engine.batch_size == 2, "an explicit batch_size wins"


def test_aise_batch_follows_the_model_cost_on_cpu():
    from salvo.methods.black_box.aise import AISEClassification
    from salvo.methods.black_box.aise.base import CPU_BATCH_STEPS

    aise = AISEClassification(mean_model(), lambda o: o[0], precision="f32")
    cheap = [b for t, b in CPU_BATCH_STEPS if t == 0.0][0]
    assert aise.engine.batch_size == cheap  # a tiny model takes well under a millisecond
