#pragma once

// The coordinator side of worker nodes: a node pool speaks the
// coordinator_actor interface (submit, result, list, status, cancel,
// subscribe), so a batch (and later the server) uses it in place of a local
// coordinator, and runs each task on one of its nodes (actors/node.hpp).

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/node.hpp"
#include "actors/vocabulary.hpp"

namespace orch {

struct node_pool_deps {
  /// Where the files a run wrote go (`<out_dir>/<id>/...`); empty: they are
  /// dropped (the result still lists them).
  std::string out_dir;
  /// A task whose node died is run again on another, at most this many
  /// times in all.
  int32_t max_attempts = 3;
  /// Forget a task once its result went to a waiter (a batch asks for each
  /// result right after the submit): memory stays bounded by the tasks in
  /// flight. `result`, `status` and `list` then no longer know it.
  bool drop_collected = false;
};

struct node_pool_state {
  static inline const char* name = "orch.node_pool";

  struct node_entry {
    std::string address;
    node_actor actor;
    node_status status;
    bool alive = true;
    /// Why it is not alive.
    std::string error;
    int32_t running = 0;
    int64_t done = 0;
  };

  struct task_entry {
    run_spec spec;
    run_info info;
    int32_t attempt = 0;
    /// Index in `nodes` while it runs there; -1 otherwise.
    int32_t node = -1;
    /// The answer arrived and its files are being written.
    bool writing = false;
    std::optional<run_result> result;
    std::vector<caf::typed_response_promise<run_result>> waiters;
    std::vector<progress_sink> subscribers;
    uint64_t next_seq = 1;
  };

  node_pool_deps deps;
  std::vector<node_entry> nodes;
  std::map<std::string, task_entry> tasks;
  std::deque<std::string> queue;
  std::vector<progress_sink> all_subscribers;
  /// Answers dropped because their task had already moved on (a node
  /// thought dead answered late, or answered twice).
  int64_t dropped = 0;
};

/// The behaviour of a node pool over the connected `links` (those with an
/// error are listed as down). Nodes are monitored: a node that goes down
/// gives its unfinished tasks back to the queue (run again elsewhere, up to
/// deps.max_attempts); each task's result is recorded exactly once, a late
/// answer is dropped. Tasks go to the node with the most free slots. When
/// no node is left, queued tasks fail with errc::node_unavailable's text.
/// A result whose files could not all come back says so in its message.
/// Progress subscribers get run_started (text: the node) and run_finished
/// events only. A result's workspace is `<out_dir>/<id>` when out_dir is
/// set, else "<node address>:<the node's workspace>".
coordinator_actor::behavior_type
node_pool_impl(coordinator_actor::stateful_pointer<node_pool_state> self,
               std::vector<node_link> links, node_pool_deps deps);

} // namespace orch
