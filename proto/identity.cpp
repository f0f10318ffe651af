#include "proto/identity.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace prov::pb_io {

Status write_identity(const std::string& path, const prov::pb::ModelIdentity& id) {
  std::string bytes;
  if (!id.SerializeToString(&bytes)) return internal_error("cannot serialise ModelIdentity");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f.flush()) return io_error(tmp + ": cannot write");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return io_error(path + ": cannot rename into place");
  return Status::ok();
}

Result<prov::pb::ModelIdentity> read_identity(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  prov::pb::ModelIdentity id;
  if (!id.ParseFromString(ss.str())) return corrupt(path + ": not a prov ModelIdentity file");
  if (id.schema_version() > kModelIdentityVersion) {
    return unsupported(path + ": ModelIdentity schema version " +
                       std::to_string(id.schema_version()) +
                       " is newer than this prov understands (" +
                       std::to_string(kModelIdentityVersion) + "); upgrade prov");
  }
  return id;
}

}  // namespace prov::pb_io
