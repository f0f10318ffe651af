#include "store/ledger.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <thread>

namespace prov::store {

namespace {

constexpr char kLeafPrefix[] = "prov-ledger-entry-v1\n";
constexpr int kBusyTimeoutMs = 5000;
constexpr auto kBusyRetryFor = std::chrono::seconds(120);

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

// Migrations: kMigrations[v] upgrades schema version v to v + 1 (index 0 creates version 1).
constexpr const char* kMigrations[] = {kSchemaV1};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kLedgerSchemaVersion,
              "one migration per schema version");

std::string now_utc() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(us / 1000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[96];  // sized for any int fields, so no truncation is possible
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(us % 1000000));
  return buf;
}

Hash to_hash(const void* p, int n) {
  Hash h{};
  if (p != nullptr && n == 32) std::memcpy(h.data(), p, 32);
  return h;
}

std::string column_text(sqlite3_stmt* st, int i) {
  const unsigned char* t = sqlite3_column_text(st, i);
  return t ? std::string(reinterpret_cast<const char*>(t),
                         static_cast<size_t>(sqlite3_column_bytes(st, i)))
           : std::string();
}

std::string column_blob(sqlite3_stmt* st, int i) {
  const void* b = sqlite3_column_blob(st, i);
  int n = sqlite3_column_bytes(st, i);
  return b ? std::string(static_cast<const char*>(b), static_cast<size_t>(n)) : std::string();
}

