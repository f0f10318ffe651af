// Hugging Face tokenizer.json (BPE model) with the semantics of the `tokenizers` library.
//
// The pipeline, in the order the reference runs it:
//   1. added tokens whose "normalized" flag is false are cut out of the raw text
//      (leftmost-longest, then single_word / lstrip / rstrip);
//   2. every other piece is normalized, and added tokens with "normalized": true are cut out of
//      the normalized text;
//   3. the pre-tokenizer splits each remaining piece;
//   4. the BPE model turns each pre-token into ids;
//   5. with add_special, the post-processor adds its special tokens.
// Decoding maps ids to token strings (added tokens first), drops specials on request and runs
// the decoder chain (or joins with " " when there is none).
//
// Offsets are not tracked; the only offset-dependent rule the reference has (Metaspace
// prepend_scheme "first": prepend only to a piece that starts at offset 0 of the original text)
// is carried as a per-piece flag.

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <utility>

#include "model/config.h"
#include "model/tokenizer.h"

namespace prov::model {
namespace {

using nlohmann::json;

// Largest token id accepted from a file (bounds what a hostile file can make us allocate).
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// ---------------------------------------------------------------------------------------------
// UTF-8

// Length of the (valid) UTF-8 sequence starting with byte c.
size_t utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c < 0xE0) return 2;
  if (c < 0xF0) return 3;
  return 4;
}

// Decodes the code point at s[i] of a valid UTF-8 string and stores its length.
uint32_t decode_cp(const std::string& s, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  size_t n = std::min(utf8_len(p[0]), s.size() - i);
  *len = n;
  if (n == 1) return p[0];
  if (n == 2) return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  if (n == 3) return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
}

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

const char kReplacementChar[] = "\xEF\xBF\xBD";  // U+FFFD

// Replaces each maximal ill-formed subsequence by U+FFFD (the Unicode "substitution of maximal
// subparts" practice, which Rust's from_utf8_lossy and Python's "replace" follow).
std::string to_valid_utf8(const std::string& in, bool* changed) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  std::string out;
  size_t i = 0;
  *changed = false;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    if (need == 0) {
      out += kReplacementChar;
      *changed = true;
      ++i;
      continue;
    }
    size_t j = i + 1;
    size_t got = 0;
    while (got < need && j < n) {
      unsigned char d = p[j];
      unsigned char l = got == 0 ? lo : 0x80, h = got == 0 ? hi : 0xBF;
      if (d < l || d > h) break;
      ++j;
      ++got;
    }
    if (got == need) {
      out.append(in, i, j - i);
    } else {
      out += kReplacementChar;
      *changed = true;
    }
    i = j;
  }
  return out;
}

bool is_valid_utf8(const std::string& s) {
  bool changed = false;
  to_valid_utf8(s, &changed);
  return !changed;
}

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_whitespace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_numeric(uint32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

// A "word" character for single_word added tokens: letters, marks, numbers, connectors.
bool is_word_char(uint32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

bool is_mark(uint32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME;
}

// Start of the code point that ends at `end` (exclusive) of a valid UTF-8 string.
size_t prev_cp_start(const std::string& s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// ---------------------------------------------------------------------------------------------
// GPT-2 byte <-> char table

struct ByteTable {
  uint32_t byte_to_cp[256];
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
  std::string byte_to_utf8[256];
  ByteTable() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = direct ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      cp_to_byte[byte_to_cp[b]] = static_cast<uint8_t>(b);
      append_utf8(&byte_to_utf8[b], byte_to_cp[b]);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable table;
  return table;
}

std::string to_byte_level(const std::string& s) {
  const ByteTable& t = byte_table();
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) out += t.byte_to_utf8[c];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Regular expressions (PCRE2, UTF + UCP, JIT when available)

class Regex {
 public:
  ~Regex() {
    if (code_ != nullptr) pcre2_code_free(code_);
  }
  static Result<std::shared_ptr<const Regex>> compile(const std::string& pattern,
                                                      const std::string& what) {
    if (!is_valid_utf8(pattern)) return corrupt(what + ": regex is not valid UTF-8");
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      return corrupt(what + ": invalid regex at offset " + std::to_string(err_off) + ": " +
                     reinterpret_cast<const char*>(buf));
    }
    auto re = std::shared_ptr<Regex>(new Regex());
    re->code_ = code;
    re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return std::shared_ptr<const Regex>(re);
  }

  // Every match in s (valid UTF-8), left to right, non-overlapping. An empty match right after
  // the previous match is skipped; after an empty match the search moves on one code point.
  Status find_all(const std::string& s, std::vector<std::pair<size_t, size_t>>* out) const {
    out->clear();
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    if (md == nullptr) return internal_error("regex: out of memory");
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    const size_t n = s.size();
    size_t start = 0;
    size_t last_end = std::string::npos;
    Status status;
    while (start <= n) {
      int rc = pcre2_match(code_, subject, n, start, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        rc = pcre2_match(code_, subject, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(rc, buf, sizeof(buf));
        status = invalid_argument(std::string("regex matching failed: ") +
                                  reinterpret_cast<const char*>(buf));
        break;
      }
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t b = ov[0], e = ov[1];
      if (e < b) {  // \K games; treat as empty at e
        b = e;
      }
      if (b == e) {
        if (last_end != e) out->emplace_back(b, e);
        last_end = e;
        if (e >= n) break;
        size_t len = 0;
        decode_cp(s, e, &len);
        start = e + len;
      } else {
        out->emplace_back(b, e);
        last_end = e;
        start = e;
      }
    }
    pcre2_match_data_free(md);
    return status;
  }

 private:
  Regex() = default;
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

// A String or Regex pattern ({"String": "..."} / {"Regex": "..."}).
struct Pattern {
  std::string literal;
  std::shared_ptr<const Regex> regex;  // null for a literal

  Status find_all(const std::string& s, std::vector<std::pair<size_t, size_t>>* out) const {
    if (regex) return regex->find_all(s, out);
    out->clear();
    if (literal.empty()) return Status::ok();
    size_t pos = 0;
    while ((pos = s.find(literal, pos)) != std::string::npos) {
      out->emplace_back(pos, pos + literal.size());
      pos += literal.size();
    }
    return Status::ok();
  }

  Status replace_all(const std::string& s, const std::string& content, std::string* out) const {
    std::vector<std::pair<size_t, size_t>> m;
    PROV_RETURN_IF_ERROR(find_all(s, &m));
    out->clear();
    size_t prev = 0;
    for (auto& [b, e] : m) {
      out->append(s, prev, b - prev);
      *out += content;
      prev = e;
    }
    out->append(s, prev, std::string::npos);
    return Status::ok();
  }
};

// ---------------------------------------------------------------------------------------------
// JSON access with messages naming the field

class Json {
 public:
  static Status string_field(const json& j, const char* key, const std::string& where,
                             std::string* out, bool required) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) return corrupt(where + ": missing \"" + key + "\"");
      return Status::ok();
    }
    if (!it->is_string()) return corrupt(where + ": \"" + key + "\" is not a string");
    *out = it->get<std::string>();
    return Status::ok();
  }
  static Status opt_string_field(const json& j, const char* key, const std::string& where,
                                 std::optional<std::string>* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_string()) return corrupt(where + ": \"" + key + "\" is not a string");
    *out = it->get<std::string>();
    return Status::ok();
  }
  static Status bool_field(const json& j, const char* key, const std::string& where, bool* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_boolean()) return corrupt(where + ": \"" + key + "\" is not a boolean");
    *out = it->get<bool>();
    return Status::ok();
  }
  static Status int_field(const json& j, const char* key, const std::string& where, int64_t* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_number_integer()) return corrupt(where + ": \"" + key + "\" is not an integer");
    *out = it->get<int64_t>();
    return Status::ok();
  }
  static Status type_of(const json& j, const std::string& where, std::string* type) {
    if (!j.is_object()) return corrupt(where + ": expected an object");
    return string_field(j, "type", where, type, true);
  }
  // {"String": s} or {"Regex": r}
  static Status pattern(const json& j, const std::string& where, Pattern* out) {
    auto it = j.find("pattern");
    if (it == j.end() || !it->is_object()) return corrupt(where + ": missing \"pattern\" object");
    if (it->contains("String") && (*it)["String"].is_string()) {
      out->literal = (*it)["String"].get<std::string>();
      return Status::ok();
    }
    if (it->contains("Regex") && (*it)["Regex"].is_string()) {
      auto re = Regex::compile((*it)["Regex"].get<std::string>(), where);
      if (!re.is_ok()) return re.status();
      out->regex = std::move(re).value();
      return Status::ok();
    }
    return corrupt(where + ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
  }
  // A single-character string field (replacement, content).
  static Status char_field(const json& j, const char* key, const std::string& where,
                           std::string* out, bool required) {
    std::string s;
    PROV_RETURN_IF_ERROR(string_field(j, key, where, &s, required));
    if (s.empty()) {
      if (required) return corrupt(where + ": \"" + key + "\" is empty");
      return Status::ok();
    }
    size_t len = 0;
    if (!is_valid_utf8(s)) return corrupt(where + ": \"" + key + "\" is not valid UTF-8");
    decode_cp(s, 0, &len);
    if (len != s.size()) return corrupt(where + ": \"" + key + "\" must be a single character");
    *out = s;
    return Status::ok();
  }
};

