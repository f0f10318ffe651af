#include "fingerprint/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include <unistd.h>

#include <Eigen/Dense>

#include "core/thread_pool.h"
#include "fingerprint/assignment.h"
#include "fingerprint/gram_internal.h"
#include "fingerprint/gram_kernel.h"
#include "model/formats/tensor.h"
#include "model/tokenizers/tokenizer.h"

namespace prov::fingerprint {

namespace {

using model::Model;
using model::Role;
using model::TensorRole;

constexpr char kNull[] =
    "the candidate's weights were initialised and trained independently of the reference's "
    "(exact signed permutation test of per-layer Gram matrices at the same residual indices)";
constexpr char kAlignedNull[] =
    "score only: Gram similarity after aligning residual dimensions through the shared "
    "vocabulary, as a z-score against random signed alignments (not calibrated: independently "
    "trained models share some structure; the threshold is set from measured independent pairs)";

unsigned worker_count(unsigned requested) {
  if (requested) return requested;
  return std::min(default_thread_count(), 8u);
}

// ---- 1. the vocabulary frame --------------------------------------------------------------

// Token text -> id for every usable token (decoded text, no specials, no U+FFFD, first id wins).
Result<std::map<std::string, int32_t>> token_texts(const model::Tokenizer& tok) {
  std::map<std::string, int32_t> out;
  const int32_t n = tok.vocab_size();
  for (int32_t id = 0; id < n; ++id) {
    if (tok.is_special(id)) continue;
    auto text = tok.decode({id});
    if (!text.is_ok()) return text.status();
    if (text->empty() || text->find("\xEF\xBF\xBD") != std::string::npos) continue;
    out.emplace(*text, id);
  }
  return out;
}

struct Frame {
  std::vector<std::pair<int32_t, int32_t>> pairs;  // (reference id, candidate id)
  std::string how;
};

Result<Frame> vocabulary_frame(const Model& cand, const Model& ref, int max_tokens) {
  Frame f;
  auto tc = model::load_model_tokenizer(cand);
  auto tr = model::load_model_tokenizer(ref);
  if (tc.is_ok() && tr.is_ok()) {
    auto mc = token_texts(**tc);
    if (!mc.is_ok()) return mc.status().with_context("candidate tokenizer");
    auto mr = token_texts(**tr);
    if (!mr.is_ok()) return mr.status().with_context("reference tokenizer");
    for (const auto& [text, rid] : *mr) {
      auto it = mc->find(text);
      if (it != mc->end()) f.pairs.emplace_back(rid, it->second);
    }
    f.how = "token texts";
  } else if (!tc.is_ok() && tc.status().code() != StatusCode::kNotFound) {
    return tc.status().with_context("candidate tokenizer");
  } else if (!tr.is_ok() && tr.status().code() != StatusCode::kNotFound) {
    return tr.status().with_context("reference tokenizer");
  } else if (cand.config.vocab_size == ref.config.vocab_size) {
    for (int32_t i = 0; i < static_cast<int32_t>(ref.config.vocab_size); ++i) {
      f.pairs.emplace_back(i, i);
    }
    f.how = "token ids (a tokenizer is missing; vocabularies of equal size)";
  }
  const int64_t cv = cand.config.vocab_size, rv = ref.config.vocab_size;
  f.pairs.erase(std::remove_if(f.pairs.begin(), f.pairs.end(),
                               [&](const auto& p) {
                                 return p.first < 0 || p.first >= rv || p.second < 0 ||
                                        p.second >= cv;
                               }),
                f.pairs.end());
  if (max_tokens > 0 && f.pairs.size() > static_cast<size_t>(max_tokens)) {
    std::vector<std::pair<int32_t, int32_t>> kept;
    const double step = static_cast<double>(f.pairs.size()) / max_tokens;
    for (int i = 0; i < max_tokens; ++i) kept.push_back(f.pairs[static_cast<size_t>(i * step)]);
    f.pairs.swap(kept);
  }
  return f;
}

const model::TensorRef* embedding_of(const Model& m) {
  if (auto* t = m.find(Role::kTokenEmbedding)) return t;
  return m.output_projection();
}

// Rows `ids` of a [vocab, hidden] tensor as a double matrix.
Result<Eigen::MatrixXd> gather_rows(const model::TensorRef& t, const std::vector<int32_t>& ids,
                                    int64_t hidden) {
  auto v = model::to_float32(t);
  if (!v.is_ok()) return v.status();
  Eigen::MatrixXd out(static_cast<Eigen::Index>(ids.size()), hidden);
  for (size_t r = 0; r < ids.size(); ++r) {
    const float* row = v->data() + static_cast<size_t>(ids[r]) * static_cast<size_t>(hidden);
    for (int64_t c = 0; c < hidden; ++c) out(static_cast<Eigen::Index>(r), c) = row[c];
  }
  return out;
}

// ---- 3. Gram matrices --------------------------------------------------------------------

bool reads_residual(Role r) {
  return r == Role::kAttnQ || r == Role::kAttnK || r == Role::kAttnV || r == Role::kAttnQKV ||
         r == Role::kMlpGate || r == Role::kMlpUp || r == Role::kRouter;
}
bool writes_residual(Role r) {
  return r == Role::kAttnO || r == Role::kMlpDown;
}

struct Component {
  int layer;
  Role role;
  std::vector<size_t> tensors;  // indices into Model::checkpoint.tensors (experts summed)
};

std::vector<Component> components_of(const Model& m) {
  std::map<std::pair<int, int>, Component> by;
  for (const auto& [role, index] : m.roles) {
    if (role.bias || role.layer < 0) continue;
    if (!reads_residual(role.role) && !writes_residual(role.role)) continue;
    auto& c = by[{role.layer, static_cast<int>(role.role)}];
    c.layer = role.layer;
    c.role = role.role;
    c.tensors.push_back(index);
  }
  std::vector<Component> out;
  for (auto& [k, c] : by) out.push_back(std::move(c));
  return out;
}

// fp32 values of a plain-dtype matrix slice read in place: element (r, c) of the canonical
// [rows, cols] matrix, stored row (*row_order)[r] when the rows are reordered.
struct PlainMatrix {
  const uint8_t* base = nullptr;
  model::DType dtype = model::DType::kF32;
  const std::vector<int64_t>* row_order = nullptr;
  int64_t cols = 0;

