// OpenAI-compatible HTTP server (server.h) on cpp-httplib.
//
// Response details beyond the OpenAI API (documented here and in endpoint.h, whose client reads
// them when present):
//   * completions `logprobs.token_ids`: the id of every reported token (same order as `tokens`);
//   * completions `logprobs.top_logprobs_ids`: per step a list of {"id", "token", "logprob"},
//     most likely first (ties: lower id first), null where `top_logprobs` is null. Two ids can
//     decode to the same string, and `top_logprobs` (an object keyed by that string) keeps only
//     the more likely of them; this list keeps every id.
// Token strings are the decoding of the single id (special tokens rendered), or "token_id:N" with
// `return_tokens_as_token_ids`. `text_offset` counts Unicode code points (as Python's len()) into
// the returned text; with `echo` and a string prompt that text starts with the prompt exactly as
// sent, and tokens the tokenizer's post-processing added (such as BOS) take no room in it.
#include "probes/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <exception>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <openssl/crypto.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "model/formats/config.h"

namespace prov::probes {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Small text helpers.

// Number of Unicode code points (bytes that are not UTF-8 continuation bytes); invalid bytes
// count one each.
size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

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

// ---------------------------------------------------------------------------------------------
// Requests and responses.

struct HttpError {
  int status;
  std::string message;
};

std::string error_type(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string dump(const json& j) {
  // Floats print with max_digits10 significant digits, so they parse back to the same value;
  // bytes that are not UTF-8 (possible in decoded token text) become U+FFFD.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  json j = {{"error", {{"message", message}, {"type", error_type(status)}, {"code", status}}}};
  res.set_content(dump(j), "application/json");
}

int status_for(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument ? 400 : 500;
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
  if (auto it = body.find("temperature"); it != body.end() && !it->is_null()) {
    if (!it->is_number()) return HttpError{400, "'temperature' must be a number"};
    double t = it->get<double>();
    if (!std::isfinite(t) || t < 0 || t > 2) {
      return HttpError{400, "'temperature' must be between 0 and 2"};
    }
    c->temperature = t;
  }
  if (auto it = body.find("seed"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return HttpError{400, "'seed' must be an integer"};
    c->seed =
        it->is_number_unsigned() ? it->get<uint64_t>() : static_cast<uint64_t>(it->get<int64_t>());
  }
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      c->stop.push_back(it->get<std::string>());
    } else if (it->is_array() && it->size() <= 16) {
      for (const auto& s : *it) {
        if (!s.is_string()) return HttpError{400, "'stop' must be a string or a list of strings"};
        c->stop.push_back(s.get<std::string>());
      }
    } else {
      return HttpError{400, "'stop' must be a string or a list of at most 16 strings"};
    }
    for (const auto& s : c->stop) {
      if (s.empty() || s.size() > 1024) {
        return HttpError{400, "each 'stop' string must be 1 to 1024 bytes long"};
      }
    }
  }
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

// A generated sequence after stop-string handling.
struct Generated {
  std::vector<const StepInfo*> steps;  // reported tokens
  std::vector<size_t> offsets;         // code-point offset of each within `text`
  std::string text;
  bool stopped = false;
};

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
    text.resize(cut);
    g.stopped = true;
  }
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

// cpp-httplib listens with a backlog of 5: a burst of concurrent clients beyond that has its
// connection attempts dropped and retried by the kernel a second later. Listening again on the
// bound socket raises the backlog (POSIX allows listen() on a listening socket).
class HttpServer : public httplib::Server {
 public:
  bool widen_backlog() {
    socket_t sock = svr_sock_;
    return sock != INVALID_SOCKET && ::listen(sock, SOMAXCONN) == 0;
  }
};

}  // namespace

struct Server::Impl {
  CompletionBackend& backend;
  ServerOptions options;
  HttpServer http;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> loop_ended{false};

  Impl(CompletionBackend& b, ServerOptions o) : backend(b), options(std::move(o)) {}

  std::string new_id(const char* prefix) { return prefix + std::to_string(next_id++); }

  bool authorized(const httplib::Request& req) const {
    if (options.api_key.empty()) return true;
    std::string want = "Bearer " + options.api_key;
    std::string got = req.get_header_value("Authorization");
    return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
  }

