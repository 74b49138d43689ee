"""RISE's balanced mask design: the native generator against a NumPy construction written here
from the design's definition, and the design's properties (balance, pairs, foldover, shifts).

The definition (``cpp/include/salvo/rise.hpp``): blocks of ``L = 2 * (least power of two >=
n * n)`` masks; mask ``i`` is row ``r = i % L`` of block ``b = i // L``. Per block, cell ``j``
gets column ``L/2 | perm_b(j)`` and complement bit ``comp_bj``; row ``r`` reads design row
``r' = pairs_b(r >> 1) | ((r & 1) << (log2(L) - 1))`` (``pairs_b`` a random permutation of the
block's ``L/2`` complementary pairs); the cell is ``parity(r' & col_j) ^ comp_bj``. One shift
per block from a randomly rotated R2 sequence.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from salvo.kernels import balanced_block_length, rise_masks
from salvo.testing.hooks import rise_grid

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
#: The plastic number (the real root of x**3 = x + 1), the R2 sequence's base.
RHO = 1.32471795724474602596


def fmix(z: int) -> int:
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & M64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return z


def draw(seed: int, index: int, k: int) -> int:
    return fmix(fmix((seed * GOLDEN + index + 1) & M64) ^ (((k + 1) * 0xD1B54A32D192ED03) & M64))


def block_length(n: int) -> int:
    return 2 * (1 << max(0, math.ceil(math.log2(n * n))))


def design_seed(seed: int) -> int:
    return fmix(seed ^ ((9 * GOLDEN) & M64))


def fisher_yates(size: int, stream: int, b: int, offset: int) -> list[int]:
    """A permutation of ``range(size)``: for k = size-1 .. 1, swap k with draw(offset + k) %
    (k + 1)."""
    perm = list(range(size))
    for k in range(size - 1, 0, -1):
        j = draw(stream, b, offset + k) % (k + 1)
        perm[k], perm[j] = perm[j], perm[k]
    return perm


def block(seed: int, b: int, n: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Block ``b``'s columns ``(n*n,)``, complement bits ``(n*n,)`` and pair order."""
    t, nn, half = design_seed(seed), n * n, block_length(n) // 2
    cols = np.array([half | p for p in fisher_yates(nn, t, b, 2000)], np.int64)
    comp = np.array([draw(t, b, 1000 + j) >> 63 for j in range(nn)], np.uint8)
    return cols, comp, fisher_yates(half, t ^ 0xA5A5, b, 0)


def block_shift(seed: int, b: int, cell_h: int, cell_w: int) -> tuple[int, int]:
    stream = design_seed(seed) ^ 0x5A5A
    out = []
    for d, (step, cells) in enumerate(((1.0 / RHO, cell_h), (1.0 / (RHO * RHO), cell_w))):
        u = (draw(stream, 0, d) >> 11) * 2.0**-53
        out.append(min(math.floor(math.fmod(u + b * step, 1.0) * cells), cells - 1))
    return out[0], out[1]


