#include "actors/coordinator.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/agent_actor.hpp"
#include "actors/agent_probe.hpp"
#include "actors/cache_actor.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/run_audit.hpp"
#include "actors/run_report.hpp"
#include "actors/workflow_actor.hpp"
#include "runtime/audit_log.hpp"
#include "runtime/clock.hpp"
#include "runtime/text.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

using coordinator_self = coordinator_actor::stateful_pointer<coordinator_state>;

/// Applies `--agents` to this run's copy of the workflow: one name replaces
/// every item's agent; N names, one per item in order. Returns an error
/// message or "".
std::string override_agents(const config& cfg, workflow_config& wf,
                            const std::string& csv) {
  auto names = text::split_list(csv);
  size_t items = 0;
  for (auto& step : wf.steps)
    items += step.items.size();
  if (names.empty())
    return "--agents: no agent names given";
  if (names.size() != 1 && names.size() != items)
    return "--agents: give one agent for every step, or "
           + std::to_string(items) + " (one per step of workflow '" + wf.name
           + "': " + describe_steps(wf) + "), not "
           + std::to_string(names.size());
  for (auto& n : names) {
    auto agent = cfg.find_agent(n);
    if (agent == nullptr) {
      std::string known;
      for (auto& a : cfg.agents)
        known += (known.empty() ? "" : ", ") + a.name;
      return "--agents: unknown agent '" + n + "' (known: " + known + ")";
    }
    if (!agent->enabled)
      return "--agents: agent '" + n + "' is disabled in the config";
  }
  size_t k = 0;
  for (auto& step : wf.steps)
    for (auto& item : step.items)
      item.agent = names.size() == 1 ? names[0] : names[k++];
  return {};
}

caf::error task_error(const config& cfg, const std::string& task) {
  if (task.find_first_not_of(" \t\r\n") == std::string::npos)
    return caf::make_error(errc::invalid_request, "the task text is empty");
  if (task.size() > cfg.settings.max_task_chars)
    return caf::make_error(errc::invalid_request,
                           "the task text has " + std::to_string(task.size())
                             + " bytes; the limit is "
                             + std::to_string(cfg.settings.max_task_chars)
                             + " (settings.max_task_chars)");
  if (task.find('\0') != std::string::npos)
    return caf::make_error(errc::invalid_request,
                           "the task text contains a NUL byte");
  return {};
}

/// Stamps `ev` with its run's next sequence number, keeps it for replay and
/// sends it to the run's and to the all-runs subscribers.
void fan_out(coordinator_self self, progress_event ev) {
  auto& st = self->state;
  auto it = st.runs.find(ev.run_id);
  if (it == st.runs.end())
    return;
  auto& run = it->second;
  if (ev.kind == progress_event::kind_t::run_started && !run.result)
    run.info.state = "running";
  ev.seq = run.next_seq++;
  if (st.deps.event_buffer > 0) {
    run.events.push_back(ev);
    while (run.events.size() > st.deps.event_buffer)
      run.events.pop_front();
  }
  for (auto& sink : run.subscribers)
    self->send(sink, atom::progress_v, ev);
  for (auto& sink : st.all_subscribers)
    self->send(sink, atom::progress_v, ev);
}

void start_waiting(coordinator_self self);

