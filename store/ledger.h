// The provenance ledger: an append-only SQLite file of DSSE envelopes under an RFC 6962 Merkle
// tree, with signed C2SP checkpoints, inclusion/consistency proofs, queries and lineage walks.
// docs/formats/ledger.md describes the schema and what each check proves.
//
// Leaf i of the tree is leaf_hash(entry_leaf_data(created_at_i, envelope_i)): the envelope bytes
// as appended (stored byte for byte) bound to the append time, so neither can be changed
// without changing the tree.
//
// The store reads only the in-toto Statement (its own format: subjects and their digests). What
// a predicate says about lineage (relation, parent) is read by the module that owns the predicate
// type, through the PredicateReader given in LedgerOptions (lineage/ledger_facts.h for lineage
// reports); the ledger stores it in its relation / parent_digest columns.
//
// Durability and concurrency: WAL journal, synchronous=FULL, every write in a BEGIN IMMEDIATE
// transaction with a busy timeout and retry, so several processes may append at once; an append
// that returned an index survives a crash of the process. Entries, subjects, content digests, tree
// nodes, checkpoints and metadata are refused UPDATE and DELETE by triggers; verify() checks that
// those triggers (and the whole schema) are still prov's.
//
// Replays: an envelope whose signed content (payloadType and payload, envelope_content_digest) is
// already in the ledger is refused, however it is serialised and whatever signatures it carries.
//
// Checkpoint key: the first checkpoint (or pin_checkpoint_key) pins the Ed25519 key that signs
// the ledger's checkpoints; a checkpoint signed by another key is refused.
//
// Origin: every ledger has its own checkpoint origin, "prov-ledger/<file name>/<32 hex>", the hex
// a random 128-bit id drawn when the ledger is created (or when a ledger made by an older prov is
// first opened) and kept, write-once, in ledger_meta; checkpoint(key, "") signs under it.
//
// Publishing (C2SP tlog-tiles, store/tlog_tiles.h): the published checkpoint is the stored note
// of the largest tree size (latest_checkpoint); witnesses' cosignatures are added to it by storing
// the note again with their signature lines (add_cosignatures); hash tiles are read with
// subtree_hashes, entry bundles with get.
//
// Thread safety: a Ledger owns one SQLite connection and must be used by one thread at a time;
// open one Ledger per thread or process (never share one across fork()). The PredicateReader is
// called from worker threads (append_batch and verify spread envelopes over threads), so it must
// be safe to call concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "store/checkpoint.h"
#include "store/keys.h"
#include "store/merkle.h"

struct sqlite3;
struct sqlite3_stmt;

