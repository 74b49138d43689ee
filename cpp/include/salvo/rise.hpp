// RISE masks (Petsiuk et al., arXiv 1806.07421), the reference toolkit's definition:
//
//   grid  = Bernoulli(prob) cells, num_cells x num_cells
//   cell  = (ceil(H / num_cells), ceil(W / num_cells))
//   up    = bicubic upsampling of grid (OpenCV's INTER_CUBIC: a = -0.75, half-pixel centres,
//           replicated border) to ((num_cells + 1) * cell_h, (num_cells + 1) * cell_w)
//   mask  = clip(up[dy : dy + H, dx : dx + W], 0, 1), dy < cell_h, dx < cell_w random shifts
//
// Randomness is counter-based: mask i is a pure function of (seed, i), so any mask can be
// produced on its own, in any order, on any thread, and batch sizes do not change results.
//
// Two designs give the grid and the shift of mask i:
//
//   IID       every cell an independent Bernoulli(prob) draw, every mask its own shift (the
//             reference toolkit's masks).
//   BALANCED  (prob 0.5 only) blocks of L = 2 * (next power of two >= num_cells^2) masks from a
//             resolution-IV foldover of the Sylvester-Hadamard design of order L. Mask i is row
//             r = i % L of block b = i / L. Per block: cell j gets the column
//             col_j = L/2 | perm_b(j) (perm_b a random permutation of 0 .. n*n-1) and a random
//             complement bit comp_bj; rows 2k and 2k+1 of a block are the complementary design
//             rows q and q + L/2 with q = pairs_b(k) (pairs_b a random permutation of
//             0 .. L/2-1): r' = pairs_b(r >> 1) | ((r & 1) << (log2(L) - 1)); cell j of row r
//             is parity(r' & col_j) ^ comp_bj. (The pair permutation makes a run that ends
//             inside a block a sample of complementary pairs without replacement; in design
//             order, a prefix of 2^k rows would alias cells whose columns agree in k bits.) Every cell is on in exactly half the masks of a
//             full block and every pair of cells in exactly a quarter. All masks of a block
//             share one shift, block b's from a randomly rotated R2 low-discrepancy sequence
//             over blocks. Each mask on its own is distributed exactly as an IID mask (the
//             complement bits are independent fair coins, the rotation uniform), so the
//             estimators keep their expectation; what changes is the variance.
//             Hash streams (t = balanced_seed(seed), draws of rise_hash):
//               comp_bj       top bit of rise_hash(t, b, 1000 + j)
//               perm_b        Fisher-Yates over 0 .. n*n-1: for k = n*n-1 .. 1, swap k with
//                             rise_hash(t, b, 2000 + k) % (k + 1)
//               pairs_b       Fisher-Yates over 0 .. L/2-1: for k = L/2-1 .. 1, swap k with
//                             rise_hash(t ^ 0xA5A5, b, k) % (k + 1)
//               rotation      u_d = (rise_hash(t ^ 0x5A5A, 0, d) >> 11) * 2^-53, d = 0, 1
//               shift of b    dy = floor(fmod(u_0 + b * a_1, 1) * cell_h),
//                             dx = floor(fmod(u_1 + b * a_2, 1) * cell_w),
//                             a_1 = 1 / rho, a_2 = 1 / rho^2, rho the plastic number.
#pragma once

#include <cstdint>

namespace salvo {

// The 64-bit hash behind every random draw: draw j of mask i under seed.
uint64_t rise_hash(uint64_t seed, uint64_t mask_index, uint64_t draw);

// Random parts of mask i: the grid (num_cells * num_cells bytes, 0/1) and the shifts.
// Cell k (row-major) is on when the top 24 bits of rise_hash(seed, i, k), read as a fraction
// in [0, 1), are < prob; dy = rise_hash(seed, i, n*n) % cell_h, dx = rise_hash(seed, i, n*n+1)
// % cell_w.
void rise_grid(uint64_t seed, int64_t mask_index, int num_cells, float prob, int64_t cell_h,
               int64_t cell_w, uint8_t* grid, int64_t* dy, int64_t* dx);

enum class MaskDesign { IID = 0, BALANCED = 1 };

// Block length of the BALANCED design: 2 * (the least power of two >= num_cells^2).
int64_t balanced_block_length(int num_cells);

// The seed of the BALANCED design's hash streams (kept apart from the IID stream of seed).
uint64_t balanced_seed(uint64_t seed);

// Random parts of mask i of the BALANCED design (see above), as rise_grid.
void balanced_grid(uint64_t seed, int64_t mask_index, int num_cells, int64_t cell_h,
                   int64_t cell_w, uint8_t* grid, int64_t* dy, int64_t* dx);

// Masks first .. first+count-1, each (H, W) float32, into out (count * H * W). BALANCED
// requires prob == 0.5 (std::invalid_argument otherwise).
void rise_masks(uint64_t seed, int64_t first, int64_t count, int num_cells, float prob,
                int64_t h, int64_t w, float* out, int num_threads,
                MaskDesign design = MaskDesign::IID);

}  // namespace salvo