// Binds text, or NULL when empty.
void bind_text_or_null(sqlite3_stmt* st, int i, const std::string& s) {
  if (s.empty()) {
    sqlite3_bind_null(st, i);
  } else {
    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
}

// Resets a statement on scope exit so it never holds a read lock.
struct Reset {
  sqlite3_stmt* st;
  ~Reset() {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
};

std::string string_at(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return (it != obj.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

}  // namespace

std::string entry_leaf_data(const std::string& created_at, const std::string& envelope) {
  std::string out = kLeafPrefix;
  out += created_at;
  out += '\n';
  out += envelope;
  return out;
}

std::string normalize_digest(const std::string& digest) {
  std::string d = digest;
  for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (d.find(':') == std::string::npos && d.size() == 64) d = "sha256:" + d;
  return d;
}

namespace {

// The Statement fields of an already parsed envelope (see parse_statement_envelope).
Result<StatementFields> statement_fields(const DsseEnvelope& env) {
  if (env.payload_type != kInTotoPayloadType) {
    return corrupt("envelope payloadType is '" + env.payload_type + "', expected '" +
                   kInTotoPayloadType + "'");
  }
  nlohmann::json j = nlohmann::json::parse(env.payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return corrupt("envelope payload is not a JSON object (in-toto Statement)");
  }
  std::string type = string_at(j, "_type");
  if (type.rfind("https://in-toto.io/Statement/", 0) != 0) {
    return corrupt("payload _type '" + type + "' is not an in-toto Statement");
  }
  auto subj = j.find("subject");
  if (subj == j.end() || !subj->is_array() || subj->empty()) {
    return corrupt("in-toto Statement has no subject");
  }
  StatementFields f;
  for (const auto& s : *subj) {
    if (!s.is_object()) return corrupt("in-toto subject is not an object");
    auto dig = s.find("digest");
    if (dig == s.end() || !dig->is_object() || dig->empty()) {
      return corrupt("in-toto subject has no digest");
    }
    auto pick = dig->find("sha256");
    if (pick == dig->end()) pick = dig->begin();
    if (!pick->is_string() || pick->get<std::string>().empty()) {
      return corrupt("in-toto subject digest value is not a string");
    }
    f.subjects.push_back(normalize_digest(pick.key() + ":" + pick->get<std::string>()));
  }
  auto pred = j.find("predicate");
  if (pred != j.end() && pred->is_object()) {
    auto verdict = pred->find("verdict");
    if (verdict != pred->end() && verdict->is_object()) {
      f.relation = string_at(*verdict, "relation");
      f.parent_digest = string_at(*verdict, "parent_digest");
    }
    if (f.relation.empty()) f.relation = string_at(*pred, "relation");
    if (f.parent_digest.empty()) f.parent_digest = string_at(*pred, "parent_digest");
  }
  if (!f.parent_digest.empty()) f.parent_digest = normalize_digest(f.parent_digest);
  return f;
}

// What dsse_verify checks, with the key id computed once by the caller (deriving it from the key
// costs more than the signature check): some signature whose keyid is empty or `key_id` verifies
// under `key` over PAE(type, payload).
Status check_envelope_signature(const DsseEnvelope& env, const PublicKey& key,
                                const std::string& key_id) {
  std::string pae = dsse_pae(env.payload_type, env.payload);
  for (const auto& s : env.signatures) {
    if (!s.keyid.empty() && s.keyid != key_id) continue;
    if (key.verify(pae, s.sig).is_ok()) return Status::ok();
  }
  return invalid_argument("DSSE: no signature verifies under key " + key_id.substr(0, 16) + " (" +
                          std::to_string(env.signatures.size()) + " signature(s) present)");
}

// Parses (and, with a signer, signature-checks) one envelope for appending.
Result<StatementFields> admit_envelope(const std::string& envelope, const PublicKey* signer,
                                       const std::string& signer_id) {
  PROV_ASSIGN_OR_RETURN(DsseEnvelope env, dsse_parse(envelope));
  if (signer != nullptr) PROV_RETURN_IF_ERROR(check_envelope_signature(env, *signer, signer_id));
  return statement_fields(env);
}

// The right edge of the tree while one transaction appends consecutive entries: per level, the
// last node stored (level 0: leaves), so that completing a parent needs no read-back. Valid only
// inside the transaction that computed it (a rolled-back batch leaves nothing behind), hence
// scoped to one append_batch / merge call on the calling thread (a Ledger is used by one thread
// at a time).
struct EdgeNode {
  bool valid = false;
  uint64_t idx = 0;
  Hash hash{};
};
struct EdgeScope {
  const void* owner;
  std::vector<EdgeNode> nodes;
  EdgeScope* saved;
};
thread_local EdgeScope* tl_edge = nullptr;
class ScopedEdge {
 public:
  explicit ScopedEdge(const void* owner) : scope_{owner, {}, tl_edge} { tl_edge = &scope_; }
  ~ScopedEdge() { tl_edge = scope_.saved; }
  ScopedEdge(const ScopedEdge&) = delete;
  ScopedEdge& operator=(const ScopedEdge&) = delete;

 private:
  EdgeScope scope_;
};

// PRAGMA integrity_check(20) on `db`: OK, or kCorrupt listing the problems.
Status run_integrity_check(sqlite3* db, const std::string& path) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check(20)", -1, &st, nullptr);
  auto fail = [&](int code) {
    std::string msg = path + ": integrity check: " + sqlite3_errmsg(db);
    switch (code & 0xff) {
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
      case SQLITE_FORMAT:
      case SQLITE_SCHEMA:
        return corrupt(msg);
      case SQLITE_IOERR:
      case SQLITE_CANTOPEN:
      case SQLITE_FULL:
      case SQLITE_READONLY:
      case SQLITE_PERM:
        return io_error(msg);
      default:
        return internal_error(msg + " (SQLite code " + std::to_string(code) + ")");
    }
  };
  if (rc != SQLITE_OK) return fail(rc);
  std::string problems;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::string line = column_text(st, 0);
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return fail(rc);
  if (!problems.empty()) return corrupt(path + ": SQLite integrity check failed: " + problems);
  return Status::ok();
}

// Runs run_integrity_check on a read-only connection of its own in a background thread. When the
// connection or the thread cannot be had, started() is false and the caller checks inline.
class IntegrityCheck {
 public:
  IntegrityCheck() = default;
  IntegrityCheck(const IntegrityCheck&) = delete;
  IntegrityCheck& operator=(const IntegrityCheck&) = delete;
  ~IntegrityCheck() { finish(); }

  void start(const std::string& path) {
    if (sqlite3_threadsafe() == 0 || std::thread::hardware_concurrency() < 2) return;
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      sqlite3_close_v2(db_);
      db_ = nullptr;
      return;
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    try {
      thread_ = std::thread([this, path] { result_ = run_integrity_check(db_, path); });
    } catch (const std::system_error&) {
      sqlite3_close_v2(db_);
      db_ = nullptr;
    }
  }
  bool started() const { return db_ != nullptr; }
  Status finish() {
    if (thread_.joinable()) thread_.join();
    if (db_ != nullptr) {
      sqlite3_close_v2(db_);
      db_ = nullptr;
      done_ = true;
    }
    return done_ ? result_ : Status::ok();
  }

 private:
  sqlite3* db_ = nullptr;
  std::thread thread_;
  Status result_ = Status::ok();
  bool done_ = false;
};

// Rows read for verification, checked away from the SQLite connection.
struct EntryRow {
  LedgerEntry entry;
  std::string envelope_sha256;       // the stored digest column
  Status read_error = Status::ok();  // the row could not be read into an entry
};
struct EntryBatch {
  uint64_t first = 0;  // the index the first row must have
  std::vector<EntryRow> rows;
  std::vector<Hash> leaves;       // filled by the check, in order
  Status problem = Status::ok();  // the first problem in the batch
  uint64_t signatures_checked = 0;
  bool done = false;
};
constexpr size_t kVerifyBatch = 1024;

// The per-entry checks of Ledger::verify: contiguous index, leaf hash recomputed from the stored
// bytes, envelope digest column, envelope signatures (when keys are given), and the indexed
// columns re-derived from the Statement. Stops at the first problem.
void check_batch(EntryBatch& b, const std::string& path, const VerifyOptions& options) {
  b.leaves.reserve(b.rows.size());
  for (size_t i = 0; i < b.rows.size(); ++i) {
    const EntryRow& row = b.rows[i];
    if (!row.read_error.is_ok()) {
      b.problem = row.read_error;
      return;
    }
    const LedgerEntry& e = row.entry;
    uint64_t expect = b.first + i;
    std::string where = path + ": entry " + std::to_string(e.index);
    if (e.index != expect) {
      b.problem = corrupt(where + ": expected index " + std::to_string(expect));
      return;
    }
    Hash leaf = leaf_hash(entry_leaf_data(e.created_at, e.envelope));
    if (leaf != e.leaf_hash) {
      b.problem = corrupt(where + ": the stored envelope or time does not match its leaf hash");
      return;
    }
    Digest ed = sha256(e.envelope);
    if (row.envelope_sha256.size() != 32 ||
        std::memcmp(row.envelope_sha256.data(), ed.data(), 32) != 0) {
      b.problem = corrupt(where + ": envelope digest column does not match the envelope");
      return;
    }
    if (!options.envelope_keys.empty()) {
      bool ok = false;
      for (const PublicKey* k : options.envelope_keys) {
        if (k != nullptr && dsse_verify(e.envelope, *k).is_ok()) {
          ok = true;
          break;
        }
      }
      if (!ok) {
        b.problem =
            invalid_argument(where + ": no envelope signature verifies under the given keys");
        return;
      }
      ++b.signatures_checked;
    }
    auto f = parse_statement_envelope(e.envelope);
    if (!f.is_ok()) {
      b.problem = f.status().with_context(where);
      return;
    }
    std::vector<std::string> subjects(f->subjects.begin(), f->subjects.end());
    std::sort(subjects.begin(), subjects.end());
    subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());
    if (e.subject_digest != f->subjects[0] || e.subjects != subjects || e.relation != f->relation ||
        e.parent_digest != f->parent_digest) {
      b.problem = corrupt(where + ": indexed columns do not match the envelope");
      return;
    }
    b.leaves.push_back(leaf);
  }
}

// Checks batches on worker threads (or inline when none can be started) and hands the results
// back in submission order.
class EntryChecker {
 public:
  EntryChecker(const std::string& path, const VerifyOptions& options)
      : path_(path), options_(options) {
    size_t n = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 8);
    for (size_t t = 0; t < n && n > 1; ++t) {
      try {
        workers_.emplace_back([this] { work(); });
      } catch (const std::system_error&) {
        break;
      }
    }
  }
  ~EntryChecker() { stop(); }
  EntryChecker(const EntryChecker&) = delete;
  EntryChecker& operator=(const EntryChecker&) = delete;

  // Queues a batch; consumes finished batches in order while too many are outstanding. Returns
  // the first problem of a consumed batch.
  Status submit(std::shared_ptr<EntryBatch> b, MemoryTree* tree, VerifyReport* report) {
    if (b->rows.empty()) return Status::ok();
    if (workers_.empty()) {
      check_batch(*b, path_, options_);
      return consume(*b, tree, report);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(b);
      pending_.push_back(b);
    }
    work_cv_.notify_one();
    while (pending_.size() > 2 * workers_.size()) {
      PROV_RETURN_IF_ERROR(consume_oldest(tree, report));
    }
    return Status::ok();
  }
  Status drain(MemoryTree* tree, VerifyReport* report) {
    while (!pending_.empty()) PROV_RETURN_IF_ERROR(consume_oldest(tree, report));
    return Status::ok();
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      queue_.clear();
    }
    work_cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

 private:
  void work() {
    for (;;) {
      std::shared_ptr<EntryBatch> b;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        b = queue_.front();
        queue_.pop_front();
      }
      check_batch(*b, path_, options_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        b->done = true;
      }
      done_cv_.notify_all();
    }
  }
  Status consume_oldest(MemoryTree* tree, VerifyReport* report) {
    std::shared_ptr<EntryBatch> b = pending_.front();
    pending_.pop_front();
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [&] { return b->done; });
    }
    return consume(*b, tree, report);
  }
  static Status consume(EntryBatch& b, MemoryTree* tree, VerifyReport* report) {
    for (const Hash& h : b.leaves) tree->append_leaf_hash(h);
    report->envelope_signatures_checked += b.signatures_checked;
    return b.problem;
  }

  const std::string& path_;
  const VerifyOptions& options_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::shared_ptr<EntryBatch>> queue_;    // waiting for a worker
  std::deque<std::shared_ptr<EntryBatch>> pending_;  // submitted, not yet consumed (main thread)
  bool stop_ = false;
};

