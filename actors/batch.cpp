#include "actors/batch.hpp"

#include <optional>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/coordinator.hpp"
#include "actors/run_report.hpp"

namespace orch {

namespace {

using batch_self = batch_actor::stateful_pointer<batch_state>;

int64_t elapsed_ms(const batch_state& st) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now() - st.start)
    .count();
}

batch_stats snapshot(const batch_state& st) {
  auto out = st.stats;
  out.running = st.running.size();
  out.elapsed_ms = st.started ? elapsed_ms(st) : 0;
  return out;
}

/// The failure kind that ended `res` (see batch_result_line).
std::string failure_of(const run_result& res) {
  if (res.status == run_status::cancelled)
    return "cancelled";
  if (res.status != run_status::failed)
    return "none";
  for (auto it = res.iterations.rbegin(); it != res.iterations.rend(); ++it)
    for (auto s = it->steps.rbegin(); s != it->steps.rend(); ++s)
      if (!s->outcome.ok && s->outcome.failure != failure_kind::none)
        return to_string(s->outcome.failure);
  return "run_error";
}

/// Stops taking tasks: `why` is empty for a cancel.
void stop(batch_self self, std::string why) {
  auto& st = self->state;
  if (st.stats.error.empty())
    st.stats.error = std::move(why);
  if (st.stats.stopped)
    return;
  st.stats.stopped = true;
  for (auto& kvp : st.running)
    if (!kvp.second.run_id.empty())
      caf::anon_send(st.deps.coordinator, atom::cancel_v, kvp.second.run_id);
}

/// Ends the batch once nothing is in flight and nothing more will start.
void maybe_finish(batch_self self) {
  auto& st = self->state;
  if (!st.running.empty() || !(st.input_done || st.stats.stopped))
    return;
  std::string err;
  if (!st.deps.out->sync(err) && st.stats.error.empty())
    st.stats.error = err;
  if (st.done.pending())
    st.done.deliver(snapshot(st));
  self->quit();
}

/// Appends one line; a failed write stops the batch (the task runs again
/// under --resume: it has no line).
void write_line(batch_self self, const nlohmann::ordered_json& line) {
  auto& st = self->state;
  std::string err;
  if (!st.deps.out->append(dump_json(line, -1), err)) {
    stop(self, "the output: " + err);
    return;
  }
  if (st.deps.out->sync_due() && !st.deps.out->sync(err))
    stop(self, "the output: " + err);
}

void fill(batch_self self);

/// The id of the running task `tag`, which stops counting as running;
/// nullopt when it is not running (any more).
std::optional<std::string> take_running(batch_self self, uint64_t tag) {
  auto& st = self->state;
  auto it = st.running.find(tag);
  if (it == st.running.end())
    return std::nullopt;
  auto id = std::move(it->second.id);
  st.running.erase(it);
  return id;
}

void on_result(batch_self self, uint64_t tag, run_result& res) {
  auto taken = take_running(self, tag);
  if (!taken)
    return;
  auto& id = *taken;
  auto& st = self->state;
  // Cancelled because the batch stopped: no line, so --resume runs it
  // again. A run that ended otherwise in the meantime keeps its line.
  if (!(st.stats.stopped && res.status == run_status::cancelled)) {
    bool failed = res.status == run_status::failed
                  || res.status == run_status::cancelled;
    ++(failed ? st.stats.failed : st.stats.succeeded);
    write_line(self, batch_result_line(id, res));
  }
  fill(self);
  maybe_finish(self);
}

/// The coordinator answered `result` with an error: the run's outcome is
/// unknown (a stopped batch only drops it; else it is a failed line).
void on_lost(batch_self self, uint64_t tag, const std::string& workflow,
             const caf::error& e) {
  auto taken = take_running(self, tag);
  if (!taken)
    return;
  auto& id = *taken;
  auto& st = self->state;
  if (!st.stats.stopped) {
    ++st.stats.failed;
    write_line(
      self, batch_refusal_line(id, workflow, "lost",
                               "the run's result was lost: " + error_text(e)));
  }
  fill(self);
  maybe_finish(self);
}

void on_refused(batch_self self, uint64_t tag, const std::string& workflow,
                const caf::error& e) {
  auto taken = take_running(self, tag);
  if (!taken)
    return;
  auto& id = *taken;
  auto& st = self->state;
  // Refused because the coordinator stops (our cancel, Ctrl-C): no line.
  if (!st.stats.stopped) {
    ++st.stats.failed;
    ++st.stats.refused;
    auto kind = e.category() == caf::atom("orch")
                  ? to_string(static_cast<errc>(e.code()))
                  : std::string{"refused"};
    write_line(self, batch_refusal_line(id, workflow, kind, error_text(e)));
  }
  fill(self);
  maybe_finish(self);
}

