#include "zoo/bpe_trainer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/tokenizers/tokenizer.h"
#include "tests/support/test_support.h"

namespace prov::zoo {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using prov::testing::TempDir;

// Deterministic English-like prose: sentences from a fixed word list, with punctuation,
// contractions, numbers, newlines and the odd non-ASCII word.
std::string synthetic_text(uint64_t seed, size_t bytes) {
  static const char* const kWords[] = {
      "the",      "of",        "and",      "to",      "in",       "a",         "is",
      "that",     "for",       "it",       "as",      "was",      "with",      "be",
      "by",       "on",        "not",      "he",      "this",     "are",       "or",
      "his",      "from",      "at",       "which",   "but",      "have",      "an",
      "had",      "they",      "you",      "were",    "their",    "one",       "all",
      "we",       "can",       "her",      "has",     "there",    "been",      "if",
      "more",     "when",      "will",     "would",   "who",      "so",        "no",
      "river",    "mountain",  "garden",   "kingdom", "morning",  "evening",   "silver",
      "window",   "thought",   "because",  "through", "between",  "another",   "nothing",
      "people",   "little",    "without",  "against", "himself",  "herself",   "together",
      "children", "answered",  "walking",  "running", "speaking", "listening", "remembered",
      "wondered", "beautiful", "darkness", "café",    "naïve",    "über",      "smörgåsbord"};
  static const char* const kContractions[] = {"don't", "it's",   "we're", "they've",
                                              "I'm",   "you'll", "he'd"};
  std::mt19937_64 rng(seed);
  const size_t n_words = sizeof(kWords) / sizeof(kWords[0]);
  std::string out;
  bool capital = true;
  while (out.size() < bytes) {
    std::string w;
    const uint64_t r = rng() % 100;
    if (r < 4) {
      w = kContractions[rng() % 7];
    } else if (r < 7) {
      w = std::to_string(rng() % 2000);
    } else {
      // Zipf-ish: favour the front of the list.
      const size_t i = static_cast<size_t>(rng() % n_words) * (rng() % n_words) / n_words;
      w = kWords[i];
    }
    if (capital && !w.empty() && w[0] >= 'a' && w[0] <= 'z') w[0] = static_cast<char>(w[0] - 32);
    capital = false;
    out += w;
    const uint64_t p = rng() % 100;
    if (p < 8) {
      out += ".";
      capital = true;
      out += (rng() % 6 == 0) ? "\n\n" : " ";
    } else if (p < 14) {
      out += ", ";
    } else if (p < 15) {
      out += "; ";
    } else if (p < 16) {
      out += "? ";
      capital = true;
    } else {
      out += " ";
    }
  }
  return out;
}

std::unique_ptr<model::Tokenizer> load(const ordered_json& doc) {
  auto r = model::from_hf_json_text(doc.dump(), "trained tokenizer.json");
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  if (!r.is_ok()) return nullptr;
  return std::move(r).value();
}

ordered_json train(const std::vector<std::string>& texts, const BpeTrainOptions& o,
                   BpeTrainStats* stats = nullptr) {
  auto r = train_byte_level_bpe(texts, o, stats);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : ordered_json();
}

std::vector<std::string> merges_of(const ordered_json& doc) {
  std::vector<std::string> out;
  for (const auto& m : doc["model"]["merges"]) out.push_back(m.get<std::string>());
  return out;
}

const std::vector<std::string>& synthetic_corpus() {
  static const std::vector<std::string> kCorpus = {synthetic_text(1, 60000),
                                                   synthetic_text(2, 60000)};
  return kCorpus;
}

TEST(BpeTrainer, RoundTripsHeldOutTextAndHasAskedVocabSize) {
  BpeTrainOptions o;
  o.vocab_size = 600;
  BpeTrainStats stats;
  ordered_json doc = train(synthetic_corpus(), o, &stats);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["model"]["vocab"].size(), 600u);
  EXPECT_EQ(stats.vocab_size, 600);
  EXPECT_EQ(stats.merges, static_cast<int32_t>(doc["model"]["merges"].size()));
  EXPECT_GT(stats.unique_pretokens, 50);
  EXPECT_GT(stats.pretokens, stats.unique_pretokens);
  auto tok = load(doc);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 600);

  const std::vector<std::string> held_out = {
      synthetic_text(99, 5000),
      "Unseen words: zebra, quixotic, 3.14159 and 2024-06-01!\n\tTabs\r\nand  double  spaces  ",
      "Ünïcödé — “quotes” 日本語のテキスト 🙂 emoji, Ελληνικά, "
      "עברית.",
      std::string("control \x01\x7f bytes and a NUL-free end"),
      "",
      " leading space and trailing newline\n",
  };
  for (const std::string& text : held_out) {
    auto ids = tok->encode(text);
    ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
    for (int32_t id : *ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, 600);
    }
    auto back = tok->decode(*ids);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(*back, text);
  }
}

