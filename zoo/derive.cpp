#include "zoo/derive.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>

#include "model/formats/dtype.h"
#include "model/formats/model.h"
#include "model/formats/quants.h"
#include "model/formats/safetensors.h"

namespace prov::zoo {

namespace fs = std::filesystem;
using model::DType;
using model::Role;
using model::TensorRef;
using model::TensorRole;

namespace {

// Files besides the weights that travel with a checkpoint and are copied unchanged.
const char* const kAuxFiles[] = {
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
};

bool is_writable_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

struct Input {
  std::string dir;
  model::Model model;
  nlohmann::json config;  // config.json as written
  // Tensor indices in order of their names, and each tensor's role (null when unmapped).
  std::vector<size_t> order;
  std::vector<std::optional<TensorRole>> role_of;
};

Result<Input> open_input(const std::string& dir) {
  std::error_code ec;
  if (dir.empty()) return invalid_argument("empty checkpoint directory name");
  if (!fs::exists(dir, ec)) return not_found(dir + ": no such checkpoint directory");
  if (!fs::is_directory(dir, ec)) {
    return invalid_argument(dir +
                            ": expected a Hugging Face checkpoint directory (config.json + "
                            "model.safetensors)");
  }
  Input in;
  in.dir = dir;
  PROV_ASSIGN_OR_RETURN(in.model, model::open_model(dir));
  const model::Arch arch = in.model.config.arch;
  if (arch != model::Arch::kLlama && arch != model::Arch::kMistral && arch != model::Arch::kQwen2 &&
      arch != model::Arch::kQwen3) {
    return unsupported(dir + ": architecture " + model::arch_name(arch) +
                       " is not supported by the weight derivatives (supported: llama, mistral, "
                       "qwen2, qwen3)");
  }
  const auto& tensors = in.model.checkpoint.tensors;
  for (const TensorRef& t : tensors) {
    if (!t.is_plain_layout()) {
      return internal_error(t.file + ": tensor " + t.name +
                            " has a view transform; expected the plain safetensors layout");
    }
    const auto& info = model::dtype_info(t.dtype);
    if (info.is_float && !is_writable_float(t.dtype)) {
      return unsupported(t.file + ": tensor " + t.name + " has dtype " + info.name +
                         "; weight derivatives handle F32, F16 and BF16 tensors");
    }
  }
  PROV_ASSIGN_OR_RETURN(in.config, model::read_json_file(dir + "/config.json"));
  if (!in.config.is_object()) return corrupt(dir + "/config.json: not a JSON object");
  in.order.resize(tensors.size());
  std::iota(in.order.begin(), in.order.end(), size_t{0});
  std::sort(in.order.begin(), in.order.end(),
            [&](size_t a, size_t b) { return tensors[a].name < tensors[b].name; });
  in.role_of.assign(tensors.size(), std::nullopt);
  for (const auto& [role, index] : in.model.roles) in.role_of[index] = role;
  return in;
}

Status check_output(const std::string& out, const std::vector<std::string>& inputs) {
  std::error_code ec;
  if (out.empty()) return invalid_argument("empty output directory name");
  if (!fs::exists(out, ec)) return Status::ok();
  for (const std::string& in : inputs) {
    if (fs::equivalent(out, in, ec)) {
      return invalid_argument(out + ": the output directory is the input checkpoint " + in);
    }
  }
  if (!fs::is_directory(out, ec)) return invalid_argument(out + ": exists and is not a directory");
  if (!fs::is_empty(out, ec)) {
    return invalid_argument(out + ": output directory exists and is not empty");
  }
  return Status::ok();
}

// Rounds `v` to `dtype` in place (the values as they will be stored) and returns the bytes.
std::vector<uint8_t> encode(std::vector<float>* v, DType dtype) {
  const size_t n = v->size();
  std::vector<uint8_t> bytes;
  if (dtype == DType::kF32) {
    bytes.resize(n * 4);
    if (n) std::memcpy(bytes.data(), v->data(), n * 4);
    return bytes;
  }
  bytes.resize(n * 2);
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    if (dtype == DType::kBF16) {
      h = model::float_to_bf16((*v)[i]);
      (*v)[i] = model::bf16_to_float(h);
    } else {
      h = model::float_to_fp16((*v)[i]);
      (*v)[i] = model::fp16_to_float(h);
    }
    std::memcpy(&bytes[2 * i], &h, 2);
  }
  return bytes;
}

// ||after - before|| / ||before|| accumulated over tensors (Frobenius norms, fp64).
struct ChangeStats {
  double diff2 = 0, base2 = 0, max_rel = 0;
  int64_t tensors = 0;
  void add(const std::vector<float>& before, const std::vector<float>& after) {
    double d2 = 0, b2 = 0;
    for (size_t i = 0; i < before.size(); ++i) {
      const double d = static_cast<double>(after[i]) - before[i];
      d2 += d * d;
      b2 += static_cast<double>(before[i]) * before[i];
    }
    diff2 += d2;
    base2 += b2;
    ++tensors;
    if (b2 > 0) max_rel = std::max(max_rel, std::sqrt(d2 / b2));
  }
  void to_json(nlohmann::json* j) const {
    (*j)["relative_change"] = base2 > 0 ? std::sqrt(diff2 / base2) : 0.0;
    (*j)["max_tensor_relative_change"] = max_rel;
    (*j)["tensors_changed"] = tensors;
  }
};

// One tensor on its way to the output. The transform sets `modified` when it changed the values
// (or shape); otherwise the input bytes are copied under `name`. `drop` omits the tensor.
struct Work {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // fp32 values (floating tensors only)
  bool is_float = false;      // false: integer/bool tensor, values empty, only name/drop apply
  bool modified = false;
  bool drop = false;
};
using TensorFn = std::function<Status(const TensorRef&, const TensorRole*, Work*)>;

// Runs `fn` over the tensors of `in` (by name), writes `out` (config.json = `config`, the weights,
// the auxiliary files) and returns the change statistics of modified same-shape tensors.
Result<ChangeStats> run(const Input& in, const std::string& out, const nlohmann::json& config,
                        const TensorFn& fn) {
  const auto& tensors = in.model.checkpoint.tensors;
  std::vector<model::SafetensorsEntry> entries;
  ChangeStats stats;
  for (size_t index : in.order) {
    const TensorRef& t = tensors[index];
    Work w;
    w.name = t.name;
    w.shape = t.shape;
    const bool is_float = model::dtype_info(t.dtype).is_float;
    if (is_float) {
      PROV_ASSIGN_OR_RETURN(w.values, model::to_float32(t));
    }
    w.is_float = is_float;
    std::vector<float> before;
    if (is_float) before = w.values;
    const auto& role = in.role_of[index];
    PROV_RETURN_IF_ERROR(fn(t, role ? &*role : nullptr, &w));
    if (w.drop) continue;
    if (!is_float && w.modified) return internal_error(t.name + ": a non-floating tensor changed");
    model::SafetensorsEntry e;
    e.name = w.name;
    e.dtype = t.dtype;
    if (w.modified) {
      e.shape = w.shape;
      e.bytes = encode(&w.values, t.dtype);
      if (w.shape == t.shape) stats.add(before, w.values);
    } else {
      e.shape = t.shape;
      e.bytes.assign(t.data, t.data + t.nbytes);
    }
    entries.push_back(std::move(e));
  }

  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return io_error(out + ": cannot create the output directory: " + ec.message());
  {
    std::string text;
    try {
      text = config.dump(2);
    } catch (const nlohmann::json::exception& e) {
      return internal_error(out + "/config.json: cannot serialise: " + e.what());
    }
    std::ofstream f(out + "/config.json", std::ios::trunc);
    f << text << "\n";
    f.close();
    if (!f) return io_error(out + "/config.json: cannot write");
  }
  PROV_RETURN_IF_ERROR(
      model::write_safetensors(out + "/model.safetensors", entries, {{"format", "pt"}}));
  for (const char* name : kAuxFiles) {
    const std::string src = in.dir + "/" + name;
    if (!fs::is_regular_file(src, ec)) continue;
    fs::copy_file(src, out + "/" + name, fs::copy_options::overwrite_existing, ec);
    if (ec) return io_error(out + "/" + name + ": cannot copy from " + src + ": " + ec.message());
  }
  return stats;
}

nlohmann::json base_recipe(const char* derivative, const Input& in, const std::string& out) {
  nlohmann::json j = nlohmann::json::object();
  j["derivative"] = derivative;
  j["input"] = in.dir;
  j["output"] = out;
  j["architecture"] = model::arch_name(in.model.config.arch);
  j["dtypes"] = in.model.dtypes();
  return j;
}

// out[i, j] = in[rows[i], cols[j]] for a [r, c] matrix (an empty permutation is the identity);
// a 1-D tensor uses `rows` only.
std::vector<float> permute_values(const std::vector<float>& v, const std::vector<int64_t>& shape,
                                  const std::vector<int64_t>& rows,
                                  const std::vector<int64_t>& cols) {
  const int64_t r = shape[0];
  const int64_t c = shape.size() == 2 ? shape[1] : 1;
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < r; ++i) {
    const int64_t si = rows.empty() ? i : rows[static_cast<size_t>(i)];
    const float* src = v.data() + si * c;
    float* dst = out.data() + i * c;
    if (cols.empty()) {
      std::memcpy(dst, src, static_cast<size_t>(c) * sizeof(float));
    } else {
      for (int64_t j = 0; j < c; ++j) dst[j] = src[cols[static_cast<size_t>(j)]];
    }
  }
  return out;
}

