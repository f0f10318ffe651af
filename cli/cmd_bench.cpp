// prov bench accuracy FAMILY_DIR[=PREFIX]... [--access weights,outputs,both] [--suite S]
//                     [--xlik-probes N] [--image-probes N] [--sigs DIR [--scores-tag TAG]
//                     [--image-tag TAG]] [--max-probes N]
//                     [--permutations N] [--alpha A] [--json OUT] [--md OUT] [--update-doc DOC]
//
// Accuracy of the lineage tests on families with known lineage (lineage/bench.h: every pair's
// verdict is judge()'s, the rule prov audit ships); prints the Markdown tables and writes them
// where asked.
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/options.h"
#include "core/file_io.h"
#include "lineage/bench.h"

namespace prov::cli {

namespace {

struct BenchCliOptions {
  lineage::BenchRequest request;
  std::string json_out, md_out, update_doc;
};

// `doc` with the text between the lines "<!-- NAME -->" and "<!-- /NAME -->" replaced by `body`.
Result<std::string> replace_marked_block(const std::string& doc, const std::string& name,
                                         const std::string& body) {
  const std::string open = "<!-- " + name + " -->\n", close = "<!-- /" + name + " -->";
  const size_t a = doc.find(open);
  const size_t b = a == std::string::npos ? a : doc.find(close, a + open.size());
  if (a == std::string::npos || b == std::string::npos) {
    return invalid_argument("no block marked \"" + open.substr(0, open.size() - 1) + "\" ... \"" +
                            close + "\" to replace");
  }
  return doc.substr(0, a + open.size()) + body + (body.empty() || body.back() == '\n' ? "" : "\n") +
         doc.substr(b);
}

// The command line as typed (Linux), else rebuilt from the arguments.
std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    std::string a = raw.substr(start, end - start);
    start = end + 1;
    if (!out.empty()) out += " ";
    out += shell_word(a);
  }
  return out.empty() ? "prov bench accuracy" : out;
}

int run_bench(BenchCliOptions o) {
  const char* cmd = "bench accuracy";
  o.request.command = command_line();
  auto r = lineage::run_accuracy_bench(o.request);
  if (!r.is_ok()) return report_error(cmd, r.status());
  const std::string& md = r->markdown;
  if (!o.md_out.empty()) {
    if (Status s = write_file_atomic(o.md_out, md); !s.is_ok()) return report_error(cmd, s);
  }
  if (!o.update_doc.empty()) {
    std::string label;
    for (const auto& f : r->summary["families"]) {
      label += (label.empty() ? "" : "+") + f["label"].get<std::string>();
    }
    auto doc = read_small_file(o.update_doc, "document");
    if (!doc.is_ok()) return report_error(cmd, doc.status());
    auto updated = replace_marked_block(*doc, "prov bench accuracy " + label, md);
    if (!updated.is_ok()) return report_error(cmd, updated.status().with_context(o.update_doc));
    if (Status s = write_file_atomic(o.update_doc, *updated); !s.is_ok()) {
      return report_error(cmd, s);
    }
    std::fprintf(stderr, "updated the tables of %s in %s\n", label.c_str(), o.update_doc.c_str());
  }
  if (!o.json_out.empty()) {
    nlohmann::json full = {{"summary", r->summary}, {"pairs", r->pairs}};
    if (Status s = write_file_atomic(o.json_out, full.dump(1) + "\n"); !s.is_ok()) {
      return report_error(cmd, s);
    }
  }
  std::cout << md;
  return kExitOk;
}

}  // namespace

void register_bench(CLI::App& app, Action* run) {
  auto o = std::make_shared<BenchCliOptions>();
  lineage::BenchRequest& q = o->request;
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks on families with known lineage");
  bench->require_subcommand(1);
  CLI::App* cmd = bench->add_subcommand(
      "accuracy",
      "Accuracy of the weight, output and combined lineage tests on families with known lineage "
      "(labels.json): per class AUROC, TPR, calibration, relation, parent and edge accuracy");
  cmd->add_option("FAMILY_DIR", q.families,
                  "family folders with labels.json (DIR=PREFIX: --sigs file names start with "
                  "PREFIX)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--access", q.access, "access levels: weights, outputs, both")
      ->delimiter(',')
      ->capture_default_str();
  add_collection_options(cmd, &q.outputs, &q.collect);
  cmd->add_option("--sigs", q.sigs,
                  "precollected signatures: DIR/NAME.sig, scores DIR/NAME.TAG.sig (no collection)");
  cmd->add_option("--image-tag", q.image_tag,
                  "TAG of the logit-image-v1 signatures in --sigs (DIR/NAME.TAG.sig)")
      ->capture_default_str();
  cmd->add_option("--scores-tag", q.scores_tag, "TAG of the score files in --sigs")
      ->capture_default_str();
  cmd->add_option("--max-probes", q.max_probes, "use at most this many probes (0 = all)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--permutations", q.permutations, "signed permutations of each weight test")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--alpha", q.alpha, "significance level")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 0.5));
  cmd->add_option("--json", o->json_out, "write every pair and the summary as JSON");
  cmd->add_option("--md", o->md_out, "write the Markdown tables (headed by the command line)");
  cmd->add_option("--update-doc", o->update_doc,
                  "replace the tables between the markers <!-- prov bench accuracy LABEL --> and "
                  "<!-- /prov bench accuracy LABEL --> of this Markdown file (LABEL: the family "
                  "folder names joined by +), e.g. docs/BENCHMARKS.md");
  cmd->callback([o, run] { *run = [o] { return run_bench(*o); }; });
}

}  // namespace prov::cli
