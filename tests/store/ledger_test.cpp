#include "store/ledger.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "tests/support/test_support.h"

namespace prov::store {
namespace {

std::string digest_of(const std::string& s) {
  return to_hex(sha256(s));
}

// A signed in-toto Statement about model `subject` derived from `parent` (optional).
std::string make_envelope(const PrivateKey& key, const std::string& subject,
                          const std::string& parent = "", const std::string& relation = "",
                          int nonce = 0) {
  nlohmann::json st;
  st["_type"] = "https://in-toto.io/Statement/v1";
  st["subject"] = {{{"name", subject}, {"digest", {{"sha256", digest_of(subject)}}}}};
  st["predicateType"] = "https://prov.dev/verdict/v1";
  st["predicate"]["nonce"] = nonce;
  if (!parent.empty()) {
    st["predicate"]["verdict"]["relation"] = relation;
    st["predicate"]["verdict"]["parent_digest"] = "sha256:" + digest_of(parent);
    st["predicate"]["verdict"]["parent"] = parent;
  }
  auto env = dsse_sign(kInTotoPayloadType, st.dump(), key);
  EXPECT_TRUE(env.is_ok());
  return *env;
}

// The predicate's owner, played by the test: a "https://prov.dev/verdict/v1" predicate names its
// relation and parent in predicate.verdict; any other type has no facts.
Result<EntryFacts> read_test_predicate(const std::string& type, const nlohmann::json& predicate) {
  EntryFacts f;
  if (type != "https://prov.dev/verdict/v1" || !predicate.is_object()) return f;
  auto v = predicate.find("verdict");
  if (v == predicate.end() || !v->is_object()) return f;
  f.relation = v->value("relation", "");
  f.parent_digest = v->value("parent_digest", "");
  f.parent_name = v->value("parent", "");
  return f;
}

LedgerOptions test_options() {
  LedgerOptions o;
  o.read_predicate = read_test_predicate;
  return o;
}

PrivateKey new_key() {
  auto k = PrivateKey::generate(KeyType::kEd25519);
  EXPECT_TRUE(k.is_ok());
  return std::move(k).value();
}

TEST(Ledger, AppendProveVerifyRoundTrip) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok()) << l.status().to_string();
  EXPECT_EQ(Ledger::init(dir.file("l.db")).status().code(), StatusCode::kInvalidArgument);
  auto& ledger = **l;
  EXPECT_EQ(*ledger.size(), 0u);
  EXPECT_EQ(*ledger.root(), empty_root());
  std::vector<std::string> envs;
  for (int i = 0; i < 37; ++i) envs.push_back(make_envelope(key, "model" + std::to_string(i)));
  for (int i = 0; i < 5; ++i) {
    auto idx = ledger.append(envs[i], nullptr);
    ASSERT_TRUE(idx.is_ok()) << idx.status().to_string();
    EXPECT_EQ(*idx, static_cast<uint64_t>(i));
  }
  auto cp5 = ledger.checkpoint(key, "test.example/ledger");
  ASSERT_TRUE(cp5.is_ok()) << cp5.status().to_string();
  auto batch = ledger.append_batch(std::vector<std::string>(envs.begin() + 5, envs.end()));
  ASSERT_TRUE(batch.is_ok()) << batch.status().to_string();
  EXPECT_EQ(batch->front(), 5u);
  EXPECT_EQ(batch->back(), 36u);
  ASSERT_EQ(*ledger.size(), 37u);
  // Replays are refused.
  EXPECT_EQ(ledger.append(envs[3]).status().code(), StatusCode::kInvalidArgument);
  // Stored byte for byte.
  auto e7 = ledger.get(7);
  ASSERT_TRUE(e7.is_ok());
  EXPECT_EQ(e7->envelope, envs[7]);
  EXPECT_EQ(e7->subject_digest, "sha256:" + digest_of("model7"));
  EXPECT_EQ(e7->leaf_hash, leaf_hash(entry_leaf_data(e7->created_at, envs[7])));
  // The cached tree gives the same root as an in-memory rebuild.
  MemoryTree mem;
  for (uint64_t i = 0; i < 37; ++i) mem.append_leaf_hash(ledger.get(i)->leaf_hash);
  auto root = ledger.root();
  ASSERT_TRUE(root.is_ok());
  EXPECT_EQ(*root, *mem.root());
  for (uint64_t n = 1; n <= 37; ++n) {
    auto rn = ledger.root_at(n);
    ASSERT_TRUE(rn.is_ok());
    EXPECT_EQ(*rn, *tree_root(mem, n));
    for (uint64_t i = 0; i < n; ++i) {
      auto p = ledger.inclusion_proof(i, n);
      ASSERT_TRUE(p.is_ok()) << p.status().to_string();
      EXPECT_TRUE(verify_inclusion(p->leaf_hash, i, n, p->path, *rn));
    }
    auto c = ledger.consistency_proof(n, 37);
    ASSERT_TRUE(c.is_ok());
    EXPECT_TRUE(verify_consistency(n, 37, *rn, *root, *c));
  }
  EXPECT_FALSE(ledger.inclusion_proof(37, 37).is_ok());
  EXPECT_FALSE(ledger.consistency_proof(5, 38).is_ok());
  auto cp37 = ledger.checkpoint(key, "test.example/ledger");
  ASSERT_TRUE(cp37.is_ok());
  auto stored = ledger.checkpoints();
  ASSERT_TRUE(stored.is_ok());
  EXPECT_EQ(stored->size(), 2u);

