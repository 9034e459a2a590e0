#include "runtime/review.hpp"
#include "runtime/text.hpp"
#include "runtime/workspace.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

namespace orch {

namespace {

// -- string helpers -----------------------------------------------------------

using text::ends_with;
using text::fence;
using text::is_space;
using text::lower;
using text::parse_fence;
using text::split_lines;
using text::starts_with;
using text::trim;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Newlines and tabs become spaces, runs of spaces collapse: one finding or
// one prompt header is one line.
std::string one_line(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : trim(s)) {
    if (is_space(c) || static_cast<unsigned char>(c) < 0x20) {
      space = true;
      continue;
    }
    if (space && !out.empty())
      out += ' ';
    space = false;
    out += c;
  }
  return out;
}

int32_t clamp_line(long long v) {
  if (v < 0)
    return 0;
  return v > INT32_MAX ? INT32_MAX : static_cast<int32_t>(v);
}

// Leading digits of `s` ("12", "12-14", "L12"), 0 when none.
int32_t leading_number(std::string_view s) {
  s = trim(s);
  if (!s.empty() && (s[0] == 'L' || s[0] == 'l') && s.size() > 1
      && is_digit(s[1]))
    s.remove_prefix(1);
  long long v = 0;
  std::size_t i = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    v = v * 10 + (s[i] - '0');
    if (v > INT32_MAX)
      v = INT32_MAX;
  }
  return i == 0 ? 0 : clamp_line(v);
}

// -- severities ---------------------------------------------------------------

struct severity_word {
  std::string_view word;
  std::string_view severity;
};

constexpr std::array<severity_word, 27> severity_words{{
  {"critical", "critical"}, {"crit", "critical"},      {"blocker", "critical"},
  {"blocking", "critical"}, {"fatal", "critical"},     {"high", "high"},
  {"error", "high"},        {"major", "high"},         {"severe", "high"},
  {"important", "high"},    {"medium", "medium"},      {"med", "medium"},
  {"moderate", "medium"},   {"warning", "medium"},     {"warn", "medium"},
  {"low", "low"},           {"minor", "low"},          {"nit", "low"},
  {"nitpick", "low"},       {"trivial", "low"},        {"info", "info"},
  {"information", "info"},  {"informational", "info"}, {"note", "info"},
  {"suggestion", "info"},   {"optional", "info"},      {"hint", "info"},
}};

// The normalised severity of a known word, or nullopt.
std::optional<std::string> known_severity(std::string_view word) {
  std::string w = lower(trim(word));
  for (const auto& s : severity_words)
    if (w == s.word)
      return std::string{s.severity};
  return std::nullopt;
}

// A severity label such as "High", "high severity", "Critical priority",
// "HIGH (2)"; nullopt when the words are not one.
std::optional<std::string> severity_label(std::string_view s) {
  std::string w = lower(trim(s));
  if (auto paren = w.find(" (");
      paren != std::string::npos && !w.empty() && w.back() == ')')
    w = std::string{trim(std::string_view{w}.substr(0, paren))};
  for (std::string_view suffix : {" severity", " priority", " issues", " issue",
                                  " findings", " problems", " risk", " risks"})
    if (ends_with(w, suffix)) {
      w.resize(w.size() - suffix.size());
      break;
    }
  for (std::string_view prefix : {"severity: ", "severity "})
    if (starts_with(w, prefix))
      w.erase(0, prefix.size());
  return known_severity(w);
}

// -- JSON findings ------------------------------------------------------------

// Index of the `}` matching the `{` at `open`, aware of JSON strings, or npos.
// Every byte looked at is taken from `budget`; npos once it is spent.
std::size_t match_brace(std::string_view text, std::size_t open,
                        std::size_t& budget) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = open; i < text.size(); ++i) {
    if (budget == 0)
      return std::string_view::npos;
    --budget;
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      if (--depth == 0)
        return i;
    }
  }
  return std::string_view::npos;
}

std::string json_string(const nlohmann::json& obj,
                        std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = obj.find(k);
    if (it == obj.end())
      continue;
    if (it->is_string() && !trim(it->get_ref<const std::string&>()).empty())
      return std::string{trim(it->get_ref<const std::string&>())};
    if (it->is_number_integer())
      return std::to_string(it->get<long long>());
  }
  return {};
}

