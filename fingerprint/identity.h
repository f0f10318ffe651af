// Evidence layer 1 — identity: are two checkpoints the same weights, possibly re-encoded?
//
// compare_identity(candidate, reference) decides the relations that need no statistics:
// `identical`, `converted` and `quantized`. Anything else is reported as `none` (same roles and
// shapes, values differ beyond what a re-encoding explains: later evidence layers decide) or
// `incomparable` (the tensor roles or shapes differ). The comparison is exact: there is no null
// hypothesis and no p-value (IdentityResult::null_hypothesis says so).
//
// The rules, applied in this order:
//
//  identical   Every file the OMS manifest would list (model/formats/digest.h compute_manifest) is
//              byte-identical one for one (same names, sizes and bytes: the manifests are then
//              equal); or the weight files (Checkpoint::files, in sorted order) are byte-identical
//              one for one, auxiliary files (config, tokenizer) possibly differing — the reason
//              then says so. Files are compared byte for byte (stopping at the first difference)
//              only when their names and sizes make equality possible: the weight files first,
//              the other files only when the weight files are identical.
//
//  incomparable  The two models do not hold the same set of tensor roles (model/formats/model.h
//              TensorRole, e.g. "layers.3.mlp_up.weight"), or a role has different shapes. An
//              untied lm_head is compared with the other side's tied embedding (its output
//              projection). The reason names the first differing role (canonical order, below)
//              and the counts. Pruned models and other architectures/sizes land here.
//
//  Otherwise every role is compared: both tensors are read as canonical fp32 values
//  (model/formats/tensor.h to_float32: dequantised, converted, with GGUF Q/K row orders and transposed
//  storage undone), one tensor pair at a time per worker, statistics accumulated in fp64:
//    relative_error = ||a - b||_2 / ||b||_2 (a: candidate, b: reference; 0 when both are zero,
//                     +inf when only b is zero), max_abs_error = max |a - b|,
//    cosine = a.b / (||a|| ||b||) (1 when both are zero, 0 when only one is).
//  A pair is bit-identical when every value has the same fp32 bits (+0 and -0 count as equal).
//
//  converted   Every pair is bit-identical (but the files differ): re-packing, sharding, another
//              container (safetensors <-> GGUF F32), lossless widening (bf16 -> f32).
//
//  quantized   Some pair is not bit-identical, and every such pair is explained by one scheme in
//              which one side (the "quantized side") is a rounding of the other, by the first rule
//              that holds:
//   (1) by dtype — the quantized side is stored as
//       * a ggml block type (scheme = its name: "Q8_0", "Q4_K", ...) or llama2.c "I8_GROUPED":
//         relative_error <= the scheme's bound (table below); for the legacy block types (Q4_0,
//         Q4_1, Q5_0, Q5_1, Q8_0) additionally every element lies within 1.05 * |d| of the other
//         side, d being its block's scale as stored (one quantization step; ggml's clamping and
//         importance-weighted scale refinement stay within it). Rows are compared in canonical
//         order (GGUF Q/K rows un-permuted whole, so blocks keep their scales).
//       * F16 or BF16 (scheme "f16" / "bf16"): every element equals the other side's value
//         rounded to that dtype, to nearest-even or toward zero. Applies to vectors (norms,
//         biases) too: that is the only way a vector may differ.
//       * F8_E4M3 / F8_E5M2 while the other side is not the same dtype: relative_error <= bound.
//   (2) by re-quantization — matrices only (2-D; rows = shape[0]): the quantized side equals,
//       rounded to its storage dtype (F32, F16 or BF16), the round trip of the other side under
//       one of the schemes of zoo/derive.h quantize_roundtrip, tried in this order:
//         "int8-row"  per row: s = absmax / 127 (fp32), q = round-half-away(w / s) in [-127, 127],
//                     w' = q * s;
//         "Q8_0", "Q4_0"  ggml's reference quantizer and dequantizer (model/formats/quants.h), blocks of
//                     32 along each row (row length a multiple of 32).
//       At most 0.1 % of the elements may differ (ties decided by another summation order), and
//       relative_error <= bound. This is the rule that recognises round trips stored in bf16.
//   (3) by value grid — matrices stored as F32 or F16 whose values lie on a scaled integer grid
//       (a round trip by another tool): per block (the whole row for "int8-row", 32 values for
//       "Q8_0" and "Q4_0"), with m = the block's largest magnitude and step = m / L (L = 127, 127,
//       8), every value x has k = nearest integer to x / step with |k| <= L and
//       |x / step - k| <= 1e-3 + 2 |k| u (u = 2^-24 for F32, 2^-11 for F16; a scheme whose
//       largest tolerance 1e-3 + 2 L u exceeds 0.25 is not tested, e.g. 127 levels in F16 is, in
//       BF16 it would not be). Every element lies within c * step of the other side (c = 0.55,
//       0.6, 0.6: half a step plus fp16 scale rounding; 1.05 for Q4_0 values at k = +-7, the end
//       of the grid that ggml's Q4_0 clamps) and
//       relative_error <= bound. Blocks of all zeros are on every grid.
//   Rules (2) and (3) are tried with the candidate as the quantized side first, then the
//   reference. IdentityResult::scheme lists the schemes found, most frequent first, joined by
//   "+" (e.g. "Q4_K+Q6_K"); quantized_side says "candidate" or "reference" (the side holding
//   most of the quantized tensors).
//
//   Relative-error bounds (tensor level, ||a-b||/||b||), set from the formats' rounding steps on
//   Gaussian-like weights with a margin of about 3x (measured values are in the tests' output):
//     bf16 2^-7   f16 2^-9   f8_e4m3 0.125   f8_e5m2 0.25   int8-row 0.05   I8_GROUPED 0.05
//     Q8_0 0.02   Q6_K 0.04   Q5_0 Q5_1 Q5_K 0.08   Q4_0 Q4_1 Q4_K 0.2   Q3_K 0.35   Q2_K 0.6
//   (identity_error_bound() returns them.) Noise of 1 % of a tensor's standard deviation is not
//   "quantized": it puts no value on a grid and does not reproduce a rounding exactly.
//   Limitations: for the k-quants only the relative-error bound is checked, so a light fine-tune
//   quantized to a k-quant can be reported as a quantization of its base; and a change much
//   smaller than a quantization step is hidden by it (measured: noise at 0.3 % of each tensor's
//   std, then a Q4_0 round trip, is still "quantized"; at 1 % it is "none", as for int8/Q8_0
//   round trips of noise at 0.3 %).
//
//  none        Same roles and shapes, and some pair is neither bit-identical nor explained: the
//              reason names the first such tensor (canonical order) and its relative error.
//
// Canonical order of TensorMatch: token and position embeddings, then layers 0, 1, ... (within a
// layer by Role enumeration order, expert, weight before bias), then the final norm and lm_head.
//
// Failures (Result error): a file cannot be read (kIo), or a tensor cannot be read as fp32 (the
// readers' kCorrupt, kUnsupported for integer dtypes); the message names the tensor.
//
// Cost: reads every tensor of both models once, or with stop_at_first_difference only up to the
// first group holding an unexplained tensor (plus comparing, byte for byte and up to the first
// difference, files whose names and sizes match); memory is about 3 fp32 copies of the largest
// tensor per worker thread. Thread-safe: the
// function shares no state; the Models are only read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/formats/model.h"

