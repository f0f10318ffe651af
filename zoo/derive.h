// Weight derivatives of Hugging Face checkpoints: the ground truth "weight-derived" relations of
// the model zoo.
//
// Every function reads a Hugging Face checkpoint directory `in` (config.json and
// model.safetensors or a sharded model.safetensors.index.json) and writes a new directory `out`
// holding config.json, one model.safetensors (metadata {"format": "pt"}) and copies of the
// auxiliary files present in `in` (generation_config.json, tokenizer.json, tokenizer_config.json,
// special_tokens_map.json, added_tokens.json, tokenizer.model, vocab.json, merges.txt,
// vocab.txt). config.json is the input's document, unchanged except where prune() says. Tensor
// names are kept (prune() renumbers layers), and every tensor is written in its input dtype.
//
// Supported inputs: architectures llama, mistral, qwen2 and qwen3 (dense decoders; MoE and GPT-2
// are refused with kUnsupported), floating tensors in F32, F16 or BF16 (others are refused).
// Arithmetic is done in fp32 or, where said, fp64 (then rounded to fp32); the fp32 result is
// rounded to the tensor's dtype (round to nearest even). Tensors a derivative does not change are
// copied bit for bit. Unmapped tensors (no role in model/formats/model.h) are copied bit for
// bit (prune() drops or renumbers those under a dropped or kept layer).
//
// The derivatives, precisely:
//
//  quantize_roundtrip(scheme)  Every 2-D tensor (embedding, attention and MLP matrices, lm_head)
//    is quantized and dequantized; 1-D tensors (norm weights, biases) are kept. Schemes:
//      "int8"  per-row absmax symmetric: s = max_j |w_ij| / 127 (fp32), q = round(w / s)
//              (half away from zero) clamped to [-127, 127], w' = q * s; an all-zero row stays 0.
//      "q8_0"  ggml Q8_0 along each row, as ggml's reference quantizer (model/formats/quants.h
//              quantize()) and dequantizer: blocks of 32 values, d = absmax / 127 (fp32),
//              q = round(w * (1 / d)) clamped to [-127, 127], w' = q * fp16(d).
//      "q4_0"  ggml Q4_0 likewise: blocks of 32, d = (value of largest magnitude) / -8,
//              q = clamp(trunc(w * (1 / d) + 8.5), 0, 15), w' = (q - 8) * fp16(d).
//    For q8_0/q4_0 a 2-D tensor whose row length is not a multiple of 32 is kept unchanged and
//    listed under "skipped" in the recipe.
//
//  permute(seed, residual, mlp_units, kv_heads)  A function-preserving reparametrisation: the
//    permuted model computes the same logits as the input (up to fp32 summation order).
//    Convention: a permutation p of n indices maps new index i to old index p[i], i.e.
//    out[i] = in[p[i]]. Permutations come from std::mt19937_64(seed), each by Fisher–Yates
//    (for i = n-1 down to 1: swap p[i] with p[j], j uniform in [0, i] drawn as r % (i+1) from the
//    first 64-bit output r >= 2^64 mod (i+1), starting from the identity), drawn in this order:
//    the residual permutation R (hidden_size) if `residual`; then for layer 0, 1, ...: that
//    layer's MLP permutation M_l (intermediate_size) if `mlp_units`, then its KV-head
//    permutation K_l (num_kv_heads) if `kv_heads`. Applied as:
//      R: columns of embed_tokens, lm_head, q/k/v_proj and gate/up_proj; rows (and bias) of
//         o_proj and down_proj; input_layernorm, post_attention_layernorm and the final norm
//         (RMSNorm is equivariant under a common permutation of its input and weight).
//      M_l: rows (and bias) of gate_proj and up_proj, columns of down_proj of layer l.
//      K_l: KV head h' of layer l becomes old KV head K_l[h']: rows (and bias) of k/v_proj in
//         blocks of head_dim; the query heads that share a KV head move with it (rows and bias of
//         q_proj in blocks of head_dim * num_heads / num_kv_heads, the matching columns of
//         o_proj). Dimensions inside a head are never reordered (RoPE pairs dimension i with
//         i + head_dim / 2), and q_norm/k_norm (Qwen3, shared by all heads) are unchanged.
//    Tied embeddings stay tied (the one embedding matrix serves as lm_head).
//
//  add_noise(relative_std, seed)  Every floating tensor t (all of them: matrices, norms, biases)
//    becomes t + sigma_t * z, where sigma_t = relative_std * std(t) (population standard
//    deviation of t's values, in fp64) and z are independent N(0, 1) values; the sum is taken in
//    fp64. A constant tensor (std 0, e.g. all-ones norms) is unchanged. z comes from one
//    continuous stream: std::mt19937_64(seed), Box–Muller on successive pairs of outputs (a, b):
//    u1 = ((a >> 11) + 1) / 2^53, u2 = (b >> 11) / 2^53, r = sqrt(-2 ln u1), giving
//    z = r cos(2 pi u2) and then r sin(2 pi u2). Floating tensors consume numel(t) values each
//    (also when sigma_t = 0), in order of their names (byte-wise), elements in row-major order.
//
//  prune(keep_layers, keep_mlp_fraction)  Keeps the decoder layers listed in `keep_layers`
//    (strictly increasing indices into the input's layers), renumbered 0..n-1 in that order; all
//    tensors named "model.layers.<i>.*" of other layers are dropped. In each kept layer it keeps
//    k = max(1, round(keep_mlp_fraction * intermediate_size)) MLP units: unit j scores
//    ||gate_j|| * ||up_j|| * ||down_:,j|| (Euclidean norms, fp64, of row j of gate_proj and
//    up_proj and column j of down_proj), the k highest scores are kept (ties: lower index
//    first), in their original order; gate/up rows (and biases) and down columns are selected.
//    config.json gets num_hidden_layers = n and intermediate_size = k, and a "layer_types" list
//    of the input's length is subset the same way. Everything else is unchanged.
//
//  merge(a, b, weight_a)  Element-wise w * a + (1 - w) * b in fp64, rounded to the dtype of a.
//    a and b must hold the same tensor names with the same shapes; config.json and the auxiliary
//    files come from a; non-floating tensors (if any) are copied from a. merge(a, a, w) == a
//    exactly.
//
// Recipes: each function returns a JSON object for labels.json with "derivative" (the function
// name), "input" (or "inputs"), "output", "architecture", the parameters, and what was measured:
// "relative_change" = ||out - in||_F / ||in||_F over the tensors changed (values as written,
// after rounding to the dtype) and "max_tensor_relative_change", the largest per-tensor ratio
// (not for prune). quantize_roundtrip adds "skipped" (tensors left unchanged), permute
// "unmapped_copied" (tensors without a role, copied unpermuted).
//
// Errors: kNotFound (no such input), kInvalidArgument (bad parameter: unknown scheme, negative or
// non-finite std, keep_layers out of range or not increasing, fraction outside (0, 1], weight
// outside [0, 1], `out` the same as an input or an existing non-empty directory, mismatched
// tensors in merge — the message names the tensor), kUnsupported (architecture or dtype), the
// readers' kCorrupt, and kIo when writing fails. On failure `out` may hold a partial result.
//
// Thread safety: the functions share no state; concurrent calls with distinct `out` are safe.
// Memory: one tensor at a time in fp32 plus the whole output in its dtype.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::zoo {

