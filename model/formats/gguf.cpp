#include "model/formats/gguf.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/byte_reader.h"
#include "core/mapped_file.h"

namespace prov::model {

// --- type tables -------------------------------------------------------------------------------

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
      return "UINT8";
    case GgufType::kInt8:
      return "INT8";
    case GgufType::kUint16:
      return "UINT16";
    case GgufType::kInt16:
      return "INT16";
    case GgufType::kUint32:
      return "UINT32";
    case GgufType::kInt32:
      return "INT32";
    case GgufType::kFloat32:
      return "FLOAT32";
    case GgufType::kBool:
      return "BOOL";
    case GgufType::kString:
      return "STRING";
    case GgufType::kArray:
      return "ARRAY";
    case GgufType::kUint64:
      return "UINT64";
    case GgufType::kInt64:
      return "INT64";
    case GgufType::kFloat64:
      return "FLOAT64";
  }
  return "?";
}

namespace {

struct GgmlTypeEntry {
  uint32_t id;
  const char* name;
  std::optional<DType> dtype;
};

// ggml's type ids (ggml.h). Ids whose types were removed from ggml keep their old names.
const GgmlTypeEntry kGgmlTypes[] = {
    {0, "F32", DType::kF32},
    {1, "F16", DType::kF16},
    {2, "Q4_0", DType::kQ4_0},
    {3, "Q4_1", DType::kQ4_1},
    {4, "Q4_2 (removed from ggml)", std::nullopt},
    {5, "Q4_3 (removed from ggml)", std::nullopt},
    {6, "Q5_0", DType::kQ5_0},
    {7, "Q5_1", DType::kQ5_1},
    {8, "Q8_0", DType::kQ8_0},
    {9, "Q8_1", std::nullopt},
    {10, "Q2_K", DType::kQ2_K},
    {11, "Q3_K", DType::kQ3_K},
    {12, "Q4_K", DType::kQ4_K},
    {13, "Q5_K", DType::kQ5_K},
    {14, "Q6_K", DType::kQ6_K},
    {15, "Q8_K", std::nullopt},
    {16, "IQ2_XXS", std::nullopt},
    {17, "IQ2_XS", std::nullopt},
    {18, "IQ3_XXS", std::nullopt},
    {19, "IQ1_S", std::nullopt},
    {20, "IQ4_NL", std::nullopt},
    {21, "IQ3_S", std::nullopt},
    {22, "IQ2_S", std::nullopt},
    {23, "IQ4_XS", std::nullopt},
    {24, "I8", DType::kI8},
    {25, "I16", DType::kI16},
    {26, "I32", DType::kI32},
    {27, "I64", DType::kI64},
    {28, "F64", DType::kF64},
    {29, "IQ1_M", std::nullopt},
    {30, "BF16", DType::kBF16},
    {31, "Q4_0_4_4 (removed from ggml)", std::nullopt},
    {32, "Q4_0_4_8 (removed from ggml)", std::nullopt},
    {33, "Q4_0_8_8 (removed from ggml)", std::nullopt},
    {34, "TQ1_0", std::nullopt},
    {35, "TQ2_0", std::nullopt},
    {36, "IQ4_NL_4_4 (removed from ggml)", std::nullopt},
    {37, "IQ4_NL_4_8 (removed from ggml)", std::nullopt},
    {38, "IQ4_NL_8_8 (removed from ggml)", std::nullopt},
    {39, "MXFP4", std::nullopt},
};

}  // namespace

std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type) {
  for (const auto& e : kGgmlTypes) {
    if (e.id == ggml_type) return e.dtype;
  }
  return std::nullopt;
}

std::optional<uint32_t> ggml_type_from_dtype(DType t) {
  for (const auto& e : kGgmlTypes) {
    if (e.dtype && *e.dtype == t) return e.id;
  }
  return std::nullopt;
}

const char* ggml_type_name(uint32_t ggml_type) {
  for (const auto& e : kGgmlTypes) {
    if (e.id == ggml_type) return e.name;
  }
  return "unknown";
}

