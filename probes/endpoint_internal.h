// Private to probes/endpoint*.cpp: the HTTP side of the endpoint client (endpoint.cpp: retries,
// backoff, rate limit, counters) as the engine clients (endpoint_dialects.cpp: one per dialect,
// the request fields and answer shapes) use it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "probes/endpoint.h"

namespace prov::probes::client {

using nlohmann::json;

// Structural check of a 2xx answer (a failure is retried like malformed JSON).
using Validator = std::function<Status(const json&)>;

// An answer the engine refused (HTTP 4xx other than 429; not retried), for clients that adapt to
// refusals (a cap on alternatives, a parameter a reasoning model does not take).
struct Refusal {
  int http_status = 0;
  json body;            // the error body, parsed (null when it is not JSON)
  std::string message;  // the error message in it (endpoint.cpp's reading of error bodies)
};

using Headers = std::map<std::string, std::string>;  // names in lower case

class Wire {
 public:
  virtual ~Wire() = default;
  virtual const EndpointOptions& options() const = 0;
  virtual const std::string& root() const = 0;      // "http://host:port" (no trailing slash)
  virtual const std::string& api_base() const = 0;  // root() + "/v1"
  // POSTs `request` to root() + path, retrying as endpoint.h describes. A refusal also fills
  // `refusal` when non-null; `headers` (when non-null) gets the answer's headers.
  virtual Result<json> post(const std::string& path, const json& request, const Validator& validate,
                            Refusal* refusal = nullptr, Headers* headers = nullptr) = 0;
  // GETs root() + path (a JSON answer), with the same retries.
  virtual Result<json> get(const std::string& path, Headers* headers = nullptr) = 0;
};

// Requests and estimated tokens of one probe.
struct ProbeCost {
  uint64_t requests = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
};

// One dialect's requests and answers. Thread-safe after discover().
class EngineClient {
 public:
  virtual ~EngineClient() = default;
  virtual Result<EngineInfo> discover(uint32_t want_top_k) = 0;
  virtual Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index) = 0;
  virtual ProbeCost cost(const Probe& probe) const = 0;
  // The requests discover() sends (for estimates).
  virtual uint64_t discover_requests(uint32_t want_top_k) const = 0;
};

std::unique_ptr<EngineClient> make_engine_client(Wire& wire);

// The error message in an engine's error body: {"error": {"message"}}, {"error": "..."},
// {"message"}, {"detail"}; else a printable excerpt of the body.
std::string server_message(const std::string& body);
// Tokens an answer says it used (usage, meta_info, tokens_evaluated + tokens_predicted, TGI's
// details); 0 when it says nothing.
uint64_t reported_tokens(const json& answer);

}  // namespace prov::probes::client
