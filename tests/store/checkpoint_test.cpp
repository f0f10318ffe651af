#include "store/checkpoint.h"

#include <gtest/gtest.h>

namespace prov::store {
namespace {

Checkpoint sample() {
  Checkpoint cp;
  cp.origin = "example.com/prov-ledger";
  cp.tree_size = 12345;
  cp.root = leaf_hash("some root");
  return cp;
}

// The signed-note reference example of golang.org/x/mod/sumdb/note (key "PeterNeumann").
TEST(SignedNote, ReferenceVector) {
  auto raw = base64_decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  ASSERT_TRUE(raw.is_ok());
  ASSERT_EQ(raw->size(), 33u);
  ASSERT_EQ((*raw)[0], '\x01');
  auto pub = PublicKey::from_raw_ed25519(raw->substr(1));
  ASSERT_TRUE(pub.is_ok());
  auto vkey = note_verifier_key("PeterNeumann", *pub);
  ASSERT_TRUE(vkey.is_ok());
  EXPECT_EQ(*vkey, "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  std::string text =
      "If you think cryptography is the answer to your problem,\n"
      "then you don't know what your problem is.\n";
  std::string note =
      text +
      "\n\xE2\x80\x94 PeterNeumann "
      "x08go/ZJkuBS9UG/"
      "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
  auto got = verify_note(note, "PeterNeumann", *pub);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(*got, text);
  std::string changed = note;
  changed[3] ^= 1;
  EXPECT_FALSE(verify_note(changed, "PeterNeumann", *pub).is_ok());
  EXPECT_FALSE(verify_note(note, "PeterNeumann2", *pub).is_ok());
}

TEST(Checkpoint, SignParseVerify) {
  auto key = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(key.is_ok());
  Checkpoint cp = sample();
  cp.extensions = {"Timestamp: 1700000000"};
  auto note = sign_checkpoint(cp, cp.origin, *key);
  ASSERT_TRUE(note.is_ok()) << note.status().to_string();
  EXPECT_EQ(note->substr(0, checkpoint_text(cp).size()), checkpoint_text(cp));
  EXPECT_NE(note->find("\n\n\xE2\x80\x94 example.com/prov-ledger "), std::string::npos);
  auto v = verify_checkpoint(*note, cp.origin, key->public_key());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->origin, cp.origin);
  EXPECT_EQ(v->tree_size, cp.tree_size);
  EXPECT_EQ(v->root, cp.root);
  EXPECT_EQ(v->extensions, cp.extensions);

  // A second, unknown signer's line is ignored.
  auto other = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(other.is_ok());
  auto other_note = sign_checkpoint(cp, "witness", *other);
  ASSERT_TRUE(other_note.is_ok());
  std::string cosigned = *note + other_note->substr(other_note->find("\n\n") + 2);
  EXPECT_TRUE(verify_checkpoint(cosigned, cp.origin, key->public_key()).is_ok());
  EXPECT_TRUE(verify_checkpoint(cosigned, "witness", other->public_key()).is_ok());
  // Wrong key, wrong name.
  EXPECT_EQ(verify_checkpoint(*note, cp.origin, other->public_key()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(verify_checkpoint(*note, "other-name", key->public_key()).is_ok());
}

TEST(Checkpoint, ForgedOrModifiedRejected) {
  auto key = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(key.is_ok());
  PublicKey pub = key->public_key();
  Checkpoint cp = sample();
  auto note = sign_checkpoint(cp, cp.origin, *key);
  ASSERT_TRUE(note.is_ok());
  // Every single-byte change of the note is rejected (or, if it lands in another signer's name,
  // leaves no signature of ours).
  for (size_t i = 0; i < note->size(); ++i) {
    std::string m = *note;
    m[i] ^= 0x01;
    EXPECT_FALSE(verify_checkpoint(m, cp.origin, pub).is_ok()) << "byte " << i;
  }
  // A forged checkpoint: same text and a signature by another key under our name.
  auto forger = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(forger.is_ok());
  auto forged = sign_checkpoint(cp, cp.origin, *forger);
  ASSERT_TRUE(forged.is_ok());
  EXPECT_FALSE(verify_checkpoint(*forged, cp.origin, pub).is_ok());
  // The signature of one checkpoint transplanted onto a bigger tree.
  Checkpoint grown = cp;
  grown.tree_size += 1;
  std::string transplanted = checkpoint_text(grown) + note->substr(note->find("\n\n") + 1);
  EXPECT_FALSE(verify_checkpoint(transplanted, cp.origin, pub).is_ok());
  // Truncations.
  for (size_t n = 0; n < note->size(); ++n) {
    EXPECT_FALSE(verify_checkpoint(note->substr(0, n), cp.origin, pub).is_ok()) << n;
  }
}

TEST(Checkpoint, MalformedBodies) {
  auto key = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(key.is_ok());
  const std::string sig = "\n\xE2\x80\x94 o AAAA\n";
  std::string root = base64_encode(std::string(32, 'x'));
  for (const std::string& body :
       {std::string("o\n12\n"), "o\n012\n" + root + "\n", "o\n-1\n" + root + "\n",
        "o\n99999999999999999999\n" + root + "\n", "o\n1\n" + base64_encode("short") + "\n",
        "\n1\n" + root + "\n", "o\n1x\n" + root + "\n"}) {
    EXPECT_EQ(parse_checkpoint(body + sig).status().code(), StatusCode::kCorrupt) << body;
  }
  EXPECT_TRUE(parse_checkpoint("o\n0\n" + root + "\n" + sig).is_ok());
  EXPECT_FALSE(parse_checkpoint("o\n1\n" + root + "\n").is_ok());  // no signatures
  Checkpoint cp = sample();
  EXPECT_EQ(sign_checkpoint(cp, "bad name", *key).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sign_checkpoint(cp, "a+b", *key).status().code(), StatusCode::kInvalidArgument);
  auto ec = PrivateKey::generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(ec.is_ok());
  EXPECT_EQ(sign_checkpoint(cp, "name", *ec).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace prov::store
