"""Explaining many images: :meth:`Explainer.explain_many` and the engine behind ``salvo explain``.

A black-box method that can run several images in one engine run (RISE:
:meth:`salvo.methods.blackbox.rise.RISE.run_many`) gets the work of all images as one stream of
inferences, so the last masks of one image and the first of the next share a batch and the device
never waits for the host between images. Each image's map stays bit-identical to explaining it
alone. A white-box method keeps several images in flight on an asynchronous engine (one
inference each; batching images measured slower on CPU, see :data:`_WHITEBOX_ENGINE_DEFAULTS`).
Other methods (AISE, D-RISE, …) run image by image through the Explainer.

The explanation work runs in one worker thread; results come back to the caller's thread in input
order (a small reorder buffer), where they are visualised, so decoding, saving and drawing overlap
with inference. Memory is bounded: at most the images in flight in the engine plus a few finished
ones are held at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from salvo._checks import check_flag, check_number, check_progress
from salvo.common import Task
from salvo.errors import IgnoredArgumentWarning
from salvo.explainer.explanation import Explanation
from salvo.targets import check_label_names, resolve_targets
from salvo.visualization import PER_IMAGE_MAP_KEY, process_saliency_maps

if TYPE_CHECKING:
    from salvo.explainer.explainer import Explainer

logger = logging.getLogger(__name__)

__all__ = ["BulkJob", "BulkResult", "explain_many", "explain_stream", "top_k"]

#: Keyword arguments of an Explainer call that only concern the visualisation.
VIS_KEYS = frozenset(
    {"label_names", "output_size", "scaling", "resize", "colormap", "overlay", "overlay_weight",
     "overlay_prediction"}
)
_JOIN_SECONDS = 15.0
_POLL_SECONDS = 0.1

TargetsSpec = Any
"""An int, a label name, a list of either, ``-1``/``None`` (all), or a function of the unmasked
class scores ``(num_classes,) float32`` returning one of those."""


# ------------------------------------------------------------------------------------ targets


def top_k(k: int) -> Callable[[np.ndarray], list[int]]:
    """A ``targets`` function: the ``k`` classes with the highest unmasked score.

    Parameters
    ----------
    k
        How many classes, ``k >= 1`` (fewer if the model has fewer classes).

    Returns
    -------
    callable
        ``f(scores (num_classes,) float) -> list[int]``, best first (ties: lower index first).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    k = int(k)

    def targets(scores: np.ndarray) -> list[int]:
        scores = np.asarray(scores).reshape(-1)
        order = np.argsort(-scores, kind="stable")
        return [int(i) for i in order[:k]]

    targets.__name__ = f"top{k}"
    return targets


def _target_keys(targets: TargetsSpec, scores: np.ndarray | None, num_classes: int,
                 label_names: Sequence[str] | None) -> list[int]:
    if callable(targets):
        if scores is None:
            raise ValueError(
                "targets is a function of the class scores, but no scores are available "
                "(give the Explainer a postprocess_fn)"
            )
        targets = targets(scores)
    return resolve_targets(targets, num_classes, label_names)


# -------------------------------------------------------------------------------- data types


@dataclass
class BulkJob:
    """One image for :func:`explain_stream`.

    Attributes
    ----------
    load
        ``load() -> (data, original_input_image)``: ``data`` is what the Explainer's
        ``preprocess_fn`` takes; ``original_input_image`` (``(H, W, 3)`` uint8 RGB or ``None``)
        is what overlays are drawn on and what ``resize`` takes the size from. Called once, in
        the worker thread, when the image's turn comes (so files are decoded on the fly); an
        exception makes only this image fail.
    tag
        Anything; returned with the result.
    """

    load: Callable[[], tuple[Any, np.ndarray | None]]
    tag: Any = None


