// The LibTorch plugin of the prov CLI.
//
// Commands that run models live in libprov_torch_cli.so, next to the prov executable (or in
// $PROV_TORCH_PLUGIN). prov loads it with dlopen only when such a command runs, so the other
// commands start in milliseconds instead of paying LibTorch's start-up. Options cross the
// boundary as the structs below (same compiler and build, so the layout agrees).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace prov::cli {

struct GenerateOptions {
  std::string path;
  std::string tokenizer;
  std::string prompt;
  bool have_prompt = false;
  std::vector<int64_t> prompt_ids;
  int max_tokens = 64;
  double temperature = 0.0;
  int top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  std::string device = "cpu";
  std::string dtype = "float32";
  bool ignore_eos = false;
  bool json = false;
};

// Loads the plugin, finds `symbol` (an `extern "C" int fn(const void*)`), runs it with `options`.
// Returns its exit code, or reports (as `command`) why the plugin could not be used.
int run_torch_command(const std::string& command, const char* symbol, const void* options);

}  // namespace prov::cli