// ---------------------------------------------------------------------------------------------
// Normalizers

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual Status normalize(std::string* s) const = 0;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  Status normalize(std::string* s) const override {
    if (s->empty()) return Status::ok();
    utf8proc_uint8_t* dst = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s->data()),
                                      static_cast<utf8proc_ssize_t>(s->size()), &dst,
                                      static_cast<utf8proc_option_t>(options_));
    if (n < 0) {
      return invalid_argument(std::string("Unicode normalization failed: ") + utf8proc_errmsg(n));
    }
    s->assign(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
    std::free(dst);
    return Status::ok();
  }

 private:
  int options_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  Status normalize(std::string* s) const override {
    std::string out;
    out.reserve(s->size());
    for (size_t i = 0; i < s->size();) {
      size_t len = 0;
      uint32_t cp = decode_cp(*s, i, &len);
      i += len;
      if (cp == 0x130) {  // İ lowercases to i + combining dot above (full case mapping)
        out += "i\xCC\x87";
        continue;
      }
      append_utf8(&out, static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
    *s = std::move(out);
    return Status::ok();
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  Status normalize(std::string* s) const override {
    size_t b = 0, e = s->size();
    if (left_) {
      while (b < e) {
        size_t len = 0;
        if (!is_whitespace(decode_cp(*s, b, &len))) break;
        b += len;
      }
    }
    if (right_) {
      while (e > b) {
        size_t st = prev_cp_start(*s, e);
        size_t len = 0;
        if (!is_whitespace(decode_cp(*s, st, &len))) break;
        e = st;
      }
    }
    *s = s->substr(b, e - b);
    return Status::ok();
  }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer : public Normalizer {
 public:
  Status normalize(std::string* s) const override {
    std::string out;
    for (size_t i = 0; i < s->size();) {
      size_t len = 0;
      uint32_t cp = decode_cp(*s, i, &len);
      if (!is_mark(cp)) out.append(*s, i, len);
      i += len;
    }
    *s = std::move(out);
    return Status::ok();
  }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prepend_(std::move(p)) {}
  Status normalize(std::string* s) const override {
    if (!s->empty()) s->insert(0, prepend_);
    return Status::ok();
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern p, std::string content)
      : pattern_(std::move(p)), content_(std::move(content)) {}
  Status normalize(std::string* s) const override {
    std::string out;
    PROV_RETURN_IF_ERROR(pattern_.replace_all(*s, content_, &out));
    *s = std::move(out);
    return Status::ok();
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class ByteLevelNormalizer : public Normalizer {
 public:
  Status normalize(std::string* s) const override {
    *s = to_byte_level(*s);
    return Status::ok();
  }
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> items)
      : items_(std::move(items)) {}
  Status normalize(std::string* s) const override {
    for (const auto& n : items_) PROV_RETURN_IF_ERROR(n->normalize(s));
    return Status::ok();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

Result<std::unique_ptr<Normalizer>> parse_normalizer(const json& j, const std::string& where,
                                                     int depth);

Result<std::unique_ptr<Normalizer>> parse_normalizer(const json& j, const std::string& where,
                                                     int depth) {
  if (depth > 16) return corrupt(where + ": normalizers nested too deeply");
  std::string type;
  PROV_RETURN_IF_ERROR(Json::type_of(j, where, &type));
  const std::string here = where + " (" + type + ")";
  if (type == "NFC")
    return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (type == "NFD")
    return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
  if (type == "NFKC") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  }
  if (type == "NFKD") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  }
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
  if (type == "StripAccents") return std::unique_ptr<Normalizer>(new StripAccentsNormalizer());
  if (type == "ByteLevel") return std::unique_ptr<Normalizer>(new ByteLevelNormalizer());
  if (type == "Strip") {
    bool left = true, right = true;
    PROV_RETURN_IF_ERROR(Json::bool_field(j, "strip_left", here, &left));
    PROV_RETURN_IF_ERROR(Json::bool_field(j, "strip_right", here, &right));
    return std::unique_ptr<Normalizer>(new StripNormalizer(left, right));
  }
  if (type == "Prepend") {
    std::string p;
    PROV_RETURN_IF_ERROR(Json::string_field(j, "prepend", here, &p, true));
    if (!is_valid_utf8(p)) return corrupt(here + ": \"prepend\" is not valid UTF-8");
    return std::unique_ptr<Normalizer>(new PrependNormalizer(p));
  }
  if (type == "Replace") {
    Pattern p;
    PROV_RETURN_IF_ERROR(Json::pattern(j, here, &p));
    std::string content;
    PROV_RETURN_IF_ERROR(Json::string_field(j, "content", here, &content, true));
    return std::unique_ptr<Normalizer>(new ReplaceNormalizer(std::move(p), content));
  }
  if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) return corrupt(here + ": missing \"normalizers\" array");
    std::vector<std::unique_ptr<Normalizer>> items;
    for (size_t i = 0; i < it->size(); ++i) {
      PROV_ASSIGN_OR_RETURN(
          auto n, parse_normalizer((*it)[i], here + "[" + std::to_string(i) + "]", depth + 1));
      items.push_back(std::move(n));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(items)));
  }
  return unsupported(where + ": normalizer type \"" + type +
                     "\" is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                     "StripAccents, Prepend, Replace, ByteLevel, Sequence)");
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers

struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original text
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Cuts `piece` at `matches` (sorted, non-overlapping) the way NormalizedString::split does and
// appends the non-empty results to `out`.
void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches,
                 SplitBehavior behavior, bool invert, std::vector<Piece>* out) {
  struct Seg {
    size_t b, e;
    bool is_match;
  };
  const std::string& s = piece.text;
  std::vector<Seg> segs;
  if (s.empty()) {
    segs.push_back({0, 0, false});
  } else {
    size_t prev = 0;
    for (auto& [b, e] : matches) {
      if (prev != b) segs.push_back({prev, b, false});
      segs.push_back({b, e, true});
      prev = e;
    }
    if (prev != s.size()) segs.push_back({prev, s.size(), false});
  }
  if (invert) {
    for (auto& seg : segs) seg.is_match = !seg.is_match;
  }
  std::vector<Seg> kept;  // is_match now means "remove"
  switch (behavior) {
    case SplitBehavior::kRemoved:
      kept = segs;
      break;
    case SplitBehavior::kIsolated:
      for (auto seg : segs) kept.push_back({seg.b, seg.e, false});
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (auto seg : segs) {
        if (seg.is_match && !prev_match && !kept.empty()) {
          kept.back().e = seg.e;
        } else {
          kept.push_back({seg.b, seg.e, false});
        }
        prev_match = seg.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool prev_match = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->is_match && !prev_match && !kept.empty()) {
          kept.back().b = it->b;
        } else {
          kept.push_back({it->b, it->e, false});
        }
        prev_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool prev_match = false;
      for (auto seg : segs) {
        if (seg.is_match == prev_match && !kept.empty()) {
          kept.back().e = seg.e;
        } else {
          kept.push_back({seg.b, seg.e, false});
        }
        prev_match = seg.is_match;
      }
      break;
    }
  }
  for (const auto& seg : kept) {
    if (seg.is_match || seg.b == seg.e) continue;
    out->push_back({s.substr(seg.b, seg.e - seg.b), piece.at_start && seg.b == 0});
  }
}

