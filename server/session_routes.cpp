// /api/sessions: conversations over HTTP, each a session actor (the shell's)
// held by name in the session registry. A message becomes a task through
// its session; with conversation mode on it continues the previous task
// (a follow-up in the session's workspace), off it starts a new one.

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>
#include <vector>

#include <caf/send.hpp>

#include "actors/coordinator.hpp"
#include "actors/session_actor.hpp"
#include "runtime/clock.hpp"
#include "runtime/logging.hpp"
#include "runtime/metrics.hpp"
#include "runtime/session_store.hpp"
#include "server/event_hub.hpp"
#include "server/json_body.hpp"
#include "server/routes.hpp"

namespace orch::server {

namespace {

namespace fs = std::filesystem;

/// Keeps the metrics' live-sessions gauge in step with the registry.
void update_gauge(server_context& ctx) {
  if (ctx.metrics && ctx.sessions)
    ctx.metrics->set_active_sessions(
      static_cast<int64_t>(ctx.sessions->size()));
}

session_deps deps_of(const server_context& ctx) {
  session_deps d;
  d.state_dir = ctx.state_dir;
  d.user = ctx.token_required() ? "api-token" : "api";
  return d;
}

/// Stops a session actor (its running task, if any, is cancelled first).
void stop_session(server_context& ctx, const live_session& s) {
  (void)ctx.ask<bool>(s.actor, atom::cancel_v);
  caf::anon_send_exit(s.actor, caf::exit_reason::user_shutdown);
}

int32_t tasks_of(const std::vector<session_entry>& history) {
  return static_cast<int32_t>(
    std::count_if(history.begin(), history.end(), [](const session_entry& e) {
      return e.role == "user";
    }));
}

nlohmann::ordered_json entry_json(const session_entry& e) {
  nlohmann::ordered_json j;
  j["role"] = e.role;
  j["content"] = e.content;
  j["files"] = e.files;
  j["timestamp"] = e.timestamp;
  if (!e.run_id.empty())
    j["run_id"] = e.run_id;
  return j;
}

/// The JSON of a live session; with `history`, its messages too.
std::optional<nlohmann::ordered_json>
live_json(server_context& ctx, const live_session& s, bool with_history) {
  auto info = ctx.ask<session_info>(s.actor, atom::info_v);
  auto history = ctx.ask<std::vector<session_entry>>(s.actor, atom::history_v);
  if (!info || !history)
    return std::nullopt;
  nlohmann::ordered_json j;
  j["name"] = s.name;
  j["session_id"] = info->session_id;
  j["workflow"] = info->workflow;
  j["agent"] = info->agent;
  j["conversation"] = s.conversation;
  j["tasks"] = tasks_of(*history);
  j["messages"] = info->messages;
  j["workspace"] = info->workspace;
  j["running"] = info->running.empty() ? nlohmann::ordered_json()
                                       : nlohmann::ordered_json(info->running);
  j["unsaved"] = info->unsaved;
  j["created_at"] = info->created_at;
  j["updated_ms"] = s.updated_ms;
  j["live"] = true;
  if (with_history) {
    auto arr = nlohmann::ordered_json::array();
    for (const auto& e : *history)
      arr.push_back(entry_json(e));
    j["history"] = std::move(arr);
  }
  return j;
}

/// The JSON of a saved session that is not live.
nlohmann::ordered_json saved_json(const std::string& name,
                                  const stored_session& s, int64_t mtime_ms,
                                  bool with_history) {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["session_id"] = s.session_id;
  j["workflow"] = s.workflow;
  j["agent"] = s.agent;
  j["conversation"] = true;
  j["tasks"] = std::count_if(s.conversation_history.begin(),
                             s.conversation_history.end(),
                             [](const stored_message& m) {
                               return m.role == "user";
                             });
  j["messages"] = s.conversation_history.size();
  j["workspace"] = s.workspace;
  j["running"] = nullptr;
  j["unsaved"] = 0;
  j["created_at"] = s.created_at;
  j["updated_ms"] = mtime_ms;
  j["live"] = false;
  if (with_history) {
    auto arr = nlohmann::ordered_json::array();
    for (const auto& m : s.conversation_history)
      arr.push_back(
        entry_json({m.role, m.content, m.files, m.timestamp, m.run_id}));
    j["history"] = std::move(arr);
  }
  return j;
}

int64_t mtime_ms_of(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec)
    return 0;
  auto sys = std::chrono::time_point_cast<std::chrono::milliseconds>(
    t - fs::file_time_type::clock::now() + std::chrono::system_clock::now());
  return sys.time_since_epoch().count();
}

response session_error(const caf::error& err) {
  if (err.category() == caf::atom("orch")
      && static_cast<errc>(err.code()) == errc::session_store_failed) {
    // The message may name the state directory: kept in the log.
    log().warn("http-session-store {}", error_text(err));
    return response::error(500, "session_store_failed",
                           "the session could not be saved or loaded (see "
                           "the server log)");
  }
  return error_response(err);
}

/// Spawns a live session named `name`, loaded from its saved file when
/// `load`. Answers the session, or the error response.
std::optional<live_session>
start_session(server_context& ctx, const std::string& name, bool load,
              bool conversation, const std::string& workflow, response& error) {
  auto actor = spawn_session(*ctx.system, ctx.cfg, ctx.coordinator,
                             deps_of(ctx));
  auto fail = [&](response res) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    error = std::move(res);
    return std::nullopt;
  };
  if (load) {
    if (auto info = ctx.ask<session_info>(actor, atom::load_v, name); !info)
      return fail(session_error(info.error()));
  }
  if (!workflow.empty()) {
    if (auto info = ctx.ask<session_info>(actor, atom::set_workflow_v,
                                          workflow);
        !info)
      return fail(error_response(info.error()));
  }
  live_session s;
  s.name = name;
  s.actor = actor;
  s.conversation = conversation;
  s.created_ms = s.updated_ms = wall_clock_ms();
  if (!ctx.sessions->add(s)) {
    // Another request made it meanwhile: that one stays.
    if (auto other = ctx.sessions->find(name)) {
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
      return other;
    }
    return fail(response::error(409, "session_exists",
                                "session '" + name + "' already exists"));
  }
  update_gauge(ctx);
  return s;
}

