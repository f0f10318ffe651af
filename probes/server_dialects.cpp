// The native dialects of `prov serve` (server.h, dialect.h): SGLang's /generate, TGI's /generate
// and /generate_stream, llama.cpp's /completion and Anthropic's /v1/messages, and the GET routes
// that describe each server. Each answers its engine's fields, shapes and error bodies, so the
// endpoint client is tested against the wire format it meets in deployment:
//
// sglang  POST /generate {text | input_ids, sampling_params {max_new_tokens (128), temperature
//         (1), stop, ignore_eos}, return_logprob, logprob_start_len (-1: output only; 0: from the
//         prompt's first token), top_logprobs_num, token_ids_logprob, return_text_in_logprobs}
//         -> {text, output_ids, meta_info {id, finish_reason {type: length, length} | {type: stop,
//         matched: id | string}, prompt_tokens, completion_tokens, cached_tokens,
//         input_token_logprobs, output_token_logprobs ([logprob | null, id, text | null]),
//         input_top_logprobs, output_top_logprobs, input_token_ids_logprobs,
//         output_token_ids_logprobs (per position null or a list of triples)}}. The output
//         includes a final EOS (finish_reason.matched names it). Errors {"error": {"message"}}.
// tgi     POST /generate {inputs, parameters {max_new_tokens (20, >= 1), do_sample (false:
//         greedy), temperature (> 0), seed, stop (<= 4), details, decoder_input_details,
//         top_n_tokens (<= the cap, 5 by default), return_full_text}} -> {generated_text,
//         details {finish_reason length | eos_token | stop_sequence, generated_tokens, seed,
//         prefill [{id, text, logprob (null first)}], tokens [{id, text, logprob, special}],
//         top_tokens [[...]]}}; POST /generate_stream answers the same as server-sent events
//         ("data:{token, top_tokens, generated_text, details}"), and refuses
//         decoder_input_details. Validation errors are 422 {"error", "error_type":
//         "validation"}.
// llamacpp POST /completion {prompt (text or ids), n_predict (-1: to the end), temperature (0.8;
//         <= 0: greedy), seed, n_probs, post_sampling_probs, stop, ignore_eos, return_tokens,
//         stream} -> {content, tokens, stop, model, tokens_predicted, tokens_evaluated, stop_type
//         eos | limit | word, stopping_word, completion_probabilities [{id, token, bytes, logprob,
//         top_logprobs [{id, token, bytes, logprob}]}]}; with post_sampling_probs `prob` and
//         `top_probs` after the sampler (greedy: the chosen token 1; else the softmax of
//         logprob / temperature over the alternatives returned). No prompt log-probabilities.
// anthropic POST /v1/messages {model, max_tokens (required), messages, system, temperature (0..1),
//         stop_sequences, stream} -> {id, type: message, role, model, content [{type: text,
//         text}], stop_reason end_turn | max_tokens | stop_sequence, stop_sequence, usage
//         {input_tokens, output_tokens}}; with stream, message_start .. message_stop events.
//         Text only.
#include <algorithm>
#include <cmath>
#include <ctime>

#include "probes/server_internal.h"

namespace prov::probes::wire {

namespace {

// A prompt given as text or as ids.
struct PromptIn {
  std::optional<std::string> text;
  std::vector<int32_t> ids;
};

std::optional<HttpError> read_ids(Host& host, const json& v, const char* key,
                                  std::vector<int32_t>* out) {
  const int32_t vocab = host.model().tokenizer().vocab_size();
  const int64_t ctx = host.model().context_length();
  if (!v.is_array() || v.empty()) {
    return HttpError{400, std::string("'") + key + "' must be a non-empty list of token ids"};
  }
  if (ctx > 0 && static_cast<int64_t>(v.size()) > ctx) {
    return HttpError{400, std::string("'") + key + "' has " + std::to_string(v.size()) +
                              " token ids; the model's context holds " + std::to_string(ctx)};
  }
  for (const auto& x : v) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= vocab) {
      return HttpError{400, std::string("'") + key + "' must hold token ids in [0, " +
                                std::to_string(vocab) + ")"};
    }
    out->push_back(static_cast<int32_t>(x.get<int64_t>()));
  }
  return std::nullopt;
}

