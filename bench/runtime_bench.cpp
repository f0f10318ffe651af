// CPU/GPU throughput of the LibTorch runtime: forward tokens/s (batch 1 x T) and greedy
// generation tokens/s with the KV cache, medians of several runs after a warm-up.
//
// Usage: prov_runtime_bench [--runs N] [--tokens T] [--dtype float32|bfloat16] [--device cpu|cuda]
//                           [--write-synthetic-100m DIR] MODEL...
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "model/runtime/generate.h"
#include "model/formats/model.h"
#include "model/runtime/runtime.h"
#include "model/formats/synthetic.h"

using namespace prov::model;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int bench(const std::string& path, const RuntimeOptions& ro, int runs, int tokens) {
  auto m = open_model(path);
  if (!m.is_ok()) {
    std::cerr << m.status().to_string() << "\n";
    return 2;
  }
  auto tf = Transformer::load(*m, ro);
  if (!tf.is_ok()) {
    std::cerr << tf.status().to_string() << "\n";
    return 2;
  }
  torch::manual_seed(0);
  auto ids = torch::randint(3, m->config.vocab_size, {1, tokens}, torch::kInt64).to(ro.device);
  auto sync = [&] {
    if (ro.device.is_cuda()) torch::cuda::synchronize();
  };
  auto fail = [&](const prov::Status& st) {
    std::cerr << path << ": " << st.to_string() << "\n";
    return 2;
  };
  if (auto w = (*tf)->forward(ids, torch::Tensor(), nullptr); !w.is_ok()) return fail(w.status());
  sync();
  std::vector<double> fwd, gen;
  for (int i = 0; i < runs; ++i) {
    auto t = Clock::now();
    auto r = (*tf)->forward(ids, torch::Tensor(), nullptr);
    sync();
    if (!r.is_ok()) return fail(r.status());
    fwd.push_back(tokens / seconds_since(t));
  }
  SamplingOptions so;
  so.max_new_tokens = tokens;
  std::vector<int64_t> prompt;
  for (int64_t i = 0; i < 8; ++i) prompt.push_back((1 + 97 * i) % m->config.vocab_size);
  for (int i = 0; i < runs; ++i) {
    auto t = Clock::now();
    auto r = generate(**tf, prompt, so);
    if (!r.is_ok()) return fail(r.status());
    gen.push_back(static_cast<double>(r->size() - prompt.size()) / seconds_since(t));
  }
  std::printf(
      "%-48s %-9s params %11llu  forward 1x%d: %9.1f tok/s  generate %d (KV cache): %7.1f tok/s\n",
      path.c_str(), c10::toString(ro.dtype),
      static_cast<unsigned long long>((*tf)->num_parameters()), tokens, median(fwd), tokens,
      median(gen));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5, tokens = 128;
  RuntimeOptions ro;
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--runs") {
      runs = std::stoi(next());
    } else if (a == "--tokens") {
      tokens = std::stoi(next());
    } else if (a == "--dtype") {
      auto dt = compute_dtype_from_name(next());
      if (!dt) return 2;
      ro.dtype = *dt;
    } else if (a == "--device") {
      ro.device = next() == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    } else if (a == "--write-synthetic-100m") {
      // Llama-shaped, ~100M parameters: hidden 768, 12 layers, GQA 12/4, vocab 32000, tied.
      SyntheticSpec s;
      s.vocab_size = 32000;
      s.hidden_size = 768;
      s.intermediate_size = 2048;
      s.num_layers = 12;
      s.num_heads = 12;
      s.num_kv_heads = 4;
      s.max_position_embeddings = 2048;
      s.tie_word_embeddings = true;
      s.seed = 1;
      s.std = 0.02;
      std::string dir = next();
      auto st = write_synthetic_model(dir, s);
      if (!st.is_ok()) {
        std::cerr << st.to_string() << "\n";
        return 2;
      }
      models.push_back(dir);
    } else {
      models.push_back(a);
    }
  }
  std::printf("torch threads %d (after configure_cpu_threads), runs %d, medians\n",
              configure_cpu_threads(), runs);
  for (const auto& m : models) {
    if (int rc = bench(m, ro, runs, tokens); rc != 0) return rc;
  }
  return 0;
}
