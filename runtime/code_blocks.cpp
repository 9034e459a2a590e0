// Fenced code blocks in agent text that name their file
// (extract_code_blocks, looks_like_path; declared in workspace.hpp).

#include "runtime/text.hpp"
#include "runtime/workspace.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <unordered_map>

namespace orch {

namespace {

constexpr std::size_t max_path_bytes = 4096;

using text::ascii_lower;
using text::ends_with;
using text::is_space;
using text::parse_fence;
using text::split_lines;
using text::starts_with_ci;
using text::trim;

const std::array<std::string_view, 14> bare_file_names{
  "Makefile", "makefile", "GNUmakefile",    "Dockerfile",  "Containerfile",
  "Procfile", "Gemfile",  "Rakefile",       "Vagrantfile", "Jenkinsfile",
  "LICENSE",  "README",   "CMakeLists.txt", "Justfile"};

bool is_ext_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+';
}

std::string_view strip_wrapper(std::string_view s, std::string_view w) {
  if (s.size() >= 2 * w.size() + 1 && s.substr(0, w.size()) == w
      && ends_with(s, w))
    return trim(s.substr(w.size(), s.size() - 2 * w.size()));
  return s;
}

std::string_view strip_label_prefix(std::string_view s) {
  for (std::string_view p : {"file name:", "filename:", "file:", "path:"})
    if (starts_with_ci(s, p))
      return trim(s.substr(p.size()));
  return s;
}

// Strips markdown decoration around a label: bold/italic, backticks,
// a trailing colon, a `File:` prefix. Loops because they nest.
std::string unwrap_label(std::string_view s) {
  auto tmp = text::strip_bold(s);
  std::string_view v = trim(tmp);
  for (int round = 0; round < 6; ++round) {
    std::string_view before = v;
    if (!v.empty() && v.back() == ':')
      v = trim(v.substr(0, v.size() - 1));
    v = strip_label_prefix(v);
    v = strip_wrapper(v, "`");
    v = strip_wrapper(v, "*");
    if (v.size() > 4 && v.substr(0, 2) == "__" && ends_with(v, "__")
        && !looks_like_path(v))
      v = strip_wrapper(v, "__");
    if (v == before)
      break;
  }
  return std::string{v};
}

std::string_view strip_list_marker(std::string_view s) {
  if (s.size() >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+')
      && s[1] == ' ')
    return trim(s.substr(2));
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9')
    ++i;
  if (i > 0 && i + 1 < s.size() && (s[i] == '.' || s[i] == ')')
      && s[i + 1] == ' ')
    return trim(s.substr(i + 2));
  return s;
}

// The path named by the line just above a block, or "".
std::string path_from_label_line(std::string_view raw) {
  std::string_view line = trim(raw);
  if (line.empty())
    return {};
  if (line.front() == '#') {
    while (!line.empty() && line.front() == '#')
      line.remove_prefix(1);
    line = trim(line);
  }
  line = strip_list_marker(line);
  std::string label = unwrap_label(line);
  if (looks_like_path(label))
    return label;
  // "Create `api/models.py`:" - one backticked path in a line ending in ':'.
  if (!line.empty() && line.back() == ':') {
    std::vector<std::string_view> spans;
    std::size_t pos = 0;
    while (true) {
      std::size_t a = line.find('`', pos);
      if (a == std::string_view::npos)
        break;
      std::size_t b = line.find('`', a + 1);
      if (b == std::string_view::npos)
        break;
      spans.push_back(line.substr(a + 1, b - a - 1));
      pos = b + 1;
    }
    std::vector<std::string_view> paths;
    for (auto sp : spans)
      if (looks_like_path(trim(sp)))
        paths.push_back(trim(sp));
    if (paths.size() == 1)
      return std::string{paths.front()};
  }
  return {};
}

// The path in a first content line like `# File: a.py`, `// File: a.py`,
// `<!-- File: a.py -->`, `/* File: a.py */`, `-- File: a.sql`, or "".
std::string path_from_marker_line(std::string_view raw) {
  std::string_view line = trim(raw);
  std::string_view body;
  if (line.substr(0, 4) == "<!--") {
    body = line.substr(4);
    if (ends_with(body, "-->"))
      body.remove_suffix(3);
  } else if (line.substr(0, 2) == "/*") {
    body = line.substr(2);
    if (ends_with(body, "*/"))
      body.remove_suffix(2);
  } else if (line.substr(0, 2) == "//" || line.substr(0, 2) == "--") {
    body = line.substr(2);
  } else if (line.substr(0, 2) == "#!") {
    return {};
  } else if (!line.empty()
             && (line[0] == '#' || line[0] == ';' || line[0] == '%')) {
    body = line.substr(1);
  } else {
    return {};
  }
  body = trim(body);
  std::string_view rest = strip_label_prefix(body);
  if (rest.size() == body.size())
    return {}; // no File:/Path: keyword: an ordinary comment
  std::string p = unwrap_label(rest);
  if (p.empty())
    return {};
  for (char c : p)
    if (is_space(c))
      return {};
  return p;
}

// Splits an info string into tokens; quotes group, braces separate.
std::vector<std::string> info_tokens(std::string_view info) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  bool have = false;
  for (char c : info) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
      have = true;
      continue;
    }
    if (is_space(c) || c == '{' || c == '}' || c == ',') {
      if (have || !cur.empty())
        out.push_back(cur);
      cur.clear();
      have = false;
      continue;
    }
    cur += c;
  }
  if (have || !cur.empty())
    out.push_back(cur);
  return out;
}

