// Loading and validation of the configuration. yaml-cpp is used here and
// nowhere else; its exceptions are caught in parse_config and turned into
// config_error values.
//
// Loading runs in two passes. The parser walks the YAML tree, checks keys and
// types and fills the plain structs, remembering where each dotted key was
// written. The validator then checks the structs alone (references between
// steps, agents and tasks, ranges, deadline invariants), so the built-in
// config goes through exactly the same rules as a file.

#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace orch {

namespace fs = std::filesystem;

// -- enums and lookups --------------------------------------------------------

std::string to_string(adapter_kind x) {
  switch (x) {
    case adapter_kind::codex:
      return "codex";
    case adapter_kind::claude:
      return "claude";
    case adapter_kind::gemini:
      return "gemini";
    case adapter_kind::copilot:
      return "copilot";
    case adapter_kind::command:
      return "command";
  }
  return "command";
}

std::optional<adapter_kind> parse_adapter_kind(std::string_view str) {
  for (auto kind :
       {adapter_kind::codex, adapter_kind::claude, adapter_kind::gemini,
        adapter_kind::copilot, adapter_kind::command})
    if (str == to_string(kind))
      return kind;
  return std::nullopt;
}

std::string to_string(prompt_mode x) {
  return x == prompt_mode::argument ? "argument" : "stdin";
}

const agent_config* config::find_agent(std::string_view name) const {
  for (const auto& x : agents)
    if (x.name == name)
      return &x;
  return nullptr;
}

std::string describe_steps(const workflow_config& wf) {
  std::string out;
  for (size_t i = 0; i < wf.steps.size(); ++i) {
    const auto& step = wf.steps[i];
    if (i > 0)
      out += " → ";
    if (step.parallel())
      out += "[";
    for (size_t j = 0; j < step.items.size(); ++j)
      out += (j > 0 ? " | " : "") + step.items[j].agent + ":"
             + step.items[j].task;
    if (step.parallel())
      out += "]";
  }
  return out;
}

std::vector<std::string> agents_of(const workflow_config& wf) {
  std::vector<std::string> out;
  for (const auto& step : wf.steps)
    for (const auto& item : step.items)
      if (std::find(out.begin(), out.end(), item.agent) == out.end())
        out.push_back(item.agent);
  std::sort(out.begin(), out.end());
  return out;
}

const workflow_config* config::find_workflow(std::string_view name) const {
  for (const auto& x : workflows)
    if (x.name == name)
      return &x;
  return nullptr;
}

const task_template* config::find_task(std::string_view name) const {
  for (const auto& x : tasks)
    if (x.name == name)
      return &x;
  return nullptr;
}

std::string config_error::to_string() const {
  std::string out = file.empty() ? std::string{"<config>"} : file;
  if (line > 0) {
    out += ':';
    out += std::to_string(line);
    out += ':';
    out += std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) {
    out += key;
    out += ": ";
  }
  out += message;
  return out;
}

namespace {

// -- text helpers -------------------------------------------------------------

constexpr std::string_view log_levels[] = {"trace", "debug", "info",
                                           "warn",  "error", "off"};

/// Settings of the original that are read but have no effect here.
constexpr std::string_view compat_settings[]
  = {"output_dir",  "log_file",       "create_reports",
     "reports_dir", "colored_output", "quality_threshold"};

std::string lowercase(std::string str) {
  for (auto& c : str)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return str;
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (const auto& x : xs) {
    if (!out.empty())
      out += ", ";
    out += x;
  }
  return out;
}

std::string quote(std::string_view str) {
  // Long values would drown the message; the position finds the rest.
  // (config/ sits below runtime/, so no runtime/text.hpp here: the cut just
  // steps back over UTF-8 continuation bytes so no character is split.)
  constexpr size_t max_len = 40;
  if (str.size() <= max_len)
    return "'" + std::string{str} + "'";
  size_t cut = max_len;
  while (cut > max_len - 3
         && (static_cast<unsigned char>(str[cut]) & 0xC0) == 0x80)
    --cut;
  return "'" + std::string{str.substr(0, cut)} + "...'";
}

std::string index_path(const std::string& path, size_t i) {
  return path + '[' + std::to_string(i) + ']';
}

std::string key_path(const std::string& path, std::string_view name) {
  std::string out = path;
  if (!out.empty())
    out += '.';
  out.append(name);
  return out;
}

/// Names of agents, workflows and tasks end up in dotted keys and on the
/// command line, so dots, spaces and slashes are kept out of them.
bool valid_name(std::string_view name) {
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name[0])))
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])))
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

/// An `env` entry: a variable name, or a name prefix ending in `*` ("LC_*",
/// as adapters/ matches them). A lone `*` is refused: it would pass the whole
/// environment.
bool valid_env_pattern(std::string_view name) {
  if (name.size() > 1 && name.back() == '*')
    name.remove_suffix(1);
  return valid_env_name(name);
}

std::string seconds_text(std::chrono::milliseconds x) {
  auto ms = x.count();
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + " s";
  std::ostringstream out;
  out << static_cast<double>(ms) / 1000.0 << " s";
  return out.str();
}

/// Returns `x` in the largest whole unit (days, hours, minutes), or empty.
std::string duration_words(std::chrono::milliseconds x) {
  auto ms = x.count();
  auto words = [](int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
  };
  constexpr int64_t minute = int64_t{60} * 1000;
  constexpr int64_t hour = minute * 60;
  constexpr int64_t day = hour * 24;
  if (ms > 0 && ms % day == 0)
    return words(ms / day, "day");
  if (ms > 0 && ms % hour == 0)
    return words(ms / hour, "hour");
  if (ms > 0 && ms % minute == 0)
    return words(ms / minute, "minute");
  return {};
}

/// Returns "must be at most 604800 s (7 days)".
std::string at_most(std::chrono::milliseconds max) {
  auto words = duration_words(max);
  return "must be at most " + seconds_text(max)
         + (words.empty() ? std::string{} : " (" + words + ")");
}

/// Returns "must be at most 1073741824 (1 GiB)" style text.
std::string at_most_bytes(std::size_t max) {
  std::string out = "must be at most " + std::to_string(max);
  if (max % (std::size_t{1} << 30) == 0)
    out += " (" + std::to_string(max >> 30) + " GiB)";
  else if (max % (std::size_t{1} << 20) == 0)
    out += " (" + std::to_string(max >> 20) + " MiB)";
  return out;
}

/// The note on negative durations; a deadline of 0 is off.
std::string not_negative(bool deadline) {
  return deadline ? "must not be negative (0 turns the deadline off)"
                  : "must not be negative";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min(
        {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diag = up;
    }
  }
  return row[b.size()];
}

// -- scalars ------------------------------------------------------------------

// yaml-cpp keeps every scalar as text; these decide what the text means.

bool is_quoted(const YAML::Node& node) {
  const auto& tag = node.Tag();
  return tag == "!" || tag == "tag:yaml.org,2002:str";
}

