#include "zoo/train.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "model/runtime/generate.h"

namespace prov::zoo {

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  // Rejection sampling on the top of the range: every value in [0, n) equally likely.
  const uint64_t limit = n == 0 ? 0 : (~uint64_t{0} / n) * n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

nlohmann::json train_options_json(const TrainOptions& o) {
  return {{"steps", o.steps},
          {"batch", o.batch},
          {"seq_len", o.seq_len},
          {"lr", o.lr},
          {"min_lr_ratio", o.min_lr_ratio},
          {"warmup", o.warmup},
          {"weight_decay", o.weight_decay},
          {"grad_clip", o.grad_clip},
          {"seed", o.seed},
          {"optimizer", "AdamW, linear warm-up, cosine decay"}};
}

namespace {

double lr_at(const TrainOptions& o, int step) {
  if (step < o.warmup) return o.lr * static_cast<double>(step + 1) / std::max(1, o.warmup);
  const double t = static_cast<double>(step - o.warmup) / std::max(1, o.steps - o.warmup);
  const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * std::min(1.0, t)));
  return o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * cosine);
}

// [batch, seq_len + 1] windows at seeded offsets.
torch::Tensor sample_batch(const std::vector<int32_t>& tokens, const TrainOptions& o,
                           std::mt19937_64& rng) {
  const uint64_t span = tokens.size() - static_cast<size_t>(o.seq_len);
  torch::Tensor b = torch::empty({o.batch, o.seq_len + 1}, torch::kInt64);
  auto a = b.accessor<int64_t, 2>();
  for (int i = 0; i < o.batch; ++i) {
    const uint64_t off = uniform_below(rng, span);
    for (int t = 0; t <= o.seq_len; ++t) a[i][t] = tokens[off + static_cast<uint64_t>(t)];
  }
  return b;
}

Status check_setup(const model::Transformer& model, const std::vector<int32_t>& tokens,
                   const TrainOptions& o) {
  if (!model.options().trainable) {
    return invalid_argument("the model was not loaded with RuntimeOptions::trainable");
  }
  if (o.steps < 1 || o.batch < 1 || o.seq_len < 1) {
    return invalid_argument("steps, batch and seq_len must be positive");
  }
  if (tokens.size() < static_cast<size_t>(o.seq_len) + 2) {
    return invalid_argument("the training stream has " + std::to_string(tokens.size()) +
                            " tokens; at least seq_len + 2 = " + std::to_string(o.seq_len + 2) +
                            " are needed");
  }
  return Status::ok();
}

template <typename LossFn>
Status run_training(const model::Transformer& model, const std::vector<int32_t>& tokens,
                    const TrainOptions& o, const TrainLog& log, int log_every, LossFn&& loss_fn) {
  PROV_RETURN_IF_ERROR(check_setup(model, tokens, o));
  try {
    std::vector<torch::Tensor> params = model.parameters();
    // No weight decay on vectors (norm weights, biases), as is usual.
    std::vector<torch::Tensor> decay, no_decay;
    for (auto& p : params) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                      torch::optim::AdamWOptions(o.lr).weight_decay(0.0)));
    torch::optim::AdamW opt(groups, torch::optim::AdamWOptions(o.lr));
    std::mt19937_64 rng(o.seed);
    const torch::Device dev = model.options().device;
    for (int step = 0; step < o.steps; ++step) {
      const double lr = lr_at(o, step);
      for (auto& g : opt.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      }
      torch::Tensor batch = sample_batch(tokens, o, rng).to(dev);
      torch::Tensor input = batch.narrow(1, 0, o.seq_len);
      torch::Tensor target = batch.narrow(1, 1, o.seq_len);
      opt.zero_grad();
      PROV_ASSIGN_OR_RETURN(torch::Tensor loss, loss_fn(input, target));
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, o.grad_clip);
      opt.step();
      if (log && (step % log_every == 0 || step + 1 == o.steps)) {
        log(step, loss.item<double>());
      }
    }
  } catch (const c10::Error& e) {
    return internal_error(std::string("training failed in LibTorch: ") +
                          e.what_without_backtrace());
  }
  return Status::ok();
}

}  // namespace

Status train_lm(const model::Transformer& model, const std::vector<int32_t>& tokens,
                const TrainOptions& options, const TrainLog& log, int log_every) {
  return run_training(
      model, tokens, options, log, log_every,
      [&](const torch::Tensor& input, const torch::Tensor& target) -> Result<torch::Tensor> {
        PROV_ASSIGN_OR_RETURN(torch::Tensor logits, model.forward_train(input));
        const int64_t V = logits.size(-1);
        return torch::nn::functional::cross_entropy(logits.reshape({-1, V}).to(torch::kFloat32),
                                                    target.reshape({-1}));
      });
}

