"""Messages a user actually sees (issue 12, §3 and §4, library side).

Warnings the caller can act on are :func:`warnings.warn` with :class:`salvo.errors.SalvoWarning`
subclasses (salvo's logger has a NullHandler, so log records are invisible); long runs say so
before they start and estimate the time left once they run; progress bars do not overshoot and
stay off when stderr is not a terminal; ``plot(backend="cv")`` without a display raises.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
import tqdm.auto
import tqdm.std

import salvo as xai
from salvo.bulk import BulkJob, explain_stream
from salvo.errors import (
    DetectionBoxWarning,
    IgnoredArgumentWarning,
    LongRunWarning,
    PlotWarning,
    PostprocessWarning,
    SalvoWarning,
    UninformativeMapWarning,
)
from salvo.explainer.explanation import Explanation
from salvo.methods.black_box.aise import AISEDetection
from salvo.testing.planted import planted_image
from support import F32, logits


def test_warning_classes_are_salvo_warnings():
    for cls in (LongRunWarning, IgnoredArgumentWarning, PostprocessWarning, DetectionBoxWarning,
                PlotWarning):
        assert issubclass(cls, SalvoWarning) and issubclass(cls, UserWarning)


# ------------------------------------------------------------------ actionable warnings


def test_per_item_postprocess_fallback_is_a_visible_warning(planted, model):
    explainer = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=lambda o: o[0][:1],
                              explain_mode="blackbox", explain_method="rise", batch_size=8,
                              num_masks=64, progress=False, inference_precision=F32)
    with pytest.warns(PostprocessWarning, match="calling it one item at a time"):
        explainer(planted_image(planted), targets=0)


def _region_detector(planted, scale: float = 1.0):
    """Boxes = the planted regions (x1, y1, x2, y2) times ``scale``; box k scored by region k."""
    boxes = np.array([[x0, y0, x1, y1] for y0, y1, x0, x1 in planted.regions], np.float64)

    def postprocess(outputs):
        z = np.asarray(outputs[0], np.float64)
        n = z.shape[0]
        return (np.broadcast_to(boxes * scale, (n, len(boxes), 4)).copy(),
                1 / (1 + np.exp(-12 * (z - 0.25))),
                np.broadcast_to(np.arange(len(boxes)), (n, len(boxes))).copy())

    return postprocess


def test_normalised_detection_boxes_are_a_visible_warning(planted, model):
    method = AISEDetection(model, _region_detector(planted, scale=1 / 56), precision=F32,
                           progress=False)
    # boxes of a fraction of a pixel match nothing, so the map is flat as well
    with pytest.warns(UninformativeMapWarning, match="carries no information"), \
            pytest.warns(DetectionBoxWarning, match=r"look normalised.*input pixels \(56x56\)"):
        method.explain(planted_image(planted), [0], num_iterations_per_kernel=2)


def test_plot_of_1000_maps_says_it_shows_24():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = Explanation({i: np.full((4, 4), i % 255, np.uint8) for i in range(1000)})
    with pytest.warns(PlotWarning, match="1000 saliency maps requested, plotting the first 24"):
        e.plot()
    assert len(plt.gcf().axes) == 24
    plt.close("all")


def test_plot_cv_without_display_raises_instead_of_aborting(tmp_path):
    """Run in a child process: OpenCV's Qt backend aborts the whole process without a display,
    which must show up as this test failing, not as pytest dying."""
    script = tmp_path / "plot_cv.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from salvo.explainer.explanation import Explanation
        e = Explanation({0: np.zeros((4, 4), np.uint8)})
        try:
            e.plot(backend="cv")
        except RuntimeError as exc:
            print("RAISED", exc)
        else:
            print("NO ERROR")
    """))
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-500:]}"
    assert "RAISED" in done.stdout, done.stdout
    assert 'backend="matplotlib"' in done.stdout


# ------------------------------------------------------------------ long runs


def _many_class_model(num_classes: int = 1000) -> ov.Model:
    x = ops.parameter(ov.PartialShape([-1, 3, 16, 16]), np.float32, name="image")
    mean = ops.reduce_mean(x, [2, 3], keep_dims=False)
    weights = np.random.default_rng(0).standard_normal((3, num_classes)).astype(np.float32)
    return ov.Model([ops.matmul(mean, ops.constant(weights), False, False)], [x])


def test_aise_on_all_of_1000_classes_warns_before_it_starts():
    calls = []

    def post(outputs):
        calls.append(len(outputs[0]))
        return outputs[0]

    explainer = xai.Explainer(_many_class_model(), xai.Task.CLASSIFICATION, postprocess_fn=post,
                              explain_mode="blackbox", progress=False)
    assert explainer.explain_method is xai.Method.AISE
    x = np.random.default_rng(1).random((1, 3, 16, 16)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LongRunWarning)  # stop the run at the warning
        with pytest.raises(LongRunWarning) as info:
            explainer(x, targets=-1)
    text = str(info.value)
    assert "300,001 model inferences" in text and "1,000 targets" in text
    assert "targets=" in text and "preset='speed'" in text
    assert sum(calls) <= 1, "warned before the masked inferences, not after"
    # a handful of targets stays quiet
    with warnings.catch_warnings():
        warnings.simplefilter("error", LongRunWarning)
        explainer(x, targets=[1, 2], num_iterations_per_kernel=2, resize=False, colormap=False)


