// DSSE envelopes in either base64 alphabet: the DSSE envelope spec lets a signer use standard or
// URL-safe base64 and requires verifiers to accept both. The URL-safe forms here come from an
// independent encoder (coreutils basenc), not from prov.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/sha256.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "tests/support/test_support.h"

namespace prov::store {
namespace {

using nlohmann::json;

PrivateKey new_key(KeyType type = KeyType::kEd25519) {
  auto k = PrivateKey::generate(type);
  EXPECT_TRUE(k.is_ok());
  return std::move(k).value();
}

std::string statement_of(const std::string& name) {
  json st = {{"_type", "https://in-toto.io/Statement/v1"},
             {"subject", {{{"name", name}, {"digest", {{"sha256", to_hex(sha256(name))}}}}}},
             {"predicateType", "https://example.com/test/v1"},
             {"predicate", {{"note", "bytes chosen to need '+' and '/': ~~~???>>>"}}}};
  return st.dump();
}

// `bytes` in RFC 4648 §5 URL-safe base64 (padded) by coreutils basenc; without padding when
// `padded` is false.
std::string basenc_url(const testing::TempDir& dir, const std::string& bytes, bool padded) {
  const std::string in = dir.file("in.bin");
  testing::write_file(in, bytes);
  testing::Outcome o = testing::run_command("basenc --base64url --wrap=0 '" + in + "'", false);
  EXPECT_EQ(o.code, 0) << o.out;
  std::string text = o.out;
  while (!text.empty() && (text.back() == '\n' || (!padded && text.back() == '='))) {
    text.pop_back();
  }
  return text;
}

// The envelope `standard` re-encoded: payload and signatures in the URL-safe alphabet.
std::string url_safe_envelope(const testing::TempDir& dir, const std::string& standard,
                              bool padded) {
  json env = json::parse(standard);
  env["payload"] = basenc_url(dir, *base64_decode(env["payload"].get<std::string>()), padded);
  for (auto& s : env["signatures"]) {
    s["sig"] = basenc_url(dir, *base64_decode(s["sig"].get<std::string>()), padded);
  }
  return env.dump();
}

bool has_url_safe_characters(const std::string& envelope) {
  json env = json::parse(envelope);
  std::string all = env["payload"].get<std::string>();
  for (const auto& s : env["signatures"]) all += s["sig"].get<std::string>();
  return all.find_first_of("-_") != std::string::npos;
}

TEST(DsseBase64, BothAlphabetsPaddedOrNot) {
  testing::TempDir dir;
  if (testing::run_command("command -v basenc", false).code != 0) {
    GTEST_SKIP() << "coreutils basenc not found";
  }
  for (std::string bytes : {std::string(""), std::string("\xfb\xff", 2), std::string("?>~"),
                            std::string("\xfb\xef\xbe\xff\x00\x3e", 6), std::string("abcd")}) {
    for (bool padded : {true, false}) {
      std::string url = basenc_url(dir, bytes, padded);
      auto d = dsse_base64_decode(url);
      ASSERT_TRUE(d.is_ok()) << url << ": " << d.status().to_string();
      EXPECT_EQ(*d, bytes) << url;
    }
    std::string standard = base64_encode(bytes);
    EXPECT_EQ(*dsse_base64_decode(standard), bytes);
    std::string unpadded = standard.substr(0, standard.find('='));
    EXPECT_EQ(*dsse_base64_decode(unpadded), bytes) << unpadded;
  }
  EXPECT_EQ(*dsse_base64_decode("-_-_"), *base64_decode("+/+/"));
  // Refused: the two alphabets mixed, impossible lengths, characters of neither, padding inside,
  // unused bits set (one byte string, one reading).
  for (const char* bad : {"+_-/", "ab-/", "A", "AAAAA", "Zm9v!mFy", "Zg=a", "Zh", "Zh==", "Zm9="}) {
    EXPECT_EQ(dsse_base64_decode(bad).status().code(), StatusCode::kCorrupt) << bad;
  }
  // The strict decoder used for prov's own canonical fields stays standard-only.
  EXPECT_FALSE(base64_decode("-_-_").is_ok());
}

TEST(DsseBase64, UrlSafeEnvelopesVerify) {
  testing::TempDir dir;
  if (testing::run_command("command -v basenc", false).code != 0) {
    GTEST_SKIP() << "coreutils basenc not found";
  }
  for (KeyType type : {KeyType::kEd25519, KeyType::kEcdsaP256}) {
    PrivateKey key = new_key(type);
    PublicKey pub = key.public_key();
    // Sign until the encoding needs URL-safe characters (a random signature nearly always does).
    std::string standard, url;
    for (int i = 0; i < 64 && (url.empty() || !has_url_safe_characters(url)); ++i) {
      auto s = dsse_sign(kInTotoPayloadType, statement_of("m" + std::to_string(i)), key);
      ASSERT_TRUE(s.is_ok());
      standard = *s;
      url = url_safe_envelope(dir, standard, /*padded=*/true);
    }
    ASSERT_TRUE(has_url_safe_characters(url));
    for (bool padded : {true, false}) {
      std::string env = url_safe_envelope(dir, standard, padded);
      auto v = dsse_verify(env, pub);
      ASSERT_TRUE(v.is_ok()) << v.status().to_string();
      EXPECT_EQ(v->payload, dsse_verify(standard, pub)->payload);
    }
    // A changed payload still fails, in either alphabet.
    json tampered = json::parse(url);
    std::string payload = *dsse_base64_decode(tampered["payload"].get<std::string>());
    payload[payload.size() / 2] ^= 1;
    tampered["payload"] = basenc_url(dir, payload, true);
    EXPECT_EQ(dsse_verify(tampered.dump(), pub).status().code(), StatusCode::kInvalidArgument);
  }
}

// The ledger takes a URL-safe envelope (prov ledger append), and knows it again however it is
// re-encoded: replay refusal is on the signed content, not on the alphabet.
TEST(DsseBase64, LedgerAppendsUrlSafeEnvelopesAndRefusesTheirReplay) {
  testing::TempDir dir;
  if (testing::run_command("command -v basenc", false).code != 0) {
    GTEST_SKIP() << "coreutils basenc not found";
  }
  PrivateKey key = new_key();
  PublicKey pub = key.public_key();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok()) << l.status().to_string();
  std::string standard = *dsse_sign(kInTotoPayloadType, statement_of("url-safe"), key);
  std::string url = url_safe_envelope(dir, standard, /*padded=*/false);
  auto index = (*l)->append(url, &pub);
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  auto e = (*l)->get(*index);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->envelope, url);  // kept byte for byte
  EXPECT_EQ(e->subjects, std::vector<std::string>{"sha256:" + to_hex(sha256("url-safe"))});
  auto replay = (*l)->append(standard, &pub);
  ASSERT_FALSE(replay.is_ok());
  EXPECT_EQ(replay.status().code(), StatusCode::kInvalidArgument);
  auto verified = (*l)->verify({});
  EXPECT_TRUE(verified.is_ok()) << verified.status().to_string();
}

}  // namespace
}  // namespace prov::store
