#include "lineage/audit.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "model/digest.h"
#include "model/model.h"

namespace prov::lineage {

namespace {

nlohmann::json opt_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

std::string fmt_p(const std::optional<double>& p) {
  if (!p) return "none";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", *p);
  return buf;
}

bool identity_decided(const std::string& r) {
  return r == "identical" || r == "converted" || r == "quantized";
}

Result<std::string> digest_of(const std::string& path) {
  auto m = model::compute_manifest(path);
  if (!m.is_ok()) return m.status();
  return m->digest;
}

}  // namespace

std::vector<std::optional<double>> holm_adjust(const std::vector<std::optional<double>>& p) {
  std::vector<size_t> order;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i]) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return *p[a] < *p[b]; });
  std::vector<std::optional<double>> out(p.size());
  const size_t m = order.size();
  double running = 0;
  for (size_t k = 0; k < m; ++k) {
    const double adj = std::min(1.0, static_cast<double>(m - k) * *p[order[k]]);
    running = std::max(running, adj);
    out[order[k]] = running;
  }
  return out;
}

std::string model_display_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

Result<AuditResult> audit(const std::string& candidate, const AuditOptions& options) {
  AuditResult out;
  auto cm = model::open_model(candidate);
  if (!cm.is_ok()) return cm.status().with_context("candidate");
  auto cd = digest_of(candidate);
  if (!cd.is_ok()) return cd.status().with_context("candidate");
  for (size_t i = 0; i < options.references.size(); ++i) {
    const std::string& path = options.references[i];
    const std::string ctx = "reference " + std::to_string(i + 1) + " (" + path + ")";
    auto rm = model::open_model(path);
    if (!rm.is_ok()) return rm.status().with_context(ctx);
    auto rd = digest_of(path);
    if (!rd.is_ok()) return rd.status().with_context(ctx);
    auto w = fingerprint::compare_weights(*cm, *rm, options.weights);
    if (!w.is_ok()) return w.status().with_context(ctx);
    ReferenceOutcome o;
    o.name = model_display_name(path);
    o.path = path;
    o.digest = *rd;
    o.weights = std::move(*w);
    out.references.push_back(std::move(o));
  }
  std::vector<std::optional<double>> raw;
  for (const auto& r : out.references) raw.push_back(r.weights.p_value);
  const auto holm = holm_adjust(raw);
  for (size_t i = 0; i < holm.size(); ++i) out.references[i].p_holm = holm[i];

  // The verdict.
  nlohmann::json verdict;
  std::optional<double> verdict_p;
  std::string relation, confidence, summary;
  int parent = -1;
  for (size_t i = 0; i < out.references.size() && parent < 0; ++i) {
    if (identity_decided(out.references[i].weights.relation)) parent = static_cast<int>(i);
  }
  if (parent >= 0) {
    const auto& r = out.references[static_cast<size_t>(parent)];
    relation = r.weights.relation;
    confidence = "high";
    summary = "The candidate is " + relation + " with respect to " + r.name + ": " +
              r.weights.reason + ". Decided by exact comparison of the weights (no test).";
  } else {
    double best_z = -1e300;
    for (size_t i = 0; i < out.references.size(); ++i) {
      const auto& r = out.references[i];
      if (r.p_holm && *r.p_holm < options.alpha &&
          fingerprint::is_weight_derived(r.weights.relation) && r.weights.z_score > best_z) {
        best_z = r.weights.z_score;
        parent = static_cast<int>(i);
      }
    }
    if (parent >= 0) {
      const auto& r = out.references[static_cast<size_t>(parent)];
      relation = r.weights.relation;
      verdict_p = r.p_holm;
      confidence = *r.p_holm < options.alpha / 10 ? "high" : "medium";
      summary = "The candidate shares weights with " + r.name + " (" + relation +
                "): Holm-adjusted p = " + fmt_p(r.p_holm) + " over " +
                std::to_string(std::count_if(holm.begin(), holm.end(),
                                             [](const auto& p) { return p.has_value(); })) +
                " reference(s) tested. Evidence: " + r.weights.reason + ".";
    }
  }
  if (parent < 0) {
    double best_z = -1e300;
    for (size_t i = 0; i < out.references.size(); ++i) {
      const auto& r = out.references[i];
      if (fingerprint::is_weight_derived(r.weights.relation) && r.weights.aligned.ran &&
          r.weights.aligned.z_score >= options.weights.aligned_z_threshold &&
          r.weights.aligned.z_score > best_z) {
        best_z = r.weights.aligned.z_score;
        parent = static_cast<int>(i);
      }
    }
    if (parent >= 0) {
      const auto& r = out.references[static_cast<size_t>(parent)];
      relation = r.weights.relation;
      confidence = "medium";
      summary = "The candidate shares weights with " + r.name +
                " under a reordering of its "
                "dimensions (" +
                relation +
                "), seen by the vocabulary-aligned score only (no "
                "calibrated p-value). Evidence: " +
                r.weights.reason + ".";
    }
  }
  if (parent < 0) {
    bool any = false, all_tested = !out.references.empty();
    for (size_t i = 0; i < out.references.size(); ++i) {
      const auto& r = out.references[i];
      if (r.weights.relation != "inconclusive") any = true;
      if (!r.p_holm) all_tested = false;
      if (r.p_holm && (!verdict_p || *r.p_holm < *verdict_p)) verdict_p = r.p_holm;
    }
    relation = any ? "independent" : "inconclusive";
    confidence = any && all_tested ? "medium" : "low";
    summary = out.references.empty()
                  ? "No reference was given: nothing to compare with."
                  : (any ? "No evidence that the candidate derives from any reference by its "
                           "weights (smallest Holm-adjusted p = " +
                               fmt_p(verdict_p) + ")."
                         : "No reference could be compared with the candidate.");
  }
  summary += "\nOutput and distillation tests were not run (not part of this build).";
  out.parent = parent;
  verdict["relation"] = relation;
  verdict["parent"] =
      parent >= 0 ? nlohmann::json(out.references[parent].name) : nlohmann::json(nullptr);
  if (parent >= 0) {
    verdict["parent_digest"] = "sha256:" + out.references[static_cast<size_t>(parent)].digest;
  }
  verdict["p_value"] = opt_json(verdict_p);
  verdict["confidence"] = confidence;
  verdict["summary"] = summary;

  // The report.
  nlohmann::json rep;
  rep["report_version"] = 1;
  rep["candidate"] = {
      {"name", model_display_name(candidate)}, {"path", candidate}, {"digest", {{"sha256", *cd}}}};
  rep["verdict"] = verdict;
  rep["references"] = nlohmann::json::array();
  rep["evidence"] = nlohmann::json::array();
  rep["weight_layers"] = nlohmann::json::array();
  nlohmann::json nodes = nlohmann::json::array(), edges = nlohmann::json::array();
  nodes.push_back(
      {{"id", "candidate"}, {"label", model_display_name(candidate)}, {"kind", "candidate"}});
  for (size_t i = 0; i < out.references.size(); ++i) {
    const auto& r = out.references[i];
    const auto& w = r.weights;
    rep["references"].push_back({{"name", r.name},
                                 {"path", r.path},
                                 {"digest", {{"sha256", r.digest}}},
                                 {"relation", w.relation},
                                 {"p_value", opt_json(w.p_value)},
                                 {"p_value_holm", opt_json(r.p_holm)}});
    if (!w.identity.relation.empty()) {
      rep["evidence"].push_back(
          {{"reference", r.name},
           {"layer", "identity"},
           {"method", "identity"},
           {"statistic", "max relative tensor error"},
           {"value", w.identity.relation == "incomparable"
                         ? nlohmann::json(nullptr)
                         : nlohmann::json(w.identity.max_relative_error)},
           {"p_value", nullptr},
           {"null_hypothesis", w.identity.null_hypothesis},
           {"detail", {{"result", w.identity.relation}, {"reason", w.identity.reason}}}});
    }
    if (w.permutations > 0) {
      rep["evidence"].push_back({{"reference", r.name},
                                 {"layer", "weights"},
                                 {"method", "gram-permutation"},
                                 {"statistic", "mean per-layer Gram correlation (raw indices)"},
                                 {"value", w.statistic},
                                 {"p_value", opt_json(r.p_holm)},
                                 {"null_hypothesis", w.null_hypothesis},
                                 {"combination", "Holm-Bonferroni over the references"},
                                 {"detail",
                                  {{"raw_p_value", opt_json(w.p_value)},
                                   {"permutations", w.permutations},
                                   {"z_score", w.z_score},
                                   {"dimensions", w.test_dims}}}});
    }
    if (w.aligned.ran) {
      rep["evidence"].push_back({{"reference", r.name},
                                 {"layer", "weights"},
                                 {"method", "aligned-gram"},
                                 {"statistic", "z-score of the vocabulary-aligned Gram similarity"},
                                 {"value", w.aligned.z_score},
                                 {"p_value", nullptr},
                                 {"null_hypothesis", w.aligned.null_hypothesis},
                                 {"detail",
                                  {{"similarity", w.aligned.statistic},
                                   {"shared_tokens", w.shared_tokens},
                                   {"matched_dimensions", w.matched_dims}}}});
    }
    for (const auto& l : w.layers) {
      rep["weight_layers"].push_back(
          {{"reference", r.name},
           {"layer", l.candidate_layer},
           {"component", "mean"},
           {"similarity", l.similarity},
           {"p_value", w.p_value ? nlohmann::json(l.p_value) : nlohmann::json(nullptr)}});
    }
    const std::string id = "ref" + std::to_string(i + 1);
    nodes.push_back({{"id", id}, {"label", r.name}, {"kind", "reference"}});
    if (fingerprint::is_weight_derived(w.relation)) {
      edges.push_back({{"from", id},
                       {"to", "candidate"},
                       {"relation", w.relation},
                       {"p_value", opt_json(r.p_holm)}});
    }
  }
  rep["graph"] = {{"nodes", nodes}, {"edges", edges}};
  rep["tool"] = {{"name", "prov"}, {"version", options.tool_version}};
  rep["environment"] = {{"device", "cpu"}, {"dtype", "float32"}};
  out.report = std::move(rep);
  return out;
}

}  // namespace prov::lineage
