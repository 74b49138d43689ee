// Streaming RISE aggregation: weighted[t, p] += sum_k scores[k, t] * masks[k, p].
//
// A GEMM (T x K) @ (K x P) with small K (one chunk of masks) and large P (pixels), blocked over
// pixels so a block of the K masks stays in cache while every target row is updated. Written
// here rather than called through BLAS so that the thread count is explicit: a BLAS pool that
// spins between calls steals the cores the inference engine is using.
#pragma once

#include <cstdint>

namespace salvo {

void accumulate_weighted(float* weighted, const float* scores, const float* masks, int64_t t,
                         int64_t k, int64_t p, int num_threads);

}  // namespace salvo