int32_t json_line(const nlohmann::json& obj) {
  for (const char* k : {"line", "line_number", "lineno", "start_line"}) {
    auto it = obj.find(k);
    if (it == obj.end())
      continue;
    if (it->is_number_unsigned())
      return clamp_line(static_cast<long long>(
        std::min<uint64_t>(it->get<uint64_t>(), INT32_MAX)));
    if (it->is_number_integer())
      return clamp_line(it->get<long long>());
    if (it->is_number_float()) {
      double d = it->get<double>();
      return d >= 1 && d < 2147483647.0 ? static_cast<int32_t>(d) : 0;
    }
    if (it->is_string())
      return leading_number(it->get_ref<const std::string&>());
  }
  return 0;
}

// Splits "a/b.py:12" into file and line when the line is not given apart.
void split_file_line(finding& f) {
  if (f.line != 0)
    return;
  std::size_t colon = f.file.rfind(':');
  if (colon == std::string::npos || colon + 1 >= f.file.size())
    return;
  std::string_view tail = std::string_view{f.file}.substr(colon + 1);
  if (!std::all_of(tail.begin(), tail.end(), is_digit))
    return;
  // "a.py:12:5": the column is dropped, the line kept.
  std::string head = f.file.substr(0, colon);
  std::size_t colon2 = head.rfind(':');
  if (colon2 != std::string::npos && colon2 + 1 < head.size()
      && std::all_of(head.begin() + static_cast<long>(colon2) + 1, head.end(),
                     is_digit)) {
    f.line = leading_number(std::string_view{head}.substr(colon2 + 1));
    f.file = head.substr(0, colon2);
    return;
  }
  f.line = leading_number(tail);
  f.file = head;
}

std::vector<finding> convert_json(const nlohmann::json& items) {
  std::vector<finding> out;
  for (const auto& item : items) {
    finding f;
    if (item.is_string()) {
      f.severity = "info";
      f.text = one_line(item.get_ref<const std::string&>());
      if (!f.text.empty())
        out.push_back(std::move(f));
      continue;
    }
    if (!item.is_object())
      continue;
    f.severity = normalize_severity(
      json_string(item, {"severity", "level", "priority"}));
    f.file = json_string(item, {"file", "path", "filename", "location"});
    f.line = json_line(item);
    split_file_line(f);
    f.text = one_line(
      json_string(item, {"text", "message", "description", "issue", "title",
                         "detail", "summary", "suggestion", "recommendation"}));
    if (!f.text.empty() || !f.file.empty())
      out.push_back(std::move(f));
  }
  return out;
}

struct json_search {
  std::optional<std::vector<finding>> findings;
  bool key_seen = false;
};

// The last JSON object in `text` with a top-level "findings" array. Starts
// from each `"findings"` key (last first) and tries the enclosing `{`s, so
// the cost stays bounded on long texts full of braces.
json_search find_json_findings(std::string_view text) {
  json_search out;
  // Bounds the work on long texts full of unbalanced braces: about 16 passes
  // over a maximal (16 MiB) output.
  std::size_t budget = std::size_t{256} << 20;
  constexpr std::string_view key = "\"findings\"";
  std::size_t pos = text.rfind(key);
  for (int keys = 0; pos != std::string_view::npos && keys < 64; ++keys) {
    // Only a key counts: the next non-space character is ':'.
    std::size_t after = pos + key.size();
    while (after < text.size() && is_space(text[after]))
      ++after;
    if (after < text.size() && text[after] == ':') {
      out.key_seen = true;
      int tries = 0;
      std::size_t floor = pos > (1u << 20) ? pos - (1u << 20) : 0;
      for (std::size_t b = pos; b-- > floor && tries < 256;) {
        if (text[b] != '{')
          continue;
        ++tries;
        std::size_t e = match_brace(text, b, budget);
        if (budget == 0)
          return out;
        if (e == std::string_view::npos || e < pos)
          continue;
        budget -= std::min(budget, e - b); // the parse reads it once more
        auto doc = nlohmann::json::parse(text.substr(b, e - b + 1), nullptr,
                                         false, true);
        if (doc.is_discarded() || !doc.is_object())
          continue;
        auto it = doc.find("findings");
        if (it != doc.end() && it->is_array()) {
          out.findings = convert_json(*it);
          return out;
        }
        break; // parsed, but "findings" is not its own key: go to older ones
      }
    }
    if (pos == 0)
      break;
    pos = text.rfind(key, pos - 1);
  }
  return out;
}