// `text_key` (a string) or `ids_key` (ids; "" = none), exactly one.
std::optional<HttpError> read_prompt(Host& host, const json& body, const char* text_key,
                                     const char* ids_key, PromptIn* out) {
  const bool has_text = body.contains(text_key) && !body[text_key].is_null();
  const bool has_ids = *ids_key != '\0' && body.contains(ids_key) && !body[ids_key].is_null();
  if (has_text == has_ids) {
    return HttpError{400, *ids_key != '\0' ? std::string("give exactly one of '") + text_key +
                                                 "' and '" + ids_key + "'"
                                           : std::string("'") + text_key + "' is required"};
  }
  if (has_ids) return read_ids(host, body[ids_key], ids_key, &out->ids);
  const json& t = body[text_key];
  if (t.is_array()) {
    return HttpError{400, "batches of several prompts are not supported; send one per request"};
  }
  if (!t.is_string()) return HttpError{400, std::string("'") + text_key + "' must be a string"};
  if (t.get<std::string>().empty()) {
    return HttpError{400, std::string("'") + text_key + "' cannot be empty"};
  }
  out->text = t.get<std::string>();
  return host.check_text_fits(out->text->size(), text_key);
}

// Tokenizes a text prompt with the tokenizer's special tokens (BOS); holds a model slot.
std::optional<HttpError> encode_prompt(Host& host, PromptIn* p) {
  if (!p->text) return std::nullopt;
  auto ids = host.model().tokenizer().encode(*p->text, true);
  if (!ids.is_ok()) return HttpError{500, "tokenizer: " + ids.status().message()};
  if (ids->empty()) return HttpError{400, "the prompt has no tokens"};
  p->ids = std::move(ids).value();
  return std::nullopt;
}

// Runs the backend; an error is answered on `res`.
std::optional<BackendResult> run(Host& host, const CompletionRequest& creq,
                                 httplib::Response& res) {
  auto r = host.model().complete(creq);
  if (!r.is_ok()) {
    host.fail(res, r.status().code() == StatusCode::kInvalidArgument ? 400 : 500,
              r.status().message());
    return std::nullopt;
  }
  if (creq.echo && r->prompt_steps.size() + 1 != creq.prompt_ids.size()) {
    host.fail(res, 500,
              "backend scored " + std::to_string(r->prompt_steps.size()) +
                  " prompt tokens, expected " + std::to_string(creq.prompt_ids.size() - 1));
    return std::nullopt;
  }
  return std::move(r).value();
}

// The text of `g` cut at its tokens' offsets (code points): one piece per step.
std::vector<std::string> step_pieces(const Generated& g) {
  std::vector<size_t> bytes;  // byte offset of each code point, and the end
  for (size_t i = 0; i < g.text.size(); ++i) {
    if ((static_cast<unsigned char>(g.text[i]) & 0xC0) != 0x80) bytes.push_back(i);
  }
  bytes.push_back(g.text.size());
  std::vector<std::string> out;
  for (size_t i = 0; i < g.steps.size(); ++i) {
    const size_t b = bytes[std::min(g.offsets[i], bytes.size() - 1)];
    const size_t e = i + 1 < g.steps.size() ? bytes[std::min(g.offsets[i + 1], bytes.size() - 1)]
                                            : g.text.size();
    out.push_back(g.text.substr(b, e > b ? e - b : 0));
  }
  return out;
}

std::string sse(const json& data, const char* event = nullptr) {
  std::string out;
  if (event != nullptr) out += std::string("event: ") + event + "\n";
  return out + "data: " + dump(data) + "\n\n";
}

// ---- SGLang ----------------------------------------------------------------------------------