std::optional<bool> parse_bool(std::string_view str) {
  for (auto x : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
    if (str == x)
      return true;
  for (auto x :
       {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})
    if (str == x)
      return false;
  return std::nullopt;
}

enum class int_parse { ok, not_integer, out_of_range };

int_parse parse_int(std::string_view str, int64_t& out) {
  const char* first = str.data();
  const char* last = first + str.size();
  if (first != last && *first == '+')
    ++first;
  if (first == last || *first == '+' || (*first == '-' && str[0] == '+'))
    return int_parse::not_integer;
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (ptr != last)
    return int_parse::not_integer;
  if (ec == std::errc::result_out_of_range)
    return int_parse::out_of_range;
  return ec == std::errc{} ? int_parse::ok : int_parse::not_integer;
}

std::optional<double> parse_number(std::string_view str) {
  const char* first = str.data();
  const char* last = first + str.size();
  if (first != last && *first == '+')
    ++first;
  if (first == last || *first == '+' || (*first == '-' && str[0] == '+'))
    return std::nullopt;
  double out = 0;
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (ec != std::errc{} || ptr != last || !std::isfinite(out))
    return std::nullopt;
  return out;
}

/// Describes a node for "expected X, got Y" messages.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      break;
  }
  const auto& text = node.Scalar();
  if (!is_quoted(node)) {
    int64_t i = 0;
    if (parse_bool(text))
      return "boolean " + quote(text);
    if (parse_int(text, i) != int_parse::not_integer || parse_number(text))
      return "number " + quote(text);
  }
  return "string " + quote(text);
}

// -- diagnostics --------------------------------------------------------------

struct position {
  int32_t line = 0;
  int32_t column = 0;
};

position position_of(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0)
    return {};
  return {mark.line + 1, mark.column + 1};
}

/// Collects errors and warnings, and where each dotted key was written.
class diagnostics {
public:
  explicit diagnostics(std::string file) : file_(std::move(file)) {
    // nop
  }

  void error(position at, std::string key, std::string message) {
    suppressed_.insert(key);
    errors_.push_back(
      {file_, at.line, at.column, std::move(key), std::move(message)});
  }

  void warning(position at, std::string key, std::string message) {
    warnings_.push_back(
      {file_, at.line, at.column, std::move(key), std::move(message)});
  }

  /// Reports a validation error unless the parser already reported one at
  /// `key` or above it; a value that failed to parse keeps its default, and
  /// complaining about that default again would only add noise.
  void check_error(const std::string& key, std::string message) {
    if (is_suppressed(key))
      return;
    auto at = where(key);
    errors_.push_back({file_, at.line, at.column, key, std::move(message)});
  }

  /// Reports a validation warning at where `key` was written.
  void check_warning(const std::string& key, std::string message) {
    if (is_suppressed(key))
      return;
    auto at = where(key);
    warnings_.push_back({file_, at.line, at.column, key, std::move(message)});
  }

  /// Hides validation errors at and below `key` without reporting anything.
  void suppress(std::string key) {
    suppressed_.insert(std::move(key));
  }

  void remember(const std::string& key, position at) {
    positions_.emplace(key, at);
  }

  /// Returns where `key` was written, or where its nearest parent was.
  position where(std::string key) const {
    for (;;) {
      if (auto i = positions_.find(key); i != positions_.end())
        return i->second;
      if (key.empty())
        return {};
      auto cut = key.find_last_of(".[");
      key.resize(cut == std::string::npos ? 0 : cut);
    }
  }

  std::vector<config_error> take_errors() {
    return sorted(std::move(errors_));
  }

  std::vector<config_error> take_warnings() {
    return sorted(std::move(warnings_));
  }

private:
  bool is_suppressed(const std::string& key) const {
    for (const auto& x : suppressed_) {
      if (key.compare(0, x.size(), x) != 0)
        continue;
      if (key.size() == x.size() || x.empty() || key[x.size()] == '.'
          || key[x.size()] == '[')
        return true;
    }
    return false;
  }

  static std::vector<config_error> sorted(std::vector<config_error> xs) {
    // File order reads best; entries without a position go last.
    auto rank = [](const config_error& x) {
      return std::make_pair(x.line == 0 ? INT32_MAX : x.line, x.column);
    };
    std::stable_sort(xs.begin(), xs.end(),
                     [&](const config_error& a, const config_error& b) {
                       return rank(a) < rank(b);
                     });
    return xs;
  }

  std::string file_;
  std::vector<config_error> errors_;
  std::vector<config_error> warnings_;
  std::set<std::string> suppressed_;
  std::unordered_map<std::string, position> positions_;
};

// -- validation ---------------------------------------------------------------

/// Reports `value` outside [min, max] at `key`.
void check_count(diagnostics& diag, const std::string& key, int32_t value,
                 int32_t min, int32_t max) {
  if (value < min)
    diag.check_error(key, (min == 0 ? std::string{"must not be negative"}
                                    : "must be at least " + std::to_string(min))
                            + ", got " + std::to_string(value));
  else if (value > max)
    diag.check_error(key, "must be at most " + std::to_string(max) + ", got "
                            + std::to_string(value));
}

/// Reports a byte count outside [1, max] at `key`.
void check_size(diagnostics& diag, const std::string& key, std::size_t value,
                std::size_t max) {
  if (value < 1)
    diag.check_error(key, "must be at least 1");
  else if (value > max)
    diag.check_error(key,
                     at_most_bytes(max) + ", got " + std::to_string(value));
}

void validate_deadline(diagnostics& diag, const std::string& path,
                       std::string_view name, std::chrono::milliseconds value,
                       std::chrono::milliseconds total) {
  auto key = key_path(path, name);
  if (value.count() < 0) {
    diag.check_error(key, not_negative(true));
    return;
  }
  if (value > config_limits::max_deadline) {
    diag.check_error(key, at_most(config_limits::max_deadline) + ", got "
                            + seconds_text(value));
    return;
  }
  if (total.count() > 0 && value > total)
    diag.check_error(key, std::string{name} + " (" + seconds_text(value)
                            + ") exceeds total (" + seconds_text(total)
                            + "); it could never fire");
}

void check_time(diagnostics& diag, const std::string& key,
                std::chrono::milliseconds value, std::chrono::milliseconds min,
                std::chrono::milliseconds max) {
  if (value < min)
    diag.check_error(key, "must be at least " + seconds_text(min) + ", got "
                            + seconds_text(value));
  else if (value > max)
    diag.check_error(key, at_most(max) + ", got " + seconds_text(value));
}

void validate_retry(diagnostics& diag, const std::string& path,
                    const retry_policy& r) {
  check_count(diag, path + ".attempts", r.attempts, 1,
              config_limits::max_retry_attempts);
  check_time(diag, path + ".base", r.base, std::chrono::milliseconds{0},
             config_limits::max_retry_delay);
  check_time(diag, path + ".cap", r.cap, std::chrono::milliseconds{0},
             config_limits::max_retry_delay);
  if (r.cap < r.base)
    diag.check_error(path + ".cap", "must be at least base ("
                                      + seconds_text(r.base) + "), got "
                                      + seconds_text(r.cap));
}

void validate_breaker(diagnostics& diag, const std::string& path,
                      const breaker_policy& b) {
  check_count(diag, path + ".failures", b.failures, 1,
              config_limits::max_breaker_failures);
  check_time(diag, path + ".window", b.window, std::chrono::milliseconds{1},
             config_limits::max_breaker_time);
  check_time(diag, path + ".cool_down", b.cool_down,
             std::chrono::milliseconds{0}, config_limits::max_breaker_time);
}

void validate_fallback(diagnostics& diag, const config& cfg,
                       const agent_config& agent) {
  auto path = key_path("agents", agent.name) + ".fallback";
  std::set<std::string> seen;
  for (size_t i = 0; i < agent.fallback.size(); ++i) {
    const auto& name = agent.fallback[i];
    auto at = index_path(path, i);
    if (name == agent.name)
      diag.check_error(at, "an agent cannot be its own fallback");
    else if (cfg.find_agent(name) == nullptr) {
      std::string known;
      for (const auto& a : cfg.agents)
        known += (known.empty() ? "" : ", ") + a.name;
      diag.check_error(at, "unknown agent " + quote(name) + " (known: " + known
                             + ")");
    } else if (!seen.insert(name).second)
      diag.check_error(at, "agent " + quote(name) + " is listed twice");
  }
}

