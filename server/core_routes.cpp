// GET /api/auth, /api/agents, /api/workflows.

#include <algorithm>
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

/// The agents as the worker nodes see them (serve --workers; the agents do
/// not run here): available when a connected node can run it, with the
/// addresses of those nodes; else why not, node by node.
nlohmann::ordered_json node_agents_json(const config& cfg,
                                        const std::vector<node_report>& nodes) {
  auto arr = nlohmann::ordered_json::array();
  for (const auto& agent : cfg.agents) {
    agent_status s;
    s.name = agent.name;
    s.kind = agent.kind;
    s.command = agent.command;
    s.enabled = agent.enabled;
    auto where = nlohmann::ordered_json::array();
    std::vector<std::string> why;
    for (const auto& n : nodes) {
      const auto& can = n.status.agents;
      if (n.alive
          && std::find(can.begin(), can.end(), agent.name) != can.end()) {
        where.push_back(n.address);
        continue;
      }
      std::string reason = n.alive ? "not available" : "not connected";
      if (!n.alive && !n.error.empty())
        reason += " (" + n.error + ")";
      for (const auto& u : n.status.unavailable)
        if (n.alive && u.rfind(agent.name + ": ", 0) == 0)
          reason = u.substr(agent.name.size() + 2);
      why.push_back(n.address + ": " + reason);
    }
    s.installed = !where.empty();
    s.status = !agent.enabled  ? availability::disabled
               : where.empty() ? availability::not_installed
                               : availability::available;
    if (s.status == availability::disabled)
      s.detail = "enabled: false in the config";
    if (s.status == availability::not_installed) {
      s.detail = "on no connected worker node: ";
      for (size_t i = 0; i < why.size(); ++i)
        s.detail += (i == 0 ? "" : "; ") + why[i];
    }
    // Each node keeps its own breakers.
    breaker_view b;
    b.state = "unknown";
    b.reason = "kept by each worker node";
    auto j = to_json(s, b);
    j["available"] = s.status == availability::available;
    j["reason"] = s.detail;
    j["max_concurrency"] = agent.max_concurrency;
    j["nodes"] = std::move(where);
    arr.push_back(std::move(j));
  }
  return arr;
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
    // Under --workers the agents run on the nodes: as they reported.
    if (ctx.coordinator) {
      auto nodes = ctx.ask<std::vector<node_report>>(ctx.coordinator,
                                                     atom::node_info_v);
      if (nodes && !nodes->empty())
        return response::json(200,
                              {{"agents", node_agents_json(*ctx.cfg, *nodes)}});
    }
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
