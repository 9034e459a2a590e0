#include "runtime/path_rules.hpp"

#include "runtime/text.hpp"
#include "runtime/workspace.hpp"

#include <cstdio>
#include <utility>

namespace orch::detail {

namespace {

constexpr std::size_t max_path_bytes = 4096;
constexpr std::size_t max_component_bytes = 255;

using text::iequals;

std::string hex_code_point(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

// -- unicode rule -------------------------------------------------------------

struct cp_range {
  uint32_t first;
  uint32_t last;
  const char* what;
};

// Code points refused in paths. Letters, digits and ordinary punctuation of
// other scripts stay allowed; these either imitate path syntax or are
// invisible / reorder text, so a path could show one thing and mean another.
// The middle dot U+00B7 (and U+0387, which normalises to it) stays allowed:
// it is part of ordinary words (Catalan "col·lecció") and sits mid-height,
// so it does not pass for '.'. Lisu tone letters are refused as a family:
// they are drawn as '.', ',', ':' and ';'.
constexpr const char* lookalike = "a look-alike of path punctuation";
constexpr const char* invisible = "an invisible or text-direction character";
constexpr const char* space_like = "a non-ASCII space or line separator";

constexpr cp_range refused_code_points[] = {
  {0x0080, 0x009F, "a C1 control character"},
  {0x00A0, 0x00A0, space_like},
  {0x00AD, 0x00AD, invisible}, // soft hyphen
  {0x02D0, 0x02D0, lookalike}, // modifier letter triangular colon
  {0x02DC, 0x02DC, lookalike}, // small tilde
  {0x0337, 0x0338, lookalike}, // combining solidus overlays
  {0x034F, 0x034F, invisible}, // combining grapheme joiner
  {0x0589, 0x0589, lookalike}, // armenian full stop (a colon)
  {0x05C3, 0x05C3, lookalike}, // hebrew sof pasuq (a colon)
  {0x061C, 0x061C, invisible}, // arabic letter mark
  {0x0660, 0x0660, lookalike}, // arabic-indic digit zero (a dot)
  {0x06D4, 0x06D4, lookalike}, // arabic full stop
  {0x06F0, 0x06F0, lookalike}, // extended arabic-indic digit zero (a dot)
  {0x0701, 0x0709, lookalike}, // syriac full stops and colons
  {0x1361, 0x1366, lookalike}, // ethiopic wordspace, full stop, colons
  {0x1680, 0x1680, space_like},
  {0x16EB, 0x16EC, lookalike}, // runic single and multiple punctuation
  {0x1735, 0x1735, lookalike}, // philippine single punctuation
  {0x1803, 0x1803, lookalike}, // mongolian full stop
  {0x1809, 0x1809, lookalike}, // manchu full stop
  {0x180E, 0x180E, invisible}, // mongolian vowel separator
  {0x2000, 0x200A, space_like},
  {0x200B, 0x200F, invisible}, // zero width, LRM, RLM
  {0x2024, 0x2027, lookalike}, // dot leaders, ellipsis, hyphenation point
  {0x2028, 0x2029, space_like},
  {0x202A, 0x202E, invisible}, // bidi embeddings and overrides
  {0x202F, 0x202F, space_like},
  {0x2044, 0x2044, lookalike}, // fraction slash
  {0x2053, 0x2053, lookalike}, // swung dash
  {0x205F, 0x205F, space_like},
  {0x2060, 0x206F, invisible}, // word joiner, bidi isolates, ...
  {0x2215, 0x2216, lookalike}, // division slash, set minus
  {0x2236, 0x2236, lookalike}, // ratio
  {0x223C, 0x223C, lookalike}, // tilde operator
  {0x2571, 0x2572, lookalike}, // box drawing diagonals
  {0x27CB, 0x27CB, lookalike}, // rising diagonal
  {0x27CD, 0x27CD, lookalike}, // falling diagonal
  {0x29F5, 0x29F5, lookalike}, // reverse solidus operator
  {0x29F8, 0x29F9, lookalike}, // big solidus, big reverse solidus
  {0x2F03, 0x2F03, lookalike}, // kangxi radical slash
  {0x3000, 0x3000, space_like},
  {0x3002, 0x3002, lookalike}, // ideographic full stop
  {0x3033, 0x3033, lookalike}, // vertical kana repeat mark upper half
  {0xA4F8, 0xA4FF, lookalike}, // lisu tone letters and punctuation (. , :)
  {0xA60E, 0xA60E, lookalike}, // vai full stop
  {0xA789, 0xA789, lookalike}, // modifier letter colon
  {0xFDD0, 0xFDEF, "a noncharacter"},
  {0xFE00, 0xFE0F, invisible}, // variation selectors
  {0xFE10, 0xFE19, lookalike}, // vertical forms
  {0xFE30, 0xFE30, lookalike}, // vertical two dot leader
  {0xFE50, 0xFE6B, lookalike}, // small form variants
  {0xFEFF, 0xFEFF, invisible}, // byte order mark
  {0xFF01, 0xFF0F, lookalike}, // fullwidth ! .. /
  {0xFF1A, 0xFF20, lookalike}, // fullwidth : .. @
  {0xFF3B, 0xFF40, lookalike}, // fullwidth [ \ ] ^ _ `
  {0xFF5B, 0xFF65, lookalike}, // fullwidth { | } ~, halfwidth stops
  {0xFFF9, 0xFFFD, invisible}, // annotations, object, replacement
};

} // namespace

const char* refused_code_point(uint32_t cp) {
  for (const auto& r : refused_code_points)
    if (cp >= r.first && cp <= r.last)
      return r.what;
  if ((cp & 0xFFFE) == 0xFFFE)
    return "a noncharacter";
  if (cp >= 0xE0000 && cp <= 0xE0FFF)
    return invisible; // tags, variation selectors supplement
  return nullptr;
}

bool decode_utf8(std::string_view s, std::size_t& i, uint32_t& cp) {
  auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  uint32_t min = 0;
  if (b0 < 0x80) {
    cp = b0;
    ++i;
    return true;
  } else if ((b0 & 0xE0) == 0xC0) {
    n = 1;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 2;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 3;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return false;
  }
  if (i + n >= s.size())
    return false; // truncated
  for (std::size_t k = 1; k <= n; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80)
      return false;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return false;
  i += n + 1;
  return true;
}

std::string printable(std::string_view name) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size();) {
    std::size_t start = i;
    uint32_t cp = 0;
    if (!decode_utf8(name, i, cp)) {
      auto u = static_cast<unsigned char>(name[i]);
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xF];
      ++i;
      continue;
    }
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7F) {
      out += "\\x";
      out += hex[cp >> 4];
      out += hex[cp & 0xF];
    } else if (cp >= 0x80 && refused_code_point(cp) != nullptr) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u{%04X}", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out.append(name.substr(start, i - start));
    }
  }
  return out;
}