void validate_agent(diagnostics& diag, const agent_config& agent) {
  auto path = key_path("agents", agent.name);
  if (!valid_name(agent.name)) {
    // Anything else said about it would hang off a broken key.
    diag.check_error(path, "invalid agent name " + quote(agent.name)
                             + "; use letters, digits, '_' and '-'");
    return;
  }
  if (agent.command.empty()) {
    if (agent.kind == adapter_kind::command)
      diag.check_error(path + ".command",
                       "the command adapter requires 'command' (the program "
                       "to run)");
    else
      diag.check_error(path + ".command", "must not be empty");
  }
  if (agent.max_concurrency < 1)
    diag.check_error(path + ".max_concurrency",
                     "must be at least 1, got "
                       + std::to_string(agent.max_concurrency));
  else if (agent.max_concurrency > config_limits::max_concurrency)
    diag.check_error(path + ".max_concurrency",
                     "must be at most "
                       + std::to_string(config_limits::max_concurrency)
                       + ", got " + std::to_string(agent.max_concurrency));
  if (agent.prompt == prompt_mode::argument) {
    if (agent.kind != adapter_kind::command) {
      diag.check_error(path + ".prompt",
                       "'prompt' applies only to the command adapter");
    } else {
      auto has_placeholder = std::any_of(
        agent.args.begin(), agent.args.end(), [](const std::string& x) {
          return x.find("{prompt}") != std::string::npos;
        });
      if (!has_placeholder)
        diag.check_error(path + ".prompt",
                         "'prompt: argument' needs an element of 'args' "
                         "containing \"{prompt}\"");
    }
  }
  auto dl_path = path + ".deadlines";
  const auto& dl = agent.limits;
  if (dl.total.count() < 0)
    diag.check_error(dl_path + ".total", not_negative(true));
  else if (dl.total > config_limits::max_deadline)
    diag.check_error(dl_path + ".total", at_most(config_limits::max_deadline)
                                           + ", got " + seconds_text(dl.total));
  validate_deadline(diag, dl_path, "first_output", dl.first_output, dl.total);
  validate_deadline(diag, dl_path, "idle", dl.idle, dl.total);
  for (size_t i = 0; i < agent.env_allow.size(); ++i)
    if (!valid_env_pattern(agent.env_allow[i]))
      diag.check_error(index_path(path + ".env", i),
                       "invalid environment variable name "
                         + quote(agent.env_allow[i])
                         + "; expected a name or a prefix ending in '*', "
                           "such as LC_*");
  for (const auto& [name, value] : agent.env_set)
    if (!valid_env_name(name))
      diag.check_error(key_path(path + ".env_set", name),
                       "invalid environment variable name " + quote(name));
  validate_retry(diag, path + ".retry", agent.retry);
  validate_breaker(diag, path + ".circuit_breaker", agent.circuit_breaker);
}

void validate_item(diagnostics& diag, const config& cfg,
                   const std::string& path, const step_item& item) {
  if (item.agent.empty()) {
    diag.check_error(path + ".agent", "missing agent name");
  } else if (auto agent = cfg.find_agent(item.agent); agent == nullptr) {
    std::vector<std::string> known;
    for (const auto& x : cfg.agents)
      known.push_back(x.name);
    diag.check_error(path + ".agent",
                     "unknown agent " + quote(item.agent) + "; known agents: "
                       + (known.empty() ? "(none)" : join(known)));
  } else if (!agent->enabled) {
    // A warning, not an error: the original's own agents.yaml ships copilot
    // disabled yet names it in `thorough`, and it must keep loading. `run`
    // refuses such a workflow (exit 3) before anything starts.
    diag.check_warning(path + ".agent",
                       "agent " + quote(item.agent)
                         + " is disabled (enabled: false); running this "
                           "workflow fails until you enable it or remove "
                           "the step");
  }
  const auto& builtin = builtin_task_kinds();
  if (item.task.empty()) {
    diag.check_error(path + ".task", "missing task kind");
  } else if (std::find(builtin.begin(), builtin.end(), item.task)
               == builtin.end()
             && cfg.find_task(item.task) == nullptr) {
    std::vector<std::string> custom;
    for (const auto& x : cfg.tasks)
      custom.push_back(x.name);
    diag.check_error(path + ".task",
                     "unknown task kind " + quote(item.task) + "; built-in: "
                       + join(builtin) + "; custom (under 'tasks:'): "
                       + (custom.empty() ? "(none)" : join(custom)));
  }
}

void validate_workflow(diagnostics& diag, const config& cfg,
                       const workflow_config& wf) {
  auto path = key_path("workflows", wf.name);
  if (!valid_name(wf.name))
    diag.check_error(path, "invalid workflow name " + quote(wf.name)
                             + "; use letters, digits, '_' and '-'");
  check_count(diag, path + ".max_iterations", wf.max_iterations, 1,
              config_limits::max_iterations);
  check_count(diag, path + ".min_suggestions_threshold",
              wf.min_suggestions_threshold, 0,
              config_limits::max_suggestions_threshold);
  auto steps_path = path + ".steps";
  if (wf.steps.empty())
    diag.check_error(steps_path,
                     "workflow " + quote(wf.name) + " has no steps");
  for (size_t i = 0; i < wf.steps.size(); ++i) {
    const auto& step = wf.steps[i];
    auto step_path = index_path(steps_path, i);
    if (step.items.empty()) {
      diag.check_error(step_path, "step has no agent");
    } else if (!step.parallel()) {
      validate_item(diag, cfg, step_path, step.items[0]);
    } else {
      for (size_t j = 0; j < step.items.size(); ++j)
        validate_item(diag, cfg, index_path(step_path + ".parallel", j),
                      step.items[j]);
    }
  }
}

void validate_task(diagnostics& diag, const task_template& task) {
  auto path = key_path("tasks", task.name);
  const auto& builtin = builtin_task_kinds();
  if (!valid_name(task.name))
    diag.check_error(path, "invalid task name " + quote(task.name)
                             + "; use letters, digits, '_' and '-'");
  else if (std::find(builtin.begin(), builtin.end(), task.name)
           != builtin.end())
    diag.check_error(path, quote(task.name)
                             + " is a built-in task kind; pick another name");
  if (task.prompt.empty())
    diag.check_error(path + ".prompt", "needs a non-empty prompt template");
}

void validate_cache(diagnostics& diag, const cache_settings& c) {
  if (c.ttl.count() <= 0)
    diag.check_error("settings.cache.ttl",
                     "must be more than 0 s (enabled: false turns the cache "
                     "off), got "
                       + seconds_text(c.ttl));
  else if (c.ttl > config_limits::max_cache_ttl)
    diag.check_error("settings.cache.ttl", at_most(config_limits::max_cache_ttl)
                                             + ", got " + seconds_text(c.ttl));
  if (c.max_entries < 1)
    diag.check_error("settings.cache.max_entries", "must be at least 1");
  else if (c.max_entries > config_limits::max_cache_entries)
    diag.check_error("settings.cache.max_entries",
                     "must be at most "
                       + std::to_string(config_limits::max_cache_entries)
                       + ", got " + std::to_string(c.max_entries));
  check_size(diag, "settings.cache.max_memory_bytes", c.max_memory_bytes,
             config_limits::max_cache_memory_bytes);
  check_size(diag, "settings.cache.max_disk_bytes", c.max_disk_bytes,
             config_limits::max_cache_disk_bytes);
}

