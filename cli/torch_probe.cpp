// The LibTorch side of `prov probe` (local models), `prov serve` and `prov suite build`.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/model_tokenizer.h"
#include "cli/torch_plugin.h"
#include "core/sha256.h"
#include "model/digest.h"
#include "model/model.h"
#include "model/runtime.h"
#include "probes/local_backend.h"
#include "probes/runner.h"
#include "probes/server.h"

namespace prov::cli {

namespace {

// The tokenizer's kind and a digest of its vocabulary (every id's piece, in id order), so that two
// signatures compare token ids only when both models use the same vocabulary.
std::string tokenizer_identity(const model::Tokenizer& tok) {
  std::string pieces;
  for (int32_t i = 0; i < tok.vocab_size(); ++i) {
    pieces += tok.id_to_token(i).value_or("");
    pieces += '\0';
  }
  return tok.kind() + ":sha256:" + to_hex(sha256(pieces)).substr(0, 16);
}

struct LoadedModel {
  model::Model model;
  std::unique_ptr<model::Transformer> tf;
  std::unique_ptr<model::Tokenizer> tok;
  std::string digest;
};

Result<model::RuntimeOptions> runtime_options(const std::string& device, const std::string& dtype) {
  model::RuntimeOptions ro;
  auto dt = model::compute_dtype_from_name(dtype);
  if (!dt) return invalid_argument("unknown --dtype " + dtype + " (float32, bfloat16, float16)");
  ro.dtype = *dt;
  if (device == "cuda") {
    ro.device = torch::Device(torch::kCUDA);
  } else if (device != "cpu") {
    return invalid_argument("unknown --device " + device + " (cpu, cuda)");
  }
  return ro;
}

// Loads weights and tokenizer; the tokenizer is optional unless `need_tokenizer`.
Result<LoadedModel> load_model(const std::string& path, const std::string& tokenizer,
                               const std::string& device, const std::string& dtype,
                               bool need_tokenizer, bool want_digest) {
  PROV_ASSIGN_OR_RETURN(auto ro, runtime_options(device, dtype));
  PROV_ASSIGN_OR_RETURN(model::Model m, model::open_model(path));
  LoadedModel l{std::move(m), nullptr, nullptr, ""};
  auto tok = open_tokenizer_for(path, tokenizer);
  if (tok.is_ok()) {
    l.tok = std::move(*tok);
  } else if (need_tokenizer) {
    return tok.status();
  }
  PROV_ASSIGN_OR_RETURN(l.tf, model::Transformer::load(l.model, ro));
  if (want_digest) {
    PROV_ASSIGN_OR_RETURN(auto manifest, model::compute_manifest(path));
    l.digest = manifest.digest;
  }
  return l;
}

std::string device_name(const model::Transformer& tf) {
  return tf.options().device.str();
}

int run_probe(const ProbeOptions& o) {
  auto l = load_model(o.path, o.tokenizer, o.device, o.dtype, false, true);
  if (!l.is_ok()) return report_error("probe", l.status());
  const int32_t vocab = static_cast<int32_t>(l->tf->config().vocab_size);
  auto suite = probes::resolve_suite(o.suite, vocab);
  if (!suite.is_ok()) return report_error("probe", suite.status());
  probes::SignatureHeader h;
  h.tool_version = tool_version();
  h.source = "local";
  h.model_name = o.path;
  h.model_digest = l->digest;
  h.suite_name = suite->name;
  h.suite_version = suite->version;
  h.suite_digest = probes::suite_digest(*suite);
  h.num_probes = static_cast<uint32_t>(suite->probes.size());
  for (const auto& p : suite->probes) h.top_k = std::max<uint32_t>(h.top_k, p.top_k);
  h.device = device_name(*l->tf);
  h.dtype = o.dtype == "fp32" || o.dtype == "f32" ? "float32" : o.dtype;
  h.vocab_size = vocab;
  if (l->tok) h.tokenizer = tokenizer_identity(*l->tok);
  probes::LocalRunner runner(*l->tf, l->tok.get(), probes::RunnerOptions{o.batch, 4096});
  std::vector<bool> skip;
  Status st = o.begin(h, &skip);
  if (!st.is_ok()) return report_error("probe", st);
  st = runner.run(*suite, skip, o.record, o.progress);
  if (!st.is_ok()) return report_error("probe", st);
  return kExitOk;
}

std::string read_chat_template(const std::string& path) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::is_directory(path, ec)
                                  ? std::filesystem::path(path)
                                  : std::filesystem::path(path).parent_path();
  auto cfg = dir / "tokenizer_config.json";
  if (!std::filesystem::is_regular_file(cfg, ec)) return "";
  auto text = read_small_file(cfg.string(), "tokenizer_config.json");
  if (!text.is_ok()) return "";
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("chat_template")) return "";
  if (j["chat_template"].is_string()) return j["chat_template"].get<std::string>();
  return "";
}

