"""Checks of scalar arguments at salvo's public boundary.

Every check names the argument and the value it got. NumPy scalars are accepted wherever a
Python number is (``np.int64(3)`` is an int, ``np.float32(0.5)`` a float) and come back as the
Python type, so an argument given either way gives the same result. Booleans are not numbers
here: ``num_masks=True`` is an error, not one mask.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "as_real_array",
    "check_flag",
    "check_int",
    "check_number",
    "check_progress",
    "fit_dtype",
    "is_integer",
    "is_number",
]


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an int or a NumPy integer scalar (bools excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real Python or NumPy scalar number (bools excluded)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _bounds_text(minimum: Any, maximum: Any, min_open: bool, max_open: bool) -> str:
    if minimum is not None and maximum is not None:
        return (f"in {'(' if min_open else '['}{minimum:g}, {maximum:g}"
                f"{')' if max_open else ']'}")
    if minimum is not None:
        return f"{'>' if min_open else '>='} {minimum:g}"
    if maximum is not None:
        return f"{'<' if max_open else '<='} {maximum:g}"
    return ""


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    max_open: bool = False,
    error: type[Exception] = ValueError,
) -> int:
    """``value`` as a Python int, checked against ``[minimum, maximum]``.

    Parameters
    ----------
    value
        An int or NumPy integer scalar (not a bool, not a float).
    name
        Argument name used in the error message.
    minimum, maximum
        Inclusive bounds (``None``: unbounded); ``max_open`` makes the upper bound exclusive.
    error
        Exception class for a value of the wrong type (ValueError by default, as the range
        check).

    Raises
    ------
    ValueError
        Out of range (or, with the default ``error``, not an int).
    """
    what = _int_text(minimum, maximum, max_open)
    if not is_integer(value):
        raise error(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    out = int(value)
    if (minimum is not None and out < minimum) or (
        maximum is not None and (out >= maximum if max_open else out > maximum)
    ):
        raise ValueError(f"{name} must be {what}, got {out!r}")
    return out


def _int_text(minimum: int | None, maximum: int | None, max_open: bool) -> str:
    if minimum is not None and maximum is not None:
        return f"an int in [{minimum}, {_power_of_two_text(maximum)}{')' if max_open else ']'}"
    if minimum == 1:
        return "a positive int"
    if minimum == 0:
        return "a non-negative int"
    if minimum is not None:
        return f"an int >= {minimum}"
    if maximum is not None:
        return f"an int {'<' if max_open else '<='} {_power_of_two_text(maximum)}"
    return "an int"


def _power_of_two_text(value: int) -> str:
    if value > 1 << 20 and value & (value - 1) == 0:
        return f"2**{value.bit_length() - 1}"
    return str(value)


def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
) -> float:
    """``value`` as a finite Python float, checked against its bounds.

    Parameters
    ----------
    value
        An int, float or NumPy integer / floating scalar (not a bool).
    name
        Argument name used in the error message.
    minimum, maximum
        Bounds (``None``: unbounded); ``min_open`` / ``max_open`` make them exclusive.

    Raises
    ------
    ValueError
        Not a number, not finite, or out of range.
    """
    text = _bounds_text(minimum, maximum, min_open, max_open)
    what = text if text.startswith("in ") else f"a number {text}".rstrip()
    if not is_number(value):
        raise ValueError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if minimum is not None and (out <= minimum if min_open else out < minimum):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if maximum is not None and (out >= maximum if max_open else out > maximum):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return out


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool: only ``True``/``False`` (NumPy bools included) are accepted.

    A string such as ``"no"`` or a number is an error rather than read by its truth value.

    Raises
    ------
    ValueError
        Anything else.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def check_progress(value: Any, name: str = "progress") -> bool | None:
    """A progress-bar switch: ``None`` (a bar only when stderr is a terminal), ``True`` (always)
    or ``False`` (never).

    Raises
    ------
    ValueError
        Anything else.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(
        f"{name} must be True (always show a progress bar), False (never) or None (only when "
        f"stderr is a terminal), got {value!r}"
    )


def as_real_array(value: Any, name: str) -> np.ndarray:
    """``np.asarray(value)`` for an image-like input, with errors that say what is wrong.

    Raises
    ------
    ValueError
        A ragged nested list (rows of different lengths).
    TypeError
        Not real numbers (strings, objects, booleans, complex numbers).
    """
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise ValueError(
            f"{name} is not a rectangular array (a nested list whose rows differ in length?): "
            f"{exc}"
        ) from None
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must hold real numbers (an integer or floating array), got dtype "
            f"{arr.dtype}"
        )
    return arr


def fit_dtype(
    x: np.ndarray,
    dtype: np.dtype,
    *,
    name: str,
    target: str,
    round_fractions: bool = False,
) -> np.ndarray:
    """``x`` converted to the model input's element type, refusing values that do not fit.

    A value is never changed silently: an integer input (e.g. ``uint8``) takes values in its
    range only, and from a float array only whole numbers (``128.0`` is 128; ``0.75`` is an
    error, not 0), unless ``round_fractions`` (then fractions are rounded to nearest). A float
    input takes any finite value that stays finite in its precision.

    Parameters
    ----------
    x
        A real array (see :func:`as_real_array`) without NaN or infinity.
    dtype
        The model input's NumPy dtype.
    name
        What ``x`` is, for messages (``"the preprocessed input"``).
    target
        What takes it, for messages (``"the model input 'image'"``).
    round_fractions
        Round fractional values for an integer input instead of refusing them.

    Raises
    ------
    ValueError
        Values outside the integer type's range, fractional values for an integer type, or
        values that overflow a float type; the message names the range and the likely fix.
    """
    dtype = np.dtype(dtype)
    if x.dtype == dtype or x.size == 0:
        return x.astype(dtype, copy=False)
    lo, hi = x.min(), x.max()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if lo < info.min or hi > info.max:
            hint = (" (a uint8 image takes 0..255: clip or rescale it first, e.g. "
                    "np.clip(x, 0, 255))" if dtype == np.uint8 else "")
            raise ValueError(
                f"{name} has values in [{float(lo):g}, {float(hi):g}], outside the range "
                f"{info.min}..{info.max} of {target} ({dtype}){hint}"
            )
        if x.dtype.kind == "f":
            rounded = np.rint(x)
            if not round_fractions and not np.array_equal(rounded, x):
                if lo >= 0 and hi <= 1:
                    hint = (f"; it looks like an image scaled to [0, 1]: multiply it by 255 "
                            f"(np.rint(x * 255).astype(np.{dtype}))"
                            if dtype == np.uint8 else "")
                else:
                    hint = f"; round it first (np.rint(x).astype(np.{dtype}))"
                raise ValueError(
                    f"{name} is {x.dtype} with fractional values (in [{float(lo):g}, "
                    f"{float(hi):g}]), but {target} takes whole numbers ({dtype}, "
                    f"{info.min}..{info.max}){hint}"
                )
            x = rounded
        return x.astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        out = x.astype(dtype)
    if dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise ValueError(
            f"{name} has values in [{float(lo):g}, {float(hi):g}], which overflow {target} "
            f"({dtype}, largest {float(np.finfo(dtype).max):g})"
        )
    return out
