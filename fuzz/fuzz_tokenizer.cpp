// libFuzzer harness for the tokenizers.
//
// The input is used two ways:
//   * as text: encoded (with and without special tokens) and decoded back by four small
//     tokenizers built in memory (byte-level BPE with regex split, added tokens and NFKC;
//     Metaspace-style BPE with byte fallback; llama2.c; GGUF SentencePiece), and its bytes are
//     also decoded as a list of (possibly out-of-range) ids;
//   * as a tokenizer.json document when it starts with '{': parsed, and if accepted, used to
//     encode and decode a fixed sample.
// Nothing may crash, hang or trip the sanitizers.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/formats/gguf.h"
#include "model/formats/llama2c.h"
#include "model/tokenizers/tokenizer.h"

namespace {

using nlohmann::json;
using prov::model::Tokenizer;

std::string byte_token(int b) {
  static const char* hex = "0123456789ABCDEF";
  std::string t = "<0x";
  t.push_back(hex[b >> 4]);
  t.push_back(hex[b & 15]);
  t.push_back('>');
  return t;
}

// The GPT-2 byte -> printable character mapping, to spell a byte-level vocabulary.
std::string byte_level_char(int b) {
  static std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int n = 0;
    for (int c = 0; c < 256; ++c) {
      bool direct = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
      uint32_t cp = direct ? static_cast<uint32_t>(c) : static_cast<uint32_t>(256 + n++);
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      t[c] = s;
    }
    return t;
  }();
  return table[b];
}

std::unique_ptr<Tokenizer> byte_level_bpe() {
  json vocab = json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_level_char(b)] = id++;
  const std::string sp = byte_level_char(' ');
  std::vector<std::pair<std::string, std::string>> merges = {
      {"t", "h"}, {"th", "e"}, {sp, "the"}, {"i", "n"}, {sp, "a"}, {"e", "r"}, {"1", "2"}};
  json mj = json::array();
  for (auto& [a, b] : merges) {
    vocab[a + b] = id++;
    mj.push_back(json::array({a, b}));
  }
  json doc = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", mj}}},
              {"added_tokens",
               {{{"id", id}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}},
                {{"id", id + 1},
                 {"content", "<sep>"},
                 {"special", true},
                 {"lstrip", true},
                 {"rstrip", true}},
                {{"id", id + 2}, {"content", "word"}, {"special", false}, {"single_word", true}}}},
              {"normalizer", {{"type", "NFKC"}}},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Split"},
                   {"pattern",
                    {{"Regex",
                      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                   {"behavior", "Isolated"},
                   {"invert", false}},
                  {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
              {"post_processor",
               {{"type", "TemplateProcessing"},
                {"single",
                 {{{"SpecialToken", {{"id", "<|end|>"}, {"type_id", 0}}}},
                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                {"special_tokens", {{"<|end|>", {{"id", "<|end|>"}, {"ids", {id}}}}}}}},
              {"decoder", {{"type", "ByteLevel"}}}};
  auto t = prov::model::from_hf_json_value(doc, "fuzz byte-level");
  return t.is_ok() ? std::move(t).value() : nullptr;
}

std::unique_ptr<Tokenizer> metaspace_bpe() {
  const std::string m = "\xE2\x96\x81";
  json vocab = json::object();
  int id = 0;
  vocab["<unk>"] = id++;
  for (int b = 0; b < 256; ++b) vocab[byte_token(b)] = id++;
  for (const std::string& s : {m, std::string("a"), std::string("b"), std::string("c"), m + "a",
                               std::string("ab"), m + "ab"}) {
    vocab[s] = id++;
  }
  json doc = {{"model",
               {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", {m + " a", "a b", m + "a b"}},
                {"unk_token", "<unk>"},
                {"byte_fallback", true},
                {"fuse_unk", true}}},
              {"normalizer",
               {{"type", "Sequence"},
                {"normalizers",
                 {{{"type", "Prepend"}, {"prepend", m}},
                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", m}},
                  {{"type", "Lowercase"}}}}}},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Digits"}, {"individual_digits", true}},
                  {{"type", "Metaspace"},
                   {"replacement", m},
                   {"prepend_scheme", "first"},
                   {"split", true}}}}}},
              {"decoder",
               {{"type", "Sequence"},
                {"decoders",
                 {{{"type", "Replace"}, {"pattern", {{"String", m}}}, {"content", " "}},
                  {{"type", "ByteFallback"}},
                  {{"type", "Fuse"}},
                  {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}}}}}}};
  auto t = prov::model::from_hf_json_value(doc, "fuzz metaspace");
  return t.is_ok() ? std::move(t).value() : nullptr;
}

