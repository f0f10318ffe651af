// Writes small random Hugging Face checkpoints (config.json + safetensors), deterministically.
//
// Used by `prov example`, by tests that need a checkpoint the project writes itself, and by the
// benchmarks that need large checkpoints of real shapes. Values are N(0, std) from a seeded
// generator whose output does not depend on the standard library's distributions.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/formats/config.h"
#include "model/formats/dtype.h"

namespace prov::model {

struct SyntheticSpec {
  Arch arch = Arch::kLlama;  // llama, mistral, qwen2 or qwen3
  int64_t vocab_size = 256;
  int64_t hidden_size = 64;
  int64_t intermediate_size = 160;
  int64_t num_layers = 2;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  int64_t max_position_embeddings = 256;
  bool tie_word_embeddings = false;
  DType dtype = DType::kF32;  // F32, F16 or BF16
  uint64_t seed = 0;
  double std = 0.08;
  uint64_t max_shard_bytes = 0;  // 0: one model.safetensors; else sharded with an index
};

// Writes `dir` (created if needed): config.json and the weights. kInvalidArgument for an
// unsupported spec, kIo when writing fails.
Status write_synthetic_model(const std::string& dir, const SyntheticSpec& spec);

// The config.json document a spec implies.
nlohmann::json synthetic_config_json(const SyntheticSpec& spec);

// Deterministic N(0, 1) values: splitmix64 + Box–Muller.
class GaussianStream {
 public:
  explicit GaussianStream(uint64_t seed) : state_(seed) {}
  double next();

 private:
  uint64_t next_u64();
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace prov::model
