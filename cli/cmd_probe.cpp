// prov probe MODEL --suite NAME|FILE -o SIG [--device cpu|cuda] [--dtype D] [--batch N]
// prov probe --endpoint URL --model-name NAME [--api-key-env VAR] [--chat] --suite S -o SIG
//            [--concurrency N] [--timeout S] [--retries N] [--rate R]
//
// Collects a signature (probes/signature.h). A local model runs in the LibTorch plugin; an
// endpoint is probed from here over HTTP. Rerunning the same command completes a partial file.
#include <optional>

#include "cli/common.h"
#include "probes/collect.h"
#include "probes/subject.h"
#include "probes/suite.h"

namespace prov::cli {

namespace {

struct ProbeCliOptions {
  std::string model;  // checkpoint path
  std::string endpoint, model_name;
  std::string suite, output;
  bool resume = true;
  probes::CollectSettings settings;
};

int run_probe(const ProbeCliOptions& o) {
  if (!o.endpoint.empty() && !o.model.empty()) {
    return report_error("probe", invalid_argument("give MODEL or --endpoint, not both"));
  }
  if (o.endpoint.empty() && o.model.empty()) {
    return report_error("probe", invalid_argument("give a MODEL path or --endpoint URL"));
  }
  if (!o.endpoint.empty() && o.model_name.empty()) {
    return report_error("probe", invalid_argument("--endpoint needs --model-name"));
  }
  probes::SubjectSet subjects;
  auto subject = subjects.add(o.endpoint.empty() ? o.model : o.endpoint, o.model_name);
  if (!subject.is_ok()) return report_error("probe", subject.status());
  if ((*subject)->kind() == probes::SubjectKind::kSignatureFile) {
    return report_error("probe", invalid_argument(o.model + " is a signature file, not a model"));
  }
  // A checkpoint's runner sizes built-in suites to its vocabulary; an endpoint gets the suite here.
  std::optional<probes::Suite> suite;
  if (!o.endpoint.empty()) {
    auto s = probes::resolve_suite(o.suite, 0);
    if (!s.is_ok()) return report_error("probe", s.status());
    suite = std::move(*s);
  }
  probes::Collector collector(o.settings);
  probes::CollectTarget target;
  target.suite_spec = o.suite;
  target.suite = suite ? &*suite : nullptr;
  target.output = o.output;
  target.resume = o.resume;
  target.what = "probe";
  Status st = collector.collect_to(**subject, target);
  return st.is_ok() ? kExitOk : report_error("probe", st);
}

}  // namespace

void register_probe(CLI::App& app, Action* run) {
  auto o = std::make_shared<ProbeCliOptions>();
  probes::CollectSettings& cs = o->settings;
  cs.quiet = false;
  CLI::App* cmd = app.add_subcommand(
      "probe", "Collect a signature: run a probe suite on a local model or an endpoint");
  cmd->add_option("MODEL", o->model, "model: HF directory, .safetensors, .gguf or llama2.c .bin");
  cmd->add_option("--suite", o->suite, "built-in suite (prov suite list) or a JSONL file")
      ->required();
  cmd->add_option("-o,--output", o->output, "signature file to write (or complete)")->required();
  cmd->add_option("--tokenizer", cs.tokenizer, "tokenizer to use instead of the model's own");
  cmd->add_option("--device", cs.device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", cs.dtype, "float32, bfloat16 or float16")->capture_default_str();
  cmd->add_option("--batch", cs.batch, "sequences per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_flag("--no-resume{false}", o->resume,
                "start over instead of completing an existing partial file");
  cmd->add_flag("-q,--quiet", cs.quiet, "no progress or summary on stderr");
  cmd->add_option("--endpoint", o->endpoint,
                  "OpenAI-compatible server, e.g. http://127.0.0.1:8000");
  cmd->add_option("--model-name", o->model_name, "model name to ask the endpoint for");
  probes::EndpointSettings& ep = cs.endpoint;
  cmd->add_option("--api-key-env", ep.api_key_env, "environment variable holding the API key");
  cmd->add_flag("--chat", ep.chat, "use /v1/chat/completions instead of /v1/completions");
  cmd->add_option("--concurrency", ep.concurrency, "requests in flight")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--timeout", ep.timeout_s, "seconds per request")->capture_default_str();
  cmd->add_option("--retries", ep.retries, "retries on 429, 5xx and broken responses")
      ->capture_default_str();
  cmd->add_option("--rate", ep.rate, "requests per second at most (0 = no limit)")
      ->capture_default_str();
  cmd->callback([o, run] { *run = [o] { return run_probe(*o); }; });
}

}  // namespace prov::cli
