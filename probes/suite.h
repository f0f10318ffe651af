// Probe suites: versioned, content-hashed lists of probes.
//
// A probe is a prompt (text, or token ids for same-tokenizer white-box work) plus what to record
// about the model's answer. A suite is a name, a version and its probes; its digest is the SHA-256
// of its canonical JSONL bytes (canonical_jsonl), so two suites with the same digest ask the same
// questions. Users write suites as JSONL (docs/formats/suite.md): a first line
//   {"suite": "name", "version": "1", "description": "..."}
// and one probe per line:
//   {"id": "p1", "text": "The cat", "top_k": 20, "greedy_tokens": 16,
//    "continuation": " sat on the mat", "score_texts": [" sat", " ran"]}
// or {"id": "r1", "ids": [1, 523, 77], ...}.
//
// Built-in suites are generated deterministically by the project (no copied text):
//   natural-v1        varied natural-language prompts from templates and seed words;
//   random-tokens-v1  seeded random token sequences (needs the vocabulary size: white-box,
//                     same tokenizer);
//   logit-image-v1    natural-v1's prompts recording the full next-token log-probabilities
//                     (white-box), for the logit-image statistic.
// Thread safety: values; all functions are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::probes {

struct Probe {
  std::string id;
  std::optional<std::string> text;  // exactly one of text / ids is set
  std::optional<std::vector<int32_t>> ids;
  int top_k = 20;          // top-k recorded at each recorded position (0..1000)
  bool full_stats = true;  // record entropy and logsumexp (white-box)
  // Record the whole next-token log-probability vector at each recorded position (white-box;
  // vocab_size floats per position: the logit-image statistic of fingerprint/outputs.h).
  bool full_logprobs = false;
  int greedy_tokens = 0;                    // greedy continuation length to record (0..4096)
  std::optional<std::string> continuation;  // teacher-forced continuation (text) to record along
  std::vector<std::string> score_texts;     // texts whose log-likelihood after the prompt to record
};

struct Suite {
  std::string name;
  std::string version;
  std::string description;
  std::vector<Probe> probes;
};

inline constexpr size_t kMaxSuiteProbes = 1000000;
inline constexpr size_t kMaxSuiteLineBytes = size_t{1} << 20;      // 1 MiB, newline excluded
inline constexpr uint64_t kMaxSuiteFileBytes = uint64_t{1} << 30;  // read_suite_file: 1 GiB
inline constexpr int kMaxSuiteJsonDepth = 8;  // nesting of arrays/objects on one line
inline constexpr size_t kMaxProbeIdBytes = 256;

// Checks every rule of docs/formats/suite.md on a Suite value: non-empty name and version, 1 to
// kMaxSuiteProbes probes, non-empty unique ids of at most kMaxProbeIdBytes, exactly one of
// text/ids (non-empty text, non-empty ids all >= 0), top_k 0..1000, greedy_tokens 0..4096, every
// string valid UTF-8. kInvalidArgument naming the probe (index and id) and the rule.
Status validate_suite(const Suite& suite);

// The canonical JSONL bytes: header line then one line per probe, keys sorted, defaults written
// (except full_logprobs, written only when true, so suites from before it keep their digests),
// no insignificant whitespace, '\n' after every line. Defined for suites that pass
// validate_suite (invalid UTF-8 in a string is written as U+FFFD instead of failing).
std::string canonical_jsonl(const Suite& suite);
// One probe as its canonical JSON object (every key, defaults written; the lines of
// canonical_jsonl after the header).
nlohmann::json probe_json(const Probe& probe);
// Hex SHA-256 of canonical_jsonl(suite).
std::string suite_digest(const Suite& suite);

// Parses JSONL (see above). kInvalidArgument / kCorrupt naming the line number and what is wrong
// (unknown key, both or neither of text/ids, duplicate probe id, out-of-range top_k, ...):
// kCorrupt when a line is not JSON at all (syntax, invalid UTF-8, over 1 MiB, nested deeper than
// kMaxSuiteJsonDepth), kInvalidArgument when it is JSON that breaks the suite rules. Blank lines
// are skipped; line numbers are 1-based physical lines. `source_name` prefixes every message.
// Limits: 1,000,000 probes, 1 MiB per line.
Result<Suite> parse_suite_jsonl(const std::string& bytes, const std::string& source_name);
// Reads and parses a file: kNotFound (no such file), kInvalidArgument (not a regular file, or
// larger than kMaxSuiteFileBytes), kIo (the OS refused), or parse_suite_jsonl's errors.
Result<Suite> read_suite_file(const std::string& path);
// Writes canonical_jsonl(suite) atomically (a temporary file in the same directory, fsync,
// rename), so the file's SHA-256 is the suite digest. kInvalidArgument when validate_suite
// fails (nothing is written), kIo when the OS refuses.
Status write_suite_file(const std::string& path, const Suite& suite);

// Built-ins.
struct BuiltinInfo {
  std::string name;
  std::string description;
  bool needs_vocab;  // random-tokens-v1: generated for a vocabulary size
};
std::vector<BuiltinInfo> builtin_suites();
// natural-v1: `count` prompts (default 2000; the first n of a larger request are the same
// prompts), each with top_k 20, full stats and 16 greedy tokens. Prompts are unique; ids
// "n000001", "n000002", .... `count` is clamped to [0, kMaxSuiteProbes].
Suite natural_v1(int count = 2000);
// random-tokens-v1: `count` sequences of `length` ids drawn uniformly from [first_id, vocab_size)
// with std::mt19937_64(seed); top_k 20, full stats, no greedy tokens. Ids "r000001", ....
// first_id is clamped to [0, vocab_size - 1]; count is clamped to kMaxSuiteProbes; vocab_size
// <= 0, count <= 0 or length <= 0 give a suite with no probes (which validate_suite rejects).
Suite random_tokens_v1(int32_t vocab_size, int count = 512, int length = 16, uint64_t seed = 1,
                       int32_t first_id = 3);
// logit-image-v1: the first `count` prompts of natural-v1 (default 256), each recording only the
// full log-probability vector after the prompt (full_logprobs; no top-k, no stats, no greedy).
// Ids are natural-v1's, so probe i is the same prompt in both suites.
Suite logit_image_v1(int count = 256);
// Resolves a suite argument: a built-in name (optionally "natural-v1:N" / "random-tokens-v1:N" /
// "logit-image-v1:N" for N prompts, 1 <= N <= kMaxSuiteProbes; "random-tokens-v1" needs vocab_size
// > 0, else kInvalidArgument) or a JSONL path (read_suite_file). Built-in names win over a file of
// the same name (write "./natural-v1" for the file). kNotFound lists the built-ins.
Result<Suite> resolve_suite(const std::string& name_or_path, int32_t vocab_size = 0);

}  // namespace prov::probes
