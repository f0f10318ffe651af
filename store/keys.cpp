#include "store/keys.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "core/sha256.h"

namespace prov::store {

void PkeyDeleter::operator()(EVP_PKEY* k) const {
  EVP_PKEY_free(k);
}

namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// Classifies a key: Ed25519 or EC on P-256; anything else is unsupported.
Result<KeyType> classify(EVP_PKEY* k) {
  int id = EVP_PKEY_get_base_id(k);
  if (id == EVP_PKEY_ED25519) return KeyType::kEd25519;
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &len) == 1 &&
        std::string(group) == "prime256v1") {
      return KeyType::kEcdsaP256;
    }
    return unsupported("EC key on curve '" + std::string(group) +
                       "' is not supported (use P-256 or Ed25519)");
  }
  return unsupported(std::string("key type '") + (OBJ_nid2sn(id) ? OBJ_nid2sn(id) : "unknown") +
                     "' is not supported (use Ed25519 or ECDSA P-256)");
}

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Reads a key file of at most 1 MiB. With `private_key`, the opened file (fstat on the fd, so
// what is checked is what is read) must be a regular file that neither group nor others may
// read or write, as ssh requires of its identity files.
Result<std::string> read_small_file(const std::string& path, bool private_key = false) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return not_found(path + ": no such file");
    return io_error(path + ": cannot open: " + std::strerror(e));
  }
  if (private_key) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      return io_error(path + ": fstat failed: " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return invalid_argument(path + ": not a regular file, not a private key");
    }
    if ((st.st_mode & 077) != 0) {
      ::close(fd);
      const char* what = (st.st_mode & 044) != 0 ? "readable" : "writable";
      return invalid_argument(path + ": private key is " + what + " by others (mode " +
                              mode_text(st.st_mode) + "): chmod 600 " + path);
    }
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return io_error(path + ": read failed: " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) {
      ::close(fd);
      return invalid_argument(path + ": larger than 1 MiB, not a key file");
    }
  }
  ::close(fd);
  return out;
}

Status write_all(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(path + ": write failed: " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return io_error(path + ": fsync failed: " + std::strerror(errno));
  return Status::ok();
}

std::string bio_to_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

}  // namespace

const char* key_type_name(KeyType t) {
  return t == KeyType::kEd25519 ? "ed25519" : "ecdsa-p256";
}

// ---- PublicKey ----

Result<PublicKey> PublicKey::from_pem(const std::string& pem) {
  if (pem.size() > (1u << 20)) return corrupt("public key PEM larger than 1 MiB");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return internal_error("OpenSSL: cannot allocate a BIO");
  PkeyPtr k(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!k) {
    return corrupt("not a PEM public key (expected '-----BEGIN PUBLIC KEY-----'): " +
                   openssl_error());
  }
  PROV_ASSIGN_OR_RETURN(KeyType t, classify(k.get()));
  return PublicKey(std::move(k), t);
}

Result<PublicKey> PublicKey::from_der(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  PkeyPtr k(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!k || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    ERR_clear_error();
    return corrupt("not a DER SubjectPublicKeyInfo");
  }
  PROV_ASSIGN_OR_RETURN(KeyType t, classify(k.get()));
  return PublicKey(std::move(k), t);
}

Result<PublicKey> PublicKey::from_raw_ed25519(const std::string& raw32) {
  if (raw32.size() != 32) return corrupt("an Ed25519 public key is 32 bytes");
  PkeyPtr k(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                        reinterpret_cast<const unsigned char*>(raw32.data()),
                                        raw32.size()));
  if (!k) return corrupt("invalid Ed25519 public key: " + openssl_error());
  return PublicKey(std::move(k), KeyType::kEd25519);
}

Result<PublicKey> PublicKey::load(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(std::string pem, read_small_file(path));
  auto k = from_pem(pem);
  if (!k.is_ok()) return k.status().with_context(path);
  return k;
}

std::string PublicKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) return std::string();
  return bio_to_string(bio.get());
}

