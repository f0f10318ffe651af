#include "lineage/graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace prov::lineage {
namespace {

using fingerprint::WeightLineageResult;

PairResult related(int cand, int ref, const std::string& relation, double statistic,
                   std::optional<double> p = 1e-6, double change = 0) {
  PairResult pr;
  pr.candidate = cand;
  pr.reference = ref;
  pr.result.relation = *parse_relation(relation);
  pr.result.statistic = statistic;
  pr.result.p_value = p;
  pr.result.aligned_relative_error = change;
  return pr;
}

PairResult quantized(int cand, int ref, const std::string& side) {
  PairResult pr;
  pr.candidate = cand;
  pr.reference = ref;
  pr.result.relation = Relation::kQuantized;
  pr.result.method = "identity";
  pr.result.identity.relation = "quantized";
  pr.result.identity.quantized_side = side;
  return pr;
}

PairResult pruned(int cand, int ref, const std::string& direction, double statistic) {
  PairResult pr = related(cand, ref, "pruned", statistic);
  pr.result.direction = direction;
  return pr;
}

PairResult identical(int cand, int ref, const std::string& relation = "identical") {
  PairResult pr;
  pr.candidate = cand;
  pr.reference = ref;
  pr.result.relation = *parse_relation(relation);
  pr.result.method = "identity";
  return pr;
}

PairResult independent(int cand, int ref, double p = 0.4) {
  return related(cand, ref, "independent", 0.05, p);
}

const LineageEdge* edge_into(const LineageForest& f, int child) {
  for (const LineageEdge& e : f.edges) {
    if (e.child == child) return &e;
  }
  return nullptr;
}

std::vector<int> parents(const LineageForest& f, int n) {
  std::vector<int> out(static_cast<size_t>(n), -1);
  for (const LineageEdge& e : f.edges) out[e.child] = e.parent;
  return out;
}

// Models: 0 base, 1 fine-tune of 0, 2 quantized copy of 1, 3 independent, 4 pruned from 0.
std::vector<PairResult> family_pairs() {
  std::vector<PairResult> pairs;
  pairs.push_back(related(1, 0, "finetuned", 0.90, 1e-4, 0.02));
  pairs.push_back(quantized(2, 1, "candidate"));
  pairs.push_back(related(2, 0, "finetuned", 0.88, 1e-4, 0.03));
  pairs.push_back(pruned(4, 0, "candidate is smaller", 0.80));
  pairs.push_back(pruned(4, 1, "candidate is smaller", 0.70));
  pairs.push_back(pruned(4, 2, "candidate is smaller", 0.69));
  for (int m : {0, 1, 2, 4}) pairs.push_back(independent(3, m));
  return pairs;
}

TEST(LineageGraph, ChainWithQuantizedPrunedAndIndependent) {
  auto f = build_forest(5, family_pairs());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(parents(*f, 5), (std::vector<int>{-1, 0, 1, -1, 0}));
  EXPECT_EQ(f->roots, (std::vector<int>{0, 3}));
  EXPECT_EQ(f->components, (std::vector<std::vector<int>>{{0, 1, 2, 4}, {3}}));
  ASSERT_EQ(f->edges.size(), 3u);

  const LineageEdge* q = edge_into(*f, 2);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->relation, Relation::kQuantized);
  EXPECT_EQ(q->direction_basis, "quantized side");
  EXPECT_EQ(q->direction_confidence, "high");
  EXPECT_FALSE(q->p_value.has_value());
  EXPECT_DOUBLE_EQ(q->score, 6);

