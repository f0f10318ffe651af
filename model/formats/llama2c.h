// llama2.c checkpoints (`model.bin`, versions 0, 1 and 2) and llama2.c tokenizer files
// (`tokenizer.bin`, `tok<N>.bin`): reader, format sniffing and writers.
//
// Checkpoint layouts (all little-endian; docs/formats/llama2c.md has the full description):
//
//   v0 ("legacy", read by run.c): 7 x int32 header
//        dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//      vocab_size < 0 means the classifier is NOT shared with the token embedding; |vocab_size|
//      is the vocabulary. Then fp32 tensors, each layer-stacked over all layers:
//        tok_embeddings [vocab, dim]; attention_norm [L, dim]; wq [L, H*hs, dim];
//        wk [L, KV*hs, dim]; wv [L, KV*hs, dim]; wo [L, dim, H*hs]; ffn_norm [L, dim];
//        w1 [L, hidden, dim]; w2 [L, dim, hidden]; w3 [L, hidden, dim]; norm [dim];
//        freq_cis_real [seq_len, hs/2]; freq_cis_imag [seq_len, hs/2]  (RoPE tables, skipped);
//        output [vocab, dim]  (only when not shared)
//      where hs = dim / n_heads (head size), H = n_heads, KV = n_kv_heads, L = n_layers.
//   v1: uint32 magic 0x616b3432 ("ak42"), int32 version = 1, the same 7 int32 fields (vocab_size
//      positive), uint8 shared_classifier, zero padding to 256 bytes; then fp32 tensors:
//        attention_norm x L, ffn_norm x L, norm, tok_embeddings, wq x L, wk x L, wv x L, wo x L,
//        w1 x L, w2 x L, w3 x L, [output if not shared].
//   v2: as v1 with version = 2 and an int32 group_size right after shared_classifier (at byte
//      37, unaligned), padded to 256; then fp32 norms (attention_norm x L, ffn_norm x L, norm),
//      then for each matrix in the order tok_embeddings, wq x L, wk x L, wv x L, wo x L,
//      w1 x L, w2 x L, w3 x L, [output]: numel int8 values followed by numel/group_size fp32
//      scales (value = int8 * scale, one scale per group_size consecutive stored values).
//
// Every matrix is a PyTorch nn.Linear weight, [out, in] row-major, the same layout as the Hugging
// Face checkpoint, except that wq and wk keep Meta's row order for interleaved RoPE (pairs of
// adjacent rows rotate together); Hugging Face's Llama uses the half-split order. The reader
// exposes the tensors under Hugging Face Llama names with canonical shapes, and gives the Q/K
// projections TensorRef::row_order = rope_interleaved_to_half_rows(heads, head_size) so that
// to_float32() / canonical_bytes() see Hugging Face row order:
//
//   model.embed_tokens.weight                         [vocab, dim]
//   model.layers.{i}.input_layernorm.weight            [dim]
//   model.layers.{i}.self_attn.q_proj.weight           [H*hs, dim]   (row_order set)
//   model.layers.{i}.self_attn.k_proj.weight           [KV*hs, dim]  (row_order set)
//   model.layers.{i}.self_attn.v_proj.weight           [KV*hs, dim]
//   model.layers.{i}.self_attn.o_proj.weight           [dim, H*hs]
//   model.layers.{i}.post_attention_layernorm.weight   [dim]
//   model.layers.{i}.mlp.gate_proj.weight (w1)         [hidden, dim]
//   model.layers.{i}.mlp.down_proj.weight (w2)         [dim, hidden]
//   model.layers.{i}.mlp.up_proj.weight   (w3)         [hidden, dim]
//   model.norm.weight                                  [dim]
//   lm_head.weight                                     [vocab, dim]  (only when not shared)
//
// v0/v1 tensors are DType::kF32 views into the buffer (no copy); v2 matrices are
// DType::kI8Grouped (TensorRef::scales, TensorRef::group_size), norms stay kF32. Checkpoint
// tensors are listed in file order.
//
// Checkpoint::metadata holds the header as JSON: "dim", "hidden_dim", "n_layers", "n_heads",
// "n_kv_heads", "vocab_size" (always the positive vocabulary size), "seq_len", "head_size",
// "shared_classifier" (bool) and, for v2, "group_size". Checkpoint::version is 0, 1 or 2.
//
// Tokenizer file: int32 max_token_length, then for each token: fp32 score, int32 byte length,
// that many bytes (not NUL-terminated, not necessarily valid UTF-8). The token count is not
// stored; it is the model's vocab_size.
//
// All functions are thread-safe (no shared mutable state). Nothing here throws.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "model/formats/checkpoint.h"

