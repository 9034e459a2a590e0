#pragma once

// `ai-orchestrator shell` (alias `interactive`): the REPL. Each message runs
// the current workflow; slash commands (/help lists them) inspect and steer
// the session. Line editing is in cli/line_editor.*.

#include <string>
#include <vector>

#include "config/config.hpp"

namespace orch::cli {

struct shell_options {
  /// A saved session to resume (`--load <name>`).
  std::string load;
  /// The workflow to start with.
  std::string workflow = "default";
};

/// Runs the shell until /exit, /quit, Ctrl-D or the end of piped input.
/// Exit 0; 2 for a bad config, workflow or `--load`; 130 after SIGTERM or
/// SIGHUP.
int cmd_shell(const shell_options& opts, load_result loaded);

/// The slash commands, in /help order.
const std::vector<std::string>& shell_commands();

/// The command of `shell_commands()` closest to `typed` (edit distance).
std::string closest_command(const std::string& typed);

} // namespace orch::cli
