#include "probes/collect.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "core/progress.h"
#include "core/sha256.h"
#include "core/version.h"
#include "model/formats/config.h"
#include "model/tokenizers/find_tokenizer.h"
#include "probes/endpoint.h"
#include "probes/plugin.h"

namespace prov::probes {

namespace fs = std::filesystem;

namespace {

// Path, size and modification time of the model's files: a changed checkpoint gets a new key.
std::string file_key(const std::string& canonical) {
  std::vector<std::string> parts;
  auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return;
    parts.push_back(p.string() + "\t" + std::to_string(st.st_size) + "\t" +
                    std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
  };
  std::error_code ec;
  if (fs::is_directory(canonical, ec)) {
    for (const auto& e : fs::directory_iterator(canonical, ec)) {
      if (e.is_regular_file()) add(e.path());
    }
  } else {
    add(canonical);
  }
  std::sort(parts.begin(), parts.end());
  std::string all = canonical;
  for (const auto& p : parts) all += "\n" + p;
  return all;
}

// Writes one signature file with resume, and reports progress: the common end of every backend.
class SignatureSink {
 public:
  SignatureSink(const CollectTarget& target, const std::string& who, bool quiet)
      : target_(target), who_(who), quiet_(quiet), bar_(target.what + " " + who, quiet) {}

  Status begin(const SignatureHeader& header, std::vector<bool>* skip) {
    total_ = header.num_probes;
    skip->assign(header.num_probes, false);
    std::error_code ec;
    std::vector<ProbeRecord> existing;
    Result<std::unique_ptr<SignatureWriter>> resumed = invalid_argument("no file to resume");
    if (target_.resume && fs::exists(target_.output, ec)) {
      resumed = SignatureWriter::append(target_.output, header, &existing);
      // A cached partial file of another engine version (the server was upgraded) is redone.
      if (!resumed.is_ok() && !target_.restart_mismatched) return resumed.status();
    }
    if (resumed.is_ok()) {
      writer_ = std::move(resumed).value();
      for (const auto& r : existing) {
        if (r.index < skip->size()) (*skip)[r.index] = true;
      }
      already_ = existing.size();
      if (already_ > 0 && !quiet_) {
        std::fprintf(stderr, "prov %s: resuming %s (%zu of %u probes already collected)\n",
                     target_.what.c_str(), target_.output.c_str(), already_, total_);
      }
    } else {
      PROV_ASSIGN_OR_RETURN(writer_, SignatureWriter::create(target_.output, header));
    }
    t0_ = std::chrono::steady_clock::now();
    return Status::ok();
  }

  Status record(const ProbeRecord& r) {
    if (!writer_) return internal_error("signature record before the header");
    ++written_;
    return writer_->write(r);
  }

  void progress(size_t done, size_t total) { bar_.update(done, total); }

  // Closes the file. A failed collection keeps the completed probes, and says so.
  Status finish(Status st) {
    bar_.finish();
    if (!writer_) return st;
    Status cl = writer_->close();
    if (!st.is_ok()) {
      return Status(st.code(), st.message() + " (" + std::to_string(already_ + written_) + " of " +
                                   std::to_string(total_) + " probes are kept in " +
                                   target_.output + "; collecting again completes it)");
    }
    PROV_RETURN_IF_ERROR(cl);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    if (!quiet_) {
      std::fprintf(stderr, "prov %s: %zu probes of %s collected in %.2f s (%.1f probes/s)\n",
                   target_.what.c_str(), written_, who_.c_str(), s,
                   s > 0 ? double(written_) / s : 0.0);
    }
    return Status::ok();
  }

 private:
  const CollectTarget& target_;
  std::string who_;
  bool quiet_;
  Progress bar_;
  std::unique_ptr<SignatureWriter> writer_;
  uint32_t total_ = 0;
  size_t already_ = 0, written_ = 0;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

class CheckpointBackend : public Backend {
 public:
  CheckpointBackend(Subject& s, const CollectSettings& settings) : s_(s), settings_(settings) {}
  ~CheckpointBackend() override {
    if (runner_ != nullptr && plugin_ != nullptr) plugin_->close_runner(runner_);
  }

  Result<std::string> cache_key() override {
    std::string key = file_key(s_.source()) + "\n" + settings_.device + "\n" + settings_.dtype;
    if (!settings_.tokenizer.empty()) key += "\ntokenizer " + settings_.tokenizer;
    return key;
  }

