"""The reference toolkit (openvino-xai 1.1) timed next to salvo: ``salvo bench
--compare-reference``.

The toolkit is imported by :func:`salvo.testing.reference.load_reference`, the one loader the
tests and the benchmark scripts use too: it lends openvino-xai the ``openvino.runtime`` names
OpenVINO 2026 removed for the duration of its import only, so nothing of OpenVINO stays patched.
"""

from __future__ import annotations

import functools
import logging
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import openvino as ov
from tqdm import tqdm

__all__ = ["load_reference", "time_reference"]


def load_reference() -> Any | None:
    """The reference toolkit ``openvino_xai`` (:func:`salvo.testing.reference.load_reference`),
    or ``None`` when it is not installed."""
    from salvo.testing.reference import load_reference as load
    from salvo.testing.reference import reference_available

    return load() if reference_available() else None


def _quiet_reference(xai: Any) -> None:
    """Switch off the reference's INFO logs and per-mask progress bars (its modules' ``tqdm``).

    Call it after the reference's Explainer is built (its method modules load lazily).
    """
    logging.getLogger(xai.__name__).setLevel(logging.WARNING)
    for name, module in list(sys.modules.items()):
        if name.startswith(xai.__name__) and getattr(module, "tqdm", None) is tqdm:
            module.tqdm = functools.partial(tqdm, disable=True)


def time_reference(xai: Any, model: Any, x: np.ndarray, method: str, targets: list[int],
                   masks: int, repeats: int, postprocess_fn: Callable[[Any], Any],
                   precision: str | None) -> dict[str, Any]:
    """Time the reference toolkit on CPU: at its defaults (the device's default precision,
    latency hint), and at ``precision`` when given (its model recompiled with only that hint).

    Returns ``{"compile_s", "runs": [{"precision", "wall_s", "walls"[, "s_per_mask", "masks"]}]}``;
    RISE runs use ``masks`` masks (the caller extrapolates per mask).
    """
    _quiet_reference(xai)  # its logger exists once it is imported
    t0 = time.perf_counter()
    if method == "rise":
        ref = xai.Explainer(model=model, task=xai.Task.CLASSIFICATION,
                            postprocess_fn=postprocess_fn,
                            explain_mode=xai.explainer.ExplainMode.BLACKBOX,
                            explain_method=xai.Method.RISE)
        call = {"num_masks": masks}
    else:
        ref = xai.Explainer(model=model, task=xai.Task.CLASSIFICATION,
                            explain_mode=xai.explainer.ExplainMode.WHITEBOX,
                            explain_method=getattr(xai.Method, method.upper()))
        call = {}
    compile_s = time.perf_counter() - t0
    _quiet_reference(xai)  # again: building the Explainer imported the method's module
    out: dict[str, Any] = {"compile_s": compile_s, "runs": []}
    settings: list[str | None] = [None] + ([precision] if precision else [])
    for setting in settings:
        if setting is not None:  # the same compile call as the reference's, plus the hint
            ref.method._model_compiled = ov.Core().compile_model(
                ref.method._model, "CPU", {"INFERENCE_PRECISION_HINT": setting})
        try:
            used = str(ref.method._model_compiled.get_property("INFERENCE_PRECISION_HINT"))
        except Exception:  # an older reference without the attribute
            used = setting or "default"
        ref(x, targets=targets, resize=False, colormap=False, **call)
        walls = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ref(x, targets=targets, resize=False, colormap=False, **call)
            walls.append(time.perf_counter() - t0)
        run: dict[str, Any] = {"precision": used.lower().replace("<type: '", "").rstrip("'>"),
                               "default": setting is None, "wall_s": statistics.median(walls),
                               "walls": walls}
        if method == "rise":
            run["masks"] = masks
            run["s_per_mask"] = run["wall_s"] / masks
        out["runs"].append(run)
    return out
