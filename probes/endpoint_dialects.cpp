// The engine clients of EndpointClient (endpoint.h, endpoint_internal.h): what each dialect
// sends for a probe and how its answer becomes a ProbeRecord. endpoint.h documents every mapping.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "probes/endpoint_internal.h"

namespace prov::probes::client {

namespace {

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A short, printable excerpt of an untrusted text for messages.
std::string excerpt(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < 80; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  return out;
}

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

// ---- the scored text of an echo -------------------------------------------------------------

// One token of prompt + text as an engine reported it when scoring.
struct EchoToken {
  std::string token;  // its string as reported
  std::optional<int32_t> id;
  std::optional<float> logprob;   // none for the first token
  std::optional<TopK> top;        // the alternatives at its position, when reported
  std::optional<int64_t> offset;  // code points into prompt + text, when reported
};

// The scored part of an echo: the tokens from `first` on when the boundary is known (the prompt
// was sent as ids), else the tokens whose offset is at or past the prompt's length (offsets
// summed from the token strings where the engine gives none; a rendered BOS the text lacks
// moves the boundary, as endpoint.h describes).
Result<ScoredText> select_scored(const std::string& url, const std::vector<EchoToken>& toks,
                                 std::optional<size_t> first, const std::string& prompt,
                                 const std::string& text, int top_k,
                                 std::vector<PositionRecord>* positions,
                                 std::vector<int32_t>* prompt_ids = nullptr) {
  const size_t n = toks.size();
  std::vector<int64_t> offsets(n);
  bool all_offsets = n > 0;
  for (const auto& t : toks) all_offsets = all_offsets && t.offset.has_value();
  int64_t run = 0;
  for (size_t i = 0; i < n; ++i) {
    offsets[i] = all_offsets ? *toks[i].offset : run;
    run += static_cast<int64_t>(code_points(toks[i].token));
  }
  int64_t boundary = static_cast<int64_t>(code_points(prompt));
  if (!first && n > 0 && !token_id_key(toks[n - 1].token)) {
    const int64_t end = offsets[n - 1] + static_cast<int64_t>(code_points(toks[n - 1].token));
    const int64_t want = static_cast<int64_t>(code_points(prompt) + code_points(text));
    const int64_t first_len = static_cast<int64_t>(code_points(toks[0].token));
    if (end > want && end - want <= first_len) boundary += end - want;
  }
  ScoredText st;
  st.text = text;
  bool all_ids = true, prompt_has_ids = true;
  std::vector<int32_t> before;
  for (size_t i = 0; i < n; ++i) {
    if (first ? i < *first : offsets[i] < boundary) {
      prompt_has_ids = prompt_has_ids && toks[i].id.has_value();
      if (toks[i].id) before.push_back(*toks[i].id);
      continue;
    }
    const std::string where = url + ": echoed token " + std::to_string(i);
    if (!toks[i].logprob) {
      return corrupt(where +
                     ": no log-probability (a text scored at the very start of the context, or "
                     "a server that does not score echoed tokens)");
    }
    const float lpv = *toks[i].logprob;
    all_ids = all_ids && toks[i].id.has_value();
    st.tokens.push_back(toks[i].token);
    st.ids.push_back(toks[i].id.value_or(-1));
    st.token_logprobs.push_back(lpv);
    st.total_logprob += lpv;
    if (positions != nullptr) {
      PositionRecord pos;
      pos.token = toks[i].token;
      pos.token_logprob = lpv;
      if (toks[i].id) pos.token_id = *toks[i].id;
      if (top_k > 0 && toks[i].top) pos.top = *toks[i].top;
      positions->push_back(std::move(pos));
    }
  }
  if (!all_ids) st.ids.clear();
  if (prompt_ids != nullptr && prompt_has_ids) *prompt_ids = std::move(before);
  if (st.tokens.empty() && !text.empty()) {
    return invalid_argument(url + ": no echoed token starts at or after character " +
                            std::to_string(boundary) +
                            " (the end of the prompt): the scored text merges into the "
                            "prompt's last token; score texts that begin at a token boundary "
                            "(for example with a leading space)");
  }
  return st;
}

// ---- what every engine client shares --------------------------------------------------------

// A limit an engine names when it refuses too many alternatives: vLLM "... max allowed: 20",
// TGI "must be >= 0 and <= 5", OpenAI "Expected a value <= 20".
std::optional<uint32_t> named_cap(const std::string& message) {
  for (const char* marker : {"max allowed: ", "<= ", "less than or equal to "}) {
    size_t at = message.find(marker);
    while (at != std::string::npos) {
      size_t i = at + std::strlen(marker), j = i;
      while (j < message.size() && j - i < 9 &&
             std::isdigit(static_cast<unsigned char>(message[j])))
        ++j;
      if (j > i) return static_cast<uint32_t>(std::stoul(message.substr(i, j - i)));
      at = message.find(marker, at + 1);
    }
  }
  return std::nullopt;
}

// Whether `asked` (--model-name) names the model an engine says it serves (equal, or the same
// last path component: engines report paths).
bool same_model_name(const std::string& asked, const std::string& served) {
  auto tail = [](std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    const size_t p = s.find_last_of('/');
    return p == std::string::npos ? s : s.substr(p + 1);
  };
  return asked.empty() || served.empty() || asked == served || tail(asked) == tail(served);
}

std::string str_or(const json& j, const char* key, const std::string& fallback = "") {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

class EngineBase : public EngineClient {
 public:
  explicit EngineBase(Wire& w) : w_(w), o_(w.options()) {}

 protected:
  // The alternatives to ask for: the probe's, within a cap discover() learnt.
  int k_for(int top_k) const {
    const uint32_t c = cap_.load();
    const int k = std::max(0, top_k);
    return c > 0 ? std::min<int>(k, static_cast<int>(c)) : k;
  }
  json with_model(json r) const {
    if (!o_.model_name.empty()) r["model"] = o_.model_name;
    return r;
  }
  const model::Tokenizer* tok() const { return o_.tokenizer; }
  std::string decode(int32_t id) const {
    if (tok() == nullptr) return "";
    auto s = tok()->decode({id}, false);
    return s.is_ok() ? s.value() : std::string();
  }
  // Token strings for a top-k that has ids only (decoded with the tokenizer).
  void fill_tokens(TopK* t) const {
    if (tok() == nullptr || !t->tokens.empty() || t->ids.empty()) return;
    for (int32_t id : t->ids) t->tokens.push_back(decode(id));
  }
  // Estimated tokens of a text (exact with the tokenizer).
  uint64_t count(const std::string& text, bool special) const {
    if (tok() != nullptr) {
      auto ids = tok()->encode(text, special);
      if (ids.is_ok()) return ids->size();
    }
    return text.size() / 4 + 1;
  }
  uint64_t prompt_count(const Probe& p) const {
    return p.text ? count(*p.text, true) : p.ids->size();
  }
  // The ids of prompt + text as the local runner forms them (prompt with special tokens, text
  // without), or nothing without a tokenizer.
  std::optional<std::pair<std::vector<int32_t>, size_t>> joined_ids(const std::string& prompt,
                                                                    const std::string& text) const {
    if (tok() == nullptr) return std::nullopt;
    auto a = tok()->encode(prompt, true);
    auto b = tok()->encode(text, false);
    if (!a.is_ok() || !b.is_ok() || a->empty()) return std::nullopt;
    std::vector<int32_t> ids = std::move(a).value();
    const size_t n = ids.size();
    ids.insert(ids.end(), b->begin(), b->end());
    return std::make_pair(std::move(ids), n);
  }
  // A probe's cost when the main request is skipped for a bare continuation and each scored text
  // is one more request (completion tokens per scored request: `per_score`).
  ProbeCost scoring_cost(const Probe& p, uint64_t per_score) const {
    ProbeCost c;
    const uint64_t prompt = prompt_count(p);
    if (!(p.continuation && p.greedy_tokens == 0)) {
      c = {1, prompt, static_cast<uint64_t>(std::max(1, p.greedy_tokens))};
    }
    std::vector<std::string> texts = p.score_texts;
    if (p.continuation) texts.push_back(*p.continuation);
    for (const auto& t : texts) {
      c.requests += 1;
      c.prompt_tokens += prompt + count(t, false);
      c.completion_tokens += per_score;
    }
    return c;
  }
  Status check_served(const std::string& served, const std::string& where) const {
    if (same_model_name(o_.model_name, served)) return Status::ok();
    return invalid_argument("the server at " + w_.root() + " serves '" + served + "' (" + where +
                            "), not '" + o_.model_name + "' (--model-name)");
  }
  // GET `path` for the engine's description; a route the engine lacks gives an empty object.
  Result<json> describe(const std::string& path) {
    auto r = w_.get(path);
    if (!r.is_ok() && r.status().code() == StatusCode::kInvalidArgument) return json::object();
    return r;
  }
  // Learns a cap on alternatives from a refusal that names one below `asked`.
  bool learn_cap(const Refusal& refusal, uint32_t asked) {
    if (refusal.http_status != 400 && refusal.http_status != 422) return false;
    auto c = named_cap(refusal.message);
    if (!c || *c >= asked) return false;
    cap_ = std::max<uint32_t>(*c, 0);
    return true;
  }
  EngineInfo base_info(const char* api) const {
    EngineInfo info;
    const DialectTraits& t = dialect_traits(o_.dialect);
    info.engine = t.engine;
    info.api = api;
    info.logprob_mode = t.logprob_mode;
    info.prompt_logprobs = t.prompt_logprobs;
    return info;
  }
  void finish_info(EngineInfo* info, uint32_t want) const {
    const uint32_t c = cap_.load();
    if (c > 0 && c < want) {
      info->top_k_limit = c;
      info->notes.push_back("the engine gives at most " + std::to_string(c) +
                            " alternatives per position (the suite asks for " +
                            std::to_string(want) +
                            "): distributions are compared with a rest "
                            "bucket");
    }
  }

  Wire& w_;
  const EndpointOptions& o_;
  std::atomic<uint32_t> cap_{0};
};

// ---- openai and vllm ------------------------------------------------------------------------

class OpenAIClient final : public EngineBase {
 public:
  OpenAIClient(Wire& w, bool vllm) : EngineBase(w), vllm_(vllm) {}

  // GET /version (vllm), the preflight, and one more when it must learn a cap below `want`.
  uint64_t discover_requests(uint32_t want) const override {
    return (vllm_ ? 2 : 1) + (want > dialect_traits(o_.dialect).top_k_cap ? 1 : 0);
  }

  Result<EngineInfo> discover(uint32_t want) override {
    const std::string api =
        std::string(vllm_ ? "vllm-" : "openai-") + (o_.chat ? "chat" : "completions");
    EngineInfo info = base_info(api.c_str());
    info.prompt_logprobs = !o_.chat;
    if (vllm_) {
      PROV_ASSIGN_OR_RETURN(json v, describe("/version"));
      info.version = str_or(v, "version");
    }
    Headers headers;
    json answer;
    for (int tries = 0;; ++tries) {
      Refusal refusal;
      json req = o_.chat ? chat_request("hello", 1, k_for(static_cast<int>(want)))
                         : completion_request("hello", 1, k_for(static_cast<int>(want)));
      auto r =
          w_.post(o_.chat ? "/v1/chat/completions" : "/v1/completions", req,
                  o_.chat ? Validator(check_chat)
                          : Validator([](const json& j) { return check_completion(j, false); }),
                  &refusal, &headers);
      if (r.is_ok()) {
        answer = std::move(r).value();
        break;
      }
      if (tries >= 4 || !(learn_cap(refusal, want) || (o_.chat && adapt_chat(refusal)))) {
        return r.status().with_context("asking " + w_.root() + " what it serves");
      }
    }
    if (!vllm_ && headers.count("openai-version")) info.version = headers["openai-version"];
    info.served_model = str_or(answer, "model");
    if (o_.chat) {
      if (no_logprobs_) {
        info.logprob_mode = "none";
        info.notes.push_back("the model refuses log-probabilities (a reasoning model): text only");
      }
      if (no_temperature_) {
        info.notes.push_back("the model refuses temperature 0: its continuations are sampled");
      }
      info.token_ids = vllm_ && tok() != nullptr && !no_logprobs_;
    } else {
      const json& lp = answer["choices"][0].value("logprobs", json());
      info.token_ids =
          (vllm_ && tok() != nullptr) || (lp.is_object() && lp.contains("top_logprobs_ids"));
    }
    if (!info.token_ids) info.notes.push_back(ids_note());
    finish_info(&info, want);
    return info;
  }

  ProbeCost cost(const Probe& p) const override {
    if (o_.chat) {
      return {1, prompt_count(p) + 8, static_cast<uint64_t>(std::max(1, p.greedy_tokens))};
    }
    return scoring_cost(p, 1);
  }

  Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index) override {
    ProbeRecord rec;
    rec.index = index;
    rec.probe_id = probe.id;
    const bool has_text = probe.text.has_value();
    if (probe.ids) rec.prompt_ids = *probe.ids;
    if (o_.chat) {
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
      std::vector<int32_t> prompt_ids;
      PROV_ASSIGN_OR_RETURN(ScoredText st, score(*probe.text, *probe.continuation, probe.top_k,
                                                 &positions, &prompt_ids));
      (void)st;
      rec.positions = std::move(positions);
      if (vllm_ && rec.prompt_ids.empty()) rec.prompt_ids = std::move(prompt_ids);
    }
    for (const auto& text : probe.score_texts) {
      PROV_ASSIGN_OR_RETURN(ScoredText st, score(*probe.text, text, 0, nullptr));
      rec.scores.push_back(std::move(st));
    }
    return rec;
  }

 private:
  std::string ids_note() const {
    if (vllm_) {
      return "no --tokenizer named: the engine's token ids are not recorded (token-level "
             "statistics need them; text-level statistics only)";
    }
    return "the engine returns no token ids: text-level statistics only";
  }

  json completion_request(const json& prompt, int max_tokens, int k) const {
    json req = with_model(json::object());
    req["prompt"] = prompt;
    req["max_tokens"] = max_tokens;
    req["temperature"] = 0;
    req["seed"] = 0;
    if (k > 0) req["logprobs"] = k;
    if (vllm_) {
      req["return_token_ids"] = true;
      if (tok() != nullptr) req["return_tokens_as_token_ids"] = true;
    }
    return req;
  }

  json chat_request(const std::string& text, int max_tokens, int k) const {
    json req = with_model(json::object());
    req["messages"] = json::array({{{"role", "user"}, {"content", text}}});
    req[max_completion_tokens_ ? "max_completion_tokens" : "max_tokens"] = max_tokens;
    if (!no_temperature_) {
      req["temperature"] = 0;
      req["seed"] = 0;
    }
    if (k > 0 && !no_logprobs_) {
      req["logprobs"] = true;
      req["top_logprobs"] = k;
      if (vllm_ && tok() != nullptr) req["return_tokens_as_token_ids"] = true;
    }
    return req;
  }

  // A reasoning model's refusal of a parameter: drop it from later requests. True when adapted.
  bool adapt_chat(const Refusal& refusal) {
    if (refusal.http_status != 400 || !refusal.body.is_object()) return false;
    const json& e = refusal.body.value("error", json());
    const std::string code = str_or(e, "code"), param = str_or(e, "param");
    if (code != "unsupported_parameter" && code != "unsupported_value") return false;
    if ((param == "logprobs" || param == "top_logprobs") && !no_logprobs_) {
      no_logprobs_ = true;
    } else if (param == "max_tokens" && !max_completion_tokens_) {
      max_completion_tokens_ = true;
    } else if (param == "temperature" && !no_temperature_) {
      no_temperature_ = true;
    } else {
      return false;
    }
    return true;
  }

  Result<json> post_chat(const std::string& text, int max_tokens, int k) {
    for (int tries = 0;; ++tries) {
      Refusal refusal;
      auto r =
          w_.post("/v1/chat/completions", chat_request(text, max_tokens, k), check_chat, &refusal);
      if (r.is_ok() || tries >= 3 || !adapt_chat(refusal)) return r;
    }
  }

  // The main request: positions[0], the continuation and (vllm) the ids.
  Status main_completion(const Probe& probe, ProbeRecord* rec) {
    const int k = k_for(probe.top_k);
    const json prompt = probe.text ? json(*probe.text) : json(*probe.ids);
    PROV_ASSIGN_OR_RETURN(
        json resp,
        w_.post("/v1/completions", completion_request(prompt, std::max(1, probe.greedy_tokens), k),
                [](const json& j) { return check_completion(j, false); }));
    const json& c = resp["choices"][0];
    if (probe.greedy_tokens > 0 && c.contains("text") && c["text"].is_string()) {
      rec->continuation_text = c["text"].get<std::string>();
    }
    if (k > 0 && c.contains("logprobs") && c["logprobs"].is_object()) {
      const json& lp = c["logprobs"];
      if (lp.contains("top_logprobs") && lp["top_logprobs"].is_array() &&
          !lp["top_logprobs"].empty()) {
        const json* ids = nullptr;
        if (lp.contains("top_logprobs_ids") && lp["top_logprobs_ids"].is_array() &&
            !lp["top_logprobs_ids"].empty()) {
          ids = &lp["top_logprobs_ids"][0];
        }
        PROV_ASSIGN_OR_RETURN(TopK top, completion_top(lp["top_logprobs"][0], ids, k,
                                                       "POST " + w_.api_base() + "/completions"));
        fill_tokens(&top);
        if (!top.logprobs.empty()) {
          PositionRecord pos;
          pos.top = std::move(top);
          rec->positions.push_back(std::move(pos));
        }
      }
    }
    if (vllm_) read_vllm_ids(c, probe, rec);
    return Status::ok();
  }

  // vLLM's return_token_ids: the prompt's ids and the continuation's (a final EOS dropped).
  void read_vllm_ids(const json& c, const Probe& probe, ProbeRecord* rec) const {
    auto ints = [](const json& a, std::vector<int32_t>* out) {
      if (!a.is_array()) return false;
      for (const auto& v : a) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
          out->clear();
          return false;
        }
        out->push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
      return true;
    };
    if (probe.text) ints(c.value("prompt_token_ids", json()), &rec->prompt_ids);
    if (probe.greedy_tokens > 0 && ints(c.value("token_ids", json()), &rec->continuation_ids)) {
      const bool eos = c.value("finish_reason", json()) == "stop" &&
                       c.value("stop_reason", json(nullptr)).is_null();
      if (eos && !rec->continuation_ids.empty()) rec->continuation_ids.pop_back();
    }
  }

