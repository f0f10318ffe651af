// Probing a model behind a served endpoint, in the wire format of its engine (probes/dialect.h:
// openai, vllm, sglang, tgi, llamacpp, anthropic), on libcurl. docs/probes.md has the table of
// what each engine gives and which statistics follow from it.
//
// One probe (suite.h) becomes one ProbeRecord (signature.h). The openai dialect:
//
// Completions mode (POST {base}/completions):
//   * main request {model, prompt (the text, or the ids as a list), max_tokens:
//     max(1, greedy_tokens), temperature: 0, seed: 0, logprobs: top_k (omitted when top_k is 0)}.
//     positions[0].top comes from choices[0].logprobs.top_logprobs[0], sorted by log-probability
//     (most likely first; ties: lower id first when ids are known, else by token string). The ids
//     are taken from the non-standard `top_logprobs_ids` field when the server sends it (`prov
//     serve` does: per step a list of {"id", "token", "logprob"}) or from "token_id:N" keys
//     (vLLM's return_tokens_as_token_ids); otherwise TopK holds token strings only. When the
//     server answers without logprobs (or with an empty top list) the record has no positions
//     (a text-only record).
//     continuation_text is choices[0].text when greedy_tokens > 0 (with greedy_tokens == 0 the one
//     generated token is not recorded). The main request is skipped when it would record nothing
//     (greedy_tokens == 0 and a teacher-forced continuation present).
//   * teacher-forced `continuation` and each `score_texts` entry: a request {prompt: prompt_text +
//     text, max_tokens: 0, echo: true, logprobs: max(top_k, 1) for the continuation, 1 for scores}
//     (a server that rejects max_tokens 0 is asked again with 1, and later requests use 1 at once;
//     the generated token is not used). Of the echoed tokens (all reported tokens but the last
//     usage.completion_tokens of them), those whose text_offset is >= the prompt text's length
//     form the scored text. Both text_offset and that length count Unicode code points, as the
//     OpenAI API (Python's len()) does. Servers whose offsets add up the reported token
//     strings (vLLM), counting a leading BOS rendered as "<s>" that the text lacks, are
//     recognised by the last echoed token ending past the end of prompt + text: the boundary
//     moves by that excess when it is at most the first token's length. A token that straddles
//     the boundary (the prompt's last characters merged with the text's first) counts as prompt;
//     a text with no token of its own is kInvalidArgument. The scored tokens give a
//     ScoredText (ids from the non-standard `token_ids` field when present) and, for the
//     continuation, one PositionRecord each: positions[j] is the distribution at the j-th scored
//     token (top alternatives there) and its token_* describe that token, so positions[0] is the
//     distribution after the prompt, as signature.h defines. All continuation positions come
//     from the echo response, so each distribution and the token it describes share one
//     tokenization of the context.
//   * probes given as ids work for the main request; a continuation or score_texts after an ids
//     prompt is kUnsupported (the text cannot be appended to ids without the tokenizer).
//
// Chat mode (POST {base}/chat/completions): {model, messages: [{role: user, content: text}],
// max_tokens: max(1, greedy_tokens), temperature: 0, seed: 0, logprobs: true, top_logprobs: top_k}
// (logprobs omitted when top_k is 0). positions[0].top from
// choices[0].logprobs.content[0].top_logprobs, continuation_text from choices[0].message.content.
// Probes given as ids are kInvalidArgument; continuation and score_texts are kUnsupported.
//
// vllm: completions as above plus `return_token_ids: true` (prompt_ids and continuation_ids from
// choices[0].prompt_token_ids / token_ids, a final EOS dropped when finish_reason is "stop" and
// stop_reason null); with a tokenizer (EndpointOptions::tokenizer) `return_tokens_as_token_ids`
// (top-k ids; strings decoded with the tokenizer, each id alone); scoring asks for
// `prompt_logprobs: k` too and takes the alternatives at each scored position (ids and decoded
// strings) from choices[0].prompt_logprobs; with a tokenizer the scored text is sent as ids
// (encode(prompt) + encode(text) without special tokens, as the local runner does), so the
// boundary is exact. vLLM's offsets add up token strings (a BOS counts); the correction above
// applies. Chat as the openai dialect, with `return_tokens_as_token_ids` given a tokenizer.
// For vllm, sglang and tgi, a probe whose main request is skipped (greedy_tokens 0 with a
// continuation) takes its prompt_ids from the scoring answer (the tokens before the text).
//
// sglang: POST {root}/generate {text (or input_ids), sampling_params {max_new_tokens:
// max(1, greedy_tokens), temperature: 0}, return_logprob: true, logprob_start_len: 0,
// top_logprobs_num: top_k, return_text_in_logprobs: true}: prompt_ids from
// meta_info.input_token_logprobs, the continuation from `text` and output_token_logprobs (a final
// id named by finish_reason.matched dropped), positions[0].top from output_top_logprobs[0] (ids
// and strings). Scoring sends prompt + text (ids with a tokenizer) with max_new_tokens 0 (1 when
// refused) and reads input_token_logprobs / input_top_logprobs; without ids the boundary comes
// from the token strings' lengths, as for vLLM.
//
// tgi: POST {root}/generate {inputs, parameters {max_new_tokens: max(1, greedy_tokens),
// do_sample: false, details: true, decoder_input_details: true, top_n_tokens: min(top_k, limit)}}:
// prompt_ids from details.prefill, continuation from generated_text and details.tokens (a final
// token dropped when finish_reason is "eos_token"), positions[0].top from details.top_tokens[0].
// Scoring reads details.prefill of prompt + text with max_new_tokens 1: token log-probabilities
// without alternatives (TGI gives none for the prompt). Prompts given as ids: kUnsupported.
//
// llamacpp: POST {root}/completion {prompt (text or ids), n_predict: max(1, greedy_tokens),
// temperature: 0, n_probs: top_k, post_sampling_probs: false, return_tokens: true}:
// continuation from `content` and `tokens` (a final id dropped when stop_type is "eos"),
// positions[0].top from completion_probabilities[0].top_logprobs (`top_probs` when the server
// answers post-sampling probabilities: logprob = log(prob), mode "processed"). No prompt
// log-probabilities: continuations and score texts are kUnsupported (cross-likelihood and the
// teacher-forced statistics cannot be computed from llama.cpp).
//
// anthropic: POST {root}/v1/messages {model, max_tokens: greedy_tokens, messages: [user],
// temperature: 0} with `x-api-key` and `anthropic-version`: continuation_text only (text only);
// a probe with greedy_tokens 0 sends nothing. Continuations and score texts: kUnsupported.
//
// Reasoning models behind the openai chat route refuse `logprobs`/`top_logprobs`, `max_tokens` or
// `temperature` (400 "unsupported_parameter" / "unsupported_value" naming the field): discover()
// and every request drop what was refused (`max_completion_tokens` replaces max_tokens) and the
// signature says so (logprob_mode "none" when log-probabilities were refused).
//
// discover() asks the engine what it is before a collection: its version (vllm GET /version,
// sglang GET /get_server_info, tgi GET /info, llamacpp GET /props; openai the `openai-version`
// response header; anthropic the API version sent), the model it serves (a --model-name that
// does not match is kInvalidArgument naming both), and, with one small request where an engine
// caps alternatives (openai, vllm, tgi), that cap: a refusal that names the limit ("max allowed:
// 20", "<= 5") sets top_k_limit and later requests ask for at most that many.
//
// Budget (EndpointOptions::max_requests, max_tokens_total): run_suite reserves each probe's
// requests and estimated tokens (estimate()) before starting it, in probe order, so a probe that
// would pass the budget fails with kInvalidArgument and no later probe starts (earlier ones
// finish and are delivered). Requests count each call to the engine once (retries of failed
// attempts are not counted: engines do not bill refused or failed requests); tokens count what
// the engine reports as used (prompt + completion), or the estimate where it reports nothing.
//
// Reliability: connect errors, timeouts, dropped connections, HTTP 429 and 5xx, malformed JSON
// and responses cut short are retried up to max_retries times with exponential backoff
// (backoff_initial_s * 2^attempt, capped at backoff_max_s, times a jitter factor in [0.5, 1]
// drawn from std::mt19937_64(jitter_seed)); a Retry-After header (seconds) replaces the backoff,
// capped at backoff_max_s. Other HTTP 4xx answers are not retried: kInvalidArgument with the
// server's error message. After the last attempt: kIo for connection failures, timeouts and
// HTTP errors, kCorrupt for malformed or truncated responses; messages name the URL. The API key
// is sent as "Authorization: Bearer <key>" (anthropic: "x-api-key") and never appears in messages.
// With rate_limit_rps > 0 requests (retries included) start at least 1 / rate_limit_rps seconds
// apart (a token bucket holding one token).
//
// Thread safety: run_probe and counters may be called from several threads at once; each request
// uses its own CURL easy handle (idle handles are kept for connection reuse).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/tokenizers/tokenizer.h"
#include "probes/dialect.h"
#include "probes/signature.h"
#include "probes/suite.h"

