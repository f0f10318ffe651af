// prov audit CANDIDATE --references PATH... [--controls M...] [--report OUT] [--key KEY]
//            [--ledger DB] [--permutations N] [--alpha A] [--json]
//
// Audits a candidate against references (lineage/audit.h), publishes the lineage report
// (lineage/publish.h: OUT.json, OUT.md, OUT.html, and with --key the signed OUT.dsse.json and the
// ledger entry) and prints the verdict.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/options.h"
#include "core/sha256.h"
#include "lineage/audit.h"
#include "lineage/publish.h"
#include "lineage/report_render.h"
#include "store/keys.h"

namespace prov::cli {

namespace {

struct AuditCliOptions {
  lineage::AuditRequest request;
  std::string report, key, ledger;
  bool json = false;
};

nlohmann::json proof_json(const std::string& ledger, const store::InclusionProof& p) {
  nlohmann::json path = nlohmann::json::array();
  for (const auto& h : p.path) path.push_back(to_hex(h.data(), h.size()));
  return {{"ledger", ledger},
          {"index", p.index},
          {"tree_size", p.tree_size},
          {"leaf_hash", to_hex(p.leaf_hash.data(), p.leaf_hash.size())},
          {"root", to_hex(p.root.data(), p.root.size())},
          {"path", path}};
}

void print_table(const lineage::AuditResult& r, bool outputs) {
  const auto& v = r.report.verdict;
  std::cout << "candidate:  " << shown(r.report.candidate.name)
            << "\nverdict:    " << relation_name(v.relation)
            << (v.parent ? " (parent " + shown(*v.parent) + ")" : "")
            << "\np-value:    " << lineage::format_p_value(v.p_value)
            << "\nconfidence: " << lineage::confidence_name(v.confidence) << "\n\n";
  std::printf("%-28s %-13s %10s %10s %9s", "reference", "weights", "p-value", "Holm p",
              "aligned z");
  if (outputs) std::printf("  %-15s %10s %10s", "outputs", "p-value", "Holm p");
  std::printf("\n");
  for (const auto& ref : r.references) {
    const auto* w = ref.weights ? &*ref.weights : nullptr;
    std::printf("%-28s %-13s %10s %10s %9.1f", shown(ref.subject->name()).c_str(),
                w ? relation_name(w->relation) : "-",
                lineage::format_p_value(w ? w->p_value : std::nullopt).c_str(),
                lineage::format_p_value(ref.weight_p_holm).c_str(), w ? w->aligned.z_score : 0.0);
    if (ref.outputs) {
      const auto& oc = *ref.outputs;
      std::printf("  %-15s %10s %10s", relation_name(oc.relation),
                  lineage::format_p_value(oc.p_value).c_str(),
                  lineage::format_p_value(ref.output_p_holm).c_str());
    }
    std::printf("\n");
  }
  std::cout << "\n" << shown(v.summary) << "\n";
}

int run_audit(AuditCliOptions o) {
  const char* cmd = "audit";
  if (!o.ledger.empty() && o.key.empty()) {
    return report_error(cmd, invalid_argument("--ledger needs --key: only signed reports are "
                                              "appended"));
  }
  std::optional<store::PrivateKey> key;
  if (!o.key.empty()) {
    auto k = store::PrivateKey::load(o.key);
    if (!k.is_ok()) return report_error(cmd, k.status().with_context("--key"));
    key = std::move(*k);
  }
  o.request.weights.alpha = o.request.alpha;
  o.request.tool_version = tool_version();
  lineage::AuditSession session(o.request);
  auto r = session.run();
  if (!r.is_ok()) return report_error(cmd, r.status());
  lineage::PublishOptions po;
  po.prefix = o.report;
  po.key = key ? &*key : nullptr;
  po.ledger = o.ledger;
  auto pub = lineage::publish_report(r->report, po);
  if (!pub.is_ok()) return report_error(cmd, pub.status());
  if (o.json) {
    nlohmann::json j = {{"report", lineage::report_to_json(r->report)}, {"written", pub->written}};
    if (key) j["key_id"] = pub->key_id;
    if (pub->proof) j["inclusion_proof"] = proof_json(o.ledger, *pub->proof);
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  print_table(*r, !o.request.controls.empty());
  for (const auto& w : pub->written) std::cout << "wrote " << shown(w) << "\n";
  if (pub->proof) {
    const nlohmann::json p = proof_json(o.ledger, *pub->proof);
    std::cout << "ledger " << o.ledger << ": entry " << pub->proof->index << " of "
              << pub->proof->tree_size << ", root " << p["root"].get<std::string>()
              << "\ninclusion proof (" << p["path"].size() << " hashes):\n";
    for (const auto& h : p["path"]) std::cout << "  " << h.get<std::string>() << "\n";
  }
  return kExitOk;
}

}  // namespace

void register_audit(CLI::App& app, Action* run) {
  auto o = std::make_shared<AuditCliOptions>();
  lineage::AuditRequest& q = o->request;
  q.weights.permutations = 9999;
  CLI::App* cmd = app.add_subcommand(
      "audit",
      "Audit a candidate checkpoint against references: verdict, evidence, signed lineage "
      "report (JSON, Markdown, HTML), ledger entry");
  cmd->add_option("CANDIDATE", q.candidate,
                  "candidate: checkpoint, signature file or endpoint URL (--model-name)")
      ->required();
  cmd->add_option("--references", q.references, "reference models")->required();
  cmd->add_option("--report", o->report, "write OUT.json, OUT.md, OUT.html (and OUT.dsse.json)");
  cmd->add_option("--key", o->key, "private key to sign the report with (prov key generate)");
  cmd->add_option("--ledger", o->ledger,
                  "append the signed report to this ledger (created if missing)");
  cmd->add_option("--permutations", q.weights.permutations, "permutations of the weight test")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--alpha", q.alpha, "family-wise level over the references")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 0.5));
  cmd->add_flag("--json", o->json, "print the report (and the inclusion proof) as JSON");
  cmd->add_option("--controls", q.controls,
                  "models unrelated to the references (checkpoints, signature files or "
                  "endpoints): runs the output and distillation tests");
  add_collection_options(cmd, &q.outputs, &q.collect);
  cmd->add_option("--scores", q.outputs.scores,
                  "cross-likelihood score signatures (prov suite cross)");
  cmd->add_option("--images", q.outputs.images,
                  "logit-image-v1 signatures (full log-probabilities), matched by model digest");
  add_endpoint_options(cmd, &q.endpoint_model, &q.collect.endpoint);
  cmd->callback([o, run] { *run = [o] { return run_audit(*o); }; });
}

}  // namespace prov::cli
