// The accuracy benchmark (`prov bench accuracy`): every lineage test run on families with known
// lineage (accuracy.h has the ground truth, pair classes, controls and metrics), each pair's
// verdict named by judge() — the same rule `prov audit` ships.
//
//  weights  fingerprint::compare_weights on every ordered pair of models (merges fitted among
//           the models that read as two others' fine-tunes), verdict judge() on the weights.
//  outputs  fingerprint::compare_outputs of every non-root member against every root of its
//           family, controls drawn leave-one-out from the roots; verdict judge() on the outputs.
//  both     the two layers per output pair: verdict judge() on both (as prov audit), and the
//           score p = min(1, 2 min(p_w, p_o)) (Bonferroni over the two layers) for AUROC and
//           calibration.
//
// Signatures come from the signature cache (collected now when missing) or, with `sigs`, from
// precollected files DIR/PREFIX+NAME.sig (scores DIR/PREFIX+NAME.TAG.sig).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "lineage/gather.h"
#include "probes/collect.h"

namespace prov::lineage {

struct BenchRequest {
  std::vector<std::string> families;  // DIR or DIR=PREFIX (prefix of the `sigs` file names)
  std::vector<std::string> access = {"weights", "outputs", "both"};
  OutputRequest outputs;  // suite and xlik_probes of signatures collected now
  int max_probes = 0;     // use at most this many probes (0 = all)
  std::string sigs, scores_tag = "x1000", image_tag = "img";
  int permutations = 999;
  double alpha = 0.01;
  probes::CollectSettings collect;
  std::string command;  // the command line, written into the result
};

struct BenchResult {
  nlohmann::json summary;  // {command, families, options, access: {level: summary}, lineage, ...}
  nlohmann::json pairs;    // {level: [row per pair]}
  std::string markdown;    // render_accuracy_markdown(summary)
};

// kInvalidArgument for an unknown access level; the family loaders', collectors' and readers'
// errors (naming the family and member) otherwise. A pair whose test fails is counted as an error
// in its level's summary, not a failure of the run.
Result<BenchResult> run_accuracy_bench(const BenchRequest& request);

}  // namespace prov::lineage
