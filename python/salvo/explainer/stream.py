"""Explaining many images: :meth:`Explainer.explain_many` and the stream behind ``salvo explain``.

The stream is a client of the Explainer's public API: :meth:`Explainer.preprocess` turns each
loaded image into a model input, :meth:`Explainer.call_settings` turns the keywords into the
method's parameters and engine settings once, the method's
:meth:`~salvo.methods.base.MethodBase.explain_stream` hook does the work (RISE packs the masks of
consecutive images into shared batches; white-box methods keep several images in flight; other
methods explain one image after the other), and :meth:`Explainer.visualise` makes each
:class:`~salvo.explainer.explanation.Explanation`. Each map is bit-identical to explaining its
image alone.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from salvo._checks import check_flag, check_progress
from salvo.common import Task
from salvo.common.targets import check_label_names
from salvo.explainer.explanation import Explanation
from salvo.explainer.visualizer import VisOptions
from salvo.methods.base import CallSettings, MethodBase, MethodResult, StreamJob, TargetsSpec

logger = logging.getLogger(__name__)

__all__ = ["BulkJob", "BulkResult", "explain_many", "explain_stream", "top_k"]

_JOIN_SECONDS = 15.0
_POLL_SECONDS = 0.1


class ExplainerAPI(Protocol):
    """What the stream uses of an :class:`~salvo.explainer.explainer.Explainer`: its public
    API, nothing else (the Explainer imports this module for ``explain_many``, so this module
    names the API it needs instead of importing the class)."""

    #: The model's task.
    task: Task
    #: The method the explainer built.
    method: MethodBase

    def preprocess(self, data: Any) -> np.ndarray:
        """``preprocess_fn(data)`` as one model input ``(1, ...)``."""
        ...

    def call_settings(self, kwargs: Mapping[str, Any] | None = None, *, where: str = ...,
                      stacklevel: int = ...) -> CallSettings:
        """The method parameters, engine settings and ``progress`` of a call's keywords."""
        ...

    def visualise(self, result: MethodResult, data: Any, original_input_image: Any,
                  vis: VisOptions, label_names: Sequence[str] | None, *,
                  boxes_on: Any = None) -> Explanation:
        """The Explanation of a method's result."""
        ...


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
    _result: MethodResult | None = field(default=None, repr=False)


class _Cancelled(Exception):
    """The consumer went away: the worker stops."""


@dataclass
class _Fatal:
    error: BaseException


_DONE = object()


def split_call_kwargs(
    explainer: ExplainerAPI, call_kwargs: Mapping[str, Any], where: str = "explain_many()"
) -> tuple[VisOptions, list[str] | None, dict[str, Any]]:
    """Split Explainer-call keywords into (visualisation options, label names, method keywords)
    and check them all now (unknown ones are a ``TypeError``; method keywords that do not apply
    to the explainer's method give a warning naming them, as an Explainer call does)."""
    vis_keys = VisOptions.keywords()
    vis = VisOptions(**{k: v for k, v in call_kwargs.items() if k in vis_keys})
    label_names = check_label_names(call_kwargs.get("label_names"))
    method = {k: v for k, v in call_kwargs.items()
              if k not in vis_keys and k != "label_names"}
    explainer.call_settings(method, where=where, stacklevel=3)
    return vis, label_names, method


# ------------------------------------------------------------------------------ the stream


def _visualise(explainer: ExplainerAPI, item: BulkResult, label_names: Sequence[str] | None,
               vis: VisOptions, keep_raw: bool) -> BulkResult:
    if item.error is not None or item._result is None:
        return item
    try:
        result = item._result
        # boxes are given in the pixels of what was explained (the data), not of the picture
        # the maps are drawn on: the command line scales them to its outputs itself
        item.explanation = explainer.visualise(result, item._data, item._original, vis,
                                               label_names, boxes_on=item._data)
        if keep_raw:
            item.raw = {k: result.maps[i] for i, k in enumerate(result.targets)}
    except Exception as exc:  # e.g. an overlay asked for on data that is not a picture
        item.error = exc
    item._data = item._original = item._result = None
    return item


def explain_stream(
    explainer: ExplainerAPI,
    jobs: Iterable[BulkJob],
    targets: TargetsSpec = -1,
    *,
    label_names: Sequence[str] | None = None,
    vis: VisOptions | Mapping[str, Any] | None = None,
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
        A built :class:`~salvo.Explainer` (it may serve other threads meanwhile).
    jobs
        :class:`BulkJob` s, consumed lazily.
    targets
        As for an Explainer call, or a function of the unmasked class scores
        ``(num_classes,) float32`` (see :func:`top_k`).
    label_names
        Class names (for name targets and the Explanations).
    vis
        Visualisation options (:class:`~salvo.explainer.visualizer.VisOptions`, or its
        keywords).
    method_kwargs
        Method and engine keywords of an Explainer call (``num_masks``, ``batch_size``, …).
    keep_raw
        Fill :attr:`BulkResult.raw` with the method's raw maps.
    progress
        Called from the worker thread with the fraction of an image just done (sums to 1.0
        per image).
    num_jobs
        How many jobs at most (lets a packed run stop right after the last inference).
    pack
        ``None``/``True``: the method's own stream (RISE: shared batches; white-box: images in
        flight); ``False``: one image after the other.
    buffer
        Finished results the worker may queue ahead of the consumer.

    Yields
    ------
    BulkResult
    """
    settings = explainer.call_settings(method_kwargs or {}, where="explain_stream()",
                                       stacklevel=3)
    vis = vis if isinstance(vis, VisOptions) else VisOptions(**dict(vis or {}))
    label_names = check_label_names(label_names)
    method = explainer.method
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

    def stream_jobs() -> Iterator[StreamJob]:
        for index, job in enumerate(jobs):
            if cancel.is_set():
                return
            try:
                data, original = job.load()
                x = explainer.preprocess(data)
            except Exception as exc:  # this image only
                put(BulkResult(index, job.tag, error=exc))
                if progress is not None:
                    progress(1.0)
                continue
            yield StreamJob(x, targets, tag=(index, job, data, original, time.perf_counter()))

    def on_result(sjob: StreamJob, outcome: MethodResult | Exception) -> None:
        index, job, data, original, t0 = sjob.tag
        if isinstance(outcome, Exception):
            put(BulkResult(index, job.tag, error=outcome))
            return
        put(BulkResult(
            index, job.tag, scores=outcome.scores, num_inferences=outcome.num_inferences,
            seconds=float(outcome.extra.get("seconds", time.perf_counter() - t0)),
            packed=bool(outcome.extra.get("packed", False)),
            _data=data, _original=original, _result=outcome,
        ))

    stream = method.explain_stream if pack is None or pack else \
        MethodBase.explain_stream.__get__(method)

    def work() -> None:
        try:
            stream(stream_jobs(), settings.params, on_result, label_names=label_names,
                   engine=settings.engine, should_stop=cancel.is_set, progress=progress,
                   num_jobs=num_jobs)
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
            logger.debug("the explanation worker is still running after a stop")


# ------------------------------------------------------------------------ the Python entry


def explain_many(
    explainer: ExplainerAPI,
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
    if pack is not None:
        pack = check_flag(pack, "pack")
    vis, label_names, method_kwargs = split_call_kwargs(explainer, kwargs)
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
