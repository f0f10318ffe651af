#include "model/tokenizers/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/formats/config.h"
#include "model/formats/gguf.h"
#include "model/formats/llama2c.h"
#include "tests/support/test_support.h"

namespace prov::model {
namespace {

using nlohmann::json;
using prov::testing::TempDir;
using Ids = std::vector<int32_t>;

std::unique_ptr<Tokenizer> must(Result<std::unique_ptr<Tokenizer>> r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  if (!r.is_ok()) return nullptr;
  return std::move(r).value();
}

Ids enc(const Tokenizer& t, const std::string& text, bool add_special = false) {
  auto r = t.encode(text, add_special);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : Ids{};
}

std::string dec(const Tokenizer& t, const Ids& ids, bool skip_special = false) {
  auto r = t.decode(ids, skip_special);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::string();
}

std::string fixture(const std::string& rel) {
  return prov::testing::fixtures_dir() + "/" + rel;
}

// ---------------------------------------------------------------------------------------------
// Golden cases produced by the reference implementation

void check_cases(const std::string& name) {
  const std::string dir = fixture("hf/tokenizers/" + name);
  auto tok = must(from_hf_json(dir + "/tokenizer.json"));
  ASSERT_NE(tok, nullptr);
  auto cases = read_json_file(dir + "/cases.json");
  ASSERT_TRUE(cases.is_ok()) << cases.status().to_string();
  const json& list = (*cases)["cases"];
  ASSERT_TRUE(list.is_array());
  ASSERT_GT(list.size(), 0u);
  size_t ids_ok = 0, decoded_ok = 0;
  for (const auto& c : list) {
    const std::string text = c["text"].get<std::string>();
    const Ids expected = c["ids"].get<Ids>();
    const std::string decoded = c["decoded"].get<std::string>();
    Ids got = enc(*tok, text);
    EXPECT_EQ(got, expected) << name << ": ids differ for " << json(text).dump();
    if (got == expected) ++ids_ok;
    std::string text_back = dec(*tok, expected);
    EXPECT_EQ(text_back, decoded) << name << ": decoded text differs for " << json(text).dump();
    if (text_back == decoded) ++decoded_ok;
  }
  std::printf("[ cases    ] %s: ids %zu/%zu, decoded %zu/%zu\n", name.c_str(), ids_ok, list.size(),
              decoded_ok, list.size());
}

TEST(TokenizerFixtures, ByteLevelGpt2Cases) {
  PROV_REQUIRE_FIXTURES();
  check_cases("bytelevel_gpt2");
}

TEST(TokenizerFixtures, ByteLevelRegexCases) {
  PROV_REQUIRE_FIXTURES();
  check_cases("bytelevel_regex");
}

TEST(TokenizerFixtures, MetaspaceByteFallbackCases) {
  PROV_REQUIRE_FIXTURES();
  check_cases("metaspace_bytefallback");
}

TEST(TokenizerFixtures, EveryCasesFileIsCovered) {
  PROV_REQUIRE_FIXTURES();
  // A new fixture directory must get its own test above.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(fixture("hf/tokenizers"))) {
    if (std::filesystem::exists(e.path() / "cases.json"))
      names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"bytelevel_gpt2", "bytelevel_regex",
                                             "metaspace_bytefallback"}));
}

TEST(TokenizerFixtures, SpecialTokensAndAddSpecialOnFixture) {
  PROV_REQUIRE_FIXTURES();
  auto tok = must(load_tokenizer(fixture("hf/tokenizers/bytelevel_regex")));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "hf-bpe");
  EXPECT_EQ(tok->token_to_id("<|im_start|>"), 1);
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_EQ(tok->eos_id(), 0);  // <|endoftext|>
  Ids ids = enc(*tok, "<|im_start|>user\nhello<|im_end|>");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(dec(*tok, ids, /*skip_special=*/true), "user\nhello");
  // No post-processor: add_special changes nothing.
  EXPECT_EQ(enc(*tok, "Hello world", true), enc(*tok, "Hello world", false));
}

// ---------------------------------------------------------------------------------------------
// GPT-2 encoder.json + vocab.bpe

