#include "model/formats/llama2c.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <utility>

#include "core/byte_reader.h"
#include "core/mapped_file.h"

namespace prov::model {

namespace {

constexpr uint64_t kV0HeaderBytes = 7 * 4;

// The logical tensors of a llama2.c checkpoint.
enum class Part {
  kEmbed,
  kAttnNorm,
  kQ,
  kK,
  kV,
  kO,
  kFfnNorm,
  kW1,
  kW2,
  kW3,
  kNorm,
  kFreqCos,
  kFreqSin,
  kOutput
};

bool is_per_layer(Part p) {
  switch (p) {
    case Part::kAttnNorm:
    case Part::kQ:
    case Part::kK:
    case Part::kV:
    case Part::kO:
    case Part::kFfnNorm:
    case Part::kW1:
    case Part::kW2:
    case Part::kW3:
      return true;
    default:
      return false;
  }
}

bool is_matrix(Part p) {
  return p != Part::kAttnNorm && p != Part::kFfnNorm && p != Part::kNorm && p != Part::kFreqCos &&
         p != Part::kFreqSin;
}

const char* layer_suffix(Part p) {
  switch (p) {
    case Part::kAttnNorm:
      return "input_layernorm.weight";
    case Part::kQ:
      return "self_attn.q_proj.weight";
    case Part::kK:
      return "self_attn.k_proj.weight";
    case Part::kV:
      return "self_attn.v_proj.weight";
    case Part::kO:
      return "self_attn.o_proj.weight";
    case Part::kFfnNorm:
      return "post_attention_layernorm.weight";
    case Part::kW1:
      return "mlp.gate_proj.weight";
    case Part::kW2:
      return "mlp.down_proj.weight";
    case Part::kW3:
      return "mlp.up_proj.weight";
    default:
      return "";
  }
}

std::string part_name(Part p, int32_t layer) {
  switch (p) {
    case Part::kEmbed:
      return "model.embed_tokens.weight";
    case Part::kNorm:
      return "model.norm.weight";
    case Part::kOutput:
      return "lm_head.weight";
    case Part::kFreqCos:
      return "";  // not exposed
    case Part::kFreqSin:
      return "";
    default:
      return "model.layers." + std::to_string(layer) + "." + layer_suffix(p);
  }
}

// Canonical (Hugging Face) shape. Only called on validated headers, so nothing overflows.
std::vector<int64_t> part_shape(Part p, const Llama2cHeader& h) {
  const int64_t dim = h.dim, hidden = h.hidden_dim, hs = h.head_size();
  const int64_t q_rows = h.n_heads * hs, kv_rows = h.n_kv_heads * hs;
  switch (p) {
    case Part::kEmbed:
    case Part::kOutput:
      return {h.vocab_size, dim};
    case Part::kAttnNorm:
    case Part::kFfnNorm:
    case Part::kNorm:
      return {dim};
    case Part::kQ:
      return {q_rows, dim};
    case Part::kK:
    case Part::kV:
      return {kv_rows, dim};
    case Part::kO:
      return {dim, q_rows};
    case Part::kW1:
    case Part::kW3:
      return {hidden, dim};
    case Part::kW2:
      return {dim, hidden};
    case Part::kFreqCos:
    case Part::kFreqSin:
      return {h.seq_len, hs / 2};
  }
  return {};
}

// The file order of the parts of each version (per-layer parts are stacked over all layers).
std::vector<Part> part_order(uint32_t version, bool shared) {
  std::vector<Part> order;
  if (version == 0) {
    order = {Part::kEmbed, Part::kAttnNorm, Part::kQ,      Part::kK,  Part::kV,
             Part::kO,     Part::kFfnNorm,  Part::kW1,     Part::kW2, Part::kW3,
             Part::kNorm,  Part::kFreqCos,  Part::kFreqSin};
  } else {
    order = {Part::kAttnNorm, Part::kFfnNorm, Part::kNorm, Part::kEmbed, Part::kQ, Part::kK,
             Part::kV,        Part::kO,       Part::kW1,   Part::kW2,    Part::kW3};
  }
  if (!shared) order.push_back(Part::kOutput);
  return order;
}

// One stored tensor of the file, in file order.
struct Segment {
  Part part;
  int32_t layer;     // -1 for model-level parts
  std::string name;  // Hugging Face name; empty for the skipped freq_cis tables
  std::vector<int64_t> shape;
  uint64_t numel;
  bool quantized;  // v2 matrix: numel int8 values, then numel / group_size fp32 scales
  uint64_t bytes;
};

// The segments of a validated header, in file order.
std::vector<Segment> layout(const Llama2cHeader& h, uint32_t version) {
  std::vector<Segment> segs;
  for (Part p : part_order(version, h.shared_classifier)) {
    const int32_t layers = is_per_layer(p) ? h.n_layers : 1;
    for (int32_t l = 0; l < layers; ++l) {
      Segment s;
      s.part = p;
      s.layer = is_per_layer(p) ? l : -1;
      s.name = part_name(p, l);
      s.shape = part_shape(p, h);
      s.numel = 1;
      for (int64_t d : s.shape) s.numel *= static_cast<uint64_t>(d);
      s.quantized = version == 2 && is_matrix(p);
      s.bytes =
          s.quantized ? s.numel + s.numel / static_cast<uint64_t>(h.group_size) * 4 : s.numel * 4;
      segs.push_back(std::move(s));
    }
  }
  return segs;
}

Status check_field(const char* name, int32_t v, int32_t max) {
  if (v <= 0) return corrupt(std::string(name) + "=" + std::to_string(v) + " must be positive");
  if (v > max) {
    return corrupt(std::string(name) + "=" + std::to_string(v) + " is implausibly large (at most " +
                   std::to_string(max) + ")");
  }
  return Status::ok();
}

std::string header_prefix(const std::string& what, uint32_t version) {
  return what + ": llama2.c v" + std::to_string(version) + " header";
}

}  // namespace

std::string Llama2cHeader::describe() const {
  return "dim=" + std::to_string(dim) + " hidden_dim=" + std::to_string(hidden_dim) +
         " n_layers=" + std::to_string(n_layers) + " n_heads=" + std::to_string(n_heads) +
         " n_kv_heads=" + std::to_string(n_kv_heads) + " vocab_size=" + std::to_string(vocab_size) +
         " seq_len=" + std::to_string(seq_len);
}

Status validate_llama2c_header(const Llama2cHeader& h, uint32_t version) {
  if (version > 2) {
    return unsupported("llama2.c version " + std::to_string(version) +
                       " is not supported (versions 0, 1 and 2 are)");
  }
  // Plausibility first, so that no size below can overflow and messages stay clear.
  PROV_RETURN_IF_ERROR(check_field("dim", h.dim, kLlama2cMaxDim));
  PROV_RETURN_IF_ERROR(check_field("hidden_dim", h.hidden_dim, kLlama2cMaxHiddenDim));
  PROV_RETURN_IF_ERROR(check_field("n_layers", h.n_layers, kLlama2cMaxLayers));
  PROV_RETURN_IF_ERROR(check_field("n_heads", h.n_heads, kLlama2cMaxDim));
  PROV_RETURN_IF_ERROR(check_field("n_kv_heads", h.n_kv_heads, kLlama2cMaxDim));
  PROV_RETURN_IF_ERROR(check_field("vocab_size", h.vocab_size, kLlama2cMaxVocab));
  PROV_RETURN_IF_ERROR(check_field("seq_len", h.seq_len, kLlama2cMaxSeqLen));
  if (h.dim % h.n_heads != 0) {
    return corrupt("dim=" + std::to_string(h.dim) +
                   " is not divisible by n_heads=" + std::to_string(h.n_heads));
  }
  if (h.n_heads % h.n_kv_heads != 0) {
    return corrupt("n_heads=" + std::to_string(h.n_heads) +
                   " is not a multiple of n_kv_heads=" + std::to_string(h.n_kv_heads));
  }
  if (h.head_size() % 2 != 0) {
    return corrupt("head size dim/n_heads=" + std::to_string(h.head_size()) +
                   " is odd; rotary embeddings need an even head size");
  }
  if (version == 2) {
    if (h.group_size <= 0) {
      return corrupt("group_size=" + std::to_string(h.group_size) + " must be positive");
    }
    const uint64_t gs = static_cast<uint64_t>(h.group_size);
    for (Part p : part_order(2, h.shared_classifier)) {
      if (!is_matrix(p)) continue;
      uint64_t numel = 1;
      for (int64_t d : part_shape(p, h)) numel *= static_cast<uint64_t>(d);
      if (numel % gs != 0) {
        return corrupt("group_size=" + std::to_string(h.group_size) + " does not divide the " +
                       std::to_string(numel) + " values of " + part_name(p, 0));
      }
    }
  }
  return Status::ok();
}

Result<uint64_t> llama2c_file_size(const Llama2cHeader& h, uint32_t version) {
  PROV_RETURN_IF_ERROR(validate_llama2c_header(h, version));
  uint64_t total = version == 0 ? kV0HeaderBytes : kLlama2cHeaderBytes;
  for (const Segment& s : layout(h, version)) {
    if (!checked_add(total, s.bytes, &total)) {
      return corrupt("llama2.c file size overflows 64 bits for " + h.describe());
    }
  }
  return total;
}

Result<Llama2cHeader> parse_llama2c_header(const uint8_t* data, uint64_t size,
                                           const std::string& what, uint32_t* version) {
  ByteReader r(data, size, what);
  Llama2cHeader h;
  uint32_t magic = 0;
  if (size >= 4) std::memcpy(&magic, data, 4);
  int32_t fields[7];
  if (magic == kLlama2cMagic) {
    PROV_RETURN_IF_ERROR(r.skip(4, "magic"));
    int32_t v = 0;
    PROV_RETURN_IF_ERROR(r.read(&v, "version"));
    if (v != 1 && v != 2) {
      return unsupported(what + ": llama2.c version " + std::to_string(v) +
                         " is not supported (versions 0, 1 and 2 are)");
    }
    *version = static_cast<uint32_t>(v);
    if (size < kLlama2cHeaderBytes) {
      return corrupt(header_prefix(what, *version) + ": truncated: the header needs " +
                     std::to_string(kLlama2cHeaderBytes) + " bytes, got " + std::to_string(size));
    }
    for (int32_t& f : fields) PROV_RETURN_IF_ERROR(r.read(&f, "header field"));
    uint8_t shared = 0;
    PROV_RETURN_IF_ERROR(r.read(&shared, "shared_classifier"));
    if (shared > 1) {
      return corrupt(header_prefix(what, *version) + ": shared_classifier byte at offset 36 is " +
                     std::to_string(shared) + ", expected 0 or 1");
    }
    h.shared_classifier = shared == 1;
    if (*version == 2) PROV_RETURN_IF_ERROR(r.read(&h.group_size, "group_size"));
  } else {
    *version = 0;
    if (size < kV0HeaderBytes) {
      return corrupt(what + ": truncated: a llama2.c v0 header needs " +
                     std::to_string(kV0HeaderBytes) + " bytes, got " + std::to_string(size));
    }
    for (int32_t& f : fields) PROV_RETURN_IF_ERROR(r.read(&f, "header field"));
  }
  h.dim = fields[0];
  h.hidden_dim = fields[1];
  h.n_layers = fields[2];
  h.n_heads = fields[3];
  h.n_kv_heads = fields[4];
  h.vocab_size = fields[5];
  h.seq_len = fields[6];
  if (*version == 0 && h.vocab_size < 0) {
    // v0 marks an unshared classifier with a negative vocab size.
    if (h.vocab_size == std::numeric_limits<int32_t>::min()) {
      return corrupt(header_prefix(what, 0) + ": vocab_size=" + std::to_string(h.vocab_size) +
                     " is implausibly large");
    }
    h.vocab_size = -h.vocab_size;
    h.shared_classifier = false;
  }
  Status st = validate_llama2c_header(h, *version);
  if (!st.is_ok()) return st.with_context(header_prefix(what, *version));
  return h;
}

bool looks_like_llama2c(const uint8_t* data, uint64_t size) {
  if (data == nullptr || size < 4) return false;
  uint32_t magic;
  std::memcpy(&magic, data, 4);
  if (magic == kLlama2cMagic) return true;
  uint32_t version = 0;
  Result<Llama2cHeader> h = parse_llama2c_header(data, size, "", &version);
  if (!h.is_ok() || version != 0) return false;
  Result<uint64_t> want = llama2c_file_size(*h, 0);
  return want.is_ok() && *want == size;
}

Result<Checkpoint> parse_llama2c_buffer(std::shared_ptr<const void> owner, const uint8_t* data,
                                        uint64_t size, const std::string& what) {
  uint32_t version = 0;
  PROV_ASSIGN_OR_RETURN(Llama2cHeader h, parse_llama2c_header(data, size, what, &version));
  PROV_ASSIGN_OR_RETURN(uint64_t want, llama2c_file_size(h, version));
  const std::string shape_desc =
      h.describe() + (h.shared_classifier ? " (shared classifier)" : " (separate classifier)") +
      (version == 2 ? " group_size=" + std::to_string(h.group_size) : "");
  if (size < want) {
    return corrupt(what + ": truncated: expected " + std::to_string(want) + " bytes for " +
                   shape_desc + " (llama2.c v" + std::to_string(version) + "), got " +
                   std::to_string(size));
  }
  if (size > want) {
    return corrupt(what + ": " + std::to_string(size - want) +
                   " trailing bytes after the weights: expected " + std::to_string(want) +
                   " bytes for " + shape_desc + " (llama2.c v" + std::to_string(version) +
                   "), got " + std::to_string(size));
  }

  Checkpoint ckpt;
  ckpt.format = Format::kLlama2c;
  ckpt.version = version;
  ckpt.path = what;
  ckpt.files = {what};
  nlohmann::json& m = ckpt.metadata;
  m["dim"] = h.dim;
  m["hidden_dim"] = h.hidden_dim;
  m["n_layers"] = h.n_layers;
  m["n_heads"] = h.n_heads;
  m["n_kv_heads"] = h.n_kv_heads;
  m["vocab_size"] = h.vocab_size;
  m["seq_len"] = h.seq_len;
  m["head_size"] = h.head_size();
  m["shared_classifier"] = h.shared_classifier;
  if (version == 2) m["group_size"] = h.group_size;

  auto q_order = std::make_shared<const std::vector<int64_t>>(
      rope_interleaved_to_half_rows(h.n_heads, h.head_size()));
  auto k_order = h.n_kv_heads == h.n_heads
                     ? q_order
                     : std::make_shared<const std::vector<int64_t>>(
                           rope_interleaved_to_half_rows(h.n_kv_heads, h.head_size()));

  uint64_t offset = version == 0 ? kV0HeaderBytes : kLlama2cHeaderBytes;
  for (Segment& s : layout(h, version)) {
    const uint64_t at = offset;
    offset += s.bytes;  // cannot overflow: the sum was checked in llama2c_file_size
    if (s.name.empty()) continue;
    TensorRef t;
    t.name = std::move(s.name);
    t.shape = std::move(s.shape);
    t.data = data + at;
    t.keep_alive = owner;
    t.file = what;
    t.file_offset = at;
    if (s.quantized) {
      t.dtype = DType::kI8Grouped;
      t.nbytes = s.numel;
      t.scales = data + at + s.numel;
      t.group_size = static_cast<uint32_t>(h.group_size);
    } else {
      t.dtype = DType::kF32;
      t.nbytes = s.bytes;
    }
    if (s.part == Part::kQ) t.row_order = q_order;
    if (s.part == Part::kK) t.row_order = k_order;
    ckpt.tensors.push_back(std::move(t));
  }
  ckpt.build_index();
  return ckpt;
}

Result<Checkpoint> read_llama2c(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::open(path));
  const uint8_t* data = file->data();
  const uint64_t size = file->size();
  return parse_llama2c_buffer(std::move(file), data, size, path);
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

Result<Llama2cTokenizer> parse_llama2c_tokenizer_buffer(const uint8_t* data, uint64_t size,
                                                        int32_t vocab_size,
                                                        const std::string& what) {
  ByteReader r(data, size, what);
  Llama2cTokenizer tok;
  PROV_RETURN_IF_ERROR(r.read(&tok.max_token_length, "max_token_length"));
  if (tok.max_token_length < 0) {
    return corrupt(what + ": max_token_length=" + std::to_string(tok.max_token_length) +
                   " at offset 0 is negative");
  }
  if (vocab_size >= 0) {
    // Every token takes at least 8 bytes (score and length): check before reserving.
    const uint64_t min_bytes = static_cast<uint64_t>(vocab_size) * 8;
    if (min_bytes > r.remaining()) {
      return corrupt(what + ": " + std::to_string(vocab_size) + " tokens need at least " +
                     std::to_string(min_bytes) + " bytes after the 4-byte header, but only " +
                     std::to_string(r.remaining()) +
                     " remain (is this the tokenizer of a model with a smaller vocabulary?)");
    }
    tok.tokens.reserve(static_cast<size_t>(vocab_size));
    tok.scores.reserve(static_cast<size_t>(vocab_size));
  }
  for (uint64_t i = 0; vocab_size < 0 ? r.remaining() > 0 : i < static_cast<uint64_t>(vocab_size);
       ++i) {
    const uint64_t at = r.offset();
    if (r.remaining() < 8) {
      return corrupt(what + ": truncated: token " + std::to_string(i) + " at offset " +
                     std::to_string(at) + " needs 8 bytes for its score and length, " +
                     std::to_string(r.remaining()) + " left");
    }
    float score = 0;
    int32_t len = 0;
    PROV_RETURN_IF_ERROR(r.read(&score, "token score"));
    PROV_RETURN_IF_ERROR(r.read(&len, "token length"));
    if (len < 0) {
      return corrupt(what + ": token " + std::to_string(i) + " at offset " + std::to_string(at) +
                     " has negative length " + std::to_string(len));
    }
    if (static_cast<uint64_t>(len) > r.remaining()) {
      return corrupt(what + ": token " + std::to_string(i) + " at offset " + std::to_string(at) +
                     ": length " + std::to_string(len) + " runs past the end of the file (" +
                     std::to_string(r.remaining()) + " bytes left)");
    }
    std::string bytes;
    PROV_RETURN_IF_ERROR(r.read_string(static_cast<uint64_t>(len), &bytes, "token bytes"));
    tok.tokens.push_back(std::move(bytes));
    tok.scores.push_back(score);
  }
  if (r.remaining() > 0) {
    return corrupt(what + ": " + std::to_string(r.remaining()) + " trailing bytes at offset " +
                   std::to_string(r.offset()) + " after the " + std::to_string(vocab_size) +
                   " tokens of the model's vocabulary (is this the tokenizer of another model?)");
  }
  return tok;
}

Result<Llama2cTokenizer> read_llama2c_tokenizer(const std::string& path, int32_t vocab_size) {
  PROV_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::open(path));
  return parse_llama2c_tokenizer_buffer(file->data(), file->size(), vocab_size, path);
}