namespace prov::probes {

struct EndpointOptions {
  std::string base_url;    // e.g. http://127.0.0.1:8000 ; "/v1" appended if absent (openai, vllm)
  std::string model_name;  // sent as "model"; omitted when empty (single-model servers)
  std::string api_key;     // sent as "Authorization: Bearer <key>" when non-empty
  Dialect dialect = Dialect::kOpenAI;
  bool chat = false;  // openai, vllm: use /chat/completions instead of /completions
  std::string anthropic_version = "2023-06-01";
  // The tokenizer the endpoint serves (--tokenizer), or null: decodes the ids an engine returns
  // into token strings, sends scored texts as ids where the engine takes them, and counts tokens
  // for estimates. Not owned; must outlive the client.
  const model::Tokenizer* tokenizer = nullptr;
  uint64_t max_requests = 0;      // budget of run_suite (0 = none)
  uint64_t max_tokens_total = 0;  // budget of run_suite in tokens (0 = none)
  int concurrency = 8;            // requests in flight in run_suite (1..256)
  double timeout_s = 60;          // whole request
  double connect_timeout_s = 10;
  int max_retries = 5;  // retries after the first attempt (0..100)
  double backoff_initial_s = 0.5;
  double backoff_max_s = 30;
  double rate_limit_rps = 0;                     // 0 = no limit
  uint64_t jitter_seed = 1;                      // seeds the backoff jitter
  size_t max_response_bytes = size_t{64} << 20;  // larger responses are kCorrupt (no retry)
};

struct EndpointCounters {
  uint64_t requests = 0;  // HTTP attempts sent (retries included)
  uint64_t retries = 0;   // attempts that were repeats of a failed one
  uint64_t calls = 0;     // requests as the budget counts them (retries not counted)
  uint64_t tokens = 0;    // tokens as the budget counts them
};

// What discover() learnt about the engine (SignatureHeader's engine fields).
struct EngineInfo {
  std::string engine;              // dialect_traits().engine
  std::string version;             // as the engine reports it ("" when it does not)
  std::string api;                 // "openai-completions", "openai-chat", "vllm-completions",
                                   // "vllm-chat", "sglang-generate", "tgi-generate",
                                   // "llamacpp-completion", "anthropic-messages"
  std::string logprob_mode;        // "raw" | "processed" | "none"
  uint32_t top_k_limit = 0;        // alternatives per position the engine gives at most (0: no cap)
  bool prompt_logprobs = false;    // scores given text
  bool token_ids = false;          // records carry token ids (top-k ids)
  std::string served_model;        // the model the engine says it serves ("" unknown)
  std::vector<std::string> notes;  // what was adapted or is unavailable, for the report
};

// What collecting probes would cost (dry runs and the budget): requests and tokens, estimated
// from the text (with the tokenizer when given, else one token per 4 bytes) and the tokens asked
// for.
struct CostEstimate {
  uint64_t probes = 0;
  uint64_t requests = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
};

class EndpointClient {
 public:
  ~EndpointClient();
  EndpointClient(const EndpointClient&) = delete;
  EndpointClient& operator=(const EndpointClient&) = delete;

