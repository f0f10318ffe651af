#include "cli/common.h"

#include <cstdlib>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

namespace prov::cli {

int exit_code_for(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorrupt:
    case StatusCode::kUnsupported:
    case StatusCode::kNotFound:
      return kExitBadInput;
    case StatusCode::kIo:
      return kExitIo;
    case StatusCode::kInternal:
      return kExitInternal;
  }
  return kExitInternal;
}

int report_error(const std::string& command, const Status& s) {
  std::cerr << "prov " << command << ": " << s.to_string() << "\n";
  return exit_code_for(s);
}

const char* tool_version() {
  return "0.1.0";
}

namespace {
// Envelopes, checkpoint notes and disclosures larger than this are refused before they are read.
constexpr uint64_t kMaxInputBytes = uint64_t{64} << 20;
}  // namespace

Result<std::string> read_small_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return not_found(path + ": no such file");
    return io_error(path + ": cannot read " + what + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return invalid_argument(path + ": not a regular file (" + what + ")");
  if (static_cast<uint64_t>(st.st_size) > kMaxInputBytes) {
    return invalid_argument(path + ": " + std::to_string(st.st_size) +
                            " bytes, over the 64 MiB limit for a " + what);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot open " + what + ": " + std::strerror(errno));
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  if (!bytes.empty() && !in.read(&bytes[0], static_cast<std::streamsize>(bytes.size()))) {
    return io_error(path + ": short read of " + what);
  }
  return bytes;
}

Status write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return io_error(path + ": cannot create: " + std::strerror(errno));
  out << text;
  out.flush();
  if (!out) return io_error(path + ": write failed");
  return Status::ok();
}

Result<std::string> api_key_from_env(const std::string& var) {
  const char* key = std::getenv(var.c_str());
  if (key == nullptr || *key == '\0') {
    return invalid_argument("environment variable " + var + " (--api-key-env) is not set");
  }
  return std::string(key);
}

std::string shell_word(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-+=/.,:@%") == std::string::npos) {
    return s;
  }
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace prov::cli