// -- text fallback ------------------------------------------------------------

// Removes `**` everywhere (never part of a path or severity) and wrapping
// backticks.
std::string unbold(std::string_view s) {
  return std::string{trim(text::strip_bold(s))};
}

std::string strip_ticks(std::string_view s) {
  s = trim(s);
  while (s.size() >= 2 && s.front() == '`' && s.back() == '`')
    s = trim(s.substr(1, s.size() - 2));
  return std::string{s};
}

// Leading separators between parts of an item: `:`, `-`, en/em dash, `|`.
std::string_view strip_separators(std::string_view s) {
  for (;;) {
    s = trim(s);
    if (starts_with(s, ":") || starts_with(s, "-") || starts_with(s, "|")
        || starts_with(s, ","))
      s.remove_prefix(1);
    else if (starts_with(s, "\xE2\x80\x94") || starts_with(s, "\xE2\x80\x93"))
      s.remove_prefix(3);
    else
      return s;
  }
}

struct item_parts {
  std::string severity; // normalised; empty when the item names none
  std::string file;
  int32_t line = 0;
  std::string text;
};

// Takes a leading severity label off `s`: `[high]`, `(high)`, `**High**:`,
// `**High:**`, `high:`, `High -`, `High severity:`.
std::string take_severity(std::string_view& s, bool core_only) {
  auto accept = [&](std::string_view word) -> std::optional<std::string> {
    auto sev = severity_label(word);
    if (!sev)
      return std::nullopt;
    if (core_only && *sev == "info")
      return std::nullopt;
    return sev;
  };
  std::string_view t = trim(s);
  bool bold = starts_with(t, "**");
  if (bold) {
    std::size_t close = t.find("**", 2);
    if (close == std::string_view::npos)
      return {};
    std::string_view inner = trim(t.substr(2, close - 2));
    if (!inner.empty() && inner.back() == ':')
      inner.remove_suffix(1);
    if (inner.size() >= 2 && (inner.front() == '[' || inner.front() == '('))
      inner = inner.substr(1, inner.size() - 2);
    if (auto sev = accept(inner)) {
      std::string_view rest = t.substr(close + 2);
      s = strip_separators(rest);
      return *sev;
    }
    return {};
  }
  if (starts_with(t, "[") || starts_with(t, "(")) {
    char closer = t[0] == '[' ? ']' : ')';
    std::size_t close = t.find(closer);
    if (close == std::string_view::npos)
      return {};
    if (auto sev = accept(t.substr(1, close - 1))) {
      s = strip_separators(t.substr(close + 1));
      return *sev;
    }
    return {};
  }
  // A plain word (or two, "High severity") followed by ':' or a dash.
  std::size_t i = 0;
  while (i < t.size() && (is_alpha(t[i]) || t[i] == ' ') && i < 32)
    ++i;
  std::string_view word = trim(t.substr(0, i));
  std::string_view rest = t.substr(i);
  bool sep = starts_with(rest, ":") || starts_with(trim(rest), "- ")
             || starts_with(trim(rest), "\xE2\x80\x94")
             || starts_with(trim(rest), "\xE2\x80\x93");
  if (!word.empty() && sep && (i == t.size() || !is_alpha(t[i]))) {
    if (auto sev = accept(word)) {
      s = strip_separators(rest);
      return *sev;
    }
  }
  return {};
}

