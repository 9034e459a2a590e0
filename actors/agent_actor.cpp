#include "actors/agent_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/attribution.hpp"
#include "actors/cached_step.hpp"
#include "actors/step_plan.hpp"
#include "runtime/audit_log.hpp"
#include "runtime/clock.hpp"
#include "runtime/counters.hpp"
#include "runtime/logging.hpp"
#include "runtime/snapshot_watch.hpp"
#include "runtime/text.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

using worker_actor = caf::typed_actor<
  caf::replies_to<atom::run_step, step_request>::with<step_result>>;

/// Progress worth showing live: not every streamed token.
bool worth_reporting(const agent_event& ev) {
  switch (ev.kind) {
    case event_kind::tool_call:
    case event_kind::file_change:
    case event_kind::rate_limit:
    case event_kind::error:
    case event_kind::session_started:
      return true;
    default:
      return false;
  }
}

/// A worker runs exactly one invocation, then quits.
worker_actor::behavior_type
worker_impl(worker_actor::pointer self, agent_config agent,
            std::shared_ptr<const adapter> adapt, agent_deps deps,
            std::shared_ptr<cancel_token> cancel) {
  return {
    [=](atom::run_step, const step_request& req) -> caf::result<step_result> {
      // The step cache first (actors/cached_step.hpp): a hit runs nothing.
      if (uses_step_cache(deps, req))
        return run_cached_step(self, agent, adapt, deps, req, cancel);
      auto res = execute_step(agent, *adapt, deps, req, cancel.get());
      self->quit();
      return res;
    },
  };
}

using agent_self = agent_actor::stateful_pointer<agent_state>;

void start_next(agent_self self);
void run_on_idle_lane(agent_self self, uint64_t id, const step_request& req,
                      std::shared_ptr<cancel_token> token);

int64_t wall(const agent_state& st) {
  return st.deps.wall_clock ? st.deps.wall_clock() : wall_clock_ms();
}

/// A result for a step that did not run (or whose worker died).
step_result empty_result(const step_request& req, failure_kind kind,
                         std::string message) {
  auto res = result_for(req);
  res.started_ms = wall_clock_ms();
  res.outcome.failure = kind;
  res.outcome.message = std::move(message);
  return res;
}

attempt_record record_of(const std::string& agent, const step_result& res) {
  attempt_record rec;
  rec.agent = agent;
  rec.failure = res.outcome.ok ? failure_kind::none : res.outcome.failure;
  rec.message = res.outcome.ok ? std::string{}
                               : text::first_line(res.outcome.message, 300);
  rec.started_ms = res.started_ms;
  rec.duration_ms = res.duration_ms;
  rec.files = res.files;
  return rec;
}

/// Sends a step_notice (retry, quota wait, fallback) to the step's display.
void notice(const step_request& req, std::string text) {
  if (!req.progress)
    return;
  caf::anon_send(
    req.progress, atom::progress_v,
    event_for(req, progress_event::kind_t::step_notice, std::move(text)));
}

