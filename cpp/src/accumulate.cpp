#include "salvo/accumulate.hpp"

#include <algorithm>
#include <vector>

#include "salvo/parallel.hpp"
#include "salvo/simd.hpp"

namespace salvo {
namespace {

constexpr int64_t kBlock = 2048;  // pixels per task: the K masks' block (K * 8 KB) stays in L2

// dst[0..n) += sum_j coef[j] * src[j * stride + 0..n), eight masks per pass over dst.
SALVO_TARGET_CLONES
void axpy_block(float* dst, const float* src, int64_t stride, const float* coef, int64_t k,
                int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) {
        const float* s = src + j * stride;
        const float c0 = coef[j], c1 = coef[j + 1], c2 = coef[j + 2], c3 = coef[j + 3];
        const float c4 = coef[j + 4], c5 = coef[j + 5], c6 = coef[j + 6], c7 = coef[j + 7];
        const float *s0 = s, *s1 = s + stride, *s2 = s + 2 * stride, *s3 = s + 3 * stride;
        const float *s4 = s + 4 * stride, *s5 = s + 5 * stride, *s6 = s + 6 * stride,
                    *s7 = s + 7 * stride;
        for (int64_t x = 0; x < n; ++x)
            dst[x] += ((c0 * s0[x] + c1 * s1[x]) + (c2 * s2[x] + c3 * s3[x])) +
                      ((c4 * s4[x] + c5 * s5[x]) + (c6 * s6[x] + c7 * s7[x]));
    }
    for (; j < k; ++j) {
        const float c = coef[j];
        const float* s = src + j * stride;
        for (int64_t x = 0; x < n; ++x) dst[x] += c * s[x];
    }
}

// sum[0..n) += src[j * stride + 0..n) for j = 0..k-1, in that order, in double precision.
SALVO_TARGET_CLONES
void column_sum_block(double* sum, const float* src, int64_t stride, int64_t k, int64_t n) {
    for (int64_t j = 0; j < k; ++j) {
        const float* s = src + j * stride;
        for (int64_t x = 0; x < n; ++x) sum[x] += static_cast<double>(s[x]);
    }
}

}  // namespace

void accumulate_weighted(float* weighted, const float* scores, const float* masks, int64_t t,
                         int64_t k, int64_t p, int num_threads, double* mask_sum) {
    if (k <= 0 || p <= 0 || (t <= 0 && mask_sum == nullptr)) return;
    // scores is (K, T) row-major; gather each target's K coefficients contiguously
    std::vector<float> coef(static_cast<size_t>(t * k));
    for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < t; ++i) coef[i * k + j] = scores[j * t + i];
    const int64_t blocks = (p + kBlock - 1) / kBlock;
    parallel_for(blocks, num_threads, [&](int64_t b) {
        const int64_t x0 = b * kBlock;
        const int64_t n = std::min(kBlock, p - x0);
        for (int64_t i = 0; i < t; ++i)
            axpy_block(weighted + i * p + x0, masks + x0, p, &coef[i * k], k, n);
        if (mask_sum != nullptr) column_sum_block(mask_sum + x0, masks + x0, p, k, n);
    });
}

}  // namespace salvo