std::string PublicKey::der() const {
  unsigned char* buf = nullptr;
  int n = i2d_PUBKEY(key_.get(), &buf);
  if (n <= 0) return std::string();
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

PublicKey::PublicKey(PkeyPtr k, KeyType t) : key_(std::move(k)), type_(t) {
  if (key_) key_id_ = to_hex(sha256(der()));
}

std::string PublicKey::key_id() const {
  return key_id_;
}

Result<std::string> PublicKey::raw_ed25519() const {
  if (type_ != KeyType::kEd25519) return unsupported("not an Ed25519 key");
  std::string raw(32, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key_.get(), reinterpret_cast<unsigned char*>(&raw[0]), &len) !=
          1 ||
      len != 32) {
    return internal_error("OpenSSL: cannot export the Ed25519 public key: " + openssl_error());
  }
  return raw;
}

Status PublicKey::verify(const std::string& message, const std::string& sig) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return internal_error("OpenSSL: cannot allocate a digest context");
  const EVP_MD* md = type_ == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key_.get()) != 1) {
    return internal_error("OpenSSL: cannot initialise verification: " + openssl_error());
  }
  int rc =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  if (rc != 1) {
    return invalid_argument(std::string("signature does not verify under the ") +
                            key_type_name(type_) + " key " + key_id().substr(0, 16));
  }
  return Status::ok();
}

// ---- PrivateKey ----

Result<PrivateKey> PrivateKey::generate(KeyType type) {
  EVP_PKEY* raw = nullptr;
  if (type == KeyType::kEd25519) {
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  } else {
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  }
  if (!raw) return internal_error("OpenSSL: key generation failed: " + openssl_error());
  return PrivateKey(PkeyPtr(raw), type);
}

Result<PrivateKey> PrivateKey::from_pem(const std::string& pem) {
  if (pem.size() > (1u << 20)) return corrupt("private key PEM larger than 1 MiB");
  if (pem.find("ENCRYPTED") != std::string::npos) {
    return unsupported("encrypted private keys are not supported; decrypt it with openssl pkey");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return internal_error("OpenSSL: cannot allocate a BIO");
  // An empty passphrase callback keeps OpenSSL from prompting on a terminal.
  auto no_pass = [](char*, int, int, void*) -> int { return 0; };
  PkeyPtr k(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_pass, nullptr));
  if (!k) {
    return corrupt("not a PEM private key (expected '-----BEGIN PRIVATE KEY-----'): " +
                   openssl_error());
  }
  PROV_ASSIGN_OR_RETURN(KeyType t, classify(k.get()));
  return PrivateKey(std::move(k), t);
}

Result<PrivateKey> PrivateKey::load(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(std::string pem, read_small_file(path, /*private_key=*/true));
  auto k = from_pem(pem);
  if (!k.is_ok()) return k.status().with_context(path);
  return k;
}

PrivateKey::PrivateKey(PkeyPtr k, KeyType t) : key_(std::move(k)), type_(t) {
  if (key_) key_id_ = public_key().key_id();
}

PublicKey PrivateKey::public_key() const {
  unsigned char* buf = nullptr;
  int n = i2d_PUBKEY(key_.get(), &buf);
  const unsigned char* p = buf;
  PkeyPtr pub(n > 0 ? d2i_PUBKEY(nullptr, &p, n) : nullptr);
  OPENSSL_free(buf);
  return PublicKey(std::move(pub), type_);
}

std::string PrivateKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return std::string();
  }
  return bio_to_string(bio.get());
}

namespace {

// Creates `path` for writing a key: O_CREAT|O_EXCL|O_NOFOLLOW, so an existing file, or a
// symbolic link (even a dangling one) is refused and nothing is written through it. Returns the
// fd; the mode is set explicitly (the umask may have narrowed it).
Result<int> create_key_file(const std::string& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    int e = errno;
    struct stat st {};
    if ((e == EEXIST || e == ELOOP) && ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      return invalid_argument(path + ": is a symbolic link; refusing to write a key through it");
    }
    if (e == EEXIST) return invalid_argument(path + ": already exists; refusing to overwrite it");
    return io_error(path + ": cannot create: " + std::strerror(e));
  }
  if (::fchmod(fd, mode) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return io_error(path + ": fchmod failed: " + std::strerror(e));
  }
  return fd;
}

}  // namespace