std::string seconds_text(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

/// Saves the breaker (when there is a state directory) and reports a
/// transition to the counters, the audit log and the log.
void breaker_changed(agent_self self, breaker_transition t, bool save) {
  auto& st = self->state;
  const auto& name = st.agent.name;
  const auto& snap = st.breaker.snapshot();
  switch (t) {
    case breaker_transition::none:
      break;
    case breaker_transition::opened:
      counters().add(counter::breaker_opened, name);
      audit({audit_kind::circuit_opened, {}, name, {}, snap.reason, {}});
      log().warn("breaker-open agent={} until_ms={} reason={}", name,
                 snap.open_until_ms, snap.reason);
      break;
    case breaker_transition::half_opened:
      counters().add(counter::breaker_half_opened, name);
      log().info("breaker-half-open agent={}", name);
      break;
    case breaker_transition::closed:
      counters().add(counter::breaker_closed, name);
      audit({audit_kind::circuit_closed, {}, name, {}, "closed", {}});
      log().info("breaker-closed agent={}", name);
      break;
  }
  if ((save || t != breaker_transition::none) && !st.deps.state_dir.empty()) {
    std::string error;
    if (!save_breaker(st.deps.state_dir, name, snap, error))
      log().warn("breaker-save-failed agent={} error={}", name, error);
  }
}

void attempt(agent_self self, uint64_t id);
void conclude(agent_self self, uint64_t id, step_result res);

void start(agent_self self, agent_state::pending job) {
  auto& st = self->state;
  auto id = st.next_id++;
  auto run_id = job.request.run_id;
  st.running.emplace(id, agent_state::running_job{std::move(run_id), nullptr,
                                                  std::move(job), false});
  attempt(self, id);
}

/// What to do after attempt `n` (1-based) failed: the delay before the next
/// one, or nothing (the step ends). Sets `text` for the display and may
/// rewrite the outcome's message (out of quota beyond the wait).
std::optional<int64_t> next_delay(agent_self self, int32_t n, step_result& res,
                                  std::string& text) {
  auto& st = self->state;
  const auto& policy = st.agent.retry;
  const auto& out = res.outcome;
  auto kind = out.failure;
  auto max = std::max(1, policy.attempts);
  auto backoff = [&] {
    auto full = static_cast<double>(policy.base.count());
    for (int32_t i = 1; i < n && full < static_cast<double>(policy.cap.count());
         ++i)
      full *= 2;
    full = std::min(full, static_cast<double>(policy.cap.count()));
    double r = st.deps.jitter ? st.deps.jitter() : 0.0;
    if (!st.deps.jitter) {
      static thread_local std::mt19937_64 rng{std::random_device{}()};
      r = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
    }
    r = std::clamp(r, 0.0, 1.0);
    return static_cast<int64_t>(full * (1.0 - 0.5 * r));
  };
  auto reason = to_string(kind) + ": " + text::first_line(out.message, 120);
  if (kind == failure_kind::rate_limited && out.retry_at_ms > 0) {
    auto now = wall(st);
    auto wait = std::max<int64_t>(0, out.retry_at_ms - now);
    if (wait > st.deps.settings.max_quota_wait.count()) {
      res.outcome.message
        = st.agent.name + ": out of quota until "
          + format_wall_time(out.retry_at_ms, now) + " (in " + format_wait(wait)
          + ", beyond settings.max_quota_wait "
          + format_wait(st.deps.settings.max_quota_wait.count()) + ")\n"
          + out.message;
      return std::nullopt;
    }
    if (n >= max)
      return std::nullopt;
    text = "quota wait: retry " + std::to_string(n + 1) + "/"
           + std::to_string(max) + " at "
           + format_wall_time(out.retry_at_ms, now) + " (in "
           + seconds_text(wait) + ")";
    return wait;
  }
  bool again = retryable(kind) || kind == failure_kind::rate_limited;
  if (!again || n >= max)
    return std::nullopt;
  auto delay = backoff();
  text = "retry " + std::to_string(n + 1) + "/" + std::to_string(max) + " in "
         + seconds_text(delay) + " (" + reason + ")";
  return delay;
}

/// An attempt ended: tell the breaker, then retry, wait or conclude.
void attempt_done(agent_self self, uint64_t id, step_result res) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end())
    return;
  auto& rj = it->second;
  if (rj.token) {
    st.tokens->erase(rj.token);
    rj.token = nullptr;
  }
  auto now = wall(st);
  const auto& out = res.outcome;
  if (out.ok) {
    breaker_changed(self, st.breaker.on_success(now), false);
    conclude(self, id, std::move(res));
    return;
  }
  if (out.failure == failure_kind::cancelled) {
    st.breaker.end_trial();
    conclude(self, id, std::move(res));
    return;
  }
  auto n = static_cast<int32_t>(rj.job.attempts.size()) + 1;
  std::string text;
  auto delay = next_delay(self, n, res, text);
  // A quota reset beyond the wait keeps the breaker open until then.
  int64_t open_until = 0;
  if (!delay && out.failure == failure_kind::rate_limited
      && out.retry_at_ms > now)
    open_until = out.retry_at_ms;
  auto t = st.breaker.on_failure(out.failure, out.message, now, open_until);
  breaker_changed(self, t, counts_for_breaker(out.failure));
  // An open breaker would refuse the retry: end now (and fall back).
  if (st.breaker.snapshot().state == breaker_state::open
      && st.breaker.snapshot().open_until_ms > now + delay.value_or(0))
    delay = std::nullopt;
  if (!delay) {
    conclude(self, id, std::move(res));
    return;
  }
  // A quota wait is counted as such, not as a retry.
  bool quota = out.failure == failure_kind::rate_limited && out.retry_at_ms > 0;
  counters().add(quota ? counter::quota_waits : counter::retries,
                 st.agent.name);
  log().info("step-retry id={} agent={} step={} attempt={} delay_ms={} "
             "failure={}",
             rj.job.request.run_id, st.agent.name,
             rj.job.request.step_index + 1, n + 1, *delay,
             to_string(out.failure));
  rj.job.attempts.push_back(record_of(st.agent.name, res));
  rj.waiting = true;
  // A fallback's retry names the agent that really waits.
  if (st.agent.name != rj.job.request.agent)
    text = st.agent.name + ": " + text;
  notice(rj.job.request, text);
  self->delayed_send(self, std::chrono::milliseconds{*delay}, atom::retry_v,
                     id);
}

