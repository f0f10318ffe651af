// Verification, proofs and checkpoints: Ledger::verify (the integrity check on a connection of its
// own, entries checked on worker threads, the cached tree, stored and earlier checkpoints),
// inclusion and consistency proofs, and signing checkpoints.
#include <sqlite3.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "store/ledger.h"
#include "store/ledger_internal.h"

namespace prov::store {

namespace {

using internal::column_blob;
using internal::column_text;
using internal::now_utc;
using internal::Reset;

// PRAGMA integrity_check(20) on `db`: OK, or kCorrupt listing the problems.
Status run_integrity_check(sqlite3* db, const std::string& path) {
  auto fail = [&](int code) {
    return internal::sqlite_error(code, path + ": integrity check: " + sqlite3_errmsg(db));
  };
  detail::StmtPtr st;
  int rc = internal::prepare(db, "PRAGMA integrity_check(20)", &st);
  if (rc != SQLITE_OK) return fail(rc);
  std::string problems;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    std::string line = column_text(st.get(), 0);
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
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
    if (internal::open_connection(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, &db_) !=
        SQLITE_OK) {
      db_.reset();
      return;
    }
    try {
      thread_ = std::thread([this, path] { result_ = run_integrity_check(db_.get(), path); });
    } catch (const std::system_error&) {
      db_.reset();
    }
  }
  bool started() const { return db_ != nullptr; }
  Status finish() {
    if (thread_.joinable()) thread_.join();
    if (db_ != nullptr) {
      db_.reset();
      done_ = true;
    }
    return done_ ? result_ : Status::ok();
  }