namespace prov::model {

// The v1/v2 magic: the bytes "24ka" on disk, i.e. uint32 0x616b3432 ("ak42") little-endian.
inline constexpr uint32_t kLlama2cMagic = 0x616b3432;
// Size of the v1/v2 header (fields plus zero padding).
inline constexpr uint64_t kLlama2cHeaderBytes = 256;

// Plausibility bounds checked before any size is computed (a header beyond them is reported as
// corrupt with the offending field named).
inline constexpr int32_t kLlama2cMaxDim = 1 << 16;
inline constexpr int32_t kLlama2cMaxHiddenDim = 1 << 20;
inline constexpr int32_t kLlama2cMaxLayers = 1024;
inline constexpr int32_t kLlama2cMaxVocab = 1 << 24;
inline constexpr int32_t kLlama2cMaxSeqLen = 1 << 24;

// The header of a llama2.c checkpoint, with v0's vocab sign already folded into
// shared_classifier.
struct Llama2cHeader {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // the vocabulary size, always positive in a valid header
  int32_t seq_len = 0;
  bool shared_classifier = true;  // output projection == token embedding (no lm_head tensor)
  int32_t group_size = 0;         // v2 only: values per quantization scale (0 for v0/v1)

  int32_t head_size() const { return n_heads > 0 ? dim / n_heads : 0; }
  // "dim=64 hidden_dim=172 n_layers=5 n_heads=8 n_kv_heads=4 vocab_size=512 seq_len=512", for
  // messages.
  std::string describe() const;
};

// Checks a header for `version` (0, 1 or 2): every field positive, within the plausibility
// bounds above, dim % n_heads == 0, n_heads % n_kv_heads == 0, even head size, and for v2 a
// positive group_size dividing every quantized matrix. Returns kCorrupt naming the first bad
// field, kUnsupported for another version.
Status validate_llama2c_header(const Llama2cHeader& header, uint32_t version);

// Exact size in bytes of a file of this header and version (v0 includes the freq_cis tables).
// Validates the header first (errors as validate_llama2c_header).
Result<uint64_t> llama2c_file_size(const Llama2cHeader& header, uint32_t version);

// Decodes and validates the header at the start of `data` (`size` bytes; `what` names the source
// in messages) and stores the version (0, 1 or 2) in *version. kCorrupt for a truncated or
// invalid header, kUnsupported for a magic-tagged file of another version. Does not check the
// file size against the header.
Result<Llama2cHeader> parse_llama2c_header(const uint8_t* data, uint64_t size,
                                           const std::string& what, uint32_t* version);

// Sniffing for open_model(): true when the buffer starts with the v1/v2 magic, or holds a valid
// v0 header whose implied file size equals `size` exactly. Never reads past `size`.
bool looks_like_llama2c(const uint8_t* data, uint64_t size);

// Parses a whole checkpoint held in memory. The returned tensors point into `data` and hold
// `owner` (which must keep `data` alive; may be null if the caller guarantees that itself).
// `what` names the source in messages and becomes Checkpoint::path / TensorRef::file.
// Fails with kCorrupt (invalid header; "truncated: expected N bytes for dim=..., got M";
// "N trailing bytes ...") or kUnsupported (magic-tagged file of an unknown version).
Result<Checkpoint> parse_llama2c_buffer(std::shared_ptr<const void> owner, const uint8_t* data,
                                        uint64_t size, const std::string& what);

// Memory-maps `path` and parses it (see parse_llama2c_buffer); the checkpoint keeps the mapping
// alive. Adds kNotFound / kIo / kInvalidArgument from opening the file.
Result<Checkpoint> read_llama2c(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Tokenizer

struct Llama2cTokenizer {
  int32_t max_token_length = 0;     // as stored; tokens longer than it are tolerated
  std::vector<std::string> tokens;  // raw bytes of each token
  std::vector<float> scores;        // one per token
};

// Parses a tokenizer file held in memory. With vocab_size >= 0, exactly vocab_size tokens must
// be present and nothing may follow them; with vocab_size < 0, tokens are read until the end of
// the buffer. kCorrupt (naming the offset) for a negative max_token_length, a negative length, a
// token running past the end, trailing bytes, or a vocab_size the buffer cannot possibly hold.
// Copies the bytes; the buffer may be freed afterwards.
Result<Llama2cTokenizer> parse_llama2c_tokenizer_buffer(const uint8_t* data, uint64_t size,
                                                        int32_t vocab_size,
                                                        const std::string& what);

// Reads a tokenizer file (vocab_size as in parse_llama2c_tokenizer_buffer; pass the model's
// vocab size, or a negative value to read until the end of the file). Adds kNotFound / kIo.
Result<Llama2cTokenizer> read_llama2c_tokenizer(const std::string& path, int32_t vocab_size);
// Reads every token until the end of the file.
inline Result<Llama2cTokenizer> read_llama2c_tokenizer(const std::string& path) {
  return read_llama2c_tokenizer(path, -1);
}

// ---------------------------------------------------------------------------------------------
// Writers (tests, fuzz seeds, the model zoo)

// Weights to write: fp32 values keyed by the Hugging Face names listed at the top of this file,
// each row-major in the canonical (Hugging Face) layout and row order. lm_head.weight must be
// present exactly when header.shared_classifier is false. header.group_size is used by v2 only.
struct Llama2cWeights {
  Llama2cHeader header;
  std::map<std::string, std::vector<float>> tensors;
};

// The Hugging Face names and canonical shapes of the tensors a checkpoint with this header holds,
// in the canonical order (embedding, layer by layer, final norm, lm_head if not shared).
// kInvalidArgument when the header is invalid (checked as for v1; group_size is not looked at).
Result<std::vector<std::pair<std::string, std::vector<int64_t>>>> llama2c_tensor_shapes(
    const Llama2cHeader& header);

// Serializes `weights` as a llama2.c file of `version` (0, 1 or 2), the way llama2.c's export.py
// does: Q/K rows are permuted back to the interleaved-RoPE order; v0 writes the vocab sign for
// the shared flag and fills the freq_cis tables (theta 10000); v2 quantizes every matrix per
// group of header.group_size stored values with scale = max|w| / 127 and q = round(w / scale)
// (ties to even; an all-zero group has scale 0 and q = 0). kInvalidArgument for an invalid
// header (message as validate_llama2c_header), a missing, unexpected or wrongly sized tensor,
// or an unknown version.
Result<std::vector<uint8_t>> serialize_llama2c(const Llama2cWeights& weights, uint32_t version);
// serialize_llama2c, streamed to `path` (created or truncated). Adds kIo on write failure.
Status write_llama2c(const std::string& path, const Llama2cWeights& weights, uint32_t version);

// Collects the fp32 (dequantized, canonical-order) values of every tensor a llama2.c file with
// `header` needs from `ckpt`, found by the Hugging Face names above — e.g. to convert a
// checkpoint or re-export one in another version. kNotFound for a missing tensor, kInvalidArgument
// for a shape mismatch, and to_float32's errors.
Result<Llama2cWeights> llama2c_weights_from_checkpoint(const Checkpoint& ckpt,
                                                       const Llama2cHeader& header);

// Serializes a tokenizer (max_token_length as given). kInvalidArgument when tokens and scores
// differ in count or a token is longer than INT32_MAX bytes.
Result<std::vector<uint8_t>> serialize_llama2c_tokenizer(const Llama2cTokenizer& tokenizer);
Status write_llama2c_tokenizer(const std::string& path, const Llama2cTokenizer& tokenizer);

}  // namespace prov::model
