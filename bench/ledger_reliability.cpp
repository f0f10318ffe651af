// Ledger reliability at full scale (issue 8), too slow for unit tests:
//
//   crash       --crash N trials (default 200): a forked writer appends in a loop (single appends
//               and batches) and reports each acknowledged (index, envelope digest) through a
//               pipe; it is killed with SIGKILL after a random (seeded) delay. The ledger must then
//               open, verify, and hold every acknowledged entry at its index.
//   concurrency --writers W (default 8) processes append --per-writer K (default 250) envelopes
//               at once (single appends and small batches): every envelope present exactly once,
//               at the index its writer was told, no error (SQLITE_BUSY or other) reaching a
//               writer.
//   tampering   --mutations M (default 10000) random single-byte changes of a copy of a ledger
//               file (seeded): each is refused at open, caught by verify, or benign (verify
//               passes and every entry and checkpoint is byte-identical to the original). A
//               mutation that changes stored content yet passes verify is a failure.
//   rejections  wrong key, truncated envelope, replayed entry, forged / rewritten checkpoints.
//
// Prints counts; exits 1 on any failure.
// Usage: prov_ledger_reliability [--seed S] [--crash N] [--writers W] [--per-writer K]
//                                [--mutations M] [--dir DIR]
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "store/checkpoint.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "store/merkle.h"

using namespace prov;
using namespace prov::store;

