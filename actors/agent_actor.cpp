#include "actors/agent_actor.hpp"

#include <algorithm>
#include <chrono>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/attribution.hpp"
#include "actors/cached_step.hpp"
#include "actors/step_plan.hpp"
#include "runtime/text.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

using worker_actor = caf::typed_actor<
  caf::replies_to<atom::run_step, step_request>::with<step_result>>;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

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

std::string first_line(const std::string& text, size_t max = 160) {
  return text::clip(std::string_view{text}.substr(0, text.find('\n')), max);
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

void start_next(agent_actor::stateful_pointer<agent_state> self);

void start(agent_actor::stateful_pointer<agent_state> self,
           agent_state::pending job) {
  auto& st = self->state;
  auto id = st.next_id++;
  auto token = std::make_shared<cancel_token>();
  st.running.emplace(id, agent_state::running_job{job.request.run_id, token});
  st.tokens->insert(token);
  worker_actor worker;
  if (st.deps.detached_workers)
    worker = self->spawn<caf::detached>(worker_impl, st.agent, st.adapt,
                                        st.deps, token);
  else
    worker = self->spawn(worker_impl, st.agent, st.adapt, st.deps, token);
  auto rp = job.promise;
  auto req = job.request;
  self->request(worker, caf::infinite, atom::run_step_v, job.request)
    .then(
      [=](step_result& res) mutable {
        self->state.running.erase(id);
        self->state.tokens->erase(token);
        rp.deliver(std::move(res));
        start_next(self);
      },
      [=](caf::error& err) mutable {
        // The worker died without an answer: report it as a crash.
        self->state.running.erase(id);
        self->state.tokens->erase(token);
        step_result res;
        res.agent = req.agent;
        res.task_kind = req.task_kind;
        res.iteration = req.iteration;
        res.step_index = req.step_index;
        res.outcome.failure = failure_kind::crashed;
        res.outcome.message = req.agent + ": worker failed: "
                              + self->system().render(err);
        rp.deliver(std::move(res));
        start_next(self);
      });
}

void start_next(agent_actor::stateful_pointer<agent_state> self) {
  auto& st = self->state;
  auto limit = static_cast<size_t>(std::max(1, st.agent.max_concurrency));
  while (!st.queue.empty() && st.running.size() < limit) {
    auto job = std::move(st.queue.front());
    st.queue.pop_front();
    start(self, std::move(job));
  }
}

/// Cancels the queued and running steps of `run_id` (all when null); steps
/// of other runs keep their places.
void cancel_run(agent_actor::stateful_pointer<agent_state> self,
                const std::string* run_id) {
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
  for (auto& job : dropped) {
    step_result res;
    res.agent = job.request.agent;
    res.task_kind = job.request.task_kind;
    res.iteration = job.request.iteration;
    res.step_index = job.request.step_index;
    res.outcome.failure = failure_kind::cancelled;
    res.outcome.message = job.request.agent + ": cancelled before start";
    job.promise.deliver(std::move(res));
  }
  for (auto& kvp : st.running)
    if (run_id == nullptr || kvp.second.run_id == *run_id)
      kvp.second.token->cancel();
}

} // namespace

step_result execute_step(const agent_config& agent, const adapter& adapt,
                         const agent_deps& deps, const step_request& req,
                         const cancel_token* cancel,
                         const file_snapshot* before_taken) {
  step_result res;
  res.agent = req.agent;
  res.task_kind = req.task_kind;
  res.iteration = req.iteration;
  res.step_index = req.step_index;
  res.started_ms = now_ms();
  auto t0 = std::chrono::steady_clock::now();
  workspace ws{req.workspace, req.run_id};
  file_snapshot taken;
  if (before_taken == nullptr)
    taken = snapshot_cache::shared().take(ws.root());
  const auto& before = before_taken ? *before_taken : taken;
  // The same plan `run --dry-run` prints (actors/step_plan.hpp).
  auto spec = plan_step(agent, adapt,
                        step_input{req.task_kind, req.prompt, req.workspace},
                        current_environment(), deps.settings)
                .spec;
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
      progress_event pe;
      pe.kind = progress_event::kind_t::agent_event;
      pe.run_id = req.run_id;
      pe.iteration = req.iteration;
      pe.step_index = req.step_index;
      pe.agent = req.agent;
      pe.task_kind = req.task_kind;
      pe.text = to_string(ev.kind) + ": "
                + first_line(ev.detail.empty() ? ev.text : ev.detail);
      caf::anon_send(req.progress, atom::progress_v, std::move(pe));
    }
  };
  auto proc = deps.runner->run(spec, on_line, cancel);
  res.outcome = parser->finish(proc);
  reported.insert(res.outcome.reported_files.begin(),
                  res.outcome.reported_files.end());
  // Files the agent wrote itself, success or not: nothing it made is lost.
  auto after = snapshot_cache::shared().take(ws.root());
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
  self->attach_functor([tokens = st.tokens](const caf::error&) {
    for (auto& token : *tokens)
      token->cancel();
  });
  return {
    [=](atom::run_step, step_request& req) -> caf::result<step_result> {
      auto rp = self->make_response_promise<step_result>();
      self->state.queue.push_back({std::move(req), rp});
      start_next(self);
      return rp;
    },
    [=](atom::cancel) {
      cancel_run(self, nullptr);
    },
    [=](atom::cancel, const std::string& run_id) {
      cancel_run(self, run_id.empty() ? nullptr : &run_id);
    },
  };
}

} // namespace orch