void validate_settings(diagnostics& diag, const settings& s) {
  check_count(diag, "settings.max_iterations", s.max_iterations, 1,
              config_limits::max_iterations);
  check_count(diag, "settings.min_suggestions_threshold",
              s.min_suggestions_threshold, 0,
              config_limits::max_suggestions_threshold);
  if (s.workspace_dir.empty())
    diag.check_error("settings.workspace_dir", "must not be empty");
  check_size(diag, "settings.max_task_chars", s.max_task_chars,
             config_limits::max_task_chars);
  check_size(diag, "settings.output_cap_bytes", s.output_cap_bytes,
             config_limits::max_output_cap_bytes);
  if (s.kill_grace.count() < 0)
    diag.check_error("settings.kill_grace", not_negative(false));
  else if (s.kill_grace > config_limits::max_kill_grace)
    diag.check_error("settings.kill_grace",
                     at_most(config_limits::max_kill_grace) + ", got "
                       + seconds_text(s.kill_grace));
  check_count(diag, "settings.scheduler_threads", s.scheduler_threads, 1,
              config_limits::max_scheduler_threads);
  validate_retry(diag, "settings.retry", s.retry);
  validate_breaker(diag, "settings.circuit_breaker", s.circuit_breaker);
  check_time(diag, "settings.max_quota_wait", s.max_quota_wait,
             std::chrono::milliseconds{0}, config_limits::max_breaker_time);
  validate_cache(diag, s.cache);
  if (std::find(std::begin(log_levels), std::end(log_levels), s.log_level)
      == std::end(log_levels))
    diag.check_error("settings.log_level",
                     "unknown log level " + quote(s.log_level)
                       + "; expected trace, debug, info, warn, error or off");
  if (s.audit.max_bytes < config_limits::min_audit_bytes)
    diag.check_error("settings.audit.max_bytes",
                     "must be at least "
                       + std::to_string(config_limits::min_audit_bytes)
                       + ", got " + std::to_string(s.audit.max_bytes));
  else if (s.audit.max_bytes > config_limits::max_audit_bytes)
    diag.check_error("settings.audit.max_bytes",
                     at_most_bytes(config_limits::max_audit_bytes) + ", got "
                       + std::to_string(s.audit.max_bytes));
  // Relative to what would be a guess (the working directory, the config
  // file): the state outlives both.
  if (!s.state_dir.empty() && s.state_dir.front() != '/'
      && s.state_dir.rfind("~/", 0) != 0)
    diag.check_error("settings.state_dir",
                     "must be an absolute path or start with ~/, got "
                       + quote(s.state_dir));
}

template<class T>
void check_unique(diagnostics& diag, const std::vector<T>& xs,
                  const std::string& section, std::string_view what) {
  std::set<std::string> seen;
  for (const auto& x : xs)
    if (!seen.insert(x.name).second)
      diag.check_error(key_path(section, x.name), std::string{what} + " "
                                                    + quote(x.name)
                                                    + " is defined twice");
}

void validate_rate_limiting(diagnostics& diag, const rate_limit_settings& r) {
  check_count(diag, "rate_limiting.requests_per_minute", r.requests_per_minute,
              1, config_limits::max_rate_limit);
  check_count(diag, "rate_limiting.burst_size", r.burst_size, 1,
              config_limits::max_rate_limit);
}

void validate(diagnostics& diag, const config& cfg) {
  validate_settings(diag, cfg.settings);
  validate_rate_limiting(diag, cfg.rate_limiting);
  if (cfg.agents.empty())
    diag.check_error("agents", "no agents defined; at least one is required");
  check_unique(diag, cfg.agents, "agents", "agent");
  check_unique(diag, cfg.workflows, "workflows", "workflow");
  check_unique(diag, cfg.tasks, "tasks", "task");
  for (const auto& x : cfg.agents) {
    validate_agent(diag, x);
    validate_fallback(diag, cfg, x);
  }
  for (const auto& x : cfg.tasks)
    validate_task(diag, x);
  for (const auto& x : cfg.workflows)
    validate_workflow(diag, cfg, x);
}

// -- parsing ------------------------------------------------------------------

/// One key of a mapping with its value, as seen by the parser.
struct entry {
  std::string name;
  /// Dotted key, e.g. `agents.codex.deadlines.idle`.
  std::string path;
  /// Where the key was written.
  position key_at;
  YAML::Node value;
  /// Where the value was written; the key's position for an empty value,
  /// because yaml-cpp marks a null by the token after it.
  position at;
};

using key_list = std::vector<std::string_view>;

/// Turns a YAML tree into a config, reporting key and type errors.
class parser {
public:
  parser(diagnostics& diag, fs::path base_dir)
    : diag_(diag), base_dir_(std::move(base_dir)) {
    // nop
  }

  config run(const YAML::Node& root) {
    config cfg;
    diag_.remember("", position_of(root.Mark()));
    // Sections are handled in dependency order, whatever the file order:
    // workflows take their defaults from settings.
    std::optional<entry> agents, workflows, tasks, settings;
    for_each_key(root, "",
                 {"agents", "workflows", "tasks", "settings", "rate_limiting"},
                 [&](entry e) {
                   if (e.name == "agents")
                     agents = std::move(e);
                   else if (e.name == "workflows")
                     workflows = std::move(e);
                   else if (e.name == "tasks")
                     tasks = std::move(e);
                   else if (e.name == "settings")
                     settings = std::move(e);
                   else
                     parse_rate_limiting(e, cfg.rate_limiting);
                 });
    if (settings)
      parse_settings(*settings, cfg.settings);
    if (agents && expect_map(*agents, true))
      for_each_name(agents->value, "agents", [&](entry e) {
        cfg.agents.push_back(parse_agent(e, cfg.settings));
      });
    if (tasks && expect_map(*tasks, true))
      for_each_name(tasks->value, "tasks", [&](entry e) {
        cfg.tasks.push_back(parse_task(e));
      });
    if (workflows && expect_map(*workflows, true))
      for_each_name(workflows->value, "workflows", [&](entry e) {
        cfg.workflows.push_back(parse_workflow(e, cfg.settings));
      });
    if (workflows == std::nullopt || cfg.workflows.empty())
      diag_.warning(workflows ? workflows->key_at : position{}, "workflows",
                    "no workflows defined; only single-agent runs are "
                    "possible");
    return cfg;
  }

private:
  // -- mappings ---------------------------------------------------------------

  /// Calls `fn` for each key of `map` (which must be a mapping) whose name is
  /// in `allowed`; reports unknown, duplicate and non-scalar keys.
  template<class F>
  void for_each_key(const YAML::Node& map, const std::string& path,
                    const key_list& allowed, F&& fn) {
    visit(map, path, &allowed, std::forward<F>(fn));
  }

  /// Like for_each_key, for mappings whose keys are free names.
  template<class F>
  void for_each_name(const YAML::Node& map, const std::string& path, F&& fn) {
    visit(map, path, nullptr, std::forward<F>(fn));
  }

