// Entries: appending (single, batch, merge), reading, queries and lineage walks.
#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <set>
#include <system_error>
#include <thread>

#include "store/ledger.h"
#include "store/ledger_internal.h"

namespace prov::store {

namespace internal {

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

}  // namespace internal

namespace {

using internal::bind_text_or_null;
using internal::column_blob;
using internal::column_text;
using internal::now_utc;
using internal::Reset;

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

// What appending needs to know about one envelope.
struct Admitted {
  StatementFields fields;
  Digest content{};  // envelope_content_digest
};

// Parses (and, with a signer, signature-checks) one envelope for appending.
Result<Admitted> admit_envelope(const std::string& envelope, const PublicKey* signer,
                                const std::string& signer_id, const PredicateReader& reader) {
  PROV_ASSIGN_OR_RETURN(DsseEnvelope env, dsse_parse(envelope));
  if (signer != nullptr) {
    PROV_RETURN_IF_ERROR(internal::check_envelope_signature(env, *signer, signer_id));
  }
  Admitted a;
  PROV_ASSIGN_OR_RETURN(a.fields, internal::statement_fields(env, reader));
  a.content = internal::content_digest(env);
  return a;
}

// Envelopes per worker thread below which a batch is admitted on the calling thread alone.
constexpr size_t kEnvelopesPerThread = 64;

}  // namespace

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

Result<int64_t> Ledger::find_content(const Digest& content) {
  PROV_ASSIGN_OR_RETURN(sqlite3_stmt * st,
                        stmt("SELECT min(idx) FROM entry_contents WHERE content_sha256 = ?1"));
  Reset r{st};
  sqlite3_bind_blob(st, 1, content.data(), 32, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return sqlite_status(rc, "looking up an envelope's content");
  if (sqlite3_column_type(st, 0) == SQLITE_NULL) return int64_t{-1};
  return static_cast<int64_t>(sqlite3_column_int64(st, 0));
}

Status Ledger::insert_entry(uint64_t index, const std::string& envelope,
                            const std::string& created_at, const StatementFields& fields,
                            const Digest& content) {
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
  {
    PROV_ASSIGN_OR_RETURN(sqlite3_stmt * cst,
                          stmt("INSERT INTO entry_contents(idx, content_sha256) VALUES(?1, ?2)"));
    Reset r{cst};
    sqlite3_bind_int64(cst, 1, static_cast<sqlite3_int64>(index));
    sqlite3_bind_blob(cst, 2, content.data(), 32, SQLITE_STATIC);
    int rc = sqlite3_step(cst);
    if (rc != SQLITE_DONE) return sqlite_status(rc, "inserting an entry's content digest");
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
  std::vector<Result<Admitted>> admitted(envelopes.size(), Admitted{});
  auto admit_range = [&](size_t begin, size_t step) {
    for (size_t i = begin; i < envelopes.size(); i += step) {
      admitted[i] = admit_envelope(envelopes[i], signer, signer_id, options_.read_predicate);
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
  std::vector<Admitted> fields;
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
    // A replay: the same signed content, however serialised, is already there (or earlier in
    // this batch, inserted by this transaction).
    auto earlier = find_content(fields[i].content);
    Status s = earlier.is_ok() ? Status::ok() : earlier.status();
    if (s.is_ok() && *earlier >= 0) {
      uint64_t e = static_cast<uint64_t>(*earlier);
      std::string what = e >= *n ? "envelope " + std::to_string(e - *n) + " of this batch"
                                 : "entry " + std::to_string(e);
      s = invalid_argument(path_ + ": envelope " + std::to_string(i) + " is a replay of " + what +
                           " (same payloadType and payload; replay refused)");
    }
    if (s.is_ok())
      s = insert_entry(*n + i, envelopes[i], created_at, fields[i].fields, fields[i].content);
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
  e.leaf_hash = internal::to_hash(sqlite3_column_blob(st, 2), 32);
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
  if (filter.limit > static_cast<uint64_t>(INT64_MAX)) {
    return invalid_argument("query limit " + std::to_string(filter.limit) + " is larger than " +
                            std::to_string(INT64_MAX));
  }
  if (filter.limit > 0) sql += " LIMIT " + std::to_string(filter.limit);
  detail::StmtPtr owned;
  int rc = internal::prepare(db_.get(), sql.c_str(), &owned);
  if (rc != SQLITE_OK) return sqlite_status(rc, "preparing a query");
  sqlite3_stmt* st = owned.get();
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
    auto env = dsse_parse(e->envelope);
    if (!env.is_ok()) {
      return fail(env.status().with_context(other.path() + ": entry " + std::to_string(i)));
    }
    Digest content = internal::content_digest(*env);
    auto present = find_content(content);
    if (!present.is_ok()) return fail(present.status());
    if (*present >= 0) {
      ++report.already_present;
      continue;
    }
    auto f = internal::statement_fields(*env, options_.read_predicate);
    if (!f.is_ok()) {
      return fail(f.status().with_context(other.path() + ": entry " + std::to_string(i)));
    }
    Status s = insert_entry(next, e->envelope, e->created_at, *f, content);
    if (!s.is_ok()) return fail(s);
    ++next;
    ++report.added;
  }
  PROV_RETURN_IF_ERROR(commit());
  return report;
}

}  // namespace prov::store
