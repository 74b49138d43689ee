"""Warnings and errors that salvo gives its callers.

Warnings about something the caller can act on are issued with :func:`warnings.warn` as
subclasses of :class:`SalvoWarning`, so they can be filtered as a group
(``warnings.simplefilter("ignore", salvo.errors.SalvoWarning)``) or one kind at a time.
``logging`` is only used for diagnostics.

Errors are the built-in classes (``ValueError`` for a bad value, ``TypeError`` for a wrong
type, ...). Where the OpenVINO XAI toolkit 1.1 raises a different built-in class for the same
mistake, salvo raises a class deriving from both, so code written against the toolkit that
catches its class still catches salvo's: :class:`ArgumentTypeError` (and its
:class:`ModelTypeError`), :class:`ArgumentError`, :class:`MapShapeError`.
"""

from __future__ import annotations

import os
import sys

__all__ = ["SalvoWarning", "UninformativeMapWarning"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def caller_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn`, called from the function that warns, that
    points at the first frame outside salvo (the caller's own line)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


class SalvoWarning(UserWarning):
    """Base class of the warnings salvo gives about something the caller can act on."""


class UninformativeMapWarning(SalvoWarning):
    """A saliency map carries no information: the scores it is made of did not vary (beyond
    floating-point resolution) over the perturbations, or the search objective was flat.

    Black-box methods (RISE, D-RISE, AISE) return such a map flat (all zeros) rather than a
    min-max-scaled map of rounding noise, and name its targets in the message. "Did not vary"
    means a spread (max - min) of at most ``2**-23`` (float32's machine epsilon) times the
    scores' largest magnitude: what float32 rounding alone can make of a constant. Typical
    causes: a model whose output ignores the masked input, a target score saturated (e.g.
    logits of 1e30 through AISE's sigmoid), or a constant added in float32 that swamps the
    variation.
    """


class LongRunWarning(SalvoWarning):
    """An explanation will take many model inferences (said before it starts, with the number
    and how to lower it), or, once its first batches have run, an estimate of the time left."""


class IgnoredArgumentWarning(SalvoWarning):
    """A keyword argument was given that does not apply here and is ignored."""


class PostprocessWarning(SalvoWarning):
    """``postprocess_fn`` returned something salvo had to work around (e.g. one image's scores
    for a whole batch, so it is called one item at a time)."""


class DetectionBoxWarning(SalvoWarning):
    """A detection box is not explained as given: it is empty, lies outside the image, was
    clipped to it, the boxes look normalised while salvo expects input pixels, or the model
    found no box to explain."""


class MetricWarning(SalvoWarning):
    """A metric value is a convention rather than a measurement (e.g. the correlation of a
    constant map), or maps were left out of it."""


class PlotWarning(SalvoWarning):
    """``Explanation.plot`` shows fewer maps than were asked for."""


class UsageError(ValueError):
    """A bad or contradictory command line or specification string (``salvo`` reports it as
    one line, ``salvo: error: …``, with exit status 2). The message names the option and the
    value."""


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError``; also a ``ValueError``, which the
    reference toolkit raises for it)."""


class ModelTypeError(ArgumentTypeError):
    """``model`` is neither an ``openvino.Model`` nor a path to a model file (a ``TypeError``;
    also a ``ValueError``, which the reference toolkit raises for it)."""


class ArgumentError(ValueError, AssertionError):
    """Arguments that must agree do not (lengths, batch size), or one that another requires is
    missing (a ``ValueError``; also an ``AssertionError``, which the reference toolkit raises
    for these through ``assert`` statements)."""


class MapShapeError(ValueError, RuntimeError):
    """A raw saliency-map array has a shape salvo cannot read as one image's maps (empty, or a
    batch of several images) (a ``ValueError``; also a ``RuntimeError``, which the reference
    toolkit raises for it)."""


__all__ += [
    "ArgumentError",
    "ArgumentTypeError",
    "DetectionBoxWarning",
    "IgnoredArgumentWarning",
    "LongRunWarning",
    "MapShapeError",
    "MetricWarning",
    "ModelTypeError",
    "PlotWarning",
    "PostprocessWarning",
    "UsageError",
]
