// EndpointClient (endpoint.h): the HTTP side over libcurl (retries, backoff, rate limit,
// counters, the budget, ordered delivery). What each engine is sent and answers:
// endpoint_dialects.cpp.
#include "probes/endpoint.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include "model/formats/config.h"
#include "probes/endpoint_internal.h"

namespace prov::probes {

namespace client {

namespace {

// A short, printable excerpt of an untrusted body for messages.
std::string excerpt(const std::string& body) {
  std::string out;
  for (size_t i = 0; i < body.size() && out.size() < 200; ++i) {
    unsigned char c = static_cast<unsigned char>(body[i]);
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  if (body.size() > 200) out += "...";
  return out;
}

uint64_t count_of(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

}  // namespace

// The error message in a server's error body: OpenAI {"error": {"message"}}, TGI {"error": "..."},
// Anthropic {"type": "error", "error": {"message"}}, vLLM {"message": ...}, FastAPI {"detail":
// ...}; else an excerpt of the body.
std::string server_message(const std::string& body) {
  auto parsed = model::parse_json_bounded(body, "error body");
  if (parsed.is_ok() && parsed->is_object()) {
    const json& j = parsed.value();
    auto str = [](const json& v) -> std::optional<std::string> {
      if (v.is_string()) return v.get<std::string>();
      if (!v.is_null()) return v.dump(-1, ' ', true, json::error_handler_t::replace);
      return std::nullopt;
    };
    if (auto it = j.find("error"); it != j.end()) {
      if (it->is_object() && it->contains("message")) {
        if (auto s = str((*it)["message"])) return excerpt(*s);
      }
      if (auto s = str(*it)) return excerpt(*s);
    }
    for (const char* key : {"message", "detail"}) {
      if (auto it = j.find(key); it != j.end()) {
        if (auto s = str(*it)) return excerpt(*s);
      }
    }
  }
  return body.empty() ? "(empty body)" : excerpt(body);
}

uint64_t reported_tokens(const json& a) {
  if (!a.is_object()) return 0;
  if (auto it = a.find("usage"); it != a.end() && it->is_object()) {
    if (uint64_t t = count_of(*it, "total_tokens")) return t;
    return count_of(*it, "prompt_tokens") + count_of(*it, "completion_tokens") +
           count_of(*it, "input_tokens") + count_of(*it, "output_tokens");
  }
  if (auto it = a.find("meta_info"); it != a.end()) {
    return count_of(*it, "prompt_tokens") + count_of(*it, "completion_tokens");
  }
  if (a.contains("tokens_evaluated")) {
    return count_of(a, "tokens_evaluated") + count_of(a, "tokens_predicted");
  }
  if (auto it = a.find("details"); it != a.end() && it->is_object()) {
    uint64_t prefill =
        it->contains("prefill") && (*it)["prefill"].is_array() ? (*it)["prefill"].size() : 0;
    return prefill + count_of(*it, "generated_tokens");
  }
  return 0;
}

}  // namespace client

namespace {

using client::Headers;
using client::Refusal;
using client::Validator;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::once_flag g_curl_once;
CURLcode g_curl_init = CURLE_OK;

std::string lower_ascii(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Transfer {
  std::string body;
  size_t limit = 0;
  bool too_large = false;
  std::optional<double> retry_after;
  Headers headers;
};

size_t write_cb(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  if (t->body.size() + n > t->limit) {
    t->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  t->body.append(data, n);
  return n;
}

std::string trim(const std::string& v) {
  size_t b = v.find_first_not_of(" \t");
  size_t e = v.find_last_not_of(" \t\r\n");
  if (b == std::string::npos || e == std::string::npos || e < b) return "";
  return v.substr(b, e - b + 1);
}

size_t header_cb(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  std::string line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response begins
    t->retry_after.reset();
    t->headers.clear();
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos || t->headers.size() >= 128) return n;
  const std::string name = lower_ascii(line.substr(0, colon));
  const std::string v = trim(line.substr(colon + 1));
  if (v.size() <= 1024) t->headers[name] = v;
  // Retry-After in seconds only (an HTTP date is ignored: the backoff applies then).
  if (name == "retry-after" && !v.empty() && v.size() < 16 &&
      v.find_first_not_of("0123456789.") == std::string::npos) {
    char* end = nullptr;
    double s = std::strtod(v.c_str(), &end);
    if (end != nullptr && *end == '\0' && std::isfinite(s) && s >= 0) t->retry_after = s;
  }
  return n;
}

// What one attempt came to.
struct Attempt {
  enum Kind { kOk, kRetry, kFatal } kind = kOk;
  Status status;  // for kRetry / kFatal
  std::optional<double> retry_after;
  json body;  // for kOk
  long http = 0;
  std::string raw;  // the body as received (refusals)
  Headers headers;
};

// libcurl handles owned by unique_ptr (STYLE.md: C handles live in unique_ptr with deleters).
struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// Appends one header line; the list keeps ownership in `list`.
void add_header(SlistPtr* list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list->get(), line.c_str());
  if (grown != nullptr) {
    (void)list->release();
    list->reset(grown);
  }
}

// The calls and tokens of the probe running on this thread (run_suite), or null.
struct ProbeUsage {
  uint64_t calls = 0;
  uint64_t tokens = 0;
};
thread_local ProbeUsage* t_usage = nullptr;

}  // namespace

struct EndpointClient::Impl final : public client::Wire {
  EndpointOptions opts;
  std::string root_;  // "http://host:port"
  std::string base;   // root_ + "/v1"
  std::unique_ptr<client::EngineClient> engine;
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> tokens{0};

