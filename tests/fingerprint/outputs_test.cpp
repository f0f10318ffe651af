// Output-lineage test (fingerprint/outputs.h) on synthetic signatures whose relation is known by
// construction: copies with a few answers changed are related, models drawn independently from the
// same answer distribution are not, and the test's false-positive rate on such models is counted.
#include "fingerprint/outputs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace prov::fingerprint {
namespace {

constexpr int kProbes = 400;
const char* kWords[] = {" the", " a", " of", " and", " to", " in", " is", " was"};

// A model: per probe, a top-1 token and a greedy text drawn from a skewed distribution, so that
// independent models agree often (as trained models do) without sharing anything.
probes::Signature random_model(uint64_t seed, const std::string& name) {
  std::mt19937_64 rng(seed);
  std::discrete_distribution<int> pick({30, 20, 12, 10, 8, 8, 6, 6});
  probes::Signature s;
  s.header.model_name = name;
  s.header.suite_name = "natural-v1";
  s.header.suite_digest = "d1";
  s.header.tokenizer = "t";
  s.header.num_probes = kProbes;
  for (int i = 0; i < kProbes; ++i) {
    probes::ProbeRecord r;
    r.index = uint32_t(i);
    r.probe_id = "n" + std::to_string(i);
    probes::PositionRecord pos;
    std::vector<int> ids;
    while (ids.size() < 3) {
      const int w = pick(rng);
      if (std::find(ids.begin(), ids.end(), w) == ids.end()) ids.push_back(w);
    }
    float lp = -0.5f;
    for (int w : ids) {
      pos.top.ids.push_back(w);
      pos.top.tokens.push_back(kWords[w]);
      pos.top.logprobs.push_back(lp);
      lp -= 1.0f;
    }
    r.positions.push_back(pos);
    r.continuation_text = std::string(kWords[pick(rng)]) + kWords[pick(rng)] + kWords[pick(rng)];
    s.records.push_back(std::move(r));
  }
  return s;
}

// `base` with a fraction of its answers replaced by another model's.
probes::Signature student_of(const probes::Signature& base, double keep, uint64_t seed) {
  probes::Signature s = random_model(seed, "student");
  std::mt19937_64 rng(seed + 99);
  std::uniform_real_distribution<double> u(0, 1);
  for (size_t i = 0; i < s.records.size(); ++i) {
    if (u(rng) < keep) {
      s.records[i].positions = base.records[i].positions;
      s.records[i].continuation_text = base.records[i].continuation_text;
    }
  }
  return s;
}

struct Pool {
  probes::Signature reference;
  std::vector<probes::Signature> controls;
  std::vector<NamedSignature> named() const {
    std::vector<NamedSignature> v;
    for (size_t i = 0; i < controls.size(); ++i) {
      v.push_back({"control" + std::to_string(i), &controls[i], nullptr});
    }
    return v;
  }
};

Pool make_pool(int controls, uint64_t seed) {
  Pool p;
  p.reference = random_model(seed, "reference");
  for (int i = 0; i < controls; ++i) {
    p.controls.push_back(random_model(seed + 1000 + i, "control" + std::to_string(i)));
  }
  return p;
}

TEST(StudentT, MatchesTabulatedQuantiles) {
  EXPECT_NEAR(student_t_upper(0, 7), 0.5, 1e-12);
  EXPECT_NEAR(student_t_upper(1, 1), 0.25, 1e-9);  // Cauchy
  EXPECT_NEAR(student_t_upper(2.228139, 10), 0.025, 1e-6);
  EXPECT_NEAR(student_t_upper(3.364930, 5), 0.01, 1e-6);
  EXPECT_NEAR(student_t_upper(-2.228139, 10), 0.975, 1e-6);
  EXPECT_NEAR(student_t_upper(1.644854, 1e7), 0.05, 1e-5);  // the normal limit
  EXPECT_EQ(student_t_upper(std::numeric_limits<double>::infinity(), 3), 0);
}

TEST(OutputTest, StudentOfTheReferenceIsRelated) {
  const Pool p = make_pool(8, 1);
  const probes::Signature cand = student_of(p.reference, 0.5, 7);
  auto r =
      compare_outputs({"student", &cand, nullptr}, {"reference", &p.reference, nullptr}, p.named());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->related()) << r->relation;
  ASSERT_TRUE(r->p_value.has_value());
  EXPECT_LT(*r->p_value, 1e-3);
  EXPECT_EQ(r->probes_used, kProbes);
  EXPECT_EQ(r->controls.size(), 8u);
  EXPECT_GT(r->probes_needed, 0);
  EXPECT_LE(r->probes_needed, kProbes);
  // The curve ends at the full count with the final p-value.
  ASSERT_FALSE(r->curve.empty());
  EXPECT_EQ(r->curve.back().probes, kProbes);
  EXPECT_DOUBLE_EQ(r->curve.back().p_value, *r->p_value);
  // One primary statistic without scores: idiosyncratic_greedy.
  int primary = 0;
  for (const auto& s : r->statistics) primary += s.primary ? 1 : 0;
  EXPECT_EQ(primary, 1);
}

