// The web UI's files (web/assets.hpp) for every GET outside /api/: "/" and
// any path that names no built file get index.html (the UI routes on the
// client), a missing /assets/ file is a 404. Open (no token: the page holds
// no data; its API calls carry the token) and not rate limited.

#include <string>

#include "server/routes.hpp"
#include "web/assets.hpp"

namespace orch::server {

namespace {

constexpr const char* not_built_page = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ai-orchestrator</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>ai-orchestrator</h1>
<p>The web UI was not built into this binary: it needs Node.js and npm at build
time (<code>npm ci</code> in <code>web/</code>, then rebuild; <code>scripts/run-tests</code>
does both). The HTTP API works: see <code>/api/agents</code>, <code>/health</code>.</p>
</body></html>
)";

/// Headers of every UI response: no sniffing, no framing, only our own
/// scripts and connections (CodeMirror and Vue set inline styles).
void add_security_headers(response& res) {
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("X-Frame-Options", "DENY");
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  res.headers.emplace_back(
    "Content-Security-Policy",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'");
}

response serve_asset(const request& req) {
  response res;
  if (!web::ui_built()) {
    res.status = req.path == "/" || req.path == "/index.html" ? 200 : 404;
    res.content_type = "text/html; charset=utf-8";
    res.body = not_built_page;
    res.headers.emplace_back("Cache-Control", "no-cache");
    add_security_headers(res);
    return res;
  }
  const auto* a = web::find_asset(req.path);
  if (a == nullptr) {
    // A hashed asset that is not there (an old page after an upgrade) must
    // not get index.html as JavaScript.
    if (req.path.rfind("/assets/", 0) == 0)
      return response::error(404, "not_found", "no such file");
    a = web::find_asset("/index.html");
    if (a == nullptr)
      return response::error(404, "not_found", "no such file");
  }
  res.content_type = std::string{a->content_type};
  res.body = std::string{a->body};
  // Vite names the files under /assets/ by their content hash.
  res.headers.emplace_back("Cache-Control",
                           a->path.rfind("/assets/", 0) == 0
                             ? "public, max-age=31536000, immutable"
                             : "no-cache");
  add_security_headers(res);
  return res;
}

} // namespace

void add_static_routes(router& r) {
  route_options opts;
  opts.open = true;
  opts.rate_limited = false;
  r.set_fallback(
    [](request& req) {
      return serve_asset(req);
    },
    opts);
}

} // namespace orch::server