Status PrivateKey::write(const std::string& private_path, const std::string& public_path) const {
  std::string pem = to_pem();
  if (pem.empty()) return internal_error("OpenSSL: cannot serialise the private key");
  std::string pub = public_path.empty() ? std::string() : public_key().to_pem();
  if (!public_path.empty() && pub.empty()) {
    return internal_error("OpenSSL: cannot serialise the public key");
  }
  // Both files are created before anything is written, so that a refused public key path
  // leaves no private key behind.
  PROV_ASSIGN_OR_RETURN(int fd, create_key_file(private_path, 0600));
  int pfd = -1;
  if (!public_path.empty()) {
    auto p = create_key_file(public_path, 0644);
    if (!p.is_ok()) {
      ::close(fd);
      ::unlink(private_path.c_str());
      return p.status();
    }
    pfd = *p;
  }
  Status st = write_all(fd, pem, private_path);
  ::close(fd);
  if (st.is_ok() && pfd >= 0) st = write_all(pfd, pub, public_path);
  if (pfd >= 0) ::close(pfd);
  if (!st.is_ok()) {
    ::unlink(private_path.c_str());
    if (pfd >= 0) ::unlink(public_path.c_str());
  }
  return st;
}

Result<std::string> PrivateKey::sign(const std::string& message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return internal_error("OpenSSL: cannot allocate a digest context");
  const EVP_MD* md = type_ == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_.get()) != 1) {
    return internal_error("OpenSSL: cannot initialise signing: " + openssl_error());
  }
  size_t len = 0;
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, msg, message.size()) != 1) {
    return internal_error("OpenSSL: signing failed: " + openssl_error());
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&sig[0]), &len, msg,
                     message.size()) != 1) {
    return internal_error("OpenSSL: signing failed: " + openssl_error());
  }
  sig.resize(len);
  return sig;
}

// ---- base64 ----

std::string base64_encode(const std::string& bytes) {
  if (bytes.empty()) return std::string();
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

Result<std::string> base64_decode(const std::string& text) {
  if (text.empty()) return std::string();
  if (text.size() % 4 != 0) {
    return corrupt("base64: length " + std::to_string(text.size()) + " is not a multiple of 4");
  }
  if (text.size() > (size_t{1} << 30)) return corrupt("base64: text too long");
  size_t pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/';
    if (c == '=') {
      // Padding only in the last two positions, and nothing but padding after it.
      if (i + 2 < text.size())
        return corrupt("base64: '=' before the end at offset " + std::to_string(i));
      ++pad;
    } else if (!alpha || pad > 0) {
      return corrupt("base64: invalid character at offset " + std::to_string(i));
    }
  }
  std::string out(text.size() / 4 * 3, '\0');
  // EVP_DecodeBlock ignores padding and returns the length rounded up to 3 bytes per quad.
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) < pad) return corrupt("base64: cannot decode");
  out.resize(static_cast<size_t>(n) - pad);
  // Only the canonical encoding is accepted: unused bits before the padding must be zero, or
  // one byte string would have several encodings (and a signed envelope several byte forms).
  if (base64_encode(out) != text)
    return corrupt("base64: non-canonical encoding (padding bits set)");
  return out;
}

Result<std::string> dsse_base64_decode(const std::string& text) {
  const bool url = text.find_first_of("-_") != std::string::npos;
  if (url && text.find_first_of("+/") != std::string::npos) {
    return corrupt("base64: mixes the standard ('+', '/') and URL-safe ('-', '_') alphabets");
  }
  std::string standard = text;
  if (url) {
    for (char& c : standard) {
      if (c == '-') c = '+';
      if (c == '_') c = '/';
    }
  }
  // Unpadded: restore the padding (a remainder of 1 is no valid length, and stays refused).
  if (standard.size() % 4 != 0 && standard.find('=') == std::string::npos) {
    standard.append(4 - standard.size() % 4, '=');
  }
  return base64_decode(standard);
}

