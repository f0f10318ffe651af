// prov bench accuracy FAMILY_DIR[=PREFIX]... [--access weights,outputs,both] [--suite S]
//                     [--xlik-probes N] [--image-probes N] [--sigs DIR [--scores-tag TAG]
//                     [--image-tag TAG]] [--max-probes N]
//                     [--permutations N] [--alpha A] [--json OUT] [--md OUT]
//
// Accuracy of the lineage tests on families with known lineage (lineage/accuracy.h has the
// ground truth, pair classes, controls and metrics). Weights: fingerprint::compare_weights on
// every ordered pair of models. Outputs: fingerprint::compare_outputs of every non-root member
// against every root of its family, controls drawn leave-one-out from the roots. Both: the two
// layers per output pair, p = min(1, 2 min(p_w, p_o)) (Bonferroni over the two layers) and the
// verdict of lineage/audit.h (the weight relation when weight-derived, else the output kind when
// p_o < alpha, else independent).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli/collect.h"
#include "cli/common.h"
#include "core/file_io.h"
#include "fingerprint/merge.h"
#include "fingerprint/outputs.h"
#include "fingerprint/weights.h"
#include "lineage/accuracy.h"
#include "model/model.h"
#include "probes/signature.h"
#include "probes/suite.h"

namespace prov::cli {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct BenchOptions {
  std::vector<std::string> families;  // DIR or DIR=PREFIX (prefix of the --sigs file names)
  std::vector<std::string> access = {"weights", "outputs", "both"};
  std::string suite = "natural-v1:1000";
  int xlik_probes = 200;
  int max_probes = 0;
  std::string sigs, scores_tag = "x1000", image_tag = "img";
  int permutations = 999;
  double alpha = 0.01;
  std::string json_out, md_out, update_doc;
  CollectSettings collect;
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

bool identity_decided(const std::string& r) {
  return r == "identical" || r == "converted" || r == "quantized";
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

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

nlohmann::json opt_num(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

struct Fam {
  lineage::Family family;
  std::string prefix;
  int offset = 0;  // index of its first member in the flat list
};

// One family's signatures for the output tests.
struct FamOutputs {
  lineage::Family sub;  // the members with a signature
  std::vector<probes::Signature> sigs;
  std::vector<std::unique_ptr<probes::Signature>> scores;
  std::vector<std::unique_ptr<probes::Signature>> images;             // logit-image-v1, may be null
  std::vector<std::optional<fingerprint::OutputComparison>> results;  // per output pair
  std::vector<std::string> errors;
  std::vector<lineage::OutputPair> pairs;
};

Result<FamOutputs> family_signatures(const Fam& fm, const BenchOptions& o) {
  const auto& f = fm.family;
  FamOutputs out;
  out.sub.dir = f.dir;
  out.sub.label = f.label;
  if (!o.sigs.empty()) {
    for (const auto& m : f.members) {
      const std::string base = o.sigs + "/" + fm.prefix + m.name;
      if (!file_exists(base + ".sig")) {
        std::fprintf(stderr, "bench: %s: no signature %s.sig; left out of the output tests\n",
                     f.label.c_str(), base.c_str());
        continue;
      }
      auto sig = probes::read_signature(base + ".sig");
      if (!sig.is_ok()) return sig.status().with_context(m.name);
      // DIR/NAME.TAG.sig when the tag is set and the file is there, else null.
      auto tagged = [&](const std::string& tag,
                        const std::string& what) -> Result<std::unique_ptr<probes::Signature>> {
        const std::string path = base + "." + tag + ".sig";
        if (tag.empty() || !file_exists(path)) return std::unique_ptr<probes::Signature>();
        auto s = probes::read_signature(path);
        if (!s.is_ok()) return s.status().with_context(m.name + " " + what);
        return std::make_unique<probes::Signature>(std::move(*s));
      };
      PROV_ASSIGN_OR_RETURN(auto sc, tagged(o.scores_tag, "scores"));
      PROV_ASSIGN_OR_RETURN(auto im, tagged(o.image_tag, "logit image"));
      out.sub.members.push_back(m);
      out.sigs.push_back(std::move(*sig));
      out.scores.push_back(std::move(sc));
      out.images.push_back(std::move(im));
    }
    return out;
  }
  auto suite = probes::resolve_suite(o.suite, 0);
  if (!suite.is_ok()) return suite.status();
  for (const auto& m : f.members) {
    std::fprintf(stderr, "bench: signature of %s/%s on %s\n", f.label.c_str(), m.name.c_str(),
                 o.suite.c_str());
    auto sig = signature_for(m.path, "", o.suite, *suite, o.collect);
    if (!sig.is_ok()) return sig.status().with_context(m.name);
    out.sub.members.push_back(m);
    out.sigs.push_back(std::move(*sig));
  }
  out.scores.resize(out.sigs.size());
  out.images.resize(out.sigs.size());
  if (o.collect.image_probes > 0) {
    const probes::Suite is = probes::logit_image_v1(o.collect.image_probes);
    const std::string spec = "logit-image-v1:" + std::to_string(o.collect.image_probes);
    for (size_t i = 0; i < out.sigs.size(); ++i) {
      std::fprintf(stderr, "bench: logit image of %s/%s (%d probes)\n", f.label.c_str(),
                   out.sub.members[i].name.c_str(), o.collect.image_probes);
      auto im = signature_for(out.sub.members[i].path, "", spec, is, o.collect);
      if (!im.is_ok()) return im.status().with_context(out.sub.members[i].name + " logit image");
      out.images[i] = std::make_unique<probes::Signature>(std::move(*im));
    }
  }
  if (o.xlik_probes > 0) {
    std::vector<const probes::Signature*> ptrs;
    for (const auto& s : out.sigs) ptrs.push_back(&s);
    probes::Suite xs;
    auto path = cross_likelihood_suite_file(*suite, ptrs, o.xlik_probes, o.collect, &xs);
    if (!path.is_ok()) return path.status();
    for (size_t i = 0; i < out.sigs.size(); ++i) {
      std::fprintf(stderr, "bench: cross-likelihood scores of %s/%s (%d probes)\n", f.label.c_str(),
                   out.sub.members[i].name.c_str(), o.xlik_probes);
      auto sc = signature_for(out.sub.members[i].path, "", *path, xs, o.collect);
      if (!sc.is_ok()) return sc.status().with_context(out.sub.members[i].name + " scores");
      out.scores[i] = std::make_unique<probes::Signature>(std::move(*sc));
    }
  }
  return out;
}

int run_bench(const BenchOptions& o) {
  const char* cmd = "bench accuracy";
  const auto t_start = std::chrono::steady_clock::now();
  bool want_w = false, want_o = false, want_b = false;
  for (const auto& a : o.access) {
    if (a == "weights") {
      want_w = true;
    } else if (a == "outputs") {
      want_o = true;
    } else if (a == "both") {
      want_b = true;
    } else {
      return report_error(
          cmd, invalid_argument("--access: unknown level \"" + a + "\" (weights, outputs, both)"));
    }
  }
  std::vector<Fam> fams;
  int total = 0;
  for (const auto& spec : o.families) {
    const auto eq = spec.find('=');
    std::string dir = eq == std::string::npos ? spec : spec.substr(0, eq);
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    auto f = lineage::load_family(dir);
    if (!f.is_ok()) return report_error(cmd, f.status());
    Fam fm;
    fm.family = std::move(*f);
    fm.prefix = eq == std::string::npos ? "" : spec.substr(eq + 1);
    fm.offset = total;
    total += static_cast<int>(fm.family.members.size());
    fams.push_back(std::move(fm));
  }
  const bool multi = fams.size() > 1;
  auto display = [&](const Fam& fm, const std::string& name) {
    return multi ? fm.family.label + "/" + name : name;
  };
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  nlohmann::json result;
  result["command"] = command_line();
  result["families"] = nlohmann::json::array();
  for (const auto& fm : fams) {
    result["families"].push_back(
        {{"dir", fm.family.dir}, {"label", fm.family.label}, {"models", fm.family.members.size()}});
  }
  result["options"] = {{"permutations", o.permutations},
                       {"alpha", o.alpha},
                       {"suite", o.sigs.empty() ? o.suite : "signatures in " + o.sigs},
                       {"xlik_probes", o.sigs.empty() ? o.xlik_probes : 0},
                       {"max_probes", o.max_probes}};
  result["access"] = nlohmann::json::object();
  result["seconds"] = nlohmann::json::object();
  nlohmann::json rows = nlohmann::json::object();

  // Weight comparisons: every ordered pair (weights), or only the output pairs (both alone).
  fingerprint::WeightTestOptions wo;
  wo.permutations = o.permutations;
  wo.alpha = o.alpha;
  std::map<std::pair<int, int>, Result<fingerprint::WeightLineageResult>> wres;
  std::vector<model::Model> models;
  std::vector<std::pair<int, int>> where;  // flat index -> (family, member)
  for (size_t fi = 0; fi < fams.size(); ++fi) {
    for (size_t mi = 0; mi < fams[fi].family.members.size(); ++mi) {
      where.emplace_back(static_cast<int>(fi), static_cast<int>(mi));
    }
  }
  std::string weight_h0;
  if (want_w || want_b) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& [fi, mi] : where) {
      const auto& m = fams[static_cast<size_t>(fi)].family.members[static_cast<size_t>(mi)];
      auto mod = model::open_model(m.path);
      if (!mod.is_ok()) return report_error(cmd, mod.status().with_context(m.path));
      models.push_back(std::move(*mod));
    }
    std::vector<std::pair<int, int>> todo;
    if (want_w) {
      for (int c = 0; c < total; ++c) {
        for (int r = 0; r < total; ++r) {
          if (c != r) todo.emplace_back(c, r);
        }
      }
    } else {
      for (const auto& fm : fams) {
        for (const auto& p : lineage::output_pairs(fm.family)) {
          todo.emplace_back(fm.offset + p.candidate, fm.offset + p.reference);
        }
      }
    }
    size_t done = 0;
    for (const auto& [c, r] : todo) {
      auto res = fingerprint::compare_weights(models[static_cast<size_t>(c)],
                                              models[static_cast<size_t>(r)], wo);
      if (res.is_ok() && weight_h0.empty() && res->p_value) weight_h0 = res->null_hypothesis;
      wres.emplace(std::make_pair(c, r), std::move(res));
      ++done;
      if (done % 100 == 0 || done == todo.size()) {
        std::fprintf(stderr, "bench: weights %zu / %zu pairs (%.0f s)\n", done, todo.size(),
                     seconds_since(t0));
      }
    }
    result["seconds"]["weight_comparisons"] = seconds_since(t0);
    // Merges (every pair compared): a model read as a fine-tune or noised copy of two or more
    // others is fitted as a merge of each pair of them (fingerprint/merge.h); the two parents
    // of the best merge are then named `merged`.
    if (want_w) {
      const auto t1 = std::chrono::steady_clock::now();
      std::vector<std::vector<int>> relatives(static_cast<size_t>(total));
      for (const auto& [cr, res] : wres) {
        if (res.is_ok() && fingerprint::reads_as_merge_parent(res->relation)) {
          relatives[static_cast<size_t>(cr.first)].push_back(cr.second);
        }
      }
      std::vector<const model::Model*> model_ptrs;
      for (const auto& mod : models) model_ptrs.push_back(&mod);
      auto found = fingerprint::find_merges(model_ptrs, relatives);
      if (!found.is_ok()) return report_error(cmd, found.status().with_context("merge fit"));
      const size_t merges = found->size();
      for (const auto& [c, fm] : *found) {
        for (int parent : {fm.a, fm.b}) {
          auto& res = wres.at({c, parent});
          res->relation = "merged";
          res->reason = fm.fit.reason;
        }
      }
      result["seconds"]["merge_fits"] = seconds_since(t1);
      std::fprintf(stderr, "bench: %zu merge(s) found (%.0f s)\n", merges, seconds_since(t1));
    }
  }
  auto weight_p = [](const fingerprint::WeightLineageResult& w) -> std::optional<double> {
    // Relations decided without a test (identity layer, aligned score) count as p = 0.
    if (fingerprint::is_weight_derived(w.relation) && !w.p_value) return 0.0;
    return w.p_value;
  };
  auto weight_score = [](const fingerprint::WeightLineageResult& w) {
    if (identity_decided(w.relation)) return kInf;
    double s = -kInf;
    if (w.permutations > 0) s = std::max(s, w.z_score);
    if (w.aligned.ran) s = std::max(s, w.aligned.z_score);
    return s;
  };

  if (want_w) {
    std::vector<lineage::ScoredPair> sp;
    nlohmann::json wr = nlohmann::json::array();
    int errors = 0;
    for (int c = 0; c < total; ++c) {
      for (int r = 0; r < total; ++r) {
        if (c == r) continue;
        const auto [fc, ic] = where[static_cast<size_t>(c)];
        const auto [fr, ir] = where[static_cast<size_t>(r)];
        const Fam& Fc = fams[static_cast<size_t>(fc)];
        const Fam& Fr = fams[static_cast<size_t>(fr)];
        const auto& mc = Fc.family.members[static_cast<size_t>(ic)];
        const auto& mr = Fr.family.members[static_cast<size_t>(ir)];
        const auto& res = wres.at({c, r});
        lineage::ScoredPair p;
        p.candidate = display(Fc, mc.name);
        p.reference = display(Fr, mr.name);
        p.candidate_parent = mc.parent.empty() ? "" : display(Fc, mc.parent);
        p.related = lineage::weight_related(Fc.family, ic, Fr.family, ir);
        p.cls = p.related ? lineage::weight_class(Fc.family, ic, ir) : "independent";
        p.direct = fc == fr && mc.parent == mr.name;
        p.expected_relation = p.direct ? lineage::expected_relation("weights", mc) : "";
        if (!p.related && mc.name == mc.weight_root && mr.name == mr.weight_root &&
            p.candidate < p.reference) {
          p.subset = "unique pairs of weight roots";
        }
        nlohmann::json row = {{"candidate", p.candidate},
                              {"reference", p.reference},
                              {"related", p.related},
                              {"class", p.cls}};
        if (!res.is_ok()) {
          ++errors;
          row["error"] = res.status().to_string();
          wr.push_back(row);
          continue;
        }
        p.p = weight_p(*res);
        p.score = weight_score(*res);
        p.verdict = res->relation;
        p.significant = fingerprint::is_weight_derived(res->relation);
        row["relation"] = res->relation;
        row["expected"] = p.expected_relation;
        row["p_value"] = opt_num(res->p_value);
        row["score"] = opt_num(p.score);
        row["z_a"] = res->permutations > 0 ? nlohmann::json(res->z_score) : nlohmann::json();
        row["z_b"] = res->aligned.ran ? nlohmann::json(res->aligned.z_score) : nlohmann::json();
        wr.push_back(row);
        sp.push_back(std::move(p));
      }
    }
    nlohmann::json s = lineage::summarize(
        sp, o.alpha, "weights",
        "max(z_A, z_B) (test A's z-score, the aligned score's z; identity decisions +inf); "
        "identity and aligned-score decisions count as p = 0");
    s["errors"] = errors;
    s["test_null_hypothesis"] = weight_h0.empty()
                                    ? std::string(
                                          "the candidate's weights were initialised and "
                                          "trained independently of the reference's")
                                    : weight_h0;
    result["access"]["weights"] = s;
    result["seconds"]["weights"] = result["seconds"]["weight_comparisons"];
    rows["weights"] = wr;
    // Lineage graphs per family from the same comparisons.
    nlohmann::json lin = nlohmann::json::array();
    for (const auto& fm : fams) {
      std::vector<lineage::PairResult> prs;
      const int n = static_cast<int>(fm.family.members.size());
      for (int c = 0; c < n; ++c) {
        for (int r = 0; r < n; ++r) {
          if (c == r) continue;
          const auto& res = wres.at({fm.offset + c, fm.offset + r});
          if (res.is_ok()) prs.push_back({c, r, *res});
        }
      }
      auto acc = lineage::lineage_edge_accuracy(fm.family, prs, o.alpha, wo.aligned_z_threshold);
      if (!acc.is_ok()) return report_error(cmd, acc.status().with_context(fm.family.label));
      lin.push_back(*acc);
    }
    result["lineage"] = lin;
  }

  if (want_o || want_b) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<lineage::ScoredPair> so, sb;
    nlohmann::json orows = nlohmann::json::array(), brows = nlohmann::json::array();
    std::string output_h0;
    int errors = 0;
    for (const auto& fm : fams) {
      auto fo = family_signatures(fm, o);
      if (!fo.is_ok()) return report_error(cmd, fo.status().with_context(fm.family.label));
      const auto& sub = fo->sub;
      const auto pairs = lineage::output_pairs(sub);
      std::fprintf(stderr, "bench: outputs of %s: %zu pairs\n", fm.family.label.c_str(),
                   pairs.size());
      fingerprint::OutputTestOptions opt;
      opt.alpha = o.alpha;
      opt.max_probes = o.max_probes;
      fingerprint::ImageBasisCache image_cache;  // one basis per model, not per pair
      opt.image_cache = &image_cache;
      auto named = [&](int i) {
        return fingerprint::NamedSignature{
            sub.members[static_cast<size_t>(i)].name, &fo->sigs[static_cast<size_t>(i)],
            fo->scores[static_cast<size_t>(i)].get(), fo->images[static_cast<size_t>(i)].get()};
      };
      size_t done = 0;
      for (const auto& pr : pairs) {
        // Cross-likelihood scores only when every model of the pool has them.
        bool all_scores = fo->scores[static_cast<size_t>(pr.candidate)] &&
                          fo->scores[static_cast<size_t>(pr.reference)];
        for (int k : pr.controls) all_scores = all_scores && fo->scores[static_cast<size_t>(k)];
        auto strip = [&](fingerprint::NamedSignature n) {
          if (!all_scores) n.scores = nullptr;
          return n;
        };
        std::vector<fingerprint::NamedSignature> ctrl;
        for (int k : pr.controls) ctrl.push_back(strip(named(k)));
        auto res = fingerprint::compare_outputs(strip(named(pr.candidate)),
                                                strip(named(pr.reference)), ctrl, opt);
        ++done;
        if (done % 100 == 0 || done == pairs.size()) {
          std::fprintf(stderr, "bench: outputs %zu / %zu pairs (%.0f s)\n", done, pairs.size(),
                       seconds_since(t0));
        }
        const auto& mc = sub.members[static_cast<size_t>(pr.candidate)];
        const auto& mr = sub.members[static_cast<size_t>(pr.reference)];
        lineage::ScoredPair p;
        p.candidate = display(fm, mc.name);
        p.reference = display(fm, mr.name);
        p.candidate_parent = mc.parent.empty() ? "" : display(fm, mc.parent);
        p.related = pr.related;
        p.cls = pr.cls;
        p.direct = pr.direct;
        p.subset = pr.same_recipe ? "same-recipe negatives (seed twins)" : "";
        nlohmann::json row = {{"candidate", p.candidate},
                              {"reference", p.reference},
                              {"related", p.related},
                              {"class", p.cls},
                              {"same_recipe", pr.same_recipe}};
        nlohmann::json ctrl_names = nlohmann::json::array();
        for (int k : pr.controls) ctrl_names.push_back(sub.members[static_cast<size_t>(k)].name);
        row["controls"] = ctrl_names;
        if (!res.is_ok()) {
          ++errors;
          row["error"] = res.status().to_string();
          orows.push_back(row);
          continue;
        }
        const auto& oc = *res;
        if (output_h0.empty() && oc.p_value) output_h0 = oc.null_hypothesis;
        std::optional<double> po = oc.p_value;
        // outputs
        lineage::ScoredPair q = p;
        q.expected_relation = p.direct ? lineage::expected_relation("outputs", mc) : "";
        q.p = po;
        if (po) q.score = -std::log10(std::max(*po, 1e-300));
        q.significant = oc.relation == "related";
        q.verdict = q.significant ? oc.kind : oc.relation;
        row["relation"] = oc.relation;
        row["kind"] = oc.kind;
        row["p_value"] = opt_num(po);
        row["probes"] = oc.probes_used;
        row["scores_used"] = all_scores;
        nlohmann::json stat_t = nlohmann::json::object();  // each statistic's t
        for (const auto& st : oc.statistics) stat_t[st.name] = opt_num(st.t);
        row["t"] = stat_t;
        if (!oc.teacher.empty()) {
          row["teacher"] = oc.teacher;
          row["direction_confidence"] = oc.direction_confidence;
        }
        nlohmann::json curve = nlohmann::json::array();
        for (const auto& pt : oc.curve) curve.push_back({pt.probes, pt.p_value});
        row["curve"] = curve;
        if (want_o) so.push_back(std::move(q));
        // both
        if (want_b) {
          const auto& wr =
              wres.at({fm.offset + fm.family.find(mc.name), fm.offset + fm.family.find(mr.name)});
          lineage::ScoredPair b = p;
          b.expected_relation = p.direct ? lineage::expected_relation("both", mc) : "";
          std::optional<double> pw;
          std::string wrel = "error";
          if (wr.is_ok()) {
            pw = weight_p(*wr);
            wrel = wr->relation;
          }
          std::vector<double> ps;
          if (pw) ps.push_back(*pw);
          if (po) ps.push_back(*po);
          if (!ps.empty()) {
            b.p = std::min(
                1.0, static_cast<double>(ps.size()) * *std::min_element(ps.begin(), ps.end()));
            b.score = *b.p <= 0 ? kInf : -std::log10(std::max(*b.p, 1e-300));
          }
          if (fingerprint::is_weight_derived(wrel)) {
            b.verdict = wrel;
          } else if (po && *po < o.alpha) {
            b.verdict = oc.kind;
          } else {
            b.verdict = ps.empty() ? "inconclusive" : "independent";
          }
          b.significant = b.verdict != "independent" && b.verdict != "inconclusive";
          nlohmann::json brow = {
              {"candidate", b.candidate}, {"reference", b.reference}, {"related", b.related},
              {"class", b.cls},           {"weights", wrel},          {"p_weights", opt_num(pw)},
              {"p_outputs", opt_num(po)}, {"p_value", opt_num(b.p)},  {"verdict", b.verdict}};
          brows.push_back(brow);
          sb.push_back(std::move(b));
        }
        orows.push_back(row);
      }
    }
    const std::string oscore = "-log10 p of the output test";
    const double secs = seconds_since(t0);
    if (want_o) {
      nlohmann::json s = lineage::summarize(so, o.alpha, "outputs", oscore);
      s["errors"] = errors;
      s["test_null_hypothesis"] = output_h0.empty()
                                      ? std::string(
                                            "the reference is no closer to the candidate than "
                                            "independent models are")
                                      : output_h0;
      result["access"]["outputs"] = s;
      result["seconds"]["outputs"] = secs;
      rows["outputs"] = orows;
    }
    if (want_b) {
      const std::string rule =
          "p = min(1, 2 min(p_weights, p_outputs)) (Bonferroni over the two layers; one layer "
          "alone when the other has no p-value; identity and aligned-score weight decisions count "
          "as p_weights = 0). Verdict as prov audit: the weight relation when weight-derived, "
          "else the output kind when p_outputs < alpha, else independent.";
      nlohmann::json s = lineage::summarize(sb, o.alpha, "both", "-log10 of that p");
      s["errors"] = errors;
      s["test_null_hypothesis"] =
          "both layers' H0 hold: the weights are independent and the reference is no closer to "
          "the candidate's outputs than independent models are";
      s["combination"] = rule;
      result["access"]["both"] = s;
      result["both_rule"] = rule;
      rows["both"] = brows;
    }
  }
  result["seconds"]["total"] = seconds_since(t_start);

