#include "fingerprint/identity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "core/sha256.h"
#include "core/thread_pool.h"
#include "model/formats/digest.h"
#include "model/formats/dtype.h"
#include "model/formats/quants.h"
#include "model/formats/tensor.h"

namespace fs = std::filesystem;

namespace prov::fingerprint {

using model::DType;
using model::Model;
using model::TensorRef;
using model::TensorRole;

namespace {

constexpr double kRequantMismatchFraction = 1e-3;

// ---------------------------------------------------------------------------------------------
// File identity.

// (relative name, size) of the files compute_manifest would list; nullopt when the path cannot
// be listed (compute_manifest then reports the problem).
std::optional<std::vector<std::pair<std::string, uint64_t>>> list_files(const std::string& path) {
  std::error_code ec;
  std::vector<std::pair<std::string, uint64_t>> out;
  if (fs::is_regular_file(path, ec)) {
    uint64_t size = fs::file_size(path, ec);
    if (ec) return std::nullopt;
    out.emplace_back(fs::path(path).filename().generic_string(), size);
    return out;
  }
  if (!fs::is_directory(path, ec)) return std::nullopt;
  fs::recursive_directory_iterator it(path, fs::directory_options::none, ec), end;
  if (ec) return std::nullopt;
  for (; it != end; it.increment(ec)) {
    if (ec) return std::nullopt;
    const std::string rel = fs::relative(it->path(), path, ec).generic_string();
    if (ec) return std::nullopt;
    if (model::manifest_excludes(rel)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!fs::is_regular_file(it->path(), ec)) continue;  // follows links
    const uint64_t size = fs::file_size(it->path(), ec);
    if (ec) return std::nullopt;
    out.emplace_back(rel, size);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// True when two files have the same bytes: read side by side in 4 MiB blocks, stopping at the
// first difference (no hashing: most pairs differ within the first block of tensor data).
Result<bool> files_equal(const std::string& a, const std::string& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa) return io_error(a + ": cannot open");
  if (!fb) return io_error(b + ": cannot open");
  constexpr size_t kBlock = size_t{4} << 20;
  std::vector<char> ba(kBlock), bb(kBlock);
  while (true) {
    fa.read(ba.data(), kBlock);
    fb.read(bb.data(), kBlock);
    const std::streamsize na = fa.gcount(), nb = fb.gcount();
    if (na != nb) return false;
    if (na == 0) break;
    if (std::memcmp(ba.data(), bb.data(), static_cast<size_t>(na)) != 0) return false;
    if (fa.bad()) return io_error(a + ": read failed");
    if (fb.bad()) return io_error(b + ": read failed");
  }
  if (fa.bad()) return io_error(a + ": read failed");
  if (fb.bad()) return io_error(b + ": read failed");
  return true;
}

// True when the weight files of both checkpoints are byte-identical one for one.
Result<bool> weight_files_identical(const model::Checkpoint& a, const model::Checkpoint& b) {
  std::vector<std::string> fa = a.files, fb = b.files;
  if (fa.empty() || fa.size() != fb.size()) return false;
  auto by_name = [](const std::string& x, const std::string& y) {
    return fs::path(x).filename() < fs::path(y).filename();
  };
  std::sort(fa.begin(), fa.end(), by_name);
  std::sort(fb.begin(), fb.end(), by_name);
  for (size_t i = 0; i < fa.size(); ++i) {
    std::error_code e1, e2;
    const uint64_t s1 = fs::file_size(fa[i], e1), s2 = fs::file_size(fb[i], e2);
    if (e1 || e2 || s1 != s2) return false;
  }
  for (size_t i = 0; i < fa.size(); ++i) {
    PROV_ASSIGN_OR_RETURN(bool same, files_equal(fa[i], fb[i]));
    if (!same) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Roles.

int role_group(const TensorRole& r) {
  if (r.layer >= 0) return 1;
  if (r.role == model::Role::kTokenEmbedding || r.role == model::Role::kPositionEmbedding) return 0;
  return 2;
}

bool canonical_less(const TensorRole& x, const TensorRole& y) {
  auto key = [](const TensorRole& r) {
    return std::make_tuple(role_group(r), r.layer, static_cast<int>(r.role), r.expert, r.bias);
  };
  return key(x) < key(y);
}

// Role string -> (role, tensor) for every tensor with a role.
std::map<std::string, std::pair<TensorRole, const TensorRef*>> role_map(const Model& m) {
  std::map<std::string, std::pair<TensorRole, const TensorRef*>> out;
  for (const auto& [role, index] : m.roles) {
    out[role.to_string()] = {role, &m.checkpoint.tensors[index]};
  }
  return out;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", v);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Per-tensor rules.

bool same_value(float x, float y) {
  uint32_t bx, by;
  std::memcpy(&bx, &x, 4);
  std::memcpy(&by, &y, 4);
  return bx == by || (x == y);  // +0 == -0
}

bool is_legacy_block(DType t) {
  return t == DType::kQ4_0 || t == DType::kQ4_1 || t == DType::kQ5_0 || t == DType::kQ5_1 ||
         t == DType::kQ8_0;
}

bool is_block_quant(DType t) {
  return model::dtype_info(t).quantized;  // ggml block types and I8_GROUPED
}

// Rounds x to a 16-bit float format and back; toward_zero: the neighbour toward zero of the
// nearest-even result when that one is larger in magnitude.
float round16(float x, DType t, bool toward_zero) {
  uint16_t h = t == DType::kBF16 ? model::float_to_bf16(x) : model::float_to_fp16(x);
  auto back = [&](uint16_t v) {
    return t == DType::kBF16 ? model::bf16_to_float(v) : model::fp16_to_float(v);
  };
  float r = back(h);
  if (toward_zero && std::isfinite(x) && std::fabs(r) > std::fabs(x) && (h & 0x7fff) != 0) {
    r = back(static_cast<uint16_t>(h - 1));  // sign-magnitude: one step toward zero
  }
  return r;
}

// Rounds v in place to a storage dtype (F32: unchanged).
void round_to_storage(std::vector<float>* v, DType t) {
  if (t != DType::kF16 && t != DType::kBF16) return;
  for (float& x : *v) x = round16(x, t, false);
}

// q: values of the quantized side, other: the other side. Rule (1) for F16/BF16.
bool rounding_of(const std::vector<float>& q, const std::vector<float>& other, DType t) {
  for (size_t i = 0; i < q.size(); ++i) {
    if (same_value(q[i], round16(other[i], t, false))) continue;
    if (same_value(q[i], round16(other[i], t, true))) continue;
    if (std::isnan(q[i]) && std::isnan(other[i])) continue;
    return false;
  }
  return true;
}

// Rule (1) for legacy ggml blocks: |q - other| <= 1.05 |d| per block, d read from the stored
// block. False when the layout cannot be checked (transposed storage).
Result<bool> within_block_steps(const TensorRef& t, const std::vector<float>& q,
                                const std::vector<float>& other) {
  if (t.transposed) return false;
  PROV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, model::canonical_bytes(t));
  const model::DTypeInfo& info = model::dtype_info(t.dtype);
  const uint64_t nblocks = q.size() / info.block_elems;
  if (bytes.size() < nblocks * info.block_bytes) return false;
  for (uint64_t b = 0; b < nblocks; ++b) {
    uint16_t h;
    std::memcpy(&h, bytes.data() + b * info.block_bytes, 2);
    const double tol = 1.05 * std::fabs(static_cast<double>(model::fp16_to_float(h)));
    for (uint64_t j = b * info.block_elems; j < (b + 1) * info.block_elems; ++j) {
      if (std::fabs(static_cast<double>(q[j]) - other[j]) > tol) return false;
    }
  }
  return true;
}

struct GridScheme {
  const char* name;
  double levels;  // L
  bool per_row;   // else blocks of 32
  double elem_tol;
  DType ggml;  // for re-quantization (kF32: int8 per row)
};
constexpr GridScheme kGridSchemes[] = {
    {"int8-row", 127, true, 0.55, DType::kF32},
    {"Q8_0", 127, false, 0.6, DType::kQ8_0},
    {"Q4_0", 8, false, 0.6, DType::kQ4_0},
};

// The round trip of `w` ([rows, cols]) under a scheme, as zoo/derive.h quantize_roundtrip.
Result<std::vector<float>> roundtrip(const GridScheme& s, const std::vector<float>& w, int64_t rows,
                                     int64_t cols) {
  std::vector<float> out(w);
  if (s.per_row) {
    for (int64_t i = 0; i < rows; ++i) {
      float* row = out.data() + i * cols;
      float amax = 0.0f;
      for (int64_t j = 0; j < cols; ++j) amax = std::max(amax, std::fabs(row[j]));
      const float sc = amax / 127.0f;
      for (int64_t j = 0; j < cols; ++j) {
        const float q =
            sc > 0.0f ? std::min(127.0f, std::max(-127.0f, std::round(row[j] / sc))) : 0.0f;
        row[j] = q * sc;
      }
    }
    return out;
  }
  PROV_ASSIGN_OR_RETURN(std::vector<uint8_t> q, model::quantize(s.ggml, w.data(), w.size()));
  PROV_RETURN_IF_ERROR(model::dequantize_blocks(s.ggml, q.data(), w.size() / 32, out.data()));
  return out;
}

// Rule (2): q equals the round trip of `other`, rounded to q's storage dtype.
Result<bool> requantizes_to(const GridScheme& s, const std::vector<float>& q, DType q_dtype,
                            const std::vector<float>& other, int64_t rows, int64_t cols) {
  PROV_ASSIGN_OR_RETURN(std::vector<float> expect, roundtrip(s, other, rows, cols));
  round_to_storage(&expect, q_dtype);
  const uint64_t allowed = static_cast<uint64_t>(kRequantMismatchFraction * q.size());
  uint64_t mismatches = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    if (!same_value(q[i], expect[i]) && ++mismatches > allowed) return false;
  }
  return true;
}

// Rule (3): q's values lie on the scheme's grid and `other` within elem_tol steps of them.
bool on_grid(const GridScheme& s, const std::vector<float>& q, DType q_dtype,
             const std::vector<float>& other, int64_t rows, int64_t cols) {
  double u;
  if (q_dtype == DType::kF32) {
    u = std::ldexp(1.0, -24);
  } else if (q_dtype == DType::kF16) {
    u = std::ldexp(1.0, -11);
  } else {
    return false;
  }
  if (1e-3 + 2 * s.levels * u > 0.25) return false;
  const int64_t block = s.per_row ? cols : 32;
  if (block < 16) return false;
  const size_t n = static_cast<size_t>(rows * cols);
  for (size_t start = 0; start < n; start += static_cast<size_t>(block)) {
    const size_t stop = start + static_cast<size_t>(block);
    double m = 0;
    for (size_t j = start; j < stop; ++j) m = std::max(m, std::fabs(static_cast<double>(q[j])));
    if (m == 0) continue;
    if (!std::isfinite(m)) return false;
    const double step = m / s.levels;
    for (size_t j = start; j < stop; ++j) {
      const double r = q[j] / step;
      const double k = std::nearbyint(r);
      if (std::fabs(k) > s.levels) return false;
      if (std::fabs(r - k) > 1e-3 + 2 * std::fabs(k) * u) return false;
      // Q4_0 clamps the end of the grid opposite the largest magnitude (k = -7 or 7): a value
      // there may be up to one step away.
      const double tol = s.levels == 8 && std::fabs(k) == 7 ? 1.05 : s.elem_tol;
      if (std::fabs(static_cast<double>(q[j]) - other[j]) > tol * step) return false;
    }
  }
  return true;
}

struct Pair {
  TensorRole role;
  const TensorRef* a;  // candidate
  const TensorRef* b;  // reference
};

std::string scheme_of_dtype(DType t) {
  switch (t) {
    case DType::kF16:
      return "f16";
    case DType::kBF16:
      return "bf16";
    case DType::kF8_E4M3:
      return "f8_e4m3";
    case DType::kF8_E5M2:
      return "f8_e5m2";
    default:
      return model::dtype_name(t);
  }
}

Status compare_pair(const Pair& p, TensorMatch* m) {
  m->role = p.role.to_string();
  m->shape = p.b->shape;
  m->dtype_a = model::dtype_name(p.a->dtype);
  m->dtype_b = model::dtype_name(p.b->dtype);
  auto ra = model::to_float32(*p.a);
  if (!ra.is_ok()) return ra.status().with_context("candidate tensor " + m->role);
  auto rb = model::to_float32(*p.b);
  if (!rb.is_ok()) return rb.status().with_context("reference tensor " + m->role);
  const std::vector<float>& a = *ra;
  const std::vector<float>& b = *rb;
  if (a.size() != b.size()) {
    return internal_error(m->role + ": element counts differ after equal shapes");
  }
  double d2 = 0, a2 = 0, b2 = 0, ab = 0, maxabs = 0;
  bool identical = true;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i], d = x - y;
    if (!same_value(a[i], b[i])) identical = false;
    d2 += d * d;
    a2 += x * x;
    b2 += y * y;
    ab += x * y;
    maxabs = std::max(maxabs, std::fabs(d));
  }
  m->bit_identical = identical;
  m->max_abs_error = identical ? 0.0 : maxabs;
  if (identical) {
    m->relative_error = 0;
  } else if (b2 > 0) {
    m->relative_error = std::sqrt(d2 / b2);
  } else {
    m->relative_error = std::numeric_limits<double>::infinity();
  }
  if (a2 == 0 && b2 == 0) {
    m->cosine = 1;
  } else if (a2 == 0 || b2 == 0) {
    m->cosine = 0;
  } else {
    m->cosine = ab / (std::sqrt(a2) * std::sqrt(b2));
  }
  if (identical) {
    m->explained = true;
    return Status::ok();
  }
  if (!std::isfinite(m->relative_error)) return Status::ok();

  auto accept = [&](const std::string& scheme, const char* side) {
    m->scheme = scheme;
    m->quantized_side = side;
    m->bound = identity_error_bound(scheme);
    m->explained = true;
  };
  // Rule (1): by dtype, candidate side first.
  struct Side {
    const TensorRef* t;
    const std::vector<float>* q;
    const TensorRef* other_t;
    const std::vector<float>* other;
    const char* name;
  };
  const Side sides[2] = {{p.a, &a, p.b, &b, "candidate"}, {p.b, &b, p.a, &a, "reference"}};
  for (const Side& s : sides) {
    const DType t = s.t->dtype;
    if (t == s.other_t->dtype && !is_block_quant(t)) continue;
    const std::string scheme = scheme_of_dtype(t);
    const double bound = identity_error_bound(scheme);
    if (t == DType::kF16 || t == DType::kBF16) {
      if (rounding_of(*s.q, *s.other, t) && m->relative_error <= bound) {
        accept(scheme, s.name);
        return Status::ok();
      }
    } else if (is_block_quant(t) || t == DType::kF8_E4M3 || t == DType::kF8_E5M2) {
      if (bound > 0 && m->relative_error <= bound) {
        bool ok = true;
        if (is_legacy_block(t)) {
          PROV_ASSIGN_OR_RETURN(ok, within_block_steps(*s.t, *s.q, *s.other));
        }
        if (ok) {
          accept(scheme, s.name);
          return Status::ok();
        }
      }
    }
  }
  // Rules (2) and (3): matrices only.
  if (m->shape.size() != 2) return Status::ok();
  const int64_t rows = m->shape[0], cols = m->shape[1];
  if (rows <= 0 || cols <= 0) return Status::ok();
  for (const GridScheme& g : kGridSchemes) {
    if (m->relative_error > identity_error_bound(g.name)) continue;
    if (!g.per_row && cols % 32 != 0) continue;
    for (const Side& s : sides) {
      const DType t = s.t->dtype;
      if (t != DType::kF32 && t != DType::kF16 && t != DType::kBF16) continue;
      PROV_ASSIGN_OR_RETURN(bool ok, requantizes_to(g, *s.q, t, *s.other, rows, cols));
      if (ok) {
        accept(g.name, s.name);
        return Status::ok();
      }
    }
  }
  for (const GridScheme& g : kGridSchemes) {
    if (m->relative_error > identity_error_bound(g.name)) continue;
    if (!g.per_row && cols % 32 != 0) continue;
    for (const Side& s : sides) {
      if (on_grid(g, *s.q, s.t->dtype, *s.other, rows, cols)) {
        accept(g.name, s.name);
        return Status::ok();
      }
    }
  }
  return Status::ok();
}

}  // namespace

double identity_error_bound(const std::string& scheme) {
  static const std::map<std::string, double> kBounds = {
      {"bf16", std::ldexp(1.0, -7)},
      {"f16", std::ldexp(1.0, -9)},
      {"f8_e4m3", 0.125},
      {"f8_e5m2", 0.25},
      {"int8-row", 0.05},
      {"I8_GROUPED", 0.05},
      {"Q8_0", 0.02},
      {"Q6_K", 0.04},
      {"Q5_0", 0.08},
      {"Q5_1", 0.08},
      {"Q5_K", 0.08},
      {"Q4_0", 0.2},
      {"Q4_1", 0.2},
      {"Q4_K", 0.2},
      {"Q3_K", 0.35},
      {"Q2_K", 0.6},
  };
  auto it = kBounds.find(scheme);
  return it == kBounds.end() ? 0.0 : it->second;
}

Result<IdentityResult> compare_identity(const Model& candidate, const Model& reference,
                                        const IdentityOptions& options) {
  IdentityResult res;

  // identical
  if (options.file_digests) {
    // The weight files first (the bulk, read at most once); only when they are identical the
    // other files the manifest lists, to tell equal manifests from an edited config.
    PROV_ASSIGN_OR_RETURN(bool same_weights,
                          weight_files_identical(candidate.checkpoint, reference.checkpoint));
    if (same_weights) {
      auto la = list_files(candidate.checkpoint.path);
      auto lb = list_files(reference.checkpoint.path);
      bool all_same = la && lb && *la == *lb;
      auto file_of = [](const std::string& root, const std::string& name) {
        std::error_code ec;
        return fs::is_regular_file(root, ec) ? root : (fs::path(root) / name).string();
      };
      auto is_weight_file = [&](const std::string& path) {
        for (const auto& w : candidate.checkpoint.files) {
          std::error_code ec;
          if (fs::equivalent(path, w, ec)) return true;
        }
        return false;
      };
      for (size_t i = 0; all_same && i < la->size(); ++i) {
        const std::string a = file_of(candidate.checkpoint.path, (*la)[i].first);
        if (is_weight_file(a)) continue;
        PROV_ASSIGN_OR_RETURN(all_same,
                              files_equal(a, file_of(reference.checkpoint.path, (*la)[i].first)));
      }
      res.relation = "identical";
      if (all_same) {
        res.reason = "all " + std::to_string(la->size()) +
                     " files are byte-identical (so are the OMS manifests)";
      } else {
        res.reason = "the " + std::to_string(candidate.checkpoint.files.size()) +
                     " weight file(s) are byte-identical; other files of the model (config, "
                     "tokenizer) differ";
      }
      return res;
    }
  }

  // incomparable
  auto ma = role_map(candidate);
  auto mb = role_map(reference);
  auto tie = [](decltype(ma)* mine, const decltype(ma)& theirs, const Model& m) {
    const std::string lm = TensorRole{model::Role::kLmHead}.to_string();
    if (mine->count(lm) == 0 && theirs.count(lm) != 0 && m.config.tie_word_embeddings) {
      if (const TensorRef* t = m.output_projection()) {
        (*mine)[lm] = {TensorRole{model::Role::kLmHead}, t};
      }
    }
  };
  tie(&ma, mb, candidate);
  tie(&mb, ma, reference);
  std::vector<TensorRole> only_a, only_b;
  std::vector<Pair> pairs;
  for (const auto& [name, entry] : ma) {
    auto it = mb.find(name);
    if (it == mb.end()) {
      only_a.push_back(entry.first);
    } else {
      pairs.push_back({entry.first, entry.second, it->second.second});
    }
  }
  for (const auto& [name, entry] : mb) {
    if (ma.count(name) == 0) only_b.push_back(entry.first);
  }
  std::sort(only_a.begin(), only_a.end(), canonical_less);
  std::sort(only_b.begin(), only_b.end(), canonical_less);
  std::sort(pairs.begin(), pairs.end(),
            [](const Pair& x, const Pair& y) { return canonical_less(x.role, y.role); });
  if (!only_a.empty() || !only_b.empty()) {
    res.relation = "incomparable";
    res.reason = "the tensor roles differ: the candidate has " + std::to_string(ma.size()) +
                 " roles and the reference " + std::to_string(mb.size());
    if (!only_b.empty()) {
      res.reason += "; " + std::to_string(only_b.size()) +
                    " only in the reference (first: " + only_b[0].to_string() + ")";
    }
    if (!only_a.empty()) {
      res.reason += "; " + std::to_string(only_a.size()) +
                    " only in the candidate (first: " + only_a[0].to_string() + ")";
    }
    return res;
  }
  size_t shape_diffs = 0;
  const Pair* first_diff = nullptr;
  for (const Pair& p : pairs) {
    if (p.a->shape != p.b->shape) {
      if (!first_diff) first_diff = &p;
      ++shape_diffs;
    }
  }
  if (first_diff) {
    res.relation = "incomparable";
    res.reason = std::to_string(shape_diffs) + " of " + std::to_string(pairs.size()) +
                 " tensors differ in shape (first: " + first_diff->role.to_string() + " is " +
                 shape_str(first_diff->a->shape) + " in the candidate, " +
                 shape_str(first_diff->b->shape) + " in the reference)";
    return res;
  }
  if (pairs.empty()) {
    res.relation = "incomparable";
    res.reason = "neither model has a tensor with a role";
    return res;
  }

  // Tensor by tensor; with stop_at_first_difference in groups of kStopGroup pairs (canonical
  // order, a fixed group size so that the result does not depend on the thread count).
  constexpr size_t kStopGroup = 4;
  res.tensors.resize(pairs.size());
  std::vector<Status> errors(pairs.size());
  const unsigned threads = options.threads ? options.threads : std::min(default_thread_count(), 8u);
  size_t compared = 0;
  while (compared < pairs.size()) {
    const size_t group = options.stop_at_first_difference
                             ? std::min(kStopGroup, pairs.size() - compared)
                             : pairs.size() - compared;
    parallel_for(group, threads, [&](size_t k) {
      const size_t i = compared + k;
      errors[i] = compare_pair(pairs[i], &res.tensors[i]);
    });
    for (size_t i = compared; i < compared + group; ++i) PROV_RETURN_IF_ERROR(errors[i]);
    compared += group;
    if (std::any_of(res.tensors.begin(),
                    res.tensors.begin() + static_cast<std::ptrdiff_t>(compared),
                    [](const TensorMatch& m) { return !m.explained; })) {
      break;
    }
  }
  const bool stopped = compared < pairs.size();
  res.tensors.resize(compared);

  size_t n_identical = 0, n_explained = 0;
  const TensorMatch* first_unexplained = nullptr;
  size_t n_unexplained = 0;
  std::map<std::string, size_t> scheme_count, side_count;
  for (const TensorMatch& m : res.tensors) {
    res.max_relative_error = std::max(res.max_relative_error, m.relative_error);
    if (m.bit_identical) {
      ++n_identical;
    } else if (m.explained) {
      ++n_explained;
      ++scheme_count[m.scheme];
      ++side_count[m.quantized_side];
    } else {
      ++n_unexplained;
      if (!first_unexplained) first_unexplained = &m;
    }
  }
  const std::string n_total = std::to_string(res.tensors.size());
  if (n_identical == res.tensors.size()) {
    res.relation = "converted";
    res.reason = "all " + n_total +
                 " tensors have the same shapes and bit-identical fp32 values, stored in other "
                 "files (" +
                 model::format_name(candidate.checkpoint.format) + " vs " +
                 model::format_name(reference.checkpoint.format) + ")";
    return res;
  }
  if (n_unexplained == 0) {
    std::vector<std::pair<std::string, size_t>> schemes(scheme_count.begin(), scheme_count.end());
    std::stable_sort(schemes.begin(), schemes.end(),
                     [](const auto& x, const auto& y) { return x.second > y.second; });
    for (const auto& [name, count] : schemes) {
      res.scheme += (res.scheme.empty() ? "" : "+") + name;
    }
    res.quantized_side =
        side_count["candidate"] >= side_count["reference"] ? "candidate" : "reference";
    res.relation = "quantized";
    res.reason = "the " + res.quantized_side + " is a quantization (" + res.scheme + ") of the " +
                 (res.quantized_side == "candidate" ? "reference" : "candidate") + ": " +
                 std::to_string(n_explained) + " of " + n_total +
                 " tensors are roundings within the format's error (largest relative error " +
                 fmt(res.max_relative_error) + "), the other " + std::to_string(n_identical) +
                 " bit-identical";
    return res;
  }
  res.relation = "none";
  if (stopped) {
    res.reason = std::to_string(n_unexplained) + " of the first " + n_total + " of " +
                 std::to_string(pairs.size()) +
                 " tensors (canonical order; the comparison stops there) differ beyond any "
                 "re-encoding (first: " +
                 first_unexplained->role + ", relative error " +
                 fmt(first_unexplained->relative_error) +
                 ", no quantization grid or rounding explains it); no identity relation";
    return res;
  }
  res.reason = std::to_string(n_unexplained) + " of " + n_total +
               " tensors differ beyond any re-encoding (first: " + first_unexplained->role +
               ", relative error " + fmt(first_unexplained->relative_error) +
               ", no quantization grid or rounding explains it); no identity relation";
  return res;
}

}  // namespace prov::fingerprint
