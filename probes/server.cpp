// The HTTP server (server.h) on cpp-httplib: the connection handling every dialect shares, and the
// OpenAI-style routes of the openai and vllm dialects (the other dialects: server_dialects.cpp).
//
// Response details of the openai dialect beyond the OpenAI API (documented here and in
// endpoint.h, whose client reads them when present):
//   * completions `logprobs.token_ids`: the id of every reported token (same order as `tokens`);
//   * completions `logprobs.top_logprobs_ids`: per step a list of {"id", "token", "logprob"},
//     most likely first (ties: lower id first), null where `top_logprobs` is null. Two ids can
//     decode to the same string, and `top_logprobs` (an object keyed by that string) keeps only
//     the more likely of them; this list keeps every id.
// Token strings are the decoding of the single id (special tokens rendered), or "token_id:N" with
// `return_tokens_as_token_ids`. `text_offset` counts Unicode code points (as Python's len()) into
// the returned text; with `echo` and a string prompt that text starts with the prompt exactly as
// sent, and tokens the tokenizer's post-processing added (such as BOS) take no room in it.
//
// The vllm dialect answers as vLLM does instead: no `token_ids` / `top_logprobs_ids` in
// `logprobs`, and the chosen token listed in each `top_logprobs` besides the top k; `text_offset`
// adds up the lengths of the reported token strings (a BOS counts as the "<s>" it decodes to, as
// vLLM's offsets do); `prompt_logprobs: k` gives `choices[0].prompt_logprobs`, per prompt token
// null (the first) or {"<id>": {"logprob", "rank", "decoded_token"}} for the top k and the token
// itself (rank 1-based when the token is among the top k, else null); `return_token_ids: true`
// gives `choices[0].prompt_token_ids` and `token_ids` (a final EOS included, with `stop_reason`
// null); more alternatives than max_top_logprobs is a 400 with vLLM's "... which is greater than
// max allowed: N"; errors are {"object": "error", "message", "type", "param", "code"}; GET /version
// answers {"version"}.
//
// Hostile clients: see the section of that name below (connection threads, deadlines, body caps,
// model slots, lingering close).
#include "probes/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/json.h"
#include "core/version.h"
#include "probes/server_internal.h"

namespace prov::probes {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// True when `s` ends in U+FFFD or in a UTF-8 sequence that is still missing bytes: the next
// token may complete the character, so its text is not final yet.
bool ends_incomplete(const std::string& s) {
  if (ends_with(s, "\xEF\xBF\xBD")) return true;
  size_t i = s.size();
  size_t cont = 0;
  while (i > 0 && cont < 3 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++cont;
  }
  if (i == 0) return false;
  unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  size_t need = 0;
  if ((lead & 0xE0) == 0xC0)
    need = 1;
  else if ((lead & 0xF0) == 0xE0)
    need = 2;
  else if ((lead & 0xF8) == 0xF0)
    need = 3;
  return need > cont;
}

std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

namespace wire {

// Number of Unicode code points (bytes that are not UTF-8 continuation bytes); invalid bytes
// count one each.
size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The text each token adds to the decoding of `ids`, so that the pieces concatenate to the text
// of the whole sequence. Decoding is incremental: a token's text is final once decoding a short
// window ending at it yields complete characters; tokens whose bytes only complete a character
// later get "" and the token that completes it carries the character.
Result<std::vector<std::string>> token_pieces(const model::Tokenizer& tok,
                                              const std::vector<int32_t>& ids) {
  std::vector<std::string> pieces(ids.size());
  size_t prefix_offset = 0, read_offset = 0;
  auto decode_range = [&](size_t b, size_t e) -> Result<std::string> {
    if (b >= e) return std::string();
    return tok.decode(std::vector<int32_t>(ids.begin() + b, ids.begin() + e), false);
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    PROV_ASSIGN_OR_RETURN(std::string prefix_text, decode_range(prefix_offset, read_offset));
    PROV_ASSIGN_OR_RETURN(std::string new_text, decode_range(prefix_offset, i + 1));
    bool last = i + 1 == ids.size();
    if (new_text.size() > prefix_text.size() && starts_with(new_text, prefix_text) &&
        (last || !ends_incomplete(new_text))) {
      pieces[i] = new_text.substr(prefix_text.size());
      prefix_offset = read_offset;
      read_offset = i + 1;
    }
  }
  return pieces;
}

// Where the tokens `encode(text, true)` added around `encode(text, false)`: the number of
// leading and trailing added tokens (0, 0 when the plain ids are not a contiguous part).
std::pair<size_t, size_t> added_token_span(const std::vector<int32_t>& full,
                                           const std::vector<int32_t>& plain) {
  if (plain.size() > full.size()) return {0, 0};
  for (size_t lead = 0; lead + plain.size() <= full.size(); ++lead) {
    if (std::equal(plain.begin(), plain.end(), full.begin() + lead)) {
      return {lead, full.size() - lead - plain.size()};
    }
  }
  return {0, 0};
}

namespace {

// The error "type" of each dialect's error bodies.
std::string error_type(Dialect d, int status) {
  switch (d) {
    case Dialect::kVllm:
      switch (status) {
        case 400:
          return "BadRequestError";
        case 404:
          return "NotFoundError";
        case 429:
          return "TooManyRequestsError";
        case 503:
          return "ServiceUnavailableError";
        default:
          return status >= 500 ? "InternalServerError" : "BadRequestError";
      }
    case Dialect::kTgi:
      switch (status) {
        case 401:
          return "authentication";
        case 404:
          return "not_found";
        case 424:
          return "generation";
        case 429:
        case 503:
          return "overloaded";
        default:
          return status >= 500 ? "incomplete_generation" : "validation";
      }
    case Dialect::kLlamaCpp:
      switch (status) {
        case 401:
          return "authentication_error";
        case 404:
          return "not_found_error";
        case 429:
          return "rate_limit_error";
        case 503:
          return "unavailable_error";
        default:
          return status >= 500 ? "server_error" : "invalid_request_error";
      }
    case Dialect::kAnthropic:
      switch (status) {
        case 401:
          return "authentication_error";
        case 403:
          return "permission_error";
        case 404:
          return "not_found_error";
        case 413:
          return "request_too_large";
        case 429:
          return "rate_limit_error";
        case 503:
        case 529:
          return "overloaded_error";
        default:
          return status >= 500 ? "api_error" : "invalid_request_error";
      }
    case Dialect::kOpenAI:
    case Dialect::kSglang:
      break;
  }
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 408:
      return "request_timeout";
    case 413:
    case 431:
      return "request_too_large";
    case 429:
      return "rate_limit_exceeded";
    case 503:
      return "server_overloaded";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace

std::string dump(const json& j) {
  // Floats print with max_digits10 significant digits, so they parse back to the same value;
  // bytes that are not UTF-8 (possible in decoded token text) become U+FFFD.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_body(Dialect d, int status, const std::string& message) {
  const std::string type = error_type(d, status);
  switch (d) {
    case Dialect::kVllm:
      if (status == 401) return dump({{"error", "Unauthorized"}});
      return dump({{"object", "error"},
                   {"message", message},
                   {"type", type},
                   {"param", nullptr},
                   {"code", status}});
    case Dialect::kSglang:
      return dump({{"error", {{"message", message}, {"code", status}}}});
    case Dialect::kTgi:
      return dump({{"error", message}, {"error_type", type}});
    case Dialect::kLlamaCpp:
      return dump({{"error", {{"code", status}, {"message", message}, {"type", type}}}});
    case Dialect::kAnthropic:
      return dump({{"type", "error"}, {"error", {{"type", type}, {"message", message}}}});
    case Dialect::kOpenAI:
      break;
  }
  return dump(
      {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}});
}

// Field readers: a missing or null field keeps the default; a field of the wrong type or range
// is an HttpError naming it.
std::optional<HttpError> read_int(const json& body, const char* key, int64_t lo, int64_t hi,
                                  int64_t* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) {
    return HttpError{400, std::string("'") + key + "' must be an integer"};
  }
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) {
      return HttpError{400, std::string("'") + key + "' must be at most " + std::to_string(hi)};
    }
    v = static_cast<int64_t>(u);
  } else {
    v = it->get<int64_t>();
  }
  if (v < lo || v > hi) {
    return HttpError{400, std::string("'") + key + "' must be between " + std::to_string(lo) +
                              " and " + std::to_string(hi) + ", got " + std::to_string(v)};
  }
  *out = v;
  return std::nullopt;
}

std::optional<HttpError> read_bool(const json& body, const char* key, bool* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return HttpError{400, std::string("'") + key + "' must be a boolean"};
  *out = it->get<bool>();
  return std::nullopt;
}

std::optional<HttpError> read_temperature(const json& body, const char* key, double max,
                                          double* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return HttpError{400, std::string("'") + key + "' must be a number"};
  const double t = it->get<double>();
  if (!std::isfinite(t) || t < 0 || t > max) {
    return HttpError{400, std::string("'") + key + "' must be between 0 and " +
                              std::to_string(static_cast<int64_t>(max))};
  }
  *out = t;
  return std::nullopt;
}