  const LineageEdge* p = edge_into(*f, 4);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->relation, Relation::kPruned);
  EXPECT_EQ(p->direction_basis, "pruned side");
  EXPECT_EQ(p->direction_confidence, "high");
  EXPECT_DOUBLE_EQ(p->score, 0.80);

  const LineageEdge* ft = edge_into(*f, 1);
  ASSERT_NE(ft, nullptr);
  EXPECT_EQ(ft->relation, Relation::kFinetuned);
  EXPECT_EQ(ft->direction_confidence, "low");
  EXPECT_EQ(ft->direction_basis, "undetermined (oriented from the chosen root)");
  ASSERT_TRUE(ft->p_value.has_value());
  EXPECT_DOUBLE_EQ(*ft->p_value, 1e-4);
  // 2 * 1 / (1 + 0.02 / 0.05) + 0.9.
  EXPECT_NEAR(ft->score, 2 / 1.4 + 0.9, 1e-12);

  double undirected = -1;
  EXPECT_DOUBLE_EQ(edge_accuracy(*f, {-1, 0, 1, -1, 0}, &undirected), 1.0);
  EXPECT_DOUBLE_EQ(undirected, 1.0);
}

TEST(LineageGraph, HardEvidencePicksTheRootOverTheLowestIndex) {
  // 0 -- 2 fine-tune (undetermined), 2 is pruned from 1: the root must be 1, not 0.
  std::vector<PairResult> pairs = {related(0, 2, "finetuned", 0.9, 1e-5, 0.01),
                                   pruned(2, 1, "candidate is smaller", 0.8)};
  auto f = build_forest(3, pairs);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->roots, (std::vector<int>{1}));
  EXPECT_EQ(parents(*f, 3), (std::vector<int>{2, -1, 1}));
  EXPECT_EQ(edge_into(*f, 2)->direction_confidence, "high");
  EXPECT_EQ(edge_into(*f, 0)->direction_confidence, "low");
}

TEST(LineageGraph, AMergeIsTheChildOfItsParent) {
  // 0 is the merge of 1 (and a model not in the pair list): the merge fit points 1 -> 0, and the
  // root is 1 even though 0 has the lower index.
  std::vector<PairResult> pairs = {related(0, 1, "merged", 0.9, 1e-5, 0.2),
                                   related(2, 1, "finetuned", 0.8, 1e-5, 0.01)};
  auto f = build_forest(3, pairs);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->roots, (std::vector<int>{1}));
  EXPECT_EQ(parents(*f, 3), (std::vector<int>{1, -1, 1}));
  EXPECT_EQ(edge_into(*f, 0)->relation, Relation::kMerged);
  EXPECT_EQ(edge_into(*f, 0)->direction_basis, "merge fit");
  EXPECT_EQ(edge_into(*f, 0)->direction_confidence, "high");
}

TEST(LineageGraph, TwoComponents) {
  std::vector<PairResult> pairs = {related(1, 0, "finetuned", 0.9), related(3, 2, "noised", 0.95),
                                   independent(2, 0), independent(3, 1, 0.02)};
  auto f = build_forest(4, pairs);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->components, (std::vector<std::vector<int>>{{0, 1}, {2, 3}}));
  EXPECT_EQ(f->roots, (std::vector<int>{0, 2}));
  EXPECT_EQ(parents(*f, 4), (std::vector<int>{-1, 0, -1, 2}));
  EXPECT_EQ(edge_into(*f, 3)->relation, Relation::kNoised);

  // At alpha = 0.05 the p = 0.02 "independent" pair relates the two groups, labelled finetuned.
  auto loose = build_forest(4, pairs, 0.05);
  ASSERT_TRUE(loose.is_ok());
  EXPECT_EQ(loose->components, (std::vector<std::vector<int>>{{0, 1, 2, 3}}));
  EXPECT_EQ(loose->roots, (std::vector<int>{0}));
  const LineageEdge* bridge = edge_into(*loose, 3);
  ASSERT_NE(bridge, nullptr);
  EXPECT_EQ(bridge->parent, 1);
  EXPECT_EQ(bridge->relation, Relation::kFinetuned);
  EXPECT_DOUBLE_EQ(*bridge->p_value, 0.02);
  EXPECT_EQ(edge_into(*loose, 2)->parent, 3);
}

