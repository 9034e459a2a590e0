#pragma once

// String helpers shared by the text readers of runtime/ (review findings,
// code blocks, paths) and by everything that cuts, stores or prints agent
// text (UTF-8 section). Locale-independent on purpose: agent output is
// parsed the same way whatever the user's locale.

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

/// trim() as a string of its own.
inline std::string trimmed(std::string_view s) {
  return std::string{trim(s)};
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

/// Splits "a, b ,c" at `sep` into its items, blanks (spaces, tabs) around
/// each dropped; empty items are left out.
inline std::vector<std::string> split_list(std::string_view csv,
                                           char sep = ',') {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < csv.size()) {
    std::size_t end = csv.find(sep, start);
    if (end == std::string_view::npos)
      end = csv.size();
    auto item = csv.substr(start, end - start);
    auto b = item.find_first_not_of(" \t");
    if (b != std::string_view::npos) {
      auto e = item.find_last_not_of(" \t");
      out.emplace_back(item.substr(b, e - b + 1));
    }
    start = end + 1;
  }
  return out;
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

// -- UTF-8 --------------------------------------------------------------------
//
// Agents are untrusted: their output, the file names they create and the
// error text they print may hold any bytes. These helpers never throw and
// accept any input; "valid" means well-formed UTF-8 as RFC 3629 defines it
// (no overlong forms, no surrogates, nothing above U+10FFFF), the rule
// nlohmann::json's dump checks.

/// Returns the length (1..4) of the well-formed UTF-8 character that starts
/// at `s[i]`, or 0 when the bytes there are not one (or `i` is past the
/// end).
inline std::size_t utf8_char_length(std::string_view s,
                                    std::size_t i) noexcept {
  if (i >= s.size())
    return 0;
  auto b = [&](std::size_t k) {
    return static_cast<unsigned char>(s[i + k]);
  };
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (b(k) & 0xC0) == 0x80;
  };
  unsigned char c = b(0);
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2))
      return 0;
    if (c == 0xE0 && b(1) < 0xA0) // overlong
      return 0;
    if (c == 0xED && b(1) > 0x9F) // surrogate
      return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3))
      return 0;
    if (c == 0xF0 && b(1) < 0x90) // overlong
      return 0;
    if (c == 0xF4 && b(1) > 0x8F) // above U+10FFFF
      return 0;
    return 4;
  }
  return 0;
}

/// Returns true when `s` is well-formed UTF-8.
inline bool is_valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_char_length(s, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

/// Returns the largest length <= `max` at which `s` can be cut without
/// splitting a UTF-8 character (an invalid byte counts as one character).
inline std::size_t utf8_cut(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max)
    return s.size();
  // A character is at most 4 bytes: step back over at most 3 continuation
  // bytes, then keep the character only if it ends at or before `max`.
  std::size_t start = max;
  for (int k = 0; k < 3 && start > 0
                  && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80;
       ++k)
    --start;
  auto n = utf8_char_length(s, start);
  if (n != 0 && start + n > max)
    return start;
  return max;
}

/// Returns the smallest start >= `min` from which the rest of `s` begins on
/// a UTF-8 character boundary (the mirror of utf8_cut, for tails).
inline std::size_t utf8_cut_forward(std::string_view s,
                                    std::size_t min) noexcept {
  if (min >= s.size())
    return s.size();
  std::size_t start = min;
  for (int k = 0; k < 3 && start < s.size()
                  && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80;
       ++k)
    ++start;
  // Past three continuation bytes the text is not UTF-8 there: cut anywhere.
  if (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
    return min;
  return start;
}

/// Keeps the first `head` and the last `tail` bytes of `text`, both cut on
/// character boundaries, with `marker(omitted_bytes)` between them; text of
/// at most head + tail bytes is returned whole.
template<class Marker>
std::string head_and_tail(std::string_view text, std::size_t head,
                          std::size_t tail, Marker&& marker) {
  if (text.size() <= head + tail)
    return std::string{text};
  std::size_t head_end = utf8_cut(text, head);
  std::size_t tail_start = utf8_cut_forward(text, text.size() - tail);
  std::string out{text.substr(0, head_end)};
  out += marker(tail_start - head_end);
  out += text.substr(tail_start);
  return out;
}

/// Returns `s` cut to at most `max` bytes on a UTF-8 character boundary,
/// followed by `ellipsis` when something was cut (the ellipsis is not
/// counted in `max`).
inline std::string clip(std::string_view s, std::size_t max,
                        std::string_view ellipsis = "…") {
  if (s.size() <= max)
    return std::string{s};
  std::string out{s.substr(0, utf8_cut(s, max))};
  out += ellipsis;
  return out;
}

/// Returns the first line of `s` without its trailing blanks, clipped to
/// `max` bytes on a character boundary (see clip): failure messages may
/// carry details (the CLI's own words) on later lines, which the manifest
/// keeps whole.
inline std::string first_line(std::string_view s,
                              std::size_t max = std::string_view::npos) {
  auto line = s.substr(0, s.find('\n'));
  while (!line.empty()
         && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
    line.remove_suffix(1);
  return clip(line, max);
}

/// Returns `s` with every byte that is not part of a well-formed UTF-8
/// character replaced by U+FFFD; valid text is returned unchanged.
inline std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_char_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

/// Returns `s` safe to print on a terminal: nothing in it can move the
/// cursor, change colours, set the window title or reorder text. Escaped
/// are the C0 controls (as `\n`, `\r`, `\t` or `\xNN`; tab is kept), DEL
/// (`\x7f`), the C1 controls U+0080..U+009F and the bidi embedding,
/// override and isolate marks U+202A..U+202E, U+2066..U+2069 (as
/// `\uNNNN`), and every byte that is not valid UTF-8 (as `\xNN`). With
/// `keep_newlines`, `\n` (and a `\r` before it) stays a line break.
/// Printable text, including non-ASCII, is unchanged.
inline std::string escape_for_terminal(std::string_view s,
                                       bool keep_newlines = false) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  auto byte_escape = [&](unsigned char c) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 0xF];
  };
  auto cp_escape = [&](unsigned cp) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4)
      out += hex[(cp >> shift) & 0xF];
  };
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_char_length(s, i);
    auto c = static_cast<unsigned char>(s[i]);
    if (n == 0) {
      byte_escape(c);
      ++i;
      continue;
    }
    if (n == 1) {
      bool crlf = c == '\r' && i + 1 < s.size() && s[i + 1] == '\n';
      if (keep_newlines && (c == '\n' || crlf)) {
        // A CRLF's \r is dropped: the \n that follows breaks the line.
        if (c == '\n')
          out += '\n';
      } else if (c == '\n')
        out += "\\n";
      else if (c == '\r')
        out += "\\r";
      else if (c == '\t')
        out += '\t';
      else if (c < 0x20 || c == 0x7F)
        byte_escape(c);
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    unsigned cp = 0;
    if (n == 2)
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
    else if (n == 3)
      cp = ((c & 0x0Fu) << 12)
           | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6)
           | (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
    bool hidden = (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E)
                  || (cp >= 0x2066 && cp <= 0x2069);
    if (hidden)
      cp_escape(cp);
    else
      out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

} // namespace orch::text
