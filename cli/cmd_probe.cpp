// prov probe MODEL --suite NAME|FILE -o SIG [--device cpu|cuda] [--dtype D] [--batch N]
// prov probe --endpoint URL --model-name NAME [--dialect D] [--api-key-env VAR] [--chat]
//            [--tokenizer T] --suite S -o SIG [--concurrency N] [--timeout S] [--retries N]
//            [--rate R] [--max-requests N] [--max-tokens-total N] [--dry-run]
//
// Collects a signature (probes/signature.h, probes::collect_probe). A local model runs in the
// LibTorch plugin; an endpoint is probed from here over HTTP in its engine's dialect. Rerunning
// the same command completes a partial file; --dry-run prints what the rest would cost.
#include <cstdio>

#include "cli/common.h"
#include "cli/options.h"
#include "probes/collect.h"

namespace prov::cli {

namespace {

struct ProbeCliOptions {
  probes::ProbeJob job;
  bool dry_run = false;
};

int run_probe(ProbeCliOptions& o) {
  probes::CostEstimate cost;
  if (o.dry_run) o.job.target.dry_run = &cost;
  Status st = probes::collect_probe(o.job);
  if (!st.is_ok()) return report_error("probe", st);
  if (o.dry_run) {
    std::printf(
        "dry run: %llu probes to collect: %llu requests, about %llu tokens (%llu prompt + "
        "%llu completion); nothing was sent\n",
        static_cast<unsigned long long>(cost.probes),
        static_cast<unsigned long long>(cost.requests),
        static_cast<unsigned long long>(cost.prompt_tokens + cost.completion_tokens),
        static_cast<unsigned long long>(cost.prompt_tokens),
        static_cast<unsigned long long>(cost.completion_tokens));
  }
  return kExitOk;
}

}  // namespace

void register_probe(CLI::App& app, Action* run) {
  auto o = std::make_shared<ProbeCliOptions>();
  probes::CollectSettings& cs = o->job.settings;
  cs.quiet = false;
  CLI::App* cmd = app.add_subcommand(
      "probe", "Collect a signature: run a probe suite on a local model or an endpoint");
  cmd->add_option("MODEL", o->job.model,
                  "model: HF directory, .safetensors, .gguf or llama2.c .bin");
  cmd->add_option("--suite", o->job.target.suite_spec,
                  "built-in suite (prov suite list) or a JSONL file")
      ->required();
  cmd->add_option("-o,--output", o->job.target.output, "signature file to write (or complete)")
      ->required();
  cmd->add_option("--tokenizer", cs.tokenizer,
                  "tokenizer to use instead of the model's own; for an endpoint, the tokenizer "
                  "it serves (its token ids are then recorded)");
  cmd->add_option("--device", cs.device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", cs.dtype, "float32, bfloat16 or float16")->capture_default_str();
  cmd->add_option("--batch", cs.batch, "sequences per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_flag("--no-resume{false}", o->job.target.resume,
                "start over instead of completing an existing partial file");
  cmd->add_flag("-q,--quiet", cs.quiet, "no progress or summary on stderr");
  cmd->add_option("--endpoint", o->job.endpoint, "served model, e.g. http://127.0.0.1:8000");
  probes::EndpointSettings& ep = cs.endpoint;
  add_endpoint_options(cmd, &o->job.model_name, &ep);
  cmd->add_flag("--chat", ep.chat, "use /v1/chat/completions instead of /v1/completions");
  cmd->add_option("--concurrency", ep.concurrency, "requests in flight")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--timeout", ep.timeout_s, "seconds per request")->capture_default_str();
  cmd->add_option("--rate", ep.rate, "requests per second at most (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--max-requests", ep.max_requests, "requests to the engine at most (0 = any)");
  cmd->add_option("--max-tokens-total", ep.max_tokens_total,
                  "tokens (prompt + completion) the engine may use at most (0 = any)");
  cmd->add_flag("--dry-run", o->dry_run, "print the requests and tokens it would take; send none");
  cmd->callback([o, run] { *run = [o] { return run_probe(*o); }; });
}

}  // namespace prov::cli
