// prov digest MODEL [--json] [--tensors] [-o FILE]: the OMS manifest digest of a model.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "model/formats/digest.h"
#include "model/formats/model.h"
#include "proto/identity.h"

namespace prov::cli {

namespace {

struct DigestCmdOptions {
  std::string path;
  bool json = false;
  bool tensors = false;
  unsigned threads = 0;
  std::string out;
};

int run_digest(const DigestCmdOptions& o) {
  model::DigestOptions dopt;
  dopt.threads = o.threads;
  auto manifest = model::compute_manifest(o.path, dopt);
  if (!manifest.is_ok()) return report_error("digest", manifest.status());

  std::vector<model::TensorDigest> tensors;
  std::string format, arch;
  if (o.tensors || !o.out.empty()) {
    auto m = model::open_model(o.path);
    if (!m.is_ok()) return report_error("digest", m.status());
    format = model::format_name(m->checkpoint.format);
    arch = model::arch_name(m->config.arch);
    if (o.tensors) {
      auto td = model::compute_tensor_digests(m->checkpoint, dopt);
      if (!td.is_ok()) return report_error("digest", td.status());
      tensors = std::move(*td);
    }
  }
  if (!o.out.empty()) {
    pb::ModelIdentity id;
    id.set_schema_version(pb_io::kModelIdentityVersion);
    id.set_tool_version(tool_version());
    id.set_format(format);
    id.set_architecture(arch);
    id.set_digest(manifest->digest);
    for (const auto& f : manifest->files) {
      auto* pf = id.add_files();
      pf->set_name(f.name);
      pf->set_sha256(f.sha256);
      pf->set_size(f.size);
    }
    for (const auto& t : tensors) {
      auto* pt = id.add_tensors();
      pt->set_name(t.name);
      pt->set_dtype(t.dtype);
      for (int64_t d : t.shape) pt->add_shape(d);
      pt->set_sha256(t.sha256);
    }
    Status s = pb_io::write_identity(o.out, id);
    if (!s.is_ok()) return report_error("digest", s);
  }
  if (o.json) {
    nlohmann::json j = {
        {"digest", manifest->digest}, {"algorithm", "sha256"}, {"files", nlohmann::json::array()}};
    for (const auto& f : manifest->files)
      j["files"].push_back({{"name", f.name}, {"sha256", f.sha256}, {"size", f.size}});
    if (o.tensors) {
      j["tensors"] = nlohmann::json::array();
      for (const auto& t : tensors) {
        j["tensors"].push_back(
            {{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"sha256", t.sha256}});
      }
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "sha256:" << manifest->digest << "  " << shown(o.path) << "\n";
  for (const auto& f : manifest->files) {
    std::cout << "  " << f.sha256 << "  " << shown(f.name) << "\n";
  }
  for (const auto& t : tensors)
    std::cout << "  tensor " << t.sha256 << "  " << shown(t.name) << "\n";
  return kExitOk;
}

}  // namespace

void register_digest(CLI::App& app, Action* run) {
  auto opts = std::make_shared<DigestCmdOptions>();
  CLI::App* cmd = app.add_subcommand("digest", "OpenSSF model-signing manifest digest of a model");
  cmd->add_option("MODEL", opts->path, "model directory or file")->required();
  cmd->add_flag("--json", opts->json, "Print JSON: digest, files [{name, sha256, size}]");
  cmd->add_flag("--tensors", opts->tensors, "Also digest every tensor's canonical bytes");
  cmd->add_option("--threads", opts->threads, "Hashing threads (0: one per core)");
  cmd->add_option("-o,--out", opts->out, "Write a ModelIdentity protobuf file");
  cmd->callback([opts, run] { *run = [opts] { return run_digest(*opts); }; });
}

}  // namespace prov::cli
