#include "probes/runner.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/runtime/generate.h"
#include "model/formats/model.h"
#include "model/formats/synthetic.h"
#include "tests/support/test_support.h"

namespace prov::probes {
namespace {

struct Loaded {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<model::Transformer> tf;
  std::unique_ptr<model::Tokenizer> tok;
};

Loaded load(const std::string& dir, bool with_tokenizer) {
  Loaded l;
  auto m = model::open_model(dir);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  l.model = std::make_unique<model::Model>(std::move(*m));
  auto tf = model::Transformer::load(*l.model);
  EXPECT_TRUE(tf.is_ok()) << tf.status().to_string();
  l.tf = std::move(*tf);
  if (with_tokenizer) {
    auto tok = model::load_tokenizer(dir);
    EXPECT_TRUE(tok.is_ok()) << tok.status().to_string();
    l.tok = std::move(*tok);
  }
  return l;
}

// log_softmax of the fp32 logits after `ids`, computed directly with forward().
std::vector<float> next_logprobs(const model::Transformer& tf, const std::vector<int32_t>& ids) {
  std::vector<int64_t> v(ids.begin(), ids.end());
  auto logits = tf.forward(torch::tensor(v, torch::kInt64).unsqueeze(0), {}, nullptr, true);
  EXPECT_TRUE(logits.is_ok());
  torch::Tensor lp = torch::log_softmax(logits->reshape({-1}).to(torch::kFloat64), -1);
  std::vector<double> d(lp.data_ptr<double>(), lp.data_ptr<double>() + lp.numel());
  return std::vector<float>(d.begin(), d.end());
}

class RunnerSynthetic : public ::testing::Test {
 protected:
  void SetUp() override {
    model::SyntheticSpec spec;
    spec.vocab_size = 256;
    spec.seed = 7;
    ASSERT_TRUE(model::write_synthetic_model(dir_.path(), spec).is_ok());
    l_ = load(dir_.path(), false);
    suite_ = random_tokens_v1(256, 37, 9, 5);
    for (size_t i = 0; i < suite_.probes.size(); ++i) {
      // Ragged prompts and a few greedy continuations exercise padding and bucketing.
      auto& ids = *suite_.probes[i].ids;
      ids.resize(1 + i % ids.size());
      suite_.probes[i].greedy_tokens = (i % 3 == 0) ? 5 : 0;
    }
  }
  prov::testing::TempDir dir_;
  Loaded l_;
  Suite suite_;
};

TEST_F(RunnerSynthetic, TopKMatchesADirectLogSoftmax) {
  LocalRunner runner(*l_.tf, nullptr, RunnerOptions{4, 4096});
  auto recs = runner.run_all(suite_);
  ASSERT_TRUE(recs.is_ok()) << recs.status().to_string();
  ASSERT_EQ(recs->size(), suite_.probes.size());
  for (size_t i = 0; i < recs->size(); ++i) {
    const ProbeRecord& r = (*recs)[i];
    EXPECT_EQ(r.index, i);
    ASSERT_EQ(r.positions.size(), 1u);
    const PositionRecord& p = r.positions[0];
    ASSERT_EQ(p.top.ids.size(), 20u);
    std::vector<float> lp = next_logprobs(*l_.tf, *suite_.probes[i].ids);
    std::vector<int> order(lp.size());
    for (size_t j = 0; j < lp.size(); ++j) order[j] = static_cast<int>(j);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return lp[a] > lp[b]; });
    double entropy = 0;
    for (float x : lp) entropy -= std::exp(double(x)) * x;
    for (size_t j = 0; j < 20; ++j) {
      EXPECT_EQ(p.top.ids[j], order[j]) << "probe " << i << " rank " << j;
      EXPECT_NEAR(p.top.logprobs[j], lp[order[j]], 2e-4);
    }
    EXPECT_NEAR(p.entropy, entropy, 2e-4);
    EXPECT_TRUE(std::isnan(p.token_logprob));
    if (suite_.probes[i].greedy_tokens > 0) {
      std::vector<int64_t> prompt(suite_.probes[i].ids->begin(), suite_.probes[i].ids->end());
      model::SamplingOptions so;
      so.max_new_tokens = 5;
      so.stop_ids = l_.tf->config().eos_token_ids;
      auto g = model::generate(*l_.tf, prompt, so);
      ASSERT_TRUE(g.is_ok());
      std::vector<int32_t> want(g->begin() + static_cast<long>(prompt.size()), g->end());
      if (!want.empty() && !so.stop_ids.empty() && want.back() == so.stop_ids[0]) want.pop_back();
      EXPECT_EQ(r.continuation_ids, want) << "probe " << i;
    } else {
      EXPECT_TRUE(r.continuation_ids.empty());
    }
  }
}

