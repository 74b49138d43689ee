// Explicit, non-nested parallelism for salvo's kernels.
//
// parallel_for runs fn(i) for i in [0, n) on num_threads threads (the calling thread is one of
// them). An exception thrown by any worker is captured and rethrown on the calling thread once
// every worker has stopped; remaining work is abandoned as soon as one task fails.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace salvo {

template <typename Fn>
void parallel_for(int64_t n, int num_threads, Fn&& fn) {
    if (n <= 0) return;
    int threads = std::max(1, num_threads);
    threads = static_cast<int>(std::min<int64_t>(threads, n));
    if (threads == 1) {
        for (int64_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::atomic<int64_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto worker = [&]() {
        while (!failed.load(std::memory_order_relaxed)) {
            const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
            if (i >= n) break;
            try {
                fn(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
                failed.store(true, std::memory_order_relaxed);
            }
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(threads - 1));
    for (int t = 0; t < threads - 1; ++t) pool.emplace_back(worker);
    worker();
    for (auto& th : pool) th.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace salvo
