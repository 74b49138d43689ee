"""Normalising the ``targets`` and ``label_names`` arguments of an explanation.

One matcher turns label names into class indices for the Python API and the command line alike
(:func:`match_label`): an exact name first, then the same name ignoring case and spacing, then
one of the comma-separated synonyms of a label, so ``"tabby"`` finds ImageNet's
``"tabby, tabby cat"``. A name that fits several classes is an error listing them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from salvo._checks import is_integer

__all__ = ["check_label_names", "match_label", "resolve_targets"]

_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


# ------------------------------------------------------------------------------ label names


def check_label_names(label_names: Any, name: str = "label_names") -> list[str] | None:
    """``label_names`` as a list of class names indexed by class, or ``None``.

    Parameters
    ----------
    label_names
        ``None``; a sequence of ``str`` (list, tuple, 1-D string array, …) where entry ``i``
        names class ``i``; or a ``{index: name}`` mapping whose keys are exactly
        ``0 .. N-1`` (ints, NumPy ints or decimal strings such as JSON gives) and whose values
        are ``str``.

    Returns
    -------
    list of str or None

    Raises
    ------
    TypeError
        A single string (it would be read as one name per character), a set (no order), a
        non-string name, or anything that is not a sequence or a mapping.
    ValueError
        A mapping whose keys are not ``0 .. N-1``.
    """
    if label_names is None:
        return None
    if isinstance(label_names, (str, bytes)):
        raise TypeError(
            f"{name} must be a list of class names (one str per class) or an {{index: name}} "
            f"dict, not a single string ({label_names!r:.60}); for one class use "
            f"[{label_names!r:.60}]"
        )
    if isinstance(label_names, Mapping):
        return _names_from_mapping(label_names, name)
    if isinstance(label_names, (set, frozenset)):
        raise TypeError(f"{name} must be a list of class names in class order, not a set")
    if isinstance(label_names, np.ndarray):
        if label_names.ndim != 1:
            raise TypeError(
                f"{name} must be a 1-D sequence of class names, got an array of shape "
                f"{label_names.shape}"
            )
        items: list[Any] = label_names.tolist()
    elif isinstance(label_names, Iterable):
        items = list(label_names)
    else:
        raise TypeError(
            f"{name} must be a list of class names (str) or an {{index: name}} dict, got "
            f"{type(label_names).__name__}"
        )
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"{name}[{i}] must be a str (a class name), got {item!r} "
                f"({type(item).__name__})"
            )
    return [str(item) for item in items]


def _names_from_mapping(mapping: Mapping[Any, Any], name: str) -> list[str]:
    pairs: dict[int, str] = {}
    for key, value in mapping.items():
        if is_integer(key):
            index = int(key)
        elif isinstance(key, str) and _DIGITS.fullmatch(key.strip()):
            index = int(key.strip())
        else:
            raise TypeError(
                f"{name}: the keys of an {{index: name}} dict must be class indices (ints), "
                f"got {key!r} ({type(key).__name__})"
            )
        if not isinstance(value, str):
            raise TypeError(
                f"{name}[{key!r}] must be a str (a class name), got {value!r} "
                f"({type(value).__name__})"
            )
        if index in pairs:
            raise ValueError(f"{name}: class index {index} appears twice")
        pairs[index] = str(value)
    missing = sorted(set(range(len(pairs))) - set(pairs))
    if missing:
        extra = sorted(set(pairs) - set(range(len(pairs))))
        raise ValueError(
            f"{name}: an {{index: name}} dict must have the keys 0..{len(pairs) - 1} (one per "
            f"class); missing {missing[:10]}, unexpected {extra[:10]}"
        )
    return [pairs[i] for i in range(len(pairs))]


# ------------------------------------------------------------------------------- matching


def _normal(text: str) -> str:
    return _SPACES.sub(" ", text.strip()).casefold()


class _LabelIndex:
    """Lookup tables of one ``label_names`` list for :func:`match_label`."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.exact: dict[str, list[int]] = {}
        self.normal: dict[str, list[int]] = {}
        self.synonym: dict[str, list[int]] = {}
        for i, label in enumerate(self.names):
            self.exact.setdefault(label, []).append(i)
            self.normal.setdefault(_normal(label), []).append(i)
            for part in dict.fromkeys(_normal(p) for p in label.split(",")):
                if part:
                    self.synonym.setdefault(part, []).append(i)

    def match(self, name: str, argument: str) -> int:
        """The class index of label ``name`` (see :func:`match_label` for the rules: the exact
        label, then ignoring case and runs of spaces, then a comma-separated synonym).

        Raises
        ------
        ValueError
            ``name`` names no class, or several (naming ``argument`` and the candidates).
        """
        key = _normal(name)
        for table, probe in ((self.exact, name), (self.normal, key), (self.synonym, key)):
            found = table.get(probe)
            if found is None:
                continue
            if len(found) == 1:
                return found[0]
            shown = ", ".join(f"{i} ({self.names[i]!r})" for i in found[:6])
            raise ValueError(
                f"{argument}: label name {name!r} is ambiguous: it names classes {shown}; "
                "give the class index instead"
            )
        candidates = list(self.exact) + [s for s in self.synonym if s not in self.normal]
        close = difflib.get_close_matches(name, candidates, n=3)
        if not close:
            close = difflib.get_close_matches(key, candidates, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"{argument}: label name {name!r} is not in label_names{hint}")


