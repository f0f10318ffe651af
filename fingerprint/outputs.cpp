#include "fingerprint/outputs.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>

#include <Eigen/Dense>

#include "probes/distribution.h"

namespace prov::fingerprint {

// Orthonormal basis of a model's logit image, estimated from its centred log-probability vectors
// on the first m shared image probes.
struct ImageBasis {
  Eigen::MatrixXd q;  // vocabulary x rank
  int rank = 0;
};

struct ImageBasisCache::Impl {
  std::mutex mu;
  std::map<std::tuple<const void*, size_t, uint64_t>, std::shared_ptr<const ImageBasis>> map;
  // Overlaps of two cached bases (which the map keeps alive, so their addresses are stable).
  std::map<std::pair<const ImageBasis*, const ImageBasis*>, double> overlaps;
};

ImageBasisCache::ImageBasisCache() : impl_(new Impl) {}
ImageBasisCache::~ImageBasisCache() {
  delete impl_;
}

namespace {

constexpr double kLogitKindT = 3.0;
constexpr double kImageWeight = 0.1;        // logit_image's Bonferroni weight
constexpr double kImageEigenFloor = 1e-10;  // of the largest eigenvalue: numerical rank
constexpr size_t kMinImageProbes = 10;
// Kind rules on the logit image (set on the project's zoo, docs/BENCHMARKS.md): excess overlap
// over the controls' mean that reads as a shared unembedding (fine-tunes and copies 0.32 to 0.59,
// sequence-distilled students at most 0.05), and the overlap of a copy (copies and light
// fine-tunes 0.976 and above, logit-distilled students about 0.70).
constexpr double kImageShare = 0.15;
constexpr double kImageCopy = 0.9;

// rows: the log-probability vectors (all of one width), the first m are used.
std::shared_ptr<const ImageBasis> image_basis(const std::vector<const std::vector<float>*>& rows,
                                              size_t m) {
  auto out = std::make_shared<ImageBasis>();
  const Eigen::Index V = Eigen::Index(rows[0]->size());
  Eigen::MatrixXd L(Eigen::Index(m), V);
  for (size_t i = 0; i < m; ++i) {
    const std::vector<float>& r = *rows[i];
    double mean = 0;
    for (float x : r) mean += double(x);
    mean /= double(V);
    for (Eigen::Index j = 0; j < V; ++j) L(Eigen::Index(i), j) = double(r[size_t(j)]) - mean;
  }
  const Eigen::MatrixXd G = L * L.transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(G);
  const Eigen::VectorXd& ev = es.eigenvalues();  // ascending
  const double top = ev.size() > 0 ? ev(ev.size() - 1) : 0;
  if (!(top > 0)) return out;
  Eigen::Index keep = 0;
  while (keep < ev.size() && ev(ev.size() - 1 - keep) > kImageEigenFloor * top) ++keep;
  Eigen::MatrixXd v = es.eigenvectors().rightCols(keep);
  for (Eigen::Index k = 0; k < keep; ++k) v.col(k) /= std::sqrt(ev(ev.size() - keep + k));
  out->q = L.transpose() * v;
  out->rank = int(keep);
  return out;
}

// Mean squared cosine of the principal angles between two images.
double image_overlap(const ImageBasis& a, const ImageBasis& b) {
  const int r = std::min(a.rank, b.rank);
  if (r == 0) return 0;
  return (a.q.transpose() * b.q).squaredNorm() / double(r);
}

constexpr const char* kNull =
    "the reference is no closer to the candidate than independent models are: S(candidate, "
    "reference) is exchangeable with S(candidate, control) over the control population";

// ---- Student t -------------------------------------------------------------------------------

// Continued fraction of the regularized incomplete beta function (modified Lentz).
double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-15;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < eps) break;
  }
  return h;
}

// Regularized incomplete beta I_x(a, b).
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double lbt =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double bt = std::exp(lbt);
  if (x < (a + 1) / (a + b + 2)) return bt * beta_cf(a, b, x) / a;
  return 1 - bt * beta_cf(b, a, 1 - x) / b;
}

// ---- per-probe views ---------------------------------------------------------------------------

struct View {
  std::string top1;                                 // "" when no position
  std::vector<std::pair<std::string, float>> topk;  // key, logprob
  std::string greedy;
};

