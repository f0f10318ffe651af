#include "model/formats/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/byte_reader.h"
#include "core/json.h"
#include "core/mapped_file.h"

namespace prov::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Message helpers

// A JSON-quoted, length-limited rendering of an untrusted string for error messages.
std::string quote(const std::string& s) {
  constexpr size_t kMaxShown = 200;
  std::string shown = s.size() > kMaxShown ? s.substr(0, kMaxShown) : s;
  std::string q;
  try {
    q = json(shown).dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const std::exception&) {
    q = "\"?\"";
  }
  if (s.size() > kMaxShown) q += "...";
  return q;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    if (i == 8 && shape.size() > 9) {
      s += "... (" + std::to_string(shape.size()) + " dims)";
      break;
    }
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// A length-limited dump of an untrusted JSON value for error messages.
std::string excerpt(const json& v) {
  std::string s;
  try {
    s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const std::exception&) {
    s = "?";
  }
  if (s.size() > 80) s = s.substr(0, 80) + "...";
  return s;
}

std::string range_string(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// ---------------------------------------------------------------------------------------------
// Strict JSON parsing: nesting depth limit and duplicate-key rejection, no exceptions escape.

// Parses [begin, end) as JSON (core/json.h: linear time, bounded, duplicate keys refused).
// `what` prefixes messages ("model.safetensors: header"); `base_offset` is the file offset of
// *begin, for messages.
Result<json> parse_json_strict(const char* begin, const char* end, const std::string& what,
                               uint64_t base_offset) {
  JsonLimits limits;
  limits.max_depth = kSafetensorsMaxJsonDepth;
  JsonFailure failure;
  auto j =
      parse_json(std::string_view(begin, static_cast<size_t>(end - begin)), what, limits, &failure);
  if (j.is_ok()) return j;
  if (failure.kind == JsonFailure::kSyntax) {
    return corrupt(what + " is not valid JSON (near file offset " +
                   std::to_string(base_offset + failure.offset) + "): " + failure.detail);
  }
  std::string why = failure.detail;
  if (failure.kind == JsonFailure::kTooDeep) {
    why = "JSON nesting is deeper than " + std::to_string(kSafetensorsMaxJsonDepth) + " levels";
  } else if (failure.kind == JsonFailure::kDuplicateKey) {
    why = "duplicate key " + quote(failure.key);
  }
  return corrupt(what + " (file offset " + std::to_string(base_offset) + ") is rejected: " + why);
}

// ---------------------------------------------------------------------------------------------
// Reading one file

struct ParsedFile {
  std::vector<TensorRef> tensors;  // in data order
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Reads a JSON number that must be a non-negative integer into *out.
bool json_to_u64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    *out = static_cast<uint64_t>(s);
    return true;
  }
  return false;
}

struct Placed {
  uint64_t begin;
  uint64_t end;
  TensorRef ref;
};

Status parse_tensor_entry(const std::string& what, const std::string& name, const json& info,
                          const std::shared_ptr<const void>& owner, const uint8_t* buf,
                          uint64_t buf_size, uint64_t buf_file_offset, Placed* out) {
  // Built only on failure (a header can name millions of tensors).
  auto ctx = [&] { return what + ": tensor " + quote(name); };
  if (!info.is_object()) {
    return corrupt(ctx() +
                   ": expected an object with dtype, shape and data_offsets, found a JSON " +
                   info.type_name());
  }
  // dtype
  auto it = info.find("dtype");
  if (it == info.end()) return corrupt(ctx() + ": missing \"dtype\"");
  if (!it->is_string())
    return corrupt(ctx() + ": \"dtype\" is a JSON " + it->type_name() + ", not a string");
  const std::string& dtype_str = it->get_ref<const std::string&>();
  std::optional<DType> dtype = dtype_from_safetensors(dtype_str);
  if (!dtype) {
    return unsupported(ctx() + ": dtype " + quote(dtype_str) +
                       " is not supported (prov reads F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, "
                       "I32, I16, I8, U8, BOOL)");
  }
  // shape
  it = info.find("shape");
  if (it == info.end()) return corrupt(ctx() + ": missing \"shape\"");
  if (!it->is_array())
    return corrupt(ctx() + ": \"shape\" is a JSON " + it->type_name() + ", not an array");
  std::vector<int64_t> shape;
  uint64_t nonzero_product = 1;
  bool has_zero = false;
  {
    size_t i = 0;
    for (const json& d : *it) {
      if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0) {
        return corrupt(ctx() + ": shape dimension " + std::to_string(i) + " is negative (" +
                       std::to_string(d.get<int64_t>()) + ")");
      }
      uint64_t dim = 0;
      if (!json_to_u64(d, &dim)) {
        return corrupt(ctx() + ": shape dimension " + std::to_string(i) + " is " + excerpt(d) +
                       ", not a non-negative integer");
      }
      if (dim > static_cast<uint64_t>(INT64_MAX)) {
        return corrupt(ctx() + ": shape dimension " + std::to_string(i) + " (" +
                       std::to_string(dim) + ") does not fit a signed 64-bit integer");
      }
      if (dim == 0) {
        has_zero = true;
      } else if (!checked_mul(nonzero_product, dim, &nonzero_product) ||
                 nonzero_product > static_cast<uint64_t>(INT64_MAX)) {
        return corrupt(ctx() + ": the element count of its shape overflows 64 bits (at dimension " +
                       std::to_string(i) + ")");
      }
      shape.push_back(static_cast<int64_t>(dim));
      ++i;
    }
  }
  const uint64_t numel = has_zero ? 0 : nonzero_product;
  // data_offsets
  it = info.find("data_offsets");
  if (it == info.end()) return corrupt(ctx() + ": missing \"data_offsets\"");
  uint64_t begin = 0, end = 0;
  if (!it->is_array() || it->size() != 2 || !json_to_u64((*it)[0], &begin) ||
      !json_to_u64((*it)[1], &end)) {
    return corrupt(ctx() +
                   ": \"data_offsets\" must be two non-negative integers [begin, end], found " +
                   excerpt(*it));
  }
  if (end < begin) {
    return corrupt(ctx() + ": data_offsets " + range_string(begin, end) + " end before they begin");
  }
  if (end > buf_size) {
    return corrupt(ctx() + ": data_offsets " + range_string(begin, end) +
                   " run past the end of the data buffer (" + std::to_string(buf_size) +
                   " bytes from file offset " + std::to_string(buf_file_offset) + ")");
  }
  Result<uint64_t> want = storage_bytes(*dtype, numel);
  if (!want.is_ok()) return want.status().with_context(ctx());
  if (end - begin != *want) {
    return corrupt(ctx() + ": data_offsets " + range_string(begin, end) + " hold " +
                   std::to_string(end - begin) + " bytes but shape " + shape_string(shape) +
                   " of " + dtype_str + " needs " + std::to_string(*want) + " bytes");
  }
  out->begin = begin;
  out->end = end;
  TensorRef& t = out->ref;
  t.name = name;
  t.dtype = *dtype;
  t.shape = std::move(shape);
  t.data = buf + begin;
  t.nbytes = end - begin;
  t.keep_alive = owner;
  t.file = what;
  t.file_offset = buf_file_offset + begin;
  return Status::ok();
}

