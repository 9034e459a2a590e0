#pragma once

// A batch: many tasks through one coordinator (or anything that speaks the
// coordinator_actor interface, such as a pool of worker nodes). The batch
// actor pulls tasks from a streaming source only when a slot is free, so at
// most `concurrency` task texts are in memory, submits each, asks for its
// result, and appends one JSON line per ended task to the output in
// completion order. It needs nothing of the coordinator but `submit`,
// `result` and `cancel`, and subscribes to no events.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>

#include "actors/vocabulary.hpp"
#include "runtime/batch_task.hpp"
#include "runtime/jsonl_appender.hpp"

namespace orch {

/// What a batch actor needs.
struct batch_deps {
  /// Where runs go: only submit, result and cancel are used. The CLI hands
  /// in the local coordinator (spawn_coordinator).
  coordinator_actor coordinator;
  /// Runs in flight at most (>= 1).
  std::size_t concurrency = 64;
  /// The tasks, read only when a slot is free.
  std::shared_ptr<batch_task_source> source;
  /// The results, one line per ended task.
  std::shared_ptr<jsonl_appender> out;
  /// The workflow of tasks that name none.
  std::string default_workflow = "default";
  /// run_spec::user of every run (the OS user for the CLI).
  std::string user;
  /// Bypass the step cache for every run.
  bool no_cache = false;
  /// Known counts for the stats (the CLI's first pass over the input).
  uint64_t total = 0;
  uint64_t bad_lines = 0;
  /// How often a time-based fsync of the output is checked.
  std::chrono::milliseconds sync_tick{250};
};

struct batch_state {
  static inline const char* name = "orch.batch";

  struct in_flight {
    std::string id;
    /// Empty until the coordinator answered the submit.
    std::string run_id;
  };

  batch_deps deps;
  batch_stats stats;
  /// By a tag of ours (a run id is not known until the submit is answered).
  std::map<uint64_t, in_flight> running;
  uint64_t next_tag = 0;
  bool started = false;
  bool input_done = false;
  caf::typed_response_promise<batch_stats> done;
  std::chrono::steady_clock::time_point start;
};

/// Returns the result line of a run: `{"id": ...}` followed by the `run
/// --json` document (actors/run_report.hpp), with `"failure"` after
/// `"status"`: the failure kind of the step that failed the run
/// ("timeout_total", "crashed", ...), "cancelled", "run_error" when no step
/// says why, or "none" when the run did not fail.
nlohmann::ordered_json batch_result_line(const std::string& id,
                                         const run_result& res);

/// Returns the line of a task the coordinator refused before running it:
/// `{"id", "run_id": null, "workflow", "status": "failed", "failure": <the
/// error's code: "agent_unavailable", "rate_limited", "invalid_request",
/// ...>, "error": <the message>}`.
nlohmann::ordered_json
batch_refusal_line(const std::string& id, const std::string& workflow,
                   const std::string& failure, const std::string& error);

/// Returns the behaviour of a batch. Blocking: it reads the input and
/// writes (and fsyncs) the output on its own thread, so spawn it detached
/// (spawn_batch). A run cancelled because the batch stopped gets no line:
/// `--resume` runs it again. The coordinator is monitored: when it goes
/// down, the batch stops with an error.
batch_actor::behavior_type
batch_impl(batch_actor::stateful_pointer<batch_state> self, batch_deps deps);

/// Spawns a batch on its own thread.
batch_actor spawn_batch(caf::actor_system& sys, batch_deps deps);

} // namespace orch
