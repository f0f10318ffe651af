// C2SP tlog-proof@v1 files of ledger entries: the spec's example parses, prov's proofs verify
// with prov and with an independent verifier written from the specs, and forgeries fail.
#include "store/tlog_proof.h"

#include <gtest/gtest.h>

#include "store/checkpoint.h"
#include "store/cosignature.h"
#include "tests/store/tlog_fixtures.h"
#include "tests/support/test_support.h"
#include "tests/support/tlog_reference.h"

namespace prov::store {
namespace {

using namespace tlogtest;
namespace ref = prov::testing::ref;

TEST(TlogProof, TheSpecsExampleParses) {
  const std::string text =
      "c2sp.org/tlog-proof@v1\n"
      "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
      "index 73894\n"
      "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
      "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
      "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
      "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
      "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
      "\n"
      "example.com/fancylog\n"
      "109482\n"
      "sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
      "\n"
      "\xE2\x80\x94 example.com/fancylog hI2DJw[...]1roloI=\n"
      "\xE2\x80\x94 witness1.example mJirIklj[...]qY9v2B/5bg==\n";
  auto p = parse_tlog_proof(text);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_TRUE(p->has_extra);
  EXPECT_EQ(p->extra.substr(0, 30), "age-v1.2.1-darwin-arm64.tar.gz");
  EXPECT_EQ(p->index, 73894u);
  ASSERT_EQ(p->path.size(), 5u);
  EXPECT_EQ(ref::b64encode(std::string(p->path[4].begin(), p->path[4].end())),
            "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=");
  EXPECT_EQ(parse_checkpoint(p->checkpoint)->tree_size, 109482u);
  EXPECT_EQ(format_tlog_proof(*p), text);  // written back byte for byte
  // Without extra, with an empty proof.
  auto bare = parse_tlog_proof(
      "c2sp.org/tlog-proof@v1\nindex 0\n\nexample.com/fancylog\n1\n"
      "sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\n\xE2\x80\x94 x AAAA\n");
  ASSERT_TRUE(bare.is_ok()) << bare.status().to_string();
  EXPECT_FALSE(bare->has_extra);
  EXPECT_TRUE(bare->path.empty());
  for (const char* bad :
       {"c2sp.org/tlog-proof@v2\nindex 0\n\n", "c2sp.org/tlog-proof@v1\nindex 01\n\n",
        "c2sp.org/tlog-proof@v1\nindex x\n\n", "c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\n",
        "c2sp.org/tlog-proof@v1\nindex 0\n", "c2sp.org/tlog-proof@v1\nextra !\nindex 0\n\n"}) {
    EXPECT_EQ(parse_tlog_proof(bad).status().code(), StatusCode::kCorrupt) << bad;
  }
}

TEST(TlogProof, ProvsProofsVerifyHereAndIndependently) {
  testing::TempDir dir;
  PrivateKey key = ed25519();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok());
  Ledger& ledger = **l;
  EXPECT_EQ(ledger_tlog_proof(ledger, 0).status().code(), StatusCode::kNotFound);
  append_n(ledger, key, 21);
  ASSERT_TRUE(ledger.checkpoint(key).is_ok());
  append_n(ledger, key, 2, "late");
  EXPECT_EQ(ledger_tlog_proof(ledger, 21).status().code(), StatusCode::kInvalidArgument);
  // A witness cosigns; the proof carries its cosignature.
  PrivateKey wkey = ed25519();
  PublicKey log_pub = key.public_key();
  LedgerCosignOptions co;
  co.name = "witness.example/w1";
  co.key = &wkey;
  co.log_key = &log_pub;
  co.state_path = dir.file("w.json");
  ASSERT_TRUE(cosign_ledger(ledger, co).is_ok());
  const std::string origin = *ledger.origin();
  const std::string log_vkey = *note_verifier_key(origin, log_pub);
  const std::string w_vkey = *cosignature_vkey(co.name, wkey.public_key());
  auto policy = parse_tlog_policy("log " + log_vkey + "\nwitness W " + w_vkey + "\nquorum W\n");
  ASSERT_TRUE(policy.is_ok()) << policy.status().to_string();
  for (uint64_t index : {0u, 7u, 20u}) {
    auto proof = ledger_tlog_proof(ledger, index);
    ASSERT_TRUE(proof.is_ok()) << proof.status().to_string();
    const std::string text = format_tlog_proof(*proof);
    auto check = verify_tlog_proof(text, *policy);
    ASSERT_TRUE(check.is_ok()) << check.status().to_string();
    auto e = ledger.get(index);
    EXPECT_EQ(check->envelope, e->envelope);
    EXPECT_EQ(check->created_at, e->created_at);
    EXPECT_EQ(check->policy.witnesses, std::vector<std::string>{"W"});

    // The independent verifier reads the file by the spec alone.
    ASSERT_EQ(text.rfind("c2sp.org/tlog-proof@v1\nextra ", 0), 0u);
    size_t l1 = text.find('\n'), l2 = text.find('\n', l1 + 1), l3 = text.find('\n', l2 + 1);
    const ref::Bytes extra = ref::b64decode(text.substr(l1 + 7, l2 - l1 - 7));
    EXPECT_EQ(extra, entry_leaf_data(e->created_at, e->envelope));
    EXPECT_EQ(text.substr(l2 + 1, l3 - l2 - 1), "index " + std::to_string(index));
    std::vector<ref::Bytes> path;
    size_t pos = l3 + 1;
    while (text[pos] != '\n') {
      size_t nl = text.find('\n', pos);
      path.push_back(ref::b64decode(text.substr(pos, nl - pos)));
      pos = nl + 1;
    }
    const std::string note = text.substr(pos + 1);
    ref::Vkey lk, wk;
    ASSERT_TRUE(ref::parse_vkey(log_vkey, &lk));
    ASSERT_TRUE(ref::parse_vkey(w_vkey, &wk));
    EXPECT_TRUE(ref::note_signed_by(note, lk));
    EXPECT_TRUE(ref::note_signed_by(note, wk));
    ref::Checkpoint cp;
    ASSERT_TRUE(ref::parse_checkpoint(note, &cp));
    EXPECT_EQ(cp.size, 21u);
    EXPECT_TRUE(ref::verify_inclusion(ref::leaf_hash(extra), index, cp.size, path, cp.root));
    EXPECT_FALSE(ref::verify_inclusion(ref::leaf_hash(extra + "x"), index, cp.size, path, cp.root));

    // Forgeries: another record, another index, a proof hash changed, the quorum unmet.
    const std::string other = "prov-ledger-entry-v1\n2025-01-01T00:00:00.000000Z\n{}";
    EXPECT_EQ(verify_tlog_proof(text, *policy, &other).status().code(),
              StatusCode::kInvalidArgument);
    TlogProof moved = *proof;
    moved.index = index + 1;
    EXPECT_FALSE(verify_tlog_proof(format_tlog_proof(moved), *policy).is_ok());
    TlogProof bent = *proof;
    bent.path[0][0] ^= 1;
    EXPECT_FALSE(verify_tlog_proof(format_tlog_proof(bent), *policy).is_ok());
    TlogProof no_extra = *proof;
    no_extra.has_extra = false;
    EXPECT_EQ(verify_tlog_proof(format_tlog_proof(no_extra), *policy).status().code(),
              StatusCode::kInvalidArgument);
    const std::string record = entry_leaf_data(e->created_at, e->envelope);
    EXPECT_TRUE(verify_tlog_proof(format_tlog_proof(no_extra), *policy, &record).is_ok());
  }
  // Under a policy wanting a witness that did not cosign, or another log key: refused.
  PrivateKey w2 = ed25519();
  auto strict =
      parse_tlog_policy("log " + log_vkey + "\nwitness W " +
                        *cosignature_vkey("w2.example", w2.public_key()) + "\nquorum W\n");
  ASSERT_TRUE(strict.is_ok());
  const std::string text = format_tlog_proof(*ledger_tlog_proof(ledger, 3));
  auto unmet = verify_tlog_proof(text, *strict);
  EXPECT_EQ(unmet.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unmet.status().message().find("quorum"), std::string::npos);
  PrivateKey stranger = ed25519();
  EXPECT_FALSE(verify_tlog_proof(text, *single_log_policy(origin, stranger.public_key())).is_ok());
  EXPECT_TRUE(verify_tlog_proof(text, *single_log_policy(origin, log_pub)).is_ok());
}

}  // namespace
}  // namespace prov::store
