// Witness cosignatures (C2SP tlog-cosignature), the witness's add-checkpoint (C2SP tlog-witness)
// and checkpoint policies (C2SP tlog-policy), with the specs' examples as vectors and an
// independent verifier (tests/support/tlog_reference.h).
#include "store/cosignature.h"

#include <gtest/gtest.h>

#include "store/checkpoint.h"
#include "store/tlog_policy.h"
#include "tests/store/tlog_fixtures.h"
#include "tests/support/test_support.h"
#include "tests/support/tlog_reference.h"

namespace prov::store {
namespace {

using namespace tlogtest;
namespace ref = prov::testing::ref;

const char kSpecBody[] =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

TEST(Cosignature, TheSpecsExample) {
  // tlog-cosignature: the signed message of the example cosignature.
  EXPECT_EQ(cosignature_message(1679315147, kSpecBody),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
  // The example cosignature line: key id, then the timestamp of that message, then 64 bytes.
  auto line = parse_signature_line(
      "\xE2\x80\x94 witness.example.com/w1 "
      "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+"
      "mbIUBkBIfZ+qnA==");
  ASSERT_TRUE(line.is_ok()) << line.status().to_string();
  EXPECT_EQ(line->key_name, "witness.example.com/w1");
  EXPECT_EQ(line->key_id, 0x8d66cf3fu);
  ASSERT_EQ(line->signature.size(), 8u + 64u);
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = (t << 8) | static_cast<unsigned char>(line->signature[i]);
  EXPECT_EQ(t, 1679315147u);
}

TEST(Cosignature, SignedAndCheckedIndependently) {
  PrivateKey log = ed25519();
  PrivateKey witness = ed25519();
  Checkpoint cp{"example.com/log", 20852163, leaf_hash("r"), {}};
  auto note = sign_checkpoint(cp, cp.origin, log);
  ASSERT_TRUE(note.is_ok());
  auto line = cosign_checkpoint(*note, "witness.example/w1", witness, 1679315147);
  ASSERT_TRUE(line.is_ok()) << line.status().to_string();
  const std::string cosigned = *note + *line + "\n";
  auto t = verify_cosignature(cosigned, "witness.example/w1", witness.public_key());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(*t, 1679315147u);
  // The vkey and the line, checked by the independent client from the spec alone.
  auto vkey = cosignature_vkey("witness.example/w1", witness.public_key());
  ASSERT_TRUE(vkey.is_ok());
  ref::Vkey k;
  ASSERT_TRUE(ref::parse_vkey(*vkey, &k));
  EXPECT_EQ(k.type, 0x04);
  EXPECT_TRUE(ref::note_signed_by(cosigned, k));
  // The log's signature still verifies with the cosignature on the note.
  EXPECT_TRUE(verify_checkpoint(cosigned, cp.origin, log.public_key()).is_ok());
  // Another name, another key, another body, another time: nothing verifies.
  EXPECT_FALSE(verify_cosignature(cosigned, "witness.example/w2", witness.public_key()).is_ok());
  EXPECT_FALSE(verify_cosignature(cosigned, "witness.example/w1", log.public_key()).is_ok());
  std::string changed = cosigned;
  changed[changed.find("20852163")] = '3';
  EXPECT_FALSE(verify_cosignature(changed, "witness.example/w1", witness.public_key()).is_ok());
  EXPECT_FALSE(ref::note_signed_by(changed, k));
  // A cosignature is not a note signature of the same key (type 0x04 vs 0x01): the key ids differ.
  EXPECT_NE(
      k.id.substr(0, 4),
      ref::sha256("witness.example/w1\n\x01" + *witness.public_key().raw_ed25519()).substr(0, 4));
  EXPECT_EQ(cosign_checkpoint(*note, "bad name", witness, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(cosign_checkpoint(*note, "w", witness, uint64_t{1} << 63).status().code(),
            StatusCode::kInvalidArgument);
}

// A ledger with checkpoints at sizes 3 and 7, for the witness.
struct TwoCheckpoints {
  testing::TempDir dir;
  PrivateKey key = ed25519();
  std::unique_ptr<Ledger> ledger;
  std::string note3, note7, origin;
  TwoCheckpoints() {
    auto l = Ledger::init(dir.file("l.db"));
    EXPECT_TRUE(l.is_ok());
    ledger = std::move(*l);
    append_n(*ledger, key, 3);
    note3 = *ledger->checkpoint(key);
    append_n(*ledger, key, 4, "n");
    note7 = *ledger->checkpoint(key);
    origin = *ledger->origin();
  }
  std::string request(uint64_t old, const std::string& note, uint64_t to) {
    AddCheckpointRequest r;
    r.old_size = old;
    r.proof = *ledger->consistency_proof(old, to);
    r.checkpoint = note;
    return format_add_checkpoint(r);
  }
};

TEST(Witness, AddCheckpointAnswersAsTheSpecSays) {
  // The spec's example request body parses.
  auto ex = parse_add_checkpoint(
      "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
      "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
      "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\nexample.com/behind-the-sofa\n20852163\n"
      "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\xE2\x80\x94 example.com/behind-the-sofa "
      "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
      "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n");
  ASSERT_TRUE(ex.is_ok()) << ex.status().to_string();
  EXPECT_EQ(ex->old_size, 20852014u);
  EXPECT_EQ(ex->proof.size(), 4u);
  EXPECT_EQ(parse_checkpoint(ex->checkpoint)->tree_size, 20852163u);

  TwoCheckpoints t;
  PrivateKey wkey = ed25519();
  PrivateKey stranger = ed25519();
  PublicKey log_pub = t.key.public_key();
  PublicKey stranger_pub = stranger.public_key();
  WitnessConfig config{"witness.example/w1", &wkey, {{t.origin, &log_pub}}};
  WitnessState state;
  // First contact: old size 0, empty proof.
  WitnessResponse r = witness_add_checkpoint(t.request(0, t.note3, 3), config, &state, 100);
  ASSERT_EQ(r.http_status, 200) << r.body;
  ASSERT_EQ(r.body.rfind("\xE2\x80\x94 witness.example/w1 ", 0), 0u);
  EXPECT_EQ(r.body.back(), '\n');
  EXPECT_EQ(*verify_cosignature(t.note3 + r.body, config.name, wkey.public_key()), 100u);
  EXPECT_EQ(state[t.origin].size, 3u);
  // A stale old size: 409 with the witnessed size, as text/x.tlog.size.
  r = witness_add_checkpoint(t.request(0, t.note7, 7), config, &state, 101);
  EXPECT_EQ(r.http_status, 409);
  EXPECT_EQ(r.body, "3\n");
  // The right old size and proof: cosigned, state advanced.
  r = witness_add_checkpoint(t.request(3, t.note7, 7), config, &state, 102);
  ASSERT_EQ(r.http_status, 200) << r.body;
  EXPECT_EQ(state[t.origin].size, 7u);
  // The same checkpoint again: same size, same root, cosigned again.
  EXPECT_EQ(witness_add_checkpoint(t.request(7, t.note7, 7), config, &state, 103).http_status, 200);
  // Errors, in the spec's order: malformed 400, unknown origin 404, bad signature 403, old size
  // above the checkpoint's 400, wrong proof 422.
  EXPECT_EQ(witness_add_checkpoint("old x\n\n" + t.note7, config, &state, 1).http_status, 400);
  WitnessConfig other = config;
  other.logs = {{"example.com/other", &log_pub}};
  EXPECT_EQ(witness_add_checkpoint(t.request(7, t.note7, 7), other, &state, 1).http_status, 404);
  other.logs = {{t.origin, &stranger_pub}};
  EXPECT_EQ(witness_add_checkpoint(t.request(7, t.note7, 7), other, &state, 1).http_status, 403);
  AddCheckpointRequest above;
  above.old_size = 8;
  above.checkpoint = t.note7;
  EXPECT_EQ(witness_add_checkpoint(format_add_checkpoint(above), config, &state, 1).http_status,
            400);
  // A fork: another ledger of the same origin and key, with other entries.
  testing::TempDir fork_dir;
  auto fork = Ledger::init(fork_dir.file("fork.db"));
  ASSERT_TRUE(fork.is_ok());
  append_n(**fork, t.key, 9, "evil");
  auto fork_note = (*fork)->checkpoint(t.key, t.origin);
  ASSERT_TRUE(fork_note.is_ok());
  AddCheckpointRequest forked;
  forked.old_size = 7;
  forked.proof = *(*fork)->consistency_proof(7, 9);
  forked.checkpoint = *fork_note;
  r = witness_add_checkpoint(format_add_checkpoint(forked), config, &state, 1);
  EXPECT_EQ(r.http_status, 422) << r.body;
  EXPECT_EQ(state[t.origin].size, 7u);  // unchanged by refusals
}

TEST(Witness, CosignsALedgerAndRefusesAFork) {
  TwoCheckpoints t;
  PrivateKey wkey = ed25519();
  PublicKey log_pub = t.key.public_key();
  LedgerCosignOptions o;
  o.name = "witness.example/w1";
  o.key = &wkey;
  o.log_key = &log_pub;
  o.state_path = t.dir.file("witness.json");
  o.timestamp = 1700000000;
  auto cosigned = cosign_ledger(*t.ledger, o);
  ASSERT_TRUE(cosigned.is_ok()) << cosigned.status().to_string();
  EXPECT_EQ(*t.ledger->latest_checkpoint(), *cosigned);
  EXPECT_EQ(*verify_cosignature(*cosigned, o.name, wkey.public_key()), 1700000000u);
  EXPECT_TRUE(verify_checkpoint(*cosigned, t.origin, log_pub).is_ok());
  auto state = parse_witness_state(testing::read_file(o.state_path));
  ASSERT_TRUE(state.is_ok());
  EXPECT_EQ((*state)[t.origin].size, 7u);
  // Cosigning again adds nothing new (one line per witness key).
  auto again = cosign_ledger(*t.ledger, o);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(*again, *cosigned);
  // A second witness adds its line to the same checkpoint; the ledger still verifies.
  PrivateKey w2 = ed25519();
  LedgerCosignOptions o2 = o;
  o2.name = "witness.example/w2";
  o2.key = &w2;
  o2.state_path = t.dir.file("w2.json");
  auto two = cosign_ledger(*t.ledger, o2);
  ASSERT_TRUE(two.is_ok()) << two.status().to_string();
  EXPECT_TRUE(verify_cosignature(*two, o.name, wkey.public_key()).is_ok());
  EXPECT_TRUE(verify_cosignature(*two, o2.name, w2.public_key()).is_ok());
  VerifyOptions vo;
  vo.checkpoint_key = &log_pub;
  auto v = t.ledger->verify(vo);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->checkpoints_checked, 4u);  // 3, 7, 7 + w1, 7 + w1 + w2
  // The witness follows the log as it grows.
  append_n(*t.ledger, t.key, 5, "later");
  ASSERT_TRUE(t.ledger->checkpoint(t.key).is_ok());
  auto grown = cosign_ledger(*t.ledger, o);
  ASSERT_TRUE(grown.is_ok()) << grown.status().to_string();
  EXPECT_EQ(parse_checkpoint(*grown)->tree_size, 12u);
  // A forked ledger under the same origin and key is refused, and the state is kept.
  testing::TempDir fork_dir;
  auto fork = Ledger::init(fork_dir.file("fork.db"));
  ASSERT_TRUE(fork.is_ok());
  append_n(**fork, t.key, 14, "evil");
  ASSERT_TRUE((*fork)->checkpoint(t.key, t.origin).is_ok());
  auto refused = cosign_ledger(**fork, o);
  EXPECT_EQ(refused.status().code(), StatusCode::kCorrupt) << refused.status().to_string();
  // ... as is one rolled back below what the witness saw.
  testing::TempDir small_dir;
  auto small = Ledger::init(small_dir.file("small.db"));
  ASSERT_TRUE(small.is_ok());
  append_n(**small, t.key, 2);
  ASSERT_TRUE((*small)->checkpoint(t.key, t.origin).is_ok());
  auto rolled = cosign_ledger(**small, o);
  EXPECT_EQ(rolled.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rolled.status().message().find("rolled back"), std::string::npos);
  EXPECT_EQ(parse_witness_state(testing::read_file(o.state_path))->at(t.origin).size, 12u);
  // Adding lines to a checkpoint the ledger never signed is refused.
  Checkpoint foreign{t.origin, 7, leaf_hash("x"), {}};
  EXPECT_EQ(t.ledger->add_cosignatures(*sign_checkpoint(foreign, t.origin, t.key)).status().code(),
            StatusCode::kNotFound);
}

// The spec's example policy (two groups of three witnesses, 2-of-3 and any-of-3, both required),
// with keys of our own.
TEST(TlogPolicy, TheSpecsExampleQuorum) {
  PrivateKey log = ed25519();
  Checkpoint cp{"example.com/log", 42, leaf_hash("root"), {}};
  std::string note = *sign_checkpoint(cp, cp.origin, log);
  std::vector<PrivateKey> keys;
  std::string policy = "# the tlog-policy example\nlog " +
                       *note_verifier_key(cp.origin, log.public_key()) + " https://log.example\n\n";
  const char* names[] = {"X1", "X2", "X3", "Y1", "Y2", "Y3"};
  for (int i = 0; i < 6; ++i) {
    keys.push_back(ed25519());
    policy += std::string("witness ") + names[i] + " " +
              *cosignature_vkey(std::string(names[i]) + ".example/w", keys.back().public_key()) +
              "\n";
    if (i == 2) policy += "group X-witnesses 2 X1 X2 X3\n\n";
  }
  policy += "group Y-witnesses any Y1 Y2 Y3\n\t group  X-and-Y  all X-witnesses Y-witnesses \n";
  policy += "quorum X-and-Y\n";
  auto p = parse_tlog_policy(policy);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->logs.size(), 1u);
  EXPECT_EQ(p->witnesses.size(), 6u);
  EXPECT_EQ(p->groups.size(), 3u);
  auto cosigned_by = [&](std::vector<int> who) {
    std::string n = note;
    for (int i : who) {
      n += *cosign_checkpoint(note, std::string(names[i]) + ".example/w", keys[i], 1000) + "\n";
    }
    return verify_checkpoint_policy(n, *p);
  };
  EXPECT_TRUE(cosigned_by({0, 1, 3}).is_ok());           // X1 X2 Y1
  EXPECT_TRUE(cosigned_by({0, 1, 2, 3, 4, 5}).is_ok());  // everyone
  EXPECT_FALSE(cosigned_by({0, 3, 4, 5}).is_ok());       // one X only
  EXPECT_FALSE(cosigned_by({0, 1, 2}).is_ok());          // no Y
  auto none = cosigned_by({});
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  auto ok = cosigned_by({1, 2, 5});
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->log, cp.origin);
  EXPECT_EQ(ok->witnesses, (std::vector<std::string>{"X2", "X3", "Y3"}));
  // A checkpoint signed by a key the policy does not list fails whatever the cosignatures.
  PrivateKey other = ed25519();
  EXPECT_FALSE(verify_checkpoint_policy(*sign_checkpoint(cp, cp.origin, other), *p).is_ok());
  // quorum none: the log's signature suffices.
  auto single = single_log_policy(cp.origin, log.public_key());
  ASSERT_TRUE(single.is_ok());
  EXPECT_TRUE(verify_checkpoint_policy(note, *single).is_ok());
}

TEST(TlogPolicy, MalformedPoliciesAreRefusedByLine) {
  PrivateKey a = ed25519(), b = ed25519();
  const std::string va = *cosignature_vkey("a.example", a.public_key());
  const std::string vb = *cosignature_vkey("b.example", b.public_key());
  const std::string la = *note_verifier_key("log.example", a.public_key());
  auto refused = [](const std::string& text, const std::string& why) {
    auto p = parse_tlog_policy(text);
    ASSERT_FALSE(p.is_ok()) << text;
    EXPECT_EQ(p.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(p.status().message().find(why), std::string::npos) << p.status().to_string();
  };
  refused("witness A " + va + "\n", "no quorum");
  refused("quorum A\n", "not defined above");
  refused("quorum none\nquorum none\n", "second quorum");
  refused("witness A " + va + "\nwitness A " + vb + "\nquorum A\n", "taken");
  refused("witness A " + va + "\nwitness B " + va + "\nquorum A\n", "duplicate public key");
  refused("witness A " + va + "\ngroup G 2 A\nquorum G\n", "threshold 2");
  refused("witness A " + va + "\ngroup G 0 A\nquorum G\n", "threshold 0");
  refused("witness A " + va + "\ngroup G any A A\nquorum G\n", "listed twice");
  refused("witness A " + va + "\ngroup G any none\nquorum G\n", "not defined above");
  refused("witness A " + la + "\nquorum A\n", "cosignature/v1 key");
  refused("log " + va + "\nquorum none\n", "type 0x01");
  refused("witnesses A " + va + "\nquorum none\n", "unknown keyword");
  refused("quorum none\x01\n", "control character");
  std::string wrong_id = va;
  wrong_id[wrong_id.find('+') + 1] = wrong_id[wrong_id.find('+') + 1] == '0' ? '1' : '0';
  refused("witness A " + wrong_id + "\nquorum A\n", "key id does not match");
  EXPECT_TRUE(parse_tlog_policy("quorum none").is_ok());
  EXPECT_EQ(
      parse_vkey("name+01020304+" + ref::b64encode(std::string("\x02") + std::string(65, 'k')))
          .status()
          .code(),
      StatusCode::kUnsupported);
}

}  // namespace
}  // namespace prov::store
