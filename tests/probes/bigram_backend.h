// A small real backend for the server and client tests: a byte-level BPE tokenizer
// (tokenizer.json text) and a bigram "model" over it, served through probes::Server.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/tokenizers/tokenizer.h"
#include "probes/endpoint.h"
#include "probes/server.h"

namespace prov::probes::testing {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// A tiny byte-level BPE tokenizer (tokenizer.json text) and a bigram "model" over it.

inline const char* const kG = "\xC4\xA0";  // Ġ: byte-level space
inline const char* const kC = "\xC4\x8A";  // Ċ: byte-level newline

inline std::string tokenizer_json() {
  json vocab = json::object();
  int id = 0;
  for (const char* s : {"<s>", "</s>", "<|im_start|>", "<|im_end|>"}) vocab[s] = id++;
  for (char c = 'a'; c <= 'z'; ++c) vocab[std::string(1, c)] = id++;
  vocab[kG] = id++;
  vocab[kC] = id++;
  vocab["!"] = id++;
  std::vector<std::pair<std::string, std::string>> merges = {{"t", "h"},
                                                             {"th", "e"},
                                                             {"a", "t"},
                                                             {kG, "c"},
                                                             {std::string(kG) + "c", "at"},
                                                             {kG, "s"},
                                                             {std::string(kG) + "s", "at"},
                                                             {kG, "t"}};
  json merge_list = json::array();
  for (const auto& [a, b] : merges) {
    vocab[a + b] = id++;
    merge_list.push_back(a + " " + b);
  }
  json added = json::array();
  for (int i = 0; i < 4; ++i) {
    std::string content;
    for (const auto& [k, v] : vocab.items()) {
      if (v == i) content = k;
    }
    added.push_back({{"id", i},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  json doc = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}, {"unk_token", nullptr}}}};
  return doc.dump();
}

inline const char* const kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

// logits(prev, j) is a fixed pseudo-random function; the special tokens are unlikely.
class BigramBackend : public CompletionBackend {
 public:
  BigramBackend() {
    auto t = model::from_hf_json_text(tokenizer_json(), "test tokenizer.json");
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    if (t.is_ok()) tok_ = std::move(t).value();
  }
  bool ok() const { return tok_ != nullptr; }
  std::string model_name() const override { return "bigram"; }
  const model::Tokenizer& tokenizer() const override { return *tok_; }
  int32_t context_length() const override { return 256; }
  std::string chat_template() const override { return chat_template_; }
  void set_chat_template(std::string t) { chat_template_ = std::move(t); }

  int32_t vocab() const { return tok_->vocab_size(); }

  // log-softmax of the logits after `prev`, in double, reported as float.
  std::vector<float> logprobs(int32_t prev) const {
    const int32_t v = vocab();
    std::vector<double> logits(v);
    for (int32_t j = 0; j < v; ++j) {
      uint64_t h = static_cast<uint64_t>(prev) * 1000003u + static_cast<uint64_t>(j) * 7919u;
      h ^= h >> 13;
      h *= 0x9E3779B97F4A7C15ull;
      h ^= h >> 29;
      logits[j] = j < 4 ? -5.0 : static_cast<double>(h % 6000) / 1000.0;
    }
    double mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (double l : logits) sum += std::exp(l - mx);
    double lse = mx + std::log(sum);
    std::vector<float> out(v);
    for (int32_t j = 0; j < v; ++j) out[j] = static_cast<float>(logits[j] - lse);
    return out;
  }

