// prov generate MODEL [--tokenizer P] (--prompt T | --prompt-ids 1,2,3) --max-tokens N
//                     [--temperature T --top-k K --top-p P --seed S] [--device D] [--dtype D]
//                     [--json]
//
// The command runs in the LibTorch plugin (torch_commands.h) so that the commands that need no
// LibTorch start without loading it.
#include "cli/common.h"
#include "cli/torch_commands.h"

namespace prov::cli {

void register_generate(CLI::App& app, Action* run) {
  auto opts = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text with the LibTorch runtime");
  cmd->add_option("MODEL", opts->path, "model: HF directory, .safetensors, .gguf or llama2.c .bin")
      ->required();
  cmd->add_option("--tokenizer", opts->tokenizer, "tokenizer to use instead of the model's own");
  auto* p = cmd->add_option("--prompt", opts->prompt,
                            "prompt text (encoded with the tokenizer, BOS added as it says)");
  auto* pi = cmd->add_option("--prompt-ids", opts->prompt_ids, "prompt token ids, comma separated")
                 ->delimiter(',');
  p->excludes(pi);
  cmd->add_option("--max-tokens", opts->max_tokens, "tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", opts->temperature, "0 = greedy")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", opts->top_k, "sample among the k most likely (0 = all)")
      ->capture_default_str();
  cmd->add_option("--top-p", opts->top_p, "nucleus sampling mass")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", opts->seed, "sampling seed")->capture_default_str();
  cmd->add_option("--device", opts->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", opts->dtype, "float32, bfloat16 or float16")->capture_default_str();
  cmd->add_flag("--ignore-eos", opts->ignore_eos, "do not stop at the end-of-sequence token");
  cmd->add_flag("--json", opts->json, "Print JSON: ids (prompt + generated), text");
  cmd->callback([opts, run, p] {
    *run = [opts, p] {
      opts->have_prompt = p->count() > 0;
      return run_torch_command("generate", opts.get());
    };
  });
}

}  // namespace prov::cli