void sglang_impl(Host& host, const std::string& text, httplib::Response& res) {
  json body;
  if (auto e = host.parse_body(text, &body)) return host.fail(res, e->status, e->message);
  PromptIn prompt;
  if (auto e = read_prompt(host, body, "text", "input_ids", &prompt)) {
    return host.fail(res, e->status, e->message);
  }
  json sp = body.value("sampling_params", json::object());
  if (sp.is_null()) sp = json::object();
  if (!sp.is_object()) return host.fail(res, 400, "'sampling_params' must be an object");
  int64_t max_new = 128, start = -1, top = 0;
  double temperature = 1.0;
  bool ignore_eos = false, want_lp = false, with_text = false, stream = false;
  std::vector<std::string> stop;
  std::vector<int32_t> extra;
  std::optional<HttpError> e;
  if (!e) e = read_int(sp, "max_new_tokens", 0, host.settings().max_tokens_limit, &max_new);
  if (!e) e = read_temperature(sp, "temperature", 100, &temperature);
  if (!e) e = read_stop(sp, "stop", &stop);
  if (!e) e = read_bool(sp, "ignore_eos", &ignore_eos);
  if (!e) e = read_bool(body, "return_logprob", &want_lp);
  if (!e) e = read_int(body, "logprob_start_len", -1, 1 << 30, &start);
  if (!e) e = read_int(body, "top_logprobs_num", 0, host.top_cap(), &top);
  if (!e) e = read_bool(body, "return_text_in_logprobs", &with_text);
  if (!e) e = read_bool(body, "stream", &stream);
  if (!e && body.contains("token_ids_logprob") && !body["token_ids_logprob"].is_null()) {
    if (body["token_ids_logprob"].size() > 1024) {
      e = HttpError{400, "'token_ids_logprob' holds at most 1024 ids"};
    } else {
      e = read_ids(host, body["token_ids_logprob"], "token_ids_logprob", &extra);
    }
  }
  if (!e && stream) e = HttpError{400, "streaming is not served by prov serve's sglang dialect"};
  if (e) return host.fail(res, e->status, e->message);
  host.with_slot(res, [&] {
    if (auto pe = encode_prompt(host, &prompt)) return host.fail(res, pe->status, pe->message);
    const auto& tok = host.model().tokenizer();
    const int64_t n = static_cast<int64_t>(prompt.ids.size());
    if (start >= n) {
      return host.fail(res, 400,
                       "logprob_start_len (" + std::to_string(start) +
                           ") must be less than the input length (" + std::to_string(n) + ")");
    }
    CompletionRequest creq;
    creq.prompt_ids = prompt.ids;
    creq.max_tokens = static_cast<int>(max_new);
    creq.temperature = temperature;
    creq.top_k = want_lp ? static_cast<int>(top) : 0;
    creq.echo = want_lp && start >= 0 && n > 1;
    creq.extra_ids = want_lp ? extra : std::vector<int32_t>{};
    creq.stop_ids = host.stop_ids(ignore_eos, false);
    auto r = run(host, creq, res);
    if (!r) return;
    auto gen = finish_generation(tok, creq.prompt_ids, *r, creq.stop_ids, stop);
    if (!gen.is_ok()) return host.fail(res, 500, "tokenizer: " + gen.status().message());
    const Generated& g = gen.value();
    auto triple = [&](json lp, int32_t id) {
      return json::array(
          {std::move(lp), id, with_text ? json(token_string(tok, id, false)) : json(nullptr)});
    };
    auto choices = [&](const std::vector<TokenChoice>& v) {
      json a = json::array();
      for (const auto& c : v) a.push_back(triple(c.logprob, c.id));
      return a;
    };
    json meta = {{"id", host.new_id("")},
                 {"prompt_tokens", n},
                 {"completion_tokens", g.steps.size()},
                 {"cached_tokens", 0}};
    if (g.stopped_on_id) {
      meta["finish_reason"] = {{"type", "stop"}, {"matched", g.steps.back()->id}};
    } else if (!g.stop_string.empty()) {
      meta["finish_reason"] = {{"type", "stop"}, {"matched", g.stop_string}};
    } else {
      meta["finish_reason"] = {{"type", "length"}, {"length", max_new}};
    }
    json output_ids = json::array();
    for (const StepInfo* st : g.steps) output_ids.push_back(st->id);
    if (want_lp) {
      json in_lp = json::array(), in_top = json::array(), in_ids = json::array();
      for (int64_t i = std::max<int64_t>(0, start); creq.echo && i < n; ++i) {
        const StepInfo* st = i == 0 ? nullptr : &r->prompt_steps[static_cast<size_t>(i - 1)];
        in_lp.push_back(triple(st ? json(st->logprob) : json(nullptr), prompt.ids[i]));
        in_top.push_back(st ? choices(st->top) : json(nullptr));
        in_ids.push_back(st ? choices(st->extra) : json(nullptr));
      }
      json out_lp = json::array(), out_top = json::array(), out_ids = json::array();
      for (const StepInfo* st : g.steps) {
        out_lp.push_back(triple(st->logprob, st->id));
        out_top.push_back(choices(st->top));
        out_ids.push_back(choices(st->extra));
      }
      meta["input_token_logprobs"] = std::move(in_lp);
      meta["output_token_logprobs"] = std::move(out_lp);
      if (top > 0) {
        meta["input_top_logprobs"] = std::move(in_top);
        meta["output_top_logprobs"] = std::move(out_top);
      }
      if (!extra.empty()) {
        meta["input_token_ids_logprobs"] = std::move(in_ids);
        meta["output_token_ids_logprobs"] = std::move(out_ids);
      }
    }
    res.set_content(dump({{"text", g.text},
                          {"output_ids", std::move(output_ids)},
                          {"meta_info", std::move(meta)}}),
                    "application/json");
  });
}

