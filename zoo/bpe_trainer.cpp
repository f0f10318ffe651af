#include "zoo/bpe_trainer.h"

#include "core/file_io.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace prov::zoo {
namespace {

using ordered_json = nlohmann::ordered_json;

const char kGpt2Regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Appends code point cp (< 0x800 suffices for the byte-level alphabet) as UTF-8.
void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// GPT-2's bytes_to_unicode: bytes that are printable Latin-1 (other than space and soft hyphen)
// map to themselves; the other 68 map to U+0100.. in byte order.
struct ByteAlphabet {
  uint32_t code_point[256];
  std::string symbol[256];    // UTF-8 of code_point[b]
  int32_t order[256];         // rank of byte b when symbols are sorted by code point
  uint8_t byte_at_rank[256];  // inverse of order
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet kAlphabet = [] {
    ByteAlphabet a{};
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      a.code_point[b] = keep ? static_cast<uint32_t>(b) : next++;
      append_utf8(a.code_point[b], &a.symbol[b]);
    }
    std::vector<int> bytes(256);
    for (int b = 0; b < 256; ++b) bytes[b] = b;
    std::sort(bytes.begin(), bytes.end(),
              [&](int x, int y) { return a.code_point[x] < a.code_point[y]; });
    for (int r = 0; r < 256; ++r) {
      a.order[bytes[r]] = r;
      a.byte_at_rank[r] = static_cast<uint8_t>(bytes[r]);
    }
    return a;
  }();
  return kAlphabet;
}

// Byte offset of the first invalid UTF-8 sequence in s, or npos (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF).
size_t invalid_utf8_offset(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string::npos;
}

// The GPT-2 pre-tokenization regex, compiled once per training run.
class Gpt2Splitter {
 public:
  ~Gpt2Splitter() {
    if (match_data_ != nullptr) pcre2_match_data_free(match_data_);
    if (code_ != nullptr) pcre2_code_free(code_);
  }
  Status init() {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Regex), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      return internal_error(std::string("GPT-2 pre-tokenization regex does not compile: ") +
                            reinterpret_cast<const char*>(buf));
    }
    (void)pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
    match_data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
    if (match_data_ == nullptr) return internal_error("pcre2: out of memory");
    return Status::ok();
  }

  // Calls emit(begin, end) for each pre-token of s[begin, end) (valid UTF-8), in order. Text
  // between matches (none for this pattern, which matches every character) is a pre-token too.
  template <typename Emit>
  Status split(const std::string& s, size_t begin, size_t end, Emit emit) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = begin;
    while (pos < end) {
      int rc = pcre2_match(code_, subject, end, pos, PCRE2_NO_UTF_CHECK, match_data_, nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        rc = pcre2_match(code_, subject, end, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match_data_,
                         nullptr);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(rc, buf, sizeof(buf));
        return invalid_argument("pre-tokenization regex failed at byte " + std::to_string(pos) +
                                ": " + reinterpret_cast<const char*>(buf));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match_data_);
      const size_t b = ov[0], e = ov[1];
      if (b > pos) emit(pos, b);
      if (e <= b) {
        // Cannot happen with this pattern (every alternative consumes); step one code point.
        size_t next = b + 1;
        while (next < end && (static_cast<unsigned char>(s[next]) & 0xC0) == 0x80) ++next;
        if (next > b) emit(b, next);
        pos = next;
        continue;
      }
      emit(b, e);
      pos = e;
    }
    if (pos < end) emit(pos, end);
    return Status::ok();
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* match_data_ = nullptr;
};