  // The budget: what finished probes and discover() used, and what running probes reserved.
  std::mutex budget_mu;
  uint64_t committed_calls = 0, committed_tokens = 0, reserved_calls = 0, reserved_tokens = 0;

  std::mutex handles_mu;
  std::vector<CurlPtr> idle;

  std::mutex rng_mu;
  std::mt19937_64 rng;

  std::mutex rate_mu;
  Clock::time_point next_slot{};

  const EndpointOptions& options() const override { return opts; }
  const std::string& root() const override { return root_; }
  const std::string& api_base() const override { return base; }

  CurlPtr acquire() {
    {
      std::lock_guard<std::mutex> lock(handles_mu);
      if (!idle.empty()) {
        CurlPtr h = std::move(idle.back());
        idle.pop_back();
        return h;
      }
    }
    return CurlPtr(curl_easy_init());
  }
  void release(CurlPtr h) {
    std::lock_guard<std::mutex> lock(handles_mu);
    idle.push_back(std::move(h));
  }

  // Token bucket holding one token: each request takes the next slot 1/rps after the previous.
  void rate_limit() {
    if (opts.rate_limit_rps <= 0) return;
    Clock::time_point slot;
    {
      std::lock_guard<std::mutex> lock(rate_mu);
      auto now = Clock::now();
      slot = std::max(now, next_slot);
      next_slot = slot + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(1.0 / opts.rate_limit_rps));
    }
    std::this_thread::sleep_until(slot);
  }

  double backoff(int attempt, const std::optional<double>& retry_after) {
    if (retry_after) return std::min(*retry_after, opts.backoff_max_s);
    double d =
        std::min(opts.backoff_max_s, opts.backoff_initial_s * std::pow(2.0, std::min(attempt, 60)));
    double u;
    {
      std::lock_guard<std::mutex> lock(rng_mu);
      u = std::uniform_real_distribution<double>(0.5, 1.0)(rng);
    }
    return d * u;
  }

