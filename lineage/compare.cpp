#include "lineage/compare.h"

#include "model/formats/model.h"
#include "probes/subject.h"

namespace prov::lineage {

Result<WeightComparison> compare_checkpoints(const std::string& candidate,
                                             const std::string& reference,
                                             const std::string& merge_with,
                                             const fingerprint::WeightTestOptions& options) {
  auto a = model::open_model(candidate);
  if (!a.is_ok()) return a.status().with_context("candidate");
  auto b = model::open_model(reference);
  if (!b.is_ok()) return b.status().with_context("reference");
  WeightComparison out;
  PROV_ASSIGN_OR_RETURN(out.result, fingerprint::compare_weights(*a, *b, options));
  if (merge_with.empty()) return out;
  auto c = model::open_model(merge_with);
  if (!c.is_ok()) return c.status().with_context("--merge-with");
  auto fit = fingerprint::fit_merge(*a, *b, *c);
  if (!fit.is_ok()) return fit.status().with_context("merge fit");
  out.merge = *fit;
  if (fit->is_merge && fingerprint::reads_as_merge_parent(out.result.relation)) {
    out.result.relation = Relation::kMerged;
    out.result.reason = "a merge of the reference and " + merge_with + ": " + fit->reason +
                        "; it shares weights with the reference (" + out.result.reason + ")";
  }
  return out;
}

Result<fingerprint::FingerprintComparison> compare_by_fingerprints(
    const std::string& candidate, const std::string& reference,
    const fingerprint::WeightTestOptions& options, const std::string& tool_version) {
  auto load = [&](const std::string& path) -> Result<pb::WeightFingerprint> {
    if (fingerprint::is_weight_fingerprint_file(path)) {
      return fingerprint::read_weight_fingerprint(path);
    }
    PROV_ASSIGN_OR_RETURN(model::Model m, model::open_model(path));
    fingerprint::WeightTestOptions wo;
    wo.seed = options.seed;
    return fingerprint::make_weight_fingerprint(m, tool_version, wo);
  };
  auto a = load(candidate);
  if (!a.is_ok()) return a.status().with_context("candidate");
  auto b = load(reference);
  if (!b.is_ok()) return b.status().with_context("reference");
  return fingerprint::compare_fingerprints(*a, *b, options);
}

Result<OutputComparisonResult> compare_by_outputs(const OutputComparisonRequest& r) {
  if (r.controls.empty()) {
    return invalid_argument(
        "--outputs-only needs --controls: signatures or models unrelated to "
        "the reference");
  }
  probes::SubjectSet subjects;
  std::vector<probes::Subject*> all;
  const std::vector<std::string> roles = {"candidate", "reference"};
  std::vector<std::string> specs = {r.candidate, r.reference};
  specs.insert(specs.end(), r.controls.begin(), r.controls.end());
  for (size_t i = 0; i < specs.size(); ++i) {
    auto s = subjects.add(specs[i], r.endpoint_model);
    if (!s.is_ok()) return s.status().with_context(i < 2 ? roles[i] : "control " + specs[i]);
    all.push_back(*s);
  }
  probes::Collector collector(r.collect);
  PROV_ASSIGN_OR_RETURN(OutputSet set, gather_outputs(all, r.outputs, collector));
  std::vector<fingerprint::NamedSignature> ctrl;
  for (size_t i = 2; i < all.size(); ++i) ctrl.push_back(set.named(i, all[i]->name()));
  OutputComparisonResult out;
  PROV_ASSIGN_OR_RETURN(out.result,
                        fingerprint::compare_outputs(set.named(0, all[0]->name()),
                                                     set.named(1, all[1]->name()), ctrl, r.test));
  out.candidate_header = set.signatures[0].header;
  return out;
}

}  // namespace prov::lineage