@dataclass
class BulkResult:
    """The outcome of one :class:`BulkJob`.

    Attributes
    ----------
    index
        Position of the job in the input (results come in this order).
    tag
        The job's tag.
    explanation
        The visualised :class:`Explanation`, or ``None`` when the image failed.
    raw
        ``{target: map}`` raw maps as the method produced them (kept with ``keep_raw``).
    scores
        Unmasked class scores ``(num_classes,) float32`` when the run computed them.
    num_inferences
        Model inferences spent on this image.
    seconds
        Wall time of this image (packed: from its first inference's submission to its map).
    error
        Why the image failed, else ``None``.
    packed
        Whether the image's work shared the engine's batches with other images.
    """

    index: int
    tag: Any
    explanation: Explanation | None = None
    raw: dict[int | str, np.ndarray] | None = None
    scores: np.ndarray | None = None
    num_inferences: int = 0
    seconds: float = 0.0
    error: BaseException | None = None
    packed: bool = False
    # carried from the worker to the visualisation, then dropped
    _data: Any = field(default=None, repr=False)
    _original: np.ndarray | None = field(default=None, repr=False)
    _keys: list[int | str] = field(default_factory=list, repr=False)
    _maps: np.ndarray | None = field(default=None, repr=False)
    _predictions: dict = field(default_factory=dict, repr=False)


class _Cancelled(Exception):
    """The consumer went away: the worker stops."""


@dataclass
class _Fatal:
    error: BaseException


_DONE = object()


# ---------------------------------------------------------------------------- keyword checks


