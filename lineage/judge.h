// judge(): from the evidence about one candidate and its references to one verdict — the only
// place where prov decides what to call a candidate. `prov audit`, `prov bench accuracy` and
// `prov lineage` all name relations through it, so the published accuracy is the shipped verdict.
//
// The rules, in this order (alpha = the family-wise level over the references):
//  1. identity: a reference the identity layer decides (identical, converted, quantized) is the
//     parent; no p-value (exact comparison), confidence high.
//  2. weights: the references' weight-test p-values are Holm-adjusted over the references that
//     have one; among the weight-derived relations with adjusted p < alpha the one with the
//     largest test-A z-score is the parent, its relation the verdict, the adjusted p-value the
//     verdict's; confidence high below alpha / 10, else medium.
//  3. aligned: a weight-derived relation seen by the vocabulary-aligned score alone (z at or
//     above its threshold; the largest wins) is the parent; no p-value, confidence medium.
//  4. outputs: the output p-values are Holm-adjusted over the references; the smallest adjusted
//     p below alpha names the parent, with the output test's relation — except that a shared
//     logit image (weight_derived) between models whose weights were compared and found unrelated
//     is a student that learned the reference's distributions: distilled_logit. With both models'
//     weights compared that is distillation (confidence high below alpha / 10, else medium);
//     without them a weight copy cannot be told from a distilled student (confidence low).
//  5. none: independent of every reference when some layer tested some reference (p-value: the
//     smallest adjusted p of either layer), else inconclusive; confidence medium when every
//     reference had a test, else low.
// The summary says in words which rule decided and on what, and which layers did not run.
//
// Pure: the same evidence gives the same verdict; nothing is read or written. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/relation.h"
#include "fingerprint/outputs.h"
#include "fingerprint/weights.h"
#include "lineage/report.h"

namespace prov::lineage {

// What was measured against one reference. Pointers are borrowed for the call.
struct ReferenceEvidence {
  std::string name;  // display name, for the summary
  // The weight comparison, when both the candidate's and this reference's weights were at hand.
  const fingerprint::WeightLineageResult* weights = nullptr;
  // The output test, when output evidence was gathered against this reference.
  const fingerprint::OutputComparison* outputs = nullptr;
};

struct JudgeInput {
  std::vector<ReferenceEvidence> references;
  bool candidate_weights = true;  // the candidate's weights were at hand
  bool outputs_run = false;       // output evidence was gathered (signatures and controls)
  double alpha = 0.01;
  double aligned_z_threshold = fingerprint::WeightTestOptions{}.aligned_z_threshold;
};

// Which rule decided.
enum class VerdictBasis { kIdentity, kWeights, kAligned, kOutputs, kNone };

struct Verdict {
  Relation relation = Relation::kInconclusive;
  int parent = -1;  // index into JudgeInput::references, -1 for none
  std::optional<double> p_value;
  Confidence confidence = Confidence::kLow;
  VerdictBasis basis = VerdictBasis::kNone;
  std::string summary;
  // Holm-Bonferroni adjusted p-values per reference (empty where the layer has no p-value).
  std::vector<std::optional<double>> weight_p_holm, output_p_holm;
};

Verdict judge(const JudgeInput& input);

// The relation the output test names against one reference, as judge() words it: the test's
// relation, except that a shared logit image between models whose weights were compared (and so
// found unrelated by rules 1-3) is distilled_logit.
Relation judged_output_relation(const ReferenceEvidence& reference);

// Holm–Bonferroni step-down adjustment of `p` (entries without a value are skipped and stay
// empty). Adjusted values are monotone in the raw order and capped at 1.
std::vector<std::optional<double>> holm_adjust(const std::vector<std::optional<double>>& p);

}  // namespace prov::lineage
