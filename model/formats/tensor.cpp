#include "model/formats/tensor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/sha256.h"
#include "model/formats/quants.h"

namespace prov::model {

uint64_t TensorRef::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

namespace {

// Converts `n` stored elements (no view transform) to fp32.
Status convert_plain(const TensorRef& t, uint64_t n, float* out) {
  const uint8_t* p = t.data;
  switch (t.dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(out, p, n * 4);
      return Status::ok();
    case DType::kF64:
      for (uint64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return Status::ok();
    case DType::kF16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = fp16_to_float(h);
      }
      return Status::ok();
    case DType::kBF16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = bf16_to_float(h);
      }
      return Status::ok();
    case DType::kF8_E4M3:
      for (uint64_t i = 0; i < n; ++i) out[i] = fp8_e4m3_to_float(p[i]);
      return Status::ok();
    case DType::kF8_E5M2:
      for (uint64_t i = 0; i < n; ++i) out[i] = fp8_e5m2_to_float(p[i]);
      return Status::ok();
    case DType::kI8Grouped: {
      if (t.group_size == 0 || n % t.group_size != 0 || t.scales == nullptr) {
        return corrupt(t.file + ": tensor " + t.name + ": bad int8 group size " +
                       std::to_string(t.group_size) + " for " + std::to_string(n) + " values");
      }
      for (uint64_t g = 0; g < n / t.group_size; ++g) {
        float s;
        std::memcpy(&s, t.scales + 4 * g, 4);
        for (uint32_t k = 0; k < t.group_size; ++k) {
          uint64_t i = g * t.group_size + k;
          out[i] = static_cast<int8_t>(p[i]) * s;
        }
      }
      return Status::ok();
    }
    default:
      break;
  }
  const DTypeInfo& info = dtype_info(t.dtype);
  if (info.quantized) {
    return dequantize_blocks(t.dtype, p, n / info.block_elems, out)
        .with_context(t.file + ": tensor " + t.name);
  }
  return unsupported("tensor " + t.name + " has integer dtype " + info.name +
                     "; it has no real-valued reading");
}

Status check_sizes(const TensorRef& t) {
  const uint64_t n = t.numel();
  if (t.dtype == DType::kI8Grouped) {
    if (t.nbytes != n) return corrupt(t.file + ": tensor " + t.name + ": size mismatch");
    return Status::ok();
  }
  PROV_ASSIGN_OR_RETURN(uint64_t want, storage_bytes(t.dtype, n));
  if (want != t.nbytes) {
    return corrupt(t.file + ": tensor " + t.name + ": " + std::to_string(t.nbytes) +
                   " bytes stored, " + std::to_string(want) + " expected for its shape");
  }
  if (t.row_order) {
    if (t.shape.empty() || static_cast<int64_t>(t.row_order->size()) != t.shape[0]) {
      return internal_error("tensor " + t.name + ": row order does not match its rows");
    }
  }
  if (t.transposed && t.shape.size() != 2) {
    return internal_error("tensor " + t.name + ": only 2-D tensors can be transposed");
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<float>> to_float32(const TensorRef& t) {
  PROV_RETURN_IF_ERROR(check_sizes(t));
  const uint64_t n = t.numel();
  std::vector<float> stored(n);
  PROV_RETURN_IF_ERROR(convert_plain(t, n, stored.data()));
  if (t.is_plain_layout()) return stored;
  std::vector<float> out(n);
  if (t.transposed) {
    // Stored as [cols, rows]; canonical [rows, cols].
    const uint64_t rows = t.shape[0], cols = t.shape[1];
    for (uint64_t c = 0; c < cols; ++c)
      for (uint64_t r = 0; r < rows; ++r) out[r * cols + c] = stored[c * rows + r];
    stored.swap(out);
  }
  if (t.row_order) {
    const uint64_t rows = t.shape[0], row_len = n / rows;
    for (uint64_t r = 0; r < rows; ++r) {
      std::memcpy(out.data() + r * row_len, stored.data() + (*t.row_order)[r] * row_len,
                  row_len * sizeof(float));
    }
    stored.swap(out);
  }
  return stored;
}

namespace {
// Calls sink(ptr, len) with the canonical bytes of t, in order, without materialising them all.
template <typename Sink>
Status for_each_canonical_chunk(const TensorRef& t, Sink sink) {
  PROV_RETURN_IF_ERROR(check_sizes(t));
  if (t.transposed) {
    // Element-wise transpose; only plain dtypes can be transposed.
    const DTypeInfo& info = dtype_info(t.dtype);
    if (info.block_elems != 1 || t.dtype == DType::kI8Grouped) {
      return unsupported("tensor " + t.name + ": cannot transpose a block-quantized tensor");
    }
    const uint64_t es = info.block_bytes, rows = t.shape[0], cols = t.shape[1];
    std::vector<uint8_t> row(cols * es);
    for (uint64_t r0 = 0; r0 < rows; ++r0) {
      uint64_t r = t.row_order ? (*t.row_order)[r0] : r0;
      for (uint64_t c = 0; c < cols; ++c)
        std::memcpy(&row[c * es], t.data + (c * rows + r) * es, es);
      sink(row.data(), row.size());
    }
  } else if (t.row_order) {
    const uint64_t rows = t.shape[0], row_bytes = t.nbytes / rows;
    for (uint64_t r = 0; r < rows; ++r) sink(t.data + (*t.row_order)[r] * row_bytes, row_bytes);
  } else {
    sink(t.data, t.nbytes);
  }
  if (t.dtype == DType::kI8Grouped) {
    // Scales follow the values, in the same (canonical) row order.
    if (!t.row_order) {
      sink(t.scales, t.numel() / t.group_size * 4);
      return Status::ok();
    }
    const uint64_t rows = t.shape[0], row_len = t.numel() / rows;
    if (row_len % t.group_size != 0) {
      return unsupported("tensor " + t.name + ": int8 groups straddle rows; cannot reorder rows");
    }
    const uint64_t row_scale_bytes = row_len / t.group_size * 4;
    for (uint64_t r = 0; r < rows; ++r)
      sink(t.scales + (*t.row_order)[r] * row_scale_bytes, row_scale_bytes);
  }
  return Status::ok();
}
}  // namespace

Result<std::vector<uint8_t>> canonical_bytes(const TensorRef& t) {
  std::vector<uint8_t> out;
  PROV_RETURN_IF_ERROR(for_each_canonical_chunk(
      t, [&](const uint8_t* p, uint64_t len) { out.insert(out.end(), p, p + len); }));
  return out;
}

Result<std::string> tensor_digest(const TensorRef& t) {
  Sha256 h;
  PROV_RETURN_IF_ERROR(
      for_each_canonical_chunk(t, [&](const uint8_t* p, uint64_t len) { h.update(p, len); }));
  return to_hex(h.finish());
}

void prefetch(const TensorRef& t) {
  if (!t.data || t.nbytes == 0) return;
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data) & ~(page - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(t.data) + t.nbytes;
  // The kernel reads ahead at most its readahead window per call (a few MiB): one call per chunk.
  constexpr uintptr_t kChunk = uintptr_t{4} << 20;
  for (uintptr_t p = begin; p < end; p += kChunk) {
    madvise(reinterpret_cast<void*>(p), std::min(kChunk, end - p), MADV_WILLNEED);
  }
}

std::vector<int64_t> rope_interleaved_to_half_rows(int64_t n_heads, int64_t head_dim) {
  std::vector<int64_t> order(static_cast<size_t>(n_heads * head_dim));
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i)
        order[h * head_dim + j * half + i] = h * head_dim + 2 * i + j;
  return order;
}

}  // namespace prov::model
