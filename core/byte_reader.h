// Bounds-checked little-endian reading of untrusted bytes.
//
// Every checkpoint parser reads through a ByteReader so that no read can run past the buffer
// and every error names the file and the offset. The reader does not own the bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "core/status.h"

namespace prov {

class ByteReader {
 public:
  // `what` names the source in error messages (usually the file path).
  ByteReader(const uint8_t* data, uint64_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}

  uint64_t offset() const { return pos_; }
  uint64_t size() const { return size_; }
  uint64_t remaining() const { return size_ - pos_; }
  const uint8_t* data() const { return data_; }
  const std::string& what() const { return what_; }

  // Fails with kCorrupt unless n more bytes are available.
  Status need(uint64_t n, const char* field) const {
    if (n > size_ - pos_) {
      return corrupt(what_ + ": truncated at offset " + std::to_string(pos_) + " reading " + field +
                     " (" + std::to_string(n) + " bytes needed, " + std::to_string(size_ - pos_) +
                     " left)");
    }
    return Status::ok();
  }

  template <typename T>
  Status read(T* out, const char* field) {
    PROV_RETURN_IF_ERROR(need(sizeof(T), field));
    std::memcpy(out, data_ + pos_, sizeof(T));  // host is little-endian (checked at build time)
    pos_ += sizeof(T);
    return Status::ok();
  }

  // Reads n raw bytes into a string (n is checked against the remaining size first).
  Status read_string(uint64_t n, std::string* out, const char* field) {
    PROV_RETURN_IF_ERROR(need(n, field));
    out->assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return Status::ok();
  }

  Status skip(uint64_t n, const char* field) {
    PROV_RETURN_IF_ERROR(need(n, field));
    pos_ += n;
    return Status::ok();
  }

  Status seek(uint64_t pos, const char* field) {
    if (pos > size_) {
      return corrupt(what_ + ": " + field + " offset " + std::to_string(pos) +
                     " is past the end (" + std::to_string(size_) + " bytes)");
    }
    pos_ = pos;
    return Status::ok();
  }

  Status error_here(const std::string& message) const {
    return corrupt(what_ + ": at offset " + std::to_string(pos_) + ": " + message);
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  std::string what_;
  uint64_t pos_ = 0;
};

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "prov assumes a little-endian host");

// a*b, failing instead of overflowing (for sizes computed from untrusted shapes).
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

}  // namespace prov