TEST(Gpt2Files, PublishedEncodings) {
  PROV_REQUIRE_FIXTURES();
  const std::string dir = fixture("real/gpt2-tokenizer");
  auto tok = must(from_gpt2_files(dir + "/encoder.json", dir + "/vocab.bpe"));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "gpt2-bpe");
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(enc(*tok, "Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(enc(*tok, " the"), (Ids{262}));
  EXPECT_EQ(enc(*tok, "Hello, world!"), (Ids{15496, 11, 995, 0}));
  EXPECT_EQ(enc(*tok, "<|endoftext|>"), (Ids{50256}));
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(dec(*tok, {15496, 995}), "Hello world");
  const std::string mixed = "Caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\x8D\n\tcode();";
  EXPECT_EQ(dec(*tok, enc(*tok, mixed)), mixed);
  EXPECT_EQ(dec(*tok, {15496, 50256, 995}, /*skip_special=*/true), "Hello world");
}

TEST(Gpt2Files, SmallFilesInADirectory) {
  TempDir dir;
  // Byte-level spellings: \xC4\xA0 is the space byte's character.
  json encoder = {{"h", 0},  {"i", 1},          {"\xC4\xA0", 2},
                  {"hi", 3}, {"\xC4\xA0hi", 4}, {"<|endoftext|>", 5}};
  prov::testing::write_file(dir.file("encoder.json"), encoder.dump());
  prov::testing::write_file(dir.file("vocab.bpe"),
                            std::string("#version: 0.2\r\nh i\r\n\xC4\xA0 hi\n\n"));
  auto tok = must(load_tokenizer(dir.path()));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "gpt2-bpe");
  EXPECT_EQ(enc(*tok, "hi hi<|endoftext|>"), (Ids{3, 4, 5}));
  EXPECT_EQ(dec(*tok, {3, 4, 5}), "hi hi<|endoftext|>");
  EXPECT_EQ(tok->eos_id(), 5);
  prov::testing::write_file(dir.file("vocab.bpe"), std::string("h i j\n"));
  EXPECT_EQ(load_tokenizer(dir.path()).status().code(), StatusCode::kCorrupt);
}

// ---------------------------------------------------------------------------------------------
// llama2.c

// run.c's encoder, verbatim in structure (quadratic), to cross-check the fast one.
Ids run_c_encode(const Llama2cTokenizer& t, const std::string& text, bool bos) {
  auto lookup = [&](const std::string& s) -> int {
    for (size_t i = 0; i < t.tokens.size(); ++i) {
      if (t.tokens[i] == s) return static_cast<int>(i);
    }
    return -1;
  };
  Ids tokens;
  if (bos) tokens.push_back(1);
  if (!text.empty()) tokens.push_back(lookup(" "));
  std::string buf;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) buf.clear();
    buf.push_back(static_cast<char>(c));
    unsigned char next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if ((next & 0xC0) == 0x80 && buf.size() < 4) continue;
    int id = lookup(buf);
    if (id != -1) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : buf) tokens.push_back(b + 3);
    }
    buf.clear();
  }
  while (true) {
    float best_score = -1e10f;
    int best_id = -1, best_idx = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      int id = lookup(t.tokens[tokens[i]] + t.tokens[tokens[i + 1]]);
      if (id != -1 && t.scores[id] > best_score) {
        best_score = t.scores[id];
        best_id = id;
        best_idx = static_cast<int>(i);
      }
    }
    if (best_idx == -1) break;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + best_idx + 1);
  }
  return tokens;
}

TEST(Llama2cTokenizer, Tok512EncodeDecode) {
  PROV_REQUIRE_FIXTURES();
  auto tok = must(load_tokenizer(fixture("real/tok512.bin")));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "llama2c");
  EXPECT_EQ(tok->vocab_size(), 512);
  Ids ids = enc(*tok, "Once upon a time", /*add_special=*/true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_LT(ids.size(), 16u);  // merges happened
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  Ids with_bos = enc(*tok, text, true);
  EXPECT_EQ(dec(*tok, with_bos, /*skip_special=*/true), text);
  // Without BOS the dummy-prefix space stays (run.c strips it only after BOS).
  EXPECT_EQ(dec(*tok, enc(*tok, text)), " " + text);
  // Bytes outside the vocabulary go through byte tokens and come back exactly.
  const std::string odd = "caf\xC3\xA9 \xE2\x9C\x93 \xFF\xFE end";
  EXPECT_EQ(dec(*tok, enc(*tok, odd, true), true), odd);
  EXPECT_TRUE(enc(*tok, "").empty());
  EXPECT_EQ(enc(*tok, "", true), (Ids{1}));
}

