"""AISE (adaptive input sampling for explanation) for classification and detection, batched.

AISE perturbs the input with Gaussian masks and lets a derivative-free optimiser (DIRECT) look
for the mask centre that matters most; the saliency map is the kernel-density estimate of
every mask it tried, weighted by the objective it scored (SPEC section 6).

For each target and each kernel width ``sigma`` a DIRECT search maximises the objective over
the mask centre ``(x, y)`` (normalised image coordinates). The map of one width is
``sum_i value_i * g_i`` over the search's evaluations, divided by its maximum when that is
positive; the target's map is the sum over widths, divided by its maximum. As in the reference
that last division happens whatever the maximum's sign: when every evaluation lowered the score
(a negative maximum) it reverses the map's order, so the peak is where the evaluations summed
most negatively. Predictions and boxes are in the pixels of the model input (``x``);
``extra["input_size"]`` is its ``(H, W)`` for rescaling them to the original photo.

Classification
    ``value = score(x * g) - score(x * (1 - g))``: two inferences per evaluation. Scores outside
    [0, 1] (for any class of that inference) go through a sigmoid first, as in the reference.
Detection
    ``value = max over the boxes predicted on x * g with the target's label of IoU * score``:
    one inference per evaluation. Widths are ``min(box w, h) / divisors`` and the search is
    bounded to the box grown by 50 % on each side (clipped to the image).

What salvo does differently from the reference (which calls ``scipy.optimize.direct`` with a
one-point objective, one synchronous inference at a time): every DIRECT iteration proposes all
its points at once (:class:`salvo.kernels.direct.BatchedDirect`), the searches of all widths and
all targets advance together, and each round of points is one stream of masked images through
the batched asynchronous engine. The optimiser reproduces SciPy's DIRECT point for point, and
each search stops at exactly ``num_iterations_per_kernel`` evaluations (SciPy overshoots its
``maxfun``; the reference then ignores the extra evaluations in its map), so the maps are the
reference's, computed with fewer inferences. ``num_inferences`` is exact.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._progress import RunProgress, warn_long_run
from salvo.common import Preset
from salvo.errors import DetectionBoxWarning, PostprocessWarning
from salvo.inference import InferenceEngine, is_cpu_only
from salvo.kernels import fill_masked
from salvo.kernels.direct import BatchedDirect
from salvo.kernels.gaussian import kde_accumulate, render_masks
from salvo.methods.blackbox.base import (
    BlackBoxMethod,
    BlackBoxResult,
    Scorer,
    image_for_fill,
    is_flat,
    predictions_for,
    warn_uninformative,
)
from salvo.targets import _scalar, resolve_targets

logger = logging.getLogger(__name__)

__all__ = [
    "AISE_CLASSIFICATION_PRESETS",
    "AISE_DETECTION_PRESETS",
    "DEFAULT_BATCH_SIZE",
    "AISEClassification",
    "AISEClassificationParams",
    "AISEDetection",
    "AISEDetectionParams",
    "DetectionReader",
    "Detections",
    "TargetBoxes",
    "box_iou",
    "match_scores",
    "resolve_classification_params",
    "resolve_detection_params",
    "run_searches",
    "select_target_boxes",
]

#: Masks rendered per fill call at most (the engine's batch is usually smaller).
_MASK_BUFFER = 64
#: Engine batch size when the caller does not choose one, off CPU. A DIRECT round is a few
#: dozen images, and the device computes a round's last, partial batch in full; on this CPU (2
#: cores, EfficientNet-Lite0, one target) batch 2 took 1.6 s / 3.6 s at SPEED / BALANCE
#: against 2.0 s / 4.4 s at batch 4 and 2.6 s / 5.0 s at batch 8, while OpenVINO's own
#: throughput hardly depends on the batch size there. Pass ``batch_size`` to override.
DEFAULT_BATCH_SIZE = 2
#: On CPU the engine picks 1 or 2 from the measured time of one image: a slow image gains
#: nothing from batching and a half-empty last batch of a round costs a whole inference.
#: Measured (BALANCE, quiet 2-core machine, wall over the plain-OpenVINO bound): SSDLite
#: (9 ms per image) batch 1: 1.30, batch 2: 1.69; EfficientNet-Lite0 224 px (3.3 ms) batch 2:
#: 1.01, batch 1: 1.14.
CPU_BATCH_STEPS = ((6e-3, 1), (0.0, 2))
#: What a detection model's ``postprocess_fn`` returns.
DETECTION_CONTRACT = ("raw outputs -> (boxes (B, N, 4), scores (B, N), labels (B, N)), boxes "
                      "x1, y1, x2, y2 in input pixels")
#: Extra room, in pixels, a target box may extend past the image before salvo warns.
_BOX_SLACK = 1.0


# ----------------------------------------------------------------------------- parameters

def _check_budget(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"num_iterations_per_kernel must be a positive int, got {value!r}")
    return int(value)


def _check_epsilon(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"solver_epsilon must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _positive_floats(name: str, values: Any) -> tuple[float, ...]:
    """A non-empty sequence of finite numbers > 0, as a tuple of floats."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        if isinstance(values, (int, float, np.integer, np.floating)) and not isinstance(
            values, bool
        ):
            values = [values]
        else:
            raise ValueError(f"{name} must be a sequence of positive numbers, got {values!r}")
    out = []
    for v in np.asarray(list(values), dtype=object).reshape(-1):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must hold numbers, got {v!r} in {values!r}")
        f = float(v)
        if not math.isfinite(f) or f <= 0:
            raise ValueError(f"{name} must all be finite and > 0, got {v!r} in {list(values)!r}")
        out.append(f)
    if not out:
        raise ValueError(f"{name} must not be empty")
    return tuple(out)


