#include "probes/suite.h"

#include "core/file_io.h"
#include "core/json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string_view>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/sha256.h"

namespace prov::probes {
namespace {

using json = nlohmann::json;

constexpr int kMaxTopK = 1000;
constexpr int kMaxGreedyTokens = 4096;

// ---------------------------------------------------------------------------------------------
// Validation shared by the parser and validate_suite.

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// What is wrong with one probe's values, or "" when nothing is.
std::string probe_problem(const Probe& p) {
  if (p.id.empty()) return "\"id\" must not be empty";
  if (p.id.size() > kMaxProbeIdBytes) {
    return "\"id\" is " + std::to_string(p.id.size()) + " bytes, more than the limit of " +
           std::to_string(kMaxProbeIdBytes);
  }
  if (!valid_utf8(p.id)) return "\"id\" is not valid UTF-8";
  if (p.text.has_value() == p.ids.has_value()) {
    return p.text ? "has both \"text\" and \"ids\" (exactly one is allowed)"
                  : "has neither \"text\" nor \"ids\" (exactly one is required)";
  }
  if (p.text) {
    if (p.text->empty()) return "\"text\" must not be empty";
    if (!valid_utf8(*p.text)) return "\"text\" is not valid UTF-8";
  }
  if (p.ids) {
    if (p.ids->empty()) return "\"ids\" must not be empty";
    for (size_t i = 0; i < p.ids->size(); ++i) {
      if ((*p.ids)[i] < 0) {
        return "\"ids\"[" + std::to_string(i) + "] is " + std::to_string((*p.ids)[i]) +
               " (token ids are >= 0)";
      }
    }
  }
  if (p.top_k < 0 || p.top_k > kMaxTopK) {
    return "\"top_k\" " + std::to_string(p.top_k) + " is out of range 0.." +
           std::to_string(kMaxTopK);
  }
  if (p.greedy_tokens < 0 || p.greedy_tokens > kMaxGreedyTokens) {
    return "\"greedy_tokens\" " + std::to_string(p.greedy_tokens) + " is out of range 0.." +
           std::to_string(kMaxGreedyTokens);
  }
  if (p.continuation && !valid_utf8(*p.continuation)) return "\"continuation\" is not valid UTF-8";
  for (size_t i = 0; i < p.score_texts.size(); ++i) {
    if (!valid_utf8(p.score_texts[i])) {
      return "\"score_texts\"[" + std::to_string(i) + "] is not valid UTF-8";
    }
  }
  return "";
}

std::string header_problem(const std::string& name, const std::string& version,
                           const std::string& description) {
  if (name.empty()) return "\"suite\" (the suite name) must not be empty";
  if (!valid_utf8(name)) return "\"suite\" is not valid UTF-8";
  if (version.empty()) return "\"version\" must not be empty";
  if (!valid_utf8(version)) return "\"version\" is not valid UTF-8";
  if (!valid_utf8(description)) return "\"description\" is not valid UTF-8";
  return "";
}

// ---------------------------------------------------------------------------------------------
// JSONL parsing.

// Deepest nesting of arrays/objects on a line (outside strings), stopping early past `limit`.
int nesting_depth(std::string_view line, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

bool is_blank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

const char* json_type_name(const json& v) {
  return v.type_name();  // "null", "object", "array", "string", "boolean", "number", ...
}

class LineParser {
 public:
  explicit LineParser(std::string where) : where_(std::move(where)) {}

  Status error(StatusCode code, const std::string& what) const {
    return Status(code, where_ + ": " + probe_context_ + what);
  }

  // Parses one line into an object, rejecting syntax errors, deep nesting and duplicate keys.
  Result<json> parse_object(std::string_view line) const {
    if (nesting_depth(line, kMaxSuiteJsonDepth) > kMaxSuiteJsonDepth) {
      return error(StatusCode::kCorrupt,
                   "JSON nested deeper than " + std::to_string(kMaxSuiteJsonDepth) + " levels");
    }
    JsonLimits limits;
    limits.max_depth = kMaxSuiteJsonDepth;
    JsonFailure failure;
    auto parsed = parse_json(line, "line", limits, &failure);
    if (!parsed.is_ok()) {
      if (failure.kind == JsonFailure::kDuplicateKey) {
        return error(StatusCode::kInvalidArgument, "key \"" + failure.key + "\" appears twice");
      }
      return error(StatusCode::kCorrupt, "not valid JSON: " + failure.detail);
    }
    json value = std::move(*parsed);
    if (!value.is_object()) {
      return error(StatusCode::kInvalidArgument,
                   std::string("expected a JSON object, found ") + json_type_name(value));
    }
    return value;
  }

  Status want_string(const json& v, const char* key, std::string* out) const {
    if (!v.is_string()) {
      return error(StatusCode::kInvalidArgument,
                   std::string("\"") + key + "\" must be a string, found " + json_type_name(v));
    }
    *out = v.get<std::string>();
    return Status::ok();
  }

  Status want_bool(const json& v, const char* key, bool* out) const {
    if (!v.is_boolean()) {
      return error(
          StatusCode::kInvalidArgument,
          std::string("\"") + key + "\" must be true or false, found " + json_type_name(v));
    }
    *out = v.get<bool>();
    return Status::ok();
  }

  Status want_int(const json& v, const char* key, int64_t lo, int64_t hi, int64_t* out) const {
    bool ok = false;
    int64_t x = 0;
    if (v.is_number_unsigned()) {
      // Above int64 range is out of every range here: saturate, then the range check reports it.
      const uint64_t u = v.get<uint64_t>();
      x = static_cast<int64_t>(
          std::min<uint64_t>(u, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
      ok = true;
    } else if (v.is_number_integer()) {
      x = v.get<int64_t>();
      ok = true;
    }
    if (!ok) {
      return error(StatusCode::kInvalidArgument,
                   std::string("\"") + key + "\" must be an integer, found " + json_type_name(v));
    }
    if (x < lo || x > hi) {
      return error(StatusCode::kInvalidArgument, std::string("\"") + key + "\" " + v.dump() +
                                                     " is out of range " + std::to_string(lo) +
                                                     ".." + std::to_string(hi));
    }
    *out = x;
    return Status::ok();
  }

  Status header(const json& obj, Suite* suite) const {
    bool has_name = false;
    bool has_version = false;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const std::string& key = it.key();
      if (key == "suite") {
        PROV_RETURN_IF_ERROR(want_string(it.value(), "suite", &suite->name));
        has_name = true;
      } else if (key == "version") {
        PROV_RETURN_IF_ERROR(want_string(it.value(), "version", &suite->version));
        has_version = true;
      } else if (key == "description") {
        PROV_RETURN_IF_ERROR(want_string(it.value(), "description", &suite->description));
      } else {
        std::string hint = obj.contains("id") ? " (the first line must be the suite header "
                                                "{\"suite\": ..., \"version\": ...}, found a probe)"
                                              : " (the header allows suite, version, description)";
        return error(StatusCode::kInvalidArgument,
                     "unknown key \"" + key + "\" in the header" + hint);
      }
    }
    if (!has_name || !has_version) {
      return error(StatusCode::kInvalidArgument,
                   std::string("the header line must have \"suite\" and \"version\"; \"") +
                       (has_name ? "version" : "suite") + "\" is missing");
    }
    std::string problem = header_problem(suite->name, suite->version, suite->description);
    if (!problem.empty()) return error(StatusCode::kInvalidArgument, problem);
    return Status::ok();
  }

  // Not reentrant for one LineParser: names the probe (by its id) in later messages.
  Status probe(const json& obj, Probe* p) {
    auto id = obj.find("id");
    if (id != obj.end() && id->is_string() && !id->get_ref<const std::string&>().empty() &&
        id->get_ref<const std::string&>().size() <= kMaxProbeIdBytes) {
      probe_context_ = "probe \"" + id->get<std::string>() + "\": ";
    }
    bool has_id = false;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const std::string& key = it.key();
      const json& v = it.value();
      if (key == "id") {
        PROV_RETURN_IF_ERROR(want_string(v, "id", &p->id));
        has_id = true;
      } else if (key == "text") {
        std::string s;
        PROV_RETURN_IF_ERROR(want_string(v, "text", &s));
        p->text = std::move(s);
      } else if (key == "ids") {
        if (!v.is_array()) {
          return error(
              StatusCode::kInvalidArgument,
              std::string("\"ids\" must be an array of token ids, found ") + json_type_name(v));
        }
        std::vector<int32_t> ids;
        ids.reserve(v.size());
        for (size_t i = 0; i < v.size(); ++i) {
          int64_t x = 0;
          const std::string name = "ids[" + std::to_string(i) + "]";
          PROV_RETURN_IF_ERROR(
              want_int(v[i], name.c_str(), 0, std::numeric_limits<int32_t>::max(), &x));
          ids.push_back(static_cast<int32_t>(x));
        }
        p->ids = std::move(ids);
      } else if (key == "top_k") {
        int64_t x = 0;
        PROV_RETURN_IF_ERROR(want_int(v, "top_k", 0, kMaxTopK, &x));
        p->top_k = static_cast<int>(x);
      } else if (key == "greedy_tokens") {
        int64_t x = 0;
        PROV_RETURN_IF_ERROR(want_int(v, "greedy_tokens", 0, kMaxGreedyTokens, &x));
        p->greedy_tokens = static_cast<int>(x);
      } else if (key == "full_stats") {
        PROV_RETURN_IF_ERROR(want_bool(v, "full_stats", &p->full_stats));
      } else if (key == "full_logprobs") {
        PROV_RETURN_IF_ERROR(want_bool(v, "full_logprobs", &p->full_logprobs));
      } else if (key == "continuation") {
        if (v.is_null()) {
          p->continuation.reset();
        } else {
          std::string s;
          PROV_RETURN_IF_ERROR(want_string(v, "continuation", &s));
          p->continuation = std::move(s);
        }
      } else if (key == "score_texts") {
        if (!v.is_array()) {
          return error(StatusCode::kInvalidArgument,
                       std::string("\"score_texts\" must be an array of strings, found ") +
                           json_type_name(v));
        }
        p->score_texts.clear();
        for (size_t i = 0; i < v.size(); ++i) {
          std::string s;
          const std::string name = "score_texts[" + std::to_string(i) + "]";
          PROV_RETURN_IF_ERROR(want_string(v[i], name.c_str(), &s));
          p->score_texts.push_back(std::move(s));
        }
      } else {
        return error(StatusCode::kInvalidArgument,
                     "unknown key \"" + key +
                         "\" (a probe allows id, text, ids, top_k, full_stats, full_logprobs, "
                         "greedy_tokens, continuation, score_texts)");
      }
    }
    if (!has_id) return error(StatusCode::kInvalidArgument, "probe has no \"id\"");
    std::string problem = probe_problem(*p);
    if (!problem.empty()) {
      return error(StatusCode::kInvalidArgument, problem);
    }
    return Status::ok();
  }

 private:
  std::string where_;
  std::string probe_context_;
};

std::string errno_text(int err) {
  return std::strerror(err);
}

// ---------------------------------------------------------------------------------------------
// Deterministic generation.

// Uniform draws from std::mt19937_64 that do not depend on the standard library's distributions
// (whose output is implementation-defined): multiply-and-shift with rejection of the biased low
// products, so every value in [0, n) is exactly equally likely.
class Draw {
 public:
  explicit Draw(uint64_t seed) : rng_(seed) {}

  // Uniform in [0, n); n >= 1.
  uint64_t below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(rng_()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
      while (low < threshold) {
        m = static_cast<unsigned __int128>(rng_()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Uniform in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }

 private:
  std::mt19937_64 rng_;
};

struct WordList {
  const char* name;
  std::vector<const char*> words;
};

struct NumberSlot {
  const char* name;
  int lo;
  int hi;
};

// Seed words for natural-v1. Changing any list, its order, a template or the seed changes the
// suite: do that only as a new version (natural-v2).
const std::vector<WordList>& word_lists() {
  static const std::vector<WordList> lists = {
      {"adj", {"quiet",     "ancient",    "broken", "golden",  "tiny",     "enormous", "curious",
               "forgotten", "shiny",      "dusty",  "gentle",  "stubborn", "hidden",   "lonely",
               "clever",    "sleepy",     "bright", "rusty",   "wooden",   "silver",   "crooked",
               "friendly",  "mysterious", "frozen", "noisy",   "narrow",   "crowded",  "empty",
               "peculiar",  "cheerful",   "dark",   "fragile", "wild",     "polished", "humble",
               "restless",  "velvet",     "hollow", "brave",   "patient"}},
      {"noun",
       {"lamp",   "key",     "bridge",   "letter",  "clock",  "river",    "garden",  "window",
        "map",    "violin",  "notebook", "mirror",  "ladder", "umbrella", "train",   "candle",
        "kettle", "compass", "blanket",  "bicycle", "statue", "envelope", "lantern", "telescope",
        "basket", "chair",   "painting", "coin",    "door",   "fence",    "boat",    "rope",
        "bottle", "feather", "hammer",   "pillow",  "radio",  "shell",    "ticket",  "wallet"}},
      {"plural_noun", {"computers", "volcanoes", "clouds",    "bees",     "trees",     "rivers",
                       "stars",     "cats",      "languages", "cities",   "mountains", "birds",
                       "oceans",    "bridges",   "magnets",   "plants",   "deserts",   "glaciers",
                       "rainbows",  "batteries", "mushrooms", "whales",   "ants",      "comets",
                       "forests",   "tides",     "seeds",     "crystals", "spiders",   "bicycles"}},
      {"plural_animal",
       {"dogs",    "cats",    "owls",   "bears",     "frogs",   "dolphins",  "penguins",
        "bats",    "horses",  "wolves", "geese",     "snakes",  "elephants", "crows",
        "turtles", "rabbits", "foxes",  "squirrels", "parrots", "sharks"}},
      {"animal_verb",
       {"migrate",         "hibernate",           "sleep so much",       "live in groups",
        "change color",    "make noise at night", "build nests",         "have tails",
        "swim in circles", "avoid sunlight",      "shed their skin",     "eat grass",
        "climb trees",     "dig holes",           "sing in the morning", "follow each other",
        "hide their food", "groom each other",    "travel so far",       "stand on one leg"}},
      {"animal",
       {"fox",   "owl",     "rabbit", "tortoise", "dragon",   "mouse", "bear", "crow",     "cat",
        "dog",   "wolf",    "goat",   "hedgehog", "elephant", "lion",  "frog", "squirrel", "horse",
        "whale", "penguin", "parrot", "badger",   "deer",     "otter", "goose"}},
      {"place", {"forest",   "attic",         "library",    "harbor",         "village",
                 "desert",   "kitchen",       "castle",     "market",         "valley",
                 "garden",   "train station", "lighthouse", "museum",         "cave",
                 "bakery",   "school",        "island",     "mountain cabin", "hospital",
                 "old mill", "city square",   "farmhouse",  "workshop",       "cellar"}},
      {"name",
       {"Anna",  "Ben",  "Clara", "David", "Elena", "Farid", "Grace", "Hiro",  "Ines",  "Jonas",
        "Kavya", "Liam", "Maya",  "Noah",  "Olga",  "Pablo", "Quinn", "Rosa",  "Samir", "Tara",
        "Umar",  "Vera", "Wen",   "Yusuf", "Zoe",   "Mateo", "Leila", "Oscar", "Priya", "Sven"}},
      {"country", {"France",  "Japan",     "Brazil",    "Canada",    "Egypt",   "Kenya",
                   "Norway",  "Peru",      "India",     "Australia", "Mexico",  "Italy",
                   "Spain",   "Germany",   "Chile",     "Thailand",  "Morocco", "Greece",
                   "Vietnam", "Argentina", "Poland",    "Turkey",    "Sweden",  "Portugal",
                   "Ireland", "Ghana",     "Indonesia", "Nepal",     "Finland", "Colombia"}},
      {"city", {"Paris",   "Tokyo",    "Lagos",   "Toronto", "Cairo",  "Lima",    "Mumbai",
                "Sydney",  "Berlin",   "Madrid",  "Oslo",    "Seoul",  "Nairobi", "Lisbon",
                "Chicago", "Istanbul", "Bangkok", "Dublin",  "Vienna", "Prague",  "Boston",
                "Hanoi",   "Santiago", "Athens",  "Montreal"}},
      {"profession", {"teacher",     "baker",     "carpenter",    "nurse",      "pilot",
                      "farmer",      "librarian", "engineer",     "doctor",     "musician",
                      "gardener",    "plumber",   "journalist",   "chef",       "architect",
                      "firefighter", "scientist", "tailor",       "painter",    "lawyer",
                      "mechanic",    "sailor",    "photographer", "pharmacist", "electrician"}},
      {"object",
       {"umbrella", "phone",          "scarf",   "glasses", "keys",    "notebook",  "backpack",
        "watch",    "camera",         "jacket",  "guitar",  "mug",     "charger",   "book",
        "hat",      "bicycle helmet", "sweater", "lamp",    "blender", "headphones"}},
      {"food",
       {"apple", "sandwich", "pizza", "loaf of bread", "melon", "coffee", "cupcake", "pineapple",
        "burrito", "bowl of soup"}},
      {"dish", {"lasagna",      "paella",      "pancakes",    "tomato soup", "fried rice",
                "banana bread", "chili",       "risotto",     "curry",       "apple pie",
                "omelette",     "guacamole",   "lentil stew", "pad thai",    "tacos",
                "hummus",       "ratatouille", "dumplings",   "granola",     "chocolate cake"}},
      {"ingredient",
       {"flour",   "eggs",     "butter",   "sugar",  "milk",        "salt",         "olive oil",
        "garlic",  "onions",   "tomatoes", "rice",   "lemon juice", "cinnamon",     "honey",
        "carrots", "potatoes", "cheese",   "yogurt", "basil",       "black pepper", "chickpeas",
        "ginger",  "spinach",  "oats",     "vanilla"}},
      {"topic", {"gravity",     "photosynthesis", "the water cycle",   "volcanoes",   "democracy",
                 "the moon",    "electricity",    "friendship",        "the ocean",   "black holes",
                 "recycling",   "inflation",      "the immune system", "rainbows",    "evolution",
                 "music",       "sleep",          "the internet",      "earthquakes", "vaccines",
                 "the climate", "bees",           "time zones",        "money",       "dinosaurs"}},
      {"story_adj",
       {"funny", "sad", "short", "spooky", "hopeful", "strange", "gentle", "surprising",
        "bittersweet", "thrilling"}},
      {"season", {"spring", "summer", "autumn", "winter"}},
      {"weather",
       {"cold", "bright", "foggy", "rainy", "windy", "quiet", "gray", "warm", "misty", "frosty",
        "sunny", "stormy"}},
      {"instrument",
       {"piano", "guitar", "violin", "oboe", "flute", "cello", "trumpet", "saxophone", "harp",
        "clarinet", "ukulele", "accordion"}},
      {"color",
       {"red", "blue", "green", "yellow", "purple", "orange", "black", "white", "gray", "pink",
        "brown", "teal"}},
      {"language",
       {"French", "German", "Spanish", "Italian", "Portuguese", "Dutch", "Swedish", "Japanese"}},
      {"phrase",
       {"Where is the train station?",
        "I would like a cup of tea.",
        "The weather is lovely today.",
        "How much does this cost?",
        "My brother lives near the sea.",
        "Can you help me, please?",
        "We are going to the market tomorrow.",
        "The book is on the table.",
        "I have never seen snow.",
        "Thank you for dinner.",
        "What time does the museum open?",
        "She plays the piano every evening.",
        "The children are playing outside.",
        "I lost my umbrella yesterday.",
        "Good morning, how are you?",
        "This soup is too hot.",
        "Please close the window.",
        "The train is late again.",
        "I am learning to cook.",
        "Our neighbors have a new dog."}},
      {"task",
       {"bake bread",
        "change a bicycle tire",
        "plant tomatoes",
        "write a cover letter",
        "clean a cast iron pan",
        "tie a tie",
        "make a paper airplane",
        "brew coffee",
        "set up a fish tank",
        "fold a fitted sheet",
        "learn to juggle",
        "start a compost pile",
        "fix a leaky faucet",
        "train a puppy",
        "pack for a long trip",
        "paint a room",
        "sharpen a knife",
        "make pancakes",
        "build a birdhouse",
        "prepare for a job interview"}},
      {"code_verb", {"parse", "load",      "compute", "sort",      "validate", "render", "fetch",
                     "merge", "normalize", "encode",  "decode",    "filter",   "update", "build",
                     "count", "reverse",   "flatten", "serialize", "compress", "find"}},
      {"code_noun", {"config", "user",    "matrix", "buffer",  "header", "token",  "record",
                     "graph",  "image",   "path",   "request", "score",  "vector", "tree",
                     "queue",  "message", "date",   "price",   "file",   "node"}},
      {"table",
       {"users", "orders", "products", "employees", "invoices", "customers", "events", "sessions",
        "payments", "books"}},
      {"column", {"id", "name", "price", "created_at", "email", "status", "total", "title"}},
      {"py_module",
       {"os", "sys", "json", "math", "re", "random", "itertools", "collections", "datetime",
        "pathlib"}},
      {"html_tag", {"div", "section", "span", "article", "nav", "ul", "button", "form"}},
      {"number_word",
       {"Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Twelve", "Fifteen"}},
  };
  return lists;
}

const std::vector<NumberSlot>& number_slots() {
  static const std::vector<NumberSlot> slots = {
      {"a", 2, 99}, {"b", 2, 99}, {"small", 2, 12}, {"age", 5, 12}};
  return slots;
}

// Templates: {slot} is replaced by a word (or number) drawn for it, {^slot} by the same with its
// first letter capitalised; any other brace is literal text. Each slot occurrence is drawn
// independently. Domains: stories, facts, questions, code, math, dialogue, instructions, lists.
const std::vector<const char*>& templates() {
  static const std::vector<const char*> t = {
      // Stories.
      "Once upon a time, a {adj} {animal}",
      "The {adj} {noun} in the {place}",
      "It was a {weather} {season} morning when {name}",
      "{name} opened the door of the {place} and saw",
      "Long ago, in a {adj} {place}, there lived a {profession} who",
      "The last thing {name} expected to find in the {place} was",
      "After the storm, the {animal} looked at the {adj} sky and",
      "Every {season}, the {profession}s of the {place} would",
      "{name} and {name} walked to the {place} carrying a {adj} {noun}",
      "The {adj} {animal} and the {adj} {animal} met near the {place}",
      "Write a {story_adj} story about a {profession} and a {animal}.\n\n",
      // Facts.
      "The capital of {country} is",
      "{country} is famous for its",
      "In {city}, the best time of year to visit is",
      "A {profession} is someone who",
      "The main ingredient in {dish} is",
      "The {instrument} is a musical instrument that",
      "The population of {city} is about",
      "{country} and {country} both",
      // Questions.
      "Q: Why do {plural_animal} {animal_verb}?\nA:",
      "Q: What is the difference between a {noun} and a {noun}?\nA:",
      "Q: How long does it take to learn the {instrument}?\nA:",
      "Q: What would happen if all {plural_noun} disappeared?\nA:",
      "Q: Is it healthy to eat {dish} every day?\nA:",
      // Code.
      "def {code_verb}_{code_noun}(",
      "function {code_verb}{^code_noun}(",
      "# {^code_verb} the {code_noun} and return the result\ndef",
      "SELECT {column} FROM {table} WHERE",
      "import {py_module}\n\n\ndef {code_verb}_{code_noun}(path):\n    ",
      "for (int i = 0; i < {a}; ++i) {\n  ",
      "<{html_tag} class=\"{code_noun}\">",
      "class {^code_noun}{^code_noun}:\n    def {code_verb}(self",
      "// {^code_verb}s the {code_noun} in place.\nvoid {code_verb}_{code_noun}(",
      // Math.
      "What is {a} + {b}?",
      "What is {a} times {b}?",
      "Q: If one {food} costs {a} dollars, how much do {b} of them cost?\nA:",
      "{a} - {b} =",
      "Q: {name} has {a} {plural_noun} and gives away {small}. How many are left?\nA:",
      "The square root of {a} is approximately",
      "Q: A train travels {a} kilometers in {small} hours. What is its average speed?\nA:",
      // Dialogue.
      "\"Have you seen my {object}?\" asked {name}.\n\"",
      "{name}: Where are you going?\n{name}:",
      "{name}: I can't believe the {noun} is so {adj}.\n{name}:",
      "Customer: Hi, I'd like to return this {object}.\nAssistant:",
      "Teacher: Today we will talk about {topic}.\nStudent:",
      "User: Can you recommend a good {dish} recipe?\nAssistant:",
      // Instructions.
      "Translate to {language}: {phrase}",
      "How to {task}:\nStep 1:",
      "Write a short poem about {topic}.\n\n",
      "Summarize in one sentence: The {adj} {noun} was found in the {place} by a {profession}.",
      "Explain {topic} in simple words for a child aged {age}.",
      "Recipe: {^dish}\nIngredients:\n- {ingredient}\n-",
      // Lists.
      "{number_word} reasons why {plural_noun} are",
      "1. {noun}\n2. {noun}\n3.",
      "Top {small} things to do in {city}:\n1.",
      "{number_word} things every {profession} should know about {topic}:\n1.",
      "Shopping list:\n- {ingredient}\n- {ingredient}\n-",
      "The {color} {object} on the shelf",
      // Letters and news.
      "Dear {name},\n\nThank you for the {object}",
      "Breaking news: {profession}s in {city} have",
      "The weather in {city} today is",
  };
  return t;
}

bool is_vowel(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'A' || c == 'E' ||
         c == 'I' || c == 'O' || c == 'U';
}

// A template split into literal text and slots, resolved once.
struct Piece {
  std::string literal;                 // when neither list nor number is set
  const WordList* list = nullptr;      // a word slot
  const NumberSlot* number = nullptr;  // a number slot
  bool capitalise = false;
  int repeat_of = -1;  // index of an earlier piece with the same slot: draw a different value
};
using CompiledTemplate = std::vector<Piece>;

CompiledTemplate compile(std::string_view t) {
  CompiledTemplate pieces;
  std::string literal;
  size_t i = 0;
  while (i < t.size()) {
    const size_t close = t[i] == '{' ? t.find('}', i + 1) : std::string_view::npos;
    if (close != std::string_view::npos) {
      std::string_view name = t.substr(i + 1, close - i - 1);
      Piece slot;
      if (!name.empty() && name[0] == '^') {
        slot.capitalise = true;
        name.remove_prefix(1);
      }
      for (const WordList& list : word_lists()) {
        if (name == list.name) slot.list = &list;
      }
      for (const NumberSlot& n : number_slots()) {
        if (name == n.name) slot.number = &n;
      }
      if (slot.list != nullptr || slot.number != nullptr) {
        if (!literal.empty()) {
          pieces.push_back(Piece{literal});
          literal.clear();
        }
        for (size_t k = 0; k < pieces.size(); ++k) {
          if (pieces[k].list == slot.list && pieces[k].number == slot.number) {
            slot.repeat_of = static_cast<int>(k);
          }
        }
        pieces.push_back(slot);
        i = close + 1;
        continue;
      }
    }
    literal += t[i];
    ++i;
  }
  if (!literal.empty()) pieces.push_back(Piece{literal});
  return pieces;
}

const std::vector<CompiledTemplate>& compiled_templates() {
  static const std::vector<CompiledTemplate> compiled = [] {
    std::vector<CompiledTemplate> c;
    for (const char* t : templates()) c.push_back(compile(t));
    return c;
  }();
  return compiled;
}

// Expands one template, drawing each slot in order of appearance. A slot used twice in one
// template gets two different values ("a key and a coin", not "a key and a key"). The article
// "a" before a vowel-initial word becomes "an".
std::string expand(const CompiledTemplate& pieces, Draw* draw) {
  std::string out;
  std::vector<std::string> values(pieces.size());
  for (size_t k = 0; k < pieces.size(); ++k) {
    const Piece& piece = pieces[k];
    if (piece.list == nullptr && piece.number == nullptr) {
      out += piece.literal;
      continue;
    }
    std::string& word = values[k];
    do {
      if (piece.list != nullptr) {
        word = piece.list->words[draw->below(piece.list->words.size())];
      } else {
        word = std::to_string(draw->between(piece.number->lo, piece.number->hi));
      }
    } while (piece.repeat_of >= 0 && word == values[static_cast<size_t>(piece.repeat_of)]);
    const size_t n = out.size();
    if (!word.empty() && is_vowel(word[0]) && n >= 2 && out[n - 1] == ' ' &&
        (out[n - 2] == 'a' || out[n - 2] == 'A') &&
        (n == 2 || out[n - 3] == ' ' || out[n - 3] == '\n' || out[n - 3] == '"')) {
      out.insert(n - 1, "n");
    }
    if (piece.capitalise && word[0] >= 'a' && word[0] <= 'z') {
      out += static_cast<char>(word[0] - 'a' + 'A');
      out.append(word, 1, std::string::npos);
    } else {
      out += word;
    }
  }
  return out;
}

std::string numbered_id(char prefix, size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%c%06zu", prefix, n);
  return buf;
}

constexpr uint64_t kNaturalSeed = 0x6e61747572616c31ULL;  // "natural1"

}  // namespace

// -----------------------------------------------------------------------------------------------

Status validate_suite(const Suite& suite) {
  std::string problem = header_problem(suite.name, suite.version, suite.description);
  if (!problem.empty()) return invalid_argument("suite: " + problem);
  if (suite.probes.empty()) return invalid_argument("suite \"" + suite.name + "\" has no probes");
  if (suite.probes.size() > kMaxSuiteProbes) {
    return invalid_argument("suite \"" + suite.name + "\" has " +
                            std::to_string(suite.probes.size()) +
                            " probes, more than the limit of " + std::to_string(kMaxSuiteProbes));
  }
  std::unordered_set<std::string_view> ids;
  ids.reserve(suite.probes.size());
  for (size_t i = 0; i < suite.probes.size(); ++i) {
    const Probe& p = suite.probes[i];
    problem = probe_problem(p);
    if (!problem.empty()) {
      return invalid_argument("probe " + std::to_string(i) + " (\"" + p.id + "\"): " + problem);
    }
    if (!ids.insert(p.id).second) {
      return invalid_argument("probe " + std::to_string(i) + ": duplicate id \"" + p.id + "\"");
    }
  }
  return Status::ok();
}

nlohmann::json probe_json(const Probe& p) {
  json j = json::object();
  j["id"] = p.id;
  if (p.text) j["text"] = *p.text;
  if (p.ids) j["ids"] = *p.ids;
  j["top_k"] = p.top_k;
  j["full_stats"] = p.full_stats;
  if (p.full_logprobs) j["full_logprobs"] = true;  // absent when false: older digests hold
  j["greedy_tokens"] = p.greedy_tokens;
  j["continuation"] = p.continuation ? json(*p.continuation) : json(nullptr);
  j["score_texts"] = json::array();
  for (const std::string& s : p.score_texts) j["score_texts"].push_back(s);
  return j;
}

std::string canonical_jsonl(const Suite& suite) {
  const auto dump = [](const json& j) {
    return j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
  };
  std::string out;
  json header = json::object();
  header["suite"] = suite.name;
  header["version"] = suite.version;
  header["description"] = suite.description;
  out += dump(header);
  out += '\n';
  for (const Probe& p : suite.probes) {
    out += dump(probe_json(p));
    out += '\n';
  }
  return out;
}

std::string suite_digest(const Suite& suite) {
  return to_hex(sha256(canonical_jsonl(suite)));
}

Result<Suite> parse_suite_jsonl(const std::string& bytes, const std::string& source_name) {
  Suite suite;
  bool have_header = false;
  std::unordered_set<std::string> ids;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < bytes.size()) {
    ++line_no;
    size_t end = bytes.find('\n', pos);
    if (end == std::string::npos) end = bytes.size();
    const std::string_view line(bytes.data() + pos, end - pos);
    pos = end + 1;
    const std::string where = source_name + ":" + std::to_string(line_no);
    if (line.size() > kMaxSuiteLineBytes) {
      return corrupt(where + ": line is " + std::to_string(line.size()) +
                     " bytes, more than the limit of " + std::to_string(kMaxSuiteLineBytes));
    }
    if (is_blank(line)) continue;
    LineParser parser(where);
    PROV_ASSIGN_OR_RETURN(json obj, parser.parse_object(line));
    if (!have_header) {
      PROV_RETURN_IF_ERROR(parser.header(obj, &suite));
      have_header = true;
      continue;
    }
    if (suite.probes.size() >= kMaxSuiteProbes) {
      return invalid_argument(where + ": more than " + std::to_string(kMaxSuiteProbes) +
                              " probes (the limit)");
    }
    Probe probe;
    PROV_RETURN_IF_ERROR(parser.probe(obj, &probe));
    if (!ids.insert(probe.id).second) {
      return invalid_argument(where + ": duplicate probe id \"" + probe.id + "\"");
    }
    suite.probes.push_back(std::move(probe));
  }
  if (!have_header) {
    return invalid_argument(source_name +
                            ": empty suite: expected a header line {\"suite\": ..., "
                            "\"version\": ...} and one probe per line");
  }
  if (suite.probes.empty()) {
    return invalid_argument(source_name + ": suite \"" + suite.name + "\" has no probes");
  }
  return suite;
}

Result<Suite> read_suite_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return not_found(path + ": no such suite file");
    return io_error(path + ": cannot open: " + errno_text(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error(path + ": cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument(path + ": not a regular file (a suite is a JSONL file)");
  }
  const auto too_big = [&](uint64_t size) {
    return invalid_argument(path + ": " + std::to_string(size) +
                            " bytes, more than the suite file limit of " +
                            std::to_string(kMaxSuiteFileBytes) + " bytes");
  };
  if (static_cast<uint64_t>(st.st_size) > kMaxSuiteFileBytes) {
    ::close(fd);
    return too_big(static_cast<uint64_t>(st.st_size));
  }
  std::string bytes;
  bytes.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return io_error(path + ": read failed: " + errno_text(err));
    }
    if (n == 0) break;
    if (bytes.size() + static_cast<size_t>(n) > kMaxSuiteFileBytes) {
      ::close(fd);
      return too_big(bytes.size() + static_cast<size_t>(n));  // grew while being read
    }
    bytes.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return parse_suite_jsonl(bytes, path);
}

Status write_suite_file(const std::string& path, const Suite& suite) {
  Status valid = validate_suite(suite);
  if (!valid.is_ok()) return valid.with_context("not writing " + path);
  const std::string bytes = canonical_jsonl(suite);
  return write_file_atomic(path, bytes);
}

std::vector<BuiltinInfo> builtin_suites() {
  return {
      {"natural-v1",
       "varied natural-language prompts (stories, facts, questions, code, math, dialogue, "
       "instructions, lists) generated from the project's templates and seed words; 2000 by "
       "default, natural-v1:N for the first N",
       false},
      {"random-tokens-v1",
       "seeded random token-id sequences (512 x 16 by default, random-tokens-v1:N for N); "
       "white-box, needs the model's vocabulary size",
       true},
      {"logit-image-v1",
       "natural-v1's prompts recording the full next-token log-probability vector (white-box; "
       "the logit-image statistic); 256 by default, logit-image-v1:N for the first N",
       false},
  };
}

Suite natural_v1(int count) {
  Suite suite;
  suite.name = "natural-v1";
  suite.version = "1";
  suite.description =
      "Natural-language prompts generated deterministically from templates and seed words "
      "(stories, facts, questions, code, math, dialogue, instructions, lists).";
  const size_t n = count <= 0 ? 0 : std::min(static_cast<size_t>(count), kMaxSuiteProbes);
  suite.probes.reserve(n);
  Draw draw(kNaturalSeed);
  const std::vector<CompiledTemplate>& t = compiled_templates();
  std::unordered_set<std::string> seen;
  seen.reserve(n);
  // Guard against a template set too small for the request: stop after this many duplicates in
  // a row (never reached for counts up to kMaxSuiteProbes with the templates above).
  constexpr int kMaxConsecutiveDuplicates = 1000000;
  int duplicates = 0;
  while (suite.probes.size() < n && duplicates < kMaxConsecutiveDuplicates) {
    std::string prompt = expand(t[draw.below(t.size())], &draw);
    if (!seen.insert(prompt).second) {
      ++duplicates;
      continue;
    }
    duplicates = 0;
    Probe p;
    p.id = numbered_id('n', suite.probes.size() + 1);
    p.text = std::move(prompt);
    p.top_k = 20;
    p.full_stats = true;
    p.greedy_tokens = 16;
    suite.probes.push_back(std::move(p));
  }
  return suite;
}

Suite logit_image_v1(int count) {
  Suite suite = natural_v1(count);
  suite.name = "logit-image-v1";
  suite.version = "1";
  suite.description =
      "The prompts of natural-v1 (same ids), recording the full next-token log-probability "
      "vector after each prompt: the span of these vectors is the model's logit image.";
  for (Probe& p : suite.probes) {
    p.top_k = 0;
    p.full_stats = false;
    p.greedy_tokens = 0;
    p.full_logprobs = true;
  }
  return suite;
}

Suite random_tokens_v1(int32_t vocab_size, int count, int length, uint64_t seed, int32_t first_id) {
  Suite suite;
  suite.name = "random-tokens-v1";
  suite.version = "1";
  if (vocab_size > 0) first_id = std::max<int32_t>(0, std::min(first_id, vocab_size - 1));
  const size_t n = (vocab_size <= 0 || length <= 0 || count <= 0)
                       ? 0
                       : std::min(static_cast<size_t>(count), kMaxSuiteProbes);
  suite.description = "Random token sequences: " + std::to_string(n) + " x " +
                      std::to_string(std::max(length, 0)) + " ids uniform in [" +
                      std::to_string(first_id) + ", " + std::to_string(vocab_size) +
                      ") for vocabulary size " + std::to_string(vocab_size) +
                      ", std::mt19937_64 seed " + std::to_string(seed) + ".";
  suite.probes.reserve(n);
  Draw draw(seed);
  const uint64_t range = vocab_size > first_id ? static_cast<uint64_t>(vocab_size - first_id) : 1;
  for (size_t i = 0; i < n; ++i) {
    Probe p;
    p.id = numbered_id('r', i + 1);
    std::vector<int32_t> ids(static_cast<size_t>(length));
    for (int32_t& id : ids) id = first_id + static_cast<int32_t>(draw.below(range));
    p.ids = std::move(ids);
    p.top_k = 20;
    p.full_stats = true;
    p.greedy_tokens = 0;
    suite.probes.push_back(std::move(p));
  }
  return suite;
}

namespace {

// "name" or "name:N" -> (matched, N or default). Fails on a malformed N.
Result<std::pair<bool, int>> match_builtin(const std::string& arg, const std::string& name,
                                           int default_count) {
  if (arg == name) return std::make_pair(true, default_count);
  if (arg.compare(0, name.size() + 1, name + ":") != 0) return std::make_pair(false, 0);
  const std::string digits = arg.substr(name.size() + 1);
  bool ok = !digits.empty() && digits.size() <= 7;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok || v < 1 || v > kMaxSuiteProbes) {
    return invalid_argument("\"" + arg + "\": the count after \"" + name +
                            ":\" must be a whole number from 1 to " +
                            std::to_string(kMaxSuiteProbes));
  }
  return std::make_pair(true, static_cast<int>(v));
}

}  // namespace

Result<Suite> resolve_suite(const std::string& name_or_path, int32_t vocab_size) {
  PROV_ASSIGN_OR_RETURN(auto natural, match_builtin(name_or_path, "natural-v1", 2000));
  if (natural.first) return natural_v1(natural.second);
  PROV_ASSIGN_OR_RETURN(auto image, match_builtin(name_or_path, "logit-image-v1", 256));
  if (image.first) return logit_image_v1(image.second);
  PROV_ASSIGN_OR_RETURN(auto random, match_builtin(name_or_path, "random-tokens-v1", 512));
  if (random.first) {
    if (vocab_size <= 0) {
      return invalid_argument(
          "random-tokens-v1 needs the model's vocabulary size (token ids are drawn from it; "
          "white-box, same tokenizer), and none was given");
    }
    return random_tokens_v1(vocab_size, random.second);
  }
  struct stat st;
  if (::stat(name_or_path.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
    std::string names;
    for (const BuiltinInfo& b : builtin_suites()) {
      names += (names.empty() ? "" : ", ") + b.name + "[:N]";
    }
    return not_found("\"" + name_or_path + "\" is neither a built-in suite (" + names +
                     ") nor an existing suite file");
  }
  return read_suite_file(name_or_path);
}

}  // namespace prov::probes
