#include "fingerprint/merge.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "core/thread_pool.h"
#include "model/formats/tensor.h"

namespace prov::fingerprint {

namespace {

struct TensorSums {
  double de = 0, ee = 0, dd = 0, aa_dist = 0;  // <d,e>, <e,e>, <d,d>, |m - a|^2
};

std::string fmt(const char* f, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

Result<MergeFit> fit_merge(const model::Model& m, const model::Model& a, const model::Model& b,
                           unsigned threads) {
  std::map<std::string, const model::TensorRef*> tm, ta, tb;
  for (const auto& [role, i] : m.roles) tm[role.to_string()] = &m.checkpoint.tensors[i];
  for (const auto& [role, i] : a.roles) ta[role.to_string()] = &a.checkpoint.tensors[i];
  for (const auto& [role, i] : b.roles) tb[role.to_string()] = &b.checkpoint.tensors[i];
  struct Triple {
    const model::TensorRef *m, *a, *b;
  };
  std::vector<Triple> triples;
  for (const auto& [name, t] : tm) {
    auto ia = ta.find(name);
    auto ib = tb.find(name);
    if (ia == ta.end() || ib == tb.end()) continue;
    if (t->shape != ia->second->shape || t->shape != ib->second->shape) continue;
    triples.push_back({t, ia->second, ib->second});
  }
  if (triples.empty()) {
    return invalid_argument("the three models share no tensor of equal shape: no merge to fit");
  }
  std::vector<TensorSums> sums(triples.size());
  std::vector<Status> errors(triples.size());
  const unsigned workers = threads ? threads : std::min(default_thread_count(), 8u);
  parallel_for(triples.size(), workers, [&](size_t i) {
    auto vm = model::to_float32(*triples[i].m);
    auto va = model::to_float32(*triples[i].a);
    auto vb = model::to_float32(*triples[i].b);
    if (!vm.is_ok() || !va.is_ok() || !vb.is_ok()) {
      errors[i] = !vm.is_ok() ? vm.status() : !va.is_ok() ? va.status() : vb.status();
      return;
    }
    TensorSums& s = sums[i];
    for (size_t k = 0; k < vm->size(); ++k) {
      const double d = static_cast<double>((*vm)[k]) - (*vb)[k];
      const double e = static_cast<double>((*va)[k]) - (*vb)[k];
      const double f = static_cast<double>((*vm)[k]) - (*va)[k];
      s.de += d * e;
      s.ee += e * e;
      s.dd += d * d;
      s.aa_dist += f * f;
    }
  });
  for (const Status& s : errors) PROV_RETURN_IF_ERROR(s);
  MergeFit fit;
  fit.tensors = static_cast<int>(triples.size());
  double residual = 0, dist_a = 0, dist_b = 0, alpha_num = 0, alpha_den = 0;
  fit.alpha_min = std::numeric_limits<double>::infinity();
  fit.alpha_max = -std::numeric_limits<double>::infinity();
  for (const TensorSums& s : sums) {
    dist_a += s.aa_dist;
    dist_b += s.dd;
    if (s.ee > 0) {
      const double alpha_t = s.de / s.ee;
      residual += std::max(0.0, s.dd - s.de * s.de / s.ee);
      alpha_num += s.de;
      alpha_den += s.ee;
      fit.alpha_min = std::min(fit.alpha_min, alpha_t);
      fit.alpha_max = std::max(fit.alpha_max, alpha_t);
    } else {
      residual += s.dd;
    }
  }
  const double nearer = std::min(dist_a, dist_b);
  if (nearer <= 0 || alpha_den <= 0) {
    fit.relative_residual = nearer <= 0 ? 0.0 : 1.0;
    fit.alpha = nearer <= 0 ? (dist_a <= 0 ? 1.0 : 0.0) : 0.0;
    fit.alpha_min = fit.alpha_max = fit.alpha;
    fit.reason = nearer <= 0 ? "the model equals one of the two parents in every shared tensor"
                             : "the two parents are equal in every shared tensor";
    return fit;
  }
  fit.alpha = alpha_num / alpha_den;
  fit.relative_residual = std::sqrt(residual / nearer);
  fit.is_merge = fit.relative_residual <= kMergeResidual && fit.alpha >= kMergeAlphaMin &&
                 fit.alpha <= 1 - kMergeAlphaMin;
  const std::string what = fmt("%.3g", fit.alpha) + " x first parent + " +
                           fmt("%.3g", 1 - fit.alpha) + " x second (per tensor " +
                           fmt("%.3g", fit.alpha_min) + " to " + fmt("%.3g", fit.alpha_max) + ", " +
                           std::to_string(fit.tensors) + " tensors)";
  const std::string left = fmt("%.3g", fit.relative_residual);
  if (fit.is_merge) {
    fit.reason = "a weighted average of the two parents: " + what + "; the fit leaves " + left +
                 " of the change from the nearer parent (at most " + fmt("%g", kMergeResidual) +
                 " for a merge)";
  } else if (fit.relative_residual <= kMergeResidual) {
    fit.reason = "the best average (" + what +
                 ") is not between the two parents, so the model is not their merge";
  } else {
    fit.reason = "no average of the two parents explains the model: the best (" + what +
                 ") leaves " + left +
                 " of its change from the nearer parent (a merge leaves at most " +
                 fmt("%g", kMergeResidual) + ")";
  }
  return fit;
}

bool reads_as_merge_parent(Relation relation) {
  return relation == Relation::kFinetuned || relation == Relation::kNoised;
}

Result<std::optional<MergeParents>> find_merge(const model::Model& m,
                                               const std::vector<const model::Model*>& relatives,
                                               unsigned threads) {
  std::optional<MergeParents> best;
  for (size_t a = 0; a < relatives.size(); ++a) {
    for (size_t b = a + 1; b < relatives.size(); ++b) {
      auto fit = fit_merge(m, *relatives[a], *relatives[b], threads);
      if (!fit.is_ok()) {
        if (fit.status().code() == StatusCode::kInvalidArgument) continue;
        return fit.status();
      }
      if (!fit->is_merge) continue;
      if (!best || fit->relative_residual < best->fit.relative_residual) {
        best = MergeParents{a, b, std::move(*fit)};
      }
    }
  }
  return best;
}

Result<std::map<int, FoundMerge>> find_merges(const std::vector<const model::Model*>& models,
                                              const std::vector<std::vector<int>>& relatives) {
  std::map<int, FoundMerge> out;
  for (size_t m = 0; m < models.size() && m < relatives.size(); ++m) {
    std::vector<int> rel = relatives[m];
    std::sort(rel.begin(), rel.end());
    rel.erase(std::unique(rel.begin(), rel.end()), rel.end());
    if (rel.size() < 2) continue;
    std::vector<const model::Model*> rel_models;
    for (int r : rel) rel_models.push_back(models[static_cast<size_t>(r)]);
    auto found = find_merge(*models[m], rel_models);
    if (!found.is_ok()) return found.status();
    if (!*found) continue;
    out[static_cast<int>(m)] = FoundMerge{rel[(*found)->a], rel[(*found)->b], (*found)->fit};
  }
  return out;
}

}  // namespace prov::fingerprint