std::optional<HttpError> read_stop(const json& body, const char* key,
                                   std::vector<std::string>* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  const std::string k = std::string("'") + key + "'";
  if (it->is_string()) {
    out->push_back(it->get<std::string>());
  } else if (it->is_array() && it->size() <= 16) {
    for (const auto& s : *it) {
      if (!s.is_string()) return HttpError{400, k + " must be a string or a list of strings"};
      out->push_back(s.get<std::string>());
    }
  } else {
    return HttpError{400, k + " must be a string or a list of at most 16 strings"};
  }
  for (const auto& s : *out) {
    if (s.empty() || s.size() > 1024) {
      return HttpError{400, "each " + k + " string must be 1 to 1024 bytes long"};
    }
  }
  return std::nullopt;
}

// Decodes the generated steps in the context of the prompt, drops the text of a final stop id,
// and cuts at the earliest stop string (keeping the tokens that begin before it).
Result<Generated> finish_generation(const model::Tokenizer& tok,
                                    const std::vector<int32_t>& prompt_ids, const BackendResult& r,
                                    const std::vector<int32_t>& stop_ids,
                                    const std::vector<std::string>& stop_strings) {
  Generated g;
  g.stopped = r.stopped;
  size_t n = r.generated.size();
  bool hide_last =
      n > 0 && r.stopped &&
      std::find(stop_ids.begin(), stop_ids.end(), r.generated.back().id) != stop_ids.end();
  std::vector<int32_t> ids = prompt_ids;
  for (size_t i = 0; i < n - (hide_last ? 1 : 0); ++i) ids.push_back(r.generated[i].id);
  PROV_ASSIGN_OR_RETURN(std::vector<std::string> pieces, token_pieces(tok, ids));
  std::vector<std::string> gen(pieces.begin() + prompt_ids.size(), pieces.end());
  if (hide_last) gen.emplace_back();
  std::vector<size_t> byte_start(n);
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    byte_start[i] = text.size();
    text += gen[i];
  }
  size_t cut = std::string::npos;
  for (const auto& s : stop_strings) cut = std::min(cut, text.find(s));
  size_t keep = n;
  if (cut != std::string::npos) {
    keep = 0;
    while (keep < n && byte_start[keep] < cut) ++keep;
    for (const auto& s : stop_strings) {
      if (text.compare(cut, s.size(), s) == 0) g.stop_string = s;
    }
    text.resize(cut);
    g.stopped = true;
  }
  g.stopped_on_id = hide_last && keep == n;
  size_t cp = 0, text_cp = code_points(text);
  for (size_t i = 0; i < keep; ++i) {
    g.steps.push_back(&r.generated[i]);
    g.offsets.push_back(std::min(cp, text_cp));
    cp += code_points(gen[i]);
  }
  g.text = std::move(text);
  return g;
}

std::string token_string(const model::Tokenizer& tok, int32_t id, bool as_ids) {
  if (as_ids) return "token_id:" + std::to_string(id);
  auto r = tok.decode({id}, false);
  return r.is_ok() ? r.value() : std::string();
}

json bytes_of(const std::string& s) {
  json a = json::array();
  for (unsigned char c : s) a.push_back(static_cast<int>(c));
  return a;
}

void send_events(httplib::Response& res, std::vector<std::string> events) {
  auto shared = std::make_shared<std::vector<std::string>>(std::move(events));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [shared](size_t, httplib::DataSink& sink) {
    for (const std::string& e : *shared) {
      if (!sink.write(e.data(), e.size())) return false;
    }
    sink.done();
    return true;
  });
}

}  // namespace wire

namespace {

using namespace wire;  // NOLINT: this file is the other half of server_internal.h

int status_for(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument ? 400 : 500;
}

// The options shared by both endpoints.
struct Common {
  int max_tokens = 16;
  double temperature = 1.0;  // the OpenAI default
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

std::optional<HttpError> read_common(const json& body, const ServerOptions& options, Common* c) {
  int64_t v = c->max_tokens;
  if (auto e = read_int(body, "max_tokens", 0, options.max_tokens_limit, &v)) return e;
  c->max_tokens = static_cast<int>(v);
  if (auto e = read_temperature(body, "temperature", 2, &c->temperature)) return e;
  if (auto it = body.find("seed"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return HttpError{400, "'seed' must be an integer"};
    c->seed =
        it->is_number_unsigned() ? it->get<uint64_t>() : static_cast<uint64_t>(it->get<int64_t>());
  }
  if (auto e = read_stop(body, "stop", &c->stop)) return e;
  if (auto e = read_bool(body, "ignore_eos", &c->ignore_eos)) return e;
  if (auto it = body.find("stream"); it != body.end() && it->is_boolean() && it->get<bool>()) {
    return HttpError{400, "streaming ('stream': true) is not supported by this server"};
  }
  int64_t n = 1;
  if (auto e = read_int(body, "n", 1, 1, &n)) {
    return HttpError{400, "only 'n': 1 is supported by this server"};
  }
  int64_t best_of = 1;
  if (auto e = read_int(body, "best_of", 1, 1, &best_of)) {
    return HttpError{400, "only 'best_of': 1 is supported by this server"};
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Hostile clients.
//
// cpp-httplib 0.11 (Debian 12) gives each connection one of a fixed pool of workers from accept
// to close and times out single reads only, so a client sending a header byte every few seconds
// holds a worker forever; it reads (and drops) a declared oversize body before answering 413, and
// puts no limit on a chunked body. So each connection runs here through pieces of our own:
//   * ConnectionStream (an httplib::Stream): each read waits at most read_timeout_ms, the whole
//     request must have arrived request_timeout_ms after accept, the request head and the body on
//     the wire have byte caps, and stop() wakes every read at once;
//   * ConnectionPool (an httplib::TaskQueue): up to max_connections threads do the I/O (cheap
//     while they wait); a connection beyond that is answered 503 from the accept thread;
//   * Admission: at most `threads` requests run the model, max_queued_requests wait, more: 503;
//   * Lingerer: after the response the write side is shut and whatever the client still sends
//     is drained for a moment on one shared thread before the close, so that an early answer (a
//     413 sent before the body was read) is not lost to a reset.

using Clock = std::chrono::steady_clock;

constexpr auto kLingerTime = std::chrono::milliseconds(1000);
constexpr size_t kLingerBytes = size_t{1} << 20;
constexpr size_t kMaxLingering = 256;

// Set on the accept thread while it answers a connection no thread is free for.
thread_local bool t_refuse_connection = false;

// stop()'s signal to every blocked read: a pipe that turns readable once and stays so.
class StopSignal {
 public:
  StopSignal() {
    if (::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0) fds_[0] = fds_[1] = -1;
  }
  ~StopSignal() {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  bool valid() const { return fds_[0] >= 0; }
  int fd() const { return fds_[0]; }
  bool raised() const { return raised_.load(); }
  Clock::time_point raised_at() const {
    return Clock::time_point(Clock::duration(raised_at_.load()));
  }
  // Once (stop() is idempotent): raised_at_ is set before raised_, so a reader that sees
  // raised() sees the time.
  void raise() {
    if (raised_.load()) return;
    raised_at_ = Clock::now().time_since_epoch().count();
    if (raised_.exchange(true)) return;
    char c = 1;
    [[maybe_unused]] ssize_t n = ::write(fds_[1], &c, 1);
  }

 private:
  int fds_[2] = {-1, -1};
  std::atomic<bool> raised_{false};
  std::atomic<Clock::rep> raised_at_{0};
};

enum class Wait { kReady, kTimeout, kStopped, kError };

// Waits until `fd` has `events` (or an error to report), `deadline` passes, or `stop_fd` (when
// >= 0) turns readable.
Wait wait_fd(int fd, short events, Clock::time_point deadline, int stop_fd) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline) return Wait::kTimeout;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    const int timeout = static_cast<int>(std::min<int64_t>(left, 60'000));
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(p, stop_fd >= 0 ? 2 : 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::kError;
    }
    if (n == 0) continue;  // the deadline is checked again at the top
    if (stop_fd >= 0 && (p[1].revents & POLLIN) != 0) return Wait::kStopped;
    if ((p[0].revents & (events | POLLERR | POLLHUP | POLLNVAL)) != 0) return Wait::kReady;
  }
}

void socket_endpoint(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  ip.clear();
  port = -1;
  if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0) return;
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    if (::inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host)) != nullptr) ip = host;
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)) != nullptr) ip = host;
    port = ntohs(a->sin6_port);
  }
}

struct StreamLimits {
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};
  std::chrono::milliseconds shutdown_grace{1000};
  size_t max_head_bytes = 64 << 10;      // request line and headers, as received
  size_t max_body_wire_bytes = 3 << 20;  // the body as received (chunk framing included)
};

