"""What every white-box method shares: a copy of the model with an XAI branch, run once per image.

A white-box method (:class:`WhiteBoxMethod`, the reference toolkit's base class of the same name)
builds its XAI model in :meth:`WhiteBoxMethod.prepare_model`: a clone of the user's model with
the method's branch (:meth:`WhiteBoxMethod.build_branch`) scaled to uint8 in the graph (with
``embed_scaling``) and exposed as an extra output named ``saliency_map``. Each image then costs one
inference. The XAI model saves with ``openvino.save_model`` and runs without salvo.

Engines: a call uses a LATENCY engine with several infer requests (so one call is as fast as
possible and several threads calling at once overlap); a stream of images
(:meth:`WhiteBoxMethod.explain_stream`) uses a THROUGHPUT engine with several images in flight.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import openvino as ov
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._checks import check_flag
from salvo.common import PER_IMAGE_MAP, SALIENCY_MAP_OUTPUT_NAME, Task
from salvo.common.utils import has_xai
from salvo.errors import PostprocessWarning
from salvo.inference import EngineConfig, read_model
from salvo.methods.base import (
    IDENTITY,
    MethodBase,
    MethodParams,
    MethodResult,
    Prediction,
    StreamJob,
    TargetsSpec,
)
from salvo.methods.white_box.graph import (
    GraphIndex,
    TargetLayer,
    XAIInsertionError,
    build_model,
    check_finite_outputs,
    find_cnn_target,
    find_node,
    find_vit_target,
    scale_maps,
    static_dims,
)

logger = logging.getLogger(__name__)

__all__ = ["Branch", "WhiteBoxMethod", "check_target_layer"]


def check_target_layer(target_layer: object) -> str | list[str] | None:
    """``target_layer`` checked: ``None``, a node name, or a non-empty list of node names.

    Raises
    ------
    TypeError
        Anything else (a layer number, say), naming the value.
    """
    if target_layer is None or isinstance(target_layer, str):
        return target_layer
    if isinstance(target_layer, (list, tuple)) and target_layer and all(
        isinstance(name, str) for name in target_layer
    ):
        return list(target_layer)
    raise TypeError(
        "target_layer must be the friendly name of a node (str) or, for detection, a list of "
        f"the class-score heads' names; got {target_layer!r:.80} ({type(target_layer).__name__})"
    )


@dataclass(frozen=True)
class Branch:
    """An XAI branch built on a working clone of the model.

    Attributes
    ----------
    output
        The saliency output, float (before scaling).
    scale_axes
        The axes one map spans (min-max scaling is per map over them).
    target_name
        The node(s) the branch hooks, for the model's runtime info.
    """

    output: ov.Output
    scale_axes: list[int]
    target_name: str


class WhiteBoxMethod(MethodBase):
    """Base class of the white-box methods (the reference toolkit's ``WhiteBoxMethod``).

    Parameters
    ----------
    model
        The model (``openvino.Model`` or a path); never modified (the branch goes into a clone).
    preprocess_fn
        Raw data -> model input, for :meth:`generate_saliency_map`; identity by default.
    embed_scaling
        Min-max scale each map to uint8 [0, 255] inside the graph (``None`` means ``False``).
    device_name
        Any OpenVINO device string.
    postprocess_fn
        Optional: raw outputs -> class scores ``(1, num_classes)``. With it, explanations carry
        predictions and the class scores (and ``targets`` may be a function of them).
    progress
        Unused by white-box methods (one inference per image); accepted for uniformity.
    **engine
        :class:`~salvo.inference.EngineConfig` fields over :attr:`engine_defaults`.
    """

    #: A call: one image per request, the LATENCY hint, several requests so threads overlap.
    engine_defaults: ClassVar[dict[str, Any]] = {
        "batch_size": 1, "num_requests": 4, "performance_hint": "LATENCY"}
    #: A stream of images: several in flight on a THROUGHPUT engine. Measured on a 2-core CPU
    #: with EfficientNet-Lite0's ReciproCAM model (f32): batch 1 with several requests in
    #: flight 58-86 images/s, one request at a time 41-46, batch 8 44-49: images are kept in
    #: flight, not batched.
    stream_engine_defaults: ClassVar[dict[str, Any]] = {
        "batch_size": 1, "num_requests": None, "performance_hint": "THROUGHPUT"}

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        *,
        postprocess_fn: Callable[[OVDict], Any] | None = None,
        progress: bool | None = None,
        **engine: Any,
    ) -> None:
        super().__init__(None, preprocess_fn, device_name, progress=progress, **engine)
        if model is None or not isinstance(model, (ov.Model, str, os.PathLike)):
            raise ValueError(
                f"{type(model)} is not supported: model must be an openvino.Model or a path to "
                "a model file"
            )
        self._model_ori = read_model(model)
        # None as the reference toolkit's signature allows it: no scaling
        self.embed_scaling = embed_scaling is not None and check_flag(embed_scaling,
                                                                      "embed_scaling")
        if postprocess_fn is not None and not callable(postprocess_fn):
            raise TypeError(
                f"postprocess_fn must be callable, got {type(postprocess_fn).__name__}"
            )
        self.postprocess_fn = postprocess_fn
        self.build_params: MethodParams = self.build_params_class()
        self.target_name: str | None = None

    @property
    def model_ori(self) -> ov.Model:
        """The user's model (never modified)."""
        return self._model_ori

    # ------------------------------------------------------------------ the XAI model
    def build_branch(self, model: ov.Model, index: GraphIndex) -> Branch:
        """Build the method's XAI branch on ``model`` (a working clone, indexed by ``index``).

        Raises
        ------
        XAIInsertionError
            The branch cannot be built on this model.
        """
        raise NotImplementedError

    def generate_xai_branch(self) -> ov.Node:
        """The reference toolkit's hook: build the branch on a fresh clone of the model and
        return its (unscaled) output node. :meth:`prepare_model` does the whole insertion."""
        work = self._model_ori.clone()
        return self.build_branch(work, GraphIndex(work)).output.get_node()

    def prepare_model(self, load_model: bool = True) -> ov.Model:
        """Insert the XAI branch into a clone of the model (once) and, with ``load_model``,
        compile it; return the XAI model. A model that already has a ``saliency_map`` output is
        used as it is.

        Raises
        ------
        XAIInsertionError
            The branch could not be inserted (no target found, a head that cannot take the
            perturbed batch, ...).
        """
        if self._model is None:
            if has_xai(self._model_ori):
                logger.info("The model already has a saliency_map output; using it as it is.")
                self._model = self._model_ori
            else:
                self._model = self._insert()
        if load_model:
            self.engine_for(None)
        return self._model

    def _insert(self) -> ov.Model:
        work = self._model_ori.clone()
        try:
            branch = self.build_branch(work, GraphIndex(work))
            saliency = branch.output
            if self.embed_scaling:
                saliency = scale_maps(saliency, branch.scale_axes)
            model = build_model(work, saliency, {"method": self.method.value,
                                                 "target_layer": branch.target_name})
        except (XAIInsertionError, ValueError, TypeError):
            raise
        except Exception as exc:  # OpenVINO errors while building nodes
            raise XAIInsertionError(f"Insertion of the XAI branch failed: {exc}") from exc
        self.target_name = branch.target_name
        logger.info("Insertion of the XAI branch into the model was successful.")
        return model

    def _engine_model(self) -> ov.Model:
        return self.prepare_model(load_model=False)

    def _classification_target(self, model: ov.Model, index: GraphIndex, target_layer: str | None,
                               kind: str, num_blocks: int = 1) -> TargetLayer:
        """The target layer: the named node, or one found automatically (``kind`` ``"cnn"`` or
        ``"transformer"``)."""
        if target_layer is not None:
            if not isinstance(target_layer, str):
                raise TypeError(
                    f"target_layer must be a str for {self.method.value}, got "
                    f"{type(target_layer).__name__}"
                )
            position, node, port = find_node(model, target_layer, index)
            return TargetLayer(kind, node.get_friendly_name(), position, port,
                               tuple(static_dims(node.get_output_partial_shape(port))),
                               "provided")
        if kind == "transformer":
            return find_vit_target(model, index, num_blocks)
        return find_cnn_target(model, index)

    # ------------------------------------------------------------------ explaining
    def _saliency_index(self, ports: Sequence[ov.Output]) -> int:
        return next(i for i, p in enumerate(ports) if SALIENCY_MAP_OUTPUT_NAME in p.get_names())

    def result_of(self, arrays: Sequence[np.ndarray], ports: Sequence[ov.Output], item: int,
                  targets: TargetsSpec, label_names: Sequence[str] | None) -> MethodResult:
        """The :class:`~salvo.methods.base.MethodResult` of batch item ``item`` of the XAI
        model's outputs ``arrays`` (one per port): the maps of ``targets``, and predictions when
        the method has a ``postprocess_fn``.

        Raises
        ------
        ValueError
            A non-finite output (the map would be meaningless), or targets that do not resolve.
        """
        check_finite_outputs(list(arrays), list(ports), item)
        index = self._saliency_index(ports)
        smap = np.asarray(arrays[index][item])
        if smap.ndim == 2:  # one class-agnostic map per image
            return MethodResult(maps=np.array(smap[None]), targets=[PER_IMAGE_MAP],
                                num_inferences=1)
        num_classes = smap.shape[0]
        scores = self._scores(arrays, ports, item, index, num_classes)
        keys = self.resolve_target_spec(targets, scores, num_classes, label_names)
        predictions: dict[Any, Prediction] = {}
        if scores is not None:
            predictions = {k: Prediction(label=k, score=float(scores[k]), bounding_box=None)
                           for k in keys}
        return MethodResult(maps=np.array(smap[keys]), targets=list(keys),
                            predictions=predictions, num_inferences=1, scores=scores)

    def _scores(self, arrays: Sequence[np.ndarray], ports: Sequence[ov.Output], item: int,
                skip: int, num_classes: int) -> np.ndarray | None:
        """Class scores of item ``item`` from ``postprocess_fn`` (classification only), or
        ``None``; a failing ``postprocess_fn`` costs the predictions, with a warning."""
        if self.postprocess_fn is None or Task.CLASSIFICATION not in self.tasks:
            return None
        raw = OVDict({port: arr[item: item + 1] for i, (port, arr) in
                      enumerate(zip(ports, arrays)) if i != skip})
        try:
            scores = np.asarray(self.postprocess_fn(raw), np.float32).reshape(-1)
        except Exception as exc:
            warnings.warn(
                f"postprocess_fn failed on the white-box model's outputs "
                f"({type(exc).__name__}: {exc}); the explanation has no predictions",
                PostprocessWarning, stacklevel=4,
            )
            return None
        if scores.size != num_classes:
            warnings.warn(
                f"postprocess_fn returned {scores.size} scores for a model with {num_classes} "
                "class maps; the explanation has no predictions", PostprocessWarning,
                stacklevel=4,
            )
            return None
        return scores

    def explain(
        self,
        x: np.ndarray,
        targets: TargetsSpec = -1,
        params: MethodParams | None = None,
        *,
        label_names: Sequence[str] | None = None,
        progress: bool | None = None,
        engine: EngineConfig | None = None,
        **overrides: Any,
    ) -> MethodResult:
        """Explain the preprocessed input ``x`` ``(1, …)``: one inference of the XAI model
        (see :meth:`~salvo.methods.base.MethodBase.explain`; white-box methods have no
        per-call parameters)."""
        self.resolve_params(params, **overrides)
        runner = self.engine_for(engine)
        arrays = runner.infer_items(np.asarray(x))
        return self.result_of(arrays, list(runner.compiled.outputs), 0, targets, label_names)

    def explain_stream(
        self,
        jobs: Iterable[StreamJob],
        params: MethodParams | None,
        on_result: Callable[[StreamJob, MethodResult | Exception], None],
        *,
        label_names: Sequence[str] | None = None,
        engine: EngineConfig | None = None,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[float], None] | None = None,
        num_jobs: int | None = None,
    ) -> int:
        """Explain a stream of inputs with several images in flight on a THROUGHPUT engine
        (:attr:`stream_engine_defaults`); each result is what :meth:`explain` gives."""
        self.resolve_params(params)
        runner = self.engine_for(engine, stream=True)
        ports = list(runner.compiled.outputs)
        source = iter(jobs)
        state = {"exhausted": False, "pending": 0, "done": 0}
        in_flight: dict[int, list[tuple[int, StreamJob, float]]] = {}

        def fill(out: np.ndarray, start: int, stop: int) -> None:
            slots = []
            for p in range(stop - start):
                job = next(source, None) if not state["exhausted"] else None
                if job is None:
                    state["exhausted"] = True
                    break  # the rest of the batch is padding
                out[p] = np.asarray(job.x)[0]
                slots.append((p, job, time.perf_counter()))
            in_flight[start] = slots
            state["pending"] += len(slots)

        def consume(start: int, stop: int, outputs: OVDict) -> bool:
            slots = in_flight.pop(start)
            arrays = list(outputs.values())
            for p, job, t0 in slots:
                try:
                    result = self.result_of(arrays, ports, p, job.targets, label_names)
                except ValueError as exc:  # this image only
                    on_result(job, exc)
                else:
                    result.extra["seconds"] = time.perf_counter() - t0
                    result.extra["packed"] = True
                    on_result(job, result)
                state["done"] += 1
                if progress is not None:
                    progress(1.0)
            state["pending"] -= len(slots)
            if should_stop is not None and should_stop():
                return True
            return bool(state["exhausted"] and state["pending"] == 0)

        total = (1 << 62) if num_jobs is None else int(num_jobs)
        if total:
            runner.run(total, fill, consume)
        return int(state["done"])

    def generate_saliency_map(self, data: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        """The reference toolkit's call: the ``saliency_map`` output of the XAI model for raw
        ``data`` (``preprocess_fn`` applied): ``(1, num_classes, h, w)`` (``(1, h, w)`` for a
        class-agnostic method), uint8 with ``embed_scaling``."""
        return np.asarray(self.model_forward(data)[SALIENCY_MAP_OUTPUT_NAME])
