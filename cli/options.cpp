#include "cli/options.h"

namespace prov::cli {

void add_collection_options(CLI::App* cmd, lineage::OutputRequest* outputs,
                            probes::CollectSettings* settings) {
  cmd->add_option("--suite", outputs->suite,
                  "probe suite of the output tests (signatures collected now)")
      ->capture_default_str();
  cmd->add_option("--xlik-probes", outputs->xlik_probes,
                  "probes of the cross-likelihood scoring: every model scores the others' greedy "
                  "texts on this many probes (0 = none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--image-probes", settings->image_probes,
                  "probes of logit-image-v1 collected from every local model (full next-token "
                  "log-probabilities: the logit_image statistic; at least hidden size + 1 to "
                  "see the whole image; 0 = none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--cache", settings->cache_dir,
                  "where collected signatures are kept (default ~/.cache/prov/signatures)");
  cmd->add_option("--device", settings->device, "cpu or cuda (signatures collected now)")
      ->capture_default_str();
  cmd->add_option("--dtype", settings->dtype, "float32, bfloat16 or float16")
      ->capture_default_str();
  cmd->add_option("--batch", settings->batch, "sequences per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--tokenizer", settings->tokenizer,
                  "tokenizer for the local models instead of their own (signatures collected "
                  "now)");
}

void add_endpoint_options(CLI::App* cmd, std::string* model_name,
                          probes::EndpointSettings* endpoint) {
  cmd->add_option("--model-name", *model_name, "model name for endpoint arguments");
  cmd->add_option("--api-key-env", endpoint->api_key_env,
                  "environment variable holding the endpoint's API key");
  cmd->add_option("--retries", endpoint->retries,
                  "endpoint retries on 429, 5xx and broken responses")
      ->capture_default_str();
  cmd->add_option("--dialect", endpoint->dialect,
                  "the endpoint's engine: openai, vllm, sglang, tgi, llamacpp or anthropic")
      ->capture_default_str();
  cmd->add_option("--endpoint-tokenizer", endpoint->tokenizer,
                  "the tokenizer the endpoint serves (its token ids are then recorded)");
}

}  // namespace prov::cli