Result<ParsedFile> parse_file(const std::shared_ptr<const void>& owner, const uint8_t* data,
                              uint64_t size, const std::string& what) {
  ByteReader r(data, size, what);
  if (size < 8) {
    return corrupt(what + ": file is " + std::to_string(size) +
                   " bytes, too short for a safetensors file (it starts with an 8-byte header "
                   "length)");
  }
  uint64_t n = 0;
  PROV_RETURN_IF_ERROR(r.read(&n, "header length"));
  if (n > size - 8) {
    return corrupt(what + ": header length " + std::to_string(n) +
                   " (at offset 0) runs past the end of the file (" + std::to_string(size) +
                   " bytes)");
  }
  if (n > kSafetensorsMaxHeaderBytes) {
    return corrupt(what + ": header length " + std::to_string(n) + " exceeds the limit of " +
                   std::to_string(kSafetensorsMaxHeaderBytes) + " bytes (100 MB)");
  }
  const char* header = reinterpret_cast<const char*>(data + 8);
  PROV_ASSIGN_OR_RETURN(json root, parse_json_strict(header, header + n, what + ": header", 8));
  if (!root.is_object()) {
    return corrupt(what + ": header (file offset 8) is a JSON " + std::string(root.type_name()) +
                   ", expected an object of tensors");
  }
  const uint64_t buf_file_offset = 8 + n;
  const uint8_t* buf = data + buf_file_offset;
  const uint64_t buf_size = size - buf_file_offset;

  ParsedFile out;
  std::vector<Placed> placed;
  for (auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        return corrupt(what + ": header \"__metadata__\" is a JSON " +
                       std::string(value.type_name()) + ", expected an object of strings");
      }
      for (auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          return corrupt(what + ": header \"__metadata__\" entry " + quote(mk) + " is a JSON " +
                         mv.type_name() + ", expected a string");
        }
        out.metadata.emplace_back(mk, mv.get<std::string>());
      }
      continue;
    }
    Placed p;
    PROV_RETURN_IF_ERROR(
        parse_tensor_entry(what, key, value, owner, buf, buf_size, buf_file_offset, &p));
    placed.push_back(std::move(p));
  }
  // Data order; ties (zero-sized tensors) by name.
  std::sort(placed.begin(), placed.end(), [](const Placed& a, const Placed& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.ref.name < b.ref.name;
  });
  // Tensors that own bytes must not share any (zero-sized tensors own none).
  const Placed* last = nullptr;  // the non-empty tensor reaching furthest so far
  for (const Placed& p : placed) {
    if (p.begin == p.end) continue;
    if (last != nullptr && p.begin < last->end) {
      return corrupt(what + ": tensors " + quote(last->ref.name) + " (data_offsets " +
                     range_string(last->begin, last->end) + ") and " + quote(p.ref.name) +
                     " (data_offsets " + range_string(p.begin, p.end) + ") overlap");
    }
    if (last == nullptr || p.end > last->end) last = &p;
  }
  out.tensors.reserve(placed.size());
  for (Placed& p : placed) out.tensors.push_back(std::move(p.ref));
  return out;
}

