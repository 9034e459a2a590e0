#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/blocking_work.hpp"
#include "actors/vocabulary.hpp"
#include "adapters/adapter.hpp"
#include "config/config.hpp"
#include "runtime/breaker.hpp"
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
  /// The state directory: the breaker is read from and saved to
  /// `<state_dir>/breakers/<agent>.json`. Empty: not persisted (tests).
  std::filesystem::path state_dir;
  /// Wall clock in ms since the epoch (breaker times, quota reset times).
  /// Null: the system clock; tests pass a fake one.
  std::function<int64_t()> wall_clock;
  /// Returns the jitter of a retry delay in [0, 1]: that fraction of half
  /// the delay is taken off. Null: random; tests pass a constant.
  std::function<double()> jitter;
  /// The other agent actors by name, for fallbacks: filled by the owner
  /// (the coordinator) once all are spawned, before any step is sent, and
  /// only read afterwards. Weak: agents do not keep each other alive.
  std::shared_ptr<std::map<std::string, caf::actor_addr>> peers;
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
    /// The attempts of this step so far (retries, quota waits).
    std::vector<attempt_record> attempts;
  };

  agent_config agent;
  agent_deps deps;
  std::shared_ptr<const adapter> adapt;
  /// Steps waiting for a free slot, in arrival order.
  std::deque<pending> queue;
  /// A step holding a slot: running an attempt, or waiting to retry.
  struct running_job {
    std::string run_id;
    /// The running attempt's cancel token (null while waiting).
    std::shared_ptr<cancel_token> token;
    pending job;
    /// Waiting for its retry timer (backoff or quota wait).
    bool waiting = false;
  };
  /// Steps holding a slot, by invocation id.
  std::map<uint64_t, running_job> running;
  /// The cancel tokens of `running`, shared with the exit hook: an agent
  /// actor that stops (or is killed) cancels its running invocations, so no
  /// worker blocks on a process nobody waits for.
  std::shared_ptr<std::set<std::shared_ptr<cancel_token>>> tokens
    = std::make_shared<std::set<std::shared_ptr<cancel_token>>>();
  uint64_t next_id = 0;
  /// Threads that ran a step and wait for the next one (detached lanes, not
  /// linked: ended when the agent actor ends, or when more than a few sit
  /// idle). A step without the step cache runs on one of them instead of
  /// on a thread started for it.
  std::vector<blocking_lane> idle_lanes;
  /// Every lane alive, busy or idle (ended with the agent actor).
  std::shared_ptr<std::set<blocking_lane>> lanes
    = std::make_shared<std::set<blocking_lane>>();
  /// Refuses steps at once while the agent is unwell (runtime/breaker.hpp).
  circuit_breaker breaker;
};

/// Returns the behaviour of the actor for one configured agent: it accepts
/// steps, runs at most `agent.max_concurrency` at once and queues the rest
/// (in arrival order, across runs). `cancel(run_id)` answers that run's
/// queued steps as cancelled and cancels its running ones (SIGTERM, grace,
/// SIGKILL by the runner); `cancel` alone does so for every run.
///
/// Resilience (issue 12): a step that fails retryably (retryable()) runs
/// again after min(cap, base * 2^(n-1)) minus jitter, up to
/// `agent.retry.attempts` attempts, on the workspace as the failed attempt
/// left it; a rate_limited one waits for the reported reset time when it is
/// within settings.max_quota_wait. Each attempt asks the agent's circuit
/// breaker first; an open one refuses with failure circuit_open. A step
/// that ends not installed, not authenticated, open-circuited or out of
/// quota goes to `agent.fallback` in order (through `deps.peers`); the
/// result names the agent that ran it (`ran_as`) and why
/// (`fallback_reason`). Waiting steps keep their slot; a cancel answers
/// them at once.
agent_actor::behavior_type
agent_impl(agent_actor::stateful_pointer<agent_state> self, agent_config agent,
           agent_deps deps);

} // namespace orch
