// End-to-end tests of `prov key` and `prov ledger`: the real executable on real files, proofs
// checked with the store library, tampering done the way an attacker with file access would.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "store/checkpoint.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "store/merkle.h"
#include "tests/support/prov_cli.h"
#include "tests/support/test_support.h"
#include "tests/tools/validate.h"

namespace {

using nlohmann::json;
using prov::store::Hash;

using prov::testing::Outcome;
using prov::testing::run_prov;

// Runs a command that must succeed and parses its stdout as JSON.
json prov_json(const std::string& args) {
  Outcome r = run_prov(args + " --json", /*merge_stderr=*/false);
  EXPECT_EQ(r.code, 0) << args << "\n" << run_prov(args).out;
  if (r.code != 0) return json();
  return json::parse(r.out);
}

Hash hash_from_hex(const std::string& hex) {
  Hash h{};
  auto bytes = prov::from_hex(hex);
  EXPECT_TRUE(bytes.is_ok()) << hex;
  if (bytes.is_ok() && bytes->size() == h.size())
    std::copy(bytes->begin(), bytes->end(), h.begin());
  return h;
}

std::vector<Hash> path_from_json(const json& a) {
  std::vector<Hash> out;
  for (const auto& h : a) out.push_back(hash_from_hex(h.get<std::string>()));
  return out;
}

std::string model_digest(const std::string& name) {
  return prov::to_hex(prov::sha256(name));
}

// A signed DSSE envelope whose in-toto Statement says `subject` was derived from `parent`.
// A signed lineage report (docs/formats/report.md) for `subject`: derived from `parent` by
// `relation`, or, without a parent, independent of the one reference.
std::string make_envelope(const prov::store::PrivateKey& key, const std::string& subject,
                          const std::string& parent = "", const std::string& relation = "") {
  const std::string ref = parent.empty() ? std::string("reference") : parent;
  json report = {
      {"report_version", 1},
      {"candidate", {{"name", subject}, {"digest", {{"sha256", model_digest(subject)}}}}},
      {"verdict",
       {{"relation", parent.empty() ? std::string("independent") : relation},
        {"parent", parent.empty() ? json(nullptr) : json(parent)},
        {"p_value", 1e-4},
        {"confidence", "high"},
        {"summary", "test"}}},
      {"references",
       json::array({{{"name", ref},
                     {"digest", {{"sha256", model_digest(ref)}}},
                     {"relation", parent.empty() ? std::string("independent") : relation},
                     {"p_value", 1e-4}}})},
      {"evidence", json::array()},
      {"graph", {{"nodes", json::array()}, {"edges", json::array()}}},
      {"tool", {{"name", "prov"}, {"version", "test"}}}};
  if (!parent.empty()) report["verdict"]["parent_digest"] = "sha256:" + model_digest(parent);
  json st = {{"_type", "https://in-toto.io/Statement/v1"},
             {"subject", {{{"name", subject}, {"digest", {{"sha256", model_digest(subject)}}}}}},
             {"predicateType", "urn:prov:predicate:lineage-report:v1"},
             {"predicate", report}};
  auto env = prov::store::dsse_sign(prov::store::kInTotoPayloadType, st.dump(), key);
  EXPECT_TRUE(env.is_ok()) << env.status().to_string();
  return env.is_ok() ? *env : std::string();
}

struct Fixture {
  prov::testing::TempDir dir;
  std::string key, pub, db;
  prov::store::PrivateKey* signer = nullptr;

  std::string file(const std::string& n) const { return dir.file(n); }

  // Writes an envelope file and returns its path.
  std::string envelope_file(const std::string& name, const std::string& subject,
                            const std::string& parent = "", const std::string& relation = "") {
    std::string path = file(name + ".dsse.json");
    prov::testing::write_file(path, make_envelope(*signer, subject, parent, relation));
    return path;
  }
};

int count_rows(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  int n = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return n;
}

// What an attacker with write access to the file does: drops the append-only triggers, edits
// the tables directly through SQLite and, unless `restore_triggers` is false, recreates the
// triggers exactly as they were (ledger verify checks that they are there and unmodified).
void attack(const std::string& db, const std::vector<std::string>& statements,
            bool restore_triggers = true) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  std::vector<std::string> drops, creates;
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'", -1,
                               &st, nullptr),
            SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    drops.push_back("DROP TRIGGER \"" +
                    std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) + "\"");
    creates.push_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
  }
  sqlite3_finalize(st);
  EXPECT_FALSE(drops.empty());
  for (const auto& sql : drops)
    ASSERT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  for (const auto& sql : statements) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  if (restore_triggers) {
    for (const auto& sql : creates)
      ASSERT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sql;
  }
  sqlite3_close(h);
}

class LedgerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    f_.key = f_.file("signer.pem");
    f_.pub = f_.key + ".pub";
    f_.db = f_.file("ledger.db");
    ASSERT_EQ(run_prov("key generate --out " + f_.key).code, 0);
    auto k = prov::store::PrivateKey::load(f_.key);
    ASSERT_TRUE(k.is_ok()) << k.status().to_string();
    key_ = std::make_unique<prov::store::PrivateKey>(std::move(*k));
    f_.signer = key_.get();
    ASSERT_EQ(run_prov("ledger init " + f_.db).code, 0);
  }

  // Appends n unrelated envelopes in one call and returns the --json result.
  json append_models(int first, int n) {
    std::string args = "ledger append " + f_.db + " --key " + f_.pub;
    for (int i = first; i < first + n; ++i) {
      args += " " + f_.envelope_file("e" + std::to_string(i), "model-" + std::to_string(i));
    }
    return prov_json(args);
  }

  Fixture f_;
  std::unique_ptr<prov::store::PrivateKey> key_;
};

TEST(KeyCli, GenerateWritesPrivate0600AndRefusesToOverwrite) {
  prov::testing::TempDir dir;
  std::string key = dir.file("k.pem");
  Outcome r = run_prov("key generate --out " + key, /*merge_stderr=*/false);
  ASSERT_EQ(r.code, 0) << r.out;
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto pub = prov::store::PublicKey::load(key + ".pub");
  ASSERT_TRUE(pub.is_ok()) << pub.status().to_string();
  EXPECT_EQ(pub->type(), prov::store::KeyType::kEd25519);
  EXPECT_EQ(r.out, pub->key_id() + "\n");
  auto priv = prov::store::PrivateKey::load(key);
  ASSERT_TRUE(priv.is_ok());
  EXPECT_EQ(priv->public_key().key_id(), pub->key_id());

  std::string before = prov::testing::read_file(key);
  Outcome again = run_prov("key generate --out " + key);
  EXPECT_EQ(again.code, 2) << again.out;
  EXPECT_NE(again.out.find("exists"), std::string::npos) << again.out;
  EXPECT_EQ(prov::testing::read_file(key), before);

  json ec = prov_json("key generate --type ecdsa-p256 --out " + dir.file("ec.pem"));
  EXPECT_EQ(ec["type"], "ecdsa-p256");
  auto ecpub = prov::store::PublicKey::load(dir.file("ec.pem.pub"));
  ASSERT_TRUE(ecpub.is_ok());
  EXPECT_EQ(ec["key_id"], ecpub->key_id());
  EXPECT_EQ(run_prov("key generate --type rsa --out " + dir.file("rsa.pem")).code, 2);
}

TEST_F(LedgerCli, AppendCheckpointProveConsistencyVerify) {
  EXPECT_EQ(run_prov("ledger init " + f_.db).code, 2);  // refuses to initialise over a file
  json appended = append_models(0, 5);
  ASSERT_EQ(appended.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(appended[i]["index"], i);
    std::string env = prov::testing::read_file(appended[i]["file"].get<std::string>());
    Hash leaf = prov::store::leaf_hash(
        prov::store::entry_leaf_data(appended[i]["created_at"].get<std::string>(), env));
    EXPECT_EQ(appended[i]["leaf_hash"], prov::to_hex(leaf));
    EXPECT_EQ(appended[i]["envelope_sha256"], prov::to_hex(prov::sha256(env)));
  }
  // The same envelope again is a replay.
  Outcome replay = run_prov("ledger append " + f_.db + " " + f_.file("e3.dsse.json"));
  EXPECT_EQ(replay.code, 2) << replay.out;

  std::string cp_file = f_.file("cp5.note");
  Outcome cp = run_prov("ledger checkpoint " + f_.db + " --key " + f_.key + " -o " + cp_file);
  ASSERT_EQ(cp.code, 0) << cp.out;
  auto pub = prov::store::PublicKey::load(f_.pub);
  ASSERT_TRUE(pub.is_ok());
  // The default origin is the ledger's own: prov-ledger/<file name>/<random id>.
  auto opened = prov::store::Ledger::open(f_.db);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  const std::string origin = *(*opened)->origin();
  EXPECT_EQ(origin.rfind("prov-ledger/ledger.db/", 0), 0u) << origin;
  opened->reset();
  auto signed_cp = prov::store::verify_checkpoint(prov::testing::read_file(cp_file), origin, *pub);
  ASSERT_TRUE(signed_cp.is_ok()) << signed_cp.status().to_string();
  EXPECT_EQ(signed_cp->tree_size, 5u);

  for (uint64_t i = 0; i < 5; ++i) {
    json p = prov_json("ledger prove " + f_.db + " --index " + std::to_string(i));
    EXPECT_EQ(p["tree_size"], 5);
    EXPECT_EQ(p["leaf_hash"], appended[i]["leaf_hash"]);
    EXPECT_EQ(p["created_at"], appended[i]["created_at"]);
    EXPECT_EQ(p["root"], prov::to_hex(signed_cp->root));
    EXPECT_TRUE(prov::store::verify_inclusion(hash_from_hex(p["leaf_hash"]), i, 5,
                                              path_from_json(p["path"]), signed_cp->root))
        << "index " << i;
    // A proof for another index must not verify.
    EXPECT_FALSE(prov::store::verify_inclusion(hash_from_hex(p["leaf_hash"]), (i + 1) % 5, 5,
                                               path_from_json(p["path"]), signed_cp->root));
  }
  json small = prov_json("ledger prove " + f_.db + " --index 1 --size 3");
  EXPECT_EQ(small["tree_size"], 3);
  EXPECT_TRUE(prov::store::verify_inclusion(hash_from_hex(small["leaf_hash"]), 1, 3,
                                            path_from_json(small["path"]),
                                            hash_from_hex(small["root"])));
  EXPECT_EQ(run_prov("ledger prove " + f_.db + " --index 5").code, 2);

  json c = prov_json("ledger consistency " + f_.db + " --from 2");
  EXPECT_EQ(c["from"], 2);
  EXPECT_EQ(c["to"], 5);
  EXPECT_EQ(c["new_root"], prov::to_hex(signed_cp->root));
  EXPECT_TRUE(prov::store::verify_consistency(
      2, 5, hash_from_hex(c["old_root"]), hash_from_hex(c["new_root"]), path_from_json(c["path"])));
  EXPECT_EQ(run_prov("ledger consistency " + f_.db + " --from 6").code, 2);

  json v = prov_json("ledger verify " + f_.db + " --key " + f_.pub + " --envelope-key " + f_.pub);
  EXPECT_EQ(v["ok"], true);
  EXPECT_EQ(v["tree_size"], 5);
  EXPECT_EQ(v["checkpoints_checked"], 1);
  EXPECT_EQ(v["checkpoint_signatures_checked"], true);
  EXPECT_EQ(v["envelope_signatures_checked"], 5);

  // More appends; the ledger must still extend the checkpoint kept outside it.
  append_models(5, 2);
  json v2 = prov_json("ledger verify " + f_.db + " --checkpoint " + cp_file + " --key " + f_.pub);
  EXPECT_EQ(v2["tree_size"], 7);
  EXPECT_EQ(v2["earlier_checkpoint_consistent"], true);
  json c2 = prov_json("ledger consistency " + f_.db + " --from 5 --to 7");
  EXPECT_EQ(c2["old_root"], prov::to_hex(signed_cp->root));
  EXPECT_TRUE(prov::store::verify_consistency(5, 7, signed_cp->root, hash_from_hex(c2["new_root"]),
                                              path_from_json(c2["path"])));
  Outcome human = run_prov("ledger verify " + f_.db);
  EXPECT_EQ(human.code, 0) << human.out;
  EXPECT_NE(human.out.find("7 entries"), std::string::npos) << human.out;
  // --checkpoint without the key that signed it is refused.
  EXPECT_EQ(run_prov("ledger verify " + f_.db + " --checkpoint " + cp_file).code, 2);
}

