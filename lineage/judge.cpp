#include "lineage/judge.h"

#include <algorithm>
#include <cstdio>

namespace prov::lineage {

namespace {

std::string fmt_p(const std::optional<double>& p) {
  if (!p) return "none";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", *p);
  return buf;
}

size_t count_values(const std::vector<std::optional<double>>& v) {
  return static_cast<size_t>(
      std::count_if(v.begin(), v.end(), [](const auto& p) { return p.has_value(); }));
}

// Rule 1.
bool by_identity(const JudgeInput& in, Verdict* v) {
  for (size_t i = 0; i < in.references.size(); ++i) {
    const auto* w = in.references[i].weights;
    if (w == nullptr || !is_identity_decided(w->relation)) continue;
    v->parent = static_cast<int>(i);
    v->relation = w->relation;
    v->confidence = Confidence::kHigh;
    v->basis = VerdictBasis::kIdentity;
    v->summary = std::string("The candidate is ") + relation_name(w->relation) +
                 " with respect to " + in.references[i].name + ": " + w->reason +
                 ". Decided by exact comparison of the weights (no test).";
    return true;
  }
  return false;
}

// Rule 2.
bool by_weight_test(const JudgeInput& in, Verdict* v) {
  double best_z = -1e300;
  for (size_t i = 0; i < in.references.size(); ++i) {
    const auto* w = in.references[i].weights;
    const auto& p = v->weight_p_holm[i];
    if (w == nullptr || !p || *p >= in.alpha || !is_weight_derived(w->relation)) continue;
    if (w->z_score > best_z) {
      best_z = w->z_score;
      v->parent = static_cast<int>(i);
    }
  }
  if (v->parent < 0) return false;
  const auto& r = in.references[static_cast<size_t>(v->parent)];
  const auto& p = v->weight_p_holm[static_cast<size_t>(v->parent)];
  v->relation = r.weights->relation;
  v->p_value = p;
  v->confidence = *p < in.alpha / 10 ? Confidence::kHigh : Confidence::kMedium;
  v->basis = VerdictBasis::kWeights;
  v->summary = "The candidate shares weights with " + r.name + " (" + relation_name(v->relation) +
               "): Holm-adjusted p = " + fmt_p(p) + " over " +
               std::to_string(count_values(v->weight_p_holm)) +
               " reference(s) tested. Evidence: " + r.weights->reason + ".";
  return true;
}

// Rule 3.
bool by_aligned_score(const JudgeInput& in, Verdict* v) {
  double best_z = -1e300;
  for (size_t i = 0; i < in.references.size(); ++i) {
    const auto* w = in.references[i].weights;
    if (w == nullptr || !is_weight_derived(w->relation) || !w->aligned.ran) continue;
    if (w->aligned.z_score >= in.aligned_z_threshold && w->aligned.z_score > best_z) {
      best_z = w->aligned.z_score;
      v->parent = static_cast<int>(i);
    }
  }
  if (v->parent < 0) return false;
  const auto& r = in.references[static_cast<size_t>(v->parent)];
  v->relation = r.weights->relation;
  v->confidence = Confidence::kMedium;
  v->basis = VerdictBasis::kAligned;
  v->summary = "The candidate shares weights with " + r.name +
               " under a reordering of its dimensions (" + relation_name(v->relation) +
               "), seen by the vocabulary-aligned score only (no calibrated p-value). Evidence: " +
               r.weights->reason + ".";
  return true;
}

// Rule 4.
bool by_outputs(const JudgeInput& in, Verdict* v) {
  for (size_t i = 0; i < in.references.size(); ++i) {
    const auto& p = v->output_p_holm[i];
    if (in.references[i].outputs == nullptr || !p || *p >= in.alpha) continue;
    if (v->parent < 0 || *p < *v->output_p_holm[static_cast<size_t>(v->parent)]) {
      v->parent = static_cast<int>(i);
    }
  }
  if (v->parent < 0) return false;
  const size_t k = static_cast<size_t>(v->parent);
  const auto& r = in.references[k];
  const auto& oc = *r.outputs;
  const auto& p = v->output_p_holm[k];
  const bool weights_compared = r.weights != nullptr;
  v->relation = judged_output_relation(r);
  v->p_value = p;
  v->basis = VerdictBasis::kOutputs;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                " on %d probes against %zu controls (Holm-adjusted p = %s over %zu reference(s))",
                oc.probes_used, oc.controls.size(), fmt_p(p).c_str(), in.references.size());
  const std::string name = relation_name(v->relation);
  if (weights_compared) {
    v->confidence = *p < in.alpha / 10 ? Confidence::kHigh : Confidence::kMedium;
    v->summary = "The candidate shares no weights with " + r.name +
                 " but answers like it beyond its controls" + buf +
                 ": distillation. The pattern of the evidence suggests " + name + ".";
  } else if (v->relation == Relation::kWeightDerived) {
    v->confidence = Confidence::kLow;
    v->summary = "The candidate shares " + r.name +
                 "'s logit image (the span of its output distributions, set by its "
                 "unembedding) far beyond its controls" +
                 buf +
                 ": it is derived from that model's weights (fine-tuned, merged, quantized or "
                 "another copy); the weights would say which.";
  } else {
    v->confidence = Confidence::kLow;
    v->summary = "The candidate answers like " + r.name + " beyond its controls" + buf +
                 ". Without both models' weights a weight-derived copy cannot be told from a "
                 "distilled student; the pattern of the evidence suggests " +
                 name + ".";
  }
  return true;
}

// Rule 5.
void no_parent(const JudgeInput& in, Verdict* v) {
  bool any = false, all_tested = !in.references.empty();
  for (size_t i = 0; i < in.references.size(); ++i) {
    const auto& r = in.references[i];
    const bool weights_tested =
        r.weights != nullptr && r.weights->relation != Relation::kInconclusive;
    const bool outputs_tested = r.outputs != nullptr && r.outputs->p_value.has_value();
    if (weights_tested || outputs_tested) any = true;
    const auto& pw = v->weight_p_holm[i];
    const auto& po = v->output_p_holm[i];
    if (!pw && !po) all_tested = false;
    if (pw && (!v->p_value || *pw < *v->p_value)) v->p_value = pw;
    if (po && (!v->p_value || *po < *v->p_value)) v->p_value = po;
  }
  v->relation = any ? Relation::kIndependent : Relation::kInconclusive;
  v->confidence = any && all_tested ? Confidence::kMedium : Confidence::kLow;
  v->basis = VerdictBasis::kNone;
  if (in.references.empty()) {
    v->summary = "No reference was given: nothing to compare with.";
  } else if (!any) {
    v->summary = "No reference could be compared with the candidate.";
  } else {
    const std::string layers =
        in.outputs_run ? (in.candidate_weights ? "weights or outputs" : "outputs") : "weights";
    v->summary = "No evidence that the candidate derives from any reference by its " + layers +
                 " (smallest Holm-adjusted p = " + fmt_p(v->p_value) + ").";
  }
}

}  // namespace

