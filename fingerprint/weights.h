// Evidence layer 2 — weight lineage: does one checkpoint descend from the other by its weights?
//
// compare_weights(candidate, reference) first runs the identity layer (identity.h), which decides
// identical / converted / quantized outright. Otherwise two Gram-matrix comparisons run.
//
// The Gram matrices. For every layer and weight matrix, the Gram matrix over residual dimensions
// (W^T W for matrices that read the residual stream: q, k, v, fused qkv, gate, up, router; W W^T
// for those that write it: o, down; MoE experts summed), normalised to cosines, on a set S of at
// most `max_dims` residual dimensions (a seeded subset when the width is larger). A Gram matrix
// does not change when the units or heads of its layer are reordered, pruned units only remove
// terms, and fine-tuning, noise, merging and quantization perturb it. Per (reference layer,
// candidate layer) the similarity is the mean over matrix kinds present in both of the Pearson
// correlation of the off-diagonal cosines. Layers are paired by index at equal depth, else by a
// linear assignment (assignment.h) on the similarities. T = mean similarity over the pairs.
//
// Test A (the p-value), when both residual widths are equal:
//   H0: the candidate's weights were initialised and trained independently of the reference's.
//   T on the same residual indices, against T after N uniformly random signed permutations of the
//   candidate's dimensions in S (layers re-paired each time when depths differ):
//   p = (1 + #{T_perm >= T}) / (1 + N), seeded. Exact under H0 for any training that is
//   equivariant under signed permutations of the residual dimensions from an initialisation whose
//   distribution is invariant under them (i.i.d. Gaussian matrices, norms at 1; SGD, Adam(W)):
//   then the candidate is distributed as any signed permutation of itself, whatever data it saw.
//   Per-layer p-values use the same permutations with the layer pairing held fixed. The z-score
//   of T against the permutation distribution is reported as a score.
//
// Test B (a score, no p-value): the same statistic after aligning residual dimensions through
//   the vocabulary. Tokens whose decoded texts (specials, empty texts and texts with U+FFFD left
//   out) appear in both tokenizers pair the embedding rows (at most `max_tokens`, evenly spaced
//   in text order; by id when a tokenizer is missing and the vocabularies have equal sizes); a
//   linear assignment on the absolute Pearson correlations of embedding columns matches residual
//   dimensions one to one, with the correlation's sign. The `structured_components` leading
//   eigen-components of every cosine Gram matrix are removed first (the shared structure that
//   independently trained models converge to). Its z-score against random signed alignments is
//   NOT a calibrated test (convergent learning makes independent models score above the
//   permutation null: measured, docs/BENCHMARKS.md); it detects a function-preserving reordering
//   that defeats test A, by a threshold `aligned_z_threshold` set from measured independent pairs.
//
// Relation: related when test A gives p < alpha, or test B's z >= its threshold (then p_value is
// empty: the relation rests on a score). `pruned` when the candidate has fewer layers, MLP units,
// heads or residual dimensions than the reference (or more: direction says which side is
// smaller); `permuted` when only the alignment sees the relation and, after it, the embedding and
// every Gram matrix equal the reference's (relative difference <= 1e-5 / 1e-4); `noised` when the
// embedding change looks like i.i.d. noise (per-token change norms vary little, coefficient of
// variation < 0.35, and the change values are Gaussian-like, |excess kurtosis| < 0.5); otherwise
// `finetuned`. Else `independent` (H0 not rejected). A merge of the reference with a fine-tune of
// it reads as `finetuned` here: naming `merged` needs both parents. `inconclusive` (no p-value)
// when nothing can be compared: different widths and no shared frame (fewer than 32 shared
// tokens, no embedding), or no weight matrix kind in common; the reason says which.
//
// Failures (Result error): a tensor cannot be read (the readers' errors, naming it), a tokenizer
// is present but broken. Cost: reads every matrix twice per model (once per test) and the
// embeddings; memory about two fp32 copies of the largest tensor per worker; time dominated by the
// Gram products (rows x |S|^2 per matrix) and N x (layer pairs) x (matrix kinds) x |S|^2 / 2 per
// test. Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/relation.h"
#include "core/status.h"
#include "fingerprint/identity.h"
#include "model/formats/model.h"