TEST_F(LedgerCli, TamperedEnvelopeIsCaught) {
  append_models(0, 4);
  ASSERT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.key).code, 0);
  ASSERT_EQ(run_prov("ledger verify " + f_.db + " --key " + f_.pub).code, 0);
  // Swap the envelope of entry 2 for another validly signed one.
  std::string forged = make_envelope(*key_, "model-forged");
  std::string hexenv = prov::to_hex(reinterpret_cast<const uint8_t*>(forged.data()), forged.size());
  attack(f_.db, {"UPDATE entries SET envelope = X'" + hexenv + "' WHERE idx = 2"});
  Outcome r = run_prov("ledger verify " + f_.db + " --key " + f_.pub);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("entry 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("leaf hash"), std::string::npos) << r.out;
  Outcome j = run_prov("ledger verify " + f_.db + " --json", /*merge_stderr=*/false);
  EXPECT_EQ(j.code, 2);
  json report = json::parse(j.out);
  EXPECT_EQ(report["ok"], false);
  EXPECT_NE(report["error"].get<std::string>().find("entry 2"), std::string::npos);
}

TEST_F(LedgerCli, RewrittenHistoryIsCaughtByTheEarlierCheckpoint) {
  append_models(0, 7);
  std::string cp_file = f_.file("cp7.note");
  ASSERT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.key + " -o " + cp_file).code, 0);
  // Remove the last two entries with everything that would betray it: subjects, tree nodes
  // covering them, and every stored checkpoint.
  attack(f_.db,
         {"DELETE FROM entry_subjects WHERE idx >= 5", "DELETE FROM entry_contents WHERE idx >= 5",
          "DELETE FROM entries WHERE idx >= 5",
          "DELETE FROM merkle_nodes WHERE ((idx + 1) << level) > 5", "DELETE FROM checkpoints"});
  ASSERT_EQ(count_rows(f_.db, "SELECT count(*) FROM entries"), 5);
  // The database alone is self-consistent again...
  Outcome alone = run_prov("ledger verify " + f_.db + " --key " + f_.pub);
  EXPECT_EQ(alone.code, 0) << alone.out;
  // ...but not with the checkpoint kept outside it.
  Outcome r = run_prov("ledger verify " + f_.db + " --checkpoint " + cp_file + " --key " + f_.pub);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("earlier checkpoint"), std::string::npos) << r.out;
}