TEST(LineageGraph, IdenticalPairLowerIndexIsParent) {
  // Reported only as (1 -> 0): still 0 is the parent; and identity beats a strong fine-tune.
  std::vector<PairResult> pairs = {identical(1, 0), related(2, 0, "finetuned", 0.99, 1e-9, 1e-3),
                                   related(2, 1, "finetuned", 0.99, 1e-9, 1e-3)};
  auto f = build_forest(3, pairs);
  ASSERT_TRUE(f.is_ok());
  const LineageEdge* e = edge_into(*f, 1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->parent, 0);
  EXPECT_EQ(e->relation, Relation::kIdentical);
  EXPECT_EQ(e->direction_basis, "identity");
  EXPECT_EQ(e->direction_confidence, "low");
  EXPECT_DOUBLE_EQ(e->score, 8);
  EXPECT_EQ(edge_into(*f, 2)->parent, 0);  // tie between 0 and 1 broken by (lo, hi)

  // Consistent with hard evidence: 1 is quantized from 0, 2 a converted copy of 1.
  std::vector<PairResult> copies = {identical(2, 1, "converted"), quantized(1, 0, "candidate")};
  auto g = build_forest(3, copies);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g->roots, (std::vector<int>{0}));
  EXPECT_EQ(parents(*g, 3), (std::vector<int>{-1, 0, 1}));
  EXPECT_EQ(edge_into(*g, 2)->direction_basis, "identity");
  EXPECT_EQ(edge_into(*g, 1)->direction_basis, "quantized side");
}

TEST(LineageGraph, IdentityConstraintYieldsToHardEvidence) {
  // 1 and 2 are converted copies (lower index 1 would be the parent), but 2 is pruned from 0
  // and so is 1 only through 2: hard evidence 0 -> 2 wins, the identity edge is oriented 2 -> 1.
  std::vector<PairResult> pairs = {identical(2, 1, "converted"),
                                   pruned(2, 0, "candidate is smaller", 0.8)};
  auto f = build_forest(3, pairs);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->roots, (std::vector<int>{0}));
  EXPECT_EQ(parents(*f, 3), (std::vector<int>{-1, 2, 0}));
  EXPECT_EQ(edge_into(*f, 2)->direction_confidence, "high");
  const LineageEdge* id = edge_into(*f, 1);
  EXPECT_EQ(id->relation, Relation::kConverted);
  EXPECT_EQ(id->direction_confidence, "low");
  EXPECT_EQ(id->direction_basis,
            "identity (conflicts with stronger hard evidence; oriented from the chosen root)");
}

TEST(LineageGraph, ConflictingHardEvidenceKeepsTreeAndMarksTheWeakerLow) {
  // 1 is a quantized copy of 0 (score 6) and 1 is pruned from 2 (score 0.8): two hard edges
  // into 1. The tree keeps both edges; the weaker (later) one follows the root 0.
  std::vector<PairResult> pairs = {quantized(1, 0, "candidate"),
                                   pruned(1, 2, "candidate is smaller", 0.8)};
  auto f = build_forest(3, pairs);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->roots, (std::vector<int>{0}));
  ASSERT_EQ(f->edges.size(), 2u);
  EXPECT_EQ(parents(*f, 3), (std::vector<int>{-1, 0, 1}));
  EXPECT_EQ(edge_into(*f, 1)->direction_confidence, "high");
  EXPECT_EQ(edge_into(*f, 1)->direction_basis, "quantized side");
  const LineageEdge* weak = edge_into(*f, 2);
  EXPECT_EQ(weak->direction_confidence, "low");
  EXPECT_EQ(weak->direction_basis,
            "pruned side (conflicts with stronger hard evidence; oriented from the chosen root)");
}