TEST(BpeTrainer, CompressesEnglishBetterThanHalfTheBytes) {
  BpeTrainOptions o;
  o.vocab_size = 512;
  auto tok = load(train(synthetic_corpus(), o));
  ASSERT_NE(tok, nullptr);
  const std::string text = synthetic_text(7, 20000);
  auto ids = tok->encode(text);
  ASSERT_TRUE(ids.is_ok());
  EXPECT_LT(static_cast<double>(ids->size()), 0.5 * static_cast<double>(text.size()))
      << ids->size() << " tokens for " << text.size() << " bytes";
}

TEST(BpeTrainer, IsDeterministicAndIndependentOfTextOrder) {
  BpeTrainOptions o;
  o.vocab_size = 700;
  const std::string a = train(synthetic_corpus(), o).dump(2);
  const std::string b = train(synthetic_corpus(), o).dump(2);
  EXPECT_EQ(a, b);
  std::vector<std::string> reversed(synthetic_corpus().rbegin(), synthetic_corpus().rend());
  EXPECT_EQ(train(reversed, o).dump(2), a);
  // A different corpus gives a different tokenizer (the comparison above can fail).
  EXPECT_NE(train({synthetic_text(3, 60000)}, o).dump(2), a);
}

TEST(BpeTrainer, MergesNameEarlierTokensAndIdsFollowMergeOrder) {
  BpeTrainOptions o;
  o.vocab_size = 800;
  o.special_tokens = {"<|endoftext|>", "<|pad|>"};
  ordered_json doc = train(synthetic_corpus(), o);
  const ordered_json& vocab = doc["model"]["vocab"];
  ASSERT_EQ(vocab.size(), 800u);
  // Ids are 0..799, each once, and the object lists them in id order.
  int64_t expect = 0;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) EXPECT_EQ(it.value(), expect++);
  int64_t last_new = 2 + 256 - 1;
  for (const std::string& m : merges_of(doc)) {
    const size_t sp = m.find(' ');
    ASSERT_NE(sp, std::string::npos) << m;
    ASSERT_EQ(m.find(' ', sp + 1), std::string::npos) << m;
    const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
    ASSERT_TRUE(vocab.contains(left)) << m;
    ASSERT_TRUE(vocab.contains(right)) << m;
    ASSERT_TRUE(vocab.contains(left + right)) << m;
    const int64_t id = vocab[left + right];
    EXPECT_LT(vocab[left].get<int64_t>(), id) << m;
    EXPECT_LT(vocab[right].get<int64_t>(), id) << m;
    EXPECT_GE(vocab[left].get<int64_t>(), 2) << "merge uses a special token: " << m;
    if (id > last_new) {
      EXPECT_EQ(id, last_new + 1) << "new tokens must get consecutive ids: " << m;
      last_new = id;
    }
  }
  EXPECT_EQ(last_new, 799);
}

