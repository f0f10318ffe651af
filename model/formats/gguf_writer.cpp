// Writing GGUF files (GgufWriter, gguf.h): the project's own test and zoo checkpoints.
#include "model/formats/gguf.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/byte_reader.h"
#include "core/mapped_file.h"

namespace prov::model {

// --- writer ------------------------------------------------------------------------------------

namespace {

bool valid_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufType::kFloat64);
}

class Out {
 public:
  template <typename T>
  void put(T v) {
    const size_t at = buf_.size();
    buf_.resize(at + sizeof(T));
    std::memcpy(buf_.data() + at, &v, sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t alignment) {
    while (buf_.size() % alignment != 0) buf_.push_back(0);
  }
  std::vector<uint8_t>& buf() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

Status write_array(Out* o, const GgufArray& a);

Status write_scalar(Out* o, const GgufValue& v) {
  const GgufType t = v.type;
  auto bad = [&]() {
    return invalid_argument(std::string("GGUF value of type ") + gguf_type_name(t) +
                            " holds a value of another kind");
  };
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64: {
      const auto* u = std::get_if<uint64_t>(&v.value);
      if (u == nullptr) return bad();
      if (t == GgufType::kUint8) o->put<uint8_t>(static_cast<uint8_t>(*u));
      if (t == GgufType::kUint16) o->put<uint16_t>(static_cast<uint16_t>(*u));
      if (t == GgufType::kUint32) o->put<uint32_t>(static_cast<uint32_t>(*u));
      if (t == GgufType::kUint64) o->put<uint64_t>(*u);
      return Status::ok();
    }
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64: {
      const auto* i = std::get_if<int64_t>(&v.value);
      if (i == nullptr) return bad();
      if (t == GgufType::kInt8) o->put<int8_t>(static_cast<int8_t>(*i));
      if (t == GgufType::kInt16) o->put<int16_t>(static_cast<int16_t>(*i));
      if (t == GgufType::kInt32) o->put<int32_t>(static_cast<int32_t>(*i));
      if (t == GgufType::kInt64) o->put<int64_t>(*i);
      return Status::ok();
    }
    case GgufType::kFloat32:
    case GgufType::kFloat64: {
      const auto* f = std::get_if<double>(&v.value);
      if (f == nullptr) return bad();
      if (t == GgufType::kFloat32) o->put<float>(static_cast<float>(*f));
      if (t == GgufType::kFloat64) o->put<double>(*f);
      return Status::ok();
    }
    case GgufType::kBool: {
      const auto* b = std::get_if<bool>(&v.value);
      if (b == nullptr) return bad();
      o->put<uint8_t>(*b ? 1 : 0);
      return Status::ok();
    }
    case GgufType::kString: {
      const auto* s = std::get_if<std::string>(&v.value);
      if (s == nullptr) return bad();
      o->str(*s);
      return Status::ok();
    }
    case GgufType::kArray: {
      const auto* a = std::get_if<GgufArray>(&v.value);
      if (a == nullptr) return bad();
      return write_array(o, *a);
    }
  }
  return invalid_argument("invalid GGUF value type");
}

Status write_array(Out* o, const GgufArray& a) {
  if (!valid_type(static_cast<uint32_t>(a.elem_type))) {
    return invalid_argument("invalid GGUF array element type");
  }
  o->put<uint32_t>(static_cast<uint32_t>(a.elem_type));
  o->put<uint64_t>(a.size());
  switch (a.elem_type) {
    case GgufType::kUint8:
      for (uint64_t v : a.u) o->put<uint8_t>(static_cast<uint8_t>(v));
      break;
    case GgufType::kUint16:
      for (uint64_t v : a.u) o->put<uint16_t>(static_cast<uint16_t>(v));
      break;
    case GgufType::kUint32:
      for (uint64_t v : a.u) o->put<uint32_t>(static_cast<uint32_t>(v));
      break;
    case GgufType::kUint64:
      for (uint64_t v : a.u) o->put<uint64_t>(v);
      break;
    case GgufType::kInt8:
      for (int64_t v : a.i) o->put<int8_t>(static_cast<int8_t>(v));
      break;
    case GgufType::kInt16:
      for (int64_t v : a.i) o->put<int16_t>(static_cast<int16_t>(v));
      break;
    case GgufType::kInt32:
      for (int64_t v : a.i) o->put<int32_t>(static_cast<int32_t>(v));
      break;
    case GgufType::kInt64:
      for (int64_t v : a.i) o->put<int64_t>(v);
      break;
    case GgufType::kFloat32:
      for (double v : a.f) o->put<float>(static_cast<float>(v));
      break;
    case GgufType::kFloat64:
      for (double v : a.f) o->put<double>(v);
      break;
    case GgufType::kBool:
      for (uint8_t v : a.b) o->put<uint8_t>(v != 0);
      break;
    case GgufType::kString:
      for (const std::string& v : a.s) o->str(v);
      break;
    case GgufType::kArray:
      for (const GgufArray& v : a.a) PROV_RETURN_IF_ERROR(write_array(o, v));
      break;
  }
  return Status::ok();
}

}  // namespace

