// Options shared by several subcommands, registered once so that they are spelled, defaulted and
// meant the same everywhere.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "lineage/gather.h"
#include "probes/collect.h"

namespace prov::cli {

// Signatures collected now: --suite, --xlik-probes, --image-probes, --cache, --device, --dtype,
// --batch, --tokenizer (defaults: the values already in `outputs` and `settings`).
void add_collection_options(CLI::App* cmd, lineage::OutputRequest* outputs,
                            probes::CollectSettings* settings);

// Model arguments that are endpoint URLs: --model-name, --api-key-env, --retries, --dialect,
// --endpoint-tokenizer.
void add_endpoint_options(CLI::App* cmd, std::string* model_name,
                          probes::EndpointSettings* endpoint);

}  // namespace prov::cli