// Envelopes per worker thread below which a batch is admitted on the calling thread alone.
constexpr size_t kEnvelopesPerThread = 64;

}  // namespace

Result<StatementFields> parse_statement_envelope(const std::string& envelope) {
  PROV_ASSIGN_OR_RETURN(DsseEnvelope env, dsse_parse(envelope));
  return statement_fields(env);
}

// Serves perfect-subtree hashes from the ledger: leaves from entries, the rest from merkle_nodes.
class Ledger::Source : public SubtreeSource {
 public:
  explicit Source(Ledger* l) : l_(l) {}
  Result<Hash> perfect_subtree(int level, uint64_t index) override {
    sqlite3_stmt* st = nullptr;
    if (level == 0) {
      PROV_ASSIGN_OR_RETURN(st, l_->stmt("SELECT leaf_hash FROM entries WHERE idx = ?1"));
      sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(index));
    } else {
      PROV_ASSIGN_OR_RETURN(
          st, l_->stmt("SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2"));
      sqlite3_bind_int(st, 1, level);
      sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(index));
    }
    Reset r{st};
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
      return to_hash(sqlite3_column_blob(st, 0), 32);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return l_->sqlite_status(rc, "reading tree node");
    return corrupt(l_->path_ + ": tree node (" + std::to_string(level) + ", " +
                   std::to_string(index) + ") is missing or malformed");
  }

 private:
  Ledger* l_;
};

Ledger::~Ledger() {
  for (auto& kv : stmts_) sqlite3_finalize(kv.second);
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Status Ledger::sqlite_status(int rc, const std::string& what) const {
  std::string msg = path_ + ": " + what + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
    case SQLITE_SCHEMA:
      return corrupt(msg);
    case SQLITE_CONSTRAINT:
      return invalid_argument(msg);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return io_error(msg);
    default:
      return internal_error(msg + " (SQLite code " + std::to_string(rc) + ")");
  }
}

Status Ledger::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return sqlite_status(rc, std::string("executing ") + sql);
  return Status::ok();
}

Result<sqlite3_stmt*> Ledger::stmt(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  if (rc != SQLITE_OK) return sqlite_status(rc, "preparing a statement");
  stmts_[sql] = st;
  return st;
}

