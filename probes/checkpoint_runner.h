// The LibTorch side of a checkpoint's signature collection (it runs inside the plugin,
// probes/plugin.h): a checkpoint loaded into the runtime once, then any number of suites run on
// it into signature records. Also the loader the plugin's commands share (serve, suite build).
//
// Thread safety: a CheckpointRunner is used by one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "model/formats/model.h"
#include "model/runtime/runtime.h"
#include "model/tokenizers/tokenizer.h"
#include "probes/plugin.h"

namespace prov::probes {

// The runtime options for --device (cpu, cuda) and --dtype (float32, bfloat16, float16);
// kInvalidArgument naming the option otherwise.
Result<model::RuntimeOptions> runtime_options(const std::string& device, const std::string& dtype);

// A checkpoint in the runtime, with its tokenizer when one is found (required when
// `need_tokenizer`). `opened` is the model already opened by the caller (not copied: it must
// outlive the result), or null to open `path` here.
struct LoadedCheckpoint {
  std::unique_ptr<model::Model> owned;  // when opened here
  const model::Model* model = nullptr;
  std::unique_ptr<model::Transformer> transformer;
  std::unique_ptr<model::Tokenizer> tokenizer;
};
Result<LoadedCheckpoint> load_checkpoint(const std::string& path, const model::Model* opened,
                                         const std::string& tokenizer, const std::string& device,
                                         const std::string& dtype, bool need_tokenizer);

class CheckpointRunner {
 public:
  static Result<std::unique_ptr<CheckpointRunner>> open(const CheckpointRun& run);
  // Runs the suite named by what.suite_spec, reporting the header and records through `what`.
  Status collect(const CheckpointCollect& what);

 private:
  CheckpointRun run_;
  LoadedCheckpoint loaded_;
};

}  // namespace prov::probes