  const uint8_t* row(int64_t r) const {
    const int64_t stored = row_order ? (*row_order)[static_cast<size_t>(r)] : r;
    return base + static_cast<uint64_t>(stored) * static_cast<uint64_t>(cols) * elem_bytes();
  }
  uint64_t elem_bytes() const { return dtype == model::DType::kF32 ? 4 : 2; }
  float at(const uint8_t* row, int64_t c) const {
    if (dtype == model::DType::kF32) {
      float f;
      std::memcpy(&f, row + 4 * c, 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, row + 2 * c, 2);
    return dtype == model::DType::kBF16 ? model::bf16_to_float(h) : model::fp16_to_float(h);
  }
  // Row r as fp32 into out[0, cols): one sequential read of the row.
  void convert_row(int64_t r, float* out) const {
    const uint8_t* p = row(r);
    for (int64_t c = 0; c < cols; ++c) out[c] = at(p, c);
  }
};

// True when a [slices, rows, cols] tensor can be read in place as a PlainMatrix: fp32 / fp16 /
// bf16, not transposed, its bytes exactly its values, and reordered rows only in a 2-D matrix.
bool readable_in_place(const model::TensorRef& t, int64_t slices, int64_t rows) {
  const bool plain = t.dtype == model::DType::kF32 || t.dtype == model::DType::kF16 ||
                     t.dtype == model::DType::kBF16;
  if (!plain || t.transposed) return false;
  if (t.numel() * (t.dtype == model::DType::kF32 ? 4 : 2) != t.nbytes) return false;
  return !t.row_order || (slices == 1 && t.row_order->size() == static_cast<size_t>(rows));
}

// gram (s x s) += A^T A for a = A, [k, n] row-major with n >= s a multiple of kGramColumnBlock
// (columns s..n-1 zero).
void add_gram(Eigen::MatrixXd& gram, const std::vector<float>& a, int s, int n, int64_t k) {
  std::vector<float> g(static_cast<size_t>(n) * n, 0.0f);
  gram_accumulate(a.data(), k, n, g.data());
  for (int i = 0; i < s; ++i)
    for (int j = i; j < s; ++j) {
      const float v = g[static_cast<size_t>(i) * n + j];
      gram(i, j) += v;
      if (i != j) gram(j, i) += v;
    }
}

// The Gram matrices of a component over the residual dimensions of every view, from one read of
// each of its tensors (unnormalised, in double). Plain fp32 / fp16 / bf16 tensors are read in
// place, only at the view's dimensions; others (quantized, transposed) are converted whole first.
Result<std::vector<Eigen::MatrixXd>> raw_grams(const Model& m, const Component& c,
                                               const std::vector<GramView>& views) {
  const int64_t hidden = m.config.hidden_size;
  std::vector<Eigen::MatrixXd> grams;
  for (const auto& v : views) {
    const Eigen::Index s = static_cast<Eigen::Index>(v.dims.size());
    grams.push_back(Eigen::MatrixXd::Zero(s, s));
  }
  std::vector<std::vector<float>> subs(views.size());
  std::vector<int> padded(views.size());
  for (size_t vi = 0; vi < views.size(); ++vi) {
    const int s = static_cast<int>(views[vi].dims.size());
    padded[vi] = (s + kGramColumnBlock - 1) / kGramColumnBlock * kGramColumnBlock;
  }
  std::vector<float> row_buf;
  for (size_t index : c.tensors) {
    const model::TensorRef& t = m.checkpoint.tensors[index];
    const auto& shape = t.shape;
    int64_t slices = 1, rows = 0, cols = 0;
    if (shape.size() == 2) {
      rows = shape[0];
      cols = shape[1];
    } else if (shape.size() == 3) {
      slices = shape[0];
      rows = shape[1];
      cols = shape[2];
    } else {
      return corrupt(t.name + ": expected a matrix for " + model::role_name(c.role));
    }
    const bool input_side = reads_residual(c.role);
    if ((input_side ? cols : rows) != hidden) {
      return corrupt(t.name + ": its residual side has " +
                     std::to_string(input_side ? cols : rows) + " entries, not hidden_size " +
                     std::to_string(hidden));
    }
    std::vector<float> converted;
    PlainMatrix pm;
    pm.cols = cols;
    row_buf.resize(static_cast<size_t>(cols));
    if (readable_in_place(t, slices, rows)) {
      pm.base = t.data;
      pm.dtype = t.dtype;
      pm.row_order = t.row_order.get();
    } else {
      auto values = model::to_float32(t);
      if (!values.is_ok()) return values.status();
      converted = std::move(*values);
      pm.base = reinterpret_cast<const uint8_t*>(converted.data());
      pm.dtype = model::DType::kF32;
    }
    for (int64_t sl = 0; sl < slices; ++sl) {
      PlainMatrix slice = pm;
      slice.base = pm.base + static_cast<uint64_t>(sl * rows * cols) * pm.elem_bytes();
      // subs[v] is A, [k, n] row-major: k = the matrix's other side, n = the view's dimensions
      // padded to the kernel's column block; the Gram over the dimensions is A^T A.
      if (input_side) {
        // W [units, hidden]: columns `dims` of every row, row by row for all views (the row
        // stays in cache between views).
        for (size_t vi = 0; vi < views.size(); ++vi) {
          subs[vi].assign(static_cast<size_t>(rows) * padded[vi], 0.0f);
        }
        for (int64_t r = 0; r < rows; ++r) {
          const uint8_t* row = slice.row(r);
          for (size_t vi = 0; vi < views.size(); ++vi) {
            const std::vector<int>& dims = views[vi].dims;
            float* out = subs[vi].data() + r * padded[vi];
            for (size_t i = 0; i < dims.size(); ++i) out[i] = slice.at(row, dims[i]);
          }
        }
        for (size_t vi = 0; vi < views.size(); ++vi) {
          add_gram(grams[vi], subs[vi], static_cast<int>(views[vi].dims.size()), padded[vi], rows);
        }
      } else {
        // W [hidden, units]: rows `dims`, converted whole and written as columns of A.
        for (size_t vi = 0; vi < views.size(); ++vi) {
          const std::vector<int>& dims = views[vi].dims;
          const int64_t n = padded[vi];
          subs[vi].assign(static_cast<size_t>(cols) * n, 0.0f);
          for (size_t i = 0; i < dims.size(); ++i) {
            slice.convert_row(dims[i], row_buf.data());
            float* out = subs[vi].data() + i;
            for (int64_t k = 0; k < cols; ++k) out[k * n] = row_buf[static_cast<size_t>(k)];
          }
          add_gram(grams[vi], subs[vi], static_cast<int>(dims.size()), padded[vi], cols);
        }
      }
    }
  }
  return grams;
}

// Normalises a raw Gram matrix to cosines, applies the view's signs and removes its `structured`
// leading eigen-components (largest eigenvalues): the shared structure that independently
// trained models converge to. What is left is the bulk that shared initialisation keeps and
// independent training does not.
void finish_gram(Eigen::MatrixXd& gram, const GramView& view) {
  const Eigen::Index s = gram.rows();
  Eigen::VectorXd inv(s);
  for (Eigen::Index i = 0; i < s; ++i) {
    const double d = gram(i, i);
    inv(i) = d > 0 ? 1.0 / std::sqrt(d) : 0.0;
  }
  for (Eigen::Index i = 0; i < s; ++i) {
    for (Eigen::Index j = 0; j < s; ++j) {
      gram(i, j) *=
          inv(i) * inv(j) * view.signs[static_cast<size_t>(i)] * view.signs[static_cast<size_t>(j)];
    }
  }
  const int k = std::min<int>(view.structured, static_cast<int>(s) - 2);
  if (k > 0) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(gram);
    // eigenvalues ascending: remove the k largest
    for (int t = 0; t < k; ++t) {
      const Eigen::Index idx = s - 1 - t;
      const Eigen::VectorXd v = es.eigenvectors().col(idx);
      gram -= es.eigenvalues()(idx) * v * v.transpose();
    }
  }
}

}  // namespace

// Off-diagonal upper triangle of a reference Gram, centred and scaled to unit norm (so that the
// Pearson correlation with another matrix is a dot product over its centred-and-scaled entries).
std::vector<double> centred_upper(const Eigen::MatrixXd& g) {
  const Eigen::Index s = g.rows();
  std::vector<double> a;
  a.reserve(static_cast<size_t>(s * (s - 1) / 2));
  for (Eigen::Index i = 0; i < s; ++i)
    for (Eigen::Index j = i + 1; j < s; ++j) a.push_back(g(i, j));
  if (a.empty()) return a;
  const double mean = std::accumulate(a.begin(), a.end(), 0.0) / a.size();
  double ss = 0;
  for (double& x : a) {
    x -= mean;
    ss += x * x;
  }
  const double inv = ss > 0 ? 1.0 / std::sqrt(ss) : 0.0;
  for (double& x : a) x *= inv;
  return a;
}

namespace {

// Pearson correlation between the reference entries `a` (centred_upper) and the candidate Gram
// `b` read through a signed permutation: b'(i, j) = sign[i] sign[j] b(perm[i], perm[j]).
double permuted_correlation(const std::vector<double>& a, const Eigen::MatrixXd& b,
                            const std::vector<int>& perm, const std::vector<double>& sign) {
  const int s = static_cast<int>(b.rows());
  double dot = 0, sum = 0, sq = 0;
  size_t k = 0;
  for (int i = 0; i < s; ++i) {
    const double* col = b.data() + static_cast<Eigen::Index>(perm[i]) * s;  // column = row (sym)
    const double si = sign[i];
    for (int j = i + 1; j < s; ++j, ++k) {
      const double x = si * sign[j] * col[perm[j]];
      dot += a[k] * x;
      sum += x;
      sq += x * x;
    }
  }
  if (k == 0) return 0;
  const double var = sq - sum * sum / static_cast<double>(k);
  return var > 0 ? dot / std::sqrt(var) : 0.0;
}

}  // namespace

namespace {

// gram_sets' tasks: (bytes, index), components first, then side tasks (index comps.size() + j),
// largest first (stable: equal sizes keep their order).
std::vector<std::pair<uint64_t, size_t>> task_order(const Model& m,
                                                    const std::vector<Component>& comps,
                                                    const std::vector<SideTask>& side) {
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < comps.size(); ++i) {
    uint64_t bytes = 0;
    for (size_t t : comps[i].tensors) bytes += m.checkpoint.tensors[t].nbytes;
    order.emplace_back(bytes, i);
  }
  for (size_t i = 0; i < side.size(); ++i) order.emplace_back(side[i].bytes, comps.size() + i);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& x, const auto& y) { return x.first > y.first; });
  return order;
}

}  // namespace