// BEGIN IMMEDIATE takes the write lock up front; SQLITE_BUSY beyond the busy timeout is retried
// so that it never reaches the caller while another writer makes progress.
Status Ledger::begin_immediate() {
  auto deadline = std::chrono::steady_clock::now() + kBusyRetryFor;
  for (int attempt = 0;; ++attempt) {
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
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
    int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
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
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Result<std::unique_ptr<Ledger>> Ledger::init(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    return invalid_argument(path + ": already exists; refusing to initialise over it");
  }
  return open(path, true);
}

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& path, bool create) {
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && !create) return not_found(path + ": no such ledger (create it with init)");
  std::unique_ptr<Ledger> l(new Ledger(path));
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &l->db_, flags, nullptr);
  if (rc != SQLITE_OK) return l->sqlite_status(rc, "opening");
  sqlite3_extended_result_codes(l->db_, 1);
  sqlite3_busy_timeout(l->db_, kBusyTimeoutMs);
  PROV_RETURN_IF_ERROR(l->setup(!exists));
  return l;
}

Status Ledger::setup(bool fresh) {
  // Defensive settings: no trusted schema tricks, foreign content cannot run functions.
  sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  // journal_mode=WAL needs a lock when switching; retry on BUSY like writes.
  auto deadline = std::chrono::steady_clock::now() + kBusyRetryFor;
  for (;;) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, &err);
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
  auto fail = [this](Status s) {
    rollback();
    return s;
  };
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &st, nullptr);
  if (rc != SQLITE_OK) return fail(sqlite_status(rc, "reading the schema version"));
  rc = sqlite3_step(st);
  int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  if (version < 0) return fail(sqlite_status(rc, "reading the schema version"));
  if (version > kLedgerSchemaVersion) {
    return fail(unsupported(path_ + ": ledger schema version " + std::to_string(version) +
                            " was created by a newer prov; upgrade"));
  }
  if (version == 0) {
    // A version-0 file must be empty: anything else is not ours.
    rc = sqlite3_prepare_v2(db_, "SELECT count(*) FROM sqlite_schema", -1, &st, nullptr);
    if (rc != SQLITE_OK) return fail(sqlite_status(rc, "reading the schema"));
    rc = sqlite3_step(st);
    int64_t objects = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (objects != 0) {
      return fail(corrupt(path_ + ": not a prov ledger (schema version 0 with " +
                          std::to_string(objects) + " objects)"));
    }
  }
  for (int v = version; v < kLedgerSchemaVersion; ++v) {
    Status s = exec(kMigrations[v]);
    if (!s.is_ok())
      return fail(s.with_context("migrating the schema to version " + std::to_string(v + 1)));
  }
  if (version != kLedgerSchemaVersion) {
    std::string pragma = "PRAGMA user_version=" + std::to_string(kLedgerSchemaVersion);
    Status s = exec(pragma.c_str());
    if (!s.is_ok()) return fail(s);
  }
  // The tables we rely on must all be there.
  rc = sqlite3_prepare_v2(db_,
                          "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                          "('entries','entry_subjects','merkle_nodes','checkpoints')",
                          -1, &st, nullptr);
  if (rc != SQLITE_OK) return fail(sqlite_status(rc, "reading the schema"));
  rc = sqlite3_step(st);
  int64_t tables = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  if (tables != 4) return fail(corrupt(path_ + ": not a prov ledger (tables missing)"));
  return commit();
}

Result<uint64_t> Ledger::size_in_txn() {
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st, stmt("SELECT max(idx) FROM entries"));
  Reset r{st};
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return sqlite_status(rc, "reading the tree size");
  if (sqlite3_column_type(st, 0) == SQLITE_NULL) return uint64_t{0};
  sqlite3_int64 m = sqlite3_column_int64(st, 0);
  if (m < 0) return corrupt(path_ + ": negative entry index");
  return static_cast<uint64_t>(m) + 1;
}

Result<uint64_t> Ledger::size() {
  return size_in_txn();
}

Status Ledger::insert_entry(uint64_t index, const std::string& envelope,
                            const std::string& created_at, const StatementFields& fields) {
  Hash leaf = leaf_hash(entry_leaf_data(created_at, envelope));
  Digest env_digest = sha256(envelope);
  PROV_ASSIGN_OR_RETURN(
      sqlite3_stmt * ins,
      stmt("INSERT INTO entries(idx, envelope, envelope_sha256, leaf_hash, subject_digest, "
           "relation, parent_digest, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  {
    Reset r{ins};
    sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(index));
    sqlite3_bind_blob(ins, 2, envelope.data(), static_cast<int>(envelope.size()), SQLITE_STATIC);
    sqlite3_bind_blob(ins, 3, env_digest.data(), 32, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 4, leaf.data(), 32, SQLITE_STATIC);
    sqlite3_bind_text(ins, 5, fields.subjects[0].data(),
                      static_cast<int>(fields.subjects[0].size()), SQLITE_STATIC);
    bind_text_or_null(ins, 6, fields.relation);
    bind_text_or_null(ins, 7, fields.parent_digest);
    sqlite3_bind_text(ins, 8, created_at.data(), static_cast<int>(created_at.size()),
                      SQLITE_STATIC);
    int rc = sqlite3_step(ins);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
      return invalid_argument(path_ + ": this envelope is already in the ledger (replay refused)");
    }
    if (rc != SQLITE_DONE) return sqlite_status(rc, "inserting an entry");
  }
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * sub,
                        stmt("INSERT OR IGNORE INTO entry_subjects(digest, idx) VALUES(?1, ?2)"));
  for (const auto& s : fields.subjects) {
    Reset r{sub};
    sqlite3_bind_text(sub, 1, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    sqlite3_bind_int64(sub, 2, static_cast<sqlite3_int64>(index));
    int rc = sqlite3_step(sub);
    if (rc != SQLITE_DONE) return sqlite_status(rc, "inserting a subject");
  }
  // Store every perfect subtree the new leaf completes. Node (level, i) with i odd completes its
  // parent, whose left child (level, i - 1) is the node last seen at that level when the appends
  // are consecutive (kept in `edge`, the right edge of the tree), else read from the store.
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * node,
                        stmt("INSERT INTO merkle_nodes(level, idx, hash) VALUES(?1, ?2, ?3)"));
  std::vector<EdgeNode> local_edge;
  std::vector<EdgeNode>& edge =
      (tl_edge != nullptr && tl_edge->owner == this) ? tl_edge->nodes : local_edge;
  Source source(this);
  Hash cur = leaf;
  uint64_t cur_idx = index;
  for (int level = 0; level < 63; ++level) {
    if (edge.size() <= static_cast<size_t>(level)) edge.resize(level + 1);
    EdgeNode& e = edge[level];
    if ((cur_idx & 1) == 0) {
      e = EdgeNode{true, cur_idx, cur};
      break;
    }
    Hash left;
    if (e.valid && e.idx == cur_idx - 1) {
      left = e.hash;
    } else {
      PROV_ASSIGN_OR_RETURN(left, source.perfect_subtree(level, cur_idx - 1));
    }
    e = EdgeNode{true, cur_idx, cur};
    cur = node_hash(left, cur);
    cur_idx >>= 1;
    Reset r{node};
    sqlite3_bind_int(node, 1, level + 1);
    sqlite3_bind_int64(node, 2, static_cast<sqlite3_int64>(cur_idx));
    sqlite3_bind_blob(node, 3, cur.data(), 32, SQLITE_STATIC);
    int rc = sqlite3_step(node);
    if (rc != SQLITE_DONE) return sqlite_status(rc, "inserting a tree node");
  }
  return Status::ok();
}

