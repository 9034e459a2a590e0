#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/spawn_options.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/blocking_work.hpp"
#include "actors/vocabulary.hpp"
#include "config/config.hpp"

namespace orch {

/// What a workflow actor needs besides the config and the agents.
struct workflow_deps {
  /// Run the blocking file work (saving existing files, listing files for
  /// prompts, offloading long outputs, manifest writes) on detached
  /// actors. Off: in-line on the actor's thread (tests on the test
  /// coordinator).
  bool detached_workers = false;
};

struct workflow_state {
  static inline const char* name = "orch.workflow";

  std::shared_ptr<const config> cfg;
  std::map<std::string, agent_actor> agents;
  workflow_deps deps;
  /// Set by `cancel`: the run ends as cancelled at the next step boundary
  /// (its agents were told to cancel its steps).
  bool cancel_requested = false;

  // -- the run in progress ----------------------------------------------------
  run_request request;
  workflow_config workflow;
  run_result result;
  caf::typed_response_promise<run_result> promise;
  bool running = false;
  bool has_review = false;
  int32_t max_iterations = 1;
  int32_t iteration = 0;
  size_t step = 0;
  /// Results of the current step's items, by item index.
  std::vector<step_result> group;
  /// Items of the current step still waiting for their result.
  std::vector<bool> pending;
  size_t outstanding = 0;
  /// Counts run_step calls: a reply for an earlier step is dropped.
  uint64_t step_seq = 0;
  /// Agents whose actor went down, with the reason (they left `agents`).
  std::map<std::string, std::string> down_agents;
  /// Files changed by several items of a parallel group so far.
  std::vector<std::string> conflicts;
  /// Findings of the latest review, open until a later review says otherwise.
  std::vector<finding> open_findings;
  /// The review before the latest, for the no-progress rule.
  std::vector<finding> last_review;
  bool reviewed = false;
  /// Final texts of the previous step (excerpts of long ones), handed to
  /// the next prompt.
  std::string previous_output;
  std::chrono::steady_clock::time_point started;
  /// Runs the blocking file work (saving existing files, listings,
  /// offloaded outputs, manifests) in order; linked: it ends with the run.
  blocking_lane lane;
  /// The listing of the workspace for the next step's prompt, made with
  /// the previous step's file work (null: list when the step starts).
  std::shared_ptr<std::vector<std::string>> next_files;
  /// The manifest after the last step, written once the next step is sent
  /// (null: none due).
  std::shared_ptr<run_result> manifest_due;
};

/// Returns the behaviour of a workflow-run actor: it drives one task through
/// a workflow's steps and iterations, fanning parallel groups out to several
/// agent actors, until the review converges, max_iterations is reached, a
/// round makes no progress, or a step fails. Writes the run manifest
/// (`<workspace>/.orchestrator/manifest.json`) after every step. Long step
/// outputs go to `.orchestrator/outputs/<run_id>/` (see offload_output).
/// Monitors the agent actors: one that dies fails its waiting items as
/// `crashed`. A run whose existing files could not all be saved first
/// fails before any step.
workflow_actor::behavior_type
workflow_impl(workflow_actor::stateful_pointer<workflow_state> self,
              std::shared_ptr<const config> cfg,
              std::map<std::string, agent_actor> agents);

/// Like workflow_impl, with blocking file work placed as `deps` says.
workflow_actor::behavior_type
workflow_run_impl(workflow_actor::stateful_pointer<workflow_state> self,
                  std::shared_ptr<const config> cfg,
                  std::map<std::string, agent_actor> agents,
                  workflow_deps deps);

/// Returns true when the two finding lists hold the same findings, in any
/// order.
bool same_findings(std::vector<finding> a, std::vector<finding> b);

} // namespace orch
