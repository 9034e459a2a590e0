#pragma once

// What every route of `ai-orchestrator serve` shares: the actors it talks
// to, the config, the state directory, the token, the options. One per
// server, built by serve() before the routes are added and alive until the
// server has stopped. Route modules take it by reference:
//
//   void add_task_routes(router& r, server_context& ctx);   // tasks.cpp
//   void add_file_routes(router& r, server_context& ctx);   // (h14b)
//
// Handlers run on civetweb's worker threads: they may block (ask() waits
// for an actor's answer, with a timeout), the actors never do.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>

#include "actors/vocabulary.hpp"
#include "config/config.hpp"
#include "server/http.hpp"

namespace orch {
class metrics_registry;
} // namespace orch

namespace orch::server {

class event_hub;
class session_registry;

/// The options of `serve`.
struct server_options {
  /// Address to listen on (IPv4; civetweb is built without IPv6).
  std::string host = "127.0.0.1";
  /// 0: any free port (printed at start).
  uint16_t port = 5001;
  /// Ask for the token even on a loopback address.
  bool token_required = false;
  /// Largest request body by default, in bytes (413 beyond).
  std::size_t max_body_bytes = std::size_t{1} << 20;
  /// civetweb worker threads: each open connection (an SSE stream, a
  /// keep-alive connection, a WebSocket) holds one.
  int threads = 160;
  /// Streams (SSE) open at once; beyond it 503, so streams never take the
  /// threads the API needs. 0: threads - 32.
  int max_streams = 0;
  /// API requests per minute per client (rate limiter actor); 0: no limit.
  int32_t rate_per_minute = 1200;
  /// Requests a client may send back to back.
  int32_t rate_burst = 300;
  /// Agent output lines (agent_event) per second per run sent to streams
  /// after a burst of `agent_event_burst`; the others are counted in the
  /// next one's `skipped`. 0: no throttle.
  int32_t agent_events_per_second = 20;
  int32_t agent_event_burst = 100;
  /// How long a handler waits for an actor's answer.
  std::chrono::milliseconds ask_timeout{10000};
  /// Comment line sent on an idle stream.
  std::chrono::milliseconds keep_alive{15000};
};

/// Returns whether `host` is the loopback address that needs no token:
/// 127.0.0.1 or localhost (any other address asks for the token).
bool is_loopback(const std::string& host);

/// Everything a route needs. Extend it by adding members at the end.
struct server_context {
  caf::actor_system* system = nullptr;
  coordinator_actor coordinator;
  std::shared_ptr<const config> cfg;
  /// The state directory (empty when none is usable).
  std::filesystem::path state_dir;
  server_options options;
  /// The API token; empty when none is required.
  std::string token;
  /// When the server started (uptime).
  std::chrono::steady_clock::time_point started
    = std::chrono::steady_clock::now();
  int64_t started_ms = 0;
  /// Every run's events, rendered once, for the streams.
  std::shared_ptr<event_hub> events;
  /// Counts API requests per client (null: no limit).
  rate_limiter_actor api_limiter;
  /// Set once a stop began: new requests get 503.
  std::atomic<bool> stopping{false};
  /// Open SSE streams.
  std::atomic<int> streams{0};
  /// Set by the sessions module (h14b): submits `spec` as a message of
  /// session `name` and answers the 202 response (or an error response).
  /// Null: a `session` field in POST /api/tasks is refused (400).
  std::function<response(const std::string& name, run_spec spec,
                         const request& req)>
    submit_to_session;
  /// Called by a graceful stop once the running tasks are cancelled and
  /// before the streams close and the listener stops (e.g. save sessions,
  /// end the WebSocket pusher). Add them before the server starts.
  std::vector<std::function<void()>> on_stop;
  // -- h14b
  /// The metrics /metrics renders, fed by a metrics feed actor (set by
  /// add_observability_routes).
  std::shared_ptr<metrics_registry> metrics;
  /// The live sessions by name (set by add_session_routes).
  std::shared_ptr<session_registry> sessions;

  /// Whether requests need the token.
  bool token_required() const {
    return !token.empty();
  }

  /// Sends `xs...` to `dest` and waits (up to options.ask_timeout) for the
  /// answer. Call from a civetweb thread only, never from an actor.
  template<class Result, class Handle, class... Ts>
  caf::expected<Result> ask(const Handle& dest, Ts&&... xs) {
    caf::expected<Result> out{caf::make_error(caf::sec::request_timeout)};
    if (!dest)
      return caf::make_error(caf::sec::invalid_argument);
    caf::scoped_actor self{*system};
    self->request(dest, options.ask_timeout, std::forward<Ts>(xs)...)
      .receive(
        [&](Result& r) {
          out = std::move(r);
        },
        [&](caf::error& e) {
          out = std::move(e);
        });
    return out;
  }
};

} // namespace orch::server