Result<uint64_t> Ledger::append(const std::string& envelope, const PublicKey* signer) {
  PROV_ASSIGN_OR_RETURN(auto idx, append_batch({envelope}, signer));
  return idx[0];
}

Result<std::vector<uint64_t>> Ledger::append_batch(const std::vector<std::string>& envelopes,
                                                   const PublicKey* signer) {
  // Parse (and signature-check) every envelope before taking the write lock; large batches are
  // spread over worker threads. The first failing envelope in order is reported.
  const std::string signer_id = signer != nullptr ? signer->key_id() : std::string();
  std::vector<Result<StatementFields>> admitted(envelopes.size(), StatementFields{});
  auto admit_range = [&](size_t begin, size_t step) {
    for (size_t i = begin; i < envelopes.size(); i += step) {
      admitted[i] = admit_envelope(envelopes[i], signer, signer_id);
    }
  };
  size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 8);
  threads = std::max<size_t>(1, std::min(threads, envelopes.size() / kEnvelopesPerThread));
  if (threads <= 1) {
    admit_range(0, 1);
  } else {
    // Worker t admits envelopes t, t + threads, ...; a worker that cannot be started leaves its
    // share to the calling thread.
    std::vector<std::thread> workers;
    std::vector<size_t> own{0};
    for (size_t t = 1; t < threads; ++t) {
      try {
        workers.emplace_back(admit_range, t, threads);
      } catch (const std::system_error&) {
        own.push_back(t);
      }
    }
    for (size_t t : own) admit_range(t, threads);
    for (auto& w : workers) w.join();
  }
  std::vector<StatementFields> fields;
  fields.reserve(envelopes.size());
  for (size_t i = 0; i < envelopes.size(); ++i) {
    if (!admitted[i].is_ok()) {
      return admitted[i].status().with_context("envelope " + std::to_string(i));
    }
    fields.push_back(std::move(admitted[i]).value());
  }
  admitted.clear();
  PROV_RETURN_IF_ERROR(begin_immediate());
  ScopedEdge edge(this);
  std::vector<uint64_t> out;
  auto n = size_in_txn();
  if (!n.is_ok()) {
    rollback();
    return n.status();
  }
  std::string created_at = now_utc();
  for (size_t i = 0; i < envelopes.size(); ++i) {
    Status s = insert_entry(*n + i, envelopes[i], created_at, fields[i]);
    if (!s.is_ok()) {
      rollback();
      return s;
    }
    out.push_back(*n + i);
  }
  PROV_RETURN_IF_ERROR(commit());
  return out;
}

Result<Hash> Ledger::root_at(uint64_t tree_size) {
  PROV_ASSIGN_OR_RETURN(uint64_t n, size());
  if (tree_size > n) {
    return invalid_argument("tree size " + std::to_string(tree_size) + " exceeds the ledger's " +
                            std::to_string(n) + " entries");
  }
  Source source(this);
  return tree_root(source, tree_size);
}

Result<Hash> Ledger::root() {
  PROV_RETURN_IF_ERROR(exec("BEGIN"));
  auto n = size();
  Result<Hash> r = n.is_ok() ? root_at(*n) : Result<Hash>(n.status());
  exec("COMMIT");
  return r;
}

Result<LedgerEntry> Ledger::read_entry(sqlite3_stmt* st) {
  // Columns: idx, envelope, leaf_hash, subject_digest, relation, parent_digest, created_at.
  LedgerEntry e;
  e.index = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  e.envelope = column_blob(st, 1);
  if (sqlite3_column_bytes(st, 2) != 32) {
    return corrupt(path_ + ": entry " + std::to_string(e.index) + " has a malformed leaf hash");
  }
  e.leaf_hash = to_hash(sqlite3_column_blob(st, 2), 32);
  e.subject_digest = column_text(st, 3);
  e.relation = column_text(st, 4);
  e.parent_digest = column_text(st, 5);
  e.created_at = column_text(st, 6);
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * sub,
                        stmt("SELECT digest FROM entry_subjects WHERE idx = ?1 ORDER BY digest"));
  Reset r{sub};
  sqlite3_bind_int64(sub, 1, static_cast<sqlite3_int64>(e.index));
  int rc;
  while ((rc = sqlite3_step(sub)) == SQLITE_ROW) e.subjects.push_back(column_text(sub, 0));
  if (rc != SQLITE_DONE) return sqlite_status(rc, "reading subjects");
  return e;
}

