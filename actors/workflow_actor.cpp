#include "actors/workflow_actor.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <tuple>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/attribution.hpp"
#include "actors/run_report.hpp"
#include "actors/step_output.hpp"
#include "runtime/logging.hpp"
#include "runtime/process.hpp"
#include "runtime/review.hpp"
#include "runtime/snapshot_watch.hpp"
#include "runtime/text.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

using workflow_self = workflow_actor::stateful_pointer<workflow_state>;

/// The run's lane for its blocking file work (made on first use): one
/// thread for the whole run, and its jobs never overlap.
const blocking_lane& lane_of(workflow_self self) {
  auto& st = self->state;
  if (!st.lane)
    st.lane = spawn_lane(self, st.deps.detached_workers);
  return st.lane;
}

/// The most a run copies of a workspace's existing files before it starts.
constexpr std::uintmax_t preserve_max_bytes = std::uintmax_t{1} << 30;

int64_t elapsed_ms(const workflow_state& st) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now() - st.started)
    .count();
}

void notify(workflow_self self, progress_event::kind_t kind,
            std::string agent = {}, std::string task = {},
            std::string text = {}, bool ok = true) {
  auto& st = self->state;
  if (!st.request.progress)
    return;
  progress_event ev;
  ev.kind = kind;
  ev.run_id = st.request.run_id;
  ev.iteration = st.iteration;
  ev.step_index = static_cast<int32_t>(st.step);
  ev.step_count = static_cast<int32_t>(st.workflow.steps.size());
  ev.agent = std::move(agent);
  ev.task_kind = std::move(task);
  ev.text = std::move(text);
  ev.ok = ok;
  ev.elapsed_ms = elapsed_ms(st);
  self->send(st.request.progress, atom::progress_v, std::move(ev));
}

/// Lists the workspace's files for a prompt (workspace_listing): from the
/// shared snapshot cache, which walks only when something changed since the
/// last snapshot of this root and keeps the result for the next step's
/// snapshot. Blocking: on the run's lane.
std::vector<std::string> list_files(const std::string& root) {
  return workspace_listing(*watched_snapshot_cache::shared().take(root, true));
}

/// Returns up to `max` of `xs` joined by ", ", then "and N more".
std::string some_of(const std::vector<std::string>& xs, size_t max = 5) {
  std::string out;
  for (size_t i = 0; i < xs.size() && i < max; ++i)
    out += (i == 0 ? "" : ", ") + xs[i];
  if (xs.size() > max)
    out += " and " + std::to_string(xs.size() - max) + " more";
  return out;
}

/// Returns the one-line outcome of a step for progress displays.
std::string step_summary(const config& cfg, const step_result& res) {
  std::string out;
  if (!res.outcome.ok) {
    out = to_string(res.outcome.failure) + ": "
          + text::first_line(res.outcome.message);
  } else {
    if (is_review_task(cfg, res.task_kind))
      out = std::to_string(res.findings.size()) + " finding(s)";
    if (!res.files.empty() || out.empty())
      out += (out.empty() ? "" : ", ") + std::to_string(res.files.size())
             + " file(s)";
    if (!res.refused.empty())
      out += ", " + std::to_string(res.refused.size()) + " path(s) refused";
  }
  if (res.cached)
    out = "cached, " + out;
  if (!res.conflicts.empty())
    out += "; conflict: also changed by another parallel item: "
           + some_of(res.conflicts);
  // Retries and fallbacks (issue 12).
  if (!res.ran_as.empty() && res.ran_as != res.agent)
    out += "; ran as " + res.ran_as + " ("
           + res.fallback_reason.substr(0, res.fallback_reason.find(':')) + ")";
  if (res.attempts.size() > 1)
    out += "; " + std::to_string(res.attempts.size()) + " attempts";
  return out;
}

