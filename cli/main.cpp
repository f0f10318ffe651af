// prov: model provenance and distillation detection. One file per subcommand (cmd_*.cpp).
#include <exception>
#include <iostream>

#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App app{"prov: model provenance and distillation detection", "prov"};
  app.set_version_flag("--version", prov::cli::tool_version());
  app.require_subcommand(1);
  prov::cli::Action run;
  prov::cli::register_inspect(app, &run);
  prov::cli::register_digest(app, &run);
  prov::cli::register_example(app, &run);
  prov::cli::register_tokenize(app, &run);
  prov::cli::register_generate(app, &run);
  prov::cli::register_probe(app, &run);
  prov::cli::register_suite(app, &run);
  prov::cli::register_signature(app, &run);
  prov::cli::register_serve(app, &run);
  prov::cli::register_zoo(app, &run);
  prov::cli::register_compare(app, &run);
  prov::cli::register_key(app, &run);
  prov::cli::register_ledger(app, &run);
  prov::cli::register_verify_export(app, &run);
  prov::cli::register_disclosure(app, &run);
  prov::cli::register_verify(app, &run);
  prov::cli::register_sign(app, &run);
  prov::cli::register_audit(app, &run);
  prov::cli::register_lineage(app, &run);
  prov::cli::register_fingerprint(app, &run);
  prov::cli::register_bench(app, &run);
  prov::cli::register_demo(app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return prov::cli::kExitBadInput;
  }
  try {
    return run ? run() : prov::cli::kExitInternal;
  } catch (const std::exception& e) {
    std::cerr << "prov: internal error: " << e.what() << "\n";
    return prov::cli::kExitInternal;
  }
}
