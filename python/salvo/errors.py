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
