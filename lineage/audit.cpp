#include "lineage/audit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>

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
  const OutputEvidence* ov = options.outputs;
  if (ov != nullptr && ov->references.size() != options.references.size()) {
    return invalid_argument("output evidence for " + std::to_string(ov->references.size()) +
                            " references, but " + std::to_string(options.references.size()) +
                            " references");
  }
  std::optional<model::Model> cm;
  std::string cand_digest = options.candidate_digest;
  if (options.candidate_weights) {
    auto m = model::open_model(candidate);
    if (!m.is_ok()) return m.status().with_context("candidate");
    cm = std::move(*m);
    auto cd = digest_of(candidate);
    if (!cd.is_ok()) return cd.status().with_context("candidate");
    cand_digest = *cd;
  } else if (ov == nullptr) {
    return invalid_argument("a candidate without weights needs output evidence (signatures)");
  }
  for (size_t i = 0; i < options.references.size(); ++i) {
    const std::string& path = options.references[i];
    const std::string ctx = "reference " + std::to_string(i + 1) + " (" + path + ")";
    ReferenceOutcome o;
    o.name = model_display_name(path);
    o.path = path;
    o.has_weights = options.reference_weights.empty() || options.reference_weights[i];
    if (o.has_weights) {
      auto rm = model::open_model(path);
      if (!rm.is_ok()) return rm.status().with_context(ctx);
      auto rd = digest_of(path);
      if (!rd.is_ok()) return rd.status().with_context(ctx);
      o.digest = *rd;
      if (cm) {
        auto w = fingerprint::compare_weights(*cm, *rm, options.weights);
        if (!w.is_ok()) return w.status().with_context(ctx);
        o.weights = std::move(*w);
      }
    } else {
      if (ov == nullptr) return invalid_argument(ctx + ": no weights and no signature");
      o.digest = ov->references[i].signature->header.model_digest;
      if (o.digest.size() != 64) {
        return invalid_argument(ctx +
                                ": its signature records no model digest (an endpoint "
                                "signature cannot be a reference)");
      }
    }
    o.has_weights = o.has_weights && cm.has_value();
    if (ov != nullptr) {
      auto r =
          fingerprint::compare_outputs(ov->candidate, ov->references[i], ov->controls, ov->test);
      if (!r.is_ok()) return r.status().with_context(ctx);
      o.outputs = std::move(*r);
    }
    out.references.push_back(std::move(o));
  }
  if (ov != nullptr) {
    std::vector<std::optional<double>> raw;
    for (const auto& r : out.references) raw.push_back(r.outputs->p_value);
    const auto adj = holm_adjust(raw);
    for (size_t i = 0; i < adj.size(); ++i) out.references[i].output_p_holm = adj[i];
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
  if (parent < 0 && ov != nullptr) {
    for (size_t i = 0; i < out.references.size(); ++i) {
      const auto& r = out.references[i];
      if (r.output_p_holm && *r.output_p_holm < options.alpha &&
          (parent < 0 || *r.output_p_holm < *out.references[size_t(parent)].output_p_holm)) {
        parent = static_cast<int>(i);
      }
    }
    if (parent >= 0) {
      const auto& r = out.references[static_cast<size_t>(parent)];
      const auto& oc = *r.outputs;
      // With both models' weights tested and unrelated, a shared logit image is a student that
      // learned the reference's distributions.
      relation = r.has_weights && oc.kind == "weight_derived" ? "distilled_logit" : oc.kind;
      verdict_p = r.output_p_holm;
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    " on %d probes against %zu controls (Holm-adjusted p = %s over %zu "
                    "reference(s))",
                    oc.probes_used, oc.controls.size(), fmt_p(r.output_p_holm).c_str(),
                    out.references.size());
      if (r.has_weights) {
        confidence = *r.output_p_holm < options.alpha / 10 ? "high" : "medium";
        summary = "The candidate shares no weights with " + r.name +
                  " but answers like it beyond its controls" + buf +
                  ": distillation. The pattern of the evidence suggests " + relation + ".";
      } else {
        confidence = "low";
        if (relation == "weight_derived") {
          summary = "The candidate shares " + r.name +
                    "'s logit image (the span of its output distributions, set by its "
                    "unembedding) far beyond its controls" +
                    buf +
                    ": it is derived from that model's weights (fine-tuned, merged, quantized or "
                    "another copy); the weights would say which.";
        } else {
          summary = "The candidate answers like " + r.name + " beyond its controls" + buf +
                    ". Without both models' weights a weight-derived copy cannot be told from a "
                    "distilled student; the pattern of the evidence suggests " +
                    relation + ".";
        }
      }
    }
  }
  if (parent < 0) {
    bool any = false, all_tested = !out.references.empty();
    for (size_t i = 0; i < out.references.size(); ++i) {
      const auto& r = out.references[i];
      const bool weights_tested = r.has_weights && r.weights.relation != "inconclusive";
      const bool outputs_tested = r.outputs && r.outputs->p_value.has_value();
      if (weights_tested || outputs_tested) any = true;
      if (!r.p_holm && !r.output_p_holm) all_tested = false;
      if (r.p_holm && (!verdict_p || *r.p_holm < *verdict_p)) verdict_p = r.p_holm;
      if (r.output_p_holm && (!verdict_p || *r.output_p_holm < *verdict_p)) {
        verdict_p = r.output_p_holm;
      }
    }
    relation = any ? "independent" : "inconclusive";
    confidence = any && all_tested ? "medium" : "low";
    summary =
        out.references.empty()
            ? "No reference was given: nothing to compare with."
            : (any ? std::string("No evidence that the candidate derives from any "
                                 "reference by its ") +
                         (ov != nullptr ? (cm ? "weights or outputs" : "outputs") : "weights") +
                         " (smallest Holm-adjusted p = " + fmt_p(verdict_p) + ")."
                   : "No reference could be compared with the candidate.");
  }
  if (ov == nullptr) {
    summary += "\nOutput and distillation tests were not run (no signatures and controls given).";
  } else if (!cm) {
    summary += "\nWeight tests were not run (the candidate's weights are not at hand).";
  }
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
  const std::string cand_name =
      options.candidate_name.empty() ? model_display_name(candidate) : options.candidate_name;
  rep["candidate"] = {
      {"name", cand_name}, {"path", candidate}, {"digest", {{"sha256", cand_digest}}}};
  if (!options.candidate_source.empty()) rep["candidate"]["source"] = options.candidate_source;
  rep["verdict"] = verdict;
  rep["references"] = nlohmann::json::array();
  rep["evidence"] = nlohmann::json::array();
  rep["weight_layers"] = nlohmann::json::array();
  nlohmann::json nodes = nlohmann::json::array(), edges = nlohmann::json::array();
  nodes.push_back({{"id", "candidate"}, {"label", cand_name}, {"kind", "candidate"}});
  nlohmann::json curves = nlohmann::json::array();
  for (size_t i = 0; i < out.references.size(); ++i) {
    const auto& r = out.references[i];
    const auto& w = r.weights;
    nlohmann::json ref = {{"name", r.name},
                          {"path", r.path},
                          {"digest", {{"sha256", r.digest}}},
                          {"relation", r.has_weights ? w.relation : std::string("not compared")},
                          {"p_value", opt_json(w.p_value)},
                          {"p_value_holm", opt_json(r.p_holm)}};
    if (r.outputs) {
      const auto& oc = *r.outputs;
      ref["outputs"] = {{"relation", oc.kind.empty() ? oc.relation : oc.kind},
                        {"p_value", opt_json(oc.p_value)},
                        {"p_value_holm", opt_json(r.output_p_holm)}};
      if (!r.has_weights) {
        ref["relation"] = oc.relation == "related" ? oc.kind : oc.relation;
        ref["p_value"] = opt_json(oc.p_value);
        ref["p_value_holm"] = opt_json(r.output_p_holm);
      }
    }
    rep["references"].push_back(std::move(ref));
    if (r.outputs) {
      const auto& oc = *r.outputs;
      for (const auto& st : oc.statistics) {
        nlohmann::json row = {
            {"reference", r.name},
            {"layer", st.name.find("likelihood") != std::string::npos ? "distillation" : "outputs"},
            {"method", "prediction t-test against controls"},
            {"statistic", st.name},
            {"value",
             std::isfinite(st.reference) ? nlohmann::json(st.reference) : nlohmann::json(nullptr)},
            {"p_value", st.primary ? opt_json(r.output_p_holm) : nlohmann::json(nullptr)},
            {"null_hypothesis", oc.null_hypothesis},
            {"probes", st.name == "logit_image" ? oc.image_probes : oc.probes_used},
            {"detail",
             {{"t", std::isfinite(st.t) ? nlohmann::json(st.t) : nlohmann::json(nullptr)},
              {"df", st.df},
              {"primary", st.primary},
              {"statistic_p_value",
               st.primary ? nlohmann::json(st.p_value) : nlohmann::json(nullptr)},
              {"rank_p", st.rank_p},
              {"control_mean", st.control_mean},
              {"control_sd", st.control_sd},
              {"controls", oc.controls}}}};
        if (st.primary) {
          row["combination"] = oc.combination + "; Holm-Bonferroni over the references";
          if (oc.probes_needed >= 0) row["probes_needed"] = oc.probes_needed;
        }
        if (st.primary && !oc.teacher.empty()) {
          row["detail"]["direction"] = {{"teacher", oc.teacher},
                                        {"bootstrap_agreement", oc.direction_confidence}};
        }
        rep["evidence"].push_back(std::move(row));
      }
      if (!oc.curve.empty()) {
        nlohmann::json probes = nlohmann::json::array(), ps = nlohmann::json::array();
        for (const auto& pt : oc.curve) {
          probes.push_back(pt.probes);
          ps.push_back(pt.p_value);
        }
        curves.push_back({{"reference", r.name}, {"probes", probes}, {"p_value", ps}});
      }
    }
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
    if (r.has_weights && fingerprint::is_weight_derived(w.relation)) {
      edges.push_back({{"from", id},
                       {"to", "candidate"},
                       {"relation", w.relation},
                       {"p_value", opt_json(r.p_holm)}});
    } else if (r.outputs && r.output_p_holm && *r.output_p_holm < options.alpha) {
      edges.push_back({{"from", id},
                       {"to", "candidate"},
                       {"relation", r.outputs->kind},
                       {"p_value", opt_json(r.output_p_holm)}});
    }
  }
  rep["graph"] = {{"nodes", nodes}, {"edges", edges}};
  if (ov != nullptr) {
    rep["probe_curve"] = curves;
    const auto& h = ov->candidate.signature->header;
    rep["suite"] = {{"name", h.suite_name + " " + h.suite_version}, {"digest", h.suite_digest}};
  }
  rep["tool"] = {{"name", "prov"}, {"version", options.tool_version}};
  rep["environment"] = {{"device", "cpu"}, {"dtype", "float32"}};
  out.report = std::move(rep);
  return out;
}

}  // namespace prov::lineage