void finish(workflow_self self, run_status status, std::string message) {
  auto& st = self->state;
  if (!st.running)
    return;
  st.running = false;
  st.result.status = status;
  st.result.message = std::move(message);
  if (!st.conflicts.empty())
    st.result.message += (st.result.message.empty() ? "" : "; ")
                         + std::to_string(st.conflicts.size())
                         + " file(s) changed by several parallel items at "
                           "once (last writer's content kept): "
                         + some_of(st.conflicts);
  // The final manifest supersedes one not written yet.
  st.manifest_due.reset();
  st.result.findings = st.open_findings;
  st.result.duration_ms = elapsed_ms(st);
  // The manifest is written off the scheduler's threads; the result goes
  // out once it is on disk (or known not to be).
  auto copy = std::make_shared<run_result>(st.result);
  auto err = std::make_shared<std::string>();
  run_on_lane(
    self, lane_of(self),
    [copy, err] {
      if (!write_manifest(*copy, *err) && err->empty())
        *err = "the manifest could not be written";
    },
    [self, err](const std::string& failed) {
      auto& st = self->state;
      auto why = !failed.empty() ? failed : *err;
      if (!why.empty())
        st.result.message += (st.result.message.empty() ? "" : "; ") + why;
      auto status = st.result.status;
      log().info(
        "run-end id={} workflow={} status={} duration_ms={} message={}",
        st.result.run_id, st.result.workflow, to_string(status),
        st.result.duration_ms, log_text(st.result.message));
      notify(self, progress_event::kind_t::run_finished, {}, {},
             to_string(status)
               + (st.result.message.empty() ? std::string{}
                                            : ": " + st.result.message),
             status != run_status::failed && status != run_status::cancelled);
      st.promise.deliver(st.result);
      self->quit();
    });
}

void run_step(workflow_self self);

void merge_step(workflow_self self);
void after_step(workflow_self self);

/// All items of the current step answered: long outputs go to files (on the
/// run's lane, as does a listing no item brought) before the step is merged
/// into the result.
void step_done(workflow_self self) {
  auto& st = self->state;
  // The listing the next step's prompt needs: the one a single item brought
  // along, else made in the same job as the long outputs (one trip to the
  // lane per step at most), unless no step can follow.
  bool more = st.step + 1 < st.workflow.steps.size()
              || (st.has_review && st.iteration < st.max_iterations);
  if (st.group.size() == 1 && st.group.front().listed)
    st.next_files = std::make_shared<std::vector<std::string>>(
      std::move(st.group.front().workspace_files));
  for (auto& res : st.group) {
    res.workspace_files.clear();
    res.listed = false;
  }
  bool need_listing = more && !st.next_files;
  bool long_output = std::any_of(st.group.begin(), st.group.end(),
                                 [](const auto& r) {
                                   return output_too_long(r);
                                 });
  if (!need_listing && !long_output) {
    merge_step(self);
    return;
  }
  auto group = std::make_shared<std::vector<step_result>>(std::move(st.group));
  auto workspace = st.request.workspace;
  auto run_id = st.request.run_id;
  auto files = need_listing ? std::make_shared<std::vector<std::string>>()
                            : nullptr;
  run_on_lane(
    self, lane_of(self),
    [group, workspace, run_id, files] {
      // A long output goes to a file and the result keeps an excerpt, so
      // the run result, the manifest and the next prompt stay small.
      for (size_t i = 0; i < group->size(); ++i) {
        std::string err;
        offload_output((*group)[i], workspace, run_id, i, err);
      }
      if (files)
        *files = list_files(workspace);
    },
    [self, group, files](const std::string& failed) {
      // A failed offload keeps the outputs whole: nothing is lost.
      auto& st = self->state;
      st.group = std::move(*group);
      if (files && failed.empty())
        st.next_files = files;
      merge_step(self);
    });
}