TEST(OutputTest, IndependentModelsRejectAtMostAtTheirRate) {
  // 40 independent candidates against 40 pools: the fraction with p < 0.05 stays near 5 %
  // (binomial: 6 or more of 40 has probability 0.14 at 5 %; 10 or more, 0.002).
  int below = 0;
  for (int k = 0; k < 40; ++k) {
    const Pool p = make_pool(9, 100 + 31 * k);
    const probes::Signature cand = random_model(5000 + k, "other");
    auto r =
        compare_outputs({"other", &cand, nullptr}, {"reference", &p.reference, nullptr}, p.named());
    ASSERT_TRUE(r.is_ok());
    ASSERT_TRUE(r->p_value.has_value());
    below += *r->p_value < 0.05 ? 1 : 0;
  }
  EXPECT_LE(below, 6);
}

TEST(OutputTest, LeavesOutTheCandidateAndNeedsTwoControls) {
  Pool p = make_pool(2, 3);
  const probes::Signature cand = p.controls[0];
  auto ctrl = p.named();
  auto r =
      compare_outputs({"control0", &cand, nullptr}, {"reference", &p.reference, nullptr}, ctrl);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->relation, Relation::kInconclusive);
  EXPECT_FALSE(r->p_value.has_value());
  EXPECT_NE(r->reason.find("at least 2 controls"), std::string::npos);
}

TEST(OutputTest, RefusesSignaturesOfAnotherSuite) {
  Pool p = make_pool(3, 4);
  probes::Signature cand = random_model(9, "c");
  cand.header.suite_digest = "other";
  auto r = compare_outputs({"c", &cand, nullptr}, {"reference", &p.reference, nullptr}, p.named());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("same probes"), std::string::npos);
  probes::Signature empty;
  auto e = compare_outputs({"e", &empty, nullptr}, {"reference", &p.reference, nullptr}, p.named());
  ASSERT_FALSE(e.is_ok());
  EXPECT_NE(e.status().message().find("no records"), std::string::npos);
}

TEST(OutputTest, OtherTokenizerUsesTextStatisticsOnly) {
  const Pool p = make_pool(5, 6);
  probes::Signature cand = student_of(p.reference, 0.6, 8);
  cand.header.tokenizer = "another";
  auto r = compare_outputs({"c", &cand, nullptr}, {"reference", &p.reference, nullptr}, p.named());
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->cross_tokenizer);
  for (const auto& s : r->statistics) {
    EXPECT_TRUE(s.name.find("greedy") != std::string::npos) << s.name;
  }
  EXPECT_TRUE(r->related()) << r->relation;
}