// ---- TGI -------------------------------------------------------------------------------------

json tgi_token(const model::Tokenizer& tok, int32_t id, json logprob) {
  const bool special = tok.is_special(id);
  return {{"id", id},
          {"text", token_string(tok, id, false)},
          {"logprob", std::move(logprob)},
          {"special", special}};
}

void tgi_impl(Host& host, const std::string& text, httplib::Response& res, bool stream) {
  json body;
  if (auto e = host.parse_body(text, &body)) return host.fail(res, e->status, e->message);
  PromptIn prompt;
  if (!body.contains("inputs") || !body["inputs"].is_string()) {
    return host.fail(res, 422, "'inputs' must be a string");
  }
  if (body["inputs"].get<std::string>().empty())
    return host.fail(res, 422, "`inputs` cannot be empty");
  if (auto e = read_prompt(host, body, "inputs", "", &prompt)) {
    return host.fail(res, e->status == 400 ? 422 : e->status, e->message);
  }
  json p = body.value("parameters", json::object());
  if (p.is_null()) p = json::object();
  if (!p.is_object()) return host.fail(res, 422, "'parameters' must be an object");
  int64_t max_new = 20, top_n = 0, seed = 0;
  double temperature = 1.0;
  bool do_sample = false, details = false, prefill = false, full_text = false;
  std::vector<std::string> stop;
  std::optional<HttpError> e;
  if (!e) e = read_int(p, "max_new_tokens", 0, 1 << 30, &max_new);
  if (!e && max_new == 0) e = HttpError{422, "`max_new_tokens` must be strictly positive"};
  if (!e && max_new > host.settings().max_tokens_limit) {
    e = HttpError{
        422, "`max_new_tokens` must be <= " + std::to_string(host.settings().max_tokens_limit) +
                 ". Given: " + std::to_string(max_new)};
  }
  if (!e) e = read_bool(p, "do_sample", &do_sample);
  if (!e && p.contains("temperature") && !p["temperature"].is_null()) {
    if (!p["temperature"].is_number() || !(p["temperature"].get<double>() > 0)) {
      e = HttpError{422, "`temperature` must be strictly positive"};
    } else {
      temperature = p["temperature"].get<double>();
      do_sample = true;
    }
  }
  if (!e) e = read_int(p, "seed", 0, INT64_MAX, &seed);
  if (!e) e = read_stop(p, "stop", &stop);
  if (!e && stop.size() > 4) {
    e = HttpError{422,
                  "`stop` supports up to 4 stop sequences. Given: " + std::to_string(stop.size())};
  }
  if (!e) e = read_bool(p, "details", &details);
  if (!e) e = read_bool(p, "decoder_input_details", &prefill);
  if (!e) e = read_bool(p, "return_full_text", &full_text);
  if (!e) e = read_int(p, "top_n_tokens", 0, 1 << 30, &top_n);
  if (!e && top_n > host.top_cap()) {
    e = HttpError{422, "`top_n_tokens` must be >= 0 and <= " + std::to_string(host.top_cap()) +
                           ". Given: " + std::to_string(top_n)};
  }
  if (!e && stream && prefill) {
    e = HttpError{422, "`decoder_input_details` == true is not supported when streaming tokens"};
  }
  if (e) return host.fail(res, e->status == 400 ? 422 : e->status, e->message);
  host.with_slot(res, [&] {
    if (auto pe = encode_prompt(host, &prompt)) return host.fail(res, pe->status, pe->message);
    const auto& tok = host.model().tokenizer();
    CompletionRequest creq;
    creq.prompt_ids = prompt.ids;
    creq.max_tokens = static_cast<int>(max_new);
    creq.temperature = do_sample ? temperature : 0.0;
    creq.seed = static_cast<uint64_t>(seed);
    creq.top_k = static_cast<int>(top_n);
    creq.echo = prefill && prompt.ids.size() > 1;
    creq.stop_ids = host.stop_ids(false, false);
    auto r = run(host, creq, res);
    if (!r) return;
    auto gen = finish_generation(tok, creq.prompt_ids, *r, creq.stop_ids, stop);
    if (!gen.is_ok()) return host.fail(res, 500, "tokenizer: " + gen.status().message());
    const Generated& g = gen.value();
    const char* finish =
        g.stopped_on_id ? "eos_token" : (g.stop_string.empty() ? "length" : "stop_sequence");
    json tokens = json::array(), tops = json::array(), pre = json::array();
    for (const StepInfo* st : g.steps) {
      tokens.push_back(tgi_token(tok, st->id, st->logprob));
      json t = json::array();
      for (const auto& c : st->top) t.push_back(tgi_token(tok, c.id, c.logprob));
      tops.push_back(std::move(t));
    }
    for (size_t i = 0; prefill && i < prompt.ids.size(); ++i) {
      json lp = i == 0 ? json(nullptr) : json(r->prompt_steps[i - 1].logprob);
      json t = tgi_token(tok, prompt.ids[i], std::move(lp));
      t.erase("special");
      pre.push_back(std::move(t));
    }
    const std::string generated = (full_text ? *prompt.text : std::string()) + g.text;
    json d = {{"finish_reason", finish},
              {"generated_tokens", g.steps.size()},
              {"seed", do_sample ? json(seed) : json(nullptr)}};
    if (!stream) {
      d["prefill"] = std::move(pre);
      d["tokens"] = tokens;
      if (top_n > 0) d["top_tokens"] = tops;
      json out = {{"generated_text", generated}};
      if (details) out["details"] = std::move(d);
      return res.set_content(dump(out), "application/json");
    }
    std::vector<std::string> events;
    for (size_t i = 0; i < g.steps.size(); ++i) {
      const bool last = i + 1 == g.steps.size();
      json ev = {{"index", i},
                 {"token", tokens[i]},
                 {"generated_text", last ? json(generated) : json(nullptr)},
                 {"details", last && details ? d : json(nullptr)}};
      if (top_n > 0) ev["top_tokens"] = tops[i];
      events.push_back("data:" + dump(ev) + "\n\n");
    }
    send_events(res, std::move(events));
  });
}