Result<ParsedFile> parse_mapped(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::open(path));
  std::shared_ptr<const void> owner = file;
  return parse_file(owner, file->data(), file->size(), path);
}

void merge_metadata(const std::vector<std::pair<std::string, std::string>>& entries, json* into) {
  for (const auto& [k, v] : entries) {
    if (!into->contains(k)) (*into)[k] = v;
  }
}

Result<Checkpoint> read_single(const std::string& user_path, const std::string& file) {
  PROV_ASSIGN_OR_RETURN(ParsedFile parsed, parse_mapped(file));
  Checkpoint ckpt;
  ckpt.format = Format::kSafetensors;
  ckpt.path = user_path;
  ckpt.files = {file};
  ckpt.tensors = std::move(parsed.tensors);
  merge_metadata(parsed.metadata, &ckpt.metadata);
  ckpt.build_index();
  return ckpt;
}

// Shard names must stay inside the index's directory.
Status check_shard_name(const std::string& index_path, const std::string& tensor,
                        const std::string& shard) {
  auto ctx = [&] {
    return index_path + ": weight_map entry " + quote(tensor) + " names shard " + quote(shard);
  };
  if (shard.empty()) return corrupt(ctx() + ", an empty file name");
  if (shard.find('\0') != std::string::npos) return corrupt(ctx() + ", which contains a NUL byte");
  if (shard[0] == '/')
    return corrupt(ctx() + ", an absolute path (shards must be beside the index)");
  size_t start = 0;
  while (start <= shard.size()) {
    size_t slash = shard.find('/', start);
    if (slash == std::string::npos) slash = shard.size();
    if (shard.compare(start, slash - start, "..") == 0 && slash - start == 2) {
      return corrupt(ctx() + ", which leaves the index's directory (\"..\")");
    }
    start = slash + 1;
  }
  return Status::ok();
}