// Rows (blocks of `block` rows per item) implied by a permutation of items.
std::vector<int64_t> expand_blocks(const std::vector<int64_t>& items, int64_t block) {
  if (items.empty()) return {};
  std::vector<int64_t> rows;
  rows.reserve(items.size() * static_cast<size_t>(block));
  for (int64_t item : items) {
    for (int64_t d = 0; d < block; ++d) rows.push_back(item * block + d);
  }
  return rows;
}

// Box–Muller N(0, 1) values from std::mt19937_64 (see derive.h).
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : rng_(seed) {}
  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const uint64_t a = rng_(), b = rng_();
    const double u1 = (static_cast<double>(a >> 11) + 1.0) / 9007199254740992.0;
    const double u2 = static_cast<double>(b >> 11) / 9007199254740992.0;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * M_PI * u2);
  }

 private:
  std::mt19937_64 rng_;
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace

Result<nlohmann::json> quantize_roundtrip(const std::string& in_dir, const std::string& out,
                                          const std::string& scheme) {
  DType block_type = DType::kF32;
  if (scheme == "q8_0") {
    block_type = DType::kQ8_0;
  } else if (scheme == "q4_0") {
    block_type = DType::kQ4_0;
  } else if (scheme != "int8") {
    return invalid_argument("unknown quantization scheme \"" + scheme +
                            "\" (expected int8, q8_0 or q4_0)");
  }
  PROV_ASSIGN_OR_RETURN(Input in, open_input(in_dir));
  PROV_RETURN_IF_ERROR(check_output(out, {in_dir}));
  std::vector<std::string> skipped;
  auto fn = [&](const TensorRef& t, const TensorRole*, Work* w) -> Status {
    if (!w->is_float || w->shape.size() != 2) return Status::ok();
    const int64_t rows = w->shape[0], cols = w->shape[1];
    if (scheme == "int8") {
      for (int64_t i = 0; i < rows; ++i) {
        float* row = w->values.data() + i * cols;
        float amax = 0.0f;
        for (int64_t j = 0; j < cols; ++j) amax = std::max(amax, std::fabs(row[j]));
        const float s = amax / 127.0f;
        for (int64_t j = 0; j < cols; ++j) {
          const float q =
              s > 0.0f ? std::min(127.0f, std::max(-127.0f, std::round(row[j] / s))) : 0.0f;
          row[j] = q * s;
        }
      }
    } else {
      const uint32_t block = model::dtype_info(block_type).block_elems;
      if (cols % block != 0) {
        skipped.push_back(t.name);
        return Status::ok();
      }
      const uint64_t n = w->values.size();
      PROV_ASSIGN_OR_RETURN(auto q, model::quantize(block_type, w->values.data(), n));
      PROV_RETURN_IF_ERROR(
          model::dequantize_blocks(block_type, q.data(), n / block, w->values.data()));
    }
    w->modified = true;
    return Status::ok();
  };
  PROV_ASSIGN_OR_RETURN(ChangeStats stats, run(in, out, in.config, fn));
  nlohmann::json j = base_recipe("quantize_roundtrip", in, out);
  j["scheme"] = scheme;
  j["skipped"] = skipped;
  stats.to_json(&j);
  return j;
}