// --- values ------------------------------------------------------------------------------------

uint64_t GgufArray::size() const {
  switch (elem_type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
      return u.size();
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      return i.size();
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      return f.size();
    case GgufType::kBool:
      return b.size();
    case GgufType::kString:
      return s.size();
    case GgufType::kArray:
      return a.size();
  }
  return 0;
}

std::optional<int64_t> GgufArray::int_at(uint64_t k) const {
  if (k < i.size()) return i[k];
  if (k < u.size() && u[k] <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(u[k]);
  }
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_int() const {
  if (const auto* v = std::get_if<int64_t>(&value)) return *v;
  if (const auto* v = std::get_if<uint64_t>(&value)) {
    if (*v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*v);
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> GgufValue::as_uint() const {
  if (const auto* v = std::get_if<uint64_t>(&value)) return *v;
  if (const auto* v = std::get_if<int64_t>(&value)) {
    if (*v >= 0) return static_cast<uint64_t>(*v);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::as_number() const {
  if (const auto* v = std::get_if<double>(&value)) return *v;
  if (const auto* v = std::get_if<int64_t>(&value)) return static_cast<double>(*v);
  if (const auto* v = std::get_if<uint64_t>(&value)) return static_cast<double>(*v);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (const auto* v = std::get_if<bool>(&value)) return *v;
  return std::nullopt;
}

const std::string* GgufValue::as_string() const {
  return std::get_if<std::string>(&value);
}
const GgufArray* GgufValue::as_array() const {
  return std::get_if<GgufArray>(&value);
}

GgufValue GgufValue::strings(std::vector<std::string> v) {
  GgufArray a;
  a.elem_type = GgufType::kString;
  a.s = std::move(v);
  return array(std::move(a));
}

GgufValue GgufValue::f32s(const std::vector<float>& v) {
  GgufArray a;
  a.elem_type = GgufType::kFloat32;
  a.f.assign(v.begin(), v.end());
  return array(std::move(a));
}

GgufValue GgufValue::i32s(const std::vector<int32_t>& v) {
  GgufArray a;
  a.elem_type = GgufType::kInt32;
  a.i.assign(v.begin(), v.end());
  return array(std::move(a));
}

const GgufValue* GgufFile::get(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &kv[it->second].second;
}

std::string GgufFile::architecture() const {
  const GgufValue* v = get("general.architecture");
  const std::string* s = v != nullptr ? v->as_string() : nullptr;
  return s != nullptr ? *s : std::string();
}

void GgufFile::build_index() {
  index_.clear();
  for (size_t k = 0; k < kv.size(); ++k) index_.emplace(kv[k].first, k);
}

// --- parsing -----------------------------------------------------------------------------------

namespace {

bool valid_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufType::kFloat64);
}

// Smallest encoding of one value of type t (used to bound counts before allocating).
uint64_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
    case GgufType::kString:
      return 8;  // u64 length
    case GgufType::kArray:
      return 4 + 8;  // element type + count
  }
  return 1;
}

std::string quote_name(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 200)) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > 200) out += "...";
  return out + "\"";
}

class Parser {
 public:
  Parser(const uint8_t* data, uint64_t size, const std::string& what) : r_(data, size, what) {}

  Result<GgufFile> parse();

 private:
  Status fail(const std::string& message) const { return r_.error_here(message); }
  Status read_str(std::string* out, const char* field);
  Status read_value(GgufType type, const std::string& key, int depth, GgufValue* out);
  Status read_array(const std::string& key, int depth, GgufArray* out);
  template <typename T, typename V>
  Status read_numbers(uint64_t n, std::vector<V>* out, const char* field);
  Status read_header(GgufFile* f, uint64_t* n_tensors, uint64_t* n_kv);
  Status read_alignment(GgufFile* f);
  Status read_tensor_info(const GgufFile& f, GgufTensorInfo* t);

