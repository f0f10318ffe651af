// tokenizer_identity (subject.h) alone in its file: the LibTorch plugin links it without the
// signature-file code, whose protobuf descriptors must be registered once per process (by prov).
#include "core/sha256.h"
#include "probes/subject.h"

namespace prov::probes {

std::string tokenizer_identity(const model::Tokenizer& tok) {
  std::string pieces;
  for (int32_t i = 0; i < tok.vocab_size(); ++i) {
    pieces += tok.id_to_token(i).value_or("");
    pieces += '\0';
  }
  return tok.kind() + ":sha256:" + to_hex(sha256(pieces)).substr(0, 16);
}

}  // namespace prov::probes
