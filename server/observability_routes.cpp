// GET /health, GET /ready and GET /metrics. /health and /ready are always
// open (load balancers and orchestrators probe them without a token);
// /metrics needs the token when the server asks for one. None of them is
// counted by the API rate limiter: a scraper every second is normal.

#include <chrono>
#include <cmath>
#include <mutex>

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/agent_probe.hpp"
#include "actors/coordinator.hpp"
#include "actors/metrics_feed.hpp"
#include "runtime/metrics.hpp"
#include "server/routes.hpp"

namespace orch::server {

namespace {

/// How long /ready waits for the coordinator.
constexpr auto ready_timeout = std::chrono::milliseconds{1000};
/// How long an agent's availability is reused: /health may be polled often
/// (and benchmarked), a PATH lookup per agent each time is not needed.
constexpr auto agent_check_ttl = std::chrono::seconds{5};

struct agent_health {
  std::string name;
  bool available = false;
  std::string reason;
  std::string breaker;
};

/// Every configured agent's availability (a PATH lookup, no process run)
/// and breaker state, kept for agent_check_ttl.
class agent_checks {
public:
  std::vector<agent_health> get(server_context& ctx) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto now = std::chrono::steady_clock::now();
    if (!valid_ || now - at_ > agent_check_ttl) {
      agents_.clear();
      for (const auto& a : ctx.cfg->agents) {
        agent_health h;
        h.name = a.name;
        h.reason = probe_agent(a);
        h.available = h.reason.empty();
        h.breaker = read_breaker(ctx.state_dir, a.name).state;
        agents_.push_back(std::move(h));
        if (ctx.metrics)
          ctx.metrics->set_agent_available(a.name, h.available);
      }
      at_ = now;
      valid_ = true;
    }
    return agents_;
  }

private:
  std::mutex mtx_;
  std::chrono::steady_clock::time_point at_;
  std::vector<agent_health> agents_;
  bool valid_ = false;
};

/// Returns "" when the coordinator answers within ready_timeout, else why
/// not.
std::string coordinator_answers(server_context& ctx) {
  if (!ctx.coordinator)
    return "no run coordinator";
  std::string why = "the run coordinator did not answer within 1 s";
  caf::scoped_actor self{*ctx.system};
  self->request(ctx.coordinator, ready_timeout, atom::list_v)
    .receive(
      [&](std::vector<run_info>&) {
        why.clear();
      },
      [&](caf::error& e) {
        if (e != caf::sec::request_timeout)
          why = "the run coordinator is down";
      });
  return why;
}

} // namespace

void add_observability_routes(router& r, server_context& ctx) {
  ctx.metrics = std::make_shared<metrics_registry>();
  auto feed = spawn_metrics_feed(*ctx.system, ctx.coordinator, ctx.metrics);
  ctx.on_stop.emplace_back([feed] {
    caf::anon_send_exit(feed, caf::exit_reason::user_shutdown);
  });
  auto checks = std::make_shared<agent_checks>();

  route_options open;
  open.open = true;
  open.rate_limited = false;

  r.get(
    "/health",
    [&ctx, checks](request&) {
      auto agents = checks->get(ctx);
      nlohmann::ordered_json by_name = nlohmann::ordered_json::object();
      bool degraded = false;
      for (const auto& a : agents) {
        auto enabled = ctx.cfg->find_agent(a.name) != nullptr
                       && ctx.cfg->find_agent(a.name)->enabled;
        nlohmann::ordered_json j;
        j["status"] = a.available ? "available" : "unavailable";
        if (!a.reason.empty())
          j["reason"] = a.reason;
        j["breaker"] = a.breaker;
        by_name[a.name] = std::move(j);
        if (enabled && (!a.available || a.breaker == "open"))
          degraded = true;
      }
      auto uptime = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - ctx.started)
                      .count();
      nlohmann::ordered_json j;
      j["status"] = degraded ? "degraded" : "healthy";
      j["version"] = ORCH_VERSION;
      j["agents"] = std::move(by_name);
      j["uptime_seconds"] = std::round(uptime * 10) / 10;
      j["active_sessions"] = ctx.sessions ? ctx.sessions->size() : 0;
      return response::json(200, j);
    },
    open);

  r.get(
    "/ready",
    [&ctx](request&) {
      std::string why;
      if (!ctx.cfg)
        why = "the config is not loaded";
      else if (ctx.stopping)
        why = "the server is stopping";
      else
        why = coordinator_answers(ctx);
      if (!why.empty()) {
        auto res = response::json(503, {{"ready", false}, {"reason", why}});
        res.headers.emplace_back("Retry-After", "1");
        return res;
      }
      return response::json(200, {{"ready", true}});
    },
    open);

  route_options scraped;
  scraped.rate_limited = false;
  r.get(
    "/metrics",
    [&ctx, checks](request&) {
      (void)checks->get(ctx); // refreshes the availability gauges
      if (ctx.sessions)
        ctx.metrics->set_active_sessions(
          static_cast<int64_t>(ctx.sessions->size()));
      response res;
      res.content_type = metrics_content_type;
      res.body = ctx.metrics->render();
      return res;
    },
    scraped);
}

} // namespace orch::server
