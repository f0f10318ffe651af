// The pipeline stages of a Hugging Face tokenizer.json with the semantics of the `tokenizers`
// library: UTF-8 and Unicode classes, regex splitting (PCRE2), normalizers (utf8proc NFC/NFKC),
// pre-tokenizers, decoders and post-processors, each parsed from its JSON with errors naming the
// field. The BPE model and the added tokens are in tokenizer_hf.cpp.
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

#include "model/tokenizers/hf_pipeline.h"

namespace prov::model::hf {

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

Status Json::pattern(const json& j, const std::string& where, Pattern* out) {
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

Status Json::char_field(const json& j, const char* key, const std::string& where, std::string* out,
                        bool required) {
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

// ---------------------------------------------------------------------------------------------
// Normalizers

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

}  // namespace prov::model::hf
