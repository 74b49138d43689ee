// Masked-batch filling: out[i] = masks[i] (broadcast over channels) * image.
//
// Pure C++: pointers, shapes and a thread count. No Python, no OpenVINO.
#pragma once

#include <cstdint>

namespace salvo {

enum class Layout { NCHW = 0, NHWC = 1 };

// image: (C, H, W) when layout == NCHW, (H, W, C) when NHWC; float32.
// masks: (N, H, W) float32.
// out:   (N, C, H, W) or (N, H, W, C); float32, or uint8 rounded to nearest (ties to even)
//        and clamped to [0, 255].
void fill_masked_f32(const float* image, const float* masks, float* out, int64_t n, int64_t c,
                     int64_t h, int64_t w, Layout layout, int num_threads);
void fill_masked_u8(const float* image, const float* masks, uint8_t* out, int64_t n, int64_t c,
                    int64_t h, int64_t w, Layout layout, int num_threads);

}  // namespace salvo
