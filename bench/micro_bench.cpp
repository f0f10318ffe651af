// Micro benchmarks of the torch-free hot paths: SHA-256 and dequantisation.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/sha256.h"
#include "model/formats/quants.h"
#include "model/formats/synthetic.h"

namespace {

void BM_Sha256(benchmark::State& state) {
  std::vector<uint8_t> buf(1 << 22, 7);
  for (auto _ : state) benchmark::DoNotOptimize(prov::sha256(buf.data(), buf.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(buf.size()));
}
BENCHMARK(BM_Sha256);

void BM_Dequantize(benchmark::State& state) {
  const auto type = static_cast<prov::model::DType>(state.range(0));
  const uint64_t n = 1 << 20;
  std::vector<float> x(n);
  prov::model::GaussianStream g(1);
  for (auto& v : x) v = static_cast<float>(g.next());
  auto q = prov::model::quantize(type, x.data(), n);
  if (!q.is_ok()) {
    state.SkipWithError(q.status().to_string().c_str());
    return;
  }
  const auto& info = prov::model::dtype_info(type);
  std::vector<float> out(n);
  for (auto _ : state) {
    auto s = prov::model::dequantize_blocks(type, q->data(), n / info.block_elems, out.data());
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
  state.SetLabel(info.name);
}
BENCHMARK(BM_Dequantize)
    ->Arg(static_cast<int>(prov::model::DType::kQ8_0))
    ->Arg(static_cast<int>(prov::model::DType::kQ4_0))
    ->Arg(static_cast<int>(prov::model::DType::kQ4_K))
    ->Arg(static_cast<int>(prov::model::DType::kQ6_K));

}  // namespace

BENCHMARK_MAIN();
