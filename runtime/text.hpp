#pragma once

// ASCII string helpers shared by the text readers of runtime/ (review
// findings, code blocks, paths). Locale-independent on purpose: agent output
// is parsed the same way whatever the user's locale.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orch::text {

inline char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Returns `s` with ASCII letters lower-cased.
inline std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = ascii_lower(c);
  return out;
}

inline bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'
         || c == '\v';
}

/// Returns `s` without leading and trailing ASCII white space.
inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

inline bool starts_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.substr(0, p.size()) == p;
}

inline bool ends_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

/// Compares ignoring ASCII case.
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

inline bool starts_with_ci(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && iequals(s.substr(0, p.size()), p);
}

/// Returns `s` without any markdown `**` (bold) markers. `**` never occurs
/// in a path or a severity, unlike `__` in `__init__.py`.
inline std::string strip_bold(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '*' && i + 1 < s.size() && s[i + 1] == '*') {
      ++i;
      continue;
    }
    out += s[i];
  }
  return out;
}

/// Splits `text` into lines without their `\n` (or `\r\n`); a final
/// newline does not start another line.
inline std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos)
      end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

/// A markdown code fence line: ``` or ~~~ (3 or more), indented or not.
struct fence {
  char ch = '`';
  std::size_t len = 0;
  std::size_t indent = 0;
  /// The info string after the fence characters, trimmed (`python
  /// title=a.py`); empty for a bare (closing) fence.
  std::string info;
};

/// Returns the fence `line` opens or closes, or nullopt when it is none.
inline std::optional<fence> parse_fence(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
    ++i;
  if (i >= line.size() || (line[i] != '`' && line[i] != '~'))
    return std::nullopt;
  fence f;
  f.indent = i;
  f.ch = line[i];
  while (i < line.size() && line[i] == f.ch) {
    ++i;
    ++f.len;
  }
  if (f.len < 3)
    return std::nullopt;
  std::string_view info = trim(line.substr(i));
  // ```x``` on one line is inline code, not a fence (CommonMark).
  if (f.ch == '`' && info.find('`') != std::string_view::npos)
    return std::nullopt;
  f.info = std::string{info};
  return f;
}

} // namespace orch::text
