// The LibTorch side of `prov zoo build`.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "cli/torch_plugin.h"
#include "zoo/zoo.h"

namespace prov::cli {
namespace {

int run_zoo_build(const ZooBuildOptions& o) {
  zoo::ZooOptions z;
  z.out_dir = o.out;
  z.preset = o.preset;
  z.corpus_file = o.corpus_file;
  z.corpus_package = o.corpus_package;
  z.device = o.device;
  z.reuse = o.reuse;
  z.seed_twins = o.seed_twins;
  z.student_seeds = o.student_seeds;
  z.family = o.family;
  const auto t0 = std::chrono::steady_clock::now();
  z.log = [&](const std::string& line) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "[%7.1f s] %s\n", s, line.c_str());
  };
  auto labels = zoo::build_zoo(z);
  if (!labels.is_ok()) return report_error("zoo build", labels.status());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %zu models, labels in %s/labels.json (%.1f s)\n", o.out.c_str(),
              (*labels)["models"].size(), o.out.c_str(), s);
  return kExitOk;
}

}  // namespace
}  // namespace prov::cli

extern "C" int prov_torch_zoo_build(const void* options) {
  try {
    return prov::cli::run_zoo_build(*static_cast<const prov::cli::ZooBuildOptions*>(options));
  } catch (const std::exception& e) {
    std::cerr << "prov zoo build: internal error: " << e.what() << "\n";
    return prov::cli::kExitInternal;
  }
}