  template<class F>
  void visit(const YAML::Node& map, const std::string& path,
             const key_list* allowed, F&& fn) {
    if (!map.IsMap())
      return;
    std::unordered_map<std::string, position> seen;
    for (const auto& kv : map) {
      // Copies: yaml-cpp's iterators hand out proxies that die quickly.
      YAML::Node key = kv.first;
      auto key_at = position_of(key.Mark());
      if (!key.IsScalar()) {
        diag_.error(key_at, path,
                    "keys must be plain names, got " + describe(key));
        continue;
      }
      entry e;
      e.name = key.Scalar();
      e.path = key_path(path, e.name);
      e.key_at = key_at;
      e.value = kv.second;
      e.at = e.value.IsNull() ? key_at : position_of(e.value.Mark());
      if (allowed != nullptr
          && std::find(allowed->begin(), allowed->end(), e.name)
               == allowed->end()) {
        diag_.error(key_at, e.path, unknown_key_message(e.name, *allowed));
        continue;
      }
      if (auto [it, added] = seen.emplace(e.name, key_at); !added) {
        diag_.error(key_at, e.path,
                    "duplicate key " + quote(e.name) + " (first at line "
                      + std::to_string(it->second.line) + ")");
        continue;
      }
      // Scalars are pointed at directly; for a mapping or list its key's line
      // reads better than the line of its first element.
      diag_.remember(e.path, e.value.IsScalar() ? e.at : e.key_at);
      fn(std::move(e));
    }
  }

  static std::string unknown_key_message(std::string_view name,
                                         const key_list& allowed) {
    std::string out = "unknown key " + quote(name);
    std::string_view best;
    size_t best_distance = 3;
    for (auto x : allowed) {
      auto d = edit_distance(name, x);
      if (d < best_distance) {
        best = x;
        best_distance = d;
      }
    }
    if (!best.empty())
      out += " (did you mean " + quote(best) + "?)";
    out += "; allowed keys: ";
    bool first = true;
    for (auto x : allowed) {
      if (!first)
        out += ", ";
      out.append(x);
      first = false;
    }
    return out;
  }

  static bool has_key(const YAML::Node& map, std::string_view name) {
    if (!map.IsMap())
      return false;
    for (const auto& kv : map)
      if (kv.first.IsScalar() && kv.first.Scalar() == name)
        return true;
    return false;
  }

  // -- typed values -----------------------------------------------------------

  void type_error(const entry& e, std::string_view expected) {
    diag_.error(e.at, e.path,
                "expected " + std::string{expected} + ", got "
                  + describe(e.value));
  }

  /// Checks that `e` holds a mapping; an empty value counts as an empty
  /// mapping when `null_ok`.
  bool expect_map(const entry& e, bool null_ok) {
    if (e.value.IsMap() || (null_ok && e.value.IsNull()))
      return true;
    type_error(e, "a mapping");
    return false;
  }

  std::optional<std::string> get_string(const entry& e) {
    if (e.value.IsScalar())
      return e.value.Scalar();
    type_error(e, "a string");
    return std::nullopt;
  }

  std::optional<bool> get_bool(const entry& e) {
    if (e.value.IsScalar() && !is_quoted(e.value))
      if (auto x = parse_bool(e.value.Scalar()))
        return x;
    type_error(e, "a boolean (true or false)");
    return std::nullopt;
  }

  std::optional<int64_t> get_int(const entry& e, int64_t min, int64_t max) {
    if (!e.value.IsScalar() || is_quoted(e.value)) {
      type_error(e, "an integer");
      return std::nullopt;
    }
    int64_t x = 0;
    auto res = parse_int(e.value.Scalar(), x);
    if (res == int_parse::not_integer) {
      type_error(e, "an integer");
      return std::nullopt;
    }
    if (res == int_parse::out_of_range) {
      diag_.error(e.at, e.path, quote(e.value.Scalar()) + " is too large");
      return std::nullopt;
    }
    if (x < min || x > max) {
      diag_.error(e.at, e.path,
                  (x < min ? "must be at least " + std::to_string(min)
                           : "must be at most " + std::to_string(max))
                    + ", got " + std::to_string(x));
      return std::nullopt;
    }
    return x;
  }

  std::optional<int32_t> get_int32(const entry& e) {
    // Wide enough for any sane count; the validator checks the real range.
    if (auto x = get_int(e, INT32_MIN, INT32_MAX))
      return static_cast<int32_t>(*x);
    return std::nullopt;
  }

  std::optional<size_t> get_size(const entry& e) {
    if (auto x = get_int(e, 1, std::numeric_limits<int64_t>::max()))
      return static_cast<size_t>(*x);
    return std::nullopt;
  }

  /// Reads seconds (fractions allowed) as milliseconds. The sign and the
  /// range are checked on the number as written, before rounding to
  /// milliseconds: `-0.0004` is negative (not 0, which turns a deadline off),
  /// and a positive value too small to be 1 ms is refused rather than read
  /// as 0. `deadline` picks the wording (0 turns a deadline off).
  std::optional<std::chrono::milliseconds>
  get_seconds(const entry& e, std::chrono::milliseconds max, bool deadline) {
    std::optional<double> x;
    if (e.value.IsScalar() && !is_quoted(e.value))
      x = parse_number(e.value.Scalar());
    if (!x) {
      type_error(e, "a number of seconds");
      return std::nullopt;
    }
    const auto& text = e.value.Scalar();
    if (*x < 0) {
      diag_.error(e.at, e.path, not_negative(deadline));
      return std::nullopt;
    }
    // Compared in milliseconds as a double: max is far below 2^53.
    if (*x * 1000.0 > static_cast<double>(max.count())) {
      diag_.error(e.at, e.path, at_most(max) + ", got " + text);
      return std::nullopt;
    }
    auto ms = static_cast<int64_t>(std::llround(*x * 1000.0));
    if (ms == 0 && *x > 0) {
      diag_.error(e.at, e.path,
                  std::string{deadline ? "must be 0 (off)" : "must be 0"}
                    + " or at least 0.001 s (1 ms), got " + text);
      return std::nullopt;
    }
    return std::chrono::milliseconds{ms};
  }

