#include "lineage/base_model_hints.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "core/file_io.h"
#include "core/json.h"
#include "model/formats/gguf.h"
#include "store/export.h"

namespace prov::lineage {

namespace {

namespace fs = std::filesystem;

void add_hint(std::vector<std::string>* out, std::string v) {
  const std::string hub = "https://huggingface.co/";
  if (v.rfind(hub, 0) == 0) v = v.substr(hub.size());
  while (!v.empty() && v.back() == '/') v.pop_back();
  if (store::is_hf_repo_id(v) && std::find(out->begin(), out->end(), v) == out->end()) {
    out->push_back(v);
  }
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// A YAML scalar as written on one line: quotes removed, a trailing comment dropped.
std::string yaml_scalar(std::string v) {
  v = trim(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'')) {
    size_t end = v.find(v.front(), 1);
    return end == std::string::npos ? v.substr(1) : v.substr(1, end - 1);
  }
  size_t hash = v.find(" #");
  return trim(hash == std::string::npos ? v : v.substr(0, hash));
}

// `base_model` of the card's front matter: `base_model: X`, `base_model: [X, Y]` or a block list.
std::vector<std::string> card_hints(const std::string& text) {
  std::vector<std::string> out;
  if (text.rfind("---", 0) != 0) return out;
  size_t pos = text.find('\n');
  bool in_list = false;
  while (pos != std::string::npos && pos + 1 < text.size()) {
    size_t next = text.find('\n', pos + 1);
    std::string line =
        text.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    pos = next;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "---" || line == "...") break;
    if (in_list) {
      std::string t = trim(line);
      if (t.rfind("- ", 0) == 0) {
        add_hint(&out, yaml_scalar(t.substr(2)));
        continue;
      }
      if (t.empty() || t[0] == '#') continue;
      in_list = false;
    }
    if (line.rfind("base_model:", 0) != 0) continue;
    std::string value = trim(line.substr(11));
    if (value.empty() || value[0] == '#') {
      in_list = true;
    } else if (value[0] == '[') {
      value = value.substr(
          1, value.find(']') == std::string::npos ? std::string::npos : value.find(']') - 1);
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        add_hint(&out, yaml_scalar(value.substr(
                           start, comma == std::string::npos ? std::string::npos : comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      add_hint(&out, yaml_scalar(value));
    }
  }
  return out;
}

Result<std::vector<std::string>> gguf_hints(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(model::GgufFile f, model::read_gguf_file(path));
  std::vector<std::string> out;
  auto str = [&](const std::string& key) {
    const model::GgufValue* v = f.get(key);
    const std::string* s = v ? v->as_string() : nullptr;
    return s ? *s : std::string();
  };
  uint64_t count = 0;
  if (const model::GgufValue* c = f.get("general.base_model.count")) {
    count = std::min<uint64_t>(c->as_uint().value_or(0), 64);
  }
  for (uint64_t n = 0; n < count; ++n) {
    const std::string key = "general.base_model." + std::to_string(n) + ".";
    const std::string url = str(key + "repo_url");
    if (!url.empty()) {
      add_hint(&out, url);
    } else if (!str(key + "organization").empty() && !str(key + "name").empty()) {
      add_hint(&out, str(key + "organization") + "/" + str(key + "name"));
    }
  }
  add_hint(&out, str("general.source.huggingface.repository"));
  add_hint(&out, str("general.source.repo_url"));
  return out;
}

Result<std::vector<std::string>> config_hints(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(std::string text, read_small_file(path, "config.json"));
  PROV_ASSIGN_OR_RETURN(nlohmann::json config, parse_json(text, path));
  std::vector<std::string> out;
  if (config.is_object() && config.contains("_name_or_path") &&
      config["_name_or_path"].is_string()) {
    add_hint(&out, config["_name_or_path"].get<std::string>());
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> base_model_hints(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found(path + ": no such file or directory");
  if (!fs::is_directory(path, ec)) {
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) return gguf_hints(path);
    return std::vector<std::string>{};
  }
  const fs::path dir(path);
  if (fs::is_regular_file(dir / "README.md", ec)) {
    auto card = read_small_file((dir / "README.md").string(), "model card");
    if (card.is_ok()) {
      auto hints = card_hints(*card);
      if (!hints.empty()) return hints;
    }
  }
  std::vector<std::string> ggufs;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".gguf") ggufs.push_back(e.path().string());
  }
  std::sort(ggufs.begin(), ggufs.end());
  if (!ggufs.empty()) {
    PROV_ASSIGN_OR_RETURN(auto hints, gguf_hints(ggufs.front()));
    if (!hints.empty()) return hints;
  }
  if (fs::is_regular_file(dir / "config.json", ec))
    return config_hints((dir / "config.json").string());
  return std::vector<std::string>{};
}

}  // namespace prov::lineage
