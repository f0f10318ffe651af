// The LibTorch transformer runtime: runs a Model (model.h) the way the reference implementation
// (Hugging Face transformers, eager attention) runs it.
//
// Architectures: Llama 1/2/3 (RoPE scaling "default", "linear", "llama3"), Mistral (sliding
// window), Mixtral (top-k routed experts), Qwen2 (q/k/v bias, tied embeddings), Qwen3 (per-head
// q/k RMSNorm, explicit head_dim), GPT-2 (learned positions, LayerNorm, GELU, fused q/k/v) and
// llama2.c checkpoints (which arrive as Llama). Weights are read through the canonical
// description (Hugging Face layout and row order), whatever the file format was.
//
// Numerics (docs/runtime.md has the details): weights and activations live in the compute dtype
// (fp32, bf16 or fp16); RMSNorm, the RoPE angles, the attention softmax and the MoE router
// softmax are computed in fp32 and cast back, exactly where the reference does; logits are
// returned as fp32.
//
// Nothing here throws: LibTorch errors are converted to Status at the API boundary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "core/status.h"
#include "model/formats/config.h"
#include "model/formats/model.h"

namespace prov::model {

struct RuntimeOptions {
  torch::Device device = torch::kCPU;
  // Compute dtype: torch::kFloat32, torch::kBFloat16 or torch::kFloat16.
  torch::ScalarType dtype = torch::kFloat32;
  // Use at::scaled_dot_product_attention when the linked LibTorch has it (2.0 and later); with
  // false, or on LibTorch 1.x, attention is computed explicitly as softmax(QK^T/sqrt(d) + mask) V
  // with the softmax in fp32.
  bool use_sdpa = true;
  // Make the weights trainable leaf tensors (requires_grad) for forward_train(); used by the
  // model zoo to train small models with LibTorch autograd.
  bool trainable = false;
};

// True when the linked LibTorch provides at::scaled_dot_product_attention.
bool runtime_has_sdpa();

// Checks that the runtime can run a model of this configuration (architecture, activation,
// RoPE type, sliding-window layout). kUnsupported says what is not supported and, for an unknown
// architecture, lists the supported ones. Does not look at tensors.
Status check_runtime_support(const ModelConfig& config);

// Keys and values of the tokens seen so far, per layer, for incremental decoding.
//
// Filled by Transformer::forward; a cache belongs to one Transformer and one batch (its batch size
// is fixed by the first forward call that fills it; a forward call with another model's cache is
// refused). Not thread-safe: use one cache per thread.
class KVCache {
 public:
  KVCache() = default;
  // Move-only: a copy would share (and overwrite) the same key/value buffers.
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;
  KVCache(KVCache&&) = default;
  KVCache& operator=(KVCache&&) = default;
  // Columns cached (left padding included); 0 when empty.
  int64_t length() const { return length_; }
  // Batch size of the cached sequences (0 when empty).
  int64_t batch_size() const { return batch_; }
  bool empty() const { return length_ == 0; }
  // Forgets everything; the cache can then serve a new batch.
  void clear();

 private:
  friend class Transformer;
  std::vector<torch::Tensor> k_, v_;  // per layer: [B, kv_heads, capacity, head_dim]
  torch::Tensor mask_;                // [B, length] int64: the attention mask of the cached columns
  int64_t length_ = 0;
  int64_t capacity_ = 0;
  int64_t batch_ = 0;
};

// Chooses LibTorch's intra-op thread count once per process, unless OMP_NUM_THREADS is set:
// 1 with a system BLAS such as OpenBLAS (which threads every GEMM over all cores itself), the
// number of logical CPUs with MKL. Returns the count in effect. Transformer::load calls it.
int configure_cpu_threads();

class Transformer {
 public:
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  // Materialises every weight of `model` in options.dtype on options.device (a fresh copy: the
  // Transformer does not refer to the Model afterwards). Fails with
  //   kNotFound     a tensor the architecture needs is missing (names its role, its usual
  //                 Hugging Face name and the expected shape);
  //   kCorrupt      a tensor has the wrong shape (names it and the expected shape);
  //   kUnsupported  see check_runtime_support(); a dtype other than fp32/bf16/fp16; CUDA asked
  //                 for but unavailable; a dtype the device cannot multiply (LibTorch 1.13 has
  //                 no fp16 matrix multiply on CPU);
  // and with to_torch()'s errors.
  static Result<std::unique_ptr<Transformer>> load(const Model& model,
                                                   const RuntimeOptions& options = {});

