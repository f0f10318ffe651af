#include "probes/local_backend.h"

#include <algorithm>

#include "model/runtime/generate.h"
#include "probes/extract.h"

namespace prov::probes {

LocalBackend::LocalBackend(const model::Transformer& model, const model::Tokenizer& tokenizer,
                           std::string name, std::string chat_template)
    : model_(model),
      tokenizer_(tokenizer),
      name_(std::move(name)),
      chat_template_(std::move(chat_template)) {}

int32_t LocalBackend::context_length() const {
  return static_cast<int32_t>(model_.config().max_position_embeddings);
}

namespace {

// Top-k and the log-probability of `target` (or of the top-1 when target < 0) for each row of
// hidden states.
struct Scored {
  std::vector<std::vector<TokenChoice>> top;
  std::vector<std::vector<TokenChoice>> extra;  // the log-probabilities of the extra ids
  std::vector<float> target_logprob;
  std::vector<int32_t> argmax;
  std::vector<float> logsumexp;
  torch::Tensor logits;  // fp32 CPU, only when kept
};

Result<Scored> score_rows(const model::Transformer& tf, const torch::Tensor& hidden_rows,
                          const std::vector<int64_t>& targets, int64_t k, bool keep_logits,
                          const std::vector<int32_t>& extra_ids) {
  const int64_t V = tf.config().vocab_size;
  const int64_t kk = std::max<int64_t>(1, std::min<int64_t>(k, V));
  PROV_ASSIGN_OR_RETURN(torch::Tensor logits, tf.logits_from_hidden(hidden_rows));
  PROV_ASSIGN_OR_RETURN(Extracted x, extract_signature(logits, kk));
  const int64_t R = logits.size(0);
  torch::Tensor tg = torch::tensor(targets, torch::kInt64).to(logits.device()).clamp_min(0);
  torch::Tensor tlp =
      (logits.gather(1, tg.unsqueeze(1)).squeeze(1).to(torch::kFloat32) - x.logsumexp)
          .to(torch::kCPU)
          .contiguous();
  torch::Tensor ids = x.top_ids.to(torch::kCPU).contiguous();
  torch::Tensor lps = x.top_logprobs.to(torch::kCPU).contiguous();
  torch::Tensor lse = x.logsumexp.to(torch::kCPU).contiguous();
  Scored s;
  s.logsumexp.assign(lse.data_ptr<float>(), lse.data_ptr<float>() + R);
  for (int64_t r = 0; r < R; ++r) {
    std::vector<TokenChoice> t;
    for (int64_t i = 0; i < (k > 0 ? kk : 0); ++i) {
      t.push_back({static_cast<int32_t>(ids.data_ptr<int64_t>()[r * kk + i]),
                   lps.data_ptr<float>()[r * kk + i]});
    }
    s.top.push_back(std::move(t));
    s.argmax.push_back(static_cast<int32_t>(ids.data_ptr<int64_t>()[r * kk]));
    s.target_logprob.push_back(targets[static_cast<size_t>(r)] >= 0
                                   ? tlp.data_ptr<float>()[r]
                                   : lps.data_ptr<float>()[r * kk]);
  }
  if (!extra_ids.empty()) {
    std::vector<int64_t> ex(extra_ids.begin(), extra_ids.end());
    torch::Tensor idx = torch::tensor(ex, torch::kInt64).to(logits.device());
    torch::Tensor elp = (logits.index_select(1, idx).to(torch::kFloat32) - x.logsumexp.unsqueeze(1))
                            .to(torch::kCPU)
                            .contiguous();
    const int64_t E = static_cast<int64_t>(ex.size());
    for (int64_t r = 0; r < R; ++r) {
      std::vector<TokenChoice> e;
      for (int64_t i = 0; i < E; ++i) {
        e.push_back({extra_ids[static_cast<size_t>(i)], elp.data_ptr<float>()[r * E + i]});
      }
      s.extra.push_back(std::move(e));
    }
  } else {
    s.extra.resize(static_cast<size_t>(R));
  }
  if (keep_logits) s.logits = logits.to(torch::kCPU, torch::kFloat32).contiguous();
  return s;
}

}  // namespace

Result<BackendResult> LocalBackend::complete(const CompletionRequest& req) {
  const int64_t V = model_.config().vocab_size;
  const int64_t ctx = model_.config().max_position_embeddings;
  if (req.prompt_ids.empty()) return invalid_argument("the prompt has no tokens");
  for (int32_t id : req.prompt_ids) {
    if (id < 0 || id >= V) {
      return invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(V) + ")");
    }
  }
  if (ctx > 0 && static_cast<int64_t>(req.prompt_ids.size()) + req.max_tokens > ctx) {
    return invalid_argument("prompt (" + std::to_string(req.prompt_ids.size()) + " tokens) plus " +
                            std::to_string(req.max_tokens) + " new tokens exceed the context of " +
                            std::to_string(ctx));
  }
  model::SamplingOptions so;
  so.temperature = req.temperature;
  so.seed = req.seed;
  PROV_RETURN_IF_ERROR(model::validate_sampling_options(so));
  model::TokenSampler sampler(so);
  BackendResult out;
  try {
    torch::NoGradGuard no_grad;
    const torch::Device dev = model_.options().device;
    const int64_t T = static_cast<int64_t>(req.prompt_ids.size());
    std::vector<int64_t> ids(req.prompt_ids.begin(), req.prompt_ids.end());
    model::KVCache cache;
    PROV_ASSIGN_OR_RETURN(
        torch::Tensor hidden,
        model_.forward_hidden(torch::tensor(ids, torch::kInt64).unsqueeze(0).to(dev), {}, &cache));
    torch::Tensor rows = hidden[0];  // [T, H]
    if (req.echo && T > 1) {
      std::vector<int64_t> targets(ids.begin() + 1, ids.end());
      PROV_ASSIGN_OR_RETURN(Scored s, score_rows(model_, rows.narrow(0, 0, T - 1), targets,
                                                 req.top_k, false, req.extra_ids));
      for (int64_t t = 0; t + 1 < T; ++t) {
        out.prompt_steps.push_back({static_cast<int32_t>(targets[static_cast<size_t>(t)]),
                                    s.target_logprob[static_cast<size_t>(t)],
                                    s.top[static_cast<size_t>(t)],
                                    s.extra[static_cast<size_t>(t)]});
      }
    }
    torch::Tensor last = rows.narrow(0, T - 1, 1);
    for (int step = 0; step < req.max_tokens; ++step) {
      PROV_ASSIGN_OR_RETURN(
          Scored s, score_rows(model_, last, {-1}, req.top_k, req.temperature > 0, req.extra_ids));
      int32_t next = s.argmax[0];
      float lp = s.target_logprob[0];
      if (req.temperature > 0) {
        PROV_ASSIGN_OR_RETURN(int64_t pick, sampler.next(s.logits.data_ptr<float>(), V));
        next = static_cast<int32_t>(pick);
        lp = s.logits.data_ptr<float>()[pick] - s.logsumexp[0];
      }
      out.generated.push_back({next, lp, s.top[0], s.extra[0]});
      if (std::find(req.stop_ids.begin(), req.stop_ids.end(), next) != req.stop_ids.end()) {
        out.stopped = true;
        break;
      }
      if (step + 1 == req.max_tokens) break;
      PROV_ASSIGN_OR_RETURN(
          torch::Tensor h,
          model_.forward_hidden(
              torch::tensor({static_cast<int64_t>(next)}, torch::kInt64).view({1, 1}).to(dev), {},
              &cache));
      last = h[0];
    }
  } catch (const c10::Error& e) {
    return internal_error(std::string("LibTorch failed while serving: ") +
                          e.what_without_backtrace());
  }
  return out;
}

}  // namespace prov::probes
