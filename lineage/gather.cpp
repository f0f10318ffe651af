#include "lineage/gather.h"

#include <optional>

namespace prov::lineage {

namespace {

// Given signature files (--scores, --images), each matched to a subject by its model digest, or
// its endpoint and model name: one per subject, null where none matched.
Result<std::vector<std::unique_ptr<probes::Signature>>> match_given(
    const std::vector<std::string>& paths, const std::string& what,
    const std::vector<probes::Signature>& sigs) {
  std::vector<probes::Signature> given;
  for (const auto& path : paths) {
    auto sig = probes::read_signature(path);
    if (!sig.is_ok()) return sig.status().with_context(what);
    given.push_back(std::move(*sig));
  }
  auto same_model = [](const probes::SignatureHeader& a, const probes::SignatureHeader& b) {
    if (!a.model_digest.empty()) return a.model_digest == b.model_digest;
    return !a.endpoint_url.empty() && a.endpoint_url == b.endpoint_url &&
           a.model_name == b.model_name;
  };
  std::vector<std::unique_ptr<probes::Signature>> matched(sigs.size());
  for (size_t i = 0; i < sigs.size(); ++i) {
    for (const auto& g : given) {
      if (same_model(sigs[i].header, g.header)) {
        matched[i] = std::make_unique<probes::Signature>(g);
        break;
      }
    }
  }
  return matched;
}

}  // namespace

Result<std::string> cross_likelihood_suite_file(
    const probes::Suite& base, const std::vector<const probes::Signature*>& signatures,
    int xlik_probes, const probes::CollectSettings& settings, probes::Suite* out) {
  PROV_ASSIGN_OR_RETURN(auto xs,
                        fingerprint::cross_likelihood_suite(base, signatures, xlik_probes));
  PROV_ASSIGN_OR_RETURN(std::string dir, probes::signature_cache_dir(settings));
  const std::string path = dir + "/" + probes::suite_digest(xs).substr(0, 32) + ".jsonl";
  PROV_RETURN_IF_ERROR(probes::write_suite_file(path, xs));
  *out = std::move(xs);
  return path;
}

Result<OutputSet> gather_outputs(const std::vector<probes::Subject*>& subjects,
                                 const OutputRequest& request, probes::Collector& collector) {
  OutputSet out;
  // The suite: the request's, or the one the first subject's signature file was collected on.
  out.suite_spec = request.suite;
  if (!subjects.empty() && subjects[0]->kind() == probes::SubjectKind::kSignatureFile) {
    auto sig = subjects[0]->signature_file();
    if (!sig.is_ok()) return sig.status().with_context(subjects[0]->name());
    const auto& h = (*sig)->header;
    if (h.suite_name == "natural-v1") {
      out.suite_spec = "natural-v1:" + std::to_string(h.num_probes);
    }
  }
  PROV_ASSIGN_OR_RETURN(out.suite, probes::resolve_suite(out.suite_spec, 0));
  for (probes::Subject* s : subjects) {
    auto sig = collector.signature(*s, out.suite_spec, out.suite);
    if (!sig.is_ok()) return sig.status().with_context(s->name());
    out.signatures.push_back(std::move(*sig));
  }
  const auto& sigs = out.signatures;
  // Cross-likelihood scores: given, or collected now from checkpoints and endpoints.
  PROV_ASSIGN_OR_RETURN(out.scores, match_given(request.scores, "scores", sigs));
  std::optional<probes::Suite> xsuite;
  std::string xsuite_path;
  for (size_t i = 0; i < subjects.size(); ++i) {
    if (out.scores[i] || !request.scores.empty() || request.xlik_probes <= 0 ||
        subjects[i]->kind() == probes::SubjectKind::kSignatureFile) {
      continue;
    }
    if (!xsuite) {
      std::vector<const probes::Signature*> ptrs;
      for (const auto& s : sigs) ptrs.push_back(&s);
      probes::Suite xs;
      PROV_ASSIGN_OR_RETURN(xsuite_path,
                            cross_likelihood_suite_file(out.suite, ptrs, request.xlik_probes,
                                                        collector.settings(), &xs));
      xsuite = std::move(xs);
    }
    auto sig = collector.signature(*subjects[i], xsuite_path, *xsuite);
    if (!sig.is_ok()) return sig.status().with_context(subjects[i]->name() + " (scores)");
    out.scores[i] = std::make_unique<probes::Signature>(std::move(*sig));
  }
  // Image signatures: given, or collected now from checkpoints.
  PROV_ASSIGN_OR_RETURN(out.images, match_given(request.images, "image signatures", sigs));
  const int image_probes = collector.settings().image_probes;
  const std::string image_spec = "logit-image-v1:" + std::to_string(image_probes);
  std::optional<probes::Suite> image_suite;
  for (size_t i = 0; i < subjects.size(); ++i) {
    if (out.images[i] || !request.images.empty() || image_probes <= 0 ||
        subjects[i]->kind() != probes::SubjectKind::kCheckpoint) {
      continue;
    }
    if (!image_suite) image_suite = probes::logit_image_v1(image_probes);
    auto sig = collector.signature(*subjects[i], image_spec, *image_suite);
    if (!sig.is_ok()) return sig.status().with_context(subjects[i]->name() + " (logit image)");
    out.images[i] = std::make_unique<probes::Signature>(std::move(*sig));
  }
  return out;
}

}  // namespace prov::lineage
