// OpenSSF model signing (OMS v1.0) signatures: one written here exactly as the reference tool
// (sigstore/model-transparency `model_signing sign key`) writes it, by construction from the
// published format with an OpenSSL key, verifies with prov; prov's signatures check out under
// an independent reading of the format; tampering is refused.
#include "store/model_signing.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/formats/digest.h"
#include "tests/support/oms_reference.h"
#include "tests/support/test_support.h"
#include "tests/support/tlog_reference.h"

namespace prov::store {
namespace {

namespace ref = prov::testing::ref;
using nlohmann::json;
using ref::EcKey;
using ref::hex;
using ref::pae;
using ref::reference_signature;

// A model directory of three files; returns {name, sha256 hex} in the reference's order.
std::vector<std::pair<std::string, std::string>> write_model(const std::string& root) {
  std::filesystem::create_directories(root + "/sub");
  std::vector<std::pair<std::string, std::string>> files = {
      {"config.json", "{\"model_type\": \"llama\"}"},
      {"model.safetensors", std::string(1000, '\x07')},
      {"sub/weights.bin", "weights"}};
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, body] : files) {
    testing::write_file(root + "/" + name, body);
    out.emplace_back(name, hex(ref::sha256(body)));
  }
  return out;
}

std::vector<OmsResource> manifest_resources(const std::string& model) {
  auto m = model::compute_manifest(model);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  std::vector<OmsResource> out;
  for (const auto& f : m->files) out.push_back({f.name, f.sha256});
  return out;
}

TEST(ModelSigning, VerifiesASignatureWrittenAsTheReferenceDoes) {
  testing::TempDir dir;
  const std::string model = dir.file("tiny-llama");
  const auto files = write_model(model);
  EcKey key;
  std::string digest;
  const std::string sig = reference_signature(key, "tiny-llama", files, &digest);
  auto pub = PublicKey::from_pem(key.public_pem());
  ASSERT_TRUE(pub.is_ok()) << pub.status().to_string();
  auto v = oms_verify(sig, *pub);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->model_name, "tiny-llama");
  EXPECT_EQ(v->digest, digest);
  ASSERT_EQ(v->resources.size(), 3u);
  EXPECT_EQ(v->serialization["method"], "files");
  // The model on disk matches, and the signature names it by prov's model digest.
  const auto local = manifest_resources(model);
  EXPECT_TRUE(oms_compare(*v, local).is_ok());
  EXPECT_EQ(model::compute_manifest(model)->digest, digest);
  // A changed file, a removed one and a new one are each named.
  testing::write_file(model + "/sub/weights.bin", "tampered");
  testing::write_file(model + "/extra.txt", "x");
  std::filesystem::remove(model + "/config.json");
  Status s = oms_compare(*v, manifest_resources(model));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("changed: sub/weights.bin"), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("missing: config.json"), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("not signed: extra.txt"), std::string::npos) << s.to_string();
}

