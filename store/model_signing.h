// OpenSSF model signing (OMS) v1.0 signatures with a key, as the reference tool
// (sigstore/model-transparency `model_signing`, 1.x) writes and reads them. docs/formats/
// model-signature.md describes the format.
//
// A signature file is a Sigstore bundle (JSON, mediaType
// "application/vnd.dev.sigstore.bundle.v0.3+json") with
//   verificationMaterial.publicKey.hint  hex SHA-256 of the signer's public key as PEM
//                                        SubjectPublicKeyInfo text; tlogEntries []
//   dsseEnvelope {payload, payloadType "application/vnd.in-toto+json",
//                 signatures [{sig, keyid ""}]}  (DSSE over PAE(payloadType, payload))
// whose payload is an in-toto Statement v1:
//   subject        [{name: <model directory name>, digest: {sha256: <hex>}}]   (exactly one)
//   predicateType  "https://model_signing/signature/v1.0"
//   predicate      {serialization: {method: "files", hash_type: "sha256", allow_symlinks,
//                                   ignore_paths: [...]},
//                   resources: [{name: <relative path>, algorithm: "sha256", digest: <hex>}]}
// The subject digest is SHA-256 over the raw 32-byte resource digests in the order listed: the
// OMS manifest digest prov names models by (model/formats/digest.h), so a signature, a lineage
// report and a ledger entry name the model by the same digest.
//
// The reference signs with elliptic-curve keys (ECDSA over SHA-256 for P-256, DER signature);
// prov signs with ECDSA P-256 keys and verifies ECDSA P-256 (and Ed25519) signatures.
// This module never reads the model: the caller hashes it (model::compute_manifest) and passes
// the resources. Thread safety: stateless functions.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "store/keys.h"

namespace prov::store {

inline constexpr char kOmsPredicateType[] = "https://model_signing/signature/v1.0";
inline constexpr char kSigstoreBundleV03[] = "application/vnd.dev.sigstore.bundle.v0.3+json";

struct OmsResource {
  std::string name;    // path relative to the model root, '/'-separated
  std::string sha256;  // lowercase hex
};

struct OmsManifest {
  std::string model_name;                 // the model directory's name (informative)
  std::vector<OmsResource> resources;     // in manifest order
  std::vector<std::string> ignore_paths;  // recorded as the serialization's ignore_paths
  bool allow_symlinks = true;             // prov's manifest follows symbolic links
};

// The manifest for signing the model at `model_path` with the signature written to
// `signature_path`: the model's name is the last component of its path (of the current
// directory for "."), and ignore_paths lists the git files prov's manifest leaves out (.git,
// .gitattributes, .github, .gitignore) and the signature when it lies inside the model.
OmsManifest oms_manifest_for(const std::string& model_path, const std::string& signature_path,
                             std::vector<OmsResource> resources);

// Hex SHA-256 over the raw resource digests in order; kInvalidArgument on a digest that is not
// 64 hex digits.
Result<std::string> oms_subject_digest(const std::vector<OmsResource>& resources);

// The in-toto Statement (JSON text, 2-space indented) the signature carries.
Result<std::string> oms_statement(const OmsManifest& manifest);

// Signs the statement with `key` (ECDSA P-256; kUnsupported for other keys, which the reference
// cannot verify) and returns the bundle JSON. kInvalidArgument on an empty manifest or a bad
// digest.
Result<std::string> oms_sign(const OmsManifest& manifest, const PrivateKey& key);

struct OmsSignature {
  std::string model_name;
  std::string digest;  // the subject's sha256, hex
  std::vector<OmsResource> resources;
  nlohmann::json serialization;
};
// Checks a bundle with `key`: media type, the public-key hint (when present) against the key,
// the DSSE signature over PAE (before the payload is parsed), the Statement type, predicate
// type, a single subject, sha256 resources and the subject digest recomputed from them.
// kCorrupt on a malformed bundle or statement; kInvalidArgument when the signature or hint does
// not match the key; kUnsupported for another predicate type or serialization method.
Result<OmsSignature> oms_verify(const std::string& bundle_json, const PublicKey& key);

// The model's files (as hashed now) against a verified signature, by name, leaving out the
// files under the signature's ignore_paths: kInvalidArgument naming the first files that differ,
// are missing or are not in the signature (at most 5 each).
Status oms_compare(const OmsSignature& signature, const std::vector<OmsResource>& model);

// `prov sign` and `prov verify-model`: the model hashed by `hash` (the caller's manifest of the
// model path: model::compute_manifest), keys and signature read from or written to files.
// sign writes the signature (ECDSA P-256 key) and returns a line saying so; verify checks it
// (oms_verify, then oms_compare) and returns "verified: ...".
struct OmsFiles {
  std::string model, key, signature = "model.sig";
};
using OmsHasher = std::function<Result<std::vector<OmsResource>>(const std::string& model)>;
Result<std::string> oms_sign_files(const OmsFiles& files, const OmsHasher& hash);
Result<std::string> oms_verify_files(const OmsFiles& files, const OmsHasher& hash);

}  // namespace prov::store
