// Byte-level BPE vocabularies that are not tokenizer.json files: OpenAI's GPT-2 encoder.json +
// vocab.bpe, and GGUF "gpt2" vocabularies. Both are expressed as the equivalent tokenizer.json
// document and run through the Hugging Face pipeline, so they share its semantics exactly.

#include <fstream>
#include <sstream>

#include "model/formats/config.h"
#include "model/formats/gguf.h"
#include "model/tokenizers/tokenizer.h"

namespace prov::model {
namespace {

using nlohmann::json;

// Forwards everything to a Hugging Face pipeline but reports its own kind.
class KindTokenizer : public Tokenizer {
 public:
  KindTokenizer(std::unique_ptr<Tokenizer> inner, std::string kind)
      : inner_(std::move(inner)), kind_(std::move(kind)) {}
  Result<std::vector<int32_t>> encode(const std::string& text, bool add_special) const override {
    return inner_->encode(text, add_special);
  }
  Result<std::string> decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    return inner_->decode(ids, skip_special);
  }
  int32_t vocab_size() const override { return inner_->vocab_size(); }
  std::optional<int32_t> bos_id() const override { return inner_->bos_id(); }
  std::optional<int32_t> eos_id() const override { return inner_->eos_id(); }
  std::string kind() const override { return kind_; }
  std::optional<int32_t> token_to_id(const std::string& token) const override {
    return inner_->token_to_id(token);
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    return inner_->id_to_token(id);
  }
  bool is_special(int32_t id) const override { return inner_->is_special(id); }