// One connection's socket for httplib's request parser, with the deadlines and caps above.
// Reads are buffered (httplib reads request lines a byte at a time).
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int fd, const StreamLimits& limits, const StopSignal& stop)
      : fd_(fd),
        limits_(limits),
        stop_(stop),
        request_deadline_(Clock::now() + limits.request_timeout) {}

  // Called once the headers are parsed: what is read from here on is the body.
  void begin_body() {
    if (in_body_) return;
    in_body_ = true;
    wire_bytes_ = 0;
  }
  bool timed_out() const { return timed_out_; }
  bool over_limit() const { return over_limit_; }
  bool in_body() const { return in_body_; }
  bool wrote() const { return wrote_; }

  bool is_readable() const override {
    return pos_ < len_ || wait_fd(fd_, POLLIN, read_deadline(), stop_.fd()) == Wait::kReady;
  }
  bool is_writable() const override {
    return wait_fd(fd_, POLLOUT, write_deadline(Clock::now() + limits_.write_timeout), -1) ==
           Wait::kReady;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (size == 0) return 0;
    if (pos_ == len_ && !fill()) return eof_ ? 0 : -1;
    const size_t n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    const auto call_deadline = Clock::now() + limits_.write_timeout;
    size_t off = 0;
    while (off < size) {
      const ssize_t n = ::send(fd_, ptr + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) {
        off += static_cast<size_t>(n);
        wrote_ = true;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      // Before stop() the stop pipe wakes the wait (to shorten the deadline to the grace); after
      // it, it would wake every wait at once, so it is left out.
      const bool stopping = stop_.raised();
      const Wait w =
          wait_fd(fd_, POLLOUT, write_deadline(call_deadline), stopping ? -1 : stop_.fd());
      if (w == Wait::kReady || w == Wait::kStopped) continue;
      return -1;
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    socket_endpoint(fd_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    socket_endpoint(fd_, false, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  Clock::time_point read_deadline() const {
    return std::min(Clock::now() + limits_.read_timeout, request_deadline_);
  }
  Clock::time_point write_deadline(Clock::time_point d) const {
    return stop_.raised() ? std::min(d, stop_.raised_at() + limits_.shutdown_grace) : d;
  }

  // Refills the buffer; false at the end of the stream (eof_) or on a failure.
  bool fill() {
    if (failed_ || eof_) return false;
    const size_t cap = in_body_ ? limits_.max_body_wire_bytes : limits_.max_head_bytes;
    if (wire_bytes_ >= cap) {
      over_limit_ = failed_ = true;
      return false;
    }
    for (;;) {
      if (stop_.raised()) {
        failed_ = true;
        return false;
      }
      const ssize_t n =
          ::recv(fd_, buf_.data(), std::min(buf_.size(), cap - wire_bytes_), MSG_DONTWAIT);
      if (n > 0) {
        wire_bytes_ += static_cast<size_t>(n);
        pos_ = 0;
        len_ = static_cast<size_t>(n);
        return true;
      }
      if (n == 0) {
        eof_ = true;
        return false;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        failed_ = true;
        return false;
      }
      switch (wait_fd(fd_, POLLIN, read_deadline(), stop_.fd())) {
        case Wait::kReady:
          continue;
        case Wait::kTimeout:
          timed_out_ = true;
          [[fallthrough]];
        default:
          failed_ = true;
          return false;
      }
    }
  }

  const int fd_;
  const StreamLimits& limits_;
  const StopSignal& stop_;
  const Clock::time_point request_deadline_;
  std::array<char, 16 << 10> buf_{};
  size_t pos_ = 0, len_ = 0;
  size_t wire_bytes_ = 0;
  bool in_body_ = false;
  bool eof_ = false, failed_ = false, timed_out_ = false, over_limit_ = false, wrote_ = false;
};

// The stream of the connection this thread is serving (null on other threads).
thread_local ConnectionStream* t_stream = nullptr;

// Shuts the write side of finished connections and reads what their clients still send until
// they close, for at most kLingerTime and kLingerBytes each, on one thread; then closes them.
class Lingerer {
 public:
  Lingerer() {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
  }
  ~Lingerer() {
    stop();
    for (int fd : wake_) {
      if (fd >= 0) ::close(fd);
    }
  }
  Lingerer(const Lingerer&) = delete;
  Lingerer& operator=(const Lingerer&) = delete;

  bool start() {
    if (wake_[0] < 0) return false;
    std::lock_guard<std::mutex> lock(mu_);
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::exception&) {
      return false;
    }
    running_ = true;
    return true;
  }

  // Closes every connection it holds and joins the thread. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!running_) return;
      running_ = false;
    }
    wake();
    thread_.join();
  }

  // Takes `fd` over (it is closed here, at once when the lingerer is not running or full).
  void hand_over(int fd) {
    ::shutdown(fd, SHUT_WR);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (running_ && incoming_.size() < kMaxLingering) {
        incoming_.push_back(fd);
        fd = -1;
      }
    }
    if (fd >= 0) {
      ::close(fd);
    } else {
      wake();
    }
  }

 private:
  struct Entry {
    int fd;
    Clock::time_point deadline;
    size_t drained;
  };

  void wake() {
    char c = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_[1], &c, 1);
  }

  void run() {
    std::vector<Entry> entries;
    std::vector<pollfd> pfds;
    std::vector<char> scratch(64 << 10);
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        const auto deadline = Clock::now() + kLingerTime;
        for (int fd : incoming_) entries.push_back({fd, deadline, 0});
        incoming_.clear();
        if (!running_) break;
      }
      while (entries.size() > kMaxLingering) {  // the oldest go first
        ::close(entries.front().fd);
        entries.erase(entries.begin());
      }
      pfds.assign(1, pollfd{wake_[0], POLLIN, 0});
      auto next = Clock::time_point::max();
      for (const auto& e : entries) {
        pfds.push_back({e.fd, POLLIN, 0});
        next = std::min(next, e.deadline);
      }
      int timeout = -1;
      if (!entries.empty()) {
        timeout = static_cast<int>(std::max<int64_t>(
            0, std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count()));
      }
      if (::poll(pfds.data(), pfds.size(), timeout) < 0 && errno != EINTR) break;
      if ((pfds[0].revents & POLLIN) != 0) {
        while (::read(wake_[0], scratch.data(), scratch.size()) > 0) {
        }
      }
      const auto now = Clock::now();
      std::vector<Entry> kept;
      kept.reserve(entries.size());
      for (size_t i = 0; i < entries.size(); ++i) {
        Entry e = entries[i];
        bool done = now >= e.deadline;
        if (!done && pfds[i + 1].revents != 0) {
          const ssize_t n = ::recv(e.fd, scratch.data(), scratch.size(), MSG_DONTWAIT);
          if (n > 0) {
            e.drained += static_cast<size_t>(n);
            done = e.drained >= kLingerBytes;
          } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            done = true;
          }
        }
        if (done) {
          ::close(e.fd);
        } else {
          kept.push_back(e);
        }
      }
      entries.swap(kept);
    }
    for (const auto& e : entries) ::close(e.fd);
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : incoming_) ::close(fd);
    incoming_.clear();
  }

  std::mutex mu_;
  std::vector<int> incoming_;
  bool running_ = false;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

// httplib's task queue: one thread per connection being served, created as needed up to
// `max_threads` and kept; a connection beyond that is served on the accept thread with
// t_refuse_connection set (a 503 written without waiting).
class ConnectionPool final : public httplib::TaskQueue {
 public:
  explicit ConnectionPool(size_t max_threads) : max_threads_(max_threads) {}
  ~ConnectionPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!shutdown_) {
        bool room = jobs_.size() < idle_;
        if (!room && threads_.size() < max_threads_) {
          try {
            threads_.emplace_back([this] { work(); });
            ++idle_;
            room = true;
          } catch (const std::exception&) {  // no thread to be had: refuse below
          }
        }
        if (room) {
          jobs_.push_back(std::move(fn));
          cv_.notify_one();
          return;
        }
      }
    }
    t_refuse_connection = true;
    fn();
    t_refuse_connection = false;
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) return;
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return !jobs_.empty() || shutdown_; });
      if (jobs_.empty()) return;  // shut down, nothing left to serve
      std::function<void()> fn = std::move(jobs_.front());
      jobs_.pop_front();
      --idle_;
      lock.unlock();
      fn();
      fn = nullptr;
      lock.lock();
      ++idle_;
    }
  }

  const size_t max_threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool shutdown_ = false;
};

// The model slots: at most `slots` requests hold one, at most `max_waiting` wait for one.
class Admission {
 public:
  enum class Outcome { kAdmitted, kBusy, kStopping };

  Admission(int slots, int max_waiting) : slots_(slots), max_waiting_(max_waiting) {}

  Outcome enter() {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return Outcome::kStopping;
    if (running_ < slots_) {
      ++running_;
      return Outcome::kAdmitted;
    }
    if (waiting_ >= max_waiting_) return Outcome::kBusy;
    ++waiting_;
    cv_.wait(lock, [this] { return running_ < slots_ || stopping_; });
    --waiting_;
    if (stopping_) return Outcome::kStopping;
    ++running_;
    return Outcome::kAdmitted;
  }
  void leave() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
    }
    cv_.notify_one();
  }
  // Requests waiting get kStopping; those running keep their slots.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

 private:
  const int slots_, max_waiting_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0, waiting_ = 0;
  bool stopping_ = false;
};

