// Splitting independent work items over threads (std::thread): the population learning's candidates
// (population_learn.cpp) and the units of its E-step (population.cpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace lutdose {

//! The threads `threads` asks for: 0 is all cores (std::thread::hardware_concurrency, at least 1).
inline unsigned resolved_threads(unsigned threads) {
  return threads ? threads : std::max(1u, std::thread::hardware_concurrency());
}

//! Runs one(i) for every i < count on resolved_threads(threads) threads at most (the calling thread
//! one of them; items handed out in order as threads come free). one(i) must write only what
//! belongs to item i: the results are then the same whatever the number of threads. The first
//! item's exception (in item order) is rethrown after all have stopped.
template <class Work>
void parallel_for(std::size_t count, unsigned threads, const Work& one) {
  const auto n = static_cast<unsigned>(std::min<std::size_t>(resolved_threads(threads), count));
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> errors(count);
  auto work = [&]() {
    for (std::size_t i; (i = next.fetch_add(1)) < count;) {
      try {
        one(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace lutdose
