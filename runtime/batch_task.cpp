#include "runtime/batch_task.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "runtime/text.hpp"

namespace orch {

namespace {

/// Deeper nesting than any valid line has is refused before nlohmann
/// parses (and later recursively destroys) it.
constexpr int max_depth = 4;

/// Returns false when brackets outside strings nest deeper than max_depth.
bool shallow(std::string_view s) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

std::string type_name(const nlohmann::json& j) {
  return j.type_name();
}

bool fail(std::string& error, std::string text) {
  error = std::move(text);
  return false;
}

} // namespace

bool parse_batch_task(std::string_view line, const batch_task_limits& limits,
                      batch_task& out, std::string& error) {
  out = batch_task{};
  if (line.size() > limits.max_line_bytes())
    return fail(error, "the line has " + std::to_string(line.size())
                         + " bytes; the limit is "
                         + std::to_string(limits.max_line_bytes()));
  for (std::size_t i = 0; i < line.size();) {
    auto n = text::utf8_char_length(line, i);
    if (n == 0)
      return fail(error, "invalid UTF-8 at byte " + std::to_string(i + 1));
    i += n;
  }
  if (!shallow(line))
    return fail(error, "invalid JSON: nested deeper than "
                         + std::to_string(max_depth) + " levels");
  auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded())
    return fail(error, "invalid JSON (expected one object per line)");
  if (!j.is_object())
    return fail(error, "expected a JSON object, got " + type_name(j));
  for (auto& [key, value] : j.items()) {
    (void)value;
    if (key != "id" && key != "task" && key != "workflow"
        && key != "max_iterations" && key != "agents")
      return fail(error, "unknown field \""
                           + text::escape_for_terminal(key.substr(0, 64))
                           + "\" (known: id, task, workflow, "
                             "max_iterations, agents)");
  }
  // -- id ---------------------------------------------------------------------
  auto id = j.find("id");
  if (id == j.end())
    return fail(error, "missing field \"id\"");
  if (!id->is_string())
    return fail(error, "field \"id\" must be a string, not " + type_name(*id));
  out.id = id->get<std::string>();
  if (out.id.empty())
    return fail(error, "field \"id\" is empty");
  if (out.id.size() > limits.max_id_bytes)
    return fail(error, "field \"id\" has " + std::to_string(out.id.size())
                         + " bytes; the limit is "
                         + std::to_string(limits.max_id_bytes));
  // -- task -------------------------------------------------------------------
  auto task = j.find("task");
  if (task == j.end())
    return fail(error, "missing field \"task\"");
  if (!task->is_string())
    return fail(error,
                "field \"task\" must be a string, not " + type_name(*task));
  out.task = task->get<std::string>();
  if (text::trim(out.task).empty())
    return fail(error, "field \"task\" is empty");
  if (out.task.size() > limits.max_task_bytes)
    return fail(error, "field \"task\" has " + std::to_string(out.task.size())
                         + " bytes; the limit is "
                         + std::to_string(limits.max_task_bytes)
                         + " (settings.max_task_chars)");
  if (out.task.find('\0') != std::string::npos)
    return fail(error, "field \"task\" contains a NUL character");
  // -- workflow ---------------------------------------------------------------
  if (auto wf = j.find("workflow"); wf != j.end() && !wf->is_null()) {
    if (!wf->is_string())
      return fail(error,
                  "field \"workflow\" must be a string, not " + type_name(*wf));
    out.workflow = wf->get<std::string>();
    if (out.workflow.empty())
      return fail(error, "field \"workflow\" is empty");
  }
  // -- max_iterations ---------------------------------------------------------
  if (auto mi = j.find("max_iterations"); mi != j.end() && !mi->is_null()) {
    if (!mi->is_number_integer() || mi->get<int64_t>() < 1
        || mi->get<int64_t>() > 1000)
      return fail(error, "field \"max_iterations\" must be an integer from 1 "
                         "to 1000");
    out.max_iterations = static_cast<int32_t>(mi->get<int64_t>());
  }
  // -- agents -----------------------------------------------------------------
  if (auto ag = j.find("agents"); ag != j.end() && !ag->is_null()) {
    if (ag->is_string()) {
      out.agents = ag->get<std::string>();
    } else if (ag->is_array()) {
      for (auto& name : *ag) {
        if (!name.is_string() || name.get<std::string>().empty()
            || name.get<std::string>().find(',') != std::string::npos)
          return fail(error, "field \"agents\" must be a comma list or an "
                             "array of agent names");
        out.agents += (out.agents.empty() ? "" : ",") + name.get<std::string>();
      }
    } else {
      return fail(error, "field \"agents\" must be a string or an array, not "
                           + type_name(*ag));
    }
    if (text::trim(out.agents).empty())
      return fail(error, "field \"agents\" names no agent");
  }
  return true;
}

batch_task_source::batch_task_source(detail::unique_fd fd,
                                     batch_task_limits limits,
                                     std::unordered_set<std::string> skip)
  : fd_{std::move(fd)}, reader_{fd_.get(), limits.max_line_bytes()},
    limits_{limits}, skip_{std::move(skip)} {
  // nop
}

bool batch_task_source::next(batch_task& out, std::vector<bad_line>& bad) {
  jsonl_line line;
  std::string error;
  while (reader_.next(line)) {
    if (line.too_long) {
      bad.push_back(
        {line.number, "the line has " + std::to_string(line.size)
                        + " bytes; the limit is "
                        + std::to_string(limits_.max_line_bytes())});
      continue;
    }
    if (text::trim(line.text).empty())
      continue;
    if (!parse_batch_task(line.text, limits_, out, error)) {
      bad.push_back({line.number, std::move(error)});
      continue;
    }
    out.line = line.number;
    if (!seen_.insert(out.id).second) {
      bad.push_back({line.number, "duplicate id \""
                                    + text::escape_for_terminal(out.id)
                                    + "\" (first seen on an earlier line)"});
      continue;
    }
    if (skip_.count(out.id) != 0) {
      ++skipped_;
      continue;
    }
    return true;
  }
  return false;
}

detail::unique_fd open_batch_input(const std::string& path,
                                   std::string& error) {
  detail::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd) {
    error = "cannot open " + path + ": " + detail::errno_text(errno);
    return fd;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || S_ISDIR(st.st_mode)) {
    error = path + " is a folder, not a JSON-lines file";
    return detail::unique_fd{};
  }
  return fd;
}

} // namespace orch