void merge_step(workflow_self self) {
  auto& st = self->state;
  auto& record = st.result.iterations.back();
  const auto& step = st.workflow.steps[st.step];
  // Items of a parallel group ran at once: their snapshot windows overlap.
  if (st.group.size() > 1)
    attribute_group(st.group);
  bool any_review = false;
  std::vector<finding> merged;
  // Index into record.steps (which grows below) of the first failure.
  size_t failed = SIZE_MAX;
  std::string outputs;
  std::set<std::string> files{st.result.files.begin(), st.result.files.end()};
  std::set<std::string> conflicts{st.conflicts.begin(), st.conflicts.end()};
  for (size_t i = 0; i < st.group.size(); ++i) {
    auto& res = st.group[i];
    st.result.tokens += res.outcome.tokens;
    files.insert(res.files.begin(), res.files.end());
    conflicts.insert(res.conflicts.begin(), res.conflicts.end());
    if (!res.outcome.ok && failed == SIZE_MAX)
      failed = record.steps.size() + i;
    if (is_review_task(*st.cfg, step.items[i].task)) {
      any_review = true;
      for (auto& f : res.findings)
        if (std::find(merged.begin(), merged.end(), f) == merged.end())
          merged.push_back(f);
    }
    if (!res.outcome.final_text.empty()) {
      if (!outputs.empty())
        outputs += "\n\n";
      if (st.group.size() > 1)
        outputs += "[" + res.agent + "]\n";
      outputs += res.outcome.final_text;
    }
  }
  for (auto& res : st.group)
    record.steps.push_back(std::move(res));
  st.group.clear();
  st.result.files.assign(files.begin(), files.end());
  st.conflicts.assign(conflicts.begin(), conflicts.end());
  st.previous_output = std::move(outputs);
  for (size_t i = record.steps.size() - step.items.size();
       i < record.steps.size(); ++i) {
    const auto& res = record.steps[i];
    log().log(res.outcome.ok ? spdlog::level::info : spdlog::level::warn,
              "step-end id={} iteration={} step={} agent={} task={} ok={} "
              "failure={} duration_ms={}",
              st.request.run_id, res.iteration, res.step_index + 1, res.agent,
              res.task_kind, res.outcome.ok, to_string(res.outcome.failure),
              res.duration_ms);
    notify(self, progress_event::kind_t::step_finished, res.agent,
           res.task_kind, step_summary(*st.cfg, res), res.outcome.ok);
  }
  if (failed != SIZE_MAX) {
    const auto& bad = record.steps[failed];
    auto cancelled = bad.outcome.failure == failure_kind::cancelled;
    finish(self, cancelled ? run_status::cancelled : run_status::failed,
           "step " + std::to_string(st.step + 1) + " (" + bad.agent + " "
             + bad.task_kind + ") failed: " + to_string(bad.outcome.failure)
             + ": " + text::first_line(bad.outcome.message));
    return;
  }
  if (any_review) {
    record.open_findings = static_cast<int32_t>(merged.size());
    auto repeated = st.reviewed && same_findings(merged, st.last_review);
    st.reviewed = true;
    st.last_review = merged;
    st.open_findings = std::move(merged);
    auto open = static_cast<int32_t>(st.open_findings.size());
    if (open <= st.workflow.min_suggestions_threshold) {
      finish(self, run_status::converged,
             std::to_string(open) + " open finding(s) <= threshold "
               + std::to_string(st.workflow.min_suggestions_threshold));
      return;
    }
    if (repeated) {
      finish(self, run_status::no_progress,
             "the review repeated the previous round's " + std::to_string(open)
               + " finding(s)");
      return;
    }
  }
  // Findings handed to a fixing step stay open until a later review says
  // otherwise. The manifest is kept current so an interrupted run has one:
  // written on the run's lane once the next step is sent, while its agent
  // runs (the lane writes in order; the final manifest supersedes it).
  st.manifest_due = std::make_shared<run_result>(st.result);
  after_step(self);
}

/// Returns true when the run is over, or was cancelled and is finished now.
bool ends_here(workflow_self self) {
  auto& st = self->state;
  if (!st.running)
    return true;
  if (st.cancel_requested) {
    finish(self, run_status::cancelled, "cancelled");
    return true;
  }
  return false;
}

