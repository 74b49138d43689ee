#include "salvo/fill.hpp"

#include <cmath>
#include <stdexcept>

#include "salvo/parallel.hpp"
#include "salvo/simd.hpp"

namespace salvo {
namespace {

inline float to_out(float v, float*) { return v; }

inline uint8_t to_out(float v, uint8_t*) {
    float r = std::nearbyint(v);
    r = r < 0.f ? 0.f : (r > 255.f ? 255.f : r);
    return static_cast<uint8_t>(r);
}

// One row of one channel plane (NCHW): out[x] = mask[x] * img[x].
SALVO_TARGET_CLONES
void row_planar_f32(const float* img, const float* mask, float* out, int64_t w) {
    for (int64_t x = 0; x < w; ++x) out[x] = mask[x] * img[x];
}

SALVO_TARGET_CLONES
void row_planar_u8(const float* img, const float* mask, uint8_t* out, int64_t w) {
    for (int64_t x = 0; x < w; ++x) {
        float r = std::nearbyint(mask[x] * img[x]);
        r = r < 0.f ? 0.f : (r > 255.f ? 255.f : r);
        out[x] = static_cast<uint8_t>(r);
    }
}

// One row, interleaved channels (NHWC): out[x*c + k] = mask[x] * img[x*c + k].
template <typename T>
void row_interleaved(const float* img, const float* mask, T* out, int64_t w, int64_t c) {
    for (int64_t x = 0; x < w; ++x) {
        const float m = mask[x];
        const float* src = img + x * c;
        T* dst = out + x * c;
        for (int64_t k = 0; k < c; ++k) dst[k] = to_out(m * src[k], dst);
    }
}

void check_shapes(const void* image, const void* masks, const void* out, int64_t n, int64_t c,
                  int64_t h, int64_t w) {
    if (n < 0 || c <= 0 || h <= 0 || w <= 0)
        throw std::invalid_argument("fill_masked: shapes must be positive");
    if (n > 0 && (!image || !masks || !out))
        throw std::invalid_argument("fill_masked: null buffer");
}

template <typename T>
void fill_masked_impl(const float* image, const float* masks, T* out, int64_t n, int64_t c,
                      int64_t h, int64_t w, Layout layout, int num_threads) {
    check_shapes(image, masks, out, n, c, h, w);
    const int64_t plane = h * w;
    if (layout == Layout::NCHW) {
        // one task = one (item, channel) plane; rows inside are contiguous
        parallel_for(n * c, num_threads, [&](int64_t task) {
            const int64_t i = task / c, k = task % c;
            const float* mask = masks + i * plane;
            const float* img = image + k * plane;
            T* dst = out + (i * c + k) * plane;
            if constexpr (std::is_same_v<T, float>) {
                row_planar_f32(img, mask, dst, plane);
            } else {
                row_planar_u8(img, mask, dst, plane);
            }
        });
    } else {
        parallel_for(n * h, num_threads, [&](int64_t task) {
            const int64_t i = task / h, y = task % h;
            row_interleaved<T>(image + y * w * c, masks + i * plane + y * w,
                               out + (i * plane + y * w) * c, w, c);
        });
    }
}

}  // namespace

void fill_masked_f32(const float* image, const float* masks, float* out, int64_t n, int64_t c,
                     int64_t h, int64_t w, Layout layout, int num_threads) {
    fill_masked_impl<float>(image, masks, out, n, c, h, w, layout, num_threads);
}

void fill_masked_u8(const float* image, const float* masks, uint8_t* out, int64_t n, int64_t c,
                    int64_t h, int64_t w, Layout layout, int num_threads) {
    fill_masked_impl<uint8_t>(image, masks, out, n, c, h, w, layout, num_threads);
}

}  // namespace salvo