/// Submits `msg` (its text and overrides set) as a message of session `s`;
/// answers the 202 or the error. `mode` is "", "detect", "followup" or
/// "new_task".
response submit_message(server_context& ctx, const live_session& s,
                        session_message msg, const std::string& mode) {
  if (mode == "detect") {
    msg.mode = followup_mode::detect;
  } else if (mode == "followup") {
    msg.mode = followup_mode::followup;
  } else if (mode == "new_task") {
    msg.mode = followup_mode::new_task;
  } else if (s.conversation) {
    auto c = ctx.ask<session_context>(s.actor, atom::context_v);
    if (!c)
      return error_response(c.error());
    msg.mode = c->has_previous ? followup_mode::followup
                               : followup_mode::new_task;
  } else {
    msg.mode = followup_mode::new_task;
  }
  auto sub = ctx.ask<session_submitted>(s.actor, atom::say_v, std::move(msg));
  if (!sub) {
    // An unknown workflow is the body's fault: say which field.
    if (sub.error().category() == caf::atom("orch")
        && static_cast<errc>(sub.error().code()) == errc::unknown_name)
      return response::error(400, "invalid_field",
                             "field 'workflow': " + error_text(sub.error()));
    return error_response(sub.error());
  }
  if (sub->kind == message_kind::ambiguous)
    return response::error(409, "ambiguous",
                           "cannot tell whether the message continues the "
                           "previous task ("
                             + sub->reason
                             + "): send it again with \"mode\": \"followup\" "
                               "or \"new_task\"");
  if (ctx.events)
    ctx.events->expect_run(sub->run_id);
  ctx.sessions->update(s.name, std::nullopt, wall_clock_ms());
  nlohmann::ordered_json j;
  j["id"] = sub->run_id;
  j["state"] = "running";
  j["session"] = s.name;
  j["followup"] = sub->kind == message_kind::followup;
  j["reason"] = sub->reason;
  j["workspace"] = sub->workspace;
  return response::json(202, j);
}

} // namespace

std::optional<live_session>
find_session(server_context& ctx, const std::string& name, response& error) {
  if (auto s = ctx.sessions->find(name))
    return s;
  if (!check_session_name(name).empty() || ctx.state_dir.empty()) {
    error = response::error(404, "not_found", "no session '" + name + "'");
    return std::nullopt;
  }
  session_store store{ctx.state_dir};
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(store.path_of(name), ec))) {
    error = response::error(404, "not_found", "no session '" + name + "'");
    return std::nullopt;
  }
  return start_session(ctx, name, true, true, {}, error);
}

