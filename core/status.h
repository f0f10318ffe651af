// Status and Result<T>: how expected failures travel through prov.
//
// A library function that can fail on bad input, I/O or a missing resource returns Status or
// Result<T> instead of throwing or aborting. The message is meant for the user: it names the
// file, the offset and what is wrong. Status and Result are cheap to move, not thread-safe to
// mutate concurrently (like any value type).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace prov {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller asked for something malformed (bad option, bad path kind)
  kCorrupt,          // a file's content violates its format (truncated, out of range, hostile)
  kUnsupported,      // a valid but unsupported feature (unknown dtype, architecture, version)
  kNotFound,         // a file, tensor or key that should exist does not
  kIo,               // the operating system refused (open, read, mmap)
  kInternal,         // a broken invariant of ours
};

const char* status_code_name(StatusCode code);

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt: model.safetensors: header length 99999 runs past the end of the file (1024 bytes)"
  std::string to_string() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status with_context(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status corrupt(std::string m) {
  return {StatusCode::kCorrupt, std::move(m)};
}
inline Status unsupported(std::string m) {
  return {StatusCode::kUnsupported, std::move(m)};
}
inline Status not_found(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status io_error(std::string m) {
  return {StatusCode::kIo, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

// Either a value or a non-OK Status. Accessing value() of an error Result is a programming error
// (asserted in debug builds).
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(runtime/explicit)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(runtime/explicit)
    assert(!std::get<Status>(v_).is_ok() && "Result constructed from an OK Status");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    assert(is_ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(is_ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(is_ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace prov

#define PROV_CONCAT_INNER(a, b) a##b
#define PROV_CONCAT(a, b) PROV_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` (a Status) is not OK.
#define PROV_RETURN_IF_ERROR(expr)                  \
  do {                                              \
    ::prov::Status prov_status_ = (expr);           \
    if (!prov_status_.is_ok()) return prov_status_; \
  } while (0)

// `PROV_ASSIGN_OR_RETURN(auto x, f());` — declares x from a Result or returns its Status.
#define PROV_ASSIGN_OR_RETURN(lhs, expr) \
  PROV_ASSIGN_OR_RETURN_IMPL(PROV_CONCAT(prov_result_, __LINE__), lhs, expr)
#define PROV_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()