  PublicKey pub = key.public_key();
  VerifyOptions opt;
  opt.checkpoint_key = &pub;
  opt.earlier_checkpoint = *cp5;
  opt.envelope_keys = {&pub};
  auto rep = ledger.verify(opt);
  ASSERT_TRUE(rep.is_ok()) << rep.status().to_string();
  EXPECT_EQ(rep->tree_size, 37u);
  EXPECT_EQ(rep->checkpoints_checked, 2u);
  EXPECT_TRUE(rep->checkpoint_signatures_checked);
  EXPECT_TRUE(rep->earlier_checkpoint_consistent);
  EXPECT_EQ(rep->envelope_signatures_checked, 37u);
  // Wrong checkpoint key and wrong envelope key are rejected.
  PrivateKey other = new_key();
  PublicKey other_pub = other.public_key();
  VerifyOptions wrong = opt;
  wrong.checkpoint_key = &other_pub;
  EXPECT_FALSE(ledger.verify(wrong).is_ok());
  wrong = opt;
  wrong.envelope_keys = {&other_pub};
  EXPECT_FALSE(ledger.verify(wrong).is_ok());
  // A signed append by the wrong signer is refused.
  EXPECT_FALSE(ledger.append(make_envelope(key, "x"), &other_pub).is_ok());
  EXPECT_TRUE(ledger.append(make_envelope(key, "x"), &pub).is_ok());
}

TEST(Ledger, RejectsMalformedEnvelopes) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok());
  std::string good = make_envelope(key, "m");
  for (size_t n : {size_t{0}, size_t{1}, good.size() / 2, good.size() - 1}) {
    EXPECT_EQ((*l)->append(good.substr(0, n)).status().code(), StatusCode::kCorrupt) << n;
  }
  auto not_intoto = dsse_sign("text/plain", "hello", key);
  EXPECT_EQ((*l)->append(*not_intoto).status().code(), StatusCode::kCorrupt);
  auto no_subject = dsse_sign(kInTotoPayloadType,
                              R"({"_type":"https://in-toto.io/Statement/v1","subject":[]})", key);
  EXPECT_EQ((*l)->append(*no_subject).status().code(), StatusCode::kCorrupt);
  // A failing batch leaves nothing behind.
  EXPECT_FALSE((*l)->append_batch({good, "garbage"}).is_ok());
  EXPECT_EQ(*(*l)->size(), 0u);
}