#define PROV_ENTRY_COLUMNS \
  "idx, envelope, leaf_hash, subject_digest, relation, parent_digest, created_at"

Result<LedgerEntry> Ledger::get(uint64_t index) {
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st,
                        stmt("SELECT " PROV_ENTRY_COLUMNS " FROM entries WHERE idx = ?1"));
  Reset r{st};
  sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(index));
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return not_found(path_ + ": no entry " + std::to_string(index));
  if (rc != SQLITE_ROW) return sqlite_status(rc, "reading an entry");
  return read_entry(st);
}

Result<std::string> Ledger::checkpoint(const PrivateKey& key, const std::string& origin) {
  PROV_RETURN_IF_ERROR(begin_immediate());
  auto fail = [this](Status s) {
    rollback();
    return s;
  };
  auto n = size_in_txn();
  if (!n.is_ok()) return fail(n.status());
  Source source(this);
  auto root = tree_root(source, *n);
  if (!root.is_ok()) return fail(root.status());
  Checkpoint cp;
  cp.origin = origin;
  cp.tree_size = *n;
  cp.root = *root;
  auto note = sign_checkpoint(cp, origin, key);
  if (!note.is_ok()) return fail(note.status());
  auto ins = stmt(
      "INSERT INTO checkpoints(tree_size, root, origin, note, created_at) "
      "VALUES(?1, ?2, ?3, ?4, ?5)");
  if (!ins.is_ok()) return fail(ins.status());
  sqlite3_stmt* st = *ins;
  std::string now = now_utc();
  int rc;
  {
    Reset r{st};
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(*n));
    sqlite3_bind_blob(st, 2, root->data(), 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, origin.data(), static_cast<int>(origin.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 4, note->data(), static_cast<int>(note->size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 5, now.data(), static_cast<int>(now.size()), SQLITE_STATIC);
    rc = sqlite3_step(st);
  }
  if (rc != SQLITE_DONE) return fail(sqlite_status(rc, "storing the checkpoint"));
  PROV_RETURN_IF_ERROR(commit());
  return note;
}

Result<std::vector<std::string>> Ledger::checkpoints() {
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st, stmt("SELECT note FROM checkpoints ORDER BY id"));
  Reset r{st};
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(column_text(st, 0));
  if (rc != SQLITE_DONE) return sqlite_status(rc, "reading checkpoints");
  return out;
}

Result<InclusionProof> Ledger::inclusion_proof(uint64_t index, uint64_t tree_size) {
  PROV_RETURN_IF_ERROR(exec("BEGIN"));
  struct End {
    Ledger* l;
    ~End() { l->exec("COMMIT"); }
  } end{this};
  PROV_ASSIGN_OR_RETURN(uint64_t n, size_in_txn());
  if (tree_size == 0) tree_size = n;
  if (tree_size > n) {
    return invalid_argument("tree size " + std::to_string(tree_size) + " exceeds the ledger's " +
                            std::to_string(n) + " entries");
  }
  if (index >= tree_size) {
    return invalid_argument("entry " + std::to_string(index) + " is not in a tree of " +
                            std::to_string(tree_size) + " entries");
  }
  Source source(this);
  InclusionProof p;
  p.index = index;
  p.tree_size = tree_size;
  PROV_ASSIGN_OR_RETURN(p.leaf_hash, source.perfect_subtree(0, index));
  PROV_ASSIGN_OR_RETURN(p.root, tree_root(source, tree_size));
  PROV_ASSIGN_OR_RETURN(p.path, prov::store::inclusion_proof(source, index, tree_size));
  return p;
}

Result<std::vector<Hash>> Ledger::consistency_proof(uint64_t old_size, uint64_t new_size) {
  PROV_RETURN_IF_ERROR(exec("BEGIN"));
  struct End {
    Ledger* l;
    ~End() { l->exec("COMMIT"); }
  } end{this};
  PROV_ASSIGN_OR_RETURN(uint64_t n, size_in_txn());
  if (new_size == 0) new_size = n;
  if (new_size > n) {
    return invalid_argument("tree size " + std::to_string(new_size) + " exceeds the ledger's " +
                            std::to_string(n) + " entries");
  }
  Source source(this);
  return prov::store::consistency_proof(source, old_size, new_size);
}

