#pragma once

#include <string>

namespace orch::cli {

/// Lists every configured agent with its true status; exit 0.
int cmd_agents(const std::string& config_path, bool json);

/// Checks a config and reports every error with file, line, column and key;
/// exit 0 when valid, 2 otherwise.
int cmd_validate(const std::string& config_path);

/// Lists the workflows with their steps.
int cmd_workflows(const std::string& config_path, bool json);

struct run_options {
  std::string task;
  std::string workflow = "default";
  int max_iterations = 0;
  std::string output;
  std::string agents;
  std::string config_path;
  bool verbose = false;
  bool dry_run = false;
  bool json = false;
};

/// Runs a task through a workflow to convergence.
int cmd_run(const run_options& opts);

} // namespace orch::cli
