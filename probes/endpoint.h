// Probing a model behind an OpenAI-compatible HTTP endpoint (vLLM, SGLang, llama.cpp server, TGI,
// hosted APIs, `prov serve`), on libcurl.
//
// One probe (suite.h) becomes one ProbeRecord (signature.h):
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
// Reliability: connect errors, timeouts, dropped connections, HTTP 429 and 5xx, malformed JSON
// and responses cut short are retried up to max_retries times with exponential backoff
// (backoff_initial_s * 2^attempt, capped at backoff_max_s, times a jitter factor in [0.5, 1]
// drawn from std::mt19937_64(jitter_seed)); a Retry-After header (seconds) replaces the backoff,
// capped at backoff_max_s. Other HTTP 4xx answers are not retried: kInvalidArgument with the
// server's error message. After the last attempt: kIo for connection failures, timeouts and
// HTTP errors, kCorrupt for malformed or truncated responses; messages name the URL. The API key
// is sent as "Authorization: Bearer <key>" and never appears in messages. With rate_limit_rps > 0
// requests (retries included) start at least 1 / rate_limit_rps seconds apart (a token bucket
// holding one token).
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
#include "probes/signature.h"
#include "probes/suite.h"

namespace prov::probes {

struct EndpointOptions {
  std::string base_url;    // e.g. http://127.0.0.1:8000 ; "/v1" appended if absent
  std::string model_name;  // sent as "model"; omitted when empty (single-model servers)
  std::string api_key;     // sent as "Authorization: Bearer <key>" when non-empty
  bool chat = false;       // use /chat/completions instead of /completions
  int concurrency = 8;     // requests in flight in run_suite (1..256)
  double timeout_s = 60;   // whole request
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
};

class EndpointClient {
 public:
  ~EndpointClient();
  EndpointClient(const EndpointClient&) = delete;
  EndpointClient& operator=(const EndpointClient&) = delete;

  // Checks the options (kInvalidArgument naming the bad one: a base_url that is not http(s)://,
  // concurrency, timeouts, retries out of range). Sends nothing.
  static Result<std::unique_ptr<EndpointClient>> create(const EndpointOptions& options);

  // One probe -> one ProbeRecord with the given index (see the mapping above). Errors name the
  // probe and the URL. Thread-safe.
  Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index);

  // Runs the probes whose skip[i] is false (an empty `skip` skips none; otherwise it must have
  // one entry per probe) with up to `concurrency` requests in flight, calling on_record in
  // increasing index order (completions that arrive out of order are held back) and
  // on_progress(delivered, to_deliver) after each record. Stops at the first probe (in index
  // order) that fails after its retries and returns that error; records of lower index already
  // delivered stay delivered, and probes of higher index are not delivered. An error from
  // on_record stops the run too and is returned. Not reentrant for one client from several
  // threads at once (run_probe is).
  Status run_suite(const Suite& suite, const std::vector<bool>& skip,
                   const std::function<Status(const ProbeRecord&)>& on_record,
                   const std::function<void(size_t, size_t)>& on_progress = {});

  EndpointCounters counters() const;
  // The base URL requests go to, ending in "/v1" (no trailing slash).
  const std::string& api_base() const;

 private:
  struct Impl;
  explicit EndpointClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace prov::probes
