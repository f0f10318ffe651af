// parallel_for: runs fn(i) for i in [0, n) on up to `threads` worker threads.
//
// Work is handed out one index at a time (good for uneven items such as files of different
// sizes). fn must be thread-safe for distinct indices. threads == 0 means hardware concurrency.
#pragma once

#include <cstddef>
#include <functional>

namespace prov {

unsigned default_thread_count();
void parallel_for(size_t n, unsigned threads, const std::function<void(size_t)>& fn);

}  // namespace prov
