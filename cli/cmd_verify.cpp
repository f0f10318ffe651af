// prov verify REPORT --key PUB [--json]: checks a signed lineage report (a DSSE envelope holding
// an in-toto Statement whose predicate is a lineage report; docs/formats/statement.md).
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "lineage/statement.h"
#include "store/keys.h"

namespace prov::cli {

namespace {

struct VerifyCmdOptions {
  std::string report;
  std::string key;
  bool json = false;
};

// How the report names the parent (docs/formats/report.md): verdict.parent, else the
// verdict.parents joined by ", ", else verdict.parent_digest; "" when it names none.
std::string parent_of(const lineage::Report& report) {
  const auto& v = report.verdict;
  if (v.parent) return *v.parent;
  std::string p;
  if (v.parents) {
    for (const auto& x : *v.parents) p += (p.empty() ? "" : ", ") + x;
  }
  if (p.empty() && v.parent_digest) p = *v.parent_digest;
  return p;
}

int run_verify(const VerifyCmdOptions& o) {
  const char* cmd = "verify";
  auto fail = [&](const Status& s) {
    if (o.json) {
      nlohmann::json j = {{"verified", false}, {"error", s.to_string()}};
      std::cout << j.dump(2) << "\n";
    }
    return report_error(cmd, s);
  };
  auto envelope = read_small_file(o.report, "signed report");
  if (!envelope.is_ok()) return fail(envelope.status());
  auto key = store::PublicKey::load(o.key);
  if (!key.is_ok()) return fail(key.status());  // the message names the file
  auto verified = lineage::verify_report(*envelope, *key);
  if (!verified.is_ok()) return fail(verified.status().with_context(o.report));

  const nlohmann::json& report = verified->predicate;
  const lineage::Report& typed = verified->report;
  if (o.json) {
    nlohmann::json j = {{"verified", true},
                        {"key_id", verified->key_id},
                        {"predicate_type", lineage::kReportPredicateType},
                        {"report", report}};
    std::string text;
    try {
      text = j.dump(2);
    } catch (const nlohmann::json::exception& e) {  // not reachable: the payload parsed as JSON
      return report_error(cmd, internal_error(std::string("cannot print the report: ") + e.what()));
    }
    std::cout << text << "\n";
    std::cout.flush();
    return std::cout ? kExitOk : report_error(cmd, io_error("stdout: write failed"));
  }
  const std::string parent = parent_of(typed);
  std::cout << "OK: " << shown(typed.candidate.name) << " " << relation_name(typed.verdict.relation)
            << " (" << (parent.empty() ? std::string("no parent named") : "parent " + shown(parent))
            << "), signed by " << verified->key_id << "\n";
  std::cout.flush();
  return std::cout ? kExitOk : report_error(cmd, io_error("stdout: write failed"));
}

}  // namespace

void register_verify(CLI::App& app, Action* run) {
  auto o = std::make_shared<VerifyCmdOptions>();
  CLI::App* c = app.add_subcommand(
      "verify", "Verify a signed lineage report (DSSE envelope of an in-toto Statement)");
  c->add_option("REPORT", o->report, "signed report envelope, e.g. OUT.dsse.json")->required();
  c->add_option("--key", o->key, "signer's public key (PEM, e.g. KEY.pub from prov key generate)")
      ->required();
  c->add_flag("--json", o->json, "Print JSON: verified, key_id, predicate_type, report");
  c->callback([o, run] { *run = [o] { return run_verify(*o); }; });
}

}  // namespace prov::cli
