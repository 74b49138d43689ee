"""ADCC: Average Drop, Coherency, Complexity (Poppi et al., CVPR-W 2021).

The harmonic mean of

- **coherency** ``(Pearson(map, map') + 1) / 2``, where ``map'`` is the map the *same
  explainer* gives for the image masked by the map (``image * map``);
- **1 - complexity**, complexity being the mean of the [0, 1] map;
- **1 - average drop**, the relative score drop ``max(0, s(image) - s(image * map)) / s(image)``.

Higher is better. The model's two scores per map run as one batched engine run (all maps'
at once in :meth:`ADCC.evaluate`); the re-explanation is the explainer's own call.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from salvo.common import PER_IMAGE_MAP
from salvo.errors import IgnoredArgumentWarning, MetricWarning
from salvo.metrics.base import (
    BaseMetric,
    PerThreadCounter,
    check_class_idx,
    check_image,
    check_map,
    check_same_length,
    explanation_maps,
    min_max_unit,
    target_of,
)

logger = logging.getLogger(__name__)

__all__ = ["ADCC", "adcc_from_components", "correlation", "pearson"]


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of two arrays with the same number of elements (flattened, computed
    in float64), clipped to [-1, 1].

    Returns
    -------
    float or None
        ``None`` when the correlation is undefined: an array is constant. (NaN in an array
        gives NaN.)

    Raises
    ------
    ValueError
        An empty array, or arrays of different sizes.
    """
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    constant = np.ptp(x) == 0 or np.ptp(y) == 0
    x = x - x.mean()
    y = y - y.mean()
    denom = math.sqrt(float(x @ x) * float(y @ y))
    if constant or denom == 0.0:
        return None
    return float(np.clip((x @ y) / denom, -1.0, 1.0))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """ADCC's coherency correlation: :func:`correlation` of two equally shaped arrays.

    A constant array has no defined correlation; salvo defines it as 0.0 (coherency 0.5) and
    warns (:class:`~salvo.errors.MetricWarning`), where SciPy's ``pearsonr`` (the reference)
    returns NaN.
    """
    r = correlation(a, b)
    if r is None:
        warnings.warn(
            "ADCC coherency: a saliency map is constant, its correlation is undefined; "
            "using 0 (coherency 0.5)",
            MetricWarning, stacklevel=2,
        )
        return 0.0
    return r


def adcc_from_components(coherency: float, complexity: float, average_drop: float) -> float:
    """``3 / (1 / coherency + 1 / (1 - complexity) + 1 / (1 - average_drop))``.

    When a term is 0 (coherency 0, complexity 1 or average drop 1) the harmonic mean's limit,
    0.0, is returned instead of a division by zero.
    """
    terms = (coherency, 1.0 - complexity, 1.0 - average_drop)
    if min(terms) <= 0.0:
        return 0.0
    return 3.0 / sum(1.0 / t for t in terms)