  // One HTTP exchange: a POST of `payload`, or a GET when `payload` is null.
  Attempt attempt(const std::string& url, const std::string* payload) {
    Attempt a;
    CurlPtr handle = acquire();
    CURL* h = handle.get();
    if (h == nullptr) {
      a.kind = Attempt::kFatal;
      a.status = internal_error("curl_easy_init failed");
      return a;
    }
    curl_easy_reset(h);
    Transfer t;
    t.limit = opts.max_response_bytes;
    char errbuf[CURL_ERROR_SIZE] = {0};
    SlistPtr headers;
    if (payload != nullptr) add_header(&headers, "Content-Type: application/json");
    add_header(&headers, "Accept: application/json");
    if (opts.dialect == Dialect::kAnthropic) {
      add_header(&headers, "anthropic-version: " + opts.anthropic_version);
      if (!opts.api_key.empty()) add_header(&headers, "x-api-key: " + opts.api_key);
    } else if (!opts.api_key.empty()) {
      add_header(&headers, "Authorization: Bearer " + opts.api_key);
    }
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    if (payload != nullptr) {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload->data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload->size()));
    } else {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(opts.connect_timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "prov");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    ++requests;
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    headers.reset();
    // Keep the handle (and its connection) only after a clean exchange; else it is cleaned up.
    if (rc == CURLE_OK) release(std::move(handle));
    const std::string what = (payload != nullptr ? "POST " : "GET ") + url;
    a.http = code;
    a.headers = std::move(t.headers);
    if (rc != CURLE_OK) {
      std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
      switch (rc) {
        case CURLE_WRITE_ERROR:
          a.kind = Attempt::kFatal;
          a.status = t.too_large ? corrupt(what + ": response larger than the " +
                                           std::to_string(opts.max_response_bytes) + "-byte limit")
                                 : io_error(what + ": " + detail);
          return a;
        case CURLE_PARTIAL_FILE:
        case CURLE_BAD_CONTENT_ENCODING:
          a.kind = Attempt::kRetry;
          a.status = corrupt(what + ": response cut short (" + detail + ")");
          return a;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
          a.kind = Attempt::kRetry;
          a.status = io_error(what + ": cannot connect (" + detail + ")");
          return a;
        case CURLE_OPERATION_TIMEDOUT:
          a.kind = Attempt::kRetry;
          a.status = io_error(what + ": timed out (" + detail + ")");
          return a;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR:
          a.kind = Attempt::kRetry;
          a.status = io_error(what + ": connection failed (" + detail + ")");
          return a;
        default:
          a.kind = Attempt::kFatal;
          a.status = io_error(what + ": " + detail);
          return a;
      }
    }
    if (code == 429 || code >= 500) {
      a.kind = Attempt::kRetry;
      a.retry_after = t.retry_after;
      a.status =
          io_error(what + ": HTTP " + std::to_string(code) + ": " + client::server_message(t.body));
      return a;
    }
    if (code < 200 || code >= 300) {
      a.kind = Attempt::kFatal;
      std::string hint = (code == 401 || code == 403) ? " (check the API key)" : "";
      a.status = invalid_argument(what + ": HTTP " + std::to_string(code) + hint + ": " +
                                  client::server_message(t.body));
      a.raw = std::move(t.body);
      return a;
    }
    auto parsed = model::parse_json_bounded(t.body, what + ": response");
    if (!parsed.is_ok()) {
      a.kind = Attempt::kRetry;
      a.status =
          corrupt(parsed.status().message() + " (body: " + client::server_message(t.body) + ")");
      return a;
    }
    a.body = std::move(parsed).value();
    return a;
  }