  // Echo scoring of prompt + text (endpoint.h); `prompt_ids` (when non-null) gets the ids of the
  // tokens before the scored text, when the engine gave them.
  Result<ScoredText> score(const std::string& prompt, const std::string& text, int top_k,
                           std::vector<PositionRecord>* positions,
                           std::vector<int32_t>* prompt_ids = nullptr) {
    const std::string url = "POST " + w_.api_base() + "/completions";
    const int k = k_for(top_k);
    std::optional<std::pair<std::vector<int32_t>, size_t>> ids;
    if (vllm_) ids = joined_ids(prompt, text);
    json req = with_model(json::object());
    req["prompt"] = ids ? json(ids->first) : json(prompt + text);
    req["echo"] = true;
    req["temperature"] = 0;
    req["seed"] = 0;
    req["logprobs"] = std::max(k, 1);
    if (vllm_) {
      req["prompt_logprobs"] = k;
      req["return_token_ids"] = true;
    }
    auto validate = [](const json& j) { return check_completion(j, true); };
    int max_tokens = zero_max_tokens_rejected_ ? 1 : 0;
    req["max_tokens"] = max_tokens;
    auto resp = w_.post("/v1/completions", req, validate);
    if (!resp.is_ok() && max_tokens == 0 && resp.status().code() == StatusCode::kInvalidArgument) {
      zero_max_tokens_rejected_ = true;
      max_tokens = 1;
      req["max_tokens"] = 1;
      resp = w_.post("/v1/completions", req, validate);
    }
    if (!resp.is_ok()) return resp.status();
    const json& choice = resp.value()["choices"][0];
    const json& lp = choice["logprobs"];
    const json& tokens = lp["tokens"];
    const json& lps = lp["token_logprobs"];
    const json& offsets = lp["text_offset"];
    const size_t n = tokens.size();
    size_t generated = max_tokens == 0 ? 0 : 1;
    const json& usage = resp.value().contains("usage") ? resp.value()["usage"] : json();
    if (usage.is_object() && usage.contains("completion_tokens") &&
        usage["completion_tokens"].is_number_unsigned()) {
      generated = usage["completion_tokens"].get<uint64_t>();
    }
    if (generated > n) return corrupt(url + ": usage.completion_tokens exceeds the tokens listed");
    const size_t echoed = n - generated;
    auto arr = [&](const json& j, const char* key) -> const json* {
      return j.contains(key) && j[key].is_array() ? &j[key] : nullptr;
    };
    const json* ids_in = arr(lp, "token_ids");
    const json* top_ids = arr(lp, "top_logprobs_ids");
    const json* tops = arr(lp, "top_logprobs");
    const json* prompt_token_ids = arr(choice, "prompt_token_ids");
    const json* prompt_lps = arr(choice, "prompt_logprobs");
    std::vector<EchoToken> toks(echoed);
    for (size_t i = 0; i < echoed; ++i) {
      const std::string where = url + ": echoed token " + std::to_string(i);
      EchoToken& t = toks[i];
      if (!tokens[i].is_string()) return corrupt(where + ": token is not a string");
      t.token = tokens[i].get<std::string>();
      if (is_num(lps[i])) t.logprob = as_float(lps[i]);
      if (!vllm_) {
        if (!offsets[i].is_number_integer())
          return corrupt(url + ": text_offset is not an integer");
        t.offset = offsets[i].get<int64_t>();
      }
      const json* id_src =
          ids_in ? ids_in
                 : (prompt_token_ids && i < prompt_token_ids->size() ? prompt_token_ids : nullptr);
      if (id_src != nullptr && (*id_src)[i].is_number_integer()) {
        const int64_t v = (*id_src)[i].get<int64_t>();
        if (v >= 0 && v <= INT32_MAX) t.id = static_cast<int32_t>(v);
      } else if (auto tid = token_id_key(t.token)) {
        t.id = tid;
      } else if (ids && i < ids->first.size()) {
        t.id = ids->first[i];
      }
      if (k <= 0) continue;
      if (prompt_lps != nullptr && i < prompt_lps->size() && (*prompt_lps)[i].is_object()) {
        PROV_ASSIGN_OR_RETURN(t.top, prompt_logprobs_top((*prompt_lps)[i], k, where));
      } else {
        json none;
        const json* tid = top_ids != nullptr ? &(*top_ids)[i] : nullptr;
        PROV_ASSIGN_OR_RETURN(t.top,
                              completion_top(tops != nullptr ? (*tops)[i] : none, tid, k, where));
        fill_tokens(&*t.top);
      }
    }
    std::optional<size_t> first;
    if (ids) first = ids->second;
    return select_scored(url, toks, first, prompt, text, top_k, positions, prompt_ids);
  }