def _checked_search_fields(params: Any) -> dict[str, Any]:
    """The search fields both parameter classes share, checked and in canonical types."""
    return {
        "num_iterations_per_kernel": _check_budget(params.num_iterations_per_kernel),
        "solver_epsilon": _check_epsilon(params.solver_epsilon),
        "locally_biased": _check_flag("locally_biased", params.locally_biased),
        "scale_output": _check_flag("scale_output", params.scale_output),
    }


@dataclass(frozen=True)
class AISEClassificationParams:
    """AISE hyper-parameters for classification.

    Attributes
    ----------
    num_iterations_per_kernel
        Objective evaluations per kernel width and target (each costs two inferences).
    kernel_widths
        Gaussian widths ``sigma`` in normalised image coordinates (> 0).
    solver_epsilon
        DIRECT's epsilon (Jones' ``eps``, >= 0).
    locally_biased
        DIRECT-L (True) or the original DIRECT (False, the reference's choice).
    scale_output
        Min-max scale each map to uint8 [0, 255]; otherwise float32 maps (max 1).
    """

    num_iterations_per_kernel: int = 50
    kernel_widths: tuple[float, ...] = (0.1, 0.175, 0.25)
    solver_epsilon: float = 0.1
    locally_biased: bool = False
    scale_output: bool = True

    def validate(self) -> AISEClassificationParams:
        """Check every field; return a copy with canonical types.

        Raises
        ------
        ValueError
            A field out of range, naming it and the value.
        """
        return replace(self, **_checked_search_fields(self),
                       kernel_widths=_positive_floats("kernel_widths", self.kernel_widths))


@dataclass(frozen=True)
class AISEDetectionParams:
    """AISE hyper-parameters for detection.

    Attributes
    ----------
    num_iterations_per_kernel
        Objective evaluations (inferences) per kernel width and box.
    divisors
        Kernel widths are ``min(box width, box height) / divisor`` (normalised), one per divisor.
    solver_epsilon
        DIRECT's epsilon (>= 0).
    locally_biased
        DIRECT-L (True) or the original DIRECT (False, the reference's choice).
    scale_output
        Min-max scale each map to uint8 [0, 255]; otherwise float32 maps (max 1).
    """

    num_iterations_per_kernel: int = 50
    divisors: tuple[float, ...] = (7.0, 4.0, 1.0)
    solver_epsilon: float = 0.05
    locally_biased: bool = False
    scale_output: bool = True

    def validate(self) -> AISEDetectionParams:
        """Check every field; return a copy with canonical types.

        Raises
        ------
        ValueError
            A field out of range, naming it and the value.
        """
        return replace(self, **_checked_search_fields(self),
                       divisors=_positive_floats("divisors", self.divisors))


#: SPEC section 6: (iterations per kernel, kernel widths) per preset.
AISE_CLASSIFICATION_PRESETS: dict[Preset, AISEClassificationParams] = {
    Preset.SPEED: AISEClassificationParams(20, (0.1, 0.175, 0.25)),
    Preset.BALANCE: AISEClassificationParams(50, (0.1, 0.175, 0.25)),
    Preset.QUALITY: AISEClassificationParams(
        50, tuple(float(v) for v in np.linspace(0.075, 0.25, 5))
    ),
}
#: (iterations per kernel, divisors) per preset, as the reference defines them.
AISE_DETECTION_PRESETS: dict[Preset, AISEDetectionParams] = {
    Preset.SPEED: AISEDetectionParams(20, (7.0, 4.0, 1.0)),
    Preset.BALANCE: AISEDetectionParams(50, (7.0, 4.0, 1.0)),
    Preset.QUALITY: AISEDetectionParams(50, tuple(float(v) for v in np.linspace(8, 1, 5))),
}


def _preset(preset: Preset | str | None) -> Preset:
    if preset is None:
        return Preset.BALANCE
    if isinstance(preset, Preset):
        return preset
    try:
        return Preset(str(preset).lower())
    except ValueError:
        raise ValueError(
            f"preset must be one of {[p.name for p in Preset]}, got {preset!r}"
        ) from None