// Matches of single characters satisfying `pred`.
template <typename Pred>
std::vector<std::pair<size_t, size_t>> char_matches(const std::string& s, Pred pred) {
  std::vector<std::pair<size_t, size_t>> m;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    uint32_t cp = decode_cp(s, i, &len);
    if (pred(cp)) m.emplace_back(i, i + len);
    i += len;
  }
  return m;
}

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their pre-tokens.
  virtual Status apply(std::vector<Piece>* pieces) const = 0;
};

const char kGpt2Regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::shared_ptr<const Regex> re)
      : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
  Status apply(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    std::vector<std::pair<size_t, size_t>> m;
    for (auto& p : *pieces) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, " ");
      size_t first = out.size();
      if (re_) {
        PROV_RETURN_IF_ERROR(re_->find_all(p.text, &m));
        split_piece(p, m, SplitBehavior::kIsolated, false, &out);
      } else if (!p.text.empty()) {
        out.push_back(p);
      }
      for (size_t i = first; i < out.size(); ++i) out[i].text = to_byte_level(out[i].text);
    }
    *pieces = std::move(out);
    return Status::ok();
  }

 private:
  bool add_prefix_space_;
  std::shared_ptr<const Regex> re_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern p, SplitBehavior b, bool invert)
      : pattern_(std::move(p)), behavior_(b), invert_(invert) {}
  Status apply(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    std::vector<std::pair<size_t, size_t>> m;
    for (const auto& p : *pieces) {
      PROV_RETURN_IF_ERROR(pattern_.find_all(p.text, &m));
      split_piece(p, m, behavior_, invert_, &out);
    }
    *pieces = std::move(out);
    return Status::ok();
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : rep_(std::move(replacement)), scheme_(scheme), split_(split) {}
  Status apply(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    for (auto& p : *pieces) {
      std::string t;
      for (char c : p.text) {
        if (c == ' ') {
          t += rep_;
        } else {
          t.push_back(c);
        }
      }
      bool starts = t.compare(0, rep_.size(), rep_) == 0;
      if (!starts &&
          (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start))) {
        t.insert(0, rep_);
      }
      Piece np{std::move(t), p.at_start};
      if (split_) {
        std::vector<std::pair<size_t, size_t>> m;
        size_t pos = 0;
        while ((pos = np.text.find(rep_, pos)) != std::string::npos) {
          m.emplace_back(pos, pos + rep_.size());
          pos += rep_.size();
        }
        split_piece(np, m, SplitBehavior::kMergedWithNext, false, &out);
      } else if (!np.text.empty()) {
        out.push_back(std::move(np));
      }
    }
    *pieces = std::move(out);
    return Status::ok();
  }

 private:
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

class CharSplitPreTokenizer : public PreTokenizer {
 public:
  CharSplitPreTokenizer(bool (*pred)(uint32_t), SplitBehavior b) : pred_(pred), behavior_(b) {}
  Status apply(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    for (const auto& p : *pieces) {
      split_piece(p, char_matches(p.text, pred_), behavior_, false, &out);
    }
    *pieces = std::move(out);
    return Status::ok();
  }

 private:
  bool (*pred_)(uint32_t);
  SplitBehavior behavior_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> items)
      : items_(std::move(items)) {}
  Status apply(std::vector<Piece>* pieces) const override {
    for (const auto& p : items_) PROV_RETURN_IF_ERROR(p->apply(pieces));
    return Status::ok();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

Result<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const json& j, const std::string& where,
                                                          int depth) {
  if (depth > 16) return corrupt(where + ": pre-tokenizers nested too deeply");
  std::string type;
  PROV_RETURN_IF_ERROR(Json::type_of(j, where, &type));
  const std::string here = where + " (" + type + ")";
  if (type == "ByteLevel") {
    bool add_prefix_space = true, use_regex = true;
    PROV_RETURN_IF_ERROR(Json::bool_field(j, "add_prefix_space", here, &add_prefix_space));
    PROV_RETURN_IF_ERROR(Json::bool_field(j, "use_regex", here, &use_regex));
    std::shared_ptr<const Regex> re;
    if (use_regex) {
      PROV_ASSIGN_OR_RETURN(re, Regex::compile(kGpt2Regex, here));
    }
    return std::unique_ptr<PreTokenizer>(new ByteLevelPreTokenizer(add_prefix_space, re));
  }
  if (type == "Split") {
    Pattern p;
    PROV_RETURN_IF_ERROR(Json::pattern(j, here, &p));
    std::string behavior;
    PROV_RETURN_IF_ERROR(Json::string_field(j, "behavior", here, &behavior, true));
    SplitBehavior b;
    if (behavior == "Removed") {
      b = SplitBehavior::kRemoved;
    } else if (behavior == "Isolated") {
      b = SplitBehavior::kIsolated;
    } else if (behavior == "MergedWithPrevious") {
      b = SplitBehavior::kMergedWithPrevious;
    } else if (behavior == "MergedWithNext") {
      b = SplitBehavior::kMergedWithNext;
    } else if (behavior == "Contiguous") {
      b = SplitBehavior::kContiguous;
    } else {
      return corrupt(here + ": unknown split behavior \"" + behavior + "\"");
    }
    bool invert = false;
    PROV_RETURN_IF_ERROR(Json::bool_field(j, "invert", here, &invert));
    return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(std::move(p), b, invert));
  }
  if (type == "Metaspace") {
    std::string rep = "\xE2\x96\x81";
    PROV_RETURN_IF_ERROR(Json::char_field(j, "replacement", here, &rep, false));
    PrependScheme scheme = PrependScheme::kAlways;
    auto ps = j.find("prepend_scheme");
    if (ps != j.end() && !ps->is_null()) {
      if (!ps->is_string()) return corrupt(here + ": \"prepend_scheme\" is not a string");
      std::string s = ps->get<std::string>();
      if (s == "always") {
        scheme = PrependScheme::kAlways;
      } else if (s == "first") {
        scheme = PrependScheme::kFirst;
      } else if (s == "never") {
        scheme = PrependScheme::kNever;
      } else {
        return corrupt(here + ": unknown prepend_scheme \"" + s + "\"");
      }
    } else {
      bool add_prefix_space = true;
      PROV_RETURN_IF_ERROR(Json::bool_field(j, "add_prefix_space", here, &add_prefix_space));
      scheme = add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    bool split = true;
    PROV_RETURN_IF_ERROR(Json::bool_field(j, "split", here, &split));
    return std::unique_ptr<PreTokenizer>(new MetaspacePreTokenizer(rep, scheme, split));
  }
  if (type == "Digits") {
    bool individual = false;
    PROV_RETURN_IF_ERROR(Json::bool_field(j, "individual_digits", here, &individual));
    return std::unique_ptr<PreTokenizer>(new CharSplitPreTokenizer(
        is_numeric, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous));
  }
  if (type == "WhitespaceSplit") {
    return std::unique_ptr<PreTokenizer>(
        new CharSplitPreTokenizer(is_whitespace, SplitBehavior::kRemoved));
  }
  if (type == "Whitespace") {
    Pattern p;
    PROV_ASSIGN_OR_RETURN(p.regex, Regex::compile("\\w+|[^\\w\\s]+", here));
    return std::unique_ptr<PreTokenizer>(
        new SplitPreTokenizer(std::move(p), SplitBehavior::kRemoved, /*invert=*/true));
  }
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) {
      return corrupt(here + ": missing \"pretokenizers\" array");
    }
    std::vector<std::unique_ptr<PreTokenizer>> items;
    for (size_t i = 0; i < it->size(); ++i) {
      PROV_ASSIGN_OR_RETURN(
          auto p, parse_pre_tokenizer((*it)[i], here + "[" + std::to_string(i) + "]", depth + 1));
      items.push_back(std::move(p));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(items)));
  }
  return unsupported(where + ": pre-tokenizer type \"" + type +
                     "\" is not supported (supported: ByteLevel, Split, Metaspace, Digits, "
                     "Whitespace, WhitespaceSplit, Sequence)");
}

