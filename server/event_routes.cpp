// GET /api/tasks/{id}/events, GET /api/events (SSE), WebSocket /api/ws.
//
// Each SSE stream holds one civetweb thread and waits on the event hub
// (server/event_hub.hpp); the WebSocket clients share one pusher thread.
// Both read the events as the hub rendered them, so a stream costs a write
// per event and nothing more.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <civetweb.h>

#include "actors/run_report.hpp"
#include "server/event_hub.hpp"
#include "server/http_server.hpp"
#include "server/json_body.hpp"
#include "server/routes.hpp"

namespace orch::server {

namespace {

using clock = std::chrono::steady_clock;

/// Parses a non-negative decimal; false when `text` is not one.
bool parse_seq(const std::string& text, uint64_t& out) {
  if (text.empty() || text.size() > 19
      || text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  out = std::strtoull(text.c_str(), nullptr, 10);
  return true;
}

void write_sse_headers(mg_connection* conn) {
  static const char head[] = "HTTP/1.1 200 OK\r\n"
                             "Content-Type: text/event-stream\r\n"
                             "Cache-Control: no-store\r\n"
                             "X-Content-Type-Options: nosniff\r\n"
                             "X-Accel-Buffering: no\r\n"
                             "Connection: close\r\n\r\n"
                             "retry: 1000\n\n";
  mg_write(conn, head, sizeof(head) - 1);
}

void append_sse(std::string& out, const std::string& id,
                const stored_event& ev) {
  out += "id: ";
  out += id;
  out += "\nevent: ";
  out += to_string(ev.kind);
  out += "\ndata: ";
  out += ev.json;
  out += "\n\n";
}

bool write_all(mg_connection* conn, const std::string& text) {
  return text.empty()
         || mg_write(conn, text.data(), text.size())
              == static_cast<int>(text.size());
}

/// The SSE stream of one run, after seq `after`, until its run_finished.
response stream_run(server_context& ctx, request& req, const std::string& id,
                    uint64_t after) {
  write_sse_headers(req.conn);
  auto& hub = *ctx.events;
  for (;;) {
    auto b = hub.wait_run(id, after, clock::now() + ctx.options.keep_alive);
    std::string out;
    bool done = false;
    for (auto& ev : b.events) {
      append_sse(out, std::to_string(ev->seq), *ev);
      after = ev->seq;
      done = done || ev->kind == progress_event::kind_t::run_finished;
    }
    if (b.events.empty() && !b.closed && !b.finished)
      out = ": keep-alive\n\n";
    if (!write_all(req.conn, out))
      break;
    if (done || b.closed || (b.finished && b.events.empty()))
      break;
  }
  response res;
  res.streamed = true;
  return res;
}

/// The SSE stream of every run, after global position `after`.
response stream_all(server_context& ctx, request& req, uint64_t after) {
  write_sse_headers(req.conn);
  auto& hub = *ctx.events;
  for (;;) {
    auto b = hub.wait_all(after, clock::now() + ctx.options.keep_alive);
    std::string out;
    for (auto& ev : b.events) {
      append_sse(out, ev->run_id + ":" + std::to_string(ev->seq), *ev);
      after = ev->global;
    }
    if (b.events.empty() && !b.closed)
      out = ": keep-alive\n\n";
    if (!write_all(req.conn, out) || b.closed)
      break;
  }
  response res;
  res.streamed = true;
  return res;
}

// -- WebSocket ----------------------------------------------------------------

struct ws_client {
  std::mutex mtx;
  mg_connection* conn = nullptr;
  /// Run id -> last seq sent.
  std::map<std::string, uint64_t> runs;
  /// Subscribed to every run ("*"): the last global position sent.
  bool all = false;
  uint64_t all_after = 0;
  /// Closed: never written to again.
  bool dead = false;
};

struct ws_hub {
  server_context& ctx;
  std::mutex mtx;
  std::map<const mg_connection*, std::shared_ptr<ws_client>> clients;
  std::thread pusher;
  bool stopping = false;

  explicit ws_hub(server_context& c) : ctx{c} {
    // nop
  }

  std::vector<std::shared_ptr<ws_client>> snapshot() {
    std::lock_guard<std::mutex> guard{mtx};
    std::vector<std::shared_ptr<ws_client>> out;
    out.reserve(clients.size());
    for (auto& kvp : clients)
      out.push_back(kvp.second);
    return out;
  }

  static bool send_text(ws_client& c, const std::string& text) {
    if (c.dead)
      return false;
    if (mg_websocket_write(c.conn, MG_WEBSOCKET_OPCODE_TEXT, text.data(),
                           text.size())
        <= 0) {
      c.dead = true;
      return false;
    }
    return true;
  }

  /// Sends what `c` has not seen yet. Called with c.mtx held.
  void flush(ws_client& c) {
    auto& hub = *ctx.events;
    for (auto it = c.runs.begin(); it != c.runs.end() && !c.dead;) {
      auto b = hub.events_of(it->first, it->second);
      bool finished = false;
      for (auto& ev : b.events) {
        if (!send_text(c, ev->json))
          return;
        it->second = ev->seq;
        finished = finished || ev->kind == progress_event::kind_t::run_finished;
      }
      if (finished || (b.finished && b.events.empty()))
        it = c.runs.erase(it);
      else
        ++it;
    }
    if (c.all && !c.dead) {
      auto b = hub.wait_all(c.all_after, clock::now());
      for (auto& ev : b.events) {
        if (!send_text(c, ev->json))
          return;
        c.all_after = ev->global;
      }
    }
  }

  void run_pusher() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        if (stopping)
          return;
      }
      seen = ctx.events->wait_generation(seen, clock::now()
                                                 + std::chrono::seconds{1});
      for (auto& c : snapshot()) {
        std::lock_guard<std::mutex> guard{c->mtx};
        flush(*c);
      }
    }
  }