TEST(Ledger, SchemaVersionAndForeignFiles) {
  testing::TempDir dir;
  EXPECT_EQ(Ledger::open(dir.file("missing.db")).status().code(), StatusCode::kNotFound);
  {
    auto l = Ledger::init(dir.file("l.db"));
    ASSERT_TRUE(l.is_ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("l.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto newer = Ledger::open(dir.file("l.db"));
  EXPECT_EQ(newer.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(newer.status().message().find("newer prov; upgrade"), std::string::npos);
  // Some other SQLite database, and a file that is not SQLite at all.
  ASSERT_EQ(sqlite3_open(dir.file("other.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(Ledger::open(dir.file("other.db")).status().code(), StatusCode::kCorrupt);
  testing::write_file(dir.file("junk.db"), std::string(8192, 'j'));
  EXPECT_EQ(Ledger::open(dir.file("junk.db")).status().code(), StatusCode::kCorrupt);
}

TEST(Ledger, TriggersRefuseUpdateAndDelete) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  {
    auto l = Ledger::init(dir.file("l.db"));
    ASSERT_TRUE(l.is_ok());
    ASSERT_TRUE((*l)->append_batch({make_envelope(key, "a"), make_envelope(key, "b")}).is_ok());
    ASSERT_TRUE((*l)->checkpoint(key, "o").is_ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("l.db").c_str(), &db), SQLITE_OK);
  for (const char* sql :
       {"UPDATE entries SET relation = 'x' WHERE idx = 0", "DELETE FROM entries WHERE idx = 1",
        "UPDATE entry_subjects SET digest = 'x'", "DELETE FROM entry_subjects",
        "UPDATE merkle_nodes SET hash = x'00'", "DELETE FROM merkle_nodes",
        "UPDATE checkpoints SET note = ''", "DELETE FROM checkpoints"}) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_CONSTRAINT) << sql;
    EXPECT_NE(std::string(err ? err : "").find("append-only"), std::string::npos) << sql;
    sqlite3_free(err);
  }
  sqlite3_close(db);
  auto l = Ledger::open(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok());
  EXPECT_EQ(*(*l)->size(), 2u);
  EXPECT_TRUE((*l)->verify().is_ok());
}

// A rewritten database (an entry changed, the tree and checkpoints rebuilt from scratch) passes
// its own internal checks but not against a checkpoint kept elsewhere.
TEST(Ledger, RewrittenHistoryCaughtByEarlierCheckpoint) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  PublicKey pub = key.public_key();
  std::vector<std::string> envs;
  for (int i = 0; i < 10; ++i) envs.push_back(make_envelope(key, "m" + std::to_string(i)));
  std::string kept;
  {
    auto l = Ledger::init(dir.file("a.db"));
    ASSERT_TRUE(l.is_ok());
    ASSERT_TRUE((*l)->append_batch(envs).is_ok());
    kept = *(*l)->checkpoint(key, "o");
  }
  envs[4] = make_envelope(key, "forged");
  auto l = Ledger::init(dir.file("b.db"));
  ASSERT_TRUE(l.is_ok());
  ASSERT_TRUE((*l)->append_batch(envs).is_ok());
  ASSERT_TRUE((*l)->append(make_envelope(key, "later")).is_ok());
  VerifyOptions opt;
  opt.checkpoint_key = &pub;
  EXPECT_TRUE((*l)->verify(opt).is_ok());
  opt.earlier_checkpoint = kept;
  auto v = (*l)->verify(opt);
  ASSERT_FALSE(v.is_ok());
  EXPECT_NE(v.status().message().find("rewritten"), std::string::npos) << v.status().message();
  // A checkpoint larger than the ledger means entries vanished.
  auto small = Ledger::init(dir.file("c.db"));
  ASSERT_TRUE((*small)->append(envs[0]).is_ok());
  EXPECT_FALSE((*small)->verify(opt).is_ok());
}

TEST(Ledger, QueriesLineageAndMerge) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  auto l = Ledger::init(dir.file("l.db"), test_options());
  ASSERT_TRUE(l.is_ok());
  auto& ledger = **l;
  // base -> ft1 -> ft2 ; base -> q4
  ASSERT_TRUE(ledger.append(make_envelope(key, "base")).is_ok());
  ASSERT_TRUE(ledger.append(make_envelope(key, "ft1", "base", "finetune")).is_ok());
  ASSERT_TRUE(ledger.append(make_envelope(key, "ft2", "ft1", "finetune")).is_ok());
  ASSERT_TRUE(ledger.append(make_envelope(key, "q4", "base", "quantized")).is_ok());
  QueryFilter f;
  f.relation = "finetune";
  EXPECT_EQ(ledger.query(f)->size(), 2u);
  f = {};
  f.parent_digest = digest_of("base");  // bare hex is normalised
  EXPECT_EQ(ledger.query(f)->size(), 2u);
  f = {};
  f.subject_digest = "sha256:" + digest_of("ft2");
  ASSERT_EQ(ledger.query(f)->size(), 1u);
  EXPECT_EQ(ledger.query(f)->front().index, 2u);
  f = {};
  f.since = "9999";
  EXPECT_TRUE(ledger.query(f)->empty());
  f.since = "2000";
  EXPECT_EQ(ledger.query(f)->size(), 4u);
  auto anc = ledger.ancestors(digest_of("ft2"));
  ASSERT_TRUE(anc.is_ok());
  ASSERT_EQ(anc->size(), 2u);
  EXPECT_EQ((*anc)[0].index, 2u);
  EXPECT_EQ((*anc)[1].index, 1u);
  auto desc = ledger.descendants(digest_of("base"));
  ASSERT_TRUE(desc.is_ok());
  std::set<uint64_t> got;
  for (const auto& e : *desc) got.insert(e.index);
  EXPECT_EQ(got, (std::set<uint64_t>{1, 2, 3}));

  // Merge a shard: one shared entry, two new ones.
  // A shard written without a reader: the merged entries get their columns from this ledger's.
  auto shard = Ledger::init(dir.file("s.db"));
  ASSERT_TRUE(shard.is_ok());
  ASSERT_TRUE((*shard)->append(ledger.get(0)->envelope).is_ok());
  ASSERT_TRUE((*shard)->append(make_envelope(key, "s1")).is_ok());
  ASSERT_TRUE((*shard)->append(make_envelope(key, "s2", "base", "merged")).is_ok());
  EXPECT_EQ((*shard)->get(2)->relation, "");
  auto m = ledger.merge(**shard);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->added, 2u);
  EXPECT_EQ(m->already_present, 1u);
  EXPECT_EQ(*ledger.size(), 6u);
  EXPECT_EQ(ledger.get(4)->leaf_hash, (*shard)->get(1)->leaf_hash);  // time and leaf kept
  EXPECT_EQ(ledger.get(5)->relation, "merged");
  EXPECT_EQ(ledger.get(5)->parent_digest, "sha256:" + digest_of("base"));
  m = ledger.merge(**shard);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->added, 0u);
  auto v = ledger.verify();
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_TRUE(v->lineage_columns_checked);
}

// Random single-byte mutations of a small closed ledger file: each is refused at open, caught
// by verify, or (free or unused bytes) leaves verify passing with every entry unchanged.
TEST(Ledger, RandomByteMutationsAreDetectedOrHarmless) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  PublicKey pub = key.public_key();
  std::vector<LedgerEntry> original;
  std::string cp;
  {
    auto l = Ledger::init(dir.file("l.db"), test_options());
    ASSERT_TRUE(l.is_ok());
    std::vector<std::string> envs;
    for (int i = 0; i < 24; ++i) {
      envs.push_back(make_envelope(key, "m" + std::to_string(i), i ? "m0" : "", "derived"));
    }
    ASSERT_TRUE((*l)->append_batch(envs).is_ok());
    cp = *(*l)->checkpoint(key, "o");
    for (uint64_t i = 0; i < 24; ++i) original.push_back(*(*l)->get(i));
    ASSERT_EQ(original[1].relation, "derived");  // the lineage columns are part of what is checked
  }
  const std::string pristine = testing::read_file(dir.file("l.db"));
  ASSERT_GT(pristine.size(), 4096u);
  std::mt19937_64 rng(20240611);
  int refused = 0, caught = 0, harmless = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = pristine;
    size_t off = rng() % bytes.size();
    bytes[off] = static_cast<char>(bytes[off] ^ (1 + rng() % 255));
    std::string path = dir.file("m" + std::to_string(trial) + ".db");
    testing::write_file(path, bytes);
    auto l = Ledger::open(path, /*create=*/false, test_options());
    if (!l.is_ok()) {
      ++refused;
      continue;
    }
    VerifyOptions opt;
    opt.checkpoint_key = &pub;
    opt.earlier_checkpoint = cp;
    auto v = (*l)->verify(opt);
    if (!v.is_ok()) {
      ++caught;
      continue;
    }
    // Passing verify: everything must be exactly as written.
    auto n = (*l)->size();
    ASSERT_TRUE(n.is_ok());
    ASSERT_EQ(*n, original.size()) << "offset " << off;
    for (uint64_t i = 0; i < *n; ++i) {
      auto e = (*l)->get(i);
      ASSERT_TRUE(e.is_ok()) << "offset " << off;
      EXPECT_EQ(e->envelope, original[i].envelope) << "offset " << off;
      EXPECT_EQ(e->leaf_hash, original[i].leaf_hash) << "offset " << off;
      EXPECT_EQ(e->created_at, original[i].created_at) << "offset " << off;
      EXPECT_EQ(e->relation, original[i].relation) << "offset " << off;
      EXPECT_EQ(e->parent_digest, original[i].parent_digest) << "offset " << off;
      EXPECT_EQ(e->subjects, original[i].subjects) << "offset " << off;
    }
    ++harmless;
    l->reset();
    ::unlink(path.c_str());
  }
  EXPECT_EQ(refused + caught + harmless, 300);
  EXPECT_GT(caught, 0);
  std::cout << "mutations: refused at open " << refused << ", caught by verify " << caught
            << ", harmless (verify passes, entries intact) " << harmless << "\n";
}