void prefetch_gram_tensors(const Model& m, uint64_t budget_bytes) {
  const auto comps = components_of(m);
  uint64_t advised = 0;
  for (const auto& [bytes, i] : task_order(m, comps, {})) {
    if (advised + bytes > budget_bytes) break;
    for (size_t t : comps[i].tensors) model::prefetch(m.checkpoint.tensors[t]);
    advised += bytes;
  }
}

Result<std::vector<GramSet>> gram_sets(const Model& m, const std::vector<GramView>& views,
                                       unsigned threads, const std::vector<SideTask>& side) {
  const auto comps = components_of(m);
  size_t layers = static_cast<size_t>(std::max<int64_t>(m.config.num_layers, 0));
  for (const auto& c : comps) layers = std::max(layers, static_cast<size_t>(c.layer) + 1);
  std::vector<GramSet> sets(views.size());
  for (size_t v = 0; v < views.size(); ++v) {
    sets[v].grams.resize(layers);
    if (views[v].reference) sets[v].upper.resize(layers);
  }
  std::vector<Result<std::vector<Eigen::MatrixXd>>> out(comps.size(),
                                                        std::vector<Eigen::MatrixXd>());
  std::vector<Status> side_status(side.size());
  const std::vector<std::pair<uint64_t, size_t>> order = task_order(m, comps, side);
  // Each task asks the kernel to read ahead the next tasks' tensors: checkpoints larger than the
  // page cache come from disk, and the workers should not wait on every fault.
  constexpr size_t kAhead = 2;
  auto prefetch_task = [&](size_t k) {
    if (k >= order.size() || order[k].second >= comps.size()) return;
    for (size_t t : comps[order[k].second].tensors) model::prefetch(m.checkpoint.tensors[t]);
  };
  for (size_t k = 0; k < std::min(kAhead, order.size()); ++k) prefetch_task(k);
  parallel_for(order.size(), threads, [&](size_t k) {
    prefetch_task(k + kAhead);
    const size_t i = order[k].second;
    if (i >= comps.size()) {
      side_status[i - comps.size()] = side[i - comps.size()].run();
      return;
    }
    out[i] = raw_grams(m, comps[i], views);
    if (!out[i].is_ok()) return;
    for (size_t v = 0; v < views.size(); ++v) finish_gram((*out[i])[v], views[v]);
  });
  for (const Status& s : side_status) PROV_RETURN_IF_ERROR(s);
  for (size_t i = 0; i < comps.size(); ++i) {
    if (!out[i].is_ok()) return out[i].status();
    const int kind = static_cast<int>(comps[i].role);
    for (size_t v = 0; v < views.size(); ++v) {
      Eigen::MatrixXd& g = (*out[i])[v];
      if (views[v].reference) sets[v].upper[comps[i].layer][kind] = centred_upper(g);
      sets[v].grams[comps[i].layer][kind] = std::move(g);
    }
  }
  return sets;
}