Result<VerifyReport> Ledger::verify(const VerifyOptions& options) {
  // The structural check runs on a second, read-only connection in a thread of its own while this
  // connection checks the content; its verdict comes first, as if it had run first.
  IntegrityCheck integrity;
  if (options.integrity_check) integrity.start(path_);
  auto integrity_verdict = [&]() -> Status {
    if (!options.integrity_check) return Status::ok();
    if (!integrity.started()) return run_integrity_check(db_, path_);
    return integrity.finish();
  };
  // One read transaction: a consistent snapshot even while others append.
  PROV_RETURN_IF_ERROR(exec("BEGIN"));
  struct End {
    Ledger* l;
    ~End() { l->exec("COMMIT"); }
  } end{this};
  VerifyReport report;
  // 1. Every entry: contiguous indexes, leaf recomputed from the stored bytes, derived columns.
  // This connection reads the rows in batches; worker threads check them; the leaves enter the
  // tree in order and the first problem in index order is reported.
  MemoryTree tree;
  {
    PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st, stmt("SELECT " PROV_ENTRY_COLUMNS
                                                  ", envelope_sha256 FROM entries ORDER BY idx"));
    Reset r{st};
    EntryChecker checker(path_, options);
    uint64_t expect = 0;
    int rc = SQLITE_ROW;
    Status problem = Status::ok(), read_problem = Status::ok();
    while (problem.is_ok() && rc == SQLITE_ROW) {
      auto batch = std::make_shared<EntryBatch>();
      batch->first = expect;
      while (batch->rows.size() < kVerifyBatch && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        EntryRow row;
        auto e = read_entry(st);
        if (e.is_ok()) {
          row.entry = std::move(e).value();
          row.envelope_sha256 = column_blob(st, 7);
        } else {
          row.read_error = e.status();
        }
        batch->rows.push_back(std::move(row));
      }
      expect += batch->rows.size();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        read_problem = sqlite_status(rc, "reading entries");
      }
      problem = checker.submit(std::move(batch), &tree, &report);
    }
    if (problem.is_ok()) problem = checker.drain(&tree, &report);
    if (problem.is_ok()) problem = read_problem;
    checker.stop();
    PROV_RETURN_IF_ERROR(integrity_verdict());
    PROV_RETURN_IF_ERROR(problem);
    // No subject row may point past the entries.
    PROV_ASSIGN_OR_RETURN(
        sqlite3_stmt * cs,
        stmt("SELECT count(*) FROM entry_subjects WHERE idx NOT IN (SELECT idx FROM entries)"));
    Reset r2{cs};
    if (sqlite3_step(cs) != SQLITE_ROW || sqlite3_column_int64(cs, 0) != 0) {
      return corrupt(path_ + ": subject rows without an entry");
    }
  }
  report.tree_size = tree.size();
  PROV_ASSIGN_OR_RETURN(report.root, tree.root());
  // 2. The cached tree nodes equal the recomputed ones, and all are present.
  {
    PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st,
                          stmt("SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx"));
    Reset r{st};
    uint64_t rows = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      int64_t level = sqlite3_column_int64(st, 0);
      int64_t idx = sqlite3_column_int64(st, 1);
      const auto& levels = tree.levels();
      if (level < 1 || static_cast<uint64_t>(level) >= levels.size() || idx < 0 ||
          static_cast<uint64_t>(idx) >= levels[level].size() || sqlite3_column_bytes(st, 2) != 32 ||
          std::memcmp(sqlite3_column_blob(st, 2), levels[level][idx].data(), 32) != 0) {
        return corrupt(path_ + ": cached tree node (" + std::to_string(level) + ", " +
                       std::to_string(idx) + ") does not match the entries");
      }
      ++rows;
    }
    if (rc != SQLITE_DONE) return sqlite_status(rc, "reading tree nodes");
    uint64_t expected = 0;
    for (size_t l = 1; l < tree.levels().size(); ++l) expected += tree.levels()[l].size();
    if (rows != expected) {
      return corrupt(path_ + ": " + std::to_string(expected - rows) + " cached tree nodes missing");
    }
  }
  // 3. Stored checkpoints: signature (when a key is given) and root at their size.
  {
    PROV_ASSIGN_OR_RETURN(
        sqlite3_stmt * st,
        stmt("SELECT id, tree_size, root, origin, note FROM checkpoints ORDER BY id"));
    Reset r{st};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      std::string where = path_ + ": checkpoint " + std::to_string(sqlite3_column_int64(st, 0));
      std::string origin = column_text(st, 3);
      std::string note = column_text(st, 4);
      auto cp = options.checkpoint_key ? verify_checkpoint(note, origin, *options.checkpoint_key)
                                       : parse_checkpoint(note);
      if (!cp.is_ok()) return cp.status().with_context(where);
      if (cp->origin != origin || sqlite3_column_int64(st, 1) < 0 ||
          cp->tree_size != static_cast<uint64_t>(sqlite3_column_int64(st, 1)) ||
          sqlite3_column_bytes(st, 2) != 32 ||
          std::memcmp(sqlite3_column_blob(st, 2), cp->root.data(), 32) != 0) {
        return corrupt(where + ": columns do not match the signed note");
      }
      if (cp->tree_size > tree.size()) {
        return corrupt(where + ": signed for " + std::to_string(cp->tree_size) +
                       " entries but the ledger has " + std::to_string(tree.size()));
      }
      PROV_ASSIGN_OR_RETURN(Hash at, tree_root(tree, cp->tree_size));
      if (at != cp->root) return corrupt(where + ": the signed root does not match the entries");
      ++report.checkpoints_checked;
    }
    if (rc != SQLITE_DONE) return sqlite_status(rc, "reading checkpoints");
    report.checkpoint_signatures_checked = options.checkpoint_key != nullptr;
  }
  // 4. An earlier checkpoint kept elsewhere: the ledger must extend it.
  if (!options.earlier_checkpoint.empty()) {
    if (options.checkpoint_key == nullptr) {
      return invalid_argument("verifying against an earlier checkpoint needs its public key");
    }
    auto parsed = parse_checkpoint(options.earlier_checkpoint);
    if (!parsed.is_ok()) return parsed.status().with_context("earlier checkpoint");
    auto cp =
        verify_checkpoint(options.earlier_checkpoint, parsed->origin, *options.checkpoint_key);
    if (!cp.is_ok()) return cp.status().with_context("earlier checkpoint");
    if (cp->tree_size > tree.size()) {
      return corrupt(path_ + ": the earlier checkpoint covers " + std::to_string(cp->tree_size) +
                     " entries but the ledger has only " + std::to_string(tree.size()) +
                     " (entries were removed)");
    }
    Source source(this);
    PROV_ASSIGN_OR_RETURN(auto proof,
                          prov::store::consistency_proof(source, cp->tree_size, tree.size()));
    if (!verify_consistency(cp->tree_size, tree.size(), cp->root, report.root, proof)) {
      return corrupt(path_ + ": the ledger is not an extension of the earlier checkpoint (size " +
                     std::to_string(cp->tree_size) + "): history was rewritten");
    }
    report.earlier_checkpoint_consistent = true;
  }
  return report;
}

