#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/vocabulary.hpp"
#include "adapters/adapter.hpp"
#include "config/config.hpp"
#include "runtime/process.hpp"

namespace orch {

/// What an agent actor needs besides its configuration.
struct agent_deps {
  std::shared_ptr<process_runner> runner;
  /// Output cap and kill grace come from here.
  orch::settings settings;
  /// Run each invocation in a detached actor (its own thread, since it
  /// blocks). Tests on CAF's test coordinator turn it off, with a fake runner
  /// that never blocks.
  bool detached_workers = true;
  /// The step cache (actors/cache_actor.hpp); null: steps always run.
  cache_actor cache;
};

/// Runs one step to completion, blocking: snapshot the workspace, run the
/// agent's process, judge its output, detect the files it wrote, write the
/// files its answer names in code blocks, read review findings. `before`,
/// when given, is the workspace snapshot to start from (the step cache
/// keyed the step on it); else one is taken.
step_result execute_step(const agent_config& agent, const adapter& adapt,
                         const agent_deps& deps, const step_request& req,
                         const cancel_token* cancel,
                         const file_snapshot* before = nullptr);

struct agent_state {
  static inline const char* name = "orch.agent";

  struct pending {
    step_request request;
    caf::typed_response_promise<step_result> promise;
  };

  agent_config agent;
  agent_deps deps;
  std::shared_ptr<const adapter> adapt;
  /// Steps waiting for a free slot, in arrival order.
  std::deque<pending> queue;
  /// A running invocation: its run and its cancel token.
  struct running_job {
    std::string run_id;
    std::shared_ptr<cancel_token> token;
  };
  /// Running invocations, by invocation id.
  std::map<uint64_t, running_job> running;
  /// The cancel tokens of `running`, shared with the exit hook: an agent
  /// actor that stops (or is killed) cancels its running invocations, so no
  /// worker blocks on a process nobody waits for.
  std::shared_ptr<std::set<std::shared_ptr<cancel_token>>> tokens
    = std::make_shared<std::set<std::shared_ptr<cancel_token>>>();
  uint64_t next_id = 0;
};

/// Returns the behaviour of the actor for one configured agent: it accepts
/// steps, runs at most `agent.max_concurrency` at once and queues the rest
/// (in arrival order, across runs). `cancel(run_id)` answers that run's
/// queued steps as cancelled and cancels its running ones (SIGTERM, grace,
/// SIGKILL by the runner); `cancel` alone does so for every run.
agent_actor::behavior_type
agent_impl(agent_actor::stateful_pointer<agent_state> self, agent_config agent,
           agent_deps deps);

} // namespace orch
