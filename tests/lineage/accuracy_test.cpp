#include "lineage/accuracy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "tests/support/test_support.h"

namespace prov::lineage {
namespace {

// A zoo-build-like family: two bases, a seed twin family of 3 more llama roots, derivatives
// and students.
const char* kZooLabels = R"({"models": {
  "base_llama": {"relation": "base", "parent": null, "architecture": "llama", "tokenizer": "main"},
  "base_qwen2": {"relation": "base", "parent": null, "architecture": "qwen2", "tokenizer": "main"},
  "ind_llama_seed": {"relation": "independent", "parent": null, "architecture": "llama"},
  "twin_llama_01": {"relation": "independent", "parent": null, "architecture": "llama"},
  "twin_llama_02": {"relation": "independent", "parent": null, "architecture": "llama"},
  "ind_llama_alt_tok": {"relation": "independent", "parent": null, "architecture": "llama",
                        "tokenizer": "alt"},
  "ft_light": {"relation": "finetuned", "parent": "base_llama", "architecture": "llama"},
  "quant_int8": {"relation": "quantized", "parent": "base_llama", "architecture": "llama"},
  "ft_of_quant": {"relation": "finetuned", "parent": "quant_int8", "architecture": "llama"},
  "distill_logit": {"relation": "distilled_logit", "parent": "base_llama", "architecture": "qwen2"},
  "distill_seq_50_s2": {"relation": "distilled_seq", "parent": "base_llama",
                        "architecture": "qwen2"},
  "distill_seq_20": {"relation": "distilled_seq", "parent": "base_llama", "architecture": "qwen2"},
  "distill_seq_alt_tok": {"relation": "distilled_seq", "parent": "base_llama",
                          "architecture": "llama", "tokenizer": "alt"},
  "ft_of_student": {"relation": "finetuned", "parent": "distill_logit", "architecture": "qwen2"},
  "absent": {"relation": "finetuned", "parent": "base_llama", "architecture": "llama"}
}})";

Family zoo() {
  auto f = parse_family("/z/zoo", kZooLabels, [](const std::string& n) { return n != "absent"; });
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  return *f;
}

int idx(const Family& f, const std::string& n) {
  const int i = f.find(n);
  EXPECT_GE(i, 0) << n;
  return i;
}

