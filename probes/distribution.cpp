#include "probes/distribution.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace prov::probes {

namespace {

// The first n entries of `l` as key -> probability (equal keys add up).
std::map<std::string, double> head(const KeyedLogprobs& l, size_t n) {
  std::map<std::string, double> m;
  for (size_t i = 0; i < n && i < l.size(); ++i) m[l[i].first] += std::exp(double(l[i].second));
  return m;
}

// Fills the rest bucket (1 minus the named mass, at least 0) and scales a named mass above 1
// (rounding in the engine's numbers) down to 1.
void close_buckets(std::vector<double>* v) {
  double named = 0;
  for (double x : *v) named += x;
  if (named > 1) {
    for (double& x : *v) x /= named;
    named = 1;
  }
  v->push_back(std::max(0.0, 1 - named));
}

}  // namespace

SharedBuckets shared_buckets(const KeyedLogprobs& a, const KeyedLogprobs& b) {
  const size_t k = std::min(a.size(), b.size());
  const auto pa = head(a, k), pb = head(b, k);
  SharedBuckets out;
  auto add = [&](const std::string& key) {
    if (std::find(out.keys.begin(), out.keys.end(), key) != out.keys.end()) return;
    out.keys.push_back(key);
    auto x = pa.find(key), y = pb.find(key);
    out.p.push_back(x == pa.end() ? 0.0 : x->second);
    out.q.push_back(y == pb.end() ? 0.0 : y->second);
  };
  for (size_t i = 0; i < k; ++i) add(a[i].first);
  for (size_t i = 0; i < k; ++i) add(b[i].first);
  close_buckets(&out.p);
  close_buckets(&out.q);
  return out;
}

double js_divergence_with_rest(const KeyedLogprobs& a, const KeyedLogprobs& b) {
  if (a.empty() || b.empty()) return std::log(2.0);
  const SharedBuckets s = shared_buckets(a, b);
  double js = 0;
  for (size_t i = 0; i < s.p.size(); ++i) {
    const double p = s.p[i], q = s.q[i], m = 0.5 * (p + q);
    if (p > 0) js += 0.5 * p * std::log(p / m);
    if (q > 0) js += 0.5 * q * std::log(q / m);
  }
  return std::max(0.0, js);
}

double total_variation_with_rest(const KeyedLogprobs& a, const KeyedLogprobs& b) {
  if (a.empty() || b.empty()) return 1;
  const SharedBuckets s = shared_buckets(a, b);
  double tv = 0;
  for (size_t i = 0; i < s.p.size(); ++i) tv += std::fabs(s.p[i] - s.q[i]);
  return 0.5 * tv;
}

}  // namespace prov::probes
