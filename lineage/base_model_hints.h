// The Hugging Face repo ids a model's own files name as its base models, for the card export
// (store::ExportOptions::base_model_hints): a card written from the ledger must name a base model
// by its Hub repo id, never by a digest, and a model directory usually says which it came from.
//
// Thread safety: pure; concurrent calls are safe.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace prov::lineage {

// `path` is a model directory or a GGUF file. The hints come from the first of these sources that
// names any (one source only, so that two guesses never compete), each value kept only when it is
// a repo id (store::is_hf_repo_id), without duplicates:
//   1. the model card, README.md: the `base_model` of its YAML front matter (a string or a list);
//   2. GGUF metadata (the file, or the first *.gguf of the directory in name order):
//      general.base_model.N.repo_url (https://huggingface.co/ORG/NAME), or its organization and
//      name, for N below general.base_model.count; then general.source.huggingface.repository and
//      general.source.repo_url (the repository the file was converted from);
//   3. config.json `_name_or_path`: transformers records there the id the model was loaded from
//      before it was saved, its base model (a local path is no repo id and is skipped).
// An absent file is no error. kNotFound when `path` does not exist; kCorrupt for a malformed
// config.json or GGUF header (naming the file).
Result<std::vector<std::string>> base_model_hints(const std::string& path);

}  // namespace prov::lineage
