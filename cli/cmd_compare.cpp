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

std::string p_text(const std::optional<double>& p) {
  if (!p) return "none (no test)";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", *p);
  return buf;
}

// Either side a fingerprint file: both sides as fingerprints (a checkpoint is fingerprinted on
// the fly), compared by fingerprint/weight_fingerprint.h.
int run_compare_fingerprints(const CompareOptions& o) {
  auto r = lineage::compare_by_fingerprints(o.candidate, o.reference, o.weights, tool_version());
  if (!r.is_ok()) return report_error("compare", r.status());
  if (o.json) {
    nlohmann::json j = {{"candidate", o.candidate},
                        {"reference", o.reference},
                        {"relation", relation_name(r->relation)},
                        {"reason", r->reason},
                        {"p_value", r->p_value ? nlohmann::json(*r->p_value) : nlohmann::json()},
                        {"from_fingerprints", true}};
    nlohmann::json ev = nlohmann::json::array();
    if (r->permutations > 0) {
      ev.push_back({{"method", "gram-permutation"},
                    {"statistic", "mean_layer_gram_correlation"},
                    {"value", r->statistic},
                    {"p_value", *r->p_value},
                    {"null_hypothesis", r->null_hypothesis},
                    {"permutations", r->permutations},
                    {"z_score", r->z_score}});
    } else {
      ev.push_back({{"method", "identity"},
                    {"statistic", "digests"},
                    {"value", nullptr},
                    {"p_value", nullptr},
                    {"null_hypothesis", r->null_hypothesis}});
    }
    j["evidence"] = ev;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "candidate: " << shown(o.candidate) << "\nreference: " << shown(o.reference)
            << "\nrelation:  " << relation_name(r->relation)
            << " (from fingerprints)\np-value:   " << p_text(r->p_value)
            << "\nreason:    " << r->reason << "\n";
  return kExitOk;
}

// Output lineage: signatures (given, cached or collected now), the candidate's scores of the
// pool's greedy texts, then fingerprint::compare_outputs.
int run_compare_outputs(const CompareOptions& o) {
  lineage::OutputComparisonRequest req = o.outputs;
  req.candidate = o.candidate;
  req.reference = o.reference;
  auto got = lineage::compare_by_outputs(req);
  if (!got.is_ok()) return report_error("compare", got.status());
  const fingerprint::OutputComparison* r = &got->result;
  const probes::SignatureHeader& h = got->candidate_header;
  if (o.json) {
    nlohmann::json j = fingerprint::output_result_json(*r);
    j["candidate"] = o.candidate;
    j["reference"] = o.reference;
    j["suite"] = {{"name", h.suite_name}, {"version", h.suite_version}, {"digest", h.suite_digest}};
    nlohmann::json ev = nlohmann::json::array();
    for (const auto& s : r->statistics) {
      if (!s.primary) continue;
      ev.push_back({{"method", "output-prediction-t"},
                    {"statistic", s.name},
                    {"value", s.reference},
                    {"p_value", s.p_value},
                    {"null_hypothesis", r->null_hypothesis},
                    {"probes", s.name == "logit_image" ? r->image_probes : r->probes_used},
                    {"controls", s.controls.size()}});
    }
    j["evidence"] = ev;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "candidate: " << shown(o.candidate) << "\nreference: " << shown(o.reference)
            << "\nrelation:  " << (r->related() ? "related (" : "") << relation_name(r->relation)
            << (r->related() ? ")" : "") << "\np-value:   " << p_text(r->p_value)
            << "\nreason:    " << r->reason << "\n";
  if (r->p_value) {
    std::cout << "H0:        " << r->null_hypothesis << "\ncombined:  " << r->combination
              << "\nprobes:    " << r->probes_used << " used, "
              << (r->probes_needed >= 0 ? std::to_string(r->probes_needed) + " needed"
                                        : std::string("p never reached alpha"))
              << "; " << r->controls.size() << " controls"
              << (r->cross_tokenizer ? " (other tokenizers: text-level statistics only)" : "")
              << "\n";
    if (r->image_probes > 0) {
      std::cout << "image:     logit image on " << r->image_probes
                << " probes (the candidate's rank " << r->image_rank << ")\n";
    }
    std::printf("\n%-22s %11s %11s %10s %8s %9s %7s\n", "statistic", "reference", "ctrl mean",
                "ctrl sd", "t", "p-value", "rank p");
    for (const auto& s : r->statistics) {
      std::printf("%-22s %11.5f %11.5f %10.5f %8.2f %9s %7.3f\n", s.name.c_str(), s.reference,
                  s.control_mean, s.control_sd, s.t,
                  s.primary ? p_text(s.p_value).c_str() : "(score)", s.rank_p);
    }
    if (!r->teacher.empty()) {
      std::printf(
          "\ndirection: the %s looks like the teacher (bootstrap agreement %.2f; gaps "
          "%.3f reference, %.3f candidate, nats/byte; rule and its measured accuracy: "
          "docs/output-lineage.md)\n",
          r->teacher.c_str(), r->direction_confidence, r->gap_reference, r->gap_candidate);
    }
  }
  return kExitOk;
}

int run_compare(const CompareOptions& o) {
  if (o.outputs_only) return run_compare_outputs(o);
  if (fingerprint::is_weight_fingerprint_file(o.candidate) ||
      fingerprint::is_weight_fingerprint_file(o.reference)) {
    return run_compare_fingerprints(o);
  }
  fingerprint::WeightTestOptions wo = o.weights;
  wo.identity_all_tensors = o.tensors;
  auto got = lineage::compare_checkpoints(o.candidate, o.reference, o.merge_with, wo);
  if (!got.is_ok()) return report_error("compare", got.status());
  const fingerprint::WeightLineageResult* r = &got->result;
  const std::optional<fingerprint::MergeFit>& merge = got->merge;
  if (o.json) {
    nlohmann::json j = fingerprint::weight_result_json(*r, o.tensors);
    j["candidate"] = o.candidate;
    j["reference"] = o.reference;
    if (merge) {
      j["merge"] = {{"second_parent", o.merge_with},
                    {"is_merge", merge->is_merge},
                    {"alpha", merge->alpha},
                    {"alpha_range", {merge->alpha_min, merge->alpha_max}},
                    {"tensors", merge->tensors}};
      j["evidence"].push_back({{"method", "merge-fit"},
                               {"statistic", "relative_residual"},
                               {"value", merge->relative_residual},
                               {"p_value", nullptr},
                               {"null_hypothesis", merge->null_hypothesis},
                               {"result", merge->is_merge ? "merged" : "not a merge"},
                               {"reason", merge->reason}});
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "candidate: " << shown(o.candidate) << "\nreference: " << shown(o.reference) << "\n"
            << "relation:  " << relation_name(r->relation)
            << (r->relation == Relation::kQuantized
                    ? " (" + r->identity.scheme + ", " + r->identity.quantized_side + " side)"
                    : "")
            << (r->direction.empty() ? "" : " (" + r->direction + ")")
            << "\np-value:   " << p_text(r->p_value) << "\nreason:    " << r->reason << "\n";
  if (r->p_value) std::cout << "H0:        " << r->null_hypothesis << "\n";
  if (merge) {
    std::cout << "merge fit: " << (merge->is_merge ? "merge" : "not a merge") << " of the "
              << "reference and " << o.merge_with << ": " << merge->reason << "\n";
  }
  if (!r->layers.empty()) {
    std::printf("\n%-9s %-9s %10s %9s  %s\n", "ref layer", "cand layer", "similarity", "p-value",
                "per matrix");
    for (const auto& l : r->layers) {
      std::string comps;
      for (const auto& c : l.components) {
        char buf[48];
        std::snprintf(buf, sizeof buf, "%s%s %.3f", comps.empty() ? "" : ", ", c.kind.c_str(),
                      c.similarity);
        comps += buf;
      }
      std::printf("%-9d %-10d %10.4f %9.3g  %s\n", l.reference_layer, l.candidate_layer,
                  l.similarity, l.p_value, comps.c_str());
    }
  }
  if (o.tensors && !r->identity.tensors.empty()) {
    std::printf("\n%-36s %-10s %-10s %12s %9s  %s\n", "tensor", "candidate", "reference",
                "rel. error", "cosine", "explained by");
    for (const auto& t : r->identity.tensors) {
      std::printf("%-36s %-10s %-10s %12.3e %9.6f  %s\n", t.role.c_str(), t.dtype_a.c_str(),
                  t.dtype_b.c_str(), t.relative_error, t.cosine,
                  t.bit_identical ? "identical" : (t.explained ? t.scheme.c_str() : "-"));
    }
  }
  return kExitOk;
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
