#pragma once

// The HTTP vocabulary of `ai-orchestrator serve`: a request as civetweb
// hands it over, a response a handler returns, and the router that maps
// "METHOD /path/{param}" to handlers. Nothing here knows CAF: handlers reach
// the actors through the server_context (server/context.hpp).

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

struct mg_connection;

namespace orch::server {

/// One HTTP request.
struct request {
  /// "GET", "POST", ...
  std::string method;
  /// URL-decoded path without the query ("/api/tasks/42").
  std::string path;
  /// The raw query string without '?' (not decoded); see query_param.
  std::string query;
  /// Header names as sent; look them up with header().
  std::vector<std::pair<std::string, std::string>> headers;
  /// The body, read up to the route's limit before the handler runs.
  std::string body;
  /// The client's IP address.
  std::string remote_addr;
  /// Path parameters of the matched route ("id" -> "42").
  std::map<std::string, std::string> params;
  /// Who the rate limiter counts this request against: "token" when the
  /// server requires a token, else "addr:<remote_addr>".
  std::string client;
  /// The civetweb connection: streaming handlers write to it themselves
  /// (see response::streamed). Null in unit tests.
  mg_connection* conn = nullptr;

  /// Returns the value of header `name` (case-insensitive), or null.
  const std::string* header(std::string_view name) const;

  /// Returns the URL-decoded value of query parameter `name`, or nothing.
  std::optional<std::string> query_param(std::string_view name) const;

  /// Returns the path parameter `name` ("" when the route has none such).
  std::string param(const std::string& name) const;
};

/// What a handler answers.
struct response {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  /// Extra headers (Retry-After, Allow, Content-Disposition, ...).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Set by a handler that wrote the whole response on request::conn
  /// itself (SSE); the server then writes nothing more.
  bool streamed = false;

  /// Returns a JSON response (dumped with invalid UTF-8 replaced).
  static response json(int status, const nlohmann::ordered_json& body);

  /// Returns the API's error shape: `{"error": {"code": ..., "message":
  /// ...}}` with `status`. The message must name the field or the thing
  /// at fault, and never hold a stack trace or an internal path.
  static response error(int status, std::string code, std::string message);
};

/// Returns the URL-decoded form of `text` ('+' as a space); invalid %
/// escapes are kept as they are.
std::string url_decode(std::string_view text);

/// Returns the reason phrase of an HTTP status ("Not Found").
const char* status_text(int status);

/// Answers one request.
using handler = std::function<response(request&)>;

/// How the server treats a route before its handler runs.
struct route_options {
  /// Largest body accepted, in bytes (413 beyond); 0: the server's default
  /// (server_options::max_body_bytes).
  std::size_t max_body = 0;
  /// No token asked even when the server requires one (/health, /ready,
  /// /api/auth).
  bool open = false;
  /// Counted by the API rate limiter (429 with Retry-After when over).
  bool rate_limited = true;
  /// A long-lived stream (SSE): `?token=` is accepted in place of the
  /// Authorization header, and it counts against the stream limit (503 when
  /// every stream slot is taken).
  bool stream = false;
};

/// Maps method and path to a handler. Patterns are literal segments and
/// `{name}` segments, each matching one non-empty segment
/// ("/api/tasks/{id}/cancel"); when several match, the one with more
/// literal segments earlier wins, so "/api/tasks/active" beats
/// "/api/tasks/{id}". Not thread-safe while routes are added: add every
/// route before the server starts.
class router {
public:
  struct route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    handler fn;
    route_options options;
  };

  /// The outcome of a lookup.
  struct match {
    /// Null when nothing matched.
    const route* found = nullptr;
    std::map<std::string, std::string> params;
    /// When `found` is null: the methods allowed on this path (a 405), or
    /// empty (a 404).
    std::vector<std::string> allowed;
  };

  /// Adds a route; a later route with the same method and pattern replaces
  /// the earlier one.
  void add(std::string method, std::string pattern, handler fn,
           route_options options = {});

  void get(std::string pattern, handler fn, route_options options = {}) {
    add("GET", std::move(pattern), std::move(fn), options);
  }
  void post(std::string pattern, handler fn, route_options options = {}) {
    add("POST", std::move(pattern), std::move(fn), options);
  }
  void put(std::string pattern, handler fn, route_options options = {}) {
    add("PUT", std::move(pattern), std::move(fn), options);
  }
  void patch(std::string pattern, handler fn, route_options options = {}) {
    add("PATCH", std::move(pattern), std::move(fn), options);
  }
  void del(std::string pattern, handler fn, route_options options = {}) {
    add("DELETE", std::move(pattern), std::move(fn), options);
  }

  /// Sets the handler of GET (and HEAD) requests no route matches outside
  /// `/api/` (the web UI's static files); without one they get 404.
  void set_fallback(handler fn, route_options options = {});

  /// Finds the route for `method` and `path`. HEAD matches GET routes.
  match find(const std::string& method, const std::string& path) const;

  /// The fallback, or null.
  const route* fallback() const {
    return fallback_ ? &*fallback_ : nullptr;
  }

  const std::vector<route>& routes() const {
    return routes_;
  }

private:
  std::vector<route> routes_;
  std::optional<route> fallback_;
};

/// Splits a path into its non-empty segments ("/a//b/" -> a, b).
std::vector<std::string> split_path(std::string_view path);

} // namespace orch::server