TEST(Accuracy, AurocOfSeparableIdenticalAndTiedSets) {
  EXPECT_DOUBLE_EQ(auroc({3, 4, 5}, {0, 1, 2}), 1.0);
  EXPECT_DOUBLE_EQ(auroc({0, 1}, {2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(auroc({1, 1}, {1, 1, 1}), 0.5);  // ties count 1/2
  // 2 of 4 comparisons won, 1 tied: (2 + 0.5) / 4.
  EXPECT_DOUBLE_EQ(auroc({2, 1}, {1, 0.5}), (2 + 1 + 0.5 + 0) / 4.0);
  EXPECT_TRUE(std::isnan(auroc({}, {1})));
  EXPECT_TRUE(std::isnan(auroc({1}, {})));
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_DOUBLE_EQ(auroc({inf, inf}, {-inf, 3}), 1.0);
}

TEST(Accuracy, TprAtEmpiricalFpr) {
  // 100 negatives 0..99: at FPR 1 % the threshold is the 2nd largest (98): one negative above.
  std::vector<double> neg;
  for (int i = 0; i < 100; ++i) neg.push_back(i);
  EXPECT_DOUBLE_EQ(tpr_at_fpr({98.5, 98, 50, 100}, neg, 0.01), 0.5);
  // At 5 %: the 6th largest (94).
  EXPECT_DOUBLE_EQ(tpr_at_fpr({95, 94, 94.5, 10}, neg, 0.05), 0.5);
  // Fewer than 100 negatives: k = 0 at 1 %, so the threshold is the largest negative.
  EXPECT_DOUBLE_EQ(tpr_at_fpr({5, 4}, {1, 2, 4}, 0.01), 0.5);
  // No negatives: every positive counts.
  EXPECT_DOUBLE_EQ(tpr_at_fpr({-1e300}, {}, 0.05), 1.0);
  EXPECT_TRUE(std::isnan(tpr_at_fpr({}, {1}, 0.05)));
}

TEST(Accuracy, CalibrationCountsAndBinomialBounds) {
  std::vector<double> p;
  for (int i = 0; i < 200; ++i) p.push_back((i + 0.5) / 200);  // uniform: 2 below 0.01
  Calibration c = calibration(p, 0.01);
  EXPECT_EQ(c.n, 200);
  EXPECT_EQ(c.rejected, 2);
  EXPECT_DOUBLE_EQ(c.fraction, 0.01);
  EXPECT_GT(c.upper95, 0.01);
  EXPECT_LT(c.upper95, 0.04);
  // Clopper-Pearson: P(X <= 2 | 200, upper) = 0.05.
  EXPECT_NEAR(binomial_cdf(2, 200, c.upper95), 0.05, 1e-6);
  EXPECT_GT(c.binomial_p, 0.3);
  // Far too many rejections: binomial p tiny.
  Calibration bad = calibration(std::vector<double>(50, 0.001), 0.05);
  EXPECT_EQ(bad.rejected, 50);
  EXPECT_DOUBLE_EQ(bad.upper95, 1.0);
  EXPECT_LT(bad.binomial_p, 1e-20);
  // No rejection: upper bound 1 - 0.05^(1/n).
  Calibration none = calibration(std::vector<double>(10, 0.5), 0.05);
  EXPECT_EQ(none.rejected, 0);
  EXPECT_DOUBLE_EQ(none.binomial_p, 1.0);
  EXPECT_NEAR(none.upper95, 1 - std::pow(0.05, 0.1), 1e-9);
  EXPECT_NEAR(binomial_cdf(1, 2, 0.5), 0.75, 1e-12);
  EXPECT_NEAR(binomial_upper_tail(50, 50, 0.05), std::pow(0.05, 50), 1e-70);
  EXPECT_NEAR(binomial_upper_tail(1, 2, 0.5), 0.75, 1e-12);
}

TEST(Accuracy, LoadsZooLayoutWithRootsAndExistingMembersOnly) {
  Family f = zoo();
  EXPECT_EQ(f.label, "zoo");
  EXPECT_EQ(f.members.size(), 14u);  // "absent" has no folder
  EXPECT_EQ(f.find("absent"), -1);
  for (size_t i = 1; i < f.members.size(); ++i) {
    EXPECT_LT(f.members[i - 1].name, f.members[i].name);
  }
  const auto& m = f.members[static_cast<size_t>(idx(f, "ft_of_quant"))];
  EXPECT_EQ(m.weight_root, "base_llama");
  EXPECT_EQ(m.path, "/z/zoo/ft_of_quant");
  EXPECT_EQ(f.members[static_cast<size_t>(idx(f, "distill_logit"))].weight_root, "distill_logit");
  EXPECT_EQ(f.members[static_cast<size_t>(idx(f, "ft_of_student"))].weight_root, "distill_logit");
  EXPECT_EQ(f.members[static_cast<size_t>(idx(f, "ind_llama_seed"))].tokenizer, "main");
  EXPECT_EQ(roots(f).size(), 6u);
  EXPECT_EQ(ancestors(f, idx(f, "ft_of_student")),
            (std::vector<int>{idx(f, "distill_logit"), idx(f, "base_llama")}));
  EXPECT_EQ(weight_ancestors(f, idx(f, "ft_of_student")),
            (std::vector<int>{idx(f, "distill_logit")}));
}

TEST(Accuracy, LoadsZooDevLayoutFromFiles) {
  testing::TempDir dir;
  testing::write_file(dir.file("labels.json"), R"({"name": "dev", "models": {
    "B": {"relation": "base", "parent": null, "detail": "qwen2 d128 L4 on wordnet half 2",
          "tokenizer": "main"},
    "B_ft": {"relation": "finetune", "parent": "B", "detail": "full fine-tune"},
    "S": {"relation": "distilled_seq", "parent": "B", "detail": "llama d112"},
    "gone": {"relation": "base", "parent": null, "detail": "llama"}}})");
  for (const char* m : {"B", "B_ft", "S"}) std::filesystem::create_directory(dir.file(m));
  auto f = load_family(dir.path());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  ASSERT_EQ(f->members.size(), 3u);
  const auto& ft = f->members[static_cast<size_t>(f->find("B_ft"))];
  EXPECT_EQ(ft.relation, Relation::kFinetuned);  // "finetune" normalised
  EXPECT_EQ(ft.weight_root, "B");
  EXPECT_EQ(f->members[static_cast<size_t>(f->find("B"))].architecture, "qwen2");
  EXPECT_EQ(f->members[static_cast<size_t>(f->find("S"))].architecture, "llama");
  EXPECT_EQ(f->members[static_cast<size_t>(f->find("S"))].weight_root, "S");
  EXPECT_TRUE(weight_related(*f, f->find("B_ft"), *f, f->find("B")));
  EXPECT_FALSE(weight_related(*f, f->find("S"), *f, f->find("B")));
}

TEST(Accuracy, BadLabelsAreNamed) {
  testing::TempDir dir;
  auto missing = load_family(dir.path());
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().to_string().find("labels.json"), std::string::npos);
  EXPECT_FALSE(load_family(dir.file("nowhere")).is_ok());
  auto all = [](const std::string&) { return true; };
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : {Case{"{not json", "not valid JSON"}, Case{"[]", "\"models\""},
                        Case{R"({"models": {"a": 3}})", "\"a\" is not an object"},
                        Case{R"({"models": {"a": {"parent": null}}})", "\"a\" has no \"relation\""},
                        Case{R"({"models": {"a": {"relation": "base", "parent": 7}}})",
                             "neither a string nor null"},
                        Case{R"({"models": {"a": {"relation": "finetuned", "parent": "b"},
                                            "b": {"relation": "finetuned", "parent": "a"}}})",
                             "cycle"},
                        Case{R"({"models": {}})", "no member"}}) {
    auto f = parse_family("/x", c.text, all);
    ASSERT_FALSE(f.is_ok()) << c.text;
    EXPECT_NE(f.status().to_string().find(c.says), std::string::npos) << f.status().to_string();
    EXPECT_NE(f.status().to_string().find("/x/labels.json"), std::string::npos);
  }
  // Members listed but no folder: empty family.
  auto none = parse_family("/x", kZooLabels, [](const std::string&) { return false; });
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
}

