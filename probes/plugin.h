// The LibTorch plugin: everything that runs a model lives in libprov_torch_cli.so, next to the
// prov executable (or at $PROV_TORCH_PLUGIN), loaded with dlopen only when a model must run, so
// commands that only read files start in milliseconds instead of paying LibTorch's start-up.
//
// The plugin exports one versioned factory, prov_torch_plugin_v1(), returning a table of entry
// points; the loader checks its `abi` against kTorchPluginAbi. Structs cross the boundary by
// reference: the plugin and the executable come from one build (same compiler, same headers), so
// their layouts agree; a plugin from another build is refused by its ABI number.
//
// Thread safety: torch_plugin() may be called from any thread (loaded once). A runner is used by
// one thread at a time.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/formats/model.h"
#include "probes/signature.h"

namespace prov::probes {

// Bumped whenever a struct below or the table changes.
inline constexpr int kTorchPluginAbi = 2;  // 2: SignatureHeader schema 2, ServeOptions dialects

// A checkpoint to load into the runtime once, for any number of collections.
struct CheckpointRun {
  const model::Model* model = nullptr;  // opened by the caller (Subject::model); must outlive it
  std::string path;                     // the checkpoint (its tokenizer is found beside it)
  std::string model_digest;             // the caller's digest: the plugin does not hash again
  std::string tokenizer;                // a tokenizer path, "" = the model's own
  std::string device = "cpu";
  std::string dtype = "float32";
  int batch = 16;
  std::string tool_version;
};

// One collection: the suite by its spec (built-in "natural-v1:1000" or a JSONL path), resolved
// against the model's vocabulary inside the plugin. The plugin calls begin() once with the
// header (receiving the probes already collected, to skip), then record() per probe in order.
struct CheckpointCollect {
  std::string suite_spec;
  std::function<Status(const SignatureHeader&, std::vector<bool>* skip)> begin;
  std::function<Status(const ProbeRecord&)> record;
  std::function<void(size_t, size_t)> progress;
};

struct TorchPluginV1 {
  int abi = kTorchPluginAbi;
  // Loads the checkpoint into the runtime; null with *error set on failure.
  void* (*open_runner)(const CheckpointRun& run, Status* error) = nullptr;
  Status (*collect)(void* runner, const CheckpointCollect& what) = nullptr;
  void (*close_runner)(void* runner) = nullptr;
  // The CLI's LibTorch commands ("generate", "serve", "suite build", "zoo build"): `options`
  // points to the command's options struct; returns the command's exit code.
  int (*command)(const char* name, const void* options) = nullptr;
};

// The plugin, loaded once per process. kNotFound when the library cannot be loaded (the message
// names the path and says it is built next to the prov executable); kUnsupported when its ABI
// number is not kTorchPluginAbi (rebuild prov). The handle is never closed: LibTorch does not
// support being unloaded.
Result<const TorchPluginV1*> torch_plugin();

}  // namespace prov::probes

extern "C" const prov::probes::TorchPluginV1* prov_torch_plugin_v1();