// Calls piece(begin, end) for each maximal stretch of `text` that holds no special token.
// Specials are matched leftmost first, the longest one at a position winning.
template <typename Piece>
void cut_specials(const std::string& text, const std::vector<std::string>& specials, Piece piece) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = std::string::npos, best_len = 0;
    for (const std::string& sp : specials) {
      const size_t at = text.find(sp, pos);
      if (at == std::string::npos) continue;
      if (at < best || (at == best && sp.size() > best_len)) {
        best = at;
        best_len = sp.size();
      }
    }
    if (best == std::string::npos) {
      piece(pos, text.size());
      return;
    }
    if (best > pos) piece(pos, best);
    pos = best + best_len;
  }
}

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
inline int32_t pair_left(uint64_t k) {
  return static_cast<int32_t>(k >> 32);
}
inline int32_t pair_right(uint64_t k) {
  return static_cast<int32_t>(k & 0xFFFFFFFFu);
}

struct Word {
  std::vector<int32_t> symbols;  // internal token ids
  int64_t count = 0;
};

// The merge loop. Internal token ids: 0..255 are the byte symbols by code point rank, then
// learned tokens in creation order (final id = internal id + number of specials).
class MergeTrainer {
 public:
  MergeTrainer(std::vector<Word> words, const std::vector<std::string>& specials, int64_t min_count,
               int32_t max_tokens)
      : words_(std::move(words)),
        specials_(specials.begin(), specials.end()),
        min_count_(min_count),
        max_tokens_(max_tokens) {
    const ByteAlphabet& alpha = byte_alphabet();
    for (int r = 0; r < 256; ++r) {
      strings_.push_back(alpha.symbol[alpha.byte_at_rank[r]]);
      ids_.emplace(strings_.back(), r);
    }
  }

  void run() {
    for (size_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        const uint64_t k = pair_key(word.symbols[i], word.symbols[i + 1]);
        counts_[k] += word.count;
        std::vector<int32_t>& where = where_[k];
        if (where.empty() || where.back() != static_cast<int32_t>(w)) {
          where.push_back(static_cast<int32_t>(w));
        }
      }
    }
    for (const auto& kv : counts_) heap_.push(Entry{kv.second, kv.first, this});

    while (static_cast<int32_t>(strings_.size()) < max_tokens_ && !heap_.empty()) {
      Entry top = heap_.top();
      heap_.pop();
      auto it = counts_.find(top.key);
      const int64_t actual = it == counts_.end() ? 0 : it->second;
      if (actual != top.count) {
        // Counts of existing pairs only fall (a merge creates pairs only with the new token), so
        // a stale entry is re-queued with its lower count.
        if (actual > 0) heap_.push(Entry{actual, top.key, this});
        continue;
      }
      if (actual < min_count_) break;
      const int32_t a = pair_left(top.key), b = pair_right(top.key);
      std::string merged = strings_[a] + strings_[b];
      if (specials_.count(merged) != 0) continue;  // never shadow a special token's content
      int32_t x;
      auto found = ids_.find(merged);
      if (found != ids_.end()) {
        x = found->second;
      } else {
        x = static_cast<int32_t>(strings_.size());
        strings_.push_back(merged);
        ids_.emplace(std::move(merged), x);
      }
      merges_.emplace_back(a, b);
      apply_merge(a, b, x);
    }
  }

  const std::vector<std::string>& strings() const { return strings_; }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }

 private:
  struct Entry {
    int64_t count;
    uint64_t key;
    const MergeTrainer* owner;
  };
  // priority_queue puts the "largest" on top: higher count, then smaller (left, right) strings.
  struct EntryLess {
    bool operator()(const Entry& p, const Entry& q) const {
      if (p.count != q.count) return p.count < q.count;
      const auto& s = p.owner->strings_;
      const int c = s[pair_left(p.key)].compare(s[pair_left(q.key)]);
      if (c != 0) return c > 0;
      return s[pair_right(p.key)].compare(s[pair_right(q.key)]) > 0;
    }
  };

  void apply_merge(int32_t a, int32_t b, int32_t x) {
    const uint64_t merged_key = pair_key(a, b);
    std::vector<int32_t> affected = std::move(where_[merged_key]);
    where_.erase(merged_key);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());

    std::vector<uint64_t> fresh;  // pairs with x whose count grew
    std::vector<int32_t> out;
    for (int32_t w : affected) {
      Word& word = words_[w];
      const std::vector<int32_t>& s = word.symbols;
      out.clear();
      bool changed = false;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(x);
          i += 2;
          changed = true;
        } else {
          out.push_back(s[i]);
          ++i;
        }
      }
      if (!changed) continue;  // a stale entry of where_
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        auto it = counts_.find(pair_key(s[i], s[i + 1]));
        it->second -= word.count;
        if (it->second == 0) counts_.erase(it);
      }
      for (size_t i = 0; i + 1 < out.size(); ++i) {
        const uint64_t k = pair_key(out[i], out[i + 1]);
        counts_[k] += word.count;
        if (out[i] == x || out[i + 1] == x) {
          std::vector<int32_t>& where = where_[k];
          if (where.empty() || where.back() != w) where.push_back(w);
          fresh.push_back(k);
        }
      }
      word.symbols.swap(out);
    }
    std::sort(fresh.begin(), fresh.end());
    fresh.erase(std::unique(fresh.begin(), fresh.end()), fresh.end());
    for (uint64_t k : fresh) {
      auto it = counts_.find(k);
      if (it != counts_.end() && it->second > 0) heap_.push(Entry{it->second, k, this});
    }
  }

  std::vector<Word> words_;
  std::unordered_set<std::string> specials_;
  int64_t min_count_;
  int32_t max_tokens_;  // internal tokens allowed (vocab_size - specials)
  std::vector<std::string> strings_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::unordered_map<uint64_t, int64_t> counts_;
  std::unordered_map<uint64_t, std::vector<int32_t>> where_;
  std::priority_queue<Entry, std::vector<Entry>, EntryLess> heap_;
};

