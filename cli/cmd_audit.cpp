// prov audit CANDIDATE --references PATH... [--report OUT] [--key KEY] [--ledger DB]
//            [--permutations N] [--alpha A] [--json]
//
// Audits a candidate checkpoint against references (lineage/audit.h), writes the lineage report
// as OUT.json, OUT.md and OUT.html, signs it (OUT.dsse.json: an in-toto Statement in a DSSE
// envelope) with --key, and with --ledger appends the signed report to the ledger and prints its
// inclusion proof.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/collect.h"
#include "cli/common.h"
#include "core/file_io.h"
#include "core/sha256.h"
#include "lineage/audit.h"
#include "lineage/report_render.h"
#include "lineage/statement.h"
#include "store/keys.h"
#include "store/ledger.h"

namespace prov::cli {

namespace {

struct AuditCliOptions {
  std::string candidate;
  std::vector<std::string> references;
  std::string report, key, ledger;
  int permutations = 9999;
  double alpha = 0.01;
  bool json = false;
  // Output layers.
  std::vector<std::string> controls;
  std::string suite = "natural-v1:1000";
  int xlik_probes = 200;
  std::vector<std::string> scores;
  std::vector<std::string> images;
  CollectSettings collect;
};

std::string hex_hash(const store::Hash& h) {
  return to_hex(h.data(), h.size());
}

int run_audit(const AuditCliOptions& o) {
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
  lineage::AuditOptions ao;
  ao.references = o.references;
  // Output evidence: signatures of the candidate, references and controls on one suite.
  const bool cand_weights = !is_endpoint_spec(o.candidate) && !is_signature_file(o.candidate);
  ao.candidate_weights = cand_weights;
  for (const auto& r : o.references) ao.reference_weights.push_back(!is_signature_file(r));
  std::optional<OutputSet> set;
  lineage::OutputEvidence ev;
  if (!o.controls.empty()) {
    OutputSetRequest req;
    req.specs = {o.candidate};
    req.what = {"candidate"};
    for (size_t i = 0; i < o.references.size(); ++i) {
      req.specs.push_back(o.references[i]);
      req.what.push_back("reference " + std::to_string(i + 1));
    }
    for (const auto& c : o.controls) req.specs.push_back(c);
    req.suite = o.suite;
    req.xlik_probes = o.xlik_probes;
    req.scores = o.scores;
    req.images = o.images;
    auto got = collect_output_set(req, o.collect);
    if (!got.is_ok()) return report_error(cmd, got.status());
    set = std::move(*got);
    const std::string cand_name = is_endpoint_spec(o.candidate)
                                      ? o.collect.endpoint.model_name
                                      : lineage::model_display_name(o.candidate);
    ev.candidate = {cand_name, &set->signatures[0], set->scores[0].get(), set->images[0].get()};
    for (size_t i = 0; i < o.references.size(); ++i) {
      ev.references.push_back({lineage::model_display_name(o.references[i]),
                               &set->signatures[i + 1], set->scores[i + 1].get(),
                               set->images[i + 1].get()});
    }
    for (size_t i = 1 + o.references.size(); i < set->signatures.size(); ++i) {
      ev.controls.push_back({lineage::model_display_name(req.specs[i]), &set->signatures[i],
                             set->scores[i].get(), set->images[i].get()});
    }
    ev.test.alpha = o.alpha;
    ao.outputs = &ev;
    if (!cand_weights) {
      ao.candidate_name = cand_name;
      const auto& h = set->signatures[0].header;
      if (is_endpoint_spec(o.candidate)) {
        // What was observed: the digest of the candidate's answers (its signature's records).
        ao.candidate_source = "endpoint " + o.candidate + " model " + cand_name;
      } else {
        ao.candidate_source = "signature " + o.candidate;
      }
      if (h.model_digest.size() == 64) {
        ao.candidate_digest = h.model_digest;
      } else {
        std::string text;
        for (const auto& r : set->signatures[0].records) {
          text += r.probe_id + "\t" + r.continuation_text + "\n";
        }
        ao.candidate_digest = to_hex(sha256(text));
        ao.candidate_source += " (digest: SHA-256 of its probe ids and greedy answers)";
      }
    }
  } else if (!cand_weights) {
    return report_error(cmd, invalid_argument("a candidate without weights (endpoint or "
                                              "signature) needs --controls for the output tests"));
  }
  ao.alpha = o.alpha;
  ao.weights.permutations = o.permutations;
  ao.weights.alpha = o.alpha;
  ao.tool_version = tool_version();
  auto r = lineage::audit(o.candidate, ao);
  if (!r.is_ok()) return report_error(cmd, r.status());
  const nlohmann::json& rep = r->report;
  if (Status v = lineage::validate_report(rep); !v.is_ok()) {
    return report_error(cmd, internal_error("the report does not validate: " + v.to_string()));
  }
  nlohmann::json written = nlohmann::json::array();
  std::string envelope;
  if (key) {
    auto env = lineage::sign_report(rep, *key);
    if (!env.is_ok()) return report_error(cmd, env.status());
    envelope = *env;
  }
  if (!o.report.empty()) {
    auto md = lineage::render_markdown(rep);
    if (!md.is_ok()) return report_error(cmd, md.status());
    auto html = lineage::render_html(rep);
    if (!html.is_ok()) return report_error(cmd, html.status());
    const std::vector<std::pair<std::string, std::string>> files = {
        {o.report + ".json", rep.dump(2) + "\n"},
        {o.report + ".md", *md},
        {o.report + ".html", *html}};
    for (const auto& [path, text] : files) {
      if (Status s = write_file_atomic(path, text); !s.is_ok()) return report_error(cmd, s);
      written.push_back(path);
    }
    if (key) {
      const std::string path = o.report + ".dsse.json";
      if (Status s = write_file_atomic(path, envelope + "\n"); !s.is_ok()) {
        return report_error(cmd, s);
      }
      written.push_back(path);
    }
  }
  nlohmann::json ledger_json;
  if (!o.ledger.empty()) {
    auto l = store::Ledger::open(o.ledger, /*create=*/true);
    if (!l.is_ok()) return report_error(cmd, l.status().with_context("--ledger"));
    auto pub = key->public_key();
    auto idx = (*l)->append(envelope, &pub);
    if (!idx.is_ok()) return report_error(cmd, idx.status().with_context("ledger append"));
    auto proof = (*l)->inclusion_proof(*idx);
    if (!proof.is_ok()) return report_error(cmd, proof.status());
    nlohmann::json path = nlohmann::json::array();
    for (const auto& h : proof->path) path.push_back(hex_hash(h));
    ledger_json = {{"ledger", o.ledger},
                   {"index", *idx},
                   {"tree_size", proof->tree_size},
                   {"leaf_hash", hex_hash(proof->leaf_hash)},
                   {"root", hex_hash(proof->root)},
                   {"path", path}};
  }
  if (o.json) {
    nlohmann::json j = {{"report", rep}, {"written", written}};
    if (key) j["key_id"] = key->key_id();
    if (!ledger_json.is_null()) j["inclusion_proof"] = ledger_json;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  const auto& v = rep["verdict"];
  std::cout << "candidate:  " << o.candidate << "\nverdict:    " << v["relation"].get<std::string>()
            << (v["parent"].is_null() ? "" : " (parent " + v["parent"].get<std::string>() + ")")
            << "\np-value:    "
            << lineage::format_p_value(v["p_value"].is_null()
                                           ? std::nullopt
                                           : std::optional<double>(v["p_value"].get<double>()))
            << "\nconfidence: " << v["confidence"].get<std::string>() << "\n\n";
  std::printf("%-28s %-13s %10s %10s %9s", "reference", "weights", "p-value", "Holm p",
              "aligned z");
  if (ao.outputs != nullptr) std::printf("  %-15s %10s %10s", "outputs", "p-value", "Holm p");
  std::printf("\n");
  for (const auto& ref : r->references) {
    std::printf("%-28s %-13s %10s %10s %9.1f", ref.name.c_str(),
                ref.has_weights ? ref.weights.relation.c_str() : "-",
                lineage::format_p_value(ref.weights.p_value).c_str(),
                lineage::format_p_value(ref.p_holm).c_str(), ref.weights.aligned.z_score);
    if (ref.outputs) {
      const auto& oc = *ref.outputs;
      std::printf("  %-15s %10s %10s", (oc.relation == "related" ? oc.kind : oc.relation).c_str(),
                  lineage::format_p_value(oc.p_value).c_str(),
                  lineage::format_p_value(ref.output_p_holm).c_str());
    }
    std::printf("\n");
  }
  std::cout << "\n" << v["summary"].get<std::string>() << "\n";
  for (const auto& w : written) std::cout << "wrote " << w.get<std::string>() << "\n";
  if (!ledger_json.is_null()) {
    std::cout << "ledger " << o.ledger << ": entry " << ledger_json["index"].get<uint64_t>()
              << " of " << ledger_json["tree_size"].get<uint64_t>() << ", root "
              << ledger_json["root"].get<std::string>() << "\ninclusion proof ("
              << ledger_json["path"].size() << " hashes):\n";
    for (const auto& h : ledger_json["path"]) std::cout << "  " << h.get<std::string>() << "\n";
  }
  return kExitOk;
}

}  // namespace

void register_audit(CLI::App& app, Action* run) {
  auto o = std::make_shared<AuditCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "audit",
      "Audit a candidate checkpoint against references: verdict, evidence, signed lineage "
      "report (JSON, Markdown, HTML), ledger entry");
  cmd->add_option("CANDIDATE", o->candidate,
                  "candidate: checkpoint, signature file or endpoint URL (--model-name)")
      ->required();
  cmd->add_option("--references", o->references, "reference models")->required();
  cmd->add_option("--report", o->report, "write OUT.json, OUT.md, OUT.html (and OUT.dsse.json)");
  cmd->add_option("--key", o->key, "private key to sign the report with (prov key generate)");
  cmd->add_option("--ledger", o->ledger,
                  "append the signed report to this ledger (created if "
                  "missing)");
  cmd->add_option("--permutations", o->permutations, "permutations of the weight test")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--alpha", o->alpha, "family-wise level over the references")
      ->check(CLI::Range(1e-12, 0.5));
  cmd->add_flag("--json", o->json, "print the report (and the inclusion proof) as JSON");
  cmd->add_option("--controls", o->controls,
                  "models unrelated to the references (checkpoints, signature files or "
                  "endpoints): runs the output and distillation tests");
  add_collection_options(cmd, &o->suite, &o->xlik_probes, &o->collect);
  cmd->add_option("--scores", o->scores, "cross-likelihood score signatures (prov suite cross)");
  cmd->add_option("--images", o->images,
                  "logit-image-v1 signatures (full log-probabilities), matched by model digest");
  cmd->add_option("--model-name", o->collect.endpoint.model_name,
                  "model name when CANDIDATE is an endpoint URL");
  cmd->add_option("--api-key-env", o->collect.endpoint.api_key_env,
                  "environment variable holding the endpoint's API key");
  cmd->add_option("--retries", o->collect.endpoint.retries, "endpoint retries")
      ->capture_default_str();
  cmd->callback([o, run] { *run = [o] { return run_audit(*o); }; });
}

}  // namespace prov::cli
