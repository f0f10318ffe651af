#include "model/runtime/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include <torch/torch.h>

namespace prov::model {

Status validate_sampling_options(const SamplingOptions& o) {
  if (o.max_new_tokens < 0) {
    return invalid_argument("max_new_tokens must be >= 0, got " + std::to_string(o.max_new_tokens));
  }
  if (!std::isfinite(o.temperature) || o.temperature < 0) {
    return invalid_argument("temperature must be a finite number >= 0, got " +
                            std::to_string(o.temperature));
  }
  if (o.top_k < 0) return invalid_argument("top_k must be >= 0, got " + std::to_string(o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) {
    return invalid_argument("top_p must be in (0, 1], got " + std::to_string(o.top_p));
  }
  return Status::ok();
}

TokenSampler::TokenSampler(const SamplingOptions& options)
    : options_(options), rng_(options.seed) {}

double TokenSampler::uniform() {
  return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

Result<int64_t> TokenSampler::next(const float* logits, int64_t n) {
  if (n <= 0) return invalid_argument("no logits to sample from");
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(logits[i])) return invalid_argument("logit " + std::to_string(i) + " is NaN");
  }
  if (options_.temperature == 0) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return best;
  }
  // Candidates, most likely first when top-k or top-p needs an order (ties: lower id first).
  std::vector<int64_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  auto more_likely = [&](int64_t a, int64_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  const bool top_k = options_.top_k > 0 && options_.top_k < n;
  if (top_k) {
    std::partial_sort(ids.begin(), ids.begin() + options_.top_k, ids.end(), more_likely);
    ids.resize(static_cast<size_t>(options_.top_k));
  } else if (options_.top_p < 1) {
    std::sort(ids.begin(), ids.end(), more_likely);
  }
  double max_logit = -std::numeric_limits<double>::infinity();
  for (int64_t id : ids) max_logit = std::max(max_logit, static_cast<double>(logits[id]));
  if (!std::isfinite(max_logit)) {
    return invalid_argument("logits are not finite (largest: " + std::to_string(max_logit) + ")");
  }
  std::vector<double> p(ids.size());
  double total = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    p[i] = std::exp((static_cast<double>(logits[ids[i]]) - max_logit) / options_.temperature);
    total += p[i];
  }
  size_t keep = ids.size();
  if (options_.top_p < 1) {
    // Ordered most likely first: keep the shortest prefix reaching top_p of the mass.
    double cum = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      cum += p[i] / total;
      if (cum >= options_.top_p) {
        keep = i + 1;
        break;
      }
    }
    total = std::accumulate(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(keep), 0.0);
  }
  const double target = uniform() * total;
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += p[i];
    if (target < cum) return ids[i];
  }
  // Rounding left the target at the very top: the last candidate with non-zero probability.
  for (size_t i = keep; i-- > 0;) {
    if (p[i] > 0) return ids[i];
  }
  return ids[0];
}

namespace {

Result<std::vector<int64_t>> start_ids(const Transformer& model,
                                       const std::vector<int64_t>& prompt) {
  if (!prompt.empty()) return prompt;
  if (!model.config().bos_token_id) {
    return invalid_argument(
        "the prompt is empty and the model config has no bos_token_id to start from");
  }
  return std::vector<int64_t>{*model.config().bos_token_id};
}

bool is_stop(const std::vector<int64_t>& stops, int64_t id) {
  return std::find(stops.begin(), stops.end(), id) != stops.end();
}

// Runs one step and returns the last position's logits as a contiguous fp32 CPU tensor [B, V].
Result<torch::Tensor> step(const Transformer& model, const torch::Tensor& ids,
                           const torch::Tensor& mask, KVCache* cache) {
  PROV_ASSIGN_OR_RETURN(torch::Tensor logits, model.forward(ids, mask, cache, true));
  try {
    return logits.select(1, 0).to(torch::kCPU).contiguous();
  } catch (const c10::Error& e) {
    return internal_error(std::string("copying logits to the CPU failed: ") +
                          e.what_without_backtrace());
  }
}

torch::Tensor ids_tensor(const std::vector<int64_t>& ids, int64_t rows, int64_t cols) {
  return torch::from_blob(const_cast<int64_t*>(ids.data()), {rows, cols}, torch::kInt64).clone();
}

}  // namespace

