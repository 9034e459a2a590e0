#include "adapters/adapter.hpp"

#include <algorithm>

#include <unistd.h> // environ (a GNU extension of <unistd.h>)

#include "adapters/detail.hpp"

namespace orch {

output_parser::~output_parser() = default;

adapter::~adapter() = default;

std::unique_ptr<adapter> make_adapter(adapter_kind kind) {
  switch (kind) {
    case adapter_kind::codex:
      return detail::make_codex_adapter();
    case adapter_kind::claude:
      return detail::make_claude_adapter();
    case adapter_kind::gemini:
      return detail::make_gemini_adapter();
    case adapter_kind::copilot:
      return detail::make_copilot_adapter();
    case adapter_kind::command:
      return detail::make_command_adapter();
  }
  return detail::make_command_adapter();
}

std::string default_command(adapter_kind kind) {
  // The four CLIs are invoked under the name of their adapter.
  return kind == adapter_kind::command ? std::string{} : to_string(kind);
}

std::string to_string(auth_state x) {
  switch (x) {
    case auth_state::present:
      return "present";
    case auth_state::missing:
      return "missing";
    case auth_state::unknown:
      break;
  }
  return "unknown";
}

std::vector<std::string> current_environment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    out.emplace_back(*e);
  return out;
}

namespace {

/// True when `name` matches `pattern`: equal, or a prefix pattern "LC_*".
bool name_matches(std::string_view name, std::string_view pattern) {
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return name.substr(0, pattern.size()) == pattern;
  }
  return name == pattern;
}

bool in_base_set(std::string_view name) {
  // What a CLI needs to find itself, its state and a terminal; nothing
  // that carries a secret.
  static constexpr std::string_view base[] = {"PATH",    "HOME", "USER",
                                              "LOGNAME", "LANG", "TERM",
                                              "TMPDIR",  "LC_*", "XDG_*"};
  for (auto pattern : base)
    if (name_matches(name, pattern))
      return true;
  return false;
}

} // namespace

std::vector<std::string>
build_environment(const agent_config& agent,
                  const std::vector<std::string>& credential_vars,
                  const std::vector<std::string>& base_env) {
  std::vector<std::string> out;
  std::vector<std::string_view> seen;
  for (const auto& entry : base_env) {
    auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0)
      continue;
    std::string_view name(entry.data(), eq);
    // The first entry of a name wins, as with getenv().
    if (std::find(seen.begin(), seen.end(), name) != seen.end())
      continue;
    // env_set replaces the entry below.
    if (agent.env_set.count(std::string(name)) != 0)
      continue;
    bool allowed = in_base_set(name);
    for (const auto& var : credential_vars)
      allowed = allowed || name == var;
    for (const auto& pattern : agent.env_allow)
      allowed = allowed || name_matches(name, pattern);
    if (!allowed)
      continue;
    seen.push_back(name);
    out.push_back(entry);
  }
  for (const auto& [name, value] : agent.env_set)
    if (!name.empty() && name.find('=') == std::string::npos)
      out.push_back(name + "=" + value);
  return out;
}

} // namespace orch