TEST(LineageGraph, BothOrdersCombined) {
  // Consistent: both orders say 1 is the quantized side.
  std::vector<PairResult> same = {quantized(1, 0, "candidate"), quantized(0, 1, "reference")};
  auto f = build_forest(2, same);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(parents(*f, 2), (std::vector<int>{-1, 0}));
  EXPECT_EQ(f->edges[0].direction_confidence, "high");

  // Contradictory: each order says the other side is the smaller one.
  std::vector<PairResult> opposite = {pruned(1, 0, "candidate is smaller", 0.7),
                                      pruned(0, 1, "candidate is smaller", 0.6)};
  auto g = build_forest(2, opposite);
  ASSERT_TRUE(g.is_ok());
  ASSERT_EQ(g->edges.size(), 1u);
  EXPECT_EQ(g->edges[0].parent, 0);
  EXPECT_EQ(g->edges[0].direction_confidence, "low");
  EXPECT_EQ(g->edges[0].direction_basis,
            "conflicting direction evidence (oriented from the chosen root)");
  EXPECT_DOUBLE_EQ(g->edges[0].score, 0.7);  // the representative has the higher score

  // A related order beats an unrelated one.
  std::vector<PairResult> mixed = {independent(0, 1), related(1, 0, "finetuned", 0.5, 1e-3)};
  auto h = build_forest(2, mixed);
  ASSERT_TRUE(h.is_ok());
  ASSERT_EQ(h->edges.size(), 1u);
  EXPECT_DOUBLE_EQ(*h->edges[0].p_value, 1e-3);
}

TEST(LineageGraph, TreeIsMaximumSpanning) {
  // Triangle: the weakest similarity (0 -- 2) is dropped; a small aligned change outranks Gram.
  std::vector<PairResult> pairs = {related(1, 0, "finetuned", 0.6, 1e-5, 0.01),
                                   related(2, 1, "finetuned", 0.5, 1e-5, 0.02),
                                   related(2, 0, "finetuned", 0.95, 1e-5)};
  auto f = build_forest(3, pairs);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(parents(*f, 3), (std::vector<int>{-1, 0, 1}));
}