void after_step(workflow_self self) {
  auto& st = self->state;
  if (ends_here(self))
    return;
  if (++st.step < st.workflow.steps.size()) {
    run_step(self);
    return;
  }
  if (!st.has_review) {
    finish(self, run_status::completed, "all steps succeeded");
    return;
  }
  if (st.iteration >= st.max_iterations) {
    finish(self, run_status::max_iterations,
           std::to_string(st.open_findings.size())
             + " finding(s) still open after " + std::to_string(st.iteration)
             + " iteration(s)");
    return;
  }
  ++st.iteration;
  st.step = 0;
  st.result.iterations.push_back(iteration_record{st.iteration, {}, -1});
  notify(self, progress_event::kind_t::iteration_started);
  run_step(self);
}

/// Records the result of item `item` of the step run as number `seq`; a
/// result for another step, or for an item already answered (its agent
/// went down, then its reply came anyway), is dropped.
void item_done(workflow_self self, uint64_t seq, size_t item, step_result res) {
  auto& st = self->state;
  if (!st.running || seq != st.step_seq || item >= st.pending.size()
      || !st.pending[item])
    return;
  st.pending[item] = false;
  st.group[item] = std::move(res);
  if (--st.outstanding == 0)
    step_done(self);
}

/// Returns a failed result for item `item` of the current step.
step_result failed_item(const workflow_state& st, size_t item,
                        failure_kind kind, std::string message) {
  const auto& it = st.workflow.steps[st.step].items[item];
  step_result res;
  res.agent = it.agent;
  res.task_kind = it.task;
  res.iteration = st.iteration;
  res.step_index = static_cast<int32_t>(st.step);
  res.outcome.failure = kind;
  res.outcome.message = std::move(message);
  return res;
}

/// Fails the outstanding items of the current step that wait on `agent`,
/// whose actor is gone: its stored promises will never be answered.
void agent_down(workflow_self self, const std::string& agent,
                const std::string& reason) {
  auto& st = self->state;
  if (!st.running)
    return;
  auto seq = st.step_seq;
  const auto& items = st.workflow.steps[st.step].items;
  for (size_t i = 0; i < items.size(); ++i) {
    // Completing the last item moves the run on (or ends it).
    if (!st.running || st.step_seq != seq)
      return;
    if (items[i].agent != agent || !st.pending[i])
      continue;
    item_done(self, seq, i,
              failed_item(st, i, failure_kind::crashed,
                          agent + ": agent actor stopped before answering ("
                            + reason + ")"));
  }
}

void send_step(workflow_self self, const std::vector<std::string>& files);

/// Lists the workspace for the prompts (on a worker), then sends the step.
void run_step(workflow_self self) {
  auto& st = self->state;
  if (st.cancel_requested) {
    finish(self, run_status::cancelled, "cancelled");
    return;
  }
  if (auto ready = std::move(st.next_files)) {
    send_step(self, *ready);
    return;
  }
  auto files = std::make_shared<std::vector<std::string>>();
  auto root = st.request.workspace;
  run_on_lane(
    self, lane_of(self),
    [files, root] {
      *files = list_files(root);
    },
    [self, files](const std::string&) {
      if (!ends_here(self))
        send_step(self, *files);
    });
}

