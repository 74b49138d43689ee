"""Warnings (and, later, errors) that salvo gives its callers.

Warnings about something the caller can act on are issued with :func:`warnings.warn` as
subclasses of :class:`SalvoWarning`, so they can be filtered as a group
(``warnings.simplefilter("ignore", salvo.errors.SalvoWarning)``) or one kind at a time.
``logging`` is only used for diagnostics.
"""

from __future__ import annotations

__all__ = ["SalvoWarning", "UninformativeMapWarning"]


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


__all__ += [
    "DetectionBoxWarning",
    "IgnoredArgumentWarning",
    "LongRunWarning",
    "MetricWarning",
    "PlotWarning",
    "PostprocessWarning",
    "UsageError",
]