struct info_name {
  std::string lang;
  std::string path;
};

info_name parse_info(std::string_view info) {
  info_name out;
  auto tokens = info_tokens(info);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    std::size_t eq = t.find('=');
    if (eq != std::string::npos) {
      std::string key = t.substr(0, eq);
      std::transform(key.begin(), key.end(), key.begin(), ascii_lower);
      if (out.path.empty()
          && (key == "title" || key == "file" || key == "path"
              || key == "filename"))
        out.path = std::string{trim(t.substr(eq + 1))};
      continue;
    }
    if (i != 0)
      continue;
    std::size_t colon = t.find(':');
    if (colon != std::string::npos && colon > 0
        && looks_like_path(t.substr(colon + 1))) {
      out.lang = t.substr(0, colon); // ```python:api/models.py
      out.path = t.substr(colon + 1);
    } else if (looks_like_path(t)) {
      out.path = t; // ```api/models.py
    } else {
      out.lang = t;
    }
  }
  std::transform(out.lang.begin(), out.lang.end(), out.lang.begin(),
                 ascii_lower);
  return out;
}

std::string_view dedent(std::string_view line, std::size_t n) {
  std::size_t i = 0;
  while (i < n && i < line.size() && (line[i] == ' ' || line[i] == '\t'))
    ++i;
  return line.substr(i);
}

} // namespace

bool looks_like_path(std::string_view s) {
  if (s.empty() || s.size() > max_path_bytes || s.back() == '/')
    return false;
  if (s.find("://") != std::string_view::npos)
    return false;
  for (char c : s)
    if (is_space(c) || c == '`' || c == '*' || c == '<' || c == '>' || c == '|'
        || c == '"' || c == '\'' || c == '(' || c == ')' || c == '[' || c == ']'
        || c == '{' || c == '}' || c == ',')
      return false;
  std::string_view name
    = s.substr(s.rfind('/') == std::string_view::npos ? 0 : s.rfind('/') + 1);
  for (auto bare : bare_file_names)
    if (name == bare)
      return true;
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos)
    return false;
  if (dot == 0)
    return name.size() > 1 && is_ext_char(name[1]); // .gitignore, .env
  std::string_view ext = name.substr(dot + 1);
  if (ext.empty() || ext.size() > 12)
    return false;
  bool letter = false;
  for (char c : ext) {
    if (!is_ext_char(c))
      return false;
    letter = letter || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  }
  return letter;
}

std::vector<code_block_file> extract_code_blocks(std::string_view text) {
  std::vector<code_block_file> out;
  std::unordered_map<std::string, std::size_t> index;
  auto lines = split_lines(text);

  // The last non-blank line outside blocks and how many blank lines follow.
  std::optional<std::string_view> label;
  int blanks = 0;

  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto open = parse_fence(lines[i]);
    if (!open) {
      if (trim(lines[i]).empty()) {
        ++blanks;
      } else {
        label = lines[i];
        blanks = 0;
      }
      continue;
    }
    // A label line is never blank, so empty means "none" (a plain view also
    // avoids GCC 12's false -Wmaybe-uninitialized on optional<string_view>).
    std::string_view above = blanks <= 2 && label ? *label : std::string_view{};
    // Find the closing fence, counting nested opening fences.
    std::size_t depth = 0;
    std::size_t close = lines.size();
    for (std::size_t j = i + 1; j < lines.size(); ++j) {
      auto f = parse_fence(lines[j]);
      if (!f || f->ch != open->ch || f->len < open->len)
        continue;
      if (!f->info.empty()) {
        ++depth;
      } else if (depth > 0) {
        --depth;
      } else {
        close = j;
        break;
      }
    }
    label.reset();
    blanks = 0;
    if (close == lines.size())
      break; // unterminated: ignored, and so is everything after it

    std::size_t first = i + 1;
    info_name info = parse_info(open->info);
    std::string path = info.path;
    if (first < close) {
      std::string marked = path_from_marker_line(lines[first]);
      if (!marked.empty()) {
        if (path.empty())
          path = marked;
        ++first;
      }
    }
    if (path.empty() && !above.empty())
      path = path_from_label_line(above);
    bool is_diff = info.lang == "diff" || info.lang == "patch"
                   || info.lang == "udiff";
    if (is_diff && !ends_with(path, ".diff") && !ends_with(path, ".patch"))
      path.clear(); // a diff is not the file's content
    if (!path.empty()) {
      std::string content;
      for (std::size_t j = first; j < close; ++j) {
        content += dedent(lines[j], open->indent);
        content += '\n';
      }
      std::string key = path.rfind("./", 0) == 0 ? path.substr(2) : path;
      auto it = index.find(key);
      if (it != index.end()) {
        out[it->second].content = std::move(content);
      } else {
        index.emplace(key, out.size());
        out.push_back({std::move(path), std::move(content)});
      }
    }
    i = close;
  }
  return out;
}

} // namespace orch
