#pragma once

// Helpers shared by the config tests.

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace orch::test {

/// Parses `text` as if read from `file`, dropping one leading newline so raw
/// strings can start on their own line and line 1 is the first YAML line.
inline load_result parse_as(std::string_view text, const std::string& file) {
  if (!text.empty() && text.front() == '\n')
    text.remove_prefix(1);
  return parse_config(text, file);
}

/// Returns every error and warning of `res`, one per line (for messages).
inline std::string dump(const load_result& res) {
  std::string out;
  for (const auto& x : res.errors)
    out += "  error: " + x.to_string() + "\n";
  for (const auto& x : res.warnings)
    out += "  warning: " + x.to_string() + "\n";
  return out;
}

} // namespace orch::test
