// Training small causal language models with LibTorch autograd: the model zoo's trainer.
//
// Models are the runtime's own Transformer loaded with RuntimeOptions::trainable, so a trained
// model is exactly what the runtime (and every detector) later runs. Optimiser: AdamW with linear
// warm-up and cosine decay to min_lr_ratio * lr, gradient clipping at grad_clip (global norm).
// Batches are windows of seq_len + 1 tokens at offsets drawn from std::mt19937_64(seed) (our own
// bounded draw, no implementation-defined distributions), so a run is reproducible on a machine
// (LibTorch CPU kernels are deterministic for a fixed thread count).
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "model/runtime/runtime.h"

namespace prov::zoo {

struct TrainOptions {
  int steps = 300;
  int batch = 16;
  int seq_len = 64;
  double lr = 3e-3;
  double min_lr_ratio = 0.1;
  int warmup = 20;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  uint64_t seed = 1;
};

nlohmann::json train_options_json(const TrainOptions& o);

// Called every `log_every` steps and at the last one with (step, loss).
using TrainLog = std::function<void(int, double)>;

// Next-token cross-entropy on windows of `tokens`. kInvalidArgument when the stream is shorter
// than seq_len + 1 tokens or the model is not trainable.
Status train_lm(const model::Transformer& model, const std::vector<int32_t>& tokens,
                const TrainOptions& options, const TrainLog& log = {}, int log_every = 50);

// Logit distillation: the student minimises KL(teacher || student) of the next-token
// distributions (temperature 1) on windows of `tokens`; both models share the vocabulary.
Status train_logit_distill(const model::Transformer& student, const model::Transformer& teacher,
                           const std::vector<int32_t>& tokens, const TrainOptions& options,
                           const TrainLog& log = {}, int log_every = 50);

// Mean next-token cross-entropy (nats) over consecutive windows of `tokens` (at most
// max_windows of them).
Result<double> eval_loss(const model::Transformer& model, const std::vector<int32_t>& tokens,
                         int seq_len = 64, int max_windows = 64);

// Samples `count` sequences of `length` new tokens after each prompt (prompts used in turn), in
// batches, with temperature / top-p sampling seeded by `seed`; a sequence ends at `stop_id`
// (not included). Returns the generated ids per sequence.
Result<std::vector<std::vector<int32_t>>> sample_texts(
    const model::Transformer& model, const std::vector<std::vector<int32_t>>& prompts, int count,
    int length, double temperature, double top_p, uint64_t seed, int64_t stop_id, int batch = 32);

// A uniform integer in [0, n) from a 64-bit generator, without modulo bias (n > 0).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

}  // namespace prov::zoo
