// The only file that includes pybind11: argument names, shape checks and the GIL.
//
// Buffers are taken with the GIL held; the kernels run in an inner scope with it released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>

#include "salvo/accumulate.hpp"
#include "salvo/fill.hpp"
#include "salvo/parallel.hpp"
#include "salvo/rise.hpp"
#include "salvo/simd.hpp"

namespace py = pybind11;

namespace {

using farray = py::array_t<float, py::array::c_style | py::array::forcecast>;

salvo::Layout parse_layout(const std::string& layout) {
    if (layout == "NCHW") return salvo::Layout::NCHW;
    if (layout == "NHWC") return salvo::Layout::NHWC;
    throw std::invalid_argument("layout must be 'NCHW' or 'NHWC', got '" + layout + "'");
}

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        if (i) s += ", ";
        s += std::to_string(a.shape(i));
    }
    return s + (a.ndim() == 1 ? ",)" : ")");
}

int check_threads(int num_threads) {
    if (num_threads < 1)
        throw std::invalid_argument("num_threads must be >= 1, got " +
                                    std::to_string(num_threads));
    return num_threads;
}

void fill_masked(const farray& image, const farray& masks, py::array out,
                 const std::string& layout, int num_threads) {
    const salvo::Layout lay = parse_layout(layout);
    check_threads(num_threads);
    if (image.ndim() != 3)
        throw std::invalid_argument("image must be 3-D (C, H, W) or (H, W, C), got shape " +
                                    shape_str(image));
    if (masks.ndim() != 3)
        throw std::invalid_argument("masks must be 3-D (N, H, W), got shape " + shape_str(masks));
    const int64_t c = lay == salvo::Layout::NCHW ? image.shape(0) : image.shape(2);
    const int64_t h = lay == salvo::Layout::NCHW ? image.shape(1) : image.shape(0);
    const int64_t w = lay == salvo::Layout::NCHW ? image.shape(2) : image.shape(1);
    const int64_t n = masks.shape(0);
    if (masks.shape(1) != h || masks.shape(2) != w)
        throw std::invalid_argument("masks shape " + shape_str(masks) +
                                    " does not match the image's spatial size for image shape " +
                                    shape_str(image) + " in layout " + layout);
    if (out.ndim() != 4)
        throw std::invalid_argument("out must be 4-D, got shape " + shape_str(out));
    const bool nchw = lay == salvo::Layout::NCHW;
    const int64_t want1 = nchw ? c : h, want2 = nchw ? h : w, want3 = nchw ? w : c;
    if (out.shape(0) < n || out.shape(1) != want1 || out.shape(2) != want2 ||
        out.shape(3) != want3)
        throw std::invalid_argument("out shape " + shape_str(out) + " cannot hold " +
                                    std::to_string(n) + " masked images of image shape " +
                                    shape_str(image) + " in layout " + layout);
    if (!(out.flags() & py::array::c_style) || !out.writeable())
        throw std::invalid_argument("out must be a writable C-contiguous array");

    const float* img = image.data();
    const float* msk = masks.data();
    if (out.dtype().is(py::dtype::of<float>())) {
        float* dst = static_cast<float*>(out.mutable_data());
        py::gil_scoped_release release;
        salvo::fill_masked_f32(img, msk, dst, n, c, h, w, lay, num_threads);
    } else if (out.dtype().is(py::dtype::of<uint8_t>())) {
        uint8_t* dst = static_cast<uint8_t*>(out.mutable_data());
        py::gil_scoped_release release;
        salvo::fill_masked_u8(img, msk, dst, n, c, h, w, lay, num_threads);
    } else {
        throw std::invalid_argument("out dtype must be float32 or uint8, got " +
                                    std::string(py::str(out.dtype())));
    }
}

void check_rise_args(int num_cells, float prob, int64_t height, int64_t width) {
    if (num_cells < 1)
        throw std::invalid_argument("num_cells must be >= 1, got " + std::to_string(num_cells));
    if (height < 1 || width < 1)
        throw std::invalid_argument("height and width must be positive, got " +
                                    std::to_string(height) + "x" + std::to_string(width));
    if (num_cells > height || num_cells > width)
        throw std::invalid_argument("num_cells (" + std::to_string(num_cells) +
                                    ") must not exceed the image size " + std::to_string(height) +
                                    "x" + std::to_string(width));
    if (!(prob > 0.f && prob < 1.f))
        throw std::invalid_argument("prob must be in (0, 1), got " + std::to_string(prob));
}

