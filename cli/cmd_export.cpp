// prov ledger export DB --model DIGEST --format disclosure|spdx3|cyclonedx|hf-card [-o OUT]
// prov verify-export FILE --key PUB [--envelope-key PUB...] [--json]
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "lineage/ledger_facts.h"
#include "store/export.h"
#include "store/keys.h"
#include "store/ledger.h"

namespace prov::cli {

namespace {

struct ExportCmdOptions {
  std::string db;
  std::string model;
  std::string format = "disclosure";
  std::string out;
  std::string checkpoint;
};

int run_export(const ExportCmdOptions& o) {
  const char* cmd = "ledger export";
  auto format = store::parse_export_format(o.format);
  if (!format.is_ok()) return report_error(cmd, format.status());
  store::ExportOptions eopt;
  if (!o.checkpoint.empty()) {
    auto note = read_small_file(o.checkpoint, "checkpoint note");
    if (!note.is_ok()) return report_error(cmd, note.status());
    eopt.checkpoint_note = std::move(*note);
  }
  auto ledger = lineage::open_ledger(o.db, /*create=*/false);
  if (!ledger.is_ok()) return report_error(cmd, ledger.status().with_context(o.db));
  auto text = store::export_model(**ledger, o.model, *format, eopt);
  if (!text.is_ok()) return report_error(cmd, text.status());
  if (o.out.empty() || o.out == "-") {
    std::cout << *text;
    std::cout.flush();
    return std::cout ? kExitOk : report_error(cmd, io_error("stdout: write failed"));
  }
  Status s = write_text_file(o.out, *text);
  if (!s.is_ok()) return report_error(cmd, s);
  return kExitOk;
}

struct VerifyExportCmdOptions {
  std::string file;
  std::string key;
  std::vector<std::string> envelope_keys;
  bool json = false;
};

int run_verify_export(const VerifyExportCmdOptions& o) {
  const char* cmd = "verify-export";
  auto content = read_small_file(o.file, "disclosure");
  if (!content.is_ok()) return report_error(cmd, content.status());
  auto key = store::PublicKey::load(o.key);
  if (!key.is_ok()) return report_error(cmd, key.status().with_context(o.key));
  std::vector<store::PublicKey> env_keys;
  for (const auto& path : o.envelope_keys) {
    auto k = store::PublicKey::load(path);
    if (!k.is_ok()) return report_error(cmd, k.status().with_context(path));
    env_keys.push_back(std::move(*k));
  }
  store::ExportVerifyOptions vopt;
  vopt.read_predicate = lineage::predicate_facts;
  for (const auto& k : env_keys) vopt.envelope_keys.push_back(&k);
  auto rep = store::verify_export(*content, *key, vopt);
  if (!rep.is_ok()) {
    if (o.json) {
      nlohmann::json j = {{"verified", false}, {"error", rep.status().to_string()}};
      std::cout << j.dump(2) << "\n";
    }
    return report_error(cmd, rep.status().with_context(o.file));
  }
  if (o.json) {
    nlohmann::json j = {{"verified", true},
                        {"model", rep->model_digest},
                        {"origin", rep->origin},
                        {"tree_size", rep->tree_size},
                        {"root", to_hex(rep->root)},
                        {"entries_verified", rep->entries_verified},
                        {"envelope_signatures_checked", rep->envelope_signatures_checked},
                        {"parents", rep->parents},
                        {"children", rep->children}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "verified: " << o.file << "\n"
            << "  model       " << rep->model_digest << "\n"
            << "  checkpoint  " << rep->origin << " size " << rep->tree_size << " root "
            << to_hex(rep->root) << "\n"
            << "  entries     " << rep->entries_verified << " (leaf and inclusion proof each)\n";
  if (!o.envelope_keys.empty()) {
    std::cout << "  signatures  " << rep->envelope_signatures_checked << " envelopes\n";
  }
  for (const auto& p : rep->parents) std::cout << "  parent      " << p << "\n";
  for (const auto& c : rep->children) std::cout << "  child       " << c << "\n";
  return kExitOk;
}

}  // namespace

void register_ledger_export(CLI::App& ledger_cmd, Action* run) {
  auto o = std::make_shared<ExportCmdOptions>();
  CLI::App* c = ledger_cmd.add_subcommand(
      "export",
      "Export a model's ledger records (verifiable disclosure, SPDX 3, CycloneDX, HF card)");
  c->add_option("DB", o->db, "ledger file")->required();
  c->add_option("--model", o->model, "model digest (sha256:HEX)")->required();
  c->add_option("--format", o->format, "disclosure (default), spdx3, cyclonedx or hf-card")
      ->check(CLI::IsMember({"disclosure", "spdx3", "cyclonedx", "hf-card"}));
  c->add_option("-o,--out", o->out, "output file (default: standard output)");
  c->add_option("--checkpoint", o->checkpoint,
                "signed checkpoint note to prove against (default: the latest stored)");
  c->callback([o, run] { *run = [o] { return run_export(*o); }; });
}

void register_verify_export(CLI::App& app, Action* run) {
  auto o = std::make_shared<VerifyExportCmdOptions>();
  CLI::App* c = app.add_subcommand(
      "verify-export", "Verify a disclosure package offline (leaves, proofs, checkpoint)");
  c->add_option("FILE", o->file, "disclosure JSON written by prov ledger export")->required();
  c->add_option("--key", o->key, "checkpoint public key (PEM)")->required();
  c->add_option("--envelope-key", o->envelope_keys,
                "require every envelope to be signed by one of these public keys (PEM)");
  c->add_flag("--json", o->json, "Print JSON: verified, model, origin, tree_size, root, ...");
  c->callback([o, run] { *run = [o] { return run_verify_export(*o); }; });
}

}  // namespace prov::cli
