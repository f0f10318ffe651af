#include "cli/collect.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include "cli/common.h"
#include "cli/probe_common.h"
#include "cli/torch_plugin.h"
#include "core/sha256.h"
#include "fingerprint/outputs.h"
#include "probes/endpoint.h"

namespace prov::cli {

namespace fs = std::filesystem;

namespace {

// Path, size and modification time of the model's files: a changed checkpoint gets a new key.
Result<std::string> model_key(const std::string& path) {
  std::error_code ec;
  const fs::path canon = fs::canonical(path, ec);
  if (ec) return not_found("no such model: " + path);
  std::vector<std::string> parts;
  auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return;
    parts.push_back(p.string() + "\t" + std::to_string(st.st_size) + "\t" +
                    std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
  };
  if (fs::is_directory(canon)) {
    for (const auto& e : fs::directory_iterator(canon, ec)) {
      if (e.is_regular_file()) add(e.path());
    }
  } else {
    add(canon);
  }
  std::sort(parts.begin(), parts.end());
  std::string all = canon.string();
  for (const auto& p : parts) all += "\n" + p;
  return all;
}

}  // namespace

void add_collection_options(CLI::App* cmd, std::string* suite, int* xlik_probes,
                            CollectSettings* settings) {
  cmd->add_option("--suite", *suite, "probe suite of the output tests (signatures collected now)")
      ->capture_default_str();
  cmd->add_option("--xlik-probes", *xlik_probes,
                  "probes of the cross-likelihood scoring: every model scores the others' greedy "
                  "texts on this many probes (0 = none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--image-probes", settings->image_probes,
                  "probes of logit-image-v1 collected from every local model (full next-token "
                  "log-probabilities: the logit_image statistic; at least hidden size + 1 to "
                  "see the whole image; 0 = none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--cache", settings->cache_dir,
                  "where collected signatures are kept (default ~/.cache/prov/signatures)");
  cmd->add_option("--device", settings->device, "cpu or cuda (signatures collected now)")
      ->capture_default_str();
  cmd->add_option("--dtype", settings->dtype, "float32, bfloat16 or float16")
      ->capture_default_str();
  cmd->add_option("--batch", settings->batch, "sequences per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
}

bool is_signature_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  return f.gcount() == 8 && std::string(magic, 7) == "PROVSIG" && magic[7] == '\x01';
}

bool is_endpoint_spec(const std::string& spec) {
  return spec.rfind("http://", 0) == 0 || spec.rfind("https://", 0) == 0;
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

namespace {

Status check_suite(const probes::Signature& sig, const std::string& spec,
                   const probes::Suite& resolved, const std::string& digest) {
  if (sig.header.suite_digest == digest) return Status::ok();
  return invalid_argument(spec + " is a signature of suite " + sig.header.suite_name + " " +
                          sig.header.suite_version + " (digest " +
                          sig.header.suite_digest.substr(0, 12) + "), not of " + resolved.name +
                          " (digest " + digest.substr(0, 12) + ")");
}

}  // namespace

Result<probes::Signature> signature_for(const std::string& spec, const std::string& model_name,
                                        const std::string& suite, const probes::Suite& resolved,
                                        const CollectSettings& settings) {
  const std::string digest = probes::suite_digest(resolved);
  if (is_signature_file(spec)) {
    PROV_ASSIGN_OR_RETURN(auto sig, probes::read_signature(spec));
    PROV_RETURN_IF_ERROR(check_suite(sig, spec, resolved, digest));
    return sig;
  }
  PROV_ASSIGN_OR_RETURN(std::string dir, signature_cache_dir(settings));
  std::string key;
  if (is_endpoint_spec(spec)) {
    if (model_name.empty()) return invalid_argument("endpoint " + spec + " needs --model-name");
    key = "endpoint\n" + spec + "\n" + model_name + "\n" + (settings.endpoint.chat ? "chat" : "");
  } else {
    PROV_ASSIGN_OR_RETURN(key, model_key(spec));
    key += "\n" + settings.device + "\n" + settings.dtype;
  }
  const std::string out = dir + "/" + to_hex(sha256(key + "\n" + digest)).substr(0, 32) + ".sig";
  if (is_signature_file(out)) {
    auto sig = probes::read_signature(out);
    if (sig.is_ok() && sig->complete()) return std::move(*sig);  // else completed below (resume)
  }
  ProbeOptions o;
  o.suite = suite;
  o.output = out;
  o.device = settings.device;
  o.dtype = settings.dtype;
  o.batch = settings.batch;
  o.quiet = settings.quiet;
  int rc = 0;
  if (is_endpoint_spec(spec)) {
    EndpointArgs e = settings.endpoint;
    e.url = spec;
    e.model_name = model_name;
    rc = run_endpoint_probe(o, e);
  } else {
    o.path = spec;
    SignatureSink sink("probe", o.output, true, o.quiet);
    o.begin = [&](const probes::SignatureHeader& h, std::vector<bool>* skip) {
      return sink.begin(h, skip);
    };
    o.record = [&](const probes::ProbeRecord& r) { return sink.record(r); };
    o.progress = [&](size_t d, size_t n) { sink.progress(d, n); };
    rc = sink.finish(run_torch_command("probe", "prov_torch_probe", &o));
  }
  if (rc != 0) {
    return Status(
        rc == kExitIo ? StatusCode::kIo : StatusCode::kInvalidArgument,
        "collecting the signature of " + spec + " on " + resolved.name + " failed (see above)");
  }
  return probes::read_signature(out);
}

Result<std::string> cross_likelihood_suite_file(
    const probes::Suite& base, const std::vector<const probes::Signature*>& signatures,
    int xlik_probes, const CollectSettings& settings, probes::Suite* out) {
  PROV_ASSIGN_OR_RETURN(auto xs,
                        fingerprint::cross_likelihood_suite(base, signatures, xlik_probes));
  PROV_ASSIGN_OR_RETURN(std::string dir, signature_cache_dir(settings));
  const std::string path = dir + "/" + probes::suite_digest(xs).substr(0, 32) + ".jsonl";
  PROV_RETURN_IF_ERROR(probes::write_suite_file(path, xs));
  *out = std::move(xs);
  return path;
}

Result<OutputSet> collect_output_set(const OutputSetRequest& request,
                                     const CollectSettings& settings) {
  // The suite: --suite, or the one the candidate's signature file was collected on.
  const auto& o = request;
  OutputSet out;
  const std::vector<std::string>& specs = o.specs;
  auto what = [&](size_t i) { return i < o.what.size() ? o.what[i] : "control " + specs[i]; };
  std::string suite_arg = o.suite;
  std::optional<probes::Signature> first;  // specs[0] as a signature file, read once
  if (!specs.empty() && is_signature_file(specs[0])) {
    auto sig = probes::read_signature(specs[0]);
    if (!sig.is_ok()) return sig.status().with_context(what(0));
    const auto& h = sig->header;
    if (h.suite_name == "natural-v1") suite_arg = "natural-v1:" + std::to_string(h.num_probes);
    first = std::move(*sig);
  }
  auto suite = probes::resolve_suite(suite_arg, 0);
  if (!suite.is_ok()) return suite.status();
  const std::string& endpoint_name = settings.endpoint.model_name;
  std::vector<probes::Signature>& sigs = out.signatures;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (i == 0 && first) {
      Status st = check_suite(*first, specs[0], *suite, probes::suite_digest(*suite));
      if (!st.is_ok()) return st.with_context(what(0));
      sigs.push_back(std::move(*first));
      continue;
    }
    auto sig = signature_for(specs[i], is_endpoint_spec(specs[i]) ? endpoint_name : "", suite_arg,
                             *suite, settings);
    if (!sig.is_ok()) return sig.status().with_context(what(i));
    sigs.push_back(std::move(*sig));
  }
  // Given signature files (--scores, --images), each matched to a model by its digest, or its
  // endpoint and name: one per spec, null where none matched.
  auto given_for_each = [&](const std::vector<std::string>& paths, const std::string& what_files)
      -> Result<std::vector<std::unique_ptr<probes::Signature>>> {
    std::vector<probes::Signature> given;
    for (const auto& path : paths) {
      auto sig = probes::read_signature(path);
      if (!sig.is_ok()) return sig.status().with_context(what_files);
      given.push_back(std::move(*sig));
    }
    auto same_model = [](const probes::SignatureHeader& a, const probes::SignatureHeader& b) {
      if (!a.model_digest.empty()) return a.model_digest == b.model_digest;
      return !a.endpoint_url.empty() && a.endpoint_url == b.endpoint_url &&
             a.model_name == b.model_name;
    };
    std::vector<std::unique_ptr<probes::Signature>> matched(sigs.size());
    for (size_t i = 0; i < sigs.size(); ++i) {
      for (auto& g : given) {
        if (same_model(sigs[i].header, g.header)) {
          matched[i] = std::make_unique<probes::Signature>(g);
          break;
        }
      }
    }
    return matched;
  };
  // Cross-likelihood scores: given by --scores, or collected now for models and endpoints.
  PROV_ASSIGN_OR_RETURN(out.scores, given_for_each(o.scores, "scores"));
  std::unique_ptr<probes::Suite> xsuite;
  std::string xsuite_path;
  std::vector<std::unique_ptr<probes::Signature>>& scores = out.scores;
  for (size_t i = 0; i < sigs.size(); ++i) {
    if (scores[i] || !o.scores.empty() || o.xlik_probes <= 0 || is_signature_file(specs[i])) {
      continue;
    }
    if (!xsuite) {
      std::vector<const probes::Signature*> ptrs;
      for (const auto& s : sigs) ptrs.push_back(&s);
      auto xs = std::make_unique<probes::Suite>();
      auto path = cross_likelihood_suite_file(*suite, ptrs, o.xlik_probes, settings, xs.get());
      if (!path.is_ok()) return path.status();
      xsuite_path = *path;
      xsuite = std::move(xs);
    }
    auto sig = signature_for(specs[i], is_endpoint_spec(specs[i]) ? endpoint_name : "", xsuite_path,
                             *xsuite, settings);
    if (!sig.is_ok()) return sig.status().with_context("scores");
    scores[i] = std::make_unique<probes::Signature>(std::move(*sig));
  }
  // Image signatures: given by --images, or collected now from local models.
  PROV_ASSIGN_OR_RETURN(out.images, given_for_each(o.images, "image signatures"));
  const std::string image_spec = "logit-image-v1:" + std::to_string(settings.image_probes);
  std::optional<probes::Suite> image_suite;
  for (size_t i = 0; i < sigs.size(); ++i) {
    if (out.images[i] || !o.images.empty() || settings.image_probes <= 0 ||
        is_signature_file(specs[i]) || is_endpoint_spec(specs[i])) {
      continue;
    }
    if (!image_suite) image_suite = probes::logit_image_v1(settings.image_probes);
    auto sig = signature_for(specs[i], "", image_spec, *image_suite, settings);
    if (!sig.is_ok()) return sig.status().with_context(what(i) + " (logit image)");
    out.images[i] = std::make_unique<probes::Signature>(std::move(*sig));
  }
  return out;
}

int run_endpoint_probe(const ProbeOptions& o, const EndpointArgs& e) {
  if (e.model_name.empty()) {
    return report_error("probe", invalid_argument("--endpoint needs --model-name"));
  }
  auto suite = probes::resolve_suite(o.suite, 0);
  if (!suite.is_ok()) return report_error("probe", suite.status());
  probes::EndpointOptions eo;
  eo.base_url = e.url;
  eo.model_name = e.model_name;
  eo.chat = e.chat;
  eo.concurrency = e.concurrency;
  eo.timeout_s = e.timeout;
  eo.max_retries = e.retries;
  eo.rate_limit_rps = e.rate;
  if (!e.api_key_env.empty()) {
    auto key = api_key_from_env(e.api_key_env);
    if (!key.is_ok()) return report_error("probe", key.status());
    eo.api_key = *key;
  }
  auto client = probes::EndpointClient::create(eo);
  if (!client.is_ok()) return report_error("probe", client.status());

  probes::SignatureHeader h;
  h.tool_version = tool_version();
  h.source = "endpoint";
  h.model_name = e.model_name;
  h.endpoint_url = e.url;
  h.suite_name = suite->name;
  h.suite_version = suite->version;
  h.suite_digest = probes::suite_digest(*suite);
  h.num_probes = static_cast<uint32_t>(suite->probes.size());
  for (const auto& p : suite->probes) h.top_k = std::max<uint32_t>(h.top_k, p.top_k);
  h.device = e.chat ? "endpoint:chat" : "endpoint:completions";
  SignatureSink sink("probe", o.output, o.resume, o.quiet);
  std::vector<bool> skip;
  Status st = sink.begin(h, &skip);
  if (!st.is_ok()) return report_error("probe", st);
  st = (*client)->run_suite(
      *suite, skip, [&](const probes::ProbeRecord& r) { return sink.record(r); },
      [&](size_t d, size_t n) { sink.progress(d, n); });
  return sink.finish(st.is_ok() ? kExitOk : report_error("probe", st));
}

}  // namespace prov::cli