Result<std::vector<LedgerEntry>> Ledger::query(const QueryFilter& filter) {
  std::string sql = "SELECT " PROV_ENTRY_COLUMNS " FROM entries e WHERE 1";
  std::vector<std::string> args;
  if (!filter.subject_digest.empty()) {
    sql += " AND EXISTS (SELECT 1 FROM entry_subjects s WHERE s.idx = e.idx AND s.digest = ?)";
    args.push_back(normalize_digest(filter.subject_digest));
  }
  if (!filter.relation.empty()) {
    sql += " AND relation = ?";
    args.push_back(filter.relation);
  }
  if (!filter.parent_digest.empty()) {
    sql += " AND parent_digest = ?";
    args.push_back(normalize_digest(filter.parent_digest));
  }
  if (!filter.since.empty()) {
    sql += " AND created_at >= ?";
    args.push_back(filter.since);
  }
  sql += " ORDER BY idx";
  if (filter.limit > 0) sql += " LIMIT " + std::to_string(filter.limit);
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
  if (rc != SQLITE_OK) return sqlite_status(rc, "preparing a query");
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(st, sqlite3_finalize);
  for (size_t i = 0; i < args.size(); ++i) {
    sqlite3_bind_text(st, static_cast<int>(i + 1), args[i].data(), static_cast<int>(args[i].size()),
                      SQLITE_TRANSIENT);
  }
  std::vector<LedgerEntry> out;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    PROV_ASSIGN_OR_RETURN(LedgerEntry e, read_entry(st));
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return sqlite_status(rc, "running a query");
  return out;
}

Result<std::vector<LedgerEntry>> Ledger::ancestors(const std::string& digest, int max_depth) {
  std::vector<LedgerEntry> out;
  std::set<std::string> seen{normalize_digest(digest)};
  std::set<uint64_t> seen_entries;
  std::vector<std::string> frontier{normalize_digest(digest)};
  for (int depth = 0; depth < max_depth && !frontier.empty(); ++depth) {
    std::vector<std::string> next;
    for (const auto& d : frontier) {
      QueryFilter f;
      f.subject_digest = d;
      PROV_ASSIGN_OR_RETURN(auto entries, query(f));
      for (auto& e : entries) {
        if (e.parent_digest.empty() || !seen_entries.insert(e.index).second) continue;
        if (seen.insert(e.parent_digest).second) next.push_back(e.parent_digest);
        out.push_back(std::move(e));
      }
    }
    frontier = std::move(next);
  }
  return out;
}

Result<std::vector<LedgerEntry>> Ledger::descendants(const std::string& digest, int max_depth) {
  std::vector<LedgerEntry> out;
  std::set<std::string> seen{normalize_digest(digest)};
  std::set<uint64_t> seen_entries;
  std::vector<std::string> frontier{normalize_digest(digest)};
  for (int depth = 0; depth < max_depth && !frontier.empty(); ++depth) {
    std::vector<std::string> next;
    for (const auto& d : frontier) {
      QueryFilter f;
      f.parent_digest = d;
      PROV_ASSIGN_OR_RETURN(auto entries, query(f));
      for (auto& e : entries) {
        if (!seen_entries.insert(e.index).second) continue;
        for (const auto& s : e.subjects) {
          if (seen.insert(s).second) next.push_back(s);
        }
        out.push_back(std::move(e));
      }
    }
    frontier = std::move(next);
  }
  return out;
}

Result<MergeReport> Ledger::merge(Ledger& other) {
  if (&other == this) return invalid_argument("cannot merge a ledger into itself");
  PROV_ASSIGN_OR_RETURN(uint64_t other_size, other.size());
  MergeReport report;
  PROV_RETURN_IF_ERROR(begin_immediate());
  auto fail = [this](Status s) {
    rollback();
    return s;
  };
  auto n = size_in_txn();
  if (!n.is_ok()) return fail(n.status());
  auto exists = stmt("SELECT 1 FROM entries WHERE envelope_sha256 = ?1");
  if (!exists.is_ok()) return fail(exists.status());
  uint64_t next = *n;
  ScopedEdge edge(this);
  for (uint64_t i = 0; i < other_size; ++i) {
    auto e = other.get(i);
    if (!e.is_ok()) return fail(e.status().with_context("merging " + other.path()));
    // The source's own leaf must match its bytes: merge never imports a damaged entry.
    if (leaf_hash(entry_leaf_data(e->created_at, e->envelope)) != e->leaf_hash) {
      return fail(corrupt(other.path() + ": entry " + std::to_string(i) +
                          " does not match its leaf hash; verify it before merging"));
    }
    Digest d = sha256(e->envelope);
    sqlite3_stmt* st = *exists;
    int rc;
    {
      Reset r{st};
      sqlite3_bind_blob(st, 1, d.data(), 32, SQLITE_STATIC);
      rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
      ++report.already_present;
      continue;
    }
    if (rc != SQLITE_DONE) return fail(sqlite_status(rc, "merging"));
    auto f = parse_statement_envelope(e->envelope);
    if (!f.is_ok()) return fail(f.status().with_context(other.path()));
    Status s = insert_entry(next, e->envelope, e->created_at, *f);
    if (!s.is_ok()) return fail(s);
    ++next;
    ++report.added;
  }
  PROV_RETURN_IF_ERROR(commit());
  return report;
}

}  // namespace prov::store
