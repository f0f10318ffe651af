// prov ledger export DB --model DIGEST --format disclosure|spdx3|cyclonedx|hf-card [-o OUT]
//   [--checkpoint NOTE] [--key KEY] [--repo-id DIGEST=org/name...] [--model-path PATH]
// prov verify-export FILE --key PUB [--index-key PUB] [--envelope-key PUB...] [--require-complete]
//   [--json]
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "lineage/base_model_hints.h"
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
  std::string key;
  std::vector<std::string> repo_ids;
  std::string model_path;
};

int run_export(const ExportCmdOptions& o) {
  const char* cmd = "ledger export";
  auto format = store::parse_export_format(o.format);
  if (!format.is_ok()) return report_error(cmd, format.status());
  store::ExportOptions eopt;
  std::unique_ptr<store::PrivateKey> index_key;
  if (!o.key.empty()) {
    auto k = store::PrivateKey::load(o.key);
    if (!k.is_ok()) return report_error(cmd, k.status());
    index_key = std::make_unique<store::PrivateKey>(std::move(*k));
    eopt.index_key = index_key.get();
  } else if (*format == store::ExportFormat::kDisclosure) {
    std::cerr << "prov " << cmd
              << ": warning: no --key: the package carries no signed index, so verify-export "
                 "cannot prove it complete (entries could be removed unnoticed)\n";
  }
  auto repos = store::parse_repo_ids(o.repo_ids);
  if (!repos.is_ok()) return report_error(cmd, repos.status());
  eopt.repo_ids = std::move(*repos);
  if (!o.model_path.empty()) {
    auto hints = lineage::base_model_hints(o.model_path);
    if (!hints.is_ok()) return report_error(cmd, hints.status());
    eopt.base_model_hints = std::move(*hints);
  }
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
  std::string index_key;
  std::vector<std::string> envelope_keys;
  bool require_complete = false;
  bool json = false;
};

int run_verify_export(const VerifyExportCmdOptions& o) {
  const char* cmd = "verify-export";
  auto content = read_small_file(o.file, "disclosure");
  if (!content.is_ok()) return report_error(cmd, content.status());
  auto key = store::PublicKey::load(o.key);
  if (!key.is_ok()) return report_error(cmd, key.status().with_context(o.key));
  std::unique_ptr<store::PublicKey> index_key;
  if (!o.index_key.empty()) {
    auto k = store::PublicKey::load(o.index_key);
    if (!k.is_ok()) return report_error(cmd, k.status().with_context(o.index_key));
    index_key = std::make_unique<store::PublicKey>(std::move(*k));
  }
  std::vector<store::PublicKey> env_keys;
  for (const auto& path : o.envelope_keys) {
    auto k = store::PublicKey::load(path);
    if (!k.is_ok()) return report_error(cmd, k.status().with_context(path));
    env_keys.push_back(std::move(*k));
  }
  store::ExportVerifyOptions vopt;
  vopt.read_predicate = lineage::predicate_facts;
  vopt.index_key = index_key.get();
  vopt.require_complete = o.require_complete;
  for (const auto& k : env_keys) vopt.envelope_keys.push_back(&k);
  auto rep = store::verify_export(*content, *key, vopt);
  if (!rep.is_ok()) {
    if (o.json) {
      nlohmann::json j = {{"verified", false}, {"error", rep.status().to_string()}};
      std::cout << j.dump(2) << "\n";
    }
    return report_error(cmd, rep.status().with_context(o.file));
  }
  const char* kIncomplete =
      "the package carries no signed index: every entry in it is genuine, but entries may have "
      "been removed (export it with prov ledger export --key KEY)";
  if (!rep->complete) {
    std::cerr << "prov " << cmd << ": warning: " << o.file
              << " is NOT proven complete: " << kIncomplete << "\n";
  }
  if (o.json) {
    nlohmann::json j = {{"verified", true},
                        {"complete", rep->complete},
                        {"model", rep->model_digest},
                        {"origin", rep->origin},
                        {"tree_size", rep->tree_size},
                        {"root", to_hex(rep->root)},
                        {"entries_verified", rep->entries_verified},
                        {"envelope_signatures_checked", rep->envelope_signatures_checked},
                        {"parents", rep->parents},
                        {"children", rep->children}};
    if (rep->complete) {
      j["index_entries"] = rep->index_entries;
      j["index_key_id"] = rep->index_key_id;
    } else {
      j["warning"] = std::string("NOT proven complete: ") + kIncomplete;
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  if (rep->complete) {
    std::cout << "verified: " << o.file << "\n";
  } else {
    std::cout << "entries verified, NOT proven complete: " << o.file << "\n";
  }
  std::cout << "  model       " << rep->model_digest << "\n"
            << "  checkpoint  " << rep->origin << " size " << rep->tree_size << " root "
            << to_hex(rep->root) << "\n"
            << "  entries     " << rep->entries_verified << " (leaf and inclusion proof each)\n";
  if (rep->complete) {
    std::cout << "  complete    all " << rep->index_entries
              << " entries of the index signed by key " << rep->index_key_id.substr(0, 16) << "\n";
  } else {
    std::cout << "  complete    NO: no signed index\n";
  }
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
  c->add_option("--key", o->key,
                "private key PEM signing the disclosure index (lets verify-export prove the "
                "package complete; default for verify-export: the checkpoint key)");
  c->add_option("--repo-id", o->repo_ids,
                "DIGEST=org/name: a model's Hugging Face repo id (card base_model, SPDX and "
                "CycloneDX download location); repeatable");
  c->add_option("--model-path", o->model_path,
                "the model's directory or GGUF file, whose card, GGUF metadata or config name its "
                "base model's repo id");
  c->callback([o, run] { *run = [o] { return run_export(*o); }; });
}

void register_verify_export(CLI::App& app, Action* run) {
  auto o = std::make_shared<VerifyExportCmdOptions>();
  CLI::App* c = app.add_subcommand(
      "verify-export",
      "Verify a disclosure package offline (leaves, proofs, checkpoint, completeness)");
  c->add_option("FILE", o->file, "disclosure JSON written by prov ledger export")->required();
  c->add_option("--key", o->key, "checkpoint public key (PEM)")->required();
  c->add_option("--index-key", o->index_key,
                "public key (PEM) the disclosure index must be signed by (default: --key)");
  c->add_option("--envelope-key", o->envelope_keys,
                "require every envelope to be signed by one of these public keys (PEM)");
  c->add_flag("--require-complete", o->require_complete,
              "fail (exit 2) when the package carries no signed index");
  c->add_flag("--json", o->json,
              "Print JSON: verified, complete, model, origin, tree_size, root, ...");
  c->callback([o, run] { *run = [o] { return run_verify_export(*o); }; });
}

}  // namespace prov::cli
