// A model signature written exactly as the OpenSSF model-signing reference tool
// (sigstore/model-transparency `model_signing sign key`, 1.x) writes one, built here from the
// published format with an OpenSSL ECDSA P-256 key: a Sigstore bundle v0.3 whose DSSE payload is
// the in-toto Statement as protobuf's MessageToJson prints it. Shares no code with prov's
// store/model_signing. Header-only; link OpenSSL::Crypto.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/tlog_reference.h"

namespace prov::testing::ref {

inline std::string hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

// An ECDSA P-256 key made with OpenSSL alone, its public PEM, and ECDSA-SHA256 signing (DER).
struct EcKey {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  ~EcKey() { EVP_PKEY_free(pkey); }
  std::string public_pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    char* p = nullptr;
    long n = BIO_get_mem_data(bio, &p);
    std::string out(p, static_cast<size_t>(n));
    BIO_free(bio);
    return out;
  }
  std::string sign(const std::string& msg) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t n = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey);
    EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(msg.data()),
                   msg.size());
    std::string sig(n, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n,
                   reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(n);
    return sig;
  }
  bool verify(const std::string& msg, const std::string& sig) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
              EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                               reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
  }
};

inline std::string pae(const std::string& type, const std::string& body) {
  return "DSSEv1 " + std::to_string(type.size()) + " " + type + " " + std::to_string(body.size()) +
         " " + body;
}

// The signature file the reference tool writes for `files` signed with `key`: a Sigstore bundle
// v0.3 whose DSSE payload is the in-toto Statement as protobuf's MessageToJson prints it.
inline std::string reference_signature(
    const EcKey& key, const std::string& model_name,
    const std::vector<std::pair<std::string, std::string>>& files, std::string* subject_digest) {
  std::string raw;
  std::string resources;
  for (size_t i = 0; i < files.size(); ++i) {
    std::string d;
    for (size_t j = 0; j < 64; j += 2) {
      d.push_back(static_cast<char>(std::stoi(files[i].second.substr(j, 2), nullptr, 16)));
    }
    raw += d;
    resources += std::string(i ? ",\n" : "") + "      {\n        \"algorithm\": \"sha256\",\n" +
                 "        \"digest\": \"" + files[i].second + "\",\n        \"name\": \"" +
                 files[i].first + "\"\n      }";
  }
  *subject_digest = hex(sha256(raw));
  const std::string payload =
      "{\n  \"_type\": \"https://in-toto.io/Statement/v1\",\n  \"subject\": [\n    {\n"
      "      \"name\": \"" +
      model_name + "\",\n      \"digest\": {\n        \"sha256\": \"" + *subject_digest +
      "\"\n      }\n    }\n  ],\n  \"predicateType\": \"https://model_signing/signature/v1.0\",\n"
      "  \"predicate\": {\n    \"serialization\": {\n      \"method\": \"files\",\n"
      "      \"hash_type\": \"sha256\",\n      \"allow_symlinks\": false,\n"
      "      \"ignore_paths\": [\n        \".git\",\n        \".gitattributes\",\n"
      "        \".github\",\n        \".gitignore\",\n        \"model.sig\"\n      ]\n    },\n"
      "    \"resources\": [\n" +
      resources + "\n    ]\n  }\n}";
  const std::string sig = key.sign(pae("application/vnd.in-toto+json", payload));
  nlohmann::json bundle = {
      {"mediaType", "application/vnd.dev.sigstore.bundle.v0.3+json"},
      {"verificationMaterial",
       {{"publicKey", {{"hint", hex(sha256(key.public_pem()))}}},
        {"tlogEntries", nlohmann::json::array()}}},
      {"dsseEnvelope",
       {{"payload", b64encode(payload)},
        {"payloadType", "application/vnd.in-toto+json"},
        {"signatures", nlohmann::json::array({{{"sig", b64encode(sig)}, {"keyid", ""}}})}}}};
  return bundle.dump(2);
}

}  // namespace prov::testing::ref