namespace prov::fingerprint {

struct WeightTestOptions {
  int permutations = 999;           // N
  int max_dims = 256;               // |S|
  int max_tokens = 8192;            // shared tokens used for the frame
  int structured_components = 8;    // test B: leading eigen-components removed per Gram matrix
  uint64_t seed = 0x70726f7631;     // permutations and the subset S
  double alpha = 0.01;              // level at which test A names a relation
  double aligned_z_threshold = 20;  // test B's z-score from which a relation is named
  unsigned threads = 0;             // 0: min(default_thread_count(), 8)
  bool run_identity = true;         // run the identity layer first
  // Compare every tensor pair in the identity layer even after one differs beyond any
  // re-encoding (a full per-tensor table); else it stops there (IdentityOptions).
  bool identity_all_tensors = false;
};

struct ComponentSimilarity {
  std::string kind;  // "attn_q", "mlp_down", ...
  double similarity = 0;
};

struct LayerSimilarity {
  int reference_layer = 0;
  int candidate_layer = 0;
  double similarity = 0;  // mean over `components`
  double p_value = 1;     // per-layer permutation p-value
  std::vector<ComponentSimilarity> components;
};

struct AlignedScore {
  bool ran = false;
  double statistic = 0;            // T after alignment
  double z_score = 0;              // against random signed alignments
  double max_gram_difference = 0;  // equal depth: max relative difference of aligned Grams
  std::string null_hypothesis;
  std::vector<LayerSimilarity> layers;
};

struct WeightLineageResult {
  // identical | converted | quantized | permuted | noised | pruned | finetuned | independent |
  // inconclusive (merged is named by the merge fit, fingerprint/merge.h)
  Relation relation = Relation::kInconclusive;
  std::string reason;
  std::optional<double> p_value;  // test A; empty for identity decisions, `inconclusive`, and
                                  // relations seen only by test B
  std::string method;             // "identity" or "gram-permutation"
  std::string null_hypothesis;
  double statistic = 0;  // test A's T
  double z_score = 0;    // (T - mean of T_perm) / sd of T_perm
  double null_mean = 0, null_sd = 0;
  int permutations = 0;
  // The frame.
  int shared_tokens = 0;
  int matched_dims = 0;                 // residual dimensions matched
  int test_dims = 0;                    // |S|
  double embedding_alignment = 0;       // mean |correlation| of the matched residual dimensions
  bool residual_reordered = false;      // the alignment is not the identity with positive signs
  std::vector<LayerSimilarity> layers;  // test A's (test B's when only it saw the relation)
  AlignedScore aligned;                 // test B
  // Relation evidence (same shapes only): on the paired embedding rows after alignment.
  double aligned_relative_error = 0;  // ||Ec' - Er|| / ||Er||
  double change_norm_cv = 0;          // coefficient of variation of per-token change norms
  double change_excess_kurtosis = 0;  // of the change values
  std::string direction;              // pruned: "candidate is smaller" / "reference is smaller"
  IdentityResult identity;
};

Result<WeightLineageResult> compare_weights(const model::Model& candidate,
                                            const model::Model& reference,
                                            const WeightTestOptions& options = {});

// The result as JSON: relation, reason, p_value (null when none), evidence [{method, statistic,
// value, p_value, null_hypothesis, ...}], frame, layers [{reference_layer, candidate_layer,
// similarity, p_value, components}] and, when `tensors`, the identity layer's per-tensor table.
nlohmann::json weight_result_json(const WeightLineageResult& r, bool tensors = false);

}  // namespace prov::fingerprint