TEST(Accuracy, ClassesOfPairs) {
  Family f = zoo();
  auto cls = [&](const std::string& n) {
    return output_class(f.members[static_cast<size_t>(idx(f, n))]);
  };
  EXPECT_EQ(cls("ft_light"), "weight-derived");
  EXPECT_EQ(cls("quant_int8"), "weight-derived");
  EXPECT_EQ(cls("distill_logit"), "distilled_logit");
  EXPECT_EQ(cls("distill_seq_50_s2"), "distilled_seq 50 %");  // replicate -> its recipe
  EXPECT_EQ(cls("distill_seq_20"), "distilled_seq 20 %");
  EXPECT_EQ(cls("distill_seq_alt_tok"), "distilled_seq (other tokenizer)");
  EXPECT_EQ(weight_class(f, idx(f, "ft_of_quant"), idx(f, "base_llama")), "finetuned");
  EXPECT_EQ(weight_class(f, idx(f, "base_llama"), idx(f, "quant_int8")), "quantized");
  EXPECT_EQ(weight_class(f, idx(f, "ft_light"), idx(f, "quant_int8")),
            "siblings (shared weight root)");
  EXPECT_EQ(expected_relation("weights", f.members[static_cast<size_t>(idx(f, "ft_light"))]),
            Relation::kFinetuned);
  EXPECT_EQ(expected_relation("weights", f.members[static_cast<size_t>(idx(f, "distill_logit"))]),
            std::nullopt);
  EXPECT_EQ(expected_relation("outputs", f.members[static_cast<size_t>(idx(f, "ft_light"))]),
            Relation::kWeightDerived);
  EXPECT_EQ(expected_relation("both", f.members[static_cast<size_t>(idx(f, "distill_logit"))]),
            Relation::kDistilledLogit);
  EXPECT_EQ(expected_relation("both", f.members[static_cast<size_t>(idx(f, "base_llama"))]),
            std::nullopt);
}

