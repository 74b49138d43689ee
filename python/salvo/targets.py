"""Normalising the ``targets`` argument of an explanation."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import numpy as np


def resolve_targets(
    targets: int | str | Iterable[int | str] | None,
    num_classes: int,
    label_names: Sequence[str] | None,
    *,
    what: str = "class",
) -> list[int]:
    """Normalise ``targets`` to a list of plain int indices (duplicates dropped, order kept).

    ``-1`` or ``None`` means all; names need ``label_names``.

    Raises
    ------
    ValueError
        An unknown label name, an index out of range, a name without ``label_names``, or an
        empty list.
    """
    if targets is None or (
        isinstance(targets, (int, np.integer))
        and not isinstance(targets, (bool, np.bool_))
        and int(targets) == -1
    ):
        return list(range(num_classes))
    if isinstance(targets, (str, int, np.integer)):
        targets = [targets]
    out: list[int] = []
    for t in targets:
        if isinstance(t, (bool, np.bool_)):
            raise ValueError(f"targets: {t!r} is not a {what} index or label name")
        if isinstance(t, (int, np.integer)):
            if not 0 <= int(t) < num_classes:
                raise ValueError(
                    f"targets: {what} index {int(t)} is out of range for a model with "
                    f"{num_classes} {what}es (valid: 0..{num_classes - 1}, or -1 for all)"
                    if what == "class"
                    else f"targets: {what} index {int(t)} is out of range ({num_classes} "
                    f"{what}es; valid: 0..{num_classes - 1}, or -1 for all)"
                )
            out.append(int(t))
        elif isinstance(t, str):
            if label_names is None:
                raise ValueError(
                    f"targets: label name {t!r} needs label_names (a list of class names)"
                )
            names = list(label_names)
            if t not in names:
                close = difflib.get_close_matches(t, names, n=3)
                hint = f"; did you mean {close}?" if close else ""
                raise ValueError(f"targets: label name {t!r} is not in label_names{hint}")
            index = names.index(t)
            if index >= num_classes:
                raise ValueError(
                    f"targets: label {t!r} has index {index}, out of range for a model with "
                    f"{num_classes} classes"
                )
            out.append(index)
        else:
            raise ValueError(f"targets: {t!r} is not a {what} index or label name")
    if not out:
        raise ValueError("targets is empty; use -1 or None for all")
    return list(dict.fromkeys(out))
