// Comparing top-k next-token lists that may be truncated at different depths (a local run keeps
// 20 alternatives, TGI 5, an OpenAI-style API up to 20): every statistic over distributions
// first cuts both lists to the shorter one (so both are truncated alike), then compares them on
// the tokens either list names plus one "rest" bucket per side holding the mass that side did not
// list (1 minus its listed probabilities). A token only the other side lists gets 0 here: its
// mass, whatever it is, lies in this side's rest. Both sides sum to 1, nothing is imputed, the
// same distribution truncated at any depth compares at 0, and lists with nothing in common
// compare far apart.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace prov::probes {

// A top-k list: (token key, natural-log probability), most likely first. Keys are whatever names
// a token consistently in both lists (an id, or its string); equal keys in one list add up.
using KeyedLogprobs = std::vector<std::pair<std::string, float>>;

// The buckets of two lists: p[i], q[i] for each key either names (a's keys in a's order, then
// b's others), then the rest bucket last. Probabilities listed beyond 1 (rounding) are scaled
// down to sum to 1.
struct SharedBuckets {
  std::vector<std::string> keys;  // one per bucket but the rest
  std::vector<double> p, q;       // keys.size() + 1 each
};
SharedBuckets shared_buckets(const KeyedLogprobs& a, const KeyedLogprobs& b);

// Jensen-Shannon divergence (nats, 0..ln 2) of the buckets; ln 2 when either list is empty
// (nothing in common is known).
double js_divergence_with_rest(const KeyedLogprobs& a, const KeyedLogprobs& b);

// Total variation distance (0..1) of the buckets; 1 when either list is empty.
double total_variation_with_rest(const KeyedLogprobs& a, const KeyedLogprobs& b);

}  // namespace prov::probes
