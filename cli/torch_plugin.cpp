#include "cli/torch_plugin.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include "cli/common.h"

namespace prov::cli {

namespace {

std::string plugin_path() {
  if (const char* env = std::getenv("PROV_TORCH_PLUGIN")) return env;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "libprov_torch_cli.so";
  exe[n] = '\0';
  return (std::filesystem::path(exe).parent_path() / "libprov_torch_cli.so").string();
}

}  // namespace

int run_torch_command(const std::string& command, const char* symbol, const void* options) {
  const std::string path = plugin_path();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return report_error(command, not_found("cannot load the LibTorch plugin " + path + ": " +
                                           (err ? err : "unknown error") +
                                           " (it is built next to the prov executable)"));
  }
  using Fn = int (*)(const void*);
  auto fn = reinterpret_cast<Fn>(dlsym(handle, symbol));
  if (fn == nullptr) {
    return report_error(command, internal_error(path + " has no " + symbol + "; rebuild prov"));
  }
  // The handle stays open: LibTorch does not support being unloaded.
  return fn(options);
}

}  // namespace prov::cli
