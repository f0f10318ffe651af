// The ledger file: schema and migrations, opening a connection with prov's settings, the
// statement cache and transactions, and the tree source over merkle_nodes.
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "core/sha256.h"
#include "store/ledger.h"
#include "store/ledger_internal.h"
#include "store/ledger_text.h"

namespace prov::store {

namespace {

using internal::kBusyRetryFor;
using internal::Reset;

// Schema version 1. Every table is STRICT; the triggers make the ledger append-only.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE entries(
  idx INTEGER PRIMARY KEY,
  envelope BLOB NOT NULL,
  envelope_sha256 BLOB NOT NULL UNIQUE,
  leaf_hash BLOB NOT NULL,
  subject_digest TEXT NOT NULL,
  relation TEXT,
  parent_digest TEXT,
  created_at TEXT NOT NULL
) STRICT;
CREATE INDEX entries_relation ON entries(relation);
CREATE INDEX entries_parent ON entries(parent_digest);
CREATE INDEX entries_created ON entries(created_at);
CREATE TABLE entry_subjects(
  digest TEXT NOT NULL,
  idx INTEGER NOT NULL,
  PRIMARY KEY(digest, idx)
) STRICT, WITHOUT ROWID;
CREATE INDEX entry_subjects_by_entry ON entry_subjects(idx);
CREATE TABLE merkle_nodes(
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  hash BLOB NOT NULL,
  PRIMARY KEY(level, idx)
) STRICT, WITHOUT ROWID;
CREATE TABLE checkpoints(
  id INTEGER PRIMARY KEY,
  tree_size INTEGER NOT NULL,
  root BLOB NOT NULL,
  origin TEXT NOT NULL,
  note TEXT NOT NULL,
  created_at TEXT NOT NULL
) STRICT;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'prov ledger entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'prov ledger entries are append-only'); END;
CREATE TRIGGER subjects_no_update BEFORE UPDATE ON entry_subjects
  BEGIN SELECT RAISE(ABORT, 'prov ledger entries are append-only'); END;
CREATE TRIGGER subjects_no_delete BEFORE DELETE ON entry_subjects
  BEGIN SELECT RAISE(ABORT, 'prov ledger entries are append-only'); END;
CREATE TRIGGER nodes_no_update BEFORE UPDATE ON merkle_nodes
  BEGIN SELECT RAISE(ABORT, 'prov ledger tree nodes are append-only'); END;
CREATE TRIGGER nodes_no_delete BEFORE DELETE ON merkle_nodes
  BEGIN SELECT RAISE(ABORT, 'prov ledger tree nodes are append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'prov ledger checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'prov ledger checkpoints are append-only'); END;
)sql";

// Schema version 2: replay detection on the envelope's content (entry_contents, one row per
// entry: envelope_content_digest of its envelope) and the ledger's metadata (ledger_meta: the
// pinned checkpoint key). Both append-only; a metadata value, once written, is permanent.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE entry_contents(
  idx INTEGER PRIMARY KEY,
  content_sha256 BLOB NOT NULL
) STRICT;
CREATE INDEX entry_contents_by_digest ON entry_contents(content_sha256);
CREATE TABLE ledger_meta(
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TRIGGER contents_no_update BEFORE UPDATE ON entry_contents
  BEGIN SELECT RAISE(ABORT, 'prov ledger entries are append-only'); END;
CREATE TRIGGER contents_no_delete BEFORE DELETE ON entry_contents
  BEGIN SELECT RAISE(ABORT, 'prov ledger entries are append-only'); END;
CREATE TRIGGER meta_no_update BEFORE UPDATE ON ledger_meta
  BEGIN SELECT RAISE(ABORT, 'prov ledger metadata is write-once'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON ledger_meta
  BEGIN SELECT RAISE(ABORT, 'prov ledger metadata is write-once'); END;
)sql";

// Migrations: kMigrations[v] upgrades schema version v to v + 1 (index 0 creates version 1). A
// fresh ledger runs all of them in order, so a migrated file and a new one hold the same schema
// text (verify compares it: expected_schema()).
constexpr const char* kMigrations[] = {kSchemaV1, kSchemaV2};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kLedgerSchemaVersion,
              "one migration per schema version");

// Runs a one-row integer query (a PRAGMA or a count) on `db`; -1 with *rc set when it fails.
int64_t query_int(sqlite3* db, const char* sql, int* rc) {
  detail::StmtPtr st;
  *rc = internal::prepare(db, sql, &st);
  if (*rc != SQLITE_OK) return -1;
  *rc = sqlite3_step(st.get());
  return *rc == SQLITE_ROW ? sqlite3_column_int64(st.get(), 0) : -1;
}

}  // namespace