std::string token_key(const probes::TopK& t, size_t j, bool by_id) {
  if (by_id) return j < t.ids.size() ? "#" + std::to_string(t.ids[j]) : std::string();
  return j < t.tokens.size() ? "s:" + t.tokens[j] : std::string();
}

View make_view(const probes::ProbeRecord& r, bool by_id) {
  View v;
  v.greedy = r.continuation_text;
  if (!r.positions.empty()) {
    const probes::TopK& t = r.positions[0].top;
    const size_t n = t.logprobs.size();
    for (size_t j = 0; j < n; ++j) {
      std::string k = token_key(t, j, by_id);
      if (k.empty()) continue;
      v.topk.emplace_back(std::move(k), t.logprobs[j]);
    }
    if (!v.topk.empty()) v.top1 = v.topk[0].first;
  }
  return v;
}

// Top-k lists may be truncated at different depths (endpoints): compared on the tokens both
// name plus a "rest" bucket (probes/distribution.h).
double js_divergence(const View& a, const View& b) {
  return probes::js_divergence_with_rest(a.topk, b.topk);
}

double prefix_fraction(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  if (n == 0) return 1;
  size_t l = 0;
  while (l < a.size() && l < b.size() && a[l] == b[l]) ++l;
  return double(l) / double(n);
}

std::unordered_map<uint32_t, const probes::ProbeRecord*> by_index(const probes::Signature& s) {
  std::unordered_map<uint32_t, const probes::ProbeRecord*> m;
  for (const auto& r : s.records) m[r.index] = &r;
  return m;
}

// Log-likelihoods of texts on one probe, from a scores signature.
using ScoreMap = std::unordered_map<std::string, std::pair<double, size_t>>;  // total, bytes

ScoreMap score_map(const probes::ProbeRecord& r) {
  ScoreMap m;
  for (const auto& s : r.scores) m[s.text] = {s.total_logprob, s.text.size()};
  return m;
}

struct TestOut {
  double t = 0, p = 1, rank_p = 1, mean = 0, sd = 0;
};

TestOut prediction_test(double ref, const std::vector<double>& ctrl) {
  TestOut o;
  const double m = double(ctrl.size());
  o.mean = std::accumulate(ctrl.begin(), ctrl.end(), 0.0) / m;
  double ss = 0;
  for (double c : ctrl) ss += (c - o.mean) * (c - o.mean);
  o.sd = ctrl.size() > 1 ? std::sqrt(ss / (m - 1)) : 0;
  int ge = 0;
  for (double c : ctrl) ge += c >= ref ? 1 : 0;
  o.rank_p = (1.0 + ge) / (1.0 + m);
  if (o.sd > 0) {
    o.t = (ref - o.mean) / (o.sd * std::sqrt(1 + 1 / m));
    o.p = student_t_upper(o.t, m - 1);
  } else {
    o.t = ref > o.mean ? std::numeric_limits<double>::infinity() : 0;
    o.p = o.rank_p;
  }
  return o;
}

// All statistics on the first n shared probes (logit_image on the first image_m image probes).
// pool[0] = reference, pool[1..] = controls.
struct Inputs {
  std::vector<std::vector<View>> pool;  // [model][probe]
  std::vector<View> cand;
  std::vector<ScoreMap> cand_scores;               // empty when not given
  std::vector<std::vector<ScoreMap>> pool_scores;  // [model][probe]; empty unless all given
  bool token_level = true;
  // Logit image: the number of shared image probes (0: no logit_image) and each model's basis on
  // the first m of them; model 0 is the candidate, 1.. the pool.
  size_t image_probes = 0;
  std::function<std::shared_ptr<const ImageBasis>(size_t model, size_t m)> image_basis;
  ImageBasisCache* image_cache = nullptr;
};

double cached_overlap(const ImageBasis& a, const ImageBasis& b, ImageBasisCache* cache) {
  if (cache == nullptr) return image_overlap(a, b);
  auto* impl = cache->impl();
  const auto key = std::make_pair(&a, &b);
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    auto it = impl->overlaps.find(key);
    if (it != impl->overlaps.end()) return it->second;
  }
  const double v = image_overlap(a, b);
  std::lock_guard<std::mutex> lock(impl->mu);
  impl->overlaps.emplace(key, v);
  return v;
}

struct StatValues {
  std::string name;
  std::vector<double> v;  // per pool model
};