namespace {

// ---- relation evidence on the aligned embedding ---------------------------------------------

struct ChangeStats {
  double relative_error = 0, norm_cv = 0, excess_kurtosis = 0;
};

ChangeStats change_stats(const Eigen::MatrixXd& ref, const Eigen::MatrixXd& cand_aligned) {
  ChangeStats st;
  const Eigen::MatrixXd d = cand_aligned - ref;
  const double rn = ref.norm();
  st.relative_error = rn > 0 ? d.norm() / rn : (d.norm() > 0 ? INFINITY : 0.0);
  Eigen::VectorXd norms = d.rowwise().norm();
  const double mean = norms.mean();
  const double var = (norms.array() - mean).square().mean();
  st.norm_cv = mean > 0 ? std::sqrt(var) / mean : 0.0;
  const double m = d.mean();
  const double m2 = (d.array() - m).square().mean();
  const double m4 = (d.array() - m).square().square().mean();
  st.excess_kurtosis = m2 > 0 ? m4 / (m2 * m2) - 3.0 : 0.0;
  return st;
}

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

TestSeeds test_seeds(uint64_t seed) {
  std::mt19937_64 rng(seed);
  TestSeeds t;
  t.a = rng();
  t.b = rng();
  t.subset = rng();
  return t;
}

std::vector<int> raw_test_dims(int64_t hidden, int max_dims, uint64_t subset_seed) {
  std::vector<int> dims(static_cast<size_t>(std::max<int64_t>(hidden, 0)));
  std::iota(dims.begin(), dims.end(), 0);
  if (max_dims > 0 && dims.size() > static_cast<size_t>(max_dims)) {
    std::mt19937_64 srng(subset_seed);
    std::shuffle(dims.begin(), dims.end(), srng);
    dims.resize(static_cast<size_t>(max_dims));
    std::sort(dims.begin(), dims.end());
  }
  return dims;
}

GramTestResult permutation_test(const GramSet& ref, const GramSet& cand, int s, int permutations,
                                uint64_t seed, unsigned threads) {
  GramTestResult out;
  const GramSet* gr = &ref;
  const GramSet* gc = &cand;
  const int lr = static_cast<int>(gr->grams.size()), lc = static_cast<int>(gc->grams.size());

  // Permutations drawn up front from one seeded stream: results do not depend on threads. Index
  // n_perm is the identity (the observed statistic).
  std::vector<int> identity_perm(static_cast<size_t>(s));
  std::iota(identity_perm.begin(), identity_perm.end(), 0);
  const std::vector<double> plus(static_cast<size_t>(s), 1.0);
  std::mt19937_64 rng(seed);
  const int n_perm = std::max(permutations, 1);
  std::vector<std::vector<int>> perms(static_cast<size_t>(n_perm) + 1);
  std::vector<std::vector<double>> signs(static_cast<size_t>(n_perm) + 1);
  for (int b = 0; b < n_perm; ++b) {
    perms[b] = identity_perm;
    std::shuffle(perms[b].begin(), perms[b].end(), rng);
    signs[b].resize(static_cast<size_t>(s));
    for (int i = 0; i < s; ++i) signs[b][i] = (rng() & 1) ? 1.0 : -1.0;
  }
  perms[n_perm] = identity_perm;
  signs[n_perm] = plus;
  const size_t n_all = static_cast<size_t>(n_perm) + 1;

  // Every layer pair the test can use (the diagonal at equal depth, all pairs otherwise) and
  // the matrix kinds both sides hold there. The correlations are computed matrix by matrix, each
  // matrix under every permutation while it is in cache; a pair's similarity under one
  // permutation is the mean over its kinds, in kind order.
  struct LayerPair {
    int a = 0, b = 0;
    std::vector<std::pair<int, const Eigen::MatrixXd*>> kinds;  // kind, candidate Gram
  };
  std::vector<LayerPair> pairs;
  std::vector<int> pair_index(static_cast<size_t>(lr) * static_cast<size_t>(std::max(lc, 1)), -1);
  for (int a = 0; a < lr; ++a) {
    for (int b = 0; b < lc; ++b) {
      if (lr == lc && a != b) continue;
      LayerPair lp{a, b, {}};
      for (const auto& [kind, up] : gr->upper[static_cast<size_t>(a)]) {
        auto it = gc->grams[static_cast<size_t>(b)].find(kind);
        if (it != gc->grams[static_cast<size_t>(b)].end()) lp.kinds.emplace_back(kind, &it->second);
      }
      if (lp.kinds.empty()) continue;
      pair_index[static_cast<size_t>(a) * lc + b] = static_cast<int>(pairs.size());
      pairs.push_back(std::move(lp));
    }
  }
  if (pairs.empty()) return out;
  std::vector<std::pair<size_t, size_t>> tasks;  // (pair, kind index)
  for (size_t p = 0; p < pairs.size(); ++p)
    for (size_t k = 0; k < pairs[p].kinds.size(); ++k) tasks.emplace_back(p, k);
  std::vector<std::vector<std::vector<double>>> rho(pairs.size());  // [pair][kind][permutation]
  for (size_t p = 0; p < pairs.size(); ++p) rho[p].resize(pairs[p].kinds.size());
  parallel_for(tasks.size(), threads, [&](size_t t) {
    const auto [p, k] = tasks[t];
    const LayerPair& lp = pairs[p];
    const std::vector<double>& up = gr->upper[static_cast<size_t>(lp.a)].at(lp.kinds[k].first);
    std::vector<double>& r = rho[p][k];
    r.resize(n_all);
    for (size_t b = 0; b < n_all; ++b)
      r[b] = permuted_correlation(up, *lp.kinds[k].second, perms[b], signs[b]);
  });
  // sim[pair][permutation]: the mean over the pair's kinds.
  std::vector<std::vector<double>> sim(pairs.size(), std::vector<double>(n_all, 0.0));
  for (size_t p = 0; p < pairs.size(); ++p) {
    for (size_t b = 0; b < n_all; ++b) {
      double sum = 0;
      for (size_t k = 0; k < pairs[p].kinds.size(); ++k) sum += rho[p][k][b];
      sim[p][b] = sum / static_cast<double>(pairs[p].kinds.size());
    }
  }

  struct Scored {
    double t = 0;
    std::vector<int> pairing;  // indices into `pairs`
    std::vector<double> sims;
  };
  // T and the layer pairing under permutation b: layers paired by index at equal depth, else by
  // a linear assignment on the similarities.
  auto score_all = [&](size_t b) {
    Scored o;
    if (lr == lc) {
      for (int l = 0; l < lr; ++l) {
        const int p = pair_index[static_cast<size_t>(l) * lc + l];
        if (p < 0) continue;
        o.pairing.push_back(p);
        o.sims.push_back(sim[static_cast<size_t>(p)][b]);
      }
    } else {
      std::vector<double> m(static_cast<size_t>(lr) * static_cast<size_t>(lc), -2.0);
      for (size_t p = 0; p < pairs.size(); ++p) {
        m[static_cast<size_t>(pairs[p].a) * lc + pairs[p].b] = sim[p][b];
      }
      auto lap = solve_assignment(m.data(), lr, lc);
      if (lap.is_ok()) {
        for (int a = 0; a < lr; ++a) {
          const int c = lap->row_to_col[static_cast<size_t>(a)];
          if (c < 0 || m[static_cast<size_t>(a * lc + c)] < -1.5) continue;
          o.pairing.push_back(pair_index[static_cast<size_t>(a) * lc + c]);
          o.sims.push_back(m[static_cast<size_t>(a * lc + c)]);
        }
      }
    }
    if (!o.sims.empty()) {
      o.t = std::accumulate(o.sims.begin(), o.sims.end(), 0.0) / o.sims.size();
    }
    return o;
  };
  const Scored observed = score_all(static_cast<size_t>(n_perm));
  if (observed.pairing.empty()) return out;
  out.empty = false;
  out.t = observed.t;
  std::vector<double> t_perm(static_cast<size_t>(n_perm));
  parallel_for(static_cast<size_t>(n_perm), threads, [&](size_t b) { t_perm[b] = score_all(b).t; });
  int ge = 0;
  double mean = 0, sq = 0;
  for (double t : t_perm) {
    ge += t >= observed.t ? 1 : 0;
    mean += t;
  }
  mean /= n_perm;
  for (double t : t_perm) sq += (t - mean) * (t - mean);
  out.null_mean = mean;
  out.null_sd = n_perm > 1 ? std::sqrt(sq / (n_perm - 1)) : 0.0;
  out.z = out.null_sd > 0 ? (observed.t - mean) / out.null_sd : 0.0;
  out.p = (1.0 + ge) / (1.0 + n_perm);
  for (size_t k = 0; k < observed.pairing.size(); ++k) {
    const size_t p = static_cast<size_t>(observed.pairing[k]);
    LayerSimilarity ls;
    ls.reference_layer = pairs[p].a;
    ls.candidate_layer = pairs[p].b;
    ls.similarity = observed.sims[k];
    for (size_t kk = 0; kk < pairs[p].kinds.size(); ++kk) {
      ls.components.push_back({model::role_name(static_cast<Role>(pairs[p].kinds[kk].first)),
                               rho[p][kk][static_cast<size_t>(n_perm)]});
    }
    int lge = 0;
    for (int b = 0; b < n_perm; ++b)
      lge += sim[p][static_cast<size_t>(b)] >= observed.sims[k] ? 1 : 0;
    ls.p_value = (1.0 + lge) / (1.0 + n_perm);
    out.layers.push_back(std::move(ls));
  }
  if (lr == lc) {
    for (int l = 0; l < lr; ++l) {
      for (const auto& [kind, g] : gr->grams[static_cast<size_t>(l)]) {
        auto it = gc->grams[static_cast<size_t>(l)].find(kind);
        if (it == gc->grams[static_cast<size_t>(l)].end()) continue;
        const double n = g.norm();
        if (n > 0) {
          out.max_gram_difference = std::max(out.max_gram_difference, (it->second - g).norm() / n);
        }
      }
    }
  }
  return out;
}

Result<WeightLineageResult> compare_weights(const Model& candidate, const Model& reference,
                                            const WeightTestOptions& options) {
  WeightLineageResult res;
  const unsigned threads = worker_count(options.threads);
  if (options.run_identity) {
    IdentityOptions io;
    io.threads = threads;
    io.stop_at_first_difference = !options.identity_all_tensors;
    auto id = compare_identity(candidate, reference, io);
    if (!id.is_ok()) return id.status();
    res.identity = std::move(*id);
    const std::string& rel = res.identity.relation;
    if (rel == "identical" || rel == "converted" || rel == "quantized") {
      res.relation = *parse_relation(rel);
      res.reason = res.identity.reason;
      res.method = "identity";
      res.null_hypothesis = res.identity.null_hypothesis;
      return res;
    }
  }
  res.method = "gram-permutation";
  res.null_hypothesis = kNull;
  res.aligned.null_hypothesis = kAlignedNull;
  auto inconclusive = [&](std::string why) {
    res.relation = Relation::kInconclusive;
    res.reason = std::move(why);
    res.p_value.reset();
    return res;
  };
  const int64_t dc = candidate.config.hidden_size, dr = reference.config.hidden_size;
  const TestSeeds seeds = test_seeds(options.seed);
  const uint64_t seed_a = seeds.a, seed_b = seeds.b, seed_s = seeds.subset;

  // While the alignment is computed (CPU only), the disk reads ahead the reference's largest
  // matrices, up to a third of the physical memory: what gram_sets reads first.
  struct Joiner {
    std::thread t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } reader;
  {
    const uint64_t memory = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                            static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    reader.t = std::thread([&reference, memory] { prefetch_gram_tensors(reference, memory / 3); });
  }

  // The vocabulary frame and the embedding-derived alignment (test B's dimensions).
  auto frame = vocabulary_frame(candidate, reference, options.max_tokens);
  if (!frame.is_ok()) return frame.status();
  res.shared_tokens = static_cast<int>(frame->pairs.size());
  const model::TensorRef* ec = embedding_of(candidate);
  const model::TensorRef* er = embedding_of(reference);
  std::string no_frame;
  if (frame->pairs.size() < 32) {
    no_frame = "only " + std::to_string(frame->pairs.size()) +
               " tokens are shared by the two vocabularies (at least 32 are needed to align the "
               "embeddings)";
  } else if (!ec || !er) {
    no_frame = "a model has no token embedding or output projection";
  }
  std::optional<Eigen::MatrixXd> xr, xc;
  std::vector<int> matched_ref, matched_cand;
  std::vector<double> matched_sign;
  if (no_frame.empty()) {
    std::vector<int32_t> rid, cid;
    for (const auto& [r, c] : frame->pairs) {
      rid.push_back(r);
      cid.push_back(c);
    }
    auto gxr = gather_rows(*er, rid, dr);
    if (!gxr.is_ok()) return gxr.status().with_context("reference embedding");
    auto gxc = gather_rows(*ec, cid, dc);
    if (!gxc.is_ok()) return gxc.status().with_context("candidate embedding");
    xr = std::move(*gxr);
    xc = std::move(*gxc);
    auto standardise = [](Eigen::MatrixXd x) {
      const Eigen::RowVectorXd mean = x.colwise().mean();
      x.rowwise() -= mean;
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        const double n = x.col(j).norm();
        if (n > 0) x.col(j) /= n;
      }
      return x;
    };
    // dr x dc, in fp32 (it only ranks candidate matches) and in column blocks across the
    // workers (Eigen runs one product on one core).
    const Eigen::MatrixXf sr = standardise(*xr).cast<float>(), sc = standardise(*xc).cast<float>();
    Eigen::MatrixXf corr(dr, dc);
    constexpr Eigen::Index kBlock = 128;
    const size_t blocks = static_cast<size_t>((dc + kBlock - 1) / kBlock);
    parallel_for(blocks, threads, [&](size_t bi) {
      const Eigen::Index c0 = static_cast<Eigen::Index>(bi) * kBlock;
      const Eigen::Index w = std::min<Eigen::Index>(kBlock, dc - c0);
      corr.middleCols(c0, w).noalias() = sr.transpose() * sc.middleCols(c0, w);
    });
    std::vector<double> score(static_cast<size_t>(dr * dc));
    for (int64_t i = 0; i < dr; ++i)
      for (int64_t j = 0; j < dc; ++j)
        score[static_cast<size_t>(i * dc + j)] = std::fabs(corr(i, j));
    auto match = solve_assignment(score.data(), static_cast<int>(dr), static_cast<int>(dc));
    if (!match.is_ok()) return match.status().with_context("residual alignment");
    double align_sum = 0;
    for (int64_t i = 0; i < dr; ++i) {
      const int j = match->row_to_col[static_cast<size_t>(i)];
      if (j < 0) continue;
      matched_ref.push_back(static_cast<int>(i));
      matched_cand.push_back(j);
      matched_sign.push_back(corr(i, j) < 0 ? -1.0 : 1.0);
      align_sum += std::fabs(corr(i, j));
      if (j != i || corr(i, j) < 0) res.residual_reordered = true;
    }
    res.matched_dims = static_cast<int>(matched_ref.size());
    res.embedding_alignment = res.matched_dims ? align_sum / res.matched_dims : 0.0;
  }