/// Runs one attempt of step `id`, unless the breaker refuses it.
void attempt(agent_self self, uint64_t id) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end())
    return;
  auto& rj = it->second;
  rj.waiting = false;
  auto now = wall(st);
  breaker_transition t = breaker_transition::none;
  if (!st.breaker.allow(now, &t)) {
    counters().add(counter::breaker_refusals, st.agent.name);
    conclude(self, id,
             empty_result(rj.job.request, failure_kind::circuit_open,
                          st.agent.name + ": " + st.breaker.refusal(now)));
    return;
  }
  breaker_changed(self, t, false);
  auto token = std::make_shared<cancel_token>();
  rj.token = token;
  st.tokens->insert(token);
  auto req = rj.job.request;
  if (st.deps.detached_workers && !uses_step_cache(st.deps, req)) {
    run_on_idle_lane(self, id, req, token);
    return;
  }
  worker_actor worker;
  if (st.deps.detached_workers)
    worker = self->spawn<caf::detached>(worker_impl, st.agent, st.adapt,
                                        st.deps, token);
  else
    worker = self->spawn(worker_impl, st.agent, st.adapt, st.deps, token);
  self->request(worker, caf::infinite, atom::run_step_v, rj.job.request)
    .then(
      [=](step_result& res) {
        attempt_done(self, id, std::move(res));
      },
      [=](caf::error& err) {
        // The worker died without an answer: report it as a crash.
        attempt_done(self, id,
                     empty_result(req, failure_kind::crashed,
                                  req.agent + ": worker failed: "
                                    + self->system().render(err)));
      });
}

/// Idle lanes kept for the next steps; more are ended.
constexpr size_t k_max_idle_lanes = 4;

/// Runs the uncached step `req` (running job `id`) on an idle lane, or a
/// new one: a thread reused step after step instead of one started per
/// step. The lane goes back to the idle ones afterwards.
void run_on_idle_lane(agent_self self, uint64_t id, const step_request& req,
                      std::shared_ptr<cancel_token> token) {
  auto& st = self->state;
  blocking_lane lane;
  if (st.idle_lanes.empty()) {
    lane = self->spawn<caf::detached>(blocking_lane_impl);
    st.lanes->insert(lane);
  } else {
    lane = std::move(st.idle_lanes.back());
    st.idle_lanes.pop_back();
  }
  auto res = std::make_shared<step_result>();
  auto agent = st.agent;
  auto adapt = st.adapt;
  auto deps = st.deps;
  run_on_lane(
    self, lane,
    [res, agent, adapt, deps, req, token] {
      *res = execute_step(agent, *adapt, deps, req, token.get());
    },
    [self, id, req, res, lane](const std::string& failed) {
      auto& st = self->state;
      if (failed.empty() && st.idle_lanes.size() < k_max_idle_lanes) {
        st.idle_lanes.push_back(lane);
      } else {
        st.lanes->erase(lane);
        caf::anon_send_exit(lane, caf::exit_reason::user_shutdown);
      }
      if (!failed.empty()) {
        // The job threw or its thread died: report it as a crash.
        attempt_done(self, id,
                     empty_result(req, failure_kind::crashed,
                                  req.agent + ": worker failed: " + failed));
        return;
      }
      attempt_done(self, id, std::move(*res));
    });
}

