// GGUF reader (versions 2 and 3) and a GGUF writer for tests and synthetic models.
//
// File layout (all integers little-endian; full description in docs/formats/gguf.md):
//
//   "GGUF"  u32 version  u64 tensor_count  u64 metadata_kv_count
//   metadata_kv_count x { string key, u32 value_type, value }
//   tensor_count x { string name, u32 n_dims (<= 4), u64 ne[n_dims], u32 ggml_type, u64 offset }
//   zero padding to a multiple of `general.alignment` (default 32)
//   data section: tensor bytes at `offset` (relative to the section, a multiple of the alignment)
//
// A string is u64 length + bytes (no terminator). Value types: UINT8 0, INT8 1, UINT16 2,
// INT16 3, UINT32 4, INT32 5, FLOAT32 6, BOOL 7, STRING 8, ARRAY 9 (u32 element type + u64
// count + elements; arrays may nest), UINT64 10, INT64 11, FLOAT64 12. Version 1 (u32 counts and
// lengths) is refused with kUnsupported; version 3 differs from 2 only in allowing big-endian
// files, which are refused too (a byte-swapped version number is reported as such).
//
// ne[0] is the innermost (fastest-varying) dimension, so TensorRef::shape is ne reversed (the
// Hugging Face convention), e.g. a [vocab, dim] embedding is stored with ne = {dim, vocab}.
//
// Every count and length in the file is untrusted: each is checked against the bytes left before
// anything is allocated, arrays nest at most kGgufMaxArrayDepth deep, dimensions must be > 0 with
// overflow-checked products, ne[0] must be a multiple of the type's block size, offsets must be
// multiples of the alignment, and tensor data must lie inside the file without overlapping.
//
// Q/K rows of Llama models. llama.cpp's Hugging Face converter permutes the rows of the query and
// key projections of "llama" architecture models (Llama, and Mistral which is stored as "llama")
// from the half-split RoPE order of Hugging Face to the interleaved order that ggml's RoPE uses.
// For general.architecture == "llama", the tensors blk.N.attn_q.{weight,bias} and
// blk.N.attn_k.{weight,bias} get TensorRef::row_order = rope_interleaved_to_half_rows(n_heads,
// rows / n_heads), with n_heads = llama.attention.head_count for Q and
// llama.attention.head_count_kv (default: head_count) for K, so that to_float32, canonical_bytes
// and tensor_digest see the Hugging Face row order. The stored bytes are untouched. No other
// architecture is permuted (qwen2, gpt2, ... are converted without it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"
#include "model/formats/checkpoint.h"
#include "model/formats/dtype.h"

namespace prov::model {

// Metadata value types, with their on-disk ids.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
const char* gguf_type_name(GgufType t);  // "UINT8", ..., "FLOAT64"; "?" for an invalid value

// Deepest array nesting accepted (an array of arrays of scalars has depth 2).
constexpr int kGgufMaxArrayDepth = 8;
// Most array elements accepted in one file's metadata, all arrays together, with each string
// counting 4 and each nested array 16 (a real tokenizer takes a few million). Bounds the memory
// a hostile file can make the reader allocate.
constexpr uint64_t kGgufMaxArrayElements = uint64_t{1} << 26;

// A metadata array. Elements live in the member matching elem_type, widened:
//   UINT8/16/32/64 -> u, INT8/16/32/64 -> i, FLOAT32/64 -> f, BOOL -> b (0 or 1),
//   STRING -> s, ARRAY -> a (nested arrays). The other members are empty.
struct GgufArray {
  GgufType elem_type = GgufType::kUint8;
  std::vector<uint64_t> u;
  std::vector<int64_t> i;
  std::vector<double> f;
  std::vector<uint8_t> b;
  std::vector<std::string> s;
  std::vector<GgufArray> a;

  uint64_t size() const;
  // Integer element k (any integer element type) if it fits in int64; nullopt otherwise.
  std::optional<int64_t> int_at(uint64_t k) const;
};

// A metadata value: its declared type and the value, widened (unsigned integers as uint64_t,
// signed as int64_t, FLOAT32/FLOAT64 as double, BOOL as bool, STRING as std::string — raw bytes,
// not necessarily UTF-8 — and ARRAY as GgufArray).
struct GgufValue {
  GgufType type = GgufType::kUint8;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;

