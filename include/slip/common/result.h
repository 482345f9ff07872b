// Result<T>: a value or an errno-style error code, for data paths that must not
// throw (an expected-like type until std::expected is available).
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace slip {

struct Error {
  int code = 0;  // errno value
  std::string message() const { return std::strerror(code); }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}  // NOLINT: implicit, like std::expected
  Result(Error e) : v_(e) {}         // NOLINT
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  int error() const noexcept { return ok() ? 0 : std::get<1>(v_).code; }
  std::string message() const { return ok() ? "ok" : std::get<1>(v_).message(); }

 private:
  std::variant<T, Error> v_;
};

inline Error err(int code) noexcept { return Error{code}; }

}  // namespace slip