// Takes a leading `path:line`, `` `path:line` ``, `**path**:`, `path - `,
// `path, line 12:` off `s`.
void take_location(std::string_view& s, item_parts& out) {
  std::string_view t = trim(s);
  std::size_t end = 0;
  while (end < t.size() && !is_space(t[end]))
    ++end;
  std::string_view token = t.substr(0, end);
  std::string_view rest = t.substr(end);
  bool colon_after = false;
  std::string core = unbold(token);
  while (!core.empty() && (core.back() == ':' || core.back() == ',')) {
    colon_after = colon_after || core.back() == ':';
    core.pop_back();
  }
  core = strip_ticks(core);
  if (!core.empty() && core.back() == ':') {
    colon_after = true;
    core.pop_back();
  }
  finding f;
  f.file = core;
  split_file_line(f);
  if (f.line == 0) {
    // "a.py:12-14" / "a.py:L12"
    std::size_t colon = core.rfind(':');
    if (colon != std::string::npos && colon + 1 < core.size()
        && leading_number(std::string_view{core}.substr(colon + 1)) > 0
        && looks_like_path(std::string_view{core}.substr(0, colon))) {
      f.line = leading_number(std::string_view{core}.substr(colon + 1));
      f.file = core.substr(0, colon);
    }
  }
  if (!looks_like_path(f.file))
    return;
  std::string_view after = trim(rest);
  if (f.line == 0) {
    // "a.py, line 12:" / "a.py (line 12):" / "a.py line 12 -"
    std::string_view probe = after;
    if (starts_with(probe, ","))
      probe = trim(probe.substr(1));
    if (starts_with(probe, "("))
      probe = trim(probe.substr(1));
    std::string low
      = lower(probe.substr(0, std::min<std::size_t>(6, probe.size())));
    std::size_t skip = starts_with(low, "lines ")  ? 6
                       : starts_with(low, "line ") ? 5
                                                   : 0;
    if (skip > 0) {
      std::string_view num = trim(probe.substr(skip));
      int32_t n = leading_number(num);
      if (n > 0) {
        std::size_t k = 0;
        while (k < num.size() && !is_space(num[k]) && num[k] != ':'
               && num[k] != ')')
          ++k;
        if (k < num.size() && num[k] == ')')
          ++k;
        f.line = n;
        after = trim(num.substr(k));
        colon_after = true;
      }
    }
  }
  bool dash_after = starts_with(after, "- ")
                    || starts_with(after, "\xE2\x80\x94")
                    || starts_with(after, "\xE2\x80\x93")
                    || starts_with(after, ":") || starts_with(after, "|");
  if (f.line == 0 && !colon_after && !dash_after && !after.empty())
    return; // "README.md is missing": a sentence, not a location
  out.file = f.file;
  out.line = f.line;
  s = strip_separators(after);
}

item_parts parse_item(std::string_view body, bool core_only) {
  item_parts out;
  std::string_view s = trim(body);
  out.severity = take_severity(s, core_only);
  take_location(s, out);
  // "routes.py:12 [high] text" - a severity after the location.
  if (out.severity.empty() && !out.file.empty())
    out.severity = take_severity(s, true);
  out.text = one_line(strip_separators(s));
  return out;
}

// Text that says there is nothing to report.
bool is_no_issue_text(std::string_view text) {
  std::string w;
  for (char c : lower(text)) {
    if (is_alpha(c) || is_digit(c))
      w += c;
    else if (!w.empty() && w.back() != ' ')
      w += ' ';
  }
  while (!w.empty() && w.back() == ' ')
    w.pop_back();
  for (std::string_view exact :
       {"lgtm", "looks good", "looks good to me", "looks good overall",
        "all good", "approved", "none", "n a", "nothing", "no", "ok",
        "everything looks good", "looks fine", "all clear"})
    if (w == exact)
      return true;
  for (std::string_view prefix :
       {"no issue", "no finding", "no problem", "no remaining", "no further",
        "no open", "no outstanding", "no bugs", "no concerns",
        "nothing to report", "nothing to fix", "nothing left", "none found",
        "lgtm "})
    if (starts_with(w, prefix))
      return true;
  return false;
}

bool is_positive_label(std::string_view text) {
  std::string w = lower(text);
  for (std::string_view p :
       {"strength", "positive", "what's good", "what is good", "what works",
        "well done", "praise", "good practice", "what went well", "pros"})
    if (w.find(p) != std::string::npos)
      return true;
  return false;
}

