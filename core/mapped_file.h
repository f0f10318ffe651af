// Read-only memory-mapped files.
//
// A MappedFile maps a whole regular file read-only (MAP_PRIVATE). It is immutable after open and
// safe to share between threads; tensors that view its bytes keep it alive through a
// shared_ptr. An empty file maps to (nullptr, 0). If the file is truncated by another process
// while mapped, reads past the new end raise SIGBUS: prov assumes checkpoints are not modified
// while it reads them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace prov {

class MappedFile {
 public:
  // Fails with kNotFound (no such file), kInvalidArgument (not a regular file) or kIo.
  static Result<std::shared_ptr<const MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints the kernel that [offset, offset+len) will be read sequentially soon (best effort).
  void advise_sequential(uint64_t offset, uint64_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace prov