def split_call_kwargs(
    explainer: Explainer, call_kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split Explainer-call keywords into (visualisation, method); unknown ones are a TypeError.

    Method keywords that do not apply to the explainer's method give a warning naming them, as an
    Explainer call does.
    """
    from salvo.explainer.explainer import ALL_METHOD_KWARGS, ENGINE_KWARGS, METHOD_KWARGS

    vis = {k: v for k, v in call_kwargs.items() if k in VIS_KEYS}
    method = {k: v for k, v in call_kwargs.items() if k not in VIS_KEYS}
    unknown = sorted(set(method) - ALL_METHOD_KWARGS)
    if unknown:
        raise TypeError(
            f"explain_many() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"method keywords are: {', '.join(sorted(ALL_METHOD_KWARGS))}"
        )
    own = METHOD_KWARGS[explainer.explain_method] | ENGINE_KWARGS
    foreign = sorted(set(method) - own)
    if foreign:
        warnings.warn(
            f"keyword argument(s) {', '.join(map(repr, foreign))} do not apply to "
            f"{explainer.explain_method.name} and are ignored",
            IgnoredArgumentWarning,
            stacklevel=3,
        )
    if "overlay_weight" in vis:
        vis["overlay_weight"] = check_number(vis["overlay_weight"], "overlay_weight",
                                             minimum=0.0, maximum=1.0)
    for flag in ("scaling", "resize", "colormap", "overlay", "overlay_prediction"):
        if flag in vis:
            vis[flag] = check_flag(vis[flag], flag)
    if "label_names" in vis:
        vis["label_names"] = check_label_names(vis["label_names"])
    return vis, method


def _blackbox_split(explainer: Explainer, method_kwargs: Mapping[str, Any]
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(engine keywords, method parameters) as the Explainer merges them for a call."""
    from salvo.explainer.explainer import ENGINE_KWARGS, METHOD_KWARGS
    from salvo.methods.blackbox import ENGINE_KEYS

    own = METHOD_KWARGS[explainer.explain_method] | ENGINE_KWARGS
    merged = {k: v for k, v in {**explainer.method_kwargs, **method_kwargs}.items() if k in own}
    engine = {k: v for k, v in merged.items() if k in ENGINE_KEYS}
    params = {k: v for k, v in merged.items() if k not in ENGINE_KEYS and k != "progress"}
    return engine, params


# ------------------------------------------------------------------------------ scoring path

_score_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Guards the engine caches of this module (explain_many may run in several threads at once).
_engines_lock = threading.Lock()


def _unmasked_scores(explainer: Explainer, impl: Any, x: np.ndarray) -> np.ndarray:
    """Class scores ``(num_classes,)`` of the preprocessed input ``x`` for a black-box method."""
    if hasattr(impl, "scores_of"):
        return np.asarray(impl.scores_of(x), np.float32).reshape(-1)
    from salvo.inference import InferenceEngine
    from salvo.methods.blackbox.base import Scorer

    engine = getattr(impl, "engine", None)
    if engine is None:
        with _engines_lock:
            engine = _score_engines.get(explainer)
            if engine is None:
                precision = explainer.method_kwargs.get("inference_precision") or \
                    explainer.method_kwargs.get("precision")
                engine = InferenceEngine(explainer.model, explainer.device_name, batch_size=1,
                                         num_requests=2, performance_hint="LATENCY",
                                         precision=precision)
                _score_engines[explainer] = engine
    scorer = Scorer(explainer.postprocess_fn)
    result: list[np.ndarray] = []

    def fill(out: np.ndarray, start: int, stop: int) -> None:
        out[0] = x[0]

    engine.run(1, fill, lambda s, e, o: result.append(scorer(o, 1)[0]))
    return result[0]


# ----------------------------------------------------------------------------------- workers


def _pack_kind(explainer: Explainer) -> str | None:
    """``"rise"`` (masks of several images share batches), ``"whitebox"`` (several images in
    flight on an async engine) or ``None`` (one Explainer call per image)."""
    if explainer._blackbox is None:
        return "whitebox" if getattr(explainer, "_xai_model", None) is not None else None
    if explainer.task is not Task.CLASSIFICATION:
        return None
    from salvo.methods.blackbox.rise import RISE

    cls = explainer._blackbox.cls
    return "rise" if isinstance(cls, type) and issubclass(cls, RISE) else None


#: Engine keywords of a white-box stream and their defaults. Measured on the 2-core CPU with
#: EfficientNet-Lite0's ReciproCAM model (f32, busy machine): batch 1 with several requests in
#: flight (THROUGHPUT) 58-86 img/s, one request at a time (LATENCY, the Explainer's) 41-46,
#: batch 8 44-49; so images are not batched, only kept in flight.
_WHITEBOX_ENGINE_DEFAULTS: dict[str, Any] = {"batch_size": 1, "num_requests": None,
                                             "performance_hint": "THROUGHPUT"}
_whitebox_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _whitebox_engine(explainer: Explainer, method_kwargs: Mapping[str, Any]) -> Any:
    """An async engine for the explainer's XAI model (cached per explainer and settings)."""
    from salvo.inference import InferenceEngine

    merged = {**explainer.method_kwargs, **method_kwargs}
    config = {k: merged.get(k, v) for k, v in _WHITEBOX_ENGINE_DEFAULTS.items()}
    config["precision"] = merged.get("inference_precision") or merged.get("precision")
    for key in ("cache_dir", "timeout"):
        if key in merged:
            config[key] = merged[key]
    key = tuple(sorted((k, repr(v)) for k, v in config.items()))
    with _engines_lock:
        cached = _whitebox_engines.setdefault(explainer, {})
        engine = cached.get(key)
        if engine is None:
            engine = InferenceEngine(explainer._xai_model, explainer.device_name, **config)
            cached[key] = engine
        return engine


def _whitebox_result(explainer: Explainer, outputs: Any, p: int, smap_index: int,
                     targets: TargetsSpec, label_names: Sequence[str] | None) -> BulkResult:
    """Maps of item ``p`` of a white-box batch, as ``Explainer._explain_whitebox`` makes them."""
    from openvino.utils.data_helpers.wrappers import OVDict

    from salvo.common import Method
    from salvo.explainer.explanation import Prediction
    from salvo.methods.whitebox.base import check_finite_outputs

    arrays = list(outputs.values())
    check_finite_outputs(arrays, list(outputs.keys()), p)
    smap = arrays[smap_index][p]
    if explainer.explain_method == Method.ACTIVATIONMAP:
        if smap.ndim == 3:
            smap = smap[0]
        return BulkResult(-1, None, num_inferences=1, packed=True,
                          _keys=[PER_IMAGE_MAP_KEY], _maps=np.array(smap[None]))
    num_classes = smap.shape[0]
    scores: np.ndarray | None = None
    if explainer.postprocess_fn is not None and explainer.task is Task.CLASSIFICATION:
        raw = OVDict({port: arr[p : p + 1] for i, (port, arr) in enumerate(outputs.items())
                      if i != smap_index})
        try:
            scores = np.asarray(explainer.postprocess_fn(raw), np.float32).reshape(-1)
        except Exception as exc:  # predictions are a courtesy in white-box mode
            logger.debug("postprocess_fn failed on the white-box outputs: %s", exc)
    keys = _target_keys(targets, scores if scores is not None and scores.size == num_classes
                        else None, num_classes, label_names)
    predictions = {} if scores is None else {
        k: Prediction(label=k, score=float(scores[k]), bounding_box=None)
        for k in keys if k < scores.size
    }
    return BulkResult(-1, None, scores=scores, num_inferences=1, packed=True, _keys=list(keys),
                      _maps=np.array(smap[keys]), _predictions=predictions)


def _run_whitebox(explainer: Explainer, jobs: Iterable[BulkJob], targets: TargetsSpec,
                  label_names: Sequence[str] | None, method_kwargs: Mapping[str, Any],
                  put: Callable[[Any], None], cancel: threading.Event,
                  progress: Callable[[float], None] | None, num_jobs: int | None) -> None:
    """White-box: one inference per image, several images in flight on an async engine."""
    from salvo.common import SALIENCY_MAP_OUTPUT_NAME

    engine = _whitebox_engine(explainer, method_kwargs)
    names = [o.get_names() for o in engine.compiled.outputs]
    smap_index = next(i for i, n in enumerate(names) if SALIENCY_MAP_OUTPUT_NAME in n)
    source = enumerate(jobs)
    state = {"exhausted": False, "pending": 0}
    in_flight: dict[int, list[tuple[int, int, BulkJob, Any, Any, float]]] = {}

    def pull() -> tuple[int, BulkJob, Any, Any, np.ndarray] | None:
        while not state["exhausted"]:
            if cancel.is_set():
                raise _Cancelled
            try:
                index, job = next(source)
            except StopIteration:
                state["exhausted"] = True
                return None
            try:
                data, original = job.load()
                x = explainer._preprocess(data)
            except Exception as exc:  # this image only
                put(BulkResult(index, job.tag, error=exc, packed=True))
                if progress is not None:
                    progress(1.0)
                continue
            return index, job, data, original, x
        return None

    def fill(out: np.ndarray, start: int, stop: int) -> None:
        slots = []
        for p in range(stop - start):
            item = pull()
            if item is None:
                break  # the rest of the batch is padding
            index, job, data, original, x = item
            out[p] = x[0]
            slots.append((p, index, job, data, original, time.perf_counter()))
        in_flight[start] = slots
        state["pending"] += len(slots)

    def consume(start: int, stop: int, outputs: Any) -> bool:
        slots = in_flight.pop(start)
        for p, index, job, data, original, t0 in slots:
            try:
                result = _whitebox_result(explainer, outputs, p, smap_index, targets,
                                          label_names)
            except Exception as exc:  # e.g. a target out of range: this image only
                result = BulkResult(-1, None, error=exc, packed=True)
            result.index, result.tag = index, job.tag
            result._data, result._original = data, original
            result.seconds = time.perf_counter() - t0
            put(result)
            if progress is not None:
                progress(1.0)
        state["pending"] -= len(slots)
        if cancel.is_set():
            return True
        return bool(state["exhausted"] and state["pending"] == 0)

    total = (1 << 62) if num_jobs is None else int(num_jobs)
    if total:
        engine.run(total, fill, consume)


def _run_packed(explainer: Explainer, jobs: Iterable[BulkJob], targets: TargetsSpec,
                label_names: Sequence[str] | None, method_kwargs: Mapping[str, Any],
                put: Callable[[Any], None], cancel: threading.Event,
                progress: Callable[[float], None] | None, num_jobs: int | None) -> None:
    from salvo.methods.blackbox.base import predictions_for
    from salvo.methods.blackbox.rise import RISEJob, resolve_params

    engine_kwargs, params = _blackbox_split(explainer, method_kwargs)
    rise_params = resolve_params(**params)
    impl = explainer._blackbox.impl(engine_kwargs)
    height, width = impl.engine.input.image_size
    rise_params.validate(height, width)

    def keys_of(scores: np.ndarray) -> list[int]:
        return _target_keys(targets, scores, scores.shape[0], label_names)

    def feeder() -> Iterator[RISEJob]:
        for index, job in enumerate(jobs):
            if cancel.is_set():
                return
            try:
                data, original = job.load()
                x = explainer._preprocess(data)
            except Exception as exc:  # this image only
                put(BulkResult(index, job.tag, error=exc, packed=True))
                if progress is not None:
                    progress(1.0)
                continue
            yield RISEJob(x, keys_of, tag=(index, job, data, original))

    def on_result(rjob: RISEJob, outcome: Any) -> None:
        index, job, data, original = rjob.tag
        if isinstance(outcome, Exception):
            put(BulkResult(index, job.tag, error=outcome, packed=True))
            return
        put(BulkResult(
            index, job.tag, scores=outcome.unmasked_scores,
            num_inferences=outcome.num_inferences, seconds=outcome.seconds, packed=True,
            _data=data, _original=original, _keys=list(outcome.targets), _maps=outcome.maps,
            _predictions=predictions_for(outcome.unmasked_scores, outcome.targets),
        ))

    impl.run_many(feeder(), rise_params, on_result, should_stop=cancel.is_set,
                  progress=progress, num_jobs=num_jobs)


def _explain_one(explainer: Explainer, data: Any, original: np.ndarray | None,
                 targets: TargetsSpec, label_names: Sequence[str] | None,
                 method_kwargs: Mapping[str, Any]) -> BulkResult:
    """One image through the Explainer, raw maps kept (white-box, and black-box without packing)."""
    raw_flags = {"resize": False, "colormap": False, "overlay": False, "scaling": False}
    extra = 0
    scores: np.ndarray | None = None
    if explainer._blackbox is None:
        # white-box: one inference gives every class's map and (with postprocess_fn) the scores
        e = explainer(data, targets=-1, label_names=label_names, **raw_flags, **method_kwargs)
        if e.targets == [PER_IMAGE_MAP_KEY]:
            keys: list[int | str] = [PER_IMAGE_MAP_KEY]
        else:
            num_classes = len(e.targets)
            if e.predictions and len(e.predictions) == num_classes:
                scores = np.array([e.predictions[k].score for k in range(num_classes)],
                                  np.float32)
            keys = list(_target_keys(targets, scores, num_classes, label_names))
        maps = np.stack([np.asarray(e.saliency_map[k]) for k in keys])
        predictions = {k: e.predictions[k] for k in keys if k in e.predictions}
    else:
        spec = targets
        if callable(targets):
            engine_kwargs, _ = _blackbox_split(explainer, method_kwargs)
            impl = explainer._blackbox.impl(engine_kwargs)
            scores = _unmasked_scores(explainer, impl, explainer._preprocess(data))
            extra = 1
            spec = _target_keys(targets, scores, scores.shape[0], label_names)
        kwargs = {"progress": False, **method_kwargs}
        e = explainer(data, targets=spec, label_names=label_names, **raw_flags, **kwargs)
        keys = list(e.targets)
        maps = np.stack([np.asarray(e.saliency_map[k]) for k in keys]) if keys else None
        predictions = dict(e.predictions)
    return BulkResult(-1, None, scores=scores, num_inferences=e.num_inferences + extra,
                      _data=data, _original=original, _keys=keys, _maps=maps,
                      _predictions=predictions)


def _run_loop(explainer: Explainer, jobs: Iterable[BulkJob], targets: TargetsSpec,
              label_names: Sequence[str] | None, method_kwargs: Mapping[str, Any],
              put: Callable[[Any], None], cancel: threading.Event,
              progress: Callable[[float], None] | None) -> None:
    for index, job in enumerate(jobs):
        if cancel.is_set():
            return
        t0 = time.perf_counter()
        try:
            data, original = job.load()
            result = _explain_one(explainer, data, original, targets, label_names,
                                  method_kwargs)
        except Exception as exc:  # this image only
            result = BulkResult(-1, None, error=exc)
        result.index, result.tag = index, job.tag
        result.seconds = time.perf_counter() - t0
        put(result)
        if progress is not None:
            progress(1.0)


# ------------------------------------------------------------------------------ the stream


def _visualise(explainer: Explainer, item: BulkResult, label_names: Sequence[str] | None,
               vis: Mapping[str, Any], keep_raw: bool) -> BulkResult:
    if item.error is not None:
        return item
    try:
        keys = item._keys
        options = {k: v for k, v in vis.items() if k not in ("label_names", "overlay_prediction")}
        if item._maps is None or not keys:
            maps: dict = {}
        else:
            maps = process_saliency_maps(item._maps, targets=keys, data=item._data,
                                         original_input_image=item._original, **options)
        item.explanation = Explanation(
            saliency_map=maps, targets=list(keys), task=explainer.task,
            label_names=None if label_names is None else list(label_names),
            predictions=dict(item._predictions),
            num_inferences=item.num_inferences, method=explainer.explain_method,
        )
        if keep_raw and item._maps is not None:
            item.raw = {k: item._maps[i] for i, k in enumerate(keys)}
    except Exception as exc:  # e.g. an overlay asked for on data that is not a picture
        item.error = exc
    item._data = item._original = item._maps = None
    return item


def explain_stream(
    explainer: Explainer,
    jobs: Iterable[BulkJob],
    targets: TargetsSpec = -1,
    *,
    label_names: Sequence[str] | None = None,
    vis: Mapping[str, Any] | None = None,
    method_kwargs: Mapping[str, Any] | None = None,
    keep_raw: bool = False,
    progress: Callable[[float], None] | None = None,
    num_jobs: int | None = None,
    pack: bool | None = None,
    buffer: int = 4,
) -> Iterator[BulkResult]:
    """Explain ``jobs``, yielding one :class:`BulkResult` per job, in job order.

    Per-image failures (a file that does not decode, a preprocessing error, an unresolvable
    target) come back as results with ``error`` set and the run goes on; a failure of the run as
    a whole (the model, the device, ``postprocess_fn``) is raised. Closing the generator early
    stops the work (images in flight are dropped).

    Parameters
    ----------
    explainer
        A built :class:`~salvo.Explainer`; do not use it from another thread meanwhile.
    jobs
        :class:`BulkJob` s, consumed lazily.
    targets
        As for an Explainer call, or a function of the unmasked class scores
        ``(num_classes,) float32`` (see :func:`top_k`).
    label_names
        Class names (for name targets and the Explanations).
    vis
        Visualisation keywords of an Explainer call (``resize``, ``colormap``, ``overlay``, …).
    method_kwargs
        Method and engine keywords of an Explainer call (``num_masks``, ``batch_size``, …),
        already checked by :func:`split_call_kwargs`.
    keep_raw
        Fill :attr:`BulkResult.raw` with the method's raw maps.
    progress
        Called from the worker thread with the fraction of an image just done (sums to 1.0
        per image).
    num_jobs
        How many jobs at most (lets a packed run stop right after the last inference).
    pack
        ``None``: pack when the method can (RISE: shared batches; white-box: images in flight
        on an async engine); ``False``: one Explainer call per image.
    buffer
        Finished results the worker may queue ahead of the consumer.

    Yields
    ------
    BulkResult
    """
    vis = dict(vis or {})
    method_kwargs = dict(method_kwargs or {})
    kind = _pack_kind(explainer) if pack is None or pack else None
    if pack and kind is None:
        logger.info("%s cannot pack several images per batch; explaining one at a time",
                    explainer.explain_method.name)
    out: queue.Queue = queue.Queue(maxsize=max(1, int(buffer)))
    cancel = threading.Event()

    def put(item: Any) -> None:
        while True:
            if cancel.is_set():
                raise _Cancelled
            try:
                out.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def work() -> None:
        try:
            if kind == "rise":
                _run_packed(explainer, jobs, targets, label_names, method_kwargs, put, cancel,
                            progress, num_jobs)
            elif kind == "whitebox":
                _run_whitebox(explainer, jobs, targets, label_names, method_kwargs, put, cancel,
                              progress, num_jobs)
            else:
                _run_loop(explainer, jobs, targets, label_names, method_kwargs, put, cancel,
                          progress)
            put(_DONE)
        except _Cancelled:
            pass
        except BaseException as exc:  # reaches the consumer's thread
            try:
                put(_Fatal(exc))
            except _Cancelled:
                pass

    worker = threading.Thread(target=work, name="salvo-bulk", daemon=True)
    worker.start()
    pending: dict[int, BulkResult] = {}
    next_index = 0
    try:
        while True:
            try:
                item = out.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not worker.is_alive() and out.empty():
                    raise RuntimeError("the explanation worker ended without a result")
                continue
            if item is _DONE:
                break
            if isinstance(item, _Fatal):
                raise item.error
            pending[item.index] = item
            while next_index in pending:
                ready = pending.pop(next_index)
                next_index += 1
                yield _visualise(explainer, ready, label_names, vis, keep_raw)
        for index in sorted(pending):  # nothing should be left; keep order if something is
            yield _visualise(explainer, pending.pop(index), label_names, vis, keep_raw)
    finally:
        cancel.set()
        worker.join(_JOIN_SECONDS)
        if worker.is_alive():
            logger.warning("the explanation worker is still running after a stop")


# ------------------------------------------------------------------------ the Python entry


def explain_many(
    explainer: Explainer,
    images: Iterable[Any],
    targets: TargetsSpec = -1,
    **call_kwargs: Any,
) -> Iterator[Explanation]:
    """Explain several images, keeping the engine's batches full across images.

    The implementation of :meth:`salvo.Explainer.explain_many`: yields one
    :class:`~salvo.Explanation` per image, in order, each equal to ``explainer(image, targets,
    **call_kwargs)`` (black-box maps are bit-identical to explaining the image alone).

    Parameters
    ----------
    explainer
        The Explainer (not to be used from another thread while the generator runs).
    images
        Inputs as an Explainer call's ``data`` (each goes through ``preprocess_fn``); any
        iterable, consumed lazily.
    targets
        As for an Explainer call (an int, a label name, a list, ``-1``/``None`` for all), or a
        function of the unmasked class scores ``(num_classes,) float32`` returning one of those
        (:func:`top_k` gives the top-k classes of each image). A function needs
        ``postprocess_fn``.
    **call_kwargs
        The keywords of an Explainer call. ``original_input_image`` may be one image for all, or
        a list/tuple with one image (or ``None``) per input. ``progress`` shows one bar over
        all images on stderr: ``True`` always, ``False`` never, ``None`` (default) only when
        stderr is a terminal. ``pack=False`` explains one image at a time (for comparisons).

    Returns
    -------
    iterator of Explanation
        A generator; the keywords are checked before it is returned. An image that fails raises
        its error when its turn comes (earlier images have been yielded).

    Raises
    ------
    TypeError
        An unknown keyword.
    ValueError
        A bad visualisation keyword, or ``original_input_image`` with a length that does not
        match ``images``.
    """
    kwargs = dict(call_kwargs)
    original = kwargs.pop("original_input_image", None)
    show = check_progress(kwargs.pop("progress", None))
    pack = kwargs.pop("pack", None)
    vis, method_kwargs = split_call_kwargs(explainer, kwargs)
    label_names = vis.pop("label_names", None)
    if isinstance(targets, Iterable) and not isinstance(
        targets, (str, bytes, bytearray, np.ndarray, Mapping, set, frozenset)
    ):
        targets = list(targets)  # a generator is read once, for every image
    if explainer.task is not Task.CLASSIFICATION and callable(targets):
        raise ValueError("targets as a function of class scores is for classification")
    per_image = isinstance(original, (list, tuple))
    num_jobs = len(images) if hasattr(images, "__len__") else None  # type: ignore[arg-type]
    if per_image and num_jobs is not None and len(original) != num_jobs:
        raise ValueError(
            f"original_input_image has {len(original)} images for {num_jobs} inputs"
        )

    def jobs() -> Iterator[BulkJob]:
        for i, data in enumerate(images):
            if per_image:
                if i >= len(original):
                    raise ValueError(
                        f"original_input_image has {len(original)} images, fewer than the inputs"
                    )
                picture = original[i]
            else:
                picture = original
            yield BulkJob(load=lambda d=data, p=picture: (d, p), tag=i)

    def generate() -> Iterator[Explanation]:
        bar = None
        step = None
        if show is not False:
            from tqdm.auto import tqdm

            # disable=None: only when stderr is a terminal (no carriage-return frames in logs)
            bar = tqdm(total=num_jobs, desc="explain", unit="img", delay=1.0, leave=False,
                       disable=None if show is None else False)
            step = bar.update
        try:
            for result in explain_stream(explainer, jobs(), targets, label_names=label_names,
                                         vis=vis, method_kwargs=method_kwargs, progress=step,
                                         num_jobs=num_jobs, pack=pack):
                if result.error is not None:
                    raise result.error
                yield result.explanation
        finally:
            if bar is not None:
                bar.close()

    return generate()
