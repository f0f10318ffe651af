#include "cli/common.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cli/torch_commands.h"
#include "core/version.h"
#include "probes/plugin.h"

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
  return kProvVersion;
}

int run_torch_command(const std::string& command, const void* options) {
  auto plugin = probes::torch_plugin();
  if (!plugin.is_ok()) return report_error(command, plugin.status());
  return (*plugin)->command(command.c_str(), options);
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