Relation judged_output_relation(const ReferenceEvidence& r) {
  if (r.outputs == nullptr) return Relation::kInconclusive;
  // With both models' weights tested and unrelated, a shared logit image is a student that
  // learned the reference's distributions.
  if (r.weights != nullptr && r.outputs->relation == Relation::kWeightDerived) {
    return Relation::kDistilledLogit;
  }
  return r.outputs->relation;
}

std::vector<std::optional<double>> holm_adjust(const std::vector<std::optional<double>>& p) {
  std::vector<size_t> order;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i]) order.push_back(i);
  }
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

Verdict judge(const JudgeInput& in) {
  Verdict v;
  std::vector<std::optional<double>> pw, po;
  for (const auto& r : in.references) {
    pw.push_back(r.weights != nullptr ? r.weights->p_value : std::nullopt);
    po.push_back(r.outputs != nullptr ? r.outputs->p_value : std::nullopt);
  }
  v.weight_p_holm = holm_adjust(pw);
  v.output_p_holm = holm_adjust(po);
  const bool decided = by_identity(in, &v) || by_weight_test(in, &v) || by_aligned_score(in, &v) ||
                       (in.outputs_run && by_outputs(in, &v));
  if (!decided) {
    v.parent = -1;
    v.p_value.reset();
    no_parent(in, &v);
  }
  if (!in.outputs_run) {
    v.summary += "\nOutput and distillation tests were not run (no signatures and controls given).";
  } else if (!in.candidate_weights) {
    v.summary += "\nWeight tests were not run (the candidate's weights are not at hand).";
  }
  return v;
}

}  // namespace prov::lineage
