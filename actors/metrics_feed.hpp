#pragma once

// The metrics feed: an actor subscribed to every run's progress at the
// coordinator that keeps the metrics registry (runtime/metrics.hpp) up to
// date. A run_started event counts a running run; a run_finished event
// fetches the run's result from the coordinator and records the run (status,
// duration, failure kind) and each agent invocation of its steps (attempt,
// duration, failure kind, tokens, cost).

#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/vocabulary.hpp"
#include "runtime/metrics.hpp"

namespace orch {

/// Returns the task sample of a finished run: its workflow, status,
/// duration, and when it failed or was cancelled the failure kind of its
/// last failed step (`cancelled` for a cancelled run, `run_error` when no
/// step failed).
task_sample task_sample_of(const run_result& res);

/// Returns the agent invocations of a finished run: one per attempt of each
/// step (a single-try step is one attempt, by the agent that ran it). Steps
/// answered by the step cache and attempts refused by an open breaker ran
/// no process and are left out. The step's tokens and cost go to its last
/// attempt.
std::vector<agent_call_sample> agent_calls_of(const run_result& res);

/// Records a finished run and its agent invocations.
void record_run(metrics_registry& metrics, const run_result& res);

struct metrics_feed_state {
  static inline const char* name = "orch.metrics_feed";

  coordinator_actor coordinator;
  std::shared_ptr<metrics_registry> metrics;
  /// Runs seen started and not yet finished.
  std::set<std::string> running;
  /// Runs already recorded (a replayed run_finished is not counted twice),
  /// the oldest forgotten first beyond `max_remembered`.
  std::set<std::string> recorded;
  std::deque<std::string> recorded_order;
  static constexpr size_t max_remembered = 10000;
};

/// The feed's behaviour: subscribes to every run at `coordinator` and quits
/// when the coordinator goes down.
progress_sink::behavior_type
metrics_feed_impl(progress_sink::stateful_pointer<metrics_feed_state> self,
                  coordinator_actor coordinator,
                  std::shared_ptr<metrics_registry> metrics);

/// Spawns a metrics feed for `coordinator` into `metrics`.
progress_sink spawn_metrics_feed(caf::actor_system& sys,
                                 coordinator_actor coordinator,
                                 std::shared_ptr<metrics_registry> metrics);

} // namespace orch