  Status collect(const CollectTarget& target) override {
    if (target.dry_run != nullptr) {
      return invalid_argument(s_.spec() +
                              " is a checkpoint: a dry run estimates what an "
                              "endpoint's requests cost");
    }
    PROV_RETURN_IF_ERROR(load());
    SignatureSink sink(target, s_.name(), settings_.quiet);
    CheckpointCollect what;
    what.suite_spec = target.suite_spec;
    what.begin = [&](const SignatureHeader& h, std::vector<bool>* skip) {
      return sink.begin(h, skip);
    };
    what.record = [&](const ProbeRecord& r) { return sink.record(r); };
    what.progress = [&](size_t d, size_t n) { sink.progress(d, n); };
    return sink.finish(plugin_->collect(runner_, what).with_context(s_.spec()));
  }

 private:
  // Loads the checkpoint into the runtime on first use, once.
  Status load() {
    if (runner_ != nullptr) return Status::ok();
    PROV_ASSIGN_OR_RETURN(plugin_, torch_plugin());
    CheckpointRun run;
    PROV_ASSIGN_OR_RETURN(run.model, s_.model());
    PROV_ASSIGN_OR_RETURN(run.model_digest, s_.digest());
    run.path = s_.spec();
    run.tokenizer = settings_.tokenizer;
    run.device = settings_.device;
    run.dtype = settings_.dtype;
    run.batch = settings_.batch;
    run.tool_version = kProvVersion;
    Status error;
    runner_ = plugin_->open_runner(run, &error);
    if (runner_ == nullptr) {
      return (error.is_ok() ? internal_error("the plugin loaded no model") : error)
          .with_context(s_.spec());
    }
    return Status::ok();
  }

  Subject& s_;
  const CollectSettings& settings_;
  const TorchPluginV1* plugin_ = nullptr;
  void* runner_ = nullptr;
};

// The records already in `output` (a resumed collection skips them): one flag per probe.
Result<std::vector<bool>> collected_already(const CollectTarget& target, size_t n) {
  std::vector<bool> skip(n, false);
  std::error_code ec;
  if (!target.resume || !fs::exists(target.output, ec)) return skip;
  PROV_ASSIGN_OR_RETURN(Signature sig, read_signature(target.output));
  for (const auto& r : sig.records) {
    if (r.index < n) skip[r.index] = true;
  }
  return skip;
}

class EndpointBackend : public Backend {
 public:
  EndpointBackend(Subject& s, const CollectSettings& settings) : s_(s), settings_(settings) {}

  Result<std::string> cache_key() override {
    const EndpointSettings& e = settings_.endpoint;
    std::string key =
        "endpoint\n" + s_.source() + "\n" + s_.endpoint_model() + "\n" + (e.chat ? "chat" : "");
    if (e.dialect != "openai") key += "\ndialect " + e.dialect;
    if (!tokenizer_path().empty()) key += "\ntokenizer " + tokenizer_path();
    return key;
  }

  Status collect(const CollectTarget& target) override {
    PROV_ASSIGN_OR_RETURN(auto client, open_client());
    const Suite& suite = *target.suite;
    uint32_t top_k = 0;
    for (const auto& p : suite.probes) top_k = std::max<uint32_t>(top_k, p.top_k);
    if (target.dry_run != nullptr) {
      PROV_ASSIGN_OR_RETURN(std::vector<bool> skip, collected_already(target, suite.probes.size()));
      *target.dry_run = client->estimate(suite, skip);
      return Status::ok();
    }
    PROV_ASSIGN_OR_RETURN(EngineInfo info, client->discover(top_k));
    SignatureHeader h = header(suite, info);
    h.top_k = top_k;
    if (!settings_.quiet) {
      for (const auto& note : notes_)
        std::fprintf(stderr, "prov %s: note: %s\n", target.what.c_str(), note.c_str());
      for (const auto& note : info.notes) {
        std::fprintf(stderr, "prov %s: note: %s\n", target.what.c_str(), note.c_str());
      }
    }
    SignatureSink sink(target, s_.name(), settings_.quiet);
    std::vector<bool> skip;
    Status st = sink.begin(h, &skip);
    if (st.is_ok()) {
      st = client->run_suite(
          suite, skip, [&](const ProbeRecord& r) { return sink.record(r); },
          [&](size_t d, size_t n) { sink.progress(d, n); });
    }
    return sink.finish(st);
  }