def _resolve(presets: dict, cls: type, other: dict[str, str], preset: Any,
             overrides: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    for key, hint in other.items():
        if key in overrides and overrides[key] is not None:
            raise ValueError(hint)
    unknown = set(overrides) - names - set(other)
    if unknown:
        raise TypeError(f"unknown AISE parameter(s): {sorted(unknown)}; known: {sorted(names)}")
    chosen = {k: v for k, v in overrides.items() if k in names and v is not None}
    return replace(presets[_preset(preset)], **chosen).validate()


def resolve_classification_params(preset: Preset | str | None = None,
                                  **overrides: Any) -> AISEClassificationParams:
    """The preset (BALANCE by default), then explicit keywords, which win; validated.

    Raises
    ------
    TypeError
        An unknown keyword.
    ValueError
        A bad value, or ``divisors`` (a detection parameter).
    """
    return _resolve(
        AISE_CLASSIFICATION_PRESETS, AISEClassificationParams,
        {"divisors": "divisors is a parameter of AISE for detection; for classification set "
                     "kernel_widths"},
        preset, overrides,
    )


def resolve_detection_params(preset: Preset | str | None = None,
                             **overrides: Any) -> AISEDetectionParams:
    """The preset (BALANCE by default), then explicit keywords, which win; validated.

    Raises
    ------
    TypeError
        An unknown keyword.
    ValueError
        A bad value, or ``kernel_widths`` (detection derives them from each box and
        ``divisors``).
    """
    return _resolve(
        AISE_DETECTION_PRESETS, AISEDetectionParams,
        {"kernel_widths": "kernel_widths is a parameter of AISE for classification; for "
                          "detection the widths are min(box width, height) / divisors: set "
                          "divisors"},
        preset, overrides,
    )


# ----------------------------------------------------------------------------- detections

@dataclass(frozen=True)
class Detections:
    """The boxes a detector found on one image.

    Attributes
    ----------
    boxes
        ``(N, 4)`` float64 ``x1, y1, x2, y2`` in input pixels.
    scores
        ``(N,)`` float64.
    labels
        ``(N,)`` int64.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one ``xyxy`` box with each of ``boxes`` ``(M, 4)``.

    Returns
    -------
    numpy.ndarray
        ``(M,)`` float64 in [0, 1]; 0 where a box is empty or the boxes do not overlap.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    box = np.asarray(box, dtype=np.float64)
    iw = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    ih = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0,
                                                                   None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_scores(target_box: np.ndarray, target_label: int, found: Detections) -> float:
    """``max`` over the found boxes with the target's label of ``IoU * score`` (0 if none)."""
    same = found.labels == target_label
    if not np.any(same):
        return 0.0
    return float(np.max(box_iou(target_box, found.boxes[same]) * found.scores[same]))


class DetectionReader:
    """Read detections with the user's ``postprocess_fn``, checked (SPEC section 6).

    ``postprocess_fn(outputs)`` must return ``(boxes (B, N, 4), scores (B, N), labels (B, N))``
    with boxes ``x1, y1, x2, y2`` in input pixels, for a batch of ``B`` images (rows may be
    padded with zero-score boxes). A function written for one image (leading dimension 1 for
    ``B > 1``) is detected once and then called image by image.
    """

    def __init__(self, postprocess_fn: Callable[[OVDict], Any]) -> None:
        if not callable(postprocess_fn):
            raise TypeError(
                f"postprocess_fn must be callable (outputs -> (boxes, scores, labels)), got "
                f"{type(postprocess_fn).__name__}"
            )
        self.postprocess_fn = postprocess_fn
        self.per_item = False

    def _call(self, outputs: OVDict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            result = self.postprocess_fn(outputs)
        except Exception as exc:
            raise ValueError(f"postprocess_fn raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            what = f"a {type(result).__name__}"
            if isinstance(result, (tuple, list)):
                what += f" of {len(result)} items"
            raise ValueError(
                "for detection, postprocess_fn must return three arrays (boxes (B, N, 4) "
                f"x1, y1, x2, y2 in input pixels, scores (B, N), labels (B, N)); got {what}"
            )
        arrays = []
        for name, value in zip(("boxes", "scores", "labels"), result):
            arr = np.asarray(value)
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                           or arr.dtype == np.bool_):
                raise ValueError(f"postprocess_fn returned {name} of dtype {arr.dtype}; expected "
                                 "numbers")
            arrays.append(arr)
        boxes, scores, labels = arrays
        if boxes.ndim == 2 and boxes.shape[-1] == 4 and scores.ndim == 1 and labels.ndim == 1:
            boxes, scores, labels = boxes[None], scores[None], labels[None]
        if boxes.ndim != 3 or boxes.shape[-1] != 4:
            raise ValueError(f"postprocess_fn returned boxes of shape {boxes.shape}; expected "
                             "(B, N, 4)")
        if scores.ndim != 2 or labels.ndim != 2:
            raise ValueError(f"postprocess_fn returned scores of shape {scores.shape} and labels "
                             f"of shape {labels.shape}; expected (B, N) each")
        return boxes, scores, labels

    def __call__(self, outputs: OVDict, n: int) -> list[Detections]:
        """The detections of each of the ``n`` images of a batch."""
        if not self.per_item:
            boxes, scores, labels = self._call(outputs)
            lead = {boxes.shape[0], scores.shape[0], labels.shape[0]}
            if lead == {n}:
                return self._split(boxes, scores, labels)
            if n > 1 and lead == {1}:
                warnings.warn(
                    f"postprocess_fn returned detections for 1 image for a batch of {n}; "
                    "calling it one image at a time (return (B, N, ...) arrays, one row per "
                    "image, to avoid this)",
                    PostprocessWarning, stacklevel=2,
                )
                self.per_item = True
            else:
                raise ValueError(
                    f"postprocess_fn returned boxes {boxes.shape}, scores {scores.shape} and "
                    f"labels {labels.shape} for a batch of {n} images; expected a leading "
                    f"dimension of {n}"
                )
        found: list[Detections] = []
        for i in range(n):
            one = OVDict({port: arr[i: i + 1] for port, arr in outputs.items()})
            found.extend(self._split(*self._call(one))[:1])
        return found

    @staticmethod
    def _split(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> list[Detections]:
        out = []
        for b in range(boxes.shape[0]):
            nb, ns, nl = boxes.shape[1], scores.shape[1], labels.shape[1]
            if not nb == ns == nl:
                raise ValueError(
                    f"postprocess_fn returned {nb} boxes, {ns} scores and {nl} labels for image "
                    f"{b}; the three must have the same length"
                )
            bx = boxes[b].astype(np.float64)
            sc = scores[b].astype(np.float64)
            if not (np.all(np.isfinite(bx)) and np.all(np.isfinite(sc))):
                raise ValueError(f"postprocess_fn returned a non-finite box or score for image "
                                 f"{b}")
            lb = labels[b]
            if np.issubdtype(lb.dtype, np.floating):
                if not np.all(np.isfinite(lb)):
                    raise ValueError(f"postprocess_fn returned a non-finite label for image {b}")
                lb = np.rint(lb)
            out.append(Detections(bx, sc, lb.astype(np.int64)))
        return out


@dataclass(frozen=True)
class TargetBoxes:
    """The boxes chosen for explanation.

    Attributes
    ----------
    indices
        Box indices (as the postprocess function numbered them) that are explained.
    boxes
        ``(T, 4)`` float64, those boxes clipped to the image (what the search uses).
    labels
        ``(T,)`` int64.
    predictions
        ``{index: Prediction(label, score, box as returned)}``.
    """

    indices: list[int]
    boxes: np.ndarray
    labels: np.ndarray
    predictions: dict[int, Any]


def _box_warning(message: str) -> None:
    logger.debug(message)
    warnings.warn(message, DetectionBoxWarning, stacklevel=3)


def select_target_boxes(found: Detections, targets: Any, height: int, width: int
                        ) -> TargetBoxes:
    """Resolve detection ``targets`` (box indices; ``-1``/``None`` for all) on the unmasked
    detections; clip boxes to the image, skip degenerate ones with a warning naming them.

    Raises
    ------
    ValueError
        A label name or other non-integer target, or an index out of range.
    """
    from salvo.explainer.explanation import Prediction

    targets = _scalar(targets)
    items = [targets] if isinstance(targets, (str, int, np.integer)) or targets is None \
        else list(targets) if isinstance(targets, (list, tuple, np.ndarray)) else [targets]
    for t in items:
        if t is None:
            continue
        if isinstance(t, str):
            raise ValueError(
                f"targets: {t!r} is a name, but detection targets are box indices (ints, or -1 "
                "for every box the model found)"
            )
    n = len(found)
    all_boxes = targets is None or (
        isinstance(targets, (int, np.integer)) and not isinstance(targets, bool)
        and int(targets) == -1
    )
    if n == 0 and not all_boxes:
        raise ValueError(
            f"targets: box indices {targets!r} were asked, but the model found no boxes on this "
            "image"
        )
    keys = [] if n == 0 else resolve_targets(targets, n, None, what="box")
    indices: list[int] = []
    boxes = []
    labels = []
    predictions: dict[int, Any] = {}
    normalised = n > 0 and float(np.max(np.abs(found.boxes))) <= 1.5 and min(height, width) > 16
    for k in keys:
        raw = found.boxes[k]
        x1, y1, x2, y2 = (float(v) for v in raw)
        if not (x2 > x1 and y2 > y1):
            _box_warning(f"skipping box {k} (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}): it "
                         "is empty (x2 <= x1 or y2 <= y1)")
            continue
        clipped = np.array([min(max(x1, 0.0), width), min(max(y1, 0.0), height),
                            min(max(x2, 0.0), width), min(max(y2, 0.0), height)])
        if not (clipped[2] > clipped[0] and clipped[3] > clipped[1]):
            _box_warning(f"skipping box {k} (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}): it "
                         f"lies outside the {width}x{height} input image")
            continue
        if np.max(np.abs(clipped - raw)) > _BOX_SLACK:
            _box_warning(f"box {k} (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}) extends past "
                         f"the {width}x{height} input image; it is clipped to it")
        indices.append(int(k))
        boxes.append(clipped)
        labels.append(int(found.labels[k]))
        predictions[int(k)] = Prediction(label=int(found.labels[k]),
                                         score=float(found.scores[k]),
                                         bounding_box=(x1, y1, x2, y2))
    if normalised:
        _box_warning(f"all boxes from postprocess_fn lie within [0, 1.5]: they look normalised, "
                     f"but salvo expects x1, y1, x2, y2 in input pixels ({width}x{height}); "
                     "multiply them by the input size in postprocess_fn")
    return TargetBoxes(indices, np.asarray(boxes, np.float64).reshape(-1, 4),
                       np.asarray(labels, np.int64), predictions)


def no_box_message(method: str, num_found: int) -> str:
    """Why a detection explanation holds no map."""
    if num_found == 0:
        return (f"{method}: the model found no box on this image, so there is nothing to explain "
                "(check postprocess_fn's score threshold and the input)")
    return (f"{method}: none of the {num_found} boxes the model found could be explained (see "
            "the warnings about them)")


# ----------------------------------------------------------------------------- the search

def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) overflows for x < -709: the sigmoid is then 0
        return 1.0 / (1.0 + np.exp(-x))


@dataclass
class SearchOutcome:
    """What the batched searches produced.

    Attributes
    ----------
    maps
        ``(T, H, W)`` float32, the unscaled AISE maps (each normalised to max 1 when positive).
    history
        ``(T, K, N, 3)`` float64: for every target, width and evaluation, ``(cx, cy, value)``.
    num_inferences
        Masked inferences run.
    num_rounds
        DIRECT iterations (rounds of batched inference).
    flat
        ``(T,)`` bool: targets whose objective was flat (it did not vary over their evaluations
        beyond float32 resolution at the magnitude of the scores it is made of, e.g. every
        score saturated by the sigmoid); their maps are zeros.
    """

    maps: np.ndarray
    history: np.ndarray
    num_inferences: int
    num_rounds: int
    flat: np.ndarray | None = None


class _Round:
    """The masked images of one DIRECT round: ``per_eval`` images per point, in point order
    (``x * g`` first, then ``x * (1 - g)`` when two), written into the engine's requests."""

    def __init__(self, points: np.ndarray, owner: np.ndarray, sigmas: np.ndarray,
                 per_eval: int, image: np.ndarray, layout: str, buffer: np.ndarray,
                 image_values: Callable[[OVDict, np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.num_images = points.shape[0] * per_eval
        index = np.arange(self.num_images)
        evaluation = index // per_eval
        self.cx = points[evaluation, 0]
        self.cy = points[evaluation, 1]
        self.sigma = sigmas[owner[evaluation]]
        self.owner = owner[evaluation]
        self.kind = index % per_eval
        self.scores = np.empty(self.num_images, np.float64)
        self.image = image
        self.layout = layout
        self.buffer = buffer
        self.image_values = image_values

    def fill(self, out: np.ndarray, start: int, stop: int) -> None:
        height, width = self.buffer.shape[1:]
        for a in range(start, stop, self.buffer.shape[0]):
            b = min(stop, a + self.buffer.shape[0])
            masks = render_masks(self.cx[a:b], self.cy[a:b], self.sigma[a:b], height, width,
                                 self.kind[a:b] == 1, out=self.buffer)
            fill_masked(self.image, masks, out[a - start: b - start], self.layout, 1)

    def consume(self, start: int, stop: int, outputs: OVDict) -> None:
        self.scores[start:stop] = self.image_values(outputs, self.owner[start:stop],
                                                    self.kind[start:stop])


def run_searches(
    engine: InferenceEngine,
    image: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    sigmas: np.ndarray,
    budget: int,
    eps: float,
    locally_biased: bool,
    num_targets: int,
    preserve_and_delete: bool,
    image_values: Callable[[OVDict, np.ndarray, np.ndarray], np.ndarray],
    bar: Any = None,
) -> SearchOutcome:
    """Run ``S = T * K`` AISE searches together and build the ``T`` maps.

    Parameters
    ----------
    engine
        The compiled model.
    image
        The preprocessed image as :func:`~salvo.methods.blackbox.base.image_for_fill` gives it.
    lower, upper
        ``(S, 2)`` search boxes for ``(cx, cy)``; search ``s`` belongs to target ``s // K``.
    sigmas
        ``(S,)`` kernel widths.
    budget, eps, locally_biased
        DIRECT's evaluations per search, epsilon and variant.
    num_targets
        ``T``.
    preserve_and_delete
        Two images per evaluation (``x * g`` then ``x * (1 - g)``, value = difference) or one
        (``x * g``, value = its score).
    image_values
        ``image_values(outputs, search_of_image, kind_of_image) -> (n,)`` float64: the score of
        each image of a batch for its search's target (``kind`` 0 = ``x * g``, 1 = ``x * (1-g)``).
    bar
        Optional progress (a :class:`~salvo._progress.RunProgress` or a tqdm bar: anything
        with ``update(n)``), advanced by images.

    A target whose objective is flat — the spread of its values over all its evaluations (all
    widths) at most :data:`~salvo.methods.blackbox.base.FLAT_RELATIVE` times the largest
    absolute image score its evaluations were made of — gets a zero map and is marked in
    :attr:`SearchOutcome.flat` (the kernel-density of the points DIRECT happened to try would
    otherwise look like a confident map).
    """
    height, width = engine.input.image_size
    layout = engine.input.layout
    num_searches = lower.shape[0]
    per_eval = 2 if preserve_and_delete else 1
    opt = BatchedDirect(lower, upper, budget, eps=eps, locally_biased=locally_biased)
    buffer = np.empty((min(_MASK_BUFFER, max(engine.batch_size, 1)), height, width), np.float32)
    inferences = 0
    magnitude = np.zeros(num_searches, np.float64)  # the largest |image score| per search
    while not opt.done:
        points, owner = opt.ask()
        batch = _Round(points, owner, sigmas, per_eval, image, layout, buffer, image_values)
        engine.run(batch.num_images, batch.fill, batch.consume,
                   progress=None if bar is None else bar.update)
        inferences += batch.num_images
        np.maximum.at(magnitude, batch.owner, np.abs(batch.scores))
        if preserve_and_delete:
            values = batch.scores[0::2] - batch.scores[1::2]
        else:
            values = batch.scores
        opt.tell(-values)  # DIRECT minimises

    kernels = num_searches // num_targets
    history = np.empty((num_targets, kernels, budget, 3), np.float64)
    maps = np.empty((num_targets, height, width), np.float32)
    per_width = np.empty((height, width), np.float64)
    flat = np.zeros(num_targets, bool)
    for t in range(num_targets):
        total = np.zeros((height, width), np.float64)
        for k in range(kernels):
            s = t * kernels + k
            pts = opt.points(s)
            vals = -opt.values(s)
            history[t, k, :, :2] = pts
            history[t, k, :, 2] = vals
            per_width[:] = 0.0
            kde_accumulate(per_width, pts[:, 0], pts[:, 1], np.full(len(vals), sigmas[s]), vals)
            peak = per_width.max()
            if peak > 0:
                per_width /= peak
            total += per_width
        values = history[t, :, :, 2]
        flat[t] = bool(is_flat(values.max() - values.min(),
                               magnitude[t * kernels : (t + 1) * kernels].max())[()])
        if flat[t]:
            maps[t] = 0.0
            continue
        peak = total.max()
        if peak != 0:
            # as the reference: a negative maximum flips the map's order
            total /= peak
        if peak <= 0:
            logger.debug("AISE map of target %d has no positive value (max %g)", t, peak)
        maps[t] = total
    return SearchOutcome(maps=maps, history=history, num_inferences=inferences,
                         num_rounds=opt.num_rounds, flat=flat)


def _scaled_uint8(maps: np.ndarray) -> np.ndarray:
    """Min-max each map of ``(T, H, W)`` to uint8 [0, 255] (rounded)."""
    flat = maps.reshape(maps.shape[0], -1).astype(np.float64)
    lo = flat.min(axis=1, keepdims=True) if flat.size else flat
    hi = flat.max(axis=1, keepdims=True) if flat.size else flat
    scaled = np.round(255.0 * (flat - lo) / (hi - lo + 1e-12))
    return scaled.astype(np.uint8).reshape(maps.shape)


def _progress(show: bool | None, total: int) -> RunProgress:
    return RunProgress(total, desc="AISE", unit="inference", show=show)


class _AISEBase(BlackBoxMethod):
    """What the classification and detection variants share (parameters:
    :class:`~salvo.methods.blackbox.base.BlackBoxMethod`)."""

    name = "AISE"

    def engine_defaults(self, device_name: str, engine_kwargs: dict[str, Any]
                        ) -> dict[str, Any]:
        if engine_kwargs.get("batch_size") is None:
            if is_cpu_only(device_name):
                engine_kwargs["batch_steps"] = CPU_BATCH_STEPS
            else:
                engine_kwargs["batch_size"] = DEFAULT_BATCH_SIZE
        return engine_kwargs

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        expected = self.engine.input.shape[1:]
        x = np.asarray(x)
        if x.ndim == len(expected):
            x = x[None]
        if x.ndim != len(expected) + 1 or x.shape[0] != 1 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must be one preprocessed input of shape (1, {', '.join(map(str, expected))}),"
                f" got {x.shape}"
            )
        return x


class AISEClassification(_AISEBase):
    """AISE for classification models on the batched asynchronous engine (parameters:
    :class:`~salvo.methods.blackbox.base.BlackBoxMethod`)."""

    postprocess_contract = ("raw outputs -> class scores (B, num_classes), logits or "
                            "probabilities")

    def explain(
        self,
        x: np.ndarray,
        targets: Any,
        *,
        label_names: Sequence[str] | None = None,
        progress: bool | None = None,
        **params: Any,
    ) -> BlackBoxResult:
        """Explain ``x`` ``(1, ...)`` for ``targets`` (int, name, list, ``-1``/``None`` for all).

        ``params``: ``preset``, ``num_iterations_per_kernel``, ``kernel_widths``,
        ``solver_epsilon``, ``locally_biased``, ``scale_output``. They are checked before any
        inference runs.

        Returns
        -------
        BlackBoxResult
            ``maps`` ``(T, H, W)``; ``num_inferences = 1 + 2 * T * K * N``; ``extra`` holds
            ``history`` ``(T, K, N, 3)`` (centre x, centre y, objective), ``num_rounds``,
            ``seconds`` and ``params``.
        """
        t0 = time.perf_counter()
        aise = resolve_classification_params(**params)
        x = self._check_input(x)
        engine = self.engine
        height, width = engine.input.image_size
        image = image_for_fill(x, engine)
        scorer = Scorer(self.postprocess_fn)
        unmasked = scorer(self.unmasked_outputs(x), 1)[0]
        num_classes = unmasked.shape[0]
        keys = resolve_targets(targets, num_classes, label_names)
        num_widths = len(aise.kernel_widths)
        per_target = 2 * num_widths * aise.num_iterations_per_kernel
        warn_long_run("AISE", 1 + per_target * len(keys), len(keys), per_target,
                      f"2 images x {num_widths} kernel widths x "
                      f"{aise.num_iterations_per_kernel} iterations", stacklevel=4)
        columns = np.asarray(keys, np.intp)
        num_searches = len(keys) * num_widths
        lower = np.zeros((num_searches, 2))
        upper = np.ones((num_searches, 2))
        sigmas = np.tile(np.asarray(aise.kernel_widths, np.float64), len(keys))
        search_column = np.repeat(columns, num_widths)

        def image_values(outputs: OVDict, owner: np.ndarray, kind: np.ndarray) -> np.ndarray:
            n = owner.shape[0]
            scores = scorer(outputs, n)
            if scores.shape[1] != num_classes:
                raise ValueError(
                    f"postprocess_fn returned {scores.shape[1]} classes for masked inputs and "
                    f"{num_classes} for the unmasked one"
                )
            picked = scores[np.arange(n), search_column[owner]].astype(np.float64)
            outside = (scores.max(axis=1) > 1) | (scores.min(axis=1) < 0)
            return np.where(outside, _sigmoid(picked), picked)

        show = self.progress if progress is None else progress
        budget = aise.num_iterations_per_kernel
        bar = _progress(show, 2 * num_searches * budget)
        try:
            outcome = run_searches(
                engine, image, lower, upper, sigmas, budget, aise.solver_epsilon,
                aise.locally_biased, len(keys), True, image_values, bar,
            )
        finally:
            bar.close()
        warn_uninformative("AISE", outcome.flat, keys,
                           "its objective (the score difference of the preserved and the deleted "
                           "image, through the sigmoid for scores outside [0, 1]) did not vary")
        maps = _scaled_uint8(outcome.maps) if aise.scale_output else outcome.maps
        return BlackBoxResult(
            maps=maps,
            targets=keys,
            predictions=predictions_for(unmasked, keys),
            num_inferences=outcome.num_inferences + 1,
            extra={"history": outcome.history, "num_rounds": outcome.num_rounds,
                   "seconds": time.perf_counter() - t0, "params": aise,
                   "kernel_widths": np.tile(np.asarray(aise.kernel_widths), (len(keys), 1)),
                   "input_size": (height, width)},
        )


class AISEDetection(_AISEBase):
    """AISE for detection models on the batched asynchronous engine (parameters:
    :class:`~salvo.methods.blackbox.base.BlackBoxMethod`)."""

    postprocess_contract = DETECTION_CONTRACT

    def detect(self, x: np.ndarray) -> Detections:
        """The detections on the unmasked input ``x`` ``(1, ...)`` (one inference)."""
        x = self._check_input(x)
        return DetectionReader(self.postprocess_fn)(self.unmasked_outputs(x), 1)[0]

    def explain(
        self,
        x: np.ndarray,
        targets: Any,
        *,
        label_names: Sequence[str] | None = None,
        progress: bool | None = None,
        **params: Any,
    ) -> BlackBoxResult:
        """Explain the boxes ``targets`` (indices into the detections on ``x``; ``-1``/``None``
        for all) of the preprocessed input ``x`` ``(1, ...)``.

        ``params``: ``preset``, ``num_iterations_per_kernel``, ``divisors``, ``solver_epsilon``,
        ``locally_biased``, ``scale_output``; checked before any inference runs.

        Returns
        -------
        BlackBoxResult
            One map per explained box (``(0, H, W)`` when the model found none); degenerate
            boxes are skipped with a warning. ``num_inferences = 1 + T * K * N``.
        """
        t0 = time.perf_counter()
        aise = resolve_detection_params(**params)
        x = self._check_input(x)
        engine = self.engine
        height, width = engine.input.image_size
        image = image_for_fill(x, engine)
        reader = DetectionReader(self.postprocess_fn)
        found = reader(self.unmasked_outputs(x), 1)[0]
        chosen = select_target_boxes(found, targets, height, width)
        num_targets = len(chosen.indices)
        dtype = np.uint8 if aise.scale_output else np.float32
        if num_targets == 0:
            _box_warning(no_box_message("AISE", len(found)))
            return BlackBoxResult(
                maps=np.zeros((0, height, width), dtype), targets=[], predictions={},
                num_inferences=1,
                extra={"history": np.zeros((0, len(aise.divisors),
                                            aise.num_iterations_per_kernel, 3)),
                       "num_rounds": 0, "seconds": time.perf_counter() - t0, "params": aise,
                       "kernel_widths": np.zeros((0, len(aise.divisors))),
                       "input_size": (height, width)},
            )
        divisors = np.asarray(aise.divisors, np.float64)
        num_widths = divisors.shape[0]
        per_target = num_widths * aise.num_iterations_per_kernel
        warn_long_run("AISE", 1 + per_target * num_targets, num_targets, per_target,
                      f"{num_widths} divisors x {aise.num_iterations_per_kernel} iterations",
                      stacklevel=4)
        scale = np.array([width, height, width, height], np.float64)
        norm = chosen.boxes / scale
        box_w = norm[:, 2] - norm[:, 0]
        box_h = norm[:, 3] - norm[:, 1]
        widths = np.minimum(box_w, box_h)[:, None] / divisors[None, :]  # (T, K)
        lo = np.stack([np.maximum(norm[:, 0] - 0.5 * box_w, 0.0),
                       np.maximum(norm[:, 1] - 0.5 * box_h, 0.0)], axis=1)
        hi = np.stack([np.minimum(norm[:, 2] + 0.5 * box_w, 1.0),
                       np.minimum(norm[:, 3] + 0.5 * box_h, 1.0)], axis=1)
        lower = np.repeat(lo, num_widths, axis=0)
        upper = np.repeat(hi, num_widths, axis=0)
        sigmas = widths.reshape(-1)
        target_of_search = np.repeat(np.arange(num_targets), num_widths)

        def image_values(outputs: OVDict, owner: np.ndarray, kind: np.ndarray) -> np.ndarray:
            detections = reader(outputs, owner.shape[0])
            out = np.empty(owner.shape[0], np.float64)
            for i, det in enumerate(detections):
                t = target_of_search[owner[i]]
                out[i] = match_scores(chosen.boxes[t], int(chosen.labels[t]), det)
            return out

        show = self.progress if progress is None else progress
        budget = aise.num_iterations_per_kernel
        bar = _progress(show, sigmas.shape[0] * budget)
        try:
            outcome = run_searches(
                engine, image, lower, upper, sigmas, budget, aise.solver_epsilon,
                aise.locally_biased, num_targets, False, image_values, bar,
            )
        finally:
            bar.close()
        warn_uninformative("AISE", outcome.flat, list(chosen.indices),
                           "its objective (IoU x score of the best match) did not vary")
        maps = _scaled_uint8(outcome.maps) if aise.scale_output else outcome.maps
        return BlackBoxResult(
            maps=maps,
            targets=list(chosen.indices),
            predictions=chosen.predictions,
            num_inferences=outcome.num_inferences + 1,
            extra={"history": outcome.history, "num_rounds": outcome.num_rounds,
                   "seconds": time.perf_counter() - t0, "params": aise,
                   "kernel_widths": widths, "input_size": (height, width)},
        )