  // The Gram matrices of both tests, each model's tensors read once: test A on the raw residual
  // indices (equal widths), test B on the aligned dimensions.
  std::vector<GramView> ref_views, cand_views;
  const bool want_a = dc == dr && dr >= 3;
  if (want_a) {
    const std::vector<int> dims = raw_test_dims(dr, options.max_dims, seed_s);
    const std::vector<double> plus(dims.size(), 1.0);
    ref_views.push_back({dims, plus, 0, true});
    cand_views.push_back({dims, plus, 0, false});
  }
  const bool want_b = matched_ref.size() >= 3;
  if (want_b) {
    GramView rv, cv;
    for (int k :
         raw_test_dims(static_cast<int64_t>(matched_ref.size()), options.max_dims, seed_s)) {
      rv.dims.push_back(matched_ref[static_cast<size_t>(k)]);
      rv.signs.push_back(1.0);
      cv.dims.push_back(matched_cand[static_cast<size_t>(k)]);
      cv.signs.push_back(matched_sign[static_cast<size_t>(k)]);
    }
    rv.structured = cv.structured = options.structured_components;
    rv.reference = true;
    ref_views.push_back(std::move(rv));
    cand_views.push_back(std::move(cv));
  }
  std::vector<GramSet> gr, gc;
  if (reader.t.joinable()) reader.t.join();
  if (!ref_views.empty()) {
    auto r = gram_sets(reference, ref_views, threads);
    if (!r.is_ok()) return r.status().with_context("reference");
    auto c = gram_sets(candidate, cand_views, threads);
    if (!c.is_ok()) return c.status().with_context("candidate");
    gr = std::move(*r);
    gc = std::move(*c);
  }
  bool ran_a = false;
  if (want_a) {
    const int s = static_cast<int>(ref_views[0].dims.size());
    GramTestResult a = permutation_test(gr[0], gc[0], s, options.permutations, seed_a, threads);
    if (!a.empty) {
      ran_a = true;
      res.statistic = a.t;
      res.z_score = a.z;
      res.p_value = a.p;
      res.null_mean = a.null_mean;
      res.null_sd = a.null_sd;
      res.permutations = std::max(options.permutations, 1);
      res.test_dims = s;
      res.layers = std::move(a.layers);
    }
  }
  if (want_b) {
    const size_t v = want_a ? 1 : 0;
    const int s = static_cast<int>(ref_views[v].dims.size());
    GramTestResult b = permutation_test(gr[v], gc[v], s, options.permutations, seed_b, threads);
    if (!b.empty) {
      res.aligned.ran = true;
      res.aligned.statistic = b.t;
      res.aligned.z_score = b.z;
      res.aligned.max_gram_difference = b.max_gram_difference;
      res.aligned.layers = std::move(b.layers);
      if (!ran_a) res.test_dims = s;
    }
  }
  if (!ran_a && !res.aligned.ran) {
    if (!no_frame.empty()) return inconclusive(no_frame);
    return inconclusive("the two models have no weight matrix kind in common in any layer");
  }

