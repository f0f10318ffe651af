// Dequantisation of ggml block-quantized types (GGUF), and the matching quantizers.
//
// Block layouts follow ggml (QK = 32 for the legacy types, QK_K = 256 super-blocks for the
// k-quants); the formats are documented in docs/formats/gguf.md.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "model/formats/dtype.h"

namespace prov::model {

// Dequantizes `nblocks` consecutive blocks of type `t` (a quantized GGUF type) from `src`
// (nblocks * block_bytes bytes) into `dst` (nblocks * block_elems floats).
// kUnsupported for a type that is not block-quantized. Thread-safe.
Status dequantize_blocks(DType t, const uint8_t* src, uint64_t nblocks, float* dst);

// Quantizes n floats (n a multiple of the block size) to type `t` the way ggml's reference
// quantizers do (round-to-nearest, per-block scales). Used to write test and zoo files.
Result<std::vector<uint8_t>> quantize(DType t, const float* src, uint64_t n);

}  // namespace prov::model