TEST(Llama2cTokenizer, MatchesRunCOnShakespeare) {
  PROV_REQUIRE_FIXTURES();
  auto raw = read_llama2c_tokenizer(fixture("real/tok512.bin"));
  ASSERT_TRUE(raw.is_ok()) << raw.status().to_string();
  auto tok = must(from_llama2c_tokenizer(*raw));
  ASSERT_NE(tok, nullptr);
  const std::string text = prov::testing::read_file(fixture("real/tinyshakespeare.txt"));
  ASSERT_GT(text.size(), 20000u);
  for (size_t off = 0; off < 20000; off += 997) {
    const std::string piece = text.substr(off, 40 + off % 60);
    EXPECT_EQ(enc(*tok, piece, true), run_c_encode(*raw, piece, true)) << json(piece).dump();
  }
  const std::string utf = "na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80!";
  EXPECT_EQ(enc(*tok, utf), run_c_encode(*raw, utf, false));
}

TEST(Llama2cTokenizer, InMemoryVocabulary) {
  Llama2cTokenizer t;
  t.max_token_length = 4;
  t.tokens = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    t.tokens.push_back(buf);
  }
  for (const char* s : {" ", "a", "b", "ab", " ab", "ba"}) t.tokens.push_back(s);
  t.scores.assign(t.tokens.size(), 0.0f);
  t.scores[t.tokens.size() - 3] = -1;  // ab
  t.scores[t.tokens.size() - 2] = -2;  // " ab"
  t.scores[t.tokens.size() - 1] = 5;   // ba (higher than ab)
  auto tok = must(from_llama2c_tokenizer(t));
  ASSERT_NE(tok, nullptr);
  const int32_t sp = 259, a = 260, b = 261, ab = 262, sab = 263, ba = 264;
  // " aba": pairs (" ",a) none, (a,b) -1, (b,a) 5 -> " a" "ba"; nothing merges further.
  EXPECT_EQ(enc(*tok, "aba"), (Ids{sp, a, ba}));
  // " ab": (a,b) -> ab, then (" ", ab) -> " ab".
  EXPECT_EQ(enc(*tok, "ab"), (Ids{sab}));
  EXPECT_EQ(enc(*tok, "b", true), (Ids{1, sp, b}));
  EXPECT_EQ(dec(*tok, {1, sab}), "\n<s>\nab");
  EXPECT_EQ(dec(*tok, {1, sab}, true), "ab");
  EXPECT_EQ(enc(*tok, "\x01"), (Ids{sp, 3 + 1}));
  (void)ab;
  // Mismatched tokens / scores.
  t.scores.pop_back();
  EXPECT_EQ(from_llama2c_tokenizer(t).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// SentencePiece vocabulary in GGUF

TEST(GgufTokenizer, Llama2PublishedEncodings) {
  PROV_REQUIRE_FIXTURES();
  auto tok = must(load_tokenizer(fixture("real/llama-2-tiny-random.gguf")));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "gguf-llama");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(enc(*tok, "Hello world"), (Ids{15043, 3186}));
  EXPECT_EQ(enc(*tok, "Hello world", true), (Ids{1, 15043, 3186}));
  EXPECT_EQ(enc(*tok, "\n"), (Ids{29871, 13}));
  EXPECT_EQ(dec(*tok, {15043, 3186}), "Hello world");
  EXPECT_EQ(dec(*tok, {1, 15043, 3186}, /*skip_special=*/true), "Hello world");
  const std::string mixed =
      "The caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C "
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F"
      "\xBD and \xF0\x9F\xA7\x91\xE2\x80\x8D\xF0\x9F\x9A\x80\n  indented\tline";
  Ids ids = enc(*tok, mixed);
  EXPECT_EQ(dec(*tok, ids), mixed);
  // The emoji is not in the vocabulary: it must have gone through byte tokens <0xF0>...
  EXPECT_NE(std::find(ids.begin(), ids.end(), 3 + 0xF0), ids.end());
  // Control tokens written in the text are recognised.
  EXPECT_EQ(enc(*tok, "<s>Hello"), (Ids{1, 15043}));
  // Raw invalid bytes survive a round trip (byte fallback).
  const std::string bad = "ab\xFF\xC3(";
  EXPECT_EQ(dec(*tok, enc(*tok, bad)), bad);
}

