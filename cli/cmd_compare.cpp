// prov compare CANDIDATE REFERENCE [--weights-only] [--tensors] [--json]
//
// Compares two checkpoints. This build runs the identity layer of the weight evidence
// (fingerprint/identity.h): identical, converted (same weights, another format or layout) or
// quantized (a copy within its format's error bound). Any other pair is reported as "none" (no
// identity relation; the statistical lineage layers decide those) or "incomparable" (different
// tensor roles or shapes) with the reason, never as a lineage verdict.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "fingerprint/identity.h"
#include "model/model.h"

namespace prov::cli {

namespace {

struct CompareOptions {
  std::string candidate, reference;
  bool weights_only = false;
  bool tensors = false;
  bool json = false;
};

int run_compare(const CompareOptions& o) {
  auto a = model::open_model(o.candidate);
  if (!a.is_ok()) return report_error("compare", a.status().with_context("candidate"));
  auto b = model::open_model(o.reference);
  if (!b.is_ok()) return report_error("compare", b.status().with_context("reference"));
  auto r = fingerprint::compare_identity(*a, *b);
  if (!r.is_ok()) return report_error("compare", r.status());
  const bool decided =
      r->relation == "identical" || r->relation == "converted" || r->relation == "quantized";
  if (o.json) {
    nlohmann::json j;
    j["candidate"] = o.candidate;
    j["reference"] = o.reference;
    j["relation"] = r->relation;
    j["reason"] = r->reason;
    j["layers_run"] = {"identity"};
    j["p_value"] = nullptr;  // exact comparison: no test statistic
    nlohmann::json ev = {{"method", "identity"},
                         {"statistic", "max_relative_error"},
                         {"value", r->max_relative_error},
                         {"p_value", nullptr},
                         {"null_hypothesis", r->null_hypothesis}};
    if (r->relation == "quantized") {
      ev["scheme"] = r->scheme;
      ev["quantized_side"] = r->quantized_side;
    }
    j["evidence"] = nlohmann::json::array({ev});
    if (o.tensors) {
      j["tensors"] = nlohmann::json::array();
      for (const auto& t : r->tensors) {
        j["tensors"].push_back({{"role", t.role},
                                {"shape", t.shape},
                                {"dtype_candidate", t.dtype_a},
                                {"dtype_reference", t.dtype_b},
                                {"bit_identical", t.bit_identical},
                                {"relative_error", t.relative_error},
                                {"cosine", t.cosine},
                                {"scheme", t.scheme},
                                {"explained", t.explained}});
      }
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "candidate: " << o.candidate << "\nreference: " << o.reference << "\n"
            << "relation:  " << r->relation
            << (r->relation == "quantized" ? " (" + r->scheme + ", " + r->quantized_side + " side)"
                                           : "")
            << "\nreason:    " << r->reason << "\n";
  if (!decided) {
    std::cout << "note:      only the identity layer ran; it does not say whether the models are "
                 "related otherwise\n";
  }
  if (o.tensors && !r->tensors.empty()) {
    std::printf("%-36s %-10s %-10s %12s %9s  %s\n", "tensor", "candidate", "reference",
                "rel. error", "cosine", "explained by");
    for (const auto& t : r->tensors) {
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
      "Compare a candidate checkpoint with a reference (identity layer: identical, "
      "converted, quantized)");
  cmd->add_option("CANDIDATE", o->candidate, "candidate model")->required();
  cmd->add_option("REFERENCE", o->reference, "reference model")->required();
  cmd->add_flag("--weights-only", o->weights_only, "use the weights only (the only mode so far)");
  cmd->add_flag("--tensors", o->tensors, "list every tensor's comparison");
  cmd->add_flag("--json", o->json, "print JSON: relation, reason, p_value, evidence[]");
  cmd->callback([o, run] { *run = [o] { return run_compare(*o); }; });
}

}  // namespace prov::cli