void GgufWriter::add_kv(const std::string& key, GgufValue value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

Status GgufWriter::add_tensor(const std::string& name, DType dtype,
                              const std::vector<int64_t>& shape, std::vector<uint8_t> bytes) {
  std::optional<uint32_t> type = ggml_type_from_dtype(dtype);
  if (!type) {
    return invalid_argument(std::string("GGUF cannot store dtype ") + dtype_name(dtype) +
                            " (tensor " + name + ")");
  }
  if (shape.empty() || shape.size() > 4) {
    return invalid_argument("tensor " + name + ": GGUF tensors have 1 to 4 dimensions");
  }
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d <= 0 || !checked_mul(numel, static_cast<uint64_t>(d), &numel)) {
      return invalid_argument("tensor " + name + ": invalid shape");
    }
  }
  const DTypeInfo& info = dtype_info(dtype);
  if (static_cast<uint64_t>(shape.back()) % info.block_elems != 0) {
    return invalid_argument("tensor " + name + ": innermost dimension is not a whole number of " +
                            info.name + " blocks");
  }
  PROV_ASSIGN_OR_RETURN(uint64_t want, storage_bytes(dtype, numel));
  if (bytes.size() != want) {
    return invalid_argument("tensor " + name + ": " + std::to_string(bytes.size()) +
                            " bytes given, " + std::to_string(want) + " needed");
  }
  add_raw_tensor(name, *type, std::vector<uint64_t>(shape.rbegin(), shape.rend()),
                 std::move(bytes));
  return Status::ok();
}

void GgufWriter::add_raw_tensor(const std::string& name, uint32_t ggml_type,
                                std::vector<uint64_t> ne, std::vector<uint8_t> bytes,
                                std::optional<uint64_t> offset) {
  tensors_.push_back(Tensor{name, ggml_type, std::move(ne), std::move(bytes), offset});
}

Result<std::vector<uint8_t>> GgufWriter::serialize(uint32_t version, uint64_t alignment) const {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return invalid_argument("GGUF alignment " + std::to_string(alignment) +
                            " is not a power of two");
  }
  std::vector<std::pair<std::string, GgufValue>> kv = kv_;
  const bool has_alignment = std::any_of(
      kv.begin(), kv.end(), [](const auto& p) { return p.first == "general.alignment"; });
  if (!has_alignment && alignment != 32) {
    kv.emplace_back("general.alignment", GgufValue::u32(static_cast<uint32_t>(alignment)));
  }

  // Data layout first: each tensor without an explicit offset goes at the next aligned offset.
  std::vector<uint64_t> offsets;
  uint64_t cursor = 0;
  for (const Tensor& t : tensors_) {
    uint64_t off;
    if (t.offset) {
      off = *t.offset;
    } else {
      off = (cursor + alignment - 1) / alignment * alignment;
    }
    offsets.push_back(off);
    if (!t.offset || !t.bytes.empty()) cursor = std::max(cursor, off + t.bytes.size());
  }

  Out o;
  o.put<uint32_t>(0x46554747u);  // "GGUF"
  o.put<uint32_t>(version);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kv.size());
  for (const auto& [key, value] : kv) {
    o.str(key);
    o.put<uint32_t>(static_cast<uint32_t>(value.type));
    PROV_RETURN_IF_ERROR(write_scalar(&o, value).with_context("key " + key));
  }
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Tensor& t = tensors_[k];
    o.str(t.name);
    o.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) o.put<uint64_t>(d);
    o.put<uint32_t>(t.ggml_type);
    o.put<uint64_t>(offsets[k]);
  }
  o.pad_to(alignment);
  std::vector<uint8_t>& buf = o.buf();
  const uint64_t base = buf.size();
  buf.resize(base + (cursor + alignment - 1) / alignment * alignment, 0);
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Tensor& t = tensors_[k];
    if (!t.bytes.empty())
      std::memcpy(buf.data() + base + offsets[k], t.bytes.data(), t.bytes.size());
  }
  return std::move(buf);
}

Status GgufWriter::write(const std::string& path, uint32_t version, uint64_t alignment) const {
  PROV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, serialize(version, alignment));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return io_error(path + ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) return io_error(path + ": write failed");
  return Status::ok();
}

}  // namespace prov::model