/// Records the end of run `id` (once): waiters get the result, the lock is
/// released, and old finished runs beyond the retention bound are dropped.
void run_done(coordinator_self self, const std::string& id, run_result res) {
  auto& st = self->state;
  auto it = st.runs.find(id);
  if (it == st.runs.end() || it->second.result)
    return;
  auto& run = it->second;
  run.info.state = "finished";
  run.info.status = res.status;
  if (run.actor) {
    st.run_of_actor.erase(run.actor.address());
    --st.active;
  }
  audit_run_end(run.user, res);
  // On disk at the end of each run (an fsync: on a worker).
  run_blocking(
    self, st.deps.detached_workers,
    [] {
      audit_sync();
    },
    [](const std::string&) {});
  run.result = std::move(res);
  run.lock.reset();
  run.actor = nullptr;
  for (auto& rp : run.waiters)
    rp.deliver(*run.result);
  auto collected = !run.waiters.empty();
  run.waiters.clear();
  run.subscribers.clear();
  if (collected && st.deps.drop_collected)
    st.runs.erase(it);
  else
    st.finished.push_back(id);
  while (st.finished.size() > std::max<size_t>(1, st.deps.retained_runs)) {
    st.runs.erase(st.finished.front());
    st.finished.pop_front();
  }
  if (st.stopping) {
    auto busy = std::any_of(st.runs.begin(), st.runs.end(), [](auto& kvp) {
      return !kvp.second.result;
    });
    if (!busy)
      self->quit(*st.stopping);
    return;
  }
  start_waiting(self);
}

/// The run's workflow actor ended without a result: the run failed. Its
/// manifest is written (on a worker) before waiters hear of it.
void run_lost(coordinator_self self, const std::string& id,
              std::string reason) {
  auto& st = self->state;
  auto it = st.runs.find(id);
  if (it == st.runs.end() || it->second.result || !it->second.actor)
    return;
  auto& run = it->second;
  // No second report for this run while the manifest is written; its slot
  // is free.
  st.run_of_actor.erase(run.actor.address());
  --st.active;
  run.actor = nullptr;
  // Its steps may still be queued or running on the shared agents.
  for (auto& kvp : st.agents)
    self->send(kvp.second, atom::cancel_v, id);
  auto res = std::make_shared<run_result>();
  res->run_id = id;
  res->task = run.info.task;
  res->workflow = run.info.workflow;
  res->workspace = run.info.workspace;
  res->status = run_status::failed;
  res->message = "the run's workflow actor stopped: " + reason;
  res->duration_ms = wall_clock_ms() - run.info.started_ms;
  auto err = std::make_shared<std::string>();
  run_blocking(
    self, st.deps.detached_workers,
    [res, err] {
      write_manifest(*res, *err);
    },
    [self, res, err, id](const std::string& failed) {
      auto why = failed.empty() ? *err : failed;
      if (!why.empty())
        res->message += "; " + why;
      progress_event ev;
      ev.kind = progress_event::kind_t::run_finished;
      ev.run_id = id;
      ev.text = "failed: " + res->message;
      ev.ok = false;
      ev.elapsed_ms = res->duration_ms;
      fan_out(self, std::move(ev));
      run_done(self, id, std::move(*res));
    });
}

/// Adds the running actors of `agent`'s available fallbacks to `agents`
/// (so that a cancel of the run reaches them too); returns how many.
size_t add_fallbacks(coordinator_self self, const agent_config& agent,
                     std::map<std::string, agent_actor>& agents) {
  auto& st = self->state;
  size_t n = 0;
  for (const auto& name : agent.fallback) {
    auto fb = st.cfg->find_agent(name);
    auto actor = st.agents.find(name);
    if (fb == nullptr || actor == st.agents.end())
      continue;
    auto why = st.deps.check_agent ? st.deps.check_agent(*fb)
                                   : probe_agent(*fb);
    if (!why.empty())
      continue;
    agents.emplace(name, actor->second);
    ++n;
  }
  return n;
}

/// Spawns the workflow actor of the accepted run `id` and asks it to run.
void start_run(coordinator_self self, const std::string& id,
               std::map<std::string, agent_actor> agents, run_request req) {
  auto& st = self->state;
  auto it = st.runs.find(id);
  if (it == st.runs.end())
    return;
  auto& run = it->second;
  workflow_deps wdeps;
  wdeps.detached_workers = st.deps.detached_workers;
  run.actor = self->spawn<caf::monitored>(workflow_run_impl, st.cfg,
                                          std::move(agents), wdeps);
  ++st.active;
  st.run_of_actor.emplace(run.actor.address(), id);
  // No timeout: the workflow actor is monitored (run_lost), and its
  // request fails when it dies.
  self->request(run.actor, caf::infinite, atom::run_task_v, std::move(req))
    .then(
      [=](run_result& res) {
        run_done(self, id, std::move(res));
      },
      [=](caf::error& e) {
        run_lost(self, id, self->system().render(e));
      });
}