Result<Checkpoint> read_index(const std::string& user_path, const std::string& index_path) {
  PROV_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::open(index_path));
  if (file->size() > kSafetensorsMaxHeaderBytes) {
    return corrupt(index_path + ": index is " + std::to_string(file->size()) +
                   " bytes, more than the limit of " + std::to_string(kSafetensorsMaxHeaderBytes) +
                   " bytes");
  }
  const char* text = reinterpret_cast<const char*>(file->data());
  PROV_ASSIGN_OR_RETURN(json root, parse_json_strict(text, text + file->size(), index_path, 0));
  if (!root.is_object()) {
    return corrupt(index_path + ": index is a JSON " + std::string(root.type_name()) +
                   ", expected an object with \"weight_map\"");
  }
  auto wm = root.find("weight_map");
  if (wm == root.end()) return corrupt(index_path + ": index has no \"weight_map\"");
  if (!wm->is_object()) {
    return corrupt(index_path + ": \"weight_map\" is a JSON " + std::string(wm->type_name()) +
                   ", expected an object");
  }
  if (wm->empty()) return corrupt(index_path + ": \"weight_map\" is empty");
  json index_meta = json::object();
  auto meta = root.find("metadata");
  if (meta != root.end() && !meta->is_null()) {
    if (!meta->is_object()) {
      return corrupt(index_path + ": \"metadata\" is a JSON " + std::string(meta->type_name()) +
                     ", expected an object");
    }
    index_meta = *meta;
  }
  // shard -> the tensors the map assigns to it; tensor -> shard.
  std::map<std::string, std::set<std::string>> by_shard;
  std::map<std::string, std::string> shard_of;
  for (auto& [name, shard] : wm->items()) {
    if (!shard.is_string()) {
      return corrupt(index_path + ": weight_map entry " + quote(name) + " is a JSON " +
                     shard.type_name() + ", expected a shard file name");
    }
    const std::string& s = shard.get_ref<const std::string&>();
    PROV_RETURN_IF_ERROR(check_shard_name(index_path, name, s));
    by_shard[s].insert(name);
    shard_of.emplace(name, s);
  }

  const fs::path dir = fs::path(index_path).parent_path();
  Checkpoint ckpt;
  ckpt.format = Format::kSafetensors;
  ckpt.path = user_path;
  std::map<std::string, std::string> found_in;  // tensor -> shard that holds it
  for (const auto& [shard, names] : by_shard) {
    const std::string shard_path = dir.empty() ? shard : (dir / shard).string();
    Result<ParsedFile> parsed = parse_mapped(shard_path);
    if (!parsed.is_ok()) {
      if (parsed.status().code() == StatusCode::kNotFound) {
        return not_found(index_path + ": shard " + quote(shard) + " named in the weight_map (for " +
                         quote(*names.begin()) + ") is missing: " + parsed.status().message());
      }
      return parsed.status();
    }
    for (TensorRef& t : parsed->tensors) {
      auto prev = found_in.find(t.name);
      if (prev != found_in.end()) {
        return corrupt(index_path + ": tensor " + quote(t.name) + " is stored in both shard " +
                       quote(prev->second) + " and shard " + quote(shard));
      }
      auto mapped = shard_of.find(t.name);
      if (mapped == shard_of.end()) {
        return corrupt(shard_path + ": holds tensor " + quote(t.name) +
                       ", which the index's weight_map does not list (" + index_path + ")");
      }
      if (mapped->second != shard) {
        return corrupt(shard_path + ": holds tensor " + quote(t.name) + ", which " + index_path +
                       " assigns to shard " + quote(mapped->second));
      }
      found_in.emplace(t.name, shard);
    }
    for (const std::string& name : names) {
      if (found_in.find(name) == found_in.end()) {
        return not_found(index_path + ": tensor " + quote(name) + " is mapped to shard " +
                         quote(shard) + ", which does not hold it");
      }
    }
    ckpt.files.push_back(shard_path);
    merge_metadata(parsed->metadata, &ckpt.metadata);
    for (TensorRef& t : parsed->tensors) ckpt.tensors.push_back(std::move(t));
  }
  ckpt.metadata["index"] = std::move(index_meta);
  ckpt.build_index();
  return ckpt;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---------------------------------------------------------------------------------------------
// Writing

using EntryList = std::vector<const SafetensorsEntry*>;

Status validate_entry(const SafetensorsEntry& e) {
  auto ctx = [&] { return "safetensors writer: tensor " + quote(e.name); };
  if (e.name.empty()) return invalid_argument("safetensors writer: a tensor has an empty name");
  if (e.name == "__metadata__") {
    return invalid_argument(ctx() + ": the name is reserved for the header metadata");
  }
  const int code = static_cast<int>(e.dtype);
  if (code < 0 || code > static_cast<int>(DType::kI8Grouped) ||
      !dtype_from_safetensors(dtype_name(e.dtype))) {
    return invalid_argument(ctx() + ": dtype " +
                            (code <= static_cast<int>(DType::kI8Grouped)
                                 ? std::string(dtype_name(e.dtype))
                                 : std::to_string(code)) +
                            " cannot be stored in safetensors");
  }
  uint64_t numel = 1;
  for (int64_t d : e.shape) {
    if (d < 0)
      return invalid_argument(ctx() + ": negative dimension in shape " + shape_string(e.shape));
    if (!checked_mul(numel, static_cast<uint64_t>(d), &numel)) {
      return invalid_argument(ctx() + ": the element count of shape " + shape_string(e.shape) +
                              " overflows");
    }
  }
  Result<uint64_t> want = storage_bytes(e.dtype, numel);
  if (!want.is_ok()) return invalid_argument(ctx() + ": " + want.status().message());
  if (e.bytes.size() != *want) {
    return invalid_argument(ctx() + ": " + std::to_string(e.bytes.size()) + " bytes given, shape " +
                            shape_string(e.shape) + " of " + dtype_name(e.dtype) + " needs " +
                            std::to_string(*want));
  }
  return Status::ok();
}

