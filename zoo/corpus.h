// Text corpora for the model zoo: Debian packages the setup installs, or a user's file.
//
//   wordnet-base   the glosses of WordNet 3.0 (/usr/share/wordnet/data.{noun,verb,adj,adv}),
//                  one document per synset: "lemma: gloss";
//   fortunes-min   the fortune cookies of /usr/share/games/fortunes/fortunes, one per document.
// A user file is split into documents at blank lines (or, with no blank line, at line ends).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace prov::zoo {

// Names accepted by load_corpus_package.
std::vector<std::string> corpus_packages();
// kNotFound when the package's files are absent (the message names the package to install).
Result<std::vector<std::string>> load_corpus_package(const std::string& name);
Result<std::vector<std::string>> load_corpus_file(const std::string& path);

// Splits documents into two halves by a fixed interleaving (even / odd positions), so both
// halves cover the whole corpus.
void split_halves(const std::vector<std::string>& docs, std::vector<std::string>* a,
                  std::vector<std::string>* b);

}  // namespace prov::zoo