namespace prov::fingerprint {

struct IdentityOptions {
  // Compare file digests first (rule "identical"). When false, two byte-identical models are
  // reported as "converted".
  bool file_digests = true;
  // Worker threads for tensor comparison; 0: min(default_thread_count(), 8).
  unsigned threads = 0;
  // Compare tensor pairs in canonical order, four at a time, and stop after the first group
  // holding an unexplained pair: the relation is then `none` whatever the remaining pairs hold,
  // so IdentityResult::tensors lists only the pairs compared (and max_relative_error covers
  // only those). Saves reading both checkpoints whole when they are merely related.
  bool stop_at_first_difference = false;
};

struct TensorMatch {
  std::string role;              // TensorRole::to_string(), e.g. "layers.3.mlp_up.weight"
  std::vector<int64_t> shape;    // canonical shape (equal on both sides)
  std::string dtype_a, dtype_b;  // stored dtype names: candidate, reference
  bool bit_identical = false;    // same fp32 values
  double relative_error = 0;     // ||a - b|| / ||b|| (fp64 over the fp32 values)
  double max_abs_error = 0;
  double cosine = 1;
  // The scheme that explains a non-identical pair ("" when bit-identical or unexplained), the
  // side it found quantized ("candidate" / "reference") and that scheme's relative-error bound.
  std::string scheme;
  std::string quantized_side;
  double bound = 0;
  bool explained = false;  // bit-identical, or explained by `scheme`
};

struct IdentityResult {
  std::string relation;        // "identical" | "converted" | "quantized" | "none" | "incomparable"
  std::string reason;          // one sentence for the user
  std::string scheme;          // quantized: the schemes found, most frequent first, joined by "+"
  std::string quantized_side;  // quantized: "candidate" or "reference"
  std::vector<TensorMatch> tensors;  // per role, canonical order (empty for identical and
                                     // incomparable)
  double max_relative_error = 0;     // over `tensors`
  std::string null_hypothesis = "exact comparison (no test statistic)";
};

// The tensor-level relative-error bound of a scheme name as used in TensorMatch::scheme
// ("bf16", "Q8_0", "int8-row", ...); 0 for an unknown name.
double identity_error_bound(const std::string& scheme);

// Compares `candidate` with `reference` by the rules above. See the top of the file for failures.
Result<IdentityResult> compare_identity(const model::Model& candidate,
                                        const model::Model& reference,
                                        const IdentityOptions& options = {});

}  // namespace prov::fingerprint