Result<nlohmann::json> permute(const std::string& in_dir, const std::string& out, uint64_t seed,
                               bool residual, bool mlp_units, bool kv_heads) {
  if (!residual && !mlp_units && !kv_heads) {
    return invalid_argument("permute: choose at least one of residual, mlp_units, kv_heads");
  }
  PROV_ASSIGN_OR_RETURN(Input in, open_input(in_dir));
  PROV_RETURN_IF_ERROR(check_output(out, {in_dir}));
  const model::ModelConfig& c = in.model.config;
  const int64_t L = c.num_layers, hd = c.head_dim, group = c.num_heads / c.num_kv_heads;

  std::mt19937_64 rng(seed);
  std::vector<int64_t> res;
  std::vector<std::vector<int64_t>> mlp(static_cast<size_t>(L)), qrows(static_cast<size_t>(L)),
      kvrows(static_cast<size_t>(L));
  if (residual) res = fisher_yates(&rng, c.hidden_size);
  for (int64_t l = 0; l < L; ++l) {
    if (mlp_units) mlp[l] = fisher_yates(&rng, c.intermediate_size);
    if (kv_heads) {
      std::vector<int64_t> heads = fisher_yates(&rng, c.num_kv_heads);
      kvrows[l] = expand_blocks(heads, hd);
      qrows[l] = expand_blocks(heads, hd * group);
    }
  }
  static const std::vector<int64_t> kNone;
  std::vector<std::string> unmapped;
  auto fn = [&](const TensorRef& t, const TensorRole* role, Work* w) -> Status {
    if (role == nullptr || !w->is_float) {
      unmapped.push_back(t.name);
      return Status::ok();
    }
    const std::vector<int64_t>* rows = &kNone;
    const std::vector<int64_t>* cols = &kNone;
    const size_t l = role->layer >= 0 ? static_cast<size_t>(role->layer) : 0;
    switch (role->role) {
      case Role::kTokenEmbedding:
      case Role::kLmHead:
        cols = &res;
        break;
      case Role::kAttnNorm:
      case Role::kMlpNorm:
      case Role::kFinalNorm:
        rows = &res;
        break;
      case Role::kAttnQ:
        rows = &qrows[l];
        cols = &res;
        break;
      case Role::kAttnK:
      case Role::kAttnV:
        rows = &kvrows[l];
        cols = &res;
        break;
      case Role::kAttnO:
        rows = &res;
        cols = &qrows[l];
        break;
      case Role::kMlpGate:
      case Role::kMlpUp:
        rows = &mlp[l];
        cols = &res;
        break;
      case Role::kMlpDown:
        rows = &res;
        cols = &mlp[l];
        break;
      case Role::kQNorm:
      case Role::kKNorm:
        return Status::ok();
      default:
        return unsupported(t.name + ": permute does not handle tensors of role " +
                           role->to_string());
    }
    if (role->bias || w->shape.size() == 1) cols = &kNone;
    if (rows->empty() && cols->empty()) return Status::ok();
    w->values = permute_values(w->values, w->shape, *rows, *cols);
    w->modified = true;
    return Status::ok();
  };
  PROV_ASSIGN_OR_RETURN(ChangeStats stats, run(in, out, in.config, fn));
  nlohmann::json j = base_recipe("permute", in, out);
  j["seed"] = seed;
  j["residual"] = residual;
  j["mlp_units"] = mlp_units;
  j["kv_heads"] = kv_heads;
  j["rng"] = "std::mt19937_64";
  j["unmapped_copied"] = unmapped;
  stats.to_json(&j);
  return j;
}

