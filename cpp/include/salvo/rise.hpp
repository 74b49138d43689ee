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

// Masks first .. first+count-1, each (H, W) float32, into out (count * H * W).
void rise_masks(uint64_t seed, int64_t first, int64_t count, int num_cells, float prob,
                int64_t h, int64_t w, float* out, int num_threads);

}  // namespace salvo