TEST(BpeTrainer, LaysOutSpecialsThenByteAlphabetInCodePointOrder) {
  BpeTrainOptions o;
  o.vocab_size = 300;
  o.special_tokens = {"<s>", "</s>", "<unk>"};
  ordered_json doc = train({"hello world"}, o);
  const ordered_json& vocab = doc["model"]["vocab"];
  EXPECT_EQ(vocab["<s>"], 0);
  EXPECT_EQ(vocab["</s>"], 1);
  EXPECT_EQ(vocab["<unk>"], 2);
  EXPECT_EQ(vocab["!"], 3);            // byte 0x21, the first printable
  EXPECT_EQ(vocab["~"], 3 + 93);       // byte 0x7E
  EXPECT_EQ(vocab["\u00a1"], 3 + 94);  // byte 0xA1
  EXPECT_EQ(vocab["\u00ff"], 3 + 187);
  EXPECT_EQ(vocab["\u0100"], 3 + 188);       // byte 0x00
  EXPECT_EQ(vocab["\u0120"], 3 + 188 + 32);  // byte 0x20 (space), "Ġ"
  EXPECT_EQ(vocab["\u0143"], 3 + 255);       // byte 0xAD, the last
  ASSERT_EQ(doc["added_tokens"].size(), 3u);
  EXPECT_EQ(doc["added_tokens"][1]["content"], "</s>");
  EXPECT_EQ(doc["added_tokens"][1]["id"], 1);
  EXPECT_EQ(doc["added_tokens"][1]["special"], true);
  // Tiny corpus: pairs run out long before 300 (each pair occurs once < min_frequency 2).
  EXPECT_EQ(vocab.size(), 3u + 256u);
  EXPECT_TRUE(doc["model"]["merges"].empty());
}

TEST(BpeTrainer, MatchesHandComputedMergesAndTieBreak) {
  // Pre-tokens "aa", " aa" x2, " ab". Counts: (a,a) 3, (Ġ,a) 3, (a,b) 1. The tie at 3 goes to
  // the pair whose left string is smaller: "a" (0x61) < "Ġ" (0xC4 0xA0).
  BpeTrainOptions o;
  o.special_tokens = {};
  o.min_frequency = 1;
  o.vocab_size = 1000;
  ordered_json doc = train({"aa aa aa ab"}, o);
  EXPECT_EQ(merges_of(doc), (std::vector<std::string>{"a a", "\u0120 aa", "a b", "\u0120 ab"}));
  EXPECT_EQ(doc["model"]["vocab"]["aa"], 256);
  EXPECT_EQ(doc["model"]["vocab"]["\u0120ab"], 259);

  // Equal counts and equal left strings: the smaller right string wins.
  o.vocab_size = 257;
  EXPECT_EQ(merges_of(train({"ab ac", "xy"}, o)), (std::vector<std::string>{"a b"}));
  EXPECT_EQ(merges_of(train({"ac ab", "xy"}, o)), (std::vector<std::string>{"a b"}));

  // min_frequency: (a,b) occurs twice.
  o.vocab_size = 1000;
  o.min_frequency = 2;
  EXPECT_EQ(merges_of(train({"ab ab"}, o)), (std::vector<std::string>{"a b"}));
  o.min_frequency = 3;
  EXPECT_TRUE(merges_of(train({"ab ab"}, o)).empty());
}

