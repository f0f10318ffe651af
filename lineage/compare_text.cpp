#include "lineage/compare_text.h"

#include <cstdarg>
#include <cstdio>

#include "core/terminal.h"

namespace prov::lineage {

namespace {

using nlohmann::json;

std::string p_text(const std::optional<double>& p) {
  if (!p) return "none (no test)";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", *p);
  return buf;
}

// printf into a string (one line of a table).
std::string fmt(const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

std::string header(const PairNames& n) {
  return "candidate: " + shown(n.candidate) + "\nreference: " + shown(n.reference) + "\n";
}

}  // namespace

json weight_comparison_json(const WeightComparison& c, const PairNames& n, bool tensors) {
  const auto& r = c.result;
  json j = fingerprint::weight_result_json(r, tensors);
  j["candidate"] = n.candidate;
  j["reference"] = n.reference;
  if (c.merge) {
    const auto& m = *c.merge;
    j["merge"] = {{"second_parent", n.merge_with},
                  {"is_merge", m.is_merge},
                  {"alpha", m.alpha},
                  {"alpha_range", {m.alpha_min, m.alpha_max}},
                  {"tensors", m.tensors}};
    j["evidence"].push_back({{"method", "merge-fit"},
                             {"statistic", "relative_residual"},
                             {"value", m.relative_residual},
                             {"p_value", nullptr},
                             {"null_hypothesis", m.null_hypothesis},
                             {"result", m.is_merge ? "merged" : "not a merge"},
                             {"reason", m.reason}});
  }
  return j;
}

std::string weight_comparison_text(const WeightComparison& c, const PairNames& n, bool tensors) {
  const auto& r = c.result;
  std::string t = header(n) + "relation:  " + relation_name(r.relation);
  if (r.relation == Relation::kQuantized) {
    t += " (" + r.identity.scheme + ", " + r.identity.quantized_side + " side)";
  }
  if (!r.direction.empty()) t += " (" + r.direction + ")";
  t += "\np-value:   " + p_text(r.p_value) + "\nreason:    " + r.reason + "\n";
  if (r.p_value) t += "H0:        " + r.null_hypothesis + "\n";
  if (c.merge) {
    t += std::string("merge fit: ") + (c.merge->is_merge ? "merge" : "not a merge") +
         " of the reference and " + shown(n.merge_with) + ": " + c.merge->reason + "\n";
  }
  if (!r.layers.empty()) {
    t += fmt("\n%-9s %-9s %10s %9s  %s\n", "ref layer", "cand layer", "similarity", "p-value",
             "per matrix");
    for (const auto& l : r.layers) {
      std::string comps;
      for (const auto& x : l.components) {
        comps += fmt("%s%s %.3f", comps.empty() ? "" : ", ", x.kind.c_str(), x.similarity);
      }
      t += fmt("%-9d %-10d %10.4f %9.3g  ", l.reference_layer, l.candidate_layer, l.similarity,
               l.p_value) +
           comps + "\n";
    }
  }
  if (tensors && !r.identity.tensors.empty()) {
    t += fmt("\n%-36s %-10s %-10s %12s %9s  %s\n", "tensor", "candidate", "reference", "rel. error",
             "cosine", "explained by");
    for (const auto& x : r.identity.tensors) {
      t += fmt("%-36s %-10s %-10s %12.3e %9.6f  %s\n", shown(x.role).c_str(), x.dtype_a.c_str(),
               x.dtype_b.c_str(), x.relative_error, x.cosine,
               x.bit_identical ? "identical" : (x.explained ? x.scheme.c_str() : "-"));
    }
  }
  return t;
}

json fingerprint_comparison_json(const fingerprint::FingerprintComparison& r, const PairNames& n) {
  json j = {{"candidate", n.candidate},
            {"reference", n.reference},
            {"relation", relation_name(r.relation)},
            {"reason", r.reason},
            {"p_value", r.p_value ? json(*r.p_value) : json()},
            {"from_fingerprints", true}};
  json ev = json::array();
  if (r.permutations > 0) {
    ev.push_back({{"method", "gram-permutation"},
                  {"statistic", "mean_layer_gram_correlation"},
                  {"value", r.statistic},
                  {"p_value", r.p_value ? json(*r.p_value) : json()},
                  {"null_hypothesis", r.null_hypothesis},
                  {"permutations", r.permutations},
                  {"z_score", r.z_score}});
  } else {
    ev.push_back({{"method", "identity"},
                  {"statistic", "digests"},
                  {"value", nullptr},
                  {"p_value", nullptr},
                  {"null_hypothesis", r.null_hypothesis}});
  }
  j["evidence"] = ev;
  return j;
}

std::string fingerprint_comparison_text(const fingerprint::FingerprintComparison& r,
                                        const PairNames& n) {
  return header(n) + "relation:  " + relation_name(r.relation) +
         " (from fingerprints)\np-value:   " + p_text(r.p_value) + "\nreason:    " + r.reason +
         "\n";
}

json output_comparison_json(const OutputComparisonResult& c, const PairNames& n) {
  const auto& r = c.result;
  const auto& h = c.candidate_header;
  json j = fingerprint::output_result_json(r);
  j["candidate"] = n.candidate;
  j["reference"] = n.reference;
  j["suite"] = {{"name", h.suite_name}, {"version", h.suite_version}, {"digest", h.suite_digest}};
  json ev = json::array();
  for (const auto& s : r.statistics) {
    if (!s.primary) continue;
    ev.push_back({{"method", "output-prediction-t"},
                  {"statistic", s.name},
                  {"value", s.reference},
                  {"p_value", s.p_value},
                  {"null_hypothesis", r.null_hypothesis},
                  {"probes", s.name == "logit_image" ? r.image_probes : r.probes_used},
                  {"controls", s.controls.size()}});
  }
  j["evidence"] = ev;
  return j;
}

std::string output_comparison_text(const OutputComparisonResult& c, const PairNames& n) {
  const auto& r = c.result;
  std::string t = header(n) + "relation:  " + (r.related() ? "related (" : "") +
                  relation_name(r.relation) + (r.related() ? ")" : "") +
                  "\np-value:   " + p_text(r.p_value) + "\nreason:    " + r.reason + "\n";
  if (!r.p_value) return t;
  t += "H0:        " + r.null_hypothesis + "\ncombined:  " + r.combination +
       "\nprobes:    " + std::to_string(r.probes_used) + " used, " +
       (r.probes_needed >= 0 ? std::to_string(r.probes_needed) + " needed"
                             : std::string("p never reached alpha")) +
       "; " + std::to_string(r.controls.size()) + " controls" +
       (r.cross_tokenizer ? " (other tokenizers: text-level statistics only)" : "") + "\n";
  if (r.image_probes > 0) {
    t += "image:     logit image on " + std::to_string(r.image_probes) +
         " probes (the candidate's rank " + std::to_string(r.image_rank) + ")\n";
  }
  t += fmt("\n%-22s %11s %11s %10s %8s %9s %7s\n", "statistic", "reference", "ctrl mean", "ctrl sd",
           "t", "p-value", "rank p");
  for (const auto& s : r.statistics) {
    t += fmt("%-22s %11.5f %11.5f %10.5f %8.2f %9s %7.3f\n", s.name.c_str(), s.reference,
             s.control_mean, s.control_sd, s.t, s.primary ? p_text(s.p_value).c_str() : "(score)",
             s.rank_p);
  }
  if (!r.teacher.empty()) {
    t +=
        fmt("\ndirection: the %s looks like the teacher (bootstrap agreement %.2f; gaps %.3f "
            "reference, %.3f candidate, nats/byte; rule and its measured accuracy: "
            "docs/output-lineage.md)\n",
            r.teacher.c_str(), r.direction_confidence, r.gap_reference, r.gap_candidate);
  }
  return t;
}

}  // namespace prov::lineage