def test_time_estimate_is_given_once_the_first_batches_have_run(planted, model, monkeypatch):
    from salvo import _progress

    ticks = iter(range(0, 10**6, 10))  # a clock that advances 10 s per reading
    monkeypatch.setattr(_progress, "_clock", lambda: next(ticks))
    explainer = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              explain_mode="blackbox", explain_method="aise", progress=False,
                              inference_precision=F32)
    with pytest.warns(LongRunWarning, match=r"AISE: about .* left \(\d+ of 360 inferences in "
                                            r"10 s"):
        explainer(planted_image(planted), targets=-1, num_iterations_per_kernel=20)


@pytest.mark.parametrize("stop", [{"target_reliability": 0.999999}, {"tolerance": 1e-12}, {}])
def test_rise_estimate_says_at_most_when_the_run_may_stop_early(planted, model, monkeypatch,
                                                                stop):
    from salvo import _progress

    ticks = iter(range(0, 10**6, 10))  # a clock that advances 10 s per reading
    monkeypatch.setattr(_progress, "_clock", lambda: next(ticks))
    explainer = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              explain_mode="blackbox", explain_method="rise", progress=False,
                              inference_precision=F32)
    with pytest.warns(LongRunWarning) as record:
        explainer(planted_image(planted), targets=[1], num_masks=512, **stop)
    text = str(next(w.message for w in record if "left" in str(w.message)))
    if stop:
        name = next(iter(stop))
        assert text.startswith("RISE: at most about ") and text.endswith(
            f"; it stops earlier once its {name} is reached"), text
    else:
        assert text.startswith("RISE: about ") and "stops earlier" not in text, text


def test_no_estimate_for_a_short_run(monkeypatch):
    from salvo import _progress

    ticks = iter([0.0, 2.5, 2.6])
    monkeypatch.setattr(_progress, "_clock", lambda: next(ticks))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LongRunWarning)
        run = _progress.RunProgress(100, desc="x", unit="mask", show=False)
        run.update(90)  # 2.5 s for 90: 0.3 s left
        run.update(5)
    assert run.estimated


# ------------------------------------------------------------------ progress bars


@pytest.mark.parametrize("num_masks", [100, 999, 37])
def test_packed_progress_adds_up_to_exactly_one_per_image(planted, model, num_masks):
    explainer = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              explain_mode="blackbox", explain_method="rise", progress=False,
                              inference_precision=F32)
    steps: list[float] = []
    images = [planted_image(planted, "random", seed=i) for i in range(7)]
    jobs = [BulkJob(lambda x=x: (x, None)) for x in images]
    results = list(explain_stream(explainer, jobs, 0, method_kwargs={"num_masks": num_masks,
                                                                     "num_cells": 4},
                                  progress=steps.append, num_jobs=7))
    assert all(r.error is None for r in results)
    total = 0.0
    for s in steps:
        total += s  # as a progress bar adds them
        assert total <= 7.0
    assert total == 7.0


def test_a_bar_fed_by_the_packed_run_never_clamps(planted, model, recwarn):
    explainer = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              explain_mode="blackbox", explain_method="rise", progress=False,
                              inference_precision=F32)
    images = [planted_image(planted, "random", seed=i) for i in range(7)]
    bar = tqdm.std.tqdm(total=7, file=io.StringIO(), mininterval=0, miniters=1, disable=False,
                        bar_format="{n:.1f}/{total_fmt} [{remaining}]")
    for _ in explain_stream(explainer, [BulkJob(lambda x=x: (x, None)) for x in images], 0,
                            method_kwargs={"num_masks": 100, "num_cells": 4},
                            progress=bar.update, num_jobs=7):
        pass
    bar.refresh()
    assert bar.n == 7
    bar.close()
    assert not [w for w in recwarn.list if "clamping frac" in str(w.message)]


class _RecordingBar(tqdm.std.tqdm):
    """Records whether each bar was switched off when it was made (close() switches it off)."""

    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _RecordingBar.made.append(bool(self.disable))


@pytest.fixture
def recording_bars(monkeypatch):
    _RecordingBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", _RecordingBar)
    return _RecordingBar.made


def test_python_api_bars_are_off_when_stderr_is_not_a_terminal(planted, model, recording_bars,
                                                               capsys):
    assert not sys.stderr.isatty()
    explainer = xai.Explainer(model, xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              explain_mode="blackbox", explain_method="rise",
                              inference_precision=F32, num_masks=64, num_cells=4)
    x = planted_image(planted)
    explainer(x, targets=0)
    list(explainer.explain_many([x, x], targets=0))
    assert len(recording_bars) >= 2 and all(recording_bars), recording_bars
    assert "\r" not in capsys.readouterr().err
    recording_bars.clear()
    explainer(x, targets=0, progress=True)  # forced on
    list(explainer.explain_many([x, x], targets=0, progress=True))
    assert len(recording_bars) >= 2 and not any(recording_bars), recording_bars