  // Parses the body as a JSON object and checks `model`.
  std::optional<HttpError> parse_body(const httplib::Request& req, json* body) {
    auto parsed = model::parse_json_bounded(req.body, "request body");
    if (!parsed.is_ok()) return HttpError{400, parsed.status().message()};
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

  std::vector<int32_t> stop_ids(bool ignore_eos, bool chat) const {
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

  void handle_completions(const httplib::Request& req, httplib::Response& res) {
    json body;
    if (auto e = parse_body(req, &body)) return send_error(res, e->status, e->message);
    const auto& tok = backend.tokenizer();

    // Prompt: a string, a list of ids, or a one-element list of either.
    auto pit = body.find("prompt");
    if (pit == body.end()) return send_error(res, 400, "'prompt' is required");
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
      auto full = tok.encode(*prompt_text, true);
      if (!full.is_ok()) return send_error(res, 500, "tokenizer: " + full.status().message());
      auto plain = tok.encode(*prompt_text, false);
      if (!plain.is_ok()) return send_error(res, 500, "tokenizer: " + plain.status().message());
      prompt_ids = std::move(full).value();
      added = added_token_span(prompt_ids, plain.value());
    } else if (prompt->is_array() && !prompt->empty() &&
               std::all_of(prompt->begin(), prompt->end(),
                           [](const json& v) { return v.is_string() || v.is_array(); })) {
      return send_error(res, 400,
                        "batches of several prompts are not supported; send one "
                        "prompt per request");
    } else if (prompt->is_array()) {
      for (const auto& v : *prompt) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
            v.get<int64_t>() >= tok.vocab_size()) {
          return send_error(res, 400,
                            "'prompt' must be a string or a list of token ids in [0, " +
                                std::to_string(tok.vocab_size()) + ")");
        }
        prompt_ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
    } else {
      return send_error(res, 400, "'prompt' must be a string or a list of token ids");
    }
    if (prompt_ids.empty()) return send_error(res, 400, "'prompt' is empty");

    Common c;
    if (auto e = read_common(body, options, &c)) return send_error(res, e->status, e->message);
    int64_t top = -1;
    if (auto e = read_int(body, "logprobs", 0, options.max_top_logprobs, &top)) {
      return send_error(res, e->status, e->message);
    }
    bool echo = false, as_ids = false;
    if (auto e = read_bool(body, "echo", &echo)) return send_error(res, e->status, e->message);
    if (auto e = read_bool(body, "return_tokens_as_token_ids", &as_ids)) {
      return send_error(res, e->status, e->message);
    }
    bool want_logprobs = top >= 0;

    CompletionRequest creq;
    creq.prompt_ids = prompt_ids;
    creq.max_tokens = c.max_tokens;
    creq.top_k = want_logprobs ? static_cast<int>(top) : 0;
    creq.echo = echo && want_logprobs;
    creq.temperature = c.temperature;
    creq.seed = c.seed;
    creq.stop_ids = stop_ids(c.ignore_eos, false);
    auto result = backend.complete(creq);
    if (!result.is_ok()) {
      return send_error(res, status_for(result.status()), result.status().message());
    }
    const BackendResult& r = result.value();
    if (creq.echo && r.prompt_steps.size() + 1 != prompt_ids.size()) {
      return send_error(res, 500,
                        "backend scored " + std::to_string(r.prompt_steps.size()) +
                            " prompt tokens, expected " + std::to_string(prompt_ids.size() - 1));
    }
    auto gen = finish_generation(tok, prompt_ids, r, creq.stop_ids, c.stop);
    if (!gen.is_ok()) return send_error(res, 500, "tokenizer: " + gen.status().message());
    const Generated& g = gen.value();

    // Echoed prompt text and its token offsets.
    std::string echo_text;
    std::vector<size_t> prompt_offsets;
    if (echo) {
      auto pieces_r = token_pieces(tok, prompt_ids);
      if (!pieces_r.is_ok())
        return send_error(res, 500, "tokenizer: " + pieces_r.status().message());
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
      auto add = [&](int32_t id, const StepInfo* step, size_t offset) {
        tokens.push_back(token_string(tok, id, as_ids));
        token_ids.push_back(id);
        offsets.push_back(offset);
        if (step == nullptr) {
          token_lps.push_back(nullptr);
          tops.push_back(nullptr);
          top_ids.push_back(nullptr);
          return;
        }
        token_lps.push_back(step->logprob);
        json t = json::object(), ti = json::array();
        for (const auto& ch : step->top) {
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
                  {"token_ids", std::move(token_ids)},
                  {"token_logprobs", std::move(token_lps)},
                  {"top_logprobs", std::move(tops)},
                  {"top_logprobs_ids", std::move(top_ids)},
                  {"text_offset", std::move(offsets)}};
    }
    json j = {{"id", new_id("cmpl-")},
              {"object", "text_completion"},
              {"created", static_cast<int64_t>(std::time(nullptr))},
              {"model", backend.model_name()},
              {"choices",
               {{{"index", 0},
                 {"text", echo_text + g.text},
                 {"logprobs", std::move(logprobs)},
                 {"finish_reason", g.stopped ? "stop" : "length"}}}},
              {"usage", usage(prompt_ids.size(), g.steps.size())}};
    res.set_content(dump(j), "application/json");
  }

  void handle_chat(const httplib::Request& req, httplib::Response& res) {
    json body;
    if (auto e = parse_body(req, &body)) return send_error(res, e->status, e->message);
    const auto& tok = backend.tokenizer();
    auto mit = body.find("messages");
    if (mit == body.end() || !mit->is_array() || mit->empty() || mit->size() > 10000) {
      return send_error(res, 400, "'messages' must be a non-empty list of {role, content}");
    }
    std::vector<std::pair<std::string, std::string>> messages;
    for (size_t i = 0; i < mit->size(); ++i) {
      const json& m = (*mit)[i];
      std::string where = "messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        return send_error(res, 400, where + " must be an object with a string 'role'");
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
            return send_error(res, 400, where + ".content: only text parts are supported");
          }
          content += part["text"].get<std::string>();
        }
      } else {
        return send_error(res, 400, where + ".content must be a string or a list of text parts");
      }
      messages.emplace_back(m["role"].get<std::string>(), std::move(content));
    }
    Common c;
    if (auto e = read_common(body, options, &c)) return send_error(res, e->status, e->message);
    bool want_logprobs = false;
    if (auto e = read_bool(body, "logprobs", &want_logprobs)) {
      return send_error(res, e->status, e->message);
    }
    int64_t top = 0;
    if (auto e = read_int(body, "top_logprobs", 0, options.max_top_logprobs, &top)) {
      return send_error(res, e->status, e->message);
    }
    if (top > 0 && !want_logprobs) {
      return send_error(res, 400, "'top_logprobs' needs 'logprobs': true");
    }

    auto id_string = [&](std::optional<int32_t> id) {
      if (!id) return std::string();
      auto s = tok.id_to_token(*id);
      return s ? *s : std::string();
    };
    const std::string tmpl = backend.chat_template();
    auto formatted =
        apply_chat_template(tmpl, messages, id_string(tok.bos_id()), id_string(tok.eos_id()));
    if (!formatted.is_ok()) {
      return send_error(res, formatted.status().code() == StatusCode::kInvalidArgument ? 400 : 500,
                        "chat template: " + formatted.status().message());
    }
    // Templates write BOS themselves; the plain fallback relies on the tokenizer's.
    auto ids = tok.encode(formatted.value(), tmpl.empty());
    if (!ids.is_ok()) return send_error(res, 500, "tokenizer: " + ids.status().message());
    if (ids->empty()) return send_error(res, 400, "the formatted conversation is empty");

    CompletionRequest creq;
    creq.prompt_ids = ids.value();
    creq.max_tokens = c.max_tokens;
    creq.top_k = want_logprobs ? static_cast<int>(top) : 0;
    creq.temperature = c.temperature;
    creq.seed = c.seed;
    creq.stop_ids = stop_ids(c.ignore_eos, true);
    auto result = backend.complete(creq);
    if (!result.is_ok()) {
      return send_error(res, status_for(result.status()), result.status().message());
    }
    auto gen = finish_generation(tok, creq.prompt_ids, result.value(), creq.stop_ids, c.stop);
    if (!gen.is_ok()) return send_error(res, 500, "tokenizer: " + gen.status().message());
    const Generated& g = gen.value();

    json logprobs = nullptr;
    if (want_logprobs) {
      json content = json::array();
      for (const StepInfo* step : g.steps) {
        std::string s = token_string(tok, step->id, false);
        json alts = json::array();
        for (const auto& ch : step->top) {
          std::string a = token_string(tok, ch.id, false);
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

  void install_routes() {
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (starts_with(req.path, "/v1/") && !authorized(req)) {
        send_error(res, 401, "missing or wrong API key (send 'Authorization: Bearer <key>')");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"status\":\"ok\"}", "application/json");
    });
    http.Get("/v1/models",
             [this](const httplib::Request&, httplib::Response& res) { handle_models(res); });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle_completions(req, res);
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle_chat(req, res);
    });
    // Errors httplib produces itself (404, 413, 400 for a malformed request line) get the JSON
    // error body too; responses that already have one are left alone.
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          std::string message;
          if (res.status == 404) {
            message = "no such endpoint: " + req.method + " " + req.path;
          } else if (res.status == 413) {
            message = "request body larger than the " + std::to_string(options.max_body_bytes) +
                      "-byte limit";
          } else {
            message = "HTTP " + std::to_string(res.status) + " for " + req.method + " " + req.path;
          }
          send_error(res, res.status, message);
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            if (ep) std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          send_error(res, 500, "internal error: " + what);
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
  if (options.max_top_logprobs < 0 || options.max_tokens_limit < 0) {
    return invalid_argument("max_top_logprobs and max_tokens_limit must not be negative");
  }
  auto impl = std::make_unique<Impl>(backend, options);
  Impl* p = impl.get();
  const size_t threads = static_cast<size_t>(options.threads);
  p->http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  p->http.set_payload_max_length(options.max_body_bytes);
  p->http.set_read_timeout(30, 0);
  p->http.set_write_timeout(60, 0);
  // One request per connection: cpp-httplib keeps a worker on a keep-alive connection until
  // it closes or idles out, so clients holding idle connections (a pool of them, as HTTP
  // clients keep) would starve the other clients of the `threads` workers. Reconnecting costs
  // far less than a model call.
  p->http.set_keep_alive_max_count(1);
  p->http.set_keep_alive_timeout(2);
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
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->cv.notify_all();
}

void Server::wait() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait(lock, [this] { return impl_->stopped; });
}

// ---------------------------------------------------------------------------------------------
// Chat templates.

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
