// The serving dialects prov speaks: the wire format of each engine people serve models with, as
// the endpoint client (endpoint.h) sends it and as `prov serve --dialect` (server.h) answers it.
//
//   openai     POST /v1/completions (echo + logprobs) and /v1/chat/completions (logprobs +
//              top_logprobs 0..20); reasoning models refuse log-probabilities (text only then).
//   vllm       the OpenAI routes with vLLM's extensions: `prompt_logprobs`, `return_token_ids`,
//              `return_tokens_as_token_ids`; at most --max-logprobs (20) alternatives; GET
//              /version.
//   sglang     POST /generate with return_logprob, logprob_start_len, top_logprobs_num,
//              token_ids_logprob; answers in meta_info.{input,output}_{token,top}_logprobs as
//              [logprob, id, text] triples; GET /get_server_info, /get_model_info.
//   tgi        POST /generate with details, decoder_input_details (prompt log-probabilities, no
//              alternatives, not with streaming) and top_n_tokens (at most 5 by default);
//              POST /generate_stream (server-sent events); GET /info.
//   llamacpp   POST /completion with n_probs and post_sampling_probs; no prompt
//              log-probabilities; GET /props.
//   anthropic  POST /v1/messages (x-api-key, anthropic-version): text only.
//
// DialectTraits says what each gives; docs/probes.md has the table of engines and statistics.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace prov::probes {

enum class Dialect { kOpenAI, kVllm, kSglang, kTgi, kLlamaCpp, kAnthropic };

// What an engine returns, as documented for its default configuration.
struct DialectTraits {
  const char* name;          // "openai", "vllm", ...
  const char* engine;        // what the signature header calls the engine
  bool prompt_logprobs;      // scores given text (teacher forcing, cross-likelihood)
  bool prompt_alternatives;  // top alternatives at the scored prompt positions too
  bool text_only;            // no log-probabilities at all
  uint32_t top_k_cap;        // most alternatives per position by default (0: no documented cap)
  bool token_ids;            // answers carry token ids (vLLM: with return_tokens_as_token_ids)
  const char* logprob_mode;  // "raw" (before sampling processors), "processed", "none"
  const char* version_path;  // GET path that names the engine's version ("" = none)
};

const DialectTraits& dialect_traits(Dialect dialect);
const char* dialect_name(Dialect dialect);
// "openai" | "vllm" | "sglang" | "tgi" | "llamacpp" (also "llama.cpp") | "anthropic";
// kInvalidArgument listing them otherwise.
Result<Dialect> parse_dialect(const std::string& name);

}  // namespace prov::probes
