#pragma once

// `ai-orchestrator serve`: one run coordinator behind the HTTP API.
//
// Exit behaviour: SIGTERM, SIGINT or SIGHUP stops the server gracefully:
// new requests get 503, every running task is cancelled (its manifest is
// written with status "cancelled"; the agents' process groups are
// stopped), the event streams send the runs' last events (run_finished)
// and close, the listener stops, and the process exits 0. A server that
// cannot start (address in use, token file unusable) exits 1; a bad
// config or option exits 2.

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "server/context.hpp"

namespace orch {
class system_config;
} // namespace orch

namespace orch::server {

/// Where the server's runs go: a run coordinator in this process by
/// default, or anything else that speaks coordinator_actor (a pool of worker
/// nodes, `serve --workers`).
struct serve_backend {
  /// The actor system needs the middleman (worker nodes).
  bool network = false;
  /// Adjusts the actor system's config before the system starts (TLS, the
  /// nodes' heartbeat).
  std::function<void(system_config&)> prepare;
  /// Spawns what the routes talk to; `state_dir` is empty when none is
  /// usable. A null handle with `error` set: the server does not start
  /// (exit 1). Null function: a local run coordinator.
  std::function<coordinator_actor(caf::actor_system&,
                                  const std::filesystem::path& state_dir,
                                  std::string& error)>
    spawn;
};

/// Runs the server until a signal stops it; returns the exit code. Prints
/// "listening on http://HOST:PORT" on stdout once it accepts requests (the
/// port is the real one when 0 was asked), and the API token on stderr the
/// first time it is made.
int serve(const server_options& opts, std::shared_ptr<const config> cfg,
          const serve_backend& backend = {});

/// Parses "HOST:PORT" (or ":PORT", or "PORT"). Returns false with `error`.
bool parse_listen(const std::string& text, server_options& opts,
                  std::string& error);

} // namespace orch::server
