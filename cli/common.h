// Shared plumbing of the prov subcommands: exit codes and error reporting.
//
// Exit codes (docs/cli.md): 0 success; 1 internal error; 2 bad input (corrupt, truncated or
// hostile file, unsupported format or architecture, missing file, bad option); 3 I/O failure.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "core/file_io.h"
#include "core/status.h"
#include "core/terminal.h"

namespace prov::cli {

enum ExitCode { kExitOk = 0, kExitInternal = 1, kExitBadInput = 2, kExitIo = 3 };

int exit_code_for(const Status& s);
// Prints "prov <command>: <status>" to stderr and returns the exit code.
int report_error(const std::string& command, const Status& s);

// Each subcommand registers itself and sets `*run` to the action to execute when chosen.
using Action = std::function<int()>;
void register_inspect(CLI::App& app, Action* run);
void register_digest(CLI::App& app, Action* run);
void register_example(CLI::App& app, Action* run);
void register_tokenize(CLI::App& app, Action* run);
void register_generate(CLI::App& app, Action* run);
void register_probe(CLI::App& app, Action* run);
void register_suite(CLI::App& app, Action* run);
void register_signature(CLI::App& app, Action* run);
void register_serve(CLI::App& app, Action* run);
void register_zoo(CLI::App& app, Action* run);
void register_compare(CLI::App& app, Action* run);
void register_ledger(CLI::App& app, Action* run);
void register_key(CLI::App& app, Action* run);
// Adds `export` under the `ledger` subcommand (cmd_export.cpp).
void register_ledger_export(CLI::App& ledger_cmd, Action* run);
void register_verify_export(CLI::App& app, Action* run);
// Adds `serve`, `cosign` and `proof` under `ledger`, and `verify-proof` (cmd_tlog.cpp).
void register_tlog(CLI::App& ledger_cmd, CLI::App& app, Action* run);
void register_sign(CLI::App& app, Action* run);  // sign, verify-model (cmd_tlog.cpp)
void register_disclosure(CLI::App& app, Action* run);
void register_verify(CLI::App& app, Action* run);
void register_audit(CLI::App& app, Action* run);
void register_lineage(CLI::App& app, Action* run);
void register_fingerprint(CLI::App& app, Action* run);
void register_bench(CLI::App& app, Action* run);
void register_demo(CLI::App& app, Action* run);

const char* tool_version();

// `s` as one POSIX shell word: unchanged when it needs no quoting, else in single quotes.
std::string shell_word(const std::string& s);

// The value of the environment variable `var` (named by an --api-key-env option); kInvalidArgument
// naming the option when it is unset or empty.
Result<std::string> api_key_from_env(const std::string& var);

// Writes `text` to `path` (created or truncated); kIo on failure.
Status write_text_file(const std::string& path, const std::string& text);

}  // namespace prov::cli