// ---------------------------------------------------------------------------------------------
// Writers

namespace {

template <typename T>
void put(std::vector<uint8_t>* buf, T v) {
  const size_t n = buf->size();
  buf->resize(n + sizeof(T));
  std::memcpy(buf->data() + n, &v, sizeof(T));
}

// Quantizes n values (n a multiple of gs) like llama2.c's export.py quantize_q80.
void quantize_q80(const float* w, uint64_t n, uint64_t gs, std::vector<int8_t>* q,
                  std::vector<float>* scales) {
  q->resize(n);
  scales->resize(n / gs);
  for (uint64_t g = 0; g < n / gs; ++g) {
    const float* x = w + g * gs;
    float wmax = 0.0f;
    for (uint64_t k = 0; k < gs; ++k) wmax = std::max(wmax, std::fabs(x[k]));
    const float scale = wmax / 127.0f;
    (*scales)[g] = scale;
    for (uint64_t k = 0; k < gs; ++k) {
      float v = scale == 0.0f ? 0.0f : std::nearbyint(x[k] / scale);  // ties to even
      if (!(v >= -127.0f)) v = std::isnan(v) ? 0.0f : -127.0f;
      if (v > 127.0f) v = 127.0f;
      (*q)[g * gs + k] = static_cast<int8_t>(v);
    }
  }
}

// Checks that `w` can be written as `version`: a valid header and exactly the expected tensors.
Status check_llama2c_weights(const Llama2cWeights& w, uint32_t version) {
  const Llama2cHeader& h = w.header;
  if (version > 2) {
    return invalid_argument("cannot write llama2.c version " + std::to_string(version) +
                            " (versions 0, 1 and 2 exist)");
  }
  Status st = validate_llama2c_header(h, version);
  if (!st.is_ok()) {
    return invalid_argument("cannot write llama2.c v" + std::to_string(version) + ": " +
                            st.message());
  }
  std::set<std::string> expected;
  for (const Segment& s : layout(h, version)) {
    if (s.name.empty()) continue;
    expected.insert(s.name);
    auto it = w.tensors.find(s.name);
    if (it == w.tensors.end()) {
      return invalid_argument("cannot write llama2.c: tensor " + s.name + " is missing" +
                              (s.part == Part::kOutput ? " (shared_classifier is false)" : ""));
    }
    if (it->second.size() != s.numel) {
      return invalid_argument("cannot write llama2.c: tensor " + s.name + " has " +
                              std::to_string(it->second.size()) + " values, expected " +
                              std::to_string(s.numel) + " for " + h.describe());
    }
  }
  for (const auto& kv : w.tensors) {
    if (expected.count(kv.first) == 0) {
      return invalid_argument("cannot write llama2.c: unexpected tensor " + kv.first +
                              (kv.first == "lm_head.weight" ? " (shared_classifier is true)" : ""));
    }
  }
  return Status::ok();
}

// Writes the whole file through sink(const void*, size_t). `w` must have passed
// check_llama2c_weights for `version`.
template <typename Sink>
void emit_llama2c(const Llama2cWeights& w, uint32_t version, Sink&& sink) {
  const Llama2cHeader& h = w.header;
  const std::vector<Segment> segs = layout(h, version);
  std::vector<uint8_t> head;
  if (version == 0) {
    const int32_t vocab = h.shared_classifier ? h.vocab_size : -h.vocab_size;
    for (int32_t f : {h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, vocab, h.seq_len})
      put(&head, f);
  } else {
    put(&head, kLlama2cMagic);
    put(&head, static_cast<int32_t>(version));
    for (int32_t f :
         {h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len})
      put(&head, f);
    put(&head, static_cast<uint8_t>(h.shared_classifier ? 1 : 0));
    if (version == 2) put(&head, h.group_size);
    head.resize(kLlama2cHeaderBytes, 0);
  }
  sink(head.data(), head.size());

  const int64_t hs = h.head_size();
  const std::vector<int64_t> q_order = rope_interleaved_to_half_rows(h.n_heads, hs);
  const std::vector<int64_t> k_order = rope_interleaved_to_half_rows(h.n_kv_heads, hs);
  std::vector<float> stored;
  std::vector<int8_t> q;
  std::vector<float> scales;
  for (const Segment& s : segs) {
    if (s.part == Part::kFreqCos || s.part == Part::kFreqSin) {
      // RoPE tables as llama2.c's model.py computes them (theta = 10000).
      const int64_t half = hs / 2;
      stored.resize(static_cast<size_t>(h.seq_len) * half);
      for (int64_t t = 0; t < h.seq_len; ++t) {
        for (int64_t i = 0; i < half; ++i) {
          const float freq =
              1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / static_cast<float>(hs));
          const float angle = static_cast<float>(t) * freq;
          stored[t * half + i] = s.part == Part::kFreqCos ? std::cos(angle) : std::sin(angle);
        }
      }
      sink(stored.data(), stored.size() * 4);
      continue;
    }
    const std::vector<float>& src = w.tensors.at(s.name);
    const float* values = src.data();
    if (s.part == Part::kQ || s.part == Part::kK) {
      // Back to the interleaved-RoPE row order: stored row order[r] holds canonical row r.
      const std::vector<int64_t>& order = s.part == Part::kQ ? q_order : k_order;
      const uint64_t row_len = static_cast<uint64_t>(s.shape[1]);
      stored.resize(src.size());
      for (size_t r = 0; r < order.size(); ++r) {
        std::memcpy(stored.data() + order[r] * row_len, src.data() + r * row_len, row_len * 4);
      }
      values = stored.data();
    }
    if (s.quantized) {
      quantize_q80(values, s.numel, static_cast<uint64_t>(h.group_size), &q, &scales);
      sink(q.data(), q.size());
      sink(scales.data(), scales.size() * 4);
    } else {
      sink(values, s.numel * 4);
    }
  }
}

}  // namespace

