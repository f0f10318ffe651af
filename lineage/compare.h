// One candidate against one reference, the pairwise commands behind `prov compare`: by weights
// (identity, the permutation test, and with a second parent the merge fit), by weight
// fingerprints, or by outputs against controls. Each model argument is resolved once as a Subject.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "fingerprint/merge.h"
#include "fingerprint/outputs.h"
#include "fingerprint/weight_fingerprint.h"
#include "fingerprint/weights.h"
#include "lineage/gather.h"
#include "probes/collect.h"

namespace prov::lineage {

struct WeightComparison {
  fingerprint::WeightLineageResult result;
  // With a second parent: the fit of the candidate as a weighted average of the reference and
  // it; a fit that is a merge, of a candidate that reads as a merge parent's fine-tune or noised
  // copy, names the relation `merged`.
  std::optional<fingerprint::MergeFit> merge;
};

// kNotFound / the readers' errors naming "candidate", "reference" or "--merge-with".
Result<WeightComparison> compare_checkpoints(const std::string& candidate,
                                             const std::string& reference,
                                             const std::string& merge_with,
                                             const fingerprint::WeightTestOptions& options);

// Either side a weight fingerprint file (a checkpoint is fingerprinted on the fly).
Result<fingerprint::FingerprintComparison> compare_by_fingerprints(
    const std::string& candidate, const std::string& reference,
    const fingerprint::WeightTestOptions& options, const std::string& tool_version);

struct OutputComparisonRequest {
  std::string candidate, reference;
  std::vector<std::string> controls;
  std::string endpoint_model;  // for endpoint arguments
  OutputRequest outputs;
  probes::CollectSettings collect;
  fingerprint::OutputTestOptions test;
};

struct OutputComparisonResult {
  fingerprint::OutputComparison result;
  probes::SignatureHeader candidate_header;  // suite name, version and digest
};

// kInvalidArgument without controls; the collectors' and the test's errors otherwise.
Result<OutputComparisonResult> compare_by_outputs(const OutputComparisonRequest& request);

}  // namespace prov::lineage
