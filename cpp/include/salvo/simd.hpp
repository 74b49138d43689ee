// Function multi-versioning: a portable build that still runs vector code on newer CPUs.
#pragma once

#include <string>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(_M_X64)) && \
    defined(__linux__) && !defined(SALVO_NO_CLONES)
#define SALVO_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define SALVO_HAS_TARGET_CLONES 1
#else
#define SALVO_TARGET_CLONES
#define SALVO_HAS_TARGET_CLONES 0
#endif

namespace salvo {

// The instruction set the compiled kernels were built for ("baseline" flags of this build).
std::string build_simd_level();
// The variant that multi-versioned kernels dispatch to on this CPU.
std::string runtime_simd_level();

}  // namespace salvo
