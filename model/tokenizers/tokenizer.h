// Tokenizers: text <-> token ids, as the reference implementations compute them.
//
// Four families are read (docs/formats/tokenizers.md has the full description):
//
//   * Hugging Face `tokenizer.json` with a BPE model (tokenizers 0.23 semantics): added/special
//     tokens matched in the raw text first (leftmost-longest, single_word/lstrip/rstrip/normalized
//     honoured), then normalizer (NFC/NFKC/NFD/NFKD, Lowercase, Strip, StripAccents, Prepend,
//     Replace, ByteLevel, Sequence), pre-tokenizer (ByteLevel, Split, Metaspace, Digits,
//     Whitespace, WhitespaceSplit, Sequence), BPE (merges as "a b" strings or ["a","b"] pairs,
//     byte_fallback, ignore_merges, unk_token/fuse_unk, continuing_subword_prefix,
//     end_of_word_suffix), post-processor (TemplateProcessing, ByteLevel, RobertaProcessing,
//     BertProcessing, Sequence; applied only when add_special is true) and decoder (ByteLevel,
//     Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence). Regular expressions
//     run on PCRE2 (UTF + UCP), Unicode normalization on utf8proc.
//   * OpenAI GPT-2 `encoder.json` + `vocab.bpe`: byte-level BPE with the GPT-2 regex (built as the
//     equivalent tokenizer.json pipeline; `<|endoftext|>` is a special token).
//   * llama2.c `tok*.bin`: run.c's algorithm (dummy-prefix " ", per-code-point lookup with byte
//     fallback at id byte + 3, then repeatedly merge the adjacent pair whose concatenation is the
//     highest-scoring vocabulary entry; BOS = 1, EOS = 2; add_special adds BOS only, as run.c's
//     generate does; decoding drops the leading space of a token that follows BOS).
//   * GGUF `tokenizer.ggml.*` metadata: model "llama" (SentencePiece BPE as llama.cpp's SPM
//     tokenizer: spaces to U+2581, dummy-prefix U+2581, highest-score bigram merges, <0xNN> byte
//     fallback) and model "gpt2" (byte-level BPE with merges; the pre-tokenizer regex chosen by
//     tokenizer.ggml.pre).
//
// Text is UTF-8. Invalid UTF-8 in the input is handled per family: the Hugging Face and GPT-2
// pipelines replace each maximal invalid sequence by U+FFFD first (as Python's
// `bytes.decode("utf-8", "replace")` would); the llama2.c and GGUF SentencePiece tokenizers work
// on bytes and byte-fall-back any byte they cannot place, so invalid input round-trips there.
// Decoding never fails on a well-formed tokenizer: ids outside the vocabulary are dropped (as the
// reference does), and decoded bytes that are not valid UTF-8 are kept as bytes by the llama2.c
// and SentencePiece decoders and replaced by U+FFFD by the Hugging Face decoders (as the
// reference does).
//
// Thread safety: a Tokenizer is immutable after construction except for an internal,
// mutex-guarded cache; encode/decode and every other const method may be called concurrently.
// Nothing here throws.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::model {

struct Checkpoint;
struct Model;
struct GgufFile;
struct GgufTokenizer;
struct Llama2cTokenizer;

class Tokenizer {
 public:
  virtual ~Tokenizer();

  // Text -> ids. With add_special, adds what the tokenizer's post-processing adds (Hugging Face:
  // the post_processor template, e.g. BOS; llama2.c: BOS = 1; GGUF: BOS/EOS as
  // tokenizer.ggml.add_bos_token / add_eos_token say). Special tokens written in the text are
  // always recognised as such. Fails only on a broken tokenizer (e.g. a regex that exceeds the
  // backtracking limit, an unk_token missing from the vocabulary): kInvalidArgument / kCorrupt.
  virtual Result<std::vector<int32_t>> encode(const std::string& text,
                                              bool add_special = false) const = 0;
  // Ids -> text. skip_special drops special tokens (added tokens marked special; BOS/EOS/UNK and
  // control tokens of llama2.c and GGUF vocabularies). Ids outside [0, vocab_size()) are dropped.
  virtual Result<std::string> decode(const std::vector<int32_t>& ids,
                                     bool skip_special = false) const = 0;