// A list marker at the start of `line` (after indentation): `-`, `*`, `+`,
// `•`, `1.`, `1)`. Returns the body, or nullopt.
std::optional<std::string_view> list_body(std::string_view trimmed) {
  for (std::string_view m : {"- ", "* ", "+ ", "\xE2\x80\xA2 "})
    if (starts_with(trimmed, m))
      return trim(trimmed.substr(m.size()));
  if (trimmed == "\xE2\x80\xA2" || trimmed == "-" || trimmed == "*")
    return std::string_view{};
  std::size_t i = 0;
  while (i < trimmed.size() && i < 4 && is_digit(trimmed[i]))
    ++i;
  if (i > 0 && i < trimmed.size() && (trimmed[i] == '.' || trimmed[i] == ')')
      && (i + 1 == trimmed.size() || trimmed[i + 1] == ' '))
    return trim(trimmed.substr(i + 1));
  return std::nullopt;
}

std::vector<std::string> table_cells(std::string_view line) {
  std::vector<std::string> cells;
  std::string_view t = trim(line);
  if (starts_with(t, "|"))
    t.remove_prefix(1);
  if (ends_with(t, "|"))
    t.remove_suffix(1);
  std::size_t start = 0;
  while (start <= t.size()) {
    std::size_t bar = t.find('|', start);
    if (bar == std::string_view::npos)
      bar = t.size();
    cells.push_back(strip_ticks(unbold(t.substr(start, bar - start))));
    start = bar + 1;
  }
  return cells;
}

struct table_columns {
  int severity = -1;
  int file = -1;
  int line = -1;
  int text = -1;
  bool valid() const {
    return text >= 0;
  }
};

table_columns table_header(const std::vector<std::string>& cells) {
  table_columns c;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    std::string h = lower(cells[i]);
    int idx = static_cast<int>(i);
    if (c.severity < 0 && (h == "severity" || h == "priority" || h == "level"))
      c.severity = idx;
    else if (c.file < 0 && (h == "file" || h == "path" || h == "location"))
      c.file = idx;
    else if (c.line < 0 && (h == "line" || h == "lines" || h == "line #"))
      c.line = idx;
    else if (c.text < 0
             && (h == "issue" || h == "finding" || h == "description"
                 || h == "problem" || h == "text" || h == "message"
                 || h == "comment" || h == "details"))
      c.text = idx;
  }
  if (c.severity < 0 && c.file < 0)
    c.text = -1; // not a findings table
  return c;
}

bool is_table_separator(const std::vector<std::string>& cells) {
  for (const auto& c : cells)
    for (char ch : c)
      if (ch != '-' && ch != ':' && ch != ' ')
        return false;
  return true;
}

struct text_parser {
  std::vector<finding> out;
  std::string section_severity;
  std::string section_file;
  bool positive = false;
  // The item a deeper-indented or wrapped line continues.
  bool can_continue = false;
  std::size_t item_indent = 0;
  bool wrapped_ok = false;
  table_columns table;

  // A heading or label line: sets or resets the section.
  void label(std::string_view raw) {
    std::string text = strip_ticks(unbold(raw));
    while (!text.empty() && text.back() == ':')
      text.pop_back();
    text = strip_ticks(text);
    can_continue = false;
    wrapped_ok = false;
    if (auto sev = severity_label(text)) {
      section_severity = *sev;
      positive = false;
      return;
    }
    if (looks_like_path(text)) {
      section_file = text;
      positive = false;
      return;
    }
    positive = is_positive_label(text);
    section_severity.clear();
    section_file.clear();
  }

  void add(item_parts&& p, std::size_t indent) {
    finding f;
    f.severity = !p.severity.empty()         ? p.severity
                 : !section_severity.empty() ? section_severity
                                             : "info";
    f.file = !p.file.empty() ? p.file : section_file;
    f.line = p.line;
    f.text = std::move(p.text);
    out.push_back(std::move(f));
    can_continue = true;
    wrapped_ok = true;
    item_indent = indent;
  }

  void append(std::string_view more) {
    std::string m = one_line(more);
    if (m.empty() || out.empty())
      return;
    out.back().text += out.back().text.empty() ? m : " " + m;
  }

