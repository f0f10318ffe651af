// Byte-level BPE tokenizer training: a corpus in, a Hugging Face tokenizer.json out.
//
// The model zoo trains tiny language models from a text corpus; this is the tokenizer half. The
// result is the document Hugging Face `tokenizers` writes for a ByteLevel BPE model (the shape of
// ../shared/fixtures/zoo-dev/tokenizer.json), loadable by prov::model::from_hf_json and by
// `tokenizers.Tokenizer.from_file`:
//
//   * ids 0..n-1: the special tokens, in the order given (also listed in "added_tokens" with
//     special = true, normalized = false);
//   * ids n..n+255: the 256 symbols of GPT-2's byte-level alphabet (bytes_to_unicode), ordered by
//     code point, which is the order of GPT-2's encoder.json and of Hugging Face's trainer:
//     "!".."~", "¡".."¬", "®".."ÿ" (bytes that map to themselves, in byte order), then "Ā".."Ń"
//     (the remaining 68 bytes 0x00-0x20, 0x7F-0xA0, 0xAD, in byte order);
//   * then one id per merge, in the order the merges were learned; "merges" lists them as
//     "left right" strings (byte-level symbols never contain a space, so this is unambiguous).
//   normalizer null, pre_tokenizer ByteLevel (add_prefix_space false, use_regex true), decoder
//   ByteLevel, post_processor null, model BPE with byte_fallback false and no unk_token.
//
// Training, exactly:
//   1. Each text is cut at every occurrence of a special token (leftmost, longest special first);
//      the special tokens themselves are not trained on.
//   2. Each remaining piece is split with the GPT-2 pre-tokenization regex
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      (PCRE2, UTF + UCP: the pattern the tokenizer.json reader uses for ByteLevel use_regex), and
//      each pre-token's bytes become byte-level symbols. Identical pre-tokens are counted once
//      with their frequency.
//   3. Repeatedly, the adjacent symbol pair with the highest total count is merged everywhere
//      (left to right, non-overlapping within a pre-token). Ties are broken by the pair of token
//      strings: the pair whose left string is lexicographically smallest (byte-wise), then whose
//      right string is smallest. A merge whose result is already in the vocabulary (the same
//      string reached by another split) reuses that id and adds no vocabulary entry.
//   4. Training stops when the vocabulary (specials + 256 + learned tokens) reaches vocab_size,
//      or when no pair occurs at least max(min_frequency, 1) times. Pairs whose concatenation
//      equals a special token's content are never merged.
// The result depends only on the texts and options: same input, same output bytes.
//
// Thread safety: the functions are reentrant; nothing is shared between calls. Nothing throws.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::zoo {

struct BpeTrainOptions {
  // Total vocabulary size: special tokens + 256 byte symbols + learned merges. Must be at least
  // 256 + special_tokens.size(); the result may be smaller when the corpus runs out of pairs.
  int32_t vocab_size = 2048;
  // Special tokens, ids 0.. in this order. Each must be non-empty, valid UTF-8, unique and not
  // one of the 256 byte-level symbols.
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  // A pair must occur at least this many times (summed over the corpus) to be merged. Must be
  // >= 0; 0 and 1 both mean "any pair that occurs".
  int min_frequency = 2;
};

// What training produced, besides the document (for logs and tests).
struct BpeTrainStats {
  int64_t pretokens = 0;         // pre-tokens seen (with repetition)
  int64_t unique_pretokens = 0;  // distinct pre-tokens
  int32_t merges = 0;            // merges learned (entries of "merges")
  int32_t vocab_size = 0;        // entries of "vocab" (specials included)
};

// Trains on `texts` (UTF-8 documents) and returns the tokenizer.json document; key order is that
// of Hugging Face's writer (hence ordered_json; it converts implicitly to nlohmann::json, e.g. for
// prov::model::from_hf_json_value). `stats` may be null.
// Errors: kInvalidArgument for bad options (the message names the option and the constraint) or
// a text that is not valid UTF-8 (the message names the text's index and the byte offset);
// kInvalidArgument if the regex engine gives up on a text (match limit; names the text).
Result<nlohmann::ordered_json> train_byte_level_bpe(const std::vector<std::string>& texts,
                                                    const BpeTrainOptions& options,
                                                    BpeTrainStats* stats = nullptr);

// Writes `tokenizer` to `path` as Hugging Face does (2-space indent, UTF-8 unescaped, no trailing
// newline), atomically: a temporary file next to `path` is written, fsynced and renamed over it,
// so readers see the old file or the complete new one. kIo when the file cannot be created,
// written or renamed (the message names the path and the OS error); kInvalidArgument when the
// document holds strings that are not valid UTF-8.
Status write_tokenizer_json(const std::string& path, const nlohmann::ordered_json& tokenizer);

}  // namespace prov::zoo