// ---------------------------------------------------------------------------------------------
// Decoders (operate on the list of token strings, like the reference's decode_chain)

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual Status decode_chain(std::vector<std::string>* tokens) const = 0;
};

class ByteLevelDecoder : public Decoder {
 public:
  Status decode_chain(std::vector<std::string>* tokens) const override {
    const ByteTable& t = byte_table();
    std::string bytes;
    for (const auto& tok : *tokens) {
      std::string mapped;
      bool ok = true;
      for (size_t i = 0; i < tok.size();) {
        size_t len = 0;
        uint32_t cp = decode_cp(tok, i, &len);
        i += len;
        auto it = t.cp_to_byte.find(cp);
        if (it == t.cp_to_byte.end()) {
          ok = false;
          break;
        }
        mapped.push_back(static_cast<char>(it->second));
      }
      bytes += ok ? mapped : tok;
    }
    bool changed = false;
    tokens->assign(1, to_valid_utf8(bytes, &changed));
    return Status::ok();
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, bool strip_first)
      : rep_(std::move(rep)), strip_first_(strip_first) {}
  Status decode_chain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& tok = (*tokens)[i];
      std::string out;
      size_t pos = 0;
      while (pos < tok.size()) {
        if (tok.compare(pos, rep_.size(), rep_) == 0) {
          if (!(i == 0 && strip_first_)) out.push_back(' ');
          pos += rep_.size();
        } else {
          out.push_back(tok[pos++]);
        }
      }
      tok = std::move(out);
    }
    return Status::ok();
  }

 private:
  std::string rep_;
  bool strip_first_;
};

// "<0xNN>" as the reference parses it (u8::from_str_radix on the two characters).
std::optional<uint8_t> parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = t[3] == '+' ? 0 : hex(t[3]);
  int lo = hex(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(t[3] == '+' ? lo : hi * 16 + lo);
}

class ByteFallbackDecoder : public Decoder {
 public:
  Status decode_chain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&]() {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.push_back(kReplacementChar);
      }
      pending.clear();
    };
    for (auto& tok : *tokens) {
      auto b = parse_byte_token(tok);
      if (b) {
        pending.push_back(static_cast<char>(*b));
      } else {
        flush();
        out.push_back(std::move(tok));
      }
    }
    flush();
    *tokens = std::move(out);
    return Status::ok();
  }
};

class FuseDecoder : public Decoder {
 public:
  Status decode_chain(std::vector<std::string>* tokens) const override {
    std::string all;
    for (const auto& t : *tokens) all += t;
    tokens->assign(1, std::move(all));
    return Status::ok();
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, uint64_t start, uint64_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  Status decode_chain(std::vector<std::string>* tokens) const override {
    for (auto& tok : *tokens) {
      std::vector<std::pair<size_t, size_t>> chars;  // (offset, len)
      for (size_t i = 0; i < tok.size();) {
        size_t len = 0;
        decode_cp(tok, i, &len);
        chars.emplace_back(i, len);
        i += len;
      }
      auto is_content = [&](size_t k) {
        return tok.compare(chars[k].first, chars[k].second, content_) == 0;
      };
      size_t start_cut = 0;
      for (size_t k = 0; k < chars.size() && k < start_; ++k) {
        if (!is_content(k)) break;
        start_cut = k + 1;
      }
      size_t stop_cut = chars.size();
      for (uint64_t k = 0; k < stop_ && k < chars.size(); ++k) {
        size_t index = chars.size() - k - 1;
        if (!is_content(index)) break;
        stop_cut = index;
      }
      if (stop_cut <= start_cut) {
        tok.clear();
      } else {
        size_t b = start_cut < chars.size() ? chars[start_cut].first : tok.size();
        size_t e = stop_cut < chars.size() ? chars[stop_cut].first : tok.size();
        tok = tok.substr(b, e - b);
      }
    }
    return Status::ok();
  }

 private:
  std::string content_;
  uint64_t start_, stop_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern p, std::string content)
      : pattern_(std::move(p)), content_(std::move(content)) {}
  Status decode_chain(std::vector<std::string>* tokens) const override {
    std::string out;
    for (auto& tok : *tokens) {
      PROV_RETURN_IF_ERROR(pattern_.replace_all(tok, content_, &out));
      tok = out;
    }
    return Status::ok();
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class BpeSuffixDecoder : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  Status decode_chain(std::vector<std::string>* tokens) const override {
    Pattern p;
    p.literal = suffix_;
    std::string out;
    for (size_t i = 0; i < tokens->size(); ++i) {
      PROV_RETURN_IF_ERROR(p.replace_all((*tokens)[i], i + 1 == tokens->size() ? "" : " ", &out));
      (*tokens)[i] = out;
    }
    return Status::ok();
  }

 private:
  std::string suffix_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> items)
      : items_(std::move(items)) {}
  Status decode_chain(std::vector<std::string>* tokens) const override {
    for (const auto& d : items_) PROV_RETURN_IF_ERROR(d->decode_chain(tokens));
    return Status::ok();
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

Result<std::unique_ptr<Decoder>> parse_decoder(const json& j, const std::string& where, int depth) {
  if (depth > 16) return corrupt(where + ": decoders nested too deeply");
  std::string type;
  PROV_RETURN_IF_ERROR(Json::type_of(j, where, &type));
  const std::string here = where + " (" + type + ")";
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevelDecoder());
  if (type == "ByteFallback") return std::unique_ptr<Decoder>(new ByteFallbackDecoder());
  if (type == "Fuse") return std::unique_ptr<Decoder>(new FuseDecoder());
  if (type == "Metaspace") {
    std::string rep = "\xE2\x96\x81";
    PROV_RETURN_IF_ERROR(Json::char_field(j, "replacement", here, &rep, false));
    bool strip_first = true;
    auto ps = j.find("prepend_scheme");
    if (ps != j.end() && ps->is_string()) {
      strip_first = ps->get<std::string>() != "never";
    } else {
      PROV_RETURN_IF_ERROR(Json::bool_field(j, "add_prefix_space", here, &strip_first));
    }
    return std::unique_ptr<Decoder>(new MetaspaceDecoder(rep, strip_first));
  }
  if (type == "Strip") {
    std::string content;
    PROV_RETURN_IF_ERROR(Json::char_field(j, "content", here, &content, true));
    int64_t start = 0, stop = 0;
    PROV_RETURN_IF_ERROR(Json::int_field(j, "start", here, &start));
    PROV_RETURN_IF_ERROR(Json::int_field(j, "stop", here, &stop));
    if (start < 0 || stop < 0) return corrupt(here + ": negative start/stop");
    return std::unique_ptr<Decoder>(
        new StripDecoder(content, static_cast<uint64_t>(start), static_cast<uint64_t>(stop)));
  }
  if (type == "Replace") {
    Pattern p;
    PROV_RETURN_IF_ERROR(Json::pattern(j, here, &p));
    std::string content;
    PROV_RETURN_IF_ERROR(Json::string_field(j, "content", here, &content, true));
    return std::unique_ptr<Decoder>(new ReplaceDecoder(std::move(p), content));
  }
  if (type == "BPEDecoder") {
    std::string suffix = "</w>";
    PROV_RETURN_IF_ERROR(Json::string_field(j, "suffix", here, &suffix, false));
    return std::unique_ptr<Decoder>(new BpeSuffixDecoder(suffix));
  }
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) return corrupt(here + ": missing \"decoders\" array");
    std::vector<std::unique_ptr<Decoder>> items;
    for (size_t i = 0; i < it->size(); ++i) {
      PROV_ASSIGN_OR_RETURN(
          auto d, parse_decoder((*it)[i], here + "[" + std::to_string(i) + "]", depth + 1));
      items.push_back(std::move(d));
    }
    return std::unique_ptr<Decoder>(new SequenceDecoder(std::move(items)));
  }
  return unsupported(where + ": decoder type \"" + type +
                     "\" is not supported (supported: ByteLevel, Metaspace, ByteFallback, Fuse, "
                     "Strip, Replace, BPEDecoder, Sequence)");
}

