// The LibTorch plugin of the prov CLI.
//
// Commands that run models live in libprov_torch_cli.so, next to the prov executable (or in
// $PROV_TORCH_PLUGIN). prov loads it with dlopen only when such a command runs, so the other
// commands start in milliseconds instead of paying LibTorch's start-up. Options cross the
// boundary as the structs below (same compiler and build, so the layout agrees).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "probes/signature.h"

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

struct ProbeOptions {
  std::string path;  // local model
  std::string tokenizer;
  std::string suite;   // built-in name or JSONL path
  std::string output;  // signature file
  std::string device = "cpu";
  std::string dtype = "float32";
  int batch = 16;
  bool resume = true;
  bool quiet = false;
  // Set by the executable, which owns the signature file (the plugin never links the protobuf
  // code, so the two cannot register the same descriptors twice): the plugin reports the header
  // once the model is loaded (and gets back the probes already collected), then each record.
  std::function<Status(const probes::SignatureHeader&, std::vector<bool>* skip)> begin;
  std::function<Status(const probes::ProbeRecord&)> record;
  std::function<void(size_t, size_t)> progress;
};

struct ServeOptions {
  std::string path;
  std::string tokenizer;
  std::string name;  // model name reported by the API ("" = the directory name)
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string device = "cpu";
  std::string dtype = "float32";
  std::string api_key_env;
  int threads = 4;
};

struct SuiteBuildOptions {
  std::vector<std::string> models;
  std::string output;
  int pool = 4000;
  int keep = 500;
  std::string device = "cpu";
  std::string dtype = "float32";
  int batch = 16;
};

struct ZooBuildOptions {
  std::string out;
  std::string preset = "tiny";
  std::string corpus_file;
  std::string corpus_package = "wordnet-base";
  std::string device = "cpu";
  bool reuse = true;
  int seed_twins = 0;
  int student_seeds = 0;
  std::string family = "full";
};

// Loads the plugin, finds `symbol` (an `extern "C" int fn(const void*)`), runs it with `options`.
// Returns its exit code, or reports (as `command`) why the plugin could not be used.
int run_torch_command(const std::string& command, const char* symbol, const void* options);

}  // namespace prov::cli