def match_label(name: str, label_names: Sequence[str], *, argument: str = "targets") -> int:
    """The class index that ``name`` names in ``label_names``.

    Tried in order, the first rule that finds something decides: the exact label; the label
    ignoring case and runs of spaces; one of the label's comma-separated synonyms (ignoring
    case), so ``"tabby"`` and ``"Tabby Cat"`` both find ``"tabby, tabby cat"``.

    Parameters
    ----------
    name
        The label name.
    label_names
        Class names indexed by class (see :func:`check_label_names`).
    argument
        Argument name used in error messages.

    Raises
    ------
    ValueError
        No class has that name (the message suggests close names), or several classes do (the
        message lists them).
    """
    return _LabelIndex(label_names).match(name, argument)


# -------------------------------------------------------------------------------- targets

_TARGETS_CONTRACT = (
    "a class index (int), a label name (str), a list of those, or -1 / None for all"
)


def _scalar(value: Any) -> Any:
    """A 0-d array as its Python scalar; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item() if value.dtype.kind in "biu" else value[()]
    return value


def resolve_targets(
    targets: int | str | Iterable[int | str] | None,
    num_classes: int,
    label_names: Sequence[str] | None,
    *,
    what: str = "class",
) -> list[int]:
    """Normalise ``targets`` to a list of plain int indices (duplicates dropped, order kept).

    Parameters
    ----------
    targets
        ``-1``, ``[-1]`` or ``None`` for all; an index ``0 .. num_classes-1`` (int, NumPy int or
        0-d integer array); a label name (needs ``label_names``; matched by :func:`match_label`);
        or a list, tuple, 1-D array or other ordered iterable of indices and names.
    num_classes
        Number of classes (or boxes, with ``what="box"``).
    label_names
        Class names indexed by class, or ``None``.
    what
        ``"class"`` or ``"box"``, for the messages.

    Raises
    ------
    ValueError
        A value that is none of the above (a float, a bool, ``-1`` among other targets, a set,
        …), an
        unknown or ambiguous label name, an index out of range, a name without
        ``label_names``, or an empty list. The message names ``targets`` and the value.
    """
    targets = _scalar(targets)
    if targets is None or (is_integer(targets) and int(targets) == -1):
        return list(range(num_classes))
    if isinstance(targets, (list, tuple, np.ndarray)) and len(targets) == 1:
        only = _scalar(targets.reshape(-1)[0] if isinstance(targets, np.ndarray) else targets[0])
        if is_integer(only) and int(only) == -1:  # [-1] alone: all, as the reference reads it
            return list(range(num_classes))
    if isinstance(targets, (str, int, np.integer)) and not isinstance(targets, (bool, np.bool_)):
        items: list[Any] = [targets]
    elif isinstance(targets, (bytes, bytearray, Mapping, set, frozenset)) or not isinstance(
        targets, Iterable
    ):
        kind = "a set has no order; " if isinstance(targets, (set, frozenset)) else ""
        raise ValueError(
            f"targets must be {_TARGETS_CONTRACT}; {kind}got {targets!r:.80} "
            f"({type(targets).__name__})"
        )
    elif isinstance(targets, np.ndarray) and targets.ndim != 1:
        raise ValueError(
            f"targets must be {_TARGETS_CONTRACT}; got an array of shape {targets.shape}"
        )
    else:
        items = list(targets)
    index: _LabelIndex | None = None
    names = None if label_names is None else list(label_names)
    out: list[int] = []
    for t in items:
        t = _scalar(t)
        if is_integer(t):
            k = int(t)
            if k == -1:
                raise ValueError(
                    f"targets: -1 means every {what} only on its own (targets=-1); a list "
                    f"holds {what} indices 0..{num_classes - 1}, got {list(items)!r:.80}"
                )
            if not 0 <= k < num_classes:
                raise ValueError(
                    f"targets: {what} index {k} is out of range for a model with "
                    f"{num_classes} {what}es (valid: 0..{num_classes - 1}; targets=-1 for all)"
                    if what == "class"
                    else f"targets: {what} index {k} is out of range ({num_classes} {what}es; "
                    f"valid: 0..{num_classes - 1}; targets=-1 for all)"
                )
            out.append(k)
        elif isinstance(t, str):
            if names is None:
                raise ValueError(
                    f"targets: label name {t!r} needs label_names (a list of class names)"
                )
            if index is None:
                index = _LabelIndex(names)
            k = index.match(t, "targets")
            if k >= num_classes:
                raise ValueError(
                    f"targets: label {t!r} has index {k}, out of range for a model with "
                    f"{num_classes} classes"
                )
            out.append(k)
        else:
            raise ValueError(
                f"targets: {t!r:.80} ({type(t).__name__}) is not a {what} index or label name; "
                f"targets must be {_TARGETS_CONTRACT}"
            )
    if not out:
        raise ValueError("targets is empty; use -1 or None for all")
    return list(dict.fromkeys(out))
