// Durable file replacement.
#pragma once

#include <string>

#include "core/status.h"

namespace prov {

// Writes `bytes` to `path` atomically: into a temporary file beside it (mode `mode`), fsynced,
// then renamed over `path`, then the directory fsynced (best effort: some file systems refuse).
// On failure `path` is untouched, the temporary file removed, and kIo names the step that failed.
Status write_file_atomic(const std::string& path, const std::string& bytes, unsigned mode = 0644);

}  // namespace prov
