#pragma once

// Small terminal helpers: whether a stream is a terminal, whether colour is
// wanted (NO_COLOR, https://no-color.org), and ANSI styling.

#include <cstdio>
#include <string>
#include <string_view>

#include "runtime/text.hpp"

namespace orch::cli {

/// Exit codes, documented in the README.
enum exit_code : int {
  exit_ok = 0,
  exit_failure = 1,
  exit_usage = 2,
  exit_no_agent = 3,
  /// `run` refused by the rate limiter (rate_limiting); nothing was run.
  exit_rate_limited = 4,
  exit_interrupted = 130,
};

/// Styling for one output stream.
struct terminal {
  bool tty = false;
  bool color = false;

  /// Inspects `stream`: a terminal, and colour unless NO_COLOR is set or
  /// TERM is "dumb".
  static terminal for_stream(std::FILE* stream);

  std::string green(const std::string& s) const {
    return wrap("32", s);
  }
  std::string red(const std::string& s) const {
    return wrap("31", s);
  }
  std::string yellow(const std::string& s) const {
    return wrap("33", s);
  }
  std::string bold(const std::string& s) const {
    return wrap("1", s);
  }
  std::string dim(const std::string& s) const {
    return wrap("2", s);
  }

private:
  std::string wrap(const char* code, const std::string& s) const {
    return color ? "\x1b[" + std::string{code} + "m" + s + "\x1b[0m" : s;
  }
};

/// Returns `s` safe for the terminal (agent text, versions, paths,
/// messages may hold escape sequences and bytes that are not UTF-8); with
/// `keep_newlines`, line breaks stay.
inline std::string shown(std::string_view s, bool keep_newlines = false) {
  return text::escape_for_terminal(s, keep_newlines);
}

/// Returns `ms` as "0.4s", "12.3s" or "2m05s".
std::string format_duration(long long ms);

} // namespace orch::cli