/// Starts waiting runs while there is room (deps.max_active_runs).
void start_waiting(coordinator_self self) {
  auto& st = self->state;
  while (
    !st.waiting.empty() && !st.stopping
    && (st.deps.max_active_runs == 0 || st.active < st.deps.max_active_runs)) {
    auto next = std::move(st.waiting.front());
    st.waiting.pop_front();
    start_run(self, next.id, std::move(next.agents), std::move(next.request));
  }
}

/// Ends the waiting (never started) run `id` as cancelled; returns false
/// when it is not waiting.
bool cancel_waiting(coordinator_self self, const std::string& id) {
  auto& st = self->state;
  auto pos = std::find_if(st.waiting.begin(), st.waiting.end(),
                          [&](const auto& w) {
                            return w.id == id;
                          });
  if (pos == st.waiting.end())
    return false;
  auto req = std::move(pos->request);
  st.waiting.erase(pos);
  auto it = st.runs.find(id);
  if (it == st.runs.end())
    return true;
  run_result res;
  res.run_id = id;
  res.task = std::move(req.task);
  res.workflow = req.workflow;
  res.workspace = req.workspace;
  res.status = run_status::cancelled;
  res.message = "cancelled before it started";
  res.duration_ms = wall_clock_ms() - it->second.info.started_ms;
  progress_event ev;
  ev.kind = progress_event::kind_t::run_finished;
  ev.run_id = id;
  ev.text = "cancelled: " + res.message;
  ev.ok = false;
  ev.elapsed_ms = res.duration_ms;
  fan_out(self, std::move(ev));
  run_done(self, id, std::move(res));
  return true;
}

/// Accepts the checked and admitted run `id`: the agents' availability,
/// the workspace and its lock, then the workflow actor.
caf::expected<std::string> accept(coordinator_self self, run_spec spec,
                                  const std::string& id,
                                  resolved_run resolved) {
  auto& st = self->state;
  const auto& cfg = *st.cfg;
  if (st.stopping)
    return caf::make_error(errc::invalid_request,
                           "the coordinator is shutting down");
  auto& wf = resolved.workflow;
  // -- availability ---------------------------------------------------------
  std::vector<std::string> missing;
  std::map<std::string, agent_actor> agents;
  for (auto& name : agents_of(wf)) {
    auto agent = cfg.find_agent(name);
    if (agent == nullptr) {
      missing.push_back(name + " (unknown agent)");
      continue;
    }
    auto why = st.deps.check_agent ? st.deps.check_agent(*agent)
                                   : probe_agent(*agent);
    if (why.empty() && !agent->enabled)
      why = "disabled";
    auto actor = st.agents.find(name);
    if (why.empty()) {
      if (actor != st.agents.end()) {
        agents.emplace(name, actor->second);
        add_fallbacks(self, *agent, agents);
        continue;
      }
      auto down = st.down_agents.find(name);
      why = down != st.down_agents.end()
              ? "agent actor is down: " + down->second
              : std::string{"no agent actor"};
    }
    // Not installed (or not authenticated, ...) but it has a fallback that
    // can run: its actor takes the step and hands it on (issue 12).
    if (actor != st.agents.end() && add_fallbacks(self, *agent, agents) > 0) {
      agents.emplace(name, actor->second);
      continue;
    }
    missing.push_back(name + " (" + why + ")");
  }
  if (!missing.empty()) {
    std::string text = "workflow '" + wf.name
                       + "' needs agents that are not available:";
    for (auto& m : missing)
      text += "\n  " + m;
    return caf::make_error(errc::agent_unavailable, text);
  }
  // -- the workspace --------------------------------------------------------
  const auto& ws_str = resolved.workspace;
  std::string err;
  if (!workspace{ws_str, id}.ensure(err))
    return caf::make_error(errc::workspace_failed,
                           "cannot create the workspace " + ws_str + ": "
                             + err);
  // One run per workspace, across processes too: held until the run ends.
  auto lock = workspace_lock::acquire(ws_str, id, err);
  if (!lock)
    return caf::make_error(errc::workspace_locked,
                           "cannot run in " + ws_str + ": " + err);
  // -- the run --------------------------------------------------------------
  auto& run = st.runs[id];
  run.info.run_id = id;
  run.info.workflow = wf.name;
  run.info.task = spec.task;
  run.info.workspace = ws_str;
  // Running once its existing files are saved (the run_started event).
  run.info.state = "queued";
  run.info.started_ms = wall_clock_ms();
  run.lock = std::make_shared<workspace_lock>(std::move(*lock));
  run.user = spec.user;
  audit_run_submitted(id, ws_str, wf.name, spec.user, spec.task);
  run_request req;
  req.run_id = id;
  req.task = std::move(spec.task);
  req.workflow = wf.name;
  req.workspace = ws_str;
  req.max_iterations = resolved.max_iterations;
  req.progress = caf::actor_cast<progress_sink>(self);
  req.workflow_def = std::move(wf);
  req.no_cache = spec.no_cache;
  req.followup = spec.followup;
  if (st.deps.max_active_runs > 0 && st.active >= st.deps.max_active_runs) {
    st.waiting.push_back({id, std::move(agents), std::move(req)});
    return id;
  }
  start_run(self, id, std::move(agents), std::move(req));
  return id;
}