// Validates every entry and rejects duplicate names.
Status validate_entries(const std::vector<SafetensorsEntry>& tensors) {
  std::set<std::string> seen;
  for (const SafetensorsEntry& e : tensors) {
    PROV_RETURN_IF_ERROR(validate_entry(e));
    if (!seen.insert(e.name).second) {
      return invalid_argument("safetensors writer: duplicate tensor name " + quote(e.name));
    }
  }
  return Status::ok();
}

// Sorts `entries` by name and builds the padded header for them.
Result<std::string> build_header(EntryList* entries,
                                 const std::map<std::string, std::string>& metadata) {
  std::sort(entries->begin(), entries->end(),
            [](const SafetensorsEntry* a, const SafetensorsEntry* b) { return a->name < b->name; });
  std::string h = "{";
  try {
    if (!metadata.empty()) {
      h += "\"__metadata__\":";
      h += json(metadata).dump();  // strict: throws on invalid UTF-8
    }
    uint64_t offset = 0;
    for (const SafetensorsEntry* e : *entries) {
      if (h.size() > 1) h += ',';
      h += json(e->name).dump();
      h += ":{\"dtype\":\"";
      h += dtype_name(e->dtype);
      h += "\",\"shape\":[";
      for (size_t i = 0; i < e->shape.size(); ++i) {
        if (i > 0) h += ',';
        h += std::to_string(e->shape[i]);
      }
      h += "],\"data_offsets\":[";
      h += std::to_string(offset) + ",";
      offset += e->bytes.size();
      h += std::to_string(offset) + "]}";
    }
  } catch (const json::exception& e) {
    return invalid_argument(std::string("safetensors writer: a tensor name or metadata string is "
                                        "not valid UTF-8 (") +
                            e.what() + ")");
  }
  h += '}';
  while (h.size() % 8 != 0) h += ' ';
  return h;
}

std::string errno_text() {
  return std::strerror(errno);
}

// Writes the chunks produced by `emit(write)` to path + ".tmp", fsyncs, renames over path.
template <typename Emit>
Status write_atomically(const std::string& path, Emit emit) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error(tmp + ": cannot create: " + errno_text());
  std::string failure;
  auto write_all = [&](const void* p, size_t n) -> bool {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd, c, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        failure = tmp + ": write failed: " + errno_text();
        return false;
      }
      c += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  };
  bool ok = emit(write_all);
  if (ok && ::fsync(fd) != 0) {
    failure = tmp + ": fsync failed: " + errno_text();
    ok = false;
  }
  if (::close(fd) != 0 && ok) {
    failure = tmp + ": close failed: " + errno_text();
    ok = false;
  }
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    failure = "cannot rename " + tmp + " to " + path + ": " + errno_text();
    ok = false;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return io_error(failure);
  }
  return Status::ok();
}

Status write_entries(const std::string& path, EntryList entries,
                     const std::map<std::string, std::string>& metadata) {
  PROV_ASSIGN_OR_RETURN(std::string header, build_header(&entries, metadata));
  return write_atomically(path, [&](auto& write_all) {
    const uint64_t n = header.size();
    uint8_t len[8];
    std::memcpy(len, &n, 8);  // little-endian host
    if (!write_all(len, 8) || !write_all(header.data(), header.size())) return false;
    for (const SafetensorsEntry* e : entries) {
      if (!e->bytes.empty() && !write_all(e->bytes.data(), e->bytes.size())) return false;
    }
    return true;
  });
}

EntryList all_entries(const std::vector<SafetensorsEntry>& tensors) {
  EntryList list;
  list.reserve(tensors.size());
  for (const SafetensorsEntry& e : tensors) list.push_back(&e);
  return list;
}

}  // namespace

