// ModelConfig: the hyper-parameters of a decoder-only transformer, whatever file they came from.
//
// Read from a Hugging Face `config.json` (+ `generation_config.json`), from GGUF metadata
// (`<arch>.*` keys) or from a llama2.c header. Both RoPE spellings are understood: top-level
// `rope_theta`/`rope_scaling` (transformers 4) and `rope_parameters` (transformers 5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::model {

// The architectures prov understands, by family.
enum class Arch { kLlama, kMistral, kQwen2, kQwen3, kMixtral, kGpt2 };
const char* arch_name(Arch a);  // "llama", "mistral", "qwen2", "qwen3", "mixtral", "gpt2"
// "llama, mistral, qwen2, qwen3, mixtral, gpt2" — for error messages.
std::string supported_arch_list();
std::optional<Arch> arch_from_name(const std::string& model_type);

struct RopeScaling {
  std::string type = "default";  // default, linear, dynamic, llama3, yarn, longrope, ...
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 0;
  nlohmann::json raw = nlohmann::json::object();  // every field as written
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string model_type;                  // as written ("llama", "qwen2", ...)
  std::vector<std::string> architectures;  // HF class names, if given
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // explicit (Qwen3) or hidden_size / num_heads
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double norm_eps = 1e-5;  // rms_norm_eps or layer_norm_epsilon
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v bias (Qwen2 always has it)
  bool mlp_bias = false;
  int64_t num_experts = 0;        // MoE: num_local_experts
  int64_t experts_per_token = 0;  // MoE: num_experts_per_tok
  std::optional<int64_t> sliding_window;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype;  // "float32", "bfloat16", ... as written (dtype / torch_dtype)

  // Checks internal consistency (positive sizes, heads divide, ...); kCorrupt names the field.
  Status validate() const;
};

// Parses a Hugging Face config.json document. `generation` may be null or a
// generation_config.json document (its bos/eos/pad override the config's). kUnsupported for an
// unknown model_type (the message lists the supported ones), kCorrupt for missing or mistyped
// fields. `what` names the source in messages.
Result<ModelConfig> config_from_hf_json(const nlohmann::json& config,
                                        const nlohmann::json* generation, const std::string& what);
// Reads `dir/config.json` and, if present, `dir/generation_config.json`.
Result<ModelConfig> read_hf_config(const std::string& dir);

// Parses a JSON document through prov::parse_json (core/json.h: linear time, bounded depth, values,
// string sizes, duplicate keys refused); converts parser exceptions to
// kCorrupt naming `what`.
Result<nlohmann::json> parse_json_bounded(const std::string& text, const std::string& what);
Result<nlohmann::json> read_json_file(const std::string& path, uint64_t max_bytes = 64u << 20);

}  // namespace prov::model
