// prov example OUT_DIR: writes a small random Hugging Face checkpoint (deterministic by seed).
#include <iostream>

#include "cli/common.h"
#include "model/formats/synthetic.h"

namespace prov::cli {

namespace {

struct ExampleOptions {
  std::string out;
  std::string arch = "llama";
  std::string dtype = "F32";
  uint64_t seed = 0;
  int64_t layers = 2;
  int64_t hidden = 64;
  int64_t vocab = 256;
  int64_t intermediate = 0;  // 0: 5/2 of hidden
  int64_t heads = 4, kv_heads = 2;
  uint64_t shard_bytes = 0;
};

int run_example(const ExampleOptions& o) {
  model::SyntheticSpec spec;
  auto arch = model::arch_from_name(o.arch);
  if (!arch) return report_error("example", invalid_argument("unknown architecture " + o.arch));
  auto dt = model::dtype_from_safetensors(o.dtype);
  if (!dt) return report_error("example", invalid_argument("unknown dtype " + o.dtype));
  spec.arch = *arch;
  spec.dtype = *dt;
  spec.seed = o.seed;
  spec.num_layers = o.layers;
  spec.hidden_size = o.hidden;
  spec.intermediate_size = o.intermediate > 0 ? o.intermediate : o.hidden * 5 / 2;
  spec.num_heads = o.heads;
  spec.num_kv_heads = o.kv_heads;
  spec.vocab_size = o.vocab;
  spec.max_shard_bytes = o.shard_bytes;
  spec.tie_word_embeddings = spec.arch == model::Arch::kQwen2 || spec.arch == model::Arch::kQwen3;
  Status s = model::write_synthetic_model(o.out, spec);
  if (!s.is_ok()) return report_error("example", s);
  std::cout << "wrote " << o.out << "\n";
  return kExitOk;
}

}  // namespace

void register_example(CLI::App& app, Action* run) {
  auto opts = std::make_shared<ExampleOptions>();
  CLI::App* cmd =
      app.add_subcommand("example", "Write a small random HF checkpoint (for trying prov out)");
  cmd->add_option("OUT_DIR", opts->out, "directory to write")->required();
  cmd->add_option("--arch", opts->arch, "llama, mistral, qwen2 or qwen3")->capture_default_str();
  cmd->add_option("--dtype", opts->dtype, "F32, F16 or BF16")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "random seed")->capture_default_str();
  cmd->add_option("--layers", opts->layers, "layers")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--hidden", opts->hidden, "hidden size (multiple of 4)")
      ->capture_default_str()
      ->check(CLI::Range(4, 1 << 16));
  cmd->add_option("--vocab", opts->vocab, "vocabulary size")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 24));
  cmd->add_option("--intermediate", opts->intermediate, "MLP width (default 5/2 of hidden)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--heads", opts->heads, "attention heads (divides hidden)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--kv-heads", opts->kv_heads, "key/value heads (divides heads)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--shard-bytes", opts->shard_bytes,
                  "shard the weights into files of at most this size");
  cmd->callback([opts, run] { *run = [opts] { return run_example(*opts); }; });
}

}  // namespace prov::cli