/// The agent actor of a fallback, if it is still there.
agent_actor peer(const agent_state& st, const std::string& name) {
  if (!st.deps.peers)
    return {};
  auto it = st.deps.peers->find(name);
  if (it == st.deps.peers->end())
    return {};
  return caf::actor_cast<agent_actor>(it->second);
}

/// Hands the step to the fallback agents from `index` on, in order, until
/// one runs it or fails for a reason that is not a fallback's.
void fall_back(agent_self self, step_request req,
               caf::typed_response_promise<step_result> rp,
               std::vector<attempt_record> attempts, step_result last,
               std::string reason, size_t index) {
  auto& st = self->state;
  const auto& list = st.agent.fallback;
  for (; index < list.size(); ++index) {
    auto hdl = peer(st, list[index]);
    if (!hdl) {
      log().warn("fallback-skipped agent={} fallback={} reason=not running",
                 st.agent.name, list[index]);
      continue;
    }
    auto name = list[index];
    counters().add(counter::fallbacks, st.agent.name);
    log().info("step-fallback id={} agent={} fallback={} reason={}", req.run_id,
               st.agent.name, name, reason);
    notice(req, "falling back to " + name + " (" + reason + ")");
    auto fwd = req;
    fwd.fallback_of = st.agent.name;
    self->request(hdl, caf::infinite, atom::run_step_v, std::move(fwd))
      .then(
        [=](step_result& res) mutable {
          auto all = attempts;
          if (res.attempts.empty())
            all.push_back(record_of(name, res));
          else
            all.insert(all.end(), res.attempts.begin(), res.attempts.end());
          if (!res.outcome.ok && falls_back(res.outcome.failure)
              && index + 1 < self->state.agent.fallback.size()) {
            fall_back(self, req, rp, std::move(all), std::move(res), reason,
                      index + 1);
            return;
          }
          res.attempts = std::move(all);
          res.started_ms = res.attempts.front().started_ms;
          res.duration_ms = std::max<int64_t>(res.duration_ms,
                                              wall_clock_ms() - res.started_ms);
          res.agent = req.agent;
          if (res.ran_as.empty())
            res.ran_as = name;
          res.fallback_reason = reason;
          rp.deliver(std::move(res));
        },
        [=](caf::error& err) mutable {
          auto res = empty_result(
            req, failure_kind::crashed,
            name + ": agent actor failed: " + self->system().render(err));
          res.ran_as = name;
          auto all = attempts;
          all.push_back(record_of(name, res));
          if (index + 1 < self->state.agent.fallback.size()) {
            fall_back(self, req, rp, std::move(all), std::move(res), reason,
                      index + 1);
            return;
          }
          res.attempts = std::move(all);
          res.fallback_reason = reason;
          rp.deliver(std::move(res));
        });
    return;
  }
  // No fallback could take it: the last failure stands.
  if (last.attempts.empty() && attempts.size() > 1)
    last.attempts = std::move(attempts);
  rp.deliver(std::move(last));
}

