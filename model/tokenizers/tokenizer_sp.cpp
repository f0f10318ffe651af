// Score-driven tokenizers: llama2.c tok*.bin (run.c's encoder) and SentencePiece BPE
// vocabularies carried in GGUF metadata (llama.cpp's SPM tokenizer).
//
// Both work on bytes: any input is accepted, and bytes that no vocabulary entry covers are
// encoded through byte tokens.

#include <cmath>
#include <queue>
#include <unordered_map>

#include "model/formats/gguf.h"
#include "model/formats/llama2c.h"
#include "model/tokenizers/tokenizer.h"

namespace prov::model {
namespace {

// Leftmost-longest matching of special tokens in raw text.
class SpecialMatcher {
 public:
  void add(const std::string& text, int32_t id) {
    if (text.empty()) return;
    by_first_[static_cast<unsigned char>(text[0])].push_back({text, id});
    any_ = true;
  }
  void finish() {
    for (auto& v : by_first_) {
      std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
        return a.text.size() > b.text.size();
      });
    }
  }
  // Splits text into (raw text, -1) and (token text, id) fragments; empty raw ones are dropped.
  std::vector<std::pair<std::string, int32_t>> split(const std::string& s) const {
    std::vector<std::pair<std::string, int32_t>> out;
    if (!any_) {
      if (!s.empty()) out.emplace_back(s, -1);
      return out;
    }
    size_t prev = 0;
    for (size_t i = 0; i < s.size();) {
      const Entry* hit = nullptr;
      for (const auto& e : by_first_[static_cast<unsigned char>(s[i])]) {
        if (s.compare(i, e.text.size(), e.text) == 0) {
          hit = &e;
          break;
        }
      }
      if (hit == nullptr) {
        ++i;
        continue;
      }
      if (prev < i) out.emplace_back(s.substr(prev, i - prev), -1);
      out.emplace_back(hit->text, hit->id);
      i += hit->text.size();
      prev = i;
    }
    if (prev < s.size()) out.emplace_back(s.substr(prev), -1);
    return out;
  }

 private:
  struct Entry {
    std::string text;
    int32_t id;
  };
  std::vector<Entry> by_first_[256];
  bool any_ = false;
};