TEST_F(RunnerSynthetic, FullLogprobsAreTheWholeLogSoftmax) {
  for (size_t i = 0; i < suite_.probes.size(); ++i) suite_.probes[i].full_logprobs = i % 2 == 0;
  LocalRunner runner(*l_.tf, nullptr, RunnerOptions{4, 4096});
  auto recs = runner.run_all(suite_);
  ASSERT_TRUE(recs.is_ok()) << recs.status().to_string();
  for (size_t i = 0; i < recs->size(); ++i) {
    const PositionRecord& p = (*recs)[i].positions[0];
    if (i % 2 != 0) {
      EXPECT_TRUE(p.logprobs.empty()) << "probe " << i;
      continue;
    }
    const std::vector<float> lp = next_logprobs(*l_.tf, *suite_.probes[i].ids);
    ASSERT_EQ(p.logprobs.size(), lp.size()) << "probe " << i;
    double mass = 0;
    for (size_t j = 0; j < lp.size(); ++j) {
      EXPECT_NEAR(p.logprobs[j], lp[j], 2e-4) << "probe " << i << " id " << j;
      mass += std::exp(double(p.logprobs[j]));
    }
    EXPECT_NEAR(mass, 1.0, 1e-4);
    // The top-k is still the top of the same distribution.
    EXPECT_NEAR(p.top.logprobs[0], *std::max_element(p.logprobs.begin(), p.logprobs.end()), 1e-6);
  }
}

TEST_F(RunnerSynthetic, ResumedRunEqualsTheFullRunBitForBit) {
  LocalRunner runner(*l_.tf, nullptr, RunnerOptions{4, 4096});
  auto full = runner.run_all(suite_);
  ASSERT_TRUE(full.is_ok());
  std::vector<bool> skip(suite_.probes.size());
  for (size_t i = 0; i < skip.size(); ++i) skip[i] = (i % 5 != 2);
  std::vector<ProbeRecord> part;
  ASSERT_TRUE(runner
                  .run(suite_, skip,
                       [&](const ProbeRecord& r) {
                         part.push_back(r);
                         return Status::ok();
                       })
                  .is_ok());
  ASSERT_EQ(part.size(), 7u);  // i % 5 == 2 for i < 37
  for (const ProbeRecord& r : part) {
    const ProbeRecord& f = (*full)[r.index];
    EXPECT_EQ(r.positions[0].top.ids, f.positions[0].top.ids);
    EXPECT_EQ(r.positions[0].top.logprobs, f.positions[0].top.logprobs);  // exact
    EXPECT_EQ(r.positions[0].entropy, f.positions[0].entropy);
    EXPECT_EQ(r.continuation_ids, f.continuation_ids);
  }
}