 private:
  detail::SqlitePtr db_;
  std::thread thread_;
  Status result_ = Status::ok();
  bool done_ = false;
};

// Rows read for verification, checked away from the SQLite connection.
struct EntryRow {
  LedgerEntry entry;
  std::string envelope_sha256;       // the stored digest column
  std::string content_sha256;        // its entry_contents row ("" when missing)
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

// What the entry checks need besides the rows.
struct CheckContext {
  const std::string& path;
  const VerifyOptions& options;
  const PredicateReader& reader;  // empty: the relation / parent columns are not compared
};

// Some signature of `envelope` verifies under one of `keys`.
bool signed_by_any(const std::string& envelope, const std::vector<const PublicKey*>& keys) {
  for (const PublicKey* k : keys) {
    if (k != nullptr && dsse_verify(envelope, *k).is_ok()) return true;
  }
  return false;
}

// The checks of one entry, expected at index `expect`: contiguous index, leaf hash recomputed
// from the stored bytes, envelope digest column, envelope signatures (when keys are given), and
// the indexed columns re-derived from the Statement (relation and parent only with a reader).
// Returns the recomputed leaf.
Result<Hash> check_entry(const EntryRow& row, uint64_t expect, const CheckContext& c) {
  PROV_RETURN_IF_ERROR(row.read_error);
  const LedgerEntry& e = row.entry;
  std::string where = c.path + ": entry " + std::to_string(e.index);
  if (e.index != expect) return corrupt(where + ": expected index " + std::to_string(expect));
  Hash leaf = leaf_hash(entry_leaf_data(e.created_at, e.envelope));
  if (leaf != e.leaf_hash) {
    return corrupt(where + ": the stored envelope or time does not match its leaf hash");
  }
  Digest ed = sha256(e.envelope);
  if (row.envelope_sha256.size() != 32 ||
      std::memcmp(row.envelope_sha256.data(), ed.data(), 32) != 0) {
    return corrupt(where + ": envelope digest column does not match the envelope");
  }
  if (!c.options.envelope_keys.empty() && !signed_by_any(e.envelope, c.options.envelope_keys)) {
    return invalid_argument(where + ": no envelope signature verifies under the given keys");
  }
  auto env = dsse_parse(e.envelope);
  if (!env.is_ok()) return env.status().with_context(where);
  Digest content = internal::content_digest(*env);
  if (row.content_sha256.size() != 32 ||
      std::memcmp(row.content_sha256.data(), content.data(), 32) != 0) {
    return corrupt(where + ": content digest (entry_contents) is missing or does not match the " +
                   "envelope");
  }
  auto f = internal::statement_fields(*env, c.reader);
  if (!f.is_ok()) return f.status().with_context(where);
  std::vector<std::string> subjects(f->subjects.begin(), f->subjects.end());
  std::sort(subjects.begin(), subjects.end());
  subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());
  if (e.subject_digest != f->subjects[0] || e.subjects != subjects) {
    return corrupt(where + ": indexed subject columns do not match the envelope");
  }
  if (c.reader && (e.relation != f->relation || e.parent_digest != f->parent_digest)) {
    return corrupt(where + ": relation / parent columns ('" + e.relation + "', '" +
                   e.parent_digest + "') do not match the predicate ('" + f->relation + "', '" +
                   f->parent_digest + "')");
  }
  return leaf;
}

// check_entry over a batch, stopping at the first problem.
void check_batch(EntryBatch& b, const CheckContext& c) {
  b.leaves.reserve(b.rows.size());
  for (size_t i = 0; i < b.rows.size(); ++i) {
    auto leaf = check_entry(b.rows[i], b.first + i, c);
    if (!leaf.is_ok()) {
      b.problem = leaf.status();
      return;
    }
    b.leaves.push_back(*leaf);
    if (!c.options.envelope_keys.empty()) ++b.signatures_checked;
  }
}

// Checks batches on worker threads (or inline when none can be started) and hands the results
// back in submission order.
class EntryChecker {
 public:
  explicit EntryChecker(const CheckContext& context) : context_(context) {
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
      check_batch(*b, context_);
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
      check_batch(*b, context_);
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

  const CheckContext& context_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::shared_ptr<EntryBatch>> queue_;    // waiting for a worker
  std::deque<std::shared_ptr<EntryBatch>> pending_;  // submitted, not yet consumed (main thread)
  bool stop_ = false;
};

}  // namespace

Result<std::string> Ledger::checkpoint(const PrivateKey& key, const std::string& origin_arg) {
  std::string origin = origin_arg;
  if (origin.empty()) {
    PROV_ASSIGN_OR_RETURN(origin, this->origin());
  }
  PROV_RETURN_IF_ERROR(begin_immediate());
  auto fail = [this](Status s) {
    rollback();
    return s;
  };
  Status pinned = check_or_pin_checkpoint_key(key.public_key());
  if (!pinned.is_ok()) return fail(pinned);
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

namespace {
constexpr char kMetaKeyId[] = "checkpoint_key_id";
constexpr char kMetaKey[] = "checkpoint_key";  // standard base64 of the DER SubjectPublicKeyInfo
}  // namespace

Status Ledger::check_or_pin_checkpoint_key(const PublicKey& key) {
  const std::string id = key.key_id();
  PROV_ASSIGN_OR_RETURN(std::string pinned, meta_value(kMetaKeyId));
  if (!pinned.empty()) {
    if (pinned == id) return Status::ok();
    return invalid_argument(path_ + ": checkpoint key " + id +
                            " is not this ledger's checkpoint key " + pinned +
                            " (pinned by its first checkpoint); sign with that key");
  }
  if (key.type() != KeyType::kEd25519) {
    return unsupported(std::string("checkpoint keys are Ed25519 (C2SP signed notes); this is ") +
                       key_type_name(key.type()));
  }
  // A ledger from before pinning may already hold checkpoints: its key is the one that signed
  // the first of them.
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st,
                        stmt("SELECT id, origin, note FROM checkpoints ORDER BY id LIMIT 1"));
  {
    Reset r{st};
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      std::string origin = column_text(st, 1);
      if (!verify_checkpoint(column_text(st, 2), origin, key).is_ok()) {
        return invalid_argument(path_ + ": checkpoint " +
                                std::to_string(sqlite3_column_int64(st, 0)) +
                                " stored in the ledger is not signed by key " + id +
                                "; the ledger's checkpoint key is the one that signed its first "
                                "checkpoint");
      }
    } else if (rc != SQLITE_DONE) {
      return sqlite_status(rc, "reading checkpoints");
    }
  }
  PROV_RETURN_IF_ERROR(meta_insert(kMetaKeyId, id));
  return meta_insert(kMetaKey, base64_encode(key.der()));
}

Status Ledger::pin_checkpoint_key(const PublicKey& key) {
  PROV_RETURN_IF_ERROR(begin_immediate());
  Status s = check_or_pin_checkpoint_key(key);
  if (!s.is_ok()) {
    rollback();
    return s;
  }
  return commit();
}