Result<nlohmann::json> add_noise(const std::string& in_dir, const std::string& out,
                                 double relative_std, uint64_t seed) {
  if (!std::isfinite(relative_std) || relative_std < 0) {
    return invalid_argument("add_noise: relative_std must be a finite number >= 0, not " +
                            std::to_string(relative_std));
  }
  PROV_ASSIGN_OR_RETURN(Input in, open_input(in_dir));
  PROV_RETURN_IF_ERROR(check_output(out, {in_dir}));
  Gaussian gauss(seed);
  auto fn = [&](const TensorRef&, const TensorRole*, Work* w) -> Status {
    if (!w->is_float) return Status::ok();
    const size_t n = w->values.size();
    double mean = 0;
    for (float v : w->values) mean += v;
    mean = n ? mean / static_cast<double>(n) : 0.0;
    double var = 0;
    for (float v : w->values) var += (v - mean) * (v - mean);
    var = n ? var / static_cast<double>(n) : 0.0;
    const double sigma = relative_std * std::sqrt(var);
    for (size_t i = 0; i < n; ++i) {
      const double z = gauss.next();
      if (sigma > 0) w->values[i] = static_cast<float>(w->values[i] + sigma * z);
    }
    w->modified = sigma > 0;
    return Status::ok();
  };
  PROV_ASSIGN_OR_RETURN(ChangeStats stats, run(in, out, in.config, fn));
  nlohmann::json j = base_recipe("add_noise", in, out);
  j["relative_std"] = relative_std;
  j["seed"] = seed;
  j["rng"] = "std::mt19937_64 Box-Muller";
  stats.to_json(&j);
  return j;
}