namespace detail {

void SqliteClose::operator()(sqlite3* db) const noexcept {
  sqlite3_close_v2(db);
}

void SqliteFinalize::operator()(sqlite3_stmt* st) const noexcept {
  sqlite3_finalize(st);
}

}  // namespace detail

namespace internal {

Status sqlite_error(int rc, std::string msg) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
    case SQLITE_SCHEMA:
      return corrupt(std::move(msg));
    case SQLITE_CONSTRAINT:
      return invalid_argument(std::move(msg));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return io_error(std::move(msg));
    default:
      return internal_error(msg + " (SQLite code " + std::to_string(rc) + ")");
  }
}

int open_connection(const std::string& path, int flags, detail::SqlitePtr* out) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  out->reset(db);
  if (rc != SQLITE_OK) return rc;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // Defensive settings: no trusted schema tricks, foreign content cannot run functions.
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  return SQLITE_OK;
}

}  // namespace internal

Ledger::~Ledger() = default;

Status Ledger::sqlite_status(int rc, const std::string& what) const {
  return internal::sqlite_error(
      rc, path_ + ": " + what + ": " + (db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc)));
}

Status Ledger::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return sqlite_status(rc, std::string("executing ") + sql);
  return Status::ok();
}

Result<sqlite3_stmt*> Ledger::stmt(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second.get();
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  detail::StmtPtr st(raw);
  if (rc != SQLITE_OK) return sqlite_status(rc, "preparing a statement");
  return stmts_.emplace(sql, std::move(st)).first->second.get();
}

// BEGIN IMMEDIATE takes the write lock up front; SQLITE_BUSY beyond the busy timeout is retried
// so that it never reaches the caller while another writer makes progress.
Status Ledger::begin_immediate() {
  auto deadline = std::chrono::steady_clock::now() + kBusyRetryFor;
  for (int attempt = 0;; ++attempt) {
    int rc = sqlite3_exec(db_.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return Status::ok();
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) {
      return sqlite_status(rc, "starting a write transaction");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return io_error(path_ + ": the ledger stayed locked by another writer for 2 minutes");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + attempt % 10));
  }
}

Status Ledger::commit() {
  auto deadline = std::chrono::steady_clock::now() + kBusyRetryFor;
  for (;;) {
    int rc = sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return Status::ok();
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() > deadline) {
      Status st = sqlite_status(rc, "committing");
      rollback();
      return st;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void Ledger::rollback() {
  if (!sqlite3_get_autocommit(db_.get())) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Result<std::unique_ptr<Ledger>> Ledger::init(const std::string& path,
                                             const LedgerOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    return invalid_argument(path + ": already exists; refusing to initialise over it");
  }
  return open(path, true, options);
}

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& path, bool create,
                                             const LedgerOptions& options) {
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && !create) return not_found(path + ": no such ledger (create it with init)");
  std::unique_ptr<Ledger> l(new Ledger(path, options));
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = internal::open_connection(path, flags, &l->db_);
  if (rc != SQLITE_OK) return l->sqlite_status(rc, "opening");
  PROV_RETURN_IF_ERROR(l->setup());
  return l;
}

