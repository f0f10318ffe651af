// prov inspect MODEL [--json] [--tensors]: what a checkpoint is.
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "model/formats/digest.h"
#include "model/formats/model.h"

namespace prov::cli {

namespace {

struct InspectOptions {
  std::string path;
  bool json = false;
  bool tensors = false;
  bool no_digest = false;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string human_count(uint64_t n) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2);
  if (n >= 1000000000ull)
    os << n / 1e9 << "B";
  else if (n >= 1000000ull)
    os << n / 1e6 << "M";
  else if (n >= 1000ull)
    os << n / 1e3 << "K";
  else
    return std::to_string(n);
  return os.str();
}

int run_inspect(const InspectOptions& o) {
  auto m = model::open_model(o.path);
  if (!m.is_ok()) return report_error("inspect", m.status());
  std::string digest;
  if (!o.no_digest) {
    auto manifest = model::compute_manifest(o.path);
    if (!manifest.is_ok()) return report_error("inspect", manifest.status());
    digest = manifest->digest;
  }
  const model::ModelConfig& c = m->config;
  nlohmann::json j = {
      {"path", o.path},
      {"format", model::format_name(m->checkpoint.format)},
      {"format_version", m->checkpoint.version},
      {"architecture", model::arch_name(c.arch)},
      {"model_type", c.model_type},
      {"num_parameters", m->num_parameters()},
      {"num_tensors", m->checkpoint.tensors.size()},
      {"num_layers", c.num_layers},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_heads", c.num_heads},
      {"num_kv_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rope_theta", c.rope_theta},
      {"rope_scaling", c.rope_scaling.type},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"num_experts", c.num_experts},
      {"experts_per_token", c.experts_per_token},
      {"dtypes", m->dtypes()},
      {"tokenizer", m->tokenizer_kind},
      {"files", m->checkpoint.files},
      {"unmapped_tensors", m->unmapped},
  };
  if (!o.no_digest) j["digest"] = digest;
  if (o.tensors) {
    nlohmann::json ts = nlohmann::json::array();
    for (const auto& [role, i] : m->roles) {
      const auto& t = m->checkpoint.tensors[i];
      ts.push_back({{"name", t.name},
                    {"role", role.to_string()},
                    {"dtype", model::dtype_name(t.dtype)},
                    {"shape", t.shape}});
    }
    j["tensors"] = ts;
  }
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  auto row = [](const std::string& k, const std::string& v) {
    std::cout << std::left << std::setw(18) << k << shown(v) << "\n";
  };
  row("path", o.path);
  row("format", std::string(model::format_name(m->checkpoint.format)) +
                    (m->checkpoint.version ? " v" + std::to_string(m->checkpoint.version) : ""));
  row("architecture",
      std::string(model::arch_name(c.arch)) +
          (c.model_type != model::arch_name(c.arch) ? " (" + c.model_type + ")" : ""));
  row("parameters",
      std::to_string(m->num_parameters()) + " (" + human_count(m->num_parameters()) + ")");
  row("layers", std::to_string(c.num_layers));
  row("hidden size", std::to_string(c.hidden_size));
  row("intermediate", std::to_string(c.intermediate_size));
  row("heads / kv heads", std::to_string(c.num_heads) + " / " + std::to_string(c.num_kv_heads) +
                              " (head_dim " + std::to_string(c.head_dim) + ")");
  if (c.num_experts > 0) {
    row("experts",
        std::to_string(c.num_experts) + " (top-" + std::to_string(c.experts_per_token) + ")");
  }
  row("vocab", std::to_string(c.vocab_size) + (c.tie_word_embeddings ? " (tied embeddings)" : ""));
  std::ostringstream rope;
  rope << "theta " << c.rope_theta << ", " << c.rope_scaling.type;
  if (c.arch != model::Arch::kGpt2) row("rope", rope.str());
  std::string dts;
  for (const auto& d : m->dtypes()) dts += (dts.empty() ? "" : ", ") + d;
  row("dtypes", dts);
  row("tokenizer", m->tokenizer_kind);
  row("tensors", std::to_string(m->checkpoint.tensors.size()) + " in " +
                     std::to_string(m->checkpoint.files.size()) + " file(s)");
  if (!o.no_digest) row("digest", "sha256:" + digest);
  if (o.tensors) {
    std::cout << "\n";
    for (const auto& [role, i] : m->roles) {
      const auto& t = m->checkpoint.tensors[i];
      std::cout << "  " << std::left << std::setw(44) << shown(t.name) << std::setw(36)
                << role.to_string() << std::setw(9) << model::dtype_name(t.dtype)
                << shape_str(t.shape) << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

void register_inspect(CLI::App& app, Action* run) {
  auto opts = std::make_shared<InspectOptions>();
  CLI::App* cmd =
      app.add_subcommand("inspect", "Describe a checkpoint: format, architecture, sizes, digest");
  cmd->add_option("MODEL", opts->path, "HF directory, .safetensors, .gguf or llama2.c .bin")
      ->required();
  cmd->add_flag("--json", opts->json, "Print JSON");
  cmd->add_flag("--tensors", opts->tensors, "List every tensor with its role");
  cmd->add_flag("--no-digest", opts->no_digest, "Skip hashing the files");
  cmd->callback([opts, run] { *run = [opts] { return run_inspect(*opts); }; });
}

}  // namespace prov::cli
