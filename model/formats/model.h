// The canonical description of a model: hyper-parameters plus tensors by role.
//
// Whatever the file format (Hugging Face safetensors directory, GGUF, llama2.c), open_model()
// yields a Model whose config is a ModelConfig and whose tensors are addressed by role
// (embedding, layer i attention q/k/v/o, MLP gate/up/down, experts, norms, lm head), in the
// Hugging Face layout. Later modules never look at format-specific names.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "model/formats/checkpoint.h"
#include "model/formats/config.h"

namespace prov::model {

enum class Role {
  kTokenEmbedding,     // [vocab, hidden]
  kPositionEmbedding,  // [max_positions, hidden] (GPT-2)
  kAttnNorm,           // [hidden] (input_layernorm / ln_1)
  kAttnQ,              // [heads*head_dim, hidden]
  kAttnK,              // [kv_heads*head_dim, hidden]
  kAttnV,              // [kv_heads*head_dim, hidden]
  kAttnQKV,            // [3*hidden, hidden] fused (GPT-2 c_attn)
  kAttnO,              // [hidden, heads*head_dim]
  kQNorm,              // [head_dim] (Qwen3)
  kKNorm,              // [head_dim] (Qwen3)
  kMlpNorm,            // [hidden] (post_attention_layernorm / ln_2)
  kMlpGate,            // [intermediate, hidden]
  kMlpUp,              // [intermediate, hidden]
  kMlpDown,            // [hidden, intermediate]
  kRouter,             // [experts, hidden] (MoE gate)
  kFinalNorm,          // [hidden]
  kLmHead,             // [vocab, hidden]
};
const char* role_name(Role r);  // "attn_q", "mlp_down", ...

// A tensor's place in the model. layer = -1 for model-level tensors; expert = -1 unless the
// tensor belongs to one MoE expert; expert = kAllExperts for GGUF's stacked expert tensors
// ([experts, rows, cols]).
struct TensorRole {
  Role role = Role::kTokenEmbedding;
  int layer = -1;
  int expert = -1;
  bool bias = false;
  static constexpr int kAllExperts = -2;

  // "embed", "layers.3.attn_q.weight", "layers.0.experts.2.mlp_up.weight",
  // "layers.1.experts.*.mlp_up.weight"
  std::string to_string() const;
  bool operator==(const TensorRole& o) const {
    return role == o.role && layer == o.layer && expert == o.expert && bias == o.bias;
  }
};

struct OpenOptions {
  // Check that every mapped tensor has the shape the config implies (names the tensor and the
  // expected shape otherwise).
  bool check_shapes = true;
};

struct Model {
  Checkpoint checkpoint;
  ModelConfig config;
  // (role, index into checkpoint.tensors) for every tensor that has a role.
  std::vector<std::pair<TensorRole, size_t>> roles;
  // Tensors with no role (e.g. GPT-2 attention masks, rotary caches): kept, not interpreted.
  std::vector<std::string> unmapped;
  // Where the tokenizer lives: "tokenizer.json", "vocab.bpe+encoder.json", "gguf:<model>",
  // "llama2c:<file>", or "none".
  std::string tokenizer_kind = "none";
  std::string tokenizer_path;

  const TensorRef* find(const TensorRole& role) const;
  const TensorRef* find(Role role, int layer = -1, bool bias = false) const {
    return find(TensorRole{role, layer, -1, bias});
  }
  // The output projection: lm_head, or the token embedding when tied.
  const TensorRef* output_projection() const;
  // Parameters stored (tied weights counted once; quantized tensors by logical element count).
  uint64_t num_parameters() const;
  // Distinct stored dtypes, by name, sorted.
  std::vector<std::string> dtypes() const;
};

// Opens a model: a Hugging Face directory (config.json + model.safetensors or a sharded index),
// a single .safetensors file with config.json beside it, a .gguf file, or a llama2.c .bin file.
// Fails with kNotFound, kCorrupt (naming file/tensor/offset), kUnsupported (unknown
// architecture: the message lists the supported ones) or kInvalidArgument (unrecognised path).
Result<Model> open_model(const std::string& path, const OpenOptions& options = {});

// Builds the config of a GGUF or llama2.c checkpoint from its metadata (HF checkpoints carry
// config.json instead).
Result<ModelConfig> config_from_gguf(const Checkpoint& ckpt);
Result<ModelConfig> config_from_llama2c(const Checkpoint& ckpt);

// The canonical shape the config implies for a role's tensor: [rows] for a bias, one expert's
// shape for an expert tensor, [experts, rows, cols] for TensorRole::kAllExperts.
std::vector<int64_t> role_shape(const ModelConfig& config, const TensorRole& role);

// Maps a tensor name of the given format to its role; nullopt when it has none.
std::optional<TensorRole> role_from_hf_name(const std::string& name);
std::optional<TensorRole> role_from_gguf_name(const std::string& name);

}  // namespace prov::model
