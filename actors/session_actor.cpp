#include "actors/session_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <set>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/coordinator.hpp"
#include "runtime/audit_log.hpp"
#include "runtime/clock.hpp"
#include "runtime/counters.hpp"
#include "runtime/followup.hpp"
#include "runtime/session_store.hpp"
#include "runtime/text.hpp"

namespace orch {

namespace {

/// Files listed in a follow-up's task at most (the rest counted).
constexpr std::size_t max_listed_files = 200;
/// The previous request's words kept in a follow-up's task at most.
constexpr std::size_t max_previous_chars = 2000;
/// session_info::running while the coordinator has not yet named the run.
constexpr const char* submitting = "(submitting)";
/// Finished results kept for a late `result`.
constexpr std::size_t kept_results = 8;

int64_t now_ms(const session_deps& deps) {
  if (deps.wall_clock)
    return deps.wall_clock();
  return wall_clock_ms();
}

/// Cuts `text` to at most `max` bytes on a UTF-8 boundary, "..." marking
/// the cut.
std::string bounded(const std::string& text, std::size_t max) {
  if (text.size() <= max)
    return text;
  std::size_t keep = max > 3 ? max - 3 : 0;
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80)
    --keep;
  return text.substr(0, keep) + "...";
}

std::string status_text(run_status x) {
  return to_string(x);
}

run_status status_from_text(const std::string& x) {
  for (auto s : {run_status::converged, run_status::completed,
                 run_status::max_iterations, run_status::no_progress,
                 run_status::failed, run_status::cancelled})
    if (to_string(s) == x)
      return s;
  return run_status::failed;
}

std::string known_workflows(const config& cfg) {
  std::string out;
  for (auto& wf : cfg.workflows)
    out += (out.empty() ? "" : ", ") + wf.name;
  return out;
}

std::string known_agents(const config& cfg) {
  std::string out;
  for (auto& a : cfg.agents)
    out += (out.empty() ? "" : ", ") + a.name;
  return out;
}

using session_self = session_actor::stateful_pointer<session_state>;

session_info& refresh(session_self self) {
  auto& st = self->state;
  st.info.messages = static_cast<int32_t>(st.history.size());
  return st.info;
}

std::string default_workspace(const config& cfg, const std::string& id) {
  std::error_code ec;
  auto p
    = std::filesystem::absolute(
        std::filesystem::path{cfg.settings.workspace_dir} / ("session-" + id),
        ec)
        .lexically_normal()
        .string();
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  return p;
}

stored_session to_stored(const session_state& st) {
  stored_session s;
  s.session_id = st.info.session_id;
  s.created_at = st.info.created_at;
  s.workflow = st.info.workflow;
  s.workspace = st.info.workspace;
  s.agent = st.info.agent;
  for (auto& e : st.history)
    s.conversation_history.push_back(
      stored_message{e.role, e.content, e.files, e.timestamp, e.run_id});
  auto& c = st.context;
  s.context
    = stored_context{c.has_previous, c.previous_task, c.summary,
                     c.files,        c.workspace,     c.workflow,
                     c.timestamp,    c.run_id,        status_text(c.status)};
  return s;
}

void run_finished(session_self self, const std::string& run_id,
                  run_result res) {
  auto& st = self->state;
  auto stamp = iso_utc(now_ms(st.deps));
  auto summary = summarize_result(res, st.deps.summary_chars);
  st.history.push_back(
    session_entry{"assistant", summary, res.files, stamp, run_id});
  st.info.unsaved += 1;
  auto& c = st.context;
  std::set<std::string> files(c.files.begin(), c.files.end());
  // A new task starts a new context: its files alone.
  if (!st.running_followup)
    files.clear();
  files.insert(res.files.begin(), res.files.end());
  c.has_previous = true;
  c.previous_task = st.running_words;
  c.summary = summary;
  c.files.assign(files.begin(), files.end());
  c.workspace = res.workspace.empty() ? st.info.workspace : res.workspace;
  c.workflow = res.workflow;
  c.timestamp = stamp;
  c.run_id = run_id;
  c.status = res.status;
  st.info.running.clear();
  st.running_words.clear();
  st.running_followup = false;
  st.finished[run_id] = res;
  while (st.finished.size() > kept_results)
    st.finished.erase(st.finished.begin());
  auto waiters = std::move(st.waiters[run_id]);
  st.waiters.erase(run_id);
  for (auto& w : waiters)
    w.deliver(res);
}

} // namespace