  std::optional<std::vector<std::string>> get_string_list(const entry& e) {
    if (e.value.IsNull())
      return std::vector<std::string>{};
    if (!e.value.IsSequence()) {
      type_error(e, "a list of strings");
      return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (size_t i = 0; i < e.value.size(); ++i) {
      entry item = element(e, i);
      if (auto x = get_string(item))
        out.push_back(*x);
      else
        ok = false;
    }
    if (!ok)
      return std::nullopt;
    return out;
  }

  entry element(const entry& list, size_t i) {
    entry out;
    out.name = list.name;
    out.path = index_path(list.path, i);
    out.value = list.value[i];
    out.key_at = list.at;
    out.at = out.value.IsNull() ? list.at : position_of(out.value.Mark());
    diag_.remember(out.path, out.at);
    return out;
  }

  // -- agents -----------------------------------------------------------------

  agent_config parse_agent(const entry& e, const settings& defaults) {
    agent_config agent;
    agent.name = e.name;
    agent.retry = defaults.retry;
    agent.circuit_breaker = defaults.circuit_breaker;
    // The agent's name picks the adapter unless `adapter` says otherwise,
    // as in the original, where the name was the adapter.
    auto by_name = parse_adapter_kind(e.name);
    agent.kind = by_name.value_or(adapter_kind::command);
    if (!expect_map(e, true)) {
      // A broken body says nothing about the agent; references to it from
      // steps stay valid so they do not add noise.
      if (agent.kind != adapter_kind::command)
        agent.command = to_string(agent.kind);
      return agent;
    }
    std::optional<std::string> command;
    std::optional<entry> timeout, total_entry, prompt;
    std::optional<std::chrono::milliseconds> first_output, idle, total,
      timeout_total;
    bool adapter_ok = true;
    for_each_key(
      e.value, e.path,
      {"adapter", "command", "args", "model", "enabled", "role", "description",
       "timeout", "deadlines", "env", "env_set", "max_concurrency", "prompt",
       "retry", "circuit_breaker", "fallback"},
      [&](entry f) {
        if (f.name == "adapter") {
          if (auto x = get_string(f)) {
            if (auto kind = parse_adapter_kind(*x)) {
              agent.kind = *kind;
            } else {
              adapter_ok = false;
              diag_.error(f.at, f.path,
                          "unknown adapter " + quote(*x)
                            + "; expected codex, claude, gemini, copilot or "
                              "command");
            }
          } else {
            adapter_ok = false;
          }
        } else if (f.name == "command") {
          if (auto x = get_string(f))
            command = *x;
        } else if (f.name == "args") {
          if (auto x = get_string_list(f))
            agent.args = std::move(*x);
        } else if (f.name == "model") {
          if (auto x = get_string(f))
            agent.model = *x;
        } else if (f.name == "enabled") {
          if (auto x = get_bool(f))
            agent.enabled = *x;
        } else if (f.name == "role") {
          if (auto x = get_string(f))
            agent.role = *x;
        } else if (f.name == "description") {
          if (auto x = get_string(f))
            agent.description = *x;
        } else if (f.name == "timeout") {
          timeout_total = get_seconds(f, config_limits::max_deadline, true);
          timeout = std::move(f);
        } else if (f.name == "deadlines") {
          parse_deadlines(f, first_output, idle, total, total_entry);
        } else if (f.name == "env") {
          if (auto x = get_string_list(f))
            agent.env_allow = std::move(*x);
        } else if (f.name == "env_set") {
          parse_env_set(f, agent.env_set);
        } else if (f.name == "max_concurrency") {
          if (auto x = get_int32(f))
            agent.max_concurrency = *x;
        } else if (f.name == "retry") {
          parse_retry(f, agent.retry);
        } else if (f.name == "circuit_breaker") {
          parse_breaker(f, agent.circuit_breaker);
        } else if (f.name == "fallback") {
          if (f.value.IsScalar()) {
            // One name without a list.
            if (auto x = get_string(f))
              agent.fallback = {*x};
          } else if (auto x = get_string_list(f)) {
            agent.fallback = std::move(*x);
          }
        } else if (f.name == "prompt") {
          if (auto x = get_string(f)) {
            if (*x == "stdin") {
              agent.prompt = prompt_mode::stdin_text;
            } else if (*x == "argument") {
              agent.prompt = prompt_mode::argument;
            } else {
              diag_.error(f.at, f.path,
                          "unknown prompt mode " + quote(*x)
                            + "; expected stdin or argument");
            }
          }
          prompt = std::move(f);
        }
      });
    if (timeout && total_entry)
      diag_.error(timeout->key_at, timeout->path,
                  "conflicts with deadlines.total (line "
                    + std::to_string(total_entry->key_at.line)
                    + "); 'timeout' is the original's name for it, keep "
                      "one");
    if (!total)
      total = timeout_total;
    if (!adapter_ok) {
      // With the adapter unknown, complaints that depend on it are guesses.
      diag_.suppress(e.path + ".command");
      diag_.suppress(e.path + ".prompt");
    }
    if (prompt && adapter_ok && agent.kind != adapter_kind::command)
      diag_.error(prompt->key_at, prompt->path,
                  "'prompt' applies only to the command adapter; " + e.name
                    + " uses the " + to_string(agent.kind) + " adapter");
    if (command)
      agent.command = resolve_command(*command);
    else if (agent.kind != adapter_kind::command)
      agent.command = to_string(agent.kind);
    apply_deadlines(agent.limits, first_output, idle, total);
    return agent;
  }

  void parse_deadlines(const entry& e,
                       std::optional<std::chrono::milliseconds>& first_output,
                       std::optional<std::chrono::milliseconds>& idle,
                       std::optional<std::chrono::milliseconds>& total,
                       std::optional<entry>& total_entry) {
    if (!expect_map(e, true))
      return;
    for_each_key(e.value, e.path, {"first_output", "idle", "total"},
                 [&](entry f) {
                   auto x = get_seconds(f, config_limits::max_deadline, true);
                   if (f.name == "first_output") {
                     first_output = x;
                   } else if (f.name == "idle") {
                     idle = x;
                   } else {
                     total = x;
                     total_entry = std::move(f);
                   }
                 });
  }

  /// Fills unset deadlines. An explicit total lowers the default first
  /// output and idle deadlines to itself, so the original's `timeout: 120`
  /// stays valid; explicit values above the total are left to the
  /// validator to report.
  static void apply_deadlines(deadlines& out,
                              std::optional<std::chrono::milliseconds> first,
                              std::optional<std::chrono::milliseconds> idle,
                              std::optional<std::chrono::milliseconds> total) {
    if (total)
      out.total = *total;
    auto cap = [&](std::chrono::milliseconds x) {
      return total && total->count() > 0 ? std::min(x, *total) : x;
    };
    out.first_output = first ? *first : cap(out.first_output);
    out.idle = idle ? *idle : cap(out.idle);
  }

  void parse_retry(const entry& e, retry_policy& out) {
    if (!expect_map(e, true))
      return;
    for_each_key(e.value, e.path, {"attempts", "base", "cap"}, [&](entry f) {
      if (f.name == "attempts") {
        if (auto x = get_int32(f))
          out.attempts = *x;
      } else if (auto x = get_seconds(f, config_limits::max_retry_delay,
                                      false)) {
        (f.name == "base" ? out.base : out.cap) = *x;
      }
    });
  }

  void parse_breaker(const entry& e, breaker_policy& out) {
    if (!expect_map(e, true))
      return;
    for_each_key(e.value, e.path, {"failures", "window", "cool_down"},
                 [&](entry f) {
                   if (f.name == "failures") {
                     if (auto x = get_int32(f))
                       out.failures = *x;
                   } else if (auto x = get_seconds(
                                f, config_limits::max_breaker_time, false)) {
                     (f.name == "window" ? out.window : out.cool_down) = *x;
                   }
                 });
  }

  void parse_env_set(const entry& e, std::map<std::string, std::string>& out) {
    if (!expect_map(e, true))
      return;
    for_each_name(e.value, e.path, [&](entry f) {
      if (auto x = get_string(f))
        out[f.name] = *x;
    });
  }

  /// Makes a relative path with a slash absolute against the config file's
  /// directory, so `demo-agents/x` works from any working directory. Bare
  /// names are left for the PATH lookup at spawn time.
  std::string resolve_command(const std::string& command) const {
    if (command.find('/') == std::string::npos)
      return command;
    fs::path path{command};
    if (command.rfind("~/", 0) == 0) {
      // No shell expands it for us.
      if (const char* home = std::getenv("HOME"); home && *home)
        path = fs::path{home} / command.substr(2);
    }
    if (path.is_relative())
      path = base_dir_ / path;
    return path.lexically_normal().string();
  }

  // -- tasks ------------------------------------------------------------------

  task_template parse_task(const entry& e) {
    task_template task;
    task.name = e.name;
    if (!expect_map(e, false)) {
      diag_.suppress(e.path);
      return task;
    }
    for_each_key(e.value, e.path, {"prompt", "review"}, [&](entry f) {
      if (f.name == "prompt") {
        if (auto x = get_string(f)) {
          task.prompt = *x;
          warn_placeholders(f, *x);
        } else {
          diag_.suppress(f.path);
        }
      } else if (auto x = get_bool(f)) {
        task.review = *x;
      }
    });
    return task;
  }

  static std::string known_placeholders() {
    std::string out;
    for (const auto& [ph, name] : prompt_placeholders) {
      if (!out.empty())
        out += ", ";
      out += '{';
      out += name;
      out += '}';
    }
    return out;
  }

  /// Warns about `{word}` placeholders nothing will fill; literal braces
  /// elsewhere (code samples, JSON) are left alone.
  void warn_placeholders(const entry& e, const std::string& prompt) {
    size_t pos = 0;
    while ((pos = prompt.find('{', pos)) != std::string::npos) {
      auto end = prompt.find('}', pos + 1);
      if (end == std::string::npos)
        break;
      auto word = std::string_view{prompt}.substr(pos + 1, end - pos - 1);
      auto is_word
        = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
            return std::islower(static_cast<unsigned char>(c)) || c == '_';
          });
      auto known = std::any_of(std::begin(prompt_placeholders),
                               std::end(prompt_placeholders),
                               [word](const auto& ph) {
                                 return ph.second == word;
                               });
      if (is_word && !known)
        diag_.warning(e.at, e.path,
                      "unknown placeholder {" + std::string{word}
                        + "} stays as written; known: " + known_placeholders());
      pos = end + 1;
    }
  }

  // -- workflows --------------------------------------------------------------

  workflow_config parse_workflow(const entry& e, const settings& defaults) {
    workflow_config wf;
    wf.name = e.name;
    wf.max_iterations = defaults.max_iterations;
    wf.min_suggestions_threshold = defaults.min_suggestions_threshold;
    auto steps_path = e.path + ".steps";
    if (e.value.IsSequence() || e.value.IsNull()) {
      // The original's plain list; a null is an empty workflow, which the
      // validator reports.
      diag_.remember(steps_path, e.at);
      if (e.value.IsSequence())
        parse_steps(e, steps_path, wf);
      return wf;
    }
    if (!e.value.IsMap()) {
      type_error(e, "a list of steps or a mapping with 'steps'");
      return wf;
    }
    bool has_steps = false;
    for_each_key(
      e.value, e.path,
      {"description", "max_iterations", "min_suggestions_threshold", "steps"},
      [&](entry f) {
        if (f.name == "description") {
          if (auto x = get_string(f))
            wf.description = *x;
        } else if (f.name == "max_iterations") {
          if (auto x = get_int32(f))
            wf.max_iterations = *x;
        } else if (f.name == "min_suggestions_threshold") {
          if (auto x = get_int32(f))
            wf.min_suggestions_threshold = *x;
        } else {
          has_steps = true;
          if (f.value.IsSequence())
            parse_steps(f, steps_path, wf);
          else if (!f.value.IsNull())
            type_error(f, "a list of steps");
        }
      });
    if (!has_steps)
      diag_.error(e.key_at, steps_path,
                  "missing required key 'steps' (the list of steps)");
    return wf;
  }

  void parse_steps(const entry& list, const std::string& path,
                   workflow_config& wf) {
    for (size_t i = 0; i < list.value.size(); ++i) {
      entry e = element(list, i);
      e.path = index_path(path, i);
      diag_.remember(e.path, e.at);
      step_config step;
      if (!e.value.IsMap()) {
        type_error(e, "a step (a mapping with 'agent' and 'task', or "
                      "'parallel')");
      } else if (has_key(e.value, "parallel")) {
        parse_parallel(e, step);
      } else {
        step.items.push_back(parse_item(e));
      }
      wf.steps.push_back(std::move(step));
    }
  }

  void parse_parallel(const entry& e, step_config& step) {
    for_each_key(e.value, e.path, {"parallel"}, [&](entry f) {
      // A broken group leaves the step without items; the validator must
      // not add "step has no agent" on top of the error reported here.
      if (!f.value.IsSequence() && !f.value.IsNull()) {
        type_error(f, "a list of steps");
        diag_.suppress(e.path);
        return;
      }
      auto n = f.value.IsNull() ? size_t{0} : f.value.size();
      if (n == 0) {
        diag_.error(f.at, f.path,
                    "empty parallel group; it needs at least 2 steps");
        diag_.suppress(e.path);
        return;
      }
      if (n == 1) {
        diag_.error(f.at, f.path,
                    "a parallel group needs at least 2 steps, got 1; write "
                    "a plain step instead");
        // A group of one looks like a plain step to the validator, which
        // would report its item a second time under another key.
        diag_.suppress(e.path);
      }
      for (size_t j = 0; j < n; ++j) {
        entry item = element(f, j);
        if (!item.value.IsMap()) {
          type_error(item, "a step (a mapping with 'agent' and 'task')");
          continue;
        }
        step.items.push_back(parse_item(item));
      }
    });
  }

  step_item parse_item(const entry& e) {
    step_item item;
    bool has_agent = false;
    bool has_task = false;
    for_each_key(e.value, e.path, {"agent", "task", "description"},
                 [&](entry f) {
                   auto x = get_string(f);
                   if (f.name == "agent") {
                     has_agent = true;
                     if (x)
                       item.agent = *x;
                   } else if (f.name == "task") {
                     has_task = true;
                     if (x)
                       item.task = *x;
                   } else if (x) {
                     item.description = *x;
                   }
                 });
    if (!has_agent)
      diag_.error(e.at, e.path + ".agent", "missing required key 'agent'");
    if (!has_task)
      diag_.error(e.at, e.path + ".task", "missing required key 'task'");
    return item;
  }

  // -- settings ---------------------------------------------------------------

  void parse_settings(const entry& e, settings& out) {
    if (!expect_map(e, true))
      return;
    key_list allowed{"max_iterations",
                     "min_suggestions_threshold",
                     "workspace_dir",
                     "max_task_chars",
                     "output_cap_bytes",
                     "kill_grace",
                     "log_level",
                     "state_dir",
                     "scheduler_threads",
                     "audit",
                     "retry",
                     "circuit_breaker",
                     "max_quota_wait",
                     "cache"};
    allowed.insert(allowed.end(), std::begin(compat_settings),
                   std::end(compat_settings));
    for_each_key(e.value, e.path, allowed, [&](entry f) {
      if (std::find(std::begin(compat_settings), std::end(compat_settings),
                    f.name)
          != std::end(compat_settings)) {
        diag_.warning(f.key_at, f.path,
                      "accepted for compatibility with the original and not "
                      "used");
      } else if (f.name == "max_iterations") {
        if (auto x = get_int32(f))
          out.max_iterations = *x;
      } else if (f.name == "min_suggestions_threshold") {
        if (auto x = get_int32(f))
          out.min_suggestions_threshold = *x;
      } else if (f.name == "workspace_dir") {
        if (auto x = get_string(f))
          out.workspace_dir = *x;
      } else if (f.name == "max_task_chars") {
        if (auto x = get_size(f))
          out.max_task_chars = *x;
      } else if (f.name == "output_cap_bytes") {
        if (auto x = get_size(f))
          out.output_cap_bytes = *x;
      } else if (f.name == "kill_grace") {
        if (auto x = get_seconds(f, config_limits::max_kill_grace, false))
          out.kill_grace = *x;
      } else if (f.name == "log_level") {
        if (auto x = get_string(f))
          parse_log_level(f, *x, out.log_level);
      } else if (f.name == "state_dir") {
        if (auto x = get_string(f))
          out.state_dir = *x;
      } else if (f.name == "scheduler_threads") {
        if (auto x = get_int32(f))
          out.scheduler_threads = *x;
      } else if (f.name == "audit") {
        parse_audit(f, out.audit);
      } else if (f.name == "retry") {
        parse_retry(f, out.retry);
      } else if (f.name == "circuit_breaker") {
        parse_breaker(f, out.circuit_breaker);
      } else if (f.name == "max_quota_wait") {
        if (auto x = get_seconds(f, config_limits::max_breaker_time, false))
          out.max_quota_wait = *x;
      } else if (f.name == "cache") {
        parse_cache(f, out.cache);
      }
    });
  }

  void parse_audit(const entry& e, audit_settings& out) {
    if (!expect_map(e, true))
      return;
    for_each_key(e.value, e.path, {"enabled", "include_task", "max_bytes"},
                 [&](entry f) {
                   if (f.name == "enabled") {
                     if (auto x = get_bool(f))
                       out.enabled = *x;
                   } else if (f.name == "include_task") {
                     if (auto x = get_bool(f))
                       out.include_task = *x;
                   } else if (auto x = get_size(f)) {
                     out.max_bytes = *x;
                   }
                 });
  }

  void parse_rate_limiting(const entry& e, rate_limit_settings& out) {
    if (!expect_map(e, true))
      return;
    bool has_enabled = false;
    bool has_limits = false;
    for_each_key(e.value, e.path,
                 {"enabled", "requests_per_minute", "burst_size", "per_user"},
                 [&](entry f) {
                   has_enabled = has_enabled || f.name == "enabled";
                   has_limits = has_limits || f.name != "enabled";
                   if (f.name == "enabled") {
                     if (auto x = get_bool(f))
                       out.enabled = *x;
                   } else if (f.name == "per_user") {
                     if (auto x = get_bool(f))
                       out.per_user = *x;
                   } else if (f.name == "requests_per_minute") {
                     if (auto x = get_int32(f))
                       out.requests_per_minute = *x;
                   } else if (auto x = get_int32(f)) {
                     out.burst_size = *x;
                   }
                 });
    // Off by default: limits without `enabled: true` would do nothing.
    if (has_limits && !has_enabled)
      diag_.warning(e.key_at, e.path,
                    "rate limiting is off unless 'enabled: true' is set; "
                    "these limits have no effect");
  }

  void parse_cache(const entry& e, cache_settings& out) {
    if (!expect_map(e, true))
      return;
    for_each_key(
      e.value, e.path,
      {"enabled", "ttl", "max_entries", "max_memory_bytes", "max_disk_bytes"},
      [&](entry f) {
        if (f.name == "enabled") {
          if (auto x = get_bool(f))
            out.enabled = *x;
        } else if (f.name == "ttl") {
          if (auto x = get_seconds(f, config_limits::max_cache_ttl, false))
            out.ttl = *x;
        } else if (f.name == "max_entries") {
          if (auto x = get_size(f))
            out.max_entries = *x;
        } else if (f.name == "max_memory_bytes") {
          if (auto x = get_size(f))
            out.max_memory_bytes = *x;
        } else if (f.name == "max_disk_bytes") {
          if (auto x = get_size(f))
            out.max_disk_bytes = *x;
        }
      });
  }

  void parse_log_level(const entry& e, const std::string& text,
                       std::string& out) {
    auto level = normalize_log_level(text);
    if (!level) {
      diag_.error(e.at, e.path,
                  "unknown log level " + quote(text)
                    + "; expected trace, debug, info, warn, error or off");
      return;
    }
    out = *level;
  }

  diagnostics& diag_;
  fs::path base_dir_;
};