Result<nlohmann::json> prune(const std::string& in_dir, const std::string& out,
                             const std::vector<int>& keep_layers, double keep_mlp_fraction) {
  if (!(keep_mlp_fraction > 0.0 && keep_mlp_fraction <= 1.0)) {
    return invalid_argument("prune: keep_mlp_fraction must be in (0, 1], not " +
                            std::to_string(keep_mlp_fraction));
  }
  if (keep_layers.empty()) return invalid_argument("prune: keep_layers is empty");
  PROV_ASSIGN_OR_RETURN(Input in, open_input(in_dir));
  PROV_RETURN_IF_ERROR(check_output(out, {in_dir}));
  const model::ModelConfig& c = in.model.config;
  const int64_t L = c.num_layers, I = c.intermediate_size;
  std::map<int64_t, int64_t> new_index;  // old layer -> new layer
  for (size_t i = 0; i < keep_layers.size(); ++i) {
    const int l = keep_layers[i];
    if (l < 0 || l >= L) {
      return invalid_argument("prune: keep_layers[" + std::to_string(i) +
                              "] = " + std::to_string(l) + " is out of range (the model has " +
                              std::to_string(L) + " layers)");
    }
    if (i > 0 && l <= keep_layers[i - 1]) {
      return invalid_argument("prune: keep_layers must be strictly increasing (" +
                              std::to_string(keep_layers[i - 1]) + " then " + std::to_string(l) +
                              ")");
    }
    new_index[l] = static_cast<int64_t>(i);
  }
  const int64_t k = std::max<int64_t>(1, std::llround(keep_mlp_fraction * static_cast<double>(I)));

  // Units kept per old layer, ascending.
  std::map<int64_t, std::vector<int64_t>> units;
  nlohmann::json kept_units = nlohmann::json::object();
  for (const auto& [l, unused] : new_index) {
    if (k == I) break;
    const TensorRef* gate = in.model.find(Role::kMlpGate, static_cast<int>(l));
    const TensorRef* up = in.model.find(Role::kMlpUp, static_cast<int>(l));
    const TensorRef* down = in.model.find(Role::kMlpDown, static_cast<int>(l));
    if (!gate || !up || !down) {
      return not_found(in_dir + ": layer " + std::to_string(l) +
                       " lacks one of mlp.gate_proj, mlp.up_proj, mlp.down_proj");
    }
    PROV_ASSIGN_OR_RETURN(auto g, model::to_float32(*gate));
    PROV_ASSIGN_OR_RETURN(auto u, model::to_float32(*up));
    PROV_ASSIGN_OR_RETURN(auto d, model::to_float32(*down));
    const int64_t H = c.hidden_size;
    std::vector<double> g2(I, 0.0), u2(I, 0.0), d2(I, 0.0);
    for (int64_t j = 0; j < I; ++j) {
      for (int64_t h = 0; h < H; ++h) {
        g2[j] += static_cast<double>(g[j * H + h]) * g[j * H + h];
        u2[j] += static_cast<double>(u[j * H + h]) * u[j * H + h];
      }
    }
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t j = 0; j < I; ++j) d2[j] += static_cast<double>(d[h * I + j]) * d[h * I + j];
    }
    std::vector<double> score(I);
    for (int64_t j = 0; j < I; ++j)
      score[j] = std::sqrt(g2[j]) * std::sqrt(u2[j]) * std::sqrt(d2[j]);
    std::vector<int64_t> idx(I);
    std::iota(idx.begin(), idx.end(), int64_t{0});
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    idx.resize(static_cast<size_t>(k));
    std::sort(idx.begin(), idx.end());
    units[l] = idx;
  }

  static const std::string kPrefix = "model.layers.";
  auto fn = [&](const TensorRef& t, const TensorRole* role, Work* w) -> Status {
    // Layer membership by name, so that unmapped per-layer tensors follow their layer.
    if (t.name.compare(0, kPrefix.size(), kPrefix) == 0) {
      size_t pos = kPrefix.size(), end = pos;
      while (end < t.name.size() && end - pos < 9 &&
             std::isdigit(static_cast<unsigned char>(t.name[end])))
        ++end;
      if (end > pos && end < t.name.size() && t.name[end] == '.') {
        const int64_t old = std::stoll(t.name.substr(pos, end - pos));
        auto it = new_index.find(old);
        if (it == new_index.end()) {
          w->drop = true;
          return Status::ok();
        }
        w->name = kPrefix + std::to_string(it->second) + t.name.substr(end);
      }
    }
    if (role == nullptr || k == I || !w->is_float) return Status::ok();
    const Role r = role->role;
    if (r != Role::kMlpGate && r != Role::kMlpUp && r != Role::kMlpDown) return Status::ok();
    auto uit = units.find(role->layer);
    if (uit == units.end()) {
      return internal_error(t.name + ": no MLP unit selection for layer " +
                            std::to_string(role->layer));
    }
    const std::vector<int64_t>& keep = uit->second;
    if (r == Role::kMlpDown && !role->bias) {
      const int64_t H = w->shape[0];
      std::vector<float> v(static_cast<size_t>(H * k));
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t j = 0; j < k; ++j) v[h * k + j] = w->values[h * I + keep[j]];
      }
      w->values = std::move(v);
      w->shape = {H, k};
    } else if (r != Role::kMlpDown) {  // gate/up rows or their biases
      const int64_t cols = w->shape.size() == 2 ? w->shape[1] : 1;
      std::vector<float> v(static_cast<size_t>(k * cols));
      for (int64_t j = 0; j < k; ++j) {
        std::memcpy(&v[j * cols], &w->values[keep[j] * cols], cols * sizeof(float));
      }
      w->values = std::move(v);
      w->shape[0] = k;
    } else {
      return Status::ok();  // down_proj bias: [hidden], unchanged
    }
    w->modified = true;
    return Status::ok();
  };

  nlohmann::json config = in.config;
  config["num_hidden_layers"] = static_cast<int64_t>(keep_layers.size());
  config["intermediate_size"] = k;
  auto lt = config.find("layer_types");
  if (lt != config.end() && lt->is_array() && static_cast<int64_t>(lt->size()) == L) {
    nlohmann::json sub = nlohmann::json::array();
    for (int l : keep_layers) sub.push_back((*lt)[static_cast<size_t>(l)]);
    *lt = sub;
  }
  PROV_ASSIGN_OR_RETURN(ChangeStats stats, run(in, out, config, fn));
  (void)stats;
  nlohmann::json j = base_recipe("prune", in, out);
  j["keep_layers"] = keep_layers;
  j["keep_mlp_fraction"] = keep_mlp_fraction;
  j["num_layers"] = {{"before", L}, {"after", static_cast<int64_t>(keep_layers.size())}};
  j["intermediate_size"] = {{"before", I}, {"after", k}};
  j["unit_score"] = "||gate_j|| * ||up_j|| * ||down_:,j||";
  return j;
}

