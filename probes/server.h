// A local model served over HTTP in the wire format of a common serving engine (`prov serve
// --dialect openai|vllm|sglang|tgi|llamacpp|anthropic`, probes/dialect.h), on cpp-httplib.
//
// openai (the default): GET /v1/models, POST /v1/completions, POST /v1/chat/completions,
// GET /health. Completions accept `prompt` (a string, or an array of token ids), `max_tokens`,
// `temperature` (0 = greedy), `seed`, `logprobs` (int, 0..max_top_logprobs), `echo`, `stop`
// (string or list; matched on the generated text), `return_tokens_as_token_ids` (tokens reported
// as "token_id:N", as vLLM does), and answer with the usual `choices[0].text` / `logprobs
// {tokens, token_logprobs, top_logprobs, text_offset}` / `usage` / `finish_reason`. Chat accepts
// `messages`, `max_tokens`, `temperature`, `seed`, `logprobs` (bool), `top_logprobs` (int), and
// formats the messages with the backend's chat template. Errors are JSON {"error": {"message",
// "type", "code"}} with 400 for a malformed request, 401 for a wrong API key, 404 for an unknown
// path or model, 408 for a request that did not arrive in time, 411 for a body without a length,
// 413 for an oversized body, 429 (with Retry-After) beyond rate_limit_rps, 503 (with
// Retry-After) when the server is saturated, 500 when the backend fails. With reasoning_model,
// chat refuses log-probabilities, `max_tokens` and a temperature other than 1 the way OpenAI's
// reasoning models do (400, code "unsupported_parameter" / "unsupported_value").
//
// The other dialects answer each engine's own routes, fields and error bodies (server.cpp and
// server_dialects.cpp document each; docs/probes.md has the table): vllm adds `prompt_logprobs`,
// `return_token_ids` and GET /version and refuses more than max_top_logprobs (vLLM's
// --max-logprobs) with vLLM's message; sglang serves POST /generate, GET /get_model_info and
// /get_server_info; tgi POST /generate, POST /generate_stream (server-sent events) and GET /info
// (top_n_tokens at most 5 unless max_top_logprobs says otherwise); llamacpp POST /completion
// (`stream` too) and GET /props; anthropic POST /v1/messages (`stream` too), with the key in
// `x-api-key` and an `anthropic-version` header required.
//
// Hostile clients (ServerOptions, "Limits"): every connection is read against a per-read timeout
// and a deadline for the whole request, on a thread of its own (up to max_connections), so slow
// clients hold no model slot; a declared oversize body is refused before it is read; chunked
// bodies are capped while they are read; a prompt too long (in bytes) for the context is refused
// before it is tokenized; at most `threads` requests run the model and max_queued_requests wait;
// stop() wakes every read at once. docs/probes.md ("prov serve") lists the limits.
//
// The model itself sits behind CompletionBackend, so this file needs no LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "model/tokenizers/tokenizer.h"
#include "probes/dialect.h"