TEST(BpeTrainer, SpecialTokensEncodeToTheirIdsAndAreNotTrainedOn) {
  BpeTrainOptions o;
  o.vocab_size = 400;
  o.special_tokens = {"<|endoftext|>", "<|user|>"};
  std::vector<std::string> texts;
  for (const std::string& t : synthetic_corpus()) texts.push_back(t + "<|endoftext|>");
  // Repeated specials glued to text: must not produce merges across or inside them.
  std::string glued;
  for (int i = 0; i < 200; ++i) glued += "<|user|>hello<|endoftext|>";
  texts.push_back(glued);
  ordered_json doc = train(texts, o);
  for (const std::string& m : merges_of(doc)) {
    EXPECT_EQ(m.find("endoftext"), std::string::npos) << m;
    EXPECT_EQ(m.find("user|"), std::string::npos) << m;
  }
  auto tok = load(doc);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(tok->token_to_id("<|user|>"), 1);
  EXPECT_TRUE(tok->is_special(0));
  const std::string text = "<|user|>The river.<|endoftext|>";
  auto ids = tok->encode(text);
  ASSERT_TRUE(ids.is_ok());
  ASSERT_GE(ids->size(), 3u);
  EXPECT_EQ(ids->front(), 1);
  EXPECT_EQ(ids->back(), 0);
  auto back = tok->decode(*ids);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, text);
  auto skipped = tok->decode(*ids, /*skip_special=*/true);
  ASSERT_TRUE(skipped.is_ok());
  EXPECT_EQ(*skipped, "The river.");
}

TEST(BpeTrainer, RejectsInvalidOptionsAndText) {
  BpeTrainOptions o;  // one special token
  o.vocab_size = 256;
  auto r = train_byte_level_bpe({"abc"}, o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("vocab_size"), std::string::npos) << r.status().message();
  o.vocab_size = 257;  // the minimum: no merges
  auto ok = train_byte_level_bpe({"abc abc abc"}, o);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ((*ok)["model"]["vocab"].size(), 257u);
  o.vocab_size = -5;
  EXPECT_EQ(train_byte_level_bpe({}, o).status().code(), StatusCode::kInvalidArgument);

  const std::vector<std::vector<std::string>> bad_specials = {
      {""}, {"<a>", "<a>"}, {"a"}, {"\u0120"}, {std::string("\xff<x>")}};
  for (const auto& specials : bad_specials) {
    BpeTrainOptions b;
    b.special_tokens = specials;
    auto res = train_byte_level_bpe({"abc"}, b);
    EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument) << specials[0];
  }
  BpeTrainOptions m;
  m.min_frequency = -1;
  EXPECT_EQ(train_byte_level_bpe({"abc"}, m).status().code(), StatusCode::kInvalidArgument);

  auto bad_text = train_byte_level_bpe({"fine", std::string("ok \xc3\x28 no")}, BpeTrainOptions());
  ASSERT_FALSE(bad_text.is_ok());
  EXPECT_EQ(bad_text.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_text.status().message().find("texts[1]"), std::string::npos)
      << bad_text.status().message();
  EXPECT_NE(bad_text.status().message().find("byte 3"), std::string::npos)
      << bad_text.status().message();
}

TEST(BpeTrainer, WritesAtomicallyAndTheFileLoads) {
  BpeTrainOptions o;
  o.vocab_size = 400;
  ordered_json doc = train(synthetic_corpus(), o);
  TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  prov::testing::write_file(path, "old contents");
  ASSERT_TRUE(write_tokenizer_json(path, doc).is_ok());
  const std::string bytes = prov::testing::read_file(path);
  EXPECT_EQ(bytes, doc.dump(2));
  EXPECT_EQ(bytes.substr(0, 24), "{\n  \"version\": \"1.0\",\n  ");
  EXPECT_NE(bytes.back(), '\n');
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "temporary file left behind";
  auto tok = model::from_hf_json(path);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->vocab_size(), 400);
  EXPECT_EQ((*tok)->kind(), "hf-bpe");

  Status missing = write_tokenizer_json(dir.file("no/such/dir/tokenizer.json"), doc);
  EXPECT_EQ(missing.code(), StatusCode::kIo);
  EXPECT_NE(missing.message().find("no/such/dir"), std::string::npos) << missing.message();

  ordered_json broken = doc;
  broken["model"]["vocab"][std::string("\xff")] = 5;
  EXPECT_EQ(write_tokenizer_json(dir.file("broken.json"), broken).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir.file("broken.json")));
}

