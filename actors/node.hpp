#pragma once

// Worker nodes: a node actor wraps a local run coordinator and runs whole
// workflow runs for a node pool on another machine (actors/node_pool.hpp),
// over CAF's middleman, with mutual TLS through CAF's OpenSSL module.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/vocabulary.hpp"

namespace orch {

/// The files a run wrote that a node sends back, at most this many bytes in
/// all per run by default (node_deps::max_result_bytes).
constexpr std::size_t default_max_result_bytes = std::size_t{8} << 20;

/// The version a node or a pool announces: ORCH_VERSION, or the value of the
/// environment variable ORCH_FAKE_VERSION when set (tests of the version
/// check only; not documented for users).
std::string node_version();

/// A fingerprint of the message vocabulary (actors/vocabulary.hpp): 16 hex
/// digits of the SHA-256 of every registered type's name and size, in type
/// ID order. Two builds whose payload types differ get different ones.
std::string vocabulary_fingerprint();

/// The files of mutual TLS: the CA that signs every node's certificate, and
/// this process's certificate and key (PEM).
struct tls_files {
  std::string ca;
  std::string cert;
  std::string key;

  /// True when any of the three is given.
  [[nodiscard]] bool any() const {
    return !ca.empty() || !cert.empty() || !key.empty();
  }

  /// "" when all three are given and readable, else what is wrong
  /// ("--tls-key is missing", "cannot read --tls-ca x: ...").
  [[nodiscard]] std::string check() const;
};

/// Loads CAF's OpenSSL module into `cfg` (the middleman must be loaded
/// already) with the certificate, key and CA file of `tls`: peers must show
/// a certificate signed by that CA, both ways.
void enable_tls(caf::actor_system_config& cfg, const tls_files& tls);

/// How long a node pool and a worker wait for any sign of life from each
/// other (heartbeats included) before they drop the connection, by default.
constexpr std::chrono::milliseconds default_node_timeout{10000};

/// Turns on CAF's middleman heartbeat in `cfg`: a heartbeat every
/// `timeout` / 4 on each connection, and a connection from which nothing
/// came for `timeout` is dropped (its proxies go down with
/// remote_link_unreachable, as when the TCP connection breaks). Finds a peer
/// whose host vanished or whose process stopped, which sends no FIN. Both
/// sides need it (each one's heartbeat keeps the other's connection up).
void enable_node_heartbeat(caf::actor_system_config& cfg,
                           std::chrono::milliseconds timeout);

/// A "host:port" split.
struct host_port {
  std::string host;
  uint16_t port = 0;
};

/// Parses "host:port" ("[::1]:port" for IPv6; port 0..65535); nullopt with
/// `error` set otherwise.
std::optional<host_port> parse_host_port(const std::string& text,
                                         std::string& error);

/// Splits "a:1,b:2" into addresses (blanks around items dropped).
std::vector<std::string> split_addresses(const std::string& csv);

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(const std::string& host);

/// Publishes `node` at `at` (TLS when `tls`) and returns the bound port.
caf::expected<uint16_t> publish_node(const node_actor& node,
                                     const host_port& at, bool tls);

/// A node reached at connect: the handshake's answer, or why not.
struct node_link {
  std::string address;
  node_actor actor;
  node_status status;
  /// Empty when connected.
  std::string error;
};

/// Connects to the node at `address` (TLS when `tls`), exchanges versions
/// and vocabulary fingerprints, and answers the link; `error` names the
/// address and what failed (unreachable, TLS refused, version mismatch with
/// both versions). Blocks the calling thread (not an actor's).
node_link connect_node(caf::actor_system& sys, const std::string& address,
                       bool tls);

/// What a node needs besides its local coordinator.
struct node_deps {
  /// Runs taken at once (the pool schedules by it).
  int32_t slots = 1;
  /// As node_status (computed once at start: a PATH lookup blocks).
  std::vector<std::string> agents;
  std::vector<std::string> unavailable;
  /// The bound on the files of one run sent back (see node_outcome).
  std::size_t max_result_bytes = default_max_result_bytes;
  /// The address it listens on, for node_outcome::node.
  std::string address;
  /// Read the run's files on a detached actor (tests on the test
  /// coordinator turn it off).
  bool detached_workers = true;
  /// The version it announces; empty: node_version().
  std::string version;
  /// Where a task that comes with files (node_task::seed) gets its
  /// workspace (`node-<id>-XXXXXX`): the local coordinator's workspace_dir.
  std::string workspace_root = "./workspace";
};

struct node_state {
  static inline const char* name = "orch.node";

  struct task_entry {
    /// The local coordinator's run id ("" while submitting).
    std::string run_id;
    caf::actor_addr owner;
    bool cancel_requested = false;
  };

  coordinator_actor coord;
  node_deps deps;
  std::string version;
  std::string vocabulary;
  std::map<std::string, task_entry> tasks;
  int64_t finished = 0;
};

/// Reads the files `res.files` of the run's workspace, bounded by
/// `max_bytes` in all: each file opened below the workspace one component
/// at a time without following links, regular files only; those left out
/// are named with why. Blocking: call it on a detached actor.
void collect_run_files(const run_result& res, std::size_t max_bytes,
                       std::vector<run_file>& files,
                       std::vector<std::string>& omitted);

/// Reads the regular files of `workspace` as list_workspace_files sees them
/// (no link followed or listed, no meta dir, no `.git`), bounded by
/// `max_bytes` in all as collect_run_files; those left out are named in
/// `omitted`. A missing workspace has none. Blocking.
void collect_workspace_files(const std::string& workspace,
                             std::size_t max_bytes,
                             std::vector<run_file>& files,
                             std::vector<std::string>& omitted);

/// Makes a fresh folder `node-<task id>-XXXXXX` below `root` (created when
/// missing) and writes `files` into it, as write_run_files does. Returns its
/// absolute path, or "" with `error` set. Blocking.
std::string
make_seeded_workspace(const std::string& root, const std::string& task_id,
                      const std::vector<run_file>& files, std::string& error);

/// Brings a remote run's changes into `workspace` (created when missing):
/// `files` written as write_run_files does, the files in `deleted` removed
/// (a link there is removed itself, never followed; one already gone is no
/// failure). Returns the paths refused or failed, each "path: why".
/// Blocking.
std::vector<std::string>
apply_run_changes(const std::string& workspace,
                  const std::vector<run_file>& files,
                  const std::vector<std::string>& deleted);

/// Writes `files` under `<out_dir>/<id>/` (the id made a plain name): each
/// path relative with no `.`/`..`, no link followed below `out_dir`, each
/// file replaced atomically. Returns the paths refused or failed, each
/// "path: why". Blocking.
std::vector<std::string> write_run_files(const std::string& out_dir,
                                         const std::string& id,
                                         const std::vector<run_file>& files);

/// The behaviour of a node actor around the local coordinator `coord`.
/// Callers are monitored: when one goes down (its connection dropped), the
/// runs it asked for are cancelled.
node_actor::behavior_type
node_impl(node_actor::stateful_pointer<node_state> self,
          coordinator_actor coord, node_deps deps);

} // namespace orch
