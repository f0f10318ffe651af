// The one entry point for JSON that comes from outside: config.json, safetensors headers,
// tokenizer.json, HTTP request bodies, endpoint replies, DSSE envelopes and the Statements they
// sign, disclosure packages, labels files, suite lines.
//
// parse_json builds the document in one pass (nlohmann's SAX interface with a handler of ours), so
// its time is linear in the input: no callback that rescans a parent when a child ends. While it
// reads it enforces limits on size, nesting depth, the number of values, the size of each string
// and key, and duplicate keys (refused: two readers could see two documents under one signature),
// each detected when it happens, without rescanning. Failures are kCorrupt naming `what`, the
// limit or problem, and the byte offset.
//
// Thread safety: pure; concurrent calls are safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov {

struct JsonLimits {
  size_t max_bytes = size_t{64} << 20;         // the whole document
  int max_depth = 64;                          // nested objects and arrays
  size_t max_values = size_t{8} << 20;         // every value, container and key counted
  size_t max_string_bytes = size_t{16} << 20;  // one string or key
  bool allow_duplicate_keys = false;
};

// Why a document was refused, for callers that word their own messages.
struct JsonFailure {
  enum Kind { kNone, kSyntax, kTooLarge, kTooDeep, kTooManyValues, kStringTooLong, kDuplicateKey };
  Kind kind = kNone;
  size_t offset = 0;   // byte offset of a syntax error (where the parser stopped)
  std::string detail;  // the parser's words, or the limit
  std::string key;     // the duplicate key
};

// Parses `text` as one JSON document within `limits`. `what` names it in messages
// ("config.json", "request body"): "<what> is not valid JSON (at byte N): ...", "<what>: JSON
// refused: duplicate key \"k\"", "...: nested deeper than 64 levels". With `failure`, also says
// why in a structured form.
Result<nlohmann::json> parse_json(std::string_view text, const std::string& what,
                                  const JsonLimits& limits = {}, JsonFailure* failure = nullptr);

}  // namespace prov
