// The audit: one candidate against reference models, every evidence layer the access allows,
// one verdict, and the lineage report (docs/formats/report.md) that is signed and rendered.
//
// It runs the weight layers (fingerprint/weights.h: identity, the exact raw-index Gram permutation
// test, the vocabulary-aligned Gram score) against every reference whose weights are at hand, and,
// when signatures and controls are given (AuditOptions::outputs), the output and distillation
// layers (fingerprint/outputs.h) against every reference: the prediction t-test of the reference
// among controls, Holm–Bonferroni over the references. A candidate without weights (an endpoint,
// a signature file) gets the output layers only.
//
// Verdict, in this order:
//  1. a reference the identity layer decides (identical, converted, quantized) is the parent;
//     no p-value (exact comparison), confidence high;
//  2. else the references' test-A p-values are adjusted by Holm–Bonferroni over the references
//     that have one (family-wise error at `alpha`); among those with adjusted p < alpha the one
//     with the largest test-A z-score is the parent, its relation the verdict, the adjusted
//     p-value the verdict's p-value; confidence high when it is below alpha / 10, else medium;
//  3. else a reference whose aligned score (test B) is above its threshold — a reordering that
//     defeats test A, or a relation test A sees but not at the Holm-adjusted level — is the
//     parent (largest score); no p-value (score only), confidence medium;
//  4. else, with output evidence, the reference with the smallest Holm-adjusted output p-value
//     below alpha is the parent; the relation is the output test's kind (distilled_logit or
//     distilled_seq). With the weights compared and unrelated, that is distillation, confidence
//     high when p < alpha / 10, else medium; without weights a weight-derived copy cannot be told
//     from a distilled student (the summary says so), confidence low;
//  5. else `independent` of every reference (no parent), p-value = the smallest adjusted p-value
//     of either layer (null when none was computed), confidence medium when every reference had
//     a test, else low; `inconclusive` when no reference could be compared at all.
// Evidence rows (per reference): identity (score only), gram-permutation (raw and Holm p-value,
// permutations), aligned-gram (score only); with outputs, one row per output statistic: the
// primary ones (layer `outputs` for idiosyncratic greedy agreement, `distillation` for the
// cross-likelihood ratio) carry the Holm-adjusted p-value of the combined test, the others are
// scores; probe_curve holds each reference's p-value against the number of probes. weight_layers:
// the per-layer similarity of the pair test A (or test B when only it saw the relation) used. The
// graph is a star: every reference a node, an edge reference -> candidate for each related
// reference.
//
// Determinism: the same inputs and options give the same report bytes (no timestamps in the
// report). Failures: a model that cannot be opened or read (the readers' errors with "candidate"
// or "reference N" in the context).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "fingerprint/outputs.h"
#include "fingerprint/weights.h"

namespace prov::lineage {

// Signatures for the output layers, collected by the caller on one suite.
struct OutputEvidence {
  fingerprint::NamedSignature candidate;
  std::vector<fingerprint::NamedSignature> references;  // same order as AuditOptions::references
  std::vector<fingerprint::NamedSignature> controls;
  fingerprint::OutputTestOptions test;
};

struct AuditOptions {
  std::vector<std::string> references;  // checkpoint paths (or signature files, see below)
  // false for a reference known only by its signature (no weights; outputs must be given).
  std::vector<bool> reference_weights;  // empty = every reference has weights
  // A candidate without weights (endpoint or signature file): name and digest given here.
  bool candidate_weights = true;
  std::string candidate_name, candidate_digest, candidate_source;
  const OutputEvidence* outputs = nullptr;
  double alpha = 0.01;
  fingerprint::WeightTestOptions weights;
  std::string tool_version;  // written into the report's "tool"
};

struct ReferenceOutcome {
  std::string name, path, digest;
  bool has_weights = true;
  fingerprint::WeightLineageResult weights;
  std::optional<double> p_holm;
  std::optional<fingerprint::OutputComparison> outputs;
  std::optional<double> output_p_holm;
};

struct AuditResult {
  nlohmann::json report;  // validates against docs/formats/report.md
  std::vector<ReferenceOutcome> references;
  int parent = -1;  // index into references, -1 for none
};

// Holm–Bonferroni step-down adjustment of `p` (entries without a value are skipped and stay
// empty). Adjusted values are monotone in the raw order and capped at 1.
std::vector<std::optional<double>> holm_adjust(const std::vector<std::optional<double>>& p);

// A model's display name: the last path component (trailing slashes dropped).
std::string model_display_name(const std::string& path);

Result<AuditResult> audit(const std::string& candidate, const AuditOptions& options);

}  // namespace prov::lineage