// -- lexical normalisation ----------------------------------------------------

namespace {

lexical_path refuse(std::string reason) {
  lexical_path r;
  r.reason = std::move(reason);
  return r;
}

} // namespace

lexical_path split_workspace_path(std::string_view path, bool allow_meta) {
  if (path.empty())
    return refuse("empty path");
  if (path.size() > max_path_bytes)
    return refuse("path longer than 4096 bytes");
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u == 0)
      return refuse("path contains a NUL byte");
    if (u < 0x20 || u == 0x7F)
      return refuse("path contains a control character");
    if (c == '\\')
      return refuse("path contains a backslash");
  }
  for (std::size_t i = 0; i < path.size();) {
    uint32_t cp = 0;
    if (!decode_utf8(path, i, cp))
      return refuse("path is not valid UTF-8");
    if (const char* what = refused_code_point(cp))
      return refuse("path contains " + hex_code_point(cp) + ", " + what);
  }
  if (path.front() == '/')
    return refuse("absolute path");
  if (path.front() == '~')
    return refuse("path starts with '~' (a home directory)");
  if (path.size() >= 2 && path[1] == ':'
      && ((path[0] >= 'A' && path[0] <= 'Z')
          || (path[0] >= 'a' && path[0] <= 'z')))
    return refuse("path starts with a Windows drive");
  if (path.back() == '/')
    return refuse("path ends with '/' (a directory)");

  lexical_path r;
  std::string_view last;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    std::string_view comp = path.substr(start, end - start);
    start = end + 1;
    last = comp;
    if (comp.size() > max_component_bytes)
      return refuse("a path component is longer than 255 bytes");
    if (comp.empty() || comp == ".")
      continue;
    if (comp == "..") {
      if (r.parts.empty())
        return refuse("path escapes the workspace ('..')");
      r.parts.pop_back();
      continue;
    }
    r.parts.emplace_back(comp);
  }
  if (last == "." || last == "..")
    return refuse("path ends in '.' or '..' (a directory)");
  if (r.parts.empty())
    return refuse("path names no file");
  if (!allow_meta && iequals(r.parts.front(), workspace_meta_dir))
    return refuse("path is inside the .orchestrator meta folder");
  for (const auto& p : r.parts)
    if (iequals(p, ".git"))
      return refuse("path is inside a .git folder");
  r.ok = true;
  return r;
}

} // namespace orch::detail