// A model slot held for the life of a request handler.
class Slot {
 public:
  explicit Slot(Admission& a) : a_(a), outcome_(a.enter()) {}
  ~Slot() {
    if (outcome_ == Admission::Outcome::kAdmitted) a_.leave();
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  Admission::Outcome outcome() const { return outcome_; }

 private:
  Admission& a_;
  const Admission::Outcome outcome_;
};

// A response written straight to the socket, without waiting (for connections no thread serves,
// and for requests cut before httplib could answer).
void send_canned(int fd, Dialect dialect, int status, const char* reason,
                 const std::string& message, int retry_after_s) {
  const std::string body = error_body(dialect, status, message);
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + reason +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n";
  if (retry_after_s > 0) out += "Retry-After: " + std::to_string(retry_after_s) + "\r\n";
  out += "\r\n" + body;
  [[maybe_unused]] ssize_t n = ::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

// cpp-httplib's server with each connection served through a ConnectionStream.
class HttpServer final : public httplib::Server {
 public:
  HttpServer(const StreamLimits& limits, const StopSignal& stop, Lingerer& lingerer,
             const ServerOptions& options)
      : limits_(limits), stop_(stop), lingerer_(lingerer), options_(options) {}

  // cpp-httplib listens with a backlog of 5: a burst of concurrent clients beyond that has its
  // connection attempts dropped and retried by the kernel a second later. Listening again on the
  // bound socket raises the backlog (POSIX allows listen() on a listening socket).
  bool widen_backlog() {
    socket_t sock = svr_sock_;
    return sock != INVALID_SOCKET && ::listen(sock, SOMAXCONN) == 0;
  }

 private:
  // One request per connection (the response says "Connection: close"): a kept-alive
  // connection would hold its thread between requests.
  bool process_and_close_socket(socket_t sock) override {
    if (t_refuse_connection || stop_.raised()) {
      send_canned(sock, options_.dialect, 503, "Service Unavailable",
                  stop_.raised()
                      ? "the server is shutting down"
                      : "the server is serving its limit of " +
                            std::to_string(options_.max_connections) + " connections; retry later",
                  options_.retry_after_s);
      lingerer_.hand_over(sock);
      return false;
    }
    ConnectionStream stream(sock, limits_, stop_);
    t_stream = &stream;
    bool ok = false;
    try {
      bool connection_closed = false;
      ok = process_request(stream, /*close_connection=*/true, connection_closed, nullptr);
    } catch (const std::exception&) {
      ok = false;
    }
    t_stream = nullptr;
    if (!stream.wrote() && !stop_.raised()) {
      if (stream.timed_out()) {
        send_canned(sock, options_.dialect, 408, "Request Timeout",
                    "the request did not arrive in time (read timeout " +
                        std::to_string(options_.read_timeout_ms) + " ms, request timeout " +
                        std::to_string(options_.request_timeout_ms) + " ms)",
                    0);
      } else if (stream.over_limit() && !stream.in_body()) {
        send_canned(sock, options_.dialect, 431, "Request Header Fields Too Large",
                    "request line and headers larger than the " +
                        std::to_string(options_.max_header_bytes) + "-byte limit",
                    0);
      }
    }
    lingerer_.hand_over(sock);
    return ok;
  }

  const StreamLimits& limits_;
  const StopSignal& stop_;
  Lingerer& lingerer_;
  const ServerOptions& options_;
};

StreamLimits stream_limits(const ServerOptions& o) {
  StreamLimits l;
  l.read_timeout = std::chrono::milliseconds(o.read_timeout_ms);
  l.request_timeout = std::chrono::milliseconds(o.request_timeout_ms);
  l.write_timeout = std::chrono::milliseconds(o.write_timeout_ms);
  l.shutdown_grace = std::chrono::milliseconds(o.shutdown_grace_ms);
  l.max_head_bytes = o.max_header_bytes;
  // Chunk framing adds to the body on the wire; twice the body is more than a sane client sends.
  const size_t cap = std::numeric_limits<size_t>::max() / 4;
  l.max_body_wire_bytes = std::min(o.max_body_bytes, cap) * 2 + (64 << 10);
  return l;
}

bool expects_body(const std::string& method) {  // as httplib decides whether to read one
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" ||
         method == "PRI";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

struct Server::Impl final : public wire::Host {
  CompletionBackend& backend;
  ServerOptions options;
  StreamLimits limits;
  StopSignal stop_signal;
  Lingerer lingerer;
  Admission admission;
  HttpServer http;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> loop_ended{false};
  std::atomic<uint64_t> model_requests{0};  // numbers the requests to model routes (faults)
  std::mutex rate_mu;
  std::chrono::steady_clock::time_point rate_window{};
  int rate_count = 0;

  Impl(CompletionBackend& b, ServerOptions o)
      : backend(b),
        options(std::move(o)),
        limits(stream_limits(options)),
        admission(options.threads, options.max_queued_requests),
        http(limits, stop_signal, lingerer, options) {}

  // wire::Host
  CompletionBackend& model() override { return backend; }
  const ServerOptions& settings() const override { return options; }
  std::string new_id(const char* prefix) override { return prefix + std::to_string(next_id++); }
  void fail(httplib::Response& res, int status, const std::string& message) override {
    res.status = status;
    res.set_content(error_body(options.dialect, status, message), "application/json");
  }
  bool with_slot(httplib::Response& res, const std::function<void()>& fn) override {
    Slot slot(admission);
    if (auto e = busy_error(slot)) {
      send_busy(res, *e);
      return false;
    }
    fn();
    return true;
  }
  int top_cap() const override {
    if (options.max_top_logprobs >= 0) return options.max_top_logprobs;
    switch (options.dialect) {
      case Dialect::kTgi:
        return 5;
      case Dialect::kSglang:
      case Dialect::kLlamaCpp:
        return 1000;
      default:
        return 20;
    }
  }
  std::string version() const override {
    return options.version.empty() ? std::string("prov ") + kProvVersion : options.version;
  }

  bool is_model_route(const std::string& path) const {
    for (const auto& p : post_paths(options.dialect)) {
      if (p == path) return true;
    }
    return false;
  }

  bool authorized(const httplib::Request& req) const {
    if (options.api_key.empty()) return true;
    const bool anthropic = options.dialect == Dialect::kAnthropic;
    std::string want = anthropic ? options.api_key : "Bearer " + options.api_key;
    std::string got = req.get_header_value(anthropic ? "x-api-key" : "Authorization");
    return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
  }

  // Rate limit and injected faults, for a request to a model route whose headers are in (the
  // body is left unread: the lingering close drains it). True when `res` holds the answer.
  bool refuse_early(const httplib::Request& req, httplib::Response& res) {
    if (!is_model_route(req.path)) return false;
    if (options.rate_limit_rps > 0) {
      std::lock_guard<std::mutex> lock(rate_mu);
      const auto now = Clock::now();
      if (now - rate_window >= std::chrono::seconds(1)) {
        rate_window = now;
        rate_count = 0;
      }
      if (++rate_count > options.rate_limit_rps) {
        const auto left =
            std::chrono::ceil<std::chrono::seconds>(rate_window + std::chrono::seconds(1) - now);
        fail(res, 429,
             "rate limit of " + std::to_string(options.rate_limit_rps) +
                 " requests per second reached; retry after the Retry-After seconds");
        res.set_header("Retry-After", std::to_string(std::max<int64_t>(1, left.count())));
        return true;
      }
    }
    if (!options.fault) return false;
    const ServerFault f = options.fault(req.path, model_requests++);
    switch (f) {
      case ServerFault::kNone:
        return false;
      case ServerFault::kRateLimited:
        fail(res, 429, "rate limit reached (injected)");
        res.set_header("Retry-After", std::to_string(options.retry_after_s));
        return true;
      case ServerFault::kServerError:
        fail(res, 500, "internal server error (injected)");
        return true;
      case ServerFault::kOverloaded:
        fail(res, options.dialect == Dialect::kAnthropic ? 529 : 503, "overloaded (injected)");
        res.set_header("Retry-After", std::to_string(options.retry_after_s));
        return true;
      case ServerFault::kMalformedJson:
        res.status = 200;
        res.set_content("{\"choices\": [{\"text\": \"cut", "application/json");
        return true;
      case ServerFault::kCutConnection:
        res.status = 200;
        res.set_content_provider(4096, "application/json",
                                 [](size_t offset, size_t, httplib::DataSink& sink) {
                                   if (offset > 0) return false;
                                   sink.write("{\"choices\": [{\"text\"", 20);
                                   return false;  // closes with the rest of the body missing
                                 });
        return true;
    }
    return false;
  }

  // What every request must pass once its headers are in, before any of its body is read
  // (httplib's pre-routing and Expect: 100-continue handlers): the API key, and for a body its
  // endpoint and framing. A declared body over max_body_bytes is refused here, unread.
  std::optional<HttpError> gate(const httplib::Request& req) const {
    if ((starts_with(req.path, "/v1/") || is_model_route(req.path)) && !authorized(req)) {
      return HttpError{401, options.dialect == Dialect::kAnthropic
                                ? "missing or wrong API key (send 'x-api-key: <key>')"
                                : "missing or wrong API key (send 'Authorization: Bearer <key>')"};
    }
    if (!expects_body(req.method)) return std::nullopt;  // httplib reads no body for these
    if (req.method != "POST" || !is_model_route(req.path)) {
      return HttpError{404, "no such endpoint: " + req.method + " " + req.path};
    }
    if (options.dialect == Dialect::kAnthropic && !req.has_header("anthropic-version")) {
      return HttpError{400, "anthropic-version: header is required"};
    }
    if (starts_with(lower(req.get_header_value("Content-Type")), "multipart/")) {
      return HttpError{415, "the request body must be JSON, not multipart"};
    }
    const size_t n_length = req.get_header_value_count("Content-Length");
    const size_t n_encoding = req.get_header_value_count("Transfer-Encoding");
    if (n_encoding > 0) {
      if (n_encoding > 1 || lower(trim(req.get_header_value("Transfer-Encoding"))) != "chunked") {
        return HttpError{400, "unsupported Transfer-Encoding '" +
                                  req.get_header_value("Transfer-Encoding") +
                                  "' (only 'chunked' is)"};
      }
      if (n_length > 0) {
        return HttpError{400,
                         "a request must not have both Content-Length and "
                         "Transfer-Encoding"};
      }
      return std::nullopt;  // capped while it is read (read_body)
    }
    if (n_length == 0) {
      return HttpError{411, "a request body needs a Content-Length (or chunked encoding)"};
    }
    const std::string v = trim(req.get_header_value("Content-Length"));
    if (n_length > 1 || v.empty() || v.size() > 19 ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return HttpError{400, "malformed Content-Length"};
    }
    const uint64_t length = std::stoull(v);
    if (length > options.max_body_bytes) {
      return HttpError{413, "request body of " + v + " bytes is larger than the " +
                                std::to_string(options.max_body_bytes) + "-byte limit"};
    }
    return std::nullopt;
  }

  // Reads the body of a request that passed gate(), stopping at max_body_bytes.
  std::optional<HttpError> read_body(const httplib::Request& req,
                                     const httplib::ContentReader& reader, std::string* body) {
    const size_t max = options.max_body_bytes;
    if (req.has_header("Content-Length")) {
      body->reserve(std::min<size_t>(max, req.get_header_value<uint64_t>("Content-Length")));
    }
    bool too_large = false;
    const bool ok = reader([&](const char* data, size_t n) {
      if (n > max - body->size()) {
        too_large = true;
        return false;
      }
      body->append(data, n);
      return true;
    });
    if (too_large || (t_stream != nullptr && t_stream->over_limit())) {
      body->clear();
      body->shrink_to_fit();
      return HttpError{413, "request body larger than the " + std::to_string(max) + "-byte limit"};
    }
    if (!ok) {
      if (t_stream != nullptr && t_stream->timed_out()) {
        return HttpError{408, "the request body did not arrive in time"};
      }
      return HttpError{400, "could not read the request body (malformed or cut short)"};
    }
    return std::nullopt;
  }

  // A model slot for this request, or the error to answer instead.
  std::optional<HttpError> busy_error(const Slot& slot) const {
    switch (slot.outcome()) {
      case Admission::Outcome::kAdmitted:
        return std::nullopt;
      case Admission::Outcome::kBusy:
        return HttpError{
            503, "server busy: " + std::to_string(options.threads) + " requests running and " +
                     std::to_string(options.max_queued_requests) + " waiting; retry later"};
      case Admission::Outcome::kStopping:
        break;
    }
    return HttpError{503, "the server is shutting down"};
  }

  void send_busy(httplib::Response& res, const HttpError& e) {
    fail(res, options.dialect == Dialect::kAnthropic ? 529 : e.status, e.message);
    res.set_header("Retry-After", std::to_string(options.retry_after_s));
  }

  // The longest text (in bytes) that can fit the context: a token rarely spans more than
  // max_prompt_bytes_per_token bytes, so a longer text cannot be tokenized to fit.
  std::optional<HttpError> check_text_fits(size_t bytes, const char* what) const override {
    const int64_t ctx = backend.context_length();
    if (ctx <= 0) return std::nullopt;
    const uint64_t max =
        static_cast<uint64_t>(ctx) * static_cast<uint64_t>(options.max_prompt_bytes_per_token);
    if (bytes <= max) return std::nullopt;
    return HttpError{400, std::string(what) + " of " + std::to_string(bytes) +
                              " bytes cannot fit the model's context of " + std::to_string(ctx) +
                              " tokens (at most " + std::to_string(max) + " bytes)"};
  }

  // Parses the body as a JSON object (linear time, bounded: core/json.h) and checks `model`.
  // A request holds a prompt of at most context_length ids, or up to 10000 messages of a few
  // values each; the value limit keeps a body of many small objects from becoming a document
  // tens of times its size (about 100 bytes of memory per value).
  std::optional<HttpError> parse_body(const std::string& text, json* body) override {
    JsonLimits jl;
    jl.max_bytes = options.max_body_bytes;
    jl.max_values = size_t{65536} + 2 * static_cast<size_t>(std::max(0, backend.context_length()));
    JsonFailure failure;
    auto parsed = prov::parse_json(text, "request body", jl, &failure);
    if (!parsed.is_ok()) {
      if (failure.kind == JsonFailure::kSyntax) {
        return HttpError{400, "invalid JSON in the request body (at byte " +
                                  std::to_string(failure.offset) + "): " + failure.detail};
      }
      if (failure.kind == JsonFailure::kTooLarge) {
        return HttpError{413, "request body refused: " + failure.detail};
      }
      return HttpError{400, failure.detail.empty() ? parsed.status().message()
                                                   : "request body refused: " + failure.detail};
    }
    if (!parsed->is_object()) return HttpError{400, "request body must be a JSON object"};
    *body = std::move(parsed).value();
    auto it = body->find("model");
    if (it != body->end() && !it->is_null()) {
      if (!it->is_string()) return HttpError{400, "'model' must be a string"};
      if (it->get<std::string>() != backend.model_name()) {
        return HttpError{404, "model '" + it->get<std::string>() +
                                  "' does not exist; this server "
                                  "serves '" +
                                  backend.model_name() + "'"};
      }
    }
    return std::nullopt;
  }

  std::vector<int32_t> stop_ids(bool ignore_eos, bool chat) const override {
    std::vector<int32_t> ids;
    const auto& tok = backend.tokenizer();
    if (!ignore_eos) {
      if (auto e = tok.eos_id()) ids.push_back(*e);
      if (chat) {
        for (const char* end : {"<|im_end|>", "<|eot_id|>"}) {
          if (auto id = tok.token_to_id(end)) ids.push_back(*id);
        }
      }
    }
    return ids;
  }

  json usage(size_t prompt, size_t completion) const {
    return {{"prompt_tokens", prompt},
            {"completion_tokens", completion},
            {"total_tokens", prompt + completion}};
  }

  void handle_models(httplib::Response& res) {
    json j = {{"object", "list"},
              {"data",
               {{{"id", backend.model_name()},
                 {"object", "model"},
                 {"created", 0},
                 {"owned_by", "prov"},
                 {"max_model_len", backend.context_length()}}}}};
    res.set_content(dump(j), "application/json");
  }

  void handle_completions(const std::string& text, httplib::Response& res) {
    json body;
    if (auto e = parse_body(text, &body)) return fail(res, e->status, e->message);
    const auto& tok = backend.tokenizer();

    // Prompt: a string, a list of ids, or a one-element list of either. A text is tokenized
    // below, once the request has a model slot.
    auto pit = body.find("prompt");
    if (pit == body.end()) return fail(res, 400, "'prompt' is required");
    const json* prompt = &*pit;
    if (prompt->is_array() && prompt->size() == 1 &&
        ((*prompt)[0].is_string() || (*prompt)[0].is_array())) {
      prompt = &(*prompt)[0];
    }
    std::optional<std::string> prompt_text;
    std::vector<int32_t> prompt_ids;
    std::pair<size_t, size_t> added{0, 0};
    if (prompt->is_string()) {
      prompt_text = prompt->get<std::string>();
      if (auto e = check_text_fits(prompt_text->size(), "'prompt'")) {
        return fail(res, e->status, e->message);
      }
    } else if (prompt->is_array() && !prompt->empty() &&
               std::all_of(prompt->begin(), prompt->end(),
                           [](const json& v) { return v.is_string() || v.is_array(); })) {
      return fail(res, 400,
                  "batches of several prompts are not supported; send one "
                  "prompt per request");
    } else if (prompt->is_array()) {
      const int64_t ctx = backend.context_length();
      if (ctx > 0 && static_cast<int64_t>(prompt->size()) > ctx) {
        return fail(res, 400,
                    "'prompt' has " + std::to_string(prompt->size()) +
                        " token ids; the model's context holds " + std::to_string(ctx));
      }
      for (const auto& v : *prompt) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
            v.get<int64_t>() >= tok.vocab_size()) {
          return fail(res, 400,
                      "'prompt' must be a string or a list of token ids in [0, " +
                          std::to_string(tok.vocab_size()) + ")");
        }
        prompt_ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
    } else {
      return fail(res, 400, "'prompt' must be a string or a list of token ids");
    }
    if (!prompt_text && prompt_ids.empty()) return fail(res, 400, "'prompt' is empty");

    Common c;
    if (auto e = read_common(body, options, &c)) return fail(res, e->status, e->message);
    int64_t top = -1;
    const bool vllm = options.dialect == Dialect::kVllm;
    if (auto e = read_logprobs_count(body, "logprobs", "sample", &top)) {
      return fail(res, e->status, e->message);
    }
    int64_t prompt_top = -1;  // vllm: prompt_logprobs
    bool echo = false, as_ids = false, want_ids = false;
    if (auto e = read_bool(body, "echo", &echo)) return fail(res, e->status, e->message);
    if (auto e = read_bool(body, "return_tokens_as_token_ids", &as_ids)) {
      return fail(res, e->status, e->message);
    }
    if (vllm) {
      if (auto e = read_logprobs_count(body, "prompt_logprobs", "prompt", &prompt_top)) {
        return fail(res, e->status, e->message);
      }
      if (auto e = read_bool(body, "return_token_ids", &want_ids)) {
        return fail(res, e->status, e->message);
      }
    }
    bool want_logprobs = top >= 0;

    Slot slot(admission);
    if (auto e = busy_error(slot)) return send_busy(res, *e);
    if (prompt_text) {
      auto full = tok.encode(*prompt_text, true);
      if (!full.is_ok()) return fail(res, 500, "tokenizer: " + full.status().message());
      auto plain = tok.encode(*prompt_text, false);
      if (!plain.is_ok()) return fail(res, 500, "tokenizer: " + plain.status().message());
      prompt_ids = std::move(full).value();
      added = added_token_span(prompt_ids, plain.value());
      if (prompt_ids.empty()) return fail(res, 400, "'prompt' is empty");
    }

    CompletionRequest creq;
    creq.prompt_ids = prompt_ids;
    creq.max_tokens = c.max_tokens;
    creq.top_k = static_cast<int>(std::max<int64_t>({0, top, prompt_top}));
    creq.echo = (echo && want_logprobs) || prompt_top >= 0;
    creq.temperature = c.temperature;
    creq.seed = c.seed;
    creq.stop_ids = stop_ids(c.ignore_eos, false);
    auto result = backend.complete(creq);
    if (!result.is_ok()) {
      return fail(res, status_for(result.status()), result.status().message());
    }
    const BackendResult& r = result.value();
    if (creq.echo && r.prompt_steps.size() + 1 != prompt_ids.size()) {
      return fail(res, 500,
                  "backend scored " + std::to_string(r.prompt_steps.size()) +
                      " prompt tokens, expected " + std::to_string(prompt_ids.size() - 1));
    }
    auto gen = finish_generation(tok, prompt_ids, r, creq.stop_ids, c.stop);
    if (!gen.is_ok()) return fail(res, 500, "tokenizer: " + gen.status().message());
    const Generated& g = gen.value();

    // Echoed prompt text and its token offsets.
    std::string echo_text;
    std::vector<size_t> prompt_offsets;
    if (echo) {
      auto pieces_r = token_pieces(tok, prompt_ids);
      if (!pieces_r.is_ok()) return fail(res, 500, "tokenizer: " + pieces_r.status().message());
      auto& pieces = pieces_r.value();
      if (prompt_text) {
        for (size_t i = 0; i < added.first; ++i) pieces[i].clear();
        for (size_t i = 0; i < added.second; ++i) pieces[pieces.size() - 1 - i].clear();
      }
      std::string decoded;
      for (const auto& p : pieces) {
        prompt_offsets.push_back(code_points(decoded));
        decoded += p;
      }
      echo_text = prompt_text ? *prompt_text : decoded;
      // A tokenizer that does not round-trip the prompt exactly (a leading space added or
      // dropped) shifts the offsets; align on the common end, then clamp into the text.
      const int64_t echo_cp = static_cast<int64_t>(code_points(echo_text));
      const int64_t dec_cp = static_cast<int64_t>(code_points(decoded));
      int64_t shift = 0;
      if (decoded != echo_text) {
        if (ends_with(decoded, echo_text) || ends_with(echo_text, decoded))
          shift = echo_cp - dec_cp;
      }
      for (auto& o : prompt_offsets) {
        int64_t v = static_cast<int64_t>(o) + shift;
        o = static_cast<size_t>(std::clamp<int64_t>(v, 0, echo_cp));
      }
    }
    const size_t base = code_points(echo_text);

    json logprobs = nullptr;
    if (want_logprobs) {
      json tokens = json::array(), token_ids = json::array(), token_lps = json::array(),
           tops = json::array(), top_ids = json::array(), offsets = json::array();
      size_t running = 0;  // vllm: the offsets add up the reported token strings
      auto add = [&](int32_t id, const StepInfo* step, size_t offset) {
        const std::string token = token_string(tok, id, as_ids);
        tokens.push_back(token);
        token_ids.push_back(id);
        offsets.push_back(vllm ? running : offset);
        running += code_points(token);
        if (step == nullptr) {
          token_lps.push_back(nullptr);
          tops.push_back(nullptr);
          top_ids.push_back(nullptr);
          return;
        }
        token_lps.push_back(step->logprob);
        json t = json::object(), ti = json::array();
        if (vllm) t[token] = step->logprob;  // vLLM lists the chosen token too
        for (size_t k = 0; k < step->top.size() && k < static_cast<size_t>(top); ++k) {
          const auto& ch = step->top[k];
          std::string s = token_string(tok, ch.id, as_ids);
          if (!t.contains(s)) t[s] = ch.logprob;  // the more likely of equal strings
          ti.push_back({{"id", ch.id}, {"token", s}, {"logprob", ch.logprob}});
        }
        tops.push_back(std::move(t));
        top_ids.push_back(std::move(ti));
      };
      if (echo) {
        for (size_t i = 0; i < prompt_ids.size(); ++i) {
          add(prompt_ids[i], i == 0 ? nullptr : &r.prompt_steps[i - 1], prompt_offsets[i]);
        }
      }
      for (size_t i = 0; i < g.steps.size(); ++i)
        add(g.steps[i]->id, g.steps[i], base + g.offsets[i]);
      logprobs = {{"tokens", std::move(tokens)},
                  {"token_logprobs", std::move(token_lps)},
                  {"top_logprobs", std::move(tops)},
                  {"text_offset", std::move(offsets)}};
      if (!vllm) {  // prov's extensions (endpoint.h reads them)
        logprobs["token_ids"] = std::move(token_ids);
        logprobs["top_logprobs_ids"] = std::move(top_ids);
      }
    }
    json choice = {{"index", 0},
                   {"text", echo_text + g.text},
                   {"logprobs", std::move(logprobs)},
                   {"finish_reason", g.stopped ? "stop" : "length"}};
    if (vllm) {
      choice["stop_reason"] = g.stop_string.empty() ? json(nullptr) : json(g.stop_string);
      choice["prompt_logprobs"] =
          prompt_top >= 0 ? vllm_prompt_logprobs(prompt_ids, r, prompt_top) : json(nullptr);
      if (want_ids) {
        json out_ids = json::array();
        for (const StepInfo* st : g.steps) out_ids.push_back(st->id);
        choice["prompt_token_ids"] = prompt_ids;
        choice["token_ids"] = std::move(out_ids);
      }
    }
    json j = {{"id", new_id("cmpl-")},
              {"object", "text_completion"},
              {"created", static_cast<int64_t>(std::time(nullptr))},
              {"model", backend.model_name()},
              {"choices", json::array({std::move(choice)})},
              {"usage", usage(prompt_ids.size(), g.steps.size())}};
    res.set_content(dump(j), "application/json");
  }

  // A count of alternatives (`logprobs`, `prompt_logprobs`, `top_logprobs`) within top_cap():
  // beyond it, vLLM's message ("Requested sample logprobs of 30, which is greater than max
  // allowed: 20"), else the field's range.
  std::optional<HttpError> read_logprobs_count(const json& body, const char* key, const char* what,
                                               int64_t* out) const {
    int64_t v = *out;
    if (auto e = read_int(body, key, 0, 1000000, &v)) return e;
    if (v > top_cap()) {
      if (options.dialect == Dialect::kVllm) {
        return HttpError{400,
                         std::string("Requested ") + what + " logprobs of " + std::to_string(v) +
                             ", which is greater than max allowed: " + std::to_string(top_cap())};
      }
      return HttpError{400, std::string("'") + key + "' must be between 0 and " +
                                std::to_string(top_cap()) + ", got " + std::to_string(v)};
    }
    *out = v;
    return std::nullopt;
  }

  // vLLM's choices[0].prompt_logprobs: null for the first token, then per token the top `k` and
  // the token itself, keyed by id.
  json vllm_prompt_logprobs(const std::vector<int32_t>& ids, const BackendResult& r,
                            int64_t k) const {
    const auto& tok = backend.tokenizer();
    json out = json::array({nullptr});
    for (size_t i = 1; i < ids.size(); ++i) {
      const StepInfo& st = r.prompt_steps[i - 1];
      json d = json::object();
      json rank = nullptr;
      for (size_t j = 0; j < st.top.size() && j < static_cast<size_t>(k); ++j) {
        const auto& ch = st.top[j];
        if (ch.id == st.id) rank = j + 1;
        d[std::to_string(ch.id)] = {{"logprob", ch.logprob},
                                    {"rank", j + 1},
                                    {"decoded_token", token_string(tok, ch.id, false)}};
      }
      d[std::to_string(st.id)] = {{"logprob", st.logprob},
                                  {"rank", rank},
                                  {"decoded_token", token_string(tok, st.id, false)}};
      out.push_back(std::move(d));
    }
    return out;
  }

  void handle_chat(const std::string& text, httplib::Response& res) {
    json body;
    if (auto e = parse_body(text, &body)) return fail(res, e->status, e->message);
    const auto& tok = backend.tokenizer();
    auto mit = body.find("messages");
    if (mit == body.end() || !mit->is_array() || mit->empty() || mit->size() > 10000) {
      return fail(res, 400, "'messages' must be a non-empty list of {role, content}");
    }
    std::vector<std::pair<std::string, std::string>> messages;
    size_t message_bytes = 0;
    for (size_t i = 0; i < mit->size(); ++i) {
      const json& m = (*mit)[i];
      std::string where = "messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        return fail(res, 400, where + " must be an object with a string 'role'");
      }
      std::string content;
      auto cit = m.find("content");
      if (cit == m.end() || cit->is_null()) {
        content = "";
      } else if (cit->is_string()) {
        content = cit->get<std::string>();
      } else if (cit->is_array()) {  // [{"type": "text", "text": ...}, ...]
        for (const auto& part : *cit) {
          if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
              !part["text"].is_string()) {
            return fail(res, 400, where + ".content: only text parts are supported");
          }
          content += part["text"].get<std::string>();
        }
      } else {
        return fail(res, 400, where + ".content must be a string or a list of text parts");
      }
      message_bytes += content.size();
      messages.emplace_back(m["role"].get<std::string>(), std::move(content));
    }
    if (auto e = check_text_fits(message_bytes, "the messages")) {
      return fail(res, e->status, e->message);
    }
    if (options.reasoning_model && refuse_as_reasoning_model(body, res)) return;
    // max_completion_tokens is OpenAI's newer name of max_tokens.
    if (body.contains("max_completion_tokens") && !body.contains("max_tokens")) {
      body["max_tokens"] = body["max_completion_tokens"];
    }
    Common c;
    if (auto e = read_common(body, options, &c)) return fail(res, e->status, e->message);
    bool want_logprobs = false, as_ids = false;
    if (auto e = read_bool(body, "logprobs", &want_logprobs)) {
      return fail(res, e->status, e->message);
    }
    if (options.dialect == Dialect::kVllm) {
      if (auto e = read_bool(body, "return_tokens_as_token_ids", &as_ids)) {
        return fail(res, e->status, e->message);
      }
    }
    int64_t top = 0;
    if (auto e = read_logprobs_count(body, "top_logprobs", "sample", &top)) {
      return fail(res, e->status, e->message);
    }
    if (top > 0 && !want_logprobs) {
      return fail(res, 400, "'top_logprobs' needs 'logprobs': true");
    }

    Slot slot(admission);
    if (auto e = busy_error(slot)) return send_busy(res, *e);
    auto id_string = [&](std::optional<int32_t> id) {
      if (!id) return std::string();
      auto s = tok.id_to_token(*id);
      return s ? *s : std::string();
    };
    const std::string tmpl = backend.chat_template();
    auto formatted =
        apply_chat_template(tmpl, messages, id_string(tok.bos_id()), id_string(tok.eos_id()));
    if (!formatted.is_ok()) {
      return fail(res, formatted.status().code() == StatusCode::kInvalidArgument ? 400 : 500,
                  "chat template: " + formatted.status().message());
    }
    // Templates write BOS themselves; the plain fallback relies on the tokenizer's.
    auto ids = tok.encode(formatted.value(), tmpl.empty());
    if (!ids.is_ok()) return fail(res, 500, "tokenizer: " + ids.status().message());
    if (ids->empty()) return fail(res, 400, "the formatted conversation is empty");

    CompletionRequest creq;
    creq.prompt_ids = ids.value();
    creq.max_tokens = c.max_tokens;
    creq.top_k = want_logprobs ? static_cast<int>(top) : 0;
    creq.temperature = c.temperature;
    creq.seed = c.seed;
    creq.stop_ids = stop_ids(c.ignore_eos, true);
    auto result = backend.complete(creq);
    if (!result.is_ok()) {
      return fail(res, status_for(result.status()), result.status().message());
    }
    auto gen = finish_generation(tok, creq.prompt_ids, result.value(), creq.stop_ids, c.stop);
    if (!gen.is_ok()) return fail(res, 500, "tokenizer: " + gen.status().message());
    const Generated& g = gen.value();

    json logprobs = nullptr;
    if (want_logprobs) {
      json content = json::array();
      for (const StepInfo* step : g.steps) {
        std::string s = token_string(tok, step->id, as_ids);
        json alts = json::array();
        for (const auto& ch : step->top) {
          std::string a = token_string(tok, ch.id, as_ids);
          alts.push_back({{"token", a}, {"logprob", ch.logprob}, {"bytes", bytes_of(a)}});
        }
        content.push_back({{"token", s},
                           {"logprob", step->logprob},
                           {"bytes", bytes_of(s)},
                           {"top_logprobs", std::move(alts)}});
      }
      logprobs = {{"content", std::move(content)}};
    }
    json j = {{"id", new_id("chatcmpl-")},
              {"object", "chat.completion"},
              {"created", static_cast<int64_t>(std::time(nullptr))},
              {"model", backend.model_name()},
              {"choices",
               {{{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", g.text}}},
                 {"logprobs", std::move(logprobs)},
                 {"finish_reason", g.stopped ? "stop" : "length"}}}},
              {"usage", usage(creq.prompt_ids.size(), g.steps.size())}};
    res.set_content(dump(j), "application/json");
  }

  // What OpenAI's reasoning models refuse (ServerOptions::reasoning_model), answered with their
  // error bodies. True when `res` holds the refusal.
  bool refuse_as_reasoning_model(const json& body, httplib::Response& res) {
    auto refuse = [&](const char* param, const char* code, const std::string& message) {
      res.status = 400;
      res.set_content(dump({{"error",
                             {{"message", message},
                              {"type", "invalid_request_error"},
                              {"param", param},
                              {"code", code}}}}),
                      "application/json");
      return true;
    };
    auto given = [&](const char* key) { return body.contains(key) && !body[key].is_null(); };
    if (given("max_tokens")) {
      return refuse("max_tokens", "unsupported_parameter",
                    "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                    "'max_completion_tokens' instead.");
    }
    for (const char* key : {"logprobs", "top_logprobs"}) {
      if (given(key)) {
        return refuse(
            key, "unsupported_parameter",
            std::string("Unsupported parameter: '") + key + "' is not supported with this model.");
      }
    }
    if (given("temperature") &&
        !(body["temperature"].is_number() && body["temperature"].get<double>() == 1.0)) {
      return refuse("temperature", "unsupported_value",
                    "Unsupported value: 'temperature' does not support " +
                        body["temperature"].dump() +
                        " with this model. Only the default (1) value is supported.");
    }
    return false;
  }

  void install_routes() {
    // Runs once the headers are in and before any of the body is read.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (t_stream != nullptr) t_stream->begin_body();
      if (auto e = gate(req)) {
        fail(res, e->status, e->message);
        return httplib::Server::HandlerResponse::Handled;
      }
      if (refuse_early(req, res)) return httplib::Server::HandlerResponse::Handled;
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // A client that waits for "100 Continue" before sending its body gets the refusal instead.
    http.set_expect_100_continue_handler(
        [this](const httplib::Request& req, httplib::Response& res) {
          if (auto e = gate(req)) {
            fail(res, e->status, e->message);
            return e->status;
          }
          return 100;
        });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"status\":\"ok\"}", "application/json");
    });
    for (const std::string& path : info_paths(options.dialect)) {
      http.Get(path.c_str(), [this, path](const httplib::Request&, httplib::Response& res) {
        if (path == "/v1/models") return handle_models(res);
        res.set_content(dump(server_description(*this, path)), "application/json");
      });
    }
    // Bodies are read by the handlers, through read_body's cap (httplib has none for chunked).
    for (const std::string& path : post_paths(options.dialect)) {
      http.Post(path.c_str(), [this, path](const httplib::Request& req, httplib::Response& res,
                                           const httplib::ContentReader& reader) {
        std::string text;
        if (auto e = read_body(req, reader, &text)) return fail(res, e->status, e->message);
        if (path == "/v1/completions") return handle_completions(text, res);
        if (path == "/v1/chat/completions") return handle_chat(text, res);
        switch (options.dialect) {
          case Dialect::kSglang:
            return sglang_generate(*this, text, res);
          case Dialect::kTgi:
            return tgi_generate(*this, text, res, path == "/generate_stream");
          case Dialect::kLlamaCpp:
            return llamacpp_completion(*this, text, res);
          case Dialect::kAnthropic:
            return anthropic_messages(*this, text, res);
          case Dialect::kOpenAI:
          case Dialect::kVllm:
            break;
        }
        fail(res, 404, "no such endpoint: POST " + path);
      });
    }
    // Errors httplib produces itself (404, 413, 400 for a malformed request line) get the JSON
    // error body too; responses that already have one are left alone.
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          std::string message;
          // httplib answers 400 when it cannot read the headers; say why when it was ours.
          if (res.status == 400 && t_stream != nullptr && !t_stream->in_body() &&
              t_stream->timed_out()) {
            res.status = 408;
            message = "the request headers did not arrive in time";
          } else if (res.status == 400 && t_stream != nullptr && !t_stream->in_body() &&
                     t_stream->over_limit()) {
            res.status = 431;
            message = "request line and headers larger than the " +
                      std::to_string(options.max_header_bytes) + "-byte limit";
          } else if (res.status == 404) {
            message = "no such endpoint: " + req.method + " " + req.path;
          } else if (res.status == 413) {
            message = "request body larger than the " + std::to_string(options.max_body_bytes) +
                      "-byte limit";
          } else {
            message = "HTTP " + std::to_string(res.status) + " for " + req.method + " " + req.path;
          }
          fail(res, res.status, message);
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler(
        [this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            if (ep) std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          fail(res, 500, "internal error: " + what);
        });
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  stop();
}

