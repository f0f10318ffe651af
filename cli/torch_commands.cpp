// The LibTorch side of the prov CLI, built as a shared library that `prov` loads on demand
// (torch_plugin.h): loading LibTorch costs most of a second, which commands such as inspect and
// digest should not pay.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/model_tokenizer.h"
#include "cli/torch_plugin.h"
#include "model/generate.h"
#include "model/model.h"
#include "model/runtime.h"

namespace prov::cli {

namespace {

int run_generate(const GenerateOptions& o) {
  const bool have_prompt = o.have_prompt;
  auto m = model::open_model(o.path);
  if (!m.is_ok()) return report_error("generate", m.status());
  model::RuntimeOptions ro;
  auto dt = model::compute_dtype_from_name(o.dtype);
  if (!dt)
    return report_error("generate", invalid_argument("unknown --dtype " + o.dtype +
                                                     " (float32, bfloat16, float16)"));
  ro.dtype = *dt;
  if (o.device == "cuda") {
    ro.device = torch::Device(torch::kCUDA);
  } else if (o.device != "cpu") {
    return report_error("generate",
                        invalid_argument("unknown --device " + o.device + " (cpu, cuda)"));
  }

  // The tokenizer is needed for a text prompt and to print text; ids alone work without one.
  auto tok = open_tokenizer_for(o.path, o.tokenizer);
  if (have_prompt && !tok.is_ok()) return report_error("generate", tok.status());

  std::vector<int64_t> prompt = o.prompt_ids;
  if (have_prompt) {
    auto ids = (*tok)->encode(o.prompt, /*add_special=*/true);
    if (!ids.is_ok()) return report_error("generate", ids.status());
    prompt.assign(ids->begin(), ids->end());
  }
  auto tf = model::Transformer::load(*m, ro);
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

}  // namespace

}  // namespace prov::cli

extern "C" int prov_torch_generate(const void* options) {
  try {
    return prov::cli::run_generate(*static_cast<const prov::cli::GenerateOptions*>(options));
  } catch (const std::exception& e) {
    std::cerr << "prov generate: internal error: " << e.what() << "\n";
    return prov::cli::kExitInternal;
  }
}
