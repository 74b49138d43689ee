"""The reference toolkit (openvino-xai 1.1) timed next to salvo: ``salvo bench
--compare-reference``.

openvino-xai 1.1 imports ``openvino.runtime``, a namespace OpenVINO 2026 removed (it only
re-exported the top-level API). :func:`load_reference` makes it importable again by registering
alias modules; that patch of OpenVINO's namespace is confined to
:func:`_install_openvino_runtime_aliases`, which nothing else calls.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import statistics
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import openvino as ov
from tqdm import tqdm

__all__ = ["load_reference", "time_reference"]


def _install_openvino_runtime_aliases() -> None:
    """Register ``openvino.runtime`` and the sub-modules openvino-xai 1.1 imports as modules
    re-exporting today's ``openvino`` ones (names already registered are left alone)."""
    import openvino.opset10
    from openvino.utils.data_helpers import wrappers

    def alias(name: str, target: Any) -> None:
        if name in sys.modules:
            return
        module = types.ModuleType(name)
        module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})
        module.__path__ = []
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)

    alias("openvino.runtime", ov)
    alias("openvino.runtime.opset10", openvino.opset10)
    alias("openvino.runtime.utils", ov.utils)
    alias("openvino.runtime.utils.data_helpers", ov.utils.data_helpers)
    alias("openvino.runtime.utils.data_helpers.wrappers", wrappers)


def load_reference() -> Any | None:
    """The reference toolkit ``openvino_xai`` (importable through
    :func:`_install_openvino_runtime_aliases`), or ``None`` when it is not installed."""
    if importlib.util.find_spec("openvino_xai") is None:
        return None
    _install_openvino_runtime_aliases()
    return importlib.import_module("openvino_xai")


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