// ---------------------------------------------------------------------------------------------
// Post-processors (single sequences only)

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>* ids) const = 0;
  // The special token placed before the sequence, if any (used to guess BOS).
  virtual std::optional<int32_t> leading_special() const { return std::nullopt; }
  // Every id this processor can add.
  virtual void collect_ids(std::vector<int32_t>* ids) const = 0;
};

// A fixed list of ids before and after the sequence (TemplateProcessing, Roberta, Bert).
class WrapProcessor : public PostProcessor {
 public:
  WrapProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>* ids) const override {
    ids->insert(ids->begin(), before_.begin(), before_.end());
    ids->insert(ids->end(), after_.begin(), after_.end());
  }
  std::optional<int32_t> leading_special() const override {
    if (before_.empty()) return std::nullopt;
    return before_.front();
  }
  void collect_ids(std::vector<int32_t>* ids) const override {
    ids->insert(ids->end(), before_.begin(), before_.end());
    ids->insert(ids->end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_, after_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> items)
      : items_(std::move(items)) {}
  void process(std::vector<int32_t>* ids) const override {
    for (const auto& p : items_) p->process(ids);
  }
  std::optional<int32_t> leading_special() const override {
    for (const auto& p : items_) {
      if (auto id = p->leading_special()) return id;
    }
    return std::nullopt;
  }
  void collect_ids(std::vector<int32_t>* ids) const override {
    for (const auto& p : items_) p->collect_ids(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

Status id_in_range(int64_t id, const std::string& where) {
  if (id < 0 || id > kMaxTokenId) {
    return corrupt(where + ": token id " + std::to_string(id) + " is out of range [0, " +
                   std::to_string(kMaxTokenId) + "]");
  }
  return Status::ok();
}

Result<std::unique_ptr<PostProcessor>> parse_post_processor(const json& j, const std::string& where,
                                                            int depth) {
  if (depth > 16) return corrupt(where + ": post-processors nested too deeply");
  std::string type;
  PROV_RETURN_IF_ERROR(Json::type_of(j, where, &type));
  const std::string here = where + " (" + type + ")";
  if (type == "ByteLevel") {
    return std::unique_ptr<PostProcessor>(new WrapProcessor({}, {}));
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto pair_id = [&](const char* key, int32_t* id) -> Status {
      auto it = j.find(key);
      if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
        return corrupt(here + ": \"" + key + "\" must be [token, id]");
      }
      int64_t v = (*it)[1].get<int64_t>();
      PROV_RETURN_IF_ERROR(id_in_range(v, here));
      *id = static_cast<int32_t>(v);
      return Status::ok();
    };
    int32_t cls = 0, sep = 0;
    PROV_RETURN_IF_ERROR(pair_id("cls", &cls));
    PROV_RETURN_IF_ERROR(pair_id("sep", &sep));
    return std::unique_ptr<PostProcessor>(new WrapProcessor({cls}, {sep}));
  }
  if (type == "TemplateProcessing") {
    auto single = j.find("single");
    if (single == j.end() || !single->is_array()) {
      return corrupt(here + ": missing \"single\" array");
    }
    auto specials = j.find("special_tokens");
    std::vector<int32_t> before, after;
    bool seen_sequence = false;
    for (const auto& item : *single) {
      if (!item.is_object()) return corrupt(here + ": template item is not an object");
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      auto st = item.find("SpecialToken");
      if (st == item.end() || !st->is_object() || !st->contains("id") || !(*st)["id"].is_string()) {
        return corrupt(here + ": template item is neither Sequence nor SpecialToken");
      }
      std::string name = (*st)["id"].get<std::string>();
      if (specials == j.end() || !specials->is_object() || !specials->contains(name)) {
        return corrupt(here + ": special token \"" + name + "\" is not in \"special_tokens\"");
      }
      const json& spec = (*specials)[name];
      auto ids = spec.find("ids");
      if (!spec.is_object() || ids == spec.end() || !ids->is_array()) {
        return corrupt(here + ": special token \"" + name + "\" has no \"ids\" array");
      }
      for (const auto& v : *ids) {
        if (!v.is_number_integer()) return corrupt(here + ": special token id is not an integer");
        PROV_RETURN_IF_ERROR(id_in_range(v.get<int64_t>(), here));
        (seen_sequence ? after : before).push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
    }
    return std::unique_ptr<PostProcessor>(new WrapProcessor(before, after));
  }
  if (type == "Sequence") {
    auto it = j.find("processors");
    if (it == j.end() || !it->is_array()) return corrupt(here + ": missing \"processors\" array");
    std::vector<std::unique_ptr<PostProcessor>> items;
    for (size_t i = 0; i < it->size(); ++i) {
      PROV_ASSIGN_OR_RETURN(
          auto p, parse_post_processor((*it)[i], here + "[" + std::to_string(i) + "]", depth + 1));
      items.push_back(std::move(p));
    }
    return std::unique_ptr<PostProcessor>(new SequenceProcessor(std::move(items)));
  }
  return unsupported(where + ": post-processor type \"" + type +
                     "\" is not supported (supported: TemplateProcessing, ByteLevel, "
                     "RobertaProcessing, BertProcessing, Sequence)");
}

// ---------------------------------------------------------------------------------------------
// BPE model

class BpeModel {
 public:
  std::unordered_map<std::string, int32_t> vocab;
  std::unordered_map<int32_t, std::string> vocab_r;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (a,b) -> (rank, new id)
  std::optional<std::string> unk_token;
  std::optional<std::string> prefix, suffix;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  int32_t byte_ids[256];

  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  void init_byte_ids() {
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      std::string t = "<0x";
      t.push_back(hex[b >> 4]);
      t.push_back(hex[b & 15]);
      t.push_back('>');
      auto it = vocab.find(t);
      byte_ids[b] = it == vocab.end() ? -1 : it->second;
    }
  }

  Status tokenize(const std::string& word, std::vector<int32_t>* out) const {
    if (word.empty()) return Status::ok();
    if (ignore_merges) {
      auto it = vocab.find(word);
      if (it != vocab.end()) {
        out->push_back(it->second);
        return Status::ok();
      }
    }
    const bool cacheable = word.size() < kMaxCachedWordBytes;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      auto it = cache_.find(word);
      if (it != cache_.end()) {
        out->insert(out->end(), it->second.begin(), it->second.end());
        return Status::ok();
      }
    }
    std::vector<int32_t> ids;
    PROV_RETURN_IF_ERROR(merge_word(word, &ids));
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
      cache_.emplace(word, ids);
    }
    out->insert(out->end(), ids.begin(), ids.end());
    return Status::ok();
  }

 private:
  static constexpr size_t kMaxCachedWordBytes = 256;
  static constexpr size_t kMaxCacheEntries = 20000;

  Status unk_id(int32_t* id) const {
    auto it = vocab.find(*unk_token);
    if (it == vocab.end()) {
      return corrupt("tokenizer: unk_token \"" + *unk_token + "\" is not in the vocabulary");
    }
    *id = it->second;
    return Status::ok();
  }

  Status merge_word(const std::string& w, std::vector<int32_t>* out) const {
    std::vector<int32_t> syms;
    std::optional<int32_t> pending_unk;
    std::string s;
    for (size_t i = 0; i < w.size();) {
      size_t len = 0;
      decode_cp(w, i, &len);
      const bool is_first = i == 0;
      const bool is_last = i + len >= w.size();
      s.clear();
      if (!is_first && prefix) s += *prefix;
      s.append(w, i, len);
      if (is_last && suffix) s += *suffix;
      i += len;
      auto it = vocab.find(s);
      if (it != vocab.end()) {
        if (pending_unk) {
          syms.push_back(*pending_unk);
          pending_unk.reset();
        }
        syms.push_back(it->second);
        continue;
      }
      if (byte_fallback) {
        bool all = true;
        for (unsigned char c : s) all = all && byte_ids[c] >= 0;
        if (all) {
          for (unsigned char c : s) syms.push_back(byte_ids[c]);
          continue;
        }
      }
      if (unk_token) {
        int32_t uid = 0;
        if (pending_unk && fuse_unk) continue;  // extends the pending unknown run
        if (pending_unk) syms.push_back(*pending_unk);
        PROV_RETURN_IF_ERROR(unk_id(&uid));
        pending_unk = uid;
      }
      // Without unk_token the character is dropped, as the reference does.
    }
    if (pending_unk) syms.push_back(*pending_unk);
    merge_all(&syms);
    *out = std::move(syms);
    return Status::ok();
  }

  // Applies merges lowest rank first (leftmost on ties) until none applies.
  void merge_all(std::vector<int32_t>* ids) const {
    const size_t n = ids->size();
    if (n < 2 || merges.empty()) return;
    struct Sym {
      int32_t id;
      int64_t prev, next;
      bool alive;
    };
    std::vector<Sym> sym(n);
    for (size_t i = 0; i < n; ++i) {
      sym[i] = {(*ids)[i], static_cast<int64_t>(i) - 1,
                i + 1 < n ? static_cast<int64_t>(i + 1) : -1, true};
    }
    struct Cand {
      int32_t rank;
      int64_t pos;
      int32_t new_id;
      bool operator<(const Cand& o) const {  // priority_queue pops the largest
        if (rank != o.rank) return rank > o.rank;
        return pos > o.pos;
      }
    };
    std::priority_queue<Cand> queue;
    for (size_t i = 0; i + 1 < n; ++i) {
      auto it = merges.find(key(sym[i].id, sym[i + 1].id));
      if (it != merges.end()) {
        queue.push({it->second.first, static_cast<int64_t>(i), it->second.second});
      }
    }
    while (!queue.empty()) {
      Cand top = queue.top();
      queue.pop();
      Sym& left = sym[static_cast<size_t>(top.pos)];
      if (!left.alive || left.next < 0) continue;
      Sym& right = sym[static_cast<size_t>(left.next)];
      auto it = merges.find(key(left.id, right.id));
      if (it == merges.end() || it->second.second != top.new_id) continue;  // stale entry
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = top.pos;
      if (left.prev >= 0) {
        auto p = merges.find(key(sym[static_cast<size_t>(left.prev)].id, left.id));
        if (p != merges.end()) queue.push({p->second.first, left.prev, p->second.second});
      }
      if (left.next >= 0) {
        auto p = merges.find(key(left.id, sym[static_cast<size_t>(left.next)].id));
        if (p != merges.end()) queue.push({p->second.first, top.pos, p->second.second});
      }
    }
    ids->clear();
    for (const auto& s : sym) {
      if (s.alive) ids->push_back(s.id);
    }
  }

  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// ---------------------------------------------------------------------------------------------
// Added tokens

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

struct Segment {
  std::string text;
  int32_t id = -1;  // >= 0: an added token
  bool at_start = false;
};

// Leftmost-longest matching of a set of strings, then the added tokens' flags.
class AddedMatcher {
 public:
  void add(const std::string& pattern, size_t token_index) {
    if (pattern.empty()) return;
    by_first_[static_cast<unsigned char>(pattern[0])].push_back({pattern, token_index});
  }
  void finish() {
    for (auto& v : by_first_) {
      std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
        return a.pattern.size() > b.pattern.size();
      });
    }
    empty_ = true;
    for (auto& v : by_first_) empty_ = empty_ && v.empty();
  }
  bool empty() const { return empty_; }

  // Splits `seg` (not a token) into segments, appending to out.
  void split(const Segment& seg, const std::vector<AddedToken>& tokens,
             std::vector<Segment>* out) const {
    const std::string& s = seg.text;
    if (empty_ || s.empty()) {
      if (!s.empty()) out->push_back(seg);
      return;
    }
    // Leftmost-longest non-overlapping matches.
    struct M {
      size_t b, e, tok;
    };
    std::vector<M> found;
    for (size_t i = 0; i < s.size();) {
      const auto& cands = by_first_[static_cast<unsigned char>(s[i])];
      const Entry* hit = nullptr;
      for (const auto& c : cands) {
        if (s.compare(i, c.pattern.size(), c.pattern) == 0) {
          hit = &c;
          break;
        }
      }
      if (hit == nullptr) {
        ++i;
        continue;
      }
      found.push_back({i, i + hit->pattern.size(), hit->token});
      i += hit->pattern.size();
    }
    size_t start_offset = 0;
    auto emit_text = [&](size_t b, size_t e) {
      if (b < e) out->push_back({s.substr(b, e - b), -1, seg.at_start && b == 0});
    };
    for (const auto& m : found) {
      const AddedToken& tok = tokens[m.tok];
      size_t start = m.b, stop = m.e;
      if (start < start_offset) continue;  // swallowed by a previous rstrip
      if (tok.single_word) {
        bool start_space = start == 0 || !ends_with_word(s, start);
        bool stop_space = stop == s.size() || !starts_with_word(s, stop);
        if (!start_space || !stop_space) continue;
      }
      if (tok.lstrip) {
        size_t ns = start;
        while (ns > start_offset) {
          size_t p = prev_cp_start(s, ns);
          size_t len = 0;
          if (!is_whitespace(decode_cp(s, p, &len))) break;
          ns = p;
        }
        start = std::max(ns, start_offset);
      }
      if (tok.rstrip) {
        while (stop < s.size()) {
          size_t len = 0;
          if (!is_whitespace(decode_cp(s, stop, &len))) break;
          stop += len;
        }
      }
      emit_text(start_offset, start);
      out->push_back({s.substr(start, stop - start), tok.id, seg.at_start && start == 0});
      start_offset = stop;
    }
    emit_text(start_offset, s.size());
  }

 private:
  static bool ends_with_word(const std::string& s, size_t end) {
    size_t len = 0;
    return is_word_char(decode_cp(s, prev_cp_start(s, end), &len));
  }
  static bool starts_with_word(const std::string& s, size_t start) {
    size_t len = 0;
    return is_word_char(decode_cp(s, start, &len));
  }

  struct Entry {
    std::string pattern;
    size_t token;
  };
  std::vector<Entry> by_first_[256];
  bool empty_ = true;
};