// "<0xNN>" (either case) -> byte.
std::optional<uint8_t> byte_token_value(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

std::string byte_token_text(uint8_t b) {
  static const char* hex = "0123456789ABCDEF";
  std::string t = "<0x";
  t.push_back(hex[b >> 4]);
  t.push_back(hex[b & 15]);
  t.push_back('>');
  return t;
}

// ---------------------------------------------------------------------------------------------
// llama2.c

class Llama2cTok : public Tokenizer {
 public:
  Llama2cTok(std::vector<std::string> tokens, std::vector<float> scores)
      : tokens_(std::move(tokens)), scores_(std::move(scores)) {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      lookup_.emplace(tokens_[i], static_cast<int32_t>(i));  // first occurrence wins
    }
  }

  Result<std::vector<int32_t>> encode(const std::string& text, bool add_special) const override {
    struct Node {
      int32_t id;
      int64_t prev, next;
      bool alive;
    };
    std::vector<int32_t> initial;
    if (add_special) initial.push_back(kBos);
    if (!text.empty()) {
      auto it = lookup_.find(" ");
      if (it != lookup_.end()) initial.push_back(it->second);  // the dummy prefix
    }
    // One token per code point (as run.c groups bytes), or one per byte at byte + 3.
    std::string cp;
    for (size_t i = 0; i < text.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if ((c & 0xC0) != 0x80) cp.clear();
      cp.push_back(static_cast<char>(c));
      unsigned char next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
      if ((next & 0xC0) == 0x80 && cp.size() < 4) continue;
      auto it = lookup_.find(cp);
      if (it != lookup_.end()) {
        initial.push_back(it->second);
      } else {
        for (unsigned char b : cp) {
          int32_t id = static_cast<int32_t>(b) + 3;
          if (id >= vocab_size()) {
            return invalid_argument("llama2.c tokenizer: cannot encode byte " + std::to_string(b) +
                                    ": the vocabulary (" + std::to_string(vocab_size()) +
                                    " tokens) has no byte tokens");
          }
          initial.push_back(id);
        }
      }
      cp.clear();
    }
    // Repeatedly merge the adjacent pair whose concatenation has the highest score (leftmost on
    // ties; only scores above -1e10 count, as in run.c).
    const size_t n = initial.size();
    std::vector<Node> nodes(n);
    for (size_t i = 0; i < n; ++i) {
      nodes[i] = {initial[i], static_cast<int64_t>(i) - 1,
                  i + 1 < n ? static_cast<int64_t>(i + 1) : -1, true};
    }
    struct Cand {
      float score;
      int64_t left, right;
      int32_t left_id, right_id, merged;
      bool operator<(const Cand& o) const {
        if (score != o.score) return score < o.score;
        return left > o.left;
      }
    };
    std::priority_queue<Cand> queue;
    std::string buf;
    auto consider = [&](int64_t l, int64_t r) {
      if (l < 0 || r < 0) return;
      buf = tokens_[static_cast<size_t>(nodes[l].id)];
      buf += tokens_[static_cast<size_t>(nodes[r].id)];
      auto it = lookup_.find(buf);
      if (it == lookup_.end()) return;
      float s = scores_[static_cast<size_t>(it->second)];
      if (!(s > -1e10f)) return;
      queue.push({s, l, r, nodes[l].id, nodes[r].id, it->second});
    };
    for (size_t i = 0; i + 1 < n; ++i)
      consider(static_cast<int64_t>(i), static_cast<int64_t>(i + 1));
    while (!queue.empty()) {
      Cand c = queue.top();
      queue.pop();
      Node& l = nodes[static_cast<size_t>(c.left)];
      Node& r = nodes[static_cast<size_t>(c.right)];
      if (!l.alive || !r.alive || l.next != c.right || l.id != c.left_id || r.id != c.right_id) {
        continue;
      }
      l.id = c.merged;
      r.alive = false;
      l.next = r.next;
      if (r.next >= 0) nodes[static_cast<size_t>(r.next)].prev = c.left;
      consider(l.prev, c.left);
      consider(c.left, l.next);
    }
    std::vector<int32_t> ids;
    for (const auto& node : nodes) {
      if (node.alive) ids.push_back(node.id);
    }
    return ids;
  }

  Result<std::string> decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out;
    int32_t prev = -1;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size()) continue;
      const int32_t before = prev;
      prev = id;
      if (skip_special && is_special(id)) continue;
      const std::string& tok = tokens_[static_cast<size_t>(id)];
      size_t start = (before == kBos && !tok.empty() && tok[0] == ' ') ? 1 : 0;
      if (auto b = raw_byte(tok)) {
        out.push_back(static_cast<char>(*b));
      } else {
        out.append(tok, start, std::string::npos);
      }
    }
    return out;
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  std::optional<int32_t> bos_id() const override { return kBos; }
  std::optional<int32_t> eos_id() const override { return kEos; }
  std::string kind() const override { return "llama2c"; }
  std::optional<int32_t> token_to_id(const std::string& token) const override {
    auto it = lookup_.find(token);
    if (it == lookup_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return std::nullopt;
    return tokens_[static_cast<size_t>(id)];
  }
  bool is_special(int32_t id) const override { return id >= 0 && id <= 2; }

 private:
  static constexpr int32_t kBos = 1, kEos = 2;

  // run.c reads "<0x%02hhX>" with sscanf: "<0x" followed by one or two hex digits.
  static std::optional<uint8_t> raw_byte(const std::string& t) {
    if (t.size() < 4 || t.compare(0, 3, "<0x") != 0) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int v = hex(t[3]);
    if (v < 0) return std::nullopt;
    if (t.size() > 4 && hex(t[4]) >= 0) v = v * 16 + hex(t[4]);
    return static_cast<uint8_t>(v);
  }

  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int32_t> lookup_;
};

// ---------------------------------------------------------------------------------------------
// SentencePiece BPE from GGUF (tokenizer.ggml.model == "llama")

enum TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

const char kSpace[] = "\xE2\x96\x81";  // U+2581