Result<std::vector<StatValues>> statistics(const Inputs& in, size_t n, size_t image_m,
                                           const std::vector<std::string>& pool_names) {
  const size_t P = in.pool.size();
  std::vector<StatValues> out;
  // Disagreement weights for the idiosyncratic statistics.
  auto idio = [&](auto same, auto sim) {
    std::vector<double> v(P, 0);
    for (size_t x = 0; x < P; ++x) {
      double num = 0, den = 0;
      for (size_t i = 0; i < n; ++i) {
        double dis = 0;
        for (size_t y = 0; y < P; ++y) {
          if (y != x) dis += 1 - same(in.pool[y][i], in.pool[x][i]);
        }
        const double w = dis / double(P - 1);
        den += w;
        num += w * sim(in.cand[i], in.pool[x][i]);
      }
      v[x] = den > 0 ? num / den : 0;
    }
    return v;
  };
  auto top1_same = [](const View& a, const View& b) {
    return !a.top1.empty() && a.top1 == b.top1 ? 1.0 : 0.0;
  };
  auto greedy_sim = [](const View& a, const View& b) {
    return prefix_fraction(a.greedy, b.greedy);
  };
  if (in.token_level) {
    StatValues top1{"top1_agreement", std::vector<double>(P, 0)};
    StatValues div{"topk_divergence", std::vector<double>(P, 0)};
    for (size_t x = 0; x < P; ++x) {
      double a = 0, d = 0;
      for (size_t i = 0; i < n; ++i) {
        a += top1_same(in.cand[i], in.pool[x][i]);
        d += js_divergence(in.cand[i], in.pool[x][i]);
      }
      top1.v[x] = a / double(n);
      div.v[x] = -d / double(n);
    }
    out.push_back(std::move(top1));
    out.push_back({"idiosyncratic_top1", idio(top1_same, top1_same)});
    out.push_back(std::move(div));
  }
  StatValues gp{"greedy_prefix", std::vector<double>(P, 0)};
  for (size_t x = 0; x < P; ++x) {
    double a = 0;
    for (size_t i = 0; i < n; ++i) a += greedy_sim(in.cand[i], in.pool[x][i]);
    gp.v[x] = a / double(n);
  }
  out.push_back(std::move(gp));
  out.push_back({"idiosyncratic_greedy", idio(greedy_sim, greedy_sim)});
  if (!in.cand_scores.empty()) {
    StatValues xl{"cross_likelihood", std::vector<double>(P, 0)};
    for (size_t x = 0; x < P; ++x) {
      double lp = 0, bytes = 0;
      for (size_t i = 0; i < n; ++i) {
        const std::string& g = in.pool[x][i].greedy;
        if (g.empty()) continue;
        auto it = in.cand_scores[i].find(g);
        if (it == in.cand_scores[i].end()) {
          return invalid_argument(
              "the candidate's scores do not cover the greedy text of " + pool_names[x] +
              " on shared probe " + std::to_string(i + 1) +
              " (build the scoring suite from the same reference and controls)");
        }
        lp += it->second.first;
        bytes += double(it->second.second);
      }
      xl.v[x] = bytes > 0 ? lp / bytes : 0;
    }
    out.push_back(std::move(xl));
  }
  if (!in.pool_scores.empty()) {
    StatValues xr{"cross_likelihood_ratio", std::vector<double>(P, 0)};
    for (size_t x = 0; x < P; ++x) {
      double diff = 0, bytes = 0;
      for (size_t i = 0; i < n; ++i) {
        const std::string& g = in.pool[x][i].greedy;
        if (g.empty()) continue;
        double peers = 0;
        for (size_t y = 0; y < P; ++y) {
          if (y == x) continue;
          auto it = in.pool_scores[y][i].find(g);
          if (it == in.pool_scores[y][i].end()) {
            return invalid_argument("the scores of " + pool_names[y] +
                                    " do not cover the greedy text of " + pool_names[x] +
                                    " on shared probe " + std::to_string(i + 1));
          }
          peers += it->second.first;
        }
        const auto& c = in.cand_scores[i].at(g);
        diff += c.first - peers / double(P - 1);
        bytes += double(c.second);
      }
      xr.v[x] = bytes > 0 ? diff / bytes : 0;
    }
    out.push_back(std::move(xr));
  }
  if (in.image_probes > 0) {
    StatValues im{"logit_image", std::vector<double>(P, 0)};
    const auto c = in.image_basis(0, image_m);
    for (size_t x = 0; x < P; ++x) {
      im.v[x] = cached_overlap(*c, *in.image_basis(x + 1, image_m), in.image_cache);
    }
    out.push_back(std::move(im));
  }
  return out;
}