Status Ledger::setup() {
  // journal_mode=WAL needs a lock when switching; retry on BUSY like writes.
  auto deadline = std::chrono::steady_clock::now() + kBusyRetryFor;
  for (;;) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_.get(), "PRAGMA journal_mode=WAL", nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc == SQLITE_OK) break;
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() > deadline) {
      return sqlite_status(rc, "opening (is this a prov ledger?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  PROV_RETURN_IF_ERROR(exec("PRAGMA synchronous=FULL"));
  PROV_RETURN_IF_ERROR(exec("PRAGMA foreign_keys=ON"));
  PROV_RETURN_IF_ERROR(begin_immediate());
  Status s = check_schema_version();
  if (!s.is_ok()) {
    rollback();
    return s;
  }
  return commit();
}

// Inside the setup transaction: refuses newer and foreign files, migrates older ones, and checks
// that every table is there.
Status Ledger::check_schema_version() {
  int rc = SQLITE_OK;
  int64_t version = query_int(db_.get(), "PRAGMA user_version", &rc);
  if (version < 0) return sqlite_status(rc, "reading the schema version");
  if (version > kLedgerSchemaVersion) {
    return unsupported(path_ + ": ledger schema version " + std::to_string(version) +
                       " was created by a newer prov; upgrade");
  }
  if (version == 0) {
    // A version-0 file must be empty: anything else is not ours.
    int64_t objects = query_int(db_.get(), "SELECT count(*) FROM sqlite_schema", &rc);
    if (objects < 0) return sqlite_status(rc, "reading the schema");
    if (objects != 0) {
      return corrupt(path_ + ": not a prov ledger (schema version 0 with " +
                     std::to_string(objects) + " objects)");
    }
  }
  for (int64_t v = version; v < kLedgerSchemaVersion; ++v) {
    Status s = exec(kMigrations[v]);
    // Version 2 indexes the content of the entries already there.
    if (s.is_ok() && v + 1 == 2) s = backfill_entry_contents();
    if (!s.is_ok())
      return s.with_context("migrating the schema to version " + std::to_string(v + 1));
  }
  if (version != kLedgerSchemaVersion) {
    std::string pragma = "PRAGMA user_version=" + std::to_string(kLedgerSchemaVersion);
    PROV_RETURN_IF_ERROR(exec(pragma.c_str()));
  }
  // The tables we rely on must all be there.
  int64_t tables = query_int(db_.get(),
                             "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                             "('entries','entry_subjects','merkle_nodes','checkpoints',"
                             "'entry_contents','ledger_meta')",
                             &rc);
  if (tables < 0) return sqlite_status(rc, "reading the schema");
  if (tables != 6) return corrupt(path_ + ": not a prov ledger (tables missing)");
  return assign_origin();
}

// The ledger's own origin, drawn once: at init, or on the first open of a ledger made before
// origins were per ledger (the setup transaction makes the draw and the write atomic).
Status Ledger::assign_origin() {
  PROV_ASSIGN_OR_RETURN(std::string origin, meta_value(internal::kMetaOrigin));
  if (!origin.empty()) return Status::ok();
  unsigned char id[16];
  if (RAND_bytes(id, sizeof id) != 1) {
    return internal_error(path_ + ": no randomness for the ledger's origin id");
  }
  return meta_insert(internal::kMetaOrigin, default_origin(path_, to_hex(id, sizeof id)));
}

// Migration to version 2: one entry_contents row per existing entry. An envelope that no longer
// parses gets the digest of its bytes, so the file still opens and verify names the entry.
Status Ledger::backfill_entry_contents() {
  detail::StmtPtr sel, ins;
  int rc = internal::prepare(db_.get(), "SELECT idx, envelope FROM entries ORDER BY idx", &sel);
  if (rc != SQLITE_OK) return sqlite_status(rc, "reading entries");
  rc = internal::prepare(db_.get(),
                         "INSERT INTO entry_contents(idx, content_sha256) VALUES(?1, ?2)", &ins);
  if (rc != SQLITE_OK) return sqlite_status(rc, "preparing the content index");
  while ((rc = sqlite3_step(sel.get())) == SQLITE_ROW) {
    std::string envelope = internal::column_blob(sel.get(), 1);
    auto content = envelope_content_digest(envelope);
    Digest d = content.is_ok() ? *content : sha256(envelope);
    sqlite3_bind_int64(ins.get(), 1, sqlite3_column_int64(sel.get(), 0));
    sqlite3_bind_blob(ins.get(), 2, d.data(), 32, SQLITE_TRANSIENT);
    int irc = sqlite3_step(ins.get());
    sqlite3_reset(ins.get());
    if (irc != SQLITE_DONE) return sqlite_status(irc, "indexing the content of an entry");
  }
  if (rc != SQLITE_DONE) return sqlite_status(rc, "reading entries");
  return Status::ok();
}

Result<std::string> Ledger::meta_value(const char* name) {
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st, stmt("SELECT value FROM ledger_meta WHERE name = ?1"));
  Reset r{st};
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return sqlite_status(rc, std::string("reading ledger_meta ") + name);
  return internal::column_text(st, 0);
}

Status Ledger::meta_insert(const char* name, const std::string& value) {
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st,
                        stmt("INSERT INTO ledger_meta(name, value) VALUES(?1, ?2)"));
  Reset r{st};
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return sqlite_status(rc, std::string("writing ledger_meta ") + name);
  return Status::ok();
}

namespace internal {

Result<std::vector<SchemaObject>> read_schema(sqlite3* db) {
  auto fail = [db](int rc) {
    return sqlite_error(rc, std::string("reading the schema: ") + sqlite3_errmsg(db));
  };
  detail::StmtPtr st, cols;
  int rc = prepare(db,
                   "SELECT type, name, coalesce(sql, '') FROM sqlite_schema "
                   "WHERE name NOT LIKE 'sqlite^_%' ESCAPE '^' ORDER BY name",
                   &st);
  if (rc != SQLITE_OK) return fail(rc);
  rc = prepare(db, "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
               &cols);
  if (rc != SQLITE_OK) return fail(rc);
  std::vector<SchemaObject> out;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    SchemaObject o;
    o.type = column_text(st.get(), 0);
    o.name = column_text(st.get(), 1);
    o.sql = column_text(st.get(), 2);
    if (o.type == "table") {
      sqlite3_bind_text(cols.get(), 1, o.name.data(), static_cast<int>(o.name.size()),
                        SQLITE_TRANSIENT);
      int crc;
      while ((crc = sqlite3_step(cols.get())) == SQLITE_ROW) {
        o.columns.push_back(column_text(cols.get(), 0) + " " + column_text(cols.get(), 1) +
                            (sqlite3_column_int(cols.get(), 2) ? " NOT NULL" : "") +
                            (sqlite3_column_int(cols.get(), 3) ? " PRIMARY KEY" : ""));
      }
      sqlite3_reset(cols.get());
      if (crc != SQLITE_DONE) return fail(crc);
    }
    out.push_back(std::move(o));
  }
  if (rc != SQLITE_DONE) return fail(rc);
  return out;
}

