// The LibTorch plugin of the prov CLI (probes/plugin.h): the commands that run models (generate,
// serve, suite build, zoo build) and the checkpoint runner of signature collection, behind the one
// versioned factory prov_torch_plugin_v1(). prov loads this library on demand, so commands that
// only read files do not pay LibTorch's start-up.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/json.h"

#include "cli/torch_commands.h"
#include "core/file_io.h"
#include "model/formats/model.h"
#include "model/runtime/generate.h"
#include "model/runtime/runtime.h"
#include "model/tokenizers/find_tokenizer.h"
#include "probes/checkpoint_runner.h"
#include "probes/divergence.h"
#include "probes/local_backend.h"
#include "probes/plugin.h"
#include "probes/server.h"
#include "zoo/zoo.h"

namespace prov::cli {

namespace {

int run_generate(const GenerateOptions& o) {
  const bool have_prompt = o.have_prompt;
  auto m = model::open_model(o.path);
  if (!m.is_ok()) return report_error("generate", m.status());
  auto ro = probes::runtime_options(o.device, o.dtype);
  if (!ro.is_ok()) return report_error("generate", ro.status());

  // The tokenizer is needed for a text prompt and to print text; ids alone work without one.
  auto tok = model::open_tokenizer_for(o.path, o.tokenizer);
  if (have_prompt && !tok.is_ok()) return report_error("generate", tok.status());

  std::vector<int64_t> prompt = o.prompt_ids;
  if (have_prompt) {
    auto ids = (*tok)->encode(o.prompt, /*add_special=*/true);
    if (!ids.is_ok()) return report_error("generate", ids.status());
    prompt.assign(ids->begin(), ids->end());
  }
  auto tf = model::Transformer::load(*m, *ro);
  if (!tf.is_ok()) return report_error("generate", tf.status());

  model::SamplingOptions so;
  so.max_new_tokens = o.max_tokens;
  so.temperature = o.temperature;
  so.top_k = o.top_k;
  so.top_p = o.top_p;
  so.seed = o.seed;
  if (!o.ignore_eos) so.stop_ids = m->config.eos_token_ids;
  auto out = model::generate(**tf, prompt, so);
  if (!out.is_ok()) return report_error("generate", out.status());

  std::string text;
  bool have_text = false;
  if (tok.is_ok()) {
    std::vector<int32_t> ids32(out->begin(), out->end());
    auto t = (*tok)->decode(ids32, /*skip_special=*/true);
    if (t.is_ok()) {
      text = *t;
      have_text = true;
    }
  }
  if (o.json) {
    nlohmann::json j = {{"ids", *out},
                        {"prompt_length", prompt.empty() ? 1 : prompt.size()},
                        {"device", o.device},
                        {"dtype", o.dtype}};
    if (have_text) j["text"] = text;
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  if (have_text) {
    std::cout << text << "\n";
  } else {
    for (size_t i = 0; i < out->size(); ++i) std::cout << (i ? "," : "") << (*out)[i];
    std::cout << "\n";
  }
  return kExitOk;
}

int run_serve(const ServeOptions& o) {
  // Block the stop signals in every thread the server starts; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto l = probes::load_checkpoint(o.path, nullptr, o.tokenizer, o.device, o.dtype, true);
  if (!l.is_ok()) return report_error("serve", l.status());
  std::string name = o.name;
  if (name.empty()) {
    name = std::filesystem::path(o.path).filename().string();
    if (name.empty()) name = std::filesystem::path(o.path).parent_path().filename().string();
  }
  probes::LocalBackend backend(*l->transformer, *l->tokenizer, name,
                               probes::read_chat_template(o.path));
  probes::ServerOptions so;
  auto dialect = probes::parse_dialect(o.dialect);
  if (!dialect.is_ok()) return report_error("serve", dialect.status());
  so.dialect = *dialect;
  so.host = o.host;
  so.port = o.port;
  so.threads = o.threads;
  so.max_top_logprobs = o.max_logprobs;
  so.rate_limit_rps = o.rate;
  if (!o.api_key_env.empty()) {
    auto key = api_key_from_env(o.api_key_env);
    if (!key.is_ok()) return report_error("serve", key.status());
    so.api_key = *key;
  }
  auto server = probes::Server::start(backend, so);
  if (!server.is_ok()) return report_error("serve", server.status());
  const bool v1 = so.dialect == probes::Dialect::kOpenAI || so.dialect == probes::Dialect::kVllm ||
                  so.dialect == probes::Dialect::kAnthropic;
  std::cout << "prov serve: " << name << " on http://" << o.host << ":" << (*server)->port()
            << (v1 ? "/v1" : "") << " (" << (v1 ? "" : o.dialect + ", ")
            << l->transformer->options().device.str() << ", " << o.dtype << ")" << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "prov serve: stopping (signal " << sig << ")\n";
  (*server)->stop();
  return kExitOk;
}

int run_suite_build(const SuiteBuildOptions& o) {
  probes::DivergenceOptions d;
  d.pool = o.pool;
  d.keep = o.keep;
  d.device = o.device;
  d.dtype = o.dtype;
  d.batch = o.batch;
  auto built = probes::build_divergence_suite(o.models, d);
  if (!built.is_ok()) return report_error("suite build", built.status());
  Status st = probes::write_suite_file(o.output, built->suite);
  if (!st.is_ok()) return report_error("suite build", st);
  std::printf(
      "%s: %zu probes, sha256:%s\nmean disagreement per model pair: %.3f kept vs %.3f pool\n",
      o.output.c_str(), built->suite.probes.size(), probes::suite_digest(built->suite).c_str(),
      built->mean_kept, built->mean_all);
  return kExitOk;
}

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

template <typename Options, int (*Fn)(const Options&)>
int guarded(const char* name, const void* options) {
  try {
    return Fn(*static_cast<const Options*>(options));
  } catch (const std::exception& e) {
    std::cerr << "prov " << name << ": internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}

int command(const char* name, const void* options) {
  if (std::strcmp(name, "generate") == 0) {
    return guarded<GenerateOptions, run_generate>(name, options);
  }
  if (std::strcmp(name, "serve") == 0) return guarded<ServeOptions, run_serve>(name, options);
  if (std::strcmp(name, "suite build") == 0) {
    return guarded<SuiteBuildOptions, run_suite_build>(name, options);
  }
  if (std::strcmp(name, "zoo build") == 0) {
    return guarded<ZooBuildOptions, run_zoo_build>(name, options);
  }
  return report_error(name, internal_error(std::string("the plugin has no command ") + name));
}

// The checkpoint runner: LibTorch exceptions become Status values at the boundary.
void* open_runner(const probes::CheckpointRun& run, Status* error) {
  try {
    auto r = probes::CheckpointRunner::open(run);
    if (!r.is_ok()) {
      *error = r.status();
      return nullptr;
    }
    return r->release();
  } catch (const std::exception& e) {
    *error = internal_error(std::string("loading the model failed: ") + e.what());
    return nullptr;
  }
}

Status collect(void* runner, const probes::CheckpointCollect& what) {
  try {
    return static_cast<probes::CheckpointRunner*>(runner)->collect(what);
  } catch (const std::exception& e) {
    return internal_error(std::string("running the model failed: ") + e.what());
  }
}

void close_runner(void* runner) {
  delete static_cast<probes::CheckpointRunner*>(runner);
}

}  // namespace

}  // namespace prov::cli

extern "C" const prov::probes::TorchPluginV1* prov_torch_plugin_v1() {
  static const prov::probes::TorchPluginV1 table = [] {
    prov::probes::TorchPluginV1 t;
    t.abi = prov::probes::kTorchPluginAbi;
    t.open_runner = prov::cli::open_runner;
    t.collect = prov::cli::collect;
    t.close_runner = prov::cli::close_runner;
    t.command = prov::cli::command;
    return t;
  }();
  return &table;
}
