// prov serve MODEL [--host 127.0.0.1] [--port 8000] [--device D] [--dtype D] [--api-key-env VAR]
//                  [--dialect openai|vllm|sglang|tgi|llamacpp|anthropic] [--max-logprobs N]
//                  [--rate-limit N]
//
// Serves a local checkpoint in the wire format of a serving engine (probes/server.h). Runs in the
// LibTorch plugin.
#include "cli/common.h"
#include "cli/torch_commands.h"

namespace prov::cli {

void register_serve(CLI::App& app, Action* run) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve a local model over HTTP in a serving engine's dialect (OpenAI by default)");
  cmd->add_option("MODEL", o->path, "model: HF directory, .safetensors, .gguf or llama2.c .bin")
      ->required();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer to use instead of the model's own");
  cmd->add_option("--name", o->name, "model name the API reports and accepts");
  cmd->add_option("--host", o->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "port (0 = any free port; printed)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--device", o->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "float32, bfloat16 or float16")->capture_default_str();
  cmd->add_option("--api-key-env", o->api_key_env,
                  "environment variable holding the API key clients must send");
  cmd->add_option("--threads", o->threads,
                  "requests running the model at once (more wait in a bounded queue; 503 beyond)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--dialect", o->dialect,
                  "wire format: openai, vllm, sglang, tgi, llamacpp or anthropic")
      ->capture_default_str();
  cmd->add_option("--max-logprobs", o->max_logprobs,
                  "alternatives per position at most (-1: the engine's default: 20, tgi 5)")
      ->check(CLI::Range(-1, 100000));
  cmd->add_option("--rate-limit", o->rate, "requests per second at most; more get 429")
      ->check(CLI::Range(0, 1000000));
  cmd->callback([o, run] { *run = [o] { return run_torch_command("serve", o.get()); }; });
}

}  // namespace prov::cli