// ---------------------------------------------------------------------------------------------
// The tokenizer

class HfTokenizer : public Tokenizer {
 public:
  Result<std::vector<int32_t>> encode(const std::string& text, bool add_special) const override {
    bool changed = false;
    std::string s = to_valid_utf8(text, &changed);
    std::vector<Segment> raw;
    raw_matcher_.split({std::move(s), -1, true}, added_, &raw);
    std::vector<Segment> segs;
    for (auto& seg : raw) {
      if (seg.id >= 0) {
        segs.push_back(std::move(seg));
        continue;
      }
      if (normalizer_) PROV_RETURN_IF_ERROR(normalizer_->normalize(&seg.text));
      if (seg.text.empty()) continue;
      norm_matcher_.split(seg, added_, &segs);
    }
    std::vector<int32_t> ids;
    std::vector<Piece> pieces;
    for (auto& seg : segs) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      pieces.clear();
      pieces.push_back({std::move(seg.text), seg.at_start});
      if (pre_) PROV_RETURN_IF_ERROR(pre_->apply(&pieces));
      for (const auto& p : pieces) PROV_RETURN_IF_ERROR(model_.tokenize(p.text, &ids));
    }
    if (add_special && post_) post_->process(&ids);
    return ids;
  }

  Result<std::string> decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      auto a = added_by_id_.find(id);
      if (a != added_by_id_.end()) {
        if (skip_special && added_[a->second].special) continue;
        tokens.push_back(added_[a->second].content);
        continue;
      }
      auto it = model_.vocab_r.find(id);
      if (it != model_.vocab_r.end()) tokens.push_back(it->second);
    }
    if (!decoder_) {
      std::string out;
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (i > 0) out.push_back(' ');
        out += tokens[i];
      }
      return out;
    }
    PROV_RETURN_IF_ERROR(decoder_->decode_chain(&tokens));
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
  }

  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::string kind() const override { return kind_; }
  std::optional<int32_t> token_to_id(const std::string& token) const override {
    auto a = added_by_content_.find(token);
    if (a != added_by_content_.end()) return a->second;
    auto it = model_.vocab.find(token);
    if (it != model_.vocab.end()) return it->second;
    return std::nullopt;
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    auto a = added_by_id_.find(id);
    if (a != added_by_id_.end()) return added_[a->second].content;
    auto it = model_.vocab_r.find(id);
    if (it != model_.vocab_r.end()) return it->second;
    return std::nullopt;
  }
  bool is_special(int32_t id) const override {
    auto a = added_by_id_.find(id);
    return a != added_by_id_.end() && added_[a->second].special;
  }

  static Result<std::unique_ptr<Tokenizer>> build(const json& doc, const std::string& what,
                                                  const json* config);

 private:
  Status parse_model(const json& m, const std::string& what);
  Status parse_added(const json& doc, const std::string& what);
  void pick_special_ids(const json* config);

  std::string kind_ = "hf-bpe";
  BpeModel model_;
  std::vector<AddedToken> added_;
  std::unordered_map<int32_t, size_t> added_by_id_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  AddedMatcher raw_matcher_, norm_matcher_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_;
  std::unique_ptr<PostProcessor> post_;
  std::unique_ptr<Decoder> decoder_;
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_, eos_;
};