void add_session_routes(router& r, server_context& ctx) {
  ctx.sessions = std::make_shared<session_registry>();
  update_gauge(ctx);

  ctx.submit_to_session = [&ctx](const std::string& name, run_spec spec,
                                 const request&) {
    response error;
    auto s = find_session(ctx, name, error);
    if (!s)
      return error;
    session_message msg;
    msg.text = std::move(spec.task);
    msg.workflow = std::move(spec.workflow);
    msg.max_iterations = spec.max_iterations;
    msg.agents = std::move(spec.agents);
    msg.no_cache = spec.no_cache;
    return submit_message(ctx, *s, std::move(msg), {});
  };

  // The server's stop: unsaved conversations are saved under their names,
  // then the actors end (the actor system waits for every actor).
  ctx.on_stop.emplace_back([&ctx] {
    for (auto& s : ctx.sessions->take_all()) {
      auto info = ctx.ask<session_info>(s.actor, atom::info_v);
      if (info && info->unsaved > 0 && !ctx.state_dir.empty()) {
        auto saved = ctx.ask<std::string>(s.actor, atom::save_v, s.name, false);
        if (!saved)
          log().warn("serve-stop-session-save name={} error={}", s.name,
                     error_text(saved.error()));
      }
      caf::anon_send_exit(s.actor, caf::exit_reason::user_shutdown);
    }
    update_gauge(ctx);
  });

  r.get("/api/sessions", [&ctx](request&) {
    auto arr = nlohmann::ordered_json::array();
    std::set<std::string> live_names;
    for (const auto& s : ctx.sessions->all()) {
      live_names.insert(s.name);
      if (auto j = live_json(ctx, s, false))
        arr.push_back(std::move(*j));
    }
    if (!ctx.state_dir.empty()) {
      session_store store{ctx.state_dir};
      std::string error;
      for (const auto& l : store.list(error))
        if (l.session && live_names.count(l.name) == 0)
          arr.push_back(
            saved_json(l.name, *l.session, mtime_ms_of(l.path), false));
    }
    return response::json(200, {{"sessions", std::move(arr)}});
  });

  r.post("/api/sessions", [&ctx](request& req) {
    json_body in{req.body.empty() ? std::string{"{}"} : req.body};
    std::string name;
    std::string workflow;
    bool conversation = true;
    if (!in.only({"name", "workflow", "conversation"})
        || !in.get_string("name", name, false)
        || !in.get_string("workflow", workflow, false)
        || !in.get_bool("conversation", conversation, false))
      return in.error();
    if (in.has("workflow") && workflow.empty())
      return response::error(400, "invalid_field",
                             "field 'workflow': is empty");
    if (name.empty())
      name = make_session_id();
    if (auto why = check_session_name(name); !why.empty())
      return response::error(400, "invalid_field", "field 'name': " + why);
    if (ctx.sessions->find(name))
      return response::error(409, "session_exists",
                             "session '" + name + "' already exists");
    bool saved = false;
    if (!ctx.state_dir.empty()) {
      session_store store{ctx.state_dir};
      std::error_code ec;
      saved = fs::is_regular_file(fs::symlink_status(store.path_of(name), ec));
    }
    response error;
    auto s = start_session(ctx, name, saved, conversation, workflow, error);
    if (!s)
      return error;
    auto j = live_json(ctx, *s, true);
    if (!j)
      return response::error(504, "timeout",
                             "the session did not answer in time");
    (*j)["loaded"] = saved;
    return response::json(201, *j);
  });

  r.get("/api/sessions/{name}", [&ctx](request& req) {
    auto name = req.param("name");
    if (auto s = ctx.sessions->find(name)) {
      auto j = live_json(ctx, *s, true);
      if (!j)
        return response::error(504, "timeout",
                               "the session did not answer in time");
      return response::json(200, *j);
    }
    if (check_session_name(name).empty() && !ctx.state_dir.empty()) {
      session_store store{ctx.state_dir};
      std::string error;
      if (auto saved = store.load(name, error))
        return response::json(
          200,
          saved_json(name, *saved, mtime_ms_of(store.path_of(name)), true));
    }
    return response::error(404, "not_found", "no session '" + name + "'");
  });

  r.del("/api/sessions/{name}", [&ctx](request& req) {
    auto name = req.param("name");
    auto live = ctx.sessions->remove(name);
    if (live) {
      stop_session(ctx, *live);
      update_gauge(ctx);
    }
    bool file_removed = false;
    if (check_session_name(name).empty() && !ctx.state_dir.empty()) {
      session_store store{ctx.state_dir};
      std::error_code ec;
      auto p = store.path_of(name);
      if (fs::is_regular_file(fs::symlink_status(p, ec)))
        file_removed = fs::remove(p, ec);
    }
    if (!live && !file_removed)
      return response::error(404, "not_found", "no session '" + name + "'");
    nlohmann::ordered_json j;
    j["deleted"] = name;
    j["was_live"] = live.has_value();
    j["saved_file_removed"] = file_removed;
    return response::json(200, j);
  });

  r.post("/api/sessions/{name}/save", [&ctx](request& req) {
    response error;
    auto s = find_session(ctx, req.param("name"), error);
    if (!s)
      return error;
    if (ctx.state_dir.empty())
      return response::error(409, "no_state_dir",
                             "sessions cannot be saved: the server has no "
                             "state directory");
    auto saved = ctx.ask<std::string>(s->actor, atom::save_v, s->name, false);
    if (!saved)
      return session_error(saved.error());
    return response::json(200, {{"saved", s->name}});
  });

  r.patch("/api/sessions/{name}", [&ctx](request& req) {
    json_body in{req.body};
    bool conversation = true;
    std::string workflow;
    std::string agent;
    if (!in.only({"conversation", "workflow", "agent"})
        || !in.get_bool("conversation", conversation, false)
        || !in.get_string("workflow", workflow, false)
        || !in.get_string("agent", agent, false))
      return in.error();
    if (in.has("workflow") && workflow.empty())
      return response::error(400, "invalid_field",
                             "field 'workflow': is empty");
    response error;
    auto s = find_session(ctx, req.param("name"), error);
    if (!s)
      return error;
    if (!workflow.empty())
      if (auto info = ctx.ask<session_info>(s->actor, atom::set_workflow_v,
                                            workflow);
          !info)
        return error_response(info.error());
    if (in.has("agent"))
      if (auto info = ctx.ask<session_info>(s->actor, atom::set_agent_v, agent);
          !info)
        return error_response(info.error());
    std::optional<bool> conv;
    if (in.has("conversation"))
      conv = conversation;
    ctx.sessions->update(s->name, conv, wall_clock_ms());
    auto now = ctx.sessions->find(s->name);
    if (!now)
      return response::error(404, "not_found",
                             "session '" + s->name + "' was deleted");
    auto j = live_json(ctx, *now, false);
    if (!j)
      return response::error(504, "timeout",
                             "the session did not answer in time");
    return response::json(200, *j);
  });

  r.post("/api/sessions/{name}/messages", [&ctx](request& req) {
    json_body in{req.body};
    session_message msg;
    std::string mode;
    int64_t max_iterations = 0;
    std::vector<std::string> agents;
    if (!in.only(
          {"text", "mode", "workflow", "max_iterations", "agents", "no_cache"})
        || !in.get_string("text", msg.text, true)
        || !in.get_string("mode", mode, false)
        || !in.get_string("workflow", msg.workflow, false)
        || !in.get_int("max_iterations", max_iterations, false, 1, 10)
        || !in.get_string_list("agents", agents, false)
        || !in.get_bool("no_cache", msg.no_cache, false))
      return in.error();
    if (msg.text.find_first_not_of(" \t\r\n") == std::string::npos)
      return response::error(400, "invalid_field", "field 'text': is empty");
    if (in.has("workflow") && msg.workflow.empty())
      return response::error(400, "invalid_field",
                             "field 'workflow': is empty");
    if (in.has("agents") && agents.empty())
      return response::error(400, "invalid_field",
                             "field 'agents': no agent names given");
    for (auto& a : agents) {
      if (a.empty() || a.find(',') != std::string::npos)
        return response::error(400, "invalid_field",
                               "field 'agents': an agent name is empty or "
                               "holds a comma");
      msg.agents += (msg.agents.empty() ? "" : ",") + a;
    }
    msg.max_iterations = static_cast<int32_t>(max_iterations);
    if (in.has("mode") && mode != "detect" && mode != "followup"
        && mode != "new_task")
      return response::error(400, "invalid_field",
                             "field 'mode': expected detect, followup or "
                             "new_task");
    response error;
    auto s = find_session(ctx, req.param("name"), error);
    if (!s)
      return error;
    return submit_message(ctx, *s, std::move(msg), mode);
  });

  r.post("/api/sessions/{name}/cancel", [&ctx](request& req) {
    response error;
    auto s = find_session(ctx, req.param("name"), error);
    if (!s)
      return error;
    auto cancelled = ctx.ask<bool>(s->actor, atom::cancel_v);
    if (!cancelled)
      return error_response(cancelled.error());
    return response::json(200, {{"cancelled", *cancelled}});
  });
}

} // namespace orch::server