Result<std::string> Ledger::checkpoint_key_id() {
  return meta_value(kMetaKeyId);
}

Result<std::unique_ptr<PublicKey>> Ledger::pinned_checkpoint_key() {
  PROV_ASSIGN_OR_RETURN(std::string id, meta_value(kMetaKeyId));
  PROV_ASSIGN_OR_RETURN(std::string b64, meta_value(kMetaKey));
  if (id.empty() && b64.empty()) return std::unique_ptr<PublicKey>();
  auto der = base64_decode(b64);
  if (!der.is_ok()) return corrupt(path_ + ": ledger_meta: the pinned checkpoint key is malformed");
  auto key = PublicKey::from_der(*der);
  if (!key.is_ok() || key->key_id() != id) {
    return corrupt(path_ + ": ledger_meta: the pinned checkpoint key does not match its id " + id);
  }
  return std::make_unique<PublicKey>(std::move(*key));
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
  // connection checks the content; its result comes first, as if it had run first.
  IntegrityCheck integrity;
  if (options.integrity_check) integrity.start(path_);
  // One read transaction: a consistent snapshot even while others append.
  PROV_RETURN_IF_ERROR(exec("BEGIN"));
  struct End {
    Ledger* l;
    ~End() { l->exec("COMMIT"); }
  } end{this};
  VerifyReport report;
  report.lineage_columns_checked = static_cast<bool>(options_.read_predicate);
  MemoryTree tree;
  Status entries = verify_schema();
  if (entries.is_ok()) entries = verify_entries(options, &tree, &report);
  if (options.integrity_check) {
    PROV_RETURN_IF_ERROR(integrity.started() ? integrity.finish()
                                             : run_integrity_check(db_.get(), path_));
  }
  PROV_RETURN_IF_ERROR(entries);
  {  // No subject row may point past the entries.
    PROV_ASSIGN_OR_RETURN(
        sqlite3_stmt * cs,
        stmt("SELECT count(*) FROM entry_subjects WHERE idx NOT IN (SELECT idx FROM entries)"));
    Reset r{cs};
    if (sqlite3_step(cs) != SQLITE_ROW || sqlite3_column_int64(cs, 0) != 0) {
      return corrupt(path_ + ": subject rows without an entry");
    }
  }
  {  // Nor any content row.
    PROV_ASSIGN_OR_RETURN(
        sqlite3_stmt * cs,
        stmt("SELECT count(*) FROM entry_contents WHERE idx NOT IN (SELECT idx FROM entries)"));
    Reset r{cs};
    if (sqlite3_step(cs) != SQLITE_ROW || sqlite3_column_int64(cs, 0) != 0) {
      return corrupt(path_ + ": content digest rows (entry_contents) without an entry");
    }
  }
  report.tree_size = tree.size();
  PROV_ASSIGN_OR_RETURN(report.root, tree.root());
  PROV_RETURN_IF_ERROR(verify_tree_nodes(tree));
  PROV_RETURN_IF_ERROR(verify_checkpoints(options, tree, &report));
  if (!options.earlier_checkpoint.empty()) {
    PROV_RETURN_IF_ERROR(verify_earlier_checkpoint(options, tree, &report));
  }
  return report;
}

// Step 1 of verify: every entry, contiguous indexes, leaf recomputed from the stored bytes,
// derived columns. This connection reads the rows in batches; worker threads check them; the
// leaves enter `tree` in order and the first problem in index order is returned.
Status Ledger::verify_entries(const VerifyOptions& options, MemoryTree* tree,
                              VerifyReport* report) {
  PROV_ASSIGN_OR_RETURN(
      sqlite3_stmt * st,
      stmt("SELECT " PROV_ENTRY_COLUMNS
           ", envelope_sha256, (SELECT content_sha256 FROM entry_contents c WHERE c.idx = "
           "entries.idx) FROM entries ORDER BY idx"));
  Reset r{st};
  const CheckContext context{path_, options, options_.read_predicate};
  EntryChecker checker(context);
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
        row.content_sha256 = column_blob(st, 8);
      } else {
        row.read_error = e.status();
      }
      batch->rows.push_back(std::move(row));
    }
    expect += batch->rows.size();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) read_problem = sqlite_status(rc, "reading entries");
    problem = checker.submit(std::move(batch), tree, report);
  }
  if (problem.is_ok()) problem = checker.drain(tree, report);
  if (problem.is_ok()) problem = read_problem;
  checker.stop();
  return problem;
}

