#pragma once

// The coordinator side of worker nodes: a node pool speaks the
// coordinator_actor interface (submit, result, list, status, cancel,
// subscribe), so a batch (and later the server) uses it in place of a local
// coordinator, and runs each task on one of its nodes (actors/node.hpp).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/timespan.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/node.hpp"
#include "actors/vocabulary.hpp"
#include "runtime/safe_file.hpp"

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
  /// Connects to a node again once it was lost (blocking: called on a
  /// detached actor), e.g. connect_node. Empty: a lost node stays lost.
  std::function<node_link(caf::actor_system&, const std::string& address)>
    connect;
  /// The wait before the first try to connect to a lost node again; doubled
  /// after each failed try, up to reconnect_max.
  caf::timespan reconnect_min = std::chrono::milliseconds{500};
  caf::timespan reconnect_max = std::chrono::seconds{10};
  /// A lost node is given up once it stayed unreachable this long (zero:
  /// never). While a lost node is tried again, queued tasks wait for it
  /// even when no other node is up.
  caf::timespan reconnect_for = std::chrono::seconds{60};
  /// Finished tasks kept for `result`/`status`/`list` (the oldest finished
  /// and collected ones are forgotten beyond it); 0: all of them.
  std::size_t retained_runs = 0;
  /// The bound on the files sent along with a task whose spec names a
  /// workspace of this machine (node_task::seed).
  std::size_t max_seed_bytes = default_max_result_bytes;
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
    /// It was connected once (a node refused at the start is never tried
    /// again).
    bool was_up = false;
    /// A try to connect to it again is under way (or waits its turn).
    bool reconnecting = false;
    /// Tries to connect again ran out (deps.reconnect_for).
    bool given_up = false;
    /// The wait before the next try.
    caf::timespan backoff{};
    /// When it was lost.
    std::chrono::steady_clock::time_point lost_at;
    /// How often it came back.
    int32_t rejoined = 0;
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
    /// Its folder under deps.out_dir: the plain form of the spec's label
    /// (a batch task's id), else of the run id; the run id is added when
    /// another task of this pool already has that folder.
    std::string folder;
    /// The files of the spec's workspace (when it names one) the run
    /// starts from on its node, and the ones left out ("path: why").
    std::vector<run_file> seed;
    std::vector<std::string> seed_omitted;
    /// The spec's workspace's lock, held from the seed's read until its
    /// changes came back (an editor's save meanwhile is refused, as while a
    /// local run holds it).
    std::shared_ptr<std::optional<workspace_lock>> lock;
    std::vector<caf::typed_response_promise<run_result>> waiters;
    std::vector<progress_sink> subscribers;
    uint64_t next_seq = 1;
  };

  node_pool_deps deps;
  std::vector<node_entry> nodes;
  std::map<std::string, task_entry> tasks;
  std::deque<std::string> queue;
  /// The task_entry::folder names taken.
  std::set<std::string> folders;
  /// Finished tasks, oldest first (deps.retained_runs).
  std::deque<std::string> finished;
  std::vector<progress_sink> all_subscribers;
  /// Answers dropped because their task had already moved on (a node
  /// thought dead answered late, or answered twice).
  int64_t dropped = 0;
  /// The nodes to cancel runs on when the pool stops (updated when a node
  /// comes back with a new handle).
  std::shared_ptr<std::vector<node_actor>> live
    = std::make_shared<std::vector<node_actor>>();
};

/// The behaviour of a node pool over the connected `links` (those with an
/// error are listed as down). Nodes are monitored: a node that goes down
/// gives its unfinished tasks back to the queue (run again elsewhere, up to
/// deps.max_attempts); each task's result is recorded exactly once, a late
/// answer is dropped. Tasks go to the node with the most free slots. When
/// no node is left, queued tasks fail with errc::node_unavailable's text.
/// With deps.connect, a lost node is tried again (backoff from
/// deps.reconnect_min doubling to deps.reconnect_max, for at most
/// deps.reconnect_for) and takes tasks again once back; queued tasks wait
/// while a lost node is being tried.
/// A result whose files could not all come back says so in its message.
/// Progress subscribers get run_started (text: the node) and run_finished
/// events only. A result's workspace is `<out_dir>/<id>` when out_dir is
/// set, else "<node address>:<the node's workspace>".
/// A spec that names a workspace (a folder of this machine, e.g. a
/// session's) runs on its node from a copy of that workspace's files
/// (deps.max_seed_bytes; those left out are named in the result's message),
/// and the files the run wrote or deleted there come back into it: the
/// result's workspace is then that folder, locked (workspace_lock) from
/// the read of its files until the run's changes are in it.
coordinator_actor::behavior_type
node_pool_impl(coordinator_actor::stateful_pointer<node_pool_state> self,
               std::vector<node_link> links, node_pool_deps deps);

} // namespace orch
