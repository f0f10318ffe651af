// Reading and writing safetensors checkpoints (single files and sharded directories).
//
// File layout (all integers little-endian):
//
//   offset 0      u64 N            length of the JSON header in bytes
//   offset 8      N bytes          UTF-8 JSON object (may be padded with trailing spaces):
//                                    "__metadata__": {string: string, ...}        (optional)
//                                    "<tensor name>": {"dtype": "F32",
//                                                      "shape": [d0, d1, ...],
//                                                      "data_offsets": [begin, end]}
//   offset 8+N    data buffer      tensor bytes, row-major, little-endian; a tensor's bytes are
//                                  data[begin, end) (offsets relative to the buffer start)
//
// dtype is one of F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U8 BOOL. Shapes are already the
// Hugging Face layout, so TensorRefs from this reader never carry a view transform.
//
// A sharded checkpoint is a `model.safetensors.index.json`:
//   {"metadata": {...}, "weight_map": {"<tensor name>": "<shard file name>", ...}}
// with the shard files beside it.
//
// The reader treats every byte as hostile: it bounds the header (at most 100 MB and inside the
// file), limits JSON nesting to 64 levels, rejects duplicate JSON keys, checks every dtype, shape
// (overflow-checked element counts), data range and size, and rejects overlapping tensors. See
// docs/formats/safetensors.md for the full list. Tensor data is not copied: each TensorRef points
// into a read-only mapping of its file (possibly at an address that is not aligned for its dtype;
// read it with memcpy, as to_float32 does).
//
// All functions are thread-safe (they share no mutable state).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/formats/checkpoint.h"
#include "model/formats/dtype.h"

namespace prov::model {

// Largest JSON header (and index file) the reader accepts, as in the reference implementation.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;
// Deepest JSON nesting the reader accepts (a real header needs 3 levels).
inline constexpr int kSafetensorsMaxJsonDepth = 64;

// Reads a safetensors checkpoint. `path` may be
//   - a `.safetensors` file;
//   - a `*.json` sharded index (every shard it names is read; every tensor in the weight_map must
//     be in the shard the map names, every tensor in a shard must be in the map for that shard,
//     shard names must be relative paths without `..` components);
//   - a directory holding `model.safetensors.index.json` (preferred) or `model.safetensors`.
// On success: format kSafetensors, path = `path` as given, files = the safetensors files read
// (shards in sorted name order, each joined to the index's directory as given, not made absolute),
// tensors = each file's tensors in the order of their data in the file (ties broken by name),
// file after file; metadata = the files' `__metadata__` entries merged (the first file that sets a
// key wins) plus, for a sharded checkpoint, the index's "metadata" object under "index" (an empty
// object when the index has none). The name index is built. The Checkpoint keeps the mappings
// alive through its TensorRefs.
// Fails with kNotFound (no such file, no checkpoint in the directory, a shard or tensor missing),
// kCorrupt (the bytes violate the format; the message names the file, the tensor and the
// offset), kUnsupported (a dtype prov does not read), kInvalidArgument (`path` is neither a
// regular file nor a directory) or kIo.
Result<Checkpoint> read_safetensors(const std::string& path);

// Parses one safetensors file held in memory: data[0, size). `what` names the source in messages
// and becomes Checkpoint::path, Checkpoint::files[0] and TensorRef::file. `owner` keeps `data`
// alive and is stored as every TensorRef's keep_alive; it may be null when the caller guarantees
// that `data` outlives the returned Checkpoint and every copy of its TensorRefs.
// metadata = the file's `__metadata__` (string values). Same checks and failures as
// read_safetensors on a single file.
Result<Checkpoint> parse_safetensors_buffer(std::shared_ptr<const void> owner, const uint8_t* data,
                                            uint64_t size, const std::string& what);

// One tensor to write: its bytes are the row-major little-endian values.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// The bytes of a safetensors file holding `tensors` (+ `metadata` as `__metadata__`, omitted when
// empty). Tensors are laid out sorted by name, header keys in the same order after
// `__metadata__`; the header is padded with spaces so the data buffer starts at a multiple of 8.
// Fails with kInvalidArgument on an empty or duplicate name, the reserved name "__metadata__", a
// dtype safetensors cannot store, a negative dimension, or bytes.size() not matching shape and
// dtype.
Result<std::vector<uint8_t>> serialize_safetensors(
    const std::vector<SafetensorsEntry>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// Writes serialize_safetensors(tensors, metadata) to `path` atomically: the bytes go to
// `path + ".tmp"` (flushed to disk), which is then renamed over `path`. On failure `path` is
// untouched and the temporary file removed. Fails as serialize_safetensors, or with kIo.
Status write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

// Writes a sharded checkpoint into `dir` (created if missing): tensors are taken in the given
// order and packed greedily into shards of at most `max_shard_bytes` data bytes (a tensor bigger
// than that gets a shard of its own), written as model-0000i-of-0000n.safetensors (1-based, five
// digits), then model.safetensors.index.json with "metadata": {"total_size": <sum of tensor
// bytes>} and the "weight_map". Every file is written atomically; all tensors are validated
// before anything is written. Fails with kInvalidArgument (as serialize_safetensors, or
// max_shard_bytes == 0, or more than 99999 shards) or kIo.
Status write_safetensors_sharded(const std::string& dir,
                                 const std::vector<SafetensorsEntry>& tensors,
                                 uint64_t max_shard_bytes);

}  // namespace prov::model
