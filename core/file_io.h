// Durable file replacement.
#pragma once

#include <string>

#include "core/status.h"

namespace prov {

// Writes `bytes` to `path` atomically: into a temporary file beside it (mode `mode`), fsynced,
// then renamed over `path`, then the directory fsynced (best effort: some file systems refuse).
// On failure `path` is untouched, the temporary file removed, and kIo names the step that failed.
Status write_file_atomic(const std::string& path, const std::string& bytes, unsigned mode = 0644);

// Reads a regular file of at most 64 MiB whole (`what` names it in messages: "envelope").
// kNotFound, kInvalidArgument (not a regular file, too large) or kIo.
Result<std::string> read_small_file(const std::string& path, const std::string& what);

}  // namespace prov