// -----------------------------------------------------------------------------------------------
// Public API

Result<Checkpoint> parse_safetensors_buffer(std::shared_ptr<const void> owner, const uint8_t* data,
                                            uint64_t size, const std::string& what) {
  if (data == nullptr && size > 0) return invalid_argument(what + ": null buffer");
  PROV_ASSIGN_OR_RETURN(ParsedFile parsed, parse_file(owner, data, size, what));
  Checkpoint ckpt;
  ckpt.format = Format::kSafetensors;
  ckpt.path = what;
  ckpt.files = {what};
  ckpt.tensors = std::move(parsed.tensors);
  merge_metadata(parsed.metadata, &ckpt.metadata);
  ckpt.build_index();
  return ckpt;
}

Result<Checkpoint> read_safetensors(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return io_error(path + ": cannot stat: " + ec.message());
    }
    return not_found(path + ": no such file or directory");
  }
  if (fs::is_directory(st)) {
    const std::string index = (fs::path(path) / "model.safetensors.index.json").string();
    if (fs::exists(index, ec)) return read_index(path, index);
    const std::string single = (fs::path(path) / "model.safetensors").string();
    if (fs::exists(single, ec)) return read_single(path, single);
    return not_found(
        path + ": directory holds neither model.safetensors.index.json nor model.safetensors");
  }
  if (!fs::is_regular_file(st)) {
    return invalid_argument(path + ": not a regular file or directory");
  }
  if (ends_with(path, ".json")) return read_index(path, path);
  return read_single(path, path);
}

Result<std::vector<uint8_t>> serialize_safetensors(
    const std::vector<SafetensorsEntry>& tensors,
    const std::map<std::string, std::string>& metadata) {
  PROV_RETURN_IF_ERROR(validate_entries(tensors));
  EntryList entries = all_entries(tensors);
  PROV_ASSIGN_OR_RETURN(std::string header, build_header(&entries, metadata));
  uint64_t total = 8 + header.size();
  for (const SafetensorsEntry* e : entries) total += e->bytes.size();
  std::vector<uint8_t> out;
  out.reserve(total);
  const uint64_t n = header.size();
  uint8_t len[8];
  std::memcpy(len, &n, 8);
  out.insert(out.end(), len, len + 8);
  out.insert(out.end(), header.begin(), header.end());
  for (const SafetensorsEntry* e : entries) out.insert(out.end(), e->bytes.begin(), e->bytes.end());
  return out;
}

Status write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  PROV_RETURN_IF_ERROR(validate_entries(tensors));
  return write_entries(path, all_entries(tensors), metadata);
}

Status write_safetensors_sharded(const std::string& dir,
                                 const std::vector<SafetensorsEntry>& tensors,
                                 uint64_t max_shard_bytes) {
  if (max_shard_bytes == 0) {
    return invalid_argument("safetensors writer: max_shard_bytes must be positive");
  }
  if (tensors.empty()) return invalid_argument("safetensors writer: no tensors to write");
  PROV_RETURN_IF_ERROR(validate_entries(tensors));
  // Greedy packing in the given order.
  std::vector<EntryList> shards(1);
  uint64_t shard_bytes = 0, total = 0;
  for (const SafetensorsEntry& e : tensors) {
    const uint64_t n = e.bytes.size();
    if (!shards.back().empty() && (shard_bytes + n > max_shard_bytes)) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(&e);
    shard_bytes += n;
    total += n;
  }
  if (shards.size() > 99999) {
    return invalid_argument("safetensors writer: " + std::to_string(shards.size()) +
                            " shards needed, more than the 99999 the file names allow");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error(dir + ": cannot create directory: " + ec.message());

  json index;
  std::string index_text;
  try {
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
      const std::string shard_path = (fs::path(dir) / name).string();
      PROV_RETURN_IF_ERROR(write_entries(shard_path, shards[i], {}));
      for (const SafetensorsEntry* e : shards[i]) index["weight_map"][e->name] = name;
    }
    index_text = index.dump(2) + "\n";
  } catch (const json::exception& e) {
    return invalid_argument(std::string("safetensors writer: cannot build the index: ") + e.what());
  }
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  return write_atomically(
      index_path, [&](auto& write_all) { return write_all(index_text.data(), index_text.size()); });
}

}  // namespace prov::model