TEST(Ledger, ConcurrentWriterProcesses) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  std::string path = dir.file("l.db");
  ASSERT_TRUE(Ledger::init(path).is_ok());
  const int kWriters = 4, kEach = 50;
  // Envelopes are made before fork so that the children only append.
  std::vector<std::vector<std::string>> envs(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kEach; ++i) {
      envs[w].push_back(make_envelope(key, "w" + std::to_string(w) + "-" + std::to_string(i)));
    }
  }
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      {
        auto l = Ledger::open(path);
        if (!l.is_ok()) _exit(2);
        for (const auto& e : envs[w]) {
          if (!(*l)->append(e).is_ok()) {
            code = 3;
            break;
          }
        }
      }
      _exit(code);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "a writer failed (SQLITE_BUSY reached it?)";
  }
  auto l = Ledger::open(path);
  ASSERT_TRUE(l.is_ok());
  ASSERT_EQ(*(*l)->size(), static_cast<uint64_t>(kWriters * kEach));
  std::multiset<std::string> want, got;
  for (const auto& v : envs) want.insert(v.begin(), v.end());
  for (uint64_t i = 0; i < kWriters * kEach; ++i) got.insert((*l)->get(i)->envelope);
  EXPECT_EQ(got, want);
  EXPECT_TRUE((*l)->verify().is_ok());
}

TEST(Ledger, SigkilledWriterLosesNoAcknowledgedEntry) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  std::string path = dir.file("l.db");
  ASSERT_TRUE(Ledger::init(path).is_ok());
  std::vector<std::string> envs;
  for (int i = 0; i < 400; ++i) envs.push_back(make_envelope(key, "c" + std::to_string(i)));
  std::mt19937_64 rng(7);
  size_t next = 0;
  std::map<uint64_t, std::string> acknowledged;
  for (int trial = 0; trial < 20; ++trial) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    size_t start = next;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto l = Ledger::open(path);
      if (!l.is_ok()) _exit(2);
      for (size_t i = start; i < envs.size(); ++i) {
        auto idx = (*l)->append(envs[i]);
        if (!idx.is_ok()) _exit(3);
        uint64_t rec[2] = {*idx, i};
        if (write(fds[1], rec, sizeof(rec)) != sizeof(rec)) _exit(4);
      }
      _exit(0);
    }
    ::close(fds[1]);
    usleep(static_cast<useconds_t>(2000 + rng() % 30000));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    uint64_t rec[2];
    while (read(fds[0], rec, sizeof(rec)) == sizeof(rec)) {
      acknowledged[rec[0]] = envs[rec[1]];
      next = std::max<size_t>(next, rec[1] + 1);
    }
    ::close(fds[0]);
    // Envelope i always lands at index i; an append may have committed without being
    // acknowledged, so the next child starts at the ledger's size.
    auto l = Ledger::open(path);
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    auto n = (*l)->size();
    ASSERT_TRUE(n.is_ok());
    ASSERT_GE(*n, next);
    next = *n;
    auto v = (*l)->verify(VerifyOptions{nullptr, "", {}, trial % 5 == 0});
    ASSERT_TRUE(v.is_ok()) << "trial " << trial << ": " << v.status().to_string();
    for (const auto& [idx, env] : acknowledged) {
      auto e = (*l)->get(idx);
      ASSERT_TRUE(e.is_ok()) << "acknowledged entry " << idx << " lost in trial " << trial;
      EXPECT_EQ(e->envelope, env);
    }
    if (next >= envs.size()) break;
  }
  EXPECT_GT(acknowledged.size(), 0u);
  std::cout << "acknowledged appends checked: " << acknowledged.size() << "\n";
}

// The store reads no predicate by itself: without a reader the lineage columns stay empty, and
// verify checks everything else.
TEST(LedgerPredicateReader, WithoutReaderLineageColumnsStayEmpty) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok());
  std::string env = make_envelope(key, "child", "base", "finetuned");
  ASSERT_TRUE((*l)->append(make_envelope(key, "base")).is_ok());
  ASSERT_TRUE((*l)->append(env).is_ok());
  auto e = (*l)->get(1);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->subject_digest, "sha256:" + digest_of("child"));
  EXPECT_EQ(e->relation, "");
  EXPECT_EQ(e->parent_digest, "");
  QueryFilter f;
  f.parent_digest = digest_of("base");
  EXPECT_TRUE((*l)->query(f)->empty());
  auto v = (*l)->verify();
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_FALSE(v->lineage_columns_checked);
  EXPECT_EQ(v->tree_size, 2u);
  auto fields = parse_statement_envelope(env);
  ASSERT_TRUE(fields.is_ok());
  EXPECT_EQ(fields->subjects, std::vector<std::string>{"sha256:" + digest_of("child")});
  EXPECT_EQ(fields->relation, "");
  EXPECT_EQ(fields->parent_digest, "");
  auto facts = (*l)->facts_of(env);
  ASSERT_TRUE(facts.is_ok());
  EXPECT_EQ(facts->relation, "");
  EXPECT_EQ(facts->parent_name, "");
}

