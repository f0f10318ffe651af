// Reading and writing ModelIdentity files (binary protobuf) with version checks.
#pragma once

#include <string>

#include "core/status.h"
#include "prov.pb.h"

namespace prov::pb_io {

inline constexpr uint32_t kModelIdentityVersion = 1;

// Writes atomically (temp file + rename). kIo on failure.
Status write_identity(const std::string& path, const prov::pb::ModelIdentity& id);
// kCorrupt for undecodable bytes, kUnsupported for a schema_version newer than this build knows.
Result<prov::pb::ModelIdentity> read_identity(const std::string& path);

}  // namespace prov::pb_io
