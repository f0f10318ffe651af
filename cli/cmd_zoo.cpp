// prov zoo build OUT --preset tiny|small [--corpus FILE | --corpus-package NAME] [--device
// cpu|cuda]
#include "cli/common.h"
#include "cli/torch_commands.h"

namespace prov::cli {

void register_zoo(CLI::App& app, Action* run) {
  CLI::App* cmd = app.add_subcommand("zoo", "Model families with known lineage");
  cmd->require_subcommand(1);
  auto o = std::make_shared<ZooBuildOptions>();
  CLI::App* b = cmd->add_subcommand(
      "build", "Train a family (bases, weight derivatives, distilled students, controls)");
  b->add_option("OUT", o->out, "output directory (members, tokenizers, labels.json)")->required();
  b->add_option("--preset", o->preset, "tiny (2 CPU cores) or small (a GPU)")
      ->capture_default_str();
  auto* cf = b->add_option("--corpus", o->corpus_file, "a text file as the main corpus");
  auto* cp = b->add_option("--corpus-package", o->corpus_package,
                           "a Debian corpus package: wordnet-base or fortunes-min")
                 ->capture_default_str();
  cf->excludes(cp);
  b->add_option("--device", o->device, "cpu or cuda")->capture_default_str();
  b->add_flag("--no-reuse{false}", o->reuse, "rebuild members already present");
  b->add_option("--seed-twins", o->seed_twins,
                "extra independents with base_llama's architecture and data and seeds 101.. "
                "(a calibration population)")
      ->check(CLI::Range(0, 64));
  b->add_option("--student-seeds", o->student_seeds,
                "replicate every student recipe N more times with other seeds (<student>_sK)")
      ->check(CLI::Range(0, 16));
  b->add_option("--family", o->family,
                "full (every member) or demo (base_llama, ft_strong, distill_seq_100, "
                "ind_llama_seed and 4 seed twins: the demo's family)")
      ->check(CLI::IsMember({"full", "demo"}))
      ->capture_default_str();
  b->callback([o, run] { *run = [o] { return run_torch_command("zoo build", o.get()); }; });
}

}  // namespace prov::cli