TEST(LedgerPredicateReader, ReaderErrorRefusesTheEnvelope) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  LedgerOptions options;
  options.read_predicate = [](const std::string& type,
                              const nlohmann::json& predicate) -> Result<EntryFacts> {
    if (predicate.contains("verdict")) return corrupt("predicate rejected by its owner");
    return EntryFacts{};
  };
  auto l = Ledger::init(dir.file("l.db"), options);
  ASSERT_TRUE(l.is_ok());
  auto r = (*l)->append(make_envelope(key, "child", "base", "finetuned"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("predicate rejected by its owner"), std::string::npos)
      << r.status().to_string();
  EXPECT_EQ(*(*l)->size(), 0u);
  // All or nothing: one refused envelope in a batch stores none of it.
  auto b = (*l)->append_batch({make_envelope(key, "a"), make_envelope(key, "b", "a", "quantized"),
                               make_envelope(key, "c")});
  ASSERT_FALSE(b.is_ok());
  EXPECT_NE(b.status().message().find("envelope 1"), std::string::npos) << b.status().to_string();
  EXPECT_EQ(*(*l)->size(), 0u);
  EXPECT_EQ(
      parse_statement_envelope(make_envelope(key, "b", "a", "quantized"), options.read_predicate)
          .status()
          .code(),
      StatusCode::kCorrupt);
  // A reader that throws is an error too, not an escape from the library.
  LedgerOptions throwing;
  throwing.read_predicate = [](const std::string&, const nlohmann::json& p) -> Result<EntryFacts> {
    EntryFacts f;
    f.relation = p.at("no such member").get<std::string>();
    return f;
  };
  auto t = Ledger::init(dir.file("t.db"), throwing);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)->append(make_envelope(key, "x")).status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(*(*t)->size(), 0u);
}

// verify recomputes the lineage columns with the ledger's reader: the same file read by a reader
// that gives other facts fails, naming the entry.
TEST(LedgerPredicateReader, VerifyRecomputesColumnsWithTheReader) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  const std::string path = dir.file("l.db");
  {
    auto l = Ledger::init(path, test_options());
    ASSERT_TRUE(l.is_ok());
    ASSERT_TRUE((*l)->append_batch({make_envelope(key, "base"),
                                    make_envelope(key, "child", "base", "finetuned"),
                                    make_envelope(key, "q", "child", "quantized")})
                    .is_ok());
    auto v = (*l)->verify();
    ASSERT_TRUE(v.is_ok()) << v.status().to_string();
    EXPECT_TRUE(v->lineage_columns_checked);
  }
  LedgerOptions other;
  other.read_predicate = [](const std::string& type, const nlohmann::json& p) {
    auto f = read_test_predicate(type, p);
    if (f.is_ok() && f->relation == "quantized") f->relation = "pruned";
    return f;
  };
  auto l = Ledger::open(path, /*create=*/false, other);
  ASSERT_TRUE(l.is_ok());
  auto v = (*l)->verify();
  ASSERT_FALSE(v.is_ok());
  EXPECT_EQ(v.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(v.status().message().find("entry 2"), std::string::npos) << v.status().to_string();
  EXPECT_NE(v.status().message().find("pruned"), std::string::npos) << v.status().to_string();
  // A reader that refuses the predicate fails verification too, naming the entry.
  LedgerOptions refusing;
  refusing.read_predicate = [](const std::string&, const nlohmann::json& p) -> Result<EntryFacts> {
    if (p.contains("verdict")) return corrupt("unreadable verdict");
    return EntryFacts{};
  };
  l = Ledger::open(path, /*create=*/false, refusing);
  ASSERT_TRUE(l.is_ok());
  v = (*l)->verify();
  ASSERT_FALSE(v.is_ok());
  EXPECT_NE(v.status().message().find("entry 1"), std::string::npos) << v.status().to_string();
  EXPECT_NE(v.status().message().find("unreadable verdict"), std::string::npos);
  // Without a reader the lineage columns are not compared; the rest still is.
  l = Ledger::open(path);
  ASSERT_TRUE(l.is_ok());
  v = (*l)->verify();
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_FALSE(v->lineage_columns_checked);
  EXPECT_EQ(v->tree_size, 3u);
  EXPECT_EQ((*l)->get(1)->relation, "finetuned");  // stored columns are read as they are
}