  // One position of vLLM's prompt_logprobs: {"<id>": {logprob, rank, decoded_token}}, the top k
  // (by rank) and the token itself.
  Result<TopK> prompt_logprobs_top(const json& d, int k, const std::string& where) const {
    std::vector<Alt> alts;
    for (const auto& [key, v] : d.items()) {
      if (!v.is_object() || !v.contains("logprob") || !is_num(v["logprob"])) {
        return corrupt(where + ": prompt_logprobs entries must be {logprob, rank, decoded_token}");
      }
      const json& rank = v.value("rank", json());
      if (!rank.is_number_integer() || rank.get<int64_t>() < 1 || rank.get<int64_t>() > k) continue;
      char* end = nullptr;
      const long long id = std::strtoll(key.c_str(), &end, 10);
      if (end == key.c_str() || *end != '\0' || id < 0 || id > INT32_MAX) {
        return corrupt(where + ": prompt_logprobs key '" + excerpt(key) + "' is not a token id");
      }
      Alt a;
      a.id = static_cast<int32_t>(id);
      a.logprob = as_float(v["logprob"]);
      if (v.contains("decoded_token") && v["decoded_token"].is_string()) {
        a.token = v["decoded_token"].get<std::string>();
      } else {
        a.has_token = false;
      }
      alts.push_back(std::move(a));
    }
    TopK t = make_topk(std::move(alts), static_cast<size_t>(k));
    fill_tokens(&t);
    return t;
  }