  // Checks the options (kInvalidArgument naming the bad one: a base_url that is not http(s)://,
  // concurrency, timeouts, retries out of range). Sends nothing.
  static Result<std::unique_ptr<EndpointClient>> create(const EndpointOptions& options);

  // Asks the engine what it is (see discover() above) for probes of up to `want_top_k`
  // alternatives; later requests respect what it learnt. Sends at most a few small requests
  // (none for anthropic); counted by the budget. kInvalidArgument when the engine serves another
  // model or refuses the request; kIo when it cannot be reached.
  Result<EngineInfo> discover(uint32_t want_top_k);

  // What running the probes whose skip[i] is false would cost; sends nothing.
  CostEstimate estimate(const Suite& suite, const std::vector<bool>& skip) const;

  // One probe -> one ProbeRecord with the given index (see the mapping above). Errors name the
  // probe and the URL. Thread-safe.
  Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index);

  // Runs the probes whose skip[i] is false (an empty `skip` skips none; otherwise it must have
  // one entry per probe) with up to `concurrency` requests in flight, calling on_record in
  // increasing index order (completions that arrive out of order are held back) and
  // on_progress(delivered, to_deliver) after each record. At the first probe (in index order)
  // that fails after its retries (or would pass the budget), no further probe starts; the run
  // returns that error once the probes in flight have finished. Records of lower index are
  // delivered in order; those of higher index that completed are delivered after them (in
  // index order, past the gap the failed probe leaves), so nothing completed is lost or asked
  // for again. An error from on_record stops the run too and is returned. Not reentrant for one
  // client from several threads at once (run_probe is).
  Status run_suite(const Suite& suite, const std::vector<bool>& skip,
                   const std::function<Status(const ProbeRecord&)>& on_record,
                   const std::function<void(size_t, size_t)>& on_progress = {});

  EndpointCounters counters() const;
  // The base URL OpenAI-style requests go to, ending in "/v1" (no trailing slash).
  const std::string& api_base() const;
  // The server's root (api_base() without "/v1"): native routes hang from it.
  const std::string& root() const;

 private:
  struct Impl;
  explicit EndpointClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace prov::probes
