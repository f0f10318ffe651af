// prov compare CANDIDATE REFERENCE [--weights-only] [--tensors] [--permutations N] [--seed S]
//              [--json]
//
// Compares two checkpoints by their weights (fingerprint/weights.h): the identity layer
// (identical, converted, quantized), then the weight-lineage permutation test on the aligned
// models (permuted, noised, pruned, finetuned, independent, or inconclusive with the reason).
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/options.h"
#include "lineage/compare.h"
#include "lineage/compare_text.h"

namespace prov::cli {

namespace {

struct CompareOptions {
  std::string candidate, reference;
  bool weights_only = false;
  bool tensors = false;
  bool json = false;
  std::string merge_with;  // a second parent: fit the candidate as a merge
  fingerprint::WeightTestOptions weights;
  // Output lineage (--outputs-only).
  bool outputs_only = false;
  lineage::OutputComparisonRequest outputs;
};

// Prints `json` with --json, else `text`.
int print(const CompareOptions& o, const nlohmann::json& json, const std::string& text) {
  if (o.json) {
    std::cout << json.dump(2) << "\n";
  } else {
    std::cout << text;
  }
  return kExitOk;
}

int run_compare(const CompareOptions& o) {
  const lineage::PairNames names{o.candidate, o.reference, o.merge_with};
  if (o.outputs_only) {
    lineage::OutputComparisonRequest req = o.outputs;
    req.candidate = o.candidate;
    req.reference = o.reference;
    auto r = lineage::compare_by_outputs(req);
    if (!r.is_ok()) return report_error("compare", r.status());
    return print(o, lineage::output_comparison_json(*r, names),
                 lineage::output_comparison_text(*r, names));
  }
  if (fingerprint::is_weight_fingerprint_file(o.candidate) ||
      fingerprint::is_weight_fingerprint_file(o.reference)) {
    auto r = lineage::compare_by_fingerprints(o.candidate, o.reference, o.weights, tool_version());
    if (!r.is_ok()) return report_error("compare", r.status());
    return print(o, lineage::fingerprint_comparison_json(*r, names),
                 lineage::fingerprint_comparison_text(*r, names));
  }
  fingerprint::WeightTestOptions wo = o.weights;
  wo.identity_all_tensors = o.tensors;
  auto r = lineage::compare_checkpoints(o.candidate, o.reference, o.merge_with, wo);
  if (!r.is_ok()) return report_error("compare", r.status());
  return print(o, lineage::weight_comparison_json(*r, names, o.tensors),
               lineage::weight_comparison_text(*r, names, o.tensors));
}

}  // namespace

void register_compare(CLI::App& app, Action* run) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Compare a candidate with a reference: by weights (identity, then a permutation test of "
      "shared origin) or by outputs against controls (--outputs-only)");
  cmd->add_option("CANDIDATE", o->candidate, "candidate model")->required();
  cmd->add_option("REFERENCE", o->reference, "reference model")->required();
  cmd->add_flag("--weights-only", o->weights_only, "compare the weights (the default)");
  cmd->add_option("--merge-with", o->merge_with,
                  "a second parent: also fit the candidate as a weighted average of the "
                  "reference and this model (names `merged`)");
  cmd->add_flag("--outputs-only", o->outputs_only,
                "compare outputs: signatures against --controls (models, signature files or "
                "endpoint URLs)");
  lineage::OutputComparisonRequest& q = o->outputs;
  cmd->add_option("--controls", q.controls,
                  "models unrelated to the reference (seed twins are the strongest controls)");
  add_collection_options(cmd, &q.outputs, &q.collect);
  cmd->add_option("--max-probes", q.test.max_probes, "use at most this many probes (0 = all)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--scores", q.outputs.scores,
                  "signatures of a cross-likelihood suite (prov suite cross), matched to the "
                  "models by digest; replaces scoring now");
  cmd->add_option("--images", q.outputs.images,
                  "signatures of logit-image-v1 (full log-probabilities), matched to the models "
                  "by digest; replaces collecting them now");
  cmd->add_option("--alpha", q.test.alpha, "significance level")->capture_default_str();
  add_endpoint_options(cmd, &q.endpoint_model, &q.collect.endpoint);
  fingerprint::WeightTestOptions& w = o->weights;
  w.permutations = 999;
  cmd->add_option("--permutations", w.permutations, "signed permutations for the test")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--structured-components", w.structured_components,
                  "leading eigen-components removed from each Gram matrix before the test")
      ->capture_default_str();
  cmd->add_option("--seed", w.seed, "seed of the permutations and the dimension subset")
      ->capture_default_str();
  cmd->add_flag("--tensors", o->tensors,
                "list every tensor's comparison (compares all of them; without it the identity "
                "layer stops at the first tensor no re-encoding explains)");
  cmd->add_flag("--json", o->json, "print JSON: relation, reason, p_value, evidence[]");
  cmd->add_flag(
      "-v,--verbose", [o](int64_t) { o->outputs.collect.quiet = false; },
      "show the progress of signatures collected now");
  cmd->callback([o, run] { *run = [o] { return run_compare(*o); }; });
}

}  // namespace prov::cli
