#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <filesystem>

#include <caf/fwd.hpp>
#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "config/config.hpp"
#include "runtime/process.hpp"

namespace orch {

/// Whether an agent can run, as `agents` reports it.
enum class availability : uint8_t {
  available,
  /// The executable is not on PATH.
  not_installed,
  /// `enabled: false` in the config.
  disabled,
  /// Installed, but no credentials were found.
  auth_required,
  /// Installed, but `--version` failed or timed out.
  error,
};

/// Returns the display spelling of `x` ("available", "not installed", ...),
/// also used by `agents --json`.
std::string to_string(availability x);

/// What `agents` reports for one configured agent.
struct agent_status {
  std::string name;
  adapter_kind kind = adapter_kind::command;
  std::string command;
  /// Absolute path of the executable when found.
  std::string path;
  bool enabled = true;
  bool installed = false;
  /// First line of `<command> --version`, when it answered.
  std::string version;
  auth_state auth = auth_state::unknown;
  availability status = availability::available;
  /// Why, and what to do, when not available.
  std::string detail;
  std::string role;
};

/// Returns how to install the CLI behind `kind` (an npm command), or a hint
/// for the `command` adapter.
std::string install_hint(adapter_kind kind);

/// Tells, without spending tokens, whether an agent can run: enabled, found
/// on PATH, credentials present (where that can be told from env and files).
/// Does not run the agent.
agent_status check_agent(const agent_config& agent,
                         const std::vector<std::string>& env,
                         const std::string& home);

/// Checks every agent and probes the versions of those installed with
/// `--version` (a short deadline), all at once in detached actors.
std::vector<agent_status> probe_agents(caf::actor_system& sys,
                                       const config& cfg,
                                       std::shared_ptr<process_runner> runner);

/// An agent's circuit breaker as the state directory keeps it.
struct breaker_view {
  /// closed, open or half_open (an open one whose cool-down is over shows
  /// as half_open: the next step is its trial); unknown when its file
  /// cannot be read.
  std::string state = "closed";
  int64_t open_until_ms = 0;
  std::string reason;
  /// For the table: "closed", "open until 15:40:00", "half_open".
  std::string text = "closed";
};

/// Reads `agent`'s breaker below `state_dir` (closed when there is none or
/// `state_dir` is empty).
breaker_view read_breaker(const std::filesystem::path& state_dir,
                          const std::string& agent);

/// Returns the JSON of one agent as `agents --json` prints it (and the
/// server's GET /api/agents).
nlohmann::ordered_json to_json(const agent_status& s, const breaker_view& b);

} // namespace orch
