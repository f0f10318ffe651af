// The CLI commands that run models: they live in the LibTorch plugin (probes/plugin.h), which
// prov loads only when such a command runs. Their options cross the plugin boundary as the structs
// below (one build, so the layouts agree).
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
  std::string dialect = "openai";  // probes/dialect.h
  int max_logprobs = -1;           // alternatives per position at most (-1: the dialect's)
  int rate = 0;                    // requests per second at most (0: no limit), then 429
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

// Runs the plugin's `command` ("generate", "serve", "suite build", "zoo build") with the options
// struct above; returns its exit code, or reports (as `command`) why the plugin cannot be used.
int run_torch_command(const std::string& command, const void* options);

}  // namespace prov::cli
