#include "model/runtime/generate.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <set>

#include "model/formats/llama2c.h"
#include "model/formats/model.h"
#include "model/runtime/runtime.h"
#include "tests/support/test_support.h"

namespace prov::model {
namespace {

namespace fs = std::filesystem;

// Decodes ids the way llama2.c's run.c prints them: each token's string, a leading space dropped
// right after BOS (1), "<0xNN>" tokens as the raw byte, and single bytes that are neither
// printable nor whitespace skipped.
std::string decode_like_run_c(const Llama2cTokenizer& tok, const std::vector<int64_t>& ids) {
  std::string out;
  for (size_t i = 1; i < ids.size(); ++i) {
    std::string piece = tok.tokens.at(static_cast<size_t>(ids[i]));
    if (ids[i - 1] == 1 && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    unsigned int byte = 0;
    char tail = 0;
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>%c", &byte, &tail) == 1) {
      piece = std::string(1, static_cast<char>(byte));
    }
    if (piece.empty()) continue;
    if (piece.size() == 1) {
      const unsigned char c = static_cast<unsigned char>(piece[0]);
      if (!(std::isprint(c) || std::isspace(c))) continue;
    }
    out += piece;
  }
  return out;
}

// stories260K, greedy from BOS for 256 steps (run.c stops early if the model emits BOS again).
TEST(Generate, Stories260KGreedyTextMatchesTheModelReadme) {
  PROV_REQUIRE_FIXTURES();
  const std::string real = testing::fixtures_dir() + "/real";
  if (!fs::exists(real + "/stories260K.bin")) GTEST_SKIP() << "no real/stories260K.bin";
  auto m = open_model(real + "/stories260K.bin");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  auto tf = Transformer::load(*m);
  ASSERT_TRUE(tf.is_ok()) << tf.status().to_string();
  auto tok = read_llama2c_tokenizer(real + "/tok512.bin", 512);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  SamplingOptions so;
  so.max_new_tokens = 256;
  so.stop_ids = {1};
  auto ids = generate(**tf, {}, so);
  ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
  ASSERT_GE(ids->size(), 2u);
  EXPECT_EQ(ids->front(), 1) << "starts from BOS";
  std::vector<int64_t> shown = *ids;
  if (shown.back() == 1) shown.pop_back();  // run.c does not print the terminating BOS
  const std::string text = decode_like_run_c(*tok, shown);
  std::cout << "[ stories260K ] " << ids->size() - 1 << " tokens:\n" << text << "\n";
  // The text the fixtures README (quoting the model's readme) shows, up to its ellipsis.
  const std::string readme_prefix =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park. One day, she saw a big, red ball. She wanted to play with it, but it was too "
      "high.\nLily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what "
      "to do. She said, \"I want to play with your ball, but I can't find it.\"\nLily was sad and "
      "didn't know what to do.";
  EXPECT_EQ(text.substr(0, readme_prefix.size()), readme_prefix);
  // The full 256-step text, cross-checked against an independent plain-C implementation of the
  // llama2.c forward pass.
  const std::string full_text =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in "
      "the park. One day, she saw a big, red ball. She wanted to play with it, but it was "
      "too high.\nLily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't "
      "know what to do. She said, \"I want to play with your ball, but I can't find "
      "it.\"\nLily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I "
      "didn't know what to do.\"\nLily didn't want to help her mom, so she said, \"I'm "
      "sorry, mom. I didn't know what to do.\" Her mom said, \"Don't worry, Lily. We can "
      "help you.";
  EXPECT_EQ(text, full_text);
  EXPECT_EQ(ids->size(), 257u) << "256 steps, no early BOS";
}

TEST(Generate, SeededSamplingIsDeterministic) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(testing::fixtures_dir() + "/hf/models/llama");
  ASSERT_TRUE(m.is_ok());
  auto tf = Transformer::load(*m);
  ASSERT_TRUE(tf.is_ok());
  SamplingOptions so;
  so.max_new_tokens = 24;
  so.temperature = 1.0;
  so.top_k = 50;
  so.top_p = 0.95;
  so.seed = 1234;
  const std::vector<int64_t> prompt = {1, 17, 300, 42};
  auto a = generate(**tf, prompt, so);
  auto b = generate(**tf, prompt, so);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->size(), prompt.size() + 24);
  EXPECT_EQ(*a, *b);
  so.seed = 1235;
  auto c = generate(**tf, prompt, so);
  ASSERT_TRUE(c.is_ok());
  EXPECT_NE(*a, *c);
  EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), c->begin())) << "prompt kept";
  // Sampling at a tiny temperature is greedy.
  SamplingOptions cold = so;
  cold.temperature = 1e-6;
  SamplingOptions greedy;
  greedy.max_new_tokens = 24;
  auto gc = generate(**tf, prompt, cold);
  auto gg = generate(**tf, prompt, greedy);
  ASSERT_TRUE(gc.is_ok() && gg.is_ok());
  EXPECT_EQ(*gc, *gg);
}