void submit(batch_self self, batch_task task) {
  auto& st = self->state;
  auto tag = st.next_tag++;
  st.running.emplace(tag, batch_state::in_flight{task.id, {}});
  run_spec spec;
  spec.label = task.id;
  spec.task = std::move(task.task);
  spec.workflow = task.workflow.empty() ? st.deps.default_workflow
                                        : std::move(task.workflow);
  spec.agents = std::move(task.agents);
  spec.max_iterations = task.max_iterations;
  spec.user = st.deps.user;
  spec.no_cache = st.deps.no_cache;
  auto workflow = spec.workflow;
  auto coord = st.deps.coordinator;
  // No timeouts: the coordinator is monitored, and its death fails every
  // request to it.
  self->request(coord, caf::infinite, atom::submit_v, std::move(spec))
    .then(
      [self, tag, workflow, coord](std::string& run_id) {
        auto& st = self->state;
        auto it = st.running.find(tag);
        if (it == st.running.end())
          return;
        it->second.run_id = run_id;
        if (st.stats.stopped)
          caf::anon_send(coord, atom::cancel_v, run_id);
        self->request(coord, caf::infinite, atom::result_v, run_id)
          .then(
            [self, tag](run_result& res) {
              on_result(self, tag, res);
            },
            [self, tag, workflow](caf::error& e) {
              on_lost(self, tag, workflow, e);
            });
      },
      [self, tag, workflow](caf::error& e) {
        on_refused(self, tag, workflow, e);
      });
}

/// Submits tasks until the slots are full or the input is done.
void fill(batch_self self) {
  auto& st = self->state;
  std::vector<bad_line> bad;
  while (!st.stats.stopped && !st.input_done
         && st.running.size() < st.deps.concurrency) {
    batch_task task;
    if (!st.deps.source->next(task, bad)) {
      st.input_done = true;
      if (!st.deps.source->error().empty())
        stop(self, "reading the input: " + st.deps.source->error());
      break;
    }
    submit(self, std::move(task));
  }
  // Bad lines were reported by the CLI's first pass; a line that changed
  // since is skipped the same way.
  st.stats.skipped = st.deps.source->skipped();
}

} // namespace

nlohmann::ordered_json batch_result_line(const std::string& id,
                                         const run_result& res) {
  nlohmann::ordered_json out;
  out["id"] = id;
  auto doc = to_json(res);
  for (auto& [key, value] : doc.items()) {
    out[key] = std::move(value);
    if (key == "status")
      out["failure"] = failure_of(res);
  }
  return out;
}

nlohmann::ordered_json
batch_refusal_line(const std::string& id, const std::string& workflow,
                   const std::string& failure, const std::string& error) {
  nlohmann::ordered_json out;
  out["id"] = id;
  out["run_id"] = nullptr;
  out["workflow"] = workflow;
  out["status"] = "failed";
  out["failure"] = failure;
  out["error"] = error;
  return out;
}

batch_actor::behavior_type
batch_impl(batch_actor::stateful_pointer<batch_state> self, batch_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  if (st.deps.concurrency == 0)
    st.deps.concurrency = 1;
  st.stats.total = st.deps.total;
  st.stats.bad_lines = st.deps.bad_lines;
  self->monitor(st.deps.coordinator);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.deps.coordinator.address())
      return;
    stop(self,
         "the run coordinator stopped: " + self->system().render(dm.reason));
    // Its answers will not come: what was in flight has no line.
    st.running.clear();
    maybe_finish(self);
  });
  return {
    [=](atom::run_task) -> caf::result<batch_stats> {
      auto& st = self->state;
      if (st.started)
        return caf::make_error(errc::invalid_request,
                               "the batch has already started");
      st.started = true;
      st.start = std::chrono::steady_clock::now();
      st.done = self->make_response_promise<batch_stats>();
      self->delayed_send(self, st.deps.sync_tick, atom::flush_v);
      fill(self);
      auto rp = st.done;
      maybe_finish(self);
      return rp;
    },
    [=](atom::status) {
      return snapshot(self->state);
    },
    [=](atom::cancel) {
      stop(self, {});
      maybe_finish(self);
    },
    [=](atom::flush) {
      auto& st = self->state;
      std::string err;
      if (st.deps.out->sync_due() && !st.deps.out->sync(err))
        stop(self, "the output: " + err);
      self->delayed_send(self, st.deps.sync_tick, atom::flush_v);
    },
  };
}

batch_actor spawn_batch(caf::actor_system& sys, batch_deps deps) {
  return sys.spawn<caf::detached>(batch_impl, std::move(deps));
}

} // namespace orch
