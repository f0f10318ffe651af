// prov probe MODEL --suite NAME|FILE -o SIG [--device cpu|cuda] [--dtype D] [--batch N]
// prov probe --endpoint URL --model-name NAME [--api-key-env VAR] [--chat] --suite S -o SIG
//            [--concurrency N] [--timeout S] [--retries N] [--rate R]
//
// Collects a signature (probes/signature.h). A local model runs in the LibTorch plugin; an
// endpoint is probed from here over HTTP. Rerunning the same command completes a partial file.
#include <cstdlib>
#include <iostream>

#include "cli/collect.h"
#include "cli/common.h"
#include "cli/probe_common.h"
#include "cli/torch_plugin.h"
#include "probes/endpoint.h"

namespace prov::cli {

void register_probe(CLI::App& app, Action* run) {
  auto opts = std::make_shared<ProbeOptions>();
  auto ep = std::make_shared<EndpointArgs>();
  CLI::App* cmd = app.add_subcommand(
      "probe", "Collect a signature: run a probe suite on a local model or an endpoint");
  cmd->add_option("MODEL", opts->path, "model: HF directory, .safetensors, .gguf or llama2.c .bin");
  cmd->add_option("--suite", opts->suite, "built-in suite (prov suite list) or a JSONL file")
      ->required();
  cmd->add_option("-o,--output", opts->output, "signature file to write (or complete)")->required();
  cmd->add_option("--tokenizer", opts->tokenizer, "tokenizer to use instead of the model's own");
  cmd->add_option("--device", opts->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", opts->dtype, "float32, bfloat16 or float16")->capture_default_str();
  cmd->add_option("--batch", opts->batch, "sequences per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_flag("--no-resume{false}", opts->resume,
                "start over instead of completing an existing partial file");
  cmd->add_flag("-q,--quiet", opts->quiet, "no progress or summary on stderr");
  auto* url = cmd->add_option("--endpoint", ep->url,
                              "OpenAI-compatible server, e.g. http://127.0.0.1:8000");
  cmd->add_option("--model-name", ep->model_name, "model name to ask the endpoint for");
  cmd->add_option("--api-key-env", ep->api_key_env, "environment variable holding the API key");
  cmd->add_flag("--chat", ep->chat, "use /v1/chat/completions instead of /v1/completions");
  cmd->add_option("--concurrency", ep->concurrency, "requests in flight")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--timeout", ep->timeout, "seconds per request")->capture_default_str();
  cmd->add_option("--retries", ep->retries, "retries on 429, 5xx and broken responses")
      ->capture_default_str();
  cmd->add_option("--rate", ep->rate, "requests per second at most (0 = no limit)")
      ->capture_default_str();
  cmd->callback([opts, ep, run, url] {
    *run = [opts, ep, url] {
      if (url->count() > 0) {
        if (!opts->path.empty()) {
          return report_error("probe", invalid_argument("give MODEL or --endpoint, not both"));
        }
        return run_endpoint_probe(*opts, *ep);
      }
      if (opts->path.empty()) {
        return report_error("probe", invalid_argument("give a MODEL path or --endpoint URL"));
      }
      SignatureSink sink("probe", opts->output, opts->resume, opts->quiet);
      ProbeOptions o = *opts;
      o.begin = [&](const probes::SignatureHeader& h, std::vector<bool>* skip) {
        return sink.begin(h, skip);
      };
      o.record = [&](const probes::ProbeRecord& r) { return sink.record(r); };
      o.progress = [&](size_t d, size_t n) { sink.progress(d, n); };
      return sink.finish(run_torch_command("probe", "prov_torch_probe", &o));
    };
  });
}

}  // namespace prov::cli
