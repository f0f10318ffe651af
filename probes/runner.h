// The local probe runner: runs a probe suite through the LibTorch runtime and returns one
// ProbeRecord (signature.h) per probe.
//
// How a probe is run (docs/probes.md):
//   * the prompt is the probe's ids, or its text encoded with the model's tokenizer
//     (add_special = true: BOS as the tokenizer adds it);
//   * one forward pass over prompt ++ continuation tokens (the continuation text encoded without
//     special tokens) gives positions[0] (the distribution after the prompt) and the
//     teacher-forced positions; each recorded position gets the top-k (extract.h), the entropy and
//     log-sum-exp of the full distribution, and the log-probability of the token that follows;
//   * each score text is run as prompt ++ text tokens; its token log-probabilities are recorded;
//   * greedy continuations come from model::generate_greedy_batch: up to greedy_tokens tokens,
//     ending early at the end-of-sequence token (the tokenizer's, else the config's), which is
//     left out of the recorded ids and text — what an OpenAI-compatible server returns.
// Batching: the suite is cut into chunks of 8 batches in suite order; within a chunk the
// sequences are sorted by length and batched (left padding, attention mask), so padding stays
// small. Batch composition depends only on the suite and the batch size, never on which probes a
// resumed run still has to do, so a resumed signature equals an uninterrupted one bit for bit.
// Records are delivered chunk by chunk, in suite order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/runtime/runtime.h"
#include "model/tokenizers/tokenizer.h"
#include "probes/signature.h"
#include "probes/suite.h"

namespace prov::probes {

struct RunnerOptions {
  int batch_size = 16;  // sequences per forward pass (>= 1)
  // Logit rows sent to signature extraction at once (bounds the memory of [rows, V] logits).
  int extract_rows = 4096;
};

class LocalRunner {
 public:
  // `model` and `tokenizer` must outlive the runner. The tokenizer may be null when every probe
  // gives ids and has no continuation or score texts (token strings are then left empty).
  LocalRunner(const model::Transformer& model, const model::Tokenizer* tokenizer,
              RunnerOptions options = {});

  // Runs the probes whose skip[i] is false (skip may be empty: run everything), calling on_record
  // in increasing index order; stops at the first error (a probe that cannot be encoded, is longer
  // than the context, or a runtime failure) and returns it, naming the probe. on_progress(done,
  // total) is called after each chunk. Records already delivered stay delivered.
  Status run(const Suite& suite, const std::vector<bool>& skip,
             const std::function<Status(const ProbeRecord&)>& on_record,
             const std::function<void(size_t, size_t)>& on_progress = {}) const;

  // Convenience: runs every probe and returns the records.
  Result<std::vector<ProbeRecord>> run_all(const Suite& suite) const;

 private:
  const model::Transformer& model_;
  const model::Tokenizer* tokenizer_;
  RunnerOptions options_;
};

// The decoded string of one token id as the signature records it (the tokenizer's decode of the
// single id, special tokens kept); "" without a tokenizer.
std::string token_string(const model::Tokenizer* tokenizer, int32_t id);

}  // namespace prov::probes
