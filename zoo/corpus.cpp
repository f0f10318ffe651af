#include "zoo/corpus.h"

#include <fstream>
#include <sstream>

namespace prov::zoo {

namespace {

Result<std::string> read_text(const std::string& path, const std::string& package) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return not_found(path + " is missing" +
                     (package.empty() ? "" : " (install the Debian package " + package + ")"));
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::vector<std::string> corpus_packages() {
  return {"wordnet-base", "fortunes-min"};
}

Result<std::vector<std::string>> load_corpus_package(const std::string& name) {
  std::vector<std::string> docs;
  if (name == "wordnet-base") {
    for (const char* pos : {"noun", "verb", "adj", "adv"}) {
      PROV_ASSIGN_OR_RETURN(std::string text,
                            read_text(std::string("/usr/share/wordnet/data.") + pos, name));
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty() || line[0] == ' ') continue;  // the license header lines
        // "offset lex_filenum ss_type w_cnt word lex_id ... | gloss"
        const size_t bar = line.find(" | ");
        if (bar == std::string::npos) continue;
        std::istringstream fields(line.substr(0, bar));
        std::string offset, lexfile, type, count, word;
        fields >> offset >> lexfile >> type >> count >> word;
        for (char& c : word) {
          if (c == '_') c = ' ';
        }
        std::string gloss = trim(line.substr(bar + 3));
        if (word.empty() || gloss.empty()) continue;
        docs.push_back(word + ": " + gloss);
      }
    }
  } else if (name == "fortunes-min") {
    PROV_ASSIGN_OR_RETURN(std::string text, read_text("/usr/share/games/fortunes/fortunes", name));
    std::istringstream in(text);
    std::string line, cur;
    while (std::getline(in, line)) {
      if (line == "%") {
        if (!trim(cur).empty()) docs.push_back(trim(cur));
        cur.clear();
      } else {
        cur += (cur.empty() ? "" : "\n") + line;
      }
    }
    if (!trim(cur).empty()) docs.push_back(trim(cur));
  } else {
    std::string names;
    for (const auto& n : corpus_packages()) names += (names.empty() ? "" : ", ") + n;
    return not_found("unknown corpus package " + name + " (known: " + names + ")");
  }
  if (docs.empty()) return not_found("corpus package " + name + " has no documents");
  return docs;
}

Result<std::vector<std::string>> load_corpus_file(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(std::string text, read_text(path, ""));
  std::vector<std::string> docs;
  const bool paragraphs = text.find("\n\n") != std::string::npos;
  std::istringstream in(text);
  std::string line, cur;
  while (std::getline(in, line)) {
    if (!paragraphs) {
      if (!trim(line).empty()) docs.push_back(trim(line));
      continue;
    }
    if (trim(line).empty()) {
      if (!trim(cur).empty()) docs.push_back(trim(cur));
      cur.clear();
    } else {
      cur += (cur.empty() ? "" : "\n") + line;
    }
  }
  if (!trim(cur).empty()) docs.push_back(trim(cur));
  if (docs.empty()) return invalid_argument(path + ": the corpus file has no text");
  return docs;
}

void split_halves(const std::vector<std::string>& docs, std::vector<std::string>* a,
                  std::vector<std::string>* b) {
  a->clear();
  b->clear();
  for (size_t i = 0; i < docs.size(); ++i) (i % 2 == 0 ? a : b)->push_back(docs[i]);
}

}  // namespace prov::zoo