/// Step `id` is over: answer it (or hand it to a fallback) and free its
/// slot.
void conclude(agent_self self, uint64_t id, step_result res) {
  auto& st = self->state;
  auto it = st.running.find(id);
  if (it == st.running.end())
    return;
  auto job = std::move(it->second.job);
  if (it->second.token)
    st.tokens->erase(it->second.token);
  st.running.erase(it);
  res.ran_as = st.agent.name;
  if (!job.attempts.empty()) {
    job.attempts.push_back(record_of(st.agent.name, res));
    // Files earlier attempts changed stay in the workspace: they are the
    // step's too.
    std::set<std::string> files;
    for (const auto& a : job.attempts)
      files.insert(a.files.begin(), a.files.end());
    res.files.assign(files.begin(), files.end());
    res.attempts = job.attempts;
    // The step took from its first attempt to its last, waits included.
    res.started_ms = job.attempts.front().started_ms;
    res.duration_ms = std::max<int64_t>(res.duration_ms,
                                        wall_clock_ms() - res.started_ms);
  }
  auto now = wall(st);
  bool open = st.breaker.snapshot().state == breaker_state::open
              && st.breaker.snapshot().open_until_ms > now;
  bool eligible = !res.outcome.ok
                  && res.outcome.failure != failure_kind::cancelled
                  && (falls_back(res.outcome.failure) || open)
                  && job.request.fallback_of.empty()
                  && !st.agent.fallback.empty();
  if (!eligible) {
    job.promise.deliver(std::move(res));
    start_next(self);
    return;
  }
  auto reason = open && !falls_back(res.outcome.failure)
                  ? st.agent.name + ": " + st.breaker.refusal(now)
                  : to_string(res.outcome.failure) + ": "
                      + text::first_line(res.outcome.message, 200);
  auto attempts = res.attempts.empty()
                    ? std::vector<attempt_record>{record_of(st.agent.name, res)}
                    : res.attempts;
  fall_back(self, job.request, job.promise, std::move(attempts), std::move(res),
            std::move(reason), 0);
  start_next(self);
}

void start_next(agent_self self) {
  auto& st = self->state;
  auto limit = static_cast<size_t>(std::max(1, st.agent.max_concurrency));
  while (!st.queue.empty() && st.running.size() < limit) {
    auto job = std::move(st.queue.front());
    st.queue.pop_front();
    start(self, std::move(job));
  }
}

/// Cancels the queued and running steps of `run_id` (all when null); steps
/// of other runs keep their places. Steps waiting for a retry end at once.
void cancel_run(agent_self self, const std::string* run_id) {
  auto& st = self->state;
  std::deque<agent_state::pending> keep;
  std::vector<agent_state::pending> dropped;
  for (auto& job : st.queue) {
    if (run_id == nullptr || job.request.run_id == *run_id)
      dropped.push_back(std::move(job));
    else
      keep.push_back(std::move(job));
  }
  st.queue = std::move(keep);
  for (auto& job : dropped)
    job.promise.deliver(
      empty_result(job.request, failure_kind::cancelled,
                   job.request.agent + ": cancelled before start"));
  std::vector<uint64_t> waiting;
  for (auto& kvp : st.running) {
    if (run_id != nullptr && kvp.second.run_id != *run_id)
      continue;
    if (kvp.second.waiting)
      waiting.push_back(kvp.first);
    else if (kvp.second.token)
      kvp.second.token->cancel();
  }
  for (auto id : waiting) {
    const auto& req = st.running.at(id).job.request;
    conclude(self, id,
             empty_result(req, failure_kind::cancelled,
                          req.agent + ": cancelled while waiting to retry"));
  }
}

} // namespace

