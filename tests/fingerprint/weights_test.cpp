#include "fingerprint/weights.h"

#include "fingerprint/gram_kernel.h"
#include "fingerprint/weight_fingerprint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "model/formats/model.h"
#include "model/formats/synthetic.h"
#include "tests/support/test_support.h"
#include "zoo/derive.h"

namespace prov::fingerprint {
namespace {

using model::Model;
using testing::TempDir;

std::string make_model(const TempDir& dir, const std::string& name, uint64_t seed,
                       int64_t vocab = 256) {
  model::SyntheticSpec s;
  s.seed = seed;
  s.vocab_size = vocab;
  const std::string path = dir.file(name);
  Status st = model::write_synthetic_model(path, s);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return path;
}

WeightLineageResult compare(const std::string& candidate, const std::string& reference,
                            int permutations = 199, uint64_t seed = 5) {
  auto a = model::open_model(candidate);
  auto b = model::open_model(reference);
  EXPECT_TRUE(a.is_ok() && b.is_ok());
  WeightTestOptions o;
  o.permutations = permutations;
  o.seed = seed;
  auto r = compare_weights(*a, *b, o);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  if (!r.is_ok()) return {};
  std::printf("  %-28s %-12s p=%-8.3g T=%.4f z=%.1f cv=%.3f kurt=%.2f\n",
              (candidate.substr(candidate.rfind('/') + 1)).c_str(), relation_name(r->relation),
              r->p_value.value_or(-1), r->statistic, r->z_score, r->change_norm_cv,
              r->change_excess_kurtosis);
  return std::move(r).value();
}

// The Gram kernel against the sum written out in double, on shapes that are not multiples of
// its blocks (rows) and with zero padding columns (as raw_grams pads the dimensions).
TEST(GramKernel, MatchesTheProductWrittenOut) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  for (auto [k, s] : {std::pair<int64_t, int>{1, 3}, {300, 40}, {1000, 64}, {513, 70}}) {
    const int n = (s + kGramColumnBlock - 1) / kGramColumnBlock * kGramColumnBlock;
    std::vector<float> a(static_cast<size_t>(k) * n, 0.0f);
    for (int64_t r = 0; r < k; ++r)
      for (int i = 0; i < s; ++i) a[static_cast<size_t>(r * n + i)] = normal(rng);
    std::vector<float> g(static_cast<size_t>(n) * n, 1.0f);  // accumulates onto what is there
    gram_accumulate(a.data(), k, n, g.data());
    for (int i = 0; i < s; ++i) {
      for (int j = i; j < s; ++j) {
        double want = 1.0, scale = 0;
        for (int64_t r = 0; r < k; ++r) {
          want += static_cast<double>(a[r * n + i]) * a[r * n + j];
          scale += std::fabs(static_cast<double>(a[r * n + i]) * a[r * n + j]);
        }
        ASSERT_NEAR(g[static_cast<size_t>(i) * n + j], want, 1e-5 * (scale + 1))
            << "k " << k << " s " << s << " at " << i << "," << j;
      }
    }
    for (int j = s; j < n; ++j) EXPECT_EQ(g[j], 1.0f) << "padding columns add nothing";
  }
}

TEST(WeightLineage, DerivativesOfARandomModelAreNamed) {
  TempDir dir;
  const std::string base = make_model(dir, "base", 1);
  ASSERT_TRUE(zoo::permute(base, dir.file("permuted"), 3, true, true, true).is_ok());
  ASSERT_TRUE(zoo::add_noise(base, dir.file("noised"), 0.05, 7).is_ok());
  ASSERT_TRUE(zoo::prune(base, dir.file("pruned"), {0}, 1.0).is_ok());
  ASSERT_TRUE(zoo::prune(base, dir.file("narrow"), {0, 1}, 0.5).is_ok());

  // A function-preserving permutation defeats the exact raw-index test; the vocabulary alignment
  // sees it (a score, so no p-value).
  WeightLineageResult p = compare(dir.file("permuted"), base);
  EXPECT_EQ(p.relation, Relation::kPermuted) << p.reason;
  EXPECT_FALSE(p.p_value.has_value());
  EXPECT_TRUE(p.residual_reordered);
  EXPECT_TRUE(p.aligned.ran);
  EXPECT_GT(p.aligned.z_score, 50);
  EXPECT_LT(p.z_score, 5);
  EXPECT_EQ(p.layers.size(), 2u);
  EXPECT_GT(p.layers[0].similarity, 0.999);

  WeightLineageResult n = compare(dir.file("noised"), base);
  EXPECT_EQ(n.relation, Relation::kNoised) << n.reason;
  EXPECT_DOUBLE_EQ(n.p_value.value_or(1), 1.0 / 200);
  EXPECT_FALSE(n.residual_reordered);
  EXPECT_GT(n.statistic, 0.99);

  WeightLineageResult pr = compare(dir.file("pruned"), base);
  EXPECT_EQ(pr.relation, Relation::kPruned) << pr.reason;
  EXPECT_EQ(pr.direction, "candidate is smaller");
  ASSERT_EQ(pr.layers.size(), 1u);  // one candidate layer, paired with reference layer 0
  EXPECT_EQ(pr.layers[0].reference_layer, 0);
  EXPECT_LE(pr.p_value.value_or(1), 0.01);

  WeightLineageResult nr = compare(dir.file("narrow"), base);
  EXPECT_EQ(nr.relation, Relation::kPruned) << nr.reason;
  EXPECT_LE(nr.p_value.value_or(1), 0.01);
  // Reversed roles: the reference is the smaller model.
  WeightLineageResult rev = compare(base, dir.file("narrow"));
  EXPECT_EQ(rev.relation, Relation::kPruned);
  EXPECT_EQ(rev.direction, "reference is smaller");
}

TEST(WeightLineage, IndependentRandomModelsAreCalibrated) {
  // Independently initialised models are the null hypothesis itself: the p-values must be
  // (close to) uniform. 30 pairs: at most a few below 0.1, and none named as derived at 0.01
  // except by chance (expected 0.3).
  TempDir dir;
  int below_01 = 0, below_001 = 0;
  std::vector<std::string> models;
  for (int i = 0; i < 6; ++i) models.push_back(make_model(dir, "m" + std::to_string(i), 100 + i));
  int pairs = 0;
  for (size_t i = 0; i < models.size(); ++i) {
    for (size_t j = 0; j < models.size(); ++j) {
      if (i == j) continue;
      WeightLineageResult r = compare(models[i], models[j], 99);
      ASSERT_TRUE(r.p_value.has_value());
      below_01 += *r.p_value < 0.1 ? 1 : 0;
      below_001 += *r.p_value <= 0.01 ? 1 : 0;
      EXPECT_LT(std::fabs(r.z_score), 5.0);
      EXPECT_LT(r.aligned.z_score, 20.0);
      EXPECT_EQ(r.relation, *r.p_value < 0.01 ? Relation::kNoised : Relation::kIndependent);
      ++pairs;
    }
  }
  EXPECT_EQ(pairs, 30);
  EXPECT_LE(below_01, 8);  // expected 3; P(>= 9 | Binomial(30, 0.1)) < 0.002
  EXPECT_LE(below_001, 2);
}

TEST(WeightLineage, SameSeedAndInputsGiveTheSameResult) {
  TempDir dir;
  const std::string a = make_model(dir, "a", 3), b = make_model(dir, "b", 4);
  WeightLineageResult r1 = compare(a, b, 99, 17), r2 = compare(a, b, 99, 17);
  EXPECT_EQ(r1.p_value, r2.p_value);
  EXPECT_EQ(r1.statistic, r2.statistic);
  EXPECT_EQ(r1.z_score, r2.z_score);
}

TEST(WeightLineage, NothingToAlignIsInconclusive) {
  // No tokenizers and vocabularies of different sizes: no shared frame; the raw-index test still
  // applies at equal widths.
  TempDir dir;
  const std::string a = make_model(dir, "a", 3, 256), b = make_model(dir, "b", 4, 300);
  WeightLineageResult r = compare(a, b);
  EXPECT_EQ(r.relation, Relation::kIndependent);
  EXPECT_TRUE(r.p_value.has_value());
  EXPECT_FALSE(r.aligned.ran);
  // Widths differ too: no test applies.
  model::SyntheticSpec w;
  w.hidden_size = 128;
  w.vocab_size = 300;
  ASSERT_TRUE(model::write_synthetic_model(dir.file("w"), w).is_ok());
  WeightLineageResult rw = compare(dir.file("w"), a);
  EXPECT_EQ(rw.relation, Relation::kInconclusive);
  EXPECT_FALSE(rw.p_value.has_value());
  EXPECT_NE(rw.reason.find("tokens are shared"), std::string::npos) << rw.reason;
}

TEST(WeightLineage, ZooDevFamily) {
  PROV_REQUIRE_FIXTURES();
  const std::string zoo = testing::fixtures_dir() + "/zoo-dev/";
  WeightLineageResult ft = compare(zoo + "B_ft_fortunes", zoo + "B", 199);
  EXPECT_EQ(ft.relation, Relation::kFinetuned) << ft.reason;
  EXPECT_DOUBLE_EQ(ft.p_value.value_or(1), 1.0 / 200);
  for (const char* other : {"C", "I1", "I3", "S_seq_B"}) {
    WeightLineageResult r = compare(zoo + other, zoo + "B", 199);
    EXPECT_EQ(r.relation, Relation::kIndependent) << other << ": " << r.reason;
    EXPECT_LT(r.aligned.z_score, 20) << other;
  }
}

}  // namespace
}  // namespace prov::fingerprint