TEST_F(RunnerSynthetic, BatchSizeChangesNothingButRounding) {
  auto a = LocalRunner(*l_.tf, nullptr, RunnerOptions{1, 4096}).run_all(suite_);
  auto b = LocalRunner(*l_.tf, nullptr, RunnerOptions{16, 3}).run_all(suite_);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].positions[0].top.ids, (*b)[i].positions[0].top.ids);
    for (size_t j = 0; j < 20; ++j)
      EXPECT_NEAR((*a)[i].positions[0].top.logprobs[j], (*b)[i].positions[0].top.logprobs[j], 1e-4);
  }
}

TEST_F(RunnerSynthetic, BadProbesAreRefusedByName) {
  Suite s = suite_;
  (*s.probes[3].ids)[0] = 999;  // outside the 256-token vocabulary
  auto r = LocalRunner(*l_.tf, nullptr).run_all(s);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(s.probes[3].id), std::string::npos) << r.status().to_string();
  Suite t = suite_;
  t.probes[0].ids.reset();
  t.probes[0].text = "hello";
  r = LocalRunner(*l_.tf, nullptr).run_all(t);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("tokenizer"), std::string::npos);
  Suite u = suite_;
  u.probes[1].ids->assign(300, 5);  // longer than the 256-position context
  r = LocalRunner(*l_.tf, nullptr).run_all(u);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("context"), std::string::npos);
}

TEST(RunnerFixture, TeacherForcedAndScoredTextsOnARealModel) {
  PROV_REQUIRE_FIXTURES();
  const std::string dir = prov::testing::fixtures_dir() + "/zoo-dev/B";
  Loaded l = load(dir, true);
  Suite s = natural_v1(6);
  s.probes[0].continuation = " a small animal that lives in the forest";
  s.probes[1].score_texts = {" a kind of tree", " the act of running quickly"};
  auto recs = LocalRunner(*l.tf, l.tok.get(), RunnerOptions{3, 4096}).run_all(s);
  ASSERT_TRUE(recs.is_ok()) << recs.status().to_string();
  auto prompt0 = l.tok->encode(*s.probes[0].text, true);
  auto cont = l.tok->encode(*s.probes[0].continuation, false);
  ASSERT_TRUE(prompt0.is_ok() && cont.is_ok());
  const ProbeRecord& r0 = (*recs)[0];
  EXPECT_EQ(r0.prompt_ids, *prompt0);
  ASSERT_EQ(r0.positions.size(), cont->size());
  std::vector<int32_t> seq = *prompt0;
  for (size_t j = 0; j < cont->size(); ++j) {
    std::vector<float> lp = next_logprobs(*l.tf, seq);
    EXPECT_EQ(r0.positions[j].token_id, (*cont)[j]);
    EXPECT_NEAR(r0.positions[j].token_logprob, lp[(*cont)[j]], 1e-4);
    EXPECT_EQ(r0.positions[j].token, l.tok->decode({(*cont)[j]}).value());
    seq.push_back((*cont)[j]);
  }
  const ProbeRecord& r1 = (*recs)[1];
  ASSERT_EQ(r1.scores.size(), 2u);
  for (const ScoredText& st : r1.scores) {
    auto p = l.tok->encode(*s.probes[1].text, true);
    auto t = l.tok->encode(st.text, false);
    ASSERT_TRUE(p.is_ok() && t.is_ok());
    EXPECT_EQ(st.ids, *t);
    double total = 0;
    std::vector<int32_t> q = *p;
    for (int32_t id : *t) {
      total += next_logprobs(*l.tf, q)[id];
      q.push_back(id);
    }
    EXPECT_NEAR(st.total_logprob, total, 1e-3);
  }
  // natural-v1 asks for 16 greedy tokens; the text is their decoding.
  EXPECT_LE((*recs)[2].continuation_ids.size(), 16u);
  EXPECT_FALSE((*recs)[2].continuation_ids.empty());
  EXPECT_EQ((*recs)[2].continuation_text, l.tok->decode((*recs)[2].continuation_ids).value());
  EXPECT_EQ((*recs)[2].positions[0].top.tokens.size(), 20u);
}

}  // namespace
}  // namespace prov::probes
