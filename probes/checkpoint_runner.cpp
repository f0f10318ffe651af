#include "probes/checkpoint_runner.h"

#include <algorithm>

#include "model/tokenizers/find_tokenizer.h"
#include "probes/runner.h"
#include "probes/subject.h"
#include "probes/suite.h"

namespace prov::probes {

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

Result<LoadedCheckpoint> load_checkpoint(const std::string& path, const model::Model* opened,
                                         const std::string& tokenizer, const std::string& device,
                                         const std::string& dtype, bool need_tokenizer) {
  PROV_ASSIGN_OR_RETURN(auto ro, runtime_options(device, dtype));
  LoadedCheckpoint l;
  if (opened == nullptr) {
    PROV_ASSIGN_OR_RETURN(model::Model m, model::open_model(path));
    l.owned = std::make_unique<model::Model>(std::move(m));
    opened = l.owned.get();
  }
  l.model = opened;
  // The opened model names its tokenizer: no second open of the checkpoint to find it.
  auto tok = tokenizer.empty() && l.owned == nullptr ? model::load_model_tokenizer(*l.model)
                                                     : model::open_tokenizer_for(path, tokenizer);
  if (tok.is_ok()) {
    l.tokenizer = std::move(*tok);
  } else if (need_tokenizer) {
    return tok.status();
  }
  PROV_ASSIGN_OR_RETURN(l.transformer, model::Transformer::load(*l.model, ro));
  return l;
}

Result<std::unique_ptr<CheckpointRunner>> CheckpointRunner::open(const CheckpointRun& run) {
  auto r = std::unique_ptr<CheckpointRunner>(new CheckpointRunner());
  r->run_ = run;
  PROV_ASSIGN_OR_RETURN(r->loaded_, load_checkpoint(run.path, run.model, run.tokenizer, run.device,
                                                    run.dtype, false));
  return r;
}

Status CheckpointRunner::collect(const CheckpointCollect& what) {
  const model::Transformer& tf = *loaded_.transformer;
  const int32_t vocab = static_cast<int32_t>(tf.config().vocab_size);
  PROV_ASSIGN_OR_RETURN(Suite suite, resolve_suite(what.suite_spec, vocab));
  SignatureHeader h;
  h.tool_version = run_.tool_version;
  h.source = "local";
  h.model_name = run_.path;
  h.model_digest = run_.model_digest;
  h.suite_name = suite.name;
  h.suite_version = suite.version;
  h.suite_digest = suite_digest(suite);
  h.num_probes = static_cast<uint32_t>(suite.probes.size());
  for (const auto& p : suite.probes) h.top_k = std::max<uint32_t>(h.top_k, p.top_k);
  h.device = tf.options().device.str();
  h.dtype = run_.dtype == "fp32" || run_.dtype == "f32" ? "float32" : run_.dtype;
  h.vocab_size = vocab;
  if (loaded_.tokenizer) h.tokenizer = tokenizer_identity(*loaded_.tokenizer);
  LocalRunner runner(tf, loaded_.tokenizer.get(), RunnerOptions{run_.batch, 4096});
  std::vector<bool> skip;
  PROV_RETURN_IF_ERROR(what.begin(h, &skip));
  return runner.run(suite, skip, what.record, what.progress);
}

}  // namespace prov::probes
