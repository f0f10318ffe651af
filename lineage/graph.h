// Lineage forest: recovers who-derives-from-whom among many models from pairwise weight
// comparisons (fingerprint/weights.h compare_weights), as a forest whose edges point from parent
// to child.
//
// The algorithm of build_forest(n, pairs, alpha), step by step:
//
//  1. Validation. n >= 0; alpha finite in [0, 1]; every pair names two distinct models in
//     [0, n); p_value, when present, in [0, 1]; statistic, aligned.statistic (when aligned.ran)
//     finite; aligned_relative_error not NaN and >= 0 (+inf allowed). Otherwise kInvalidArgument
//     naming the pair ("pairs[3]: ...").
//
//  2. Relatedness of one ordered result r:
//       related(r) = (r.p_value present and *r.p_value < alpha)
//                    or r.relation in {identical, converted, quantized, permuted, noised, pruned,
//                                      merged, finetuned}.
//     A result related only by the first clause (compare_weights ran at a stricter level and
//     named it "independent") is labelled "finetuned": the relation compare_weights gives a
//     related pair when it has no more specific evidence.
//
//  3. Score of one ordered result (the evidence strength stored in LineageEdge::score):
//       identical, converted:  8
//       quantized:             6
//       any other:             2 * C + S, in [-1, 3], where
//         S = the Gram similarity: r.statistic, or r.aligned.statistic when r.aligned.ran and it
//             is larger (a reordering hides the relation from the raw-index statistic), clamped
//             to [-1, 1];
//         C = the closeness of the aligned embeddings: 1 for "permuted"; otherwise
//             1 / (1 + e / 0.05) with e = r.aligned_relative_error when 0 < e < inf (C = 0.5 at a
//             5 % change), and 0 when e is 0 (not computed) or infinite.
//     So identity relations always outrank the rest (identical/converted above quantized), and a
//     small aligned change counts as much as the whole range of the Gram similarity.
//
//  4. Combining the results of one unordered pair {a, b} (both orders, and repeats, may be
//     present). The representative is the best result by: related first, then higher score,
//     then smaller p-value (absent counts as 1), then the one whose candidate is the lower index,
//     then the earlier in `pairs`. The pair is related when its representative is; its relation,
//     p_value and score are the representative's. Hard direction evidence (step 6) is taken from
//     every related result of the pair; if two of them point opposite ways the pair has none.
//
//  5. Tree. Kruskal's maximum spanning forest over the related pairs, taken in order of
//     decreasing score, ties by (lower index, higher index) ascending. The components of the
//     forest are the related groups; a model in no related pair is a component of its own.
//
//  6. Orientation of each component's tree edges. Hard evidence (quantized, pruned, merged: from
//     any related result of the pair, step 4; identical, converted: the representative's
//     relation):
//       quantized  the non-quantized side is the parent (identity.quantized_side names the
//                  quantized side, "candidate" or "reference"; basis "quantized side");
//       pruned     the larger model is the parent (direction "candidate is smaller" /
//                  "reference is smaller"; basis "pruned side");
//       merged     the reference is the parent: the candidate was fitted as its merge with a
//                  second parent (fingerprint/merge.h; basis "merge fit");
//       identical, converted  the lower index is the parent (basis "identity"; confidence always
//                  "low": the evidence is symmetric).
//     These constraints are taken in order — quantized/pruned edges first, then identity edges,
//     each group in Kruskal order (step 5) — and a constraint parent -> child is accepted when
//     some node of the component still lies on the parent's side of every accepted constraint
//     (the side of the tree that contains the parent once the edge is removed). The root is the
//     lowest-indexed node on the parent's side of every accepted constraint: a node that no
//     accepted hard edge points into once the tree is oriented away from it (with no
//     constraints, the component's lowest index). Every edge is then oriented away from the
//     root, which satisfies every accepted constraint. Per edge:
//       accepted quantized/pruned/merged: basis "quantized side" / "pruned side" / "merge fit",
//         confidence "high";
//       accepted identity: basis "identity", confidence "low";
//       rejected (conflicting with stronger hard evidence, e.g. two hard edges into one node):
//         the tree is kept and the edge follows the root, basis "<basis> (conflicts with stronger
//         hard evidence; oriented from the chosen root)", confidence "low";
//       both orders of the pair gave opposite hard directions: basis "conflicting direction
//         evidence (oriented from the chosen root)", confidence "low";
//       otherwise: basis "undetermined (oriented from the chosen root)", confidence "low".
//
//  Output order: edges sorted by child index (each model has at most one parent), roots
//  ascending, each component ascending and components by their first element.
//
// Everything is a deterministic function of the input: no RNG, clock or hash-map order. It is
// also independent of the order of `pairs`, except between exact duplicates of one ordered pair
// with equal score and p-value. Cost: O(P log P) for P pairs plus O(n * h) for h hard edges.
//
// Thread safety: all functions are pure (no shared state); concurrent calls are safe. The inputs
// are only read; results belong to the caller. Nothing here throws.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "fingerprint/outputs.h"
#include "fingerprint/weights.h"
#include "lineage/report.h"