  Status chat_completion(const Probe& probe, ProbeRecord* rec) {
    const int k = k_for(probe.top_k);
    PROV_ASSIGN_OR_RETURN(json resp, post_chat(*probe.text, std::max(1, probe.greedy_tokens), k));
    const json& c = resp["choices"][0];
    const json& m = c["message"];
    if (probe.greedy_tokens > 0 && m.contains("content") && m["content"].is_string()) {
      rec->continuation_text = m["content"].get<std::string>();
    }
    const std::string where = "POST " + w_.api_base() + "/chat/completions";
    if (k > 0 && c.contains("logprobs") && c["logprobs"].is_object() &&
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
        pos.top = make_topk(std::move(alts), static_cast<size_t>(k));
        fill_tokens(&pos.top);
        rec->positions.push_back(std::move(pos));
      }
    }
    return Status::ok();
  }

  const bool vllm_;
  std::atomic<bool> zero_max_tokens_rejected_{false};
  std::atomic<bool> no_logprobs_{false}, max_completion_tokens_{false}, no_temperature_{false};
};

// ---- sglang ---------------------------------------------------------------------------------

// An [logprob | null, id, text | null] triple of SGLang's meta_info.
Result<Alt> sglang_triple(const json& e, const std::string& where) {
  if (!e.is_array() || e.size() < 2 || !(e[0].is_null() || is_num(e[0])) ||
      !e[1].is_number_integer() || e[1].get<int64_t>() < 0 || e[1].get<int64_t>() > INT32_MAX) {
    return corrupt(where + ": logprob entries must be [logprob, id, text]");
  }
  Alt a;
  a.id = static_cast<int32_t>(e[1].get<int64_t>());
  a.logprob = e[0].is_null() ? std::numeric_limits<float>::quiet_NaN() : as_float(e[0]);
  if (e.size() > 2 && e[2].is_string()) {
    a.token = e[2].get<std::string>();
  } else {
    a.has_token = false;
  }
  return a;
}

