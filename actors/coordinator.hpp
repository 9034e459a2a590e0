#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/vocabulary.hpp"
#include "config/config.hpp"
#include "runtime/process.hpp"
#include "runtime/rate_limit_store.hpp"
#include "runtime/safe_file.hpp"

namespace orch {

/// Returns a new run id, `YYYYMMDD-HHMMSS-mmm-xxxxxx` (local time,
/// milliseconds, then 6 hex digits: a per-process counter mixed with a random
/// start). Unique within the process and sortable: ids made later sort after
/// earlier ones, even thousands within one millisecond (the counter part
/// only grows).
std::string make_run_id();

/// Returns the text of an error a coordinator answered (the message in its
/// context, without the category and code), or `to_string(err)` when it
/// carries none.
std::string error_text(const caf::error& err);

/// The `unknown_run` error for a run id nobody holds: "no run ID" and
/// `where` after it. The id comes from a client (an API path, a shell
/// line): it is clipped to 80 bytes and made valid UTF-8.
caf::error unknown_run_error(std::string_view id, std::string_view where = {});

/// A run spec checked and resolved against the config, as `submit` does it
/// (and `run --dry-run`, which submits nothing).
struct resolved_run {
  /// The run's own copy of the workflow, `--agents` applied.
  workflow_config workflow;
  /// The spec's, else the workflow's.
  int32_t max_iterations = 1;
  /// Absolute and normalised, no trailing '/': the spec's, else
  /// `<settings.workspace_dir>/<run_id>`.
  std::string workspace;
};

/// Checks the task (not empty, within settings.max_task_chars, no NUL), finds
/// the workflow, applies `--agents` to a copy, and resolves the workspace
/// path. Errors: errc::unknown_name (workflow), errc::invalid_request (task,
/// --agents, no steps), each with a message naming what and where.
caf::expected<resolved_run> resolve_run(const config& cfg, const run_spec& spec,
                                        const std::string& run_id);

/// The default availability check of an agent: "" when it can run, else
/// why not ("not installed: ...", "disabled: ...").
std::string probe_agent(const agent_config& agent);

/// What a coordinator needs besides the config.
struct coordinator_deps {
  std::shared_ptr<process_runner> runner;
  /// Run agent invocations and blocking file work on detached actors (their
  /// own threads). Tests on CAF's test coordinator turn it off, with a fake
  /// runner that never blocks.
  bool detached_workers = true;
  /// Returns "" when the agent can run, else why not ("not installed:
  /// ..."). Null: check_agent (PATH lookup); tests with a fake runner pass
  /// one that accepts everything.
  std::function<std::string(const agent_config&)> check_agent;
  /// Events kept per run for a late subscriber's replay (0: none; a
  /// subscriber then sees live events only).
  size_t event_buffer = 10000;
  /// Finished runs kept for `result` and `status`.
  size_t retained_runs = 100;
  /// Where the rate limiter keeps its buckets when `rate_limiting.enabled`
  /// (the CLI: the state directory, shared by its processes); null: in
  /// memory.
  std::shared_ptr<rate_limit_store> limit_store;
  /// Forget a finished run as soon as its result went to a waiter (a batch
  /// asks once for each run's result and nothing more): its entry does not
  /// wait among the retained runs. A run that ends before anyone asked is
  /// kept (within retained_runs) until asked once.
  bool drop_collected = false;
  /// Workflow actors alive at once at most (0: no bound). Runs accepted
  /// beyond it wait, queued, holding only their request, and start in
  /// submission order as others end: thousands of runs submitted at once
  /// cost little more than their texts (a batch sets it from its agents'
  /// max_concurrency).
  size_t max_active_runs = 0;
  /// The rate limiter's clock (ms since the epoch); null: the system clock.
  std::function<int64_t()> limit_clock;
  /// The state directory: the agents' circuit breakers are kept there
  /// (see agent_deps::state_dir) and the step cache in `cache/`. Empty:
  /// breakers not persisted, no step cache.
  std::filesystem::path state_dir;
  /// Passed to the agent actors (see agent_deps); null: the defaults.
  std::function<int64_t()> wall_clock;
  std::function<double()> jitter;
};

struct coordinator_state {
  static inline const char* name = "orch.coordinator";

  struct run_entry {
    run_info info;
    workflow_actor actor;
    /// Held until the run ends.
    std::shared_ptr<workspace_lock> lock;
    std::deque<progress_event> events;
    uint64_t next_seq = 1;
    std::vector<progress_sink> subscribers;
    std::optional<run_result> result;
    std::vector<caf::typed_response_promise<run_result>> waiters;
    /// Who submitted it (run_spec::user, else the OS user).
    std::string user;
  };

  std::shared_ptr<const config> cfg;
  coordinator_deps deps;
  /// One per enabled agent, shared by all runs.
  std::map<std::string, agent_actor> agents;
  /// Asked before a run is accepted; null when rate limiting is off.
  rate_limiter_actor limiter;
  /// The OS user of this process, for specs that name none.
  std::string os_user;
  /// The step cache shared by the agents (null when off).
  cache_actor cache;
  /// Agents whose actor went down, with the reason.
  std::map<std::string, std::string> down_agents;
  /// By run id (ids sort by creation).
  std::map<std::string, run_entry> runs;
  /// Runs accepted and not started (deps.max_active_runs), oldest first,
  /// with what their workflow actor needs.
  struct waiting_run {
    std::string id;
    std::map<std::string, agent_actor> agents;
    run_request request;
  };
  std::deque<waiting_run> waiting;
  /// Workflow actors alive.
  size_t active = 0;
  /// The run of each live workflow actor (a down message finds it at once).
  std::map<caf::actor_addr, std::string> run_of_actor;
  /// Subscribers (monitored): only their down messages need the search.
  std::set<caf::actor_addr> sink_addrs;
  /// Finished run ids, oldest first (bounded by deps.retained_runs).
  std::deque<std::string> finished;
  /// Subscribers to every run.
  std::vector<progress_sink> all_subscribers;
  /// Set by an exit message: runs are being cancelled; the coordinator
  /// quits with this reason once none is left, and refuses new ones.
  std::optional<caf::error> stopping;
};

/// Returns the behaviour of a run coordinator (see coordinator_actor). It
/// lives until it receives an exit message; then it cancels every run,
/// refuses new ones, answers the waiters (status `cancelled`, manifests
/// written) and quits once no run is left; its agent actors stop with it.
/// Only `exit_reason::kill` stops it at once (runs then end as failed).
/// Subscribers are monitored and dropped when they go down.
coordinator_actor::behavior_type
coordinator_impl(coordinator_actor::stateful_pointer<coordinator_state> self,
                 std::shared_ptr<const config> cfg, coordinator_deps deps);

/// Spawns a coordinator.
coordinator_actor spawn_coordinator(caf::actor_system& sys,
                                    std::shared_ptr<const config> cfg,
                                    coordinator_deps deps);

} // namespace orch
