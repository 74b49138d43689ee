"""Progress of long runs: an optional progress bar and a time estimate the caller can see.

A bar is shown on stderr only when asked for (``progress=True``), or by default (``None``) when
stderr is a terminal, so logs are not filled with carriage-return frames. Whatever the bar, a
run that will clearly take a while says so once with a :class:`~salvo.errors.LongRunWarning`
after its first batches: how long it has taken so far and about how long is left.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

from salvo.errors import LongRunWarning

logger = logging.getLogger(__name__)

__all__ = [
    "ESTIMATE_AFTER_SECONDS",
    "ESTIMATE_IF_LEFT_SECONDS",
    "LONG_RUN_INFERENCES",
    "RunProgress",
    "format_seconds",
    "warn_long_run",
]

#: Before a run starts, a LongRunWarning is given when it will take more model inferences than
#: this because of the number of targets (300 001 for AISE's defaults on 1 000 classes; the
#: presets on a few targets stay far below).
LONG_RUN_INFERENCES = 20_000
#: The time estimate is made once the run has gone on for this long (seconds) ...
ESTIMATE_AFTER_SECONDS = 2.0
#: ... and given as a warning when more than this is left (seconds).
ESTIMATE_IF_LEFT_SECONDS = 30.0

_clock = time.monotonic  # replaced in tests


def format_seconds(seconds: float) -> str:
    """``"45 s"``, ``"3 min"``, ``"1 h 20 min"``."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest} min"


def warn_long_run(method: str, num_inferences: int, num_targets: int, per_target: int,
                  how: str, *, stacklevel: int = 3) -> bool:
    """Warn before a run that many targets make long; return whether it warned.

    Parameters
    ----------
    method
        The method's name (``"AISE"``).
    num_inferences
        Inferences the run will take.
    num_targets
        Targets explained (the warning is for runs that targets make long: one target never
        warns, whatever its budget).
    per_target
        Inferences per target.
    how
        How ``per_target`` is made up, e.g. ``"2 x 3 kernel widths x 50 iterations"``.
    stacklevel
        Passed to :func:`warnings.warn`.
    """
    if num_targets <= 1 or num_inferences <= LONG_RUN_INFERENCES:
        return False
    warnings.warn(
        f"{method} will run {num_inferences:,} model inferences to explain {num_targets:,} "
        f"targets ({per_target:,} per target: {how}); pass fewer targets (e.g. targets=[the "
        "classes of interest], or salvo.bulk.top_k(k) with explain_many) or preset='speed' to "
        "make it shorter",
        LongRunWarning,
        stacklevel=stacklevel,
    )
    return True


class RunProgress:
    """Progress of one run of ``total`` units: an optional tqdm bar and a one-time estimate.

    Parameters
    ----------
    total
        Units (inferences, masks) the run will take at most.
    desc, unit
        Label and unit of the bar and the estimate.
    show
        ``True`` shows a bar on stderr, ``False`` none, ``None`` one only when stderr is a
        terminal.
    what
        How the estimate names the run (``"AISE"``).
    may_stop_early
        Why the run may end before ``total`` (e.g. ``"target_reliability"``), or ``None``: the
        estimate then says *at most* and names the reason.
    """

    def __init__(self, total: int, *, desc: str, unit: str, show: bool | None,
                 what: str | None = None, may_stop_early: str | None = None) -> None:
        self.total = int(total)
        self.may_stop_early = may_stop_early
        self.done = 0
        self.unit = unit
        self.what = what or desc
        self.estimated = False
        self.t0 = _clock()
        self.bar: Any = None
        if show is not False and self.total > 0:
            from tqdm.auto import tqdm

            # disable=None: tqdm shows the bar only when its file (stderr) is a terminal
            self.bar = tqdm(total=self.total, desc=desc, unit=unit, delay=1.0, leave=False,
                            disable=None if show is None else False)

    def update(self, n: int | float) -> None:
        """``n`` more units are done."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if not self.estimated and 0 < self.done < self.total:
            elapsed = _clock() - self.t0
            if elapsed >= ESTIMATE_AFTER_SECONDS:
                self.estimated = True
                self._estimate(elapsed)

    def _estimate(self, elapsed: float) -> None:
        rate = self.done / elapsed
        left = (self.total - self.done) / rate
        text = (f"{self.what}: {'at most ' if self.may_stop_early else ''}about "
                f"{format_seconds(left)} left ({self.done:,.0f} of {self.total:,} {self.unit}s "
                f"in {format_seconds(elapsed)}, {rate:,.{0 if rate >= 10 else 2}f} "
                f"{self.unit}s/s)")
        if self.may_stop_early:
            text += f"; it stops earlier once its {self.may_stop_early} is reached"
        logger.info(text)
        if left >= ESTIMATE_IF_LEFT_SECONDS:
            warnings.warn(text, LongRunWarning, stacklevel=2)

    def close(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