std::unique_ptr<Tokenizer> llama2c() {
  prov::model::Llama2cTokenizer t;
  t.max_token_length = 4;
  t.tokens = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) t.tokens.push_back(byte_token(b));
  for (const char* s : {" ", "a", "b", " a", "ab", " ab", "the", " the"}) t.tokens.push_back(s);
  for (size_t i = 0; i < t.tokens.size(); ++i) t.scores.push_back(-static_cast<float>(i % 7));
  auto r = prov::model::from_llama2c_tokenizer(t);
  return r.is_ok() ? std::move(r).value() : nullptr;
}

std::unique_ptr<Tokenizer> spm() {
  prov::model::GgufTokenizer g;
  g.model = "llama";
  g.tokens = {"<unk>", "<s>", "</s>"};
  g.token_types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    g.tokens.push_back(byte_token(b));
    g.token_types.push_back(6);
  }
  const std::string m = "\xE2\x96\x81";
  for (const std::string& s : {m, std::string("a"), std::string("b"), m + "a", m + "ab",
                               std::string("ab"), std::string("\xC3\xA9")}) {
    g.tokens.push_back(s);
    g.token_types.push_back(1);
  }
  for (size_t i = 0; i < g.tokens.size(); ++i) g.scores.push_back(-static_cast<float>(i % 5));
  g.bos_id = 1;
  g.eos_id = 2;
  g.unk_id = 0;
  g.add_bos = true;
  auto r = prov::model::from_gguf_tokenizer(g, true, "fuzz spm");
  return r.is_ok() ? std::move(r).value() : nullptr;
}

void exercise(const Tokenizer& t, const std::string& text) {
  for (bool special : {false, true}) {
    auto ids = t.encode(text, special);
    if (!ids.is_ok()) continue;
    for (int32_t id : *ids) {
      if (id < 0 || id >= t.vocab_size()) __builtin_trap();  // encode must stay in range
    }
    (void)t.decode(*ids, special);
  }
  // The raw bytes as ids, some out of range.
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < text.size() && ids.size() < 512; i += 2) {
    int32_t v = (static_cast<uint8_t>(text[i]) << 8) | static_cast<uint8_t>(text[i + 1]);
    ids.push_back(v % (t.vocab_size() + 8) - 4);
  }
  (void)t.decode(ids, false);
  (void)t.decode(ids, true);
  if (!ids.empty()) {
    (void)t.id_to_token(ids[0]);
    (void)t.is_special(ids[0]);
  }
  (void)t.token_to_id(text.substr(0, 8));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::unique_ptr<Tokenizer>> tokenizers = [] {
    std::vector<std::unique_ptr<Tokenizer>> v;
    v.push_back(byte_level_bpe());
    v.push_back(metaspace_bpe());
    v.push_back(llama2c());
    v.push_back(spm());
    for (const auto& t : v) {
      if (t == nullptr) __builtin_trap();  // the fixed tokenizers must build
    }
    return v;
  }();
  if (size > (1u << 16)) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& t : tokenizers) exercise(*t, text);
  if (size > 0 && data[0] == '{' && size < 8192) {
    auto t = prov::model::from_hf_json_text(text, "fuzz.json");
    if (t.is_ok()) exercise(**t, "Hello world 123 <s> caf\xC3\xA9 \xF0\x9F\x91\x8D");
  }
  return 0;
}