TEST(LedgerPredicateReader, FactsOfAppliesTheReader) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  auto l = Ledger::init(dir.file("l.db"), test_options());
  ASSERT_TRUE(l.is_ok());
  EXPECT_TRUE(static_cast<bool>((*l)->options().read_predicate));
  // An upper-case, bare parent digest is normalised like the column.
  nlohmann::json st;
  st["_type"] = "https://in-toto.io/Statement/v1";
  st["subject"] = {{{"name", "child"}, {"digest", {{"sha256", digest_of("child")}}}}};
  st["predicateType"] = "https://prov.dev/verdict/v1";
  std::string upper = digest_of("base");
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  st["predicate"]["verdict"] = {
      {"relation", "distilled_seq"}, {"parent_digest", upper}, {"parent", "org/base"}};
  std::string env = *dsse_sign(kInTotoPayloadType, st.dump(), key);
  auto f = (*l)->facts_of(env);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->relation, "distilled_seq");
  EXPECT_EQ(f->parent_digest, "sha256:" + digest_of("base"));
  EXPECT_EQ(f->parent_name, "org/base");
  auto fields = parse_statement_envelope(env, read_test_predicate);
  ASSERT_TRUE(fields.is_ok());
  EXPECT_EQ(fields->relation, "distilled_seq");
  EXPECT_EQ(fields->parent_digest, "sha256:" + digest_of("base"));
  EXPECT_EQ(fields->parent_name, "org/base");
  ASSERT_TRUE((*l)->append(env).is_ok());
  EXPECT_EQ((*l)->get(0)->parent_digest, "sha256:" + digest_of("base"));
  // Another predicate type has no facts; a broken envelope is kCorrupt. Nothing was stored.
  st["predicateType"] = "https://example.com/other/v1";
  auto other = (*l)->facts_of(*dsse_sign(kInTotoPayloadType, st.dump(), key));
  ASSERT_TRUE(other.is_ok());
  EXPECT_EQ(other->relation, "");
  EXPECT_EQ(other->parent_digest, "");
  EXPECT_EQ((*l)->facts_of("{").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(*(*l)->size(), 1u);
}

// Runs SQL on a closed ledger file the way someone with write access to it would (no defensive
// settings); every statement must succeed.
void raw_sql(const std::string& path, const std::vector<std::string>& statements) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  for (const auto& sql : statements) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  sqlite3_close(db);
}

int64_t raw_int(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int64_t v = -1;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

// The same signed envelope serialised differently: indented, members in reverse order, with an
// unknown member.
std::string reserialise(const std::string& envelope) {
  nlohmann::json j = nlohmann::json::parse(envelope);
  nlohmann::ordered_json o;
  o["signatures"] = j["signatures"];
  o["payloadType"] = j["payloadType"];
  o["payload"] = j["payload"];
  o["comment"] = "replayed";
  return o.dump(4);
}

TEST(LedgerReplay, ReserialisedEnvelopeIsRefusedNamingTheEarlierEntry) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  PublicKey pub = key.public_key();
  auto l = Ledger::init(dir.file("l.db"), test_options());
  ASSERT_TRUE(l.is_ok());
  std::vector<std::string> envs;
  for (int i = 0; i < 4; ++i) envs.push_back(make_envelope(key, "m" + std::to_string(i)));
  ASSERT_TRUE((*l)->append_batch(envs).is_ok());
  std::string replay = reserialise(envs[2]);
  ASSERT_NE(replay, envs[2]);
  ASSERT_EQ(*envelope_content_digest(replay), *envelope_content_digest(envs[2]));
  ASSERT_NE(*envelope_content_digest(envs[1]), *envelope_content_digest(envs[2]));
  // Still a valid envelope signed by the key: only the content check refuses it.
  ASSERT_TRUE(dsse_verify(replay, pub).is_ok());
  auto r = (*l)->append(replay, &pub);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("replay of entry 2"), std::string::npos)
      << r.status().to_string();
  // The exact bytes, and the same content with an extra (junk) or a stripped keyid signature.
  EXPECT_NE((*l)->append(envs[3]).status().message().find("replay of entry 3"), std::string::npos);
  nlohmann::json extra = nlohmann::json::parse(envs[1]);
  extra["signatures"].push_back({{"keyid", "junk"}, {"sig", base64_encode("not a signature")}});
  EXPECT_NE((*l)->append(extra.dump()).status().message().find("replay of entry 1"),
            std::string::npos);
  nlohmann::json nokeyid = nlohmann::json::parse(envs[0]);
  nokeyid["signatures"][0].erase("keyid");
  EXPECT_NE((*l)->append(nokeyid.dump()).status().message().find("replay of entry 0"),
            std::string::npos);
  // Within one batch: all or nothing, naming the envelope of the batch it repeats.
  std::string fresh = make_envelope(key, "fresh");
  auto b = (*l)->append_batch({fresh, make_envelope(key, "other"), reserialise(fresh)});
  ASSERT_FALSE(b.is_ok());
  EXPECT_NE(b.status().message().find("envelope 2 is a replay of envelope 0 of this batch"),
            std::string::npos)
      << b.status().to_string();
  EXPECT_EQ(*(*l)->size(), 4u);
  // merge counts a re-serialised copy in a shard as already present.
  auto shard = Ledger::init(dir.file("s.db"));
  ASSERT_TRUE(shard.is_ok());
  ASSERT_TRUE((*shard)->append_batch({reserialise(envs[0]), fresh}).is_ok());
  auto m = (*l)->merge(**shard);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->added, 1u);
  EXPECT_EQ(m->already_present, 1u);
  EXPECT_EQ(*(*l)->size(), 5u);
  auto v = (*l)->verify();
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(raw_int(dir.file("l.db"), "SELECT count(*) FROM entry_contents"), 5);
  // The content table is append-only too.
  l->reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("l.db").c_str(), &db), SQLITE_OK);
  for (const char* sql : {"UPDATE entry_contents SET content_sha256 = x'00'",
                          "DELETE FROM entry_contents WHERE idx = 2"}) {
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_CONSTRAINT) << sql;
  }
  sqlite3_close(db);
}

