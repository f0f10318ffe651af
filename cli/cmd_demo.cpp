// prov demo [OUT] [--preset tiny|test] [--device cpu|cuda]
//
// The main job on the embedded default, end to end, with the commands a user would type:
//   1. builds (or reuses) the demo family: `prov zoo build OUT/family --family demo` — a base,
//      its fine-tune, a student trained only on the base's generations, and
//      five independents of the base's recipe with other seeds (docs/zoo.md);
//   2. generates a signing key;
//   3. audits the fine-tune and the student against the base (`prov audit`, weights and
//      outputs, the independents as the output tests' controls), signs both reports into a fresh
//      ledger and verifies the envelopes;
//   4. checkpoints the ledger, exports the fine-tune's disclosure package and verifies it;
//   5. draws the family's lineage graph (weights, then distillation edges from the outputs);
// then prints the verdicts and where everything is.
//
// Every step runs this same executable as a child process with the arguments it prints, so the
// demo is also a transcript of how to use prov. The family and the signature cache (OUT/family,
// OUT/cache) are reused across runs; the key, ledger and reports are made fresh each time.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/json.h"

#include "lineage/report.h"
#include "lineage/report_render.h"

namespace prov::cli {

namespace {

namespace fs = std::filesystem;

struct DemoOptions {
  std::string out = "prov-demo";
  std::string preset = "tiny";
  std::string device = "cpu";
};

// Runs `prov args...` (this executable), after printing the command line; returns the child's
// exit code, or kExitInternal when it could not be started or was killed.
int run_prov(const std::vector<std::string>& args) {
  std::string line = "$ prov";
  for (const auto& a : args) line += " " + shell_word(a);
  std::cout << line << std::endl;
  // The child is this very executable: /proc/self/exe stays valid even if the file on disk is
  // replaced while the demo runs.
  std::vector<std::string> argv_s{"prov"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::cout.flush();
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("prov demo: fork");
    return kExitInternal;
  }
  if (pid == 0) {
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return kExitInternal;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return kExitInternal;
}

Result<lineage::Report> read_report(const std::string& path) {
  auto text = read_small_file(path, "report");
  if (!text.is_ok()) return text.status();
  auto j = parse_json(*text, path);
  if (!j.is_ok()) return j.status();
  auto r = lineage::report_from_json(*j);
  if (!r.is_ok()) return r.status().with_context(path);
  return std::move(*r);
}

void section(const std::string& title) {
  std::cout << "\n== " << title << std::endl;
}

int run_demo(const DemoOptions& o) {
  const char* cmd = "demo";
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path out(o.out);
  const std::string fam = (out / "family").string();
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return report_error(cmd, Status(StatusCode::kIo, "cannot create " + o.out));
  // Fresh findings every run; the family and the signature cache are kept.
  for (const char* stale : {"key", "key.pub", "ledger.db", "ledger.db-wal", "ledger.db-shm",
                            "checkpoint.txt", "disclosure-ft_strong.json", "lineage.svg"}) {
    fs::remove(out / stale, ec);
  }
  for (const auto& e : fs::directory_iterator(out, ec)) {
    if (e.path().filename().string().rfind("audit-", 0) == 0) fs::remove(e.path(), ec);
  }
  const bool test = o.preset == "test";
  // The test preset's models are barely trained: a small suite keeps the run to seconds.
  const std::string suite = test ? "natural-v1:200" : "natural-v1:1000";
  const std::string xlik = test ? "100" : "1000";

  section("1. the demo family (docs/zoo.md): trained once, reused afterwards");
  if (int rc = run_prov(
          {"zoo", "build", fam, "--preset", o.preset, "--family", "demo", "--device", o.device});
      rc != 0) {
    return rc;
  }
  const std::string base = (fs::path(fam) / "base_llama").string();
  std::vector<std::string> controls;
  controls.push_back((fs::path(fam) / "ind_llama_seed").string());
  for (int k = 1; k <= 4; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "twin_llama_%02d", k);
    controls.push_back((fs::path(fam) / name).string());
  }

  section("2. a signing key");
  const std::string key = (out / "key").string();
  if (int rc = run_prov({"key", "generate", "--out", key}); rc != 0) return rc;

  section("3. audits against the base, signed into a fresh ledger (docs/formats/report.md)");
  const std::string ledger = (out / "ledger.db").string();
  const std::string cache = (out / "cache").string();
  struct Finding {
    std::string member;
    lineage::ReportVerdict verdict;
    std::string digest;  // the candidate's OMS digest (hex)
  };
  std::vector<Finding> findings;
  for (const char* member : {"ft_strong", "distill_seq_100"}) {
    const std::string report = (out / (std::string("audit-") + member)).string();
    std::vector<std::string> args{"audit", (fs::path(fam) / member).string(), "--references", base,
                                  "--controls"};
    args.insert(args.end(), controls.begin(), controls.end());
    args.insert(args.end(), {"--suite", suite, "--xlik-probes", xlik, "--cache", cache, "--device",
                             o.device, "--report", report, "--key", key, "--ledger", ledger});
    std::cout << "\n";
    if (int rc = run_prov(args); rc != 0) return rc;
    if (int rc = run_prov({"verify", report + ".dsse.json", "--key", key + ".pub"}); rc != 0) {
      return rc;
    }
    auto rep = read_report(report + ".json");
    if (!rep.is_ok()) return report_error(cmd, rep.status());
    findings.push_back({member, rep->verdict, rep->candidate.sha256});
  }

  section("4. the ledger: checkpointed, verified, and the fine-tune's disclosure package");
  const std::string checkpoint = (out / "checkpoint.txt").string();
  if (int rc = run_prov({"ledger", "checkpoint", ledger, "--key", key, "-o", checkpoint});
      rc != 0) {
    return rc;
  }
  if (int rc = run_prov(
          {"ledger", "verify", ledger, "--key", key + ".pub", "--envelope-key", key + ".pub"});
      rc != 0) {
    return rc;
  }
  const std::string digest = findings.front().digest;
  if (digest.empty()) {
    return report_error(cmd, internal_error("the fine-tune's report names no candidate digest"));
  }
  const std::string disclosure = (out / "disclosure-ft_strong.json").string();
  if (int rc = run_prov({"ledger", "export", ledger, "--model", digest, "--key", key, "--format",
                         "disclosure", "-o", disclosure});
      rc != 0) {
    return rc;
  }
  if (int rc = run_prov({"verify-export", disclosure, "--key", key + ".pub"}); rc != 0) return rc;

  section("5. the family's lineage graph: weights, then outputs for the roots (prov lineage)");
  const std::string svg = (out / "lineage.svg").string();
  std::vector<std::string> largs{"lineage"};
  for (const char* m : {"base_llama", "ft_strong", "distill_seq_100"}) {
    largs.push_back((fs::path(fam) / m).string());
  }
  largs.push_back("--controls");
  largs.insert(largs.end(), controls.begin(), controls.end());
  largs.insert(largs.end(),
               {"--suite", suite, "--xlik-probes", xlik, "--cache", cache, "--svg", svg});
  if (int rc = run_prov(largs); rc != 0) return rc;

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  section("summary");
  for (const auto& f : findings) {
    const auto& v = f.verdict;
    std::printf("%-16s -> %s%s, p-value %s, confidence %s\n", f.member.c_str(),
                relation_name(v.relation), v.parent ? (" of " + *v.parent).c_str() : "",
                lineage::format_p_value(v.p_value).c_str(), lineage::confidence_name(v.confidence));
  }
  std::cout
      << "\neverything is in " << o.out << " (" << static_cast<int>(secs + 0.5) << " s):\n"
      << "  family/            the demo family, labels.json says how each was made\n"
      << "  audit-*.html       the audit reports (also .json, .md), signed: audit-*.dsse.json\n"
      << "  key, key.pub       the signing key pair\n"
      << "  ledger.db          the provenance ledger; checkpoint.txt its signed checkpoint\n"
      << "  disclosure-ft_strong.json  the fine-tune's disclosure package\n"
      << "  lineage.svg        the lineage graph\n";
  return kExitOk;
}

}  // namespace

void register_demo(CLI::App& app, Action* run) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Build a small family, audit a fine-tune and a distilled student, sign the findings "
      "into a ledger, export a disclosure package and HTML reports");
  cmd->add_option("OUT", o->out, "output directory")->capture_default_str();
  cmd->add_option("--preset", o->preset,
                  "tiny (minutes on 2 CPU cores) or test (seconds, barely trained)")
      ->check(CLI::IsMember({"tiny", "test", "small"}))
      ->capture_default_str();
  cmd->add_option("--device", o->device, "cpu or cuda")->capture_default_str();
  cmd->callback([o, run] { *run = [o] { return run_demo(*o); }; });
}

}  // namespace prov::cli
