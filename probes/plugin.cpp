#include "probes/plugin.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace prov::probes {

namespace {

std::string plugin_path() {
  if (const char* env = std::getenv("PROV_TORCH_PLUGIN")) return env;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "libprov_torch_cli.so";
  exe[n] = '\0';
  return (std::filesystem::path(exe).parent_path() / "libprov_torch_cli.so").string();
}

Result<const TorchPluginV1*> load() {
  const std::string path = plugin_path();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return not_found("cannot load the LibTorch plugin " + path + ": " +
                     (err ? err : "unknown error") + " (it is built next to the prov executable)");
  }
  using Factory = const TorchPluginV1* (*)();
  auto factory = reinterpret_cast<Factory>(dlsym(handle, "prov_torch_plugin_v1"));
  if (factory == nullptr) {
    return unsupported(path +
                       " has no prov_torch_plugin_v1: it is from another version of prov; "
                       "rebuild prov");
  }
  const TorchPluginV1* table = factory();
  if (table == nullptr || table->abi != kTorchPluginAbi) {
    return unsupported(path + " speaks plugin ABI " +
                       std::to_string(table == nullptr ? -1 : table->abi) + ", this prov " +
                       std::to_string(kTorchPluginAbi) + ": rebuild prov");
  }
  return table;
}

}  // namespace

Result<const TorchPluginV1*> torch_plugin() {
  static std::once_flag once;
  static Result<const TorchPluginV1*> loaded = Status(StatusCode::kInternal, "not loaded");
  std::call_once(once, [] { loaded = load(); });
  return loaded;
}

}  // namespace prov::probes
