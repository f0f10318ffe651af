// The ledger as a published transparency log: its own origin, the published checkpoint and the
// cosignatures added to it, and the ranges of tree hashes that tiles are cut from
// (store/tlog_tiles.h).
#include <sqlite3.h>

#include <set>

#include "store/checkpoint.h"
#include "store/ledger.h"
#include "store/ledger_internal.h"

namespace prov::store {

namespace {

using internal::column_text;
using internal::Reset;

constexpr uint64_t kMaxRange = 4096;

}  // namespace

Result<std::string> Ledger::origin() {
  PROV_ASSIGN_OR_RETURN(std::string origin, meta_value(internal::kMetaOrigin));
  if (origin.empty()) return internal_error(path_ + ": the ledger has no origin (ledger_meta)");
  return origin;
}

Result<std::string> Ledger::latest_checkpoint() {
  PROV_ASSIGN_OR_RETURN(
      sqlite3_stmt * st,
      stmt("SELECT note FROM checkpoints ORDER BY tree_size DESC, id DESC LIMIT 1"));
  Reset r{st};
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return column_text(st, 0);
  if (rc != SQLITE_DONE) return sqlite_status(rc, "reading checkpoints");
  return not_found(path_ + ": no checkpoint yet (sign one with prov ledger checkpoint)");
}

Result<std::string> Ledger::add_cosignatures(const std::string& note) {
  std::string text;
  std::vector<std::string> lines;
  PROV_RETURN_IF_ERROR(split_signed_note(note, &text, &lines));
  PROV_ASSIGN_OR_RETURN(Checkpoint cp, parse_checkpoint(note));
  PROV_RETURN_IF_ERROR(begin_immediate());
  auto fail = [this](Status s) {
    rollback();
    return s;
  };
  // The latest stored note with this text: the base whose lines are kept.
  auto sel = stmt(
      "SELECT note, origin FROM checkpoints WHERE tree_size = ?1 AND root = ?2 ORDER BY id DESC");
  if (!sel.is_ok()) return fail(sel.status());
  std::string base;
  {
    sqlite3_stmt* st = *sel;
    Reset r{st};
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(cp.tree_size));
    sqlite3_bind_blob(st, 2, cp.root.data(), 32, SQLITE_STATIC);
    int rc = SQLITE_DONE;
    while (base.empty() && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      std::string stored = column_text(st, 0);
      std::string stored_text;
      std::vector<std::string> unused;
      if (split_signed_note(stored, &stored_text, &unused).is_ok() && stored_text == text) {
        base = stored;
      }
    }
    if (base.empty() && rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return fail(sqlite_status(rc, "reading checkpoints"));
    }
  }
  if (base.empty()) {
    return fail(not_found(path_ + ": no stored checkpoint has this text (" + cp.origin + ", size " +
                          std::to_string(cp.tree_size) + ")"));
  }
  std::string base_text;
  std::vector<std::string> merged;
  Status split = split_signed_note(base, &base_text, &merged);
  if (!split.is_ok()) return fail(split.with_context(path_ + ": stored checkpoint"));
  std::set<std::pair<std::string, uint32_t>> signers;
  for (const auto& line : merged) {
    auto s = parse_signature_line(line);
    if (s.is_ok()) signers.emplace(s->key_name, s->key_id);
  }
  size_t added = 0;
  for (const auto& line : lines) {
    auto s = parse_signature_line(line);
    if (!s.is_ok()) return fail(s.status());
    if (!signers.emplace(s->key_name, s->key_id).second) continue;
    merged.push_back(line);
    ++added;
  }
  if (added == 0) {
    rollback();
    return base;
  }
  if (merged.size() > 100) {
    return fail(invalid_argument("a checkpoint carries at most 100 signature lines"));
  }
  std::string out = text + "\n";
  for (const auto& line : merged) out += line + "\n";
  auto ins = stmt(
      "INSERT INTO checkpoints(tree_size, root, origin, note, created_at) "
      "VALUES(?1, ?2, ?3, ?4, ?5)");
  if (!ins.is_ok()) return fail(ins.status());
  const std::string now = internal::now_utc();
  int rc;
  {
    sqlite3_stmt* st = *ins;
    Reset r{st};
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(cp.tree_size));
    sqlite3_bind_blob(st, 2, cp.root.data(), 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, cp.origin.data(), static_cast<int>(cp.origin.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 4, out.data(), static_cast<int>(out.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 5, now.data(), static_cast<int>(now.size()), SQLITE_STATIC);
    rc = sqlite3_step(st);
  }
  if (rc != SQLITE_DONE) return fail(sqlite_status(rc, "storing the cosigned checkpoint"));
  PROV_RETURN_IF_ERROR(commit());
  return out;
}

Result<std::vector<Hash>> Ledger::subtree_hashes(int level, uint64_t first, uint64_t count) {
  if (count > kMaxRange) return invalid_argument("at most 4096 tree hashes at once");
  if (level < 0 || level > 63) return not_found("no tree level " + std::to_string(level));
  if (first > static_cast<uint64_t>(INT64_MAX) - count) {
    return not_found("tree hashes past the end of the tree");
  }
  sqlite3_stmt* st = nullptr;
  if (level == 0) {
    PROV_ASSIGN_OR_RETURN(
        st, stmt("SELECT leaf_hash FROM entries WHERE idx >= ?2 AND idx < ?3 ORDER BY idx"));
  } else {
    PROV_ASSIGN_OR_RETURN(st, stmt("SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx >= ?2 "
                                   "AND idx < ?3 ORDER BY idx"));
    sqlite3_bind_int(st, 1, level);
  }
  Reset r{st};
  sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(first));
  sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(first + count));
  std::vector<Hash> out;
  out.reserve(count);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 0) != 32) {
      return corrupt(path_ + ": malformed tree hash at level " + std::to_string(level));
    }
    out.push_back(internal::to_hash(sqlite3_column_blob(st, 0), 32));
  }
  if (rc != SQLITE_DONE) return sqlite_status(rc, "reading tree hashes");
  if (out.size() != count) {
    return not_found("tree hashes " + std::to_string(first) + ".." +
                     std::to_string(first + count - 1) + " at level " + std::to_string(level) +
                     " are not all complete");
  }
  return out;
}

}  // namespace prov::store