TEST_F(LedgerCli, WrongKeysAreRejected) {
  std::string other = f_.file("other.pem");
  ASSERT_EQ(run_prov("key generate --out " + other).code, 0);
  // An envelope not signed by --key appends nothing.
  std::string env = f_.envelope_file("a", "model-a");
  Outcome app = run_prov("ledger append " + f_.db + " " + env + " --key " + other + ".pub");
  EXPECT_EQ(app.code, 2) << app.out;
  EXPECT_NE(app.out.find(env), std::string::npos) << app.out;
  EXPECT_EQ(count_rows(f_.db, "SELECT count(*) FROM entries"), 0);

  ASSERT_EQ(run_prov("ledger append " + f_.db + " " + env).code, 0);
  std::string cp_file = f_.file("cp.note");
  ASSERT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.key + " -o " + cp_file).code, 0);
  Outcome cp = run_prov("ledger verify " + f_.db + " --key " + other + ".pub");
  EXPECT_EQ(cp.code, 2) << cp.out;
  EXPECT_NE(cp.out.find("checkpoint"), std::string::npos) << cp.out;
  EXPECT_EQ(
      run_prov("ledger verify " + f_.db + " --checkpoint " + cp_file + " --key " + other + ".pub")
          .code,
      2);
  Outcome envkey = run_prov("ledger verify " + f_.db + " --envelope-key " + other + ".pub");
  EXPECT_EQ(envkey.code, 2) << envkey.out;
  EXPECT_NE(envkey.out.find("signature"), std::string::npos) << envkey.out;
  // Checkpoints are Ed25519 only.
  ASSERT_EQ(run_prov("key generate --type ecdsa-p256 --out " + f_.file("ec.pem")).code, 0);
  EXPECT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.file("ec.pem")).code, 2);
  // Not a ledger at all.
  prov::testing::write_file(f_.file("junk.db"), std::string(4096, 'x'));
  EXPECT_EQ(run_prov("ledger verify " + f_.file("junk.db")).code, 2);
  EXPECT_EQ(run_prov("ledger verify " + f_.file("missing.db")).code, 2);
}

TEST_F(LedgerCli, QueryAndLineage) {
  std::string base = "sha256:" + model_digest("base");
  std::string ft = "sha256:" + model_digest("ft");
  std::string ds = "sha256:" + model_digest("distilled");
  Outcome r =
      run_prov("ledger append " + f_.db + " " + f_.envelope_file("a", "ft", "base", "finetuned") +
               " " + f_.envelope_file("b", "distilled", "ft", "distilled_seq") + " " +
               f_.envelope_file("c", "unrelated"));
  ASSERT_EQ(r.code, 0) << r.out;

  json fine = prov_json("ledger query " + f_.db + " --relation finetuned");
  ASSERT_EQ(fine.size(), 1u);
  EXPECT_EQ(fine[0]["subject_digest"], ft);
  EXPECT_EQ(fine[0]["parent_digest"], base);

  json by_parent = prov_json("ledger query " + f_.db + " --parent " + model_digest("ft"));
  ASSERT_EQ(by_parent.size(), 1u);
  EXPECT_EQ(by_parent[0]["index"], 1);

  json by_model = prov_json("ledger query " + f_.db + " --model " + ds);
  ASSERT_EQ(by_model.size(), 1u);
  EXPECT_EQ(by_model[0]["relation"], "distilled_seq");

  json anc = prov_json("ledger query " + f_.db + " --ancestors " + ds);
  ASSERT_EQ(anc.size(), 2u);
  EXPECT_EQ(anc[0]["index"], 1);
  EXPECT_EQ(anc[1]["index"], 0);

  json desc = prov_json("ledger query " + f_.db + " --descendants " + base);
  ASSERT_EQ(desc.size(), 2u);
  EXPECT_EQ(desc[0]["subject_digest"], ft);
  EXPECT_EQ(desc[1]["subject_digest"], ds);
  json desc_ft =
      prov_json("ledger query " + f_.db + " --descendants " + base + " --relation distilled_seq");
  ASSERT_EQ(desc_ft.size(), 1u);

  EXPECT_EQ(prov_json("ledger query " + f_.db).size(), 3u);
  EXPECT_EQ(prov_json("ledger query " + f_.db + " --since 9999-01-01T00:00:00Z").size(), 0u);
  EXPECT_EQ(
      run_prov("ledger query " + f_.db + " --ancestors " + ds + " --descendants " + base).code, 2);
}

TEST_F(LedgerCli, MergeTwoLedgers) {
  std::string shared = f_.envelope_file("shared", "model-shared");
  std::string a = f_.envelope_file("a", "model-a");
  std::string b1 = f_.envelope_file("b1", "model-b1");
  std::string b2 = f_.envelope_file("b2", "model-b2");
  std::string other = f_.file("shard.db");
  ASSERT_EQ(run_prov("ledger init " + other).code, 0);
  ASSERT_EQ(run_prov("ledger append " + f_.db + " " + shared + " " + a).code, 0);
  ASSERT_EQ(run_prov("ledger append " + other + " " + shared + " " + b1 + " " + b2).code, 0);

  json m = prov_json("ledger merge " + f_.db + " " + other);
  EXPECT_EQ(m["added"], 2);
  EXPECT_EQ(m["already_present"], 1);
  EXPECT_EQ(m["tree_size"], 4);
  json again = prov_json("ledger merge " + f_.db + " " + other);
  EXPECT_EQ(again["added"], 0);
  EXPECT_EQ(again["already_present"], 3);

  json v = prov_json("ledger verify " + f_.db + " --envelope-key " + f_.pub);
  EXPECT_EQ(v["tree_size"], 4);
  json b2q = prov_json("ledger query " + f_.db + " --model " + model_digest("model-b2"));
  ASSERT_EQ(b2q.size(), 1u);
  EXPECT_EQ(b2q[0]["index"], 3);
  EXPECT_EQ(run_prov("ledger merge " + f_.db + " " + f_.file("missing.db")).code, 2);
}