  // Typed accessors; nullopt / nullptr when the value has another type.
  std::optional<int64_t> as_int() const;    // any integer type whose value fits in int64
  std::optional<uint64_t> as_uint() const;  // any integer type whose value is >= 0
  std::optional<double> as_number() const;  // any integer or float type
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const GgufArray* as_array() const;

  // Constructors for writers and tests.
  static GgufValue u8(uint8_t v) { return {GgufType::kUint8, uint64_t{v}}; }
  static GgufValue i8(int8_t v) { return {GgufType::kInt8, int64_t{v}}; }
  static GgufValue u16(uint16_t v) { return {GgufType::kUint16, uint64_t{v}}; }
  static GgufValue i16(int16_t v) { return {GgufType::kInt16, int64_t{v}}; }
  static GgufValue u32(uint32_t v) { return {GgufType::kUint32, uint64_t{v}}; }
  static GgufValue i32(int32_t v) { return {GgufType::kInt32, int64_t{v}}; }
  static GgufValue u64(uint64_t v) { return {GgufType::kUint64, v}; }
  static GgufValue i64(int64_t v) { return {GgufType::kInt64, v}; }
  static GgufValue f32(float v) { return {GgufType::kFloat32, static_cast<double>(v)}; }
  static GgufValue f64(double v) { return {GgufType::kFloat64, v}; }
  static GgufValue boolean(bool v) { return {GgufType::kBool, v}; }
  static GgufValue str(std::string v) { return {GgufType::kString, std::move(v)}; }
  static GgufValue array(GgufArray v) { return {GgufType::kArray, std::move(v)}; }
  static GgufValue strings(std::vector<std::string> v);
  static GgufValue f32s(const std::vector<float>& v);
  static GgufValue i32s(const std::vector<int32_t>& v);
};

// One tensor-info record, as stored.
struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // GGUF order: ne[0] innermost
  uint32_t ggml_type = 0;
  DType dtype = DType::kF32;  // ggml_type mapped (the parser refuses unknown types)
  uint64_t offset = 0;        // relative to the data section
  uint64_t nbytes = 0;        // storage_bytes(dtype, numel)
};

// The parsed header of a GGUF file: metadata (typed, in file order) and tensor infos. Owns
// copies of everything; does not refer to the file bytes. Immutable after parsing.
struct GgufFile {
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;                           // absolute offset of the data section
  std::vector<std::pair<std::string, GgufValue>> kv;  // in file order; keys are unique
  std::vector<GgufTensorInfo> tensors;                // in file order; names are unique

  // The value of `key`, or nullptr.
  const GgufValue* get(const std::string& key) const;
  // general.architecture, or "" when absent or not a string.
  std::string architecture() const;

  void build_index();  // the parser calls it; call it again after editing kv by hand

 private:
  std::map<std::string, size_t> index_;
};

// The ggml type id's DType (F32 0, F16 1, Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q2_K 10,
// Q3_K 11, Q4_K 12, Q5_K 13, Q6_K 14, I8 24, I16 25, I32 26, I64 27, F64 28, BF16 30), or
// nullopt for ids prov does not read.
std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type);
// The ggml id of a DType, or nullopt for dtypes GGUF cannot store.
std::optional<uint32_t> ggml_type_from_dtype(DType t);
// ggml's name for a type id ("Q8_1", "IQ2_XXS", ...), "unknown" when unassigned.
const char* ggml_type_name(uint32_t ggml_type);

// Parses and validates the header of the GGUF bytes [data, data + size). `what` names the source
// in messages. Fails with kCorrupt (malformed or hostile: the message gives the offset and the
// field) or kUnsupported (GGUF v1, big-endian, pre-GGUF ggml files, tensor types prov does not
// read: the message names the tensor and the type). Does not keep `data`. Thread-safe.
Result<GgufFile> parse_gguf(const uint8_t* data, uint64_t size, const std::string& what);

// Maps `path`, parses its header and unmaps it. Fails as parse_gguf, or with kNotFound / kIo.
Result<GgufFile> read_gguf_file(const std::string& path);