caf::result<std::string> submit(coordinator_self self, run_spec spec) {
  auto& st = self->state;
  const auto& cfg = *st.cfg;
  if (st.stopping)
    return caf::make_error(errc::invalid_request,
                           "the coordinator is shutting down");
  auto id = make_run_id();
  auto resolved = resolve_run(cfg, spec, id);
  if (!resolved)
    return std::move(resolved.error());
  if (spec.user.empty())
    spec.user = st.os_user;
  if (!st.limiter) {
    auto res = accept(self, std::move(spec), id, std::move(*resolved));
    if (!res)
      return std::move(res.error());
    return std::move(*res);
  }
  // Over the limit: refused with the wait time before anything is spawned
  // or created.
  auto rp = self->make_response_promise<std::string>();
  auto user = spec.user;
  auto shared = std::make_shared<std::pair<run_spec, resolved_run>>(
    std::move(spec), std::move(*resolved));
  self->request(st.limiter, caf::infinite, atom::admit_v, user)
    .then(
      [self, rp, shared, id](admission& a) mutable {
        if (!a.admitted) {
          rp.deliver(caf::make_error(errc::rate_limited, a.message));
          return;
        }
        auto res = accept(self, std::move(shared->first), id,
                          std::move(shared->second));
        if (res)
          rp.deliver(std::move(*res));
        else
          rp.deliver(std::move(res.error()));
      },
      [self, rp](caf::error& e) mutable {
        rp.deliver(
          caf::make_error(errc::invalid_request, "the rate limiter failed: "
                                                   + self->system().render(e)));
      });
  return rp;
}

bool cancel_runs(coordinator_self self, const std::string& id) {
  auto& st = self->state;
  bool found = false;
  auto cancel = [&](coordinator_state::run_entry& run) {
    found = true;
    if (!run.result && run.actor)
      self->send(run.actor, atom::cancel_v);
  };
  // One run by id: found without a walk through every run (a batch that
  // stops cancels its runs one by one).
  if (id.empty()) {
    for (auto& kvp : st.runs)
      cancel(kvp.second);
  } else if (auto it = st.runs.find(id); it != st.runs.end()) {
    cancel(it->second);
  }
  // Waiting runs end at once (run_done may erase entries: not while
  // iterating the runs).
  if (id.empty()) {
    std::vector<std::string> ids;
    for (auto& w : st.waiting)
      ids.push_back(w.id);
    for (auto& x : ids)
      cancel_waiting(self, x);
  } else if (found) {
    cancel_waiting(self, id);
  }
  return found;
}