TEST(GgufTokenizer, CheckpointOverloadMatchesFileOverload) {
  PROV_REQUIRE_FIXTURES();
  auto ckpt = read_gguf(fixture("real/llama-2-tiny-random.gguf"));
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  auto tok = must(from_gguf(*ckpt));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(enc(*tok, "Hello world"), (Ids{15043, 3186}));
}

GgufTokenizer tiny_gpt2_vocab() {
  GgufTokenizer g;
  g.model = "gpt2";
  g.pre = "qwen2";
  // Byte-level alphabet for a few characters plus merges.
  g.tokens = {"<|endoftext|>",
              "h",
              "e",
              "l",
              "o",
              "\xC4\xA0" /* Ġ */,
              "w",
              "r",
              "d",
              "1",
              "2",
              "he",
              "ll",
              "hell",
              "hello",
              "\xC4\xA0w",
              "\xC4\xA0wo",
              "o\xC4\xA0"};
  g.token_types.assign(g.tokens.size(), 1);
  g.token_types[0] = 3;
  g.merges = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "\xC4\xA0w o", "o \xC4\xA0"};
  g.eos_id = 0;
  return g;
}

TEST(GgufTokenizer, Gpt2StyleVocabulary) {
  GgufTokenizer g = tiny_gpt2_vocab();
  auto tok = must(from_gguf_tokenizer(g, true, "test"));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "gguf-gpt2");
  // "hello world": pre-tokens "hello", " world"; "o Ġ" cannot merge across pre-tokens.
  EXPECT_EQ(enc(*tok, "hello world"), (Ids{14, 16, 7, 3, 8}));
  // qwen2 splits digits one by one.
  EXPECT_EQ(enc(*tok, "12<|endoftext|>"), (Ids{9, 10, 0}));
  EXPECT_EQ(dec(*tok, {14, 16, 7, 3, 8, 0}, true), "hello world");
  g.pre = "some-future-pre";
  auto bad = from_gguf_tokenizer(g, true, "test");
  EXPECT_EQ(bad.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(bad.status().message().find("some-future-pre"), std::string::npos);
  g.model = "t5";
  EXPECT_EQ(from_gguf_tokenizer(g, true, "test").status().code(), StatusCode::kUnsupported);
}

TEST(GgufTokenizer, WrittenFileRoundTrip) {
  TempDir dir;
  GgufWriter w;
  w.add_kv("general.architecture", GgufValue::str("llama"));
  w.add_kv("tokenizer.ggml.model", GgufValue::str("llama"));
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  for (const char* s : {"\xE2\x96\x81", "a", "b",
                        "\xE2\x96\x81"
                        "a",
                        "ab",
                        "\xE2\x96\x81"
                        "ab"}) {
    tokens.push_back(s);
    scores.push_back(-static_cast<float>(tokens.size()));
    types.push_back(1);
  }
  w.add_kv("tokenizer.ggml.tokens", GgufValue::strings(tokens));
  w.add_kv("tokenizer.ggml.scores", GgufValue::f32s(scores));
  w.add_kv("tokenizer.ggml.token_type", GgufValue::i32s(types));
  w.add_kv("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  w.add_kv("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
  w.add_kv("tokenizer.ggml.unknown_token_id", GgufValue::u32(0));
  ASSERT_TRUE(w.write(dir.file("v.gguf")).is_ok());
  auto tok = must(load_tokenizer(dir.file("v.gguf")));
  ASSERT_NE(tok, nullptr);
  // "▁a" (-263) outranks "ab" (-264): "▁ab" comes from ("▁a", "b").
  EXPECT_EQ(enc(*tok, "ab"), (Ids{264}));
  EXPECT_EQ(enc(*tok, "ab b", true), (Ids{1, 264, 259, 261}));
  EXPECT_EQ(dec(*tok, {1, 264, 259, 261}, true), "ab b");
  EXPECT_EQ(enc(*tok, "c"), (Ids{259, 3 + 'c'}));
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json behaviours the fixtures do not cover

json char_vocab(std::initializer_list<const char*> tokens) {
  json v = json::object();
  int id = 0;
  for (const char* t : tokens) v[t] = id++;
  return v;
}

std::unique_ptr<Tokenizer> from_doc(const json& doc) {
  return must(from_hf_json_value(doc, "test tokenizer.json"));
}

TEST(HfJson, MergesAsStringsAndPairsAgree) {
  json vocab = char_vocab({"a", "b", "c", "ab", "abc"});
  json doc = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "ab c"}}}}};
  auto strings = from_doc(doc);
  doc["model"]["merges"] = json::array({json::array({"a", "b"}), json::array({"ab", "c"})});
  auto pairs = from_doc(doc);
  ASSERT_NE(strings, nullptr);
  ASSERT_NE(pairs, nullptr);
  EXPECT_EQ(enc(*strings, "abcab"), (Ids{4, 3}));
  EXPECT_EQ(enc(*pairs, "abcab"), (Ids{4, 3}));
  // No decoder: tokens joined with spaces, as the reference does.
  EXPECT_EQ(dec(*pairs, {4, 3}), "abc ab");
  // Ids outside the vocabulary are dropped.
  EXPECT_EQ(dec(*pairs, {4, 99, -1}), "abc");
}

