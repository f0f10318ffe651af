#include "core/json.h"

#include <vector>

namespace prov {

namespace {

using nlohmann::json;

// Builds the document like nlohmann's own DOM parser (a stack of the open containers; an open
// container is the last value of its parent, so pointers to it stay valid), checking the limits as
// the values arrive. Returning false stops the parse.
class BoundedSax {
 public:
  explicit BoundedSax(const JsonLimits& limits) : limits_(limits) {}

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) { return value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return value(json(v)); }
  bool string(json::string_t& v) {
    if (!string_fits(v, "string")) return false;
    return value(json(std::move(v)));
  }
  bool binary(json::binary_t&) { return fail(JsonFailure::kSyntax, "binary values are not JSON"); }

  bool start_object(size_t) { return open(json::object()); }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool start_array(size_t) { return open(json::array()); }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool key(json::string_t& k) {
    if (!string_fits(k, "key") || !count()) return false;
    json* obj = stack_.back();
    if (!limits_.allow_duplicate_keys && obj->contains(k)) {
      failure.key = k;
      return fail(JsonFailure::kDuplicateKey,
                  "duplicate key " + json(k).dump(-1, ' ', false, json::error_handler_t::replace));
    }
    key_ = std::move(k);
    return true;
  }
  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& e) {
    if (failure.kind == JsonFailure::kNone) {
      failure.kind = JsonFailure::kSyntax;
      std::string m = e.what();
      const size_t p = m.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
      failure.detail = p == std::string::npos ? m : m.substr(p + 2);
      failure.offset = position > 0 ? position - 1 : 0;
    }
    return false;
  }

  json root;
  JsonFailure failure;

 private:
  bool fail(JsonFailure::Kind kind, const std::string& why) {
    if (failure.kind == JsonFailure::kNone) {
      failure.kind = kind;
      failure.detail = why;
    }
    return false;
  }
  bool count() {
    if (++values_ > limits_.max_values) {
      return fail(JsonFailure::kTooManyValues,
                  "more than " + std::to_string(limits_.max_values) + " values");
    }
    return true;
  }
  bool string_fits(const json::string_t& s, const char* kind) {
    if (s.size() <= limits_.max_string_bytes) return true;
    return fail(JsonFailure::kStringTooLong,
                std::string("a ") + kind + " of " + std::to_string(s.size()) +
                    " bytes (the limit is " + std::to_string(limits_.max_string_bytes) + ")");
  }
  // Places `v` in the open container (or as the root); returns where it now lives.
  json* place(json&& v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json* top = stack_.back();
    if (top->is_array()) {
      top->push_back(std::move(v));
      return &top->back();
    }
    json& slot = (*top)[key_];
    slot = std::move(v);
    return &slot;
  }
  bool value(json&& v) {
    if (!count()) return false;
    place(std::move(v));
    return true;
  }
  bool open(json&& container) {
    if (!count()) return false;
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      return fail(JsonFailure::kTooDeep,
                  "nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    stack_.push_back(place(std::move(container)));
    return true;
  }

  const JsonLimits& limits_;
  std::vector<json*> stack_;
  std::string key_;
  size_t values_ = 0;
};

}  // namespace

Result<nlohmann::json> parse_json(std::string_view text, const std::string& what,
                                  const JsonLimits& limits, JsonFailure* failure) {
  if (text.size() > limits.max_bytes) {
    const std::string why = std::to_string(text.size()) + " bytes (the limit is " +
                            std::to_string(limits.max_bytes) + ")";
    if (failure != nullptr) *failure = {JsonFailure::kTooLarge, 0, why, ""};
    return corrupt(what + ": JSON refused: " + why);
  }
  BoundedSax sax(limits);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json,
                         /*strict=*/true, /*ignore_comments=*/false);
  } catch (const std::exception& e) {  // bad_alloc and the like: never past the boundary
    sax.failure = {JsonFailure::kSyntax, 0, e.what(), ""};
    ok = false;
  }
  if (ok) return std::move(sax.root);
  if (failure != nullptr) *failure = sax.failure;
  if (sax.failure.kind == JsonFailure::kSyntax) {
    return corrupt(what + " is not valid JSON (at byte " + std::to_string(sax.failure.offset) +
                   "): " + sax.failure.detail);
  }
  return corrupt(what + ": JSON refused: " + sax.failure.detail);
}

}  // namespace prov