// --- hostile clients and forged packages --------------------------------------------------

TEST_F(LedgerCli, ReserialisedReplayIsRefused) {
  json appended = append_models(0, 3);
  ASSERT_EQ(appended.size(), 3u);
  // The same signed envelope, indented and with its members reordered.
  json env = json::parse(prov::testing::read_file(f_.file("e1.dsse.json")));
  nlohmann::ordered_json o;
  o["signatures"] = env["signatures"];
  o["payloadType"] = env["payloadType"];
  o["payload"] = env["payload"];
  std::string replay = f_.file("replay.dsse.json");
  prov::testing::write_file(replay, o.dump(2));
  Outcome r = run_prov("ledger append " + f_.db + " --key " + f_.pub + " " + replay);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("replay of entry 1"), std::string::npos) << r.out;
  EXPECT_EQ(count_rows(f_.db, "SELECT count(*) FROM entries"), 3);
  EXPECT_EQ(run_prov("ledger verify " + f_.db).code, 0);
}

TEST_F(LedgerCli, CheckpointKeyIsPinned) {
  append_models(0, 2);
  std::string other = f_.file("other.pem");
  ASSERT_EQ(run_prov("key generate --out " + other).code, 0);
  auto pub = prov::store::PublicKey::load(f_.pub);
  auto other_pub = prov::store::PublicKey::load(other + ".pub");
  ASSERT_TRUE(pub.is_ok() && other_pub.is_ok());
  ASSERT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.key).code, 0);
  append_models(2, 1);
  Outcome wrong = run_prov("ledger checkpoint " + f_.db + " --key " + other);
  EXPECT_EQ(wrong.code, 2) << wrong.out;
  EXPECT_NE(wrong.out.find(pub->key_id()), std::string::npos) << wrong.out;
  EXPECT_NE(wrong.out.find(other_pub->key_id()), std::string::npos) << wrong.out;
  EXPECT_EQ(count_rows(f_.db, "SELECT count(*) FROM checkpoints"), 1);
  // The ledger still verifies under its key, and says which key is pinned.
  json v = prov_json("ledger verify " + f_.db + " --key " + f_.pub);
  EXPECT_EQ(v["ok"], true);
  EXPECT_EQ(v["checkpoint_key_id"], pub->key_id());
  Outcome v2 = run_prov("ledger verify " + f_.db + " --key " + other + ".pub");
  EXPECT_EQ(v2.code, 2) << v2.out;
  EXPECT_NE(v2.out.find("pinned"), std::string::npos) << v2.out;
  // Pinned up front with ledger init --checkpoint-key.
  std::string db2 = f_.file("pinned.db");
  json init = prov_json("ledger init " + db2 + " --checkpoint-key " + f_.pub);
  EXPECT_EQ(init["checkpoint_key_id"], pub->key_id());
  Outcome first = run_prov("ledger checkpoint " + db2 + " --key " + other);
  EXPECT_EQ(first.code, 2) << first.out;
  EXPECT_NE(first.out.find(pub->key_id()), std::string::npos) << first.out;
  EXPECT_EQ(run_prov("ledger checkpoint " + db2 + " --key " + f_.key).code, 0);
  ASSERT_EQ(run_prov("key generate --type ecdsa-p256 --out " + f_.file("ec.pem")).code, 0);
  EXPECT_EQ(
      run_prov("ledger init " + f_.file("ec.db") + " --checkpoint-key " + f_.file("ec.pem.pub"))
          .code,
      2);
}

TEST_F(LedgerCli, VerifyNamesADroppedTrigger) {
  append_models(0, 3);
  ASSERT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.key).code, 0);
  // Only the guard is removed: every entry is still intact, but the file is no longer
  // append-only.
  attack(f_.db, {}, /*restore_triggers=*/false);
  Outcome r = run_prov("ledger verify " + f_.db + " --key " + f_.pub);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("trigger '"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("is missing"), std::string::npos) << r.out;
  Outcome j = run_prov("ledger verify " + f_.db + " --json", /*merge_stderr=*/false);
  EXPECT_EQ(j.code, 2);
  EXPECT_EQ(json::parse(j.out)["ok"], false);
}