// ---- DSSE ----

std::string dsse_pae(const std::string& payload_type, const std::string& payload) {
  std::string out = "DSSEv1 ";
  out += std::to_string(payload_type.size());
  out += ' ';
  out += payload_type;
  out += ' ';
  out += std::to_string(payload.size());
  out += ' ';
  out += payload;
  return out;
}

Result<std::string> dsse_sign(const std::string& payload_type, const std::string& payload,
                              const PrivateKey& key) {
  PROV_ASSIGN_OR_RETURN(std::string sig, key.sign(dsse_pae(payload_type, payload)));
  nlohmann::ordered_json j;
  j["payload"] = base64_encode(payload);
  j["payloadType"] = payload_type;
  j["signatures"] =
      nlohmann::ordered_json::array({{{"keyid", key.key_id()}, {"sig", base64_encode(sig)}}});
  try {
    return j.dump();
  } catch (const std::exception& e) {  // invalid UTF-8 in payload_type
    return invalid_argument(std::string("DSSE: cannot serialise the envelope: ") + e.what());
  }
}

Result<DsseEnvelope> dsse_parse(const std::string& envelope_json) {
  JsonFailure failure;
  auto parsed = parse_json(envelope_json, "DSSE envelope", {}, &failure);
  if (!parsed.is_ok()) {
    if (failure.kind == JsonFailure::kSyntax) return corrupt("DSSE: envelope is not valid JSON");
    return corrupt("DSSE: envelope refused: " + failure.detail);
  }
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return corrupt("DSSE: envelope is not a JSON object");
  auto payload = j.find("payload");
  auto type = j.find("payloadType");
  auto sigs = j.find("signatures");
  if (payload == j.end() || !payload->is_string()) {
    return corrupt("DSSE: missing string field 'payload'");
  }
  if (type == j.end() || !type->is_string()) {
    return corrupt("DSSE: missing string field 'payloadType'");
  }
  if (sigs == j.end() || !sigs->is_array() || sigs->empty()) {
    return corrupt("DSSE: 'signatures' must be a non-empty array");
  }
  DsseEnvelope env;
  env.payload_type = type->get<std::string>();
  auto decoded = dsse_base64_decode(payload->get<std::string>());
  if (!decoded.is_ok()) return decoded.status().with_context("DSSE payload");
  env.payload = std::move(decoded).value();
  for (size_t i = 0; i < sigs->size(); ++i) {
    const auto& s = (*sigs)[i];
    std::string where = "DSSE signatures[" + std::to_string(i) + "]";
    if (!s.is_object()) return corrupt(where + " is not an object");
    auto sig = s.find("sig");
    if (sig == s.end() || !sig->is_string()) return corrupt(where + ": missing string 'sig'");
    auto keyid = s.find("keyid");
    if (keyid != s.end() && !keyid->is_string()) return corrupt(where + ": 'keyid' not a string");
    DsseSignature ds;
    if (keyid != s.end()) ds.keyid = keyid->get<std::string>();
    auto raw = dsse_base64_decode(sig->get<std::string>());
    if (!raw.is_ok()) return raw.status().with_context(where);
    if (raw->empty()) return corrupt(where + ": empty signature");
    ds.sig = std::move(raw).value();
    env.signatures.push_back(std::move(ds));
  }
  return env;
}

Result<DsseEnvelope> dsse_verify(const std::string& envelope_json, const PublicKey& key) {
  PROV_ASSIGN_OR_RETURN(DsseEnvelope env, dsse_parse(envelope_json));
  std::string id = key.key_id();
  std::string pae = dsse_pae(env.payload_type, env.payload);
  for (const auto& s : env.signatures) {
    if (!s.keyid.empty() && s.keyid != id) continue;
    if (key.verify(pae, s.sig).is_ok()) return env;
  }
  return invalid_argument("DSSE: no signature verifies under key " + id.substr(0, 16) + " (" +
                          std::to_string(env.signatures.size()) + " signature(s) present)");
}

}  // namespace prov::store
