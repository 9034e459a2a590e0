#pragma once

// An adapter turns one step (task kind, prompt, workspace, agent config) into
// a process_spec, and reads that process's output back as typed events and a
// judged outcome. One adapter per CLI; `command` runs any executable.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "runtime/events.hpp"
#include "runtime/process.hpp"

namespace orch {

/// What one step asks of an agent.
struct step_input {
  /// implement, review, refine, ... (informational for most adapters).
  std::string task_kind;
  /// The fully rendered prompt.
  std::string prompt;
  /// Absolute path of the workspace; becomes the working directory.
  std::string workspace;
};

/// Incremental reader of one invocation's output. Feed stdout lines as they
/// arrive, then call finish() once with the process result.
class output_parser {
public:
  virtual ~output_parser();

  /// Parses one stdout line and appends what it means to `out`. Unknown
  /// event types and garbage lines are skipped, never fatal.
  virtual void feed(std::string_view line, std::vector<agent_event>& out) = 0;

  /// Judges the invocation from everything fed plus the process result
  /// (exit status, deadline, stderr). Success needs a successful final event.
  virtual step_outcome finish(const process_result& result) = 0;
};

/// Whether the agent has credentials, told without spending tokens.
enum class auth_state : uint8_t { unknown, present, missing };

/// Returns "unknown", "present" or "missing".
std::string to_string(auth_state x);

class adapter {
public:
  virtual ~adapter();

  virtual adapter_kind kind() const noexcept = 0;

  /// Builds argv/env/stdin/cwd/deadlines for one step. `base_env` is the
  /// environment to filter (normally this process's `environ`).
  virtual process_spec
  build(const agent_config& agent, const step_input& in,
        const std::vector<std::string>& base_env) const = 0;

  virtual std::unique_ptr<output_parser> make_parser() const = 0;

  /// Environment variables that carry this CLI's credentials; passed through
  /// when set.
  virtual std::vector<std::string> credential_vars() const = 0;

  /// Tells from `env` and files under `home` whether credentials exist.
  virtual auth_state probe_auth(const std::vector<std::string>& env,
                                const std::string& home) const = 0;
};

/// Returns the adapter for `kind`.
std::unique_ptr<adapter> make_adapter(adapter_kind kind);

/// Returns the executable an adapter runs when `agent.command` is empty:
/// "codex", "claude", "gemini", "copilot"; "" for `command`.
std::string default_command(adapter_kind kind);

/// Returns this process's environment as `NAME=value` entries.
std::vector<std::string> current_environment();

/// Returns the entries of `base_env` whose names are in the base set (PATH,
/// HOME, USER, LOGNAME, LANG, LC_*, TERM, TMPDIR, XDG_*), in
/// `credential_vars`, or in `agent.env_allow` (a trailing `*` matches a
/// prefix), followed by `agent.env_set` (which replaces same-named entries).
/// The first entry of a repeated name wins; malformed entries are dropped.
std::vector<std::string>
build_environment(const agent_config& agent,
                  const std::vector<std::string>& credential_vars,
                  const std::vector<std::string>& base_env);

} // namespace orch