std::string make_session_id() {
  std::random_device rd;
  std::mt19937_64 gen{(static_cast<uint64_t>(rd()) << 32) ^ rd()};
  auto x = gen();
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(x));
  return buf;
}

std::string iso_utc(int64_t ms) {
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string summarize_result(const run_result& res, std::size_t max_chars) {
  std::string text = to_string(res.status);
  if (!res.message.empty())
    text += ": " + res.message;
  // The last step that answered: its final text says what was done.
  const step_result* last = nullptr;
  for (auto& it : res.iterations)
    for (auto& step : it.steps)
      if (step.outcome.ok
          && !orch::text::trimmed(step.outcome.final_text).empty())
        last = &step;
  if (last != nullptr)
    text += "\n" + orch::text::trimmed(last->outcome.final_text);
  return bounded(text, max_chars);
}

std::string followup_task(const session_context& ctx,
                          const std::string& message) {
  std::string out = message;
  out += "\n\nThis is a follow-up: it continues the previous task, whose "
         "files are in this workspace.";
  out += "\nPrevious request: "
         + bounded(ctx.previous_task, max_previous_chars);
  out += "\nSummary of its result: " + ctx.summary;
  if (ctx.files.empty()) {
    out += "\nFiles generated so far: none";
  } else {
    out += "\nFiles generated so far:";
    std::size_t n = 0;
    for (auto& f : ctx.files) {
      if (n++ == max_listed_files)
        break;
      out += "\n- " + f;
    }
    if (ctx.files.size() > max_listed_files)
      out += "\n(and " + std::to_string(ctx.files.size() - max_listed_files)
             + " more)";
  }
  return out;
}

session_actor::behavior_type
session_impl(session_actor::stateful_pointer<session_state> self,
             std::shared_ptr<const config> cfg, coordinator_actor coordinator,
             session_deps deps) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.coordinator = std::move(coordinator);
  st.deps = std::move(deps);
  st.info.session_id = st.deps.session_id.empty() ? make_session_id()
                                                  : st.deps.session_id;
  st.info.created_at = iso_utc(now_ms(st.deps));
  st.info.workflow = st.cfg->workflows.empty() ? std::string{"default"}
                                               : st.cfg->workflows[0].name;
  if (st.cfg->find_workflow("default") != nullptr)
    st.info.workflow = "default";
  st.info.workspace = default_workspace(*st.cfg, st.info.session_id);
  return {
    [self](atom::say, session_message& msg) -> caf::result<session_submitted> {
      auto& st = self->state;
      if (!st.info.running.empty())
        return caf::make_error(errc::session_busy,
                               "a task is running (run " + st.info.running
                                 + "): wait for it or cancel it first");
      auto text = orch::text::trimmed(msg.text);
      if (text.empty())
        return caf::make_error(errc::invalid_request, "the message is empty");
      // Per-message overrides, for this run only.
      if (!msg.workflow.empty()
          && st.cfg->find_workflow(msg.workflow) == nullptr)
        return caf::make_error(
          errc::unknown_name, "unknown workflow '" + msg.workflow + "' (known: "
                                + known_workflows(*st.cfg) + ")");
      if (msg.max_iterations < 0)
        return caf::make_error(errc::invalid_request,
                               "max_iterations must be positive");
      session_submitted out;
      bool followup = false;
      switch (msg.mode) {
        case followup_mode::followup:
          if (!st.context.has_previous)
            return caf::make_error(errc::invalid_request,
                                   "no previous task to follow up in this "
                                   "session");
          followup = true;
          out.reason = "follow-up requested";
          break;
        case followup_mode::new_task:
          out.reason = "new task requested";
          break;
        case followup_mode::detect: {
          auto d = detect_followup(text, st.context.has_previous);
          out.reason = d.reason;
          if (d.verdict == followup_verdict::ambiguous) {
            counters().add(counter::session_messages, "ambiguous");
            out.kind = message_kind::ambiguous;
            out.workflow = msg.workflow.empty() ? st.info.workflow
                                                : msg.workflow;
            out.agent = msg.agents.empty() ? st.info.agent : msg.agents;
            out.workspace = st.info.workspace;
            return out;
          }
          followup = d.verdict == followup_verdict::followup;
          break;
        }
      }
      out.kind = followup ? message_kind::followup : message_kind::new_task;
      counters().add(counter::session_messages,
                     followup ? "followup" : "new_task");
      run_spec spec;
      spec.task = followup ? followup_task(st.context, text) : text;
      spec.workflow = msg.workflow.empty() ? st.info.workflow : msg.workflow;
      spec.agents = msg.agents.empty() ? st.info.agent : msg.agents;
      spec.max_iterations = msg.max_iterations;
      spec.no_cache = msg.no_cache;
      spec.workspace = st.info.workspace;
      spec.user = st.deps.user;
      spec.followup = followup;
      out.task = spec.task;
      out.workspace = spec.workspace;
      out.workflow = spec.workflow;
      out.agent = spec.agents;
      // Busy from now: a second message waits for this one.
      st.info.running = submitting;
      st.running_words = text;
      st.running_followup = followup;
      auto rp = self->make_response_promise<session_submitted>();
      auto sink = msg.progress;
      self->request(st.coordinator, caf::infinite, atom::submit_v, spec)
        .then(
          [self, rp, out, sink, text](std::string& run_id) mutable {
            auto& st = self->state;
            st.info.running = run_id;
            st.history.push_back(session_entry{
              "user", text, {}, iso_utc(now_ms(st.deps)), run_id});
            st.info.unsaved += 1;
            if (sink)
              self->send(st.coordinator, atom::subscribe_v, run_id, uint64_t{0},
                         sink);
            if (st.cancel_pending) {
              st.cancel_pending = false;
              self
                ->request(st.coordinator, caf::infinite, atom::cancel_v, run_id)
                .then([](bool) {
                  // nop: the run ends as cancelled
                });
            }
            self->request(st.coordinator, caf::infinite, atom::result_v, run_id)
              .then(
                [self, run_id](run_result& res) {
                  run_finished(self, run_id, std::move(res));
                },
                [self, run_id, wf = out.workflow](caf::error& e) {
                  run_result res;
                  res.run_id = run_id;
                  res.status = run_status::failed;
                  res.message = "the run was lost: " + self->system().render(e);
                  res.workflow = wf;
                  res.workspace = self->state.info.workspace;
                  run_finished(self, run_id, std::move(res));
                });
            out.run_id = run_id;
            rp.deliver(out);
          },
          [self, rp](caf::error& e) mutable {
            auto& st = self->state;
            st.info.running.clear();
            st.running_words.clear();
            st.running_followup = false;
            st.cancel_pending = false;
            rp.deliver(std::move(e));
          });
      return rp;
    },
    [self](atom::result, const std::string& run_id) -> caf::result<run_result> {
      auto& st = self->state;
      if (auto i = st.finished.find(run_id); i != st.finished.end())
        return i->second;
      if (run_id.empty() || st.info.running != run_id)
        return unknown_run_error(run_id, "in this session");
      auto rp = self->make_response_promise<run_result>();
      st.waiters[run_id].push_back(rp);
      return rp;
    },
    [self](atom::cancel) -> caf::result<bool> {
      auto& st = self->state;
      if (st.info.running.empty())
        return false;
      if (st.info.running == submitting) {
        st.cancel_pending = true;
        return true;
      }
      return self->delegate(st.coordinator, atom::cancel_v, st.info.running);
    },
    [self](atom::history) -> std::vector<session_entry> {
      return self->state.history;
    },
    [self](atom::context) -> session_context {
      return self->state.context;
    },
    [self](atom::info) -> session_info {
      return refresh(self);
    },
    [self](atom::set_workflow,
           const std::string& name) -> caf::result<session_info> {
      auto& st = self->state;
      if (st.cfg->find_workflow(name) == nullptr)
        return caf::make_error(errc::unknown_name,
                               "unknown workflow '" + name + "' (known: "
                                 + known_workflows(*st.cfg) + ")");
      st.info.workflow = name;
      return refresh(self);
    },
    [self](atom::set_agent,
           const std::string& name) -> caf::result<session_info> {
      auto& st = self->state;
      if (!name.empty()) {
        auto* agent = st.cfg->find_agent(name);
        if (agent == nullptr)
          return caf::make_error(errc::unknown_name,
                                 "unknown agent '" + name + "' (known: "
                                   + known_agents(*st.cfg) + ")");
        if (!agent->enabled)
          return caf::make_error(errc::agent_unavailable,
                                 "agent " + name + " is disabled");
      }
      st.info.agent = name;
      return refresh(self);
    },
    [self](atom::reset) -> caf::result<session_info> {
      auto& st = self->state;
      if (!st.info.running.empty())
        return caf::make_error(errc::session_busy,
                               "a task is running (run " + st.info.running
                                 + "): cancel it before /reset");
      st.history.clear();
      st.context = session_context{};
      st.info.unsaved = 0;
      return refresh(self);
    },
    [self](atom::save, const std::string& name,
           bool force) -> caf::result<std::string> {
      auto& st = self->state;
      auto target = !name.empty()           ? name
                    : !st.info.name.empty() ? st.info.name
                                            : st.info.session_id;
      session_store store{st.deps.state_dir};
      std::string error;
      if (!store.save(target, to_stored(st), force, error)) {
        counters().add(counter::session_store_errors, "save");
        return caf::make_error(errc::session_store_failed, error);
      }
      counters().add(counter::session_saves);
      audit({audit_kind::session_saved,
             st.context.run_id,
             st.info.agent,
             {},
             store.path_of(target).string(),
             {{"session_id", st.info.session_id},
              {"messages", std::to_string(st.history.size())}}});
      st.info.name = target;
      st.info.path = store.path_of(target).string();
      st.info.unsaved = 0;
      return st.info.path;
    },
    [self](atom::load, const std::string& name) -> caf::result<session_info> {
      auto& st = self->state;
      if (!st.info.running.empty())
        return caf::make_error(errc::session_busy,
                               "a task is running (run " + st.info.running
                                 + "): cancel it before /load");
      session_store store{st.deps.state_dir};
      std::string error;
      auto s = store.load(name, error);
      if (!s) {
        counters().add(counter::session_store_errors, "load");
        return caf::make_error(errc::session_store_failed, error);
      }
      st.info.session_id = s->session_id;
      st.info.created_at = s->created_at;
      st.info.workflow = s->workflow;
      st.info.agent = s->agent;
      st.info.workspace = s->workspace.empty()
                            ? default_workspace(*st.cfg, s->session_id)
                            : s->workspace;
      st.history.clear();
      for (auto& m : s->conversation_history)
        st.history.push_back(
          session_entry{m.role, m.content, m.files, m.timestamp, m.run_id});
      auto& c = s->context;
      st.context = session_context{
        c.has_previous, c.previous_task, c.summary,
        c.files,        c.workspace,     c.workflow,
        c.timestamp,    c.run_id,        status_from_text(c.status)};
      st.info.name = name;
      st.info.path = store.path_of(name).string();
      st.info.unsaved = 0;
      return refresh(self);
    },
  };
}

session_actor spawn_session(caf::actor_system& sys,
                            std::shared_ptr<const config> cfg,
                            coordinator_actor coordinator, session_deps deps) {
  return sys.spawn(session_impl, std::move(cfg), std::move(coordinator),
                   std::move(deps));
}

} // namespace orch
