// The lineage forest of many models (`prov lineage`): every pair's weights compared
// (fingerprint/weights.h), merges fitted among the models that read as two others' fine-tunes
// (fingerprint/merge.h), the forest built (graph.h, each edge named by judge()), and with controls
// distillation edges for the weight roots from the output tests (attach_output_edges). Each model
// argument is resolved once as a Subject (unique names; each checkpoint opened once).
//
// Test A runs at alpha divided by the number of pairs (Bonferroni), so the chance of any false
// weight edge stays below alpha. Output tests: every root is tested as a student against every
// model that has at least two controls of its own shape (architecture, sizes and tokenizer: the
// controls must stand for independent models like the teacher); Benjamini-Hochberg at `fdr`.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "fingerprint/merge.h"
#include "lineage/gather.h"
#include "lineage/graph.h"
#include "lineage/report.h"
#include "probes/collect.h"

namespace prov::lineage {

struct LineageRequest {
  std::vector<std::string> models;    // checkpoints
  std::vector<std::string> controls;  // checkpoints or signature files: adds output edges
  int permutations = 999;
  double alpha = 0.01;  // family-wise over all pairs
  double fdr = 0.05;    // of the distillation edges
  OutputRequest outputs;
  probes::CollectSettings collect;
  std::string labels;  // a zoo's labels.json: score the recovered parents ("" = none)
  bool quiet = false;  // no progress on stderr
};

// A merge found among the weight comparisons: the model's tree parent, its second parent, the
// fit (alpha is the tree parent's weight).
struct MergeInfo {
  int parent = -1, second_parent = -1;
  fingerprint::MergeFit fit;
};

struct LineageResult {
  std::vector<std::string> names;  // display names, unique
  LineageForest forest;
  std::map<int, MergeInfo> merges;
  int output_tests = 0;
  ReportGraph graph;
  // With labels: the fraction of models whose parent is right, and of true edges found in either
  // direction.
  std::optional<double> parent_accuracy, undirected_edge_recall;
};

Result<LineageResult> recover_lineage(const LineageRequest& request);

}  // namespace prov::lineage