  ByteReader r_;
  uint64_t array_elements_ = 0;
};

Status Parser::read_str(std::string* out, const char* field) {
  uint64_t len = 0;
  PROV_RETURN_IF_ERROR(r_.read(&len, field));
  if (len > r_.remaining()) {
    return fail(std::string(field) + " length " + std::to_string(len) + " runs past the end (" +
                std::to_string(r_.remaining()) + " bytes left)");
  }
  return r_.read_string(len, out, field);
}

template <typename T, typename V>
Status Parser::read_numbers(uint64_t n, std::vector<V>* out, const char* field) {
  // n * sizeof(T) was checked against the remaining bytes by the caller.
  PROV_RETURN_IF_ERROR(r_.need(n * sizeof(T), field));
  out->resize(n);
  const uint8_t* p = r_.data() + r_.offset();
  for (uint64_t k = 0; k < n; ++k) {
    T v;
    std::memcpy(&v, p + k * sizeof(T), sizeof(T));
    (*out)[k] = static_cast<V>(v);
  }
  return r_.skip(n * sizeof(T), field);
}

Status Parser::read_array(const std::string& key, int depth, GgufArray* out) {
  if (depth > kGgufMaxArrayDepth) {
    return fail("metadata " + quote_name(key) + ": arrays nested deeper than " +
                std::to_string(kGgufMaxArrayDepth) + " levels");
  }
  uint32_t et = 0;
  uint64_t n = 0;
  PROV_RETURN_IF_ERROR(r_.read(&et, "array element type"));
  if (!valid_type(et)) {
    return fail("metadata " + quote_name(key) + ": unknown array element type " +
                std::to_string(et));
  }
  PROV_RETURN_IF_ERROR(r_.read(&n, "array length"));
  const GgufType type = static_cast<GgufType>(et);
  const uint64_t min_size = min_encoded_size(type);
  if (n > r_.remaining() / min_size) {
    return fail("metadata " + quote_name(key) + ": array of " + std::to_string(n) + " " +
                gguf_type_name(type) + " elements cannot fit in the " +
                std::to_string(r_.remaining()) + " bytes left");
  }
  // Budget the memory the parsed metadata may take: strings and nested arrays cost more than
  // their smallest encoding, so they weigh more.
  const uint64_t weight = type == GgufType::kArray ? 16 : type == GgufType::kString ? 4 : 1;
  uint64_t cost = 0;
  if (!checked_mul(n, weight, &cost) || !checked_add(array_elements_, cost, &array_elements_) ||
      array_elements_ > kGgufMaxArrayElements) {
    return fail("metadata " + quote_name(key) + ": array of " + std::to_string(n) +
                " elements exceeds the metadata size limit (" +
                std::to_string(kGgufMaxArrayElements) +
                " elements in all, strings counting 4 and nested arrays 16)");
  }
  out->elem_type = type;
  switch (type) {
    case GgufType::kUint8:
      return read_numbers<uint8_t>(n, &out->u, "UINT8 array");
    case GgufType::kInt8:
      return read_numbers<int8_t>(n, &out->i, "INT8 array");
    case GgufType::kUint16:
      return read_numbers<uint16_t>(n, &out->u, "UINT16 array");
    case GgufType::kInt16:
      return read_numbers<int16_t>(n, &out->i, "INT16 array");
    case GgufType::kUint32:
      return read_numbers<uint32_t>(n, &out->u, "UINT32 array");
    case GgufType::kInt32:
      return read_numbers<int32_t>(n, &out->i, "INT32 array");
    case GgufType::kFloat32:
      return read_numbers<float>(n, &out->f, "FLOAT32 array");
    case GgufType::kUint64:
      return read_numbers<uint64_t>(n, &out->u, "UINT64 array");
    case GgufType::kInt64:
      return read_numbers<int64_t>(n, &out->i, "INT64 array");
    case GgufType::kFloat64:
      return read_numbers<double>(n, &out->f, "FLOAT64 array");
    case GgufType::kBool: {
      PROV_RETURN_IF_ERROR(read_numbers<uint8_t>(n, &out->b, "BOOL array"));
      for (uint8_t& v : out->b) v = v != 0;
      return Status::ok();
    }
    case GgufType::kString:
      out->s.reserve(std::min<uint64_t>(n, 4096));
      for (uint64_t k = 0; k < n; ++k) {
        out->s.emplace_back();
        PROV_RETURN_IF_ERROR(read_str(&out->s.back(), "string array element"));
      }
      return Status::ok();
    case GgufType::kArray:
      out->a.reserve(std::min<uint64_t>(n, 256));
      for (uint64_t k = 0; k < n; ++k) {
        out->a.emplace_back();
        PROV_RETURN_IF_ERROR(read_array(key, depth + 1, &out->a.back()));
      }
      return Status::ok();
  }
  return fail("unreachable array type");
}

