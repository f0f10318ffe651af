// Signatures on demand, for the commands that compare outputs (prov compare --outputs-only,
// prov audit --controls): a model argument may be a signature file, a local checkpoint (its
// signature is collected through the LibTorch plugin into a cache and reused), or an
// OpenAI-compatible endpoint URL (probed over HTTP into the same cache).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/status.h"
#include "probes/signature.h"
#include "probes/suite.h"

namespace prov::cli {

struct EndpointArgs {
  std::string url;
  std::string model_name;
  std::string api_key_env;
  bool chat = false;
  int concurrency = 8;
  double timeout = 60;
  int retries = 5;
  double rate = 0;
};

struct CollectSettings {
  std::string cache_dir;  // "" = $XDG_CACHE_HOME/prov/signatures or ~/.cache/prov/signatures
  std::string device = "cpu";
  std::string dtype = "float32";
  int batch = 16;
  bool quiet = true;
  // Probes of logit-image-v1 collected from every local model for the logit_image statistic
  // (0 = none; --image-probes).
  int image_probes = 256;
  EndpointArgs endpoint;  // url / model_name are filled per call for endpoint arguments
};

// Registers the options of signatures collected now, spelled and meant the same in every command
// that runs output tests: --suite, --xlik-probes, --cache, --device, --dtype, --batch.
void add_collection_options(CLI::App* cmd, std::string* suite, int* xlik_probes,
                            CollectSettings* settings);

// True when `path` is a regular file that starts with the signature magic.
bool is_signature_file(const std::string& path);
// True for "http://..." and "https://..." arguments.
bool is_endpoint_spec(const std::string& spec);

// The signature of `spec` on `suite` (a built-in spec such as "natural-v1:1000" or a JSONL path;
// `resolved` is that suite), read once: `spec` itself when it is a signature file (whose suite must
// be `resolved`), else a file in the cache named by the model's path, size and modification times
// (or the endpoint URL and model name), the suite digest, device and dtype, collected or
// completed now. For endpoints `model_name` names the served model. Failures name `spec`.
Result<probes::Signature> signature_for(const std::string& spec, const std::string& model_name,
                                        const std::string& suite, const probes::Suite& resolved,
                                        const CollectSettings& settings);

// The cache directory (created when missing).
Result<std::string> signature_cache_dir(const CollectSettings& settings);

// The cross-likelihood suite of `signatures` on `base` (fingerprint::cross_likelihood_suite, the
// first `xlik_probes` probes) written into the signature cache; returns its path and fills
// `*out` with it. A model's scores of it are signature_for(model, "", path, *out, settings).
Result<std::string> cross_likelihood_suite_file(
    const probes::Suite& base, const std::vector<const probes::Signature*>& signatures,
    int xlik_probes, const CollectSettings& settings, probes::Suite* out);

// Signatures (and cross-likelihood scores) of several models on one suite, for the output tests.
struct OutputSetRequest {
  std::vector<std::string> specs;  // model paths, signature files or endpoint URLs
  std::vector<std::string> what;   // names for messages ("candidate", ...); the rest "control"
  // Built-in spec or JSONL path; when specs[0] is a natural-v1 signature file, its size wins.
  std::string suite = "natural-v1:1000";
  // Probes on which models and endpoints score the greedy texts of all specs (0 = none). Models
  // known only by a signature file get no scores (then cross_likelihood_ratio is left out).
  int xlik_probes = 200;
  std::vector<std::string> scores;  // given score files (matched by model digest); no scoring now
  // Given image signatures (full log-probability vectors, matched by model digest); when empty,
  // logit-image-v1:settings.image_probes is collected from every spec that is a local model.
  std::vector<std::string> images;
};
struct OutputSet {
  std::vector<probes::Signature> signatures;               // one per spec
  std::vector<std::unique_ptr<probes::Signature>> scores;  // one per spec, may be null
  std::vector<std::unique_ptr<probes::Signature>> images;  // one per spec, may be null
};
Result<OutputSet> collect_output_set(const OutputSetRequest& request,
                                     const CollectSettings& settings);

// Probes an endpoint into `output` (resume as prov probe): exit code.
struct ProbeOptions;
int run_endpoint_probe(const ProbeOptions& o, const EndpointArgs& e);

}  // namespace prov::cli