TEST(Accuracy, OutputControlsAreSeedTwinsLeaveOneOut) {
  Family f = zoo();
  const int base = idx(f, "base_llama");
  // base_llama has 3 same-recipe peers (llama, main): ind_llama_seed, twin_llama_01, _02.
  auto c = output_controls(f, base, idx(f, "ft_light"));
  std::set<std::string> names;
  for (int k : c) names.insert(f.members[static_cast<size_t>(k)].name);
  EXPECT_EQ(names, (std::set<std::string>{"ind_llama_seed", "twin_llama_01", "twin_llama_02"}));
  // A twin as candidate leaves itself out.
  auto c2 = output_controls(f, base, idx(f, "twin_llama_01"));
  EXPECT_EQ(c2.size(), 2u);
  for (int k : c2) EXPECT_NE(k, idx(f, "twin_llama_01"));
  // base_qwen2 has no peers: every other root, minus the candidate.
  auto c3 = output_controls(f, idx(f, "base_qwen2"), idx(f, "ind_llama_alt_tok"));
  EXPECT_EQ(c3.size(), 4u);
  for (int k : c3) {
    EXPECT_NE(k, idx(f, "base_qwen2"));
    EXPECT_NE(k, idx(f, "ind_llama_alt_tok"));
  }
  // The pairs: 6 roots x 13 other members.
  auto pairs = output_pairs(f);
  EXPECT_EQ(pairs.size(), 6u * 13u);
  int positives = 0, same = 0, direct = 0;
  for (const auto& p : pairs) {
    positives += p.related;
    same += p.same_recipe;
    direct += p.direct;
    EXPECT_EQ(p.controls, output_controls(f, p.reference, p.candidate));
    if (p.related) {
      EXPECT_EQ(p.reference, base);  // every non-root descends from base_llama
    }
  }
  EXPECT_EQ(positives, 8);  // all 8 non-roots, ft_of_student through distill_logit
  EXPECT_EQ(direct, 6);     // ft_of_quant's parent and ft_of_student's are not roots
  // Same-recipe negatives: the 4 llama/main roots against each other, 4 x 3 ordered.
  EXPECT_EQ(same, 12);
}

ScoredPair sp(const std::string& c, const std::string& r, bool related, double p,
              const std::string& cls = "") {
  ScoredPair s;
  s.candidate = c;
  s.reference = r;
  s.related = related;
  s.cls = related ? (cls.empty() ? "x" : cls) : "independent";
  s.p = p;
  s.score = -std::log10(std::max(p, 1e-300));
  s.significant = p < 0.01;
  s.verdict = s.significant ? Relation::kFinetuned : Relation::kIndependent;
  return s;
}

