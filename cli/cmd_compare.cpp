// prov compare CANDIDATE REFERENCE [--weights-only] [--tensors] [--permutations N] [--seed S]
//              [--json]
//
// Compares two checkpoints by their weights (fingerprint/weights.h): the identity layer
// (identical, converted, quantized), then the weight-lineage permutation test on the aligned
// models (permuted, noised, pruned, finetuned, independent, or inconclusive with the reason).
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "fingerprint/weight_fingerprint.h"
#include "fingerprint/weights.h"
#include "model/model.h"

namespace prov::cli {

namespace {

struct CompareOptions {
  std::string candidate, reference;
  bool weights_only = false;
  bool tensors = false;
  bool json = false;
  int permutations = 999;
  int structured = fingerprint::WeightTestOptions{}.structured_components;
  uint64_t seed = fingerprint::WeightTestOptions{}.seed;
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
  auto load = [&](const std::string& path) -> Result<pb::WeightFingerprint> {
    if (fingerprint::is_weight_fingerprint_file(path)) {
      return fingerprint::read_weight_fingerprint(path);
    }
    auto m = model::open_model(path);
    if (!m.is_ok()) return m.status();
    fingerprint::WeightTestOptions wo;
    wo.seed = o.seed;
    return fingerprint::make_weight_fingerprint(*m, tool_version(), wo);
  };
  auto a = load(o.candidate);
  if (!a.is_ok()) return report_error("compare", a.status().with_context("candidate"));
  auto b = load(o.reference);
  if (!b.is_ok()) return report_error("compare", b.status().with_context("reference"));
  fingerprint::WeightTestOptions wo;
  wo.permutations = o.permutations;
  auto r = fingerprint::compare_fingerprints(*a, *b, wo);
  if (!r.is_ok()) return report_error("compare", r.status());
  if (o.json) {
    nlohmann::json j = {{"candidate", o.candidate},
                        {"reference", o.reference},
                        {"relation", r->relation},
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
  std::cout << "candidate: " << o.candidate << "\nreference: " << o.reference
            << "\nrelation:  " << r->relation
            << " (from fingerprints)\np-value:   " << p_text(r->p_value)
            << "\nreason:    " << r->reason << "\n";
  return kExitOk;
}

int run_compare(const CompareOptions& o) {
  if (fingerprint::is_weight_fingerprint_file(o.candidate) ||
      fingerprint::is_weight_fingerprint_file(o.reference)) {
    return run_compare_fingerprints(o);
  }
  auto a = model::open_model(o.candidate);
  if (!a.is_ok()) return report_error("compare", a.status().with_context("candidate"));
  auto b = model::open_model(o.reference);
  if (!b.is_ok()) return report_error("compare", b.status().with_context("reference"));
  fingerprint::WeightTestOptions wo;
  wo.permutations = o.permutations;
  wo.seed = o.seed;
  wo.structured_components = o.structured;
  auto r = fingerprint::compare_weights(*a, *b, wo);
  if (!r.is_ok()) return report_error("compare", r.status());
  if (o.json) {
    nlohmann::json j = fingerprint::weight_result_json(*r, o.tensors);
    j["candidate"] = o.candidate;
    j["reference"] = o.reference;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "candidate: " << o.candidate << "\nreference: " << o.reference << "\n"
            << "relation:  " << r->relation
            << (r->relation == "quantized"
                    ? " (" + r->identity.scheme + ", " + r->identity.quantized_side + " side)"
                    : "")
            << (r->direction.empty() ? "" : " (" + r->direction + ")")
            << "\np-value:   " << p_text(r->p_value) << "\nreason:    " << r->reason << "\n";
  if (r->p_value) std::cout << "H0:        " << r->null_hypothesis << "\n";
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
      "Compare a candidate checkpoint with a reference by their weights: identity, then a "
      "permutation test of shared origin with the relation named");
  cmd->add_option("CANDIDATE", o->candidate, "candidate model")->required();
  cmd->add_option("REFERENCE", o->reference, "reference model")->required();
  cmd->add_flag("--weights-only", o->weights_only, "use the weights only (the only mode so far)");
  cmd->add_option("--permutations", o->permutations, "signed permutations for the test")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--structured-components", o->structured,
                  "leading eigen-components removed from each Gram matrix before the test");
  cmd->add_option("--seed", o->seed, "seed of the permutations and the dimension subset");
  cmd->add_flag("--tensors", o->tensors, "list every tensor's comparison");
  cmd->add_flag("--json", o->json, "print JSON: relation, reason, p_value, evidence[]");
  cmd->callback([o, run] { *run = [o] { return run_compare(*o); }; });
}

}  // namespace prov::cli