// A version-1 file (before content digests and the pinned key) holding a re-serialised replay
// of an earlier entry, as version 1 allowed: opening migrates it in place, its history is kept,
// and from then on replays are refused.
TEST(LedgerReplay, Version1FileIsMigratedInPlace) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  PublicKey pub = key.public_key();
  const std::string path = dir.file("v1.db");
  std::vector<std::string> envs = {make_envelope(key, "a"),
                                   make_envelope(key, "b", "a", "finetuned")};
  std::string cp;
  {
    auto l = Ledger::init(path, test_options());
    ASSERT_TRUE(l.is_ok());
    ASSERT_TRUE((*l)->append_batch(envs).is_ok());
  }
  // Back to schema version 1: the version-2 objects go, as if the file had been written then.
  raw_sql(path, {"DROP TABLE entry_contents", "DROP TABLE ledger_meta", "PRAGMA user_version=1"});
  // Entry 2: a replay of entry 0, inserted as version 1 accepted it (no tree node is completed
  // by an even index).
  const std::string replay = reserialise(envs[0]);
  const std::string created_at = "2025-01-01T00:00:00.000000Z";
  const std::string leaf = to_hex(leaf_hash(entry_leaf_data(created_at, replay)));
  const std::string sha = to_hex(sha256(replay));
  const std::string subject = "sha256:" + digest_of("a");
  raw_sql(path, {"INSERT INTO entries(idx, envelope, envelope_sha256, leaf_hash, subject_digest, "
                 "relation, parent_digest, created_at) VALUES(2, CAST('" +
                     replay + "' AS BLOB), x'" + sha + "', x'" + leaf + "', '" + subject +
                     "', NULL, NULL, '" + created_at + "')",
                 "INSERT INTO entry_subjects(digest, idx) VALUES('" + subject + "', 2)"});
  ASSERT_EQ(raw_int(path, "PRAGMA user_version"), 1);

  auto l = Ledger::open(path, /*create=*/false, test_options());
  ASSERT_TRUE(l.is_ok()) << l.status().to_string();
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), kLedgerSchemaVersion);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM entry_contents"), 3);
  auto v = (*l)->verify();
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->tree_size, 3u);
  EXPECT_EQ((*l)->get(2)->envelope, replay);  // history stays as it was
  EXPECT_EQ(*(*l)->checkpoint_key_id(), "");
  auto r = (*l)->append(reserialise(envs[1]));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("replay of entry 1"), std::string::npos)
      << r.status().to_string();
  r = (*l)->append(envs[0]);
  EXPECT_NE(r.status().message().find("replay of entry 0"), std::string::npos)
      << r.status().to_string();
  EXPECT_TRUE((*l)->append(make_envelope(key, "c")).is_ok());
  // The old ledger pins its checkpoint key on its next checkpoint.
  ASSERT_TRUE((*l)->checkpoint(key, "o").is_ok());
  EXPECT_EQ(*(*l)->checkpoint_key_id(), pub.key_id());
  VerifyOptions opt;
  opt.checkpoint_key = &pub;
  v = (*l)->verify(opt);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->checkpoint_key_id, pub.key_id());
}

TEST(LedgerCheckpointKey, FirstCheckpointPinsTheKey) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  PrivateKey other = new_key();
  PublicKey pub = key.public_key();
  PublicKey other_pub = other.public_key();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok());
  ASSERT_TRUE((*l)->append(make_envelope(key, "m")).is_ok());
  EXPECT_EQ(*(*l)->checkpoint_key_id(), "");
  ASSERT_TRUE((*l)->checkpoint(key, "o").is_ok());
  EXPECT_EQ(*(*l)->checkpoint_key_id(), pub.key_id());
  ASSERT_TRUE((*l)->append(make_envelope(key, "n")).is_ok());
  auto wrong = (*l)->checkpoint(other, "o");
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find(other_pub.key_id()), std::string::npos)
      << wrong.status().to_string();
  EXPECT_NE(wrong.status().message().find(pub.key_id()), std::string::npos)
      << wrong.status().to_string();
  EXPECT_EQ((*l)->checkpoints()->size(), 1u);  // nothing stored
  ASSERT_TRUE((*l)->checkpoint(key, "o").is_ok());
  EXPECT_TRUE((*l)->pin_checkpoint_key(pub).is_ok());  // already pinned: fine
  EXPECT_EQ((*l)->pin_checkpoint_key(other_pub).code(), StatusCode::kInvalidArgument);
  // verify --key with the pinned key passes; another key is refused naming both; without a key
  // the stored checkpoints are checked under the pinned one.
  VerifyOptions opt;
  opt.checkpoint_key = &pub;
  auto v = (*l)->verify(opt);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->checkpoints_checked, 2u);
  EXPECT_EQ(v->checkpoint_key_id, pub.key_id());
  opt.checkpoint_key = &other_pub;
  v = (*l)->verify(opt);
  ASSERT_FALSE(v.is_ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find(pub.key_id()), std::string::npos) << v.status().to_string();
  EXPECT_NE(v.status().message().find(other_pub.key_id()), std::string::npos);
  v = (*l)->verify();
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->checkpoint_key_id, pub.key_id());
  // The pin is write-once.
  l->reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("l.db").c_str(), &db), SQLITE_OK);
  for (const char* sql : {"UPDATE ledger_meta SET value = 'x'", "DELETE FROM ledger_meta"}) {
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_CONSTRAINT) << sql;
  }
  sqlite3_close(db);
}