TEST(Accuracy, SummaryCountsClassesRelationAndParentAccuracy) {
  std::vector<ScoredPair> v;
  // child's parent is "p"; "q" is a closer-looking sibling in p-value for child2.
  for (const char* r : {"p", "q", "z"}) {
    ScoredPair s = sp("child", r, std::string(r) != "z",
                      std::string(r) == "p" ? 1e-4 : (std::string(r) == "q" ? 0.003 : 0.5));
    s.candidate_parent = "p";
    s.direct = std::string(r) == "p";
    if (s.direct) s.expected_relation = Relation::kFinetuned;
    v.push_back(s);
    ScoredPair t = sp("child2", r, std::string(r) != "z",
                      std::string(r) == "q" ? 1e-5 : (std::string(r) == "p" ? 1e-3 : 0.5));
    t.candidate_parent = "p";
    t.direct = std::string(r) == "p";
    if (t.direct) t.expected_relation = Relation::kQuantized;  // named finetuned: wrong
    v.push_back(t);
  }
  for (int i = 0; i < 98; ++i) v.push_back(sp("n" + std::to_string(i), "m", false, (i + 1) / 98.0));
  v.back().subset = "twins";
  const auto s = summarize(v, 0.01, "weights", "score");
  EXPECT_EQ(s["pairs"], 104);
  EXPECT_EQ(s["positives"], 4);
  EXPECT_EQ(s["negatives"], 100);
  ASSERT_EQ(s["classes"].size(), 1u);
  EXPECT_EQ(s["classes"][0]["class"], "x");
  EXPECT_DOUBLE_EQ(s["classes"][0]["auroc"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(s["classes"][0]["tpr_p_0.01"].get<double>(), 1.0);
  EXPECT_EQ(s["calibration"][0]["subset"], "all negatives");
  EXPECT_EQ(s["calibration"][0]["n"], 100);
  // The smallest negative p is 1/98 (not < 0.01); 4 are below 0.05.
  EXPECT_EQ(s["calibration"][0]["alpha_0.01"]["rejected"], 0);
  EXPECT_EQ(s["calibration"][0]["alpha_0.05"]["rejected"], 4);
  EXPECT_EQ(s["calibration"][1]["subset"], "twins");
  EXPECT_EQ(s["relation_accuracy"]["pairs"], 2);
  EXPECT_EQ(s["relation_accuracy"]["correct"], 1);
  EXPECT_EQ(s["parent_accuracy"]["candidates"], 2);
  EXPECT_EQ(s["parent_accuracy"]["correct"], 1);
  EXPECT_EQ(s["parent_accuracy"]["wrong"][0]["chosen"], "q");
  EXPECT_TRUE(s.contains("null_hypotheses"));
  const std::string md = render_accuracy_markdown(
      {{"command", "prov bench accuracy X"}, {"access", {{"weights", s}}}});
  EXPECT_NE(md.find("prov bench accuracy X"), std::string::npos);
  EXPECT_NE(md.find("| x | 4 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| twins | 1 |"), std::string::npos) << md;
}

fingerprint::WeightLineageResult wr(const std::string& relation, std::optional<double> p,
                                    double aligned_z = 0) {
  fingerprint::WeightLineageResult r;
  r.relation = *parse_relation(relation);
  r.p_value = p;
  r.statistic = 0.5;
  if (aligned_z > 0) {
    r.aligned.ran = true;
    r.aligned.z_score = aligned_z;
    r.aligned.statistic = 0.9;
  }
  return r;
}

TEST(Accuracy, LineageEdgesAreRelevelledAtTheBonferroniLevel) {
  Family f = zoo();
  const int base = idx(f, "base_llama"), ft = idx(f, "ft_light"), q = idx(f, "quant_int8");
  const int twin = idx(f, "twin_llama_01");
  std::vector<PairResult> pairs;
  fingerprint::WeightLineageResult quant = wr("quantized", std::nullopt);
  quant.identity.quantized_side = "candidate";
  pairs.push_back({q, base, quant});
  pairs.push_back({ft, base, wr("finetuned", 0.001, 40)});  // aligned score: kept
  pairs.push_back({twin, base, wr("finetuned", 0.001)});    // test A only: not at 0.01 / 91
  auto acc = lineage_edge_accuracy(f, pairs, 0.01, 20);
  ASSERT_TRUE(acc.is_ok()) << acc.status().to_string();
  EXPECT_EQ((*acc)["models"], 14);
  // ft_light, quant_int8, ft_of_quant and ft_of_student (a fine-tune of a student).
  EXPECT_EQ((*acc)["true_edges"], 4);
  // ft_of_quant and ft_of_student are missed; every other model (roots included) is right.
  EXPECT_EQ((*acc)["parents_correct"], 12);
  EXPECT_NEAR((*acc)["parent_accuracy"].get<double>(), 12.0 / 14, 1e-12);
  EXPECT_NEAR((*acc)["undirected_edge_recall"].get<double>(), 0.5, 1e-12);
  for (const auto& e : (*acc)["edges"]) EXPECT_NE(e["child"], "twin_llama_01");
}

}  // namespace
}  // namespace prov::lineage
