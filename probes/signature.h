// Signatures: what a model answered to a probe suite, the evidence every output test stands on.
//
// A signature is a header (which model, which suite, how it was collected) and one ProbeRecord per
// probe, in suite order. The records are plain values; signature files (docs/formats/signature.md)
// store them as zstd-compressed protobuf frames, one frame per record after a header frame, so a
// run that stops part-way leaves a readable file of the records it completed, and a rerun appends
// the missing ones (resume).
//
// Thread safety: the reader and writer are not thread-safe; use one per thread.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::probes {

// 2: the header records the engine behind an endpoint signature (engine .. token_ids). Files of
// version 1 read with those fields empty.
inline constexpr uint32_t kSignatureSchemaVersion = 2;

// The k most likely next tokens at one position, most likely first (ties: lower id first).
// White-box (local) signatures fill ids and, when a tokenizer is known, tokens (each id's decoded
// vocabulary piece). Endpoint signatures fill tokens, and ids only when the server reports them.
struct TopK {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
  std::vector<float> logprobs;  // natural log, same length as ids or tokens
};

// The model's distribution at one position, and the token that followed there when the probe
// has a teacher-forced continuation (token_* = -1 / "" / NaN otherwise).
struct PositionRecord {
  int32_t token_id = -1;
  std::string token;
  float token_logprob = std::numeric_limits<float>::quiet_NaN();
  TopK top;
  // Full-distribution statistics (white-box only; NaN when not available): entropy in nats and
  // the log-sum-exp of the raw logits.
  float entropy = std::numeric_limits<float>::quiet_NaN();
  float logsumexp = std::numeric_limits<float>::quiet_NaN();
  // The whole next-token log-probability vector, one per vocabulary id (white-box, only for
  // probes with full_logprobs; empty otherwise).
  std::vector<float> logprobs;
};

// The log-likelihood the model assigns to a given text after the probe's prompt
// (cross-likelihood: one model scoring another model's continuation).
struct ScoredText {
  std::string text;
  std::vector<int32_t> ids;           // the text's tokens (empty for endpoint scores without ids)
  std::vector<std::string> tokens;    // their strings when known
  std::vector<float> token_logprobs;  // log p(token_i | prompt, tokens_<i)
  double total_logprob = 0;           // sum of token_logprobs
};

struct ProbeRecord {
  uint32_t index = 0;               // position of the probe in its suite
  std::string probe_id;             // the suite's probe id
  std::vector<int32_t> prompt_ids;  // the prompt's tokens as the model saw them (local runs)
  // Without a teacher-forced continuation: one position, the distribution after the prompt.
  // With a continuation c_1..c_n: n positions; positions[j] is the distribution after the prompt
  // and c_1..c_j, and its token_* describe c_{j+1} (so positions[0] is still the distribution
  // after the prompt).
  std::vector<PositionRecord> positions;
  std::vector<int32_t> continuation_ids;  // greedy continuation (ids, local runs)
  std::string continuation_text;          // greedy continuation (text)
  std::vector<ScoredText> scores;
};

struct SignatureHeader {
  uint32_t schema_version = kSignatureSchemaVersion;
  std::string tool_version;
  std::string source;        // "local" or "endpoint"
  std::string model_name;    // path or endpoint model name
  std::string model_digest;  // OMS digest (hex) for local models; "" for endpoints
  std::string endpoint_url;  // for endpoint signatures
  std::string suite_name;
  std::string suite_version;
  std::string suite_digest;  // hex SHA-256 of the suite's canonical bytes (suite.h)
  uint32_t num_probes = 0;   // probes in the suite (a complete file has this many records)
  uint32_t top_k = 0;
  std::string device;  // "cpu", "cuda:0", "endpoint"
  std::string dtype;   // "float32", "bfloat16", ...
  // Tokenizer kind and a digest of its vocabulary (every id's piece in id order, 16 hex digits),
  // e.g. "hf-bpe:sha256:0123456789abcdef" ("" unknown; files before the digest hold the kind).
  std::string tokenizer;
  int32_t vocab_size = 0;
  // Endpoint signatures (schema 2): the engine, its version as it reports it, the wire format
  // ("vllm-completions", "openai-chat", "sglang-generate", "tgi-generate",
  // "llamacpp-completion", "anthropic-messages", ...), the log-probability mode ("raw": before
  // sampling processors; "processed": after them; "none": text only), the most alternatives per
  // position the engine gave (0: top_k, no truncation), whether it scored given text, and
  // whether the records carry its token ids. Empty / 0 / false for local signatures.
  std::string engine;
  std::string engine_version;
  std::string api;
  std::string logprob_mode;
  uint32_t top_k_limit = 0;
  bool prompt_logprobs = false;
  bool token_ids = false;
};

struct Signature {
  SignatureHeader header;
  std::vector<ProbeRecord> records;  // ordered by index; complete when size == num_probes
  bool complete() const { return records.size() == header.num_probes; }
};

// Reads a signature file; the records come back sorted by index. A truncated final frame (an
// interrupted run) is dropped and reported through `*truncated_tail` (when non-null); any other
// damage (bad magic, a frame whose checksum or protobuf does not parse, a record index repeated
// or not below num_probes, a header version newer than this build) is kCorrupt / kUnsupported
// naming the file and the byte offset. kIo when the file cannot be read.
Result<Signature> read_signature(const std::string& path, bool* truncated_tail = nullptr);

// Writes a signature file frame by frame.
class SignatureWriter {
 public:
  ~SignatureWriter();
  SignatureWriter(const SignatureWriter&) = delete;
  SignatureWriter& operator=(const SignatureWriter&) = delete;
  // Creates (truncates) `path` and writes the header frame.
  static Result<std::unique_ptr<SignatureWriter>> create(const std::string& path,
                                                         const SignatureHeader& header);
  // Opens an existing file to append to it: reads it, drops a truncated tail, checks that its
  // header equals `header` in everything but tool_version (kInvalidArgument naming the first
  // field that differs: a different model, suite or setting must not be mixed into one file),
  // and returns the writer with *existing set to the records already there. A file of schema
  // version 1 is completed (its header kept) when `header` differs from it only in the schema
  // version, its version-2 fields being empty.
  static Result<std::unique_ptr<SignatureWriter>> append(const std::string& path,
                                                         const SignatureHeader& header,
                                                         std::vector<ProbeRecord>* existing);
  // Appends one record (compressed frame) and flushes it to the OS. Each index once: a record
  // whose index is already in the file is kInvalidArgument (a collection normally writes in
  // increasing order; one resumed after a failure fills the gaps it left, after later indexes).
  // kIo on write failure.
  Status write(const ProbeRecord& record);
  // fsyncs and closes. Called by the destructor when not called explicitly (errors then lost).
  Status close();

 private:
  SignatureWriter() = default;
  int fd_ = -1;
  std::unordered_set<uint32_t> written_;  // record indexes in the file
  std::string path_;
  uint32_t num_probes_ = 0;
  uint64_t end_ = 0;     // file size after the last complete frame
  bool broken_ = false;  // a failed write could not be rolled back; later writes are refused
};

// JSON view of a signature (for `prov signature show --json` and the tests); NaN becomes null.
nlohmann::json signature_to_json(const Signature& sig, bool include_records = true);

}  // namespace prov::probes