Status validate(const BpeTrainOptions& o) {
  const size_t n = o.special_tokens.size();
  if (n > 1000000) {
    return invalid_argument("BpeTrainOptions.special_tokens: " + std::to_string(n) +
                            " special tokens is more than the 1000000 supported");
  }
  const int64_t floor = 256 + static_cast<int64_t>(n);
  if (o.vocab_size < floor) {
    return invalid_argument("BpeTrainOptions.vocab_size is " + std::to_string(o.vocab_size) +
                            "; it must be at least 256 (byte symbols) + " + std::to_string(n) +
                            " (special tokens) = " + std::to_string(floor));
  }
  if (o.min_frequency < 0) {
    return invalid_argument("BpeTrainOptions.min_frequency is " + std::to_string(o.min_frequency) +
                            "; it must be >= 0");
  }
  const ByteAlphabet& alpha = byte_alphabet();
  std::unordered_set<std::string> byte_symbols(std::begin(alpha.symbol), std::end(alpha.symbol));
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < n; ++i) {
    const std::string& sp = o.special_tokens[i];
    const std::string where = "BpeTrainOptions.special_tokens[" + std::to_string(i) + "]";
    if (sp.empty()) return invalid_argument(where + " is empty");
    const size_t bad = invalid_utf8_offset(sp);
    if (bad != std::string::npos) {
      return invalid_argument(where + " is not valid UTF-8 (byte " + std::to_string(bad) + ")");
    }
    if (!seen.insert(sp).second) return invalid_argument(where + " \"" + sp + "\" is repeated");
    if (byte_symbols.count(sp) != 0) {
      return invalid_argument(where + " \"" + sp +
                              "\" is one of the 256 byte-level symbols; choose another string");
    }
  }
  return Status::ok();
}