 private:
  Result<std::unique_ptr<EndpointClient>> open_client() {
    const EndpointSettings& e = settings_.endpoint;
    EndpointOptions eo;
    eo.base_url = s_.source();
    eo.model_name = s_.endpoint_model();
    PROV_ASSIGN_OR_RETURN(eo.dialect, parse_dialect(e.dialect));
    eo.chat = e.chat;
    eo.concurrency = e.concurrency;
    eo.timeout_s = e.timeout_s;
    eo.max_retries = e.retries;
    eo.rate_limit_rps = e.rate;
    eo.max_requests = e.max_requests;
    eo.max_tokens_total = e.max_tokens_total;
    if (!e.api_key_env.empty()) {
      const char* key = std::getenv(e.api_key_env.c_str());
      if (key == nullptr || *key == '\0') {
        return invalid_argument("--api-key-env: environment variable " + e.api_key_env +
                                " is not set or empty");
      }
      eo.api_key = key;
    }
    if (!tokenizer_path().empty() && tokenizer_ == nullptr) {
      PROV_ASSIGN_OR_RETURN(tokenizer_, model::open_tokenizer_for(tokenizer_path(), ""));
    }
    eo.tokenizer = tokenizer_.get();
    return EndpointClient::create(eo);
  }

  // The header of this endpoint's signature: the engine as discover() found it, and the
  // tokenizer's identity when the records carry the engine's ids of that tokenizer.
  SignatureHeader header(const Suite& suite, const EngineInfo& info) {
    SignatureHeader h;
    h.tool_version = kProvVersion;
    h.source = "endpoint";
    h.model_name = s_.endpoint_model();
    h.endpoint_url = s_.source();
    h.suite_name = suite.name;
    h.suite_version = suite.version;
    h.suite_digest = suite_digest(suite);
    h.num_probes = static_cast<uint32_t>(suite.probes.size());
    const bool legacy = settings_.endpoint.dialect == "openai";
    h.device = legacy ? (settings_.endpoint.chat ? "endpoint:chat" : "endpoint:completions")
                      : "endpoint:" + info.api;
    h.engine = info.engine;
    h.engine_version = info.version;
    h.api = info.api;
    h.logprob_mode = info.logprob_mode;
    h.top_k_limit = info.top_k_limit;
    h.prompt_logprobs = info.prompt_logprobs;
    h.token_ids = info.token_ids;
    notes_.clear();
    if (h.token_ids && tokenizer_ != nullptr) {
      h.tokenizer = tokenizer_identity(*tokenizer_);
      h.vocab_size = served_vocab_size();
    } else if (tokenizer_ != nullptr) {
      notes_.push_back("--tokenizer " + tokenizer_path() +
                       " is not recorded: the engine returns no token ids through this API, so "
                       "token-level statistics are unavailable (text-level only)");
    } else if (h.token_ids) {
      notes_.push_back(
          "the engine's token ids are recorded, but no --tokenizer names their "
          "vocabulary: token-level statistics need it (text-level only)");
    }
    return h;
  }

  // The vocabulary size a local signature of the served model records: its config.json's
  // vocab_size when --tokenizer names the model's directory (the output layer may be padded past
  // the tokenizer), else the tokenizer's.
  int32_t served_vocab_size() const {
    std::error_code ec;
    const fs::path cfg = fs::path(tokenizer_path()) / "config.json";
    if (fs::is_regular_file(cfg, ec)) {
      auto j = model::read_json_file(cfg.string(), 1 << 20);
      if (j.is_ok() && j->is_object() && j->contains("vocab_size") &&
          (*j)["vocab_size"].is_number_integer()) {
        const int64_t v = (*j)["vocab_size"].get<int64_t>();
        if (v > 0 && v <= INT32_MAX) return static_cast<int32_t>(v);
      }
    }
    return tokenizer_->vocab_size();
  }

  const std::string& tokenizer_path() const {
    return settings_.endpoint.tokenizer.empty() ? settings_.tokenizer
                                                : settings_.endpoint.tokenizer;
  }