// -- entry points -------------------------------------------------------------

fs::path base_dir_of(const std::string& file) {
  std::error_code ec;
  auto path = fs::absolute(fs::path{file.empty() ? "." : file}, ec);
  if (ec)
    path = fs::path{file};
  return file.empty() ? path.lexically_normal()
                      : path.lexically_normal().parent_path();
}

load_result finish(diagnostics& diag, config cfg) {
  validate(diag, cfg);
  load_result out;
  out.errors = diag.take_errors();
  out.warnings = diag.take_warnings();
  if (out.errors.empty())
    out.value = std::move(cfg);
  return out;
}

load_result single_error(const std::string& file, position at,
                         std::string message) {
  load_result out;
  out.errors.push_back({file, at.line, at.column, "", std::move(message)});
  return out;
}

} // namespace

std::optional<std::string> normalize_log_level(std::string_view text) {
  auto level = lowercase(std::string{text});
  // The original used Python's names (INFO, WARNING, CRITICAL).
  if (level == "warning")
    level = "warn";
  else if (level == "critical")
    level = "error";
  if (std::find(std::begin(log_levels), std::end(log_levels), level)
      == std::end(log_levels))
    return std::nullopt;
  return level;
}

std::vector<config_error> validate_config(const config& cfg) {
  diagnostics diag{cfg.source};
  validate(diag, cfg);
  return diag.take_errors();
}

