#include "server/serve.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/coordinator.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/signals.hpp"
#include "actors/system_config.hpp"
#include "runtime/clock.hpp"
#include "runtime/logging.hpp"
#include "runtime/process.hpp"
#include "runtime/rate_limit_store.hpp"
#include "runtime/state_dir.hpp"
#include "server/api_token.hpp"
#include "server/event_hub.hpp"
#include "server/http_server.hpp"
#include "server/routes.hpp"

namespace orch::server {

bool parse_listen(const std::string& text, server_options& opts,
                  std::string& error) {
  auto colon = text.rfind(':');
  std::string host = colon == std::string::npos ? opts.host
                                                : text.substr(0, colon);
  std::string port = colon == std::string::npos ? text : text.substr(colon + 1);
  if (host.empty())
    host = "127.0.0.1";
  if (port.empty() || port.size() > 5
      || port.find_first_not_of("0123456789") != std::string::npos
      || std::stoul(port) > 65535) {
    error = "--listen: expected HOST:PORT with a port from 0 to 65535, got '"
            + text + "'";
    return false;
  }
  if (host.find_first_of(" /[]") != std::string::npos) {
    error = "--listen: '" + host
            + "' is not an IPv4 address or host name (IPv6 is not supported)";
    return false;
  }
  // civetweb wants an address.
  opts.host = host == "localhost" ? std::string{"127.0.0.1"} : host;
  opts.port = static_cast<uint16_t>(std::stoul(port));
  return true;
}

namespace {

/// Waits for the result of every run in `ids` (their manifests are written
/// by then), up to `grace` in all.
void await_runs(caf::actor_system& sys, const coordinator_actor& coord,
                const std::vector<std::string>& ids,
                std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  caf::scoped_actor self{sys};
  for (auto& id : ids) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return;
    self->request(coord, left, atom::result_v, id)
      .receive([](run_result&) {},
               [&](caf::error& e) {
                 log().warn("serve-stop-run id={} error={}", id, sys.render(e));
               });
  }
}

} // namespace