TEST(KeyCli, GenerateRefusesASymlinkedPublicKeyPath) {
  prov::testing::TempDir dir;
  std::string victim = dir.file("authorized_keys");
  prov::testing::write_file(victim, "precious\n");
  std::string key = dir.file("k.pem");
  ASSERT_EQ(::symlink(victim.c_str(), (key + ".pub").c_str()), 0);
  Outcome r = run_prov("key generate --out " + key);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("symbolic link"), std::string::npos) << r.out;
  EXPECT_EQ(prov::testing::read_file(victim), "precious\n");
  struct stat st {};
  EXPECT_NE(::lstat(key.c_str(), &st), 0) << "a private key was left behind";
  // An existing public key file is refused too.
  std::string key2 = dir.file("k2.pem");
  prov::testing::write_file(key2 + ".pub", "old\n");
  Outcome r2 = run_prov("key generate --out " + key2);
  EXPECT_EQ(r2.code, 2) << r2.out;
  EXPECT_NE(r2.out.find("exists"), std::string::npos) << r2.out;
  EXPECT_EQ(prov::testing::read_file(key2 + ".pub"), "old\n");
}

TEST_F(LedgerCli, PrivateKeyReadableByOthersIsRefused) {
  append_models(0, 1);
  ASSERT_EQ(::chmod(f_.key.c_str(), 0644), 0);
  Outcome r = run_prov("ledger checkpoint " + f_.db + " --key " + f_.key);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("is readable by others (mode 0644): chmod 600"), std::string::npos) << r.out;
  EXPECT_EQ(count_rows(f_.db, "SELECT count(*) FROM checkpoints"), 0);
  ASSERT_EQ(::chmod(f_.key.c_str(), 0600), 0);
  EXPECT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.key).code, 0);
}

TEST_F(LedgerCli, BadOptionValuesExit2) {
  append_models(0, 2);
  const std::string digest = "sha256:" + model_digest("model-0");
  for (const std::string& args :
       {"ledger query " + f_.db + " --limit -1", "ledger query " + f_.db + " --limit abc",
        "ledger query " + f_.db + " --limit 99999999999999999999",
        "ledger query " + f_.db + " --depth 0", "ledger query " + f_.db + " --depth -3",
        "ledger query " + f_.db + " --ancestors " + digest + " --depth 0",
        "ledger query " + f_.db + " --since yesterday",
        "ledger query " + f_.db + " --since 2025-1-1", "ledger query " + f_.db + " --model nothex",
        "ledger query " + f_.db + " --parent sha256:zz",
        "ledger query " + f_.db + " --descendants abc", "ledger prove " + f_.db + " --index -1",
        "ledger prove " + f_.db + " --index 0 --size -1",
        "ledger consistency " + f_.db + " --from -1",
        "ledger consistency " + f_.db + " --from 0 --to -2",
        "ledger export " + f_.db + " --model " + digest + " --format spdx"}) {
    Outcome r = run_prov(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("internal error"), std::string::npos) << args << "\n" << r.out;
  }
  Outcome limit = run_prov("ledger query " + f_.db + " --limit -1");
  EXPECT_NE(limit.out.find("--limit"), std::string::npos) << limit.out;
  EXPECT_NE(limit.out.find("not in range"), std::string::npos) << limit.out;
  // Good values still work.
  EXPECT_EQ(prov_json("ledger query " + f_.db + " --limit 1").size(), 1u);
  EXPECT_EQ(prov_json("ledger query " + f_.db + " --since 2000-01-01").size(), 2u);
  EXPECT_EQ(prov_json("ledger query " + f_.db + " --since 2000-01-01T00:00:00.5Z").size(), 2u);
  EXPECT_EQ(prov_json("ledger query " + f_.db + " --model " + model_digest("model-1")).size(), 1u);
}