TEST(LineageGraph, EmptyAndSingle) {
  auto f0 = build_forest(0, {});
  ASSERT_TRUE(f0.is_ok());
  EXPECT_TRUE(f0->edges.empty());
  EXPECT_TRUE(f0->roots.empty());
  EXPECT_TRUE(f0->components.empty());

  auto f1 = build_forest(1, {});
  ASSERT_TRUE(f1.is_ok());
  EXPECT_TRUE(f1->edges.empty());
  EXPECT_EQ(f1->roots, (std::vector<int>{0}));
  EXPECT_EQ(f1->components, (std::vector<std::vector<int>>{{0}}));

  auto f3 = build_forest(3, {independent(0, 1), independent(2, 1)});
  ASSERT_TRUE(f3.is_ok());
  EXPECT_TRUE(f3->edges.empty());
  EXPECT_EQ(f3->roots, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(f3->components.size(), 3u);
}

TEST(LineageGraph, InvalidInput) {
  auto out = build_forest(3, {related(1, 0, "finetuned", 0.9), related(0, 3, "finetuned", 0.9)});
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("pairs[1]"), std::string::npos);
  EXPECT_NE(out.status().message().find("3"), std::string::npos);

  auto neg = build_forest(2, {related(-1, 0, "finetuned", 0.9)});
  EXPECT_EQ(neg.status().code(), StatusCode::kInvalidArgument);
  auto none = build_forest(0, {related(0, 1, "finetuned", 0.9)});
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  auto self = build_forest(2, {related(1, 1, "finetuned", 0.9)});
  EXPECT_EQ(self.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(build_forest(-1, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(build_forest(2, {}, std::nan("")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(build_forest(2, {related(1, 0, "finetuned", std::nan(""))}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(build_forest(2, {related(1, 0, "finetuned", 0.9, 1.5)}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(LineageGraph, DeterministicAndOrderIndependent) {
  std::vector<PairResult> pairs = family_pairs();
  pairs.push_back(quantized(1, 2, "reference"));  // the other order of (2, 1)
  auto ref = build_forest(5, pairs);
  ASSERT_TRUE(ref.is_ok());
  const nlohmann::json expected = graph_to_json(forest_graph(*ref, {"a", "b", "c", "d", "e"}));
  std::mt19937_64 rng(12345);
  for (int trial = 0; trial < 20; ++trial) {
    std::shuffle(pairs.begin(), pairs.end(), rng);
    auto f = build_forest(5, pairs);
    ASSERT_TRUE(f.is_ok());
    EXPECT_EQ(graph_to_json(forest_graph(*f, {"a", "b", "c", "d", "e"})), expected);
    EXPECT_EQ(f->roots, ref->roots);
    EXPECT_EQ(f->components, ref->components);
    ASSERT_EQ(f->edges.size(), ref->edges.size());
    for (size_t i = 0; i < f->edges.size(); ++i) {
      EXPECT_EQ(f->edges[i].direction_basis, ref->edges[i].direction_basis);
      EXPECT_DOUBLE_EQ(f->edges[i].score, ref->edges[i].score);
    }
  }
}

TEST(LineageGraph, EdgeAccuracyOnKnownForest) {
  LineageForest f;
  // Recovered: 0 -> 1, 2 -> 0 (reversed), 3 root, 4 -> 3 (wrong: truly 4's parent is 1).
  f.edges = {{0, 1, Relation::kFinetuned, 1e-3, 1, "x", "low"},
             {2, 0, Relation::kFinetuned, 1e-3, 1, "x", "low"},
             {3, 4, Relation::kPruned, 1e-3, 1, "x", "high"}};
  // Truth: 0 root, 1 <- 0, 2 <- 0, 3 root, 4 <- 1.
  double undirected = -1;
  const double acc = edge_accuracy(f, {-1, 0, 0, -1, 1}, &undirected);
  // Correct: 1 (parent 0), 2? recovered root -> wrong, 0? recovered parent 2 -> wrong, 3 root ok,
  // 4 wrong. 2 of 5.
  EXPECT_DOUBLE_EQ(acc, 2.0 / 5.0);
  // True edges {0-1, 0-2, 1-4}: 0-1 and 0-2 present undirected.
  EXPECT_DOUBLE_EQ(undirected, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(edge_accuracy(f, {}), 1.0);
  EXPECT_DOUBLE_EQ(edge_accuracy(LineageForest{}, {-1, -1}, &undirected), 1.0);
  EXPECT_DOUBLE_EQ(undirected, 1.0);
  EXPECT_DOUBLE_EQ(edge_accuracy(LineageForest{}, {-1, 0}, &undirected), 0.5);
  EXPECT_DOUBLE_EQ(undirected, 0.0);
}

TEST(LineageGraph, GraphJsonShape) {
  auto f = build_forest(5, family_pairs());
  ASSERT_TRUE(f.is_ok());
  const nlohmann::json g =
      graph_to_json(forest_graph(*f, {"base", "base-ft", "base-ft-q8", "other", "base-pruned"}, 2));
  ASSERT_TRUE(g["nodes"].is_array());
  ASSERT_EQ(g["nodes"].size(), 5u);
  EXPECT_EQ(g["nodes"][0],
            (nlohmann::json{{"id", "m0"}, {"label", "base"}, {"kind", "reference"}}));
  EXPECT_EQ(g["nodes"][2]["kind"], "candidate");
  EXPECT_EQ(g["nodes"][2]["label"], "base-ft-q8");
  ASSERT_TRUE(g["edges"].is_array());
  ASSERT_EQ(g["edges"].size(), 3u);
  // Edges sorted by child: 0 -> 1, 1 -> 2, 0 -> 4.
  EXPECT_EQ(g["edges"][0]["from"], "m0");
  EXPECT_EQ(g["edges"][0]["to"], "m1");
  EXPECT_EQ(g["edges"][0]["relation"], "finetuned");
  EXPECT_DOUBLE_EQ(g["edges"][0]["p_value"].get<double>(), 1e-4);
  EXPECT_EQ(g["edges"][1]["from"], "m1");
  EXPECT_EQ(g["edges"][1]["to"], "m2");
  EXPECT_EQ(g["edges"][1]["relation"], "quantized");
  EXPECT_TRUE(g["edges"][1]["p_value"].is_null());
  EXPECT_EQ(g["edges"][2]["to"], "m4");
  for (const auto& e : g["edges"]) EXPECT_EQ(e.size(), 4u);

  // Missing names and no candidate.
  const nlohmann::json h = graph_to_json(forest_graph(*f, {"base"}));
  ASSERT_EQ(h["nodes"].size(), 5u);
  EXPECT_EQ(h["nodes"][4]["label"], "m4");
  for (const auto& node : h["nodes"]) EXPECT_EQ(node["kind"], "reference");

  const nlohmann::json empty = graph_to_json(forest_graph(LineageForest{}, {}));
  EXPECT_TRUE(empty["nodes"].is_array());
  EXPECT_TRUE(empty["nodes"].empty());
  EXPECT_TRUE(empty["edges"].is_array());
}

OutputPairResult output_test(int student, int teacher, std::optional<double> p,
                             const std::string& kind = "distilled_seq",
                             const std::string& teacher_side = "", double agreement = 0) {
  OutputPairResult t;
  t.student = student;
  t.teacher = teacher;
  t.result.relation = p && *p < 0.01 ? *parse_relation(kind) : Relation::kIndependent;
  t.result.p_value = p;
  t.result.teacher = teacher_side;
  t.result.direction_confidence = agreement;
  return t;
}

// Models: 0 base, 1 its fine-tune, 2 a student of 0, 3 an independent, 4 a logit student of 0.
TEST(AttachOutputEdges, AddsDiscoveriesToRootsOnly) {
  auto f = build_forest(5, {related(1, 0, "finetuned", 0.9), independent(2, 0), independent(3, 0),
                            independent(4, 0)});
  ASSERT_TRUE(f.is_ok());
  ASSERT_EQ(f->roots, (std::vector<int>{0, 2, 3, 4}));
  std::vector<OutputPairResult> tests = {
      output_test(2, 0, 1e-4, "distilled_seq", "reference", 0.95),
      output_test(2, 1, 2e-4),  // the fine-tune is close too, less so: not the parent
      output_test(3, 0, 0.4),
      output_test(4, 0, 1e-6, "distilled_logit"),
      output_test(1, 3, 1e-5),          // 1 already has a weight parent: never re-parented
      output_test(0, 3, std::nullopt),  // inconclusive: no p-value, never drawn
  };
  auto g = attach_output_edges(*f, tests, 0.05);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ(g->roots, (std::vector<int>{0, 3}));
  ASSERT_EQ(g->edges.size(), 3u);
  EXPECT_EQ(g->edges[0].child, 1);
  EXPECT_EQ(g->edges[0].relation, Relation::kFinetuned);
  EXPECT_EQ(g->edges[1].parent, 0);
  EXPECT_EQ(g->edges[1].child, 2);
  EXPECT_EQ(g->edges[1].relation, Relation::kDistilledSeq);
  EXPECT_EQ(g->edges[1].direction_confidence, "high");
  EXPECT_EQ(g->edges[2].parent, 0);
  EXPECT_EQ(g->edges[2].child, 4);
  EXPECT_EQ(g->edges[2].relation, Relation::kDistilledLogit);
  EXPECT_EQ(g->edges[2].direction_confidence, "low");
  EXPECT_EQ(g->components.size(), 2u);
  double undirected = 0;
  EXPECT_DOUBLE_EQ(edge_accuracy(*g, {-1, 0, 0, -1, 0}, &undirected), 1.0);
  EXPECT_DOUBLE_EQ(undirected, 1.0);
}

TEST(AttachOutputEdges, BenjaminiHochbergAndNoCycles) {
  auto f = build_forest(3, {});
  ASSERT_TRUE(f.is_ok());
  // m = 4 tests at q = 0.05: thresholds 0.0125, 0.025, 0.0375, 0.05. Sorted p: 0.001, 0.002,
  // 0.03, 0.2 -> k = 3 (0.03 <= 0.0375): three discoveries.
  std::vector<OutputPairResult> tests = {output_test(1, 0, 0.001), output_test(0, 1, 0.002),
                                         output_test(2, 0, 0.03), output_test(2, 1, 0.2)};
  auto g = attach_output_edges(*f, tests, 0.05);
  ASSERT_TRUE(g.is_ok());
  // 0 -> 1 first; 1 -> 0 would close a cycle; 0 -> 2 third.
  ASSERT_EQ(g->edges.size(), 2u);
  EXPECT_EQ(g->edges[0].parent, 0);
  EXPECT_EQ(g->edges[0].child, 1);
  EXPECT_EQ(g->edges[1].parent, 0);
  EXPECT_EQ(g->edges[1].child, 2);
  EXPECT_EQ(g->roots, (std::vector<int>{0}));
  // At q = 0.01 only p <= k * 0.0025: 0.001 and 0.002 (0.002 <= 0.005): 0 -> 1 only.
  auto h = attach_output_edges(*f, tests, 0.01);
  ASSERT_TRUE(h.is_ok());
  ASSERT_EQ(h->edges.size(), 1u);
  EXPECT_EQ(h->roots, (std::vector<int>{0, 2}));
}

// Models: 0 base, 1 its quantized copy, 2 a student. The copy answers like the base and wins the
// test by a hair; the edge still goes to the base.
TEST(AttachOutputEdges, CopiesOfTheTeacherCountTowardTheOriginal) {
  auto f = build_forest(3, {quantized(1, 0, "candidate"), independent(2, 0), independent(2, 1)});
  ASSERT_TRUE(f.is_ok());
  ASSERT_EQ(f->roots, (std::vector<int>{0, 2}));
  auto g = attach_output_edges(*f, {output_test(2, 1, 1e-4), output_test(2, 0, 2e-4)}, 0.05);
  ASSERT_TRUE(g.is_ok());
  ASSERT_EQ(g->edges.size(), 2u);
  EXPECT_EQ(g->edges[1].parent, 0);
  EXPECT_EQ(g->edges[1].child, 2);
  EXPECT_EQ(g->edges[1].via, 1);
  EXPECT_EQ(g->edges[1].p_value, 1e-4);
  EXPECT_EQ(g->edges[0].via, -1);  // weight edges have none
  EXPECT_EQ(g->roots, (std::vector<int>{0}));
}

TEST(AttachOutputEdges, RejectsBadTests) {
  auto f = build_forest(2, {});
  ASSERT_TRUE(f.is_ok());
  EXPECT_FALSE(attach_output_edges(*f, {output_test(0, 5, 0.1)}, 0.05).is_ok());
  EXPECT_FALSE(attach_output_edges(*f, {output_test(1, 1, 0.1)}, 0.05).is_ok());
  EXPECT_FALSE(attach_output_edges(*f, {output_test(0, 1, 1.5)}, 0.05).is_ok());
  EXPECT_FALSE(attach_output_edges(*f, {}, 2.0).is_ok());
  auto empty = attach_output_edges(*f, {}, 0.05);
  ASSERT_TRUE(empty.is_ok());
  EXPECT_EQ(empty->roots, (std::vector<int>{0, 1}));
}

}  // namespace
}  // namespace prov::lineage