 private:
  std::unique_ptr<Tokenizer> inner_;
  std::string kind_;
};

Result<std::string> read_text_file(const std::string& path, uint64_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found(path + ": cannot open");
  f.seekg(0, std::ios::end);
  auto size = static_cast<uint64_t>(f.tellg());
  if (size > max_bytes) {
    return corrupt(path + ": " + std::to_string(size) + " bytes is larger than the " +
                   std::to_string(max_bytes) + "-byte limit");
  }
  f.seekg(0);
  std::stringstream ss;
  ss << f.rdbuf();
  if (!f && !f.eof()) return io_error(path + ": read failed");
  return ss.str();
}

json byte_level_pre(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

// The Split regexes of llama.cpp's byte-level pre-tokenizer names.
const char kLlama3Regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char kQwen2Regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

json split_then_bytes(const char* regex) {
  json split = {{"type", "Split"},
                {"pattern", {{"Regex", regex}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  return {{"type", "Sequence"}, {"pretokenizers", json::array({split, byte_level_pre(false)})}};
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> from_gpt2_files(const std::string& encoder_json,
                                                   const std::string& vocab_bpe) {
  PROV_ASSIGN_OR_RETURN(json encoder, read_json_file(encoder_json, uint64_t{256} << 20));
  if (!encoder.is_object()) return corrupt(encoder_json + ": expected an object token -> id");
  PROV_ASSIGN_OR_RETURN(std::string bpe, read_text_file(vocab_bpe, uint64_t{256} << 20));
  json merges = json::array();
  size_t pos = 0;
  while (pos < bpe.size()) {
    size_t nl = bpe.find('\n', pos);
    if (nl == std::string::npos) nl = bpe.size();
    std::string line = bpe.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.compare(0, 8, "#version") == 0) continue;
    merges.push_back(std::move(line));
  }
  // (Assigned, not written as an initializer list, which would copy the vocabulary.)
  json doc = json::object();
  doc["model"] = json::object();
  doc["model"]["type"] = "BPE";
  doc["model"]["vocab"] = std::move(encoder);
  doc["model"]["merges"] = std::move(merges);
  doc["pre_tokenizer"] = byte_level_pre(true);
  doc["decoder"] = {{"type", "ByteLevel"}};
  json config = json::object();
  const char* eot = "<|endoftext|>";
  auto it = doc["model"]["vocab"].find(eot);
  if (it != doc["model"]["vocab"].end() && it->is_number_integer()) {
    doc["added_tokens"] = json::array({{{"id", it->get<int64_t>()},
                                        {"content", eot},
                                        {"single_word", false},
                                        {"lstrip", false},
                                        {"rstrip", false},
                                        {"normalized", false},
                                        {"special", true}}});
    config["bos_token"] = eot;
    config["eos_token"] = eot;
  }
  auto t = from_hf_json_value(doc, encoder_json + " + " + vocab_bpe, &config);
  if (!t.is_ok()) return t.status();
  return std::unique_ptr<Tokenizer>(new KindTokenizer(std::move(t).value(), "gpt2-bpe"));
}

namespace tokenizer_internal {

Result<std::unique_ptr<Tokenizer>> make_gguf_bpe(const GgufTokenizer& g, const std::string& what) {
  if (g.tokens.empty()) return corrupt(what + ": tokenizer.ggml.tokens is empty");
  if (!g.token_types.empty() && g.token_types.size() != g.tokens.size()) {
    return corrupt(what + ": tokenizer.ggml.token_type does not have one entry per token");
  }
  json pre;
  if (g.pre.empty() || g.pre == "default" || g.pre == "gpt2" || g.pre == "gpt-2") {
    pre = byte_level_pre(true);
  } else if (g.pre == "llama-bpe" || g.pre == "llama3" || g.pre == "llama-v3" ||
             g.pre == "smaug-bpe") {
    pre = split_then_bytes(kLlama3Regex);
  } else if (g.pre == "qwen2") {
    pre = split_then_bytes(kQwen2Regex);
  } else {
    return unsupported(what + ": tokenizer.ggml.pre \"" + g.pre +
                       "\" is not supported (supported: default, gpt2, llama-bpe, qwen2)");
  }
  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < g.tokens.size(); ++i) {
    vocab[g.tokens[i]] = static_cast<int64_t>(i);
    int32_t type = g.token_types.empty() ? 1 : g.token_types[i];
    if (type == 3 || type == 4) {  // CONTROL, USER_DEFINED
      added.push_back({{"id", static_cast<int64_t>(i)},
                       {"content", g.tokens[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", type == 3}});
    }
  }
  json merges = json::array();
  for (const auto& m : g.merges) merges.push_back(m);
  json doc = json::object();
  doc["model"] = json::object();
  doc["model"]["type"] = "BPE";
  doc["model"]["vocab"] = std::move(vocab);
  doc["model"]["merges"] = std::move(merges);
  doc["pre_tokenizer"] = std::move(pre);
  doc["decoder"] = {{"type", "ByteLevel"}};
  doc["added_tokens"] = std::move(added);
  auto valid = [&](const std::optional<int64_t>& id) {
    return id && *id >= 0 && *id < static_cast<int64_t>(g.tokens.size());
  };
  json single = json::array();
  json specials = json::object();
  json config = json::object();
  if (valid(g.bos_id)) {
    config["bos_token"] = g.tokens[static_cast<size_t>(*g.bos_id)];
    if (g.add_bos) {
      single.push_back({{"SpecialToken", {{"id", "bos"}, {"type_id", 0}}}});
      specials["bos"] = {{"id", "bos"}, {"ids", {*g.bos_id}}, {"tokens", json::array()}};
    }
  }
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (valid(g.eos_id)) {
    config["eos_token"] = g.tokens[static_cast<size_t>(*g.eos_id)];
    if (g.add_eos) {
      single.push_back({{"SpecialToken", {{"id", "eos"}, {"type_id", 0}}}});
      specials["eos"] = {{"id", "eos"}, {"ids", {*g.eos_id}}, {"tokens", json::array()}};
    }
  }
  doc["post_processor"] = {
      {"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", specials}};
  auto t = from_hf_json_value(doc, what, &config);
  if (!t.is_ok()) return t.status();
  return std::unique_ptr<Tokenizer>(new KindTokenizer(std::move(t).value(), "gguf-gpt2"));
}

}  // namespace tokenizer_internal
}  // namespace prov::model