// Scores: each model gives its own texts a higher likelihood; the candidate, a student of the
// reference, also likes the reference's texts.
probes::Signature scores_of(const std::vector<const probes::Signature*>& pool,
                            const probes::Signature& self, const probes::Signature* teacher) {
  probes::Signature s;
  s.header = self.header;
  s.header.suite_digest = "x";
  for (int i = 0; i < kProbes; ++i) {
    probes::ProbeRecord r;
    r.index = uint32_t(i);
    for (const auto* m : pool) {
      const std::string& t = m->records[size_t(i)].continuation_text;
      probes::ScoredText st;
      st.text = t;
      st.total_logprob = -2.0 * double(t.size()) + (i % 7) * 0.1;
      if (t == self.records[size_t(i)].continuation_text) st.total_logprob += 3;
      if (teacher != nullptr && t == teacher->records[size_t(i)].continuation_text) {
        st.total_logprob += 2;
      }
      r.scores.push_back(st);
    }
    s.records.push_back(std::move(r));
  }
  return s;
}

TEST(OutputTest, CrossLikelihoodRatioWithEveryPoolModelsScores) {
  Pool p = make_pool(6, 11);
  const probes::Signature cand = random_model(77, "student");
  std::vector<const probes::Signature*> all = {&cand, &p.reference};
  for (const auto& c : p.controls) all.push_back(&c);
  const probes::Signature cs = scores_of(all, cand, &p.reference);
  const probes::Signature rs = scores_of(all, p.reference, nullptr);
  std::vector<probes::Signature> ks;
  for (const auto& c : p.controls) ks.push_back(scores_of(all, c, nullptr));
  auto ctrl = p.named();
  for (size_t i = 0; i < ctrl.size(); ++i) ctrl[i].scores = &ks[i];
  auto r = compare_outputs({"student", &cand, &cs}, {"reference", &p.reference, &rs}, ctrl);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const OutputStatistic* ratio = nullptr;
  for (const auto& s : r->statistics) {
    if (s.name == "cross_likelihood_ratio") ratio = &s;
  }
  ASSERT_NE(ratio, nullptr);
  EXPECT_TRUE(ratio->primary);
  EXPECT_GT(ratio->t, 5);
  EXPECT_TRUE(r->related()) << r->relation;
  EXPECT_NE(r->combination.find("Bonferroni over 2"), std::string::npos);
  EXPECT_FALSE(r->teacher.empty());
  // Without the controls' scores the ratio is left out (and the raw likelihood is a score).
  auto r2 = compare_outputs({"student", &cand, &cs}, {"reference", &p.reference, &rs}, p.named());
  ASSERT_TRUE(r2.is_ok());
  for (const auto& s : r2->statistics) {
    EXPECT_NE(s.name, "cross_likelihood_ratio");
    if (s.name == "cross_likelihood") {
      EXPECT_FALSE(s.primary);
    }
  }
  // Scores that miss a pool text are an error naming the model.
  probes::Signature partial = cs;
  partial.records[3].scores.pop_back();
  auto r3 = compare_outputs({"student", &cand, &partial}, {"reference", &p.reference, &rs}, ctrl);
  ASSERT_FALSE(r3.is_ok());
  EXPECT_NE(r3.status().message().find("do not cover"), std::string::npos);
}

// Logit images. A model's unembedding is a vocab x hidden matrix; its log-probability vectors are
// W h - logsumexp(W h) for hidden states h of its own. A fine-tune's unembedding is its base's
// plus a change; an independent model's is drawn anew.
constexpr int kVocab = 96, kHidden = 8, kImageProbes = 40;

std::vector<double> random_unembedding(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> w(size_t(kVocab) * kHidden);
  for (double& x : w) x = g(rng);
  return w;
}

std::vector<double> changed(const std::vector<double>& w, double by, uint64_t seed) {
  std::vector<double> out = w, d = random_unembedding(seed);
  for (size_t i = 0; i < out.size(); ++i) out[i] += by * d[i];
  return out;
}