TEST(HfJson, MergeRankOrderAndIgnoreMerges) {
  // "abc": merges in rank order (b c) first -> a, bc; the whole word "abc" is in the vocab but
  // unreachable by merges.
  json vocab = char_vocab({"a", "b", "c", "ab", "bc", "abc"});
  json doc = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"b c", "a b"}}}}};
  auto t = from_doc(doc);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(enc(*t, "abc"), (Ids{0, 4}));
  doc["model"]["ignore_merges"] = true;
  auto ig = from_doc(doc);
  ASSERT_NE(ig, nullptr);
  EXPECT_EQ(enc(*ig, "abc"), (Ids{5}));
  EXPECT_EQ(enc(*ig, "abcb"), (Ids{0, 4, 1}));  // not a vocab word: merges apply
}

TEST(HfJson, SplitBehaviours) {
  json vocab = char_vocab({"a", "b", "-", "a-", "-b", "--"});
  json base = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a -", "- b", "- -"}}}}};
  auto with_split = [&](const char* behavior, bool invert) {
    json doc = base;
    doc["pre_tokenizer"] = {{"type", "Split"},
                            {"pattern", {{"String", "-"}}},
                            {"behavior", behavior},
                            {"invert", invert}};
    return from_doc(doc);
  };
  auto none = from_doc(base);
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(enc(*none, "a-b"), (Ids{3, 1}));
  struct Case {
    const char* behavior;
    bool invert;
    const char* text;
    Ids want;
  };
  for (const Case& c : std::vector<Case>{
           {"Isolated", false, "a-b", {0, 2, 1}},
           {"Removed", false, "a-b", {0, 1}},
           {"MergedWithPrevious", false, "a-b", {3, 1}},
           {"MergedWithNext", false, "a-b", {0, 4}},
           {"Contiguous", false, "a--b", {0, 5, 1}},
           {"Isolated", false, "a--b", {0, 2, 2, 1}},
           {"Removed", true, "a-b", {2}},
       }) {
    auto t = with_split(c.behavior, c.invert);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(enc(*t, c.text), c.want) << c.behavior << " invert=" << c.invert << " " << c.text;
  }
  // A regex pattern and an unknown behaviour.
  json doc = base;
  doc["pre_tokenizer"] = {{"type", "Split"},
                          {"pattern", {{"Regex", "\\p{P}+"}}},
                          {"behavior", "Isolated"},
                          {"invert", false}};
  auto re = from_doc(doc);
  ASSERT_NE(re, nullptr);
  EXPECT_EQ(enc(*re, "a--b"), (Ids{0, 5, 1}));
  doc["pre_tokenizer"]["behavior"] = "Sideways";
  EXPECT_EQ(from_hf_json_value(doc, "t").status().code(), StatusCode::kCorrupt);
}