Status Parser::read_value(GgufType type, const std::string& key, int depth, GgufValue* out) {
  out->type = type;
  switch (type) {
    case GgufType::kUint8: {
      uint8_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "UINT8 value"));
      out->value = uint64_t{v};
      return Status::ok();
    }
    case GgufType::kInt8: {
      int8_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "INT8 value"));
      out->value = int64_t{v};
      return Status::ok();
    }
    case GgufType::kUint16: {
      uint16_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "UINT16 value"));
      out->value = uint64_t{v};
      return Status::ok();
    }
    case GgufType::kInt16: {
      int16_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "INT16 value"));
      out->value = int64_t{v};
      return Status::ok();
    }
    case GgufType::kUint32: {
      uint32_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "UINT32 value"));
      out->value = uint64_t{v};
      return Status::ok();
    }
    case GgufType::kInt32: {
      int32_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "INT32 value"));
      out->value = int64_t{v};
      return Status::ok();
    }
    case GgufType::kFloat32: {
      float v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "FLOAT32 value"));
      out->value = static_cast<double>(v);
      return Status::ok();
    }
    case GgufType::kBool: {
      uint8_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "BOOL value"));
      out->value = v != 0;
      return Status::ok();
    }
    case GgufType::kString: {
      std::string s;
      PROV_RETURN_IF_ERROR(read_str(&s, "STRING value"));
      out->value = std::move(s);
      return Status::ok();
    }
    case GgufType::kArray: {
      GgufArray a;
      PROV_RETURN_IF_ERROR(read_array(key, depth + 1, &a));
      out->value = std::move(a);
      return Status::ok();
    }
    case GgufType::kUint64: {
      uint64_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "UINT64 value"));
      out->value = v;
      return Status::ok();
    }
    case GgufType::kInt64: {
      int64_t v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "INT64 value"));
      out->value = v;
      return Status::ok();
    }
    case GgufType::kFloat64: {
      double v = 0;
      PROV_RETURN_IF_ERROR(r_.read(&v, "FLOAT64 value"));
      out->value = v;
      return Status::ok();
    }
  }
  return fail("unreachable value type");
}