void send_step(workflow_self self, const std::vector<std::string>& files) {
  auto& st = self->state;
  const auto& step = st.workflow.steps[st.step];
  auto seq = ++st.step_seq;
  st.group.assign(step.items.size(), step_result{});
  st.pending.assign(step.items.size(), true);
  st.outstanding = step.items.size();
  // Items that cannot be sent fail after every request went out, so a
  // failure never moves the run on in the middle of this loop.
  std::vector<std::pair<size_t, step_result>> unsent;
  for (size_t i = 0; i < step.items.size(); ++i) {
    const auto& item = step.items[i];
    prompt_context ctx;
    ctx.task = st.request.task;
    ctx.task_kind = item.task;
    ctx.findings = st.open_findings;
    ctx.files = files;
    ctx.previous_output = st.previous_output;
    ctx.workspace = st.request.workspace;
    ctx.iteration = st.iteration;
    step_request req;
    req.run_id = st.request.run_id;
    req.iteration = st.iteration;
    req.step_index = static_cast<int32_t>(st.step);
    req.agent = item.agent;
    req.task_kind = item.task;
    req.prompt = render_prompt(*st.cfg, ctx);
    req.workspace = st.request.workspace;
    req.review = is_review_task(*st.cfg, item.task);
    req.progress = st.request.progress;
    req.no_cache = st.request.no_cache;
    log().info("step-start id={} iteration={} step={} agent={} task={}",
               req.run_id, req.iteration, req.step_index + 1, req.agent,
               req.task_kind);
    notify(self, progress_event::kind_t::step_started, item.agent, item.task);
    auto it = st.agents.find(item.agent);
    if (it == st.agents.end()) {
      auto down = st.down_agents.find(item.agent);
      if (down != st.down_agents.end())
        unsent.emplace_back(i,
                            failed_item(st, i, failure_kind::crashed,
                                        item.agent + ": agent actor is down ("
                                          + down->second + ")"));
      else
        unsent.emplace_back(
          i, failed_item(st, i, failure_kind::not_installed,
                         item.agent + ": no such agent is running"));
      continue;
    }
    // No bound on the step itself (the agent's deadlines bound it); the
    // agent actor is monitored, so its death fails the item (agent_down).
    self->request(it->second, caf::infinite, atom::run_step_v, std::move(req))
      .then(
        [=](step_result& res) {
          item_done(self, seq, i, std::move(res));
        },
        [=](caf::error& err) {
          auto& st = self->state;
          if (!st.running || seq != st.step_seq)
            return;
          item_done(self, seq, i,
                    failed_item(st, i, failure_kind::crashed,
                                st.workflow.steps[st.step].items[i].agent
                                  + ": agent actor failed: "
                                  + self->system().render(err)));
        });
  }
  // The previous step's manifest, written while this step's agents run.
  if (auto due = std::move(st.manifest_due))
    post_on_lane(lane_of(self), [due] {
      write_manifest_quietly(*due);
    });
  for (auto& [i, res] : unsent)
    item_done(self, seq, i, std::move(res));
}

} // namespace

bool same_findings(std::vector<finding> a, std::vector<finding> b) {
  auto key = [](const finding& f) {
    return std::tie(f.file, f.line, f.severity, f.text);
  };
  auto less = [&](const finding& x, const finding& y) {
    return key(x) < key(y);
  };
  std::sort(a.begin(), a.end(), less);
  std::sort(b.begin(), b.end(), less);
  return a == b;
}

workflow_actor::behavior_type
workflow_impl(workflow_actor::stateful_pointer<workflow_state> self,
              std::shared_ptr<const config> cfg,
              std::map<std::string, agent_actor> agents) {
  return workflow_run_impl(self, std::move(cfg), std::move(agents),
                           workflow_deps{});
}