TEST_F(LedgerCli, DisclosureIndexProvesTheExportComplete) {
  const std::string base = "sha256:" + model_digest("base");
  ASSERT_EQ(run_prov("ledger append " + f_.db + " " + f_.envelope_file("a", "base") + " " +
                     f_.envelope_file("b", "ft", "base", "finetuned") + " " +
                     f_.envelope_file("c", "ft-q", "ft", "quantized") + " " +
                     f_.envelope_file("d", "unrelated"))
                .code,
            0);
  ASSERT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.key).code, 0);
  const std::string pkg = f_.file("base.disclosure.json");
  Outcome ex =
      run_prov("ledger export " + f_.db + " --model " + base + " --key " + f_.key + " -o " + pkg);
  ASSERT_EQ(ex.code, 0) << ex.out;
  json ok = prov_json("verify-export " + pkg + " --key " + f_.pub);
  EXPECT_EQ(ok["verified"], true);
  EXPECT_EQ(ok["complete"], true);
  EXPECT_EQ(ok["index_entries"], 3);
  Outcome human = run_prov("verify-export " + pkg + " --key " + f_.pub);
  EXPECT_EQ(human.code, 0) << human.out;
  EXPECT_EQ(human.out.rfind("verified: ", 0), 0u) << human.out;
  EXPECT_EQ(human.out.find("NOT proven complete"), std::string::npos) << human.out;

  // The grandchild's entry (2) removed from the package: named, exit 2.
  json doc = json::parse(prov::testing::read_file(pkg));
  ASSERT_EQ(doc["entries"].size(), 3u);
  ASSERT_EQ(doc["entries"][2]["index"], 2);
  doc["entries"].erase(2);
  const std::string cut = f_.file("cut.json");
  prov::testing::write_file(cut, doc.dump(2));
  Outcome r = run_prov("verify-export " + cut + " --key " + f_.pub);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("entry 2 of the index is missing from the package"), std::string::npos)
      << r.out;
  // Its index removed as well: the entries verify, but the package is NOT proven complete.
  doc.erase("index");
  const std::string stripped = f_.file("stripped.json");
  prov::testing::write_file(stripped, doc.dump(2));
  Outcome s = run_prov("verify-export " + stripped + " --key " + f_.pub);
  EXPECT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("NOT proven complete"), std::string::npos) << s.out;
  EXPECT_EQ(s.out.rfind("verified: ", 0), std::string::npos) << s.out;
  Outcome sj = run_prov("verify-export " + stripped + " --key " + f_.pub + " --json",
                        /*merge_stderr=*/false);
  EXPECT_EQ(sj.code, 0);
  EXPECT_EQ(json::parse(sj.out)["complete"], false);
  Outcome strict =
      run_prov("verify-export " + stripped + " --key " + f_.pub + " --require-complete");
  EXPECT_EQ(strict.code, 2) << strict.out;
  // Exported without --key: a warning at export, and not complete at verification.
  const std::string unsigned_pkg = f_.file("unsigned.json");
  Outcome ex2 = run_prov("ledger export " + f_.db + " --model " + base + " -o " + unsigned_pkg);
  EXPECT_EQ(ex2.code, 0) << ex2.out;
  EXPECT_NE(ex2.out.find("warning"), std::string::npos) << ex2.out;
  json u = prov_json("verify-export " + unsigned_pkg + " --key " + f_.pub);
  EXPECT_EQ(u["complete"], false);
  // An index signed by another key than the one given.
  std::string other = f_.file("other.pem");
  ASSERT_EQ(run_prov("key generate --out " + other).code, 0);
  const std::string other_pkg = f_.file("other.json");
  ASSERT_EQ(run_prov("ledger export " + f_.db + " --model " + base + " --key " + other + " -o " +
                     other_pkg)
                .code,
            0);
  EXPECT_EQ(run_prov("verify-export " + other_pkg + " --key " + f_.pub).code, 2);
  json o = prov_json("verify-export " + other_pkg + " --key " + f_.pub + " --index-key " + other +
                     ".pub");
  EXPECT_EQ(o["complete"], true);
}

