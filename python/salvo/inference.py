"""The inference engine: the one place in salvo that runs OpenVINO inference.

A model is compiled once per device, reshaped to a batch size when it allows it, and fed through
a ring of asynchronous infer requests, several in flight. A *producer* writes each batch straight
into the free request's input tensor memory; a *consumer* receives each finished batch's outputs,
in submission order, with the range of items it held. At most ``num_requests``
batches exist at once, so memory does not depend on the number of items.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import openvino as ov
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._checks import check_int, is_integer, is_number

logger = logging.getLogger(__name__)

#: File suffixes :func:`openvino.Core.read_model` understands.
MODEL_SUFFIXES = (".xml", ".onnx", ".tflite", ".pb", ".pdmodel")

FillFn = Callable[[np.ndarray, int, int], None]
"""``fill(out, start, stop)``: write items ``start..stop-1`` into ``out[: stop - start]``."""

ConsumeFn = Callable[[int, int, OVDict], "bool | None"]
"""``consume(start, stop, outputs)``: outputs of items ``start..stop-1`` (leading dim stop-start).
Returning ``True`` stops the run: no further batch is submitted or delivered."""

_PRECISIONS = {"f32": "f32", "fp32": "f32", "f16": "f16", "fp16": "f16", "bf16": "bf16"}
_HINTS = ("THROUGHPUT", "LATENCY", "CUMULATIVE_THROUGHPUT")


class EngineTimeoutError(TimeoutError):
    """An infer request did not complete within the engine's timeout."""


_core_lock = threading.Lock()
_core: ov.Core | None = None


def get_core() -> ov.Core:
    """The process-wide :class:`openvino.Core` salvo uses (created on first use)."""
    global _core
    with _core_lock:
        if _core is None:
            _core = ov.Core()
        return _core