namespace prov::lineage {

// One ordered comparison: compare_weights(model[candidate], model[reference]).
struct PairResult {
  int candidate = 0, reference = 0;
  fingerprint::WeightLineageResult result;
};

struct LineageEdge {
  int parent = 0, child = 0;
  Relation relation = Relation::kFinetuned;  // the child's relation to the parent (judge())
  std::optional<double> p_value;             // test A's, when the representative result has one
  double score = 0;                          // the pair's score (file comment, step 3)
  // Why parent -> child: "quantized side", "pruned side", "identity", "undetermined (oriented
  // from the chosen root)", ... (file comment, step 6).
  std::string direction_basis;
  std::string direction_confidence;  // "high" | "low"
  // Output edges (attach_output_edges): the model the test compared the child with, when it is
  // a weight copy of the parent; -1 otherwise.
  int via = -1;
};

struct LineageForest {
  std::vector<LineageEdge> edges;            // sorted by child index
  std::vector<int> roots;                    // models with no parent, ascending
  std::vector<std::vector<int>> components;  // every model in exactly one; sorted (step 5)
};

// Builds the lineage forest of models 0..n-1 from `pairs` (any subset of ordered pairs) by the
// algorithm in the file comment. alpha: the level for test A's p-value. n = 0 gives an empty
// forest; a model in no related pair is a root and a component of its own. Fails with
// kInvalidArgument (nothing else) as described in step 1.
Result<LineageForest> build_forest(int n, const std::vector<PairResult>& pairs,
                                   double alpha = 0.01);

// One output test toward a possible teacher: fingerprint::compare_outputs with candidate =
// model `student` and reference = model `teacher`, against controls like the teacher.
struct OutputPairResult {
  int student = 0, teacher = 0;
  fingerprint::OutputComparison result;
  // The edge's relation as judge() names the pair (judge.h: a shared logit image between models
  // whose weights were compared is distilled_logit); nullopt: the test's own relation.
  std::optional<Relation> relation;
};

// Adds distillation edges to the weight forest `f` of n models (n = the models in its
// components), from output tests:
//  1. Validation: indices in [0, n), student != teacher, p-values in [0, 1]; otherwise
//     kInvalidArgument naming the test ("tests[2]: ...").
//  2. Discoveries: Benjamini-Hochberg at level q over all m tests (a test without a p-value, i.e.
//     inconclusive, counts among the m and is never a discovery): the tests with
//     p <= p_(k), k the largest rank with p_(k) <= k q / m. Among the edges drawn, the expected
//     fraction whose H0 ("the teacher is no closer to the student than independent models are")
//     is true stays at most q when the tests are independent or positively dependent.
//  3. Teachers: a weight copy answers like its original, so an output test cannot tell them
//     apart. A test toward a model that is, in `f`, an identical, converted, quantized, permuted
//     or noised child of another counts toward that parent (followed up to the first model that
//     is not such a copy): the edge goes to the original, and its basis names the copy tested.
//  4. Edges: the discoveries in order of increasing p-value (ties: student, then teacher
//     ascending) each add teacher -> student unless the student already has a parent (by weights,
//     or an earlier output edge) or both already lie in one component. Relation: the test's kind
//     (distilled_logit | distilled_seq); p_value: the test's raw p-value; score 0. Direction
//     basis "output test (the reference side is the teacher)"; confidence "high" when the test's
//     own direction estimate names the reference as teacher with bootstrap agreement >= 0.9,
//     else "low" (and the basis says when the estimate points the other way).
//  Roots, components and the edge order are then recomputed as in build_forest's output.
Result<LineageForest> attach_output_edges(const LineageForest& f,
                                          const std::vector<OutputPairResult>& tests, double q);

// Edge accuracy against ground truth. expected_parent[i] is model i's true parent, negative for
// a root; its size is the number of models scored. Returns the fraction of models i whose parent
// in `f` equals expected_parent[i] (a model with no parent in `f` matches a negative
// expectation). When `undirected_correct` is not null it receives the fraction of true edges
// (expected_parent[i] >= 0) that are in `f` in either direction (1 when there are none). With no
// models the result is 1. Edges of `f` naming models outside expected_parent are ignored.
double edge_accuracy(const LineageForest& f, const std::vector<int>& expected_parent,
                     double* undirected_correct = nullptr);

// The forest as the report's graph (report.h; as JSON, docs/formats/report.md):
//   {"nodes": [{"id": "m<i>", "label": names[i], "kind": "candidate" | "reference"}],
//    "edges": [{"from": "m<parent>", "to": "m<child>", "relation": ..., "p_value": number or
//               null}]}
// One node per model 0..m-1, m = the larger of names.size() and 1 + the largest index in `f`; a
// model without a name is labelled "m<i>". kind is "candidate" for candidate_index (negative:
// none) and "reference" otherwise. Edges in f.edges order; an edge naming a negative index (not
// something build_forest produces) is left out.
ReportGraph forest_graph(const LineageForest& f, const std::vector<std::string>& names,
                         int candidate_index = -1);

}  // namespace prov::lineage
