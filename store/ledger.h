// The provenance ledger: an append-only SQLite file of DSSE envelopes under an RFC 6962 Merkle
// tree, with signed C2SP checkpoints, inclusion/consistency proofs, queries and lineage walks.
// docs/formats/ledger.md describes the schema and what each check proves.
//
// Leaf i of the tree is leaf_hash(entry_leaf_data(created_at_i, envelope_i)): the envelope bytes
// as appended (stored byte for byte) bound to the append time, so neither can be changed
// without changing the tree.
//
// Durability and concurrency: WAL journal, synchronous=FULL, every write in a BEGIN IMMEDIATE
// transaction with a busy timeout and retry, so several processes may append at once; an append
// that returned an index survives a crash of the process. Entries, subjects, tree nodes and
// checkpoints are refused UPDATE and DELETE by triggers.
//
// Thread safety: a Ledger owns one SQLite connection and must be used by one thread at a time;
// open one Ledger per thread or process (never share one across fork()).
#pragma once

#include <cstdint>
#include <memory>
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

inline constexpr int kLedgerSchemaVersion = 1;
inline constexpr char kInTotoPayloadType[] = "application/vnd.in-toto+json";

// The bytes a ledger leaf hashes: "prov-ledger-entry-v1\n" created_at "\n" envelope.
std::string entry_leaf_data(const std::string& created_at, const std::string& envelope);

struct LedgerEntry {
  uint64_t index = 0;
  std::string envelope;  // byte for byte as appended
  Hash leaf_hash{};
  std::string subject_digest;         // first subject, "alg:hex"
  std::vector<std::string> subjects;  // every subject, "alg:hex"
  std::string relation;               // empty when absent
  std::string parent_digest;          // empty when absent
  std::string created_at;             // UTC, "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"
};

// What the ledger reads from an envelope's in-toto Statement.
struct StatementFields {
  std::vector<std::string> subjects;  // "alg:hex" (sha256 preferred when a subject has several)
  std::string relation;               // predicate.verdict.relation, else predicate.relation
  std::string parent_digest;  // predicate.verdict.parent_digest, else predicate.parent_digest
};
// Parses a DSSE envelope (structure only) whose payloadType is in-toto and whose payload is a
// Statement with at least one subject digest. kCorrupt with the reason otherwise.
Result<StatementFields> parse_statement_envelope(const std::string& envelope);

// "sha256:ab.." stays; a bare 64-hex digest gets "sha256:"; lowercase hex.
std::string normalize_digest(const std::string& digest);

struct QueryFilter {
  std::string subject_digest;  // entries with this subject (any of their subjects)
  std::string relation;
  std::string parent_digest;
  std::string since;   // created_at >= since (ISO-8601 UTC strings compare in order)
  uint64_t limit = 0;  // 0: no limit
};

struct InclusionProof {
  uint64_t index = 0;
  uint64_t tree_size = 0;
  Hash leaf_hash{};
  Hash root{};
  std::vector<Hash> path;
};

struct VerifyOptions {
  // Checks every stored checkpoint's signature (key name = the checkpoint origin). Without it the
  // stored checkpoints' roots are still checked against the tree but not their signatures.
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
};

struct MergeReport {
  uint64_t added = 0;
  uint64_t already_present = 0;
};

class Ledger {
 public:
  // Creates a new ledger file (kInvalidArgument if `path` already exists).
  static Result<std::unique_ptr<Ledger>> init(const std::string& path);
  // Opens an existing ledger (kNotFound if missing; kCorrupt if it is not a prov ledger or is
  // damaged; kUnsupported if a newer prov created it). With create=true a missing file is
  // initialised instead. Older schema versions are migrated in place.
  static Result<std::unique_ptr<Ledger>> open(const std::string& path, bool create = false);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  const std::string& path() const { return path_; }

  // Appends one envelope and returns its index. The envelope must parse (parse_statement_envelope);
  // when `signer` is given its signature is verified before the payload is parsed. kInvalidArgument
  // if the same envelope bytes are already in the ledger (a replay).
  Result<uint64_t> append(const std::string& envelope, const PublicKey* signer = nullptr);
  // Appends all or nothing, in one transaction; returns the indexes in order.
  Result<std::vector<uint64_t>> append_batch(const std::vector<std::string>& envelopes,
                                             const PublicKey* signer = nullptr);

  Result<uint64_t> size();
  Result<Hash> root();                       // of the whole tree
  Result<Hash> root_at(uint64_t tree_size);  // of the first tree_size leaves
  Result<LedgerEntry> get(uint64_t index);

  // Signs (Ed25519, key name = origin) the current tree head, stores and returns the note.
  Result<std::string> checkpoint(const PrivateKey& key, const std::string& origin);
  Result<std::vector<std::string>> checkpoints();  // stored notes, oldest first

  // tree_size 0 means the current size.
  Result<InclusionProof> inclusion_proof(uint64_t index, uint64_t tree_size = 0);
  Result<std::vector<Hash>> consistency_proof(uint64_t old_size, uint64_t new_size = 0);

  // Recomputes every leaf from the stored bytes and the whole tree, compares the cached tree
  // nodes and derived columns, checks checkpoints and proves consistency with an earlier
  // checkpoint. The first problem found is returned as kCorrupt (or kInvalidArgument for a bad
  // signature) naming the entry or checkpoint.
  Result<VerifyReport> verify(const VerifyOptions& options = {});

  Result<std::vector<LedgerEntry>> query(const QueryFilter& filter);
  // Entries recording where `digest` came from (its parent, the parent's parent, ...) and where
  // it went (entries whose parent is `digest`, and theirs), breadth first, at most max_depth hops.
  Result<std::vector<LedgerEntry>> ancestors(const std::string& digest, int max_depth = 64);
  Result<std::vector<LedgerEntry>> descendants(const std::string& digest, int max_depth = 64);

  // Appends the entries of `other` whose envelope bytes are not yet here, keeping their append
  // time (hence their leaf hash), in `other`'s order, in one transaction.
  Result<MergeReport> merge(Ledger& other);

 private:
  class Source;
  explicit Ledger(std::string path) : path_(std::move(path)) {}
  Status setup(bool fresh);
  Status exec(const char* sql);
  Result<sqlite3_stmt*> stmt(const char* sql);
  Status sqlite_status(int rc, const std::string& what) const;
  Status begin_immediate();
  Status commit();
  void rollback();
  Status insert_entry(uint64_t index, const std::string& envelope, const std::string& created_at,
                      const StatementFields& fields);
  Result<uint64_t> size_in_txn();
  Result<LedgerEntry> read_entry(sqlite3_stmt* st);

  std::string path_;
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;
};

}  // namespace prov::store