TEST(ModelSigning, ProvsSignatureReadsAsTheFormatSays) {
  testing::TempDir dir;
  const std::string model = dir.file("m");
  write_model(model);
  auto key = PrivateKey::generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(key.is_ok());
  OmsManifest m;
  m.model_name = "m";
  m.resources = manifest_resources(model);
  m.ignore_paths = {".git", "model.sig"};
  auto sig = oms_sign(m, *key);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();

  // Read with nlohmann and OpenSSL alone.
  json b = json::parse(*sig);
  EXPECT_EQ(b["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
  const std::string pem = key->public_key().to_pem();
  EXPECT_EQ(b["verificationMaterial"]["publicKey"]["hint"], hex(ref::sha256(pem)));
  EXPECT_EQ(b["verificationMaterial"]["tlogEntries"], json::array());
  const json& env = b["dsseEnvelope"];
  EXPECT_EQ(env["payloadType"], "application/vnd.in-toto+json");
  ASSERT_EQ(env["signatures"].size(), 1u);
  EXPECT_EQ(env["signatures"][0]["keyid"], "");
  const std::string payload = ref::b64decode(env["payload"].get<std::string>());
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EcKey check;
  EVP_PKEY_free(check.pkey);
  check.pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(check.pkey, nullptr);
  EXPECT_TRUE(check.verify(pae("application/vnd.in-toto+json", payload),
                           ref::b64decode(env["signatures"][0]["sig"].get<std::string>())));
  json st = json::parse(payload);
  EXPECT_EQ(st["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(st["predicateType"], "https://model_signing/signature/v1.0");
  ASSERT_EQ(st["subject"].size(), 1u);
  EXPECT_EQ(st["subject"][0]["name"], "m");
  const json& p = st["predicate"];
  EXPECT_EQ(p["serialization"], json({{"method", "files"},
                                      {"hash_type", "sha256"},
                                      {"allow_symlinks", true},
                                      {"ignore_paths", json::array({".git", "model.sig"})}}));
  std::string raw;
  ASSERT_EQ(p["resources"].size(), 3u);
  for (const auto& r : p["resources"]) {
    EXPECT_EQ(r["algorithm"], "sha256");
    const std::string d = r["digest"];
    for (size_t j = 0; j < 64; j += 2) {
      raw.push_back(static_cast<char>(std::stoi(d.substr(j, 2), nullptr, 16)));
    }
  }
  EXPECT_EQ(st["subject"][0]["digest"]["sha256"], hex(ref::sha256(raw)));
  EXPECT_EQ(st["subject"][0]["digest"]["sha256"], model::compute_manifest(model)->digest);
  // And prov reads it back.
  auto v = oms_verify(*sig, key->public_key());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_TRUE(oms_compare(*v, m.resources).is_ok());
}

TEST(ModelSigning, ForgeriesAndOtherFormatsAreRefused) {
  testing::TempDir dir;
  const std::string model = dir.file("m");
  const auto files = write_model(model);
  EcKey key, other;
  std::string digest;
  const std::string sig = reference_signature(key, "m", files, &digest);
  PublicKey pub = std::move(PublicKey::from_pem(key.public_pem())).value();
  PublicKey other_pub = std::move(PublicKey::from_pem(other.public_pem())).value();
  // Another key: the hint names the mismatch; without a hint the signature fails.
  auto wrong = oms_verify(sig, other_pub);
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("hint"), std::string::npos);
  json b = json::parse(sig);
  b["verificationMaterial"]["publicKey"].erase("hint");
  EXPECT_EQ(oms_verify(b.dump(), other_pub).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(oms_verify(b.dump(), pub).is_ok());
  // A payload changed after signing.
  b = json::parse(sig);
  std::string payload = ref::b64decode(b["dsseEnvelope"]["payload"].get<std::string>());
  payload[payload.find(files[1].second)] ^= 1;
  b["dsseEnvelope"]["payload"] = ref::b64encode(payload);
  EXPECT_EQ(oms_verify(b.dump(), pub).status().code(), StatusCode::kInvalidArgument);
  // Signed, but the resources do not hash to the subject.
  auto resign = [&](const std::string& body) {
    json s = json::parse(sig);
    s["dsseEnvelope"]["payload"] = ref::b64encode(body);
    s["dsseEnvelope"]["signatures"][0]["sig"] =
        ref::b64encode(key.sign(pae("application/vnd.in-toto+json", body)));
    return s.dump();
  };
  json st =
      json::parse(ref::b64decode(json::parse(sig)["dsseEnvelope"]["payload"].get<std::string>()));
  json bad = st;
  bad["predicate"]["resources"][0]["digest"] = std::string(64, '0');
  EXPECT_EQ(oms_verify(resign(bad.dump()), pub).status().code(), StatusCode::kCorrupt);
  bad = st;
  bad["predicateType"] = "https://model_signing/Digests/v0.1";
  EXPECT_EQ(oms_verify(resign(bad.dump()), pub).status().code(), StatusCode::kUnsupported);
  bad = st;
  bad["subject"].push_back(st["subject"][0]);
  EXPECT_EQ(oms_verify(resign(bad.dump()), pub).status().code(), StatusCode::kCorrupt);
  bad = st;
  bad["predicate"]["serialization"]["method"] = "shards";
  EXPECT_EQ(oms_verify(resign(bad.dump()), pub).status().code(), StatusCode::kUnsupported);
  EXPECT_TRUE(oms_verify(resign(st.dump()), pub).is_ok());
  b = json::parse(sig);
  b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1";
  EXPECT_EQ(oms_verify(b.dump(), pub).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(oms_verify("not json", pub).status().code(), StatusCode::kCorrupt);
  // prov signs only with keys the reference verifies.
  auto ed = PrivateKey::generate(KeyType::kEd25519);
  OmsManifest m;
  m.model_name = "m";
  m.resources = manifest_resources(model);
  EXPECT_EQ(oms_sign(m, *ed).status().code(), StatusCode::kUnsupported);
  m.resources.clear();
  auto ec = PrivateKey::generate(KeyType::kEcdsaP256);
  EXPECT_EQ(oms_sign(m, *ec).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace prov::store