workflow_actor::behavior_type
workflow_run_impl(workflow_actor::stateful_pointer<workflow_state> self,
                  std::shared_ptr<const config> cfg,
                  std::map<std::string, agent_actor> agents,
                  workflow_deps deps) {
  self->state.cfg = std::move(cfg);
  self->state.agents = std::move(agents);
  self->state.deps = deps;
  // A step waits on its agent actor without a timeout; if that actor dies,
  // the down message is the only word the run gets.
  for (auto& kvp : self->state.agents)
    self->monitor(kvp.second);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    std::vector<std::string> gone;
    for (auto& kvp : st.agents)
      if (kvp.second.address() == dm.source)
        gone.push_back(kvp.first);
    auto reason = dm.reason ? self->system().render(dm.reason)
                            : std::string{"exited normally"};
    for (auto& name : gone) {
      st.agents.erase(name);
      st.down_agents[name] = reason;
    }
    for (auto& name : gone)
      agent_down(self, name, reason);
  });
  return {
    [=](atom::run_task, run_request& req) -> caf::result<run_result> {
      auto& st = self->state;
      if (st.running || st.promise.pending())
        return caf::make_error(errc::invalid_request, "a run is in progress");
      workflow_config wf;
      if (!req.workflow_def.steps.empty()) {
        wf = req.workflow_def;
      } else {
        auto found = st.cfg->find_workflow(req.workflow);
        if (found == nullptr)
          return caf::make_error(errc::unknown_name,
                                 "unknown workflow " + req.workflow);
        wf = *found;
      }
      if (wf.steps.empty())
        return caf::make_error(errc::invalid_request,
                               "workflow " + req.workflow + " has no steps");
      st.promise = self->make_response_promise<run_result>();
      st.request = std::move(req);
      st.workflow = std::move(wf);
      st.running = true;
      st.started = std::chrono::steady_clock::now();
      st.max_iterations = st.request.max_iterations > 0
                            ? st.request.max_iterations
                            : std::max(1, st.workflow.max_iterations);
      st.has_review = false;
      for (auto& step : st.workflow.steps)
        for (auto& item : step.items)
          st.has_review = st.has_review || is_review_task(*st.cfg, item.task);
      st.result.run_id = st.request.run_id;
      st.result.task = st.request.task;
      st.result.workflow = st.request.workflow;
      st.result.workspace = st.request.workspace;
      st.iteration = 1;
      st.step = 0;
      // Agents edit files in place; what was there before the run must stay
      // recoverable. Up to 1 GiB of copying: on a worker.
      auto kept = std::make_shared<workspace::preserve_report>();
      auto root = st.request.workspace;
      auto run_id = st.request.run_id;
      // A session's follow-up continues in the workspace its earlier run
      // already preserved: the files there are that session's own output,
      // not copied to backups again (each step still backs up what it
      // overwrites).
      auto followup = st.request.followup;
      // The first step's listing comes from the same job.
      auto files = std::make_shared<std::vector<std::string>>();
      run_on_lane(
        self, lane_of(self),
        [kept, root, run_id, followup, files] {
          if (!followup)
            *kept
              = workspace{root, run_id}.preserve_existing(preserve_max_bytes);
          if (kept->error.empty())
            *files = list_files(root);
        },
        [self, kept, files](const std::string& failed) {
          auto& st = self->state;
          if (!failed.empty() && kept->error.empty())
            kept->error = failed;
          st.result.preserved_files = static_cast<int32_t>(kept->files);
          st.result.preserve_error = kept->error;
          auto started = st.request.workspace;
          if (kept->files > 0)
            started += " (" + std::to_string(kept->files)
                       + " existing file(s) saved to " + workspace_meta_dir
                       + "/backups/" + st.request.run_id + "/)";
          log().info("run-start id={} workflow={} workspace={}",
                     st.request.run_id, st.request.workflow,
                     log_text(st.request.workspace));
          notify(self, progress_event::kind_t::run_started, {}, {}, started);
          if (!kept->error.empty()) {
            // An agent may delete or rewrite any file; one never saved would
            // be lost for good. No step runs.
            finish(self, run_status::failed,
                   "existing files could not be saved: " + kept->error);
            return;
          }
          if (st.cancel_requested) {
            finish(self, run_status::cancelled, "cancelled");
            return;
          }
          st.result.iterations.push_back(iteration_record{1, {}, -1});
          notify(self, progress_event::kind_t::iteration_started);
          if (failed.empty())
            st.next_files = files;
          run_step(self);
        });
      return st.promise;
    },
    [=](atom::cancel) {
      // Only this run's steps: the agent actors may serve other runs.
      auto& st = self->state;
      st.cancel_requested = true;
      if (!st.running || st.request.run_id.empty())
        return;
      for (auto& kvp : st.agents)
        self->send(kvp.second, atom::cancel_v, st.request.run_id);
    },
  };
}

} // namespace orch
