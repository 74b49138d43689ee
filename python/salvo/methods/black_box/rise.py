"""RISE (Petsiuk et al., arXiv 1806.07421) at the device's throughput limit.

Masks are generated in C++ from counters (mask ``i`` is a pure function of ``(seed, i)``) and
written, multiplied with the image, straight into the infer requests' input tensors. Scores are
accumulated as batches complete, in fixed chunks of :data:`CHUNK` masks in mask order, each chunk
one matrix product ``scores (K, T)^T @ masks (K, H*W)``; so memory does not grow with the number
of masks and the map is bit-identical whatever the batch size, the number of requests, or the
order requests complete in.

Two mask designs (``mask_design``; :func:`salvo.kernels.rise_masks` generates both):

``"balanced"`` (default)
    Masks come in blocks of ``L = 2 * (least power of two >= num_cells**2)`` (128 for 8 x 8
    cells): the rows of a resolution-IV foldover of a Sylvester-Hadamard design, with a random
    choice of columns and random complements per block, so that within a block every cell is on
    in exactly half the masks and every pair of cells in exactly a quarter; all masks of a block
    share one shift, the blocks' shifts a randomly rotated R2 low-discrepancy sequence. Mask
    ``i`` is row ``i % L`` of block ``i // L``, still a pure function of ``(seed, i)``, and on its
    own distributed exactly as an iid mask: the estimators' expectations do not change, their
    noise does. The part of the score linear in the cells is estimated without sampling noise
    within a block. Measured on the 8 zoo photos (EfficientNet-Lite0, f32, 8 x 8 cells, centred
    estimator, 10 seeds each): the map reaches correlation 0.95 with the converged map after a
    median 0.41x the inferences of iid masks with logits (worst photo 0.48x), 0.43x with softmax
    (worst 0.67x); insertion - deletion AUC at equal budgets within or above the iid seed spread
    on every photo (``docs/rise_designs.md``, ``benchmarks/results/rise_designs.md``). A run
    shorter than one block, or ending inside one, is still unbiased (each mask is), just less
    balanced. Only ``prob == 0.5`` has this design; other ``prob`` values use iid masks.
    D-RISE's presets keep iid masks (the design is unmeasured on detectors).
``"iid"``
    The reference toolkit's masks: every cell an independent Bernoulli(``prob``) draw, every
    mask its own shift. ``estimator="plain"`` with ``mask_design="iid"`` is the reference's RISE
    exactly.

Two estimators share the same masks and the same inferences:

``"plain"``
    The reference's ``sum_i s_i[t] * m_i`` (exact reference semantics).
``"centered"`` (default)
    ``sum_i (s_i[t] - mean_t) * m_i``. Its expectation differs from plain RISE's only by a constant
    times ``E[m]``, which is flat up to border effects that min-max scaling hides, while its
    variance is far smaller: the same map quality with many fewer masks. It streams at no extra
    cost: ``sum s_i m_i``, ``sum m_i`` and ``sum s_i`` are accumulated and combined at the end.

What the maps guarantee (:class:`Accumulator` has the details):

- The centred map is invariant, within one uint8 level, when a constant is added to every
  score (tested up to ``1e6``; a ``postprocess_fn`` may return float64 scores, which are used
  as they are) or when every score is multiplied by a positive factor (tested from ``1e-6`` to
  ``1e30``; a power of two changes nothing). Scores up to float32's largest value do not
  overflow. This holds as long as the scores still vary beyond float32 resolution (next item).
- The plain map is the reference's sum computed in float64 from float32 partial sums: it is
  scale-invariant in the same way, but not offset-invariant, and no implementation makes it so
  (an offset ``c`` adds ``c * sum_i m_i``, and the number of masks covering a pixel varies by
  about ``sqrt(N p (1 - p))`` from pixel to pixel, which min-max scaling does not remove).
- Every map reports a reliability (:meth:`Accumulator.reliability`): a conservative estimate,
  from interleaved folds of its own masks, of its correlation with the map of infinitely many
  masks; ``target_reliability`` stops a run once every target's reaches it, at deterministic
  mask counts. The extra fold sums do not change the map.
- A target whose scores do not vary over the masks by more than ``2**-23`` (float32's machine
  epsilon) times their largest magnitude gets a flat map (zeros, or zeros in float32 unscaled)
  and an :class:`~salvo.errors.UninformativeMapWarning`; :attr:`RISEResult.flat` marks it.
  Rounding a value to float32 moves it by up to ``2**-24`` of its magnitude, so such a spread is
  what two float32 roundings of one constant can produce: the map would show rounding noise.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from openvino.utils.data_helpers.wrappers import OVDict

from salvo._checks import check_flag, check_int, check_number, is_integer, is_number
from salvo._progress import RunProgress
from salvo.common import Method, Preset, Task

# The reference toolkit's names in this module (re-exported, as it does).
from salvo.common.utils import IdentityPreprocessFN, is_bhwc_layout, scaling  # noqa: F401
from salvo.errors import LongRunWarning, SalvoWarning, caller_stacklevel
from salvo.inference import EngineConfig, InferenceEngine
from salvo.kernels import (
    accumulate_weighted,
    balanced_block_length,
    fill_masked,
    rise_masks,
    sgemm_accumulate_single_thread,
)
from salvo.kernels.maps import finish_maps
from salvo.methods.base import (
    MethodParams,
    MethodResult,
    Prediction,  # noqa: F401
    StreamJob,
)
from salvo.methods.black_box.base import (
    BlackBoxXAIMethod,
    Scorer,
    fit_input,
    image_for_fill,
    is_flat,
    predictions_for,
    warn_uninformative,
)
from salvo.methods.black_box.utils import check_classification_output  # noqa: F401

logger = logging.getLogger(__name__)

#: Masks per accumulation step (fixed, so results do not depend on the engine's batch size).
CHUNK = 32
#: From this many targets on, chunks are longer and folded by BLAS (see :class:`Accumulator`).
MANY_TARGETS = 16
CHUNK_MANY = 256
#: A target's scale is lowered once a chunk's largest centred score exceeds it ``2**32``-fold.
RESCALE_BITS = 32
ESTIMATORS = ("centered", "plain")
#: Mask designs: ``"balanced"`` (default; blocks in which every cell is on in half the masks and
#: every pair in a quarter, one shift per block) and ``"iid"`` (the reference's masks).
MASK_DESIGNS = ("balanced", "iid")
#: Seeds are 64-bit: ``0 <= seed < 2**64`` (a larger seed would alias a smaller one).
SEED_LIMIT = 1 << 64
#: :meth:`RISE.run_many` reports progress in multiples of ``1 / _PROGRESS_UNITS`` of an image.
_PROGRESS_UNITS = 1 << 20
#: Reliability: the masks are dealt into this many interleaved folds (see :class:`Accumulator`).
RELIABILITY_FOLDS = 8
#: Reliability: the fold maps are kept on a grid of at most this many cells per axis.
RELIABILITY_GRID = 32
#: Reliability: iid masks are dealt to the folds in runs of this many masks.
RELIABILITY_IID_UNIT = 64
#: Reliability: no value before this many folds hold masks (two folds give the spread of the
#: noise estimate one degree of freedom: on the zoo photos at 256 masks of 8 x 8 balanced cells
#: such a value overstated the measured correlation by up to 0.05).
RELIABILITY_MIN_FOLDS = 3
#: Reliability: the reported (conservative) value uses the noise estimate plus this many of its
#: standard errors.
RELIABILITY_Z = 1.0


@dataclass(frozen=True)
class RISEParams(MethodParams):
    """RISE hyper-parameters.

    Attributes
    ----------
    num_masks
        Masks (inferences) to use; with ``tolerance``, the most to use.
    num_cells
        Grid cells per axis of each mask.
    prob
        Probability that a cell is on.
    seed
        Seed of the counter-based mask generator, ``0 <= seed < 2**64``.
    scale_output
        Min-max scale each map to uint8 [0, 255]; otherwise float32 maps.
    estimator
        ``"centered"`` (default, variance-reduced) or ``"plain"`` (the reference's).
    tolerance
        Stop early once the normalised maps change by less than this between checks (mean
        absolute change of the [0, 1]-scaled map, worst target); ``None`` runs all masks.
    check_every
        Masks between two tolerance checks (a multiple of 32).
    mask_design
        ``"balanced"`` (default) or ``"iid"``: how the masks' grids and shifts are drawn (see
        :func:`mask_design_used`). ``"iid"``: every cell an independent coin, every mask its
        own shift, as the reference toolkit draws them. ``"balanced"``: blocks of ``L`` masks
        (``L = 2 * (least power of two >= num_cells**2)``: 128 for 8 x 8 cells, 512 for
        16 x 16) in which every cell is on in exactly half the masks and every pair of cells in
        exactly a quarter, one shift per block; each mask on its own is distributed as an iid
        mask, so the maps estimate the same thing, with less noise: on 8 zoo photos
        (EfficientNet-Lite0, 8 x 8 cells, centred estimator) the map reaches correlation 0.95
        with the converged map after a median 0.41x the inferences with logits and 0.43x with
        softmax scores (``docs/rise_designs.md``). Very short runs (a quarter of a block or
        less, e.g. 32 masks of 8 x 8 cells) share one shift and can be worse than iid masks.
        Only ``prob == 0.5`` has a balanced design; with any other ``prob`` the masks are iid. ``estimator="plain"`` with
        ``mask_design="iid"`` is the reference's RISE.
    target_reliability
        Stop once the reliability (``Explanation.reliability``: a conservative estimate of
        each map's correlation with the map of infinitely many masks) of EVERY explained target
        reaches this value, in (0, 1); checked at deterministic mask counts (multiples of
        :func:`reliability_step`: 128 masks for 8 x 8 balanced cells), so the stopping point
        and the map do not depend on batch size, requests or timing; ``num_masks`` caps the
        run. ``None`` (default) runs all masks. With ``targets=-1`` (all classes) every class
        must reach it: classes whose scores barely react to the masks never do, and the run
        uses all ``num_masks``; name the targets of interest instead. Combined with
        ``tolerance``, the run stops at whichever stops it first.
    """

    num_masks: int = 5000
    num_cells: int = 8
    prob: float = 0.5
    seed: int = 0
    scale_output: bool = True
    estimator: str = "centered"
    tolerance: float | None = None
    check_every: int = 256
    mask_design: str = "balanced"
    target_reliability: float | None = None

    def validate(self, height: int, width: int) -> RISEParams:
        """Check every field for an image of ``height`` x ``width``; return a copy with
        canonical Python types (NumPy scalars become ints / floats / bools, so a parameter
        given either way gives the same map).

        Raises
        ------
        ValueError
            A field of the wrong type or out of range, naming it and the value (bools are not
            counts: ``num_masks=True`` is an error).
        """
        num_masks = check_int(self.num_masks, "num_masks", minimum=1)
        num_cells = check_int(self.num_cells, "num_cells", minimum=1)
        if num_cells > min(height, width):
            raise ValueError(
                f"num_cells={num_cells} is larger than the image ({height}x{width})"
            )
        prob = check_number(self.prob, "prob", minimum=0.0, maximum=1.0, min_open=True,
                            max_open=True)
        if not 0.0 < np.float32(prob) < 1.0:  # the mask generator draws in float32
            raise ValueError(
                f"prob must be in (0, 1), got {self.prob!r}, which is {float(np.float32(prob))!r}"
                " as the float32 the mask generator uses"
            )
        seed = check_int(self.seed, "seed", minimum=0, maximum=SEED_LIMIT, max_open=True)
        scale_output = check_flag(self.scale_output, "scale_output")
        if not isinstance(self.estimator, str) or self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        tolerance = self.tolerance
        if tolerance is not None:
            if not is_number(tolerance) or not 0.0 < float(tolerance) < math.inf:
                raise ValueError(
                    f"tolerance must be a positive number or None, got {self.tolerance!r}"
                )
            tolerance = float(tolerance)
        if not is_integer(self.check_every) or self.check_every < CHUNK or (
            self.check_every % CHUNK
        ):
            raise ValueError(
                f"check_every must be a positive multiple of {CHUNK}, got {self.check_every!r}"
            )
        check_every = int(self.check_every)
        if not isinstance(self.mask_design, str) or self.mask_design not in MASK_DESIGNS:
            raise ValueError(
                f"mask_design must be one of {MASK_DESIGNS}, got {self.mask_design!r}"
            )
        target_reliability = self.target_reliability
        if target_reliability is not None:
            if not is_number(target_reliability) or not 0.0 < float(target_reliability) < 1.0:
                raise ValueError(
                    "target_reliability must be a number in (0, 1) or None, got "
                    f"{self.target_reliability!r}"
                )
            target_reliability = float(target_reliability)
        return replace(self, num_masks=num_masks, num_cells=num_cells, prob=prob, seed=seed,
                       scale_output=scale_output, estimator=str(self.estimator),
                       tolerance=tolerance, check_every=check_every,
                       mask_design=str(self.mask_design),
                       target_reliability=target_reliability)


def mask_design_used(params: RISEParams) -> str:
    """The mask design a run of ``params`` (validated) uses: ``params.mask_design``, except
    that the balanced design exists only for ``prob == 0.5`` (its blocks switch every cell on in
    exactly half the masks); with any other ``prob`` the masks are ``"iid"``. No warning: both
    designs estimate the same map, and the result's ``extra["mask_design"]`` says which ran."""
    if params.mask_design == "balanced" and float(np.float32(params.prob)) != 0.5:
        return "iid"
    return params.mask_design


def reliability_unit(params: RISEParams) -> int:
    """Masks dealt to one reliability fold in a row for ``params`` (validated): mask ``i`` goes
    to fold ``(i // unit) % RELIABILITY_FOLDS``. Balanced masks: whole blocks
    (:func:`~salvo.kernels.balanced_block_length`, at least 64 masks, so a block or a run of
    consecutive blocks); iid masks: runs of :data:`RELIABILITY_IID_UNIT`."""
    if mask_design_used(params) == "balanced":
        return max(balanced_block_length(params.num_cells), RELIABILITY_IID_UNIT)
    return RELIABILITY_IID_UNIT


def reliability_step(params: RISEParams, num_targets: int) -> int:
    """Masks between two ``target_reliability`` checks: the fold unit
    (:func:`reliability_unit`), or the accumulation chunk (:func:`chunk_size`) when longer
    (both are powers of two, so checks fall on whole units and whole chunks)."""
    return max(reliability_unit(params), chunk_size(num_targets))


#: (num_masks, num_cells) per preset, as the reference defines them.
#: The presets, as the reference defines them: SPEED 1000 masks of 4 x 4 cells, BALANCE 5000 of
#: 8 x 8, QUALITY 10 000 of 12 x 12.
RISE_SPEED = RISEParams(num_masks=1000, num_cells=4)
RISE_BALANCE = RISEParams(num_masks=5000, num_cells=8)
RISE_QUALITY = RISEParams(num_masks=10000, num_cells=12)
RISE_PRESETS: dict[Preset, RISEParams] = {
    Preset.SPEED: RISE_SPEED,
    Preset.BALANCE: RISE_BALANCE,
    Preset.QUALITY: RISE_QUALITY,
}


def resolve_params(preset: Preset | str | None = None, **overrides: Any) -> RISEParams:
    """RISE's parameters: the preset (BALANCE by default), then explicit keywords, which win
    (``None`` keeps the preset's value); see :meth:`RISE.resolve_params`."""
    return RISE.resolve_params(preset=preset, **overrides)


def chunk_size(num_targets: int) -> int:
    """Masks folded per accumulation step for ``num_targets`` targets (never the batch size)."""
    return CHUNK if num_targets < MANY_TARGETS else CHUNK_MANY


class Accumulator:
    """Streaming ``sum s_i m_i``, ``sum m_i``, ``sum s_i`` in fixed, ordered chunks.

    Masks are copied into a preallocated ``(chunk, P)`` buffer as they arrive; a full chunk is
    folded with one ``(T, chunk) @ (chunk, P)`` product into the ``(T, P)`` float32 sums:
    below :data:`MANY_TARGETS` targets by the native kernel on one thread (no thread pool to
    compete with the inference engine), from there on by an in-place BLAS ``sgemm`` over a
    larger chunk (the sums are then memory-bound and a long chunk amortises their traffic),
    restricted to the calling thread where the BLAS allows it: measured here, a BLAS thread pool
    spinning beside OpenVINO's streams made all-target runs 1.5x slower.
    Chunk boundaries depend only on the number of targets, so results do not depend on how the
    masks arrive. Memory: the sums plus one chunk of masks (and its scores in float64).

    Precision. The float32 sums do not hold the scores themselves but, per target ``t``,
    ``d_i = (s_i - c_t) * 2**-e_t``: the scores are taken in float64, the offset ``c_t`` (the
    mean score of the first chunk) is subtracted in float64, and the power of two ``2**-e_t``
    (chosen from the first chunk whose ``d`` is not all zero, and lowered if a later chunk
    outgrows it by ``2**32``) brings the largest ``|d|`` to about 1 before the narrowing to
    float32. So the float32 sums only hold what varies, at a magnitude float32 represents well:
    adding a constant to every score, or multiplying them all by a factor, changes the maps
    by float rounding only (by nothing for a power of two), and scores near float32's largest
    value do not overflow. Every choice depends only on the scores of fixed chunks in mask
    order, so the maps stay bit-identical whatever the batch size, the number of requests, the
    completion order or the packing of several images. The estimators are recombined in
    float64 at the end (:func:`~salvo.kernels.maps.finish_maps`): centred
    ``sum_i (s_i - mean) m_i = 2**e (sum_i d_i m_i - mean(d) sum_i m_i)``, plain
    ``sum_i s_i m_i = 2**e sum_i d_i m_i + c sum_i m_i``.

    Flat maps. A target whose scores do not vary over the masks beyond float32 resolution at
    their magnitude (:func:`~salvo.methods.black_box.base.is_flat`: ``max - min <= 2**-23 *
    max |s|``) has a flat map (zeros); :meth:`flat_targets` says which.

    Reliability (:meth:`reliability`). Beside the full sums, the masks are dealt into
    :data:`RELIABILITY_FOLDS` interleaved folds (mask ``i`` to fold ``(i // fold_unit) % K``: a
    function of the mask index alone, so of neither batches nor chunks), each fold keeping its
    own ``sum d_i m_i`` and ``sum m_i`` on a pooled grid of at most :data:`RELIABILITY_GRID`
    cells per axis, in float64. These extra sums never touch the full map's. ``shape`` is the
    map's ``(height, width)`` (default ``(1, num_pixels)``), ``fold_unit`` the masks dealt to a
    fold in a row (:func:`reliability_unit`), ``noise_dof`` the most degrees of freedom one
    fold's noise map is credited with (``(num_cells + 1)**2``). With ``target_reliability``,
    every :attr:`reliability_step` masks the accumulator stops (as with ``tolerance``) once
    every target's reliability bound reaches it.
    """

    def __init__(
        self,
        num_targets: int,
        num_pixels: int,
        *,
        estimator: str = "centered",
        tolerance: float | None = None,
        check_every: int = 256,
        on_check: Callable[[int, Accumulator], None] | None = None,
        shape: tuple[int, int] | None = None,
        fold_unit: int = RELIABILITY_IID_UNIT,
        target_reliability: float | None = None,
        noise_dof: int = 81,
    ) -> None:
        self.estimator = estimator
        #: degrees of freedom of one fold's noise map at most (``(num_cells + 1)**2``)
        self.noise_dof = int(noise_dof)
        self.target_reliability = target_reliability
        self.fold_unit = int(fold_unit)
        #: masks between two ``target_reliability`` checks (whole fold units, whole chunks)
        self.reliability_step = max(self.fold_unit, chunk_size(num_targets))
        height, width = (1, num_pixels) if shape is None else (int(shape[0]), int(shape[1]))
        if height * width != num_pixels:
            raise ValueError(f"shape {shape} does not have {num_pixels} pixels")
        self._shape = (height, width)
        grid_h, grid_w = min(height, RELIABILITY_GRID), min(width, RELIABILITY_GRID)
        self._rows = np.arange(grid_h) * height // grid_h
        self._cols = np.arange(grid_w) * width // grid_w
        #: per fold: ``sum d_i m_i`` pooled ``(K, T, G)``, ``sum m_i`` pooled ``(K, G)`` (float64)
        #: and the masks it holds
        self._fold_weighted = np.zeros((RELIABILITY_FOLDS, num_targets, grid_h * grid_w))
        self._fold_mask_sum = np.zeros((RELIABILITY_FOLDS, grid_h * grid_w))
        self._fold_count = np.zeros(RELIABILITY_FOLDS, np.int64)
        self._not_reliable: np.ndarray | None = None  # targets that failed the last check
        self.tolerance = tolerance
        self.check_every = check_every
        self.on_check = on_check
        self.converged = False
        self._previous: np.ndarray | None = None
        #: ``sum_i d_i m_i`` (see the class docstring), float32 ``(T, P)``.
        self.weighted = np.zeros((num_targets, num_pixels), np.float32)
        self.mask_sum = np.zeros(num_pixels, np.float64)
        self.count = 0
        self.chunk = chunk_size(num_targets)
        #: Per target: the offset ``c`` (float64, ``None`` until the first fold), the exponent
        #: ``e`` (0 until a chunk with a non-zero ``d`` fixes it), ``sum_i (s_i - c)`` and the
        #: least and largest ``s_i - c`` seen (float64).
        self.offset: np.ndarray | None = None
        self.exponent = np.zeros(num_targets, np.int64)
        self._scaled = np.zeros(num_targets, bool)
        self._dsum = np.zeros(num_targets, np.float64)
        self._dmin = np.full(num_targets, np.inf)
        self._dmax = np.full(num_targets, -np.inf)
        self._masks = np.empty((self.chunk, num_pixels), np.float32)
        self._raw = np.empty((self.chunk, num_targets), np.float64)
        self._scores = np.empty((self.chunk, num_targets), np.float32)
        self._no_targets = np.empty((0, num_pixels), np.float32)  # mask sum alone (BLAS path)
        self._no_scores = np.empty((self.chunk, 0), np.float32)
        self._pending = 0

    def add(self, masks: np.ndarray, scores: np.ndarray) -> bool:
        """Queue ``masks (n, P)`` with ``scores (n, T)`` and fold every full chunk.

        ``scores`` may be any real dtype; they are kept in float64 until their chunk is folded
        (pass float64 scores to keep differences below float32 resolution). The arrays are
        copied (callers may reuse them). Every ``check_every`` masks (at a chunk boundary)
        ``on_check`` is called and, with a ``tolerance``, convergence is tested: once the [0,
        1]-scaled maps changed by less than the tolerance (mean absolute change, worst target)
        since the previous check, the accumulator stops there, drops what follows, and ``add``
        returns ``True``. With a ``target_reliability`` the same happens, every
        :attr:`reliability_step` masks, once every target's :meth:`reliability` bound reaches
        it (NaN never does).
        """
        if self.converged:
            return True
        start = 0
        n = len(masks)
        while start < n:
            take = min(self.chunk - self._pending, n - start)
            self._masks[self._pending : self._pending + take] = masks[start : start + take]
            self._raw[self._pending : self._pending + take] = scores[start : start + take]
            self._pending += take
            start += take
            if self._pending == self.chunk:
                self._fold()
                if (self.count % self.check_every == 0 and self._check()) or (
                    self.target_reliability is not None
                    and self.count % self.reliability_step == 0
                    and self._reliable()
                ):
                    self.converged = True
                    self._pending = 0
                    return True
        return False

    def _reliable(self) -> bool:
        # the targets that failed the last check first: most checks end there, cheaply
        # (hundreds of targets); NaN (no information) never passes
        first = self._not_reliable
        if first is not None and len(first) < self.weighted.shape[0]:
            bound = self.reliability(first)[0]
            failed = first[~(bound >= self.target_reliability)]
            if len(failed):
                self._not_reliable = failed
                return False
        bound = self.reliability()[0]
        logger.debug("RISE reliability at %d masks: %s", self.count, bound)
        self._not_reliable = np.flatnonzero(~(bound >= self.target_reliability))
        return not len(self._not_reliable)

    def reliability(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each target's map reliability over the masks folded so far: ``(bound, estimate)``,
        two ``(T,)`` float64 arrays, estimates of the correlation (over pixels, on the pooled
        grid) between the map and the map infinitely many masks would give.

        Every fold ``k`` (``n_k`` masks) gives its own map ``F_k``; the full map is their
        weighted mean ``M = sum n_k F_k / N``. Each fold's noise has variance ``sigma**2 /
        n_k`` (the folds hold disjoint, independently drawn blocks), so ``sigma**2`` is
        estimated without bias by the one-way analysis of variance ``sum_k n_k |F_k - M|**2 /
        (K' - 1)`` over the ``K'`` folds holding masks (each map centred over the pixels), and
        the full map's noise by ``sigma**2 / N``. With ``V`` the full map's spatial variance,
        ``rho = 1 - noise / V`` estimates the correlation of two independent full maps
        (Spearman-Brown for ``K'`` folds) and ``sqrt(rho)`` the correlation of the map with the
        converged map: ``estimate``. ``bound`` replaces the noise by the noise plus
        :data:`RELIABILITY_Z` standard errors of its estimate: the larger of the spread of the
        folds' terms and the error of a chi-square estimate with ``(K' - 1) * d`` degrees of
        freedom, ``d = min(noise_dof, pooled pixels)`` (a fold's noise map lives in about
        ``(num_cells + 1)**2`` dimensions), so it is rarely above the truth. Both are clipped
        to [0, 1], and NaN for a flat target, a map with no spatial variance, or fewer than
        :data:`RELIABILITY_MIN_FOLDS` (3) non-empty folds (the value a run reports is NaN below
        three fold units of masks: 384 masks of 8 x 8 balanced cells).

        Parameters
        ----------
        rows
            Target positions to compute (default: all).

        Returns
        -------
        bound, estimate
            ``(T,)`` (or ``(len(rows),)``) float64 each; ``bound <= estimate`` wherever both
            are finite.
        """
        rows = np.arange(self.weighted.shape[0]) if rows is None else np.asarray(rows, np.intp)
        nan = np.full(len(rows), np.nan)
        used = self._fold_count > 0
        folds = int(used.sum())
        if folds < RELIABILITY_MIN_FOLDS:
            return nan, nan.copy()
        n = self._fold_count[used].astype(np.float64)
        total = float(n.sum())
        shift = self._finish_args(self.estimator)[0][rows]  # in the sums' units
        v = (self._fold_weighted[np.flatnonzero(used)[:, None], rows[None, :]]
             - shift[None, :, None] * self._fold_mask_sum[used][:, None])
        full = v.sum(axis=0) / total
        full_c = full - full.mean(axis=1, keepdims=True)
        spatial = (full_c ** 2).sum(axis=1)
        resid = v / n[:, None, None] - full[None]
        resid -= resid.mean(axis=2, keepdims=True)
        q = n[:, None] * (resid ** 2).sum(axis=2)  # (K', T)
        sigma2 = q.sum(axis=0) / (folds - 1)
        se = math.sqrt(folds) * q.std(axis=0, ddof=1) / (folds - 1)
        dof = min(self.noise_dof, self._fold_weighted.shape[2])
        se = np.maximum(se, sigma2 * math.sqrt(2.0 / ((folds - 1) * dof)))
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = 1.0 - sigma2 / total / spatial
            rho_low = 1.0 - (sigma2 + RELIABILITY_Z * se) / total / spatial
        bad = self.flat_targets()[rows] | ~(spatial > 0) | ~np.isfinite(rho)
        estimate = np.where(bad, np.nan, np.sqrt(np.clip(rho, 0.0, 1.0)))
        bound = np.where(bad, np.nan, np.sqrt(np.clip(rho_low, 0.0, 1.0)))
        return bound, estimate

    def _fold_reliability(self, m: np.ndarray, s: np.ndarray) -> None:
        """Add a chunk's masks ``m (k, P)`` and scaled scores ``s (k, T)`` to their folds."""
        k = len(m)
        height, width = self._shape
        pooled = np.add.reduceat(m.reshape(k, height, width), self._rows, axis=1)
        pooled = np.add.reduceat(pooled, self._cols, axis=2).reshape(k, -1).astype(np.float64)
        index = self.count + np.arange(k)
        fold = (index // self.fold_unit) % RELIABILITY_FOLDS
        start = 0
        while start < k:
            f = int(fold[start])
            stop = start + 1
            while stop < k and fold[stop] == f:
                stop += 1
            seg = slice(start, stop)
            self._fold_weighted[f] += s[seg].T.astype(np.float64) @ pooled[seg]
            self._fold_mask_sum[f] += pooled[seg].sum(axis=0)
            self._fold_count[f] += stop - start
            start = stop

    def _check(self) -> bool:
        if self.on_check is not None:
            self.on_check(self.count, self)
        if self.tolerance is None:
            return False
        current = self.result("unit")
        previous, self._previous = self._previous, current
        if previous is None:
            return False
        change = float(np.abs(current - previous).mean(axis=1).max())
        logger.debug("RISE check at %d masks: change %.5f", self.count, change)
        return change < self.tolerance

    def finish(self) -> None:
        """Fold whatever is pending (the last, partial chunk), unless converged."""
        if self._pending and not self.converged:
            self._fold()

    @property
    def score_sum(self) -> np.ndarray:
        """``sum_i s_i`` per target ``(T,)`` float64, over the folded masks."""
        if self.offset is None:
            return np.zeros_like(self._dsum)
        return self.offset * self.count + self._dsum

    def flat_targets(self) -> np.ndarray:
        """``(T,)`` bool: the targets whose scores did not vary over the folded masks beyond
        float32 resolution at their magnitude (all, before any mask)."""
        if self.offset is None:
            return np.ones(self._dsum.shape, bool)
        magnitude = np.maximum(np.abs(self.offset + self._dmin), np.abs(self.offset + self._dmax))
        return is_flat(self._dmax - self._dmin, magnitude)

    def _finish_args(self, estimator: str) -> tuple[np.ndarray, np.ndarray]:
        """``(shift, unit)`` of :func:`finish_maps` for ``estimator`` (in units of ``2**-e``)."""
        unit = np.ldexp(1.0, self.exponent)
        if self.offset is None:
            return np.zeros_like(unit), unit
        if estimator == "plain":
            return -np.ldexp(self.offset, -self.exponent), unit
        return np.ldexp(self._dsum / self.count, -self.exponent), unit

    def result(self, scale: str | None) -> np.ndarray:
        """The maps ``(T, P)`` of :attr:`estimator`: ``scale="uint8"`` min-max to [0, 255]
        uint8, ``"unit"`` to [0, 1] float32, ``None`` unscaled float32 in score units (one
        Numba pass). Flat targets (:meth:`flat_targets`) give zeros."""
        shift, unit = self._finish_args(self.estimator)
        maps = finish_maps(self.weighted, shift, self.mask_sum, scale=scale, unit=unit,
                           flat=self.flat_targets())
        if scale is None and not np.isfinite(maps).all():
            warnings.warn(
                "RISE: unscaled maps exceed float32's range (scores of magnitude "
                f"{float(np.max(np.abs(self.offset))):g} summed over {self.count} masks); "
                "use scale_output=True", SalvoWarning, stacklevel=3,
            )
        return maps

    def _fold(self) -> None:
        k = self._pending
        m = self._masks[:k]
        raw = self._raw[:k]
        if not np.isfinite(raw).all():
            bad = np.argwhere(~np.isfinite(raw))[0]
            raise ValueError(f"RISE: a non-finite score ({raw[tuple(bad)]}) for mask "
                             f"{self.count + int(bad[0])}, target {int(bad[1])}")
        if self.offset is None:
            self.offset = raw.mean(axis=0)
        d = raw - self.offset
        self._dmin = np.minimum(self._dmin, d.min(axis=0))
        self._dmax = np.maximum(self._dmax, d.max(axis=0))
        self._dsum += d.sum(axis=0)
        big = np.abs(d).max(axis=0)
        exponent = np.frexp(big)[1].astype(np.int64)  # big = f * 2**e, f in [0.5, 1)
        first = ~self._scaled & (big > 0)
        grown = self._scaled & (exponent > self.exponent + RESCALE_BITS)
        if grown.any():
            # lower the scale of the sums so far by a power of two (exact)
            rows = np.flatnonzero(grown)
            self.weighted[rows] = np.ldexp(self.weighted[rows].astype(np.float64),
                                           (self.exponent[rows] - exponent[rows])[:, None])
            self._fold_weighted[:, rows] = np.ldexp(
                self._fold_weighted[:, rows], (self.exponent[rows] - exponent[rows])[None, :, None]
            )
        self.exponent = np.where(first | grown, exponent, self.exponent)
        self._scaled |= first
        s = self._scores[:k]
        s[...] = np.ldexp(d, -self.exponent[None, :])
        if self.chunk == CHUNK:
            # one pass over the chunk: the weighted sums and the mask sum together
            accumulate_weighted(self.weighted, s, m, 1, mask_sum=self.mask_sum)
        else:
            sgemm_accumulate_single_thread(self.weighted, s, m)
            accumulate_weighted(self._no_targets, self._no_scores[:k], m, 1,
                                mask_sum=self.mask_sum)
        self._fold_reliability(m, s)
        self.count += k
        self._pending = 0

    def maps(self, estimator: str) -> np.ndarray:
        """The maps so far of either estimator, for ``on_check`` callbacks (convergence studies:
        ``benchmarks/bench_rise_quality.py``); salvo's own runs read :meth:`result`.

        Parameters
        ----------
        estimator
            ``"centered"`` or ``"plain"`` (both are computed from the same sums, whatever
            :attr:`estimator` the run uses).

        Returns
        -------
        ndarray
            ``(T, P)`` float32, unscaled (in score units), over the masks folded so far; flat
            targets are not zeroed.

        Raises
        ------
        ValueError
            ``estimator`` is not one of :data:`ESTIMATORS`.
        """
        if not isinstance(estimator, str) or estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        shift, unit = self._finish_args(estimator)
        return finish_maps(self.weighted, shift, self.mask_sum, scale=None, unit=unit)


@dataclass
class RISEResult:
    """Raw maps and bookkeeping of one RISE run."""

    maps: np.ndarray  # (T, H, W), uint8 if scale_output else float32
    targets: list[int]
    unmasked_scores: np.ndarray  # (num_classes,)
    num_masks_used: int
    num_inferences: int
    seconds: float
    #: ``(T,)`` bool: maps that carry no information (their scores did not vary over the masks
    #: beyond float32 resolution) and are returned flat (zeros); a warning said so.
    flat: np.ndarray | None = None
    #: ``(T,)`` float64: each map's reliability, a conservative estimate of its correlation with
    #: the map of infinitely many masks (:meth:`Accumulator.reliability`); NaN for a map without
    #: information.
    reliability: np.ndarray | None = None
    #: ``(T,)`` float64: the point estimate of that correlation (``sqrt`` of Spearman-Brown).
    reliability_estimate: np.ndarray | None = None


def reliability_by_target(targets: Sequence[Any], values: np.ndarray | None) -> dict[Any, float]:
    """``{target: float}`` of a ``(T,)`` reliability array (empty for ``None``)."""
    if values is None:
        return {}
    return {t: float(v) for t, v in zip(targets, values)}


def run_rise(
    engine: InferenceEngine,
    x: np.ndarray,
    targets: Sequence[int] | None,
    params: RISEParams,
    score_fn: Callable[[OVDict], Any],
    *,
    unmasked_scores: np.ndarray | None = None,
    progress: bool | None = None,
    on_check: Callable[[int, Accumulator], None] | None = None,
    warn_flat: bool = True,
) -> RISEResult:
    """RISE of the preprocessed input ``x`` ``(1, …)`` for ``targets`` on ``engine``.

    The work of :meth:`RISE.run` (and of D-RISE, which passes its box-similarity weights as
    ``score_fn``): masks ``0 .. num_masks - 1`` of ``params.seed`` streamed through the engine,
    scores (``score_fn(outputs)``: ``(B, num_classes)``) accumulated in fixed chunks.

    Parameters
    ----------
    engine
        The compiled model.
    x
        The preprocessed input ``(1, …)``.
    targets
        Class indices (columns of the scores); ``None`` for all.
    params
        RISE's parameters (checked here).
    score_fn
        Raw outputs of a batch -> its scores ``(B, num_classes)``.
    unmasked_scores
        The scores of the unmasked input, in the same terms, if already known (else one more
        inference computes them).
    progress
        Progress bar: ``True``, ``False``, or ``None`` (when stderr is a terminal).
    on_check
        ``on_check(masks_used, accumulator)`` every ``check_every`` masks (for convergence
        studies: ``accumulator.maps("plain")`` and ``accumulator.maps("centered")`` share the
        same masks).
    warn_flat
        Warn about maps that carry no information (:attr:`RISEResult.flat`).
    """
    t0 = time.perf_counter()
    height, width = engine.input.image_size
    params = params.validate(height, width)
    design = mask_design_used(params)
    image = image_for_fill(x, engine)
    layout = engine.input.layout
    inferences = 0
    if unmasked_scores is None:
        x = fit_input(x, engine)
        got: list[OVDict] = []
        engine.run(1, lambda out, a, b: out.__setitem__(0, x[0]),
                   lambda a, b, outputs: got.append(outputs))
        unmasked_scores = Scorer(score_fn)(got[0], 1)[0]
        inferences += 1
    num_classes = unmasked_scores.shape[0]
    keys = list(range(num_classes)) if targets is None else [int(t) for t in targets]
    for k in keys:
        if not 0 <= k < num_classes:
            raise ValueError(
                f"targets: class index {k} is out of range for {num_classes} classes"
            )
    key_index = np.asarray(keys, np.intp)
    all_classes = targets is None or keys == list(range(num_classes))
    if all_classes and num_classes > MANY_TARGETS and params.target_reliability is not None:
        warnings.warn(
            f"RISE: target_reliability={params.target_reliability} waits for every explained "
            f"target, here all {num_classes} classes; classes whose scores hardly react to the "
            f"masks rarely reach it, so the run will likely use all num_masks="
            f"{params.num_masks}; pass the targets of interest (e.g. the top class) instead",
            LongRunWarning, stacklevel=caller_stacklevel(),
        )

    scorer = Scorer(score_fn, np.float64)
    acc = Accumulator(len(keys), height * width, estimator=params.estimator,
                      tolerance=params.tolerance, check_every=params.check_every,
                      on_check=on_check, shape=(height, width),
                      fold_unit=reliability_unit(params),
                      target_reliability=params.target_reliability,
                      noise_dof=(params.num_cells + 1) ** 2)
    in_flight: dict[int, np.ndarray] = {}

    free: list[np.ndarray] = []  # mask buffers of finished batches, reused

    def fill(out: np.ndarray, start: int, stop: int) -> None:
        n = stop - start
        buf = free.pop() if free else np.empty((engine.batch_size, height, width), np.float32)
        rise_masks(params.seed, start, n, params.num_cells, params.prob, height, width,
                   out=buf, design=design)
        fill_masked(image, buf[:n], out, layout, 1)
        in_flight[start] = buf

    def consume(start: int, stop: int, outputs: OVDict) -> bool:
        buf = in_flight.pop(start)
        masks = buf[: stop - start]
        free.append(buf)  # the accumulator copies what it keeps
        scores = scorer(outputs, stop - start)
        if scores.shape[1] != num_classes:
            raise ValueError(
                f"postprocess_fn returned {scores.shape[1]} classes for masked inputs and "
                f"{num_classes} for the unmasked one"
            )
        if not all_classes:
            scores = scores[:, key_index]
        return acc.add(masks.reshape(len(masks), -1), np.ascontiguousarray(scores))

    stops = [name for name in ("target_reliability", "tolerance")
             if getattr(params, name) is not None]
    bar = RunProgress(params.num_masks, desc="RISE", unit="mask", show=progress,
                      may_stop_early=" or ".join(stops) or None)
    try:
        submitted = engine.run(params.num_masks, fill, consume, progress=bar.update)
    finally:
        bar.close()
    inferences += submitted
    acc.finish()
    if acc.converged:
        logger.info("RISE stopped after %d masks (tolerance %s, target_reliability %s)",
                    acc.count, params.tolerance, params.target_reliability)
    used = acc.count
    maps = acc.result("uint8" if params.scale_output else None)
    maps = maps.reshape(len(keys), height, width)
    flat = acc.flat_targets()
    if warn_flat:
        warn_uninformative("RISE", flat, keys, f"its scores did not vary over the {used} "
                           "masks")
    bound, estimate = acc.reliability()
    return RISEResult(
        maps=maps, targets=keys, unmasked_scores=unmasked_scores, num_masks_used=used,
        num_inferences=inferences, seconds=time.perf_counter() - t0, flat=flat,
        reliability=bound, reliability_estimate=estimate,
    )


class RISE(BlackBoxXAIMethod):
    """RISE for classification models on the batched asynchronous engine (the reference
    toolkit's ``RISE``; parameters: :class:`~salvo.methods.black_box.base.BlackBoxXAIMethod`).

    A call's parameters are :class:`RISEParams` (presets ``SPEED``, ``BALANCE`` (default),
    ``QUALITY``).
    """

    name = "RISE"
    method = Method.RISE
    tasks = (Task.CLASSIFICATION,)
    params_class = RISEParams
    presets = RISE_PRESETS
    default_preset = Preset.BALANCE
    #: Warn (:class:`~salvo.errors.UninformativeMapWarning`) about flat maps.
    warn_flat = True

    def run(
        self,
        x: np.ndarray,
        targets: Sequence[int] | None,
        params: RISEParams,
        *,
        unmasked_scores: np.ndarray | None = None,
        progress: bool | None = None,
        on_check: Callable[[int, Accumulator], None] | None = None,
        postprocess_fn: Callable[[OVDict], Any] | None = None,
        engine: EngineConfig | None = None,
    ) -> RISEResult:
        """Explain the preprocessed input ``x`` ``(1, …)`` for ``targets`` (class indices;
        ``None`` for all); see :func:`run_rise`.

        ``postprocess_fn`` (optional) replaces the method's own for this call only (raw outputs
        of a batch -> the weights ``(B, num_classes)`` of its masks); ``unmasked_scores`` must
        then be given in the same terms. ``engine``: engine settings over the method's own.
        """
        return run_rise(
            self.engine_for(engine), x, targets, params,
            self.postprocess_fn if postprocess_fn is None else postprocess_fn,
            unmasked_scores=unmasked_scores,
            progress=self.progress if progress is None else progress,
            on_check=on_check, warn_flat=self.warn_flat,
        )

    def explain(
        self,
        x: np.ndarray,
        targets: Any = -1,
        params: RISEParams | None = None,
        *,
        label_names: Sequence[str] | None = None,
        progress: bool | None = None,
        engine: EngineConfig | None = None,
        **overrides: Any,
    ) -> MethodResult:
        """Explain ``x`` ``(1, …)`` for ``targets`` (see
        :meth:`~salvo.methods.base.MethodBase.explain`). Keyword ``overrides`` are RISE's
        parameters (``preset``, ``num_masks``, ``num_cells``, ``prob``, ``seed``,
        ``scale_output``, ``estimator``, ``tolerance``, ``check_every``, ``mask_design``); they
        are checked before any inference runs. ``extra["mask_design"]`` is the design the masks
        came from (:func:`mask_design_used`)."""
        rise_params = self.resolve_params(params, **overrides)
        runner = self.engine_for(engine)
        height, width = runner.input.image_size
        rise_params = rise_params.validate(height, width)
        unmasked = self.scores_of(x, engine)
        keys = self.resolve_target_spec(targets, unmasked, unmasked.shape[0], label_names)
        result = self.run(x, keys, rise_params, unmasked_scores=unmasked, progress=progress,
                          engine=engine)
        return MethodResult(
            maps=result.maps,
            targets=result.targets,
            predictions=predictions_for(unmasked, result.targets),
            num_inferences=result.num_inferences + 1,
            scores=unmasked,
            extra={"num_masks_used": result.num_masks_used, "seconds": result.seconds,
                   "params": rise_params, "flat": result.flat,
                   "mask_design": mask_design_used(rise_params),
                   "reliability_estimate": reliability_by_target(
                       result.targets, result.reliability_estimate)},
            reliability=reliability_by_target(result.targets, result.reliability),
        )

    def explain_stream(
        self,
        jobs: Iterable[StreamJob],
        params: RISEParams | None,
        on_result: Callable[[StreamJob, MethodResult | Exception], None],
        *,
        label_names: Sequence[str] | None = None,
        engine: EngineConfig | None = None,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[float], None] | None = None,
        num_jobs: int | None = None,
    ) -> int:
        """Explain a stream of inputs in ONE engine run (see :meth:`run_many`): the masks of
        consecutive images share batches, and each map is bit-identical to :meth:`explain` of
        that image alone."""
        rise_params = self.resolve_params(params)

        def rise_jobs() -> Iterator[RISEJob]:
            for job in jobs:
                def keys(scores: np.ndarray, spec: Any = job.targets) -> list[int]:
                    return self.resolve_target_spec(spec, scores, scores.shape[0], label_names)

                yield RISEJob(job.x, keys, tag=job)

        def deliver(rjob: RISEJob, outcome: RISEResult | Exception) -> None:
            if isinstance(outcome, Exception):
                on_result(rjob.tag, outcome)
                return
            on_result(rjob.tag, MethodResult(
                maps=outcome.maps, targets=list(outcome.targets),
                predictions=predictions_for(outcome.unmasked_scores, outcome.targets),
                num_inferences=outcome.num_inferences, scores=outcome.unmasked_scores,
                extra={"num_masks_used": outcome.num_masks_used, "seconds": outcome.seconds,
                       "params": rise_params, "flat": outcome.flat, "packed": True,
                       "mask_design": mask_design_used(rise_params),
                       "reliability_estimate": reliability_by_target(
                           outcome.targets, outcome.reliability_estimate)},
                reliability=reliability_by_target(outcome.targets, outcome.reliability),
            ))

        return self.run_many(rise_jobs(), rise_params, deliver, should_stop=should_stop,
                             progress=progress, num_jobs=num_jobs, engine=engine)

    def generate_saliency_map(
        self,
        data: np.ndarray,
        target_indices: Sequence[int] | None = None,
        preset: Preset = Preset.BALANCE,
        num_masks: int | None = None,
        num_cells: int | None = None,
        prob: float = 0.5,
        seed: int = 0,
        scale_output: bool = True,
    ) -> np.ndarray | dict[int, np.ndarray]:
        """The reference toolkit's call: RISE maps of raw ``data`` (``preprocess_fn`` is
        applied).

        Returns
        -------
        numpy.ndarray or dict
            ``target_indices=None``: ``(1, num_classes, H, W)`` (uint8 with ``scale_output``,
            else float32); otherwise ``{target: (H, W)}``. :attr:`predictions` gets
            ``{target: Prediction(label, score)}``.
        """
        result = self._generate(data, target_indices, preset=preset, num_masks=num_masks,
                                num_cells=num_cells, prob=prob, seed=seed,
                                scale_output=scale_output)
        if target_indices is None:
            return result.maps[None]
        return self._maps_by_target(result)

    # -- several images in one engine run (salvo.bulk) ----------------------------------------
    def run_many(
        self,
        jobs: Iterable[RISEJob],
        params: RISEParams,
        on_result: Callable[[RISEJob, RISEResult | Exception], None],
        *,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[float], None] | None = None,
        num_jobs: int | None = None,
        engine: EngineConfig | None = None,
    ) -> int:
        """Explain several images in ONE engine run, so batches stay full across images.

        Each image contributes its unmasked input followed by its masks ``0 .. num_masks - 1``
        to one stream of items; a batch may hold the last masks of image ``j`` and the first
        items of image ``j + 1``. Every image keeps its own :class:`Accumulator` and the same
        per-image mask indices (mask ``i`` of every image is ``rise_masks(seed, i, …)``), folded
        in the same fixed chunks, so each map is bit-identical to :meth:`run` on that image
        alone. With ``tolerance`` an image stops at the same check as alone; its masks already
        in flight are dropped and the next image's items take its place.

        ``jobs`` is consumed lazily (an image is pulled when the stream reaches it, so a loader
        may decode files on the fly); the model's unmasked scores of an image arrive before its
        masks' scores, so ``job.targets`` may be a function of them (e.g. the top-1 class).

        Parameters
        ----------
        jobs
            :class:`RISEJob` s: preprocessed input ``x (1, …)`` in the model's dtype and layout,
            ``targets`` (class indices, ``None`` for all, or ``f(scores (num_classes,) float32)``
            returning either) and a ``tag`` for the caller.
        params
            RISE parameters, shared by all images.
        on_result
            ``on_result(job, result)`` is called once per job, in job order, from the thread
            running this method: a :class:`RISEResult` (``num_inferences`` counts the image's
            unmasked inference and every mask submitted for it; ``seconds`` runs from its first
            item's submission to its map) or the exception that made this image fail (its
            ``targets`` could not be resolved). Errors that concern the whole run (the model,
            ``postprocess_fn``) are raised.
        should_stop
            Polled after every batch; ``True`` ends the run (images not finished are dropped
            without a call to ``on_result``).
        progress
            Called with the fraction of an image each finished batch completed. The fractions
            are multiples of ``2**-20``, so they add up to exactly 1.0 per image in floating
            point (a bar over ``N`` images ends at ``N``, never a little past it).
        num_jobs
            The most jobs ``jobs`` will yield (``len(jobs)`` by default when it has a length).
            It lets the engine stop right after the last item; without it the stream's end is
            found by looking ahead, and up to ``num_requests - 1`` batches of padding run at
            the end. Yielding more jobs than this is a ``ValueError``.

        Returns
        -------
        int
            Model inferences submitted in total (the last batch's unused slots included).
        """
        engine_settings = engine
        engine = self.engine_for(engine_settings)
        height, width = engine.input.image_size
        params = params.validate(height, width)
        design = mask_design_used(params)
        layout = engine.input.layout
        num_masks = int(params.num_masks)
        scorer = Scorer(self.postprocess_fn, np.float64)
        if num_jobs is None and hasattr(jobs, "__len__"):
            num_jobs = len(jobs)  # type: ignore[arg-type]
        if num_jobs is not None and (not isinstance(num_jobs, (int, np.integer)) or num_jobs < 0):
            raise ValueError(f"num_jobs must be a non-negative int or None, got {num_jobs!r}")
        source = iter(jobs)
        state: dict[str, Any] = {"current": None, "exhausted": False, "submitted": 0,
                                 "pulled": 0}
        active: list[_ImageRun] = []  # pulled and not yet reported, in job order
        in_flight: dict[int, list[tuple[_ImageRun, int, int, np.ndarray | None, int]]] = {}

        def pull() -> _ImageRun | None:
            if state["exhausted"]:
                return None
            try:
                job = next(source)
            except StopIteration:
                state["exhausted"] = True
                return None
            state["pulled"] += 1
            if num_jobs is not None and state["pulled"] > num_jobs:
                raise ValueError(f"jobs yielded more than num_jobs={num_jobs} jobs")
            run = _ImageRun(job, image_for_fill(np.asarray(job.x), engine))
            run.index = state["pulled"] - 1
            active.append(run)
            return run

        def advance(run: _ImageRun, items: int) -> None:
            # progress in whole units of 2**-20 of an image: floating-point sums stay exact
            units = (_PROGRESS_UNITS if items >= num_masks + 1
                     else items * _PROGRESS_UNITS // (num_masks + 1))
            delta = units - run.progress_units
            run.progress_units = units
            if progress is not None and delta > 0:
                progress(delta / _PROGRESS_UNITS)

        def report(run: _ImageRun, outcome: RISEResult | Exception) -> None:
            run.reported = True
            active.remove(run)
            advance(run, num_masks + 1)
            on_result(run.job, outcome)

        def fill(out: np.ndarray, start: int, stop: int) -> None:
            segments: list[tuple[_ImageRun, int, int, np.ndarray | None, int]] = []
            n, p = stop - start, 0
            run = state["current"]
            while p < n:
                if run is None or run.placed_all(num_masks):
                    run = pull()
                    state["current"] = run
                    if run is None:
                        break  # the stream ended: the rest of this batch is padding
                if run.placed == 0:
                    out[p] = run.job.x[0]
                    segments.append((run, -1, 1, None, p))
                    run.placed, run.t0 = 1, time.perf_counter()
                    p += 1
                    continue
                first = run.placed - 1
                count = min(n - p, num_masks - first)
                masks = rise_masks(params.seed, first, count, params.num_cells, params.prob,
                                   height, width, design=design)
                fill_masked(run.image, masks, out[p : p + count], layout, 1)
                segments.append((run, first, count, masks, p))
                run.placed += count
                p += count
            if run is not None and run.placed_all(num_masks):
                # look ahead, so the consumer knows when the stream has ended
                state["current"] = pull()
            in_flight[start] = segments
            state["submitted"] += n

        def consume(start: int, stop: int, outputs: OVDict) -> bool:
            segments = in_flight.pop(start)
            scores = scorer(outputs, stop - start)
            for run, first, count, masks, p in segments:
                if run.reported:
                    continue  # converged or failed: its masks still in flight are dropped
                rows = scores[p : p + count]
                if first < 0:
                    run.unmasked = rows[0].astype(np.float32)  # as scores_of gives them
                    try:
                        run.resolve_targets()
                    except Exception as exc:  # this image only
                        run.failed = True
                        report(run, exc)
                        continue
                    run.acc = Accumulator(len(run.keys), height * width,
                                          estimator=params.estimator,
                                          tolerance=params.tolerance,
                                          check_every=params.check_every,
                                          shape=(height, width),
                                          fold_unit=reliability_unit(params),
                                          target_reliability=params.target_reliability,
                                          noise_dof=(params.num_cells + 1) ** 2)
                    run.consumed = 1
                    advance(run, 1)
                    continue
                if rows.shape[1] != run.unmasked.shape[0]:
                    raise ValueError(
                        f"postprocess_fn returned {rows.shape[1]} classes for masked inputs and "
                        f"{run.unmasked.shape[0]} for the unmasked one"
                    )
                if not run.all_classes:
                    rows = rows[:, run.key_index]
                converged = run.acc.add(masks.reshape(count, -1), np.ascontiguousarray(rows))
                run.consumed += count
                advance(run, run.consumed)
                if converged or run.consumed == num_masks + 1:
                    result = run.result(params, height, width)
                    if self.warn_flat:
                        warn_uninformative(
                            "RISE", result.flat, result.targets,
                            f"its scores did not vary over the {result.num_masks_used} masks "
                            f"(job {run.index})",
                        )
                    report(run, result)
            if state["exhausted"] and not active:
                return True
            return bool(should_stop is not None and should_stop())

        first_run = pull()
        if first_run is None:
            return 0
        state["current"] = first_run
        # without num_jobs the stream's length is not known in advance: the consumer ends the run
        total = (1 << 62) if num_jobs is None else int(num_jobs) * (num_masks + 1)
        engine.run(total, fill, consume)
        return int(state["submitted"])


@dataclass
class RISEJob:
    """One image of :meth:`RISE.run_many`.

    Attributes
    ----------
    x
        Preprocessed input ``(1, …)`` in the model's element type and layout.
    targets
        Class indices, ``None`` for all classes, or a function of the unmasked class scores
        ``(num_classes,) float32`` returning either.
    tag
        Anything the caller wants back with the result.
    """

    x: np.ndarray
    targets: Sequence[int] | None | Callable[[np.ndarray], Sequence[int] | None] = None
    tag: Any = None


class _ImageRun:
    """Bookkeeping of one image inside :meth:`RISE.run_many` (fill and consume cursors)."""

    def __init__(self, job: RISEJob, image: np.ndarray) -> None:
        self.job = job
        self.image = image
        self.index = 0  # position in the stream of jobs
        self.placed = 0  # items put into requests: the unmasked one, then masks
        self.consumed = 0  # items whose scores were accumulated
        self.progress_units = 0  # progress reported, in 2**-20 of the image
        self.t0 = 0.0
        self.unmasked: np.ndarray | None = None
        self.keys: list[int] = []
        self.key_index: np.ndarray | None = None
        self.all_classes = True
        self.acc: Accumulator | None = None
        self.failed = False
        self.reported = False

    def placed_all(self, num_masks: int) -> bool:
        return self.placed >= num_masks + 1 or self.reported

    def resolve_targets(self) -> None:
        assert self.unmasked is not None
        num_classes = self.unmasked.shape[0]
        targets = self.job.targets
        if callable(targets):
            targets = targets(self.unmasked)
        keys = list(range(num_classes)) if targets is None else [int(t) for t in targets]
        if not keys:
            raise ValueError("targets is empty")
        for k in keys:
            if not 0 <= k < num_classes:
                raise ValueError(
                    f"targets: class index {k} is out of range for {num_classes} classes"
                )
        self.keys = keys
        self.key_index = np.asarray(keys, np.intp)
        self.all_classes = targets is None or keys == list(range(num_classes))

    def result(self, params: RISEParams, height: int, width: int) -> RISEResult:
        assert self.acc is not None and self.unmasked is not None
        self.acc.finish()
        maps = self.acc.result("uint8" if params.scale_output else None)
        maps = maps.reshape(len(self.keys), height, width)
        bound, estimate = self.acc.reliability()
        return RISEResult(
            maps=maps, targets=list(self.keys), unmasked_scores=self.unmasked,
            num_masks_used=self.acc.count, num_inferences=self.placed,
            seconds=time.perf_counter() - self.t0, flat=self.acc.flat_targets(),
            reliability=bound, reliability_estimate=estimate,
        )
