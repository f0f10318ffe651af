// EndpointClient (endpoint.h): OpenAI-compatible endpoints over libcurl.
#include "probes/endpoint.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include "model/formats/config.h"

namespace prov::probes {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

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

// The error message in a server's error body: OpenAI {"error": {"message"}}, TGI {"error": "..."},
// FastAPI {"detail": ...}, {"message": ...}; else an excerpt of the body.
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

std::once_flag g_curl_once;
CURLcode g_curl_init = CURLE_OK;

size_t write_cb(char* data, size_t size, size_t nmemb, void* user);
size_t header_cb(char* data, size_t size, size_t nmemb, void* user);

struct Transfer {
  std::string body;
  size_t limit = 0;
  bool too_large = false;
  std::optional<double> retry_after;
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

size_t header_cb(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  std::string line(data, n);
  if (line.rfind("HTTP/", 0) == 0) t->retry_after.reset();  // a new response begins
  size_t colon = line.find(':');
  if (colon != std::string::npos && lower(line.substr(0, colon)) == "retry-after") {
    std::string v = line.substr(colon + 1);
    size_t b = v.find_first_not_of(" \t");
    size_t e = v.find_last_not_of(" \t\r\n");
    if (b != std::string::npos && e != std::string::npos && e >= b) {
      v = v.substr(b, e - b + 1);
      // Seconds only (an HTTP date is ignored: the backoff applies then).
      if (!v.empty() && v.size() < 16 && v.find_first_not_of("0123456789.") == std::string::npos) {
        char* end = nullptr;
        double s = std::strtod(v.c_str(), &end);
        if (end != nullptr && *end == '\0' && std::isfinite(s) && s >= 0) t->retry_after = s;
      }
    }
  }
  return n;
}

// What one attempt came to.
struct Attempt {
  enum Kind { kOk, kRetry, kFatal } kind = kOk;
  Status status;  // for kRetry / kFatal
  std::optional<double> retry_after;
  json body;  // for kOk
};

// Structural check of a response (retried when it fails: a server glitch).
using Validator = std::function<Status(const json&)>;

bool is_num(const json& j) {
  return j.is_number();
}

float as_float(const json& j) {
  return static_cast<float>(j.get<double>());
}

// One top-alternatives entry before sorting.
struct Alt {
  std::optional<int32_t> id;
  std::string token;
  bool has_token = true;
  float logprob = 0;
};

std::optional<int32_t> token_id_key(const std::string& key) {
  const std::string prefix = "token_id:";
  if (key.rfind(prefix, 0) != 0 || key.size() == prefix.size() || key.size() > prefix.size() + 10) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (size_t i = prefix.size(); i < key.size(); ++i) {
    if (key[i] < '0' || key[i] > '9') return std::nullopt;
    v = v * 10 + (key[i] - '0');
  }
  if (v > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(v);
}

// Sorts (most likely first; ties by id when every entry has one, else by token) and fills a TopK:
// ids when every entry has one, tokens when every entry has a real token string.
TopK make_topk(std::vector<Alt> alts, size_t k) {
  bool all_ids = !alts.empty(), all_tokens = !alts.empty();  // (empty: an empty TopK)
  for (const auto& a : alts) {
    all_ids = all_ids && a.id.has_value();
    all_tokens = all_tokens && a.has_token;
  }
  std::sort(alts.begin(), alts.end(), [&](const Alt& a, const Alt& b) {
    if (a.logprob != b.logprob) return a.logprob > b.logprob;
    if (all_ids) return *a.id < *b.id;
    return a.token < b.token;
  });
  if (alts.size() > k) alts.resize(k);
  TopK t;
  for (const auto& a : alts) {
    if (all_ids) t.ids.push_back(*a.id);
    if (all_tokens) t.tokens.push_back(a.token);
    t.logprobs.push_back(a.logprob);
  }
  if (!all_ids && !all_tokens) {  // mixed "token_id:N" and strings: keep the raw keys
    for (const auto& a : alts)
      t.tokens.push_back(a.id ? "token_id:" + std::to_string(*a.id) : a.token);
  }
  return t;
}

// Completions top alternatives at one step: `ids_entry` (top_logprobs_ids[i], may be null) wins
// over the {token: logprob} object `dict`.
Result<TopK> completion_top(const json& dict, const json* ids_entry, size_t k,
                            const std::string& where) {
  std::vector<Alt> alts;
  if (ids_entry != nullptr && ids_entry->is_array()) {
    for (const auto& e : *ids_entry) {
      if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer() ||
          !e.contains("logprob") || !is_num(e["logprob"])) {
        return corrupt(where + ": top_logprobs_ids entries must be {id, logprob}");
      }
      Alt a;
      int64_t id = e["id"].get<int64_t>();
      if (id < 0 || id > INT32_MAX) return corrupt(where + ": token id out of range");
      a.id = static_cast<int32_t>(id);
      a.logprob = as_float(e["logprob"]);
      if (e.contains("token") && e["token"].is_string()) {
        a.token = e["token"].get<std::string>();
      } else {
        a.has_token = false;
      }
      alts.push_back(std::move(a));
    }
    return make_topk(std::move(alts), k);
  }
  if (dict.is_null()) return TopK{};
  if (!dict.is_object()) return corrupt(where + ": top_logprobs entry is not an object");
  for (const auto& [key, value] : dict.items()) {
    if (!is_num(value))
      return corrupt(where + ": top_logprobs value for '" + excerpt(key) + "' is not a number");
    Alt a;
    a.logprob = as_float(value);
    a.id = token_id_key(key);
    if (a.id) {
      a.has_token = false;
    } else {
      a.token = key;
    }
    alts.push_back(std::move(a));
  }
  return make_topk(std::move(alts), k);
}

Status check_completion(const json& j, bool need_logprob_arrays) {
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty() || !j["choices"][0].is_object()) {
    return corrupt("response has no choices[0]");
  }
  const json& c = j["choices"][0];
  if (c.contains("text") && !c["text"].is_string() && !c["text"].is_null()) {
    return corrupt("choices[0].text is not a string");
  }
  if (!c.contains("logprobs") || c["logprobs"].is_null()) {
    return need_logprob_arrays ? corrupt("choices[0].logprobs is missing") : Status::ok();
  }
  const json& lp = c["logprobs"];
  if (!lp.is_object()) return corrupt("choices[0].logprobs is not an object");
  auto arr = [&](const char* key, bool required) -> Status {
    if (!lp.contains(key) || lp[key].is_null()) {
      return required ? corrupt(std::string("choices[0].logprobs.") + key + " is missing")
                      : Status::ok();
    }
    if (!lp[key].is_array()) {
      return corrupt(std::string("choices[0].logprobs.") + key + " is not a list");
    }
    return Status::ok();
  };
  PROV_RETURN_IF_ERROR(arr("top_logprobs", false));
  PROV_RETURN_IF_ERROR(arr("top_logprobs_ids", false));
  PROV_RETURN_IF_ERROR(arr("token_ids", false));
  PROV_RETURN_IF_ERROR(arr("tokens", need_logprob_arrays));
  PROV_RETURN_IF_ERROR(arr("token_logprobs", need_logprob_arrays));
  PROV_RETURN_IF_ERROR(arr("text_offset", need_logprob_arrays));
  if (need_logprob_arrays) {
    size_t n = lp["tokens"].size();
    if (lp["token_logprobs"].size() != n || lp["text_offset"].size() != n) {
      return corrupt("choices[0].logprobs lists differ in length");
    }
    for (const char* key : {"top_logprobs", "top_logprobs_ids", "token_ids"}) {
      if (lp.contains(key) && lp[key].is_array() && lp[key].size() != n) {
        return corrupt(std::string("choices[0].logprobs.") + key + " differs in length");
      }
    }
  }
  return Status::ok();
}

Status check_chat(const json& j) {
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty() || !j["choices"][0].is_object()) {
    return corrupt("response has no choices[0]");
  }
  const json& c = j["choices"][0];
  if (!c.contains("message") || !c["message"].is_object()) {
    return corrupt("choices[0].message is missing");
  }
  const json& m = c["message"];
  if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
    return corrupt("choices[0].message.content is not a string");
  }
  if (c.contains("logprobs") && !c["logprobs"].is_null()) {
    const json& lp = c["logprobs"];
    if (!lp.is_object()) return corrupt("choices[0].logprobs is not an object");
    if (lp.contains("content") && !lp["content"].is_null() && !lp["content"].is_array()) {
      return corrupt("choices[0].logprobs.content is not a list");
    }
  }
  return Status::ok();
}

}  // namespace

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

