// TensorRef: a tensor as a checkpoint stores it, without copying its bytes.
//
// A TensorRef points into a memory-mapped file (or an owned buffer) kept alive by `keep_alive`.
// Its `shape` is the logical row-major shape in the Hugging Face convention (outermost first),
// whatever order the file stores dimensions in. Two optional view transforms turn the stored
// bytes into that canonical layout when the tensor is materialised:
//   - row_order: canonical row r is stored row (*row_order)[r] (GGUF and llama2.c store the Q/K
//     projections of Llama-family models with rows permuted for interleaved RoPE);
//   - transposed: the stored 2-D matrix is the transpose of the canonical one (GPT-2 Conv1D).
// TensorRefs are immutable values, safe to share across threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/formats/dtype.h"

namespace prov::model {

struct TensorRef {
  std::string name;  // the name in the file
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // canonical logical shape (see above)
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;  // stored bytes at `data` (values only for kI8Grouped)
  // kI8Grouped only: one fp32 scale per group_size values, stored at `scales`.
  const uint8_t* scales = nullptr;
  uint32_t group_size = 0;
  std::shared_ptr<const std::vector<int64_t>> row_order;  // null: identity
  bool transposed = false;
  std::shared_ptr<const void> keep_alive;  // the mapping or buffer `data` points into
  std::string file;                        // source file, for messages
  uint64_t file_offset = 0;                // offset of `data` in `file`

  uint64_t numel() const;
  // True when the stored bytes already are the canonical layout (no view transform).
  bool is_plain_layout() const { return !row_order && !transposed; }
};

// Reads any tensor as canonical-layout fp32 values (dequantising, converting, applying the view
// transforms). Fails with kUnsupported for integer/bool dtypes (use the raw bytes) and with
// kCorrupt for inconsistent sizes. Allocates numel floats.
Result<std::vector<float>> to_float32(const TensorRef& t);

// The canonical little-endian bytes of a tensor: stored bytes with the view transforms applied
// (rows reordered whole, so quantized rows keep their blocks). Used for tensor digests.
Result<std::vector<uint8_t>> canonical_bytes(const TensorRef& t);

// SHA-256 (hex) of canonical_bytes(t), streamed without a copy when the layout is plain.
Result<std::string> tensor_digest(const TensorRef& t);

// Asks the kernel to start reading the tensor's bytes (madvise WILLNEED on the mapped range), so
// that a later pass over a checkpoint larger than the page cache does not wait on each fault.
// A hint: does nothing for tensors that are not backed by a mapping, never fails.
void prefetch(const TensorRef& t);

// Canonical row index map for Q/K projections stored for interleaved RoPE (GGUF from HF, llama2.c):
// canonical (HF, half-split) row h*hd + j*(hd/2) + i  <-  stored row h*hd + 2*i + j.
std::vector<int64_t> rope_interleaved_to_half_rows(int64_t n_heads, int64_t head_dim);

}  // namespace prov::model
