#include "store/keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include "core/sha256.h"
#include "tests/support/test_support.h"

namespace prov::store {
namespace {

const char kType[] = "application/vnd.in-toto+json";

TEST(Base64, RoundTripAndPadding) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d.is_ok()) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(*base64_decode("Zg=="), "f");
  EXPECT_EQ(*base64_decode("Zm8="), "fo");
  std::string bin("\x00\xff\x10\x00", 4);
  EXPECT_EQ(*base64_decode(base64_encode(bin)), bin);
  for (const char* bad : {"Zg=", "Z===", "Zg=a", "Z=g=", "Zm9v!mFy", "Zm9v YmFy", "=Zm8"}) {
    EXPECT_EQ(base64_decode(bad).status().code(), StatusCode::kCorrupt) << bad;
  }
}

TEST(Dsse, PaeMatchesTheSpec) {
  EXPECT_EQ(dsse_pae("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  EXPECT_EQ(dsse_pae("", ""), "DSSEv1 0  0 ");
}

class KeysTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(KeysTest, GenerateWriteLoadSignVerify) {
  testing::TempDir dir;
  auto key = PrivateKey::generate(GetParam());
  ASSERT_TRUE(key.is_ok()) << key.status().to_string();
  EXPECT_EQ(key->type(), GetParam());
  ASSERT_TRUE(key->write(dir.file("k.pem"), dir.file("k.pub")).is_ok());
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("k.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Never overwrites an existing private key.
  EXPECT_EQ(key->write(dir.file("k.pem"), "").code(), StatusCode::kInvalidArgument);

  auto loaded = PrivateKey::load(dir.file("k.pem"));
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  auto pub = PublicKey::load(dir.file("k.pub"));
  ASSERT_TRUE(pub.is_ok()) << pub.status().to_string();
  EXPECT_EQ(pub->key_id(), key->public_key().key_id());
  EXPECT_EQ(pub->key_id(), to_hex(sha256(pub->der())));

  auto sig = loaded->sign("message");
  ASSERT_TRUE(sig.is_ok());
  EXPECT_TRUE(pub->verify("message", *sig).is_ok());
  EXPECT_EQ(pub->verify("messagf", *sig).code(), StatusCode::kInvalidArgument);
  std::string bad = *sig;
  bad[bad.size() / 2] ^= 1;
  EXPECT_FALSE(pub->verify("message", bad).is_ok());
  EXPECT_FALSE(pub->verify("message", "").is_ok());

  auto other = PrivateKey::generate(GetParam());
  ASSERT_TRUE(other.is_ok());
  EXPECT_FALSE(other->public_key().verify("message", *sig).is_ok());
}

TEST_P(KeysTest, DsseSignVerifyAndTampering) {
  auto key = PrivateKey::generate(GetParam());
  ASSERT_TRUE(key.is_ok());
  PublicKey pub = key->public_key();
  std::string payload = R"({"_type":"https://in-toto.io/Statement/v1"})";
  auto env = dsse_sign(kType, payload, *key);
  ASSERT_TRUE(env.is_ok());
  auto ok = dsse_verify(*env, pub);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->payload, payload);
  EXPECT_EQ(ok->payload_type, kType);
  ASSERT_EQ(ok->signatures.size(), 1u);
  EXPECT_EQ(ok->signatures[0].keyid, pub.key_id());

  auto j = nlohmann::json::parse(*env);
  {  // tampered payload
    auto t = j;
    t["payload"] = base64_encode(payload + " ");
    EXPECT_EQ(dsse_verify(t.dump(), pub).status().code(), StatusCode::kInvalidArgument);
  }
  {  // tampered type
    auto t = j;
    t["payloadType"] = "application/json";
    EXPECT_EQ(dsse_verify(t.dump(), pub).status().code(), StatusCode::kInvalidArgument);
  }
  {  // tampered signature
    auto t = j;
    std::string sig = *base64_decode(t["signatures"][0]["sig"].get<std::string>());
    sig[3] ^= 0x20;
    t["signatures"][0]["sig"] = base64_encode(sig);
    EXPECT_FALSE(dsse_verify(t.dump(), pub).is_ok());
  }
  {  // keyid not matching: skipped, so nothing verifies
    auto t = j;
    t["signatures"][0]["keyid"] = std::string(64, '0');
    EXPECT_FALSE(dsse_verify(t.dump(), pub).is_ok());
  }
  {  // structural errors
    for (const char* f : {"payload", "payloadType", "signatures"}) {
      auto t = j;
      t.erase(f);
      EXPECT_EQ(dsse_verify(t.dump(), pub).status().code(), StatusCode::kCorrupt) << f;
    }
    auto t = j;
    t["signatures"] = nlohmann::json::array();
    EXPECT_EQ(dsse_parse(t.dump()).status().code(), StatusCode::kCorrupt);
    t = j;
    t["payload"] = "not base64!";
    EXPECT_EQ(dsse_parse(t.dump()).status().code(), StatusCode::kCorrupt);
  }
  // Every truncation of the envelope is rejected.
  for (size_t n = 0; n < env->size(); ++n) {
    EXPECT_FALSE(dsse_verify(env->substr(0, n), pub).is_ok()) << n;
  }
  // Wrong key.
  auto other = PrivateKey::generate(GetParam());
  ASSERT_TRUE(other.is_ok());
  EXPECT_EQ(dsse_verify(*env, other->public_key()).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Types, KeysTest, ::testing::Values(KeyType::kEd25519, KeyType::kEcdsaP256),
                         [](const auto& info) {
                           return info.param == KeyType::kEd25519 ? "Ed25519" : "P256";
                         });

TEST(Keys, MalformedAndWrongTypeKeysRejected) {
  testing::TempDir dir;
  EXPECT_EQ(PrivateKey::from_pem("garbage").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(PublicKey::from_pem("garbage").status().code(), StatusCode::kCorrupt);
  auto key = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(key.is_ok());
  std::string priv = key->to_pem();
  std::string pub = key->public_key().to_pem();
  // A public key is not a private key and vice versa.
  EXPECT_EQ(PrivateKey::from_pem(pub).status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(PublicKey::from_pem(priv).status().code(), StatusCode::kCorrupt);
  // Truncated PEM.
  EXPECT_FALSE(PrivateKey::from_pem(priv.substr(0, priv.size() / 2)).is_ok());
  EXPECT_FALSE(PublicKey::from_pem(pub.substr(0, pub.size() - 30)).is_ok());
  // A corrupted body.
  std::string mangled = pub;
  mangled[40] = mangled[40] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(PublicKey::from_pem(mangled).is_ok() &&
               PublicKey::from_pem(mangled)->der() == key->public_key().der());
  // Unsupported key types: RSA and EC P-384.
  EVP_PKEY* rsa_raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  ASSERT_NE(rsa_raw, nullptr);
  PkeyPtr rsa(rsa_raw);
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio, rsa.get()), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string rsa_pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EXPECT_EQ(PublicKey::from_pem(rsa_pem).status().code(), StatusCode::kUnsupported);
  PkeyPtr p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  ASSERT_NE(p384, nullptr);
  unsigned char* der = nullptr;
  int dn = i2d_PUBKEY(p384.get(), &der);
  ASSERT_GT(dn, 0);
  std::string der_s(reinterpret_cast<char*>(der), static_cast<size_t>(dn));
  OPENSSL_free(der);
  EXPECT_EQ(PublicKey::from_der(der_s).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(PrivateKey::load(dir.file("missing.pem")).status().code(), StatusCode::kNotFound);
  // An Ed25519 key does not verify an ECDSA signature.
  auto ec = PrivateKey::generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(ec.is_ok());
  auto sig = ec->sign("m");
  ASSERT_TRUE(sig.is_ok());
  EXPECT_FALSE(key->public_key().verify("m", *sig).is_ok());
  EXPECT_EQ(ec->public_key().raw_ed25519().status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace prov::store

namespace prov::store {
namespace {

TEST(Base64, NonCanonicalPaddingBitsAreRefused) {
  // "QQ==" is the canonical encoding of "A"; "QR==" decodes to the same byte with stray bits.
  ASSERT_TRUE(base64_decode("QQ==").is_ok());
  EXPECT_EQ(*base64_decode("QQ=="), "A");
  EXPECT_FALSE(base64_decode("QR==").is_ok());
  EXPECT_TRUE(base64_decode("QUI=").is_ok());
  EXPECT_FALSE(base64_decode("QUJ=").is_ok());
}

// A private key file others may read is refused, as ssh refuses one; the check is on the opened
// file, whatever the path resolves to.
TEST(KeyFiles, PrivateKeyAccessibleByOthersIsRefused) {
  testing::TempDir dir;
  auto key = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(key.is_ok());
  const std::string path = dir.file("k.pem");
  ASSERT_TRUE(key->write(path, "").is_ok());
  ASSERT_TRUE(PrivateKey::load(path).is_ok());
  for (mode_t mode : {0644, 0666, 0640, 0604}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto k = PrivateKey::load(path);
    ASSERT_FALSE(k.is_ok()) << std::oct << mode;
    EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
    char expect[64];
    std::snprintf(expect, sizeof(expect), "is readable by others (mode %04o): chmod 600",
                  static_cast<unsigned>(mode));
    EXPECT_NE(k.status().message().find(expect), std::string::npos) << k.status().to_string();
    EXPECT_NE(k.status().message().find(path), std::string::npos);
  }
  ASSERT_EQ(::chmod(path.c_str(), 0620), 0);
  EXPECT_NE(PrivateKey::load(path).status().message().find("writable by others (mode 0620)"),
            std::string::npos);
  // Through a symbolic link, the target's mode counts.
  const std::string link = dir.file("link.pem");
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_EQ(PrivateKey::load(link).status().code(), StatusCode::kInvalidArgument);
  for (mode_t mode : {0600, 0400}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto k = PrivateKey::load(link);
    ASSERT_TRUE(k.is_ok()) << std::oct << mode << ": " << k.status().to_string();
    EXPECT_EQ(k->key_id(), key->key_id());
  }
  // Public keys are public: their mode does not matter.
  ASSERT_TRUE(key->write(dir.file("k2.pem"), dir.file("k2.pub")).is_ok());
  ASSERT_EQ(::chmod(dir.file("k2.pub").c_str(), 0666), 0);
  EXPECT_TRUE(PublicKey::load(dir.file("k2.pub")).is_ok());
  // A directory is not a key.
  EXPECT_EQ(PrivateKey::load(dir.path()).status().code(), StatusCode::kInvalidArgument);
}

// Writing a key never follows a symbolic link nor replaces an existing file, and a refused public
// key path leaves no private key behind.
TEST(KeyFiles, WriteRefusesSymlinksAndExistingFiles) {
  testing::TempDir dir;
  auto key = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(key.is_ok());
  const std::string victim = dir.file("victim.txt");
  testing::write_file(victim, "precious\n");
  // KEY.pub is a symlink to another file: refused, the target untouched.
  const std::string priv = dir.file("k.pem");
  ASSERT_EQ(::symlink(victim.c_str(), (priv + ".pub").c_str()), 0);
  Status s = key->write(priv, priv + ".pub");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.to_string();
  EXPECT_EQ(testing::read_file(victim), "precious\n");
  struct stat st {};
  EXPECT_NE(::lstat(priv.c_str(), &st), 0) << "a private key was left behind";
  // A dangling symlink as the private key path: nothing is created at its target.
  const std::string target = dir.file("created-through-link.pem");
  const std::string priv2 = dir.file("k2.pem");
  ASSERT_EQ(::symlink(target.c_str(), priv2.c_str()), 0);
  s = key->write(priv2, "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.to_string();
  EXPECT_NE(::lstat(target.c_str(), &st), 0);
  // An existing public key file is not overwritten either.
  const std::string priv3 = dir.file("k3.pem");
  testing::write_file(priv3 + ".pub", "old public key\n");
  s = key->write(priv3, priv3 + ".pub");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("already exists"), std::string::npos) << s.to_string();
  EXPECT_EQ(testing::read_file(priv3 + ".pub"), "old public key\n");
  EXPECT_NE(::lstat(priv3.c_str(), &st), 0);
  // The normal case: private 0600, public 0644, whatever the umask.
  mode_t old_umask = ::umask(0077);
  const std::string priv4 = dir.file("k4.pem");
  s = key->write(priv4, priv4 + ".pub");
  ::umask(old_umask);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_EQ(::stat(priv4.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((priv4 + ".pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(PublicKey::load(priv4 + ".pub")->key_id(), key->key_id());
}

}  // namespace
}  // namespace prov::store
