// GET /api/auth, /api/agents, /api/workflows.

#include <chrono>
#include <mutex>

#include "actors/agent_probe.hpp"
#include "runtime/process.hpp"
#include "server/routes.hpp"

namespace orch::server {

namespace {

/// `agents --json` probes every agent (`--version`): kept for a while.
struct agent_cache {
  std::mutex mtx;
  std::chrono::steady_clock::time_point at;
  std::vector<agent_status> statuses;
  bool valid = false;
};

nlohmann::ordered_json workflow_json(const workflow_config& wf) {
  nlohmann::ordered_json j;
  j["name"] = wf.name;
  j["description"] = wf.description;
  j["max_iterations"] = wf.max_iterations;
  j["min_suggestions_threshold"] = wf.min_suggestions_threshold;
  auto steps = nlohmann::ordered_json::array();
  for (auto& step : wf.steps) {
    if (step.items.size() == 1) {
      steps.push_back(
        {{"agent", step.items[0].agent}, {"task", step.items[0].task}});
      continue;
    }
    auto items = nlohmann::ordered_json::array();
    for (auto& item : step.items)
      items.push_back({{"agent", item.agent}, {"task", item.task}});
    steps.push_back({{"parallel", std::move(items)}});
  }
  j["steps"] = std::move(steps);
  return j;
}

} // namespace

void add_core_routes(router& r, server_context& ctx) {
  route_options open;
  open.open = true;
  open.rate_limited = false;
  r.get(
    "/api/auth",
    [&ctx](request&) {
      return response::json(200, {{"required", ctx.token_required()}});
    },
    open);

  auto cache = std::make_shared<agent_cache>();
  r.get("/api/agents", [&ctx, cache](request&) {
    std::vector<agent_status> statuses;
    {
      // One probe at a time; others wait for its result.
      std::lock_guard<std::mutex> guard{cache->mtx};
      auto now = std::chrono::steady_clock::now();
      if (!cache->valid || now - cache->at > std::chrono::seconds{30}) {
        cache->statuses = probe_agents(*ctx.system, *ctx.cfg,
                                       make_posix_process_runner());
        cache->at = now;
        cache->valid = true;
      }
      statuses = cache->statuses;
    }
    auto arr = nlohmann::ordered_json::array();
    for (auto& s : statuses) {
      auto j = to_json(s, read_breaker(ctx.state_dir, s.name));
      j["available"] = s.status == availability::available;
      j["reason"] = s.detail;
      if (auto agent = ctx.cfg->find_agent(s.name))
        j["max_concurrency"] = agent->max_concurrency;
      arr.push_back(std::move(j));
    }
    return response::json(200, {{"agents", std::move(arr)}});
  });

  r.get("/api/workflows", [&ctx](request&) {
    auto arr = nlohmann::ordered_json::array();
    for (auto& wf : ctx.cfg->workflows)
      arr.push_back(workflow_json(wf));
    std::string def;
    if (ctx.cfg->find_workflow("default") != nullptr)
      def = "default";
    else if (!ctx.cfg->workflows.empty())
      def = ctx.cfg->workflows.front().name;
    nlohmann::ordered_json j;
    j["workflows"] = std::move(arr);
    j["default"] = def;
    return response::json(200, j);
  });
}

} // namespace orch::server
