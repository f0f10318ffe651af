// prov disclosure check SUMMARY.json --ledger DB [--model DIGEST] [--json]
#include <iostream>
#include <memory>

#include "cli/common.h"
#include "lineage/disclosure_check.h"
#include "lineage/ledger_facts.h"

namespace prov::cli {

namespace {

struct DisclosureCheckOptions {
  std::string summary;
  std::string db;
  std::string model;
  bool json = false;
};

// Exit 0 when every parent the ledger records is declared, 2 (with the list) otherwise.
int run_disclosure_check(const DisclosureCheckOptions& o) {
  const char* cmd = "disclosure check";
  auto text = read_small_file(o.summary, "training summary");
  if (!text.is_ok()) return report_error(cmd, text.status());
  auto summary = lineage::parse_training_summary(*text);
  if (!summary.is_ok()) return report_error(cmd, summary.status().with_context(o.summary));
  auto ledger = lineage::open_ledger(o.db, /*create=*/false);
  if (!ledger.is_ok()) return report_error(cmd, ledger.status().with_context(o.db));
  auto check = lineage::check_training_summary(*summary, **ledger, o.model);
  if (!check.is_ok()) return report_error(cmd, check.status());
  std::cout << (o.json ? lineage::disclosure_check_json(*check).dump(2) + "\n"
                       : lineage::disclosure_check_text(*check));
  return check->complete() ? kExitOk : kExitBadInput;
}

}  // namespace

void register_disclosure(CLI::App& app, Action* run) {
  auto o = std::make_shared<DisclosureCheckOptions>();
  CLI::App* d = app.add_subcommand("disclosure", "Check disclosures against the ledger");
  d->require_subcommand(1);
  CLI::App* c = d->add_subcommand(
      "check",
      "List the parents the ledger records that an EU AI Act training-content summary does not "
      "declare (model dependencies, synthetic-data generators)");
  c->add_option("SUMMARY", o->summary, "summary JSON (docs/formats/training-summary.md)")
      ->required();
  c->add_option("--ledger", o->db, "ledger file")->required();
  c->add_option("--model", o->model, "model digest (default: the summary's model.digest)");
  c->add_flag("--json", o->json, "Print JSON: model, complete, undeclared, findings, unconfirmed");
  c->callback([o, run] { *run = [o] { return run_disclosure_check(*o); }; });
}

}  // namespace prov::cli
