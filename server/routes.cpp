#include "server/routes.hpp"

#include <cmath>
#include <cstdlib>

#include <caf/sec.hpp>

#include "actors/coordinator.hpp"
#include "runtime/logging.hpp"
#include "server/http_server.hpp"

namespace orch::server {

void add_routes(router& r, server_context& ctx, http_server& srv) {
  add_core_routes(r, ctx);
  add_task_routes(r, ctx);
  add_event_routes(r, ctx, srv);
  // -- h14b: health, metrics, files, sessions
  add_observability_routes(r, ctx);
  add_session_routes(r, ctx);
  add_file_routes(r, ctx);
  // -- h15: the web UI's static files (router::set_fallback)
  add_static_routes(r);
}

namespace {

/// The wait of a rate-limit message ("... next run allowed in 2.4s"), in
/// whole seconds rounded up (at least 1).
int64_t retry_after_of(const std::string& text) {
  auto pos = text.rfind(" in ");
  if (pos == std::string::npos)
    return 1;
  auto secs = std::strtod(text.c_str() + pos + 4, nullptr);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(secs)));
}

} // namespace

response error_response(const caf::error& err) {
  auto text = error_text(err);
  if (err.category() == caf::atom("orch")) {
    switch (static_cast<errc>(err.code())) {
      case errc::unknown_name:
        return response::error(400, "unknown_name", text);
      case errc::invalid_request:
        return response::error(400, "invalid_request", text);
      case errc::agent_unavailable:
        return response::error(409, "agent_unavailable", text);
      case errc::workspace_locked:
        return response::error(409, "workspace_locked", text);
      case errc::session_busy:
        return response::error(409, "session_busy", text);
      case errc::unknown_run:
        return response::error(404, "not_found", text);
      case errc::rate_limited: {
        auto res = response::error(429, "rate_limited", text);
        res.headers.emplace_back("Retry-After",
                                 std::to_string(retry_after_of(text)));
        return res;
      }
      case errc::workspace_failed:
        return response::error(500, "workspace_failed", text);
      default:
        break;
    }
  }
  if (err == caf::sec::request_timeout)
    return response::error(504, "timeout",
                           "the runtime did not answer in time");
  log().error("http-internal-error {}", text);
  return response::error(500, "internal", "internal server error");
}

} // namespace orch::server