void subscribe(coordinator_self self, const std::string& id, uint64_t from,
               progress_sink sink) {
  auto& st = self->state;
  if (!sink)
    return;
  // A subscriber that goes away is dropped (see the down handler).
  self->monitor(sink);
  st.sink_addrs.insert(sink.address());
  auto replay = [&](coordinator_state::run_entry& run) {
    for (auto& ev : run.events)
      if (ev.seq > from)
        self->send(sink, atom::progress_v, ev);
  };
  if (id.empty()) {
    for (auto& kvp : st.runs)
      replay(kvp.second);
    if (std::find(st.all_subscribers.begin(), st.all_subscribers.end(), sink)
        == st.all_subscribers.end())
      st.all_subscribers.push_back(sink);
    return;
  }
  auto it = st.runs.find(id);
  if (it == st.runs.end())
    return;
  replay(it->second);
  auto& subs = it->second.subscribers;
  if (!it->second.result
      && std::find(subs.begin(), subs.end(), sink) == subs.end())
    subs.push_back(sink);
}

void unsubscribe(coordinator_self self, const std::string& id,
                 const progress_sink& sink) {
  auto& st = self->state;
  auto drop = [&](std::vector<progress_sink>& xs) {
    xs.erase(std::remove(xs.begin(), xs.end(), sink), xs.end());
  };
  if (id.empty()) {
    drop(st.all_subscribers);
    for (auto& kvp : st.runs)
      drop(kvp.second.subscribers);
    return;
  }
  if (auto it = st.runs.find(id); it != st.runs.end())
    drop(it->second.subscribers);
}

} // namespace

caf::expected<resolved_run> resolve_run(const config& cfg, const run_spec& spec,
                                        const std::string& run_id) {
  if (auto err = task_error(cfg, spec.task))
    return err;
  auto found = cfg.find_workflow(spec.workflow);
  if (found == nullptr) {
    std::string known;
    for (auto& wf : cfg.workflows)
      known += (known.empty() ? "" : ", ") + wf.name;
    return caf::make_error(errc::unknown_name, "unknown workflow '"
                                                 + spec.workflow
                                                 + "' (known: " + known + ")");
  }
  resolved_run out;
  // The run's own copy: the shared config is never rewritten.
  out.workflow = *found;
  if (!spec.agents.empty()) {
    auto err = override_agents(cfg, out.workflow, spec.agents);
    if (!err.empty())
      return caf::make_error(errc::invalid_request, err);
  }
  if (out.workflow.steps.empty())
    return caf::make_error(errc::invalid_request,
                           "workflow '" + out.workflow.name + "' has no steps");
  out.max_iterations = spec.max_iterations > 0 ? spec.max_iterations
                                               : out.workflow.max_iterations;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path path = spec.workspace.empty()
                    ? fs::path{cfg.settings.workspace_dir} / run_id
                    : fs::path{spec.workspace};
  path = fs::absolute(path, ec).lexically_normal();
  out.workspace = path.string();
  while (out.workspace.size() > 1 && out.workspace.back() == '/')
    out.workspace.pop_back();
  return out;
}

std::string probe_agent(const agent_config& agent) {
  const char* home = std::getenv("HOME");
  auto st = check_agent(agent, current_environment(), home ? home : "");
  if (!st.enabled)
    return "disabled: " + st.detail;
  if (!st.installed)
    return "not installed: " + st.detail;
  return {};
}

std::string error_text(const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.match_elements<std::string>())
    return ctx.get_as<std::string>(0);
  return to_string(err);
}