Result<std::unique_ptr<Server>> Server::start(CompletionBackend& backend,
                                              const ServerOptions& options) {
  if (options.threads < 1 || options.threads > 1024) {
    return invalid_argument("server threads must be between 1 and 1024, got " +
                            std::to_string(options.threads));
  }
  if (options.port < 0 || options.port > 65535) {
    return invalid_argument("port must be between 0 and 65535, got " +
                            std::to_string(options.port));
  }
  if (options.max_top_logprobs < -1 || options.max_top_logprobs > 100000 ||
      options.max_tokens_limit < 0 || options.rate_limit_rps < 0) {
    return invalid_argument(
        "max_top_logprobs must be -1 (the dialect's default) to 100000; max_tokens_limit and "
        "rate_limit_rps must not be negative");
  }
  // Connection threads stay below FD_SETSIZE worth of sockets (cpp-httplib answers 500 past it).
  if (options.max_connections < 1 || options.max_connections > 512) {
    return invalid_argument("max_connections must be between 1 and 512, got " +
                            std::to_string(options.max_connections));
  }
  if (options.max_queued_requests < 0 || options.retry_after_s < 0 ||
      options.shutdown_grace_ms < 0) {
    return invalid_argument(
        "max_queued_requests, retry_after_s and shutdown_grace_ms must not be negative");
  }
  if (options.read_timeout_ms < 1 || options.request_timeout_ms < 1 ||
      options.write_timeout_ms < 1) {
    return invalid_argument(
        "read_timeout_ms, request_timeout_ms and write_timeout_ms must be positive");
  }
  if (options.max_header_bytes < 1024 || options.max_body_bytes < 1 ||
      options.max_prompt_bytes_per_token < 1) {
    return invalid_argument(
        "max_header_bytes must be at least 1024; max_body_bytes and max_prompt_bytes_per_token "
        "must be positive");
  }
  auto impl = std::make_unique<Impl>(backend, options);
  Impl* p = impl.get();
  if (!p->stop_signal.valid() || !p->lingerer.start()) {
    return io_error("cannot start the server: no pipe or thread for its connections");
  }
  const size_t connections = static_cast<size_t>(options.max_connections);
  p->http.new_task_queue = [connections] { return new ConnectionPool(connections); };
  // Second lines of defence: the gate refuses these first (the connection code does not use
  // httplib's keep-alive loop: one request per connection).
  p->http.set_payload_max_length(options.max_body_bytes);
  p->http.set_read_timeout(std::chrono::milliseconds(options.read_timeout_ms));
  p->http.set_write_timeout(std::chrono::milliseconds(options.write_timeout_ms));
  p->http.set_keep_alive_max_count(1);
  p->http.set_keep_alive_timeout(1);
  p->http.set_tcp_nodelay(true);  // small JSON responses: no Nagle delay between writes
  p->install_routes();
  const std::string where = options.host + ":" + std::to_string(options.port);
  try {
    if (options.port == 0) {
      p->port = p->http.bind_to_any_port(options.host);
      if (p->port <= 0) return io_error("cannot bind " + where + " (no free port or bad host)");
    } else {
      if (!p->http.bind_to_port(options.host, options.port)) {
        return io_error("cannot bind " + where + " (address in use or bad host)");
      }
      p->port = options.port;
    }
    if (!p->http.widen_backlog()) return io_error("cannot listen on " + where);
    p->thread = std::thread([p] {
      p->http.listen_after_bind();
      p->loop_ended = true;
    });
  } catch (const std::exception& e) {
    return io_error("cannot start the server on " + where + ": " + e.what());
  }
  // The socket already listens (connections queue in its backlog); wait until the accept loop
  // runs so that stop() can end it.
  while (!p->http.is_running() && !p->loop_ended) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!p->http.is_running()) {  // the accept loop failed at once
    p->thread.join();
    return io_error("cannot accept connections on " + where);
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::port() const {
  return impl_->port;
}

void Server::stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  // Reads end at once, queued requests get 503, then the accept loop ends and joins the
  // connection threads (model calls in flight finish and write their answers).
  impl_->stop_signal.raise();
  impl_->admission.stop();
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->lingerer.stop();
  impl_->cv.notify_all();
}