  static std::vector<TokenChoice> top(const std::vector<float>& lp, int k) {
    std::vector<int32_t> order(lp.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return lp[a] > lp[b]; });
    std::vector<TokenChoice> out;
    for (int i = 0; i < k && i < static_cast<int>(order.size()); ++i) {
      out.push_back({order[i], lp[order[i]]});
    }
    return out;
  }

  static std::vector<TokenChoice> extra(const std::vector<float>& lp,
                                        const std::vector<int32_t>& ids) {
    std::vector<TokenChoice> out;
    for (int32_t id : ids) out.push_back({id, lp[static_cast<size_t>(id)]});
    return out;
  }

  StepInfo step(int32_t prev, int32_t id, int k, const std::vector<int32_t>& extra_ids = {}) const {
    auto lp = logprobs(prev);
    return StepInfo{id, lp[id], top(lp, k), extra(lp, extra_ids)};
  }

  Result<BackendResult> complete(const CompletionRequest& r) override {
    ++calls;
    const int delay = delay_for ? delay_for(r) : delay_ms.load();
    if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    if (r.prompt_ids.empty()) return invalid_argument("empty prompt");
    for (int32_t id : r.prompt_ids) {
      if (id < 0 || id >= vocab()) return invalid_argument("token id out of range");
    }
    if (static_cast<int64_t>(r.prompt_ids.size()) + r.max_tokens > context_length()) {
      return invalid_argument("context too long");
    }
    BackendResult out;
    if (r.echo) {
      for (size_t i = 1; i < r.prompt_ids.size(); ++i) {
        out.prompt_steps.push_back(
            step(r.prompt_ids[i - 1], r.prompt_ids[i], r.top_k, r.extra_ids));
      }
    }
    std::mt19937_64 rng(r.seed);
    int32_t prev = r.prompt_ids.back();
    for (int t = 0; t < r.max_tokens; ++t) {
      auto lp = logprobs(prev);
      int32_t next;
      if (r.temperature == 0) {
        next = top(lp, 1)[0].id;
      } else {
        std::vector<double> w(lp.size());
        for (size_t j = 0; j < lp.size(); ++j) w[j] = std::exp(lp[j] / r.temperature);
        next = static_cast<int32_t>(std::discrete_distribution<int>(w.begin(), w.end())(rng));
      }
      out.generated.push_back(StepInfo{next, lp[next], top(lp, r.top_k), extra(lp, r.extra_ids)});
      if (std::find(r.stop_ids.begin(), r.stop_ids.end(), next) != r.stop_ids.end()) {
        out.stopped = true;
        break;
      }
      prev = next;
    }
    return out;
  }

  // Greedy ids after `ids` (what the server should produce with temperature 0).
  std::vector<int32_t> greedy(std::vector<int32_t> ids, int n) const {
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      int32_t next = top(logprobs(ids.back()), 1)[0].id;
      out.push_back(next);
      ids.push_back(next);
    }
    return out;
  }

  std::vector<int32_t> encode(const std::string& s, bool special = true) const {
    auto r = tok_->encode(s, special);
    EXPECT_TRUE(r.is_ok());
    return r.is_ok() ? r.value() : std::vector<int32_t>{};
  }
  std::string decode(const std::vector<int32_t>& ids) const {
    auto r = tok_->decode(ids, false);
    EXPECT_TRUE(r.is_ok());
    return r.is_ok() ? r.value() : std::string();
  }

  std::atomic<int> calls{0};
  std::atomic<int> delay_ms{0};
  std::function<int(const CompletionRequest&)> delay_for;  // per request, instead of delay_ms

 private:
  std::unique_ptr<model::Tokenizer> tok_;
  std::string chat_template_;
};

inline std::unique_ptr<Server> start_server(BigramBackend& backend, ServerOptions options = {}) {
  auto s = Server::start(backend, options);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

inline std::unique_ptr<EndpointClient> make_client(EndpointOptions o) {
  auto c = EndpointClient::create(o);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.is_ok() ? std::move(c).value() : nullptr;
}

inline EndpointOptions fast_options(int port) {
  EndpointOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.model_name = "bigram";
  o.backoff_initial_s = 0.002;
  o.backoff_max_s = 0.01;
  o.timeout_s = 5;
  o.max_retries = 3;
  return o;
}

inline Probe text_probe(const std::string& id, const std::string& text, int top_k, int greedy) {
  Probe p;
  p.id = id;
  p.text = text;
  p.top_k = top_k;
  p.greedy_tokens = greedy;
  return p;
}

}  // namespace prov::probes::testing