TEST(LedgerCheckpointKey, PinnedBeforeTheFirstCheckpointAndOnOldLedgers) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  PrivateKey other = new_key();
  PublicKey pub = key.public_key();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok());
  ASSERT_TRUE((*l)->pin_checkpoint_key(pub).is_ok());
  EXPECT_EQ(*(*l)->checkpoint_key_id(), pub.key_id());
  EXPECT_EQ((*l)->checkpoint(other, "o").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*l)->checkpoint(key, "o").is_ok());
  // Only Ed25519 keys sign checkpoints.
  auto ec = PrivateKey::generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(ec.is_ok());
  auto fresh = Ledger::init(dir.file("f.db"));
  ASSERT_TRUE(fresh.is_ok());
  EXPECT_EQ((*fresh)->pin_checkpoint_key(ec->public_key()).code(), StatusCode::kUnsupported);
  EXPECT_EQ(*(*fresh)->checkpoint_key_id(), "");
  // A ledger from before pinning, whose stored checkpoints were signed by `key`: its key is
  // that one, not whichever signs next.
  const std::string old = dir.file("old.db");
  {
    auto o = Ledger::init(old);
    ASSERT_TRUE(o.is_ok());
    ASSERT_TRUE((*o)->append(make_envelope(key, "m")).is_ok());
    ASSERT_TRUE((*o)->checkpoint(key, "o").is_ok());
  }
  raw_sql(old, {"DROP TABLE entry_contents", "DROP TABLE ledger_meta", "PRAGMA user_version=1"});
  auto o = Ledger::open(old);
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  EXPECT_EQ(*(*o)->checkpoint_key_id(), "");
  auto w = (*o)->checkpoint(other, "o");
  EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(w.status().message().find("checkpoint 1"), std::string::npos) << w.status().to_string();
  EXPECT_TRUE((*o)->checkpoint(key, "o").is_ok());
  EXPECT_EQ(*(*o)->checkpoint_key_id(), pub.key_id());
}

// A fresh ledger with two entries and a checkpoint at `path`, closed.
void make_small_ledger(const std::string& path, const PrivateKey& key) {
  auto l = Ledger::init(path);
  ASSERT_TRUE(l.is_ok());
  ASSERT_TRUE((*l)->append_batch({make_envelope(key, "a"), make_envelope(key, "b")}).is_ok());
  ASSERT_TRUE((*l)->checkpoint(key, "o").is_ok());
}

// verify checks that the file's schema is prov's: each append-only trigger present and
// unmodified, the tables with their columns, the indexes, and no trigger of anyone else's.
TEST(LedgerSchemaCheck, VerifyNamesDroppedOrChangedTriggersAndTables) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  const std::string pristine = dir.file("pristine.db");
  make_small_ledger(pristine, key);
  {
    auto l = Ledger::open(pristine);
    ASSERT_TRUE(l.is_ok());
    ASSERT_TRUE((*l)->verify().is_ok());
  }
  const std::string bytes = testing::read_file(pristine);
  std::vector<std::string> triggers = {
      "entries_no_update",  "entries_no_delete",  "subjects_no_update",    "subjects_no_delete",
      "nodes_no_update",    "nodes_no_delete",    "checkpoints_no_update", "checkpoints_no_delete",
      "contents_no_update", "contents_no_delete", "meta_no_update",        "meta_no_delete"};
  EXPECT_EQ(raw_int(pristine, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"),
            static_cast<int64_t>(triggers.size()));
  int n = 0;
  auto expect_caught = [&](const std::vector<std::string>& attack, const std::string& expected) {
    const std::string path = dir.file("t" + std::to_string(n++) + ".db");
    testing::write_file(path, bytes);
    raw_sql(path, attack);
    auto l = Ledger::open(path);
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    auto v = (*l)->verify();
    ASSERT_FALSE(v.is_ok()) << attack.front();
    EXPECT_EQ(v.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(v.status().message().find(expected), std::string::npos)
        << attack.front() << ": " << v.status().to_string();
  };
  for (const auto& t : triggers) {
    expect_caught({"DROP TRIGGER " + t}, "trigger '" + t + "' is missing");
  }
  // Recreated with the same name but a body that lets the change through.
  expect_caught({"DROP TRIGGER entries_no_update",
                 "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries BEGIN SELECT 1; END"},
                "trigger 'entries_no_update' was modified");
  // Recreated as an AFTER trigger on another table.
  expect_caught({"DROP TRIGGER checkpoints_no_delete",
                 "CREATE TRIGGER checkpoints_no_delete AFTER DELETE ON merkle_nodes "
                 "BEGIN SELECT RAISE(ABORT, 'prov ledger checkpoints are append-only'); END"},
                "trigger 'checkpoints_no_delete' was modified");
  // A foreign trigger that silently drops every later append.
  expect_caught({"CREATE TRIGGER swallow BEFORE INSERT ON entries BEGIN SELECT RAISE(IGNORE); END"},
                "unexpected trigger 'swallow'");
  expect_caught({"ALTER TABLE checkpoints ADD COLUMN signer TEXT"},
                "table 'checkpoints' has an unexpected column 'signer TEXT'");
  expect_caught({"ALTER TABLE checkpoints DROP COLUMN created_at"},
                "table 'checkpoints' lacks column 'created_at TEXT NOT NULL'");
  expect_caught({"DROP INDEX entries_relation"}, "index 'entries_relation' is missing");
  {  // A table gone is refused at open already.
    const std::string path = dir.file("notable.db");
    testing::write_file(path, bytes);
    raw_sql(path, {"DROP TABLE ledger_meta"});
    EXPECT_EQ(Ledger::open(path).status().code(), StatusCode::kCorrupt);
  }
  // Extra tables and indexes of one's own are tolerated.
  const std::string extra = dir.file("extra.db");
  testing::write_file(extra, bytes);
  raw_sql(extra, {"CREATE TABLE notes(x TEXT)",
                  "CREATE INDEX entries_by_subject ON "
                  "entries(subject_digest)"});
  auto l = Ledger::open(extra);
  ASSERT_TRUE(l.is_ok());
  auto v = (*l)->verify();
  EXPECT_TRUE(v.is_ok()) << v.status().to_string();
}

}  // namespace
}  // namespace prov::store