// Step 2: the cached tree nodes equal the recomputed ones, and all are present.
Status Ledger::verify_tree_nodes(const MemoryTree& tree) {
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st,
                        stmt("SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx"));
  Reset r{st};
  const auto& levels = tree.levels();
  uint64_t rows = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t level = sqlite3_column_int64(st, 0);
    int64_t idx = sqlite3_column_int64(st, 1);
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
  for (size_t l = 1; l < levels.size(); ++l) expected += levels[l].size();
  if (rows != expected) {
    return corrupt(path_ + ": " + std::to_string(expected - rows) + " cached tree nodes missing");
  }
  return Status::ok();
}

// Step 3: stored checkpoints: signature (when a key is given) and root at their size.
Status Ledger::verify_checkpoints(const VerifyOptions& options, MemoryTree& tree,
                                  VerifyReport* report) {
  // The pinned key: the caller's key must be it; without one, the stored notes are checked
  // under it.
  PROV_ASSIGN_OR_RETURN(std::unique_ptr<PublicKey> pinned, pinned_checkpoint_key());
  if (pinned != nullptr) report->checkpoint_key_id = pinned->key_id();
  if (pinned != nullptr && options.checkpoint_key != nullptr &&
      options.checkpoint_key->key_id() != pinned->key_id()) {
    return invalid_argument(path_ + ": the checkpoint key given, " +
                            options.checkpoint_key->key_id() +
                            ", is not this ledger's pinned checkpoint key " + pinned->key_id());
  }
  const PublicKey* key = options.checkpoint_key != nullptr ? options.checkpoint_key : pinned.get();
  PROV_ASSIGN_OR_RETURN(
      sqlite3_stmt * st,
      stmt("SELECT id, tree_size, root, origin, note FROM checkpoints ORDER BY id"));
  Reset r{st};
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::string where = path_ + ": checkpoint " + std::to_string(sqlite3_column_int64(st, 0));
    std::string origin = column_text(st, 3);
    std::string note = column_text(st, 4);
    auto cp = key != nullptr ? verify_checkpoint(note, origin, *key) : parse_checkpoint(note);
    if (!cp.is_ok() && pinned != nullptr && key == pinned.get()) {
      return cp.status().with_context(where + " (under the pinned checkpoint key " +
                                      pinned->key_id().substr(0, 16) + ")");
    }
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
    ++report->checkpoints_checked;
  }
  if (rc != SQLITE_DONE) return sqlite_status(rc, "reading checkpoints");
  report->checkpoint_signatures_checked = options.checkpoint_key != nullptr;
  return Status::ok();
}

// Step 4: an earlier checkpoint kept elsewhere: the ledger must extend it.
Status Ledger::verify_earlier_checkpoint(const VerifyOptions& options, const MemoryTree& tree,
                                         VerifyReport* report) {
  if (options.checkpoint_key == nullptr) {
    return invalid_argument("verifying against an earlier checkpoint needs its public key");
  }
  auto parsed = parse_checkpoint(options.earlier_checkpoint);
  if (!parsed.is_ok()) return parsed.status().with_context("earlier checkpoint");
  auto cp = verify_checkpoint(options.earlier_checkpoint, parsed->origin, *options.checkpoint_key);
  if (!cp.is_ok()) return cp.status().with_context("earlier checkpoint");
  if (cp->tree_size > tree.size()) {
    return corrupt(path_ + ": the earlier checkpoint covers " + std::to_string(cp->tree_size) +
                   " entries but the ledger has only " + std::to_string(tree.size()) +
                   " (entries were removed)");
  }
  Source source(this);
  PROV_ASSIGN_OR_RETURN(auto proof,
                        prov::store::consistency_proof(source, cp->tree_size, tree.size()));
  if (!verify_consistency(cp->tree_size, tree.size(), cp->root, report->root, proof)) {
    return corrupt(path_ + ": the ledger is not an extension of the earlier checkpoint (size " +
                   std::to_string(cp->tree_size) + "): history was rewritten");
  }
  report->earlier_checkpoint_consistent = true;
  return Status::ok();
}

}  // namespace prov::store