// ---- llama.cpp -------------------------------------------------------------------------------

void llamacpp_impl(Host& host, const std::string& text, httplib::Response& res) {
  json body;
  if (auto e = host.parse_body(text, &body)) return host.fail(res, e->status, e->message);
  PromptIn prompt;
  if (body.contains("prompt") && body["prompt"].is_array()) {
    if (auto e = read_ids(host, body["prompt"], "prompt", &prompt.ids)) {
      return host.fail(res, e->status, e->message);
    }
  } else if (auto e = read_prompt(host, body, "prompt", "", &prompt)) {
    return host.fail(res, e->status, e->message);
  }
  int64_t n_predict = -1, n_probs = 0, seed = 0;
  double temperature = 0.8;
  bool post = false, ignore_eos = false, return_tokens = false, stream = false;
  std::vector<std::string> stop;
  std::optional<HttpError> e;
  if (!e && body.contains("max_tokens") && !body.contains("n_predict")) {
    e = read_int(body, "max_tokens", -1, 1 << 30, &n_predict);
  }
  if (!e) e = read_int(body, "n_predict", -1, 1 << 30, &n_predict);
  if (!e && body.contains("temperature") && !body["temperature"].is_null()) {
    if (!body["temperature"].is_number()) {
      e = HttpError{400, "'temperature' must be a number"};
    } else {
      temperature = body["temperature"].get<double>();
    }
  }
  if (!e) e = read_int(body, "seed", -1, INT64_MAX, &seed);
  if (!e) e = read_int(body, "n_probs", 0, host.top_cap(), &n_probs);
  if (!e) e = read_bool(body, "post_sampling_probs", &post);
  if (!e) e = read_bool(body, "ignore_eos", &ignore_eos);
  if (!e) e = read_bool(body, "return_tokens", &return_tokens);
  if (!e) e = read_bool(body, "stream", &stream);
  if (!e) e = read_stop(body, "stop", &stop);
  if (e) return host.fail(res, e->status, e->message);
  host.with_slot(res, [&] {
    if (auto pe = encode_prompt(host, &prompt)) return host.fail(res, pe->status, pe->message);
    const auto& tok = host.model().tokenizer();
    const int64_t n = static_cast<int64_t>(prompt.ids.size());
    const int64_t ctx = host.model().context_length();
    int64_t max_new = n_predict;
    const int64_t room = ctx > 0 ? std::max<int64_t>(0, ctx - n) : host.settings().max_tokens_limit;
    if (max_new < 0 || max_new > room)
      max_new = std::min<int64_t>(room, host.settings().max_tokens_limit);
    CompletionRequest creq;
    creq.prompt_ids = prompt.ids;
    creq.max_tokens =
        static_cast<int>(std::min<int64_t>(max_new, host.settings().max_tokens_limit));
    const bool greedy = !(temperature > 0);
    creq.temperature = greedy ? 0.0 : temperature;
    creq.seed = static_cast<uint64_t>(std::max<int64_t>(0, seed));
    creq.top_k = static_cast<int>(n_probs);
    creq.stop_ids = host.stop_ids(ignore_eos, false);
    auto r = run(host, creq, res);
    if (!r) return;
    auto gen = finish_generation(tok, creq.prompt_ids, *r, creq.stop_ids, stop);
    if (!gen.is_ok()) return host.fail(res, 500, "tokenizer: " + gen.status().message());
    const Generated& g = gen.value();
    // One entry of completion_probabilities.
    auto probs = [&](const StepInfo& st) {
      json alts = json::array();
      std::vector<double> w;  // post-sampling weights of the alternatives
      for (size_t i = 0; i < st.top.size(); ++i) {
        w.push_back(greedy ? (i == 0 ? 1.0 : 0.0) : std::exp(st.top[i].logprob / temperature));
      }
      double sum = 0;
      for (double x : w) sum += x;
      double chosen = 0;
      for (size_t i = 0; i < st.top.size(); ++i) {
        const std::string t = token_string(tok, st.top[i].id, false);
        json a = {{"id", st.top[i].id}, {"token", t}, {"bytes", bytes_of(t)}};
        if (post) {
          const double pr = sum > 0 ? w[i] / sum : 0.0;
          if (st.top[i].id == st.id) chosen = pr;
          a["prob"] = pr;
        } else {
          a["logprob"] = st.top[i].logprob;
        }
        alts.push_back(std::move(a));
      }
      const std::string t = token_string(tok, st.id, false);
      json out = {{"id", st.id}, {"token", t}, {"bytes", bytes_of(t)}};
      if (post) {
        out["prob"] = chosen;
        out["top_probs"] = std::move(alts);
      } else {
        out["logprob"] = st.logprob;
        out["top_logprobs"] = std::move(alts);
      }
      return out;
    };
    json ids = json::array(), cp = json::array();
    for (const StepInfo* st : g.steps) {
      ids.push_back(st->id);
      if (n_probs > 0) cp.push_back(probs(*st));
    }
    const char* stop_type = g.stopped_on_id ? "eos" : (g.stop_string.empty() ? "limit" : "word");
    json settings = {{"n_predict", n_predict}, {"temperature", temperature},
                     {"n_probs", n_probs},     {"post_sampling_probs", post},
                     {"seed", seed},           {"ignore_eos", ignore_eos}};
    json final_ = {{"index", 0},
                   {"content", stream ? std::string() : g.text},
                   {"tokens", stream ? json::array() : (return_tokens ? ids : json::array())},
                   {"id_slot", 0},
                   {"stop", true},
                   {"model", host.model().model_name()},
                   {"tokens_predicted", g.steps.size()},
                   {"tokens_evaluated", n},
                   {"generation_settings", std::move(settings)},
                   {"prompt", prompt.text ? *prompt.text : std::string()},
                   {"has_new_line", g.text.find('\n') != std::string::npos},
                   {"truncated", false},
                   {"stop_type", stop_type},
                   {"stopping_word", g.stop_string},
                   {"tokens_cached", 0}};
    if (!stream) {
      if (n_probs > 0) final_["completion_probabilities"] = std::move(cp);
      return res.set_content(dump(final_), "application/json");
    }
    std::vector<std::string> events;
    const auto pieces = step_pieces(g);
    for (size_t i = 0; i < g.steps.size(); ++i) {
      json ev = {{"index", 0},
                 {"content", pieces[i]},
                 {"tokens", return_tokens ? json::array({g.steps[i]->id}) : json::array()},
                 {"stop", false},
                 {"id_slot", 0},
                 {"tokens_predicted", i + 1},
                 {"tokens_evaluated", n}};
      if (n_probs > 0) ev["completion_probabilities"] = json::array({cp[i]});
      events.push_back(sse(ev));
    }
    events.push_back(sse(final_));
    send_events(res, std::move(events));
  });
}

