#include "cli/common.h"

#include <iostream>

namespace prov::cli {

int exit_code_for(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorrupt:
    case StatusCode::kUnsupported:
    case StatusCode::kNotFound:
      return kExitBadInput;
    case StatusCode::kIo:
      return kExitIo;
    case StatusCode::kInternal:
      return kExitInternal;
  }
  return kExitInternal;
}

int report_error(const std::string& command, const Status& s) {
  std::cerr << "prov " << command << ": " << s.to_string() << "\n";
  return exit_code_for(s);
}

const char* tool_version() {
  return "0.1.0";
}

}  // namespace prov::cli