  // Runs the model on `input_ids` ([B, T] integer token ids) after whatever `cache` holds.
  //   attention_mask: [B, T] of 0/1 (0 = padding), or an undefined tensor for "all ones". Left
  //     padding is the supported layout for batches of unequal prompts: positions are
  //     cumsum(mask) - 1, as the reference computes them for generation.
  //   cache: null for a stateless call; otherwise the new keys/values are appended to it and the
  //     new tokens attend to everything cached (with the cached attention mask).
  //   last_position_only: compute logits for the last column only (returns [B, 1, V]).
  // Returns fp32 logits [B, T, V] on the runtime's device. Fails with kInvalidArgument for
  // malformed inputs (shape, dtype, token id out of the vocabulary, mask not 0/1, batch size
  // different from the cache's, a cache filled by another model) and when a sequence would need
  // more positions than max_position_embeddings (the message gives the limit); the cache is left
  // unchanged on failure. kInternal when LibTorch fails (e.g. out of memory).
  //
  // Thread safety: forward() does not modify the Transformer; concurrent calls are safe when
  // each uses its own cache (or none).
  Result<torch::Tensor> forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                KVCache* cache, bool last_position_only = false) const;

  // forward() up to the output head: the final-normed hidden states [B, T, hidden_size] in the
  // compute dtype. With logits_from_hidden() a caller computes logits only at the positions it
  // needs, in the compute dtype (no fp32 copy of the full [B, T, V] logits). Same errors and
  // thread safety as forward().
  Result<torch::Tensor> forward_hidden(const torch::Tensor& input_ids,
                                       const torch::Tensor& attention_mask, KVCache* cache) const;
  // Logits [..., V] in the compute dtype for hidden states [..., hidden_size] (moved to the
  // runtime's device and dtype). kInvalidArgument for another last dimension.
  Result<torch::Tensor> logits_from_hidden(const torch::Tensor& hidden) const;

  // Training (RuntimeOptions::trainable): fp32/bf16 logits [B, T, V] of a plain causal pass
  // with autograd recording (no mask, no cache). Same input errors as forward().
  Result<torch::Tensor> forward_train(const torch::Tensor& input_ids) const;
  // The weight tensors (each once; the tied head is the embedding).
  std::vector<torch::Tensor> parameters() const;
  // The weights under their Hugging Face names (fused q/k/v and gate/up split back), detached,
  // contiguous, on the CPU, in `dtype`. kUnsupported for architectures other than Llama,
  // Mistral, Qwen2 and Qwen3.
  Result<std::vector<std::pair<std::string, torch::Tensor>>> export_hf_weights(
      torch::ScalarType dtype = torch::kFloat32) const;

  const ModelConfig& config() const;
  const RuntimeOptions& options() const;
  // True when attention goes through at::scaled_dot_product_attention.
  bool uses_sdpa() const;
  // Parameters held (tied weights counted once).
  int64_t num_parameters() const;

 private:
  struct Impl;
  explicit Transformer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "float32", "bfloat16", "float16" -> the scalar type; nullopt otherwise (also accepts "fp32",
// "f32", "bf16", "fp16", "f16", "half").
std::optional<torch::ScalarType> compute_dtype_from_name(const std::string& name);

}  // namespace prov::model