  // The relation.
  const bool a_related = ran_a && *res.p_value < options.alpha;
  const bool b_related = res.aligned.ran && res.aligned.z_score >= options.aligned_z_threshold;
  std::string evidence;
  if (ran_a) {
    evidence = "raw-index Gram test p = " + fmt_g(*res.p_value) + " (" +
               std::to_string(res.permutations) + " signed permutations, similarity " +
               fmt_g(res.statistic) + ", z = " + fmt_g(res.z_score) + ")";
  } else {
    evidence = "raw-index Gram test not applicable (residual widths " + std::to_string(dc) +
               " and " + std::to_string(dr) + ")";
  }
  if (res.aligned.ran) {
    evidence += "; aligned Gram score z = " + fmt_g(res.aligned.z_score) + " (similarity " +
                fmt_g(res.aligned.statistic) + ", threshold " + fmt_g(options.aligned_z_threshold) +
                ")";
  }
  if (!a_related && !b_related) {
    res.relation = Relation::kIndependent;
    res.reason = "no evidence of shared weights: " + evidence;
    if (!ran_a) res.p_value.reset();
    return res;
  }
  // Under a reordering only the alignment sees the relation: no calibrated p-value then.
  const bool via_alignment = !a_related;
  if (via_alignment) {
    res.p_value.reset();
    res.layers = res.aligned.layers;
  }
  const auto& cc = candidate.config;
  const auto& rc = reference.config;
  const bool smaller = cc.num_layers < rc.num_layers ||
                       cc.intermediate_size < rc.intermediate_size || cc.num_heads < rc.num_heads ||
                       cc.num_kv_heads < rc.num_kv_heads || cc.hidden_size < rc.hidden_size;
  const bool larger = cc.num_layers > rc.num_layers ||
                      cc.intermediate_size > rc.intermediate_size || cc.num_heads > rc.num_heads ||
                      cc.num_kv_heads > rc.num_kv_heads || cc.hidden_size > rc.hidden_size;
  if (smaller || larger) {
    res.relation = Relation::kPruned;
    res.direction = smaller && !larger ? "candidate is smaller" : "reference is smaller";
    res.reason = "shares weights with the reference (" + evidence + "), " + res.direction + " (" +
                 std::to_string(cc.num_layers) + " vs " + std::to_string(rc.num_layers) +
                 " layers, " + std::to_string(cc.intermediate_size) + " vs " +
                 std::to_string(rc.intermediate_size) + " MLP units, hidden " +
                 std::to_string(cc.hidden_size) + " vs " + std::to_string(rc.hidden_size) + ")";
    return res;
  }
  if (!xr || matched_ref.empty()) {
    res.relation = Relation::kFinetuned;
    res.reason = "shares weights with the reference (" + evidence +
                 "); no shared vocabulary to tell fine-tuning from noise";
    return res;
  }
  // Same shapes: the embedding change, aligned (by the alignment when only it sees the relation,
  // else by index).
  const size_t n = matched_ref.size();
  Eigen::MatrixXd ref_m(xr->rows(), static_cast<Eigen::Index>(n));
  Eigen::MatrixXd cand_m(xc->rows(), static_cast<Eigen::Index>(n));
  for (size_t k = 0; k < n; ++k) {
    const int rcol = matched_ref[k];
    ref_m.col(static_cast<Eigen::Index>(k)) = xr->col(rcol);
    cand_m.col(static_cast<Eigen::Index>(k)) =
        via_alignment ? Eigen::VectorXd(xc->col(matched_cand[k]) * matched_sign[k])
                      : Eigen::VectorXd(xc->col(rcol));
  }
  const ChangeStats ch = change_stats(ref_m, cand_m);
  res.aligned_relative_error = ch.relative_error;
  res.change_norm_cv = ch.norm_cv;
  res.change_excess_kurtosis = ch.excess_kurtosis;
  if (via_alignment && ch.relative_error <= 1e-5 && res.aligned.max_gram_difference <= 1e-4) {
    res.relation = Relation::kPermuted;
    res.reason =
        "the same weights reordered: after aligning residual dimensions the embedding "
        "differs by " +
        fmt_g(ch.relative_error) + " and every layer's Gram matrices by at most " +
        fmt_g(res.aligned.max_gram_difference) + " (relative); " + evidence;
    return res;
  }
  const std::string prefix =
      via_alignment ? "shares weights with the reference under a reordering of its dimensions ("
                    : "shares weights with the reference (";
  const std::string change = "relative size " + fmt_g(ch.relative_error) +
                             ", per-token change norms vary by " + fmt_g(ch.norm_cv) +
                             ", excess kurtosis " + fmt_g(ch.excess_kurtosis);
  if (ch.norm_cv < 0.35 && std::fabs(ch.excess_kurtosis) < 0.5) {
    res.relation = Relation::kNoised;
    res.reason =
        prefix + evidence + "); the embedding change looks like i.i.d. noise (" + change + ")";
    return res;
  }
  res.relation = Relation::kFinetuned;
  res.reason =
      prefix + evidence + "); the embedding changed unevenly across tokens (" + change + ")";
  return res;
}