bool is_primary(const std::string& name) {
  return name == "cross_likelihood_ratio" || name == "idiosyncratic_greedy" ||
         name == "logit_image";
}

// Bonferroni weight of each primary statistic (they sum to 1).
double primary_weight(const std::string& name, int nprimary, bool with_image) {
  if (!with_image) return 1.0 / nprimary;
  if (name == "logit_image") return nprimary == 1 ? 1.0 : kImageWeight;
  return (1 - kImageWeight) / (nprimary - 1);
}

double combine(const std::vector<std::pair<std::string, double>>& ps) {
  bool with_image = false;
  for (const auto& [name, p] : ps) with_image |= name == "logit_image";
  double out = 1;
  for (const auto& [name, p] : ps) {
    out = std::min(out, p / primary_weight(name, int(ps.size()), with_image));
  }
  return std::min(1.0, out);
}

}  // namespace

double student_t_upper(double t, double df) {
  if (std::isnan(t)) return 1;
  if (std::isinf(t)) return t > 0 ? 0 : 1;
  const double x = df / (df + t * t);
  const double tail = 0.5 * incomplete_beta(df / 2, 0.5, x);
  return t >= 0 ? tail : 1 - tail;
}

Result<OutputComparison> compare_outputs(const NamedSignature& candidate,
                                         const NamedSignature& reference,
                                         const std::vector<NamedSignature>& controls,
                                         const OutputTestOptions& options) {
  const probes::Signature* candidate_scores = candidate.scores;
  const probes::Signature* reference_scores = reference.scores;
  OutputComparison r;
  r.null_hypothesis = kNull;
  std::vector<NamedSignature> all = {candidate, reference};
  for (const auto& c : controls) all.push_back(c);
  for (const auto& s : all) {
    if (s.signature == nullptr || s.signature->records.empty()) {
      return invalid_argument("signature of " + s.name + " has no records");
    }
    if (s.signature->header.suite_digest != candidate.signature->header.suite_digest) {
      return invalid_argument("signature of " + s.name + " is of suite " +
                              s.signature->header.suite_name + " (digest " +
                              s.signature->header.suite_digest.substr(0, 12) +
                              "), the candidate's of " + candidate.signature->header.suite_name +
                              " (digest " + candidate.signature->header.suite_digest.substr(0, 12) +
                              "): output tests compare answers to the same probes");
    }
  }
  // Controls: drop any that is the candidate or the reference (leave-one-out).
  std::vector<NamedSignature> ctrl;
  auto same_model = [](const NamedSignature& a, const NamedSignature& b) {
    const std::string& d = a.signature->header.model_digest;
    return a.signature == b.signature || a.name == b.name ||
           (!d.empty() && d == b.signature->header.model_digest);
  };
  for (const auto& c : controls) {
    if (!same_model(c, candidate) && !same_model(c, reference)) ctrl.push_back(c);
  }
  for (const auto& c : ctrl) r.controls.push_back(c.name);
  if (ctrl.size() < 2) {
    r.relation = Relation::kInconclusive;
    r.reason = "an output test needs at least 2 controls unrelated to the reference (got " +
               std::to_string(ctrl.size()) + " after leaving out the candidate and reference)";
    return r;
  }
  // Token-level statistics only when every signature used the candidate's tokenizer.
  bool token_level = true, by_id = true;
  std::vector<NamedSignature> pool = {reference};
  for (const auto& c : ctrl) pool.push_back(c);
  for (const auto& s : pool) {
    const auto& a = s.signature->header;
    const auto& b = candidate.signature->header;
    if (a.tokenizer != b.tokenizer || a.vocab_size != b.vocab_size) token_level = false;
  }
  // Shared probes, in index order.
  auto cidx = by_index(*candidate.signature);
  std::vector<std::unordered_map<uint32_t, const probes::ProbeRecord*>> pidx;
  for (const auto& s : pool) pidx.push_back(by_index(*s.signature));
  std::unordered_map<uint32_t, const probes::ProbeRecord*> sidx, ridx;
  if (candidate_scores != nullptr) sidx = by_index(*candidate_scores);
  if (reference_scores != nullptr) ridx = by_index(*reference_scores);
  std::vector<uint32_t> shared;
  for (const auto& rec : candidate.signature->records) {
    bool ok = true;
    for (const auto& m : pidx) ok = ok && m.count(rec.index) > 0;
    if (candidate_scores != nullptr) ok = ok && sidx.count(rec.index) > 0;
    if (ok) shared.push_back(rec.index);
  }
  std::sort(shared.begin(), shared.end());
  if (options.max_probes > 0 && shared.size() > size_t(options.max_probes)) {
    shared.resize(size_t(options.max_probes));
  }
  r.probes_used = int(shared.size());
  if (shared.size() < 10) {
    r.relation = Relation::kInconclusive;
    r.reason = "fewer than 10 probes are shared by the candidate, reference and controls (" +
               std::to_string(shared.size()) + ")";
    return r;
  }
  auto has_ids = [&](const std::unordered_map<uint32_t, const probes::ProbeRecord*>& m) {
    for (uint32_t i : shared) {
      const auto* rec = m.at(i);
      if (!rec->positions.empty() && rec->positions[0].top.ids.empty()) return false;
    }
    return true;
  };
  by_id = has_ids(cidx);
  for (const auto& m : pidx) by_id = by_id && has_ids(m);
  Inputs in;
  in.token_level = token_level;
  r.cross_tokenizer = !token_level;
  for (uint32_t i : shared) in.cand.push_back(make_view(*cidx.at(i), by_id));
  in.pool.resize(pool.size());
  for (size_t x = 0; x < pool.size(); ++x) {
    for (uint32_t i : shared) in.pool[x].push_back(make_view(*pidx[x].at(i), by_id));
  }
  if (candidate_scores != nullptr) {
    for (uint32_t i : shared) in.cand_scores.push_back(score_map(*sidx.at(i)));
    bool all = true;
    for (const auto& s : pool) all = all && s.scores != nullptr;
    if (all) {
      in.pool_scores.resize(pool.size());
      for (size_t x = 0; x < pool.size(); ++x) {
        auto m = by_index(*pool[x].scores);
        for (uint32_t i : shared) {
          auto it = m.find(i);
          if (it == m.end()) {
            return invalid_argument("the scores of " + pool[x].name + " do not cover probe " +
                                    std::to_string(i + 1));
          }
          in.pool_scores[x].push_back(score_map(*it->second));
        }
      }
    }
  }
  std::vector<std::string> names;
  for (const auto& s : pool) names.push_back(s.name);

  // Logit image: every model's image signature, of one suite, and the probes they all answered
  // with a full log-probability vector of one width.
  std::vector<const probes::Signature*> images = {candidate.image};
  for (const auto& s : pool) images.push_back(s.image);
  const bool have_images = token_level && std::all_of(images.begin(), images.end(), [](auto* s) {
                             return s != nullptr && !s->records.empty();
                           });
  std::vector<std::vector<const std::vector<float>*>> image_rows;
  std::vector<uint32_t> ishared;
  if (have_images) {
    std::vector<std::string> image_names = {candidate.name};
    image_names.insert(image_names.end(), names.begin(), names.end());
    for (size_t x = 1; x < images.size(); ++x) {
      if (images[x]->header.suite_digest != images[0]->header.suite_digest) {
        return invalid_argument("image signature of " + image_names[x] + " is of suite " +
                                images[x]->header.suite_name + " (digest " +
                                images[x]->header.suite_digest.substr(0, 12) +
                                "), the candidate's of " + images[0]->header.suite_name +
                                " (digest " + images[0]->header.suite_digest.substr(0, 12) + ")");
      }
    }
    size_t width = 0;
    for (const auto& rec : images[0]->records) {
      if (!rec.positions.empty() && !rec.positions[0].logprobs.empty()) {
        width = rec.positions[0].logprobs.size();
        break;
      }
    }
    std::vector<std::unordered_map<uint32_t, const probes::ProbeRecord*>> iidx;
    for (const auto* s : images) iidx.push_back(by_index(*s));
    for (const auto& rec : images[0]->records) {
      bool ok = width > 0;
      for (const auto& m : iidx) {
        auto it = m.find(rec.index);
        ok = ok && it != m.end() && !it->second->positions.empty() &&
             it->second->positions[0].logprobs.size() == width;
      }
      if (ok) ishared.push_back(rec.index);
    }
    std::sort(ishared.begin(), ishared.end());
    if (options.max_probes > 0 && ishared.size() > size_t(options.max_probes)) {
      ishared.resize(size_t(options.max_probes));
    }
    if (ishared.size() >= kMinImageProbes) {
      image_rows.resize(images.size());
      for (size_t x = 0; x < images.size(); ++x) {
        for (uint32_t i : ishared) image_rows[x].push_back(&iidx[x].at(i)->positions[0].logprobs);
      }
      in.image_probes = ishared.size();
    } else {
      ishared.clear();
    }
  }
  uint64_t image_key = 1469598103934665603ULL;  // FNV-1a of the shared image probe indices
  for (uint32_t i : ishared) image_key = (image_key ^ i) * 1099511628211ULL;
  std::map<std::pair<size_t, size_t>, std::shared_ptr<const ImageBasis>> local_bases;
  in.image_cache = options.image_cache;
  in.image_basis = [&](size_t model, size_t m) -> std::shared_ptr<const ImageBasis> {
    auto lit = local_bases.find({model, m});
    if (lit != local_bases.end()) return lit->second;
    std::shared_ptr<const ImageBasis> b;
    if (options.image_cache != nullptr) {
      auto* impl = options.image_cache->impl();
      const auto key = std::make_tuple(static_cast<const void*>(images[model]), m, image_key);
      {
        std::lock_guard<std::mutex> lock(impl->mu);
        auto it = impl->map.find(key);
        if (it != impl->map.end()) b = it->second;
      }
      if (!b) {
        b = image_basis(image_rows[model], m);
        std::lock_guard<std::mutex> lock(impl->mu);
        b = impl->map.emplace(key, b).first->second;  // another thread's, if it came first
      }
    } else {
      b = image_basis(image_rows[model], m);
    }
    local_bases[{model, m}] = b;
    return b;
  };

  auto evaluate = [&](size_t n, std::vector<OutputStatistic>* stats) -> Result<double> {
    // The image has its own probes: all of them at the full count, the first n on the curve.
    const size_t image_m = n >= shared.size() ? in.image_probes : std::min(n, in.image_probes);
    PROV_ASSIGN_OR_RETURN(auto vals, statistics(in, n, image_m, names));
    std::vector<std::pair<std::string, double>> ps;
    stats->clear();
    for (auto& sv : vals) {
      OutputStatistic s;
      s.name = sv.name;
      s.primary = is_primary(sv.name);
      s.reference = sv.v[0];
      s.controls.assign(sv.v.begin() + 1, sv.v.end());
      const TestOut t = prediction_test(s.reference, s.controls);
      s.t = t.t;
      s.df = int(s.controls.size()) - 1;
      s.p_value = t.p;
      s.rank_p = t.rank_p;
      s.control_mean = t.mean;
      s.control_sd = t.sd;
      if (s.primary) ps.emplace_back(s.name, s.p_value);
      stats->push_back(std::move(s));
    }
    return combine(ps);
  };

  PROV_ASSIGN_OR_RETURN(double p, evaluate(shared.size(), &r.statistics));
  r.p_value = p;
  int nprimary = 0;
  for (const auto& s : r.statistics) nprimary += s.primary ? 1 : 0;
  if (nprimary == 1) {
    r.combination = "one primary statistic";
  } else if (in.image_probes == 0) {
    r.combination = "Bonferroni over " + std::to_string(nprimary) +
                    " primary statistics: p = min(1, k * min p)";
  } else {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "weighted Bonferroni over %d primary statistics (weight %.2g for logit_image, "
                  "%.2g for each other): p = min(1, min p_s / w_s)",
                  nprimary, kImageWeight, (1 - kImageWeight) / (nprimary - 1));
    r.combination = buf;
  }
  if (in.image_probes > 0) {
    r.image_probes = int(in.image_probes);
    r.image_rank = in.image_basis(0, in.image_probes)->rank;
  }
  // Curve over the probe grid (and the full count).
  std::vector<int> grid;
  for (int g : options.probe_grid) {
    if (g < int(shared.size())) grid.push_back(g);
  }
  grid.push_back(int(shared.size()));
  for (int g : grid) {
    std::vector<OutputStatistic> st;
    PROV_ASSIGN_OR_RETURN(double pg, evaluate(size_t(g), &st));
    OutputCurvePoint pt;
    pt.probes = g;
    pt.p_value = pg;
    for (const auto& s : st) {
      if (!s.primary) continue;
      pt.reference.push_back(s.reference);
      pt.control_mean.push_back(s.control_mean);
    }
    r.curve.push_back(std::move(pt));
  }
  for (size_t k = r.curve.size(); k-- > 0;) {
    if (r.curve[k].p_value > options.alpha) break;
    r.probes_needed = r.curve[k].probes;
  }
  const bool related = p <= options.alpha;
  r.relation = related ? Relation::kDistilledSeq : Relation::kIndependent;
  auto find = [&](const std::string& name) -> const OutputStatistic* {
    for (const auto& s : r.statistics) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  if (related) {
    // Logit distillation copies the whole distribution: the top-k divergence stands out from
    // the controls by t >= 3. Sequence-distilled students match the teacher's texts, not its
    // distribution (measured: t <= 2.1 for every zoo student trained on generated text).
    const OutputStatistic* dv = find("topk_divergence");
    r.relation =
        dv != nullptr && dv->t >= kLogitKindT ? Relation::kDistilledLogit : Relation::kDistilledSeq;
    // A weight-derived model keeps its parent's unembedding: it shares far more of the
    // reference's logit image than the controls do (by at least kImageShare), and either nearly
    // all of it (a copy) or without answering like the reference (a fine-tune trained away from
    // it; a distilled student that learned the image learned the answers too).
    const OutputStatistic* im = find("logit_image");
    if (im != nullptr && im->p_value <= options.alpha &&
        im->reference - im->control_mean >= kImageShare) {
      bool text_related = false;
      for (const auto& st : r.statistics) {
        text_related |= st.primary && st.name != "logit_image" && st.p_value <= options.alpha;
      }
      if (im->reference >= kImageCopy || !text_related) r.relation = Relation::kWeightDerived;
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "the reference is closer to the candidate than the %zu controls",
                  ctrl.size());
    r.reason = buf;
  } else {
    r.reason = "the reference is not closer to the candidate than the controls beyond chance";
  }

  // Direction (sequence distillation only), from both sides' scores of each other's texts.
  if (r.relation == Relation::kDistilledSeq && candidate_scores != nullptr &&
      reference_scores != nullptr) {
    std::vector<double> own_c, oth_c, own_r, oth_r, bc, br;  // per-probe totals and bytes
    bool ok = true;
    for (size_t k = 0; k < shared.size() && ok; ++k) {
      const std::string& gc = in.cand[k].greedy;
      const std::string& gr = in.pool[0][k].greedy;
      if (gc.empty() || gr.empty()) continue;
      auto rit = ridx.find(shared[k]);
      if (rit == ridx.end()) continue;
      const ScoreMap rs = score_map(*rit->second);
      const ScoreMap& cs = in.cand_scores[k];
      auto a = cs.find(gc), b = cs.find(gr), c = rs.find(gr), d = rs.find(gc);
      if (a == cs.end() || b == cs.end() || c == rs.end() || d == rs.end()) continue;
      own_c.push_back(a->second.first);
      oth_c.push_back(b->second.first);
      own_r.push_back(c->second.first);
      oth_r.push_back(d->second.first);
      bc.push_back(double(gc.size()));
      br.push_back(double(gr.size()));
    }
    if (own_c.size() >= 10) {
      auto gaps = [&](const std::vector<size_t>& idx, double* gr_out, double* gc_out) {
        double oc = 0, xc = 0, orr = 0, xr = 0, nbc = 0, nbr = 0;
        for (size_t i : idx) {
          oc += own_c[i];
          xc += oth_c[i];
          orr += own_r[i];
          xr += oth_r[i];
          nbc += bc[i];
          nbr += br[i];
        }
        *gc_out = oc / nbc - xc / nbr;   // candidate: own texts vs the reference's
        *gr_out = orr / nbr - xr / nbc;  // reference: own texts vs the candidate's
      };
      std::vector<size_t> idx(own_c.size());
      std::iota(idx.begin(), idx.end(), size_t{0});
      gaps(idx, &r.gap_reference, &r.gap_candidate);
      // A student trained on generated text is sharper on its own texts than its teacher is:
      // the teacher is the side with the smaller gap.
      const bool ref_teaches = r.gap_reference < r.gap_candidate;
      r.teacher = ref_teaches ? "reference" : "candidate";
      std::mt19937_64 rng(options.seed);
      std::uniform_int_distribution<size_t> pick(0, idx.size() - 1);
      int agree = 0;
      const int B = 1000;
      for (int b = 0; b < B; ++b) {
        std::vector<size_t> s(idx.size());
        for (auto& v : s) v = pick(rng);
        double g1, g2;
        gaps(s, &g1, &g2);
        agree += ((g1 < g2) == ref_teaches) ? 1 : 0;
      }
      r.direction_confidence = double(agree) / B;
    }
  }
  return r;
}