// Quantize/dequantize round trip; scheme "int8", "q8_0" or "q4_0".
Result<nlohmann::json> quantize_roundtrip(const std::string& in, const std::string& out,
                                          const std::string& scheme);

// Function-preserving permutation of residual dimensions, MLP units and/or KV-head groups.
// At least one kind must be requested (kInvalidArgument otherwise).
Result<nlohmann::json> permute(const std::string& in, const std::string& out, uint64_t seed,
                               bool residual, bool mlp_units, bool kv_heads);

// Adds seeded Gaussian noise of relative_std times each tensor's standard deviation.
Result<nlohmann::json> add_noise(const std::string& in, const std::string& out, double relative_std,
                                 uint64_t seed);

// Drops layers and the least important MLP units; updates config.json.
Result<nlohmann::json> prune(const std::string& in, const std::string& out,
                             const std::vector<int>& keep_layers, double keep_mlp_fraction);

// Linear interpolation weight_a * a + (1 - weight_a) * b of two same-shaped checkpoints.
Result<nlohmann::json> merge(const std::string& a, const std::string& b, const std::string& out,
                             double weight_a);

// The permutation std::mt19937_64 `rng` yields for n indices by the Fisher–Yates procedure
// documented above (exposed so that tests and label tooling can reproduce permute()).
template <typename Rng>
std::vector<int64_t> fisher_yates(Rng* rng, int64_t n) {
  std::vector<int64_t> p(n > 0 ? static_cast<size_t>(n) : 0);
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i >= 1; --i) {
    const uint64_t range = static_cast<uint64_t>(i) + 1;
    const uint64_t threshold = (0 - range) % range;  // 2^64 mod range
    uint64_t r = (*rng)();
    while (r < threshold) r = (*rng)();
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(r % range)]);
  }
  return p;
}

}  // namespace prov::zoo