// Reads a GGUF file into a Checkpoint (format kGguf, version 2 or 3, metadata as JSON, tensors in
// file order with their GGUF names, canonical shapes, data pointing into the shared mapping,
// Q/K row orders for Llama as described at the top). Fails as parse_gguf, or with kNotFound /
// kIo if the file cannot be mapped. Thread-safe.
Result<Checkpoint> read_gguf(const std::string& path);

// As read_gguf for bytes already in memory: tensors point into [data, data + size) and keep
// `owner` alive (it must own those bytes; may be null if the caller keeps them alive longer than
// the Checkpoint). `what` becomes Checkpoint::path and TensorRef::file.
Result<Checkpoint> parse_gguf_buffer(std::shared_ptr<const void> owner, const uint8_t* data,
                                     uint64_t size, const std::string& what);

// The metadata as JSON: an object key -> value, integers as JSON integers, floats as numbers
// (NaN/inf become null when dumped), bools, strings, arrays (nested). Strings that are not valid
// UTF-8 have each invalid byte replaced by U+FFFD so the JSON can always be dumped.
nlohmann::json gguf_metadata_json(const GgufFile& file);

// Tokenizer described by the tokenizer.ggml.* metadata.
struct GgufTokenizer {
  std::string model;                 // tokenizer.ggml.model: "llama" (SentencePiece), "gpt2"...
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<float> scores;         // tokenizer.ggml.scores (empty when absent)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type (empty when absent)
  std::vector<std::string> merges;   // tokenizer.ggml.merges (empty when absent)
  std::optional<int64_t> bos_id, eos_id, unk_id, pad_id;  // *_token_id, when valid
  // tokenizer.ggml.add_bos_token / add_eos_token; when absent, llama.cpp's defaults for the
  // model: "llama" adds BOS only, "bert" both, "t5" EOS only, others neither.
  bool add_bos = false, add_eos = false;
  std::string pre;  // tokenizer.ggml.pre (pre-tokenizer name), "" when absent
  // Non-fatal problems, e.g. a special token id outside the vocabulary (which llama.cpp also
  // ignores): the id is left unset and a line is added here.
  std::vector<std::string> warnings;
};

// Extracts the tokenizer from typed metadata (exact bytes of every token). Fails with kNotFound
// when tokenizer.ggml.model is absent, kCorrupt when a key has the wrong type or scores /
// token_type do not have one entry per token.
Result<GgufTokenizer> gguf_tokenizer(const GgufFile& file);
// The same from a GGUF Checkpoint's JSON metadata (tokens that were not valid UTF-8 carry
// U+FFFD, see gguf_metadata_json; use the GgufFile overload when that matters).
// kInvalidArgument when the checkpoint is not GGUF.
Result<GgufTokenizer> gguf_tokenizer(const Checkpoint& ckpt);

// Builds GGUF files (for tests and synthetic models). Not thread-safe; values are copied in.
class GgufWriter {
 public:
  // Adds (or replaces) a metadata key; keys are written in first-insertion order.
  void add_kv(const std::string& key, GgufValue value);

  // Adds a tensor given its canonical (Hugging Face order) shape; `bytes` must hold exactly
  // storage_bytes(dtype, numel) bytes and the shape's innermost dimension must be a whole number
  // of blocks. kInvalidArgument otherwise, or for a dtype GGUF cannot store.
  Status add_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                    std::vector<uint8_t> bytes);

  // Adds a tensor record exactly as given, unchecked (for writing hostile test files): any
  // ggml type id, any ne, and optionally an explicit offset (otherwise the next aligned one).
  void add_raw_tensor(const std::string& name, uint32_t ggml_type, std::vector<uint64_t> ne,
                      std::vector<uint8_t> bytes, std::optional<uint64_t> offset = std::nullopt);

  // Serializes as GGUF `version` (2 or 3) with tensors aligned to `alignment` (a power of two).
  // general.alignment is written when alignment != 32 unless the caller added that key
  // (then the caller's value is written as is, e.g. to test invalid alignments).
  Result<std::vector<uint8_t>> serialize(uint32_t version = 3, uint64_t alignment = 32) const;
  Status write(const std::string& path, uint32_t version = 3, uint64_t alignment = 32) const;

 private:
  struct Tensor {
    std::string name;
    uint32_t ggml_type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> bytes;
    std::optional<uint64_t> offset;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace prov::model
