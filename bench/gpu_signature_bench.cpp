// GPU signature throughput (docs/BENCHMARKS.md, "GPU signatures"): for a checkpoint, the time of
// one batch of signature work — forward pass, output head at every position, top-k log-probs
// and entropy — with prov's runtime and fused extraction kernel, plus the model body alone, the
// extraction alone (fused kernel vs LibTorch reference on the same logits) and a device copy of
// the logits (the bandwidth ceiling). Prints one JSON line.
//
//   prov_gpu_signature_bench MODEL_DIR [--batch 16] [--tokens 512] [--k 20] [--iters 10]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <torch/cuda.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "model/formats/model.h"
#include "model/runtime/runtime.h"
#include "probes/extract.h"

using prov::model::Transformer;

namespace {

void sync() {
  torch::cuda::synchronize();
}

template <typename F>
double median_ms(int iters, F&& f) {
  for (int i = 0; i < 3; ++i) f();  // warm-up
  sync();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    sync();
    t.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: prov_gpu_signature_bench MODEL_DIR [--batch N] [--tokens T] [--k K] "
                 "[--iters I]\n";
    return 2;
  }
  std::string dir = argv[1];
  int64_t B = 16, T = 512, K = 20;
  int iters = 10;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int64_t v = std::stoll(argv[i + 1]);
    if (a == "--batch")
      B = v;
    else if (a == "--tokens")
      T = v;
    else if (a == "--k")
      K = v;
    else if (a == "--iters")
      iters = static_cast<int>(v);
  }
  if (!torch::cuda::is_available()) {
    std::cerr << "prov_gpu_signature_bench: no CUDA device (this benchmark needs a GPU)\n";
    return 2;
  }
  torch::NoGradGuard no_grad;
  auto m = prov::model::open_model(dir);
  if (!m.is_ok()) {
    std::cerr << m.status().to_string() << "\n";
    return 2;
  }
  prov::model::RuntimeOptions ro;
  ro.device = torch::Device(torch::kCUDA);
  ro.dtype = torch::kBFloat16;
  auto load_t0 = std::chrono::steady_clock::now();
  auto tf = Transformer::load(*m, ro);
  if (!tf.is_ok()) {
    std::cerr << tf.status().to_string() << "\n";
    return 2;
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_t0).count();
  const Transformer& model = **tf;
  const int64_t V = model.config().vocab_size;

  // Random token ids in [1, V) from a fixed seed (never zeros).
  std::mt19937_64 rng(1234);
  std::vector<int64_t> ids(static_cast<size_t>(B * T));
  for (auto& x : ids) x = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(V - 1));
  torch::Tensor input = torch::tensor(ids, torch::kInt64).view({B, T}).to(ro.device);

  prov::probes::Extracted last;
  auto signature = [&] {
    auto h = model.forward_hidden(input, {}, nullptr);
    auto logits = model.logits_from_hidden(h->reshape({B * T, -1}));
    last = *prov::probes::extract_signature(*logits, K);
  };
  auto body = [&] { auto h = model.forward_hidden(input, {}, nullptr); };
  auto fwd_logits = [&] {
    auto h = model.forward_hidden(input, {}, nullptr);
    auto logits = model.logits_from_hidden(h->reshape({B * T, -1}));
  };
  const double sig_ms = median_ms(iters, signature);
  const double body_ms = median_ms(iters, body);
  const double logits_ms = median_ms(iters, fwd_logits);

  auto h = model.forward_hidden(input, {}, nullptr);
  torch::Tensor logits = *model.logits_from_hidden(h->reshape({B * T, -1}));
  const double bytes = static_cast<double>(logits.numel()) * logits.element_size();
  const double kernel_ms =
      median_ms(iters, [&] { (void)prov::probes::extract_signature(logits, K); });
  const double ref_ms = median_ms(iters, [&] { (void)prov::probes::extract_reference(logits, K); });
  torch::Tensor dst = torch::empty_like(logits);
  const double copy_ms = median_ms(iters, [&] { dst.copy_(logits); });

  // The bf16 matrix-multiply ceiling: an 8192^3 product of random matrices.
  torch::Tensor ma =
      torch::randn({8192, 8192}, torch::TensorOptions().device(ro.device)).to(torch::kBFloat16);
  torch::Tensor mb =
      torch::randn({8192, 8192}, torch::TensorOptions().device(ro.device)).to(torch::kBFloat16);
  const double mm_ms = median_ms(iters, [&] { (void)torch::matmul(ma, mb); });
  const double mm_tflops = 2.0 * 8192.0 * 8192.0 * 8192.0 / (mm_ms / 1000.0) / 1e12;
  // The work of one signature batch in matrix products: 2 * params * tokens.
  const double model_tflop = 2.0 * static_cast<double>(model.num_parameters()) * B * T / 1e12;

  // The fused result against the LibTorch reference on the same logits.
  auto fused = *prov::probes::extract_signature(logits, K);
  auto ref = *prov::probes::extract_reference(logits, K);
  const int64_t id_mismatch_rows = (fused.top_ids != ref.top_ids).any(1).sum().item<int64_t>();
  const double max_lp_diff = (fused.top_logprobs - ref.top_logprobs).abs().max().item<double>();
  const double max_ent_diff = (fused.entropy - ref.entropy).abs().max().item<double>();

  nlohmann::json j;
  j["model"] = dir;
  j["params"] = model.num_parameters();
  j["batch"] = B;
  j["tokens"] = T;
  j["k"] = K;
  j["load_s"] = load_s;
  j["signature_ms"] = sig_ms;
  j["tokens_per_s"] = static_cast<double>(B * T) / (sig_ms / 1000.0);
  j["body_ms"] = body_ms;
  j["forward_with_logits_ms"] = logits_ms;
  j["extract_kernel_ms"] = kernel_ms;
  j["extract_reference_ms"] = ref_ms;
  j["extract_kernel_GBps"] = bytes / (kernel_ms / 1000.0) / 1e9;
  j["copy_GBps"] = 2 * bytes / (copy_ms / 1000.0) / 1e9;  // read + write
  j["kernel_fraction_of_copy_bw"] = (bytes / kernel_ms) / (2 * bytes / copy_ms);
  j["has_fused_kernel"] = prov::probes::extract_has_cuda_kernel();
  j["topk_id_mismatch_rows"] = id_mismatch_rows;
  j["rows"] = B * T;
  j["max_logprob_diff"] = max_lp_diff;
  j["max_entropy_diff"] = max_ent_diff;
  j["uses_sdpa"] = model.uses_sdpa();
  j["bf16_matmul_tflops"] = mm_tflops;
  j["signature_tflops"] = model_tflop / (sig_ms / 1000.0);
  std::cout << j.dump() << std::endl;
  return 0;
}
