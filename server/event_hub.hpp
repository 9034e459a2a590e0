#pragma once

// Every run's progress events, for the server's streams. One hub actor
// (spawn_event_hub) subscribes to every run at the coordinator and hands
// each event, rendered to its JSON once, to the event_hub store; SSE
// handlers and the WebSocket pusher (civetweb threads) read the store and
// wait on it. The store keeps a run's events in seq order (the coordinator
// stamps them, one sender, so they arrive in order), so a client resuming
// after seq N gets exactly the events after N: no gap, no duplicate. It
// mirrors the coordinator's per-run replay buffer (the same bound), so a
// hundred clients cost one render per event and one notify, not a hundred
// subscriptions.
//
// Agent output lines (agent_event) are throttled per run (a token bucket:
// options agent_events_per_second, agent_event_burst); the dropped ones are
// counted in the `skipped` field of the run's next event sent (an agent_event
// or the step_finished after them), so their seq numbers are missing from
// every stream alike. Events of a run after its
// run_finished are dropped; run_finished carries the run's result (the
// `run --json` document), asked of the coordinator when it arrives.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/vocabulary.hpp"

namespace orch::server {

/// One event as the streams send it.
struct stored_event {
  std::string run_id;
  uint64_t seq = 0;
  progress_event::kind_t kind = progress_event::kind_t::step_started;
  /// The data JSON, one line.
  std::string json;
  /// Position in the hub's all-runs order, from 1.
  uint64_t global = 0;
};

using event_ptr = std::shared_ptr<const stored_event>;

class event_hub {
public:
  /// Keeps up to `per_run` events of a run and the events of the last
  /// `max_runs` runs (finished ones are dropped first), and `global_limit`
  /// events in the all-runs order.
  explicit event_hub(size_t per_run = 10000, size_t max_runs = 200,
                     size_t global_limit = 20000);

  /// Adds an event (from the hub actor) and wakes the waiting streams.
  void push(stored_event ev);

  /// Notes that run `id` exists (submitted) before any event came.
  void expect_run(const std::string& id);

  /// What a stream gets from a wait.
  struct batch {
    std::vector<event_ptr> events;
    /// The run's run_finished is stored (and the batch reaches it, or the
    /// client is past it).
    bool finished = false;
    /// The hub is closing: send what is here, then end.
    bool closed = false;
  };

  /// Waits until run `id` has events with seq > `after`, or it finished,
  /// or `until`, or close(); returns those events (all of them).
  batch wait_run(const std::string& id, uint64_t after,
                 std::chrono::steady_clock::time_point until);

  /// Returns the events of `id` with seq > `after` now, without waiting.
  batch events_of(const std::string& id, uint64_t after);

  /// Waits for events of any run with global position > `after`.
  batch wait_all(uint64_t after, std::chrono::steady_clock::time_point until);

  /// The global position of event `seq` of run `id`; nothing when it is no
  /// longer kept.
  std::optional<uint64_t> global_of(const std::string& id, uint64_t seq);

  /// The newest global position.
  uint64_t last_global();

  /// Whether run `id`'s run_finished is stored, and when it arrived (wall
  /// clock ms; 0 when not finished).
  int64_t finished_ms(const std::string& id);

  /// Waits until every run in `ids` has its run_finished stored, or
  /// `until`. Returns whether all have.
  bool wait_finished(const std::vector<std::string>& ids,
                     std::chrono::steady_clock::time_point until);

  /// Wakes every waiter; streams end after sending what they have.
  void close();

  /// Bumps the generation and wakes every waiter (nothing else changes).
  void wake();
  bool closed();

  /// Bumped on every push and on close: the WebSocket pusher waits on it.
  uint64_t generation();
  /// Waits until generation() differs from `seen` or `until`.
  uint64_t wait_generation(uint64_t seen,
                           std::chrono::steady_clock::time_point until);

private:
  struct run_events {
    std::deque<event_ptr> events;
    int64_t finished_ms = 0;
  };

  void evict_locked();
  /// The run's events after `after` (mtx_ held).
  batch run_batch_locked(const std::string& id, uint64_t after) const;

  std::mutex mtx_;
  std::condition_variable cv_;
  size_t per_run_;
  size_t max_runs_;
  size_t global_limit_;
  std::map<std::string, run_events> runs_;
  /// Run ids in the order they appeared (for eviction).
  std::deque<std::string> order_;
  std::deque<event_ptr> global_;
  uint64_t next_global_ = 1;
  uint64_t generation_ = 0;
  bool closed_ = false;
};

/// Settings of the hub actor.
struct event_hub_settings {
  int32_t agent_events_per_second = 20;
  int32_t agent_event_burst = 100;
  /// How long the hub waits for a finished run's result.
  std::chrono::milliseconds result_timeout{30000};
};

/// Spawns the hub actor: subscribes to every run of `coord` (from the
/// first event) and feeds `hub`. It lives until it is sent an exit (or
/// the coordinator goes down).
progress_sink
spawn_event_hub(caf::actor_system& sys, const coordinator_actor& coord,
                std::shared_ptr<event_hub> hub, event_hub_settings settings);

} // namespace orch::server