Result<std::vector<int64_t>> generate(const Transformer& model,
                                      const std::vector<int64_t>& prompt_ids,
                                      const SamplingOptions& options) {
  PROV_RETURN_IF_ERROR(validate_sampling_options(options));
  PROV_ASSIGN_OR_RETURN(std::vector<int64_t> out, start_ids(model, prompt_ids));
  const int64_t context = model.config().max_position_embeddings;
  if (options.max_new_tokens == 0) return out;
  const int64_t vocab = model.config().vocab_size;
  KVCache cache;
  TokenSampler sampler(options);
  PROV_ASSIGN_OR_RETURN(
      torch::Tensor logits,
      step(model, ids_tensor(out, 1, static_cast<int64_t>(out.size())), torch::Tensor(), &cache));
  for (int i = 0; i < options.max_new_tokens; ++i) {
    PROV_ASSIGN_OR_RETURN(int64_t next, sampler.next(logits.data_ptr<float>(), vocab));
    out.push_back(next);
    if (is_stop(options.stop_ids, next) || i + 1 == options.max_new_tokens) break;
    // Feeding `next` makes the cache hold out.size() tokens: stop when that exceeds the context.
    if (context > 0 && static_cast<int64_t>(out.size()) > context) break;
    PROV_ASSIGN_OR_RETURN(logits, step(model, ids_tensor({next}, 1, 1), torch::Tensor(), &cache));
  }
  return out;
}

Result<std::vector<std::vector<int64_t>>> generate_greedy_batch(
    const Transformer& model, const std::vector<std::vector<int64_t>>& prompts, int max_new_tokens,
    const std::vector<int64_t>& stop_ids) {
  if (max_new_tokens < 0) {
    return invalid_argument("max_new_tokens must be >= 0, got " + std::to_string(max_new_tokens));
  }
  std::vector<std::vector<int64_t>> out;
  for (const auto& p : prompts) {
    PROV_ASSIGN_OR_RETURN(std::vector<int64_t> ids, start_ids(model, p));
    out.push_back(std::move(ids));
  }
  if (out.empty() || max_new_tokens == 0) return out;
  const int64_t B = static_cast<int64_t>(out.size());
  size_t longest = 0;
  for (const auto& ids : out) longest = std::max(longest, ids.size());
  const int64_t L = static_cast<int64_t>(longest);
  // Left padding with token 0 (masked out).
  std::vector<int64_t> ids(static_cast<size_t>(B * L), 0), mask(static_cast<size_t>(B * L), 0);
  for (int64_t b = 0; b < B; ++b) {
    const auto& row = out[static_cast<size_t>(b)];
    const int64_t off = L - static_cast<int64_t>(row.size());
    for (size_t j = 0; j < row.size(); ++j) {
      ids[static_cast<size_t>(b * L + off) + j] = row[j];
      mask[static_cast<size_t>(b * L + off) + j] = 1;
    }
  }
  const int64_t context = model.config().max_position_embeddings;
  const int64_t vocab = model.config().vocab_size;
  KVCache cache;
  SamplingOptions greedy;
  TokenSampler sampler(greedy);
  PROV_ASSIGN_OR_RETURN(torch::Tensor logits,
                        step(model, ids_tensor(ids, B, L), ids_tensor(mask, B, L), &cache));
  std::vector<bool> done(static_cast<size_t>(B), false);
  std::vector<int64_t> last(static_cast<size_t>(B), 0);
  std::vector<int64_t> ones(static_cast<size_t>(B), 1);
  for (int i = 0; i < max_new_tokens; ++i) {
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      PROV_ASSIGN_OR_RETURN(int64_t next, sampler.next(logits[b].data_ptr<float>(), vocab));
      last[static_cast<size_t>(b)] = next;
      if (done[static_cast<size_t>(b)]) continue;
      out[static_cast<size_t>(b)].push_back(next);
      if (is_stop(stop_ids, next)) done[static_cast<size_t>(b)] = true;
      all_done = all_done && done[static_cast<size_t>(b)];
    }
    if (all_done || i + 1 == max_new_tokens) break;
    if (context > 0 && L + i + 1 > context) break;  // the longest row would exceed the context
    PROV_ASSIGN_OR_RETURN(logits,
                          step(model, ids_tensor(last, B, 1), ids_tensor(ones, B, 1), &cache));
  }
  return out;
}

}  // namespace prov::model
