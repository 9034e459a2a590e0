#pragma once

// Worker nodes on the command line: `worker` (serve runs for a pool),
// `workers` (show the nodes), and the pieces `batch --workers` uses to run
// its tasks on a node pool instead of a local coordinator.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/node.hpp"
#include "actors/node_pool.hpp"
#include "actors/vocabulary.hpp"
#include "config/config.hpp"

namespace orch {
class system_config;
}

namespace orch::cli {

struct worker_options {
  /// HOST:PORT (port 0: any free one, printed at start).
  std::string listen;
  /// Runs taken at once.
  int slots = 4;
  tls_files tls;
  /// The bound on the files of one run sent back, in bytes.
  std::size_t max_result_bytes = default_max_result_bytes;
  /// Seconds of silence from a pool (heartbeats included) after which its
  /// connection is dropped and its runs cancelled.
  double node_timeout = 10;
};

/// Serves runs for node pools until SIGINT/SIGTERM: prints one line
/// "worker listening on HOST:PORT (...)" once it listens. Exit 2 for bad
/// options (listening off loopback without TLS included), 1 when it cannot
/// listen.
int cmd_worker(const worker_options& opts, load_result loaded);

struct workers_options {
  /// host:port,...
  std::string workers;
  tls_files tls;
  bool json = false;
};

/// Connects to each node and prints its address, version, agents, slots and
/// running runs, or the error reaching it. Exit 0 when every node answered,
/// 1 otherwise, 2 for bad options.
int cmd_workers(const workers_options& opts);

/// The options of a command whose runs go to worker nodes (`batch`,
/// `serve`).
struct pool_options {
  /// host:port,...; empty: the runs stay in this process.
  std::string workers;
  /// Mutual TLS with the nodes (all three or none).
  tls_files tls;
  /// Where the files each run wrote on its node go: <out_dir>/<id>/.
  std::string out_dir;
  /// Seconds of silence (heartbeats included) after which a node counts as
  /// lost.
  double node_timeout = 10;
  /// Seconds a lost node is tried again (0: never).
  double reconnect_for = 60;

  bool enabled() const {
    return !workers.empty();
  }

  /// "" when usable: with --workers, check_pool_options; without, none of
  /// --out-dir and --tls-* is given.
  std::string check() const;
};

/// Checks `--workers` and the TLS options of the connecting side: "" when
/// usable, else the error (no address, a bad one, an address off loopback
/// without TLS, TLS files missing or unreadable).
std::string check_pool_options(const std::string& workers,
                               const tls_files& tls);

/// Loads CAF's OpenSSL module into `cfg` when TLS files are given, and
/// turns on the heartbeat with the nodes (a node silent for `node_timeout`
/// is lost; see enable_node_heartbeat).
void prepare_pool_config(system_config& cfg, const tls_files& tls,
                         std::chrono::milliseconds node_timeout
                         = default_node_timeout);

/// Connects to every node of `opts.workers` and spawns a node pool over
/// those that answered (a warning on stderr names each one that did not)
/// with `deps` (its connect, out_dir and reconnect_for taken from `opts`); a
/// node lost later is connected to again for at most opts.reconnect_for
/// (zero: never). Returns a null handle, with `error` set, when none did.
coordinator_actor start_node_pool(caf::actor_system& sys,
                                  const pool_options& opts, node_pool_deps deps,
                                  std::string& error);

} // namespace orch::cli