TEST(HfJson, AddedTokenFlags) {
  json vocab = char_vocab({"a", "b", " ", "<m>"});
  auto with_flags = [&](bool lstrip, bool rstrip, bool single_word) {
    json doc = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
                {"added_tokens",
                 {{{"id", 3},
                   {"content", "<m>"},
                   {"single_word", single_word},
                   {"lstrip", lstrip},
                   {"rstrip", rstrip},
                   {"normalized", false},
                   {"special", true}}}}};
    return from_doc(doc);
  };
  auto plain = with_flags(false, false, false);
  auto l = with_flags(true, false, false);
  auto r = with_flags(false, true, false);
  auto lr = with_flags(true, true, false);
  auto sw = with_flags(false, false, true);
  ASSERT_TRUE(plain && l && r && lr && sw);
  EXPECT_EQ(enc(*plain, "a <m> b"), (Ids{0, 2, 3, 2, 1}));
  EXPECT_EQ(enc(*l, "a <m> b"), (Ids{0, 3, 2, 1}));
  EXPECT_EQ(enc(*r, "a <m> b"), (Ids{0, 2, 3, 1}));
  EXPECT_EQ(enc(*lr, "a  <m>  b"), (Ids{0, 3, 1}));
  // single_word: only matched between non-word characters. Unmatched "<", "m", ">" are not in
  // the vocabulary and there is no unk_token, so they are dropped (as the reference does).
  EXPECT_EQ(enc(*sw, "a <m> b"), (Ids{0, 2, 3, 2, 1}));
  EXPECT_EQ(enc(*sw, "a<m>b"), (Ids{0, 1}));
  // Longest match first among added tokens.
  json doc = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
              {"added_tokens",
               {{{"id", 4}, {"content", "<"}, {"special", false}},
                {{"id", 5}, {"content", "<m>>"}, {"special", true}}}}};
  auto longest = from_doc(doc);
  ASSERT_NE(longest, nullptr);
  EXPECT_EQ(enc(*longest, "a<m>>b<"), (Ids{0, 5, 1, 4}));
  EXPECT_EQ(longest->vocab_size(), 6);
  EXPECT_EQ(dec(*longest, {0, 5, 1, 4}, /*skip_special=*/true), "a b <");
}

TEST(HfJson, ByteFallbackUnkAndFuse) {
  json vocab = char_vocab({"<unk>", "a", "<0xC3>", "<0xA9>"});
  json doc = {
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", json::array()},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true}}},
      {"decoder",
       {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}}};
  auto t = from_doc(doc);
  ASSERT_NE(t, nullptr);
  // é = C3 A9: both byte tokens exist. x (78) has no byte token: unk, and two unks fuse.
  EXPECT_EQ(enc(*t, "a\xC3\xA9xxa"), (Ids{1, 2, 3, 0, 1}));
  EXPECT_EQ(dec(*t, {1, 2, 3, 1}),
            "a\xC3\xA9"
            "a");
  // A lone continuation byte decodes to U+FFFD.
  EXPECT_EQ(dec(*t, {1, 3, 1}),
            "a\xEF\xBF\xBD"
            "a");
  doc["model"]["fuse_unk"] = false;
  auto nf = from_doc(doc);
  ASSERT_NE(nf, nullptr);
  EXPECT_EQ(enc(*nf, "xxa"), (Ids{0, 0, 1}));
  // unk_token not in the vocabulary: an error when it is needed.
  doc["model"]["unk_token"] = "<missing>";
  auto broken = from_doc(doc);
  ASSERT_NE(broken, nullptr);
  EXPECT_EQ(enc(*broken, "a").size(), 1u);
  EXPECT_FALSE(broken->encode("x").is_ok());
}

TEST(HfJson, NormalizersAndTemplate) {
  json vocab = char_vocab({"<s>", "</s>", "f", "i", "\xE2\x96\x81", "x"});
  json doc = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "NFKC"}},
          {{"type", "Lowercase"}},
          {{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}},
          {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
        {"special_tokens",
         {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}},
          {"</s>", {{"id", "</s>"}, {"ids", {1}}, {"tokens", {"</s>"}}}}}}}}};
  auto t = from_doc(doc);
  ASSERT_NE(t, nullptr);
  // Fullwidth "ＦＩ" -> NFKC "FI" -> "fi"; whitespace runs collapse; ends stripped.
  EXPECT_EQ(enc(*t, "  \xEF\xBC\xA6\xEF\xBC\xA9 \t X "), (Ids{2, 3, 4, 5}));
  EXPECT_EQ(enc(*t, "x", true), (Ids{0, 5, 1}));
  EXPECT_EQ(t->bos_id(), 0);  // from the template
  // İ lowercases to "i" + U+0307 (not in this vocabulary: the combining mark is dropped).
  EXPECT_EQ(enc(*t, "\xC4\xB0"), (Ids{3}));
}

