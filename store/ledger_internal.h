// Private to the ledger's sources (ledger.cpp, ledger_schema.cpp, ledger_statement.cpp,
// ledger_verify.cpp): SQLite helpers, the statement reader and the tree source. Not installed,
// not included outside store/.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "store/keys.h"
#include "store/ledger.h"

namespace prov::store::internal {

inline constexpr int kBusyTimeoutMs = 5000;
// ledger_meta: the ledger's own checkpoint origin (Ledger::origin).
inline constexpr char kMetaOrigin[] = "origin";
inline constexpr auto kBusyRetryFor = std::chrono::seconds(120);

// The columns read_entry expects, in order.
#define PROV_ENTRY_COLUMNS \
  "idx, envelope, leaf_hash, subject_digest, relation, parent_digest, created_at"

// The Status for SQLite result code `rc` with message `msg`: kCorrupt for a damaged or foreign
// file, kInvalidArgument for a constraint, kIo for the operating system, kInternal otherwise.
Status sqlite_error(int rc, std::string msg);

// Opens a connection with prov's settings (extended result codes, busy timeout, defensive
// configuration). Returns the SQLite result code; `out` holds the handle even on failure (for
// sqlite3_errmsg), or null when none could be allocated.
int open_connection(const std::string& path, int flags, detail::SqlitePtr* out);

// Prepares `sql` (not cached) into `out`; returns the SQLite result code.
inline int prepare(sqlite3* db, const char* sql, detail::StmtPtr* out) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
  out->reset(st);
  return rc;
}

// "YYYY-MM-DDTHH:MM:SS.uuuuuuZ", now, UTC.
std::string now_utc();

inline Hash to_hash(const void* p, int n) {
  Hash h{};
  if (p != nullptr && n == 32) std::memcpy(h.data(), p, 32);
  return h;
}

inline std::string column_text(sqlite3_stmt* st, int i) {
  const unsigned char* t = sqlite3_column_text(st, i);
  return t ? std::string(reinterpret_cast<const char*>(t),
                         static_cast<size_t>(sqlite3_column_bytes(st, i)))
           : std::string();
}

inline std::string column_blob(sqlite3_stmt* st, int i) {
  const void* b = sqlite3_column_blob(st, i);
  int n = sqlite3_column_bytes(st, i);
  return b ? std::string(static_cast<const char*>(b), static_cast<size_t>(n)) : std::string();
}

// Binds text, or NULL when empty.
inline void bind_text_or_null(sqlite3_stmt* st, int i, const std::string& s) {
  if (s.empty()) {
    sqlite3_bind_null(st, i);
  } else {
    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
}

// Resets a cached statement on scope exit so it never holds a read lock.
struct Reset {
  sqlite3_stmt* st;
  ~Reset() {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
};

// The Statement fields of an already parsed envelope (see parse_statement_envelope).
Result<StatementFields> statement_fields(const DsseEnvelope& env, const PredicateReader& reader);

// envelope_content_digest of an already parsed envelope.
Digest content_digest(const DsseEnvelope& env);

// One object of a ledger's schema as sqlite_schema holds it; tables also list their columns
// ("name type notnull pk", from pragma_table_info).
struct SchemaObject {
  std::string type;  // table, index, trigger, view
  std::string name;
  std::string sql;  // "" for automatic indexes
  std::vector<std::string> columns;
};
// Reads every object of `db`'s schema except SQLite's own (sqlite_*), in name order.
Result<std::vector<SchemaObject>> read_schema(sqlite3* db);
// The schema of a ledger of kLedgerSchemaVersion: every migration run on an empty in-memory
// database (built once per process; thread-safe).
Result<const std::vector<SchemaObject>*> expected_schema();

// What dsse_verify checks, with the key id computed once by the caller (deriving it from the key
// costs more than the signature check): some signature whose keyid is empty or `key_id` verifies
// under `key` over PAE(type, payload).
Status check_envelope_signature(const DsseEnvelope& env, const PublicKey& key,
                                const std::string& key_id);

}  // namespace prov::store::internal

namespace prov::store {

// Serves perfect-subtree hashes from the ledger: leaves from entries, the rest from merkle_nodes.
class Ledger::Source : public SubtreeSource {
 public:
  explicit Source(Ledger* l) : l_(l) {}
  Result<Hash> perfect_subtree(int level, uint64_t index) override;

 private:
  Ledger* l_;
};

}  // namespace prov::store