salvo::MaskDesign parse_design(const std::string& design, float prob) {
    salvo::MaskDesign d;
    if (design == "iid")
        d = salvo::MaskDesign::IID;
    else if (design == "balanced")
        d = salvo::MaskDesign::BALANCED;
    else
        throw std::invalid_argument("design must be 'iid' or 'balanced', got '" + design + "'");
    if (d == salvo::MaskDesign::BALANCED && prob != 0.5f)
        throw std::invalid_argument("design 'balanced' needs prob 0.5, got " +
                                    std::to_string(prob));
    return d;
}

py::array_t<float> rise_masks(uint64_t seed, int64_t first, int64_t count, int num_cells,
                              float prob, int64_t height, int64_t width, py::object out,
                              int num_threads, const std::string& design) {
    check_threads(num_threads);
    check_rise_args(num_cells, prob, height, width);
    const salvo::MaskDesign mask_design = parse_design(design, prob);
    if (first < 0 || count < 0)
        throw std::invalid_argument("first and count must be >= 0, got " +
                                    std::to_string(first) + ", " + std::to_string(count));
    py::array_t<float> result;
    if (out.is_none()) {
        result = py::array_t<float>({count, height, width});
    } else {
        result = py::reinterpret_borrow<py::array_t<float>>(out);
        if (!py::isinstance<py::array_t<float>>(out) || result.ndim() != 3 ||
            result.shape(0) < count || result.shape(1) != height || result.shape(2) != width ||
            !(result.flags() & py::array::c_style) || !result.writeable())
            throw std::invalid_argument(
                "out must be a writable C-contiguous float32 array of shape (>= count, height, "
                "width)");
    }
    float* dst = result.mutable_data();
    {
        py::gil_scoped_release release;
        salvo::rise_masks(seed, first, count, num_cells, prob, height, width, dst, num_threads,
                          mask_design);
    }
    return result;
}

py::tuple rise_grid(uint64_t seed, int64_t mask_index, int num_cells, float prob, int64_t height,
                    int64_t width, const std::string& design) {
    check_rise_args(num_cells, prob, height, width);
    const salvo::MaskDesign mask_design = parse_design(design, prob);
    if (mask_index < 0)
        throw std::invalid_argument("mask_index must be >= 0, got " + std::to_string(mask_index));
    const int64_t cell_h = (height + num_cells - 1) / num_cells;
    const int64_t cell_w = (width + num_cells - 1) / num_cells;
    py::array_t<uint8_t> grid({num_cells, num_cells});
    int64_t dy = 0, dx = 0;
    if (mask_design == salvo::MaskDesign::BALANCED)
        salvo::balanced_grid(seed, mask_index, num_cells, cell_h, cell_w, grid.mutable_data(),
                             &dy, &dx);
    else
        salvo::rise_grid(seed, mask_index, num_cells, prob, cell_h, cell_w, grid.mutable_data(),
                         &dy, &dx);
    return py::make_tuple(grid, dy, dx);
}

int64_t balanced_block_length(int num_cells) {
    if (num_cells < 1)
        throw std::invalid_argument("num_cells must be >= 1, got " + std::to_string(num_cells));
    return salvo::balanced_block_length(num_cells);
}

void accumulate_weighted(py::array_t<float, py::array::c_style> weighted, const farray& scores,
                         const farray& masks, int num_threads, py::object mask_sum_obj) {
    check_threads(num_threads);
    if (weighted.ndim() != 2)
        throw std::invalid_argument("weighted must be 2-D (T, P), got shape " +
                                    shape_str(weighted));
    if (scores.ndim() != 2 || masks.ndim() != 2)
        throw std::invalid_argument("scores must be (K, T) and masks (K, P), got shapes " +
                                    shape_str(scores) + " and " + shape_str(masks));
    const int64_t t = weighted.shape(0), p = weighted.shape(1), k = scores.shape(0);
    if (scores.shape(1) != t || masks.shape(0) != k || masks.shape(1) != p)
        throw std::invalid_argument("shapes do not agree: weighted " + shape_str(weighted) +
                                    ", scores " + shape_str(scores) + ", masks " +
                                    shape_str(masks) + " (expected (T, P), (K, T), (K, P))");
    if (!weighted.writeable()) throw std::invalid_argument("weighted must be writable");
    double* ms = nullptr;
    py::array_t<double, py::array::c_style> mask_sum;
    if (!mask_sum_obj.is_none()) {
        if (!py::isinstance<py::array_t<double, py::array::c_style>>(mask_sum_obj))
            throw std::invalid_argument("mask_sum must be a C-contiguous float64 array");
        mask_sum = mask_sum_obj.cast<py::array_t<double, py::array::c_style>>();
        if (mask_sum.ndim() != 1 || mask_sum.shape(0) != p)
            throw std::invalid_argument("mask_sum must have shape (" + std::to_string(p) +
                                        ",), got " + shape_str(mask_sum));
        if (!mask_sum.writeable()) throw std::invalid_argument("mask_sum must be writable");
        ms = mask_sum.mutable_data();
    }
    float* w = weighted.mutable_data();
    const float* s = scores.data();
    const float* m = masks.data();
    py::gil_scoped_release release;
    salvo::accumulate_weighted(w, s, m, t, k, p, num_threads, ms);
}

