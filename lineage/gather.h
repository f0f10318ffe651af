// Output evidence for a set of Subjects: their signatures on one probe suite, the
// cross-likelihood scores of each other's greedy texts, and their logit-image signatures — what
// fingerprint::compare_outputs needs — gathered through a probes::Collector (cached, resumable).
//
// Thread safety: one call at a time per Collector.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "fingerprint/outputs.h"
#include "probes/collect.h"
#include "probes/signature.h"
#include "probes/subject.h"
#include "probes/suite.h"

namespace prov::lineage {

struct OutputRequest {
  // Built-in spec or JSONL path; when the first subject is a natural-v1 signature file, its size
  // wins.
  std::string suite = "natural-v1:1000";
  // Probes on which models and endpoints score the greedy texts of all subjects (0 = none).
  // Subjects known only by a signature file get no scores (then cross_likelihood_ratio is left
  // out).
  int xlik_probes = 200;
  std::vector<std::string> scores;  // given score files (matched by model digest): no scoring now
  // Given image signatures (matched by model digest); when empty, logit-image-v1 with the
  // collector's image_probes is collected from every subject that is a checkpoint.
  std::vector<std::string> images;
};

struct OutputSet {
  probes::Suite suite;
  std::string suite_spec;
  std::vector<probes::Signature> signatures;               // one per subject
  std::vector<std::unique_ptr<probes::Signature>> scores;  // one per subject, may be null
  std::vector<std::unique_ptr<probes::Signature>> images;  // one per subject, may be null

  // Subject i's evidence under `name`, for fingerprint::compare_outputs.
  fingerprint::NamedSignature named(size_t i, const std::string& name) const {
    return {name, &signatures[i], scores[i].get(), images[i].get()};
  }
};

// Gathers the output evidence of `subjects` (in order). Failures name the subject.
Result<OutputSet> gather_outputs(const std::vector<probes::Subject*>& subjects,
                                 const OutputRequest& request, probes::Collector& collector);

// The cross-likelihood suite of `signatures` on `base` (fingerprint::cross_likelihood_suite, the
// first `xlik_probes` probes) written into the signature cache; returns its path and fills
// `*out` with it.
Result<std::string> cross_likelihood_suite_file(
    const probes::Suite& base, const std::vector<const probes::Signature*>& signatures,
    int xlik_probes, const probes::CollectSettings& settings, probes::Suite* out);

}  // namespace prov::lineage
