// judge(): one golden case per rule, table-driven, and the lineage forest naming its edges the
// way judge() names the same evidence.
#include "lineage/judge.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "lineage/graph.h"

namespace prov::lineage {
namespace {

using fingerprint::OutputComparison;
using fingerprint::WeightLineageResult;

WeightLineageResult weights(Relation r, std::optional<double> p, double z = 5, double aligned_z = 0,
                            bool aligned = false) {
  WeightLineageResult w;
  w.relation = r;
  w.p_value = p;
  w.z_score = z;
  w.permutations = p ? 999 : 0;
  w.aligned.ran = aligned;
  w.aligned.z_score = aligned_z;
  w.reason = "evidence";
  return w;
}

OutputComparison outputs(Relation r, std::optional<double> p) {
  OutputComparison o;
  o.relation = r;
  o.p_value = p;
  o.probes_used = 500;
  o.controls = {"c1", "c2", "c3"};
  return o;
}

struct Case {
  const char* name;
  std::vector<std::optional<WeightLineageResult>> weights;  // per reference
  std::vector<std::optional<OutputComparison>> outputs;     // per reference (empty: none ran)
  bool candidate_weights;
  Relation relation;
  int parent;
  std::optional<double> p;
  Confidence confidence;
  VerdictBasis basis;
  const char* summary_part;
};

Verdict run(const Case& c) {
  JudgeInput in;
  const size_t n = std::max(c.weights.size(), c.outputs.size());
  for (size_t i = 0; i < n; ++i) {
    ReferenceEvidence e;
    e.name = "ref" + std::to_string(i + 1);
    if (i < c.weights.size() && c.weights[i]) e.weights = &*c.weights[i];
    if (i < c.outputs.size() && c.outputs[i]) e.outputs = &*c.outputs[i];
    in.references.push_back(e);
  }
  in.candidate_weights = c.candidate_weights;
  in.outputs_run = !c.outputs.empty();
  in.alpha = 0.01;
  return judge(in);
}

TEST(Judge, OneGoldenCasePerRule) {
  WeightLineageResult quantized = weights(Relation::kQuantized, std::nullopt);
  const std::vector<Case> cases = {
      {"identity decides outright",
       {weights(Relation::kFinetuned, 1e-4), quantized},
       {},
       true,
       Relation::kQuantized,
       1,
       std::nullopt,
       Confidence::kHigh,
       VerdictBasis::kIdentity,
       "Decided by exact comparison"},
      {"the weight test: Holm over the references, largest z wins",
       {weights(Relation::kFinetuned, 1e-4, 8), weights(Relation::kNoised, 2e-3, 12),
        weights(Relation::kIndependent, 0.5, 0.1)},
       {},
       true,
       Relation::kNoised,
       1,
       4e-3,  // Holm: 2e-3 is the second smallest of three raw p-values, times 2
       Confidence::kMedium,
       VerdictBasis::kWeights,
       "Holm-adjusted p = 0.004 over 3 reference(s)"},
      {"the aligned score alone: no p-value",
       {weights(Relation::kPermuted, std::nullopt, 0, 25, true)},
       {},
       true,
       Relation::kPermuted,
       0,
       std::nullopt,
       Confidence::kMedium,
       VerdictBasis::kAligned,
       "vocabulary-aligned score only"},
      {"outputs with the weights unrelated: a shared logit image is logit distillation",
       {weights(Relation::kIndependent, 0.4, 0.2)},
       {outputs(Relation::kWeightDerived, 1e-5)},
       true,
       Relation::kDistilledLogit,
       0,
       1e-5,
       Confidence::kHigh,
       VerdictBasis::kOutputs,
       "distillation"},
      {"outputs without weights: low confidence",
       {},
       {outputs(Relation::kIndependent, 0.3), outputs(Relation::kDistilledSeq, 1e-3)},
       false,
       Relation::kDistilledSeq,
       1,
       2e-3,
       Confidence::kLow,
       VerdictBasis::kOutputs,
       "cannot be told from a distilled student"},
      {"outputs without weights: a shared logit image stays weight_derived",
       {},
       {outputs(Relation::kWeightDerived, 1e-6)},
       false,
       Relation::kWeightDerived,
       0,
       1e-6,
       Confidence::kLow,
       VerdictBasis::kOutputs,
       "the weights would say which"},
      {"nothing significant: independent, the smallest adjusted p",
       {weights(Relation::kIndependent, 0.2), weights(Relation::kIndependent, 0.03)},
       {outputs(Relation::kIndependent, 0.5), outputs(Relation::kIndependent, 0.04)},
       true,
       Relation::kIndependent,
       -1,
       0.06,
       Confidence::kMedium,
       VerdictBasis::kNone,
       "No evidence that the candidate derives from any reference by its weights or outputs"},
      {"nothing could be tested: inconclusive",
       {weights(Relation::kInconclusive, std::nullopt)},
       {},
       true,
       Relation::kInconclusive,
       -1,
       std::nullopt,
       Confidence::kLow,
       VerdictBasis::kNone,
       "No reference could be compared"},
      {"no reference at all",
       {},
       {},
       true,
       Relation::kInconclusive,
       -1,
       std::nullopt,
       Confidence::kLow,
       VerdictBasis::kNone,
       "No reference was given"},
  };
  for (const Case& c : cases) {
    const Verdict v = run(c);
    EXPECT_EQ(v.relation, c.relation) << c.name;
    EXPECT_EQ(v.parent, c.parent) << c.name;
    EXPECT_EQ(v.p_value.has_value(), c.p.has_value()) << c.name;
    if (v.p_value && c.p) {
      EXPECT_NEAR(*v.p_value, *c.p, 1e-12) << c.name;
    }
    EXPECT_EQ(v.confidence, c.confidence) << c.name;
    EXPECT_EQ(v.basis, c.basis) << c.name;
    EXPECT_NE(v.summary.find(c.summary_part), std::string::npos) << c.name << ": " << v.summary;
    // Which layers did not run is always said.
    if (c.outputs.empty()) {
      EXPECT_NE(v.summary.find("Output and distillation tests were not run"), std::string::npos)
          << c.name;
    }
  }
}

TEST(Judge, HolmAdjustmentIsStepDownAndMonotone) {
  const auto adj = holm_adjust({0.01, std::nullopt, 0.04, 0.03});
  ASSERT_EQ(adj.size(), 4u);
  EXPECT_DOUBLE_EQ(*adj[0], 0.03);
  EXPECT_FALSE(adj[1].has_value());
  EXPECT_DOUBLE_EQ(*adj[3], 0.06);
  EXPECT_DOUBLE_EQ(*adj[2], 0.06);  // monotone: max(0.04, 0.06)
  EXPECT_DOUBLE_EQ(*holm_adjust({0.9, 0.8})[0], 1.0);
}

// The lineage forest names an edge as judge() names the pair's evidence: the same weight
// results, one verdict.
TEST(Judge, LineageEdgesAreJudgeVerdicts) {
  const std::vector<WeightLineageResult> evidence = {
      weights(Relation::kFinetuned, 1e-4), weights(Relation::kNoised, 1e-3),
      weights(Relation::kPermuted, std::nullopt, 0, 25, true),
      weights(Relation::kQuantized, std::nullopt)};
  for (const auto& w : evidence) {
    JudgeInput in;
    in.references.push_back({"base", &w, nullptr});
    in.alpha = 0.01;
    const Verdict v = judge(in);
    auto f = build_forest(2, {{1, 0, w}}, 0.01);
    ASSERT_TRUE(f.is_ok());
    ASSERT_EQ(f->edges.size(), 1u) << w.relation;
    EXPECT_EQ(f->edges[0].relation, v.relation);
  }
  // A distillation edge between weight-unrelated models: the output test saw a shared logit
  // image; judge() calls that distilled_logit, and so does the forest.
  const WeightLineageResult unrelated = weights(Relation::kIndependent, 0.5, 0.1);
  const OutputComparison image = outputs(Relation::kWeightDerived, 1e-6);
  JudgeInput in;
  in.references.push_back({"teacher", &unrelated, &image});
  in.outputs_run = true;
  const Verdict v = judge(in);
  ASSERT_EQ(v.relation, Relation::kDistilledLogit);
  auto f = build_forest(2, {{1, 0, unrelated}}, 0.01);
  ASSERT_TRUE(f.is_ok());
  OutputPairResult t{1, 0, image, judged_output_relation(in.references[0])};
  auto g = attach_output_edges(*f, {t}, 0.05);
  ASSERT_TRUE(g.is_ok());
  ASSERT_EQ(g->edges.size(), 1u);
  EXPECT_EQ(g->edges[0].relation, v.relation);
}

}  // namespace
}  // namespace prov::lineage
