// The shape of the source tree (docs/architecture.md): the dependency direction between modules,
// and cli/ as thin adapters. Reads the sources under PROV_SOURCE_DIR.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const fs::path kRoot = PROV_SOURCE_DIR;

// Which modules each module may include (its own included). Everything not listed here (tests,
// bench, fuzz) may include anything.
const std::map<std::string, std::set<std::string>> kAllowed = {
    {"core", {"core"}},
    {"proto", {"core", "proto"}},
    {"model", {"core", "model"}},
    {"store", {"core", "store"}},
    {"probes", {"core", "model", "probes"}},
    {"zoo", {"core", "model", "zoo"}},
    {"fingerprint", {"core", "proto", "model", "probes", "fingerprint"}},
    {"lineage", {"core", "model", "probes", "fingerprint", "store", "lineage"}},
    {"cli", {"core", "proto", "model", "store", "probes", "zoo", "fingerprint", "lineage", "cli"}},
};

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> sources(const std::string& module) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(kRoot / module)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".h" || ext == ".cpp" || ext == ".cu")) {
      out.push_back(e.path());
    }
  }
  return out;
}

TEST(Architecture, NoModuleIncludesAModuleAboveIt) {
  const std::regex include(R"re(^\s*#\s*include\s*"([a-z_]+)/)re");
  int checked = 0;
  for (const auto& [module, allowed] : kAllowed) {
    for (const auto& file : sources(module)) {
      std::istringstream in(read(file));
      std::string line;
      int n = 0;
      while (std::getline(in, line)) {
        ++n;
        std::smatch m;
        if (!std::regex_search(line, m, include)) continue;
        ++checked;
        EXPECT_TRUE(allowed.count(m[1].str()))
            << fs::relative(file, kRoot).string() << ":" << n << " includes " << m[1].str()
            << "/, a module " << module << "/ must not depend on";
      }
    }
  }
  EXPECT_GT(checked, 200);  // the scan saw the tree
}

// Lines of each function defined at namespace level in `text` (a brace scanner that skips
// comments, strings and character literals; namespace, struct, class and enum bodies are not
// functions, their contents are scanned).
std::vector<std::pair<std::string, int>> function_lengths(const std::string& text) {
  std::vector<std::pair<std::string, int>> out;
  std::vector<bool> stack;  // per open brace: is it a function body (or inside one)?
  std::string header;       // text since the last ';', '{' or '}' at the current level
  int line = 1, start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i < text.size() && text[i] != '\n') ++i;
      ++line;
      continue;
    }
    if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      for (i += 2; i + 1 < text.size() && !(text[i] == '*' && text[i + 1] == '/'); ++i) {
        if (text[i] == '\n') ++line;
      }
      ++i;
      continue;
    }
    if (c == 'R' && i + 2 < text.size() && text[i + 1] == '"') {  // raw string R"d(...)d"
      const size_t open = text.find('(', i);
      const std::string delim = ")" + text.substr(i + 2, open - i - 2) + "\"";
      const size_t close = text.find(delim, open);
      for (size_t k = i; k < close && k < text.size(); ++k) line += text[k] == '\n';
      i = close + delim.size() - 1;
      continue;
    }
    if (c == '"' || c == '\'') {
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
      }
      continue;
    }
    const bool in_function = !stack.empty() && stack.back();
    if (c == '{') {
      bool function = in_function;
      if (!in_function) {
        const std::regex block(R"re(\b(namespace|struct|class|enum|union)\b)re");
        function = header.find('(') != std::string::npos && !std::regex_search(header, block) &&
                   header.find('=') == std::string::npos;
        if (function) start = line;
      }
      stack.push_back(function);
      if (!in_function && function) header = header.substr(0, header.find('('));
      if (!function) header.clear();
      continue;
    }
    if (c == '}') {
      const bool was_function = !stack.empty() && stack.back();
      if (!stack.empty()) stack.pop_back();
      const bool now_in = !stack.empty() && stack.back();
      if (was_function && !now_in) {
        std::string name = header;
        while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) {
          name.erase(0, 1);
        }
        out.emplace_back(name, line - start + 1);
      }
      if (!now_in) header.clear();
      continue;
    }
    if (c == ';' && !in_function) {
      header.clear();
      continue;
    }
    if (!in_function) header += c;
  }
  return out;
}

TEST(Architecture, FunctionScannerCountsLines) {
  const auto f = function_lengths(
      "namespace a {\nstruct S { int x; };\n// {\nint f(int x) {\n  if (x) {\n    return \"}\";"
      "\n  }\n  return 0;\n}\n}  // namespace a\n");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].second, 6);
}

TEST(Architecture, CliIsThinAdapters) {
  int total = 0;
  for (const auto& file : sources("cli")) {
    const std::string text = read(file);
    for (char c : text) total += c == '\n';
    for (const auto& [name, lines] : function_lengths(text)) {
      EXPECT_LE(lines, 120) << fs::relative(file, kRoot).string() << ": " << name << " has "
                            << lines << " lines";
    }
  }
  EXPECT_LT(total, 3500) << "cli/ has " << total << " lines of C++";
}

}  // namespace