TEST(HfJson, MetaspacePreTokenizerAndDecoder) {
  json vocab = char_vocab({"\xE2\x96\x81", "a", "b",
                           "\xE2\x96\x81"
                           "a",
                           "<x>"});
  auto make = [&](const char* scheme) {
    json doc = {
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"\xE2\x96\x81 a"}}}},
        {"added_tokens", {{{"id", 4}, {"content", "<x>"}, {"special", true}}}},
        {"pre_tokenizer",
         {{"type", "Metaspace"},
          {"replacement", "\xE2\x96\x81"},
          {"prepend_scheme", scheme},
          {"split", true}}},
        {"decoder",
         {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", scheme}}}};
    return from_doc(doc);
  };
  auto always = make("always");
  auto first = make("first");
  auto never = make("never");
  ASSERT_TRUE(always && first && never);
  EXPECT_EQ(enc(*always, "a b"), (Ids{3, 0, 2}));
  EXPECT_EQ(enc(*always, "<x>a"), (Ids{4, 3}));
  EXPECT_EQ(enc(*first, "<x>a"), (Ids{4, 1}));  // not at the start of the text
  EXPECT_EQ(enc(*first, "a<x>a"), (Ids{3, 4, 1}));
  EXPECT_EQ(enc(*never, "a b"), (Ids{1, 0, 2}));
  EXPECT_EQ(dec(*always, {3, 0, 2}), "a b");
  EXPECT_EQ(dec(*never, {3, 0, 2}), " a b");
}

TEST(HfJson, ByteLevelPrefixSpaceAndDigits) {
  // Byte-level alphabet for a handful of characters.
  json vocab = char_vocab({"\xC4\xA0" /* Ġ */, "a", "1", "2", "3",
                           "\xC4\xA0"
                           "a"});
  json doc = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"\xC4\xA0 a"}}}},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Digits"}, {"individual_digits", true}},
                  {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}}}}}},
              {"decoder", {{"type", "ByteLevel"}}}};
  auto t = from_doc(doc);
  ASSERT_NE(t, nullptr);
  // "a12": Digits isolates 1 and 2; ByteLevel then prefixes a space to every piece.
  EXPECT_EQ(enc(*t, "a12"), (Ids{5, 0, 2, 0, 3}));
  EXPECT_EQ(dec(*t, {5, 2}), " a1");
}

TEST(HfJson, InvalidUtf8IsReplacedNotFatal) {
  PROV_REQUIRE_FIXTURES();
  auto tok = must(from_hf_json(fixture("hf/tokenizers/bytelevel_gpt2/tokenizer.json")));
  ASSERT_NE(tok, nullptr);
  // Each maximal ill-formed subsequence becomes one U+FFFD.
  EXPECT_EQ(enc(*tok, "a\xFF\xFE b\xE2\x82"), enc(*tok, "a\xEF\xBF\xBD\xEF\xBF\xBD b\xEF\xBF\xBD"));
  EXPECT_EQ(dec(*tok, enc(*tok, "x\xC3")), "x\xEF\xBF\xBD");
}

