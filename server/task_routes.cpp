// POST/GET /api/tasks, GET /api/tasks/{id}, POST /api/tasks/{id}/cancel:
// each a message to the coordinator, answered on the civetweb thread.

#include <algorithm>

#include "actors/coordinator.hpp"
#include "actors/run_report.hpp"
#include "server/event_hub.hpp"
#include "server/json_body.hpp"
#include "server/routes.hpp"

namespace orch::server {

namespace {

nlohmann::ordered_json info_json(const run_info& info, server_context& ctx) {
  nlohmann::ordered_json j;
  j["id"] = info.run_id;
  j["state"] = info.state;
  j["task"] = info.task;
  j["workflow"] = info.workflow;
  j["workspace"] = info.workspace;
  j["started_ms"] = info.started_ms;
  if (info.state == "finished") {
    if (auto ms = ctx.events->finished_ms(info.run_id); ms != 0)
      j["finished_ms"] = ms;
    j["status"] = to_string(info.status);
  }
  return j;
}

/// The run spec of a POST /api/tasks body, or the 400 naming the field.
/// With a `session`, an absent workflow stays empty (the session's).
std::optional<response> read_spec(const request& req, run_spec& spec,
                                  std::string& session) {
  json_body in{req.body};
  int64_t max_iterations = 0;
  std::vector<std::string> agents;
  if (!in.only(
        {"task", "workflow", "max_iterations", "agents", "session", "no_cache"})
      || !in.get_string("task", spec.task, true)
      || !in.get_string("workflow", spec.workflow, false)
      || !in.get_int("max_iterations", max_iterations, false, 1, 10)
      || !in.get_string_list("agents", agents, false)
      || !in.get_string("session", session, false)
      || !in.get_bool("no_cache", spec.no_cache, false))
    return in.error();
  if (spec.task.find_first_not_of(" \t\r\n") == std::string::npos)
    return response::error(400, "invalid_field", "field 'task': is empty");
  if (in.has("workflow") && spec.workflow.empty())
    return response::error(400, "invalid_field", "field 'workflow': is empty");
  // Through a session, no workflow means the session's (set below
  // otherwise).
  if (spec.workflow.empty() && session.empty())
    spec.workflow = "default";
  for (auto& a : agents) {
    if (a.empty() || a.find(',') != std::string::npos)
      return response::error(400, "invalid_field",
                             "field 'agents': an agent name is empty or "
                             "holds a comma");
    spec.agents += (spec.agents.empty() ? "" : ",") + a;
  }
  if (in.has("agents") && agents.empty())
    return response::error(400, "invalid_field",
                           "field 'agents': no agent names given");
  spec.max_iterations = static_cast<int32_t>(max_iterations);
  return std::nullopt;
}

} // namespace

void add_task_routes(router& r, server_context& ctx) {
  r.post("/api/tasks", [&ctx](request& req) {
    run_spec spec;
    std::string session;
    if (auto bad = read_spec(req, spec, session))
      return *bad;
    // Who submits, for the run rate limit and the audit log.
    spec.user = ctx.token_required() ? "api-token" : "api:" + req.remote_addr;
    if (!session.empty()) {
      if (!ctx.submit_to_session)
        return response::error(400, "invalid_field",
                               "field 'session': sessions are not available "
                               "on this server");
      return ctx.submit_to_session(session, std::move(spec), req);
    }
    auto id = ctx.ask<std::string>(ctx.coordinator, atom::submit_v,
                                   std::move(spec));
    if (!id) {
      auto res = error_response(id.error());
      // A name the coordinator did not know is the body's fault: say which
      // field.
      if (res.status == 400
          && id.error().code() == static_cast<uint8_t>(errc::unknown_name))
        return response::error(400, "invalid_field",
                               "field 'workflow': " + error_text(id.error()));
      return res;
    }
    ctx.events->expect_run(*id);
    auto res = response::json(202, {{"id", *id}, {"state", "running"}});
    res.headers.emplace_back("Location", "/api/tasks/" + *id);
    return res;
  });

  r.get("/api/tasks", [&ctx](request&) {
    auto runs = ctx.ask<std::vector<run_info>>(ctx.coordinator, atom::list_v);
    if (!runs)
      return error_response(runs.error());
    // Ids sort by creation: newest first.
    std::sort(runs->begin(), runs->end(),
              [](const run_info& a, const run_info& b) {
                return a.run_id > b.run_id;
              });
    auto arr = nlohmann::ordered_json::array();
    for (auto& info : *runs)
      arr.push_back(info_json(info, ctx));
    return response::json(200, {{"tasks", std::move(arr)}});
  });

  r.get("/api/tasks/{id}", [&ctx](request& req) {
    auto id = req.param("id");
    auto info = ctx.ask<run_info>(ctx.coordinator, atom::status_v, id);
    if (!info)
      return error_response(info.error());
    auto j = info_json(*info, ctx);
    if (info->state == "finished") {
      // Retained finished runs answer at once.
      auto res = ctx.ask<run_result>(ctx.coordinator, atom::result_v, id);
      if (!res)
        return error_response(res.error());
      j["result"] = run_json(*res);
    }
    return response::json(200, j);
  });

  r.post("/api/tasks/{id}/cancel", [&ctx](request& req) {
    auto id = req.param("id");
    auto info = ctx.ask<run_info>(ctx.coordinator, atom::status_v, id);
    if (!info)
      return error_response(info.error());
    if (info->state == "finished")
      return response::json(200, {{"cancelled", false}});
    auto found = ctx.ask<bool>(ctx.coordinator, atom::cancel_v, id);
    if (!found)
      return error_response(found.error());
    return response::json(200, {{"cancelled", *found}});
  });
}

} // namespace orch::server