Status train_logit_distill(const model::Transformer& student, const model::Transformer& teacher,
                           const std::vector<int32_t>& tokens, const TrainOptions& options,
                           const TrainLog& log, int log_every) {
  if (student.config().vocab_size != teacher.config().vocab_size) {
    return invalid_argument("logit distillation needs the same vocabulary (student " +
                            std::to_string(student.config().vocab_size) + ", teacher " +
                            std::to_string(teacher.config().vocab_size) + ")");
  }
  return run_training(
      student, tokens, options, log, log_every,
      [&](const torch::Tensor& input, const torch::Tensor&) -> Result<torch::Tensor> {
        torch::Tensor t_logp;
        {
          PROV_ASSIGN_OR_RETURN(torch::Tensor tl, teacher.forward(input, {}, nullptr));
          t_logp = torch::log_softmax(tl.to(torch::kFloat32), -1).detach();
        }
        PROV_ASSIGN_OR_RETURN(torch::Tensor sl, student.forward_train(input));
        torch::Tensor s_logp = torch::log_softmax(sl.to(torch::kFloat32), -1);
        // KL(teacher || student) per position, averaged.
        return (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean();
      });
}

Result<double> eval_loss(const model::Transformer& model, const std::vector<int32_t>& tokens,
                         int seq_len, int max_windows) {
  if (tokens.size() < static_cast<size_t>(seq_len) + 1) {
    return invalid_argument("evaluation stream shorter than one window");
  }
  const int64_t n =
      std::min<int64_t>(max_windows, static_cast<int64_t>((tokens.size() - 1) / seq_len));
  torch::Tensor b = torch::empty({n, seq_len + 1}, torch::kInt64);
  auto a = b.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    for (int t = 0; t <= seq_len; ++t) a[i][t] = tokens[static_cast<size_t>(i * seq_len + t)];
  }
  torch::NoGradGuard ng;
  PROV_ASSIGN_OR_RETURN(
      torch::Tensor logits,
      model.forward(b.narrow(1, 0, seq_len).to(model.options().device), {}, nullptr));
  const int64_t V = logits.size(-1);
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits.reshape({-1, V}), b.narrow(1, 1, seq_len).reshape({-1}).to(logits.device()));
  return loss.item<double>();
}

Result<std::vector<std::vector<int32_t>>> sample_texts(
    const model::Transformer& model, const std::vector<std::vector<int32_t>>& prompts, int count,
    int length, double temperature, double top_p, uint64_t seed, int64_t stop_id, int batch) {
  if (prompts.empty() || count < 0 || length < 1 || batch < 1) {
    return invalid_argument("sample_texts needs prompts, count >= 0, length >= 1, batch >= 1");
  }
  std::vector<std::vector<int32_t>> out;
  out.reserve(static_cast<size_t>(count));
  const torch::Device dev = model.options().device;
  torch::NoGradGuard ng;
  for (int b0 = 0; b0 < count; b0 += batch) {
    const int nb = std::min(batch, count - b0);
    // Left-padded prompts with a mask.
    size_t P = 0;
    for (int i = 0; i < nb; ++i)
      P = std::max(P, prompts[static_cast<size_t>(b0 + i) % prompts.size()].size());
    torch::Tensor ids = torch::zeros({nb, static_cast<int64_t>(P)}, torch::kInt64);
    torch::Tensor mask = torch::zeros({nb, static_cast<int64_t>(P)}, torch::kInt64);
    for (int i = 0; i < nb; ++i) {
      const auto& p = prompts[static_cast<size_t>(b0 + i) % prompts.size()];
      const size_t off = P - p.size();
      for (size_t t = 0; t < p.size(); ++t) {
        ids[i][static_cast<int64_t>(off + t)] = p[t];
        mask[i][static_cast<int64_t>(off + t)] = 1;
      }
    }
    std::vector<model::TokenSampler> samplers;
    for (int i = 0; i < nb; ++i) {
      model::SamplingOptions so;
      so.temperature = temperature;
      so.top_p = top_p;
      so.seed = seed * 1000003ULL + static_cast<uint64_t>(b0 + i);
      samplers.emplace_back(so);
    }
    model::KVCache cache;
    std::vector<std::vector<int32_t>> gen(static_cast<size_t>(nb));
    std::vector<bool> done(static_cast<size_t>(nb), false);
    torch::Tensor step_ids = ids, step_mask = mask;
    for (int t = 0; t < length; ++t) {
      PROV_ASSIGN_OR_RETURN(torch::Tensor logits,
                            model.forward(step_ids.to(dev), step_mask.to(dev), &cache, true));
      torch::Tensor last = logits.reshape({nb, -1}).to(torch::kCPU).contiguous();
      const int64_t V = last.size(1);
      torch::Tensor next = torch::zeros({nb, 1}, torch::kInt64);
      bool all_done = true;
      for (int i = 0; i < nb; ++i) {
        PROV_ASSIGN_OR_RETURN(
            int64_t pick, samplers[static_cast<size_t>(i)].next(last.data_ptr<float>() + i * V, V));
        next[i][0] = pick;
        if (!done[static_cast<size_t>(i)]) {
          if (pick == stop_id) {
            done[static_cast<size_t>(i)] = true;
          } else {
            gen[static_cast<size_t>(i)].push_back(static_cast<int32_t>(pick));
          }
        }
        all_done = all_done && done[static_cast<size_t>(i)];
      }
      if (all_done) break;
      step_ids = next;
      step_mask = torch::ones({nb, 1}, torch::kInt64);
    }
    for (auto& g : gen) out.push_back(std::move(g));
  }
  return out;
}

}  // namespace prov::zoo