void Server::wait() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait(lock, [this] { return impl_->stopped; });
}

// ---------------------------------------------------------------------------------------------
// Chat templates.

std::string read_chat_template(const std::string& model_path) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::is_directory(model_path, ec)
                                  ? std::filesystem::path(model_path)
                                  : std::filesystem::path(model_path).parent_path();
  const auto cfg = dir / "tokenizer_config.json";
  if (!std::filesystem::is_regular_file(cfg, ec)) return "";
  auto text = read_small_file(cfg.string(), "tokenizer_config.json");
  if (!text.is_ok()) return "";
  auto parsed = parse_json(*text, "tokenizer_config.json");
  if (!parsed.is_ok() || !parsed->is_object()) return "";
  auto it = parsed->find("chat_template");
  return it != parsed->end() && it->is_string() ? it->get<std::string>() : "";
}

namespace {

enum class ChatFamily { kPlain, kChatMl, kLlama3, kLlama2, kZephyr };

bool known_role(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool";
}

}  // namespace

Result<std::string> apply_chat_template(
    const std::string& template_text,
    const std::vector<std::pair<std::string, std::string>>& messages, const std::string& bos,
    const std::string& eos) {
  ChatFamily family;
  if (template_text.empty())
    family = ChatFamily::kPlain;
  else if (template_text.find("<|im_start|>") != std::string::npos)
    family = ChatFamily::kChatMl;
  else if (template_text.find("<|start_header_id|>") != std::string::npos)
    family = ChatFamily::kLlama3;
  else if (template_text.find("[INST]") != std::string::npos)
    family = ChatFamily::kLlama2;
  else if (template_text.find("<|user|>") != std::string::npos)
    family = ChatFamily::kZephyr;
  else
    return unsupported(
        "chat template of an unrecognised family (recognised: ChatML <|im_start|>, Llama 3 "
        "<|start_header_id|>, Llama 2 / Mistral [INST], Zephyr <|user|>)");
  if (messages.empty()) return invalid_argument("no messages to format");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!known_role(messages[i].first)) {
      return invalid_argument("message " + std::to_string(i) + " has role '" + messages[i].first +
                              "' (expected system, user, assistant or tool)");
    }
  }
  std::string out;
  switch (family) {
    case ChatFamily::kPlain: {
      for (const auto& [role, content] : messages) {
        std::string r = role;
        r[0] = static_cast<char>(r[0] - 'a' + 'A');
        out += r + ": " + content + "\n";
      }
      out += "Assistant:";
      break;
    }
    case ChatFamily::kChatMl:
      for (const auto& [role, content] : messages) {
        out += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
      }
      out += "<|im_start|>assistant\n";
      break;
    case ChatFamily::kLlama3:
      out = bos.empty() ? "<|begin_of_text|>" : bos;
      for (const auto& [role, content] : messages) {
        out +=
            "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + trim(content) + "<|eot_id|>";
      }
      out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatFamily::kLlama2: {
      const std::string b = bos.empty() ? "<s>" : bos;
      const std::string e = eos.empty() ? "</s>" : eos;
      size_t i = 0;
      std::string system;
      bool has_system = messages[0].first == "system";
      if (has_system) {
        system = messages[0].second;
        i = 1;
      }
      if (i == messages.size()) return invalid_argument("a system message needs a user message");
      for (size_t turn = 0; i < messages.size(); ++i, ++turn) {
        const std::string want = turn % 2 == 0 ? "user" : "assistant";
        if (messages[i].first != want) {
          return invalid_argument(
              "Llama 2 chat needs user and assistant messages alternating "
              "(after an optional first system message); message " +
              std::to_string(i) + " is '" + messages[i].first + "'");
        }
        std::string content = messages[i].second;
        if (turn == 0 && has_system) {
          content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
        }
        if (want == "user") {
          out += b + "[INST] " + trim(content) + " [/INST]";
        } else {
          out += " " + trim(content) + " " + e;
        }
      }
      if (messages.back().first != "user") {
        return invalid_argument("Llama 2 chat needs the last message to be from the user");
      }
      break;
    }
    case ChatFamily::kZephyr: {
      const std::string e = eos.empty() ? "</s>" : eos;
      for (const auto& [role, content] : messages) {
        out += "<|" + role + "|>\n" + content + e + "\n";
      }
      out += "<|assistant|>\n";
      break;
    }
  }
  return out;
}

}  // namespace prov::probes
