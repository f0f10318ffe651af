// Text generation on top of the runtime: greedy decoding and seeded sampling with a KV cache.
//
// Determinism: token choice does not use LibTorch's random generators. The last position's
// logits are copied to the CPU as fp32 and a token is drawn by TokenSampler, a sampler of our own
// driven by std::mt19937_64 (whose output sequence the C++ standard fixes) seeded with
// SamplingOptions::seed. The same model, dtype, device, prompt, options and seed therefore give
// the same ids on every run and every platform where the logits are the same; with temperature 0
// the choice is the argmax (the lowest id among equal maxima) and the seed is not used.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "core/status.h"
#include "model/runtime/runtime.h"

namespace prov::model {

struct SamplingOptions {
  int max_new_tokens = 0;  // tokens to generate at most (>= 0)
  double temperature = 0;  // 0: greedy; > 0: sample from softmax(logits / temperature)
  int top_k = 0;           // > 0: keep only the k most likely tokens (ties: lower id first)
  double top_p = 1.0;      // < 1: keep the smallest most-likely set whose probability >= top_p
  uint64_t seed = 0;       // seeds the sampler (unused when greedy)
  // Generation stops after producing any of these (the stop token is included in the output).
  // Empty: run for max_new_tokens. Callers wanting the model's EOS pass config().eos_token_ids.
  std::vector<int64_t> stop_ids;
};

// kInvalidArgument for a negative max_new_tokens, a negative or non-finite temperature, a
// negative top_k, or top_p outside (0, 1].
Status validate_sampling_options(const SamplingOptions& options);

// Picks tokens from logits according to SamplingOptions (temperature, then top-k, then top-p, as
// the reference applies them), with its own seeded random stream. Not thread-safe (it holds the
// stream state); one sampler per generation.
class TokenSampler {
 public:
  explicit TokenSampler(const SamplingOptions& options);
  // Chooses a token id from `n` fp32 logits. kInvalidArgument when n == 0 or a logit is NaN.
  Result<int64_t> next(const float* logits, int64_t n);
  // A uniform double in [0, 1) from the sampler's stream (53 random bits).
  double uniform();

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

// Generates up to options.max_new_tokens tokens after `prompt_ids` with a KV cache and returns the
// prompt followed by the generated ids. An empty prompt starts from the config's BOS token (which
// then leads the returned ids). Generation also stops early at a stop id, or when the context is
// full (the last id returned is then predicted from max_position_embeddings positions, so at most
// max_position_embeddings + 1 ids are returned). Fails with kInvalidArgument for bad options,
// an empty prompt when the config has no bos_token_id, an out-of-vocabulary id or a prompt longer
// than the context (the message gives the limit), and with the runtime's errors.
Result<std::vector<int64_t>> generate(const Transformer& model,
                                      const std::vector<int64_t>& prompt_ids,
                                      const SamplingOptions& options);

// Greedy decoding of several prompts in one batch (left-padded, with an attention mask). Returns,
// per prompt, the prompt followed by its generated ids (each row stops at its first stop id);
// the result equals running generate() with temperature 0 on each prompt alone, up to the
// numerical differences of batched matrix products. Errors as generate().
Result<std::vector<std::vector<int64_t>>> generate_greedy_batch(
    const Transformer& model, const std::vector<std::vector<int64_t>>& prompts, int max_new_tokens,
    const std::vector<int64_t>& stop_ids = {});

}  // namespace prov::model
