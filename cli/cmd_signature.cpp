// prov signature show FILE [--json] [--records N]
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "probes/signature.h"

namespace prov::cli {

void register_signature(CLI::App& app, Action* run) {
  CLI::App* cmd = app.add_subcommand("signature", "Inspect signature files");
  cmd->require_subcommand(1);
  struct Args {
    std::string path;
    bool json = false;
    int records = 5;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sh = cmd->add_subcommand("show", "Show a signature: header, completeness, records");
  sh->add_option("FILE", a->path, "signature file")->required();
  sh->add_flag("--json", a->json, "print the whole signature as JSON");
  sh->add_option("--records", a->records, "records to print (text mode)")->capture_default_str();
  sh->callback([run, a] {
    *run = [a]() -> int {
      bool truncated = false;
      auto sig = probes::read_signature(a->path, &truncated);
      if (!sig.is_ok()) return report_error("signature show", sig.status());
      if (a->json) {
        nlohmann::json j = probes::signature_to_json(*sig, true);
        j["truncated_tail"] = truncated;
        std::cout << j.dump(2) << "\n";
        return kExitOk;
      }
      const auto& h = sig->header;
      std::cout << "signature:  " << a->path << (sig->complete() ? " (complete)" : " (partial)")
                << (truncated ? ", truncated tail dropped" : "") << "\n"
                << "model:      " << h.model_name
                << (h.model_digest.empty() ? "" : " sha256:" + h.model_digest) << "\n";
      if (!h.endpoint_url.empty()) std::cout << "endpoint:   " << h.endpoint_url << "\n";
      std::cout << "suite:      " << h.suite_name << " v" << h.suite_version
                << " sha256:" << h.suite_digest << "\n"
                << "records:    " << sig->records.size() << " of " << h.num_probes << "\n"
                << "collected:  " << h.source << " on " << h.device
                << (h.dtype.empty() ? "" : " (" + h.dtype + ")") << ", top-k " << h.top_k
                << ", prov " << h.tool_version << "\n";
      if (!h.tokenizer.empty()) std::cout << "tokenizer:  " << h.tokenizer << "\n";
      if (!h.engine.empty()) {
        std::cout << "engine:     " << h.engine << " " << h.engine_version << " (" << h.api
                  << ", logprobs " << h.logprob_mode << ", top-k limit " << h.top_k_limit
                  << ", token ids " << (h.token_ids ? "yes" : "no") << ")\n";
      }
      for (size_t i = 0; i < sig->records.size() && static_cast<int>(i) < a->records; ++i) {
        const auto& r = sig->records[i];
        std::cout << "[" << r.index << "] " << r.probe_id;
        if (!r.positions.empty()) {
          const auto& p = r.positions[0];
          if (!std::isnan(p.entropy)) std::printf(" H=%.3f", p.entropy);
          std::cout << " top:";
          for (size_t k = 0; k < p.top.logprobs.size() && k < 5; ++k) {
            std::string tok =
                k < p.top.tokens.size() ? p.top.tokens[k] : "#" + std::to_string(p.top.ids[k]);
            std::printf(" %s(%.3f)",
                        nlohmann::json(tok)
                            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                            .c_str(),
                        p.top.logprobs[k]);
          }
          std::fflush(stdout);
        }
        if (!r.continuation_text.empty()) {
          std::cout << " greedy: "
                    << nlohmann::json(r.continuation_text)
                           .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
        std::cout << "\n";
      }
      return kExitOk;
    };
  });
}

}  // namespace prov::cli