  Subject& s_;
  const CollectSettings& settings_;
  std::unique_ptr<model::Tokenizer> tokenizer_;
  std::vector<std::string> notes_;
};

}  // namespace

Status check_signature_suite(const Signature& sig, const std::string& what, const Suite& suite) {
  const std::string digest = suite_digest(suite);
  if (sig.header.suite_digest == digest) return Status::ok();
  return invalid_argument(what + " is a signature of suite " + sig.header.suite_name + " " +
                          sig.header.suite_version + " (digest " +
                          sig.header.suite_digest.substr(0, 12) + "), not of " + suite.name +
                          " (digest " + digest.substr(0, 12) + ")");
}

Result<std::unique_ptr<Backend>> open_backend(Subject& subject, const CollectSettings& settings) {
  switch (subject.kind()) {
    case SubjectKind::kCheckpoint:
      return std::unique_ptr<Backend>(new CheckpointBackend(subject, settings));
    case SubjectKind::kEndpoint:
      return std::unique_ptr<Backend>(new EndpointBackend(subject, settings));
    case SubjectKind::kSignatureFile:
      break;
  }
  return invalid_argument(subject.spec() +
                          " is a signature file: its answers are read, not collected");
}

Result<std::string> signature_cache_dir(const CollectSettings& settings) {
  std::string dir = settings.cache_dir;
  if (dir.empty()) {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    if (xdg != nullptr && *xdg != '\0') {
      dir = std::string(xdg) + "/prov/signatures";
    } else if (home != nullptr && *home != '\0') {
      dir = std::string(home) + "/.cache/prov/signatures";
    } else {
      return invalid_argument("no signature cache: set --cache, XDG_CACHE_HOME or HOME");
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error("cannot create the signature cache " + dir + ": " + ec.message());
  return dir;
}

Result<Backend*> Collector::backend(Subject& subject) {
  auto it = backends_.find(&subject);
  if (it != backends_.end()) return it->second.get();
  PROV_ASSIGN_OR_RETURN(auto b, open_backend(subject, settings_));
  Backend* raw = b.get();
  backends_.emplace(&subject, std::move(b));
  return raw;
}

Result<Signature> Collector::signature(Subject& subject, const std::string& suite_spec,
                                       const Suite& suite) {
  if (subject.kind() == SubjectKind::kSignatureFile) {
    PROV_ASSIGN_OR_RETURN(const Signature* sig, subject.signature_file());
    PROV_RETURN_IF_ERROR(check_signature_suite(*sig, subject.spec(), suite));
    return *sig;
  }
  PROV_ASSIGN_OR_RETURN(Backend * b, backend(subject));
  PROV_ASSIGN_OR_RETURN(std::string dir, signature_cache_dir(settings_));
  PROV_ASSIGN_OR_RETURN(std::string key, b->cache_key());
  const std::string digest = suite_digest(suite);
  const std::string out = dir + "/" + to_hex(sha256(key + "\n" + digest)).substr(0, 32) + ".sig";
  if (is_signature_file(out)) {
    auto sig = read_signature(out);
    if (sig.is_ok() && sig->complete()) return std::move(*sig);  // else completed below (resume)
  }
  CollectTarget target;
  target.suite_spec = suite_spec;
  target.suite = &suite;
  target.output = out;
  target.what = "signature";
  target.restart_mismatched = true;
  PROV_RETURN_IF_ERROR(b->collect(target).with_context("collecting the signature of " +
                                                       subject.spec() + " on " + suite.name));
  return read_signature(out);
}

Status Collector::collect_to(Subject& subject, const CollectTarget& target) {
  PROV_ASSIGN_OR_RETURN(Backend * b, backend(subject));
  return b->collect(target);
}

Status collect_probe(ProbeJob& job) {
  if (!job.endpoint.empty() && !job.model.empty()) {
    return invalid_argument("give MODEL or --endpoint, not both");
  }
  if (job.endpoint.empty() && job.model.empty()) {
    return invalid_argument("give a MODEL path or --endpoint URL");
  }
  if (!job.endpoint.empty() && job.model_name.empty()) {
    return invalid_argument("--endpoint needs --model-name");
  }
  SubjectSet subjects;
  PROV_ASSIGN_OR_RETURN(
      Subject * subject,
      subjects.add(job.endpoint.empty() ? job.model : job.endpoint, job.model_name));
  if (subject->kind() == SubjectKind::kSignatureFile) {
    return invalid_argument(job.model + " is a signature file, not a model");
  }
  std::optional<Suite> suite;
  if (!job.endpoint.empty()) {
    PROV_ASSIGN_OR_RETURN(suite, resolve_suite(job.target.suite_spec, 0));
  }
  job.target.suite = suite ? &*suite : nullptr;
  job.target.what = "probe";
  Collector collector(job.settings);
  Status st = collector.collect_to(*subject, job.target);
  job.target.suite = nullptr;
  return st;
}

}  // namespace prov::probes