Result<std::vector<std::pair<std::string, std::vector<int64_t>>>> llama2c_tensor_shapes(
    const Llama2cHeader& header) {
  Status st = validate_llama2c_header(header, 1);
  if (!st.is_ok()) return invalid_argument("llama2.c header: " + st.message());
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.emplace_back(part_name(Part::kEmbed, -1), part_shape(Part::kEmbed, header));
  static const Part kLayerParts[] = {Part::kAttnNorm, Part::kQ,  Part::kK,  Part::kV, Part::kO,
                                     Part::kFfnNorm,  Part::kW1, Part::kW2, Part::kW3};
  for (int32_t l = 0; l < header.n_layers; ++l)
    for (Part p : kLayerParts) out.emplace_back(part_name(p, l), part_shape(p, header));
  out.emplace_back(part_name(Part::kNorm, -1), part_shape(Part::kNorm, header));
  if (!header.shared_classifier) {
    out.emplace_back(part_name(Part::kOutput, -1), part_shape(Part::kOutput, header));
  }
  return out;
}

Result<std::vector<uint8_t>> serialize_llama2c(const Llama2cWeights& weights, uint32_t version) {
  PROV_RETURN_IF_ERROR(check_llama2c_weights(weights, version));
  std::vector<uint8_t> out;
  emit_llama2c(weights, version, [&](const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  });
  return out;
}

