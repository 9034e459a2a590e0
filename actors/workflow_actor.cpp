#include "actors/workflow_actor.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <tuple>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/run_report.hpp"
#include "runtime/process.hpp"
#include "runtime/review.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

using self_ptr = workflow_actor::stateful_pointer<workflow_state>;

/// The most a run copies of a workspace's existing files before it starts.
constexpr std::uintmax_t preserve_max_bytes = std::uintmax_t{1} << 30;

int64_t elapsed_ms(const workflow_state& st) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now() - st.started)
    .count();
}

void notify(self_ptr self, progress_event::kind_t kind, std::string agent = {},
            std::string task = {}, std::string text = {}, bool ok = true) {
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

/// Lists the workspace's files for prompts (not hashed: names only).
std::vector<std::string> list_files(const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it{root, ec}, end;
  for (; !ec && it != end; it.increment(ec)) {
    auto rel = it->path().lexically_relative(root).generic_string();
    if (rel.rfind(workspace_meta_dir, 0) == 0) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec))
      out.push_back(rel);
    if (out.size() >= 1000)
      break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Returns the first line of `text`: failure messages may carry details
/// (the CLI's own words) on later lines, which the manifest keeps.
std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

/// Returns the one-line outcome of a step for progress displays.
std::string step_summary(const config& cfg, const step_result& res) {
  if (!res.outcome.ok)
    return to_string(res.outcome.failure) + ": "
           + first_line(res.outcome.message);
  std::string out;
  if (is_review_task(cfg, res.task_kind))
    out = std::to_string(res.findings.size()) + " finding(s)";
  if (!res.files.empty() || out.empty())
    out += (out.empty() ? "" : ", ") + std::to_string(res.files.size())
           + " file(s)";
  if (!res.refused.empty())
    out += ", " + std::to_string(res.refused.size()) + " path(s) refused";
  return out;
}

void finish(self_ptr self, run_status status, std::string message) {
  auto& st = self->state;
  if (!st.running)
    return;
  st.running = false;
  st.result.status = status;
  st.result.message = std::move(message);
  st.result.findings = st.open_findings;
  st.result.duration_ms = elapsed_ms(st);
  std::string err;
  if (!write_manifest(st.result, err))
    st.result.message += (st.result.message.empty() ? "" : "; ") + err;
  notify(
    self, progress_event::kind_t::run_finished, {}, {},
    to_string(status)
      + (st.result.message.empty() ? std::string{} : ": " + st.result.message),
    status != run_status::failed && status != run_status::cancelled);
  st.promise.deliver(st.result);
  self->quit();
}

void run_step(self_ptr self);

void step_done(self_ptr self) {
  auto& st = self->state;
  auto& record = st.result.iterations.back();
  const auto& step = st.workflow.steps[st.step];
  bool any_review = false;
  std::vector<finding> merged;
  // Index into record.steps (which grows below) of the first failure.
  size_t failed = SIZE_MAX;
  std::string outputs;
  std::set<std::string> files{st.result.files.begin(), st.result.files.end()};
  for (size_t i = 0; i < st.group.size(); ++i) {
    auto& res = st.group[i];
    record.steps.push_back(res);
    st.result.tokens += res.outcome.tokens;
    files.insert(res.files.begin(), res.files.end());
    if (!res.outcome.ok && failed == SIZE_MAX)
      failed = record.steps.size() - 1;
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
  st.result.files.assign(files.begin(), files.end());
  st.previous_output = std::move(outputs);
  for (size_t i = 0; i < st.group.size(); ++i) {
    auto& res = st.group[i];
    notify(self, progress_event::kind_t::step_finished, res.agent,
           res.task_kind, step_summary(*st.cfg, res), res.outcome.ok);
  }
  if (failed != SIZE_MAX) {
    const auto& bad = record.steps[failed];
    auto cancelled = bad.outcome.failure == failure_kind::cancelled;
    finish(self, cancelled ? run_status::cancelled : run_status::failed,
           "step " + std::to_string(st.step + 1) + " (" + bad.agent + " "
             + bad.task_kind + ") failed: " + to_string(bad.outcome.failure)
             + ": " + first_line(bad.outcome.message));
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
  // otherwise. The manifest is kept current so an interrupted run has one.
  write_manifest_quietly(st.result);
  if (interrupted()) {
    finish(self, run_status::cancelled, "interrupted");
    return;
  }
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

void run_step(self_ptr self) {
  auto& st = self->state;
  const auto& step = st.workflow.steps[st.step];
  st.group.assign(step.items.size(), step_result{});
  st.outstanding = step.items.size();
  auto files = list_files(st.request.workspace);
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
    notify(self, progress_event::kind_t::step_started, item.agent, item.task);
    auto on_result = [=](step_result& res) {
      auto& st = self->state;
      st.group[i] = std::move(res);
      if (--st.outstanding == 0)
        step_done(self);
    };
    auto it = st.agents.find(item.agent);
    if (it == st.agents.end()) {
      step_result res;
      res.agent = item.agent;
      res.task_kind = item.task;
      res.iteration = st.iteration;
      res.step_index = req.step_index;
      res.outcome.failure = failure_kind::not_installed;
      res.outcome.message = item.agent + ": no such agent is running";
      on_result(res);
      continue;
    }
    self->request(it->second, caf::infinite, atom::run_step_v, std::move(req))
      .then(on_result, [=](caf::error& err) {
        step_result res;
        res.agent = item.agent;
        res.task_kind = item.task;
        res.iteration = self->state.iteration;
        res.step_index = static_cast<int32_t>(self->state.step);
        res.outcome.failure = failure_kind::crashed;
        res.outcome.message = item.agent + ": agent actor failed: "
                              + self->system().render(err);
        on_result(res);
      });
  }
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
  self->state.cfg = std::move(cfg);
  self->state.agents = std::move(agents);
  return {
    [=](atom::run_task, run_request& req) -> caf::result<run_result> {
      auto& st = self->state;
      if (st.running)
        return caf::make_error(errc::invalid_request, "a run is in progress");
      auto wf = st.cfg->find_workflow(req.workflow);
      if (wf == nullptr)
        return caf::make_error(errc::unknown_name,
                               "unknown workflow " + req.workflow);
      if (wf->steps.empty())
        return caf::make_error(errc::invalid_request,
                               "workflow " + req.workflow + " has no steps");
      st.promise = self->make_response_promise<run_result>();
      st.request = std::move(req);
      st.workflow = *wf;
      st.running = true;
      st.started = std::chrono::steady_clock::now();
      st.max_iterations = st.request.max_iterations > 0
                            ? st.request.max_iterations
                            : std::max(1, wf->max_iterations);
      st.has_review = false;
      for (auto& step : wf->steps)
        for (auto& item : step.items)
          st.has_review = st.has_review || is_review_task(*st.cfg, item.task);
      st.result.run_id = st.request.run_id;
      st.result.task = st.request.task;
      st.result.workflow = st.request.workflow;
      st.result.workspace = st.request.workspace;
      st.iteration = 1;
      st.step = 0;
      st.result.iterations.push_back(iteration_record{1, {}, -1});
      // Agents edit files in place; what was there before the run must stay
      // recoverable.
      auto kept
        = workspace{st.request.workspace, st.request.run_id}.preserve_existing(
          preserve_max_bytes);
      st.result.preserved_files = static_cast<int32_t>(kept.files);
      st.result.preserve_error = kept.error;
      auto started = st.request.workspace;
      if (kept.files > 0)
        started += " (" + std::to_string(kept.files)
                   + " existing file(s) saved to " + workspace_meta_dir
                   + "/backups/" + st.request.run_id + "/)";
      if (!kept.error.empty())
        started += " (warning: " + kept.error + ")";
      notify(self, progress_event::kind_t::run_started, {}, {}, started);
      notify(self, progress_event::kind_t::iteration_started);
      run_step(self);
      return st.promise;
    },
    [=](atom::cancel) {
      for (auto& kvp : self->state.agents)
        self->send(kvp.second, atom::cancel_v);
    },
  };
}

} // namespace orch
