#include "server/event_hub.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/run_report.hpp"
#include "runtime/clock.hpp"

namespace orch::server {

// -- the store ----------------------------------------------------------------

event_hub::event_hub(size_t per_run, size_t max_runs, size_t global_limit)
  : per_run_{std::max<size_t>(1, per_run)}, max_runs_{std::max<size_t>(
                                              1, max_runs)},
    global_limit_{std::max<size_t>(1, global_limit)} {
  // nop
}

void event_hub::expect_run(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (runs_.count(id) == 0) {
    runs_[id];
    order_.push_back(id);
    evict_locked();
  }
}

void event_hub::push(stored_event ev) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto it = runs_.find(ev.run_id);
    if (it == runs_.end()) {
      it = runs_.emplace(ev.run_id, run_events{}).first;
      order_.push_back(ev.run_id);
    }
    auto& run = it->second;
    if (run.finished_ms != 0)
      return;
    if (!run.events.empty() && ev.seq <= run.events.back()->seq)
      return;
    ev.global = next_global_++;
    if (ev.kind == progress_event::kind_t::run_finished)
      run.finished_ms = wall_clock_ms();
    auto ptr = std::make_shared<const stored_event>(std::move(ev));
    run.events.push_back(ptr);
    while (run.events.size() > per_run_)
      run.events.pop_front();
    global_.push_back(ptr);
    while (global_.size() > global_limit_)
      global_.pop_front();
    ++generation_;
    evict_locked();
  }
  cv_.notify_all();
}

void event_hub::evict_locked() {
  // Finished runs go first, oldest first; a running one only when the
  // bound is exceeded by running runs alone.
  while (runs_.size() > max_runs_) {
    auto victim = order_.end();
    for (auto it = order_.begin(); it != order_.end(); ++it) {
      auto r = runs_.find(*it);
      if (r == runs_.end() || r->second.finished_ms != 0) {
        victim = it;
        break;
      }
    }
    if (victim == order_.end())
      victim = order_.begin();
    runs_.erase(*victim);
    order_.erase(victim);
  }
}

event_hub::batch event_hub::run_batch_locked(const std::string& id,
                                             uint64_t after) const {
  batch out;
  out.closed = closed_;
  auto it = runs_.find(id);
  if (it == runs_.end())
    return out;
  for (auto& ev : it->second.events)
    if (ev->seq > after)
      out.events.push_back(ev);
  out.finished = it->second.finished_ms != 0;
  return out;
}

event_hub::batch event_hub::events_of(const std::string& id, uint64_t after) {
  std::lock_guard<std::mutex> guard{mtx_};
  return run_batch_locked(id, after);
}

event_hub::batch
event_hub::wait_run(const std::string& id, uint64_t after,
                    std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock{mtx_};
  auto ready = [&] {
    if (closed_)
      return true;
    auto it = runs_.find(id);
    if (it == runs_.end())
      return false;
    auto& evs = it->second.events;
    return it->second.finished_ms != 0
           || (!evs.empty() && evs.back()->seq > after);
  };
  cv_.wait_until(lock, until, ready);
  return run_batch_locked(id, after);
}

event_hub::batch
event_hub::wait_all(uint64_t after,
                    std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock{mtx_};
  cv_.wait_until(lock, until, [&] {
    return closed_ || (!global_.empty() && global_.back()->global > after);
  });
  batch out;
  out.closed = closed_;
  for (auto it = global_.rbegin(); it != global_.rend(); ++it) {
    if ((*it)->global <= after)
      break;
    out.events.push_back(*it);
  }
  std::reverse(out.events.begin(), out.events.end());
  return out;
}

std::optional<uint64_t> event_hub::global_of(const std::string& id,
                                             uint64_t seq) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = runs_.find(id);
  if (it == runs_.end())
    return std::nullopt;
  for (auto& ev : it->second.events)
    if (ev->seq == seq)
      return ev->global;
  return std::nullopt;
}

uint64_t event_hub::last_global() {
  std::lock_guard<std::mutex> guard{mtx_};
  return next_global_ - 1;
}

int64_t event_hub::finished_ms(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = runs_.find(id);
  return it == runs_.end() ? 0 : it->second.finished_ms;
}