load_result parse_config(std::string_view yaml_text, const std::string& file) {
  try {
    auto docs = YAML::LoadAll(std::string{yaml_text});
    if (docs.size() > 1)
      return single_error(file, position_of(docs[1].Mark()),
                          "more than one YAML document; a config file holds "
                          "exactly one");
    if (docs.empty() || docs[0].IsNull())
      return single_error(file, {1, 1},
                          "the file is empty; expected a mapping with "
                          "'agents' and 'workflows'");
    const auto& root = docs[0];
    if (!root.IsMap())
      return single_error(file, position_of(root.Mark()),
                          "expected a mapping at the top level, got "
                            + describe(root));
    diagnostics diag{file};
    parser p{diag, base_dir_of(file)};
    auto cfg = p.run(root);
    cfg.source = file;
    return finish(diag, std::move(cfg));
  } catch (const YAML::Exception& ex) {
    // ex.msg is the bare message; what() repeats the position.
    return single_error(file, position_of(ex.mark),
                        "YAML syntax error: " + ex.msg);
  } catch (const std::exception& ex) {
    return single_error(file, {}, std::string{"cannot load: "} + ex.what());
  }
}

load_result load_config_file(const std::string& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status))
    return single_error(path, {}, "config file not found");
  if (fs::is_directory(status))
    return single_error(path, {}, "is a directory, not a config file");
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return single_error(path, {},
                        std::string{"cannot read config file: "}
                          + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return single_error(path, {}, "cannot read config file: read error");
  return parse_config(text.str(), path);
}

std::string find_config_path(const std::string& explicit_path) {
  if (!explicit_path.empty())
    return explicit_path;
  std::error_code ec;
  std::string local = "./ai-orchestrator.yaml";
  if (fs::is_regular_file(local, ec))
    return local;
  // XDG says an unset, empty or relative XDG_CONFIG_HOME means ~/.config.
  fs::path dir;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME");
      xdg && *xdg && fs::path{xdg}.is_absolute())
    dir = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home)
    dir = fs::path{home} / ".config";
  if (!dir.empty()) {
    auto user = (dir / "ai-orchestrator" / "config.yaml").string();
    if (fs::is_regular_file(user, ec))
      return user;
  }
  return {};
}

load_result load_config(const std::string& explicit_path) {
  auto path = find_config_path(explicit_path);
  if (path.empty()) {
    load_result out;
    out.value = builtin_config();
    return out;
  }
  return load_config_file(path);
}

} // namespace orch
