"""Helpers of the reference toolkit's ``openvino_xai.explainer.utils``: targets, ready-made pre- and
post-processing functions, scores.

They take the reference's arguments and return its types. Where the reference misreads its
input, salvo raises a ``ValueError`` naming the argument instead, and a few of its slips are not
reproduced (each listed in the function's docstring and in ``docs/migration.md``): label names
keep the caller's order and are matched like every other salvo label name (case-insensitive,
synonyms); :func:`postprocess_fn` reads a plain dict; string activations are understood.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from functools import partial
from typing import Any

import numpy as np

from salvo._checks import is_integer
from salvo.common.utils import sigmoid, softmax
from salvo.errors import ArgumentError

__all__ = [
    "ActivationType",
    "convert_targets_to_numpy",
    "explains_all",
    "get_postprocess_fn",
    "get_preprocess_fn",
    "get_score",
    "get_target_indices",
    "postprocess_fn",
    "preprocess_fn",
    "sigmoid",
    "softmax",
]


# ------------------------------------------------------------------------------ targets


def convert_targets_to_numpy(targets: Any) -> np.ndarray:
    """``targets`` as a 1-D NumPy array (a scalar becomes one element).

    Raises
    ------
    ValueError
        ``targets`` has more than one dimension.
    """
    arr = np.asarray(targets)
    if arr.ndim > 1:
        raise ValueError(
            f"targets must be a scalar or a 1-D list, got {arr.ndim} dimensions (shape "
            f"{arr.shape})"
        )
    return np.atleast_1d(arr)


def explains_all(targets: Any) -> bool:
    """Whether ``targets`` means every class: ``-1`` (a Python or NumPy integer, or a 0-d
    array), a list, tuple or array holding only ``-1``, or the string ``"-1"``.

    (The reference also says so for ``-1`` and ``[-1]``; it says no for ``np.int64(-1)`` and
    ``(-1,)``, which salvo accepts too.)
    """
    if isinstance(targets, str):
        return targets.strip() == "-1"
    if isinstance(targets, np.ndarray):
        if targets.ndim > 1 or targets.size != 1:
            return False
        targets = targets.reshape(-1)[0]
        if isinstance(targets, str):
            return targets.strip() == "-1"
    elif isinstance(targets, (list, tuple)):
        if len(targets) != 1:
            return False
        (targets,) = targets
        if isinstance(targets, np.ndarray) and targets.ndim == 0:
            targets = targets.item()
    return is_integer(targets) and int(targets) == -1


def get_target_indices(
    targets: np.ndarray | Sequence[int | str] | int | str,
    label_names: Sequence[str] | Mapping[int, str] | None = None,
) -> list[int]:
    """The class indices ``targets`` names.

    Parameters
    ----------
    targets
        A class index, a label name, or a list / 1-D array of them (ints and names may be
        mixed). ``-1`` (all classes) is not a target here: test it with :func:`explains_all`.
    label_names
        Class names indexed by class (a list of str, or ``{index: name}``); needed for names.
        Names are matched as everywhere in salvo: the exact name, then ignoring case and
        spacing, then a comma-separated synonym (``"tabby"`` finds ``"tabby, tabby cat"``).

    Returns
    -------
    list of int
        In the caller's order, duplicates dropped. (The reference returns a NumPy array for
        integer targets, and names in ``label_names`` order, rejecting duplicates.) Indices
        are not checked against a number of classes, which is not known here.

    Raises
    ------
    ValueError
        Empty targets; a negative index; a float or bool; a name without ``label_names``, not
        in them or ambiguous; more than one dimension.
    """
    from salvo.common.targets import check_label_names, match_label

    if isinstance(targets, (list, tuple)):
        items: list[Any] = list(targets)
    else:
        items = list(convert_targets_to_numpy(targets))
    if not items:
        raise ValueError("targets is empty: give at least one class index or label name")
    names = check_label_names(label_names)
    out: list[int] = []
    for item in items:
        if isinstance(item, np.ndarray) and item.ndim == 0:
            item = item.item()
        if isinstance(item, np.str_):
            item = str(item)
        if is_integer(item):
            index = int(item)
            if index < 0:
                raise ValueError(
                    f"targets: class index {index} is negative (classes are 0, 1, ...; -1 means "
                    "every class only on its own, targets=-1)"
                )
        elif isinstance(item, str):
            if names is None:
                raise ValueError(
                    f"targets: label name {item!r} needs label_names (a list of class names)"
                )
            index = match_label(item, names, argument="targets")
        else:
            raise ValueError(
                f"targets must be class indices (int) or label names (str), got {item!r} "
                f"({type(item).__name__})"
            )
        out.append(index)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------ processing


def _vector3(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a number or one value per channel, got shape {arr.shape}")
    return arr


def preprocess_fn(
    x: np.ndarray,
    change_channel_order: bool = False,
    input_size: tuple[int, int] | None = None,
    mean: np.ndarray | Sequence[float] = (0.0, 0.0, 0.0),
    std: np.ndarray | Sequence[float] = (1.0, 1.0, 1.0),
    hwc_to_chw: bool = False,
    expand_zero_dim: bool = True,
) -> np.ndarray:
    """A typical preprocessing of one ``(H, W, C)`` picture, step by step as in the reference:
    reverse the channel order (``change_channel_order``), resize to ``input_size`` (``(width,
    height)``, OpenCV's order; bilinear), ``(x - mean) / std`` (float64), ``HWC -> CHW``
    (``hwc_to_chw``), add a batch axis (``expand_zero_dim``).

    Raises
    ------
    ValueError
        ``x`` is not an ``(H, W, C)`` picture when a step needs one, a bad ``input_size``, or a
        ``mean`` / ``std`` that does not fit the channels.
    """
    from salvo._checks import check_flag

    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"x must hold real numbers, got dtype {arr.dtype}")
    needs_hwc = check_flag(change_channel_order, "change_channel_order") or check_flag(
        hwc_to_chw, "hwc_to_chw")
    if needs_hwc and arr.ndim != 3:
        raise ValueError(f"x must be one (H, W, C) picture, got shape {arr.shape}")
    if change_channel_order:
        arr = arr[:, :, ::-1]
    if input_size is not None:
        import cv2

        try:
            width, height = (int(v) for v in input_size)
        except (TypeError, ValueError):
            raise ValueError(
                f"input_size must be (width, height), got {input_size!r}"
            ) from None
        if width < 1 or height < 1:
            raise ValueError(f"input_size must be positive (width, height), got {input_size!r}")
        arr = cv2.resize(np.ascontiguousarray(arr), (width, height))
    try:
        arr = (arr - _vector3(mean, "mean")) / _vector3(std, "std")
    except ValueError as err:
        raise ValueError(
            f"mean and std must have one value per channel of x (shape {arr.shape}): {err}"
        ) from None
    if hwc_to_chw:
        arr = arr.transpose(2, 0, 1)
    if check_flag(expand_zero_dim, "expand_zero_dim"):
        arr = arr[None]
    return arr


def get_preprocess_fn(
    change_channel_order: bool = False,
    input_size: tuple[int, int] | None = None,
    mean: np.ndarray | Sequence[float] = (0.0, 0.0, 0.0),
    std: np.ndarray | Sequence[float] = (1.0, 1.0, 1.0),
    hwc_to_chw: bool = False,
    expand_zero_dim: bool = True,
) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`preprocess_fn` with these settings, as a one-argument function."""
    return partial(
        preprocess_fn,
        change_channel_order=change_channel_order,
        input_size=input_size,
        mean=mean,
        std=std,
        hwc_to_chw=hwc_to_chw,
        expand_zero_dim=expand_zero_dim,
    )


class ActivationType(Enum):
    """The activation :func:`postprocess_fn` and :func:`get_score` apply to raw scores."""

    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"
    NONE = "none"


def _activation(activation: Any) -> ActivationType:
    if isinstance(activation, ActivationType):
        return activation
    if activation is None:
        return ActivationType.NONE
    if isinstance(activation, str):
        try:
            return ActivationType(activation.strip().lower())
        except ValueError:
            pass
    choices = ", ".join(a.name for a in ActivationType)
    raise ValueError(f"activation must be one of {choices}; got {activation!r}")


def _activate(x: np.ndarray, activation: ActivationType) -> np.ndarray:
    if activation is ActivationType.SOFTMAX:
        return softmax(x)
    if activation is ActivationType.SIGMOID:
        return sigmoid(x)
    return x


def postprocess_fn(x: Any, logit_name: str = "logits",
                   activation: ActivationType = ActivationType.NONE) -> np.ndarray:
    """The scores of raw model outputs: the output named ``logit_name`` (else the first
    output), through ``activation`` (softmax or sigmoid over the last axis, or none).

    Parameters
    ----------
    x
        The model's outputs: an ``OVDict`` (what a compiled model returns), a dict (by name;
        without ``logit_name``, its key ``0`` or its only entry), or the score array itself.
    logit_name
        The name of the scores output.
    activation
        :class:`ActivationType` or its value (``"softmax"``, ...).

    Raises
    ------
    KeyError
        No output named ``logit_name`` and no first output to fall back on.
    ValueError
        An unknown activation.
    """
    act = _activation(activation)
    if isinstance(x, np.ndarray):
        scores = x
    elif isinstance(x, Mapping):
        if logit_name in x:
            scores = x[logit_name]
        else:
            try:
                scores = x[0]
            except (KeyError, IndexError, TypeError):
                if len(x) != 1:
                    raise KeyError(
                        f"postprocess_fn: the outputs have no {logit_name!r} and no first output "
                        f"(keys: {[str(k) for k in list(x)[:10]]}); set logit_name"
                    ) from None
                (scores,) = x.values()
    elif isinstance(x, Iterable):
        scores = next(iter(x))
    else:
        raise TypeError(f"postprocess_fn: x must be the model's outputs, got {type(x).__name__}")
    return _activate(np.asarray(scores), act)


def get_postprocess_fn(logit_name: str = "logits",
                       activation: ActivationType = ActivationType.NONE
                       ) -> Callable[[Any], np.ndarray]:
    """:func:`postprocess_fn` with these settings, as a one-argument function."""
    _activation(activation)
    return partial(postprocess_fn, logit_name=logit_name, activation=activation)


def get_score(x: np.ndarray, index: int, activation: ActivationType = ActivationType.NONE
              ) -> Any:
    """The score at class ``index`` of ``x`` (``(C,)`` or one row ``(1, C)``), after
    ``activation`` over the whole row.

    Raises
    ------
    ArgumentError
        A 2-D ``x`` with more than one row (a ``ValueError``; also an ``AssertionError``, as the
        reference asserts it).
    IndexError
        ``index`` out of range.
    """
    arr = np.asarray(x)
    act = _activation(activation)
    if arr.ndim == 2:
        if arr.shape[0] != 1:
            raise ArgumentError(
                f"get_score: x must hold the scores of one image, (1, C) or (C,), got shape "
                f"{arr.shape}"
            )
        return _activate(arr, act)[0, index]
    if arr.ndim != 1:
        raise ValueError(f"get_score: x must be (C,) or (1, C), got shape {arr.shape}")
    return _activate(arr, act)[index]