  void table_row(std::string_view line) {
    auto cells = table_cells(line);
    if (!table.valid()) {
      table = table_header(cells);
      return;
    }
    if (is_table_separator(cells))
      return;
    auto cell = [&](int i) {
      return i >= 0 && static_cast<std::size_t>(i) < cells.size()
               ? cells[static_cast<std::size_t>(i)]
               : std::string{};
    };
    item_parts p;
    std::string sev = cell(table.severity);
    p.severity = sev.empty() ? std::string{} : normalize_severity(sev);
    finding loc;
    loc.file = cell(table.file);
    loc.line = leading_number(cell(table.line));
    split_file_line(loc);
    p.file = loc.file;
    p.line = loc.line;
    p.text = one_line(cell(table.text));
    if (p.text.empty() || is_no_issue_text(p.text) || positive)
      return;
    add(std::move(p), 0);
    can_continue = false;
    wrapped_ok = false;
  }

  void line(std::string_view raw) {
    std::string_view t = trim(raw);
    std::size_t indent
      = static_cast<std::size_t>(std::find_if(raw.begin(), raw.end(),
                                              [](char c) {
                                                return !is_space(c);
                                              })
                                 - raw.begin());
    if (t.empty()) {
      wrapped_ok = false;
      return;
    }
    if (starts_with(t, "|")) {
      table_row(t);
      return;
    }
    table = {};
    if (starts_with(t, "#")) {
      std::string_view h = t;
      while (starts_with(h, "#"))
        h.remove_prefix(1);
      label(h);
      return;
    }
    if (t.find_first_not_of("-*_= ") == std::string_view::npos)
      return; // horizontal rule
    if (auto body = list_body(t)) {
      // A deeper item continues the one above unless it carries its own
      // critical/high/medium/low label ("- suggestion: ..." continues).
      if (can_continue && indent > item_indent) {
        std::string_view probe = *body;
        if (take_severity(probe, true).empty()) {
          append(*body);
          return;
        }
      }
      item_parts p = parse_item(*body, false);
      if (p.text.empty()) {
        label(*body); // "- **High**", "1. `routes.py`:"
        return;
      }
      if (is_label_line(*body, false)) {
        label(*body);
        return;
      }
      if (positive || is_no_issue_text(p.text)) {
        can_continue = false;
        wrapped_ok = false;
        return;
      }
      add(std::move(p), indent);
      return;
    }
    // A wrapped continuation of the item just above.
    if (wrapped_ok && indent >= 2) {
      append(t);
      return;
    }
    if (is_label_line(t, true)) {
      label(t);
      return;
    }
    // A plain line counts only with an explicit critical/high/medium/low
    // label ("HIGH: ...", "[medium] ..."); other prose is not a finding.
    item_parts p = parse_item(t, true);
    if (!p.severity.empty() && !p.text.empty() && !positive
        && !is_no_issue_text(p.text)) {
      add(std::move(p), indent);
      return;
    }
    can_continue = false;
    wrapped_ok = false;
  }

  // "**High severity**", "Medium:", "Strengths:", "`routes.py`:" - a short
  // line that names a group rather than describing a problem.
  static bool is_label_line(std::string_view t, bool any_colon) {
    std::string u = unbold(t);
    if (u.size() > 80)
      return false;
    bool bold_only = starts_with(t, "**")
                     && (ends_with(t, "**") || ends_with(t, "**:"));
    if (!bold_only && !ends_with(u, ":"))
      return false;
    std::string inner = u;
    while (!inner.empty() && inner.back() == ':')
      inner.pop_back();
    inner = strip_ticks(inner);
    return severity_label(inner) || looks_like_path(inner)
           || is_positive_label(inner)
           || (any_colon && !t.empty() && t.back() == ':');
  }
};

std::vector<finding> parse_text_findings(std::string_view text) {
  text_parser p;
  std::optional<fence> open;
  for (std::string_view line : split_lines(text)) {
    auto f = parse_fence(line);
    if (open) {
      if (f && f->ch == open->ch && f->len >= open->len && f->info.empty())
        open.reset();
      continue;
    }
    if (f) {
      open = f;
      p.can_continue = false;
      p.wrapped_ok = false;
      continue;
    }
    p.line(line);
  }
  return std::move(p.out);
}

// -- prompts ------------------------------------------------------------------

const task_template* find_custom(const config& cfg, std::string_view kind) {
  for (const auto& t : cfg.tasks)
    if (t.name == kind)
      return &t;
  return nullptr;
}