bool event_hub::wait_finished(const std::vector<std::string>& ids,
                              std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock{mtx_};
  return cv_.wait_until(lock, until, [&] {
    return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
      auto it = runs_.find(id);
      return it != runs_.end() && it->second.finished_ms != 0;
    });
  });
}

void event_hub::close() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
    ++generation_;
  }
  cv_.notify_all();
}

void event_hub::wake() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ++generation_;
  }
  cv_.notify_all();
}

bool event_hub::closed() {
  std::lock_guard<std::mutex> guard{mtx_};
  return closed_;
}

uint64_t event_hub::generation() {
  std::lock_guard<std::mutex> guard{mtx_};
  return generation_;
}

uint64_t
event_hub::wait_generation(uint64_t seen,
                           std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock{mtx_};
  cv_.wait_until(lock, until, [&] {
    return generation_ != seen;
  });
  return generation_;
}

// -- the hub actor ------------------------------------------------------------

namespace {

struct hub_state {
  static inline const char* name = "orch.server.event_hub";

  struct throttle {
    double tokens = 0;
    int64_t last_ms = 0;
    uint64_t skipped = 0;
  };

  std::shared_ptr<event_hub> hub;
  event_hub_settings settings;
  coordinator_actor coord;
  std::map<std::string, throttle> throttles;
  /// Runs whose run_finished arrived (later events are dropped).
  std::map<std::string, bool> finishing;
};

using hub_actor = progress_sink;

stored_event render(const progress_event& ev, nlohmann::ordered_json j) {
  stored_event out;
  out.run_id = ev.run_id;
  out.seq = ev.seq;
  out.kind = ev.kind;
  out.json = dump_json(j, -1);
  return out;
}

hub_actor::behavior_type
hub_impl(hub_actor::stateful_pointer<hub_state> self, coordinator_actor coord,
         std::shared_ptr<event_hub> hub, event_hub_settings settings) {
  self->state.hub = std::move(hub);
  self->state.settings = settings;
  self->state.coord = coord;
  self->monitor(coord);
  self->set_down_handler([self](const caf::down_msg&) {
    self->quit();
  });
  self->send(coord, atom::subscribe_v, std::string{}, uint64_t{0},
             caf::actor_cast<progress_sink>(self));
  return {
    [self](atom::progress, const progress_event& ev) {
      auto& st = self->state;
      using kind = progress_event::kind_t;
      if (st.finishing.count(ev.run_id) != 0)
        return;
      auto j = to_json(ev);
      if (ev.kind == kind::agent_event
          && st.settings.agent_events_per_second > 0) {
        auto& t = st.throttles[ev.run_id];
        auto now = wall_clock_ms();
        if (t.last_ms == 0)
          t.tokens = st.settings.agent_event_burst;
        else
          t.tokens = std::min<double>(
            st.settings.agent_event_burst,
            t.tokens
              + static_cast<double>(now - t.last_ms)
                  * st.settings.agent_events_per_second / 1000.0);
        t.last_ms = now;
        if (t.tokens < 1.0) {
          ++t.skipped;
          return;
        }
        t.tokens -= 1.0;
      }
      // Lines dropped since the last event sent: counted on this one.
      if (auto t = st.throttles.find(ev.run_id);
          t != st.throttles.end() && t->second.skipped > 0) {
        j["skipped"] = t->second.skipped;
        t->second.skipped = 0;
      }
      if (ev.kind != kind::run_finished) {
        st.hub->push(render(ev, std::move(j)));
        return;
      }
      // The last event of the run: with the run's result.
      st.finishing[ev.run_id] = true;
      st.throttles.erase(ev.run_id);
      auto id = ev.run_id;
      self->request(st.coord, st.settings.result_timeout, atom::result_v, id)
        .then(
          [self, ev, j](const run_result& res) mutable {
            j["result"] = run_json(res);
            self->state.hub->push(render(ev, std::move(j)));
            self->state.finishing.erase(ev.run_id);
          },
          [self, ev, j](const caf::error&) mutable {
            self->state.hub->push(render(ev, std::move(j)));
            self->state.finishing.erase(ev.run_id);
          });
    },
  };
}

} // namespace

progress_sink
spawn_event_hub(caf::actor_system& sys, const coordinator_actor& coord,
                std::shared_ptr<event_hub> hub, event_hub_settings settings) {
  return sys.spawn(hub_impl, coord, std::move(hub), settings);
}

} // namespace orch::server
