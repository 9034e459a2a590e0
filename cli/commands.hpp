#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "cli/node_commands.hpp"
#include "config/config.hpp"

// Each command gets the config as main loaded it (once per process, for the
// log and the command alike) and reports its errors and warnings itself.

namespace orch::server {
struct server_options;
} // namespace orch::server

namespace orch::cli {

/// Lists every configured agent with its true status; exit 0.
int cmd_agents(load_result loaded, bool json);

/// Checks a config and reports every error with file, line, column and key;
/// exit 0 when valid, 2 otherwise. `config_path` is the `--config` given.
int cmd_validate(const std::string& config_path, const load_result& loaded);

/// Lists the workflows with their steps.
int cmd_workflows(load_result loaded, bool json);

struct run_options {
  std::string task;
  std::string workflow = "default";
  int max_iterations = 0;
  std::string output;
  std::string agents;
  bool verbose = false;
  bool dry_run = false;
  bool json = false;
  /// Run every step even when the step cache holds its outcome.
  bool no_cache = false;
};

/// Lists the saved sessions (`<state dir>/sessions/*.json`): name, created,
/// messages, workflow, workspace; files that cannot be read are listed with
/// their error. Exit 0 (1 when the folder cannot be listed).
int cmd_sessions(load_result loaded, bool json);

/// Runs a task through a workflow to convergence.
int cmd_run(const run_options& opts, load_result loaded);

/// `serve`: the HTTP API until a signal stops it (server/serve.hpp).
int cmd_serve(const orch::server::server_options& opts,
              const pool_options& pool, load_result loaded);

} // namespace orch::cli

// -- h16a

namespace orch {
struct coordinator_deps;
} // namespace orch

namespace orch::cli {

/// The dependencies of a coordinator in this process, as `run` makes them:
/// the POSIX process runner, the rate limiter's store in the state
/// directory (in memory, with a warning, when unusable) and the state
/// directory itself when it passes open_state_dir's checks.
coordinator_deps local_coordinator_deps(const config& cfg);

struct batch_options {
  /// The JSON-lines input.
  std::string input;
  /// The JSON-lines output (appended to).
  std::string out;
  std::size_t concurrency = 16;
  /// Continue an existing output: skip the ids already in it.
  bool resume = false;
  /// Refuse to start when any input line is bad.
  bool strict = false;
  /// The workflow of tasks that name none.
  std::string workflow = "default";
  bool no_cache = false;
  /// Seconds between progress lines when stderr is not a terminal.
  double progress_interval = 10;
  /// Worker nodes: the tasks run there, not here.
  pool_options pool;
};

/// Runs every task of a JSON-lines file (see README, `batch`); exit 0 when
/// all succeeded, 1 when some failed or some input line was bad, 2 for a
/// usage error or (with --strict) bad input, 130 when interrupted.
int cmd_batch(const batch_options& opts, load_result loaded);

} // namespace orch::cli

// -- hdup

namespace orch::cli {

/// The loaded config; prints its warnings and errors to stderr (escaped for
/// the terminal) and gives nullopt when it has errors.
std::optional<config> usable_or_report(load_result res);

} // namespace orch::cli
