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

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <utility>

#include "model/formats/config.h"
#include "model/tokenizers/hf_pipeline.h"
#include "model/tokenizers/tokenizer.h"

namespace prov::model {
namespace {

using namespace hf;  // NOLINT(build/namespaces): the pipeline stages of this tokenizer

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