Status check_sglang(const json& j) {
  if (!j.is_object() || !j.contains("text") || !j["text"].is_string() || !j.contains("meta_info") ||
      !j["meta_info"].is_object()) {
    return corrupt("response has no text and meta_info");
  }
  const json& m = j["meta_info"];
  for (const char* key : {"input_token_logprobs", "output_token_logprobs", "input_top_logprobs",
                          "output_top_logprobs"}) {
    if (m.contains(key) && !m[key].is_null() && !m[key].is_array()) {
      return corrupt(std::string("meta_info.") + key + " is not a list");
    }
  }
  return Status::ok();
}

class SglangClient final : public EngineBase {
 public:
  using EngineBase::EngineBase;

  uint64_t discover_requests(uint32_t) const override { return 2; }

  Result<EngineInfo> discover(uint32_t want) override {
    EngineInfo info = base_info("sglang-generate");
    PROV_ASSIGN_OR_RETURN(json server, describe("/get_server_info"));
    PROV_ASSIGN_OR_RETURN(json model, describe("/get_model_info"));
    info.version = str_or(server, "version");
    info.served_model = str_or(model, "model_path", str_or(server, "model_path"));
    PROV_RETURN_IF_ERROR(check_served(info.served_model, "GET /get_model_info"));
    info.token_ids = true;
    finish_info(&info, want);
    return info;
  }