int run_serve(const ServeOptions& o) {
  // Block the stop signals in every thread the server starts; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto l = load_model(o.path, o.tokenizer, o.device, o.dtype, true, false);
  if (!l.is_ok()) return report_error("serve", l.status());
  std::string name = o.name;
  if (name.empty()) {
    name = std::filesystem::path(o.path).filename().string();
    if (name.empty()) name = std::filesystem::path(o.path).parent_path().filename().string();
  }
  probes::LocalBackend backend(*l->tf, *l->tok, name, read_chat_template(o.path));
  probes::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.threads = o.threads;
  if (!o.api_key_env.empty()) {
    auto key = api_key_from_env(o.api_key_env);
    if (!key.is_ok()) return report_error("serve", key.status());
    so.api_key = *key;
  }
  auto server = probes::Server::start(backend, so);
  if (!server.is_ok()) return report_error("serve", server.status());
  std::cout << "prov serve: " << name << " on http://" << o.host << ":" << (*server)->port()
            << "/v1 (" << device_name(*l->tf) << ", " << o.dtype << ")" << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "prov serve: stopping (signal " << sig << ")\n";
  (*server)->stop();
  return kExitOk;
}

// Total variation distance between two top-k lists keyed by token text (mass outside both lists
// is ignored).
double top_tv(const probes::TopK& a, const probes::TopK& b) {
  std::map<std::string, std::pair<double, double>> m;
  for (size_t i = 0; i < a.tokens.size(); ++i) m[a.tokens[i]].first += std::exp(a.logprobs[i]);
  for (size_t i = 0; i < b.tokens.size(); ++i) m[b.tokens[i]].second += std::exp(b.logprobs[i]);
  double tv = 0;
  for (const auto& [k, v] : m) tv += std::fabs(v.first - v.second);
  return 0.5 * tv;
}

int run_suite_build(const SuiteBuildOptions& o) {
  probes::Suite pool = probes::natural_v1(o.pool);
  probes::Suite ask = pool;
  for (auto& p : ask.probes) p.greedy_tokens = 0;
  std::vector<std::vector<probes::TopK>> tops;  // [model][probe]
  std::string described;
  for (const std::string& path : o.models) {
    auto l = load_model(path, "", o.device, o.dtype, true, true);
    if (!l.is_ok()) return report_error("suite build", l.status().with_context(path));
    probes::LocalRunner runner(*l->tf, l->tok.get(), probes::RunnerOptions{o.batch, 4096});
    std::vector<probes::TopK> t;
    Status st = runner.run(
        ask, {},
        [&](const probes::ProbeRecord& r) {
          t.push_back(r.positions.at(0).top);
          return Status::ok();
        },
        [&](size_t d, size_t n) {
          if (isatty(2)) std::fprintf(stderr, "\rsuite build: %s %zu/%zu   ", path.c_str(), d, n);
        });
    if (isatty(2)) std::fprintf(stderr, "\n");
    if (!st.is_ok()) return report_error("suite build", st.with_context(path));
    tops.push_back(std::move(t));
    described += (described.empty() ? "" : ", ") + std::filesystem::path(path).filename().string() +
                 " (sha256:" + l->digest.substr(0, 16) + ")";
  }
  const size_t n = pool.probes.size();
  std::vector<double> score(n, 0.0);
  size_t pairs = 0;
  for (size_t a = 0; a < tops.size(); ++a) {
    for (size_t b = a + 1; b < tops.size(); ++b, ++pairs) {
      for (size_t i = 0; i < n; ++i) {
        const auto& x = tops[a][i];
        const auto& y = tops[b][i];
        const bool differ = x.tokens.empty() || y.tokens.empty() || x.tokens[0] != y.tokens[0];
        score[i] += (differ ? 1.0 : 0.0) + top_tv(x, y);
      }
    }
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return score[a] > score[b]; });
  order.resize(std::min(n, static_cast<size_t>(o.keep)));
  std::sort(order.begin(), order.end());
  probes::Suite out;
  out.name = "divergence";
  out.version = "1";
  out.description = "the " + std::to_string(order.size()) + " of the first " + std::to_string(n) +
                    " natural-v1 prompts where these models disagree most (top-1 disagreement + "
                    "total variation of the top-20 lists, summed over model pairs): " +
                    described;
  for (size_t i : order) out.probes.push_back(pool.probes[i]);
  Status st = probes::write_suite_file(o.output, out);
  if (!st.is_ok()) return report_error("suite build", st);
  double mean_all = 0, mean_kept = 0;
  for (double s : score) mean_all += s;
  for (size_t i : order) mean_kept += score[i];
  mean_all /= std::max<size_t>(1, n) * std::max<size_t>(1, pairs);
  mean_kept /= std::max<size_t>(1, order.size()) * std::max<size_t>(1, pairs);
  std::printf(
      "%s: %zu probes, sha256:%s\nmean disagreement per model pair: %.3f kept vs %.3f pool\n",
      o.output.c_str(), out.probes.size(), probes::suite_digest(out).c_str(), mean_kept, mean_all);
  return kExitOk;
}

template <typename Options, int (*Fn)(const Options&)>
int guarded(const char* name, const void* options) {
  try {
    return Fn(*static_cast<const Options*>(options));
  } catch (const std::exception& e) {
    std::cerr << "prov " << name << ": internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}

}  // namespace

}  // namespace prov::cli

extern "C" int prov_torch_probe(const void* options) {
  return prov::cli::guarded<prov::cli::ProbeOptions, prov::cli::run_probe>("probe", options);
}
extern "C" int prov_torch_serve(const void* options) {
  return prov::cli::guarded<prov::cli::ServeOptions, prov::cli::run_serve>("serve", options);
}
extern "C" int prov_torch_suite_build(const void* options) {
  return prov::cli::guarded<prov::cli::SuiteBuildOptions, prov::cli::run_suite_build>("suite build",
                                                                                      options);
}
