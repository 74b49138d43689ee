#include "salvo/rise.hpp"

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "salvo/parallel.hpp"
#include "salvo/simd.hpp"

namespace salvo {
namespace {

inline uint64_t fmix64(uint64_t z) {  // SplitMix64's finaliser
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ULL;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z;
}

// OpenCV's cubic weights for fractional offset t in [0, 1), a = -0.75.
inline void cubic_weights(double t, float* c) {
    const double a = -0.75;
    c[0] = static_cast<float>(((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a);
    c[1] = static_cast<float>(((a + 2) * t - (a + 3)) * t * t + 1);
    c[2] = static_cast<float>(((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1);
    c[3] = 1.f - c[0] - c[1] - c[2];
}

// Taps and weights of one axis: output o (after the shift) reads source cells idx[4o..4o+3].
struct Axis {
    std::vector<int> idx;
    std::vector<float> wt;
};

Axis make_axis(int64_t out_len, int64_t shift, int64_t up_len, int n) {
    Axis a;
    a.idx.resize(static_cast<size_t>(out_len) * 4);
    a.wt.resize(static_cast<size_t>(out_len) * 4);
    const double scale = static_cast<double>(n) / static_cast<double>(up_len);
    for (int64_t o = 0; o < out_len; ++o) {
        const double f = (static_cast<double>(o + shift) + 0.5) * scale - 0.5;
        const double fl = std::floor(f);
        const int s = static_cast<int>(fl);
        cubic_weights(f - fl, &a.wt[o * 4]);
        for (int k = 0; k < 4; ++k) {
            int j = s - 1 + k;
            j = j < 0 ? 0 : (j >= n ? n - 1 : j);
            a.idx[o * 4 + k] = j;
        }
    }
    return a;
}

SALVO_TARGET_CLONES
void vertical_clip(const float* rows, const int* idx, const float* wt, float* out, int64_t h,
                   int64_t w) {
    for (int64_t y = 0; y < h; ++y) {
        const float* r0 = rows + static_cast<int64_t>(idx[y * 4 + 0]) * w;
        const float* r1 = rows + static_cast<int64_t>(idx[y * 4 + 1]) * w;
        const float* r2 = rows + static_cast<int64_t>(idx[y * 4 + 2]) * w;
        const float* r3 = rows + static_cast<int64_t>(idx[y * 4 + 3]) * w;
        const float c0 = wt[y * 4 + 0], c1 = wt[y * 4 + 1], c2 = wt[y * 4 + 2],
                    c3 = wt[y * 4 + 3];
        float* dst = out + y * w;
        for (int64_t x = 0; x < w; ++x) {
            float v = c0 * r0[x] + c1 * r1[x] + c2 * r2[x] + c3 * r3[x];
            dst[x] = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
        }
    }
}

// The BALANCED design's constants (rise.hpp). The tag and the salt are those of the study that
// chose the design, so that its measurements apply to these masks bit for bit.
constexpr uint64_t kBalancedTag = 9;
constexpr uint64_t kShiftSalt = 0x5A5A;
constexpr uint64_t kPairSalt = 0xA5A5;
constexpr uint64_t kCompDraw = 1000;
constexpr uint64_t kPermDraw = 2000;
// R2 sequence steps 1 / rho and 1 / rho^2 (rho = 1.32471795724474602596, the plastic number),
// as the doubles 1.0 / rho and 1.0 / (rho * rho) round to.
constexpr double kR2Step[2] = {0x1.827f5352054c6p-1, 0x1.23c21b4b8f3cfp-1};

inline int parity(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_parityll(v);
#else
    v ^= v >> 32;
    v ^= v >> 16;
    v ^= v >> 8;
    v ^= v >> 4;
    v ^= v >> 2;
    v ^= v >> 1;
    return static_cast<int>(v & 1);
#endif
}

// Coordinate d (0: y, 1: x) of block b's shift: floor(fmod(u_d + b * step_d, 1) * cells).
int64_t r2_shift(uint64_t stream, int d, int64_t block, int64_t cells) {
    const double u = static_cast<double>(rise_hash(stream, 0, static_cast<uint64_t>(d)) >> 11) *
                     0x1p-53;
    // a separate, rounded product (never fused into a multiply-add): the same bits on every CPU
    volatile double advance = static_cast<double>(block) * kR2Step[d];
    const double y = std::fmod(u + advance, 1.0);
    const int64_t s = static_cast<int64_t>(std::floor(y * static_cast<double>(cells)));
    return s < cells ? s : cells - 1;
}

}  // namespace

uint64_t rise_hash(uint64_t seed, uint64_t mask_index, uint64_t draw) {
    const uint64_t per_mask = fmix64(seed * 0x9E3779B97F4A7C15ULL + mask_index + 1);
    return fmix64(per_mask ^ ((draw + 1) * 0xD1B54A32D192ED03ULL));
}

void rise_grid(uint64_t seed, int64_t mask_index, int num_cells, float prob, int64_t cell_h,
               int64_t cell_w, uint8_t* grid, int64_t* dy, int64_t* dx) {
    const uint64_t i = static_cast<uint64_t>(mask_index);
    const int nn = num_cells * num_cells;
    for (int k = 0; k < nn; ++k) {
        const float u = static_cast<float>(rise_hash(seed, i, k) >> 40) * (1.0f / 16777216.0f);
        grid[k] = u < prob ? 1 : 0;
    }
    *dy = static_cast<int64_t>(rise_hash(seed, i, nn) % static_cast<uint64_t>(cell_h));
    *dx = static_cast<int64_t>(rise_hash(seed, i, nn + 1) % static_cast<uint64_t>(cell_w));
}

int64_t balanced_block_length(int num_cells) {
    const int64_t nn = static_cast<int64_t>(num_cells) * num_cells;
    int64_t p = 1;
    while (p < nn) p <<= 1;
    return 2 * p;
}

uint64_t balanced_seed(uint64_t seed) {
    return fmix64(seed ^ (kBalancedTag * 0x9E3779B97F4A7C15ULL));
}

void balanced_grid(uint64_t seed, int64_t mask_index, int num_cells, int64_t cell_h,
                   int64_t cell_w, uint8_t* grid, int64_t* dy, int64_t* dx) {
    const int64_t nn = static_cast<int64_t>(num_cells) * num_cells;
    const int64_t len = balanced_block_length(num_cells);
    const int64_t block = mask_index / len, row = mask_index % len;
    int log_len = 0;
    while ((int64_t{1} << log_len) < len) ++log_len;
    const uint64_t t = balanced_seed(seed);
    const uint64_t b = static_cast<uint64_t>(block);
    // Complementary rows adjacent: rows 2k and 2k + 1 are design rows q and q + L/2, with
    // q = pairs_b(k), a random permutation of the block's L/2 pairs, so that a run ending inside
    // a block holds complementary pairs drawn without replacement (no two cells aliased).
    const int64_t half = len / 2;
    std::vector<int64_t> pairs(static_cast<size_t>(half));
    std::iota(pairs.begin(), pairs.end(), int64_t{0});
    for (int64_t k = half - 1; k > 0; --k) {
        const uint64_t j = rise_hash(t ^ kPairSalt, b, static_cast<uint64_t>(k)) %
                           static_cast<uint64_t>(k + 1);
        std::swap(pairs[static_cast<size_t>(k)], pairs[static_cast<size_t>(j)]);
    }
    const uint64_t r = static_cast<uint64_t>(pairs[static_cast<size_t>(row >> 1)] |
                                             ((row & 1) << (log_len - 1)));
    std::vector<int64_t> perm(static_cast<size_t>(nn));
    std::iota(perm.begin(), perm.end(), int64_t{0});
    for (int64_t k = nn - 1; k > 0; --k) {
        const uint64_t j = rise_hash(t, b, kPermDraw + static_cast<uint64_t>(k)) %
                           static_cast<uint64_t>(k + 1);
        std::swap(perm[static_cast<size_t>(k)], perm[static_cast<size_t>(j)]);
    }
    const uint64_t top = static_cast<uint64_t>(len / 2);
    for (int64_t j = 0; j < nn; ++j) {
        const uint64_t col = top | static_cast<uint64_t>(perm[static_cast<size_t>(j)]);
        const int comp = static_cast<int>(rise_hash(t, b, kCompDraw + static_cast<uint64_t>(j))
                                          >> 63);
        grid[j] = static_cast<uint8_t>(parity(r & col) ^ comp);
    }
    *dy = r2_shift(t ^ kShiftSalt, 0, block, cell_h);
    *dx = r2_shift(t ^ kShiftSalt, 1, block, cell_w);
}

void rise_masks(uint64_t seed, int64_t first, int64_t count, int num_cells, float prob,
                int64_t h, int64_t w, float* out, int num_threads, MaskDesign design) {
    if (num_cells < 1) throw std::invalid_argument("num_cells must be >= 1");
    if (design == MaskDesign::BALANCED && prob != 0.5f)
        throw std::invalid_argument("the balanced mask design needs prob 0.5, got " +
                                    std::to_string(prob));
    if (h < 1 || w < 1) throw std::invalid_argument("mask size must be positive");
    if (num_cells > h || num_cells > w)
        throw std::invalid_argument("num_cells (" + std::to_string(num_cells) +
                                    ") must not exceed the image size");
    if (count < 0 || first < 0) throw std::invalid_argument("first and count must be >= 0");
    const int n = num_cells;
    const int64_t cell_h = (h + n - 1) / n, cell_w = (w + n - 1) / n;
    const int64_t up_h = (n + 1) * cell_h, up_w = (n + 1) * cell_w;
    parallel_for(count, num_threads, [&](int64_t t) {
        std::vector<uint8_t> grid(static_cast<size_t>(n) * n);
        int64_t dy = 0, dx = 0;
        if (design == MaskDesign::BALANCED)
            balanced_grid(seed, first + t, n, cell_h, cell_w, grid.data(), &dy, &dx);
        else
            rise_grid(seed, first + t, n, prob, cell_h, cell_w, grid.data(), &dy, &dx);
        const Axis ax = make_axis(w, dx, up_w, n);
        const Axis ay = make_axis(h, dy, up_h, n);
        // horizontal pass: each grid row -> W values
        std::vector<float> rows(static_cast<size_t>(n) * w);
        for (int r = 0; r < n; ++r) {
            const uint8_t* g = grid.data() + r * n;
            float* dst = rows.data() + static_cast<int64_t>(r) * w;
            for (int64_t x = 0; x < w; ++x) {
                const int* ix = &ax.idx[x * 4];
                const float* c = &ax.wt[x * 4];
                dst[x] = c[0] * g[ix[0]] + c[1] * g[ix[1]] + c[2] * g[ix[2]] + c[3] * g[ix[3]];
            }
        }
        vertical_clip(rows.data(), ay.idx.data(), ay.wt.data(), out + t * h * w, h, w);
    });
}

}  // namespace salvo