class ADCC(BaseMetric):
    """ADCC (the reference's ``ADCC``), its model scores batched on the engine.

    Parameters
    ----------
    model, preprocess_fn, postprocess_fn, device_name
        As the reference. ``postprocess_fn`` should return probabilities: the average drop
        reads scores as confidences.
    explainer
        The :class:`~salvo.explainer.explainer.Explainer` that made the maps; it re-explains
        each masked image (called as ``explainer(masked_image, targets=class_idx,
        colormap=False, scaling=False, **kwargs)``).
    batch_size, num_requests, precision, performance_hint
        The metric engine's settings (keyword-only; they are *not* passed to the explainer).
    **kwargs
        Passed to every explainer call (``num_masks=…``, ``progress=False``, …), as the
        reference's ``black_box_kwargs``.

    Notes
    -----
    Defined results where the reference gives NaN, infinity or garbage:

    - a score ``<= 0`` for the class on the unmasked image is a ``ValueError`` (the average
      drop divides by it: use probabilities);
    - the average drop is clipped to [0, 1] (it exceeds 1 only for negative scores);
    - a constant map has coherency 0.5 (see :func:`pearson`);
    - a zero term makes ADCC 0.0 (see :func:`adcc_from_components`).

    Maps and images of different sizes, and an empty dataset, are a ``ValueError``.
    """

    #: Explainer inferences of this thread's last call (the coherency re-explanations).
    explainer_inferences = PerThreadCounter()

    def __init__(
        self,
        model: Any,
        preprocess_fn: Callable[[np.ndarray], np.ndarray],
        postprocess_fn: Callable[[Any], Any],
        explainer: Callable[..., Any],
        device_name: str = "CPU",
        *,
        batch_size: int | None = None,
        num_requests: int | None = None,
        precision: str | None = None,
        performance_hint: str = "THROUGHPUT",
        **kwargs: Any,
    ) -> None:
        if model is None:
            raise ValueError("ADCC needs the model (it scores the masked images)")
        if not callable(explainer):
            raise TypeError(f"explainer must be callable (an Explainer), got "
                            f"{type(explainer).__name__}")
        super().__init__(
            model, preprocess_fn, postprocess_fn, device_name, batch_size=batch_size,
            num_requests=num_requests, precision=precision, performance_hint=performance_hint,
        )
        self.explainer = explainer
        self.black_box_kwargs = kwargs
        #: Inferences the explainer reported for the re-explanations of the last call.
        self.explainer_inferences = 0

    # ------------------------------------------------------------------ components
    @staticmethod
    def _average_drop(confidence_on_input: float, confidence_on_map: float,
                      class_idx: int) -> float:
        if not confidence_on_input > 0:
            raise ValueError(
                f"ADCC: the score of class {class_idx} on the unmasked image is "
                f"{confidence_on_input:g}; the average drop needs positive confidences "
                "(make postprocess_fn return probabilities, e.g. a softmax)"
            )
        drop = max(0.0, confidence_on_input - confidence_on_map) / confidence_on_input
        return min(drop, 1.0)

    def average_drop(self, masked_image: np.ndarray, class_idx: int,
                     model_output: np.ndarray) -> float:
        """Relative drop of the class score on ``masked_image`` (one inference).

        Parameters
        ----------
        masked_image
            The raw image multiplied by the [0, 1] map.
        class_idx
            The class.
        model_output
            ``(num_classes,)`` scores on the unmasked image.
        """
        on_map = float(self.model_predict(masked_image)[class_idx])
        return self._average_drop(float(model_output[class_idx]), on_map, class_idx)

    def coherency(self, saliency_map: np.ndarray, masked_image: np.ndarray, class_idx: int,
                  image: np.ndarray | None = None) -> float:
        """``(Pearson(map, explainer(masked_image) map) + 1) / 2``.

        Parameters
        ----------
        saliency_map
            ``(H, W)`` map in [0, 1].
        masked_image
            The raw image multiplied by the map.
        class_idx
            The class to re-explain.
        image
            Unused (the reference's signature).
        """
        explanation = self.explainer(
            masked_image, targets=int(class_idx), colormap=False, scaling=False,
            **self.black_box_kwargs,
        )
        self.explainer_inferences += int(getattr(explanation, "num_inferences", 0) or 0)
        maps = explanation.saliency_map
        if class_idx in maps:
            again = maps[class_idx]
        elif PER_IMAGE_MAP in maps:
            again = maps[PER_IMAGE_MAP]
        elif len(maps) == 1:
            again = next(iter(maps.values()))
        else:
            raise ValueError(
                f"the explainer returned maps for {list(maps)[:10]}, not for class {class_idx}"
            )
        again = check_map(again, "the re-explained map")
        if again.shape != np.shape(saliency_map):
            raise ValueError(
                f"the explainer's map of the masked image is {again.shape} but the saliency map "
                f"is {np.shape(saliency_map)}; explain at the image size (resize=True)"
            )
        return (pearson(saliency_map, min_max_unit(again)) + 1.0) / 2.0

    @staticmethod
    def complexity(saliency_map: np.ndarray) -> float:
        """Mean of the [0, 1] map (its L1 norm per pixel)."""
        smap = np.asarray(saliency_map)
        return float(smap.sum(dtype=np.float64) / (smap.shape[-1] * smap.shape[-2]))

    # ------------------------------------------------------------------ per map
    @staticmethod
    def _unit_map(saliency_map: Any, input_image: Any, name: str, image_name: str
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The map in [0, 1] (min-max scaled unless it already is, as the reference) and the
        checked image."""
        smap = check_map(saliency_map, name)
        image = check_image(input_image, smap.shape, image_name)
        if not (0 <= np.min(smap) and np.max(smap) <= 1):
            smap = min_max_unit(smap)
        return smap, image

    def __call__(
        self, saliency_map: np.ndarray, class_idx: int | None, input_image: np.ndarray
    ) -> dict[str, float]:
        """ADCC of one map.

        Parameters
        ----------
        saliency_map
            ``(H, W)`` map; min-max scaled to [0, 1] unless already in [0, 1].
        class_idx
            The class it explains; ``None`` takes the top-1 class on ``input_image``.
        input_image
            ``(H, W, C)`` raw image (what ``preprocess_fn`` takes), the map's size.

        Returns
        -------
        dict
            ``{"adcc", "coherency", "complexity", "average_drop"}`` floats.
        """
        cls = check_class_idx(class_idx)
        smap, image = self._unit_map(saliency_map, input_image, "saliency_map", "input_image")
        self.check_input_images([image], ["input_image"])
        masked = _masked(image, smap)
        self.num_inferences = 0
        self.explainer_inferences = 0
        scores = self.predict_images([image, masked])
        if cls is None:
            cls = int(np.argmax(scores[0]))
        _check_range(cls, scores.shape[1])
        drop = self._average_drop(float(scores[0, cls]), float(scores[1, cls]), cls)
        coh = self.coherency(smap, masked, cls, image)
        com = self.complexity(smap)
        return {"adcc": adcc_from_components(coh, com, drop), "coherency": coh,
                "complexity": com, "average_drop": drop}

    # ------------------------------------------------------------------ dataset
    def evaluate(
        self, explanations: Sequence[Any], input_images: Sequence[np.ndarray], **kwargs: Any
    ) -> dict[str, float]:
        """ADCC over every map of every explanation.

        Components are averaged over maps, then combined (as the reference does). The model
        scores of all images and masked images run as one batched engine run.

        Returns
        -------
        dict
            ``{"adcc", "coherency", "complexity", "average_drop"}`` floats.
        """
        if kwargs:
            warnings.warn(f"ADCC.evaluate ignores keyword argument(s) {sorted(kwargs)}",
                          IgnoredArgumentWarning, stacklevel=2)
        walked = list(explanation_maps(explanations))
        check_same_length(explanations, input_images, "input_images")
        if not walked:
            raise ValueError("the explanations hold no saliency maps: there is nothing to evaluate")
        units: list[np.ndarray] = []
        classes: list[int | None] = []
        owners: list[int] = []
        checked: dict[int, np.ndarray] = {}
        for i, key, smap, _ in walked:
            unit, image = self._unit_map(
                smap, input_images[i], f"explanations[{i}].saliency_map[{key!r}]",
                f"input_images[{i}]",
            )
            checked.setdefault(i, image)
            units.append(unit)
            classes.append(target_of(key))
            owners.append(i)
        image_ids = sorted(checked)
        self.check_input_images([checked[i] for i in image_ids],
                                [f"input_images[{i}]" for i in image_ids])
        slot = {i: n for n, i in enumerate(image_ids)}

        def masked(m: int) -> np.ndarray:
            return _masked(checked[owners[m]], units[m])

        def make_image(item: int) -> np.ndarray:
            # the images first, then one masked image per map (built when its turn comes)
            if item < len(image_ids):
                return checked[image_ids[item]]
            return masked(item - len(image_ids))

        rows_of_scores: list[np.ndarray] = []
        self.num_inferences = 0
        self.explainer_inferences = 0
        self.score_images(len(image_ids) + len(units), make_image,
                          lambda start, scores: rows_of_scores.append(scores))
        scores = np.concatenate(rows_of_scores, axis=0)
        on_images, on_masked = scores[: len(image_ids)], scores[len(image_ids):]
        rows = []
        for m, unit in enumerate(units):
            base = on_images[slot[owners[m]]]
            cls = classes[m]
            if cls is None:
                cls = int(np.argmax(base))
            _check_range(cls, scores.shape[1])
            drop = self._average_drop(float(base[cls]), float(on_masked[m, cls]), cls)
            rows.append((self.coherency(unit, masked(m), cls), self.complexity(unit), drop))
        coherency, complexity, average_drop = (float(v) for v in np.mean(rows, axis=0))
        return {
            "adcc": adcc_from_components(coherency, complexity, average_drop),
            "coherency": coherency,
            "complexity": complexity,
            "average_drop": average_drop,
        }


def _masked(image: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """``image * map`` (the map broadcast over channels), as the reference computes it."""
    return image * (unit[:, :, None] if image.ndim == 3 else unit)


def _check_range(class_idx: int, num_classes: int) -> None:
    if class_idx >= num_classes:
        raise ValueError(
            f"class index {class_idx} is out of range: postprocess_fn returns {num_classes} "
            "classes"
        )
