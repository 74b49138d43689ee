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
    floating-point resolution) over the perturbations, or the search objective was flat."""
