// prov fingerprint MODEL -o FP [--json]: writes a weight fingerprint
// (fingerprint/weight_fingerprint.h) that `prov compare` tests against another one without the
// checkpoints.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "fingerprint/weight_fingerprint.h"
#include "model/formats/model.h"

namespace prov::cli {

namespace {

struct FingerprintOptions {
  std::string model, out;
  bool json = false;
};

int run_fingerprint(const FingerprintOptions& o) {
  const char* cmd = "fingerprint";
  const auto t0 = std::chrono::steady_clock::now();
  auto m = model::open_model(o.model);
  if (!m.is_ok()) return report_error(cmd, m.status());
  auto fp = fingerprint::make_weight_fingerprint(*m, tool_version());
  if (!fp.is_ok()) return report_error(cmd, fp.status());
  if (Status s = fingerprint::write_weight_fingerprint(o.out, *fp); !s.is_ok()) {
    return report_error(cmd, s);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t bytes = 0;
  for (const auto& f : fp->identity().files()) bytes += f.size();
  if (o.json) {
    nlohmann::json j = {{"model", o.model},
                        {"fingerprint", o.out},
                        {"digest", fp->identity().digest()},
                        {"tensors", fp->identity().tensors_size()},
                        {"gram_matrices", fp->grams_size()},
                        {"dimensions", fp->dims_size()},
                        {"checkpoint_bytes", bytes},
                        {"seconds", secs}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::printf(
      "wrote %s: %d tensor digests, %d Gram matrices on %d dimensions (%.2f GB read in "
      "%.2f s)\n",
      o.out.c_str(), fp->identity().tensors_size(), fp->grams_size(), fp->dims_size(),
      static_cast<double>(bytes) / 1e9, secs);
  return kExitOk;
}

}  // namespace

void register_fingerprint(CLI::App& app, Action* run) {
  auto o = std::make_shared<FingerprintOptions>();
  CLI::App* cmd =
      app.add_subcommand("fingerprint",
                         "Write a weight fingerprint: tensor digests and the Gram matrices of the "
                         "weight-lineage test, comparable without the checkpoint");
  cmd->add_option("MODEL", o->model, "model checkpoint")->required();
  cmd->add_option("-o,--out", o->out, "fingerprint file to write")->required();
  cmd->add_flag("--json", o->json, "print what was written as JSON");
  cmd->callback([o, run] { *run = [o] { return run_fingerprint(*o); }; });
}

}  // namespace prov::cli