  bool on_text(mg_connection* conn, const std::string& text) {
    std::shared_ptr<ws_client> c;
    {
      std::lock_guard<std::mutex> guard{mtx};
      auto it = clients.find(conn);
      if (it == clients.end())
        return false;
      c = it->second;
    }
    json_body in{text};
    std::string sub;
    std::string unsub;
    int64_t since = 0;
    if (!in.only({"subscribe", "unsubscribe", "since"})
        || !in.get_string("subscribe", sub, false)
        || !in.get_string("unsubscribe", unsub, false)
        || !in.get_int("since", since, false, 0,
                       std::numeric_limits<int64_t>::max())
        || (sub.empty() && unsub.empty()
            && !in.fail("subscribe", "give subscribe or unsubscribe"))) {
      std::lock_guard<std::mutex> guard{c->mtx};
      send_text(*c, in.error().body);
      return !c->dead;
    }
    std::lock_guard<std::mutex> guard{c->mtx};
    if (!unsub.empty()) {
      if (unsub == "*")
        c->all = false;
      c->runs.erase(unsub);
    }
    if (sub == "*") {
      c->all = true;
      c->all_after = ctx.events->last_global();
    } else if (!sub.empty()) {
      c->runs[sub] = static_cast<uint64_t>(since);
    }
    flush(*c);
    return !c->dead;
  }

  void stop() {
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (stopping)
        return;
      stopping = true;
    }
    ctx.events->wake();
    if (pusher.joinable())
      pusher.join();
    // Last events out, then a close frame.
    for (auto& c : snapshot()) {
      std::lock_guard<std::mutex> guard{c->mtx};
      flush(*c);
      if (!c->dead) {
        mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, "",
                           0);
        c->dead = true;
      }
    }
  }
};

} // namespace

void add_event_routes(router& r, server_context& ctx, http_server& srv) {
  route_options stream;
  stream.stream = true;
  r.get(
    "/api/tasks/{id}/events",
    [&ctx](request& req) {
      auto id = req.param("id");
      uint64_t after = 0;
      std::string given;
      const char* field = "since";
      if (auto last = req.header("Last-Event-ID")) {
        given = *last;
        field = "Last-Event-ID";
      } else if (auto since = req.query_param("since")) {
        given = *since;
      }
      if (!given.empty() && !parse_seq(given, after))
        return response::error(400, "invalid_field",
                               std::string{"field '"} + field
                                 + "': expected an event sequence number");
      auto info = ctx.ask<run_info>(ctx.coordinator, atom::status_v, id);
      if (!info)
        return error_response(info.error());
      ctx.events->expect_run(id);
      return stream_run(ctx, req, id, after);
    },
    stream);

  r.get(
    "/api/events",
    [&ctx](request& req) {
      // Resume after "<run id>:<seq>"; without it, live events from now.
      uint64_t after = ctx.events->last_global();
      if (auto last = req.header("Last-Event-ID")) {
        auto colon = last->rfind(':');
        uint64_t seq = 0;
        if (colon == std::string::npos
            || !parse_seq(last->substr(colon + 1), seq))
          return response::error(400, "invalid_field",
                                 "field 'Last-Event-ID': expected "
                                 "<run id>:<seq>");
        if (auto pos = ctx.events->global_of(last->substr(0, colon), seq))
          after = *pos;
      }
      return stream_all(ctx, req, after);
    },
    stream);

  auto ws = std::make_shared<ws_hub>(ctx);
  websocket_endpoint ep;
  ep.path = "/api/ws";
  ep.on_ready = [ws](mg_connection* conn) {
    auto c = std::make_shared<ws_client>();
    c->conn = conn;
    std::lock_guard<std::mutex> guard{ws->mtx};
    ws->clients[conn] = std::move(c);
  };
  ep.on_text = [ws](mg_connection* conn, const std::string& text) {
    return ws->on_text(conn, text);
  };
  ep.on_close = [ws](const mg_connection* conn) {
    std::shared_ptr<ws_client> c;
    {
      std::lock_guard<std::mutex> guard{ws->mtx};
      auto it = ws->clients.find(conn);
      if (it == ws->clients.end())
        return;
      c = it->second;
      ws->clients.erase(it);
    }
    std::lock_guard<std::mutex> guard{c->mtx};
    c->dead = true;
  };
  srv.add_websocket(std::move(ep));
  ws->pusher = std::thread{[ws] {
    ws->run_pusher();
  }};
  ctx.on_stop.push_back([ws] {
    ws->stop();
  });
}

} // namespace orch::server