// Exercises parallel_for's error path: task `fail_at` throws; the error must reach Python.
int64_t parallel_selftest(int64_t n, int64_t fail_at, int num_threads) {
    check_threads(num_threads);
    std::atomic<int64_t> count{0};
    {
        py::gil_scoped_release release;
        salvo::parallel_for(n, num_threads, [&](int64_t i) {
            if (i == fail_at) throw std::runtime_error("task " + std::to_string(i) + " failed");
            count.fetch_add(1, std::memory_order_relaxed);
        });
    }
    return count.load();
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "salvo's native kernels (C++, GIL released while they run).";
    m.def("fill_masked", &fill_masked, py::arg("image"), py::arg("masks"), py::arg("out"),
          py::arg("layout") = "NCHW", py::arg("num_threads") = 1,
          "Write masks[i] * image into out[i] for i < len(masks).\n\n"
          "image: (C, H, W) for NCHW or (H, W, C) for NHWC, float32.\n"
          "masks: (N, H, W) float32.\n"
          "out: (>= N, C, H, W) or (>= N, H, W, C), float32 or uint8 (rounded, clamped).");
    m.def("build_simd_level", &salvo::build_simd_level,
          "Instruction set of this build's baseline flags.");
    m.def("runtime_simd_level", &salvo::runtime_simd_level,
          "The variant multi-versioned kernels use on this CPU.");
    m.def("rise_masks", &rise_masks, py::arg("seed"), py::arg("first"), py::arg("count"),
          py::arg("num_cells"), py::arg("prob"), py::arg("height"), py::arg("width"),
          py::arg("out") = py::none(), py::arg("num_threads") = 1, py::arg("design") = "iid",
          "RISE masks first..first+count-1 as (count, height, width) float32 (see rise.hpp); "
          "design 'iid' or 'balanced' (prob 0.5 only).");
    m.def("_rise_grid", &rise_grid, py::arg("seed"), py::arg("mask_index"), py::arg("num_cells"),
          py::arg("prob"), py::arg("height"), py::arg("width"), py::arg("design") = "iid",
          "Test hook (salvo.testing.hooks.rise_grid): the random parts of one RISE mask, "
          "(grid uint8 (n, n), dy, dx).");
    m.def("balanced_block_length", &balanced_block_length, py::arg("num_cells"),
          "Masks per block of the balanced design: 2 * (next power of two >= num_cells^2).");
    m.def("rise_hash", &salvo::rise_hash, py::arg("seed"), py::arg("mask_index"), py::arg("draw"),
          "The counter-based 64-bit hash behind every RISE draw.");
    m.def("accumulate_weighted", &accumulate_weighted, py::arg("weighted"), py::arg("scores"),
          py::arg("masks"), py::arg("num_threads") = 1, py::arg("mask_sum") = py::none(),
          "weighted (T, P) += scores (K, T)^T @ masks (K, P), in place (float32); with "
          "mask_sum (P,) float64, also mask_sum += masks summed over K, in the same pass.");
    m.def("_parallel_selftest", &parallel_selftest, py::arg("n"), py::arg("fail_at"),
          py::arg("num_threads"),
          "Test hook (salvo.testing.hooks.parallel_selftest): run n tasks, task fail_at "
          "throws; returns how many tasks succeeded.");
    m.attr("HAS_TARGET_CLONES") = py::bool_(SALVO_HAS_TARGET_CLONES);
}