// ---- Anthropic -------------------------------------------------------------------------------

// The text of a content field: a string or a list of {"type": "text", "text"} blocks.
std::optional<HttpError> content_text(const json& c, const std::string& where, std::string* out) {
  if (c.is_string()) {
    *out = c.get<std::string>();
    return std::nullopt;
  }
  if (!c.is_array()) return HttpError{400, where + ": Input should be a valid string or list"};
  for (const auto& b : c) {
    if (!b.is_object() || b.value("type", "") != "text" || !b.contains("text") ||
        !b["text"].is_string()) {
      return HttpError{400, where + ": only text content blocks are supported"};
    }
    *out += b["text"].get<std::string>();
  }
  return std::nullopt;
}

void anthropic_impl(Host& host, const std::string& text, httplib::Response& res) {
  json body;
  if (auto e = host.parse_body(text, &body)) return host.fail(res, e->status, e->message);
  if (!body.contains("model") || !body["model"].is_string()) {
    return host.fail(res, 400, "model: Field required");
  }
  if (!body.contains("max_tokens") || body["max_tokens"].is_null()) {
    return host.fail(res, 400, "max_tokens: Field required");
  }
  int64_t max_tokens = 0;
  double temperature = 1.0;
  bool stream = false;
  std::vector<std::string> stop;
  std::vector<std::pair<std::string, std::string>> messages;
  std::optional<HttpError> e =
      read_int(body, "max_tokens", 1, host.settings().max_tokens_limit, &max_tokens);
  if (!e) e = read_temperature(body, "temperature", 1, &temperature);
  if (!e) e = read_stop(body, "stop_sequences", &stop);
  if (!e) e = read_bool(body, "stream", &stream);
  if (!e && body.contains("system") && !body["system"].is_null()) {
    std::string sys;
    e = content_text(body["system"], "system", &sys);
    if (!e) messages.emplace_back("system", sys);
  }
  const json& msgs = body.value("messages", json());
  if (!e && (!msgs.is_array() || msgs.empty() || msgs.size() > 10000)) {
    e = HttpError{400, "messages: at least one message is required"};
  }
  size_t bytes = 0;
  for (size_t i = 0; !e && i < msgs.size(); ++i) {
    const std::string where = "messages." + std::to_string(i);
    const json& m = msgs[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
        (m["role"] != "user" && m["role"] != "assistant")) {
      e = HttpError{400, where + ".role: Input should be 'user' or 'assistant'"};
      break;
    }
    std::string content;
    e = content_text(m.value("content", json()), where + ".content", &content);
    bytes += content.size();
    messages.emplace_back(m["role"].get<std::string>(), std::move(content));
  }
  if (!e) e = host.check_text_fits(bytes, "the messages");
  if (e) return host.fail(res, e->status, e->message);
  host.with_slot(res, [&] {
    const auto& tok = host.model().tokenizer();
    auto id_string = [&](std::optional<int32_t> id) {
      auto s = id ? tok.id_to_token(*id) : std::nullopt;
      return s ? *s : std::string();
    };
    const std::string tmpl = host.model().chat_template();
    auto formatted =
        apply_chat_template(tmpl, messages, id_string(tok.bos_id()), id_string(tok.eos_id()));
    if (!formatted.is_ok()) {
      return host.fail(res, formatted.status().code() == StatusCode::kInvalidArgument ? 400 : 500,
                       "chat template: " + formatted.status().message());
    }
    auto ids = tok.encode(formatted.value(), tmpl.empty());
    if (!ids.is_ok()) return host.fail(res, 500, "tokenizer: " + ids.status().message());
    CompletionRequest creq;
    creq.prompt_ids = ids.value();
    creq.max_tokens = static_cast<int>(max_tokens);
    creq.temperature = temperature;
    creq.stop_ids = host.stop_ids(false, true);
    auto r = run(host, creq, res);
    if (!r) return;
    auto gen = finish_generation(tok, creq.prompt_ids, *r, creq.stop_ids, stop);
    if (!gen.is_ok()) return host.fail(res, 500, "tokenizer: " + gen.status().message());
    const Generated& g = gen.value();
    const char* reason =
        g.stopped_on_id ? "end_turn" : (g.stop_string.empty() ? "max_tokens" : "stop_sequence");
    const json stop_seq = g.stop_string.empty() ? json(nullptr) : json(g.stop_string);
    const std::string id = host.new_id("msg_");
    const size_t in = creq.prompt_ids.size(), out_n = g.steps.size();
    if (!stream) {
      json j = {{"id", id},
                {"type", "message"},
                {"role", "assistant"},
                {"model", host.model().model_name()},
                {"content", json::array({{{"type", "text"}, {"text", g.text}}})},
                {"stop_reason", reason},
                {"stop_sequence", stop_seq},
                {"usage", {{"input_tokens", in}, {"output_tokens", out_n}}}};
      return res.set_content(dump(j), "application/json");
    }
    std::vector<std::string> ev;
    json start = {{"id", id},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"model", host.model().model_name()},
                  {"content", json::array()},
                  {"stop_reason", nullptr},
                  {"stop_sequence", nullptr},
                  {"usage", {{"input_tokens", in}, {"output_tokens", 1}}}};
    ev.push_back(sse({{"type", "message_start"}, {"message", start}}, "message_start"));
    ev.push_back(sse({{"type", "content_block_start"},
                      {"index", 0},
                      {"content_block", {{"type", "text"}, {"text", ""}}}},
                     "content_block_start"));
    ev.push_back(sse({{"type", "ping"}}, "ping"));
    for (const std::string& piece : step_pieces(g)) {
      if (piece.empty()) continue;
      ev.push_back(sse({{"type", "content_block_delta"},
                        {"index", 0},
                        {"delta", {{"type", "text_delta"}, {"text", piece}}}},
                       "content_block_delta"));
    }
    ev.push_back(sse({{"type", "content_block_stop"}, {"index", 0}}, "content_block_stop"));
    ev.push_back(sse({{"type", "message_delta"},
                      {"delta", {{"stop_reason", reason}, {"stop_sequence", stop_seq}}},
                      {"usage", {{"output_tokens", out_n}}}},
                     "message_delta"));
    ev.push_back(sse({{"type", "message_stop"}}, "message_stop"));
    send_events(res, std::move(ev));
  });
}

}  // namespace

