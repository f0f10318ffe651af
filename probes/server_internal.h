// Private to probes/server*.cpp: what the dialect handlers (server_dialects.cpp) share with the
// server's core (server.cpp): text helpers, the answer of a generation, error bodies, and the
// Host through which a handler reaches the model, its slots and the options.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "probes/server.h"

namespace prov::probes::wire {

using nlohmann::json;

struct HttpError {
  int status;
  std::string message;
};

// Unicode code points of `s` (bytes that are not UTF-8 continuation bytes).
size_t code_points(const std::string& s);
// JSON text with round-trippable floats; bytes that are not UTF-8 become U+FFFD.
std::string dump(const json& j);
// The text each token adds to the decoding of `ids` (the pieces concatenate to the whole text).
Result<std::vector<std::string>> token_pieces(const model::Tokenizer& tok,
                                              const std::vector<int32_t>& ids);
// Leading and trailing tokens encode(text, true) added around encode(text, false).
std::pair<size_t, size_t> added_token_span(const std::vector<int32_t>& full,
                                           const std::vector<int32_t>& plain);
// The id decoded alone (special tokens rendered), or "token_id:N" when `as_ids`.
std::string token_string(const model::Tokenizer& tok, int32_t id, bool as_ids);
json bytes_of(const std::string& s);

// A generated sequence after stop handling.
struct Generated {
  std::vector<const StepInfo*> steps;  // reported tokens (a final stop id included, its text not)
  std::vector<size_t> offsets;         // code-point offset of each within `text`
  std::string text;
  bool stopped = false;
  bool stopped_on_id = false;  // the last step is a stop id (EOS)
  std::string stop_string;     // the stop string that cut the text, if any
};
Result<Generated> finish_generation(const model::Tokenizer& tok,
                                    const std::vector<int32_t>& prompt_ids, const BackendResult& r,
                                    const std::vector<int32_t>& stop_ids,
                                    const std::vector<std::string>& stop_strings);

// The error body of `dialect` for an HTTP status (docs/probes.md, "prov serve").
std::string error_body(Dialect dialect, int status, const std::string& message);

// Field readers: a missing or null field keeps the default; a wrong type or range is a 400
// naming the field.
std::optional<HttpError> read_int(const json& body, const char* key, int64_t lo, int64_t hi,
                                  int64_t* out);
std::optional<HttpError> read_bool(const json& body, const char* key, bool* out);
std::optional<HttpError> read_temperature(const json& body, const char* key, double max,
                                          double* out);
// A string or a list of at most 16 strings of 1..1024 bytes each.
std::optional<HttpError> read_stop(const json& body, const char* key,
                                   std::vector<std::string>* out);

// What a dialect handler needs from the server.
class Host {
 public:
  virtual ~Host() = default;
  virtual CompletionBackend& model() = 0;
  virtual const ServerOptions& settings() const = 0;
  // The dialect's error body with `status`.
  virtual void fail(httplib::Response& res, int status, const std::string& message) = 0;
  // Parses the body as a bounded JSON object; `model` (when present) must name the backend.
  virtual std::optional<HttpError> parse_body(const std::string& text, json* body) = 0;
  // A text of `bytes` bytes that cannot fit the context is a 400.
  virtual std::optional<HttpError> check_text_fits(size_t bytes, const char* what) const = 0;
  // Runs `fn` holding a model slot; answers 503 (Retry-After) and returns false when none is
  // free.
  virtual bool with_slot(httplib::Response& res, const std::function<void()>& fn) = 0;
  virtual std::string new_id(const char* prefix) = 0;
  // The tokenizer's end-of-sequence id (and the chat end markers when `chat`), unless ignore_eos.
  virtual std::vector<int32_t> stop_ids(bool ignore_eos, bool chat) const = 0;
  // The most alternatives per position a request may ask for.
  virtual int top_cap() const = 0;
  // The version the server reports.
  virtual std::string version() const = 0;
};

// Server-sent events written once the whole answer is known (the wire format of an engine that
// streams; the events carry what the engine would have sent one by one). Each entry is a
// complete event ("event: x\ndata: {...}\n\n" or "data: {...}\n\n").
void send_events(httplib::Response& res, std::vector<std::string> events);

// The native dialects (server_dialects.cpp): POST handlers given the body text, and the GET
// routes that describe the server.
void sglang_generate(Host& host, const std::string& body, httplib::Response& res);
void tgi_generate(Host& host, const std::string& body, httplib::Response& res, bool stream);
void llamacpp_completion(Host& host, const std::string& body, httplib::Response& res);
void anthropic_messages(Host& host, const std::string& body, httplib::Response& res);
json server_description(Host& host, const std::string& path);  // GET /version, /info, ...

// The POST paths of a dialect, and its GET paths that describe the server (besides /health).
std::vector<std::string> post_paths(Dialect dialect);
std::vector<std::string> info_paths(Dialect dialect);

}  // namespace prov::probes::wire