step_result execute_step(const agent_config& agent, const adapter& adapt,
                         const agent_deps& deps, const step_request& req,
                         const cancel_token* cancel,
                         const file_snapshot* before_taken) {
  auto res = result_for(req);
  res.started_ms = wall_clock_ms();
  auto t0 = std::chrono::steady_clock::now();
  workspace ws{req.workspace, req.run_id};
  std::shared_ptr<const file_snapshot> taken;
  if (before_taken == nullptr) {
    // Not walked again when nothing changed since the last snapshot of
    // this root (an inotify watch says so; runtime/snapshot_watch.hpp).
    taken = watched_snapshot_cache::shared().take(ws.root(), true);
  }
  const auto& before = before_taken ? *before_taken : *taken;
  // The same plan `run --dry-run` prints (actors/step_plan.hpp).
  auto spec = plan_step(agent, adapt,
                        step_input{req.task_kind, req.prompt, req.workspace},
                        current_environment(), deps.settings)
                .spec;
  res.argv_sha256 = argv_sha256(spec.argv);
  auto parser = adapt.make_parser();
  std::vector<agent_event> events;
  // What the CLI says it changed, as it spelled it (normalised below).
  std::set<std::string> reported;
  auto on_line = [&](output_stream stream, std::string_view line) {
    if (stream != output_stream::out)
      return;
    events.clear();
    parser->feed(line, events);
    for (auto& ev : events)
      if (ev.kind == event_kind::file_change && reported.size() < 10000)
        reported.insert(ev.detail);
    if (!req.progress)
      return;
    for (auto& ev : events) {
      if (!worth_reporting(ev))
        continue;
      caf::anon_send(
        req.progress, atom::progress_v,
        event_for(
          req, progress_event::kind_t::agent_event,
          to_string(ev.kind) + ": "
            + text::first_line(ev.detail.empty() ? ev.text : ev.detail, 160)));
    }
  };
  auto proc = deps.runner->run(spec, on_line, cancel);
  res.outcome = parser->finish(proc);
  reported.insert(res.outcome.reported_files.begin(),
                  res.outcome.reported_files.end());
  // Files the agent wrote itself, success or not: nothing it made is lost.
  auto after_shared = watched_snapshot_cache::shared().take(ws.root(), false);
  const auto& after = *after_shared;
  auto files = changed_files(before, after);
  res.deleted = removed_files(before, after);
  std::set<std::string> all{files.begin(), files.end()};
  // Claims for attribution in a parallel group: what the CLI reported and
  // what we write from its answer.
  std::set<std::string> claimed;
  for (const auto& path : reported)
    if (auto rel = workspace_relative(ws.root(), path))
      claimed.insert(std::move(*rel));
  if (res.outcome.ok && !req.review) {
    for (auto& block : extract_code_blocks(res.outcome.final_text)) {
      auto out = ws.write(block.path, block.content);
      if (!out.backup.empty())
        res.backups.push_back(out.backup);
      if (out.written) {
        all.insert(out.path);
        claimed.insert(out.path);
      } else if (out.reason != "unchanged") {
        res.refused.push_back(refused_path{block.path, out.reason});
      }
    }
  }
  if (res.outcome.ok && req.review)
    res.findings = parse_findings(res.outcome.final_text);
  res.files.assign(all.begin(), all.end());
  res.reported_files.assign(claimed.begin(), claimed.end());
  // What the next step's prompt lists: the snapshot after the agent and
  // the files written from its answer since.
  res.workspace_files = workspace_listing(after, res.files);
  res.listed = true;
  res.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  return res;
}

agent_actor::behavior_type
agent_impl(agent_actor::stateful_pointer<agent_state> self, agent_config agent,
           agent_deps deps) {
  auto& st = self->state;
  st.adapt = make_adapter(agent.kind);
  st.agent = std::move(agent);
  st.deps = std::move(deps);
  breaker_snapshot saved;
  if (!st.deps.state_dir.empty()) {
    std::string error;
    if (auto snap = load_breaker(st.deps.state_dir, st.agent.name, error))
      saved = std::move(*snap);
    else if (!error.empty())
      log().warn("breaker-load-failed agent={} error={}", st.agent.name, error);
  }
  st.breaker = circuit_breaker{st.agent.circuit_breaker, std::move(saved)};
  self->attach_functor(
    [tokens = st.tokens, lanes = st.lanes](const caf::error&) {
      for (auto& token : *tokens)
        token->cancel();
      for (auto& lane : *lanes)
        caf::anon_send_exit(lane, caf::exit_reason::user_shutdown);
    });
  return {
    [=](atom::run_step, step_request& req) -> caf::result<step_result> {
      auto rp = self->make_response_promise<step_result>();
      self->state.queue.push_back({std::move(req), rp, {}});
      start_next(self);
      return rp;
    },
    [=](atom::cancel) {
      cancel_run(self, nullptr);
    },
    [=](atom::cancel, const std::string& run_id) {
      cancel_run(self, run_id.empty() ? nullptr : &run_id);
    },
    [=](atom::retry, uint64_t id) {
      auto it = self->state.running.find(id);
      if (it != self->state.running.end() && it->second.waiting)
        attempt(self, id);
    },
  };
}

} // namespace orch