void sglang_generate(Host& host, const std::string& body, httplib::Response& res) {
  sglang_impl(host, body, res);
}

void tgi_generate(Host& host, const std::string& body, httplib::Response& res, bool stream) {
  tgi_impl(host, body, res, stream);
}

void llamacpp_completion(Host& host, const std::string& body, httplib::Response& res) {
  llamacpp_impl(host, body, res);
}

void anthropic_messages(Host& host, const std::string& body, httplib::Response& res) {
  anthropic_impl(host, body, res);
}

json server_description(Host& host, const std::string& path) {
  const std::string name = host.model().model_name();
  const int64_t ctx = host.model().context_length();
  if (path == "/version") return {{"version", host.version()}};
  if (path == "/get_model_info") {
    return {{"model_path", name}, {"tokenizer_path", name}, {"is_generation", true}};
  }
  if (path == "/get_server_info") {
    return {{"model_path", name},
            {"served_model_name", name},
            {"context_length", ctx},
            {"version", host.version()}};
  }
  if (path == "/info") {
    return {{"model_id", name},
            {"model_sha", nullptr},
            {"model_pipeline_tag", "text-generation"},
            {"max_concurrent_requests", host.settings().threads},
            {"max_best_of", 1},
            {"max_stop_sequences", 4},
            {"max_input_tokens", std::max<int64_t>(0, ctx - 1)},
            {"max_total_tokens", ctx},
            {"validation_workers", 1},
            {"max_client_batch_size", 1},
            {"router", "text-generation-router"},
            {"version", host.version()},
            {"sha", nullptr},
            {"docker_label", nullptr}};
  }
  if (path == "/props") {
    return {{"default_generation_settings", {{"n_ctx", ctx}, {"params", {{"n_probs", 0}}}}},
            {"total_slots", host.settings().threads},
            {"model_alias", name},
            {"model_path", name},
            {"build_info", host.version()},
            {"chat_template", host.model().chat_template()}};
  }
  return json::object();
}

std::vector<std::string> post_paths(Dialect dialect) {
  switch (dialect) {
    case Dialect::kOpenAI:
    case Dialect::kVllm:
      return {"/v1/completions", "/v1/chat/completions"};
    case Dialect::kSglang:
      return {"/generate"};
    case Dialect::kTgi:
      return {"/generate", "/generate_stream"};
    case Dialect::kLlamaCpp:
      return {"/completion", "/completions"};
    case Dialect::kAnthropic:
      return {"/v1/messages"};
  }
  return {};
}

std::vector<std::string> info_paths(Dialect dialect) {
  switch (dialect) {
    case Dialect::kOpenAI:
      return {"/v1/models"};
    case Dialect::kVllm:
      return {"/v1/models", "/version"};
    case Dialect::kSglang:
      return {"/get_model_info", "/get_server_info"};
    case Dialect::kTgi:
      return {"/info"};
    case Dialect::kLlamaCpp:
      return {"/props"};
    case Dialect::kAnthropic:
      return {};
  }
  return {};
}

}  // namespace prov::probes::wire