def numpy_grid(seed: int, i: int, n: int, h: int, w: int) -> tuple[np.ndarray, int, int]:
    """Mask ``i``'s grid ``(n, n)`` uint8 and shift, from the definition."""
    big = block_length(n)
    b, r = divmod(i, big)
    cols, comp, pairs = block(seed, b, n)
    rr = pairs[r >> 1] | ((r & 1) << (big.bit_length() - 2))
    bits = np.array([bin(rr & int(c)).count("1") & 1 for c in cols], np.uint8) ^ comp
    return bits.reshape(n, n), *block_shift(seed, b, -(-h // n), -(-w // n))


def block_grids(seed: int, b: int, n: int, h: int = 64, w: int = 64) -> np.ndarray:
    """The native grids of block ``b`` as ``(L, n*n)`` int ±1."""
    big = balanced_block_length(n)
    g = np.array([rise_grid(seed, b * big + r, n, 0.5, h, w, "balanced")[0].ravel()
                  for r in range(big)], np.int64)
    return 2 * g - 1


def test_rho_and_block_lengths():
    assert abs(RHO**3 - RHO - 1) < 1e-14
    for n, big in ((1, 2), (2, 8), (3, 32), (5, 64), (8, 128), (12, 512), (16, 512), (17, 1024)):
        assert balanced_block_length(n) == block_length(n) == big


@pytest.mark.parametrize("seed, n, h, w", [
    (0, 8, 224, 224), (M64, 8, 224, 224), (12345, 8, 224, 224), (7, 16, 64, 64),
    (5, 3, 40, 30), (1, 1, 9, 9), (3, 5, 100, 60),
])
def test_native_grids_and_shifts_equal_the_numpy_construction(seed, n, h, w):
    big = block_length(n)
    indices = [0, 1, 2, big - 1, big, big + 1, 3 * big + 5, 10**9 + 7, 2**40 + 3]
    for i in indices:
        grid, dy, dx = rise_grid(seed, i, n, 0.5, h, w, "balanced")
        want, wy, wx = numpy_grid(seed, i, n, h, w)
        assert np.array_equal(grid, want), f"mask {i}"
        assert (dy, dx) == (wy, wx), f"mask {i}: shift {(dy, dx)}, expected {(wy, wx)}"


@pytest.mark.parametrize("seed, n, h, w", [(0, 8, 224, 224), (4, 3, 40, 30)])
def test_balanced_masks_are_the_upsampled_grids(seed, n, h, w):
    """The masks are the design's grids through RISE's upsampler (OpenCV's bicubic resize to
    ``(n + 1)`` cells, crop at the shift, clip), whatever the design."""
    cell_h, cell_w = -(-h // n), -(-w // n)
    first = block_length(n) - 3
    got = rise_masks(seed, first, 6, n, 0.5, h, w, num_threads=2, design="balanced")
    for t in range(6):
        grid, dy, dx = numpy_grid(seed, first + t, n, h, w)
        up = cv2.resize(grid.astype(np.float32), ((n + 1) * cell_w, (n + 1) * cell_h),
                        interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(got[t], np.clip(up[dy : dy + h, dx : dx + w], 0, 1),
                                   atol=2e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 16])
def test_every_block_is_balanced_in_cells_and_pairs(n):
    """In every full block each cell is on in exactly half the masks and each pair of cells in
    exactly a quarter (so the ±1 columns are orthogonal); rows 2k and 2k + 1 are complements;
    the whole block shares one shift."""
    big = balanced_block_length(n)
    for seed, b in ((0, 0), (1, 1), (99, 7)):
        g = block_grids(seed, b, n)
        on = (g + 1) // 2
        assert (on.sum(axis=0) == big // 2).all(), f"seed {seed} block {b}: cell balance"
        together = on.T @ on
        off = ~np.eye(n * n, dtype=bool)
        assert (together[off] == big // 4).all(), f"seed {seed} block {b}: pair balance"
        assert (g[0::2] == -g[1::2]).all(), "complementary rows are adjacent"
        shifts = {rise_grid(seed, b * big + r, n, 0.5, 64, 64, "balanced")[1:]
                  for r in range(0, big, max(1, big // 16))}
        assert len(shifts) == 1, f"one shift per block, got {shifts}"


@pytest.mark.parametrize("n", [5, 8])
def test_a_partial_block_aliases_no_two_cells(n):
    """The masks of a run that ends inside a block are complementary pairs drawn without
    replacement: every cell is on in exactly half of any even prefix, and over half a block or
    more no two cells are identical or complementary (for two given cells, a random half of the
    pairs agreeing everywhere has probability below 1e-8). Negative control: in design order
    (no pair permutation) the first half block aliases every cell with another one."""
    big = balanced_block_length(n)
    off = ~np.eye(n * n, dtype=bool)
    for seed in range(3):
        g = block_grids(seed, 0, n)
        for count in (big // 4, big // 2, 3 * big // 4):
            assert (g[:count].sum(axis=0) == 0).all()
        for count in (big // 2, 3 * big // 4):
            c = g[:count].T @ g[:count]
            assert np.abs(c[off]).max() < count, f"seed {seed}, {count} masks: aliased cells"
        cols, comp, _ = block(seed, 0, n)
        rows = [k | (h << (big.bit_length() - 2)) for k in range(big // 4) for h in (0, 1)]
        ordered = np.array([[bin(r & int(c)).count("1") & 1 for c in cols] for r in rows])
        ordered = 2 * (ordered ^ comp).astype(np.int64) - 1
        c = ordered.T @ ordered
        assert np.abs(c[off]).max() == big // 2, "design order aliases cells in a half block"


def test_negative_control_iid_blocks_are_not_balanced():
    """The same checks fail for iid masks (they would pass a design silently replaced by
    iid masks only by an astronomically unlikely chance)."""
    n, big = 8, 128
    g = np.array([rise_grid(0, r, n, 0.5, 64, 64, "iid")[0].ravel() for r in range(big)])
    assert not (g.sum(axis=0) == big // 2).all()
    assert len({rise_grid(0, r, n, 0.5, 64, 64, "iid")[1:] for r in range(big)}) > 1
    balanced = np.array([rise_grid(0, r, n, 0.5, 64, 64, "balanced")[0].ravel()
                         for r in range(big)])
    assert not np.array_equal(g, balanced)


def test_blocks_differ_and_shifts_are_stratified_over_blocks():
    """Different blocks draw different columns/complements; the per-block shifts of 64 blocks
    cover the cell's shifts far more evenly than independent draws would: each coordinate is a
    Kronecker sequence, so every one of the 28 shift rows (and columns) gets 1 to 4 of the 64
    blocks (64 independent draws leave 2.7 of the 28 empty on average), and no two blocks
    share a shift."""
    n, big, cell = 8, 128, 28
    assert not np.array_equal(block_grids(0, 0, n), block_grids(0, 1, n))
    shifts = np.array([rise_grid(3, b * big, n, 0.5, 224, 224, "balanced")[1:]
                       for b in range(64)])
    for axis in (0, 1):
        counts = np.bincount(shifts[:, axis], minlength=cell)
        assert counts.min() >= 1 and counts.max() <= 4, counts
    assert len({tuple(s) for s in shifts}) == 64


def test_each_mask_is_marginally_a_fair_coin_grid():
    """Mask ``i`` alone is distributed as an iid mask: a given (row, cell) over many blocks is a
    fair coin, independent of another cell (the complements are independent per block)."""
    n, big, blocks = 4, 32, 2000
    rows = np.array([rise_grid(11, b * big + 5, n, 0.5, 16, 16, "balanced")[0].ravel()
                     for b in range(blocks)], np.float64)
    sigma = 0.5 / math.sqrt(blocks)
    assert np.abs(rows.mean(axis=0) - 0.5).max() < 4.5 * sigma
    c = np.corrcoef(rows.T)[~np.eye(n * n, dtype=bool)]
    assert np.abs(c).max() < 4.5 / math.sqrt(blocks)


@pytest.mark.parametrize("n", [3, 8, 16])
def test_masks_are_a_pure_function_of_seed_and_index(n):
    """Any split of a run into calls (inside or across blocks, shorter than a block) and any
    thread count give the same masks."""
    whole = rise_masks(5, 0, 300, n, 0.5, 48, 48, design="balanced")
    parts = [rise_masks(5, a, b - a, n, 0.5, 48, 48, num_threads=t, design="balanced")
             for (a, b), t in zip(((0, 1), (1, 100), (100, 129), (129, 300)), (1, 2, 2, 1))]
    assert np.array_equal(np.concatenate(parts), whole)
    iid = rise_masks(5, 0, 300, n, 0.5, 48, 48)
    assert not np.array_equal(iid, whole)


@pytest.mark.parametrize("kwargs, match", [
    ({"design": "hadamard"}, "design must be 'iid' or 'balanced', got 'hadamard'"),
    ({"design": "balanced", "prob": 0.3}, r"design 'balanced' needs prob 0.5, got 0.3"),
])
def test_design_errors_name_the_value(kwargs, match):
    args = {"seed": 0, "first": 0, "count": 4, "num_cells": 4, "prob": 0.5, "height": 16,
            "width": 16, **kwargs}
    with pytest.raises(ValueError, match=match):
        rise_masks(**args)
    with pytest.raises(ValueError, match=match):
        rise_grid(0, 0, 4, args["prob"], 16, 16, args["design"])
    with pytest.raises(ValueError, match="num_cells must be >= 1, got 0"):
        balanced_block_length(0)