Status Parser::read_header(GgufFile* f, uint64_t* n_tensors, uint64_t* n_kv) {
  const std::string& what = r_.what();
  if (r_.size() < 4) {
    return corrupt(what + ": " + std::to_string(r_.size()) +
                   " bytes is too short to be a GGUF file");
  }
  const uint8_t* m = r_.data();
  if (std::memcmp(m, "GGUF", 4) != 0) {
    // Little-endian u32 magics of the pre-GGUF ggml formats ("ggml", "ggmf", "ggjt").
    if (std::memcmp(m, "lmgg", 4) == 0 || std::memcmp(m, "fmgg", 4) == 0 ||
        std::memcmp(m, "tjgg", 4) == 0) {
      return unsupported(what +
                         ": a pre-GGUF ggml/ggjt file; these are not supported, re-convert the "
                         "model to GGUF");
    }
    static const char* kHex = "0123456789abcdef";
    std::string got;
    for (int k = 0; k < 4; ++k) {
      got += k ? " " : "";
      got += kHex[m[k] >> 4];
      got += kHex[m[k] & 15];
    }
    return corrupt(what + ": not a GGUF file (magic bytes " + got + ", expected \"GGUF\")");
  }
  PROV_RETURN_IF_ERROR(r_.skip(4, "magic"));
  PROV_RETURN_IF_ERROR(r_.read(&f->version, "version"));
  if (f->version == 1) {
    return unsupported(what + ": GGUF v1 (pre-2023) is not supported, re-convert the model");
  }
  if (f->version != 2 && f->version != 3) {
    const uint32_t swapped = __builtin_bswap32(f->version);
    if (swapped >= 1 && swapped <= 3) {
      return unsupported(what + ": big-endian GGUF (version " + std::to_string(swapped) +
                         ") is not supported");
    }
    return unsupported(what + ": GGUF version " + std::to_string(f->version) +
                       " is not supported (prov reads versions 2 and 3)");
  }
  PROV_RETURN_IF_ERROR(r_.read(n_tensors, "tensor count"));
  PROV_RETURN_IF_ERROR(r_.read(n_kv, "metadata count"));
  // Each key/value takes at least 13 bytes (key length, value type, one value byte) and each
  // tensor info at least 32 (name length, n_dims, one dimension, type, offset).
  const uint64_t left = r_.remaining();
  if (*n_kv > left / 13) {
    return corrupt(what + ": metadata count " + std::to_string(*n_kv) +
                   " cannot fit in the file (" + std::to_string(left) + " bytes left)");
  }
  if (*n_tensors > left / 32 || *n_kv * 13 + *n_tensors * 32 > left) {
    return corrupt(what + ": tensor count " + std::to_string(*n_tensors) +
                   " cannot fit in the file (" + std::to_string(left) + " bytes left)");
  }
  return Status::ok();
}

Status Parser::read_alignment(GgufFile* f) {
  const GgufValue* v = f->get("general.alignment");
  if (v == nullptr) return Status::ok();
  std::optional<uint64_t> a = v->as_uint();
  if (!a) {
    return corrupt(r_.what() + ": general.alignment has type " + gguf_type_name(v->type) +
                   "; it must be a non-negative integer");
  }
  if (*a == 0 || (*a & (*a - 1)) != 0) {
    return corrupt(r_.what() + ": general.alignment " + std::to_string(*a) +
                   " is not a nonzero power of two");
  }
  f->alignment = *a;
  return Status::ok();
}

Status Parser::read_tensor_info(const GgufFile& f, GgufTensorInfo* t) {
  const uint64_t start = r_.offset();
  PROV_RETURN_IF_ERROR(read_str(&t->name, "tensor name"));
  const std::string tname = "tensor " + quote_name(t->name);
  uint32_t n_dims = 0;
  PROV_RETURN_IF_ERROR(r_.read(&n_dims, "tensor n_dims"));
  if (n_dims == 0 || n_dims > 4) {
    return fail(tname + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
  }
  t->ne.resize(n_dims);
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    PROV_RETURN_IF_ERROR(r_.read(&t->ne[d], "tensor dimension"));
    if (t->ne[d] == 0 || t->ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fail(tname + " has invalid dimension ne[" + std::to_string(d) +
                  "] = " + std::to_string(t->ne[d]));
    }
    if (!checked_mul(numel, t->ne[d], &numel) ||
        numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fail(tname + ": element count overflows");
    }
  }
  PROV_RETURN_IF_ERROR(r_.read(&t->ggml_type, "tensor type"));
  PROV_RETURN_IF_ERROR(r_.read(&t->offset, "tensor offset"));
  std::optional<DType> dtype = dtype_from_ggml_type(t->ggml_type);
  if (!dtype) {
    return unsupported(r_.what() + ": " + tname + " (tensor info at offset " +
                       std::to_string(start) + ") has ggml type " + std::to_string(t->ggml_type) +
                       " (" + ggml_type_name(t->ggml_type) + "), which prov cannot read");
  }
  t->dtype = *dtype;
  const DTypeInfo& info = dtype_info(*dtype);
  if (t->ne[0] % info.block_elems != 0) {
    return fail(tname + ": innermost dimension " + std::to_string(t->ne[0]) +
                " is not a multiple of the " + info.name + " block size " +
                std::to_string(info.block_elems));
  }
  Result<uint64_t> nbytes = storage_bytes(*dtype, numel);
  if (!nbytes.is_ok()) return fail(tname + ": " + nbytes.status().message());
  t->nbytes = *nbytes;
  if (t->offset % f.alignment != 0) {
    return fail(tname + " has data offset " + std::to_string(t->offset) +
                ", not a multiple of the alignment " + std::to_string(f.alignment));
  }
  return Status::ok();
}

