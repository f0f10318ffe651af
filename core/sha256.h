// SHA-256 (OpenSSL EVP) and hex helpers.
//
// Sha256 is a streaming hasher; one instance is not thread-safe, separate instances are.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace prov {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t len);
  void update(const std::string& s) { update(s.data(), s.size()); }
  Digest finish();  // the hasher may not be updated afterwards

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Digest sha256(const void* data, size_t len);
inline Digest sha256(const std::string& s) {
  return sha256(s.data(), s.size());
}

// Streams a file through SHA-256 (read-only mapped windows of 16 MiB, or read() where a file
// cannot be mapped): memory stays bounded regardless of file size.
Result<Digest> sha256_file(const std::string& path);

std::string to_hex(const uint8_t* data, size_t len);
inline std::string to_hex(const Digest& d) {
  return to_hex(d.data(), d.size());
}
// Fails with kInvalidArgument on odd length or non-hex characters.
Result<std::string> from_hex(const std::string& hex);

}  // namespace prov
