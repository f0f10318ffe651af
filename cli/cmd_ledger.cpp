// prov ledger init|append|checkpoint|prove|consistency|verify|query|merge: the provenance ledger
// (store/ledger.h, docs/formats/ledger.md) from the command line. `prov ledger export` lives in
// cmd_export.cpp, `serve|cosign|proof` in cmd_tlog.cpp; both register under `ledger`.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/sha256.h"
#include "lineage/ledger_facts.h"
#include "store/checkpoint.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "store/ledger_text.h"

namespace prov::cli {

namespace {

using nlohmann::json;
using store::Hash;
using store::Ledger;
using store::LedgerEntry;

std::string hex(const Hash& h) {
  return to_hex(h);
}

json hex_list(const std::vector<Hash>& path) {
  json a = json::array();
  for (const auto& h : path) a.push_back(hex(h));
  return a;
}

Result<std::unique_ptr<Ledger>> open_existing(const std::string& db) {
  return lineage::open_ledger(db, /*create=*/false);
}

// Option checks: a bad value is a parse error (exit 2, "prov: --opt: ...") before anything runs.
// Entry indexes and tree sizes are non-negative and fit SQLite's integers.
const CLI::Range kCountRange(int64_t{0}, std::numeric_limits<int64_t>::max());
const CLI::Range kDepthRange(1, std::numeric_limits<int>::max());

// A model digest or a UTC time as options (store/ledger_text.h says which values pass).
const CLI::Validator kDigest([](std::string& v) { return store::digest_problem(v); }, "DIGEST");
const CLI::Validator kUtcTime([](std::string& v) { return store::utc_time_problem(v); },
                              "UTC-TIME");

// --- init ---------------------------------------------------------------------------------

struct InitOptions {
  std::string db;
  std::string checkpoint_key;
  bool json = false;
};

int run_init(const InitOptions& o) {
  const char* cmd = "ledger init";
  std::unique_ptr<store::PublicKey> cp_key;
  if (!o.checkpoint_key.empty()) {
    auto k = store::PublicKey::load(o.checkpoint_key);
    if (!k.is_ok()) return report_error(cmd, k.status());
    if (k->type() != store::KeyType::kEd25519) {
      return report_error(
          cmd, unsupported(o.checkpoint_key + ": checkpoint keys are Ed25519 (C2SP signed notes)"));
    }
    cp_key = std::make_unique<store::PublicKey>(std::move(*k));
  }
  auto l = Ledger::init(o.db, lineage::ledger_options());
  if (!l.is_ok()) return report_error(cmd, l.status());
  if (cp_key) {
    Status s = (*l)->pin_checkpoint_key(*cp_key);
    if (!s.is_ok()) return report_error(cmd, s);
  }
  const std::string key_id = cp_key ? cp_key->key_id() : std::string();
  if (o.json) {
    json j = {{"path", o.db}, {"schema_version", store::kLedgerSchemaVersion}};
    j["checkpoint_key_id"] = key_id.empty() ? json(nullptr) : json(key_id);
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "initialised ledger " << o.db << " (schema version " << store::kLedgerSchemaVersion
              << ")\n";
    if (!key_id.empty()) std::cout << "checkpoint key pinned: " << key_id << "\n";
  }
  return kExitOk;
}

// --- append -------------------------------------------------------------------------------

struct AppendOptions {
  std::string db;
  std::vector<std::string> envelopes;
  std::string key;
  bool json = false;
};

int run_append(const AppendOptions& o) {
  const char* cmd = "ledger append";
  std::unique_ptr<store::PublicKey> signer;
  if (!o.key.empty()) {
    auto k = store::PublicKey::load(o.key);
    if (!k.is_ok()) return report_error(cmd, k.status());
    signer = std::make_unique<store::PublicKey>(std::move(*k));
  }
  // Read every file first: a missing or oversized file appends nothing.
  std::vector<std::string> bodies;
  bodies.reserve(o.envelopes.size());
  for (const auto& path : o.envelopes) {
    auto b = read_small_file(path, "envelope");
    if (!b.is_ok()) return report_error(cmd, b.status());
    bodies.push_back(std::move(*b));
  }
  auto l = open_existing(o.db);
  if (!l.is_ok()) return report_error(cmd, l.status());
  // One transaction: either every envelope is appended or none is. The signature check and the
  // statement parse happen inside append_batch, per envelope, before anything is written.
  auto idx = (*l)->append_batch(bodies, signer.get());
  if (!idx.is_ok()) {
    // Name the envelope at fault when a single one fails on its own.
    for (size_t i = 0; i < bodies.size(); ++i) {
      Status s = Status::ok();
      if (signer) {
        auto v = store::dsse_verify(bodies[i], *signer);
        if (!v.is_ok()) s = v.status();
      }
      if (s.is_ok()) {
        auto f = store::parse_statement_envelope(bodies[i], lineage::predicate_facts);
        if (!f.is_ok()) s = f.status();
      }
      if (!s.is_ok()) return report_error(cmd, s.with_context(o.envelopes[i]));
    }
    return report_error(cmd, idx.status());
  }
  json out = json::array();
  for (size_t i = 0; i < idx->size(); ++i) {
    uint64_t index = (*idx)[i];
    auto e = (*l)->get(index);
    if (!e.is_ok()) return report_error(cmd, e.status());
    if (o.json) {
      json j = store::entry_json(*e);
      j["file"] = o.envelopes[i];
      out.push_back(std::move(j));
    } else {
      std::cout << index << "  " << hex(e->leaf_hash) << "  " << o.envelopes[i] << "\n";
    }
  }
  if (o.json) std::cout << out.dump(2) << "\n";
  return kExitOk;
}

// --- checkpoint ---------------------------------------------------------------------------

struct CheckpointOptions {
  std::string db;
  std::string key;
  std::string origin;
  std::string out;
  bool json = false;
};

int run_checkpoint(const CheckpointOptions& o) {
  const char* cmd = "ledger checkpoint";
  const std::string& origin = o.origin;  // empty: the ledger's own (Ledger::origin)
  if (!origin.empty() && !store::valid_key_name(origin)) {
    return report_error(cmd, invalid_argument("--origin '" + origin +
                                              "' is not a valid note key name (non-empty, no "
                                              "whitespace, no '+')"));
  }
  auto key = store::PrivateKey::load(o.key);
  if (!key.is_ok()) return report_error(cmd, key.status());
  if (key->type() != store::KeyType::kEd25519) {
    return report_error(cmd, unsupported(o.key +
                                         ": checkpoints are signed with Ed25519 keys only "
                                         "(C2SP signed notes); this is " +
                                         store::key_type_name(key->type())));
  }
  auto l = open_existing(o.db);
  if (!l.is_ok()) return report_error(cmd, l.status());
  auto note = (*l)->checkpoint(*key, origin);
  if (!note.is_ok()) return report_error(cmd, note.status());
  if (!o.out.empty()) {
    Status s = write_text_file(o.out, *note);
    if (!s.is_ok()) return report_error(cmd, s);
  }
  if (o.json) {
    auto cp = store::parse_checkpoint(*note);
    if (!cp.is_ok()) return report_error(cmd, cp.status());
    auto vk = store::note_verifier_key(cp->origin, key->public_key());
    json j = {{"origin", cp->origin},
              {"tree_size", cp->tree_size},
              {"root", hex(cp->root)},
              {"key_id", key->public_key().key_id()},
              {"note", *note}};
    if (vk.is_ok()) j["verifier_key"] = *vk;
    std::cout << j.dump(2) << "\n";
  } else if (o.out.empty()) {
    std::cout << *note;
  } else {
    std::cerr << "wrote checkpoint to " << o.out << "\n";
  }
  return kExitOk;
}

// --- prove --------------------------------------------------------------------------------

struct ProveOptions {
  std::string db;
  uint64_t index = 0;
  uint64_t size = 0;
  bool json = false;
};

int run_prove(const ProveOptions& o) {
  const char* cmd = "ledger prove";
  auto l = open_existing(o.db);
  if (!l.is_ok()) return report_error(cmd, l.status());
  auto p = (*l)->inclusion_proof(o.index, o.size);
  if (!p.is_ok()) return report_error(cmd, p.status());
  auto e = (*l)->get(o.index);
  if (!e.is_ok()) return report_error(cmd, e.status());
  if (o.json) {
    json j = {{"index", p->index},
              {"tree_size", p->tree_size},
              {"leaf_hash", hex(p->leaf_hash)},
              {"root", hex(p->root)},
              {"path", hex_list(p->path)},
              {"created_at", e->created_at},
              {"envelope_sha256", to_hex(sha256(e->envelope))}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "index       " << p->index << "\n"
            << "tree_size   " << p->tree_size << "\n"
            << "leaf_hash   " << hex(p->leaf_hash) << "\n"
            << "root        " << hex(p->root) << "\n"
            << "created_at  " << e->created_at << "\n"
            << "path        " << p->path.size() << " hashes\n";
  for (const auto& h : p->path) std::cout << "  " << hex(h) << "\n";
  return kExitOk;
}

// --- consistency --------------------------------------------------------------------------

struct ConsistencyOptions {
  std::string db;
  uint64_t from = 0;
  uint64_t to = 0;
  bool json = false;
};

int run_consistency(const ConsistencyOptions& o) {
  const char* cmd = "ledger consistency";
  auto l = open_existing(o.db);
  if (!l.is_ok()) return report_error(cmd, l.status());
  uint64_t to = o.to;
  if (to == 0) {
    auto n = (*l)->size();
    if (!n.is_ok()) return report_error(cmd, n.status());
    to = *n;
  }
  if (o.from > to) {
    return report_error(
        cmd, invalid_argument("--from " + std::to_string(o.from) + " is larger than the new size " +
                              std::to_string(to)));
  }
  auto proof = (*l)->consistency_proof(o.from, to);
  if (!proof.is_ok()) return report_error(cmd, proof.status());
  auto old_root = (*l)->root_at(o.from);
  if (!old_root.is_ok()) return report_error(cmd, old_root.status());
  auto new_root = (*l)->root_at(to);
  if (!new_root.is_ok()) return report_error(cmd, new_root.status());
  if (o.json) {
    json j = {{"from", o.from},
              {"to", to},
              {"old_root", hex(*old_root)},
              {"new_root", hex(*new_root)},
              {"path", hex_list(*proof)}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "from      " << o.from << "\n"
            << "to        " << to << "\n"
            << "old_root  " << hex(*old_root) << "\n"
            << "new_root  " << hex(*new_root) << "\n"
            << "path      " << proof->size() << " hashes\n";
  for (const auto& h : *proof) std::cout << "  " << hex(h) << "\n";
  return kExitOk;
}

// --- verify -------------------------------------------------------------------------------

struct VerifyCmdOptions {
  std::string db;
  std::string checkpoint;
  std::string key;
  std::vector<std::string> envelope_keys;
  bool no_integrity_check = false;
  bool json = false;
};

// Every failure of verify exits 2: the ledger is not shown to be intact.
int verify_failed(const VerifyCmdOptions& o, const Status& s) {
  if (o.json) std::cout << json({{"ok", false}, {"error", s.to_string()}}).dump(2) << "\n";
  report_error("ledger verify", s);
  return kExitBadInput;
}

int run_verify(const VerifyCmdOptions& o) {
  const char* cmd = "ledger verify";
  if (!o.checkpoint.empty() && o.key.empty()) {
    return report_error(cmd, invalid_argument("--checkpoint needs --key (the checkpoint's public "
                                              "key)"));
  }
  store::VerifyOptions vopt;
  vopt.integrity_check = !o.no_integrity_check;
  std::unique_ptr<store::PublicKey> cp_key;
  if (!o.key.empty()) {
    auto k = store::PublicKey::load(o.key);
    if (!k.is_ok()) return report_error(cmd, k.status());
    cp_key = std::make_unique<store::PublicKey>(std::move(*k));
    vopt.checkpoint_key = cp_key.get();
  }
  if (!o.checkpoint.empty()) {
    auto note = read_small_file(o.checkpoint, "checkpoint");
    if (!note.is_ok()) return report_error(cmd, note.status());
    if (note->empty()) return report_error(cmd, corrupt(o.checkpoint + ": empty checkpoint file"));
    vopt.earlier_checkpoint = std::move(*note);
  }
  std::vector<store::PublicKey> env_keys;
  env_keys.reserve(o.envelope_keys.size());
  for (const auto& path : o.envelope_keys) {
    auto k = store::PublicKey::load(path);
    if (!k.is_ok()) return report_error(cmd, k.status());
    env_keys.push_back(std::move(*k));
  }
  for (const auto& k : env_keys) vopt.envelope_keys.push_back(&k);

  auto l = open_existing(o.db);
  if (!l.is_ok()) return verify_failed(o, l.status());
  auto r = (*l)->verify(vopt);
  if (!r.is_ok()) return verify_failed(o, r.status());
  if (o.json) {
    json j = {{"ok", true},
              {"tree_size", r->tree_size},
              {"root", hex(r->root)},
              {"checkpoints_checked", r->checkpoints_checked},
              {"checkpoint_signatures_checked", r->checkpoint_signatures_checked},
              {"envelope_signatures_checked", r->envelope_signatures_checked},
              {"earlier_checkpoint_consistent", r->earlier_checkpoint_consistent}};
    j["checkpoint_key_id"] =
        r->checkpoint_key_id.empty() ? json(nullptr) : json(r->checkpoint_key_id);
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "ok: " << o.db << ": " << r->tree_size << " entries, root " << hex(r->root) << "\n"
            << "  checkpoints checked: " << r->checkpoints_checked
            << (r->checkpoint_signatures_checked ? " (signatures verified)"
                : r->checkpoint_key_id.empty()   ? " (signatures not checked: no --key)"
                                                 : " (signatures checked under the pinned key)")
            << "\n";
  if (!r->checkpoint_key_id.empty()) {
    std::cout << "  checkpoint key (pinned): " << r->checkpoint_key_id << "\n";
  }
  if (!o.envelope_keys.empty()) {
    std::cout << "  envelope signatures verified: " << r->envelope_signatures_checked << "\n";
  }
  if (!o.checkpoint.empty()) {
    std::cout << "  consistent with the earlier checkpoint " << o.checkpoint << "\n";
  }
  return kExitOk;
}

// --- query --------------------------------------------------------------------------------

struct QueryOptions {
  std::string db;
  std::string model;
  std::string relation;
  std::string parent;
  std::string since;
  std::string ancestors;
  std::string descendants;
  int depth = 64;
  uint64_t limit = 0;
  bool json = false;
};

bool matches(const LedgerEntry& e, const QueryOptions& o) {
  if (!o.model.empty()) {
    std::string d = store::normalize_digest(o.model);
    bool found = false;
    for (const auto& s : e.subjects) found = found || s == d;
    if (!found) return false;
  }
  if (!o.relation.empty() && e.relation != o.relation) return false;
  if (!o.parent.empty() && e.parent_digest != store::normalize_digest(o.parent)) return false;
  if (!o.since.empty() && e.created_at < o.since) return false;
  return true;
}

int run_query(const QueryOptions& o) {
  const char* cmd = "ledger query";
  if (o.depth < 1) return report_error(cmd, invalid_argument("--depth must be at least 1"));
  auto l = open_existing(o.db);
  if (!l.is_ok()) return report_error(cmd, l.status());
  std::vector<LedgerEntry> entries;
  if (!o.ancestors.empty() || !o.descendants.empty()) {
    auto r = o.ancestors.empty() ? (*l)->descendants(o.descendants, o.depth)
                                 : (*l)->ancestors(o.ancestors, o.depth);
    if (!r.is_ok()) return report_error(cmd, r.status());
    // The other filters narrow the lineage walk's result.
    for (auto& e : *r) {
      if (matches(e, o) && (o.limit == 0 || entries.size() < o.limit)) {
        entries.push_back(std::move(e));
      }
    }
  } else {
    store::QueryFilter f;
    f.subject_digest = o.model;
    f.relation = o.relation;
    f.parent_digest = o.parent;
    f.since = o.since;
    f.limit = o.limit;
    auto r = (*l)->query(f);
    if (!r.is_ok()) return report_error(cmd, r.status());
    entries = std::move(*r);
  }
  if (o.json) {
    json a = json::array();
    for (const auto& e : entries) a.push_back(store::entry_json(e));
    std::cout << a.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& e : entries) {
    std::cout << e.index << "  " << e.created_at << "  " << e.subject_digest << "  "
              << (e.relation.empty() ? "-" : e.relation) << "  "
              << (e.parent_digest.empty() ? "-" : e.parent_digest) << "\n";
  }
  if (entries.empty()) std::cerr << "no matching entries\n";
  return kExitOk;
}

// --- merge --------------------------------------------------------------------------------

struct MergeOptions {
  std::string db;
  std::vector<std::string> others;
  bool json = false;
};

int run_merge(const MergeOptions& o) {
  const char* cmd = "ledger merge";
  auto l = open_existing(o.db);
  if (!l.is_ok()) return report_error(cmd, l.status());
  json sources = json::array();
  uint64_t added = 0, present = 0;
  for (const auto& path : o.others) {
    auto other = open_existing(path);
    if (!other.is_ok()) return report_error(cmd, other.status());
    auto r = (*l)->merge(**other);
    if (!r.is_ok()) return report_error(cmd, r.status());
    added += r->added;
    present += r->already_present;
    sources.push_back(
        {{"path", path}, {"added", r->added}, {"already_present", r->already_present}});
    if (!o.json) {
      std::cout << path << ": " << r->added << " added, " << r->already_present
                << " already present\n";
    }
  }
  auto n = (*l)->size();
  if (!n.is_ok()) return report_error(cmd, n.status());
  if (o.json) {
    json j = {
        {"added", added}, {"already_present", present}, {"tree_size", *n}, {"sources", sources}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "total: " << added << " added, " << present << " already present; " << o.db
              << " now has " << *n << " entries\n";
  }
  return kExitOk;
}

}  // namespace

void register_ledger(CLI::App& app, Action* run) {
  CLI::App* ledger_cmd =
      app.add_subcommand("ledger", "The tamper-evident provenance ledger (SQLite, RFC 6962 tree)");
  ledger_cmd->require_subcommand(1);

  {
    auto o = std::make_shared<InitOptions>();
    CLI::App* c = ledger_cmd->add_subcommand("init", "Create a new, empty ledger file");
    c->add_option("DB", o->db, "ledger file to create (must not exist)")->required();
    c->add_option("--checkpoint-key", o->checkpoint_key,
                  "Ed25519 public key PEM: pin it as the only key that may sign checkpoints "
                  "(default: the first checkpoint's key)");
    c->add_flag("--json", o->json, "Print JSON: path, schema_version, checkpoint_key_id");
    c->callback([o, run] { *run = [o] { return run_init(*o); }; });
  }
  {
    auto o = std::make_shared<AppendOptions>();
    CLI::App* c = ledger_cmd->add_subcommand(
        "append", "Append DSSE envelopes (in-toto Statements), all in one transaction");
    c->add_option("DB", o->db, "ledger file")->required();
    c->add_option("ENVELOPE", o->envelopes, "DSSE envelope JSON files")->required();
    c->add_option("--key", o->key, "Public key PEM: each envelope's signature must verify");
    c->add_flag("--json", o->json,
                "Print JSON: [{index, leaf_hash, envelope_sha256, subject_digest, ...}]");
    c->callback([o, run] { *run = [o] { return run_append(*o); }; });
  }
  {
    auto o = std::make_shared<CheckpointOptions>();
    CLI::App* c = ledger_cmd->add_subcommand(
        "checkpoint", "Sign the current tree head as a C2SP checkpoint and store it");
    c->add_option("DB", o->db, "ledger file")->required();
    c->add_option("--key", o->key, "Ed25519 private key PEM")->required();
    c->add_option("--origin", o->origin,
                  "Checkpoint origin and note key name (default: the ledger's own, "
                  "prov-ledger/<DB file name>/<id>)");
    c->add_option("-o,--out", o->out, "Also write the signed note to this file");
    c->add_flag("--json", o->json, "Print JSON: origin, tree_size, root, key_id, note");
    c->callback([o, run] { *run = [o] { return run_checkpoint(*o); }; });
  }
  {
    auto o = std::make_shared<ProveOptions>();
    CLI::App* c = ledger_cmd->add_subcommand("prove", "RFC 9162 inclusion proof of one entry");
    c->add_option("DB", o->db, "ledger file")->required();
    c->add_option("--index", o->index, "entry index (from 0)")->required()->check(kCountRange);
    c->add_option("--size", o->size, "tree size to prove against (default: the current size)")
        ->check(kCountRange);
    c->add_flag("--json", o->json, "Print JSON: index, tree_size, leaf_hash, root, path, ...");
    c->callback([o, run] { *run = [o] { return run_prove(*o); }; });
  }
  {
    auto o = std::make_shared<ConsistencyOptions>();
    CLI::App* c = ledger_cmd->add_subcommand("consistency",
                                             "RFC 9162 consistency proof between two tree sizes");
    c->add_option("DB", o->db, "ledger file")->required();
    c->add_option("--from", o->from, "old tree size")->required()->check(kCountRange);
    c->add_option("--to", o->to, "new tree size (default: the current size)")->check(kCountRange);
    c->add_flag("--json", o->json, "Print JSON: from, to, old_root, new_root, path");
    c->callback([o, run] { *run = [o] { return run_consistency(*o); }; });
  }
  {
    auto o = std::make_shared<VerifyCmdOptions>();
    CLI::App* c = ledger_cmd->add_subcommand(
        "verify", "Recompute every leaf and the tree, check checkpoints and signatures");
    c->add_option("DB", o->db, "ledger file")->required();
    c->add_option("--checkpoint", o->checkpoint,
                  "An earlier signed checkpoint kept elsewhere: the ledger must extend it");
    c->add_option("--key", o->key, "Checkpoint public key PEM (checks every stored checkpoint)");
    c->add_option("--envelope-key", o->envelope_keys,
                  "Public key PEM; every envelope must verify under one of these");
    c->add_flag("--no-integrity-check", o->no_integrity_check,
                "Skip SQLite's PRAGMA integrity_check (the content checks still run)");
    c->add_flag("--json", o->json, "Print JSON: ok, tree_size, root, checkpoints_checked, ...");
    c->callback([o, run] { *run = [o] { return run_verify(*o); }; });
  }
  {
    auto o = std::make_shared<QueryOptions>();
    CLI::App* c = ledger_cmd->add_subcommand("query", "Find entries, or walk a model's lineage");
    c->add_option("DB", o->db, "ledger file")->required();
    c->add_option("--model", o->model, "entries with this subject digest (sha256:HEX or HEX)")
        ->check(kDigest);
    c->add_option("--relation", o->relation, "entries recording this relation");
    c->add_option("--parent", o->parent, "entries whose parent is this digest")->check(kDigest);
    c->add_option("--since", o->since, "entries appended at or after this UTC ISO-8601 time")
        ->check(kUtcTime);
    auto* anc = c->add_option("--ancestors", o->ancestors,
                              "entries on the lineage of this digest back to its ancestors")
                    ->check(kDigest);
    auto* desc = c->add_option("--descendants", o->descendants,
                               "entries recording models derived from this digest, transitively")
                     ->check(kDigest);
    anc->excludes(desc);
    c->add_option("--depth", o->depth, "most hops of a lineage walk (default 64)")
        ->check(kDepthRange);
    c->add_option("--limit", o->limit, "at most this many entries (0: all)")->check(kCountRange);
    c->add_flag("--json", o->json, "Print JSON: [{index, subject_digest, relation, ...}]");
    c->callback([o, run] { *run = [o] { return run_query(*o); }; });
  }
  {
    auto o = std::make_shared<MergeOptions>();
    CLI::App* c = ledger_cmd->add_subcommand(
        "merge", "Append the entries of other ledgers that are not yet in DB");
    c->add_option("DB", o->db, "ledger file to merge into")->required();
    c->add_option("OTHER", o->others, "ledgers to merge from")->required();
    c->add_flag("--json", o->json, "Print JSON: added, already_present, tree_size, sources");
    c->callback([o, run] { *run = [o] { return run_merge(*o); }; });
  }
  register_ledger_export(*ledger_cmd, run);
  register_tlog(*ledger_cmd, app, run);
}

}  // namespace prov::cli