namespace {

int g_failures = 0;

void fail(const std::string& what) {
  ++g_failures;
  std::printf("  FAILURE: %s\n", what.c_str());
  std::fflush(stdout);
}

template <typename T>
T must(Result<T> r, const std::string& what) {
  if (!r.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", what.c_str(), r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

void remove_db(const std::string& p) {
  ::unlink(p.c_str());
  ::unlink((p + "-wal").c_str());
  ::unlink((p + "-shm").c_str());
  ::unlink((p + "-journal").c_str());
}

std::string statement(const std::string& tag, uint64_t i) {
  std::string name = tag + "/m" + std::to_string(i);
  std::string parent = tag + "/m" + std::to_string(i / 2);
  return std::string("{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"") +
         name + "\",\"digest\":{\"sha256\":\"" + to_hex(sha256(name)) +
         "\"}}],\"predicateType\":\"https://prov.dev/verdict/v1\",\"predicate\":{\"verdict\":{"
         "\"relation\":\"fine_tune\",\"parent_digest\":\"sha256:" +
         to_hex(sha256(parent)) + "\"}}}";
}

std::string envelope(const PrivateKey& key, const std::string& tag, uint64_t i) {
  return must(dsse_sign(kInTotoPayloadType, statement(tag, i), key), "signing");
}

// An acknowledgement record written by a writer process: index + SHA-256 of the envelope.
struct Ack {
  uint64_t index;
  Digest digest;
};
static_assert(sizeof(Ack) == 40, "packed ack");

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::vector<Ack> read_acks(int fd) {
  std::string buf;
  char tmp[65536];
  ssize_t r;
  while ((r = ::read(fd, tmp, sizeof(tmp))) > 0) buf.append(tmp, static_cast<size_t>(r));
  std::vector<Ack> out(buf.size() / sizeof(Ack));  // a torn last record is dropped
  if (!out.empty()) std::memcpy(out.data(), buf.data(), out.size() * sizeof(Ack));
  return out;
}

// Checks that every ack is present at its index with its envelope.
int check_acks(Ledger& l, const std::vector<Ack>& acks, const std::string& what) {
  int missing = 0;
  for (const Ack& a : acks) {
    auto e = l.get(a.index);
    if (!e.is_ok() || sha256(e->envelope) != a.digest) {
      if (missing++ < 3) fail(what + ": acknowledged entry " + std::to_string(a.index) + " lost");
    }
  }
  return missing;
}

// ---------------------------------------------------------------------------------------------
void crash_test(const std::string& dir, const PrivateKey& key, uint64_t seed, int trials) {
  std::printf("crash: %d trials, SIGKILL after a random delay of 0-120 ms (seed %llu)\n", trials,
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::string db = dir + "/crash.db";
  remove_db(db);
  { must(Ledger::init(db), "init"); }
  std::mt19937_64 rng(seed);
  uint64_t total_acks = 0, trials_with_acks = 0, killed_running = 0, verify_failed = 0, lost = 0;
  uint64_t max_size = 0;
  for (int t = 0; t < trials; ++t) {
    int fds[2];
    if (::pipe(fds) != 0) {
      std::perror("pipe");
      std::exit(1);
    }
    uint64_t child_seed = rng();
    int delay_us = static_cast<int>(rng() % 120000);
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      std::mt19937_64 crng(child_seed);
      auto l = Ledger::open(db);
      if (!l.is_ok()) _exit(3);
      std::string tag = "crash" + std::to_string(t);
      for (uint64_t i = 0;;) {
        size_t n = crng() % 3 == 0 ? 1 : 1 + crng() % 40;
        std::vector<std::string> envs;
        for (size_t k = 0; k < n; ++k) envs.push_back(envelope(key, tag, i++));
        std::vector<Ack> acks;
        if (n == 1) {
          auto idx = (*l)->append(envs[0]);
          if (!idx.is_ok()) _exit(4);
          acks.push_back(Ack{*idx, sha256(envs[0])});
        } else {
          auto idx = (*l)->append_batch(envs);
          if (!idx.is_ok()) _exit(4);
          for (size_t k = 0; k < n; ++k) acks.push_back(Ack{(*idx)[k], sha256(envs[k])});
        }
        if (!write_all(fds[1], acks.data(), acks.size() * sizeof(Ack))) _exit(5);
      }
    }
    ::close(fds[1]);
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(pid, SIGKILL);
    std::vector<Ack> acks = read_acks(fds[0]);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++killed_running;
    } else {
      fail("trial " + std::to_string(t) + ": the writer exited by itself (status " +
           std::to_string(status) + ")");
    }
    total_acks += acks.size();
    if (!acks.empty()) ++trials_with_acks;
    auto l = Ledger::open(db);
    if (!l.is_ok()) {
      fail("trial " + std::to_string(t) + ": open after SIGKILL: " + l.status().to_string());
      ++verify_failed;
      break;
    }
    auto v = (*l)->verify();
    if (!v.is_ok()) {
      fail("trial " + std::to_string(t) + ": verify after SIGKILL: " + v.status().to_string());
      ++verify_failed;
      break;
    }
    max_size = v->tree_size;
    lost += check_acks(**l, acks, "trial " + std::to_string(t));
  }
  std::printf("  trials %d, writer killed mid-loop %llu, trials with acknowledged entries %llu\n",
              trials, static_cast<unsigned long long>(killed_running),
              static_cast<unsigned long long>(trials_with_acks));
  std::printf(
      "  acknowledged entries %llu, lost %llu, open/verify failures %llu, final size %llu\n",
      static_cast<unsigned long long>(total_acks), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(verify_failed), static_cast<unsigned long long>(max_size));
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
void concurrency_test(const std::string& dir, const PrivateKey& key, uint64_t seed, int writers,
                      int per_writer) {
  std::printf(
      "concurrency: %d writer processes x %d envelopes (single appends and batches of "
      "2-10, seed %llu)\n",
      writers, per_writer, static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::string db = dir + "/concurrent.db";
  remove_db(db);
  { must(Ledger::init(db), "init"); }
  // Envelopes are signed before the writers start so that they contend on the ledger only.
  std::vector<std::vector<std::string>> envs(writers);
  for (int w = 0; w < writers; ++w) {
    for (int i = 0; i < per_writer; ++i)
      envs[w].push_back(envelope(key, "w" + std::to_string(w), i));
  }
  int go[2];
  if (::pipe(go) != 0) std::exit(1);
  std::vector<pid_t> pids;
  std::vector<int> ack_fds, err_fds;
  auto t0 = std::chrono::steady_clock::now();
  for (int w = 0; w < writers; ++w) {
    int fds[2], efds[2];
    if (::pipe(fds) != 0 || ::pipe(efds) != 0) std::exit(1);
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      ::close(fds[0]);
      ::close(efds[0]);
      char c;
      (void)::read(go[0], &c, 1);  // returns 0 when the parent closes its end: start together
      std::mt19937_64 crng(seed + static_cast<uint64_t>(w));
      uint32_t errors = 0;
      auto l = Ledger::open(db);
      if (!l.is_ok()) {
        std::string m = l.status().to_string() + "\n";
        write_all(efds[1], m.data(), m.size());
        _exit(3);
      }
      for (int i = 0; i < per_writer;) {
        int n = crng() % 2 == 0 ? 1 : 2 + static_cast<int>(crng() % 9);
        n = std::min(n, per_writer - i);
        std::vector<std::string> b(envs[w].begin() + i, envs[w].begin() + i + n);
        auto idx = (*l)->append_batch(b);
        if (!idx.is_ok()) {
          ++errors;
          std::string m = idx.status().to_string() + "\n";
          write_all(efds[1], m.data(), m.size());
          continue;  // retried: the writer still owes these entries
        }
        std::vector<Ack> acks;
        for (int k = 0; k < n; ++k) acks.push_back(Ack{(*idx)[k], sha256(b[k])});
        write_all(fds[1], acks.data(), acks.size() * sizeof(Ack));
        i += n;
        if (errors > 100) break;
      }
      _exit(errors == 0 ? 0 : 6);
    }
    ::close(fds[1]);
    ::close(efds[1]);
    pids.push_back(pid);
    ack_fds.push_back(fds[0]);
    err_fds.push_back(efds[0]);
  }
  ::close(go[0]);
  ::close(go[1]);
  std::vector<Ack> all;
  uint64_t errors = 0;
  std::string messages;
  for (int w = 0; w < writers; ++w) {
    auto a = read_acks(ack_fds[w]);
    all.insert(all.end(), a.begin(), a.end());
    char buf[4096];
    ssize_t r;
    while ((r = ::read(err_fds[w], buf, sizeof(buf))) > 0) {
      messages.append(buf, static_cast<size_t>(r));
    }
    for (char c : messages) errors += c == '\n';
    if (!messages.empty() && errors < 5) std::printf("  writer error: %s", messages.c_str());
    messages.clear();
    int status = 0;
    ::waitpid(pids[w], &status, 0);
    ::close(ack_fds[w]);
    ::close(err_fds[w]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fail("writer " + std::to_string(w) + " exited with status " + std::to_string(status));
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (errors != 0) fail(std::to_string(errors) + " errors reached writers");
  auto l = must(Ledger::open(db), "open");
  auto v = l->verify();
  if (!v.is_ok()) fail("verify: " + v.status().to_string());
  uint64_t expect = static_cast<uint64_t>(writers) * static_cast<uint64_t>(per_writer);
  uint64_t size = must(l->size(), "size");
  if (size != expect) fail("size " + std::to_string(size) + ", expected " + std::to_string(expect));
  // Every envelope exactly once, at its acknowledged index.
  std::map<Digest, int> count;
  for (uint64_t i = 0; i < size; ++i) count[sha256(must(l->get(i), "get").envelope)]++;
  uint64_t missing = 0, duplicated = 0;
  for (int w = 0; w < writers; ++w) {
    for (const auto& e : envs[w]) {
      int c = count[sha256(e)];
      if (c == 0) ++missing;
      if (c > 1) ++duplicated;
    }
  }
  int lost = check_acks(*l, all, "concurrency");
  std::set<uint64_t> idxs;
  for (const Ack& a : all) idxs.insert(a.index);
  if (missing || duplicated || idxs.size() != all.size() || all.size() != expect) {
    fail("missing " + std::to_string(missing) + ", duplicated " + std::to_string(duplicated) +
         ", distinct acknowledged indexes " + std::to_string(idxs.size()) + " of " +
         std::to_string(all.size()));
  }
  std::printf(
      "  entries %llu (expected %llu) in %.1f s, acknowledged %zu, missing %llu, "
      "duplicated %llu, lost acks %d, errors reaching writers %llu, verify %s\n",
      static_cast<unsigned long long>(size), static_cast<unsigned long long>(expect), secs,
      all.size(), static_cast<unsigned long long>(missing),
      static_cast<unsigned long long>(duplicated), lost, static_cast<unsigned long long>(errors),
      v.is_ok() ? "ok" : "FAILED");
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool write_file(const std::string& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

struct Snapshot {
  std::vector<LedgerEntry> entries;
  std::vector<std::string> checkpoints;
};

bool same_entry(const LedgerEntry& a, const LedgerEntry& b) {
  return a.index == b.index && a.envelope == b.envelope && a.leaf_hash == b.leaf_hash &&
         a.subject_digest == b.subject_digest && a.subjects == b.subjects &&
         a.relation == b.relation && a.parent_digest == b.parent_digest &&
         a.created_at == b.created_at;
}

// True iff the ledger holds exactly the snapshot's entries and checkpoints.
bool identical(Ledger& l, const Snapshot& s) {
  auto n = l.size();
  if (!n.is_ok() || *n != s.entries.size()) return false;
  for (const auto& e : s.entries) {
    auto g = l.get(e.index);
    if (!g.is_ok() || !same_entry(*g, e)) return false;
  }
  auto q = l.query(QueryFilter{});
  if (!q.is_ok() || q->size() != s.entries.size()) return false;
  for (size_t i = 0; i < q->size(); ++i) {
    if (!same_entry((*q)[i], s.entries[i])) return false;
  }
  auto c = l.checkpoints();
  return c.is_ok() && *c == s.checkpoints;
}

void tamper_test(const std::string& dir, const PrivateKey& key, uint64_t seed, int mutations) {
  const std::string origin = "reliability.prov.dev/ledger";
  std::string db = dir + "/tamper_src.db";
  remove_db(db);
  {
    auto l = must(Ledger::init(db), "init");
    std::vector<std::string> b;
    for (int i = 0; i < 40; ++i) must(l->append(envelope(key, "t", i)), "append");
    must(l->checkpoint(key, origin), "checkpoint");
    for (int i = 40; i < 120; ++i) b.push_back(envelope(key, "t", i));
    must(l->append_batch(b), "append_batch");
    must(l->checkpoint(key, origin), "checkpoint");
  }  // closing the last connection checkpoints the WAL into the main file
  std::string wal = db + "-wal";
  struct stat st {};
  if (::stat(wal.c_str(), &st) == 0 && st.st_size > 0) {
    std::fprintf(stderr, "WAL not folded into the database file\n");
    std::exit(1);
  }
  Snapshot snap;
  {
    auto l = must(Ledger::open(db), "open");
    uint64_t n = must(l->size(), "size");
    for (uint64_t i = 0; i < n; ++i) snap.entries.push_back(must(l->get(i), "get"));
    snap.checkpoints = must(l->checkpoints(), "checkpoints");
  }
  std::string original = read_file(db);
  std::printf(
      "tampering: %d random single-byte mutations of a %zu-byte ledger file (%zu entries, "
      "%zu checkpoints, seed %llu)\n",
      mutations, original.size(), snap.entries.size(), snap.checkpoints.size(),
      static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  PublicKey pub = key.public_key();
  std::mt19937_64 rng(seed);
  std::string copy = dir + "/tamper_copy.db";
  uint64_t refused = 0, caught = 0, benign = 0, failures = 0;
  std::map<std::string, uint64_t> reasons;
  for (int m = 0; m < mutations; ++m) {
    std::string bytes = original;
    size_t off = rng() % bytes.size();
    uint8_t x = static_cast<uint8_t>(1 + rng() % 255);
    bytes[off] = static_cast<char>(static_cast<uint8_t>(bytes[off]) ^ x);
    remove_db(copy);
    if (!write_file(copy, bytes)) {
      std::fprintf(stderr, "cannot write %s\n", copy.c_str());
      std::exit(1);
    }
    auto l = Ledger::open(copy);
    if (!l.is_ok()) {
      ++refused;
      continue;
    }
    VerifyOptions o;
    o.checkpoint_key = &pub;
    o.envelope_keys = {&pub};
    auto v = (*l)->verify(o);
    if (!v.is_ok()) {
      ++caught;
      continue;
    }
    if (identical(**l, snap)) {
      ++benign;
    } else {
      ++failures;
      fail("mutation " + std::to_string(m) + " at offset " + std::to_string(off) + " (xor " +
           std::to_string(x) + ") changed the ledger's content yet passed verify");
    }
  }
  remove_db(copy);
  std::printf(
      "  refused at open %llu, caught by verify %llu, benign (verify passes, content "
      "byte-identical) %llu, undetected content changes %llu\n",
      static_cast<unsigned long long>(refused), static_cast<unsigned long long>(caught),
      static_cast<unsigned long long>(benign), static_cast<unsigned long long>(failures));
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// Runs raw SQL on a ledger file outside the Ledger API (as an attacker with write access would).
bool raw_sql(const std::string& db, const std::string& sql, std::string* err) {
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) {
    sqlite3_close(h);
    return false;
  }
  char* e = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &e);
  if (err) *err = e ? e : "";
  sqlite3_free(e);
  sqlite3_close(h);
  return rc == SQLITE_OK;
}

void check(bool rejected, const std::string& what, int* count) {
  ++*count;
  std::printf("  %-74s %s\n", what.c_str(), rejected ? "rejected" : "ACCEPTED");
  if (!rejected) fail(what + " was accepted");
}

void rejection_test(const std::string& dir, const PrivateKey& key) {
  std::printf("rejections:\n");
  const std::string origin = "reliability.prov.dev/ledger";
  PrivateKey other = must(PrivateKey::generate(KeyType::kEd25519), "keygen");
  PublicKey pub = key.public_key(), other_pub = other.public_key();
  std::string db = dir + "/reject.db";
  remove_db(db);
  auto l = must(Ledger::init(db), "init");
  std::vector<std::string> envs;
  for (int i = 0; i < 20; ++i) envs.push_back(envelope(key, "r", i));
  must(l->append_batch(std::vector<std::string>(envs.begin(), envs.begin() + 10), &pub), "append");
  std::string cp10 = must(l->checkpoint(key, origin), "checkpoint");
  int n = 0;
  // Wrong key.
  std::string foreign = envelope(other, "r-other", 0);
  check(!l->append(foreign, &pub).is_ok(), "append, envelope signed by another key (signer given)",
        &n);
  check(!l->append_batch({envs[10], foreign}, &pub).is_ok(),
        "append_batch with one envelope signed by another key", &n);
  {
    VerifyOptions o;
    o.envelope_keys = {&other_pub};
    check(!l->verify(o).is_ok(), "verify with envelope_keys = a key that signed nothing", &n);
    VerifyOptions c;
    c.checkpoint_key = &other_pub;
    check(!l->verify(c).is_ok(), "verify of stored checkpoints under the wrong checkpoint key", &n);
  }
  // Truncated envelopes: every proper prefix length class.
  {
    int accepted = 0, tried = 0;
    const std::string& e = envs[11];
    for (size_t len = 0; len < e.size(); len += 7) {
      ++tried;
      if (l->append(e.substr(0, len)).is_ok()) ++accepted;
    }
    check(accepted == 0, "truncated envelopes (" + std::to_string(tried) + " prefix lengths)", &n);
  }
  // A signature cut short.
  {
    std::string e = envs[12];
    size_t p = e.find("\"sig\":\"");
    std::string cut = e.substr(0, p + 7) + e.substr(p + 11);
    check(!l->append(cut, &pub).is_ok(), "envelope with a truncated signature (signer given)", &n);
  }
  // Replays.
  check(!l->append(envs[3]).is_ok(), "replayed entry (same envelope bytes appended again)", &n);
  check(!l->append_batch({envs[10], envs[10]}).is_ok(), "batch containing the same envelope twice",
        &n);
  if (must(l->size(), "size") != 10) fail("a refused append changed the ledger's size");
  {
    std::string err;
    bool ok = raw_sql(db,
                      "INSERT INTO entries SELECT 10, envelope, envelope_sha256, leaf_hash, "
                      "subject_digest, relation, parent_digest, created_at FROM entries WHERE "
                      "idx = 3",
                      &err);
    check(!ok, "raw SQL replay of an entry row (UNIQUE envelope digest)", &n);
  }
  // Forged checkpoints.
  {
    Checkpoint cp = must(parse_checkpoint(cp10), "parse");
    Checkpoint forged = cp;
    forged.root[0] ^= 1;
    std::string f_wrongkey = must(sign_checkpoint(forged, origin, other), "sign");
    std::string f_rightkey = must(sign_checkpoint(forged, origin, key), "sign");
    VerifyOptions o;
    o.checkpoint_key = &pub;
    o.earlier_checkpoint = f_wrongkey;
    check(!l->verify(o).is_ok(), "earlier checkpoint signed by another key", &n);
    o.earlier_checkpoint = f_rightkey;
    check(!l->verify(o).is_ok(), "earlier checkpoint with a different root (validly signed)", &n);
    Checkpoint bigger = cp;
    bigger.tree_size = 1000;
    o.earlier_checkpoint = must(sign_checkpoint(bigger, origin, key), "sign");
    check(!l->verify(o).is_ok(), "earlier checkpoint larger than the ledger (entries removed)", &n);
    std::string edited = cp10;
    edited[edited.find('\n') + 1] = '9';  // tree size 10 -> 90 without re-signing
    o.earlier_checkpoint = edited;
    check(!l->verify(o).is_ok(), "earlier checkpoint edited after signing", &n);
    // A forged checkpoint row inserted by raw SQL.
    l.reset();
    std::string q =
        "INSERT INTO checkpoints(tree_size, root, origin, note, created_at) VALUES(10, x'" +
        to_hex(forged.root) + "', '" + origin + "', '" + f_wrongkey + "', 'now')";
    std::string err;
    bool inserted = raw_sql(db, q, &err);
    l = must(Ledger::open(db), "open");
    VerifyOptions c;
    c.checkpoint_key = &pub;
    check(!inserted || !l->verify(c).is_ok(), "forged checkpoint row inserted with raw SQL", &n);
  }
  // A rewritten database with a rebuilt tree: same entries except one, re-appended from scratch.
  {
    std::string db2 = dir + "/rewritten.db";
    remove_db(db2);
    auto r = must(Ledger::init(db2), "init");
    std::vector<std::string> b(envs.begin(), envs.begin() + 10);
    b[4] = envelope(key, "r-rewritten", 4);
    must(r->append_batch(b), "append_batch");
    must(r->verify(), "verify rewritten (self-consistent)");
    VerifyOptions o;
    o.checkpoint_key = &pub;
    o.earlier_checkpoint = cp10;
    check(!r->verify(o).is_ok(),
          "rewritten ledger with a rebuilt tree, verified against the earlier checkpoint", &n);
    r.reset();
    remove_db(db2);
  }
  // Rows changed behind the API's back (triggers refuse; with triggers dropped, verify catches).
  {
    std::string err;
    check(!raw_sql(db, "UPDATE entries SET created_at = 'x' WHERE idx = 2", &err),
          "raw SQL UPDATE of an entry (trigger)", &n);
    check(!raw_sql(db, "DELETE FROM entries WHERE idx = 9", &err),
          "raw SQL DELETE of an entry (trigger)", &n);
  }
  std::printf("  %d rejection checks\n", n);
  l.reset();
  remove_db(db);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 20240808;
  int crash = 200, writers = 8, per_writer = 250, mutations = 10000;
  std::string dir = "/tmp/prov_ledger_reliability";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seed") {
      seed = std::stoull(next());
    } else if (a == "--crash") {
      crash = std::stoi(next());
    } else if (a == "--writers") {
      writers = std::stoi(next());
    } else if (a == "--per-writer") {
      per_writer = std::stoi(next());
    } else if (a == "--mutations") {
      mutations = std::stoi(next());
    } else if (a == "--dir") {
      dir = next();
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  ::mkdir(dir.c_str(), 0755);
  PrivateKey key = must(PrivateKey::generate(KeyType::kEd25519), "keygen");
  auto t0 = std::chrono::steady_clock::now();
  if (crash > 0) crash_test(dir, key, seed, crash);
  if (writers > 0) concurrency_test(dir, key, seed, writers, per_writer);
  if (mutations > 0) tamper_test(dir, key, seed, mutations);
  rejection_test(dir, key);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %d failure(s), %.0f s\n", g_failures == 0 ? "PASS" : "FAIL", g_failures, secs);
  return g_failures == 0 ? 0 : 1;
}
