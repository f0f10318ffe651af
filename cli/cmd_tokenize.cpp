// prov tokenize MODEL_OR_TOKENIZER --text T [--json] [--special]: text -> ids -> text.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "model/tokenizers/find_tokenizer.h"

namespace prov::cli {

namespace {

struct TokenizeOptions {
  std::string path;
  std::string text;
  bool json = false;
  bool special = false;
};

int run_tokenize(const TokenizeOptions& o) {
  auto tok = model::open_tokenizer_for(o.path, "");
  if (!tok.is_ok()) return report_error("tokenize", tok.status());
  auto ids = (*tok)->encode(o.text, o.special);
  if (!ids.is_ok()) return report_error("tokenize", ids.status());
  auto decoded = (*tok)->decode(*ids, false);
  if (!decoded.is_ok()) return report_error("tokenize", decoded.status());
  if (o.json) {
    nlohmann::json tokens = nlohmann::json::array();
    for (int32_t id : *ids) {
      auto piece = (*tok)->id_to_token(id);
      tokens.push_back(piece ? *piece : "");
    }
    nlohmann::json j = {
        {"kind", (*tok)->kind()}, {"ids", *ids}, {"tokens", tokens}, {"decoded", *decoded}};
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  std::cout << "ids (" << ids->size() << "):";
  for (int32_t id : *ids) std::cout << " " << id;
  std::cout << "\ndecoded: " << *decoded << "\n";
  return kExitOk;
}

}  // namespace

void register_tokenize(CLI::App& app, Action* run) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* cmd =
      app.add_subcommand("tokenize", "Encode text with a model's tokenizer and decode it back");
  cmd->add_option(
         "MODEL_OR_TOKENIZER", opts->path,
         "model (dir, .gguf, llama2.c .bin) or tokenizer (tokenizer.json, tok*.bin, GPT-2 dir)")
      ->required();
  cmd->add_option("--text", opts->text, "text to encode")->required();
  cmd->add_flag("--special", opts->special,
                "add the special tokens the tokenizer's template adds (BOS)");
  cmd->add_flag("--json", opts->json, "Print JSON: kind, ids, tokens, decoded");
  cmd->callback([opts, run] { *run = [opts] { return run_tokenize(*opts); }; });
}

}  // namespace prov::cli