nlohmann::json weight_result_json(const WeightLineageResult& r, bool tensors) {
  nlohmann::json j;
  j["relation"] = relation_name(r.relation);
  j["reason"] = r.reason;
  j["p_value"] = r.p_value ? nlohmann::json(*r.p_value) : nlohmann::json(nullptr);
  if (!r.direction.empty()) j["direction"] = r.direction;
  nlohmann::json ev = nlohmann::json::array();
  if (!r.identity.relation.empty()) {
    nlohmann::json e = {{"method", "identity"},
                        {"statistic", "max_relative_error"},
                        {"value", r.identity.max_relative_error},
                        {"p_value", nullptr},
                        {"null_hypothesis", r.identity.null_hypothesis},
                        {"result", r.identity.relation}};
    if (r.identity.relation == "quantized") {
      e["scheme"] = r.identity.scheme;
      e["quantized_side"] = r.identity.quantized_side;
    }
    ev.push_back(e);
  }
  if (r.method == "gram-permutation" && r.permutations > 0) {
    nlohmann::json e = {{"method", "gram-permutation"},
                        {"statistic", "mean_layer_gram_correlation"},
                        {"value", r.statistic},
                        {"p_value", r.p_value ? nlohmann::json(*r.p_value) : nlohmann::json()},
                        {"null_hypothesis", r.null_hypothesis},
                        {"permutations", r.permutations},
                        {"z_score", r.z_score},
                        {"null_mean", r.null_mean},
                        {"null_sd", r.null_sd}};
    ev.push_back(e);
  }
  if (r.aligned.ran) {
    ev.push_back({{"method", "aligned-gram"},
                  {"statistic", "aligned_gram_z_score"},
                  {"value", r.aligned.z_score},
                  {"similarity", r.aligned.statistic},
                  {"p_value", nullptr},
                  {"null_hypothesis", r.aligned.null_hypothesis}});
  }
  j["evidence"] = ev;
  j["frame"] = {{"shared_tokens", r.shared_tokens},
                {"matched_dims", r.matched_dims},
                {"test_dims", r.test_dims},
                {"embedding_alignment", r.embedding_alignment},
                {"residual_reordered", r.residual_reordered}};
  if (r.relation == Relation::kPermuted || r.relation == Relation::kNoised ||
      r.relation == Relation::kFinetuned) {
    j["change"] = {{"aligned_relative_error", r.aligned_relative_error},
                   {"norm_cv", r.change_norm_cv},
                   {"excess_kurtosis", r.change_excess_kurtosis}};
  }
  j["layers"] = nlohmann::json::array();
  for (const auto& l : r.layers) {
    nlohmann::json c = nlohmann::json::object();
    for (const auto& x : l.components) c[x.kind] = x.similarity;
    j["layers"].push_back({{"reference_layer", l.reference_layer},
                           {"candidate_layer", l.candidate_layer},
                           {"similarity", l.similarity},
                           {"p_value", l.p_value},
                           {"components", c}});
  }
  if (tensors) {
    j["tensors"] = nlohmann::json::array();
    for (const auto& t : r.identity.tensors) {
      j["tensors"].push_back({{"role", t.role},
                              {"shape", t.shape},
                              {"dtype_candidate", t.dtype_a},
                              {"dtype_reference", t.dtype_b},
                              {"bit_identical", t.bit_identical},
                              {"relative_error", t.relative_error},
                              {"cosine", t.cosine},
                              {"scheme", t.scheme},
                              {"explained", t.explained}});
    }
  }
  return j;
}

}  // namespace prov::fingerprint
