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

#include "cli/collect.h"
#include "cli/common.h"
#include "fingerprint/merge.h"
#include "fingerprint/outputs.h"
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
  std::string merge_with;  // a second parent: fit the candidate as a merge
  int permutations = 999;
  int structured = fingerprint::WeightTestOptions{}.structured_components;
  uint64_t seed = fingerprint::WeightTestOptions{}.seed;
  // Output lineage (--outputs-only).
  bool outputs_only = false;
  std::vector<std::string> controls;
  std::string suite = "natural-v1:1000";
  int xlik_probes = 200;
  int max_probes = 0;
  double alpha = 0.01;
  std::vector<std::string> scores;
  std::vector<std::string> images;
  CollectSettings collect;
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

// Output lineage: signatures (given, cached or collected now), the candidate's scores of the
// pool's greedy texts, then fingerprint::compare_outputs.
int run_compare_outputs(const CompareOptions& o) {
  if (o.controls.empty()) {
    return report_error("compare", invalid_argument("--outputs-only needs --controls: signatures "
                                                    "or models unrelated to the reference"));
  }
  std::vector<std::string> specs = {o.candidate, o.reference};
  for (const auto& c : o.controls) specs.push_back(c);
  OutputSetRequest req;
  req.specs = specs;
  req.what = {"candidate", "reference"};
  req.suite = o.suite;
  req.xlik_probes = o.xlik_probes;
  req.scores = o.scores;
  req.images = o.images;
  auto set = collect_output_set(req, o.collect);
  if (!set.is_ok()) return report_error("compare", set.status());
  auto& sigs = set->signatures;
  auto& scores = set->scores;
  auto& images = set->images;
  std::vector<fingerprint::NamedSignature> ctrl;
  for (size_t i = 2; i < sigs.size(); ++i) {
    ctrl.push_back({specs[i], &sigs[i], scores[i].get(), images[i].get()});
  }
  fingerprint::OutputTestOptions opt;
  opt.alpha = o.alpha;
  opt.max_probes = o.max_probes;
  auto r = fingerprint::compare_outputs({o.candidate, &sigs[0], scores[0].get(), images[0].get()},
                                        {o.reference, &sigs[1], scores[1].get(), images[1].get()},
                                        ctrl, opt);
  if (!r.is_ok()) return report_error("compare", r.status());
  if (o.json) {
    nlohmann::json j = fingerprint::output_result_json(*r);
    j["candidate"] = o.candidate;
    j["reference"] = o.reference;
    j["suite"] = {{"name", sigs[0].header.suite_name},
                  {"version", sigs[0].header.suite_version},
                  {"digest", sigs[0].header.suite_digest}};
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
  std::cout << "candidate: " << o.candidate << "\nreference: " << o.reference
            << "\nrelation:  " << r->relation << (r->kind.empty() ? "" : " (" + r->kind + ")")
            << "\np-value:   " << p_text(r->p_value) << "\nreason:    " << r->reason << "\n";
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
  auto a = model::open_model(o.candidate);
  if (!a.is_ok()) return report_error("compare", a.status().with_context("candidate"));
  auto b = model::open_model(o.reference);
  if (!b.is_ok()) return report_error("compare", b.status().with_context("reference"));
  fingerprint::WeightTestOptions wo;
  wo.permutations = o.permutations;
  wo.seed = o.seed;
  wo.structured_components = o.structured;
  wo.identity_all_tensors = o.tensors;
  auto r = fingerprint::compare_weights(*a, *b, wo);
  if (!r.is_ok()) return report_error("compare", r.status());
  // --merge-with: a candidate that shares weights with the reference (not as a copy) is fitted
  // as a merge of the reference and the second model.
  std::optional<fingerprint::MergeFit> merge;
  if (!o.merge_with.empty()) {
    auto c = model::open_model(o.merge_with);
    if (!c.is_ok()) return report_error("compare", c.status().with_context("--merge-with"));
    auto fit = fingerprint::fit_merge(*a, *b, *c);
    if (!fit.is_ok()) return report_error("compare", fit.status().with_context("merge fit"));
    merge = *fit;
    if (fit->is_merge && fingerprint::reads_as_merge_parent(r->relation)) {
      r->relation = "merged";
      r->reason = "a merge of the reference and " + o.merge_with + ": " + fit->reason +
                  "; it shares weights with the reference (" + r->reason + ")";
    }
  }
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
  std::cout << "candidate: " << o.candidate << "\nreference: " << o.reference << "\n"
            << "relation:  " << r->relation
            << (r->relation == "quantized"
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
  cmd->add_option("--controls", o->controls,
                  "models unrelated to the reference (seed twins are the strongest controls)");
  add_collection_options(cmd, &o->suite, &o->xlik_probes, &o->collect);
  cmd->add_option("--max-probes", o->max_probes, "use at most this many probes (0 = all)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--scores", o->scores,
                  "signatures of a cross-likelihood suite (prov suite cross), matched to the "
                  "models by digest; replaces scoring now");
  cmd->add_option("--images", o->images,
                  "signatures of logit-image-v1 (full log-probabilities), matched to the models "
                  "by digest; replaces collecting them now");
  cmd->add_option("--alpha", o->alpha, "significance level")->capture_default_str();
  cmd->add_option("--model-name", o->collect.endpoint.model_name,
                  "model name for endpoint arguments");
  cmd->add_option("--api-key-env", o->collect.endpoint.api_key_env,
                  "environment variable holding the endpoint's API key");
  cmd->add_option("--retries", o->collect.endpoint.retries,
                  "endpoint retries on 429, 5xx and broken responses")
      ->capture_default_str();
  cmd->add_option("--permutations", o->permutations, "signed permutations for the test")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--structured-components", o->structured,
                  "leading eigen-components removed from each Gram matrix before the test");
  cmd->add_option("--seed", o->seed, "seed of the permutations and the dimension subset");
  cmd->add_flag("--tensors", o->tensors,
                "list every tensor's comparison (compares all of them; without it the identity "
                "layer stops at the first tensor no re-encoding explains)");
  cmd->add_flag("--json", o->json, "print JSON: relation, reason, p_value, evidence[]");
  cmd->add_flag(
      "-v,--verbose", [o](int64_t) { o->collect.quiet = false; },
      "show the progress of signatures collected now");
  cmd->callback([o, run] { *run = [o] { return run_compare(*o); }; });
}

}  // namespace prov::cli