class SpmTok : public Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> build(const GgufTokenizer& g, bool add_space_prefix,
                                                  const std::string& what) {
    std::unique_ptr<SpmTok> t(new SpmTok());
    const size_t n = g.tokens.size();
    if (n == 0) return corrupt(what + ": tokenizer.ggml.tokens is empty");
    if (n > static_cast<size_t>(INT32_MAX)) return corrupt(what + ": too many tokens");
    if (!g.scores.empty() && g.scores.size() != n) {
      return corrupt(what + ": tokenizer.ggml.scores does not have one entry per token");
    }
    if (!g.token_types.empty() && g.token_types.size() != n) {
      return corrupt(what + ": tokenizer.ggml.token_type does not have one entry per token");
    }
    t->tokens_ = g.tokens;
    t->scores_ = g.scores;
    if (t->scores_.empty()) t->scores_.assign(n, 0.0f);
    t->types_ = g.token_types;
    auto valid = [&](const std::optional<int64_t>& id) -> std::optional<int32_t> {
      if (!id || *id < 0 || *id >= static_cast<int64_t>(n)) return std::nullopt;
      return static_cast<int32_t>(*id);
    };
    t->bos_ = valid(g.bos_id);
    t->eos_ = valid(g.eos_id);
    t->unk_ = valid(g.unk_id);
    t->add_bos_ = g.add_bos;
    t->add_eos_ = g.add_eos;
    t->add_space_prefix_ = add_space_prefix;
    if (t->types_.empty()) {
      t->types_.assign(n, kNormal);
      for (size_t i = 0; i < n; ++i) {
        if (byte_token_value(t->tokens_[i])) t->types_[i] = kByte;
      }
      if (t->unk_) t->types_[static_cast<size_t>(*t->unk_)] = kUnknown;
      if (t->bos_) t->types_[static_cast<size_t>(*t->bos_)] = kControl;
      if (t->eos_) t->types_[static_cast<size_t>(*t->eos_)] = kControl;
    }
    for (size_t i = 0; i < n; ++i) {
      t->lookup_[t->tokens_[i]] = static_cast<int32_t>(i);  // last occurrence wins (llama.cpp)
      int32_t ty = t->types_[i];
      if (ty == kControl || ty == kUnknown || ty == kUserDefined) {
        t->specials_.add(t->tokens_[i], static_cast<int32_t>(i));
      }
    }
    t->specials_.finish();
    for (int b = 0; b < 256; ++b) {
      auto it = t->lookup_.find(byte_token_text(static_cast<uint8_t>(b)));
      if (it == t->lookup_.end()) it = t->lookup_.find(std::string(1, static_cast<char>(b)));
      t->byte_ids_[b] = it == t->lookup_.end() ? -1 : it->second;
    }
    return std::unique_ptr<Tokenizer>(std::move(t));
  }

  Result<std::vector<int32_t>> encode(const std::string& text, bool add_special) const override {
    std::vector<int32_t> out;
    if (add_special && add_bos_ && bos_) out.push_back(*bos_);
    bool prev_special = true;
    for (auto& [frag, id] : specials_.split(text)) {
      if (id >= 0) {
        out.push_back(id);
        prev_special = true;
        continue;
      }
      std::string raw = (add_space_prefix_ && prev_special) ? " " + frag : frag;
      std::string escaped;
      escaped.reserve(raw.size() * 2);
      for (char c : raw) {
        if (c == ' ') {
          escaped += kSpace;
        } else {
          escaped.push_back(c);
        }
      }
      PROV_RETURN_IF_ERROR(tokenize(escaped, &out));
      prev_special = false;
    }
    if (add_special && add_eos_ && eos_) out.push_back(*eos_);
    return out;
  }

  Result<std::string> decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size()) continue;
      if (skip_special && is_special(id)) continue;
      const std::string& tok = tokens_[static_cast<size_t>(id)];
      int32_t ty = types_[static_cast<size_t>(id)];
      if (ty == kByte) {
        if (auto b = byte_token_value(tok)) {
          out.push_back(static_cast<char>(*b));
          continue;
        }
      }
      if (ty == kControl || ty == kUnknown || ty == kUserDefined) {
        out += tok;
        continue;
      }
      for (size_t i = 0; i < tok.size();) {
        if (tok.compare(i, 3, kSpace) == 0) {
          out.push_back(' ');
          i += 3;
        } else {
          out.push_back(tok[i++]);
        }
      }
    }
    if (add_space_prefix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::string kind() const override { return "gguf-llama"; }
  std::optional<int32_t> token_to_id(const std::string& token) const override {
    auto it = lookup_.find(token);
    if (it == lookup_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return std::nullopt;
    return tokens_[static_cast<size_t>(id)];
  }
  bool is_special(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return false;
    int32_t ty = types_[static_cast<size_t>(id)];
    return ty == kControl || ty == kUnknown || id == bos_ || id == eos_ || id == unk_;
  }

 private:
  // llama.cpp's llm_tokenizer_spm: symbols are UTF-8 sequences (length from the lead byte),
  // bigrams whose concatenation is a token are merged highest score first (leftmost on ties),
  // leftovers fall back to byte tokens.
  Status tokenize(const std::string& text, std::vector<int32_t>* out) const {
    struct Sym {
      size_t off, n;
      int64_t prev, next;
    };
    static const size_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    std::vector<Sym> syms;
    for (size_t off = 0; off < text.size();) {
      size_t len = std::min(kLen[static_cast<unsigned char>(text[off]) >> 4], text.size() - off);
      int64_t idx = static_cast<int64_t>(syms.size());
      syms.push_back({off, len, idx - 1, off + len == text.size() ? -1 : idx + 1});
      off += len;
    }
    struct Bigram {
      int64_t left, right;
      float score;
      size_t size;
      bool operator<(const Bigram& o) const {
        if (score != o.score) return score < o.score;
        return left > o.left;
      }
    };
    std::priority_queue<Bigram> queue;
    auto try_add = [&](int64_t l, int64_t r) {
      if (l < 0 || r < 0) return;
      const Sym& a = syms[static_cast<size_t>(l)];
      const Sym& b = syms[static_cast<size_t>(r)];
      auto it = lookup_.find(text.substr(a.off, a.n + b.n));
      if (it == lookup_.end()) return;
      queue.push({l, r, scores_[static_cast<size_t>(it->second)], a.n + b.n});
    };
    for (size_t i = 1; i < syms.size(); ++i) {
      try_add(static_cast<int64_t>(i - 1), static_cast<int64_t>(i));
    }
    while (!queue.empty()) {
      Bigram bg = queue.top();
      queue.pop();
      Sym& l = syms[static_cast<size_t>(bg.left)];
      Sym& r = syms[static_cast<size_t>(bg.right)];
      if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = bg.left;
      try_add(l.prev, bg.left);
      try_add(bg.left, l.next);
    }
    for (int64_t i = syms.empty() ? -1 : 0; i != -1; i = syms[static_cast<size_t>(i)].next) {
      const Sym& s = syms[static_cast<size_t>(i)];
      auto it = lookup_.find(text.substr(s.off, s.n));
      if (it != lookup_.end()) {
        out->push_back(it->second);
        continue;
      }
      for (size_t k = 0; k < s.n; ++k) {
        int32_t id = byte_ids_[static_cast<unsigned char>(text[s.off + k])];
        if (id < 0) {
          if (!unk_) {
            return invalid_argument("SentencePiece tokenizer: byte " +
                                    std::to_string(static_cast<unsigned char>(text[s.off + k])) +
                                    " has no byte token and the vocabulary has no unknown token");
          }
          id = *unk_;
        }
        out->push_back(id);
      }
    }
    return Status::ok();
  }

  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<int32_t> types_;
  std::unordered_map<std::string, int32_t> lookup_;
  SpecialMatcher specials_;
  int32_t byte_ids_[256];
  std::optional<int32_t> bos_, eos_, unk_;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = true;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> from_llama2c_tokenizer(const Llama2cTokenizer& tokenizer) {
  if (tokenizer.tokens.size() != tokenizer.scores.size()) {
    return invalid_argument("llama2.c tokenizer: " + std::to_string(tokenizer.tokens.size()) +
                            " tokens but " + std::to_string(tokenizer.scores.size()) + " scores");
  }
  if (tokenizer.tokens.empty()) return invalid_argument("llama2.c tokenizer: no tokens");
  if (tokenizer.tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return invalid_argument("llama2.c tokenizer: too many tokens");
  }
  return std::unique_ptr<Tokenizer>(new Llama2cTok(tokenizer.tokens, tokenizer.scores));
}

Result<std::unique_ptr<Tokenizer>> from_llama2c(const std::string& path, int32_t vocab_size) {
  PROV_ASSIGN_OR_RETURN(Llama2cTokenizer tok, read_llama2c_tokenizer(path, vocab_size));
  auto t = from_llama2c_tokenizer(tok);
  if (!t.is_ok()) return t.status().with_context(path);
  return t;
}

namespace tokenizer_internal {

Result<std::unique_ptr<Tokenizer>> make_gguf_spm(const GgufTokenizer& tokenizer,
                                                 bool add_space_prefix, const std::string& what) {
  return SpmTok::build(tokenizer, add_space_prefix, what);
}

}  // namespace tokenizer_internal
}  // namespace prov::model