  // One more than the largest id (model vocabulary and added tokens).
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  // "hf-bpe" (tokenizer.json), "gpt2-bpe" (encoder.json + vocab.bpe), "llama2c",
  // "gguf-llama" (SentencePiece), "gguf-gpt2".
  virtual std::string kind() const = 0;
  // A token's id by its exact vocabulary string (added tokens first), or nullopt.
  virtual std::optional<int32_t> token_to_id(const std::string& token) const = 0;
  // The vocabulary string of an id (as stored: byte-level or U+2581 spellings), or nullopt.
  virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
  // Whether decode(skip_special = true) drops this id.
  virtual bool is_special(int32_t id) const = 0;
};

// Hugging Face tokenizer.json at `path`. BOS/EOS come from tokenizer_config.json in the same
// directory when present ("bos_token"/"eos_token"), else from the post-processor template
// (BOS) and well-known special token names. kNotFound / kIo for the file, kCorrupt for malformed
// JSON or a malformed tokenizer (missing "model", merges naming tokens not in the vocabulary,
// ids out of range, invalid regex), kUnsupported for a model, normalizer, pre-tokenizer,
// post-processor or decoder type not listed at the top of this file (the message names it).
Result<std::unique_ptr<Tokenizer>> from_hf_json(const std::string& path);
// The same from a parsed document. `config` may be null or a tokenizer_config.json document.
// `what` names the source in messages.
Result<std::unique_ptr<Tokenizer>> from_hf_json_value(const nlohmann::json& tokenizer,
                                                      const std::string& what,
                                                      const nlohmann::json* config = nullptr);
// The same from JSON text (parsed with bounded depth).
Result<std::unique_ptr<Tokenizer>> from_hf_json_text(const std::string& text,
                                                     const std::string& what);

// GPT-2 encoder.json (token -> id) and vocab.bpe (optional "#version" line, then one merge
// "a b" per line). Errors as from_hf_json.
Result<std::unique_ptr<Tokenizer>> from_gpt2_files(const std::string& encoder_json,
                                                   const std::string& vocab_bpe);

// llama2.c tokenizer file. vocab_size < 0 reads tokens until the end of the file; otherwise
// exactly that many must be present. Errors as read_llama2c_tokenizer.
Result<std::unique_ptr<Tokenizer>> from_llama2c(const std::string& path, int32_t vocab_size = -1);
// From tokens already read. kInvalidArgument when tokens and scores differ in count or the
// vocabulary is empty.
Result<std::unique_ptr<Tokenizer>> from_llama2c_tokenizer(const Llama2cTokenizer& tokenizer);

// From GGUF metadata: tokenizer.ggml.model "llama" or "gpt2". The GgufFile overload keeps token
// bytes exact; the Checkpoint overload reads the JSON metadata (tokens that were not valid UTF-8
// arrive as U+FFFD there). kNotFound when the file has no tokenizer, kUnsupported for another
// tokenizer model (or an unknown tokenizer.ggml.pre for "gpt2"), kCorrupt for malformed data.
Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file);
Result<std::unique_ptr<Tokenizer>> from_gguf(const Checkpoint& checkpoint);
// From an extracted GgufTokenizer; add_space_prefix is tokenizer.ggml.add_space_prefix (default
// true for "llama").
Result<std::unique_ptr<Tokenizer>> from_gguf_tokenizer(const GgufTokenizer& tokenizer,
                                                       bool add_space_prefix,
                                                       const std::string& what);

// Loads whatever `path` names:
//   * a directory holding tokenizer.json, or encoder.json + vocab.bpe, or a llama2.c
//     tokenizer.bin / tok*.bin (checked in that order);
//   * a file: *.json (tokenizer.json), *.gguf (or any file starting with "GGUF"), otherwise a
//     llama2.c tokenizer read until the end of the file.
// kNotFound when nothing usable is there; otherwise the errors of the factory it picks.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path);

// The tokenizer that belongs to an opened model (Model::tokenizer_path: tokenizer.json or the
// GPT-2 pair beside a Hugging Face checkpoint, the GGUF metadata, the llama2.c tok<vocab>.bin).
// kNotFound when the model has none (Model::tokenizer_kind "none"), else as load_tokenizer.
Result<std::unique_ptr<Tokenizer>> load_model_tokenizer(const Model& m);

// Hooks shared between the tokenizer sources; not part of the public API.
namespace tokenizer_internal {
Result<std::unique_ptr<Tokenizer>> make_gguf_spm(const GgufTokenizer& tokenizer,
                                                 bool add_space_prefix, const std::string& what);
Result<std::unique_ptr<Tokenizer>> make_gguf_bpe(const GgufTokenizer& tokenizer,
                                                 const std::string& what);
}  // namespace tokenizer_internal

}  // namespace prov::model
