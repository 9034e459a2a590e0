// GET /api/tasks/{id}/events, GET /api/events (SSE), WebSocket /api/ws.

#include "server/event_hub.hpp"
#include "server/http_server.hpp"
#include "server/routes.hpp"

namespace orch::server {

void add_event_routes(router& r, server_context& ctx, http_server& srv) {
  (void)r;
  (void)ctx;
  (void)srv;
}

} // namespace orch::server