_OV_LOCATION = re.compile(
    r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:?|\[ ?(GENERAL_ERROR|NOT_FOUND"
    r"|NOT_IMPLEMENTED) ?\])\s*$"
)


def openvino_cause(exc: BaseException) -> str:
    """The part of an OpenVINO error that says what is wrong, on one line.

    OpenVINO's messages start with source locations (``Exception from src/…/core.cpp:84:``,
    ``Check '…' failed at …:887:``) and put the cause on a later line (``Empty weights data in
    bin file or bin file cannot be found!``); a caller that shows only the first line would show
    only a location. This keeps the other lines, joined with spaces.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = [line for line in lines if not _OV_LOCATION.match(line)]
    text = " ".join(cause or lines) or type(exc).__name__
    return text if len(text) <= 600 else text[:597] + "..."


def read_model(model: ov.Model | str | os.PathLike[str], *, argument: str = "model") -> ov.Model:
    """Return ``model`` itself, or read it from a path with :meth:`openvino.Core.read_model`.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        The path is not a model OpenVINO can read.
    TypeError
        ``model`` is neither an ``openvino.Model`` nor a path.
    """
    if isinstance(model, ov.Model):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"{argument} must be an openvino.Model or a path to a model file, "
            f"got {type(model).__name__}"
        )
    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(f"{argument}: no such file: '{path}'")
    if path.is_dir():
        raise ValueError(f"{argument}: '{path}' is a folder, not a model file")
    try:
        return get_core().read_model(str(path))
    except Exception as exc:
        suffix = path.suffix.lower()
        hint = (f" (model files: {', '.join(MODEL_SUFFIXES)})" if suffix not in MODEL_SUFFIXES
                else f" (the .bin is read from '{path.with_suffix('.bin')}')" if suffix == ".xml"
                else "")
        raise ValueError(
            f"{argument}: '{path}' is not a model OpenVINO can read: {openvino_cause(exc)}{hint}"
        ) from exc


def available_devices() -> list[str]:
    """``Core().available_devices``."""
    return list(get_core().available_devices)


_VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")


def check_device(device_name: str) -> str:
    """Check that every physical device named in ``device_name`` is present.

    Accepts what OpenVINO accepts: ``CPU``, ``GPU``, ``GPU.1``, ``NPU``, ``AUTO``,
    ``AUTO:GPU,CPU``, ``MULTI:…``, ``HETERO:…``, ``BATCH:GPU(4)``.

    Raises
    ------
    ValueError
        A named device is not present; the message lists ``Core().available_devices``.
    """
    if not isinstance(device_name, str) or not device_name.strip():
        raise ValueError(f"device_name must be a non-empty string, got {device_name!r}")
    available = available_devices()
    name = device_name.strip()
    head, _, rest = name.partition(":")
    if head.upper() in _VIRTUAL_DEVICES:
        physical = [d.split("(")[0].strip() for d in rest.split(",") if d.strip()]
    else:
        physical = [name]
    if not physical and not available:
        raise ValueError(f"device_name {device_name!r}: no device is available")
    for dev in physical:
        if dev.startswith("-"):  # AUTO:-CPU excludes a device
            continue
        present = dev in available or any(a.split(".")[0] == dev for a in available)
        if not present:
            raise ValueError(
                f"device_name {device_name!r}: device {dev!r} is not available on this machine; "
                f"available devices: {available}"
            )
    return name


def is_cpu_only(device_name: str) -> bool:
    """Whether every physical device named in ``device_name`` is the CPU."""
    head, _, rest = device_name.partition(":")
    names = [d.split("(")[0].strip() for d in rest.split(",")] if head in _VIRTUAL_DEVICES else [head]
    names = [n for n in names if n and not n.startswith("-")]
    return bool(names) and all(n.split(".")[0] == "CPU" for n in names)


def with_input_shape(model: ov.Model, input_shape: Any) -> tuple[ov.Model, tuple[int, ...]]:
    """A copy of ``model`` whose input has the per-item shape ``input_shape`` (batch kept).

    Parameters
    ----------
    model
        A model with one input of static rank (not modified).
    input_shape
        The per-item input shape without the batch dimension, e.g. ``(3, 224, 224)``: ints
        (NumPy integers too) >= 1; dimensions the model fixes must match.

    Returns
    -------
    (openvino.Model, tuple of int)
        ``model`` itself when its input is already static apart from the batch (and fits),
        else a reshaped clone; and the per-item shape.

    Raises
    ------
    ValueError
        Not one input, a dynamic rank, a shape of the wrong length, a dimension that differs
        from one the model fixes, or a shape the model cannot take (each naming the value).
    """
    port = model.inputs[0] if len(model.inputs) == 1 else None
    if port is None:
        raise ValueError(
            f"model has {len(model.inputs)} inputs; salvo explains models with one image input"
        )
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Iterable):
        raise ValueError(
            f"input_shape must be the per-item input shape without the batch dimension (a "
            f"tuple of ints such as (3, 224, 224)), got {input_shape!r}"
        )
    item = tuple(check_int(d, "input_shape dimensions", minimum=1) for d in input_shape)
    pshape = port.get_partial_shape()
    if pshape.rank.is_dynamic:
        raise ValueError("the model input has a dynamic rank; give it a static rank first")
    rank = pshape.rank.get_length()
    if len(item) != rank - 1:
        raise ValueError(
            f"input_shape must have {rank - 1} dimensions (the model input is {pshape}; "
            f"without the batch dimension), got {tuple(input_shape)!r}"
        )
    for i, (dim, want) in enumerate(zip(list(pshape)[1:], item)):
        if dim.is_static and dim.get_length() != want:
            raise ValueError(
                f"input_shape {item} does not fit the model input {pshape}: dimension {i + 1} "
                f"is fixed to {dim.get_length()}"
            )
    if all(d.is_static for d in list(pshape)[1:]):
        return model, item
    copy = model.clone()
    try:
        copy.reshape({copy.inputs[0]: ov.PartialShape([pshape[0], *item])})
    except Exception as exc:
        raise ValueError(
            f"the model cannot take input_shape {item}: {openvino_cause(exc)}"
        ) from exc
    return copy, item


def has_dynamic_item_shape(model: ov.Model) -> bool:
    """Whether the (first) input of ``model`` has a dynamic dimension besides the batch (as
    ``openvino.convert_model`` gives a PyTorch model: ``[?,3,?,?]``) or a dynamic rank."""
    if not model.inputs:
        return False
    pshape = model.inputs[0].get_partial_shape()
    return pshape.rank.is_dynamic or any(d.is_dynamic for d in list(pshape)[1:])


@dataclass(frozen=True)
class InputInfo:
    """The model input the engine feeds.

    Attributes
    ----------
    shape
        Static per-batch shape (batch dim included, equal to the engine's batch size).
    dtype
        NumPy dtype of the input tensor (``uint8``, ``float32``, …).
    layout
        ``"NCHW"``, ``"NHWC"`` or ``""`` when it is not an image.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    layout: str

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the image input."""
        if self.layout == "NCHW":
            return self.shape[2], self.shape[3]
        if self.layout == "NHWC":
            return self.shape[1], self.shape[2]
        raise ValueError(f"input {self.name!r} with shape {self.shape} is not an image")

    @property
    def channels(self) -> int:
        """Number of colour channels of the image input."""
        return self.shape[1] if self.layout == "NCHW" else self.shape[-1]


def _guess_layout(port: ov.Output, shape: tuple[int, ...]) -> str:
    try:
        layout = ov.layout_helpers.get_layout(port)
        text = layout.to_string().strip("[]").replace(",", "")
        if text in ("NCHW", "NHWC"):
            return text
    except Exception:  # no layout set
        pass
    if len(shape) != 4:
        return ""
    if shape[1] in (1, 3, 4) and shape[3] not in (1, 3, 4):
        return "NCHW"
    if shape[3] in (1, 3, 4):
        return "NHWC"
    return "NCHW"


@dataclass(frozen=True)
class EngineConfig:
    """How a method compiles and runs its model; ``None`` leaves a field to the method's default.

    Every salvo method takes these as keywords (constructor or call); an Explainer turns its
    keywords into one config at its boundary. ``inference_precision`` is accepted as another
    name for ``precision``.

    Attributes
    ----------
    batch_size
        Items per infer request (see :class:`InferenceEngine`).
    num_requests
        Infer requests in flight.
    precision
        ``"f32"``, ``"f16"``, ``"bf16"`` (OpenVINO's ``INFERENCE_PRECISION_HINT``), or ``None``
        for the device default.
    performance_hint
        ``"THROUGHPUT"``, ``"LATENCY"`` or ``"CUMULATIVE_THROUGHPUT"``.
    cache_dir
        OpenVINO's model cache folder.
    timeout
        Seconds to wait for one infer request.
    """

    batch_size: int | None = None
    num_requests: int | None = None
    precision: str | None = None
    performance_hint: str | None = None
    cache_dir: str | None = None
    timeout: float | None = None

    #: Other names accepted for a field.
    ALIASES: ClassVar[Mapping[str, str]] = {"inference_precision": "precision"}

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if self.batch_size is not None:
            put("batch_size", check_int(self.batch_size, "batch_size", minimum=1))
        if self.num_requests is not None:
            put("num_requests", check_int(self.num_requests, "num_requests", minimum=1))
        if self.precision is not None:
            if not isinstance(self.precision, str) or self.precision.lower() not in _PRECISIONS:
                raise ValueError(
                    f"precision must be one of {sorted(set(_PRECISIONS.values()))} or None, "
                    f"got {self.precision!r}"
                )
            put("precision", _PRECISIONS[self.precision.lower()])
        if self.performance_hint is not None and self.performance_hint not in _HINTS:
            raise ValueError(
                f"performance_hint must be one of {_HINTS}, got {self.performance_hint!r}"
            )
        if self.cache_dir is not None:
            if not isinstance(self.cache_dir, (str, os.PathLike)):
                raise TypeError(f"cache_dir must be a path, got {self.cache_dir!r}")
            put("cache_dir", os.fspath(self.cache_dir))
        if self.timeout is not None:
            if not (is_number(self.timeout) and 0 < float(self.timeout) < math.inf):
                raise ValueError(
                    f"timeout must be a positive number of seconds, got {self.timeout!r}"
                )
            put("timeout", float(self.timeout))

    @classmethod
    def keywords(cls) -> frozenset[str]:
        """Every keyword :meth:`from_keywords` understands (fields and aliases)."""
        return frozenset(f.name for f in fields(cls)) | frozenset(cls.ALIASES)

    @classmethod
    def from_keywords(cls, kwargs: Mapping[str, Any]) -> EngineConfig:
        """The config of the engine keywords in ``kwargs`` (other keys are ignored).

        Raises
        ------
        ValueError
            A field and its alias given with different values, or a bad value (naming it).
        """
        values: dict[str, Any] = {}
        for key, value in kwargs.items():
            name = cls.ALIASES.get(key, key)
            if name not in cls.__dataclass_fields__:
                continue
            if value is None:
                continue
            if name in values and values[name] != value:
                aliases = [k for k, v in cls.ALIASES.items() if v == name]
                raise ValueError(
                    f"{name} and {', '.join(aliases)} name the same setting; give one "
                    f"(got {values[name]!r} and {value!r})"
                )
            values[name] = value
        return cls(**values)

    def merged(self, other: EngineConfig | None) -> EngineConfig:
        """This config with the fields ``other`` sets (not ``None``) taken from ``other``."""
        if other is None:
            return self
        return replace(self, **{f.name: getattr(other, f.name) for f in fields(other)
                                if getattr(other, f.name) is not None})

    def with_defaults(self, **defaults: Any) -> EngineConfig:
        """This config with its ``None`` fields set from ``defaults``."""
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})

    def engine_kwargs(self) -> dict[str, Any]:
        """The keywords of :class:`InferenceEngine` this config sets."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


class InferenceEngine:
    """Compile a model once and stream batches through asynchronous infer requests.

    Parameters
    ----------
    model
        An ``openvino.Model`` or a path OpenVINO can read (.xml, .onnx, .tflite, .pb). It is not
        modified (the engine reshapes a clone).
    device_name
        Any OpenVINO device string. A device that is not present is a ``ValueError`` listing the
        available ones.
    batch_size
        Items per infer request. ``None``: on CPU chosen from the measured time of one image
        (``batch_steps``; by default 1 from 12 ms per image, 4 from 1 ms, 8 below),
        :attr:`DEFAULT_BATCH_SIZE` on other devices. If the model cannot be reshaped to
        it, the engine logs why and uses batch 1.
    num_requests
        Infer requests in flight. ``None``: on CPU twice the device's optimal number (two per
        stream, so a stream never waits for the host), elsewhere the optimal number plus one.
    performance_hint
        ``"THROUGHPUT"`` (default), ``"LATENCY"`` or ``"CUMULATIVE_THROUGHPUT"``.
    precision
        Inference precision hint: ``"f32"``, ``"f16"``, ``"bf16"``, or ``None`` for the device
        default (bf16 on CPUs that have it).
    num_streams
        OpenVINO's ``NUM_STREAMS``; ``None`` lets the hint decide.
    cache_dir
        Switches on OpenVINO's model cache there, so a second run skips compilation.
    config
        Further OpenVINO properties, applied last (they override the above).
    input_shape
        Per-item input shape (without batch) for a model with dynamic spatial dimensions.
    timeout
        Seconds to wait for one infer request before raising :class:`EngineTimeoutError`.
    batch_steps
        The automatic batch rule on CPU, ``((seconds, batch), ...)`` in decreasing seconds: the
        first step whose seconds the measured single-image time reaches gives the batch
        (default :attr:`AUTO_BATCH_STEPS`, tuned for streams of many independent images).
    """

    DEFAULT_BATCH_SIZE = 8

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        device_name: str = "CPU",
        *,
        batch_size: int | None = None,
        num_requests: int | None = None,
        performance_hint: str = "THROUGHPUT",
        precision: str | None = None,
        num_streams: int | str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        config: Mapping[str, Any] | None = None,
        input_shape: tuple[int, ...] | None = None,
        timeout: float = 120.0,
        batch_steps: tuple[tuple[float, int], ...] | None = None,
    ) -> None:
        source = read_model(model)
        self.device_name = check_device(device_name)
        if len(source.inputs) != 1:
            names = [p.get_any_name() if p.get_names() else str(p) for p in source.inputs]
            raise ValueError(
                f"model has {len(source.inputs)} inputs {names}; salvo explains models with one "
                "image input (wrap the others as constants first)"
            )
        cpu_only = is_cpu_only(self.device_name)
        auto_batch = batch_size is None and cpu_only
        if batch_size is None:
            batch_size = 1 if cpu_only else self.DEFAULT_BATCH_SIZE
        if not is_integer(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if num_requests is not None and (not is_integer(num_requests) or num_requests < 1):
            raise ValueError(f"num_requests must be a positive int or None, got {num_requests!r}")
        if performance_hint not in _HINTS:
            raise ValueError(f"performance_hint must be one of {_HINTS}, got {performance_hint!r}")
        if precision is not None and (not isinstance(precision, str)
                                      or precision.lower() not in _PRECISIONS):
            raise ValueError(
                f"precision must be one of {sorted(set(_PRECISIONS.values()))} or None, "
                f"got {precision!r}"
            )
        if not (is_number(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)

        self.model, self.batch_size = self._reshaped(source, int(batch_size), input_shape)
        port = self.model.inputs[0]
        shape = tuple(int(d) for d in port.get_shape())
        self.input = InputInfo(
            name=port.get_any_name() if port.get_names() else "input",
            shape=shape,
            dtype=np.dtype(port.get_element_type().to_dtype()),
            layout=_guess_layout(port, shape),
        )

        props: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint}
        if precision is not None:
            props["INFERENCE_PRECISION_HINT"] = _PRECISIONS[precision.lower()]
        if num_streams is not None:
            props["NUM_STREAMS"] = str(num_streams)
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            props["CACHE_DIR"] = str(cache_dir)
        if config:
            props.update(config)
        self.config = props
        t0 = time.perf_counter()
        try:
            self.compiled = get_core().compile_model(self.model, self.device_name, props)
        except Exception as exc:
            raise RuntimeError(
                f"compiling the model for device {self.device_name!r} failed: "
                f"{openvino_cause(exc)} (properties {props})"
            ) from exc
        if auto_batch:
            chosen = self._auto_batch(batch_steps or self.AUTO_BATCH_STEPS)
            if chosen > 1:
                model, chosen = self._reshaped(source, chosen, input_shape)
                if chosen > 1:
                    self.model, self.batch_size = model, chosen
                    shape = tuple(int(d) for d in self.model.inputs[0].get_shape())
                    self.input = InputInfo(self.input.name, shape, self.input.dtype,
                                           self.input.layout)
                    self.compiled = get_core().compile_model(self.model, self.device_name, props)
        self.compile_seconds = time.perf_counter() - t0
        if num_requests is None:
            try:
                optimal = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            except Exception:
                optimal = 2
            num_requests = 2 * max(1, optimal) if cpu_only else max(1, optimal) + 1
        self.num_requests = int(num_requests)
        logger.debug(
            "compiled for %s in %.2fs: batch %d, %d requests, %s",
            self.device_name, self.compile_seconds, self.batch_size, self.num_requests, props,
        )
        self._requests: list[ov.InferRequest] | None = None
        self._idle: deque[int] = deque()
        self._waiters: list[object] = []
        self._active = 0
        self._pool_lock = threading.Lock()
        self._pool_free = threading.Condition(self._pool_lock)

    # ------------------------------------------------------------------ setup
    #: Auto batch on CPU: (seconds of one single-image inference on one stream at least, batch).
    AUTO_BATCH_STEPS = ((12e-3, 1), (1e-3, 4), (0.0, 8))

    def _auto_batch(self, steps: tuple[tuple[float, int], ...]) -> int:
        """Batch size for a CPU engine from the measured time of one single-image inference on
        one stream: slow images run one per request (the streams parallelise them, and batches
        gain nothing); cheaper ones need batches to amortise the host's per-request work.
        Measured on a quiet 2-core machine, RISE one target, EfficientNet-Lite0 bf16 (time to
        1000 masks over the best plain-OpenVINO time, median of 5 interleaved rounds): 224 px
        (3.3 ms) batch 4: 1.13, batch 1: 1.13-1.34, batch 16: 1.35; 128 px (1.6 ms) batch 4:
        1.00, batch 8: 1.01, batch 1: 1.29. Under heavy contention from other processes
        batch 1 degrades least; pass ``batch_size`` there."""
        try:
            request = self.compiled.create_infer_request()
            request.get_input_tensor(0).data[:] = 0
            request.infer()
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                request.infer()
                best = min(best, time.perf_counter() - t0)
        except Exception as exc:  # keep batch 1
            logger.debug("auto batch: timing failed (%s); batch 1", exc)
            return 1
        for threshold, batch in steps:
            if best >= threshold:
                logger.debug("auto batch: one image takes %.2f ms; batch %d", best * 1e3, batch)
                return batch
        return 1

    @staticmethod
    def _reshaped(
        source: ov.Model, batch_size: int, input_shape: tuple[int, ...] | None
    ) -> tuple[ov.Model, int]:
        port = source.inputs[0]
        pshape = port.get_partial_shape()
        if pshape.rank.is_dynamic:
            raise ValueError("the model input has a dynamic rank; give it a static rank first")
        rank = pshape.rank.get_length()
        if input_shape is not None:
            item = tuple(int(d) for d in input_shape)
            if len(item) != rank - 1:
                raise ValueError(
                    f"input_shape must have {rank - 1} dims (no batch), got {input_shape!r}"
                )
        else:
            item_dims = list(pshape)[1:]
            if any(d.is_dynamic for d in item_dims):
                raise ValueError(
                    f"the model input has dynamic dimensions {pshape}; pass input_shape (the "
                    "per-item shape without the batch dimension, e.g. Explainer(..., "
                    "input_shape=(3, 224, 224)) or InferenceEngine(..., input_shape=...)), or "
                    "reshape the model to static dimensions first (model.reshape(...))"
                )
            item = tuple(d.get_length() for d in item_dims)
        model = source.clone()
        first = pshape[0]
        if first.is_static and first.get_length() == batch_size and input_shape is None:
            return model, batch_size
        try:
            model.reshape({model.inputs[0]: ov.PartialShape([batch_size, *item])})
            for out in model.outputs:
                oshape = out.get_partial_shape()
                if oshape.rank.is_static and oshape.rank.get_length() >= 1:
                    lead = oshape[0]
                    if lead.is_static and lead.get_length() != batch_size:
                        raise ValueError(f"output {out.get_any_name()} has leading dim {lead}")
            return model, batch_size
        except Exception as exc:
            if batch_size == 1:
                raise ValueError(f"the model cannot be given input shape {[1, *item]}: {exc}")
            logger.info(
                "the model cannot be reshaped to batch %d (%s); using batch 1",
                batch_size, str(exc).splitlines()[0],
            )
            model = source.clone()
            if not (first.is_static and first.get_length() == 1) or input_shape is not None:
                model.reshape({model.inputs[0]: ov.PartialShape([1, *item])})
            return model, 1

    @property
    def requests(self) -> list[ov.InferRequest]:
        """The engine's ``num_requests`` infer requests (created on first use)."""
        with self._pool_lock:
            if self._requests is None:
                self._requests = [self.compiled.create_infer_request()
                                  for _ in range(self.num_requests)]
                self._idle = deque(range(self.num_requests))
            return self._requests

    # ------------------------------------------------------------------ the request pool
    # Every run draws requests from one pool, so several threads can run the same engine at
    # once and share the device: a request belongs to one run from its fill until its outputs
    # were delivered, then goes back to the pool. A run holds at most its fair share of the
    # pool (``num_requests`` divided by the runs active at that moment, at least one) so a
    # newcomer gets requests as soon as the runs already going deliver their oldest batch.

    def _share(self) -> int:
        return max(1, self.num_requests // max(1, self._active))

    def _try_acquire(self) -> int | None:
        with self._pool_lock:
            if self._idle and not self._waiters:
                return self._idle.popleft()
            return None

    def _acquire(self, deadline: float) -> int:
        """Wait for an idle request (first come, first served), GIL released while waiting."""
        with self._pool_lock:
            ticket = object()
            self._waiters.append(ticket)
            try:
                while not (self._idle and self._waiters[0] is ticket):
                    if time.monotonic() >= deadline:
                        raise EngineTimeoutError(
                            f"no infer request of the engine on {self.device_name!r} became free "
                            f"within {self.timeout:g} s (set timeout= to wait longer)"
                        )
                    self._pool_free.wait(0.1)
                return self._idle.popleft()
            finally:
                self._waiters.remove(ticket)
                self._pool_free.notify_all()

    def _release(self, request_id: int) -> None:
        with self._pool_lock:
            self._idle.append(request_id)
            self._pool_free.notify_all()

    def _replace(self, request_id: int) -> None:
        """Put a fresh request in the place of one that is still running after a stop (it is
        cancelled and dropped; the pool never hands out a busy request)."""
        with self._pool_lock:
            old = self._requests[request_id]
            try:
                old.cancel()
            except Exception as exc:  # already finished, or a device without cancel
                logger.debug("cancelling a stuck infer request: %s", exc)
            self._requests[request_id] = self.compiled.create_infer_request()
            self._idle.append(request_id)
            self._pool_free.notify_all()

    @property
    def active_runs(self) -> int:
        """Runs (calls of :meth:`run`) in progress on this engine right now, from any thread."""
        return self._active

    # ------------------------------------------------------------------ running
    def run(
        self,
        num_items: int,
        fill: FillFn,
        consume: ConsumeFn,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Run ``num_items`` items through the model.

        Safe to call from several threads at once: the runs share the engine's infer requests
        (each run holds its fair share of them while others are active) and each run's
        ``fill``/``consume`` are called on its own thread only, in its own submission order.

        Parameters
        ----------
        num_items
            How many items (masked images, …) to infer.
        fill
            ``fill(out, start, stop)`` writes items ``start..stop-1`` into ``out[: stop-start]``,
            a NumPy view of the idle request's input tensor (dtype and layout of the model input;
            do not keep a reference to it).
        consume
            ``consume(start, stop, outputs)`` receives the outputs of those items, an ``OVDict``
            whose arrays have leading dimension ``stop - start`` (copies the consumer may keep).
            Batches are delivered in submission order, whatever order the requests
            complete in. If it returns ``True`` the run stops early: nothing more is
            submitted, and batches still in flight are waited for and dropped.
        progress
            Called with the number of items just consumed.

        Returns
        -------
        int
            Items submitted to the device (``num_items`` unless the consumer stopped the run).

        Raises
        ------
        EngineTimeoutError
            A request did not complete (or none became free) within ``timeout`` seconds.
        Exception
            Whatever ``fill``, ``consume`` or the inference raised, with its traceback.
        """
        if num_items < 0:
            raise ValueError(f"num_items must be >= 0, got {num_items}")
        if num_items == 0:
            return 0
        # No Python completion callback (as AsyncInferQueue.set_callback would need): such a
        # callback takes the GIL on OpenVINO's own thread, so a stream stalls whenever the host
        # is running Python. Instead the host waits on its oldest request (GIL released),
        # consumes it and gives it back to the pool, while its other requests stay queued on the
        # device. Delivery is in submission order by construction, and a request is never
        # refilled before its outputs were delivered.
        requests = self.requests
        ports = list(self.compiled.outputs)
        batch = self.batch_size
        num_batches = -(-num_items // batch)
        pending: deque[tuple[int, int, int]] = deque()  # (request id, start, stop), oldest first
        submitted = 0
        with self._pool_lock:
            self._active += 1
        try:
            stopped = False
            for b in range(num_batches):
                request_id = None
                while request_id is None:
                    if pending and len(pending) >= self._share():
                        stopped = self._deliver(pending, ports, consume, progress)
                        if stopped:
                            break
                        continue
                    request_id = self._try_acquire()
                    if request_id is None:
                        if pending:
                            stopped = self._deliver(pending, ports, consume, progress)
                            if stopped:
                                break
                        else:
                            request_id = self._acquire(time.monotonic() + self.timeout)
                if stopped:
                    break
                start = b * batch
                stop = min(num_items, start + batch)
                request = requests[request_id]
                try:
                    fill(request.get_input_tensor(0).data, start, stop)
                    request.start_async()
                except BaseException:
                    self._release(request_id)
                    raise
                pending.append((request_id, start, stop))
                submitted = stop
            else:
                while pending:
                    if self._deliver(pending, ports, consume, progress):
                        break
            if pending:  # the consumer stopped the run: let the rest finish, drop it
                self._drain(pending)
            return submitted
        except BaseException:
            self._drain(pending)
            raise
        finally:
            with self._pool_lock:
                self._active -= 1
                self._pool_free.notify_all()

    def _wait(self, request_id: int) -> None:
        """Wait for one request (GIL released), in short slices so Ctrl-C stays responsive."""
        request = self._requests[request_id]
        deadline = time.monotonic() + self.timeout
        while not request.wait_for(100):
            if time.monotonic() >= deadline:
                raise EngineTimeoutError(
                    f"an infer request on {self.device_name!r} did not complete within "
                    f"{self.timeout:g} s (set timeout= to wait longer)"
                )

    def _deliver(self, pending: deque[tuple[int, int, int]], ports: list[Any],
                 consume: ConsumeFn, progress: Callable[[int], None] | None) -> bool:
        """Wait for the oldest request, hand its outputs to ``consume``; True if it stops."""
        request_id, start, stop = pending[0]
        self._wait(request_id)
        pending.popleft()
        request = self._requests[request_id]
        n = stop - start
        try:
            outputs = OVDict(
                {port: np.array(request.get_output_tensor(i).data[:n], copy=True)
                 for i, port in enumerate(ports)}
            )
        finally:
            self._release(request_id)
        stopped = bool(consume(start, stop, outputs))
        if progress is not None:
            progress(n)
        return stopped

    def _drain(self, pending: deque[tuple[int, int, int]]) -> None:
        """After a stop, a failure or Ctrl-C: let this run's requests in flight finish
        (bounded), drop their results, and give the requests back to the pool."""
        deadline = time.monotonic() + min(self.timeout, 10.0)
        while pending:
            request_id = pending.popleft()[0]
            request = self._requests[request_id]
            try:
                while not request.wait_for(50):
                    if time.monotonic() >= deadline:
                        logger.debug("an infer request is still running after a stop; "
                                     "replacing it")
                        self._replace(request_id)
                        break
                else:
                    self._release(request_id)
            except Exception as exc:  # a failed request: its error is not the one to report
                logger.debug("dropping a failed request after a stop: %s", exc)
                self._release(request_id)

    def infer_items(self, items: np.ndarray, *, progress: Callable[[int], None] | None = None
                    ) -> list[np.ndarray]:
        """Infer a stack of ready-made inputs ``(N, *item_shape)``; return each output stacked.

        A convenience over :meth:`run` for small numbers of inputs.
        """
        items = np.asarray(items)
        expected = self.input.shape[1:]
        if items.ndim != len(self.input.shape) or tuple(items.shape[1:]) != expected:
            raise ValueError(
                f"items must have shape (N, {', '.join(map(str, expected))}) to match the model "
                f"input {self.input.name!r}, got {items.shape}"
            )
        outs: list[list[np.ndarray]] = [[] for _ in self.compiled.outputs]

        def fill(out: np.ndarray, start: int, stop: int) -> None:
            out[: stop - start] = items[start:stop]

        def consume(start: int, stop: int, outputs: OVDict) -> None:
            for i, arr in enumerate(outputs.values()):
                outs[i].append(np.array(arr, copy=True))

        self.run(len(items), fill, consume, progress=progress)
        return [np.concatenate(o, axis=0) for o in outs]

    def __repr__(self) -> str:
        return (
            f"InferenceEngine(device={self.device_name!r}, batch_size={self.batch_size}, "
            f"num_requests={self.num_requests}, input={self.input.shape} {self.input.dtype} "
            f"{self.input.layout})"
        )