namespace prov::probes {

struct TokenChoice {
  int32_t id = 0;
  float logprob = 0;
};

// One token of a completion (or of an echoed prompt): the token, its log-probability given
// everything before it, and the k most likely tokens at that position (most likely first; ties:
// lower id first).
struct StepInfo {
  int32_t id = 0;
  float logprob = 0;
  std::vector<TokenChoice> top;
  std::vector<TokenChoice> extra;  // the log-probabilities of CompletionRequest::extra_ids
};

struct BackendResult {
  // With echo: prompt tokens 1..n-1, each scored given the tokens before it (the first prompt
  // token has no log-probability; servers report null for it).
  std::vector<StepInfo> prompt_steps;
  std::vector<StepInfo> generated;
  bool stopped = false;  // true when generation ended on a stop id ("stop"), else "length"
};

struct CompletionRequest {
  std::vector<int32_t> prompt_ids;
  int max_tokens = 16;     // >= 0
  int top_k = 0;           // top alternatives to report per step (0 = none)
  bool echo = false;       // score the prompt tokens too
  double temperature = 0;  // 0 = greedy
  uint64_t seed = 0;
  std::vector<int32_t> stop_ids;
  // Ids whose log-probabilities to report at every step besides the top-k (SGLang's
  // token_ids_logprob), in this order.
  std::vector<int32_t> extra_ids;
};

// What the server needs from a model. Implementations must be safe to call from several threads
// at once (the server handles requests concurrently).
class CompletionBackend {
 public:
  virtual ~CompletionBackend() = default;
  virtual std::string model_name() const = 0;
  virtual const model::Tokenizer& tokenizer() const = 0;
  virtual int32_t context_length() const = 0;
  // The chat template text (tokenizer_config.json "chat_template"), or "" when there is none.
  virtual std::string chat_template() const = 0;
  // kInvalidArgument for a request the model cannot serve (ids out of range, too long a context);
  // other codes for failures of the model.
  virtual Result<BackendResult> complete(const CompletionRequest& request) = 0;
};

// A fault the server answers a request with instead of serving it (ServerOptions::fault): for
// tests of clients and for drills, always from the real server's code.
enum class ServerFault {
  kNone,
  kRateLimited,    // 429 with Retry-After: retry_after_s, the dialect's error body
  kServerError,    // 500, the dialect's error body
  kOverloaded,     // 503 with Retry-After (anthropic: 529 overloaded_error)
  kCutConnection,  // a 200 whose body stops part-way (the connection closes)
  kMalformedJson,  // a 200 whose body is not JSON
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;     // 0: pick a free port (Server::port() tells which)
  int threads = 8;  // requests that run the model (tokenizing included) at once
  size_t max_body_bytes = 1 << 20;
  // The most alternatives per position (vLLM's --max-logprobs, TGI's --max-top-n-tokens);
  // -1: the dialect's default (20; tgi 5; sglang and llamacpp 1000).
  int max_top_logprobs = -1;
  int max_tokens_limit = 4096;
  // non-empty: require "Authorization: Bearer <key>" (anthropic: "x-api-key: <key>")
  std::string api_key;
  Dialect dialect = Dialect::kOpenAI;
  std::string version;  // what the version routes report ("" = "prov <version>")
  // Requests to the model routes per second at most (a one-second window); more get 429 with
  // Retry-After (the seconds left in the window). 0 = no limit.
  int rate_limit_rps = 0;
  // openai chat answers as a reasoning model does (see above).
  bool reasoning_model = false;
  // Called with the model route and the number of the request to it (0, 1, ...) before each is
  // served; a fault other than kNone is answered instead. Must be thread-safe.
  std::function<ServerFault(const std::string& path, uint64_t n)> fault;

  // Limits (hostile clients). A request beyond one of them gets the status named, at once.
  // Connections served at once, each on its own thread (reading the request, waiting for a model
  // slot, writing the response); one more is answered 503 + Retry-After without being read.
  int max_connections = 64;
  // Requests waiting for one of the `threads` model slots; one more gets 503 + Retry-After.
  int max_queued_requests = 16;
  int retry_after_s = 1;  // the Retry-After of those 503s
  // The longest wait for the next bytes of a request, and the time from accept by which the
  // whole request (line, headers, body) must have arrived: 408 and closed after either. The
  // model's own time is not limited here (max_tokens_limit bounds it).
  int read_timeout_ms = 5000;
  int request_timeout_ms = 10000;
  int write_timeout_ms = 10000;  // writing one response to the client
  // Request line and headers (431 beyond). A body is limited by max_body_bytes: a larger
  // Content-Length is refused (413) before any of the body is read; a chunked body is read up to
  // the limit (413 past it); a body with neither length nor chunking is refused (411).
  size_t max_header_bytes = 64 << 10;
  // A text prompt (or the chat messages) longer than context_length() × this many bytes cannot
  // fit the context: 400 before tokenizing.
  int max_prompt_bytes_per_token = 32;
  // stop() cuts reads at once; a response being written gets this long to finish.
  int shutdown_grace_ms = 1000;
};

class Server {
 public:
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Binds and starts serving on a background thread; returns once the socket is listening.
  // kInvalidArgument for options out of range; kIo naming host:port when it cannot bind.
  // `backend` must outlive the server.
  static Result<std::unique_ptr<Server>> start(CompletionBackend& backend,
                                               const ServerOptions& options);
  int port() const;
  // Stops accepting, finishes the model calls in flight (their responses get shutdown_grace_ms
  // to be written), drops connections still sending their request and requests still queued
  // (503), joins the threads. Returns within about shutdown_grace_ms plus the longest model call
  // in flight, whatever the clients do. Idempotent.
  void stop();
  // Blocks until stop() is called from another thread (or a signal handler via stop()).
  void wait();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The chat template of a model directory (tokenizer_config.json "chat_template"), or "" when
// there is none or it cannot be read.
std::string read_chat_template(const std::string& model_path);

// Formats chat messages ({role, content}) with a chat template: the families recognised in the
// template text are ChatML (<|im_start|>, Qwen), Llama 3 (<|start_header_id|>), Llama 2 / Mistral
// ([INST]) and Zephyr (<|user|>); `bos`/`eos` are the tokenizer's strings. An empty template gives
// the plain fallback "User: ...\nAssistant:" lines. kUnsupported for a template of another family.
// The result ends with the assistant's turn opened (add_generation_prompt).
Result<std::string> apply_chat_template(
    const std::string& template_text,
    const std::vector<std::pair<std::string, std::string>>& messages, const std::string& bos,
    const std::string& eos);

}  // namespace prov::probes