  // One call to the engine with retries; counted once by the budget.
  Result<json> call(const std::string& path, const std::string* payload, const Validator& validate,
                    Refusal* refusal, Headers* headers) {
    const std::string url = root_ + path;
    ++calls;
    if (t_usage != nullptr) {
      ++t_usage->calls;
    } else {
      std::lock_guard<std::mutex> lock(budget_mu);
      ++committed_calls;
    }
    Status last;
    for (int i = 0; i <= opts.max_retries; ++i) {
      if (i > 0) ++retries;
      rate_limit();
      Attempt a = attempt(url, payload);
      if (a.kind == Attempt::kOk) {
        Status v = validate ? validate(a.body) : Status::ok();
        if (v.is_ok()) {
          const uint64_t used = client::reported_tokens(a.body);
          tokens += used;
          if (t_usage != nullptr) {
            t_usage->tokens += used;
          } else {
            std::lock_guard<std::mutex> lock(budget_mu);
            committed_tokens += used;
          }
          if (headers != nullptr) *headers = std::move(a.headers);
          return std::move(a.body);
        }
        a.kind = Attempt::kRetry;
        a.status = corrupt((payload != nullptr ? "POST " : "GET ") + url +
                           ": unexpected response: " + v.message());
      }
      if (a.kind == Attempt::kFatal) {
        if (refusal != nullptr && a.http >= 400) {
          refusal->http_status = static_cast<int>(a.http);
          auto parsed = model::parse_json_bounded(a.raw, "error body");
          refusal->body = parsed.is_ok() ? std::move(parsed).value() : json();
          refusal->message = client::server_message(a.raw);
        }
        return a.status;
      }
      last = a.status;
      if (i < opts.max_retries) {
        double d = backoff(i, a.retry_after);
        std::this_thread::sleep_for(std::chrono::duration<double>(d));
      }
    }
    return Status(last.code(), last.message() + " (gave up after " +
                                   std::to_string(opts.max_retries + 1) + " attempts)");
  }

  Result<json> post(const std::string& path, const json& request, const Validator& validate,
                    Refusal* refusal, Headers* headers) override {
    const std::string payload = request.dump(-1, ' ', false, json::error_handler_t::replace);
    return call(path, &payload, validate, refusal, headers);
  }

  Result<json> get(const std::string& path, Headers* headers) override {
    return call(path, nullptr, nullptr, nullptr, headers);
  }

  // Reserves a probe's requests and tokens against the budget; kInvalidArgument when they do not
  // fit.
  Status reserve(const Probe& probe, uint32_t index, const client::ProbeCost& c) {
    const uint64_t t = c.prompt_tokens + c.completion_tokens;
    std::lock_guard<std::mutex> lock(budget_mu);
    auto over = [&](const char* flag, uint64_t max, uint64_t used, uint64_t need,
                    const char* unit) {
      return invalid_argument(
          "probe " + std::to_string(index) + " ('" + probe.id + "') would pass the budget " + flag +
          " " + std::to_string(max) + " (" + std::to_string(used) + " " + unit +
          " used or reserved, it needs " + std::to_string(need) +
          "); the probes before it are kept and none after it was sent: raise the budget and "
          "collect again to complete the file (completed probes are not requested again)");
    };
    if (opts.max_requests > 0 &&
        committed_calls + reserved_calls + c.requests > opts.max_requests) {
      return over("--max-requests", opts.max_requests, committed_calls + reserved_calls, c.requests,
                  "requests");
    }
    if (opts.max_tokens_total > 0 &&
        committed_tokens + reserved_tokens + t > opts.max_tokens_total) {
      return over("--max-tokens-total", opts.max_tokens_total, committed_tokens + reserved_tokens,
                  t, "tokens");
    }
    reserved_calls += c.requests;
    reserved_tokens += t;
    return Status::ok();
  }

