#include "probes/divergence.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "core/progress.h"
#include "model/formats/digest.h"
#include "probes/checkpoint_runner.h"
#include "probes/runner.h"

namespace prov::probes {

namespace {

// Total variation distance between two top-k lists keyed by token text (mass outside both lists
// is ignored).
double top_tv(const TopK& a, const TopK& b) {
  std::map<std::string, std::pair<double, double>> m;
  for (size_t i = 0; i < a.tokens.size(); ++i) m[a.tokens[i]].first += std::exp(a.logprobs[i]);
  for (size_t i = 0; i < b.tokens.size(); ++i) m[b.tokens[i]].second += std::exp(b.logprobs[i]);
  double tv = 0;
  for (const auto& [k, v] : m) tv += std::fabs(v.first - v.second);
  return 0.5 * tv;
}

}  // namespace

Result<DivergenceSuite> build_divergence_suite(const std::vector<std::string>& models,
                                               const DivergenceOptions& o) {
  Suite pool = natural_v1(o.pool);
  Suite ask = pool;
  for (auto& p : ask.probes) p.greedy_tokens = 0;
  std::vector<std::vector<TopK>> tops;  // [model][probe]
  std::string described;
  for (const std::string& path : models) {
    auto l = load_checkpoint(path, nullptr, "", o.device, o.dtype, true);
    if (!l.is_ok()) return l.status().with_context(path);
    auto manifest = model::compute_manifest(path);
    if (!manifest.is_ok()) return manifest.status().with_context(path);
    LocalRunner runner(*l->transformer, l->tokenizer.get(), RunnerOptions{o.batch, 4096});
    std::vector<TopK> t;
    Progress bar("suite build: " + path, o.quiet);
    Status st = runner.run(
        ask, {},
        [&](const ProbeRecord& r) {
          t.push_back(r.positions.at(0).top);
          return Status::ok();
        },
        [&](size_t d, size_t n) { bar.update(d, n); });
    bar.finish();
    if (!st.is_ok()) return st.with_context(path);
    tops.push_back(std::move(t));
    described += (described.empty() ? "" : ", ") + std::filesystem::path(path).filename().string() +
                 " (sha256:" + manifest->digest.substr(0, 16) + ")";
  }
  const size_t n = pool.probes.size();
  std::vector<double> score(n, 0.0);
  size_t pairs = 0;
  for (size_t a = 0; a < tops.size(); ++a) {
    for (size_t b = a + 1; b < tops.size(); ++b, ++pairs) {
      for (size_t i = 0; i < n; ++i) {
        const auto& x = tops[a][i];
        const auto& y = tops[b][i];
        const bool differ = x.tokens.empty() || y.tokens.empty() || x.tokens[0] != y.tokens[0];
        score[i] += (differ ? 1.0 : 0.0) + top_tv(x, y);
      }
    }
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return score[a] > score[b]; });
  order.resize(std::min(n, static_cast<size_t>(o.keep)));
  std::sort(order.begin(), order.end());
  DivergenceSuite out;
  out.suite.name = "divergence";
  out.suite.version = "1";
  out.suite.description = "the " + std::to_string(order.size()) + " of the first " +
                          std::to_string(n) +
                          " natural-v1 prompts where these models disagree most (top-1 "
                          "disagreement + total variation of the top-20 lists, summed over model "
                          "pairs): " +
                          described;
  for (size_t i : order) out.suite.probes.push_back(pool.probes[i]);
  for (double s : score) out.mean_all += s;
  for (size_t i : order) out.mean_kept += score[i];
  out.mean_all /= double(std::max<size_t>(1, n) * std::max<size_t>(1, pairs));
  out.mean_kept /= double(std::max<size_t>(1, order.size()) * std::max<size_t>(1, pairs));
  return out;
}

}  // namespace prov::probes
