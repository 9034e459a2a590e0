#include "actors/metrics_feed.hpp"

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

namespace orch {

namespace {

using feed_self = progress_sink::stateful_pointer<metrics_feed_state>;

/// How long the feed waits for a finished run's result.
constexpr auto result_timeout = std::chrono::seconds{60};

double seconds_of(int64_t ms) {
  return static_cast<double>(ms < 0 ? 0 : ms) / 1000.0;
}

/// Records `id` as counted; returns false when it already was.
bool mark_recorded(metrics_feed_state& st, const std::string& id) {
  if (!st.recorded.insert(id).second)
    return false;
  st.recorded_order.push_back(id);
  while (st.recorded_order.size() > metrics_feed_state::max_remembered) {
    st.recorded.erase(st.recorded_order.front());
    st.recorded_order.pop_front();
  }
  return true;
}

void on_progress(feed_self self, const progress_event& ev) {
  auto& st = self->state;
  using kind = progress_event::kind_t;
  if (ev.kind == kind::run_started) {
    if (st.recorded.count(ev.run_id) == 0
        && st.running.insert(ev.run_id).second)
      st.metrics->add_running(1);
    return;
  }
  if (ev.kind != kind::run_finished || !mark_recorded(st, ev.run_id))
    return;
  if (st.running.erase(ev.run_id) > 0)
    st.metrics->add_running(-1);
  auto metrics = st.metrics;
  self->request(st.coordinator, result_timeout, atom::result_v, ev.run_id)
    .then(
      [metrics](const run_result& res) {
        record_run(*metrics, res);
      },
      [](const caf::error&) {
        // The run is no longer retained: nothing left to record.
      });
}

} // namespace

task_sample task_sample_of(const run_result& res) {
  task_sample x;
  x.workflow = res.workflow;
  x.status = to_string(res.status);
  x.ok = res.status != run_status::failed
         && res.status != run_status::cancelled;
  x.duration_seconds = seconds_of(res.duration_ms);
  if (x.ok)
    return x;
  if (res.status == run_status::cancelled) {
    x.failure = "cancelled";
    return x;
  }
  for (auto it = res.iterations.rbegin(); it != res.iterations.rend(); ++it)
    for (auto st = it->steps.rbegin(); st != it->steps.rend(); ++st)
      if (!st->outcome.ok && st->outcome.failure != failure_kind::none) {
        x.failure = to_string(st->outcome.failure);
        return x;
      }
  x.failure = "run_error";
  return x;
}

std::vector<agent_call_sample> agent_calls_of(const run_result& res) {
  std::vector<agent_call_sample> out;
  for (const auto& iteration : res.iterations) {
    for (const auto& step : iteration.steps) {
      if (step.cached)
        continue;
      auto first = out.size();
      if (step.attempts.empty()) {
        if (step.outcome.failure == failure_kind::circuit_open)
          continue;
        agent_call_sample call;
        call.agent = step.ran_as.empty() ? step.agent : step.ran_as;
        call.ok = step.outcome.ok;
        if (!call.ok)
          call.failure = to_string(step.outcome.failure);
        call.seconds = seconds_of(step.duration_ms);
        out.push_back(std::move(call));
      } else {
        for (const auto& attempt : step.attempts) {
          if (attempt.failure == failure_kind::circuit_open)
            continue;
          agent_call_sample call;
          call.agent = attempt.agent;
          call.ok = attempt.failure == failure_kind::none;
          if (!call.ok)
            call.failure = to_string(attempt.failure);
          call.seconds = seconds_of(attempt.duration_ms);
          out.push_back(std::move(call));
        }
      }
      if (out.size() == first)
        continue;
      auto& last = out.back();
      const auto& tokens = step.outcome.tokens;
      last.input_tokens = tokens.input_tokens;
      last.output_tokens = tokens.output_tokens;
      last.cached_tokens = tokens.cached_tokens;
      last.cost_usd = tokens.has_cost ? tokens.cost_usd : 0.0;
    }
  }
  return out;
}

void record_run(metrics_registry& metrics, const run_result& res) {
  // The agent calls first: a run counted by record_task is then whole
  // (metrics_registry::wait_recorded).
  for (const auto& call : agent_calls_of(res))
    metrics.record_agent_call(call);
  metrics.record_task(task_sample_of(res));
}

progress_sink::behavior_type
metrics_feed_impl(feed_self self, coordinator_actor coordinator,
                  std::shared_ptr<metrics_registry> metrics) {
  self->state.coordinator = coordinator;
  self->state.metrics = std::move(metrics);
  self->monitor(coordinator);
  self->set_down_handler([self](const caf::down_msg&) {
    self->quit();
  });
  self->send(coordinator, atom::subscribe_v, std::string{}, uint64_t{0},
             caf::actor_cast<progress_sink>(self));
  return {
    [self](atom::progress, const progress_event& ev) {
      on_progress(self, ev);
    },
  };
}

progress_sink spawn_metrics_feed(caf::actor_system& sys,
                                 coordinator_actor coordinator,
                                 std::shared_ptr<metrics_registry> metrics) {
  return sys.spawn(metrics_feed_impl, std::move(coordinator),
                   std::move(metrics));
}

} // namespace orch
