"""What the faithfulness metrics share: the batched engine, checked inputs, explanation walking.

A metric that needs the model (insertion/deletion, ADCC) compiles it once into a
:class:`salvo.inference.InferenceEngine` and sends *all* the images it has to score through it
as one stream of batches (:meth:`BaseMetric.score_images`), instead of one synchronous call per
image as the reference toolkit does. Each image is made on demand by a callback, preprocessed
with the user's ``preprocess_fn`` and written straight into an idle infer request's input
tensor while the other requests run, so memory does not grow with the number of images.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import openvino as ov
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._checks import as_real_array, fit_dtype
from salvo.common import PER_IMAGE_MAP
from salvo.common.utils import IdentityPreprocessFN
from salvo.inference import InferenceEngine, read_model
from salvo.methods.base import IDENTITY
from salvo.methods.black_box.base import Scorer

logger = logging.getLogger(__name__)

__all__ = [
    "PER_IMAGE_MAP_KEY",
    "BaseMetric",
    "check_image",
    "check_map",
    "explanation_maps",
    "first_output",
    "identity",
    "min_max_unit",
]

#: Key of ActivationMap's class-agnostic map in ``Explanation.saliency_map``
#: (:data:`salvo.common.PER_IMAGE_MAP`).
PER_IMAGE_MAP_KEY = PER_IMAGE_MAP

#: The default ``preprocess_fn`` (the image is already the model input): the methods' shared
#: :class:`~salvo.common.utils.IdentityPreprocessFN`.
identity: IdentityPreprocessFN = IDENTITY

ImageFn = Callable[[int], np.ndarray]
"""``make(i)``: the i-th raw image to score (before ``preprocess_fn``)."""


def first_output(outputs: OVDict) -> np.ndarray:
    """Default ``postprocess_fn``: the model's first output, ``(B, num_classes)``."""
    return outputs[0]


def min_max_unit(saliency_map: np.ndarray) -> np.ndarray:
    """The reference's ``scaling(map, cast_to_uint8=False, max_value=1)``.

    ``(x - min) / (max - min + 1e-12)`` computed in float32, like the reference.

    Parameters
    ----------
    saliency_map
        ``(H, W)`` any real dtype.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 in [0, 1]; a constant map gives zeros.
    """
    x = np.asarray(saliency_map, dtype=np.float32)
    lo = x.min()
    hi = x.max()
    return (x - lo) / (hi - lo + np.float32(1e-12))