std::string format_files(const std::vector<std::string>& files) {
  if (files.empty())
    return "(none yet)";
  std::string out;
  std::size_t n = std::min(files.size(), prompt_file_cap);
  for (std::size_t i = 0; i < n; ++i)
    out += "- " + one_line(files[i]) + "\n";
  if (files.size() > n)
    out += "- ... and " + std::to_string(files.size() - n) + " more\n";
  out.pop_back();
  return out;
}

std::string format_previous(std::string_view previous) {
  std::string_view t = trim(previous);
  if (t.empty())
    return "(none)";
  return cap_text(t, prompt_output_cap);
}

// Replaces {name} placeholders in one pass.
std::string
substitute(std::string_view tmpl,
           const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '{') {
      bool done = false;
      for (const auto& [name, value] : values) {
        std::string ph = "{" + name + "}";
        if (tmpl.compare(i, ph.size(), ph) == 0) {
          out += value;
          i += ph.size();
          done = true;
          break;
        }
      }
      if (done)
        continue;
    }
    out += tmpl[i++];
  }
  return out;
}

constexpr std::string_view write_files_text
  = "Write the files in the current working directory: it is the workspace "
    "of this run. Use paths relative to it, create folders as needed, and do "
    "not write anywhere else.\n"
    "If you cannot write files, reply instead with every file in full as a "
    "fenced code block whose info string names its relative path, for "
    "example:\n"
    "\n"
    "```python title=src/app.py\n"
    "print(\"hello\")\n"
    "```\n";

constexpr std::string_view findings_format_text
  = "Reply with your findings as one ```json block in exactly this shape:\n"
    "\n"
    "```json\n"
    "{\"findings\": [{\"severity\": \"high|medium|low\", \"file\": "
    "\"relative/path.py\", \"line\": 12, \"text\": \"what is wrong and how to "
    "fix it\"}]}\n"
    "```\n"
    "\n"
    "Severity: high = wrong behaviour, data loss or a security hole; medium = "
    "a real but limited problem; low = minor. Use \"line\": 0 when no line "
    "applies. When nothing is left to fix, reply with {\"findings\": []}.\n";

std::string kind_instructions(std::string_view kind, bool has_findings) {
  std::string s;
  if (kind == "implement") {
    s += "Implement the task.\n";
    if (has_findings)
      s += "A review found the problems listed under \"Open findings\": "
           "address them first.\n";
    s += write_files_text;
    s += "\nEnd with a short summary of what you did.\n";
  } else if (kind == "review" || kind == "security_review") {
    if (kind == "review")
      s += "Review the files in the current working directory (listed "
           "below) against the task: correctness, error handling, "
           "security, tests and clarity.";
    else
      s += "Review the files in the current working directory (listed "
           "below) for security problems only: injection (SQL, shell, "
           "paths), authentication and authorisation, secrets in code, "
           "unsafe deserialisation, input validation, dependencies.";
    s += " Do not modify any file.\n";
    if (has_findings)
      s += "The previous review raised the findings listed under \"Open "
           "findings\": check each, and report it again only if it is still "
           "open.\n";
    s += "\n";
    s += findings_format_text;
  } else if (kind == "refine") {
    if (has_findings)
      s += "Fix the findings listed under \"Open findings\" in the files of "
           "the current working directory.";
    else
      s += "No findings are open: check the files in the current working "
           "directory and make only clearly needed fixes.";
    s += " Keep the existing behaviour otherwise: change only what a "
         "finding requires and do not rewrite working code.\n";
    s += write_files_text;
    s += "\nEnd with one line per finding saying what you changed.\n";
  } else if (kind == "test") {
    s += "Write tests for the code in the current working directory, in its "
         "language and usual test framework (for example under tests/). Run "
         "them if you can; report bugs they reveal in the code.\n";
    s += write_files_text;
  } else if (kind == "document") {
    s += "Write documentation for the code in the current working "
         "directory: a README.md (purpose, setup, usage, examples) and doc "
         "comments where they help. Do not change behaviour.\n";
    s += write_files_text;
  } else if (kind == "suggestions") {
    s += "Propose improvements to the files in the current working "
         "directory: design, performance, readability, tests, "
         "documentation. Do not modify any file. Report each suggestion as "
         "a finding (severity low unless it fixes a real problem).\n\n";
    s += findings_format_text;
  } else {
    s += "Carry out the task above on the files in the current working "
         "directory.\n";
    s += write_files_text;
  }
  return s;
}

} // namespace