TEST(HfJson, ConcurrentEncodeIsConsistent) {
  PROV_REQUIRE_FIXTURES();
  auto tok = must(from_hf_json(fixture("hf/tokenizers/bytelevel_regex/tokenizer.json")));
  ASSERT_NE(tok, nullptr);
  const std::string text = "The quick brown fox jumps over the lazy dog, 12345 times!\n";
  const Ids want = enc(*tok, text);
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 50; ++i) {
        auto r = tok->encode(text + std::to_string(i % 7));
        auto base = tok->encode(text);
        if (r.is_ok() && base.is_ok() && *base == want) ++ok[k];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, (std::vector<int>{50, 50, 50, 50}));
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST(HfJson, MalformedFilesAreRefused) {
  json vocab = char_vocab({"a", "b"});
  auto status_of = [](const json& doc) { return from_hf_json_value(doc, "t.json").status(); };
  EXPECT_EQ(status_of(json::object()).code(), StatusCode::kCorrupt);
  EXPECT_NE(status_of(json::object()).message().find("model"), std::string::npos);
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    Status s = status_of({{"model", {{"type", type}, {"vocab", vocab}}}});
    EXPECT_EQ(s.code(), StatusCode::kUnsupported) << type;
    EXPECT_NE(s.message().find(type), std::string::npos) << s.message();
  }
  Status unknown = status_of({{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a c"}}}}});
  EXPECT_EQ(unknown.code(), StatusCode::kCorrupt);
  EXPECT_NE(unknown.message().find("\"c\""), std::string::npos) << unknown.message();
  Status no_result =
      status_of({{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b"}}}}});
  EXPECT_NE(no_result.message().find("\"ab\""), std::string::npos) << no_result.message();
  EXPECT_EQ(
      status_of({{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b c"}}}}}).code(),
      StatusCode::kCorrupt);
  EXPECT_EQ(status_of({{"model", {{"type", "BPE"}, {"vocab", {{"a", -4}}}}}}).code(),
            StatusCode::kCorrupt);
  EXPECT_EQ(status_of({{"model", {{"type", "BPE"}, {"vocab", {{"a", "zero"}}}}}}).code(),
            StatusCode::kCorrupt);
  EXPECT_EQ(status_of({{"model", {{"type", "BPE"}, {"vocab", {{"a", 1LL << 40}}}}}}).code(),
            StatusCode::kCorrupt);
  json ok = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
  json doc = ok;
  doc["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}};
  EXPECT_EQ(status_of(doc).code(), StatusCode::kUnsupported);
  EXPECT_NE(status_of(doc).message().find("Precompiled"), std::string::npos);
  doc = ok;
  doc["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  EXPECT_EQ(status_of(doc).code(), StatusCode::kUnsupported);
  doc = ok;
  doc["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_EQ(status_of(doc).code(), StatusCode::kCorrupt);
  doc = ok;
  doc["decoder"] = {{"type", "WordPiece"}};
  EXPECT_EQ(status_of(doc).code(), StatusCode::kUnsupported);
  doc = ok;
  doc["added_tokens"] = {{{"content", "zz"}}};  // no id and not in the vocabulary
  EXPECT_EQ(status_of(doc).code(), StatusCode::kCorrupt);

  TempDir dir;
  prov::testing::write_file(dir.file("tokenizer.json"), std::string("{\"model\": [1, 2"));
  auto truncated = from_hf_json(dir.file("tokenizer.json"));
  EXPECT_EQ(truncated.status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(from_hf_json(dir.file("missing.json")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(load_tokenizer(dir.file("nothing-here")).status().code(), StatusCode::kNotFound);
  TempDir empty;
  EXPECT_EQ(load_tokenizer(empty.path()).status().code(), StatusCode::kNotFound);
}

TEST(HfJson, LoadsFromDirectoryWithConfig) {
  TempDir dir;
  json doc = {{"model",
               {{"type", "BPE"},
                {"vocab", char_vocab({"<s>", "</s>", "<pad>", "a"})},
                {"merges", json::array()}}},
              {"added_tokens",
               {{{"id", 0}, {"content", "<s>"}, {"special", true}},
                {{"id", 1}, {"content", "</s>"}, {"special", true}},
                {{"id", 2}, {"content", "<pad>"}, {"special", true}}}}};
  prov::testing::write_file(dir.file("tokenizer.json"), doc.dump());
  prov::testing::write_file(
      dir.file("tokenizer_config.json"),
      json({{"bos_token", {{"content", "<pad>"}}}, {"eos_token", "<s>"}}).dump());
  auto t = must(load_tokenizer(dir.path()));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->bos_id(), 2);
  EXPECT_EQ(t->eos_id(), 0);
  EXPECT_EQ(t->id_to_token(3), "a");
  EXPECT_EQ(t->id_to_token(7), std::nullopt);
  EXPECT_EQ(t->token_to_id("</s>"), 1);
}

TEST(Llama2cTokenizer, TruncatedFileIsRefused) {
  TempDir dir;
  Llama2cTokenizer t;
  t.max_token_length = 3;
  t.tokens = {"<unk>", "\n<s>\n", "\n</s>\n", "abc"};
  t.scores = {0, 0, 0, -1};
  auto bytes = serialize_llama2c_tokenizer(t);
  ASSERT_TRUE(bytes.is_ok());
  std::vector<uint8_t> cut(bytes->begin(), bytes->end() - 2);
  prov::testing::write_file(dir.file("tok4.bin"), cut);
  auto r = from_llama2c(dir.file("tok4.bin"));
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  // A vocabulary without byte tokens refuses bytes it cannot place instead of emitting ids
  // outside the vocabulary.
  prov::testing::write_file(dir.file("tok4.bin"), *bytes);
  auto small = must(load_tokenizer(dir.path()));
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->encode("abc").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace prov::model
