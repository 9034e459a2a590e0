#pragma once

// The civetweb side: one server listening on the options' address, every
// HTTP request through one dispatcher that applies the server's rules
// before a route's handler runs:
//   1. a stopping server answers 503;
//   2. the route (404, 405 with Allow);
//   3. the token, when one is required (401) — constant-time compare;
//   4. the Origin of browser requests must match the Host (403);
//   5. the API rate limiter, per client (429 with Retry-After);
//   6. the body, up to the route's limit (413);
// then the handler; an exception becomes a bare 500 (nothing of it is
// sent). WebSocket endpoints are added with add_websocket.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/context.hpp"
#include "server/http.hpp"

struct mg_context;
struct mg_connection;

namespace orch::server {

/// Callbacks of one WebSocket endpoint (civetweb's, on its threads). The
/// token and the Origin are checked before `on_ready` (the upgrade is
/// refused with 401/403 otherwise).
struct websocket_endpoint {
  std::string path;
  /// The connection is open.
  std::function<void(mg_connection*)> on_ready;
  /// A text frame arrived; return false to close the connection.
  std::function<bool(mg_connection*, const std::string&)> on_text;
  /// The connection closed; `conn` must not be used afterwards.
  std::function<void(const mg_connection*)> on_close;
};

class http_server {
public:
  http_server(server_context& ctx, const router& routes);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Adds a WebSocket endpoint (before start).
  void add_websocket(websocket_endpoint ep);

  /// Starts listening on ctx.options' host and port. Returns false with
  /// `error` set (address in use, bad address).
  bool start(std::string& error);

  /// The port it listens on (after start).
  uint16_t port() const {
    return port_;
  }

  /// Stops accepting and waits for every handler to return (streams must
  /// have been told to end). Idempotent.
  void stop();

  /// Checks the token of a request: the Authorization header, or
  /// `?token=` when `allow_query`. Returns "" when fine, else the message
  /// of the 401.
  std::string check_token(const request& req, bool allow_query) const;

  /// Checks the Origin header against Host: "" when fine (or no Origin),
  /// else the message of the 403.
  static std::string check_origin(const request& req);

  // Used by the civetweb callbacks.
  int dispatch(mg_connection* conn);
  int ws_connect(const mg_connection* conn, websocket_endpoint& ep);

private:
  server_context& ctx_;
  const router& routes_;
  mg_context* mg_ = nullptr;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<websocket_endpoint>> websockets_;
};

/// Reads a request's header fields, method, path and query from civetweb.
request read_request(mg_connection* conn);

/// Writes `res` (status, headers, Content-Length, body) to `conn`.
void write_response(mg_connection* conn, const request& req,
                    const response& res);

} // namespace orch::server