struct EndpointClient::Impl {
  EndpointOptions options;
  std::string base;  // ".../v1"
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<bool> zero_max_tokens_rejected{false};

  std::mutex handles_mu;
  std::vector<CurlPtr> idle;

  std::mutex rng_mu;
  std::mt19937_64 rng;

  std::mutex rate_mu;
  Clock::time_point next_slot{};

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
    if (options.rate_limit_rps <= 0) return;
    Clock::time_point slot;
    {
      std::lock_guard<std::mutex> lock(rate_mu);
      auto now = Clock::now();
      slot = std::max(now, next_slot);
      next_slot = slot + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(1.0 / options.rate_limit_rps));
    }
    std::this_thread::sleep_until(slot);
  }

  double backoff(int attempt, const std::optional<double>& retry_after) {
    if (retry_after) return std::min(*retry_after, options.backoff_max_s);
    double d = std::min(options.backoff_max_s,
                        options.backoff_initial_s * std::pow(2.0, std::min(attempt, 60)));
    double u;
    {
      std::lock_guard<std::mutex> lock(rng_mu);
      u = std::uniform_real_distribution<double>(0.5, 1.0)(rng);
    }
    return d * u;
  }

  Attempt attempt(const std::string& url, const std::string& payload) {
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
    t.limit = options.max_response_bytes;
    char errbuf[CURL_ERROR_SIZE] = {0};
    SlistPtr headers;
    add_header(&headers, "Content-Type: application/json");
    add_header(&headers, "Accept: application/json");
    if (!options.api_key.empty()) add_header(&headers, "Authorization: Bearer " + options.api_key);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options.connect_timeout_s * 1000));
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
    const std::string what = "POST " + url;
    if (rc != CURLE_OK) {
      std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
      switch (rc) {
        case CURLE_WRITE_ERROR:
          a.kind = Attempt::kFatal;
          a.status = t.too_large
                         ? corrupt(what + ": response larger than the " +
                                   std::to_string(options.max_response_bytes) + "-byte limit")
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
      a.status = io_error(what + ": HTTP " + std::to_string(code) + ": " + server_message(t.body));
      return a;
    }
    if (code < 200 || code >= 300) {
      a.kind = Attempt::kFatal;
      std::string hint = (code == 401 || code == 403) ? " (check the API key)" : "";
      a.status = invalid_argument(what + ": HTTP " + std::to_string(code) + hint + ": " +
                                  server_message(t.body));
      return a;
    }
    auto parsed = model::parse_json_bounded(t.body, what + ": response");
    if (!parsed.is_ok()) {
      a.kind = Attempt::kRetry;
      a.status = corrupt(parsed.status().message() + " (body: " + excerpt(t.body) + ")");
      return a;
    }
    a.body = std::move(parsed).value();
    return a;
  }

  // POSTs `request` to base + path, retrying as endpoint.h describes; `validate` checks the
  // structure of a 2xx body (a failure is retried like malformed JSON).
  Result<json> post(const std::string& path, const json& request, const Validator& validate) {
    const std::string url = base + path;
    const std::string payload = request.dump(-1, ' ', false, json::error_handler_t::replace);
    Status last;
    for (int i = 0; i <= options.max_retries; ++i) {
      if (i > 0) ++retries;
      rate_limit();
      Attempt a = attempt(url, payload);
      if (a.kind == Attempt::kOk) {
        Status v = validate(a.body);
        if (v.is_ok()) return std::move(a.body);
        a.kind = Attempt::kRetry;
        a.status = corrupt("POST " + url + ": unexpected response: " + v.message());
      }
      if (a.kind == Attempt::kFatal) return a.status;
      last = a.status;
      if (i < options.max_retries) {
        double d = backoff(i, a.retry_after);
        std::this_thread::sleep_for(std::chrono::duration<double>(d));
      }
    }
    return Status(last.code(), last.message() + " (gave up after " +
                                   std::to_string(options.max_retries + 1) + " attempts)");
  }

  json base_request() const {
    json r = json::object();
    if (!options.model_name.empty()) r["model"] = options.model_name;
    return r;
  }

  // The main request: positions[0] and continuation_text.
  Status main_completion(const Probe& probe, ProbeRecord* rec) {
    json req = base_request();
    if (probe.text) {
      req["prompt"] = *probe.text;
    } else {
      req["prompt"] = *probe.ids;
    }
    req["max_tokens"] = std::max(1, probe.greedy_tokens);
    req["temperature"] = 0;
    req["seed"] = 0;
    if (probe.top_k > 0) req["logprobs"] = probe.top_k;
    PROV_ASSIGN_OR_RETURN(json resp, post("/completions", req, [](const json& j) {
                            return check_completion(j, false);
                          }));
    const json& c = resp["choices"][0];
    if (probe.greedy_tokens > 0 && c.contains("text") && c["text"].is_string()) {
      rec->continuation_text = c["text"].get<std::string>();
    }
    if (probe.top_k > 0 && c.contains("logprobs") && c["logprobs"].is_object()) {
      const json& lp = c["logprobs"];
      if (lp.contains("top_logprobs") && lp["top_logprobs"].is_array() &&
          !lp["top_logprobs"].empty()) {
        const json* ids = nullptr;
        if (lp.contains("top_logprobs_ids") && lp["top_logprobs_ids"].is_array() &&
            !lp["top_logprobs_ids"].empty()) {
          ids = &lp["top_logprobs_ids"][0];
        }
        PROV_ASSIGN_OR_RETURN(TopK top, completion_top(lp["top_logprobs"][0], ids, probe.top_k,
                                                       "POST " + base + "/completions"));
        if (!top.logprobs.empty()) {
          PositionRecord pos;
          pos.top = std::move(top);
          rec->positions.push_back(std::move(pos));
        }
      }
    }
    return Status::ok();
  }

  // Echo scoring of prompt + text: the tokens of `text` with their log-probabilities and, when
  // `positions` is non-null, one PositionRecord per token.
  Result<ScoredText> score(const std::string& prompt, const std::string& text, int top_k,
                           std::vector<PositionRecord>* positions) {
    const std::string url = "POST " + base + "/completions";
    json req = base_request();
    req["prompt"] = prompt + text;
    req["echo"] = true;
    req["temperature"] = 0;
    req["seed"] = 0;
    req["logprobs"] = std::max(top_k, 1);
    auto validate = [](const json& j) { return check_completion(j, true); };
    int max_tokens = zero_max_tokens_rejected ? 1 : 0;
    req["max_tokens"] = max_tokens;
    auto resp = post("/completions", req, validate);
    if (!resp.is_ok() && max_tokens == 0 && resp.status().code() == StatusCode::kInvalidArgument) {
      zero_max_tokens_rejected = true;
      max_tokens = 1;
      req["max_tokens"] = 1;
      resp = post("/completions", req, validate);
    }
    if (!resp.is_ok()) return resp.status();
    const json& lp = resp.value()["choices"][0]["logprobs"];
    const json& tokens = lp["tokens"];
    const json& lps = lp["token_logprobs"];
    const json& offsets = lp["text_offset"];
    const size_t n = tokens.size();
    // Echoed tokens: all but the generated ones.
    size_t generated = max_tokens == 0 ? 0 : 1;
    const json& usage = resp.value().contains("usage") ? resp.value()["usage"] : json();
    if (usage.is_object() && usage.contains("completion_tokens") &&
        usage["completion_tokens"].is_number_unsigned()) {
      generated = usage["completion_tokens"].get<uint64_t>();
    }
    if (generated > n) return corrupt(url + ": usage.completion_tokens exceeds the tokens listed");
    const size_t echoed = n - generated;
    // Offsets into the returned text put the boundary at the prompt's length. Some servers
    // (vLLM) instead add up the reported token strings, counting a BOS rendered as "<s>" that
    // the text does not contain; the last echoed token then ends past the end of prompt + text,
    // and the boundary moves by the same amount (at most the first token's length).
    uint64_t boundary = code_points(prompt);
    if (echoed > 0 && tokens[echoed - 1].is_string() && tokens[0].is_string() &&
        offsets[echoed - 1].is_number_unsigned()) {
      const std::string last = tokens[echoed - 1].get<std::string>();
      if (!token_id_key(last)) {
        uint64_t end = offsets[echoed - 1].get<uint64_t>() + code_points(last);
        uint64_t want = code_points(prompt) + code_points(text);
        uint64_t first_len = code_points(tokens[0].get<std::string>());
        if (end > want && end - want <= first_len) boundary += end - want;
      }
    }
    const json* ids =
        lp.contains("token_ids") && lp["token_ids"].is_array() ? &lp["token_ids"] : nullptr;
    const json* top_ids = lp.contains("top_logprobs_ids") && lp["top_logprobs_ids"].is_array()
                              ? &lp["top_logprobs_ids"]
                              : nullptr;
    const json* tops = lp.contains("top_logprobs") && lp["top_logprobs"].is_array()
                           ? &lp["top_logprobs"]
                           : nullptr;
    ScoredText st;
    st.text = text;
    bool all_ids = ids != nullptr;
    for (size_t i = 0; i < echoed; ++i) {
      if (!offsets[i].is_number_integer()) return corrupt(url + ": text_offset is not an integer");
      if (offsets[i].get<int64_t>() < 0 ||
          static_cast<uint64_t>(offsets[i].get<int64_t>()) < boundary)
        continue;
      const std::string where = url + ": echoed token " + std::to_string(i);
      if (!tokens[i].is_string()) return corrupt(where + ": token is not a string");
      if (!is_num(lps[i])) {
        return corrupt(where +
                       ": no log-probability (a text scored at the very start of the "
                       "context, or a server that does not score echoed tokens)");
      }
      std::string tok = tokens[i].get<std::string>();
      float lpv = as_float(lps[i]);
      std::optional<int32_t> id;
      if (ids != nullptr && (*ids)[i].is_number_integer()) {
        int64_t v = (*ids)[i].get<int64_t>();
        if (v >= 0 && v <= INT32_MAX) id = static_cast<int32_t>(v);
      } else if (auto tid = token_id_key(tok)) {
        id = tid;
      }
      all_ids = all_ids && id.has_value();
      st.tokens.push_back(tok);
      st.ids.push_back(id.value_or(-1));
      st.token_logprobs.push_back(lpv);
      st.total_logprob += lpv;
      if (positions != nullptr) {
        PositionRecord pos;
        pos.token = tok;
        pos.token_logprob = lpv;
        if (id) pos.token_id = *id;
        if (top_k > 0) {
          const json* tid = top_ids != nullptr ? &(*top_ids)[i] : nullptr;
          json none;
          PROV_ASSIGN_OR_RETURN(
              pos.top, completion_top(tops != nullptr ? (*tops)[i] : none, tid, top_k, where));
        }
        positions->push_back(std::move(pos));
      }
    }
    if (!all_ids) st.ids.clear();
    if (st.tokens.empty() && !text.empty()) {
      return invalid_argument(url + ": no echoed token starts at or after character " +
                              std::to_string(boundary) +
                              " (the end of the prompt): the scored text merges into the "
                              "prompt's last token; score texts that begin at a token boundary "
                              "(for example with a leading space)");
    }
    return st;
  }

  Status chat_completion(const Probe& probe, ProbeRecord* rec) {
    json req = base_request();
    req["messages"] = json::array({{{"role", "user"}, {"content", *probe.text}}});
    req["max_tokens"] = std::max(1, probe.greedy_tokens);
    req["temperature"] = 0;
    req["seed"] = 0;
    if (probe.top_k > 0) {
      req["logprobs"] = true;
      req["top_logprobs"] = probe.top_k;
    }
    PROV_ASSIGN_OR_RETURN(json resp, post("/chat/completions", req, check_chat));
    const json& c = resp["choices"][0];
    const json& m = c["message"];
    if (probe.greedy_tokens > 0 && m.contains("content") && m["content"].is_string()) {
      rec->continuation_text = m["content"].get<std::string>();
    }
    const std::string where = "POST " + base + "/chat/completions";
    if (probe.top_k > 0 && c.contains("logprobs") && c["logprobs"].is_object() &&
        c["logprobs"].contains("content") && c["logprobs"]["content"].is_array() &&
        !c["logprobs"]["content"].empty()) {
      const json& first = c["logprobs"]["content"][0];
      if (!first.is_object()) return corrupt(where + ": logprobs.content[0] is not an object");
      std::vector<Alt> alts;
      if (first.contains("top_logprobs") && first["top_logprobs"].is_array()) {
        for (const auto& e : first["top_logprobs"]) {
          if (!e.is_object() || !e.contains("token") || !e["token"].is_string() ||
              !e.contains("logprob") || !is_num(e["logprob"])) {
            return corrupt(where + ": top_logprobs entries must be {token, logprob}");
          }
          Alt a;
          a.token = e["token"].get<std::string>();
          a.logprob = as_float(e["logprob"]);
          if (auto id = token_id_key(a.token)) {
            a.id = id;
            a.has_token = false;
          }
          alts.push_back(std::move(a));
        }
      }
      if (!alts.empty()) {
        PositionRecord pos;
        pos.top = make_topk(std::move(alts), static_cast<size_t>(probe.top_k));
        rec->positions.push_back(std::move(pos));
      }
    }
    return Status::ok();
  }

  Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index) {
    ProbeRecord rec;
    rec.index = index;
    rec.probe_id = probe.id;
    const bool has_text = probe.text.has_value();
    if (has_text == probe.ids.has_value()) {
      return invalid_argument("exactly one of text and ids must be set");
    }
    if (probe.ids) rec.prompt_ids = *probe.ids;
    if (options.chat) {
      if (!has_text) {
        return invalid_argument("the prompt is given as token ids; chat endpoints take text");
      }
      if (probe.continuation || !probe.score_texts.empty()) {
        return unsupported(
            "continuation and score_texts need a completions endpoint (chat "
            "endpoints do not score given text); run without chat mode");
      }
      PROV_RETURN_IF_ERROR(chat_completion(probe, &rec));
      return rec;
    }
    if (!has_text && (probe.continuation || !probe.score_texts.empty())) {
      return unsupported(
          "the prompt is given as token ids; continuation and score_texts after "
          "it need a text prompt over an endpoint");
    }
    if (!(probe.continuation && probe.greedy_tokens == 0)) {
      PROV_RETURN_IF_ERROR(main_completion(probe, &rec));
    }
    if (probe.continuation) {
      std::vector<PositionRecord> positions;
      PROV_ASSIGN_OR_RETURN(ScoredText st,
                            score(*probe.text, *probe.continuation, probe.top_k, &positions));
      (void)st;
      rec.positions = std::move(positions);
    }
    for (const auto& text : probe.score_texts) {
      PROV_ASSIGN_OR_RETURN(ScoredText st, score(*probe.text, text, 0, nullptr));
      rec.scores.push_back(std::move(st));
    }
    return rec;
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
  if (options.api_key.find_first_of("\r\n") != std::string::npos) {
    return bad("api_key contains a line break");
  }
  std::call_once(g_curl_once, [] { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (g_curl_init != CURLE_OK) {
    return internal_error(std::string("curl_global_init failed: ") +
                          curl_easy_strerror(g_curl_init));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->base = base;
  impl->rng.seed(options.jitter_seed);
  return std::unique_ptr<EndpointClient>(new EndpointClient(std::move(impl)));
}

Result<ProbeRecord> EndpointClient::run_probe(const Probe& probe, uint32_t index) {
  auto r = impl_->run_probe(probe, index);
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
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop || failed_at != SIZE_MAX || next_pick >= todo.size()) return;
        pos = next_pick++;
      }
      size_t index = todo[pos];
      auto r = run_probe(suite.probes[index], static_cast<uint32_t>(index));
      std::lock_guard<std::mutex> lock(mu);
      if (!r.is_ok()) {
        if (pos < failed_at) {
          failed_at = pos;
          if (!stop) failure = r.status();
        }
      } else if (pos < failed_at) {
        ready.emplace(pos, std::move(r).value());
      }
      deliver_ready();
    }
  };

  const size_t threads = std::min(todo.size(), static_cast<size_t>(impl_->options.concurrency));
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
  }
  if (stop || failed_at != SIZE_MAX) return failure;
  return Status::ok();
}

EndpointCounters EndpointClient::counters() const {
  EndpointCounters c;
  c.requests = impl_->requests.load();
  c.retries = impl_->retries.load();
  return c;
}

const std::string& EndpointClient::api_base() const {
  return impl_->base;
}

}  // namespace prov::probes