probes::Signature image_signature(const std::vector<double>& w, uint64_t seed,
                                  const std::string& name) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  probes::Signature s;
  s.header.model_name = name;
  s.header.suite_name = "logit-image-v1";
  s.header.suite_digest = "img";
  s.header.tokenizer = "t";
  s.header.num_probes = kImageProbes;
  for (int i = 0; i < kImageProbes; ++i) {
    std::vector<double> h(kHidden), z(kVocab, 0);
    for (double& x : h) x = g(rng);
    double mx = -1e300;
    for (int v = 0; v < kVocab; ++v) {
      for (int k = 0; k < kHidden; ++k) z[size_t(v)] += w[size_t(v) * kHidden + size_t(k)] * h[k];
      mx = std::max(mx, z[size_t(v)]);
    }
    double se = 0;
    for (double x : z) se += std::exp(x - mx);
    probes::ProbeRecord r;
    r.index = uint32_t(i);
    probes::PositionRecord pos;
    for (double x : z) pos.logprobs.push_back(float(x - mx - std::log(se)));
    r.positions.push_back(std::move(pos));
    s.records.push_back(std::move(r));
  }
  return s;
}

struct ImagePool {
  Pool outputs;
  std::vector<double> reference_w;
  probes::Signature reference;
  std::vector<probes::Signature> controls;
  std::vector<NamedSignature> named() const {
    std::vector<NamedSignature> v = outputs.named();
    for (size_t i = 0; i < v.size(); ++i) v[i].image = &controls[i];
    return v;
  }
};

ImagePool make_image_pool(int controls, uint64_t seed) {
  ImagePool p;
  p.outputs = make_pool(controls, seed);
  p.reference_w = random_unembedding(seed);
  p.reference = image_signature(p.reference_w, seed + 1, "reference");
  for (int i = 0; i < controls; ++i) {
    p.controls.push_back(
        image_signature(random_unembedding(seed + 500 + i), seed + 700 + i, "control"));
  }
  return p;
}