Result<const std::vector<SchemaObject>*> expected_schema() {
  static const Result<std::vector<SchemaObject>> schema =
      []() -> Result<std::vector<SchemaObject>> {
    detail::SqlitePtr db;
    int rc = open_connection(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);
    if (rc != SQLITE_OK) return sqlite_error(rc, "opening an in-memory database");
    for (const char* sql : kMigrations) {
      char* err = nullptr;
      rc = sqlite3_exec(db.get(), sql, nullptr, nullptr, &err);
      std::string msg = err ? err : "";
      sqlite3_free(err);
      if (rc != SQLITE_OK) return internal_error("building the expected ledger schema: " + msg);
    }
    return read_schema(db.get());
  }();
  if (!schema.is_ok()) return schema.status();
  return &*schema;
}

}  // namespace internal

// The first step of verify: the schema is prov's. Every expected table (with its columns), index
// and trigger is present with prov's SQL, and no trigger or view of anyone else's is there (a
// foreign trigger could silently drop or rewrite appends). Extra tables and indexes are tolerated.
Status Ledger::verify_schema() {
  PROV_ASSIGN_OR_RETURN(const std::vector<internal::SchemaObject>* expected,
                        internal::expected_schema());
  PROV_ASSIGN_OR_RETURN(std::vector<internal::SchemaObject> actual,
                        internal::read_schema(db_.get()));
  std::map<std::string, const internal::SchemaObject*> by_name;
  for (const auto& o : actual) by_name[o.name] = &o;
  const std::string where = path_ + ": schema: ";
  for (const auto& e : *expected) {
    auto it = by_name.find(e.name);
    if (it == by_name.end()) {
      return corrupt(where + e.type + " '" + e.name + "' is missing" +
                     (e.type == "trigger" ? " (an append-only guard was dropped)" : ""));
    }
    const internal::SchemaObject& a = *it->second;
    if (a.type != e.type) {
      return corrupt(where + "'" + e.name + "' is a " + a.type + ", expected a " + e.type);
    }
    for (const auto& c : e.columns) {
      if (std::find(a.columns.begin(), a.columns.end(), c) == a.columns.end()) {
        return corrupt(where + "table '" + e.name + "' lacks column '" + c + "'");
      }
    }
    for (const auto& c : a.columns) {
      if (std::find(e.columns.begin(), e.columns.end(), c) == e.columns.end()) {
        return corrupt(where + "table '" + e.name + "' has an unexpected column '" + c + "'");
      }
    }
    if (a.sql != e.sql) {
      return corrupt(where + e.type + " '" + e.name + "' was modified (its SQL is not prov's" +
                     (e.type == "trigger" ? ": an append-only guard was changed)" : ")"));
    }
  }
  std::set<std::string> known;
  for (const auto& e : *expected) known.insert(e.name);
  for (const auto& a : actual) {
    if ((a.type == "trigger" || a.type == "view") && !known.count(a.name)) {
      return corrupt(where + "unexpected " + a.type + " '" + a.name + "' (not prov's)");
    }
  }
  int rc = SQLITE_OK;
  int64_t version = query_int(db_.get(), "PRAGMA user_version", &rc);
  if (version != kLedgerSchemaVersion) {
    return corrupt(where + "user_version is " + std::to_string(version) + ", expected " +
                   std::to_string(kLedgerSchemaVersion));
  }
  return Status::ok();
}

Result<Hash> Ledger::Source::perfect_subtree(int level, uint64_t index) {
  sqlite3_stmt* st = nullptr;
  if (level == 0) {
    PROV_ASSIGN_OR_RETURN(st, l_->stmt("SELECT leaf_hash FROM entries WHERE idx = ?1"));
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(index));
  } else {
    PROV_ASSIGN_OR_RETURN(st,
                          l_->stmt("SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2"));
    sqlite3_bind_int(st, 1, level);
    sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(index));
  }
  Reset r{st};
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
    return internal::to_hash(sqlite3_column_blob(st, 0), 32);
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return l_->sqlite_status(rc, "reading tree node");
  return corrupt(l_->path_ + ": tree node (" + std::to_string(level) + ", " +
                 std::to_string(index) + ") is missing or malformed");
}

}  // namespace prov::store