ordered_json build_document(const std::vector<std::string>& specials, const MergeTrainer& t) {
  ordered_json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    ordered_json tok;
    tok["id"] = static_cast<int64_t>(i);
    tok["content"] = specials[i];
    tok["single_word"] = false;
    tok["lstrip"] = false;
    tok["rstrip"] = false;
    tok["normalized"] = false;
    tok["special"] = true;
    added.push_back(std::move(tok));
  }
  doc["added_tokens"] = std::move(added);
  doc["normalizer"] = nullptr;
  ordered_json pre;
  pre["type"] = "ByteLevel";
  pre["add_prefix_space"] = false;
  pre["trim_offsets"] = true;
  pre["use_regex"] = true;
  doc["pre_tokenizer"] = std::move(pre);
  doc["post_processor"] = nullptr;
  ordered_json dec;
  dec["type"] = "ByteLevel";
  dec["add_prefix_space"] = true;
  dec["trim_offsets"] = true;
  dec["use_regex"] = true;
  doc["decoder"] = std::move(dec);

  ordered_json model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = false;
  ordered_json vocab = ordered_json::object();
  const int64_t n = static_cast<int64_t>(specials.size());
  for (int64_t i = 0; i < n; ++i) vocab[specials[i]] = i;
  const std::vector<std::string>& strings = t.strings();
  for (size_t i = 0; i < strings.size(); ++i) vocab[strings[i]] = n + static_cast<int64_t>(i);
  model["vocab"] = std::move(vocab);
  ordered_json merges = ordered_json::array();
  for (const auto& m : t.merges()) merges.push_back(strings[m.first] + " " + strings[m.second]);
  model["merges"] = std::move(merges);
  doc["model"] = std::move(model);
  return doc;
}

}  // namespace

Result<ordered_json> train_byte_level_bpe(const std::vector<std::string>& texts,
                                          const BpeTrainOptions& options, BpeTrainStats* stats) {
  PROV_RETURN_IF_ERROR(validate(options));
  Gpt2Splitter splitter;
  PROV_RETURN_IF_ERROR(splitter.init());

  // 1-2: pre-tokens and their frequencies.
  std::unordered_map<std::string, int64_t> freq;
  int64_t pretokens = 0;
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::string& text = texts[t];
    const size_t bad = invalid_utf8_offset(text);
    if (bad != std::string::npos) {
      return invalid_argument("texts[" + std::to_string(t) + "] is not valid UTF-8 at byte " +
                              std::to_string(bad));
    }
    Status status;
    cut_specials(text, options.special_tokens, [&](size_t begin, size_t end) {
      if (!status.is_ok()) return;
      status = splitter.split(text, begin, end, [&](size_t b, size_t e) {
        ++freq[text.substr(b, e - b)];
        ++pretokens;
      });
    });
    if (!status.is_ok()) return status.with_context("texts[" + std::to_string(t) + "]");
  }

  // Sorted for a reproducible word order (the result does not depend on it, the work does).
  std::vector<std::pair<std::string, int64_t>> sorted(freq.begin(), freq.end());
  freq.clear();
  std::sort(sorted.begin(), sorted.end());
  const ByteAlphabet& alpha = byte_alphabet();
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (auto& kv : sorted) {
    Word w;
    w.count = kv.second;
    w.symbols.reserve(kv.first.size());
    for (unsigned char c : kv.first) w.symbols.push_back(alpha.order[c]);
    words.push_back(std::move(w));
  }
  const size_t unique = sorted.size();
  sorted.clear();
  sorted.shrink_to_fit();

  // 3-4: merges.
  const int32_t n_specials = static_cast<int32_t>(options.special_tokens.size());
  MergeTrainer trainer(std::move(words), options.special_tokens,
                       std::max<int64_t>(1, options.min_frequency),
                       options.vocab_size - n_specials);
  trainer.run();

  if (stats != nullptr) {
    stats->pretokens = pretokens;
    stats->unique_pretokens = static_cast<int64_t>(unique);
    stats->merges = static_cast<int32_t>(trainer.merges().size());
    stats->vocab_size = n_specials + static_cast<int32_t>(trainer.strings().size());
  }
  return build_document(options.special_tokens, trainer);
}

Status write_tokenizer_json(const std::string& path, const ordered_json& tokenizer) {
  std::string bytes;
  try {
    bytes = tokenizer.dump(2, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const std::exception& e) {
    return invalid_argument("not writing " + path + ": the tokenizer document cannot be " +
                            "serialized: " + e.what());
  }
  return write_file_atomic(path, bytes);
}

}  // namespace prov::zoo
