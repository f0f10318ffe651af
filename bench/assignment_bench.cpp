// Benchmarks of the dense linear assignment solver (fingerprint/assignment.h).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "fingerprint/assignment.h"

namespace {

std::vector<double> uniform_matrix(int rows, int cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  std::vector<double> m(static_cast<size_t>(rows) * cols);
  for (double& x : m) x = dist(rng);
  return m;
}

void run(benchmark::State& state, const std::vector<double>& m, int rows, int cols) {
  for (auto _ : state) {
    auto a = prov::fingerprint::solve_assignment(m.data(), rows, cols);
    if (!a.is_ok()) {
      state.SkipWithError(a.status().to_string().c_str());
      return;
    }
    benchmark::DoNotOptimize(a->total);
  }
}

// Square matrix of independent uniform [0, 1) scores.
void BM_AssignmentUniform(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto m = uniform_matrix(n, n, 1);
  run(state, m, n, n);
}
BENCHMARK(BM_AssignmentUniform)->Arg(256)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond);

// Rectangular, both orientations (the tall one is solved on its transpose).
void BM_AssignmentRect(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
  const auto m = uniform_matrix(rows, cols, 2);
  run(state, m, rows, cols);
}
BENCHMARK(BM_AssignmentRect)->Args({512, 2048})->Args({2048, 512})->Unit(benchmark::kMillisecond);

// A structured hard case: score i * j (every row's search runs through most rows).
void BM_AssignmentProduct(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<double> m(static_cast<size_t>(n) * n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) m[static_cast<size_t>(i) * n + j] = static_cast<double>(i) * j;
  }
  run(state, m, n, n);
}
BENCHMARK(BM_AssignmentProduct)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