  ProbeCost cost(const Probe& p) const override { return scoring_cost(p, 0); }

  Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index) override {
    ProbeRecord rec;
    rec.index = index;
    rec.probe_id = probe.id;
    if (probe.ids) rec.prompt_ids = *probe.ids;
    if (!probe.text && (probe.continuation || !probe.score_texts.empty())) {
      return unsupported(
          "the prompt is given as token ids; continuation and score_texts after it need a text "
          "prompt over an endpoint");
    }
    const int k = k_for(probe.top_k);
    if (!(probe.continuation && probe.greedy_tokens == 0)) {
      PROV_RETURN_IF_ERROR(main_request(probe, k, &rec));
    }
    if (probe.continuation) {
      std::vector<PositionRecord> positions;
      std::vector<int32_t> prompt_ids;
      PROV_RETURN_IF_ERROR(
          score(*probe.text, *probe.continuation, k, &positions, &prompt_ids).status());
      rec.positions = std::move(positions);
      if (rec.prompt_ids.empty()) rec.prompt_ids = std::move(prompt_ids);
    }
    for (const auto& text : probe.score_texts) {
      PROV_ASSIGN_OR_RETURN(ScoredText st, score(*probe.text, text, 0, nullptr));
      rec.scores.push_back(std::move(st));
    }
    return rec;
  }

 private:
  // The main request: positions[0], the prompt's ids and the continuation.
  Status main_request(const Probe& probe, int k, ProbeRecord* rec_out) {
    ProbeRecord& rec = *rec_out;
    const std::string url = "POST " + w_.root() + "/generate";
    json req = prompt_field(probe.text ? json(*probe.text) : json(*probe.ids));
    req["sampling_params"] = {{"max_new_tokens", std::max(1, probe.greedy_tokens)},
                              {"temperature", 0}};
    req["return_logprob"] = true;
    req["logprob_start_len"] = 0;
    if (k > 0) req["top_logprobs_num"] = k;
    req["return_text_in_logprobs"] = true;
    PROV_ASSIGN_OR_RETURN(json resp, w_.post("/generate", req, check_sglang));
    const json& m = resp["meta_info"];
    if (probe.greedy_tokens > 0) rec.continuation_text = resp["text"].get<std::string>();
    std::vector<int32_t> prompt_ids, out_ids;
    PROV_RETURN_IF_ERROR(ids_of(m.value("input_token_logprobs", json()), url, &prompt_ids));
    PROV_RETURN_IF_ERROR(ids_of(m.value("output_token_logprobs", json()), url, &out_ids));
    if (probe.text) rec.prompt_ids = std::move(prompt_ids);
    if (probe.greedy_tokens > 0) {
      const json& fr = m.value("finish_reason", json());
      const json& matched = fr.is_object() ? fr.value("matched", json()) : json();
      if (!out_ids.empty() && matched.is_number_integer() &&
          matched.get<int64_t>() == out_ids.back())
        out_ids.pop_back();
      rec.continuation_ids = std::move(out_ids);
    }
    const json& tops = m.value("output_top_logprobs", json());
    if (k > 0 && tops.is_array() && !tops.empty() && tops[0].is_array()) {
      PROV_ASSIGN_OR_RETURN(TopK top, top_of(tops[0], k, url));
      if (!top.logprobs.empty()) {
        PositionRecord pos;
        pos.top = std::move(top);
        rec.positions.push_back(std::move(pos));
      }
    }
    return Status::ok();
  }

  static json prompt_field(const json& prompt) {
    return prompt.is_string() ? json{{"text", prompt}} : json{{"input_ids", prompt}};
  }

  static Status ids_of(const json& entries, const std::string& where, std::vector<int32_t>* out) {
    if (!entries.is_array()) return Status::ok();
    for (const auto& e : entries) {
      PROV_ASSIGN_OR_RETURN(Alt a, sglang_triple(e, where));
      out->push_back(*a.id);
    }
    return Status::ok();
  }

  Result<TopK> top_of(const json& entries, int k, const std::string& where) const {
    std::vector<Alt> alts;
    for (const auto& e : entries) {
      PROV_ASSIGN_OR_RETURN(Alt a, sglang_triple(e, where));
      alts.push_back(std::move(a));
    }
    TopK t = make_topk(std::move(alts), static_cast<size_t>(k));
    fill_tokens(&t);
    return t;
  }

  Result<ScoredText> score(const std::string& prompt, const std::string& text, int k,
                           std::vector<PositionRecord>* positions,
                           std::vector<int32_t>* prompt_ids = nullptr) {
    const std::string url = "POST " + w_.root() + "/generate";
    auto ids = joined_ids(prompt, text);
    json req = prompt_field(ids ? json(ids->first) : json(prompt + text));
    req["return_logprob"] = true;
    req["logprob_start_len"] = 0;
    if (positions != nullptr && k > 0) req["top_logprobs_num"] = k;
    req["return_text_in_logprobs"] = true;
    int max_new = zero_rejected_ ? 1 : 0;
    req["sampling_params"] = {{"max_new_tokens", max_new}, {"temperature", 0}};
    auto resp = w_.post("/generate", req, check_sglang);
    if (!resp.is_ok() && max_new == 0 && resp.status().code() == StatusCode::kInvalidArgument) {
      zero_rejected_ = true;
      req["sampling_params"]["max_new_tokens"] = 1;
      resp = w_.post("/generate", req, check_sglang);
    }
    if (!resp.is_ok()) return resp.status();
    const json& m = resp.value()["meta_info"];
    const json& in = m.value("input_token_logprobs", json());
    const json& tops = m.value("input_top_logprobs", json());
    if (!in.is_array()) return corrupt(url + ": meta_info.input_token_logprobs is missing");
    std::vector<EchoToken> toks;
    for (size_t i = 0; i < in.size(); ++i) {
      const std::string where = url + ": input token " + std::to_string(i);
      PROV_ASSIGN_OR_RETURN(Alt a, sglang_triple(in[i], where));
      EchoToken t;
      t.id = a.id;
      t.token = a.has_token ? a.token : decode(*a.id);
      if (!std::isnan(a.logprob)) t.logprob = a.logprob;
      if (positions != nullptr && k > 0 && tops.is_array() && i < tops.size() &&
          tops[i].is_array()) {
        PROV_ASSIGN_OR_RETURN(t.top, top_of(tops[i], k, where));
      }
      toks.push_back(std::move(t));
    }
    std::optional<size_t> first;
    if (ids) first = ids->second;
    return select_scored(url, toks, first, prompt, text, k, positions, prompt_ids);
  }

  std::atomic<bool> zero_rejected_{false};
};

// ---- tgi ------------------------------------------------------------------------------------

Status check_tgi(const json& j) {
  if (!j.is_object() || !j.contains("generated_text") || !j["generated_text"].is_string()) {
    return corrupt("response has no generated_text");
  }
  if (j.contains("details") && !j["details"].is_object())
    return corrupt("details is not an object");
  return Status::ok();
}

// A TGI token {id, text, logprob (null for the first prefill token)}.
Result<Alt> tgi_token(const json& e, const std::string& where) {
  if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer() ||
      e["id"].get<int64_t>() < 0 || e["id"].get<int64_t>() > INT32_MAX ||
      !(e.value("logprob", json()).is_null() || is_num(e["logprob"]))) {
    return corrupt(where + ": tokens must be {id, text, logprob}");
  }
  Alt a;
  a.id = static_cast<int32_t>(e["id"].get<int64_t>());
  const json& lp = e.value("logprob", json());
  a.logprob = lp.is_null() ? std::numeric_limits<float>::quiet_NaN() : as_float(lp);
  if (e.contains("text") && e["text"].is_string()) {
    a.token = e["text"].get<std::string>();
  } else {
    a.has_token = false;
  }
  return a;
}

class TgiClient final : public EngineBase {
 public:
  using EngineBase::EngineBase;

  // GET /info, the preflight, and one more when it must learn a cap below `want`.
  uint64_t discover_requests(uint32_t want) const override {
    return want == 0 ? 1 : (want > dialect_traits(Dialect::kTgi).top_k_cap ? 3 : 2);
  }

  Result<EngineInfo> discover(uint32_t want) override {
    EngineInfo info = base_info("tgi-generate");
    PROV_ASSIGN_OR_RETURN(json i, describe("/info"));
    info.version = str_or(i, "version");
    info.served_model = str_or(i, "model_id");
    PROV_RETURN_IF_ERROR(check_served(info.served_model, "GET /info model_id"));
    info.token_ids = true;
    for (int tries = 0; want > 0; ++tries) {
      Refusal refusal;
      json req = {
          {"inputs", "hello"},
          {"parameters", {{"max_new_tokens", 1}, {"top_n_tokens", k_for(static_cast<int>(want))}}}};
      auto r = w_.post("/generate", req, check_tgi, &refusal);
      if (r.is_ok()) break;
      if (tries >= 2 || !learn_cap(refusal, want)) {
        return r.status().with_context("asking " + w_.root() + " what it serves");
      }
    }
    info.notes.push_back(
        "TGI gives no alternatives at prompt positions: teacher-forced continuations record "
        "each token's log-probability only");
    finish_info(&info, want);
    return info;
  }