Result<probes::Suite> cross_likelihood_suite(
    const probes::Suite& base, const std::vector<const probes::Signature*>& signatures,
    int max_probes) {
  const std::string digest = probes::suite_digest(base);
  std::vector<std::unordered_map<uint32_t, const probes::ProbeRecord*>> idx;
  for (const auto* s : signatures) {
    if (s->header.suite_digest != digest) {
      return invalid_argument("signature of " + s->header.model_name + " is not of suite " +
                              base.name + " (digest " + digest.substr(0, 12) + ")");
    }
    idx.push_back(by_index(*s));
  }
  probes::Suite out;
  out.name = base.name + "-xlik";
  out.version = base.version;
  out.description = "cross-likelihood of greedy continuations on " + base.name + " " +
                    base.version + " (" + std::to_string(signatures.size()) + " signatures)";
  const size_t n =
      max_probes > 0 ? std::min(base.probes.size(), size_t(max_probes)) : base.probes.size();
  for (size_t i = 0; i < n; ++i) {
    const probes::Probe& bp = base.probes[i];
    if (!bp.text) {
      return invalid_argument("probe " + bp.id +
                              " is given as ids: cross-likelihood needs text prompts");
    }
    std::set<std::string> texts;
    for (const auto& m : idx) {
      auto it = m.find(uint32_t(i));
      if (it != m.end() && !it->second->continuation_text.empty()) {
        texts.insert(it->second->continuation_text);
      }
    }
    probes::Probe p;
    p.id = bp.id;
    p.text = bp.text;
    p.top_k = 0;
    p.full_stats = false;
    p.greedy_tokens = 0;
    p.score_texts.assign(texts.begin(), texts.end());
    out.probes.push_back(std::move(p));
  }
  return out;
}

