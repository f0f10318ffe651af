// prov suite list [--json]
// prov suite show NAME|FILE [--json] [--limit N] [--vocab V]
// prov suite export NAME|FILE -o FILE.jsonl [--vocab V]
// prov suite build --models M1 M2 ... -o FILE [--pool N] [--keep K] [--device D] [--dtype D]
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/torch_commands.h"
#include "fingerprint/outputs.h"
#include "probes/signature.h"
#include "probes/suite.h"

namespace prov::cli {

namespace {

int show(const std::string& name, bool json, int limit, int vocab) {
  auto s = probes::resolve_suite(name, vocab);
  if (!s.is_ok()) return report_error("suite show", s.status());
  const std::string digest = probes::suite_digest(*s);
  if (json) {
    nlohmann::json j;
    j["name"] = s->name;
    j["version"] = s->version;
    j["description"] = s->description;
    j["digest"] = digest;
    j["num_probes"] = s->probes.size();
    j["probes"] = nlohmann::json::array();
    for (size_t i = 0; i < s->probes.size() && static_cast<int>(i) < limit; ++i) {
      j["probes"].push_back(probes::probe_json(s->probes[i]));
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "suite:       " << s->name << " v" << s->version << "\n"
            << "description: " << s->description << "\n"
            << "digest:      sha256:" << digest << "\n"
            << "probes:      " << s->probes.size() << "\n";
  for (size_t i = 0; i < s->probes.size() && static_cast<int>(i) < limit; ++i) {
    std::cout << "  "
              << probes::probe_json(s->probes[i])
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  }
  if (static_cast<int>(s->probes.size()) > limit) {
    std::cout << "  ... (" << s->probes.size() - static_cast<size_t>(limit)
              << " more; --limit N)\n";
  }
  return kExitOk;
}

void add_list(CLI::App* cmd, Action* run) {
  auto list_json = std::make_shared<bool>(false);
  CLI::App* list = cmd->add_subcommand("list", "List the built-in suites");
  list->add_flag("--json", *list_json, "print JSON");
  list->callback([run, list_json] {
    *run = [list_json]() -> int {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& b : probes::builtin_suites()) {
        nlohmann::json j{
            {"name", b.name}, {"description", b.description}, {"needs_vocab", b.needs_vocab}};
        if (!b.needs_vocab) {
          probes::Suite s = b.name == "natural-v1" ? probes::natural_v1() : probes::Suite{};
          j["num_probes"] = s.probes.size();
          j["digest"] = probes::suite_digest(s);
        }
        arr.push_back(j);
      }
      if (*list_json) {
        std::cout << arr.dump(2) << "\n";
      } else {
        for (const auto& j : arr) {
          std::cout << j["name"].get<std::string>() << "\t" << j["description"].get<std::string>();
          if (j.contains("digest")) std::cout << "\tsha256:" << j["digest"].get<std::string>();
          std::cout << "\n";
        }
        std::cout << "divergence\tbuilt with `prov suite build --models M1 M2 ... -o FILE`\n";
      }
      return kExitOk;
    };
  });
}

void add_show_and_export(CLI::App* cmd, Action* run) {
  struct ShowArgs {
    std::string name;
    bool json = false;
    int limit = 10;
    int vocab = 0;
    std::string output;
  };
  auto sa = std::make_shared<ShowArgs>();
  CLI::App* sh = cmd->add_subcommand("show", "Show a suite: name, version, digest, probes");
  sh->add_option("SUITE", sa->name, "built-in name or JSONL file")->required();
  sh->add_flag("--json", sa->json, "print JSON");
  sh->add_option("--limit", sa->limit, "probes to print")->capture_default_str();
  sh->add_option("--vocab", sa->vocab, "vocabulary size (random-tokens-v1)");
  sh->callback(
      [run, sa] { *run = [sa] { return show(sa->name, sa->json, sa->limit, sa->vocab); }; });

  auto ea = std::make_shared<ShowArgs>();
  CLI::App* ex = cmd->add_subcommand("export", "Write a suite as JSONL (its canonical form)");
  ex->add_option("SUITE", ea->name, "built-in name or JSONL file")->required();
  ex->add_option("-o,--output", ea->output, "JSONL file to write")->required();
  ex->add_option("--vocab", ea->vocab, "vocabulary size (random-tokens-v1)");
  ex->callback([run, ea] {
    *run = [ea]() -> int {
      auto s = probes::resolve_suite(ea->name, ea->vocab);
      if (!s.is_ok()) return report_error("suite export", s.status());
      Status st = probes::write_suite_file(ea->output, *s);
      if (!st.is_ok()) return report_error("suite export", st);
      std::cout << ea->output << ": " << s->probes.size()
                << " probes, sha256:" << probes::suite_digest(*s) << "\n";
      return kExitOk;
    };
  });
}

void add_cross(CLI::App* cmd, Action* run) {
  struct CrossArgs {
    std::string suite;
    std::vector<std::string> signatures;
    std::string output;
    int probes = 0;
  };
  auto ca = std::make_shared<CrossArgs>();
  CLI::App* cr = cmd->add_subcommand(
      "cross",
      "Build a cross-likelihood suite: the same prompts, scoring the greedy texts of "
      "the given signatures");
  cr->add_option("--suite", ca->suite, "the suite the signatures were collected on")->required();
  cr->add_option("--signatures", ca->signatures, "signature files whose greedy texts to score")
      ->required();
  cr->add_option("-o,--output", ca->output, "JSONL file to write")->required();
  cr->add_option("--probes", ca->probes, "the first N probes only (0 = all)")
      ->check(CLI::Range(0, 1000000));
  cr->callback([run, ca] {
    *run = [ca]() -> int {
      auto base = probes::resolve_suite(ca->suite, 0);
      if (!base.is_ok()) return report_error("suite cross", base.status());
      std::vector<probes::Signature> sigs;
      for (const auto& path : ca->signatures) {
        auto s = probes::read_signature(path);
        if (!s.is_ok()) return report_error("suite cross", s.status());
        sigs.push_back(std::move(*s));
      }
      std::vector<const probes::Signature*> ptrs;
      for (const auto& s : sigs) ptrs.push_back(&s);
      auto xs = fingerprint::cross_likelihood_suite(*base, ptrs, ca->probes);
      if (!xs.is_ok()) return report_error("suite cross", xs.status());
      Status st = probes::write_suite_file(ca->output, *xs);
      if (!st.is_ok()) return report_error("suite cross", st);
      size_t texts = 0;
      for (const auto& p : xs->probes) texts += p.score_texts.size();
      std::cout << ca->output << ": " << xs->probes.size() << " probes, " << texts
                << " texts to score, sha256:" << probes::suite_digest(*xs) << "\n";
      return kExitOk;
    };
  });
}

void add_build(CLI::App* cmd, Action* run) {
  auto bo = std::make_shared<SuiteBuildOptions>();
  CLI::App* b = cmd->add_subcommand(
      "build", "Build a divergence suite: the prompts where a population of models disagrees most");
  b->add_option("--models", bo->models, "two or more models (local paths)")->required();
  b->add_option("-o,--output", bo->output, "JSONL file to write")->required();
  b->add_option("--pool", bo->pool, "candidate prompts (the first N of natural-v1)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  b->add_option("--keep", bo->keep, "prompts to keep")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  b->add_option("--device", bo->device, "cpu or cuda")->capture_default_str();
  b->add_option("--dtype", bo->dtype, "float32, bfloat16 or float16")->capture_default_str();
  b->add_option("--batch", bo->batch, "sequences per forward pass")->capture_default_str();
  b->callback([run, bo] {
    *run = [bo] {
      if (bo->models.size() < 2) {
        return report_error("suite build", invalid_argument("--models needs at least two models"));
      }
      return run_torch_command("suite build", bo.get());
    };
  });
}

}  // namespace

void register_suite(CLI::App& app, Action* run) {
  CLI::App* cmd = app.add_subcommand("suite", "Probe suites: list, show, export, build");
  cmd->require_subcommand(1);
  add_list(cmd, run);
  add_show_and_export(cmd, run);
  add_cross(cmd, run);
  add_build(cmd, run);
}

}  // namespace prov::cli