  ProbeCost cost(const Probe& p) const override { return scoring_cost(p, 1); }

  Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index) override {
    if (!probe.text) {
      return unsupported("the prompt is given as token ids; TGI's /generate takes text");
    }
    ProbeRecord rec;
    rec.index = index;
    rec.probe_id = probe.id;
    const int k = k_for(probe.top_k);
    if (!(probe.continuation && probe.greedy_tokens == 0)) {
      PROV_RETURN_IF_ERROR(main_request(probe, k, &rec));
    }
    if (probe.continuation) {
      std::vector<PositionRecord> positions;
      std::vector<int32_t> prompt_ids;
      PROV_RETURN_IF_ERROR(
          score(*probe.text, *probe.continuation, &positions, &prompt_ids).status());
      rec.positions = std::move(positions);
      if (rec.prompt_ids.empty()) rec.prompt_ids = std::move(prompt_ids);
    }
    for (const auto& text : probe.score_texts) {
      PROV_ASSIGN_OR_RETURN(ScoredText st, score(*probe.text, text, nullptr));
      rec.scores.push_back(std::move(st));
    }
    return rec;
  }

 private:
  // The main request: positions[0], the prompt's ids and the continuation.
  Status main_request(const Probe& probe, int k, ProbeRecord* rec_out) {
    ProbeRecord& rec = *rec_out;
    const std::string url = "POST " + w_.root() + "/generate";
    json params = {{"max_new_tokens", std::max(1, probe.greedy_tokens)},
                   {"do_sample", false},
                   {"details", true},
                   {"decoder_input_details", true}};
    if (k > 0) params["top_n_tokens"] = k;
    PROV_ASSIGN_OR_RETURN(
        json resp,
        w_.post("/generate", {{"inputs", *probe.text}, {"parameters", params}}, check_tgi));
    const json& d = resp.value("details", json::object());
    if (probe.greedy_tokens > 0) rec.continuation_text = resp["generated_text"].get<std::string>();
    for (const auto& e : d.value("prefill", json::array())) {
      PROV_ASSIGN_OR_RETURN(Alt a, tgi_token(e, url));
      rec.prompt_ids.push_back(*a.id);
    }
    if (probe.greedy_tokens > 0) {
      for (const auto& e : d.value("tokens", json::array())) {
        PROV_ASSIGN_OR_RETURN(Alt a, tgi_token(e, url));
        rec.continuation_ids.push_back(*a.id);
      }
      if (d.value("finish_reason", json()) == "eos_token" && !rec.continuation_ids.empty()) {
        rec.continuation_ids.pop_back();
      }
    }
    const json& tops = d.value("top_tokens", json());
    if (k > 0 && tops.is_array() && !tops.empty() && tops[0].is_array()) {
      std::vector<Alt> alts;
      for (const auto& e : tops[0]) {
        PROV_ASSIGN_OR_RETURN(Alt a, tgi_token(e, url));
        alts.push_back(std::move(a));
      }
      PositionRecord pos;
      pos.top = make_topk(std::move(alts), static_cast<size_t>(k));
      if (!pos.top.logprobs.empty()) rec.positions.push_back(std::move(pos));
    }
    return Status::ok();
  }

  Result<ScoredText> score(const std::string& prompt, const std::string& text,
                           std::vector<PositionRecord>* positions,
                           std::vector<int32_t>* prompt_ids = nullptr) {
    const std::string url = "POST " + w_.root() + "/generate";
    json req = {{"inputs", prompt + text},
                {"parameters",
                 {{"max_new_tokens", 1},
                  {"do_sample", false},
                  {"details", true},
                  {"decoder_input_details", true}}}};
    PROV_ASSIGN_OR_RETURN(json resp, w_.post("/generate", req, check_tgi));
    const json& pre = resp.value("details", json::object()).value("prefill", json());
    if (!pre.is_array()) return corrupt(url + ": details.prefill is missing");
    std::vector<EchoToken> toks;
    for (size_t i = 0; i < pre.size(); ++i) {
      PROV_ASSIGN_OR_RETURN(Alt a, tgi_token(pre[i], url + ": prefill token " + std::to_string(i)));
      EchoToken t;
      t.id = a.id;
      t.token = a.has_token ? a.token : decode(*a.id);
      if (!std::isnan(a.logprob)) t.logprob = a.logprob;
      toks.push_back(std::move(t));
    }
    return select_scored(url, toks, std::nullopt, prompt, text, 0, positions, prompt_ids);
  }
};

// ---- llama.cpp ------------------------------------------------------------------------------

Status check_llamacpp(const json& j) {
  if (!j.is_object() || !j.contains("content") || !j["content"].is_string()) {
    return corrupt("response has no content");
  }
  if (j.contains("completion_probabilities") && !j["completion_probabilities"].is_array()) {
    return corrupt("completion_probabilities is not a list");
  }
  return Status::ok();
}

class LlamaCppClient final : public EngineBase {
 public:
  using EngineBase::EngineBase;

  uint64_t discover_requests(uint32_t) const override { return 1; }

  Result<EngineInfo> discover(uint32_t want) override {
    EngineInfo info = base_info("llamacpp-completion");
    PROV_ASSIGN_OR_RETURN(json props, describe("/props"));
    info.version = str_or(props, "build_info");
    info.served_model = str_or(props, "model_alias", str_or(props, "model_path"));
    PROV_RETURN_IF_ERROR(check_served(info.served_model, "GET /props"));
    info.token_ids = true;
    info.notes.push_back(
        "llama.cpp gives no prompt log-probabilities: teacher-forced continuations and score "
        "texts cannot be collected (cross_likelihood, cross_likelihood_ratio and the direction "
        "of distillation are unavailable)");
    finish_info(&info, want);
    return info;
  }

