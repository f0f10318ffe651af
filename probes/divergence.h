// Divergence suites (prov suite build): the natural-v1 prompts on which a population of local
// models disagrees most — top-1 disagreement plus the total variation of their top-20 lists,
// summed over model pairs — kept in pool order. Runs the models (LibTorch).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "probes/suite.h"

namespace prov::probes {

struct DivergenceOptions {
  int pool = 4000;  // natural-v1 prompts scored
  int keep = 500;   // prompts kept
  std::string device = "cpu";
  std::string dtype = "float32";
  int batch = 16;
  bool quiet = false;  // no progress line
};

struct DivergenceSuite {
  Suite suite;           // named "divergence" version "1"; the description names the models
  double mean_kept = 0;  // mean disagreement per model pair on the kept prompts
  double mean_all = 0;   // the same on the whole pool
};

// Failures name the model that could not be loaded or run.
Result<DivergenceSuite> build_divergence_suite(const std::vector<std::string>& models,
                                               const DivergenceOptions& options);

}  // namespace prov::probes