namespace prov::fingerprint {
namespace {

TEST(WeightFingerprint, StoredGramsGiveTheCheckpointTestAndRoundTrip) {
  TempDir dir;
  const std::string base = make_model(dir, "base", 1), other = make_model(dir, "other", 2);
  ASSERT_TRUE(zoo::add_noise(base, dir.file("noised"), 0.05, 7).is_ok());
  WeightTestOptions o;
  o.permutations = 199;
  auto fp_of = [&](const std::string& path, const std::string& out) {
    auto m = model::open_model(path);
    EXPECT_TRUE(m.is_ok());
    auto fp = make_weight_fingerprint(*m, "test", o);
    EXPECT_TRUE(fp.is_ok()) << fp.status().to_string();
    EXPECT_TRUE(write_weight_fingerprint(out, *fp).is_ok());
    EXPECT_TRUE(is_weight_fingerprint_file(out));
    auto back = read_weight_fingerprint(out);
    EXPECT_TRUE(back.is_ok()) << back.status().to_string();
    return std::move(back).value();
  };
  const auto fb = fp_of(base, dir.file("base.wfp"));
  const auto fn = fp_of(dir.file("noised"), dir.file("noised.wfp"));
  const auto fo = fp_of(other, dir.file("other.wfp"));
  EXPECT_EQ(fb.dims_size(), 64);
  EXPECT_EQ(fb.grams_size(), 2 * 7);  // 2 layers x (q, k, v, o, gate, up, down)

  auto derived = compare_fingerprints(fn, fb, o);
  ASSERT_TRUE(derived.is_ok());
  EXPECT_EQ(derived->relation, Relation::kWeightDerived) << derived->reason;
  // The same exact test as from the checkpoints: same permutations, same p and statistic (the
  // stored cosines are float32, so the statistic agrees to float precision).
  WeightLineageResult full = compare(dir.file("noised"), base, 199, o.seed);
  ASSERT_TRUE(full.p_value.has_value());
  EXPECT_EQ(*derived->p_value, *full.p_value);
  EXPECT_NEAR(derived->statistic, full.statistic, 1e-5);

  auto ind = compare_fingerprints(fo, fb, o);
  ASSERT_TRUE(ind.is_ok());
  EXPECT_EQ(ind->relation, Relation::kIndependent) << ind->reason;
  EXPECT_NEAR(ind->statistic, compare(other, base, 199, o.seed).statistic, 1e-5);

  auto same = compare_fingerprints(fb, fb, o);
  ASSERT_TRUE(same.is_ok());
  EXPECT_EQ(same->relation, Relation::kIdentical);
  EXPECT_FALSE(same->p_value.has_value());

  // Another width: no test from fingerprints.
  model::SyntheticSpec w;
  w.hidden_size = 128;
  ASSERT_TRUE(model::write_synthetic_model(dir.file("wide"), w).is_ok());
  const auto fw = fp_of(dir.file("wide"), dir.file("wide.wfp"));
  auto inc = compare_fingerprints(fw, fb, o);
  ASSERT_TRUE(inc.is_ok());
  EXPECT_EQ(inc->relation, Relation::kInconclusive);
  EXPECT_FALSE(inc->p_value.has_value());
}

TEST(WeightFingerprint, DamagedFilesAreRefused) {
  TempDir dir;
  const std::string base = make_model(dir, "base", 1);
  auto m = model::open_model(base);
  ASSERT_TRUE(m.is_ok());
  auto fp = make_weight_fingerprint(*m, "test");
  ASSERT_TRUE(fp.is_ok());
  ASSERT_TRUE(write_weight_fingerprint(dir.file("a.wfp"), *fp).is_ok());
  const std::string bytes = testing::read_file(dir.file("a.wfp"));
  testing::write_file(dir.file("cut.wfp"), bytes.substr(0, bytes.size() / 2));
  auto cut = read_weight_fingerprint(dir.file("cut.wfp"));
  EXPECT_EQ(cut.status().code(), StatusCode::kCorrupt) << cut.status().to_string();
  testing::write_file(dir.file("nomagic.wfp"), "hello");
  auto nm = read_weight_fingerprint(dir.file("nomagic.wfp"));
  EXPECT_EQ(nm.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(nm.status().to_string().find("magic"), std::string::npos);
  // A Gram triangle of the wrong length.
  pb::WeightFingerprint bad = *fp;
  bad.mutable_grams(0)->add_upper(0.5f);
  ASSERT_TRUE(write_weight_fingerprint(dir.file("bad.wfp"), bad).is_ok());
  auto b = read_weight_fingerprint(dir.file("bad.wfp"));
  EXPECT_EQ(b.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(b.status().to_string().find("values, not"), std::string::npos)
      << b.status().to_string();
  EXPECT_EQ(read_weight_fingerprint(dir.file("missing.wfp")).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace prov::fingerprint
