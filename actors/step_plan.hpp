#pragma once

// One step turned into what will run: the rendered prompt and the exact
// process_spec (argv, env, stdin, cwd, deadlines, output cap, kill grace).
// The agent actor runs what plan_step returns, and `run --dry-run` prints
// it: one function, so the dry run shows what the real run would start.

#include <string>
#include <vector>

#include "adapters/adapter.hpp"
#include "config/config.hpp"
#include "runtime/process.hpp"
#include "runtime/review.hpp"

namespace orch {

/// What one step will run.
struct planned_step {
  /// The rendered prompt the agent gets (through argv or stdin).
  std::string prompt;
  /// The process to start, with the settings' output cap and kill grace.
  process_spec spec;
};

/// Returns the plan of a step whose prompt is already rendered (`in.prompt`):
/// the adapter's argv/env/stdin/cwd/deadlines for `agent`, the environment
/// filtered from `base_env`, and `output_cap_bytes` and `kill_grace` from
/// `settings`.
planned_step
plan_step(const agent_config& agent, const adapter& adapt, const step_input& in,
          const std::vector<std::string>& base_env, const settings& settings);

/// Returns the plan of a step from what its prompt is made of: renders the
/// prompt for `ctx` (`ctx.task_kind` is the step's task, `ctx.workspace` its
/// working directory) with `cfg`, then plans it as above.
planned_step plan_step(const config& cfg, const agent_config& agent,
                       const adapter& adapt, const prompt_context& ctx,
                       const std::vector<std::string>& base_env);

} // namespace orch