caf::error unknown_run_error(std::string_view id, std::string_view where) {
  auto text = "no run " + text::clip(text::to_valid_utf8(id), 80);
  if (!where.empty())
    text.append(" ").append(where);
  return caf::make_error(errc::unknown_run, std::move(text));
}

std::string make_run_id() {
  // A counter from a random start: unique within the process, growing, so
  // ids of one millisecond still sort in creation order.
  static std::atomic<uint32_t> counter{[] {
    std::random_device rd;
    return static_cast<uint32_t>(rd() & 0x7fffffu);
  }()};
  static std::atomic<int64_t> last_ms{0};
  // The wall clock may step back: never go below the last id's time.
  auto ms = wall_clock_ms();
  auto prev = last_ms.load();
  while (ms > prev && !last_ms.compare_exchange_weak(prev, ms)) {
    // retry
  }
  ms = std::max(ms, last_ms.load());
  auto n = counter.fetch_add(1) & 0xffffffu;
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  char out[64];
  std::snprintf(out, sizeof(out), "%s-%03d-%06x", stamp,
                static_cast<int>(ms % 1000), static_cast<unsigned>(n));
  return out;
}

coordinator_actor::behavior_type
coordinator_impl(coordinator_actor::stateful_pointer<coordinator_state> self,
                 std::shared_ptr<const config> cfg, coordinator_deps deps) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.deps = std::move(deps);
  // One actor per enabled agent, shared by every run: an agent's
  // max_concurrency holds across runs.
  agent_deps adeps;
  adeps.runner = st.deps.runner;
  adeps.settings = st.cfg->settings;
  adeps.detached_workers = st.deps.detached_workers;
  adeps.state_dir = st.deps.state_dir;
  adeps.wall_clock = st.deps.wall_clock;
  adeps.jitter = st.deps.jitter;
  // Fallbacks: every agent may hand a step to the others by name.
  auto peers = std::make_shared<std::map<std::string, caf::actor_addr>>();
  adeps.peers = peers;
  if (st.cfg->settings.cache.enabled && !st.deps.state_dir.empty()) {
    cache_deps cdeps;
    cdeps.settings = st.cfg->settings.cache;
    cdeps.state_dir = st.deps.state_dir;
    // Its own thread when blocking is allowed: it reads and writes files.
    st.cache = st.deps.detached_workers
                 ? self->spawn<caf::detached>(cache_impl, cdeps)
                 : self->spawn(cache_impl, cdeps);
    adeps.cache = st.cache;
  }
  for (auto& agent : st.cfg->agents)
    if (agent.enabled)
      st.agents.emplace(agent.name,
                        self->spawn<caf::monitored>(agent_impl, agent, adeps));
  st.os_user = os_user_name();
  if (st.cfg->rate_limiting.enabled) {
    rate_limiter_deps ldeps{st.deps.limit_store, st.deps.limit_clock};
    // A shared store blocks on its file lock: off the scheduler's threads.
    if (st.deps.detached_workers)
      st.limiter = self->spawn<caf::detached>(
        rate_limiter_impl, st.cfg->rate_limiting, std::move(ldeps));
    else
      st.limiter = self->spawn(rate_limiter_impl, st.cfg->rate_limiting,
                               std::move(ldeps));
  }
  for (auto& kvp : st.agents)
    peers->emplace(kvp.first, kvp.second.address());
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    auto reason = dm.reason ? self->system().render(dm.reason)
                            : std::string{"exited normally"};
    for (auto it = st.agents.begin(); it != st.agents.end();) {
      if (it->second.address() == dm.source) {
        st.down_agents[it->first] = reason;
        it = st.agents.erase(it);
      } else {
        ++it;
      }
    }
    // Only a subscriber's death needs the search through every run.
    if (st.sink_addrs.erase(dm.source) > 0) {
      auto gone = [&](const progress_sink& sink) {
        return sink.address() == dm.source;
      };
      auto& all = st.all_subscribers;
      all.erase(std::remove_if(all.begin(), all.end(), gone), all.end());
      for (auto& kvp : st.runs) {
        auto& subs = kvp.second.subscribers;
        subs.erase(std::remove_if(subs.begin(), subs.end(), gone), subs.end());
      }
    }
    auto lost = st.run_of_actor.find(dm.source);
    if (lost != st.run_of_actor.end()) {
      auto id = lost->second;
      auto it = st.runs.find(id);
      if (it != st.runs.end() && !it->second.result)
        run_lost(self, id, reason);
    }
  });
  // An exit request (not kill) lets the runs end as cancelled first. The
  // coordinator links to nobody, so every exit message is such a request.
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto& st = self->state;
    if (st.stopping)
      return;
    st.stopping = em.reason;
    // Never started: cancelled at once.
    std::vector<std::string> ids;
    for (auto& w : st.waiting)
      ids.push_back(w.id);
    for (auto& x : ids)
      cancel_waiting(self, x);
    auto busy = false;
    for (auto& kvp : st.runs)
      if (!kvp.second.result) {
        busy = true;
        if (kvp.second.actor)
          self->send(kvp.second.actor, atom::cancel_v);
      }
    if (!busy)
      self->quit(em.reason);
  });
  if (st.cache)
    self->attach_functor([cache = st.cache](const caf::error&) {
      caf::anon_send_exit(cache, caf::exit_reason::user_shutdown);
    });
  // Children stop with the coordinator: steps are cancelled first.
  self->attach_functor(
    [agents = st.agents, limiter = st.limiter](const caf::error&) {
      for (auto& kvp : agents) {
        caf::anon_send(kvp.second, atom::cancel_v);
        caf::anon_send_exit(kvp.second, caf::exit_reason::user_shutdown);
      }
      if (limiter)
        caf::anon_send_exit(limiter, caf::exit_reason::user_shutdown);
    });
  return {
    [=](atom::submit, run_spec& spec) -> caf::result<std::string> {
      return submit(self, std::move(spec));
    },
    [=](atom::result, const std::string& id) -> caf::result<run_result> {
      auto& st = self->state;
      auto it = st.runs.find(id);
      if (it == st.runs.end())
        return unknown_run_error(id);
      if (it->second.result) {
        if (!st.deps.drop_collected)
          return *it->second.result;
        // Asked once: forgotten (see coordinator_deps::drop_collected).
        auto res = std::move(*it->second.result);
        st.runs.erase(it);
        auto& fin = st.finished;
        fin.erase(std::remove(fin.begin(), fin.end(), id), fin.end());
        return res;
      }
      auto rp = self->make_response_promise<run_result>();
      it->second.waiters.push_back(rp);
      return rp;
    },
    [=](atom::list) {
      std::vector<run_info> out;
      for (auto& kvp : self->state.runs)
        out.push_back(kvp.second.info);
      return out;
    },
    [=](atom::status, const std::string& id) -> caf::result<run_info> {
      auto& st = self->state;
      auto it = st.runs.find(id);
      if (it == st.runs.end())
        return unknown_run_error(id);
      return it->second.info;
    },
    [=](atom::cancel, const std::string& id) {
      return cancel_runs(self, id);
    },
    [=](atom::subscribe, const std::string& id, uint64_t from,
        progress_sink sink) {
      subscribe(self, id, from, std::move(sink));
    },
    [=](atom::unsubscribe, const std::string& id, const progress_sink& sink) {
      unsubscribe(self, id, sink);
    },
    [=](atom::progress, progress_event& ev) {
      fan_out(self, std::move(ev));
    },
    [=](atom::node_info) {
      // The agents run here.
      return std::vector<node_report>{};
    },
  };
}

coordinator_actor spawn_coordinator(caf::actor_system& sys,
                                    std::shared_ptr<const config> cfg,
                                    coordinator_deps deps) {
  return sys.spawn(coordinator_impl, std::move(cfg), std::move(deps));
}

} // namespace orch