TEST(Generate, SamplerFollowsTheDistribution) {
  SamplingOptions so;
  so.temperature = 1.0;
  so.seed = 99;
  TokenSampler s(so);
  const float logits[3] = {0.0f, std::log(3.0f), -std::numeric_limits<float>::infinity()};
  int ones = 0, twos = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto t = s.next(logits, 3);
    ASSERT_TRUE(t.is_ok());
    ones += *t == 1;
    twos += *t == 2;
  }
  EXPECT_EQ(twos, 0) << "-inf never drawn";
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.75, 0.015);
  // Temperature 2 flattens: p(1) = sqrt(3) / (1 + sqrt(3)) ~ 0.634.
  so.temperature = 2.0;
  TokenSampler warm(so);
  ones = 0;
  for (int i = 0; i < n; ++i) ones += *warm.next(logits, 3) == 1;
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.634, 0.015);
}

TEST(Generate, TopKAndTopPRestrictTheCandidates) {
  const float logits[5] = {1.0f, 3.0f, 2.0f, 2.9f, 0.5f};
  SamplingOptions so;
  so.temperature = 5.0;  // nearly flat
  so.top_k = 2;
  TokenSampler k2(so);
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(*k2.next(logits, 5));
  EXPECT_EQ(seen, (std::set<int64_t>{1, 3}));
  so.top_k = 0;
  so.temperature = 1.0;
  so.top_p = 0.5;  // p(1) ~ 0.39, p(3) ~ 0.35: the nucleus is {1, 3}
  TokenSampler p(so);
  seen.clear();
  for (int i = 0; i < 2000; ++i) seen.insert(*p.next(logits, 5));
  EXPECT_EQ(seen, (std::set<int64_t>{1, 3}));
  so.top_p = 0.01;
  TokenSampler tiny(so);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(*tiny.next(logits, 5), 1);
  SamplingOptions greedy;
  TokenSampler g(greedy);
  const float tie[3] = {2.0f, 5.0f, 5.0f};
  EXPECT_EQ(*g.next(tie, 3), 1) << "lowest id among equal maxima";
  const float nan[2] = {0.0f, std::nanf("")};
  EXPECT_EQ(g.next(nan, 2).status().code(), StatusCode::kInvalidArgument);
}

TEST(Generate, BadOptionsAndEmptyPromptWithoutBos) {
  SamplingOptions so;
  so.max_new_tokens = -1;
  EXPECT_EQ(validate_sampling_options(so).code(), StatusCode::kInvalidArgument);
  so = SamplingOptions();
  so.temperature = -0.5;
  EXPECT_EQ(validate_sampling_options(so).code(), StatusCode::kInvalidArgument);
  so = SamplingOptions();
  so.top_p = 0;
  EXPECT_EQ(validate_sampling_options(so).code(), StatusCode::kInvalidArgument);
  so.top_p = 1.5;
  EXPECT_EQ(validate_sampling_options(so).code(), StatusCode::kInvalidArgument);
  so = SamplingOptions();
  so.top_k = -3;
  EXPECT_EQ(validate_sampling_options(so).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(validate_sampling_options(SamplingOptions()).is_ok());

  PROV_REQUIRE_FIXTURES();
  auto m = open_model(testing::fixtures_dir() + "/hf/models/qwen2");  // no bos_token_id
  ASSERT_TRUE(m.is_ok());
  ASSERT_FALSE(m->config.bos_token_id.has_value());
  auto tf = Transformer::load(*m);
  ASSERT_TRUE(tf.is_ok());
  so = SamplingOptions();
  so.max_new_tokens = 3;
  auto r = generate(**tf, {}, so);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("bos_token_id"), std::string::npos);
  r = generate(**tf, {5000}, so);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "id outside the vocabulary";
  auto z = generate(**tf, {5, 6}, SamplingOptions());
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(*z, (std::vector<int64_t>{5, 6})) << "max_new_tokens 0";
}

TEST(Generate, StopIdsEndGenerationAndBatchRowsStopAlone) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(testing::fixtures_dir() + "/hf/models/llama");
  ASSERT_TRUE(m.is_ok());
  auto tf = Transformer::load(*m);
  ASSERT_TRUE(tf.is_ok());
  SamplingOptions so;
  so.max_new_tokens = 8;
  const std::vector<int64_t> p1 = {1, 10, 20}, p2 = {1, 400, 401, 402, 403};
  auto free1 = generate(**tf, p1, so);
  auto free2 = generate(**tf, p2, so);
  ASSERT_TRUE(free1.is_ok() && free2.is_ok());
  // Stop on the third generated token of the first prompt.
  const int64_t stop = (*free1)[p1.size() + 2];
  so.stop_ids = {stop};
  auto stopped = generate(**tf, p1, so);
  ASSERT_TRUE(stopped.is_ok());
  auto first =
      std::find(free1->begin() + static_cast<std::ptrdiff_t>(p1.size()), free1->end(), stop);
  EXPECT_EQ(*stopped, std::vector<int64_t>(free1->begin(), first + 1));
  auto batch = generate_greedy_batch(**tf, {p1, p2}, 8, {stop});
  ASSERT_TRUE(batch.is_ok());
  EXPECT_EQ(batch->at(0), *stopped);
  auto want2 = generate(**tf, p2, so);
  ASSERT_TRUE(want2.is_ok());
  EXPECT_EQ(batch->at(1), *want2);
}

}  // namespace
}  // namespace prov::model