  const std::string md = lineage::render_accuracy_markdown(result);
  if (!o.md_out.empty()) {
    if (Status s = write_file_atomic(o.md_out, md); !s.is_ok()) return report_error(cmd, s);
  }
  if (!o.update_doc.empty()) {
    std::string label;
    for (const auto& fm : fams) label += (label.empty() ? "" : "+") + fm.family.label;
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
    nlohmann::json full = {{"summary", result}, {"pairs", rows}};
    if (Status s = write_file_atomic(o.json_out, full.dump(1) + "\n"); !s.is_ok()) {
      return report_error(cmd, s);
    }
  }
  std::cout << md;
  return kExitOk;
}

}  // namespace

void register_bench(CLI::App& app, Action* run) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks on families with known lineage");
  bench->require_subcommand(1);
  CLI::App* cmd = bench->add_subcommand(
      "accuracy",
      "Accuracy of the weight, output and combined lineage tests on families with known lineage "
      "(labels.json): per class AUROC, TPR, calibration, relation, parent and edge accuracy");
  cmd->add_option("FAMILY_DIR", o->families,
                  "family folders with labels.json (DIR=PREFIX: --sigs file names start with "
                  "PREFIX)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--access", o->access, "access levels: weights, outputs, both")
      ->delimiter(',')
      ->capture_default_str();
  add_collection_options(cmd, &o->suite, &o->xlik_probes, &o->collect);
  cmd->add_option("--sigs", o->sigs,
                  "precollected signatures: DIR/NAME.sig, scores DIR/NAME.TAG.sig (no collection)");
  cmd->add_option("--image-tag", o->image_tag,
                  "TAG of the logit-image-v1 signatures in --sigs (DIR/NAME.TAG.sig)")
      ->capture_default_str();
  cmd->add_option("--scores-tag", o->scores_tag, "TAG of the score files in --sigs")
      ->capture_default_str();
  cmd->add_option("--max-probes", o->max_probes, "use at most this many probes (0 = all)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--permutations", o->permutations, "signed permutations of each weight test")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--alpha", o->alpha, "significance level")
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