// The DSSE spec lets a signer use URL-safe base64: prov ledger append and prov verify accept it.
TEST_F(LedgerCli, UrlSafeBase64EnvelopeIsAppendedAndVerified) {
  const std::string standard = make_envelope(*key_, "url-model", "base", "finetuned");
  json env = json::parse(standard);
  auto url_safe = [](std::string b64) {
    for (char& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    return b64;
  };
  env["payload"] = url_safe(env["payload"]);
  env["signatures"][0]["sig"] = url_safe(env["signatures"][0]["sig"]);
  const std::string file = f_.file("url.dsse.json");
  prov::testing::write_file(file, env.dump());
  Outcome verify = run_prov("verify " + file + " --key " + f_.pub);
  EXPECT_EQ(verify.code, 0) << verify.out;
  Outcome append = run_prov("ledger append " + f_.db + " --key " + f_.pub + " " + file);
  EXPECT_EQ(append.code, 0) << append.out;
  // The same signed content in the standard alphabet is a replay.
  const std::string again = f_.file("standard.dsse.json");
  prov::testing::write_file(again, standard);
  EXPECT_EQ(run_prov("ledger append " + f_.db + " " + again).code, 2);
  EXPECT_EQ(run_prov("ledger verify " + f_.db).code, 0);
}

// The exports for other tools, from the command line: the card names the base model by the repo id
// given (--repo-id) or found in the model's files (--model-path), never by digest; the SPDX and
// CycloneDX documents pass the official validators.
TEST_F(LedgerCli, ExportsForOtherToolsPassTheirValidators) {
  const std::string ft = "sha256:" + model_digest("ft");
  ASSERT_EQ(run_prov("ledger append " + f_.db + " " + f_.envelope_file("a", "base") + " " +
                     f_.envelope_file("b", "ft", "base", "finetuned") + " " +
                     f_.envelope_file("c", "student", "ft", "distilled_seq"))
                .code,
            0);
  ASSERT_EQ(run_prov("ledger checkpoint " + f_.db + " --key " + f_.key).code, 0);
  const std::string export_ft = "ledger export " + f_.db + " --model " + ft;
  Outcome bare = run_prov(export_ft + " --format hf-card", /*merge_stderr=*/false);
  ASSERT_EQ(bare.code, 0) << bare.out;
  EXPECT_EQ(bare.out.find("\nbase_model:"), std::string::npos) << bare.out;
  EXPECT_NE(bare.out.find("no Hugging Face repo id is known"), std::string::npos) << bare.out;
  Outcome card = run_prov(
      export_ft + " --format hf-card --repo-id sha256:" + model_digest("base") + "=org/base",
      /*merge_stderr=*/false);
  ASSERT_EQ(card.code, 0) << card.out;
  EXPECT_NE(card.out.find("\nbase_model: \"org/base\"\nbase_model_relation: finetune\n"),
            std::string::npos)
      << card.out;
  // The model's own config names its base model.
  const std::string dir = f_.file("ft-model");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  prov::testing::write_file(dir + "/config.json", R"({"_name_or_path": "org/base-from-config"})");
  Outcome hinted = run_prov(export_ft + " --format hf-card --model-path " + dir,
                            /*merge_stderr=*/false);
  ASSERT_EQ(hinted.code, 0) << hinted.out;
  EXPECT_NE(hinted.out.find("\nbase_model: \"org/base-from-config\"\n"), std::string::npos)
      << hinted.out;
  EXPECT_EQ(run_prov(export_ft + " --format hf-card --repo-id " + ft + "=sha256:00").code, 2);
  for (const char* model : {"ft", "student"}) {
    const std::string m = "ledger export " + f_.db + " --model sha256:" + model_digest(model);
    const std::string spdx = f_.file(std::string(model) + ".spdx.json");
    const std::string cdx = f_.file(std::string(model) + ".cdx.json");
    ASSERT_EQ(run_prov(m + " --format spdx3 -o " + spdx).code, 0);
    ASSERT_EQ(run_prov(m + " --format cyclonedx -o " + cdx).code, 0);
    PROV_EXPECT_VALID_EXPORTS(f_.dir, "spdx3",
                              {{"check.spdx.json", prov::testing::read_file(spdx)}});
    PROV_EXPECT_VALID_EXPORTS(f_.dir, "cyclonedx",
                              {{"check.cdx.json", prov::testing::read_file(cdx)}});
  }
  PROV_EXPECT_VALID_EXPORTS(
      f_.dir, "hf-card", {{"bare.md", bare.out}, {"card.md", card.out}, {"hint.md", hinted.out}});
}

// prov disclosure check: a provider's EU AI Act training-content summary that declares the model's
// fine-tuning base but not the model it was distilled from is flagged (exit 2), naming the signed
// finding; declaring it as a synthetic-data generator makes the summary complete (exit 0).
TEST_F(LedgerCli, DisclosureCheckFlagsAnUndeclaredDistillationParent) {
  ASSERT_EQ(run_prov("ledger append " + f_.db + " " + f_.envelope_file("a", "base") + " " +
                     f_.envelope_file("b", "student", "base", "finetuned") + " " +
                     f_.envelope_file("c", "student-2", "teacher", "distilled_seq") + " " +
                     f_.envelope_file("d", "student", "teacher", "distilled_logit"))
                .code,
            0);
  const std::string student = "sha256:" + model_digest("student");
  const std::string teacher = "sha256:" + model_digest("teacher");
  json summary = {
      {"schema", "prov-eu-training-summary/v1"},
      {"model", {{"digest", student}}},
      {"general_information",
       {{"model_identification",
         {{"versioned_model_names", {"acme/student-1.0"}}, {"model_dependencies", {"base"}}}}}},
      {"list_of_data_sources", {{"synthetic_data", {{"used", false}}}}}};
  const std::string file = f_.file("summary.json");
  prov::testing::write_file(file, summary.dump(2));
  Outcome r = run_prov("disclosure check " + file + " --ledger " + f_.db);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("1 undeclared"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("UNDECLARED  " + teacher + " (distilled_logit, ledger entry 3)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("declared    sha256:" + model_digest("base")), std::string::npos) << r.out;
  Outcome j = run_prov("disclosure check " + file + " --ledger " + f_.db + " --json",
                       /*merge_stderr=*/false);
  EXPECT_EQ(j.code, 2);
  json out = json::parse(j.out);
  EXPECT_EQ(out["complete"], false);
  EXPECT_EQ(out["undeclared"], 1);
  EXPECT_EQ(out["findings"][1]["digest"], teacher);
  EXPECT_EQ(out["findings"][1]["field"], "synthetic_data_generators");

  summary["list_of_data_sources"]["synthetic_data"] = {
      {"used", true},
      {"generated_by_models_on_market", {{{"name", "teacher"}, {"digest", teacher}}}}};
  prov::testing::write_file(file, summary.dump(2));
  Outcome ok = run_prov("disclosure check " + file + " --ledger " + f_.db);
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("0 undeclared"), std::string::npos) << ok.out;
  // --model names the model when the summary does not; bad input exits 2 with the reason.
  summary.erase("model");
  prov::testing::write_file(file, summary.dump(2));
  EXPECT_EQ(
      run_prov("disclosure check " + file + " --ledger " + f_.db + " --model " + student).code, 0);
  Outcome missing = run_prov("disclosure check " + file + " --ledger " + f_.db);
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.out.find("--model"), std::string::npos) << missing.out;
  prov::testing::write_file(file, "{\"schema\": \"other\"}");
  EXPECT_EQ(run_prov("disclosure check " + file + " --ledger " + f_.db).code, 2);
}

}  // namespace