Result<GgufFile> Parser::parse() {
  GgufFile f;
  uint64_t n_tensors = 0, n_kv = 0;
  PROV_RETURN_IF_ERROR(read_header(&f, &n_tensors, &n_kv));
  std::map<std::string, size_t> seen;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    PROV_RETURN_IF_ERROR(read_str(&key, "metadata key"));
    if (seen.count(key) != 0) return fail("duplicate metadata key " + quote_name(key));
    uint32_t type = 0;
    PROV_RETURN_IF_ERROR(r_.read(&type, "metadata value type"));
    if (!valid_type(type)) {
      return fail("metadata " + quote_name(key) + " has unknown value type " +
                  std::to_string(type));
    }
    GgufValue v;
    PROV_RETURN_IF_ERROR(read_value(static_cast<GgufType>(type), key, 0, &v));
    seen.emplace(key, f.kv.size());
    f.kv.emplace_back(std::move(key), std::move(v));
  }
  f.build_index();
  PROV_RETURN_IF_ERROR(read_alignment(&f));

  std::map<std::string, size_t> names;
  f.tensors.reserve(n_tensors);  // bounded by the file size in read_header
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    PROV_RETURN_IF_ERROR(read_tensor_info(f, &t));
    if (!names.emplace(t.name, k).second)
      return fail("duplicate tensor name " + quote_name(t.name));
    f.tensors.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t end = r_.offset();
  const uint64_t rem = end % f.alignment;
  if (rem == 0) {
    f.data_offset = end;
  } else if (!checked_add(end, f.alignment - rem, &f.data_offset)) {
    return corrupt(r_.what() + ": data section offset overflows");
  }
  const uint64_t size = r_.size();
  if (!f.tensors.empty() && f.data_offset > size) {
    return corrupt(r_.what() + ": the data section would start at offset " +
                   std::to_string(f.data_offset) + ", past the end of the file (" +
                   std::to_string(size) + " bytes)");
  }
  std::vector<size_t> order(f.tensors.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  for (const GgufTensorInfo& t : f.tensors) {
    uint64_t begin = 0, stop = 0;
    if (!checked_add(f.data_offset, t.offset, &begin) || !checked_add(begin, t.nbytes, &stop) ||
        stop > size) {
      return corrupt(r_.what() + ": tensor " + quote_name(t.name) + " data (" +
                     std::to_string(t.nbytes) + " bytes at data offset " +
                     std::to_string(t.offset) + ") runs past the end of the file (" +
                     std::to_string(size) + " bytes)");
    }
  }
  std::sort(order.begin(), order.end(),
            [&](size_t x, size_t y) { return f.tensors[x].offset < f.tensors[y].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = f.tensors[order[k - 1]];
    const GgufTensorInfo& cur = f.tensors[order[k]];
    if (cur.offset < prev.offset + prev.nbytes) {  // in range: both checked above
      return corrupt(r_.what() + ": tensors " + quote_name(prev.name) + " and " +
                     quote_name(cur.name) + " overlap (data offsets " +
                     std::to_string(prev.offset) + "+" + std::to_string(prev.nbytes) + " and " +
                     std::to_string(cur.offset) + ")");
    }
  }
  return f;
}

// --- JSON ----------------------------------------------------------------------------------------

// Replaces every byte that is not part of a well-formed UTF-8 sequence with U+FFFD.
std::string sanitize_utf8(const std::string& s) {
  std::string out;
  const size_t n = s.size();
  size_t i = 0;
  bool clean = true;
  auto cont = [&](size_t k) { return k < n && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80; };
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = cont(i + 1) ? 2 : 0;
    } else if (c >= 0xe0 && c <= 0xef) {
      if (cont(i + 1) && cont(i + 2)) {
        const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
        const bool overlong = c == 0xe0 && c1 < 0xa0;
        const bool surrogate = c == 0xed && c1 >= 0xa0;
        len = overlong || surrogate ? 0 : 3;
      }
    } else if (c >= 0xf0 && c <= 0xf4) {
      if (cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
        const bool overlong = c == 0xf0 && c1 < 0x90;
        const bool too_big = c == 0xf4 && c1 >= 0x90;
        len = overlong || too_big ? 0 : 4;
      }
    }
    if (len == 0) {
      if (clean) {
        out.assign(s, 0, i);
        clean = false;
      }
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      if (!clean) out.append(s, i, len);
      i += len;
    }
  }
  return clean ? s : out;
}