Status HfTokenizer::parse_model(const json& m, const std::string& what) {
  const std::string where = what + ": model";
  if (!m.is_object()) return corrupt(where + " is not an object");
  std::string type;
  auto t = m.find("type");
  if (t != m.end() && !t->is_null()) {
    if (!t->is_string()) return corrupt(where + ": \"type\" is not a string");
    type = t->get<std::string>();
  } else if (m.contains("merges")) {
    type = "BPE";  // older files omit the type of a BPE model
  } else {
    return corrupt(where + ": missing \"type\"");
  }
  if (type != "BPE") {
    return unsupported(where + ": model type \"" + type + "\" is not supported (supported: BPE)");
  }
  auto v = m.find("vocab");
  if (v == m.end() || !v->is_object()) return corrupt(where + ": missing \"vocab\" object");
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it.value().is_number_integer()) {
      return corrupt(where + ": vocab entry \"" + it.key() + "\" has a non-integer id");
    }
    int64_t id = it.value().get<int64_t>();
    PROV_RETURN_IF_ERROR(id_in_range(id, where + ": vocab entry \"" + it.key() + "\""));
    model_.vocab[it.key()] = static_cast<int32_t>(id);
    model_.vocab_r.emplace(static_cast<int32_t>(id), it.key());
  }
  PROV_RETURN_IF_ERROR(Json::opt_string_field(m, "unk_token", where, &model_.unk_token));
  PROV_RETURN_IF_ERROR(
      Json::opt_string_field(m, "continuing_subword_prefix", where, &model_.prefix));
  PROV_RETURN_IF_ERROR(Json::opt_string_field(m, "end_of_word_suffix", where, &model_.suffix));
  PROV_RETURN_IF_ERROR(Json::bool_field(m, "fuse_unk", where, &model_.fuse_unk));
  PROV_RETURN_IF_ERROR(Json::bool_field(m, "byte_fallback", where, &model_.byte_fallback));
  PROV_RETURN_IF_ERROR(Json::bool_field(m, "ignore_merges", where, &model_.ignore_merges));
  model_.init_byte_ids();

  auto mg = m.find("merges");
  if (mg != m.end() && !mg->is_null()) {
    if (!mg->is_array()) return corrupt(where + ": \"merges\" is not an array");
    const std::string& prefix = model_.prefix ? *model_.prefix : std::string();
    for (size_t rank = 0; rank < mg->size(); ++rank) {
      const json& e = (*mg)[rank];
      std::string a, b;
      if (e.is_string()) {
        const std::string line = e.get<std::string>();
        size_t sp = line.find(' ');
        if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos) {
          return corrupt(where + ": merge " + std::to_string(rank) + " (\"" + line +
                         "\") is not two tokens separated by one space");
        }
        a = line.substr(0, sp);
        b = line.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        a = e[0].get<std::string>();
        b = e[1].get<std::string>();
      } else {
        return corrupt(where + ": merge " + std::to_string(rank) +
                       " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      auto ia = model_.vocab.find(a);
      auto ib = model_.vocab.find(b);
      std::string merged = a;
      merged += (!prefix.empty() && b.compare(0, prefix.size(), prefix) == 0)
                    ? b.substr(prefix.size())
                    : b;
      auto im = model_.vocab.find(merged);
      for (auto* p : {&ia, &ib, &im}) {
        if (*p == model_.vocab.end()) {
          const std::string& missing = p == &ia ? a : (p == &ib ? b : merged);
          return corrupt(where + ": merge " + std::to_string(rank) + " (\"" + a + "\" + \"" + b +
                         "\") names \"" + missing + "\", which is not in the vocabulary");
        }
      }
      model_.merges[BpeModel::key(ia->second, ib->second)] = {static_cast<int32_t>(rank),
                                                              im->second};
    }
  }
  return Status::ok();
}