int serve(const server_options& given, std::shared_ptr<const config> cfg,
          const serve_backend& backend) {
  server_context ctx;
  ctx.options = given;
  ctx.cfg = cfg;
  ctx.started_ms = wall_clock_ms();
  // -- the state directory and the token ------------------------------------
  detail::unique_fd state_fd;
  std::string state_error = "no state directory (HOME is not set)";
  if (auto dir = resolve_state_dir(cfg->settings.state_dir); !dir.empty()) {
    state_error.clear();
    state_fd = open_state_dir(dir, state_error);
    if (state_fd)
      ctx.state_dir = dir;
  }
  bool need_token = given.token_required || !is_loopback(given.host);
  if (need_token) {
    if (!state_fd) {
      std::fprintf(stderr,
                   "error: the API token is kept in the state directory, "
                   "which cannot be used: %s\n",
                   state_error.c_str());
      return 1;
    }
    bool created = false;
    std::string error;
    ctx.token = load_or_create_token(state_fd.get(), created, error);
    if (ctx.token.empty()) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      return 1;
    }
    if (created)
      std::fprintf(stderr,
                   "API token (shown once; kept in %s/%s, mode 0600):\n%s\n",
                   ctx.state_dir.c_str(), api_token_file, ctx.token.c_str());
  }
  // -- the actors -----------------------------------------------------------
  system_config sys_cfg{false, backend.network,
                        static_cast<size_t>(cfg->settings.scheduler_threads)};
  if (backend.prepare)
    backend.prepare(sys_cfg);
  caf::actor_system sys{sys_cfg};
  ctx.system = &sys;
  coordinator_deps deps;
  deps.runner = make_posix_process_runner();
  deps.state_dir = ctx.state_dir;
  if (cfg->rate_limiting.enabled && state_fd) {
    std::string error;
    deps.limit_store = open_file_rate_limit_store(state_fd.get(), error);
    if (!deps.limit_store)
      std::fprintf(stderr,
                   "warning: the run rate limit applies to this process "
                   "only: %s\n",
                   error.c_str());
  }
  coordinator_actor coord;
  if (backend.spawn) {
    std::string error;
    coord = backend.spawn(sys, ctx.state_dir, error);
    if (!coord) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      return 1;
    }
  } else {
    coord = spawn_coordinator(sys, cfg, deps);
  }
  ctx.coordinator = coord;
  ctx.events = std::make_shared<event_hub>(deps.event_buffer,
                                           deps.retained_runs + 100);
  event_hub_settings hub_settings;
  hub_settings.agent_events_per_second = given.agent_events_per_second;
  hub_settings.agent_event_burst = given.agent_event_burst;
  auto hub = spawn_event_hub(sys, coord, ctx.events, hub_settings);
  if (given.rate_per_minute > 0) {
    rate_limit_settings rl;
    rl.enabled = true;
    rl.requests_per_minute = given.rate_per_minute;
    rl.burst_size = std::max(1, given.rate_burst);
    rl.per_user = true;
    rate_limiter_deps rl_deps;
    rl_deps.api = true;
    ctx.api_limiter = sys.spawn(rate_limiter_impl, rl, rl_deps);
  }
  // Signals become a word to this thread (it only notes the first).
  std::mutex mtx;
  std::condition_variable cv;
  int signalled = 0;
  signal_bridge signals{sys, [&](int signo) {
                          {
                            std::lock_guard<std::mutex> guard{mtx};
                            if (signalled == 0)
                              signalled = signo;
                          }
                          cv.notify_all();
                        }};
  auto stop_actors = [&] {
    caf::anon_send_exit(hub, caf::exit_reason::user_shutdown);
    if (ctx.api_limiter)
      caf::anon_send_exit(ctx.api_limiter, caf::exit_reason::user_shutdown);
    caf::anon_send(coord, atom::cancel_v, std::string{});
    caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
  };
  // -- the server -----------------------------------------------------------
  router routes;
  http_server srv{ctx, routes};
  add_routes(routes, ctx, srv);
  std::string error;
  if (!srv.start(error)) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    signals.stop();
    for (auto& fn : ctx.on_stop)
      fn();
    stop_actors();
    return 1;
  }
  std::printf("listening on http://%s:%u\n", given.host.c_str(),
              static_cast<unsigned>(srv.port()));
  std::fflush(stdout);
  log().info("serve-start host={} port={} token={}", given.host, srv.port(),
             ctx.token_required() ? "required" : "off");
  {
    std::unique_lock<std::mutex> lock{mtx};
    cv.wait(lock, [&] {
      return signalled != 0;
    });
  }
  // -- the graceful stop ----------------------------------------------------
  log().info("serve-stop signal={}", signalled);
  std::fprintf(stderr, "stopping (signal %d): cancelling running tasks\n",
               signalled);
  ctx.stopping = true;
  std::vector<std::string> running;
  if (auto runs = ctx.ask<std::vector<run_info>>(coord, atom::list_v))
    for (auto& r : *runs)
      if (r.state != "finished")
        running.push_back(r.run_id);
  (void)ctx.ask<bool>(coord, atom::cancel_v, std::string{});
  await_runs(sys, coord, running,
             cfg->settings.kill_grace + std::chrono::seconds{10});
  // Their run_finished events reach the streams before they close.
  ctx.events->wait_finished(running, std::chrono::steady_clock::now()
                                       + std::chrono::seconds{5});
  for (auto& fn : ctx.on_stop)
    fn();
  ctx.events->close();
  // Let each open stream write what it has left (run_finished) and end:
  // stopping civetweb first would drop those writes.
  auto streams_until = std::chrono::steady_clock::now()
                       + std::chrono::seconds{2};
  for (;;) {
    auto seen = ctx.events->generation();
    if (ctx.streams.load() == 0
        || std::chrono::steady_clock::now() >= streams_until)
      break;
    ctx.events->wait_generation(seen, streams_until);
  }
  srv.stop();
  signals.stop();
  stop_actors();
  std::fprintf(stderr, "stopped: %zu running task(s) cancelled\n",
               running.size());
  return 0;
}

} // namespace orch::server