TEST(BpeTrainer, HasTheShapeOfAHuggingFaceTokenizerJson) {
  PROV_REQUIRE_FIXTURES();
  const std::string ref_path = prov::testing::fixtures_dir() + "/zoo-dev/tokenizer.json";
  if (!fs::exists(ref_path)) GTEST_SKIP() << ref_path << " not found";
  const ordered_json ref = ordered_json::parse(prov::testing::read_file(ref_path));
  BpeTrainOptions o;  // the reference's: 2048 tokens, "<|endoftext|>" at id 0
  ordered_json doc = train(synthetic_corpus(), o);
  std::vector<std::string> ref_keys, keys;
  for (auto it = ref.begin(); it != ref.end(); ++it) ref_keys.push_back(it.key());
  for (auto it = doc.begin(); it != doc.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, ref_keys);
  for (const char* k : {"version", "truncation", "padding", "added_tokens", "normalizer",
                        "pre_tokenizer", "post_processor", "decoder"}) {
    EXPECT_EQ(doc[k], ref[k]) << k;
  }
  std::vector<std::string> ref_model_keys, model_keys;
  for (auto it = ref["model"].begin(); it != ref["model"].end(); ++it) {
    ref_model_keys.push_back(it.key());
    if (it.key() != "vocab" && it.key() != "merges") {
      EXPECT_EQ(doc["model"][it.key()], it.value()) << it.key();
    }
  }
  for (auto it = doc["model"].begin(); it != doc["model"].end(); ++it) {
    model_keys.push_back(it.key());
  }
  EXPECT_EQ(model_keys, ref_model_keys);
  // The first 257 entries (special + byte alphabet) are the reference's, id for id.
  auto ours = doc["model"]["vocab"].begin();
  auto theirs = ref["model"]["vocab"].begin();
  for (int i = 0; i < 257; ++i, ++ours, ++theirs) {
    ASSERT_EQ(ours.key(), theirs.key()) << "id " << i;
    ASSERT_EQ(ours.value(), theirs.value()) << "id " << i;
  }
}

TEST(BpeTrainer, TrainsOnTinyShakespeare) {
  PROV_REQUIRE_FIXTURES();
  const std::string path = prov::testing::fixtures_dir() + "/real/tinyshakespeare.txt";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not found";
  const std::string all = prov::testing::read_file(path);
  ASSERT_GT(all.size(), 100000u);
  const size_t cut = all.rfind('\n', all.size() * 9 / 10);
  ASSERT_NE(cut, std::string::npos);
  const std::string train_text = all.substr(0, cut + 1), held_out = all.substr(cut + 1);

  BpeTrainOptions o;
  o.vocab_size = 2048;
  const auto t0 = std::chrono::steady_clock::now();
  BpeTrainStats stats;
  ordered_json doc = train({train_text}, o, &stats);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[ info ] trained " << stats.vocab_size << " tokens (" << stats.merges
            << " merges) on " << train_text.size() << " bytes, " << stats.unique_pretokens
            << " distinct pre-tokens, in " << seconds << " s\n";
  EXPECT_EQ(doc["model"]["vocab"].size(), 2048u);
  // Frequent English pieces are learned.
  for (const char* piece : {"\u0120the", "\u0120and", "\u0120I", "\u0120you"}) {
    EXPECT_TRUE(doc["model"]["vocab"].contains(piece)) << piece;
  }
  auto tok = load(doc);
  ASSERT_NE(tok, nullptr);
  auto ids = tok->encode(held_out);
  ASSERT_TRUE(ids.is_ok());
  EXPECT_LT(static_cast<double>(ids->size()), 0.5 * static_cast<double>(held_out.size()))
      << ids->size() << " tokens for " << held_out.size() << " bytes";
  auto back = tok->decode(*ids);
  ASSERT_TRUE(back.is_ok());
  EXPECT_TRUE(*back == held_out) << "held-out text does not round-trip";
}

}  // namespace
}  // namespace prov::zoo