  // Replaces a reservation with what the probe used (its estimate where the engine reported no
  // tokens).
  void settle(const client::ProbeCost& c, const ProbeUsage& used) {
    const uint64_t t = c.prompt_tokens + c.completion_tokens;
    std::lock_guard<std::mutex> lock(budget_mu);
    reserved_calls -= c.requests;
    reserved_tokens -= t;
    committed_calls += used.calls;
    const uint64_t charged = used.tokens > 0 || used.calls == 0 ? used.tokens : t;
    committed_tokens += charged;
    if (used.tokens == 0) tokens += charged;
  }
};

EndpointClient::EndpointClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EndpointClient::~EndpointClient() = default;

Result<std::unique_ptr<EndpointClient>> EndpointClient::create(const EndpointOptions& options) {
  std::string base = options.base_url;
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0) {
    return invalid_argument("endpoint URL '" + base + "' must start with http:// or https://");
  }
  if (base.find_first_of(" \t\r\n") != std::string::npos) {
    return invalid_argument("endpoint URL '" + base + "' contains whitespace");
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.size() < 3 || base.compare(base.size() - 3, 3, "/v1") != 0) base += "/v1";
  const std::string root = base.substr(0, base.size() - 3);
  auto bad = [](const std::string& what) { return invalid_argument("endpoint option " + what); };
  if (options.concurrency < 1 || options.concurrency > 256) {
    return bad("concurrency must be between 1 and 256");
  }
  if (!(options.timeout_s > 0) || !(options.connect_timeout_s > 0) || options.timeout_s > 86400 ||
      options.connect_timeout_s > 86400) {
    return bad("timeouts must be between 0 and 86400 seconds");
  }
  if (options.max_retries < 0 || options.max_retries > 100) {
    return bad("max_retries must be between 0 and 100");
  }
  if (!(options.backoff_initial_s >= 0) || !(options.backoff_max_s >= 0) ||
      !std::isfinite(options.backoff_initial_s) || !std::isfinite(options.backoff_max_s)) {
    return bad("backoff times must be finite and not negative");
  }
  if (!(options.rate_limit_rps >= 0) || !std::isfinite(options.rate_limit_rps)) {
    return bad("rate_limit_rps must be finite and not negative");
  }
  if (options.api_key.find_first_of("\r\n") != std::string::npos ||
      options.anthropic_version.find_first_of("\r\n") != std::string::npos) {
    return bad("api_key and anthropic_version must not contain a line break");
  }
  if (options.dialect != Dialect::kOpenAI && options.dialect != Dialect::kVllm && options.chat) {
    return bad(std::string("chat applies to the openai and vllm dialects, not ") +
               dialect_name(options.dialect));
  }
  std::call_once(g_curl_once, [] { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (g_curl_init != CURLE_OK) {
    return internal_error(std::string("curl_global_init failed: ") +
                          curl_easy_strerror(g_curl_init));
  }
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->base = base;
  impl->root_ = root;
  impl->rng.seed(options.jitter_seed);
  impl->engine = client::make_engine_client(*impl);
  return std::unique_ptr<EndpointClient>(new EndpointClient(std::move(impl)));
}

Result<EngineInfo> EndpointClient::discover(uint32_t want_top_k) {
  return impl_->engine->discover(want_top_k);
}

CostEstimate EndpointClient::estimate(const Suite& suite, const std::vector<bool>& skip) const {
  CostEstimate e;
  uint32_t top = 0;
  for (size_t i = 0; i < suite.probes.size(); ++i) {
    const Probe& p = suite.probes[i];
    top = std::max<uint32_t>(top, static_cast<uint32_t>(std::max(0, p.top_k)));
    if (i < skip.size() && skip[i]) continue;
    const client::ProbeCost c = impl_->engine->cost(p);
    ++e.probes;
    e.requests += c.requests;
    e.prompt_tokens += c.prompt_tokens;
    e.completion_tokens += c.completion_tokens;
  }
  if (e.probes > 0) e.requests += impl_->engine->discover_requests(top);
  return e;
}

Result<ProbeRecord> EndpointClient::run_probe(const Probe& probe, uint32_t index) {
  const bool has_text = probe.text.has_value();
  if (has_text == probe.ids.has_value()) {
    return invalid_argument("exactly one of text and ids must be set")
        .with_context("probe " + std::to_string(index) + " ('" + probe.id + "')");
  }
  auto r = impl_->engine->run_probe(probe, index);
  if (!r.is_ok()) {
    return r.status().with_context("probe " + std::to_string(index) + " ('" + probe.id + "')");
  }
  return r;
}

Status EndpointClient::run_suite(const Suite& suite, const std::vector<bool>& skip,
                                 const std::function<Status(const ProbeRecord&)>& on_record,
                                 const std::function<void(size_t, size_t)>& on_progress) {
  const size_t n = suite.probes.size();
  if (!skip.empty() && skip.size() != n) {
    return invalid_argument("skip has " + std::to_string(skip.size()) + " entries for " +
                            std::to_string(n) + " probes");
  }
  for (const Probe& p : suite.probes) {
    if (p.full_logprobs) {
      return unsupported("probe " + p.id +
                         " asks for full_logprobs (the whole next-token distribution): an "
                         "endpoint returns at most its top-k log-probabilities; collect it from "
                         "the checkpoint");
    }
  }
  auto skipped = [&](size_t i) { return !skip.empty() && skip[i]; };
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i) {
    if (!skipped(i)) todo.push_back(i);
  }
  if (todo.empty()) return Status::ok();

  std::mutex mu;
  size_t next_pick = 0;         // into todo
  size_t next_deliver = 0;      // into todo
  size_t failed_at = SIZE_MAX;  // position in todo of the lowest failure
  Status failure;
  bool stop = false;  // on_record failed
  std::map<size_t, ProbeRecord> ready;

  auto deliver_ready = [&]() {  // mu held
    while (!stop && next_deliver < todo.size() && next_deliver < failed_at) {
      auto it = ready.find(next_deliver);
      if (it == ready.end()) break;
      Status s = on_record(it->second);
      ready.erase(it);
      if (!s.is_ok()) {
        stop = true;
        failure = s;
        break;
      }
      ++next_deliver;
      if (on_progress) on_progress(next_deliver, todo.size());
    }
  };

  auto worker = [&]() {
    for (;;) {
      size_t pos;
      client::ProbeCost cost;
      {
        // Picked and reserved in probe order: a probe past the budget stops every later one.
        std::lock_guard<std::mutex> lock(mu);
        if (stop || failed_at != SIZE_MAX || next_pick >= todo.size()) return;
        pos = next_pick++;
        const Probe& p = suite.probes[todo[pos]];
        cost = impl_->engine->cost(p);
        Status budget = impl_->reserve(p, static_cast<uint32_t>(todo[pos]), cost);
        if (!budget.is_ok()) {
          failed_at = pos;
          if (!stop) failure = budget;
          deliver_ready();
          return;
        }
      }
      size_t index = todo[pos];
      ProbeUsage usage;
      t_usage = &usage;
      auto r = run_probe(suite.probes[index], static_cast<uint32_t>(index));
      t_usage = nullptr;
      impl_->settle(cost, usage);
      std::lock_guard<std::mutex> lock(mu);
      if (!r.is_ok()) {
        if (pos < failed_at) {
          failed_at = pos;
          if (!stop) failure = r.status();
        }
      } else {
        ready.emplace(pos, std::move(r).value());  // (after a failure: delivered at the end)
      }
      deliver_ready();
    }
  };

  const size_t threads = std::min(todo.size(), static_cast<size_t>(impl_->opts.concurrency));
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (size_t t = 0; t + 1 < threads; ++t) {
    try {
      pool.emplace_back(worker);
    } catch (const std::exception&) {
      break;  // fewer threads: the calling thread still works through the probes
    }
  }
  worker();
  for (auto& t : pool) t.join();
  {
    std::lock_guard<std::mutex> lock(mu);
    deliver_ready();
    // Probes after the failed one that had completed are delivered too, in index order, so that
    // a resumed collection does not ask (or pay) for them again.
    size_t delivered = next_deliver;
    for (auto it = ready.begin(); !stop && failed_at != SIZE_MAX && it != ready.end(); ++it) {
      if (it->first <= failed_at) continue;
      Status s = on_record(it->second);
      if (!s.is_ok()) {
        stop = true;
        failure = s;
        break;
      }
      if (on_progress) on_progress(++delivered, todo.size());
    }
  }
  if (stop || failed_at != SIZE_MAX) return failure;
  return Status::ok();
}

EndpointCounters EndpointClient::counters() const {
  EndpointCounters c;
  c.requests = impl_->requests.load();
  c.retries = impl_->retries.load();
  c.calls = impl_->calls.load();
  c.tokens = impl_->tokens.load();
  return c;
}

const std::string& EndpointClient::api_base() const {
  return impl_->base;
}

const std::string& EndpointClient::root() const {
  return impl_->root_;
}

}  // namespace prov::probes
