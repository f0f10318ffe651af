// `prov zoo build`: model families with known lineage, trained with the project's own LibTorch
// training (train.h) from a real text corpus — the ground truth every accuracy figure is
// measured on (docs/zoo.md lists the members and recipes).
//
// One call writes OUT/<member>/{config.json, model.safetensors, tokenizer.json} for every member
// and OUT/labels.json with each member's relation, parent(s), recipe (architecture, data, seeds,
// steps, derivative parameters) and validation loss. Members already present with the same
// recipe are reused, so an interrupted build resumes.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::zoo {

struct ZooOptions {
  std::string out_dir;
  std::string preset = "tiny";                    // tiny (2 CPU cores) | small (a GPU)
  std::string corpus_package = "wordnet-base";    // main corpus
  std::string corpus_file;                        // overrides corpus_package
  std::string finetune_package = "fortunes-min";  // the fine-tunes' other domain
  std::string device = "cpu";
  bool reuse = true;
  // Extra independent members twin_llama_01..NN: base_llama's architecture, data and recipe with
  // init seeds 101..100+NN — the strongest null population for calibrating lineage tests.
  int seed_twins = 0;
  // Replicate students: for k = 1..N, each student recipe again with other seeds, named
  // <student>_sK (distill_seq_100_s1, ...) — more positives for measuring distillation tests.
  int student_seeds = 0;
  // "full": every member (docs/zoo.md). "demo": the members `prov demo` audits — base_llama,
  // ft_strong, distill_seq_100, ind_llama_seed and at least 4 seed twins (the controls of the
  // student's output test) — made with the same recipes as in a full family.
  std::string family = "full";
  std::function<void(const std::string&)> log;  // progress lines
};

// Returns the labels document (also written to OUT/labels.json).
Result<nlohmann::json> build_zoo(const ZooOptions& options);

}  // namespace prov::zoo
