#pragma once

// The route modules of `serve`. Each adds its routes to the router; serve()
// calls add_routes, which calls them all. A new module adds one function
// here and one line in add_routes (routes.cpp).

#include "server/context.hpp"
#include "server/http.hpp"
#include "server/session_registry.hpp"

namespace orch::server {

class http_server;

/// Every route of the server.
void add_routes(router& r, server_context& ctx, http_server& srv);

/// GET /api/auth, GET /api/agents, GET /api/workflows.
void add_core_routes(router& r, server_context& ctx);

/// POST/GET /api/tasks, GET /api/tasks/{id}, POST /api/tasks/{id}/cancel.
void add_task_routes(router& r, server_context& ctx);

/// GET /api/tasks/{id}/events, GET /api/events (SSE) and the WebSocket
/// /api/ws (added to `srv`).
void add_event_routes(router& r, server_context& ctx, http_server& srv);

/// Returns the error response for an error a coordinator (or session)
/// answered: 400 unknown name / invalid request, 404 unknown run, 409
/// agent unavailable / workspace locked / session busy, 429 rate limited
/// (with Retry-After), 504 no answer in time, else 500 (the message then
/// stays in the log).
response error_response(const caf::error& err);

// -- h14b

/// GET /health, GET /ready, GET /metrics; makes ctx.metrics and the metrics
/// feed actor that keeps it up to date.
void add_observability_routes(router& r, server_context& ctx);

/// The files of a task's or a session's workspace: GET .../files, GET and
/// PUT .../files/content?path=.
void add_file_routes(router& r, server_context& ctx);

/// /api/sessions...; makes ctx.sessions and sets ctx.submit_to_session.
void add_session_routes(router& r, server_context& ctx);

/// Returns the live session `name`; a saved one of that name is loaded
/// (made live) first. Otherwise sets `error` (404) and returns nothing.
std::optional<live_session>
find_session(server_context& ctx, const std::string& name, response& error);

// -- h15
/// Every other GET (and HEAD) outside /api/: the web UI's built files
/// (web/assets.hpp), index.html for "/" and unknown paths (server/
/// static_routes.cpp).
void add_static_routes(router& r);

} // namespace orch::server