Result<nlohmann::json> merge(const std::string& a_dir, const std::string& b_dir,
                             const std::string& out, double weight_a) {
  if (!(weight_a >= 0.0 && weight_a <= 1.0)) {
    return invalid_argument("merge: weight_a must be in [0, 1], not " + std::to_string(weight_a));
  }
  PROV_ASSIGN_OR_RETURN(Input a, open_input(a_dir));
  PROV_ASSIGN_OR_RETURN(Input b, open_input(b_dir));
  PROV_RETURN_IF_ERROR(check_output(out, {a_dir, b_dir}));
  if (a.model.config.arch != b.model.config.arch) {
    return invalid_argument(std::string("merge: architectures differ (") +
                            model::arch_name(a.model.config.arch) + " in " + a_dir + ", " +
                            model::arch_name(b.model.config.arch) + " in " + b_dir + ")");
  }
  const auto& ta = a.model.checkpoint.tensors;
  const auto& tb = b.model.checkpoint.tensors;
  std::set<std::string> names_a;
  for (const TensorRef& t : ta) names_a.insert(t.name);
  for (const TensorRef& t : tb) {
    if (!names_a.count(t.name)) {
      return invalid_argument("merge: tensor " + t.name + " of " + b_dir + " is not in " + a_dir);
    }
  }
  for (const TensorRef& t : ta) {
    const TensorRef* u = b.model.checkpoint.find(t.name);
    if (u == nullptr) {
      return invalid_argument("merge: tensor " + t.name + " of " + a_dir + " is not in " + b_dir);
    }
    if (u->shape != t.shape) {
      auto str = [](const std::vector<int64_t>& s) {
        std::string o = "[";
        for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
        return o + "]";
      };
      return invalid_argument("merge: tensor " + t.name + " has shape " + str(t.shape) + " in " +
                              a_dir + " but " + str(u->shape) + " in " + b_dir);
    }
    if (model::dtype_info(t.dtype).is_float != model::dtype_info(u->dtype).is_float) {
      return invalid_argument("merge: tensor " + t.name + " is " + model::dtype_name(t.dtype) +
                              " in " + a_dir + " but " + model::dtype_name(u->dtype) + " in " +
                              b_dir);
    }
  }
  const double wa = weight_a, wb = 1.0 - weight_a;
  auto fn = [&](const TensorRef& t, const TensorRole*, Work* w) -> Status {
    if (!w->is_float) return Status::ok();
    PROV_ASSIGN_OR_RETURN(auto vb, model::to_float32(*b.model.checkpoint.find(t.name)));
    for (size_t i = 0; i < w->values.size(); ++i) {
      w->values[i] = static_cast<float>(wa * w->values[i] + wb * vb[i]);
    }
    w->modified = true;
    return Status::ok();
  };
  PROV_ASSIGN_OR_RETURN(ChangeStats stats, run(a, out, a.config, fn));
  nlohmann::json j = base_recipe("merge", a, out);
  j.erase("input");
  j["inputs"] = {a_dir, b_dir};
  j["weight_a"] = weight_a;
  j["change_relative_to"] = a_dir;
  stats.to_json(&j);
  return j;
}

}  // namespace prov::zoo
