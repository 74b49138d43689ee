"""Insertion and deletion AUC (Petsiuk et al., arXiv 1806.07421), batched on the engine.

Pixels are ranked by saliency. For ``steps + 1`` fractions ``int(i * N / steps) / N``
(``i = 0 .. steps``, ``N = H * W``), *insertion* shows the top pixels of the image on a black
(zero) canvas and *deletion* blacks them out of the image; the model scores the class after
each step, and each curve's area (trapezoid rule, x from 0 to 1) is the metric. A faithful map
gives a high insertion and a low deletion AUC.

Every perturbed image of every map — ``2 * (steps + 1)`` per map, both curves — goes through
the engine in **one** batched run; images are built on demand from a per-map pixel ranking and
written into the infer requests while the device runs the previous batches.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from salvo.errors import IgnoredArgumentWarning
from salvo.metrics.base import (
    BaseMetric,
    check_class_idx,
    check_image,
    check_map,
    check_same_length,
    explanation_maps,
    target_of,
)

logger = logging.getLogger(__name__)

__all__ = ["AUC", "InsertionDeletionAUC", "InsertionDeletionCurves", "pixel_order"]

_DELETION, _INSERTION = 0, 1


def AUC(arr: np.ndarray) -> float:
    """Normalised area under a curve sampled at ``len(arr)`` evenly spaced x in [0, 1].

    ``|sum(arr) - arr[0] / 2 - arr[-1] / 2| / (len(arr) - 1)``: the trapezoid rule, as the
    reference computes it (including its absolute value).

    Parameters
    ----------
    arr
        ``(S + 1,)`` scores, ``S >= 1``.

    Returns
    -------
    float
    """
    arr = np.asarray(arr)
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(f"arr must be a 1-D curve of at least 2 points, got shape {arr.shape}")
    return float(np.abs((arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1)))


def check_steps(steps: Any) -> int:
    """A positive int number of steps."""
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps must be a positive int, got {steps!r}")
    if steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps}")
    return int(steps)


def pixel_order(saliency_map: np.ndarray) -> np.ndarray:
    """Flat pixel indices, most salient first: ``(H * W,)`` int64.

    The reference's order, ``np.argsort(-map.flatten())``, for float maps. Integer maps (the
    uint8 maps of ``Explanation``) are converted to float32 first: the reference negates them in
    their own dtype, where ``-x`` wraps around for uint8 and ranks zero-saliency pixels first —
    a bug salvo does not reproduce.
    """
    values = saliency_map
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float32)
    return np.argsort(-values.flatten())


@dataclass(frozen=True)
class InsertionDeletionCurves:
    """Per-map results of :meth:`InsertionDeletionAUC.evaluate_maps`.

    Attributes
    ----------
    insertion, deletion
        ``(M,)`` float64 AUC per map.
    insertion_curve, deletion_curve
        ``(M, steps + 1)`` float32 class score after each step.
    class_indices
        ``(M,)`` int64 class each map was scored on (the top-1 class where none was given).
    fractions
        ``(steps + 1,)`` float64 nominal fraction ``i / steps`` of each step (the pixel count
        is ``int(i * H * W / steps)``).
    num_inferences
        Model inferences used, ``2 * (steps + 1) * M``.
    """

    insertion: np.ndarray
    deletion: np.ndarray
    insertion_curve: np.ndarray
    deletion_curve: np.ndarray
    class_indices: np.ndarray
    fractions: np.ndarray
    num_inferences: int


class InsertionDeletionAUC(BaseMetric):
    """Insertion and deletion AUC (the reference's ``InsertionDeletionAUC``), batched.

    Parameters
    ----------
    model, preprocess_fn, postprocess_fn, device_name
        As the reference: the model, how one raw ``(H, W, C)`` image becomes its input, how raw
        outputs become class scores (``(B, num_classes)`` per batch; probabilities give AUCs
        in [0, 1]), and the device.
    batch_size, num_requests, precision, performance_hint
        The engine's settings (keyword-only; see :class:`salvo.inference.InferenceEngine`).

    Notes
    -----
    Saliency maps and images must have the same ``(H, W)``: a ``ValueError`` otherwise (the
    reference fails with an index error or silently scores the wrong pixels). ``steps`` must be
    a positive int. Black means zeros in the raw image, before ``preprocess_fn``, as in the
    reference.
    """

    @staticmethod
    def step_image_insertion_deletion(
        num_pixels: int, sorted_indices: tuple[np.ndarray, np.ndarray], input_image: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The insertion and deletion images after the top ``num_pixels`` pixels (reference API).

        Parameters
        ----------
        num_pixels
            How many of the top pixels to insert / delete.
        sorted_indices
            ``(rows, cols)`` of all pixels, most salient first (``np.unravel_index`` of the
            ranking).
        input_image
            ``(H, W, C)`` or ``(H, W)``.

        Returns
        -------
        tuple of numpy.ndarray
            ``(insertion, deletion)``, each like ``input_image``.
        """
        rows = sorted_indices[0][:num_pixels]
        cols = sorted_indices[1][:num_pixels]
        insertion = np.zeros_like(input_image)
        deletion = input_image.copy()
        insertion[rows, cols] = input_image[rows, cols]
        deletion[rows, cols] = 0
        return insertion, deletion

    # ------------------------------------------------------------------ per map
    def __call__(
        self,
        saliency_map: np.ndarray,
        class_idx: int | None,
        input_image: np.ndarray,
        steps: int = 30,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Insertion and deletion AUC of one map.

        Parameters
        ----------
        saliency_map
            ``(H, W)`` importance of each pixel, any real dtype.
        class_idx
            The class to score; ``None`` takes the model's top-1 class on ``input_image``.
        input_image
            ``(H, W, C)`` (or ``(H, W)``) raw image, as ``preprocess_fn`` takes it.
        steps
            Steps per curve (``steps + 1`` images each).

        Returns
        -------
        dict
            ``{"insertion": float, "deletion": float}``.
        """
        _warn_ignored(kwargs)
        res = self.evaluate_maps([saliency_map], [class_idx], [input_image], steps)
        return {"insertion": float(res.insertion[0]), "deletion": float(res.deletion[0])}

    # ------------------------------------------------------------------ dataset
    def evaluate(
        self,
        explanations: Sequence[Any],
        input_images: Sequence[np.ndarray],
        steps: int = 30,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Mean insertion and deletion AUC over every map of every explanation.

        All perturbed images of all maps go through the engine in one batched run.

        Parameters
        ----------
        explanations
            One Explanation per image; a per-image (ActivationMap) map is scored on the
            top-1 class.
        input_images
            The raw images, one per explanation, each the size of its maps.
        steps
            Steps per curve.

        Returns
        -------
        dict
            ``{"insertion": mean, "deletion": mean, "delta": insertion - deletion}``.

        Raises
        ------
        ValueError
            An empty list (or no maps), lengths that differ, maps and images of different
            sizes, ``steps <= 0``.
        """
        _warn_ignored(kwargs)
        maps, classes, images = [], [], []
        walked = list(explanation_maps(explanations))
        check_same_length(explanations, input_images, "input_images")
        for i, key, smap, _ in walked:
            maps.append(smap)
            classes.append(target_of(key))
            images.append(input_images[i])
        if not maps:
            raise ValueError("the explanations hold no saliency maps: there is nothing to evaluate")
        res = self.evaluate_maps(maps, classes, images, steps)
        insertion = float(np.mean(res.insertion))
        deletion = float(np.mean(res.deletion))
        return {"insertion": insertion, "deletion": deletion, "delta": insertion - deletion}

    def evaluate_maps(
        self,
        saliency_maps: Sequence[np.ndarray],
        class_indices: Sequence[int | None],
        input_images: Sequence[np.ndarray],
        steps: int = 30,
    ) -> InsertionDeletionCurves:
        """Per-map curves and AUCs, all maps in one batched engine run.

        Parameters
        ----------
        saliency_maps
            ``M`` maps ``(H_m, W_m)``.
        class_indices
            ``M`` classes (``None``: the top-1 class on the image).
        input_images
            ``M`` raw images ``(H_m, W_m, C)``; the same array may be given for several maps.
        steps
            Steps per curve.

        Returns
        -------
        InsertionDeletionCurves
        """
        steps = check_steps(steps)
        num = len(saliency_maps)
        if num == 0:
            raise ValueError("saliency_maps is empty: there is nothing to evaluate")
        if len(class_indices) != num or len(input_images) != num:
            raise ValueError(
                f"saliency_maps, class_indices and input_images must have the same length, got "
                f"{num}, {len(class_indices)} and {len(input_images)}"
            )
        maps: list[np.ndarray] = []
        images: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        classes = np.full(num, -1, np.int64)
        for m in range(num):
            smap = check_map(saliency_maps[m], f"saliency_maps[{m}]" if num > 1 else
                             "saliency_map")
            image = check_image(input_images[m], smap.shape,
                                f"input_images[{m}]" if num > 1 else "input_image")
            cls = check_class_idx(class_indices[m],
                                  f"class_indices[{m}]" if num > 1 else "class_idx")
            classes[m] = -1 if cls is None else cls
            maps.append(smap)
            images.append(np.ascontiguousarray(image))
            counts.append(np.arange(steps + 1, dtype=np.int64) * smap.size // steps)

        self.check_input_images(
            [input_images[m] for m in range(num)],
            [f"input_images[{m}]" if num > 1 else "input_image" for m in range(num)],
        )
        per_map = 2 * (steps + 1)
        curves = np.zeros((num, 2, steps + 1), np.float32)
        builder = _StepImages(maps, images, counts, steps)

        def on_scores(start: int, scores: np.ndarray) -> None:
            num_classes = scores.shape[1]
            for row, item in enumerate(range(start, start + scores.shape[0])):
                m, r = divmod(item, per_map)
                curve, i = divmod(r, steps + 1)
                if classes[m] < 0:
                    # deletion step 0 is the unperturbed image and comes first for each map
                    classes[m] = int(np.argmax(scores[row]))
                elif classes[m] >= num_classes:
                    raise ValueError(
                        f"class index {classes[m]} is out of range: postprocess_fn returns "
                        f"{num_classes} classes"
                    )
                curves[m, curve, i] = scores[row, classes[m]]

        self.num_inferences = 0
        self.score_images(num * per_map, builder, on_scores)
        insertion = np.array([AUC(c) for c in curves[:, _INSERTION]], np.float64)
        deletion = np.array([AUC(c) for c in curves[:, _DELETION]], np.float64)
        return InsertionDeletionCurves(
            insertion=insertion,
            deletion=deletion,
            insertion_curve=curves[:, _INSERTION].copy(),
            deletion_curve=curves[:, _DELETION].copy(),
            class_indices=classes,
            fractions=np.arange(steps + 1) / steps,
            num_inferences=self.num_inferences,
        )


class _StepImages:
    """``builder(item)``: the perturbed raw image of item ``item``, built incrementally.

    Items run map by map; within a map, deletion steps ``0..S`` then insertion steps ``0..S``
    (deletion step 0, the unperturbed image, comes first so a map without a class learns its
    top-1 class before its other scores arrive). Consecutive steps of a curve only touch the
    pixels that step adds or removes (``H * W / steps`` of them), so building an image costs a
    fraction of a full pass. The pixel order of one map at a time is kept. The returned array
    is read-only (it is the next step's starting point) and only valid until the next call.
    """

    def __init__(self, maps: list[np.ndarray], images: list[np.ndarray],
                 counts: list[np.ndarray], steps: int) -> None:
        self.maps, self.images, self.counts, self.steps = maps, images, counts, steps
        self.per_map = 2 * (steps + 1)
        self.map_index = -1
        self.order: np.ndarray | None = None
        self.last: tuple[int, int] | None = None
        self.buffers: dict[int, np.ndarray] = {}

    def __call__(self, item: int) -> np.ndarray:
        m, r = divmod(item, self.per_map)
        curve, i = divmod(r, self.steps + 1)
        if m != self.map_index:
            self.order = pixel_order(self.maps[m])
            self.map_index = m
            self.last = None
            self.buffers = {}
        image = self.images[m]
        n_pix = self.order.size
        source = image.reshape(n_pix, -1)
        k = self.counts[m][i]
        buf = self.buffers.get(curve)
        buf_ok = buf is not None and self.last == (curve, i - 1)
        if buf_ok:
            lo = self.counts[m][i - 1]
        else:
            buf = np.zeros_like(image) if curve == _INSERTION else image.copy()
            self.buffers[curve] = buf
            lo = 0
        buf.flags.writeable = True
        idx = self.order[lo:k]
        flat = buf.reshape(n_pix, -1)
        if curve == _INSERTION:
            flat[idx] = source[idx]
        else:
            flat[idx] = 0
        buf.flags.writeable = False
        self.last = (curve, i)
        return buf


def _warn_ignored(kwargs: dict[str, Any]) -> None:
    if kwargs:
        warnings.warn(
            f"InsertionDeletionAUC ignores keyword argument(s) {sorted(kwargs)}",
            IgnoredArgumentWarning,
            stacklevel=3,
        )
