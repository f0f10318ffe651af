// The results of `prov compare` (compare.h) as JSON for tools and as text for people. Text
// output escapes names for the terminal (core/terminal.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "lineage/compare.h"

namespace prov::lineage {

// What the pair is called in the output: the arguments as given.
struct PairNames {
  std::string candidate, reference, merge_with;
};

nlohmann::json weight_comparison_json(const WeightComparison& c, const PairNames& names,
                                      bool tensors);
std::string weight_comparison_text(const WeightComparison& c, const PairNames& names, bool tensors);

nlohmann::json fingerprint_comparison_json(const fingerprint::FingerprintComparison& r,
                                           const PairNames& names);
std::string fingerprint_comparison_text(const fingerprint::FingerprintComparison& r,
                                        const PairNames& names);

nlohmann::json output_comparison_json(const OutputComparisonResult& c, const PairNames& names);
std::string output_comparison_text(const OutputComparisonResult& c, const PairNames& names);

}  // namespace prov::lineage