nlohmann::json output_result_json(const OutputComparison& r) {
  nlohmann::json j;
  j["relation"] = r.related() ? "related" : relation_name(r.relation);
  j["kind"] = r.related() ? relation_name(r.relation) : "";
  j["reason"] = r.reason;
  j["p_value"] = r.p_value ? nlohmann::json(*r.p_value) : nlohmann::json();
  j["null_hypothesis"] = r.null_hypothesis;
  j["combination"] = r.combination;
  j["probes_used"] = r.probes_used;
  j["probes_needed"] = r.probes_needed >= 0 ? nlohmann::json(r.probes_needed) : nlohmann::json();
  j["controls"] = r.controls;
  j["cross_tokenizer"] = r.cross_tokenizer;
  if (r.image_probes > 0) {
    j["logit_image"] = {{"probes", r.image_probes}, {"candidate_rank", r.image_rank}};
  }
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  nlohmann::json stats = nlohmann::json::array();
  for (const auto& s : r.statistics) {
    stats.push_back({{"statistic", s.name},
                     {"primary", s.primary},
                     {"reference", num(s.reference)},
                     {"controls", s.controls},
                     {"control_mean", num(s.control_mean)},
                     {"control_sd", num(s.control_sd)},
                     {"t", num(s.t)},
                     {"df", s.df},
                     {"p_value", s.primary ? num(s.p_value) : nlohmann::json()},
                     {"rank_p", s.rank_p}});
  }
  j["statistics"] = stats;
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& c : r.curve) {
    curve.push_back({{"probes", c.probes},
                     {"p_value", c.p_value},
                     {"reference", c.reference},
                     {"control_mean", c.control_mean}});
  }
  j["curve"] = curve;
  if (!r.teacher.empty()) {
    j["direction"] = {{"teacher", r.teacher},
                      {"bootstrap_agreement", r.direction_confidence},
                      {"gap_reference", r.gap_reference},
                      {"gap_candidate", r.gap_candidate}};
  }
  return j;
}

}  // namespace prov::fingerprint
