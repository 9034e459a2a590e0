#include "server/http_server.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>

#include <civetweb.h>
#include <openssl/crypto.h>

#include "runtime/logging.hpp"
#include "server/event_hub.hpp"

namespace orch::server {

namespace {

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int on_request(mg_connection* conn, void* cbdata) {
  return static_cast<http_server*>(cbdata)->dispatch(conn);
}

int on_ws_connect(const mg_connection* conn, void* cbdata) {
  auto* ep = static_cast<websocket_endpoint*>(cbdata);
  auto* srv = static_cast<http_server*>(mg_get_user_data(mg_get_context(conn)));
  return srv->ws_connect(conn, *ep);
}

void on_ws_ready(mg_connection* conn, void* cbdata) {
  auto* ep = static_cast<websocket_endpoint*>(cbdata);
  if (ep->on_ready)
    ep->on_ready(conn);
}

int on_ws_data(mg_connection* conn, int bits, char* data, size_t len,
               void* cbdata) {
  auto* ep = static_cast<websocket_endpoint*>(cbdata);
  auto opcode = bits & 0x0f;
  if (opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
    return 0;
  if (opcode != MG_WEBSOCKET_OPCODE_TEXT
      && opcode != MG_WEBSOCKET_OPCODE_CONTINUATION)
    return 1;
  if (!ep->on_text)
    return 1;
  return ep->on_text(conn, std::string{data, len}) ? 1 : 0;
}

void on_ws_close(const mg_connection* conn, void* cbdata) {
  auto* ep = static_cast<websocket_endpoint*>(cbdata);
  if (ep->on_close)
    ep->on_close(conn);
}

/// Keeps civetweb's own messages (bind errors) for start()'s error.
int on_log_message(const mg_connection*, const char* message) {
  log().debug("civetweb {}", message);
  return 1;
}

/// The authority ("host:port") of an Origin ("http://host:port").
std::string origin_authority(const std::string& origin) {
  auto pos = origin.find("://");
  if (pos == std::string::npos)
    return {};
  auto rest = origin.substr(pos + 3);
  auto slash = rest.find('/');
  return lower(slash == std::string::npos ? rest : rest.substr(0, slash));
}

/// "host:80" and "host" are one authority for http.
std::string without_default_port(std::string authority) {
  if (authority.size() > 3
      && authority.compare(authority.size() - 3, 3, ":80") == 0)
    authority.resize(authority.size() - 3);
  return authority;
}

} // namespace

bool is_loopback(const std::string& host) {
  // Only the default address: any other one (127.0.0.2 included) asks for
  // the token, so the rule is simple to state and to check.
  return host == "127.0.0.1" || host == "localhost";
}

request read_request(mg_connection* conn) {
  request req;
  req.conn = conn;
  const auto* info = mg_get_request_info(conn);
  req.method = info->request_method != nullptr ? info->request_method : "";
  const char* uri = info->local_uri_raw != nullptr ? info->local_uri_raw
                                                   : info->local_uri;
  req.path = uri != nullptr ? uri : "";
  req.query = info->query_string != nullptr ? info->query_string : "";
  req.remote_addr = info->remote_addr;
  for (int i = 0; i < info->num_headers; ++i)
    req.headers.emplace_back(
      info->http_headers[i].name != nullptr ? info->http_headers[i].name : "",
      info->http_headers[i].value != nullptr ? info->http_headers[i].value
                                             : "");
  return req;
}

void write_response(mg_connection* conn, const request& req,
                    const response& res) {
  mg_response_header_start(conn, res.status);
  mg_response_header_add(conn, "Content-Type", res.content_type.c_str(), -1);
  auto length = std::to_string(res.body.size());
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  mg_response_header_add(conn, "X-Content-Type-Options", "nosniff", -1);
  for (auto& [name, value] : res.headers)
    mg_response_header_add(conn, name.c_str(), value.c_str(), -1);
  mg_response_header_send(conn);
  if (req.method != "HEAD" && !res.body.empty())
    mg_write(conn, res.body.data(), res.body.size());
}

http_server::http_server(server_context& ctx, const router& routes)
  : ctx_{ctx}, routes_{routes} {
  // nop
}

http_server::~http_server() {
  stop();
}

void http_server::add_websocket(websocket_endpoint ep) {
  websockets_.push_back(std::make_unique<websocket_endpoint>(std::move(ep)));
}

bool http_server::start(std::string& error) {
  static const unsigned features = mg_init_library(MG_FEATURES_WEBSOCKET);
  (void)features;
  if (mg_check_feature(MG_FEATURES_WEBSOCKET) == 0) {
    error = "civetweb was built without WebSocket support";
    return false;
  }
  auto listen = ctx_.options.host + ":" + std::to_string(ctx_.options.port);
  auto threads = std::to_string(std::max(8, ctx_.options.threads));
  auto keep_alive = std::to_string(
    std::max<int64_t>(1000, ctx_.options.keep_alive.count() * 2));
  const char* opts[] = {"listening_ports",
                        listen.c_str(),
                        "num_threads",
                        threads.c_str(),
                        "enable_keep_alive",
                        "yes",
                        "keep_alive_timeout_ms",
                        "5000",
                        "request_timeout_ms",
                        "30000",
                        "websocket_timeout_ms",
                        keep_alive.c_str(),
                        "enable_websocket_ping_pong",
                        "yes",
                        "tcp_nodelay",
                        "1",
                        nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = on_log_message;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = opts;
  mg_error_data err{};
  char text[256] = {0};
  err.text = text;
  err.text_buffer_size = sizeof(text);
  mg_ = mg_start2(&init, &err);
  if (mg_ == nullptr) {
    error = "cannot listen on " + listen + ": "
            + (text[0] != 0 ? std::string{text} : std::string{"unknown error"});
    return false;
  }
  mg_server_port ports[4]{};
  auto n = mg_get_server_ports(mg_, 4, ports);
  if (n > 0)
    port_ = static_cast<uint16_t>(ports[0].port);
  mg_set_request_handler(mg_, "/", on_request, this);
  for (auto& ep : websockets_)
    mg_set_websocket_handler(mg_, ep->path.c_str(), on_ws_connect, on_ws_ready,
                             on_ws_data, on_ws_close, ep.get());
  return true;
}

void http_server::stop() {
  if (mg_ != nullptr) {
    mg_stop(mg_);
    mg_ = nullptr;
  }
}

std::string http_server::check_token(const request& req,
                                     bool allow_query) const {
  if (!ctx_.token_required())
    return {};
  std::string given;
  if (auto auth = req.header("Authorization")) {
    const std::string prefix = "Bearer ";
    if (auth->size() > prefix.size()
        && lower(auth->substr(0, prefix.size())) == lower(prefix))
      given = auth->substr(prefix.size());
  }
  if (given.empty() && allow_query)
    if (auto q = req.query_param("token"))
      given = *q;
  if (given.empty())
    return "this server requires an API token: send `Authorization: Bearer "
           "<token>` (the token is in the state directory's api-token file)";
  const auto& want = ctx_.token;
  if (given.size() != want.size()
      || CRYPTO_memcmp(given.data(), want.data(), want.size()) != 0)
    return "the API token is not valid";
  return {};
}

std::string http_server::check_origin(const request& req) {
  auto origin = req.header("Origin");
  if (origin == nullptr)
    return {};
  auto host = req.header("Host");
  if (host == nullptr)
    return "the request has an Origin but no Host header";
  auto from = without_default_port(origin_authority(*origin));
  auto to = without_default_port(lower(*host));
  if (from.empty() || from != to)
    return "cross-origin request refused: Origin does not match Host";
  return {};
}

int http_server::dispatch(mg_connection* conn) {
  auto req = read_request(conn);
  auto finish = [&](const response& res) {
    write_response(conn, req, res);
    return res.status;
  };
  try {
    if (ctx_.stopping.load())
      return finish(
        response::error(503, "shutting_down", "the server is shutting down"));
    auto m = routes_.find(req.method, req.path);
    const router::route* route = m.found;
    bool is_api = req.path == "/api" || req.path.rfind("/api/", 0) == 0;
    if (route == nullptr && m.allowed.empty() && !is_api
        && (req.method == "GET" || req.method == "HEAD"))
      route = routes_.fallback();
    if (route == nullptr) {
      if (!m.allowed.empty()) {
        auto res = response::error(405, "method_not_allowed",
                                   req.method + " is not allowed on this path");
        std::string allow;
        for (auto& a : m.allowed)
          allow += (allow.empty() ? "" : ", ") + a;
        res.headers.emplace_back("Allow", allow);
        return finish(res);
      }
      return finish(response::error(404, "not_found", "no such route"));
    }
    req.params = std::move(m.params);
    const auto& opts = route->options;
    if (!opts.open) {
      auto why = check_token(req, opts.stream);
      if (!why.empty()) {
        auto res = response::error(401, "unauthorized", why);
        res.headers.emplace_back("WWW-Authenticate", "Bearer");
        return finish(res);
      }
    }
    if (auto why = check_origin(req); !why.empty())
      return finish(response::error(403, "forbidden_origin", why));
    req.client = ctx_.token_required() ? std::string{"token"}
                                       : "addr:" + req.remote_addr;
    if (opts.rate_limited && ctx_.api_limiter) {
      auto a = ctx_.ask<admission>(ctx_.api_limiter, atom::admit_v, req.client);
      if (a && !a->admitted) {
        auto secs = std::max<int64_t>(1, (a->wait_ms + 999) / 1000);
        auto res = response::error(
          429, "rate_limited",
          "too many requests: " + std::to_string(ctx_.options.rate_per_minute)
            + " per minute for this client; retry in " + std::to_string(secs)
            + "s");
        res.headers.emplace_back("Retry-After", std::to_string(secs));
        return finish(res);
      }
    }
    // -- the body ---------------------------------------------------------
    auto limit = opts.max_body != 0 ? opts.max_body
                                    : ctx_.options.max_body_bytes;
    const auto* info = mg_get_request_info(conn);
    auto too_large = [&] {
      auto res = response::error(413, "body_too_large",
                                 "the request body is larger than "
                                   + std::to_string(limit) + " bytes");
      res.headers.emplace_back("Connection", "close");
      return finish(res);
    };
    if (info->content_length > 0
        && static_cast<unsigned long long>(info->content_length) > limit)
      return too_large();
    if (info->content_length != 0) {
      char buf[16384];
      for (;;) {
        auto n = mg_read(conn, buf, sizeof(buf));
        if (n <= 0)
          break;
        req.body.append(buf, static_cast<size_t>(n));
        if (req.body.size() > limit)
          return too_large();
      }
    }
    // -- the handler ------------------------------------------------------
    if (opts.stream) {
      int max = ctx_.options.max_streams > 0 ? ctx_.options.max_streams
                                             : ctx_.options.threads - 32;
      if (ctx_.streams.fetch_add(1) >= std::max(1, max)) {
        ctx_.streams.fetch_sub(1);
        auto res = response::error(503, "too_many_streams",
                                   "every stream slot is taken; retry later");
        res.headers.emplace_back("Retry-After", "5");
        return finish(res);
      }
      // On the way out, whoever waits for the streams to end (a graceful
      // stop) is woken.
      struct release {
        server_context& ctx;
        ~release() {
          ctx.streams.fetch_sub(1);
          if (ctx.events)
            ctx.events->wake();
        }
      } guard{ctx_};
      auto res = route->fn(req);
      if (res.streamed)
        return res.status;
      return finish(res);
    }
    auto res = route->fn(req);
    if (res.streamed)
      return res.status;
    return finish(res);
  } catch (const std::exception& e) {
    log().error("http-handler-error method={} path={} what={}", req.method,
                req.path, e.what());
    return finish(response::error(500, "internal", "internal server error"));
  }
}

int http_server::ws_connect(const mg_connection* conn, websocket_endpoint& ep) {
  // The upgrade request: the same rules as a stream.
  auto* c = const_cast<mg_connection*>(conn);
  auto req = read_request(c);
  (void)ep;
  std::string why;
  int status = 0;
  if (ctx_.stopping.load()) {
    status = 503;
    why = "the server is shutting down";
  } else if (why = check_token(req, true); !why.empty()) {
    status = 401;
  } else if (why = check_origin(req); !why.empty()) {
    status = 403;
  }
  if (status == 0)
    return 0;
  // Written raw: in this callback civetweb sends no status line itself.
  auto body = response::error(status,
                              status == 401   ? "unauthorized"
                              : status == 403 ? "forbidden_origin"
                                              : "shutting_down",
                              why)
                .body;
  auto head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status)
              + "\r\nContent-Type: application/json; charset=utf-8\r\n"
                "Content-Length: "
              + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  mg_write(c, head.data(), head.size());
  mg_write(c, body.data(), body.size());
  return 1;
}

} // namespace orch::server
