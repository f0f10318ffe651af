// Signing keys (Ed25519, ECDSA P-256) and DSSE envelopes.
//
// Keys live in OpenSSL EVP_PKEY objects owned by the key classes. Private keys are written as
// unencrypted PKCS#8 PEM with file mode 0600, public keys as SubjectPublicKeyInfo PEM with mode
// 0644, both created with O_CREAT|O_EXCL|O_NOFOLLOW: an existing file or a symbolic link is
// never written through. A private key file that group or others may access is refused when
// loaded (as ssh does). A key id is the lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
//
// Signatures: Ed25519 signs the message itself (64 bytes); ECDSA P-256 signs SHA-256(message)
// and produces a DER ECDSA-Sig-Value.
//
// DSSE (https://github.com/secure-systems-lab/dsse, protocol v1): the signature covers
//   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
// where LEN is the ASCII decimal byte length. The envelope is the JSON object
//   {"payload": base64(body), "payloadType": type, "signatures": [{"keyid": id, "sig": b64}]}
// written with standard base64 (RFC 4648 §4, padded). Read in either alphabet, as the DSSE
// envelope spec requires of verifiers ("Either standard or URL-safe encoding is allowed"):
// standard or URL-safe (§5), padded or not (dsse_base64_decode). Verification checks a signature
// before the payload is handed to anyone to parse.
//
// Key objects are move-only (they own their EVP_PKEY through a unique_ptr).
// Thread safety: key objects are immutable after construction; concurrent sign/verify calls on
// one object are safe (OpenSSL contexts are created per call).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace prov::store {

enum class KeyType { kEd25519, kEcdsaP256 };
const char* key_type_name(KeyType t);  // "ed25519", "ecdsa-p256"

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

class PublicKey {
 public:
  // Fail with kCorrupt (malformed PEM/DER, not a public key) or kUnsupported (a key type other
  // than Ed25519 / P-256).
  static Result<PublicKey> from_pem(const std::string& pem);
  static Result<PublicKey> from_der(const std::string& der);
  // Ed25519 only: the 32-byte raw public key.
  static Result<PublicKey> from_raw_ed25519(const std::string& raw32);
  // Reads a PEM file (kNotFound / kIo on file errors, else as from_pem).
  static Result<PublicKey> load(const std::string& path);

  KeyType type() const { return type_; }
  std::string to_pem() const;
  std::string der() const;     // SubjectPublicKeyInfo
  std::string key_id() const;  // hex SHA-256 of der()
  // Ed25519 only (kUnsupported otherwise): the 32 raw public-key bytes.
  Result<std::string> raw_ed25519() const;
  // OK iff `sig` is a valid signature of `message`; kInvalidArgument ("signature does not
  // verify") otherwise. Never throws.
  Status verify(const std::string& message, const std::string& sig) const;

 private:
  PublicKey(PkeyPtr k, KeyType t);
  PkeyPtr key_;
  KeyType type_;
  std::string key_id_;  // derived once: it costs more than a signature check
  friend class PrivateKey;
};

class PrivateKey {
 public:
  static Result<PrivateKey> generate(KeyType type);
  // kCorrupt (malformed PEM, a public key, an encrypted key), kUnsupported (other key types).
  static Result<PrivateKey> from_pem(const std::string& pem);
  // Reads a PEM file: kNotFound / kIo on file errors; kInvalidArgument when the opened file is
  // not a regular file or its mode gives group or others any access ("... is readable by others
  // (mode 0644): chmod 600 ..."); else as from_pem.
  static Result<PrivateKey> load(const std::string& path);

  KeyType type() const { return type_; }
  PublicKey public_key() const;
  std::string to_pem() const;  // unencrypted PKCS#8
  // Writes the private key to `private_path` (mode 0600) and, when `public_path` is non-empty,
  // the public key PEM there (mode 0644). Neither may exist yet: an existing file or a symbolic
  // link at either path is refused with kInvalidArgument saying which, before anything is
  // written. kIo on other failures; on any failure no file of this call is left behind.
  Status write(const std::string& private_path, const std::string& public_path) const;
  Result<std::string> sign(const std::string& message) const;
  // The key id of the public half (hex SHA-256 of its DER), derived once at construction.
  const std::string& key_id() const { return key_id_; }

 private:
  PrivateKey(PkeyPtr k, KeyType t);
  PkeyPtr key_;
  KeyType type_;
  std::string key_id_;
};

// Standard padded base64. decode fails with kCorrupt on any character outside the alphabet,
// bad length or misplaced padding.
std::string base64_encode(const std::string& bytes);
Result<std::string> base64_decode(const std::string& text);
// The base64 a DSSE envelope's payload and signatures may use: the standard alphabet (RFC 4648
// §4) or the URL-safe one (§5, '-' and '_' for '+' and '/'), not both in one text, with or without
// the '=' padding. kCorrupt on anything else, and on a non-canonical encoding (unused bits set),
// so that one byte string has one reading in each form.
Result<std::string> dsse_base64_decode(const std::string& text);

std::string dsse_pae(const std::string& payload_type, const std::string& payload);

struct DsseSignature {
  std::string keyid;
  std::string sig;  // raw signature bytes (decoded)
};

struct DsseEnvelope {
  std::string payload_type;
  std::string payload;  // decoded payload bytes
  std::vector<DsseSignature> signatures;
};

// Signs and serialises an envelope with one signature.
Result<std::string> dsse_sign(const std::string& payload_type, const std::string& payload,
                              const PrivateKey& key);

// Parses the envelope structure (kCorrupt with the reason on anything malformed: not JSON,
// missing/ill-typed fields, bad base64, no signatures). Payload and signatures are read with
// dsse_base64_decode (standard or URL-safe). Checks no signature: callers that go on
// to parse the payload must verify first (dsse_verify).
Result<DsseEnvelope> dsse_parse(const std::string& envelope_json);

// Parses and verifies: OK iff some signature verifies under `key` (signatures whose keyid is
// non-empty and differs from key.key_id() are skipped). Returns the envelope, whose payload may
// then be parsed. kCorrupt on a malformed envelope, kInvalidArgument when no signature verifies.
Result<DsseEnvelope> dsse_verify(const std::string& envelope_json, const PublicKey& key);

}  // namespace prov::store