namespace prov::store {

inline constexpr int kLedgerSchemaVersion = 2;
inline constexpr char kInTotoPayloadType[] = "application/vnd.in-toto+json";

// The bytes a ledger leaf hashes: "prov-ledger-entry-v1\n" created_at "\n" envelope.
std::string entry_leaf_data(const std::string& created_at, const std::string& envelope);

struct LedgerEntry {
  uint64_t index = 0;
  std::string envelope;  // byte for byte as appended
  Hash leaf_hash{};
  std::string subject_digest;         // first subject, "alg:hex"
  std::vector<std::string> subjects;  // every subject, "alg:hex"
  std::string relation;               // from the predicate's reader, empty when absent
  std::string parent_digest;          // from the predicate's reader, empty when absent
  std::string created_at;             // UTC, "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"
};

// What a finding's predicate says about lineage, read by the module that owns the predicate type
// (lineage/ for lineage reports), never by the store.
struct EntryFacts {
  std::string relation;       // relation name, "" when the predicate names none
  std::string parent_digest;  // "alg:hex" (normalize_digest is applied by the ledger), "" when none
  std::string parent_name;    // display name of the parent, "" when none
};
// Reads the facts of one Statement's predicate (called on every append, by verify() to recompute
// the derived columns, and by the exports for names). A predicate type it does not know gives
// empty facts; an error refuses the envelope (append) or fails verification. `predicate_type` is
// the Statement's predicateType ("" when absent), `predicate` its predicate (null when absent).
// Must be safe to call from several threads at once; an exception it throws is turned into
// kCorrupt.
using PredicateReader = std::function<Result<EntryFacts>(const std::string& predicate_type,
                                                         const nlohmann::json& predicate)>;
struct LedgerOptions {
  PredicateReader read_predicate;  // empty: every entry has empty facts
};

// What the ledger reads from an envelope: the Statement's subjects, and the predicate's facts.
struct StatementFields {
  std::vector<std::string> subjects;  // "alg:hex" (sha256 preferred when a subject has several)
  std::string relation;               // EntryFacts::relation
  std::string parent_digest;          // EntryFacts::parent_digest, normalised
  std::string parent_name;            // EntryFacts::parent_name
};
// Parses a DSSE envelope (structure only, no signature check) whose payloadType is in-toto and
// whose payload is a Statement with at least one subject digest, and reads its predicate with
// `reader` (without one, relation and parent are empty). kCorrupt with the reason otherwise, or
// the reader's error.
Result<StatementFields> parse_statement_envelope(const std::string& envelope,
                                                 const PredicateReader& reader = {});

// The identity of an envelope for replay detection: SHA-256 of "prov-envelope-content-v1\n" ||
// PAE(payloadType, payload), the bytes its signatures sign. It does not depend on the JSON
// serialisation (whitespace, member order, escapes, unknown members) nor on the signatures, which
// anyone can strip, add, re-encode or (ECDSA) malleate without the signer's key: the same signed
// statement is the same entry. kCorrupt when the envelope does not parse (dsse_parse).
Result<Digest> envelope_content_digest(const std::string& envelope);

// "sha256:ab.." stays; a bare 64-hex digest gets "sha256:"; lowercase hex.
std::string normalize_digest(const std::string& digest);

struct QueryFilter {
  std::string subject_digest;  // entries with this subject (any of their subjects)
  std::string relation;
  std::string parent_digest;
  std::string since;   // created_at >= since (ISO-8601 UTC strings compare in order)
  uint64_t limit = 0;  // 0: no limit; at most INT64_MAX (kInvalidArgument above)
};

struct InclusionProof {
  uint64_t index = 0;
  uint64_t tree_size = 0;
  Hash leaf_hash{};
  Hash root{};
  std::vector<Hash> path;
};

struct VerifyOptions {
  // Checks every stored checkpoint's signature (key name = the checkpoint origin); it must be the
  // ledger's pinned checkpoint key when one is pinned (kInvalidArgument naming both otherwise).
  // Without it the stored checkpoints are checked under the pinned key (which shows they were
  // all signed by one key, not that it is a key you trust), or, with none pinned, only their
  // roots against the tree.
  const PublicKey* checkpoint_key = nullptr;
  // An earlier checkpoint kept outside the database; needs checkpoint_key. The ledger must be a
  // consistent extension of it.
  std::string earlier_checkpoint;
  // When non-empty, every envelope must carry a signature that verifies under one of these.
  std::vector<const PublicKey*> envelope_keys;
  // PRAGMA integrity_check (b-tree and index structure) before the content checks.
  bool integrity_check = true;
};

struct VerifyReport {
  uint64_t tree_size = 0;
  Hash root{};
  uint64_t checkpoints_checked = 0;
  bool checkpoint_signatures_checked = false;
  uint64_t envelope_signatures_checked = 0;
  bool earlier_checkpoint_consistent = false;
  // The relation / parent columns were recomputed with the ledger's PredicateReader (false when
  // the ledger was opened without one: those columns were then not checked).
  bool lineage_columns_checked = false;
  // The pinned checkpoint key's id (hex SHA-256 of its DER), "" when none is pinned yet.
  std::string checkpoint_key_id;
};

struct MergeReport {
  uint64_t added = 0;
  uint64_t already_present = 0;
};

namespace detail {
// Owners of SQLite handles (STYLE.md: C handles live in unique_ptr with deleters).
struct SqliteClose {
  void operator()(sqlite3* db) const noexcept;
};
struct SqliteFinalize {
  void operator()(sqlite3_stmt* st) const noexcept;
};
using SqlitePtr = std::unique_ptr<sqlite3, SqliteClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, SqliteFinalize>;
}  // namespace detail

class Ledger {
 public:
  // Creates a new ledger file (kInvalidArgument if `path` already exists).
  static Result<std::unique_ptr<Ledger>> init(const std::string& path,
                                              const LedgerOptions& options = {});
  // Opens an existing ledger (kNotFound if missing; kCorrupt if it is not a prov ledger or is
  // damaged; kUnsupported if a newer prov created it). With create=true a missing file is
  // initialised instead. Older schema versions are migrated in place. `options` stay with the
  // Ledger for every later call.
  static Result<std::unique_ptr<Ledger>> open(const std::string& path, bool create = false,
                                              const LedgerOptions& options = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  const std::string& path() const { return path_; }
  const LedgerOptions& options() const { return options_; }

  // Appends one envelope and returns its index. The envelope must parse (parse_statement_envelope
  // with this ledger's reader; a reader error refuses it and nothing is stored); when `signer` is
  // given its signature is verified before the payload is parsed. kInvalidArgument naming the
  // earlier entry when an envelope with the same content (envelope_content_digest) is already in
  // the ledger (a replay, byte for byte or re-serialised).
  Result<uint64_t> append(const std::string& envelope, const PublicKey* signer = nullptr);
  // Appends all or nothing, in one transaction; returns the indexes in order.
  Result<std::vector<uint64_t>> append_batch(const std::vector<std::string>& envelopes,
                                             const PublicKey* signer = nullptr);

  // The facts this ledger's reader gives for `envelope` (parsed structurally, no signature
  // check): empty facts without a reader, parent_digest normalised. kCorrupt when the envelope
  // does not parse, or the reader's error. Touches no database state.
  Result<EntryFacts> facts_of(const std::string& envelope) const;

  Result<uint64_t> size();
  Result<Hash> root();                       // of the whole tree
  Result<Hash> root_at(uint64_t tree_size);  // of the first tree_size leaves
  Result<LedgerEntry> get(uint64_t index);

  // Signs (Ed25519, key name = origin) the current tree head, stores and returns the note. An
  // empty `origin` is the ledger's own (origin()). The first checkpoint of a ledger without a
  // pinned key pins `key` (pin_checkpoint_key); a key other than the pinned one is refused with
  // kInvalidArgument naming both key ids, and nothing is stored.
  Result<std::string> checkpoint(const PrivateKey& key, const std::string& origin = "");
  // The ledger's own checkpoint origin (see the top of this file).
  Result<std::string> origin();
  // The published checkpoint: the stored note of the largest tree size (of those, the one stored
  // last, which carries every cosignature added to it). kNotFound when no checkpoint is stored.
  Result<std::string> latest_checkpoint();
  // Adds the signature lines of `note` (a checkpoint stored here, as text, with more signature
  // lines: witness cosignatures) to the latest stored note with the same text, storing the merged
  // note as a new checkpoint row (checkpoints are append-only), and returns it. A line whose key
  // name and key id are already on the stored note is skipped; nothing is stored when no line is
  // new. The lines are checked for form only (em dash, key name, base64 of at least 4 bytes): a
  // reader ignores lines of keys it does not know (C2SP signed-note), so check cosignatures
  // before adding them (store/cosignature.h). kNotFound when no stored checkpoint has that text;
  // kCorrupt on a malformed note; kInvalidArgument past 100 signature lines.
  Result<std::string> add_cosignatures(const std::string& note);
  // Pins the key that signs this ledger's checkpoints (ledger_meta: its id and public key). OK
  // when `key` is already the pinned one; kInvalidArgument naming both ids when another key is
  // pinned, or when checkpoints are stored and the first of them is not signed by `key`;
  // kUnsupported for a key that is not Ed25519. A pin is permanent.
  Status pin_checkpoint_key(const PublicKey& key);
  // The pinned checkpoint key id (hex SHA-256 of its DER), "" when none is pinned.
  Result<std::string> checkpoint_key_id();
  Result<std::vector<std::string>> checkpoints();  // stored notes, oldest first

  // The perfect-subtree hashes (level, first) .. (level, first + count - 1), in order: level 0
  // the leaf hashes, level l the RFC 6962 MTH of the 2^l leaves from index << l. kNotFound when
  // one of them is not (yet) complete; kInvalidArgument for count over 4096.
  Result<std::vector<Hash>> subtree_hashes(int level, uint64_t first, uint64_t count);

  // tree_size 0 means the current size.
  Result<InclusionProof> inclusion_proof(uint64_t index, uint64_t tree_size = 0);
  Result<std::vector<Hash>> consistency_proof(uint64_t old_size, uint64_t new_size = 0);

  // Checks the schema against prov's (every table, column, index and append-only trigger present
  // and unmodified, no foreign trigger), recomputes every leaf and content digest from the stored
  // bytes and the whole tree, compares the cached tree nodes and derived columns, checks
  // checkpoints (under the pinned key) and proves consistency with an earlier checkpoint. The
  // first problem found is returned as kCorrupt (or kInvalidArgument for a bad signature) naming
  // the trigger, table, entry or checkpoint. Verifying the relation / parent columns needs the
  // predicate's reader: with a ledger opened without one they are not compared (subjects, leaves,
  // tree and checkpoints still are; VerifyReport::lineage_columns_checked says which).
  Result<VerifyReport> verify(const VerifyOptions& options = {});

  Result<std::vector<LedgerEntry>> query(const QueryFilter& filter);
  // Entries recording where `digest` came from (its parent, the parent's parent, ...) and where
  // it went (entries whose parent is `digest`, and theirs), breadth first, at most max_depth hops.
  Result<std::vector<LedgerEntry>> ancestors(const std::string& digest, int max_depth = 64);
  Result<std::vector<LedgerEntry>> descendants(const std::string& digest, int max_depth = 64);

  // Appends the entries of `other` whose content (envelope_content_digest) is not yet here,
  // keeping their append time (hence their leaf hash), in `other`'s order, in one transaction.
  // Their relation and parent are read with this ledger's reader.
  Result<MergeReport> merge(Ledger& other);

 private:
  class Source;
  Ledger(std::string path, LedgerOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}
  // Connection and schema (ledger_schema.cpp).
  Status setup();
  Status check_schema_version();
  Status backfill_entry_contents();  // migration to version 2
  Status assign_origin();            // inside setup: ledger_meta 'origin' when absent
  Status verify_schema();            // first step of verify()
  // ledger_meta (ledger_schema.cpp): the value of `name`, "" when absent.
  Result<std::string> meta_value(const char* name);
  Status meta_insert(const char* name, const std::string& value);
  // Inside a write transaction: pins `key` (see pin_checkpoint_key), or checks it is the pinned.
  Status check_or_pin_checkpoint_key(const PublicKey& key);
  // The pinned checkpoint key (null when none), checked against its recorded id.
  Result<std::unique_ptr<PublicKey>> pinned_checkpoint_key();
  Status exec(const char* sql);
  Result<sqlite3_stmt*> stmt(const char* sql);
  Status sqlite_status(int rc, const std::string& what) const;
  Status begin_immediate();
  Status commit();
  void rollback();
  // Entries (ledger.cpp).
  Status insert_entry(uint64_t index, const std::string& envelope, const std::string& created_at,
                      const StatementFields& fields, const Digest& content);
  // The index of the first entry with this content digest, or -1 (inside a transaction).
  Result<int64_t> find_content(const Digest& content);
  Result<uint64_t> size_in_txn();
  Result<LedgerEntry> read_entry(sqlite3_stmt* st);
  // The steps of verify() (ledger_verify.cpp).
  Status verify_entries(const VerifyOptions& options, MemoryTree* tree, VerifyReport* report);
  Status verify_tree_nodes(const MemoryTree& tree);
  Status verify_checkpoints(const VerifyOptions& options, MemoryTree& tree, VerifyReport* report);
  Status verify_earlier_checkpoint(const VerifyOptions& options, const MemoryTree& tree,
                                   VerifyReport* report);

  std::string path_;
  LedgerOptions options_;
  detail::SqlitePtr db_;  // declared before stmts_: the statements are finalized first
  std::unordered_map<const char*, detail::StmtPtr> stmts_;
};

}  // namespace prov::store