const OutputStatistic* find_statistic(const OutputComparison& r, const std::string& name) {
  for (const auto& s : r.statistics) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(LogitImage, AFineTuneSharesItsBasesImage) {
  const ImagePool p = make_image_pool(10, 21);
  // Answers like an independent model's; unembedding = the reference's + a change as large as it.
  const probes::Signature cand = random_model(4242, "finetune");
  const probes::Signature cand_image = image_signature(changed(p.reference_w, 0.8, 99), 5, "ft");
  auto r = compare_outputs({"finetune", &cand, nullptr, &cand_image},
                           {"reference", &p.outputs.reference, nullptr, &p.reference}, p.named());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const OutputStatistic* im = find_statistic(*r, "logit_image");
  ASSERT_NE(im, nullptr);
  EXPECT_TRUE(im->primary);
  EXPECT_GT(im->t, 10);
  EXPECT_EQ(r->image_probes, kImageProbes);
  EXPECT_EQ(r->image_rank, kHidden);
  for (double c : im->controls) EXPECT_LT(c, im->reference);
  EXPECT_TRUE(r->related()) << r->relation;
  EXPECT_NE(r->combination.find("weighted Bonferroni over 2"), std::string::npos);
  // p = min(p_greedy / 0.9, p_image / 0.1).
  const OutputStatistic* gr = find_statistic(*r, "idiosyncratic_greedy");
  ASSERT_NE(gr, nullptr);
  EXPECT_DOUBLE_EQ(*r->p_value, std::min(1.0, std::min(gr->p_value / 0.9, im->p_value / 0.1)));

  // The same unembedding seen through other hidden states: the overlap is 1.
  const probes::Signature copy = image_signature(p.reference_w, 77, "copy");
  auto c = compare_outputs({"copy", &cand, nullptr, &copy},
                           {"reference", &p.outputs.reference, nullptr, &p.reference}, p.named());
  ASSERT_TRUE(c.is_ok());
  EXPECT_NEAR(find_statistic(*c, "logit_image")->reference, 1.0, 1e-6);

  // A shared cache gives the same numbers.
  ImageBasisCache cache;
  OutputTestOptions opt;
  opt.image_cache = &cache;
  for (int k = 0; k < 2; ++k) {
    auto rc =
        compare_outputs({"finetune", &cand, nullptr, &cand_image},
                        {"reference", &p.outputs.reference, nullptr, &p.reference}, p.named(), opt);
    ASSERT_TRUE(rc.is_ok());
    EXPECT_DOUBLE_EQ(find_statistic(*rc, "logit_image")->t, im->t);
  }
}

TEST(LogitImage, IndependentUnembeddingsRejectAtMostAtTheirRate) {
  int below = 0;
  for (int k = 0; k < 40; ++k) {
    const ImagePool p = make_image_pool(9, 300 + 17 * k);
    const probes::Signature cand = random_model(9000 + k, "other");
    const probes::Signature cand_image =
        image_signature(random_unembedding(8000 + k), 8500 + k, "other");
    auto r = compare_outputs({"other", &cand, nullptr, &cand_image},
                             {"reference", &p.outputs.reference, nullptr, &p.reference}, p.named());
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    const OutputStatistic* im = find_statistic(*r, "logit_image");
    ASSERT_NE(im, nullptr);
    below += im->p_value < 0.05 ? 1 : 0;
  }
  EXPECT_LE(below, 6);  // binomial(40, 0.05): 6 or more has probability 0.14
}

TEST(LogitImage, NeedsEveryModelsImageOfOneSuiteAndTokenizer) {
  const ImagePool p = make_image_pool(4, 31);
  const probes::Signature cand = random_model(55, "c");
  const probes::Signature cand_image = image_signature(p.reference_w, 56, "c");
  // A control without an image: the statistic is left out.
  auto ctrl = p.named();
  ctrl[1].image = nullptr;
  auto r = compare_outputs({"c", &cand, nullptr, &cand_image},
                           {"reference", &p.outputs.reference, nullptr, &p.reference}, ctrl);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(find_statistic(*r, "logit_image"), nullptr);
  EXPECT_EQ(r->image_probes, 0);
  // Another tokenizer: left out too (the vocabularies do not line up).
  probes::Signature other_tok = cand;
  other_tok.header.tokenizer = "another";
  auto t = compare_outputs({"c", &other_tok, nullptr, &cand_image},
                           {"reference", &p.outputs.reference, nullptr, &p.reference}, p.named());
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(find_statistic(*t, "logit_image"), nullptr);
  // An image of another suite: refused, naming the model.
  probes::Signature wrong = p.controls[2];
  wrong.header.suite_digest = "other";
  ctrl = p.named();
  ctrl[2].image = &wrong;
  auto w = compare_outputs({"c", &cand, nullptr, &cand_image},
                           {"reference", &p.outputs.reference, nullptr, &p.reference}, ctrl);
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("image signature of control2"), std::string::npos)
      << w.status().message();
}

TEST(CrossLikelihoodSuite, ScoresTheDistinctTextsOfEveryProbe) {
  probes::Suite base = probes::natural_v1(5);
  const std::string d = probes::suite_digest(base);
  probes::Signature a = random_model(1, "a"), b = random_model(2, "b");
  a.header.suite_digest = b.header.suite_digest = d;
  a.records.resize(5);
  b.records.resize(5);
  b.records[0].continuation_text = a.records[0].continuation_text;  // a shared text
  b.records[1].continuation_text.clear();                           // an empty one
  auto xs = cross_likelihood_suite(base, {&a, &b}, 4);
  ASSERT_TRUE(xs.is_ok()) << xs.status().to_string();
  ASSERT_EQ(xs->probes.size(), 4u);
  EXPECT_EQ(xs->name, "natural-v1-xlik");
  EXPECT_EQ(xs->probes[0].id, base.probes[0].id);
  EXPECT_EQ(xs->probes[0].text, base.probes[0].text);
  EXPECT_EQ(xs->probes[0].score_texts.size(), 1u);
  EXPECT_EQ(xs->probes[1].score_texts.size(), 1u);
  EXPECT_TRUE(std::is_sorted(xs->probes[2].score_texts.begin(), xs->probes[2].score_texts.end()));
  EXPECT_TRUE(probes::validate_suite(*xs).is_ok());
  b.header.suite_digest = "other";
  EXPECT_FALSE(cross_likelihood_suite(base, {&a, &b}).is_ok());
}

}  // namespace
}  // namespace prov::fingerprint