  ProbeCost cost(const Probe& p) const override {
    return {1, prompt_count(p), static_cast<uint64_t>(std::max(1, p.greedy_tokens))};
  }

  Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index) override {
    if (probe.continuation || !probe.score_texts.empty()) {
      return unsupported(
          "llama.cpp's server gives no prompt log-probabilities: teacher-forced continuations "
          "and score texts cannot be collected from it (cross-likelihood statistics are "
          "unavailable); collect them from the checkpoint or another engine");
    }
    ProbeRecord rec;
    rec.index = index;
    rec.probe_id = probe.id;
    if (probe.ids) rec.prompt_ids = *probe.ids;
    const std::string url = "POST " + w_.root() + "/completion";
    const int k = k_for(probe.top_k);
    json req = {{"prompt", probe.text ? json(*probe.text) : json(*probe.ids)},
                {"n_predict", std::max(1, probe.greedy_tokens)},
                {"temperature", 0},
                {"seed", 0},
                {"n_probs", k},
                {"post_sampling_probs", false},
                {"return_tokens", true},
                {"stream", false}};
    PROV_ASSIGN_OR_RETURN(json resp, w_.post("/completion", req, check_llamacpp));
    if (probe.greedy_tokens > 0) {
      rec.continuation_text = resp["content"].get<std::string>();
      for (const auto& v : resp.value("tokens", json::array())) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
          return corrupt(url + ": tokens must be token ids");
        }
        rec.continuation_ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
      if (resp.value("stop_type", json()) == "eos" && !rec.continuation_ids.empty()) {
        rec.continuation_ids.pop_back();
      }
    }
    const json& cp = resp.value("completion_probabilities", json());
    if (k > 0 && cp.is_array() && !cp.empty()) {
      PROV_ASSIGN_OR_RETURN(TopK top, top_of(cp[0], k, url));
      if (!top.logprobs.empty()) {
        PositionRecord pos;
        pos.top = std::move(top);
        rec.positions.push_back(std::move(pos));
      }
    }
    return rec;
  }

 private:
  // One entry of completion_probabilities: top_logprobs {id, token, logprob}, or top_probs
  // {id, token, prob} (post-sampling), or the legacy probs {tok_str, prob}.
  Result<TopK> top_of(const json& e, int k, const std::string& where) const {
    if (!e.is_object()) return corrupt(where + ": completion_probabilities entries are objects");
    const char* key = e.contains("top_logprobs")
                          ? "top_logprobs"
                          : (e.contains("top_probs") ? "top_probs" : "probs");
    std::vector<Alt> alts;
    for (const auto& a : e.value(key, json::array())) {
      if (!a.is_object()) return corrupt(where + ": " + key + " entries are objects");
      Alt alt;
      const json& id = a.value("id", json());
      if (id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() <= INT32_MAX) {
        alt.id = static_cast<int32_t>(id.get<int64_t>());
      }
      const json& t = a.contains("token") ? a["token"] : a.value("tok_str", json());
      if (t.is_string()) {
        alt.token = t.get<std::string>();
      } else {
        alt.has_token = false;
      }
      if (a.contains("logprob") && is_num(a["logprob"])) {
        alt.logprob = as_float(a["logprob"]);
      } else if (a.contains("prob") && is_num(a["prob"])) {
        alt.logprob = static_cast<float>(std::log(a["prob"].get<double>()));
      } else {
        return corrupt(where + ": " + key + " entries need a logprob or prob");
      }
      alts.push_back(std::move(alt));
    }
    TopK top = make_topk(std::move(alts), static_cast<size_t>(k));
    fill_tokens(&top);
    return top;
  }
};

// ---- anthropic ------------------------------------------------------------------------------

Status check_message(const json& j) {
  if (!j.is_object() || !j.contains("content") || !j["content"].is_array()) {
    return corrupt("response has no content list");
  }
  return Status::ok();
}

class AnthropicClient final : public EngineBase {
 public:
  using EngineBase::EngineBase;

  uint64_t discover_requests(uint32_t) const override { return 0; }

  Result<EngineInfo> discover(uint32_t) override {
    EngineInfo info = base_info("anthropic-messages");
    info.version = o_.anthropic_version;
    info.notes.push_back(
        "the Messages API returns text only: no log-probabilities, token ids or scores "
        "(greedy_prefix and idiosyncratic_greedy only)");
    return info;
  }

  ProbeCost cost(const Probe& p) const override {
    if (p.greedy_tokens <= 0) return {};
    return {1, prompt_count(p) + 8, static_cast<uint64_t>(p.greedy_tokens)};
  }

  Result<ProbeRecord> run_probe(const Probe& probe, uint32_t index) override {
    if (!probe.text) {
      return invalid_argument("the prompt is given as token ids; the Messages API takes text");
    }
    if (probe.continuation || !probe.score_texts.empty()) {
      return unsupported(
          "the Messages API returns text only: continuations and score texts cannot be scored "
          "through it");
    }
    ProbeRecord rec;
    rec.index = index;
    rec.probe_id = probe.id;
    if (probe.greedy_tokens <= 0) return rec;  // nothing it could answer is recorded
    json req = with_model(json::object());
    req["max_tokens"] = probe.greedy_tokens;
    req["messages"] = json::array({{{"role", "user"}, {"content", *probe.text}}});
    req["temperature"] = 0;
    PROV_ASSIGN_OR_RETURN(json resp, w_.post("/v1/messages", req, check_message));
    for (const auto& block : resp["content"]) {
      if (block.is_object() && block.value("type", "") == "text" && block.contains("text") &&
          block["text"].is_string()) {
        rec.continuation_text += block["text"].get<std::string>();
      }
    }
    return rec;
  }
};

}  // namespace

std::unique_ptr<EngineClient> make_engine_client(Wire& wire) {
  switch (wire.options().dialect) {
    case Dialect::kOpenAI:
      return std::make_unique<OpenAIClient>(wire, false);
    case Dialect::kVllm:
      return std::make_unique<OpenAIClient>(wire, true);
    case Dialect::kSglang:
      return std::make_unique<SglangClient>(wire);
    case Dialect::kTgi:
      return std::make_unique<TgiClient>(wire);
    case Dialect::kLlamaCpp:
      return std::make_unique<LlamaCppClient>(wire);
    case Dialect::kAnthropic:
      return std::make_unique<AnthropicClient>(wire);
  }
  return std::make_unique<OpenAIClient>(wire, false);
}

}  // namespace prov::probes::client
