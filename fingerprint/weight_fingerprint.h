// Weight fingerprints: what the exact weight-lineage test (weights.h, test A) needs, stored
// compactly so that two models can be compared without their checkpoints.
//
// A fingerprint holds the model's identity (OMS digest, per-tensor SHA-256 digests of the
// canonical bytes) and, per layer and weight matrix kind, the cosine Gram matrix over the
// residual dimensions S that compare_weights' test A uses (the same seeded subset for a given
// width and WeightTestOptions::seed), as the off-diagonal upper triangle in float32:
// |S| (|S| - 1) / 2 values per matrix, 32,640 for |S| = 256.
//
// File: the 8 bytes "PROVWFP\x01", then the WeightFingerprint protobuf (proto/prov.proto).
//
// compare_fingerprints(candidate, reference): identical OMS digests -> `identical`; every tensor
// digest equal (same roles, same bytes) -> `converted`; else test A on the stored Grams (exact
// signed-permutation p-value, the same value compare_weights gives for the same seed and
// permutations) -> `derived` (shares weights; which derivation needs the checkpoints) or
// `independent`; `inconclusive` when the widths, seeds or dimension sets differ (the reason says
// which). Reorderings (test B) and relation naming need the checkpoints.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "fingerprint/weights.h"
#include "model/formats/model.h"
#include "prov.pb.h"

namespace prov::fingerprint {

inline constexpr uint32_t kWeightFingerprintVersion = 1;

// One pass over the checkpoint: the file digests (OMS manifest), the tensor digests and the Gram
// products are tasks of one worker pool (WeightTestOptions::threads), largest first, so each
// byte comes from disk once. Errors as the readers'.
Result<pb::WeightFingerprint> make_weight_fingerprint(const model::Model& m,
                                                      const std::string& tool_version,
                                                      const WeightTestOptions& options = {});

// Atomic write (temp file + rename): kIo on failure.
Status write_weight_fingerprint(const std::string& path, const pb::WeightFingerprint& fp);
// kNotFound / kIo; kCorrupt for a file without the magic or with undecodable or inconsistent
// contents (a Gram triangle of the wrong length, dimensions out of range); kUnsupported for a
// newer schema version.
Result<pb::WeightFingerprint> read_weight_fingerprint(const std::string& path);
// True when the file starts with the fingerprint magic.
bool is_weight_fingerprint_file(const std::string& path);

struct FingerprintComparison {
  // identical | converted | weight_derived | independent | inconclusive
  Relation relation = Relation::kInconclusive;
  std::string reason;
  std::optional<double> p_value;
  double statistic = 0, z_score = 0;
  int permutations = 0;
  std::vector<LayerSimilarity> layers;
  std::string null_hypothesis;
};

Result<FingerprintComparison> compare_fingerprints(const pb::WeightFingerprint& candidate,
                                                   const pb::WeightFingerprint& reference,
                                                   const WeightTestOptions& options = {});

}  // namespace prov::fingerprint