def check_map(saliency_map: Any, name: str = "saliency_map") -> np.ndarray:
    """A grey 2-D real map without NaN or infinity (an ``(H, W, 1)`` map is squeezed).

    Raises
    ------
    TypeError
        Not numeric.
    ValueError
        Not 2-D (a colour-mapped ``(H, W, 3)`` map gets a hint), empty, or NaN / infinity.
    """
    arr = np.asarray(saliency_map)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        hint = (
            " (a colour-mapped map: explain with colormap=False)"
            if arr.ndim == 3 and arr.shape[2] == 3 else ""
        )
        raise ValueError(f"{name} must be a 2-D (H, W) map, got shape {arr.shape}{hint}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_image(input_image: Any, map_shape: tuple[int, int], name: str = "input_image"
                ) -> np.ndarray:
    """An ``(H, W)`` or ``(H, W, C)`` image whose ``(H, W)`` equals the map's.

    Raises
    ------
    TypeError
        Not numeric.
    ValueError
        Wrong rank, a size different from the map's, or NaN / infinity.
    """
    arr = np.asarray(input_image)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be one image (H, W) or (H, W, C) as given to preprocess_fn, got "
            f"shape {arr.shape}"
        )
    if tuple(arr.shape[:2]) != tuple(map_shape):
        raise ValueError(
            f"{name} is {arr.shape[0]}x{arr.shape[1]} (shape {arr.shape}) but the saliency map "
            f"is {map_shape[0]}x{map_shape[1]}; they must have the same size (explain with "
            "resize=True, or resize the map to the image)"
        )
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_class_idx(class_idx: Any, name: str = "class_idx") -> int | None:
    """``None`` or a non-negative int (NumPy ints accepted)."""
    if class_idx is None:
        return None
    if isinstance(class_idx, (bool, np.bool_)) or not isinstance(class_idx, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, got {class_idx!r}")
    if class_idx < 0:
        raise ValueError(f"{name} must be >= 0, got {class_idx}")
    return int(class_idx)


def explanation_maps(
    explanations: Sequence[Any], argument: str = "explanations"
) -> Iterator[tuple[int, int | str, np.ndarray, Any]]:
    """Walk ``(image index, target key, map, explanation)`` over a list of explanations.

    Raises
    ------
    TypeError
        ``explanations`` is not a list of objects with a ``saliency_map`` dict.
    ValueError
        The list is empty.
    """
    if isinstance(explanations, (str, bytes)) or not isinstance(explanations, Sequence):
        raise TypeError(
            f"{argument} must be a list of Explanation objects, got {type(explanations).__name__}"
        )
    if len(explanations) == 0:
        raise ValueError(f"{argument} is empty: there is nothing to evaluate")
    for i, explanation in enumerate(explanations):
        maps = getattr(explanation, "saliency_map", None)
        if not isinstance(maps, Mapping):
            raise TypeError(
                f"{argument}[{i}] must be an Explanation (with a saliency_map dict), got "
                f"{type(explanation).__name__}"
            )
        for key, smap in maps.items():
            yield i, key, smap, explanation


def target_of(key: int | str) -> int | None:
    """The class a map explains: its key, or ``None`` (the top-1 class) for a per-image map."""
    if isinstance(key, str):
        if key == PER_IMAGE_MAP:
            return None
        raise ValueError(f"saliency map key {key!r} is neither a class index nor "
                         f"{PER_IMAGE_MAP!r}")
    return int(key)


def check_same_length(explanations: Sequence[Any], others: Sequence[Any], name: str) -> None:
    """The reference asserts this; salvo says which lengths differ."""
    if isinstance(others, (str, bytes)) or not isinstance(others, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a list with one entry per explanation, got "
                        f"{type(others).__name__}")
    if len(others) != len(explanations):
        raise ValueError(
            f"{name} has {len(others)} entries but there are {len(explanations)} explanations; "
            "give one per image"
        )


class PerThreadCounter:
    """An int attribute whose value is kept per thread: a metric object shared by several
    threads reports, in each thread, the count of that thread's last call (0 before any)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(self._local(obj), self.name, 0)

    def __set__(self, obj: Any, value: int) -> None:
        setattr(self._local(obj), self.name, int(value))

    @staticmethod
    def _local(obj: Any) -> threading.local:
        # dict.setdefault is atomic: two threads reading a new object get the same local
        return obj.__dict__.setdefault("_per_thread_counters", threading.local())


class BaseMetric:
    """Base class of the faithfulness metrics (the reference's ``BaseMetric``).

    A concrete metric defines two methods, each with the signature of its own reference
    metric (they differ from metric to metric, so the base class declares only what they
    return):

    - ``__call__(saliency_map, ...) -> dict[str, float]``: the metric of one saliency map;
    - ``evaluate(explanations, ...) -> dict[str, float]``: the metric over a dataset of
      explanations.

    A class that lacks one of them is abstract, as with :mod:`abc`: instantiating it raises
    ``TypeError`` naming what is missing (``BaseMetric`` itself included).

    Parameters
    ----------
    model
        An ``openvino.Model`` or a path to one; ``None`` for metrics that do not run the model.
    preprocess_fn
        Turns one raw image ``(H, W, C)`` into the model input ``(1, …)`` (or ``(…)``).
        Identity by default.
    postprocess_fn
        Turns the raw outputs (an ``OVDict``) of a batch into class scores ``(B, num_classes)``
        (``x[0]``, ``softmax(x[0])``, …; a function that returns ``(1, num_classes)`` is called
        one item at a time). ``None`` takes the first output. Use probabilities for scores that
        the metrics read as confidences (AUC in [0, 1], ADCC's average drop).
    device_name
        Any OpenVINO device string.
    batch_size, num_requests, precision, performance_hint
        How the metric's engine runs (see :class:`salvo.inference.InferenceEngine`).
        ``precision=None`` is the device default, like the reference's compile step.
    """

    #: The metric of one saliency map (each metric has its reference's signature).
    __call__: Callable[..., dict[str, float]]
    #: The metric over a dataset of explanations (each metric has its reference's signature).
    evaluate: Callable[..., dict[str, float]]
    #: The methods a concrete metric must define.
    REQUIRED: ClassVar[tuple[str, ...]] = ("__call__", "evaluate")

    #: Model inferences run by this thread's last metric call (``__call__`` or ``evaluate``).
    num_inferences = PerThreadCounter()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _set_abstract(cls)

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str] | None = None,
        preprocess_fn: Callable[[np.ndarray], np.ndarray] = identity,
        postprocess_fn: Callable[[OVDict], Any] | None = None,
        device_name: str = "CPU",
        *,
        batch_size: int | None = None,
        num_requests: int | None = None,
        precision: str | None = None,
        performance_hint: str = "THROUGHPUT",
    ) -> None:
        if preprocess_fn is None:
            preprocess_fn = identity
        if not callable(preprocess_fn):
            raise TypeError(f"preprocess_fn must be callable, got {type(preprocess_fn).__name__}")
        if postprocess_fn is None:
            postprocess_fn = first_output
        if not callable(postprocess_fn):
            raise TypeError(
                f"postprocess_fn must be callable, got {type(postprocess_fn).__name__}"
            )
        self.preprocess_fn = preprocess_fn
        self.postprocess_fn = postprocess_fn
        self.device_name = device_name
        self.model = None if model is None else read_model(model)
        self.engine: InferenceEngine | None = None
        if self.model is not None:
            self.engine = InferenceEngine(
                self.model, device_name, batch_size=batch_size, num_requests=num_requests,
                precision=precision, performance_hint=performance_hint,
            )
        self.num_inferences = 0

    # ------------------------------------------------------------------ inference
    def _require_engine(self) -> InferenceEngine:
        if self.engine is None:
            raise ValueError(f"{type(self).__name__} was built without a model")
        return self.engine

    def _preprocessed(self, raw: np.ndarray) -> np.ndarray:
        try:
            x = self.preprocess_fn(raw)
        except ValueError as exc:
            if "read-only" in str(exc):
                raise ValueError(
                    "preprocess_fn tried to modify the image it was given in place; it must "
                    "return a new array"
                ) from exc
            raise
        return as_real_array(x, "the preprocessed image (what preprocess_fn returned)")

    def check_input_images(self, images: Sequence[Any], names: Sequence[str]) -> None:
        """Check that the user's images, preprocessed, fit the model input's element type.

        For an integer input (``uint8``) the preprocessed image must hold whole numbers in its
        range: a float image in [0, 1] or with fractions is an error naming the range, not
        a picture truncated to black. (The perturbed images a metric builds from a checked
        image, such as ADCC's ``image * map``, are rounded to the nearest integer.) Float
        inputs need no check here. Each distinct image object is checked once.

        Raises
        ------
        ValueError
            A value that does not fit, naming the image.
        """
        engine = self.engine
        if engine is None or engine.input.dtype.kind not in "iu":
            return
        seen: set[int] = set()
        for image, name in zip(images, names):
            if id(image) in seen:
                continue
            seen.add(id(image))
            x = self._preprocessed(image)
            if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
                raise ValueError(f"{name}, preprocessed, contains NaN or infinity")
            fit_dtype(x, engine.input.dtype, name=f"{name} (after preprocess_fn)",
                      target=f"the model input {engine.input.name!r}")

    def _writer(self, engine: InferenceEngine) -> Callable[[np.ndarray, np.ndarray, int], None]:
        """``write(raw_image, out, j)``: preprocess one image into ``out[j]`` (shape checked
        once); values that do not fit the input's element type are an error (fractions are
        rounded for integer inputs: the images written are the metric's perturbed images)."""
        item_shape = tuple(engine.input.shape[1:])
        target = f"the model input {engine.input.name!r}"
        checked = False

        def write(raw: np.ndarray, out: np.ndarray, j: int) -> None:
            nonlocal checked
            x = self._preprocessed(raw)
            if not checked:
                shape = tuple(x.shape)
                if shape != item_shape and shape != (1, *item_shape):
                    raise ValueError(
                        f"preprocess_fn turned an image of shape {np.shape(raw)} into shape "
                        f"{shape}, but the model input {engine.input.name!r} takes "
                        f"{(1, *item_shape)}"
                    )
                checked = True
            x = x.reshape(item_shape)
            if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
                raise ValueError("a preprocessed image contains NaN or infinity")
            out[j] = fit_dtype(x, engine.input.dtype, name="a preprocessed image",
                               target=target, round_fractions=True)

        return write

    def score_images(
        self,
        num_images: int,
        make_image: ImageFn,
        on_scores: Callable[[int, np.ndarray], None],
    ) -> None:
        """Score ``num_images`` images, made on demand, in one batched engine run.

        Parameters
        ----------
        num_images
            How many images.
        make_image
            ``make_image(i)`` returns raw image ``i`` (what ``preprocess_fn`` takes). Called in
            order, on the calling thread, while earlier batches run on the device.
        on_scores
            ``on_scores(start, scores)`` receives the class scores ``(n, num_classes)`` float32
            of images ``start .. start+n-1``, in order.
        """
        engine = self._require_engine()
        scorer = Scorer(self.postprocess_fn)
        write = self._writer(engine)

        def fill(out: np.ndarray, start: int, stop: int) -> None:
            for j, i in enumerate(range(start, stop)):
                write(make_image(i), out, j)

        def consume(start: int, stop: int, outputs: OVDict) -> None:
            on_scores(start, scorer(outputs, stop - start))

        engine.run(num_images, fill, consume)
        self.num_inferences += num_images

    def predict_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Class scores ``(N, num_classes)`` float32 of raw images, batched."""
        rows: list[np.ndarray] = []
        self.score_images(len(images), lambda i: images[i], lambda s, scores: rows.append(scores))
        return np.concatenate(rows, axis=0)

    def model_predict(self, input: np.ndarray) -> np.ndarray:
        """Class scores ``(num_classes,)`` float32 of one raw image (the reference's method)."""
        return self.predict_images([input])[0]


def _set_abstract(cls: type[BaseMetric]) -> None:
    """Mark ``cls`` abstract in the methods of :attr:`BaseMetric.REQUIRED` it does not define.

    This is what :mod:`abc` does (:func:`abc.update_abstractmethods`): ``object.__new__``
    refuses a class whose ``__abstractmethods__`` is not empty, naming them, and
    :func:`inspect.isabstract` reports it.
    """
    missing = frozenset(name for name in cls.REQUIRED
                        if not any(name in vars(klass) for klass in cls.__mro__[:-1]))
    setattr(cls, "__abstractmethods__", missing)  # noqa: B010 (typeshed does not declare it)


_set_abstract(BaseMetric)  # BaseMetric itself defines neither method