nlohmann::json array_json(const GgufArray& a) {
  nlohmann::json j = nlohmann::json::array();
  auto& arr = j.get_ref<nlohmann::json::array_t&>();
  arr.reserve(a.size());
  switch (a.elem_type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
      for (uint64_t v : a.u) arr.emplace_back(v);
      break;
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      for (int64_t v : a.i) arr.emplace_back(v);
      break;
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      for (double v : a.f) arr.emplace_back(v);
      break;
    case GgufType::kBool:
      for (uint8_t v : a.b) arr.emplace_back(v != 0);
      break;
    case GgufType::kString:
      for (const std::string& v : a.s) arr.emplace_back(sanitize_utf8(v));
      break;
    case GgufType::kArray:
      for (const GgufArray& v : a.a) arr.push_back(array_json(v));
      break;
  }
  return j;
}

nlohmann::json value_json(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> nlohmann::json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return sanitize_utf8(x);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          return array_json(x);
        } else {
          return nlohmann::json(x);
        }
      },
      v.value);
}

// --- Q/K row order -----------------------------------------------------------------------------

// For "blk.N.attn_q.weight" and friends: sets *layer and *is_q; false for any other name.
bool parse_qk_name(const std::string& name, int64_t* layer, bool* is_q) {
  if (name.compare(0, 4, "blk.") != 0) return false;
  size_t p = 4;
  int64_t n = 0;
  size_t digits = 0;
  while (p < name.size() && name[p] >= '0' && name[p] <= '9' && digits < 9) {
    n = n * 10 + (name[p] - '0');
    ++p;
    ++digits;
  }
  if (digits == 0) return false;
  const std::string rest = name.substr(p);
  if (rest == ".attn_q.weight" || rest == ".attn_q.bias") {
    *is_q = true;
  } else if (rest == ".attn_k.weight" || rest == ".attn_k.bias") {
    *is_q = false;
  } else {
    return false;
  }
  *layer = n;
  return true;
}

// Head count for `layer` from a scalar or per-layer array key; nullopt when absent.
Result<std::optional<int64_t>> head_count(const GgufFile& f, const std::string& key, int64_t layer,
                                          const std::string& what) {
  const GgufValue* v = f.get(key);
  if (v == nullptr) return std::optional<int64_t>();
  if (auto n = v->as_int()) return std::optional<int64_t>(*n);
  if (const GgufArray* a = v->as_array()) {
    if (auto n = a->int_at(static_cast<uint64_t>(layer))) return std::optional<int64_t>(*n);
  }
  return corrupt(what + ": metadata " + key + " is not an integer (or per-layer integers)");
}

