// Streaming RISE aggregation: weighted[t, p] += sum_k scores[k, t] * masks[k, p].
//
// A GEMM (T x K) @ (K x P) with small K (one chunk of masks) and large P (pixels), blocked over
// pixels so a block of the K masks stays in cache while every target row is updated. Written
// here rather than called through BLAS so that the thread count is explicit: a BLAS pool that
// spins between calls steals the cores the inference engine is using.
#pragma once

#include <cstdint>

namespace salvo {

// mask_sum (optional, may be null): mask_sum[p] += sum_k masks[k, p] in double precision, in
// the same pass over each block of masks (mask k added in order k = 0, 1, ...).
void accumulate_weighted(float* weighted, const float* scores, const float* masks, int64_t t,
                         int64_t k, int64_t p, int num_threads, double* mask_sum = nullptr);

}  // namespace salvo