// -- public -------------------------------------------------------------------

std::string normalize_severity(std::string_view word) {
  if (auto s = known_severity(word))
    return *s;
  return "info";
}

review_parse parse_review(std::string_view text) {
  review_parse out;
  json_search js = find_json_findings(text);
  if (js.findings) {
    out.findings = std::move(*js.findings);
    out.source = findings_source::json;
    return out;
  }
  out.malformed_json = js.key_seen;
  out.findings = parse_text_findings(text);
  out.source = out.findings.empty() ? findings_source::none
                                    : findings_source::text;
  return out;
}

std::vector<finding> parse_findings(std::string_view text) {
  return parse_review(text).findings;
}

std::string format_findings(const std::vector<finding>& findings,
                            std::size_t max_items) {
  if (findings.empty())
    return "(none)";
  std::string out;
  std::size_t n = std::min(findings.size(), max_items);
  for (std::size_t i = 0; i < n; ++i) {
    const finding& f = findings[i];
    out += std::to_string(i + 1) + ". [" + f.severity + "]";
    if (!f.file.empty()) {
      out += " " + one_line(f.file);
      if (f.line > 0)
        out += ":" + std::to_string(f.line);
    }
    out += " - " + one_line(f.text) + "\n";
  }
  if (findings.size() > n)
    out += "... and " + std::to_string(findings.size() - n) + " more\n";
  out.pop_back();
  return out;
}

bool is_review_task(const config& cfg, std::string_view kind) {
  if (kind == "review" || kind == "security_review" || kind == "suggestions")
    return true;
  const task_template* t = find_custom(cfg, kind);
  return t != nullptr && t->review;
}

std::string cap_text(std::string_view text, std::size_t cap) {
  return text::head_and_tail(text, cap / 2, cap - cap / 2, [](std::size_t n) {
    return "\n[... " + std::to_string(n) + " bytes cut ...]\n";
  });
}

std::string render_prompt(const config& cfg, const prompt_context& ctx) {
  const std::string kind = one_line(ctx.task_kind);
  const std::string first = "Task kind: " + kind + "\n";
  const std::string findings = format_findings(ctx.findings);
  const std::string files = format_files(ctx.files);
  const std::string previous = format_previous(ctx.previous_output);
  const std::string iteration = std::to_string(ctx.iteration);

  if (const task_template* t = find_custom(cfg, ctx.task_kind)) {
    // Every placeholder of the config's list, so validation and rendering
    // cannot disagree (a new one fails -Wswitch here until it is filled).
    std::vector<std::pair<std::string, std::string>> values;
    for (const auto& [ph, name] : prompt_placeholders) {
      std::string value;
      switch (ph) {
        case prompt_placeholder::task:
          value = ctx.task;
          break;
        case prompt_placeholder::findings:
          value = findings;
          break;
        case prompt_placeholder::files:
          value = files;
          break;
        case prompt_placeholder::previous_output:
          value = previous;
          break;
        case prompt_placeholder::workspace:
          value = ctx.workspace;
          break;
        case prompt_placeholder::iteration:
          value = iteration;
          break;
        case prompt_placeholder::task_kind:
          value = kind;
          break;
      }
      values.emplace_back(std::string{name}, std::move(value));
    }
    std::string body = substitute(t->prompt, values);
    std::string out = starts_with(body, first) ? body : first + "\n" + body;
    if (out.empty() || out.back() != '\n')
      out += '\n';
    return out;
  }

  std::string out = first;
  out += "\n## Task\n\n";
  out += std::string{trim(ctx.task)};
  out += "\n\n## What to do\n\n";
  out += kind_instructions(kind, !ctx.findings.empty());
  if (!ctx.findings.empty()) {
    out += "\n## Open findings\n\n";
    out += findings;
    out += "\n";
  }
  out += "\n## Files in the workspace";
  if (!ctx.workspace.empty())
    out += " (" + one_line(ctx.workspace) + ")";
  out += "\n\n" + files + "\n";
  if (!trim(ctx.previous_output).empty()) {
    out += "\n## Output of the previous step\n\n";
    out += previous;
    out += "\n";
  }
  out += "\nThis is iteration " + iteration + ".\n";
  return out;
}

} // namespace orch