Status HfTokenizer::parse_added(const json& doc, const std::string& what) {
  auto at = doc.find("added_tokens");
  if (at == doc.end() || at->is_null()) return Status::ok();
  if (!at->is_array()) return corrupt(what + ": \"added_tokens\" is not an array");
  for (size_t i = 0; i < at->size(); ++i) {
    const json& e = (*at)[i];
    const std::string where = what + ": added_tokens[" + std::to_string(i) + "]";
    if (!e.is_object()) return corrupt(where + " is not an object");
    AddedToken tok;
    PROV_RETURN_IF_ERROR(Json::string_field(e, "content", where, &tok.content, true));
    int64_t id = -1;
    PROV_RETURN_IF_ERROR(Json::int_field(e, "id", where, &id));
    auto vit = model_.vocab.find(tok.content);
    if (vit != model_.vocab.end()) {
      id = vit->second;  // the reference keeps the model's id for a token it already has
    } else if (id < 0) {
      return corrupt(where + ": missing \"id\"");
    }
    PROV_RETURN_IF_ERROR(id_in_range(id, where));
    tok.id = static_cast<int32_t>(id);
    PROV_RETURN_IF_ERROR(Json::bool_field(e, "single_word", where, &tok.single_word));
    PROV_RETURN_IF_ERROR(Json::bool_field(e, "lstrip", where, &tok.lstrip));
    PROV_RETURN_IF_ERROR(Json::bool_field(e, "rstrip", where, &tok.rstrip));
    PROV_RETURN_IF_ERROR(Json::bool_field(e, "special", where, &tok.special));
    tok.normalized = !tok.special;  // the reference's default
    PROV_RETURN_IF_ERROR(Json::bool_field(e, "normalized", where, &tok.normalized));
    if (tok.content.empty()) continue;
    if (!is_valid_utf8(tok.content)) return corrupt(where + ": content is not valid UTF-8");
    added_by_content_[tok.content] = tok.id;
    added_by_id_[tok.id] = added_.size();
    added_.push_back(std::move(tok));
  }
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& tok = added_[i];
    if (!tok.normalized) {
      raw_matcher_.add(tok.content, i);
    } else {
      std::string n = tok.content;
      if (normalizer_) PROV_RETURN_IF_ERROR(normalizer_->normalize(&n));
      norm_matcher_.add(n, i);
    }
  }
  raw_matcher_.finish();
  norm_matcher_.finish();
  return Status::ok();
}

// Name of a token in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> config_token(const json* config, const char* key) {
  if (config == nullptr || !config->is_object()) return std::nullopt;
  auto it = config->find(key);
  if (it == config->end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

void HfTokenizer::pick_special_ids(const json* config) {
  auto lookup = [&](const std::optional<std::string>& name) -> std::optional<int32_t> {
    if (!name) return std::nullopt;
    return token_to_id(*name);
  };
  auto first_special = [&](std::initializer_list<const char*> names) -> std::optional<int32_t> {
    for (const char* n : names) {
      auto it = added_by_content_.find(n);
      if (it != added_by_content_.end()) return it->second;
    }
    return std::nullopt;
  };
  bos_ = lookup(config_token(config, "bos_token"));
  eos_ = lookup(config_token(config, "eos_token"));
  if (!bos_ && post_) bos_ = post_->leading_special();
  if (!bos_ && config == nullptr) {
    bos_ = first_special({"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"});
  }
  if (!eos_ && config == nullptr) {
    eos_ = first_special({"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"});
  }
}

Result<std::unique_ptr<Tokenizer>> HfTokenizer::build(const json& doc, const std::string& what,
                                                      const json* config) {
  if (!doc.is_object()) return corrupt(what + ": not a JSON object");
  std::unique_ptr<HfTokenizer> t(new HfTokenizer());
  auto m = doc.find("model");
  if (m == doc.end() || m->is_null()) return corrupt(what + ": missing \"model\"");
  PROV_RETURN_IF_ERROR(t->parse_model(*m, what));
  auto field = [&](const char* key) -> const json* {
    auto it = doc.find(key);
    return it == doc.end() || it->is_null() ? nullptr : &*it;
  };
  if (const json* n = field("normalizer")) {
    PROV_ASSIGN_OR_RETURN(t->normalizer_, parse_normalizer(*n, what + ": normalizer", 0));
  }
  if (const json* p = field("pre_tokenizer")) {
    PROV_ASSIGN_OR_RETURN(t->pre_, parse_pre_tokenizer(*p, what + ": pre_tokenizer", 0));
  }
  if (const json* p = field("post_processor")) {
    PROV_ASSIGN_OR_RETURN(t->post_, parse_post_processor(*p, what + ": post_processor", 0));
  }
  if (const json* d = field("decoder")) {
    PROV_ASSIGN_OR_RETURN(t->decoder_, parse_decoder(*d, what + ": decoder", 0));
  }
  PROV_RETURN_IF_ERROR(t->parse_added(doc, what));
  int64_t max_id = -1;
  for (const auto& [id, s] : t->model_.vocab_r) max_id = std::max<int64_t>(max_id, id);
  for (const auto& tok : t->added_) max_id = std::max<int64_t>(max_id, tok.id);
  t->vocab_size_ = static_cast<int32_t>(max_id + 1);
  if (t->vocab_size_ == 0) return corrupt(what + ": the vocabulary is empty");
  if (t->post_) {
    std::vector<int32_t> ids;
    t->post_->collect_ids(&ids);
    for (int32_t id : ids) {
      if (!t->id_to_token(id)) {
        return corrupt(what + ": post_processor adds token id " + std::to_string(id) +
                       ", which is not in the vocabulary");
      }
    }
  }
  t->pick_special_ids(config);
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> from_hf_json_value(const nlohmann::json& tokenizer,
                                                      const std::string& what,
                                                      const nlohmann::json* config) {
  try {
    return HfTokenizer::build(tokenizer, what, config);
  } catch (const std::exception& e) {
    return corrupt(what + ": " + e.what());
  }
}

Result<std::unique_ptr<Tokenizer>> from_hf_json_text(const std::string& text,
                                                     const std::string& what) {
  PROV_ASSIGN_OR_RETURN(json doc, parse_json_bounded(text, what));
  return from_hf_json_value(doc, what, nullptr);
}

Result<std::unique_ptr<Tokenizer>> from_hf_json(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(json doc, read_json_file(path, uint64_t{256} << 20));
  std::string dir = ".";
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos) dir = path.substr(0, slash);
  json config;
  bool have_config = false;
  auto cfg = read_json_file(dir + "/tokenizer_config.json");
  if (cfg.is_ok()) {
    config = std::move(cfg).value();
    have_config = true;
  } else if (cfg.status().code() != StatusCode::kNotFound) {
    return cfg.status();
  }
  return from_hf_json_value(doc, path, have_config ? &config : nullptr);
}

}  // namespace prov::model