Status set_llama_row_order(
    const GgufFile& f, const std::string& what, TensorRef* t,
    std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const std::vector<int64_t>>>* cache) {
  int64_t layer = 0;
  bool is_q = false;
  if (!parse_qk_name(t->name, &layer, &is_q)) return Status::ok();
  PROV_ASSIGN_OR_RETURN(std::optional<int64_t> n_head,
                        head_count(f, "llama.attention.head_count", layer, what));
  if (!n_head) {
    return corrupt(what +
                   ": llama metadata lacks llama.attention.head_count, needed to restore "
                   "the row order of " +
                   t->name);
  }
  std::optional<int64_t> n_heads = n_head;
  if (!is_q) {
    PROV_ASSIGN_OR_RETURN(std::optional<int64_t> n_kv,
                          head_count(f, "llama.attention.head_count_kv", layer, what));
    if (n_kv) n_heads = n_kv;
  }
  const int64_t rows = t->shape.empty() ? 0 : t->shape[0];
  const int64_t h = *n_heads;
  if (h <= 0 || rows % h != 0 || (rows / h) % 2 != 0) {
    return corrupt(what + ": tensor " + t->name + " has " + std::to_string(rows) +
                   " rows, which cannot be split into " + std::to_string(h) +
                   " heads of even size (from llama.attention.head_count" + (is_q ? "" : "_kv") +
                   "); cannot undo the Q/K RoPE permutation");
  }
  auto& slot = (*cache)[{h, rows / h}];
  if (!slot) {
    slot = std::make_shared<const std::vector<int64_t>>(rope_interleaved_to_half_rows(h, rows / h));
  }
  t->row_order = slot;
  return Status::ok();
}

}  // namespace

Result<GgufFile> parse_gguf(const uint8_t* data, uint64_t size, const std::string& what) {
  if (data == nullptr && size != 0) return invalid_argument(what + ": null buffer");
  static const uint8_t kEmpty = 0;
  Parser p(data != nullptr ? data : &kEmpty, size, what);
  return p.parse();
}

Result<GgufFile> read_gguf_file(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  return parse_gguf(file->data(), file->size(), path);
}

nlohmann::json gguf_metadata_json(const GgufFile& file) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : file.kv) j[sanitize_utf8(key)] = value_json(value);
  return j;
}

Result<Checkpoint> parse_gguf_buffer(std::shared_ptr<const void> owner, const uint8_t* data,
                                     uint64_t size, const std::string& what) {
  PROV_ASSIGN_OR_RETURN(GgufFile f, parse_gguf(data, size, what));
  Checkpoint c;
  c.format = Format::kGguf;
  c.path = what;
  c.files = {what};
  c.version = f.version;
  c.metadata = gguf_metadata_json(f);
  const bool llama = f.architecture() == "llama";
  std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const std::vector<int64_t>>> orders;
  c.tensors.reserve(f.tensors.size());
  for (const GgufTensorInfo& info : f.tensors) {
    TensorRef t;
    t.name = info.name;
    t.dtype = info.dtype;
    t.shape.assign(info.ne.rbegin(), info.ne.rend());
    t.file_offset = f.data_offset + info.offset;
    t.data = data + t.file_offset;
    t.nbytes = info.nbytes;
    t.keep_alive = owner;
    t.file = what;
    if (llama) PROV_RETURN_IF_ERROR(set_llama_row_order(f, what, &t, &orders));
    c.tensors.push_back(std::move(t));
  }
  c.build_index();
  return c;
}

Result<Checkpoint> read_gguf(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::open(path));
  const uint8_t* data = file->data();
  const uint64_t size = file->size();
  return parse_gguf_buffer(std::move(file), data, size, path);
}

// --- tokenizer -----------------------------------------------------------------------------------

}  // namespace prov::model