Status write_llama2c(const std::string& path, const Llama2cWeights& weights, uint32_t version) {
  // Validate before creating the file, so a bad request leaves nothing behind.
  PROV_RETURN_IF_ERROR(check_llama2c_weights(weights, version));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return io_error("cannot create " + path);
  emit_llama2c(weights, version, [&](const void* p, size_t n) {
    f.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
  });
  f.close();
  if (!f) return io_error("cannot write " + path);
  return Status::ok();
}

Result<Llama2cWeights> llama2c_weights_from_checkpoint(const Checkpoint& ckpt,
                                                       const Llama2cHeader& header) {
  PROV_ASSIGN_OR_RETURN(auto shapes, llama2c_tensor_shapes(header));
  Llama2cWeights w;
  w.header = header;
  for (auto& [name, shape] : shapes) {
    const TensorRef* t = ckpt.find(name);
    if (t == nullptr) return not_found(ckpt.path + ": no tensor " + name);
    if (t->shape != shape) {
      std::string want, got;
      for (int64_t d : shape) want += (want.empty() ? "" : ",") + std::to_string(d);
      for (int64_t d : t->shape) got += (got.empty() ? "" : ",") + std::to_string(d);
      return invalid_argument(ckpt.path + ": tensor " + name + " has shape [" + got +
                              "], expected [" + want + "] for " + header.describe());
    }
    PROV_ASSIGN_OR_RETURN(std::vector<float> values, to_float32(*t));
    w.tensors.emplace(name, std::move(values));
  }
  return w;
}

Result<std::vector<uint8_t>> serialize_llama2c_tokenizer(const Llama2cTokenizer& tok) {
  if (tok.tokens.size() != tok.scores.size()) {
    return invalid_argument("llama2.c tokenizer: " + std::to_string(tok.tokens.size()) +
                            " tokens but " + std::to_string(tok.scores.size()) + " scores");
  }
  std::vector<uint8_t> out;
  put(&out, tok.max_token_length);
  for (size_t i = 0; i < tok.tokens.size(); ++i) {
    const std::string& t = tok.tokens[i];
    if (t.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      return invalid_argument("llama2.c tokenizer: token " + std::to_string(i) +
                              " is longer than 2^31-1 bytes");
    }
    put(&out, tok.scores[i]);
    put(&out, static_cast<int32_t>(t.size()));
    out.insert(out.end(), t.begin(), t.end());
  }
  return out;
}

Status write_llama2c_tokenizer(const std::string& path, const Llama2cTokenizer& tok) {
  PROV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, serialize_llama2c_tokenizer(tok));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return io_error("cannot create " + path);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) return io_error("cannot write " + path);
  return Status::ok();
}

}  // namespace prov::model
