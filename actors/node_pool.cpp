#include "actors/node_pool.hpp"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <memory>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/blocking_work.hpp"
#include "actors/coordinator.hpp"
#include "runtime/clock.hpp"

namespace orch {

namespace {

using pool_self = coordinator_actor::stateful_pointer<node_pool_state>;
using task_entry = node_pool_state::task_entry;

using connect_atom = caf::atom_constant<caf::atom("poolConn")>;
using go_atom = caf::atom_constant<caf::atom("poolConnGo")>;
using connect_fn = decltype(node_pool_deps::connect);

/// Connects to one lost node again after a wait, on its own thread
/// (connecting blocks): answers the node's handle and status, or
/// errc::node_unavailable with why not. One try, then it quits.
caf::behavior connector_impl(caf::event_based_actor* self, connect_fn connect,
                             std::string address) {
  auto pending = std::make_shared<caf::response_promise>();
  return {
    [=](connect_atom, caf::timespan wait) {
      *pending = self->make_response_promise();
      self->delayed_send(self, wait, go_atom::value);
    },
    [=](go_atom) {
      node_link link;
      try {
        link = connect(self->system(), address);
      } catch (const std::exception& e) {
        link.error = std::string{"cannot connect: "} + e.what();
      }
      if (link.error.empty() && link.actor)
        pending->deliver(caf::actor_cast<caf::actor>(link.actor),
                         std::move(link.status));
      else
        pending->deliver(
          caf::make_error(errc::node_unavailable,
                          link.error.empty() ? "no handle" : link.error));
      self->quit();
    },
  };
}

void send_event(pool_self self, task_entry& t, progress_event ev) {
  ev.run_id = t.info.run_id;
  ev.seq = t.next_seq++;
  for (auto& s : t.subscribers)
    self->send(s, atom::progress_v, ev);
  for (auto& s : self->state.all_subscribers)
    self->send(s, atom::progress_v, ev);
}

/// Releases a task's workspace lock, if held, on a worker (the release
/// writes the lock file).
void release_lock(pool_self self,
                  std::shared_ptr<std::optional<workspace_lock>> lock) {
  if (lock && *lock)
    run_blocking(
      self, true,
      [lock] {
        lock->reset();
      },
      [](const std::string&) {});
}

/// Records the task's one result: later answers for it are dropped.
void record(pool_self self, const std::string& id, run_result res) {
  auto& st = self->state;
  auto it = st.tasks.find(id);
  if (it == st.tasks.end() || it->second.result)
    return;
  auto& t = it->second;
  res.run_id = id;
  t.node = -1;
  t.writing = false;
  release_lock(self, std::move(t.lock));
  t.info.state = "finished";
  t.info.status = res.status;
  t.result = res;
  for (auto& rp : t.waiters)
    rp.deliver(res);
  bool collected = !t.waiters.empty();
  t.waiters.clear();
  progress_event ev;
  ev.kind = progress_event::kind_t::run_finished;
  ev.ok = res.status != run_status::failed
          && res.status != run_status::cancelled;
  ev.text = to_string(res.status);
  ev.elapsed_ms = res.duration_ms;
  send_event(self, t, std::move(ev));
  t.subscribers.clear();
  if (collected && st.deps.drop_collected) {
    st.tasks.erase(it);
    return;
  }
  if (st.deps.retained_runs == 0)
    return;
  st.finished.push_back(id);
  while (st.finished.size() > st.deps.retained_runs) {
    // A result nobody asked for yet is forgotten all the same: the
    // retention bounds the pool's memory.
    st.tasks.erase(st.finished.front());
    st.finished.pop_front();
  }
}

run_result failed_result(const task_entry& t, std::string message,
                         run_status status = run_status::failed) {
  run_result res;
  res.run_id = t.info.run_id;
  res.task = t.spec.task;
  res.workflow = t.spec.workflow;
  res.status = status;
  res.message = std::move(message);
  return res;
}

void dispatch(pool_self self);

/// No node is left: every waiting task fails.
void fail_queued(pool_self self, const std::string& why) {
  auto& st = self->state;
  auto queue = std::move(st.queue);
  st.queue.clear();
  for (auto& id : queue) {
    auto it = st.tasks.find(id);
    if (it != st.tasks.end() && !it->second.result)
      record(self, id, failed_result(it->second, why));
  }
}

/// A node is up, or a lost one is being tried again: queued tasks wait.
bool any_hope(const node_pool_state& st) {
  return std::any_of(st.nodes.begin(), st.nodes.end(), [](const auto& n) {
    return n.alive || n.reconnecting;
  });
}

void refresh_live(pool_self self) {
  auto& st = self->state;
  st.live->clear();
  for (auto& n : st.nodes)
    if (n.alive)
      st.live->push_back(n.actor);
}

void schedule_reconnect(pool_self self, size_t i);

/// Node `i` answered again: it takes tasks from now on.
void rejoin(pool_self self, size_t i, node_actor actor, node_status status) {
  auto& st = self->state;
  auto& n = st.nodes[i];
  n.reconnecting = false;
  if (n.alive)
    return;
  n.actor = std::move(actor);
  n.status = std::move(status);
  n.alive = true;
  n.error.clear();
  n.running = 0;
  n.backoff = st.deps.reconnect_min;
  ++n.rejoined;
  self->monitor(n.actor);
  refresh_live(self);
  dispatch(self);
}

/// Tries node `i` again after its backoff (doubled for the next time), or
/// gives it up once deps.reconnect_for has passed since it was lost.
void schedule_reconnect(pool_self self, size_t i) {
  auto& st = self->state;
  auto& n = st.nodes[i];
  if (!st.deps.connect || !n.was_up || n.alive || n.given_up)
    return;
  auto elapsed = std::chrono::steady_clock::now() - n.lost_at;
  if (st.deps.reconnect_for.count() > 0 && elapsed >= st.deps.reconnect_for) {
    n.reconnecting = false;
    n.given_up = true;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                st.deps.reconnect_for)
                .count();
    n.error += "; given up after trying to connect again for "
               + (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s"
                                 : std::to_string(ms) + " ms");
    return;
  }
  n.reconnecting = true;
  auto wait = n.backoff;
  n.backoff = std::min(n.backoff * 2, st.deps.reconnect_max);
  // Linked: it ends with the pool (its wait included).
  auto connector = self->spawn<caf::detached + caf::linked>(
    connector_impl, st.deps.connect, n.address);
  self->request(connector, caf::infinite, connect_atom::value, wait)
    .then(
      [=](caf::actor& actor, node_status& status) {
        rejoin(self, i, caf::actor_cast<node_actor>(actor), std::move(status));
      },
      [=](caf::error& e) {
        auto& n = self->state.nodes[i];
        n.reconnecting = false;
        if (n.alive)
          return;
        auto lost = n.error.substr(0, n.error.find("; reconnecting: "));
        n.error = lost + "; reconnecting: " + error_text(e);
        schedule_reconnect(self, i);
        // Given up, and no node left: the queued tasks fail now.
        dispatch(self);
      });
}

std::string no_node_text(pool_self self) {
  std::string why = "no worker node left to run it";
  for (auto& n : self->state.nodes)
    if (!n.error.empty())
      why += "; " + n.address + ": " + n.error;
  return why;
}

/// Node `i` is gone: its unfinished tasks go back to the front of the
/// queue (or fail after max_attempts).
void node_lost(pool_self self, size_t i, const std::string& why) {
  auto& st = self->state;
  auto& n = st.nodes[i];
  if (!n.alive)
    return;
  n.alive = false;
  n.error = why;
  n.running = 0;
  n.lost_at = std::chrono::steady_clock::now();
  n.backoff = st.deps.reconnect_min;
  refresh_live(self);
  std::vector<std::string> back;
  std::vector<std::pair<std::string, run_result>> given_up;
  for (auto& kvp : st.tasks) {
    auto& t = kvp.second;
    if (t.node != static_cast<int32_t>(i) || t.result || t.writing)
      continue;
    t.node = -1;
    if (t.attempt >= st.deps.max_attempts) {
      given_up.emplace_back(kvp.first,
                            failed_result(t, "its worker node " + n.address
                                               + " was lost on each of "
                                               + std::to_string(t.attempt)
                                               + " attempts; last: " + why));
      continue;
    }
    t.info.state = "queued";
    back.push_back(kvp.first);
  }
  // Recorded after the walk: a collected task is erased.
  for (auto& [id, res] : given_up)
    record(self, id, std::move(res));
  // Ids sort by submission: the oldest goes first again.
  for (auto it = back.rbegin(); it != back.rend(); ++it)
    st.queue.push_front(*it);
  schedule_reconnect(self, i);
  dispatch(self);
}

/// The task `id` when node `i` still runs its attempt `attempt`; else
/// nullptr, the answer counted as dropped (late, repeated or superseded).
node_pool_state::task_entry* awaited(pool_self self, size_t i,
                                     const std::string& id, int32_t attempt) {
  auto& st = self->state;
  auto it = st.tasks.find(id);
  if (it == st.tasks.end() || it->second.result || it->second.writing
      || it->second.attempt != attempt
      || it->second.node != static_cast<int32_t>(i)) {
    ++st.dropped;
    return nullptr;
  }
  return &it->second;
}

/// Appends "(note)" to a result's message.
void add_note(run_result& res, const std::string& note) {
  if (note.empty())
    return;
  if (res.message.empty())
    res.message = note;
  else
    res.message += " (" + note + ")";
}

/// "label: a; b; c", or "" when `items` is empty.
std::string listed(const std::string& label,
                   const std::vector<std::string>& items) {
  std::string out;
  for (size_t k = 0; k < items.size(); ++k)
    out += (k > 0 ? "; " : label + ": ") + items[k];
  return out;
}

/// The files the run deleted and did not write again after: every step's
/// deletions, less the files that came back.
std::vector<std::string> deleted_in_run(const run_result& res,
                                        const std::vector<run_file>& back) {
  std::set<std::string> out;
  for (const auto& it : res.iterations)
    for (const auto& step : it.steps)
      out.insert(step.deleted.begin(), step.deleted.end());
  for (const auto& f : back)
    out.erase(f.path);
  return {out.begin(), out.end()};
}

void on_outcome(pool_self self, size_t i, const std::string& id,
                int32_t attempt, node_outcome& out) {
  auto& st = self->state;
  auto* current = awaited(self, i, id, attempt);
  if (current == nullptr)
    return;
  auto& t = *current;
  auto& n = st.nodes[i];
  n.running = std::max(0, n.running - 1);
  ++n.done;
  auto res = std::make_shared<run_result>(std::move(out.result));
  res->workspace = n.address + ":" + res->workspace;
  auto note = listed("files not sent to the node", t.seed_omitted);
  if (auto left = listed("files left out by the node", out.omitted);
      !left.empty())
    note += (note.empty() ? "" : "; ") + left;
  // Where the files come back to: the spec's own workspace, else the
  // task's folder under the output folder, else nowhere.
  std::string into;
  if (!t.spec.workspace.empty())
    into = t.spec.workspace;
  else if (!st.deps.out_dir.empty())
    into = st.deps.out_dir + "/" + t.folder;
  auto deleted = t.spec.workspace.empty() ? std::vector<std::string>{}
                                          : deleted_in_run(*res, out.files);
  bool changes = !out.files.empty() || !deleted.empty();
  // A spec's workspace always goes through the job: its lock is given back
  // there, before the result is out (a save right after it then works).
  if (into.empty() || (!changes && t.spec.workspace.empty())) {
    if (!into.empty())
      res->workspace = into;
    add_note(*res, note);
    record(self, id, std::move(*res));
    dispatch(self);
    return;
  }
  t.writing = true;
  t.node = -1;
  auto files = std::make_shared<std::vector<run_file>>(std::move(out.files));
  auto failed = std::make_shared<std::vector<std::string>>();
  std::function<void()> work;
  if (!t.spec.workspace.empty())
    work = [into, files, failed, deleted, lock = std::move(t.lock)] {
      *failed = apply_run_changes(into, *files, deleted);
      if (lock)
        lock->reset();
    };
  else
    work = [out_dir = st.deps.out_dir, folder = t.folder, files, failed] {
      *failed = write_run_files(out_dir, folder, *files);
    };
  run_blocking(self, true, std::move(work),
               [=](const std::string& error) mutable {
                 res->workspace = into;
                 if (!error.empty())
                   failed->push_back(error);
                 if (auto w = listed("files not written", *failed); !w.empty())
                   note += (note.empty() ? "" : "; ") + w;
                 add_note(*res, note);
                 record(self, id, std::move(*res));
               });
  dispatch(self);
}

void on_error(pool_self self, size_t i, const std::string& id, int32_t attempt,
              const caf::error& e) {
  auto& st = self->state;
  auto* current = awaited(self, i, id, attempt);
  if (current == nullptr)
    return;
  if (e.category() != caf::atom("orch")) {
    // The node (or the connection to it) is gone: a request to a proxy that
    // just died bounces with its exit reason (category "exit") or a system
    // error; the down message may come after this; either one requeues the
    // task once. A node refuses a run only with an orch error.
    node_lost(self, i, self->system().render(e));
    return;
  }
  auto& n = st.nodes[i];
  n.running = std::max(0, n.running - 1);
  ++n.done;
  // The node refused the spec (unknown workflow, agent unavailable there).
  record(self, id,
         failed_result(*current, "refused by worker node " + n.address + ": "
                                   + error_text(e)));
  dispatch(self);
}

void dispatch(pool_self self) {
  auto& st = self->state;
  while (!st.queue.empty()) {
    int32_t best = -1;
    int32_t best_free = 0;
    for (size_t i = 0; i < st.nodes.size(); ++i) {
      auto& n = st.nodes[i];
      auto free = n.status.slots - n.running;
      if (n.alive && free > best_free) {
        best = static_cast<int32_t>(i);
        best_free = free;
      }
    }
    if (best < 0)
      break;
    auto id = st.queue.front();
    st.queue.pop_front();
    auto it = st.tasks.find(id);
    if (it == st.tasks.end() || it->second.result)
      continue;
    auto& t = it->second;
    auto& n = st.nodes[static_cast<size_t>(best)];
    ++t.attempt;
    t.node = best;
    t.info.state = "running";
    ++n.running;
    progress_event ev;
    ev.kind = progress_event::kind_t::run_started;
    ev.text = n.address;
    send_event(self, t, std::move(ev));
    node_task task;
    task.task_id = id;
    task.attempt = t.attempt;
    task.spec = t.spec;
    task.seed = t.seed;
    auto i = static_cast<size_t>(best);
    auto attempt = t.attempt;
    self->request(n.actor, caf::infinite, atom::node_run_v, std::move(task))
      .then(
        [=](node_outcome& out) {
          on_outcome(self, i, id, attempt, out);
        },
        [=](caf::error& e) {
          on_error(self, i, id, attempt, e);
        });
  }
  if (!any_hope(st) && !st.queue.empty())
    fail_queued(self, no_node_text(self));
}

bool cancel_tasks(pool_self self, const std::string& id) {
  auto& st = self->state;
  bool found = false;
  std::vector<std::string> queued;
  for (auto& kvp : st.tasks) {
    if ((!id.empty() && kvp.first != id) || kvp.second.result)
      continue;
    found = true;
    auto& t = kvp.second;
    if (t.node >= 0)
      caf::anon_send(st.nodes[static_cast<size_t>(t.node)].actor,
                     atom::cancel_v, kvp.first);
    else if (!t.writing)
      queued.push_back(kvp.first);
  }
  for (auto& q : queued) {
    auto& t = st.tasks[q];
    record(self, q, failed_result(t, "cancelled", run_status::cancelled));
  }
  if (!queued.empty()) {
    auto& q = st.queue;
    q.erase(std::remove_if(q.begin(), q.end(),
                           [&](const std::string& x) {
                             auto it = st.tasks.find(x);
                             return it == st.tasks.end() || it->second.result;
                           }),
            q.end());
  }
  return found;
}

} // namespace

coordinator_actor::behavior_type node_pool_impl(pool_self self,
                                                std::vector<node_link> links,
                                                node_pool_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  for (auto& l : links) {
    node_pool_state::node_entry n;
    n.address = l.address;
    n.actor = l.actor;
    n.status = l.status;
    n.alive = l.error.empty() && l.actor;
    n.was_up = n.alive;
    n.error = l.error;
    n.backoff = st.deps.reconnect_min;
    if (n.alive)
      self->monitor(n.actor);
    st.nodes.push_back(std::move(n));
  }
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t i = 0; i < st.nodes.size(); ++i)
      if (st.nodes[i].actor && st.nodes[i].actor.address() == dm.source)
        node_lost(self, i,
                  "connection lost (" + self->system().render(dm.reason) + ")");
    auto gone = [&](const progress_sink& s) {
      return s.address() == dm.source;
    };
    auto& all = st.all_subscribers;
    all.erase(std::remove_if(all.begin(), all.end(), gone), all.end());
  });
  refresh_live(self);
  // When the pool stops, the runs it started stop too.
  self->attach_functor([live = st.live](const caf::error&) {
    for (auto& n : *live)
      caf::anon_send(n, atom::cancel_v, std::string{});
  });
  return {
    [=](atom::submit, run_spec& spec) -> caf::result<std::string> {
      auto& st = self->state;
      if (!any_hope(st))
        return caf::make_error(errc::node_unavailable, no_node_text(self));
      if (spec.task.empty())
        return caf::make_error(errc::invalid_request, "the task text is empty");
      auto id = make_run_id();
      auto& t = st.tasks[id];
      t.spec = std::move(spec);
      t.info.run_id = id;
      t.info.workflow = t.spec.workflow;
      t.info.task = t.spec.task;
      t.info.state = "queued";
      t.info.started_ms = wall_clock_ms();
      t.folder = plain_name(t.spec.label.empty() ? id : t.spec.label);
      if (!st.folders.insert(t.folder).second) {
        t.folder += "-" + plain_name(id);
        st.folders.insert(t.folder);
      }
      if (!t.spec.workspace.empty())
        t.info.workspace = t.spec.workspace;
      else if (!st.deps.out_dir.empty())
        t.info.workspace = st.deps.out_dir + "/" + t.folder;
      if (t.spec.workspace.empty()) {
        st.queue.push_back(id);
        dispatch(self);
        return id;
      }
      // Its workspace's files go along: read them first (queued meanwhile;
      // a cancel records it at once).
      auto seed = std::make_shared<std::vector<run_file>>();
      auto omitted = std::make_shared<std::vector<std::string>>();
      auto lock = std::make_shared<std::optional<workspace_lock>>();
      auto busy = std::make_shared<std::string>();
      run_blocking(
        self, true,
        [ws = t.spec.workspace, max = st.deps.max_seed_bytes, seed, omitted,
         lock, busy, id] {
          std::error_code ec;
          std::filesystem::create_directories(ws, ec);
          *lock = workspace_lock::acquire(ws, id, *busy);
          if (*lock)
            collect_workspace_files(ws, max, *seed, *omitted);
        },
        [=](const std::string& error) {
          auto& st = self->state;
          auto it = st.tasks.find(id);
          if (it == st.tasks.end() || it->second.result) {
            release_lock(self, lock);
            return;
          }
          it->second.lock = lock;
          if (!error.empty() || !*lock) {
            record(self, id,
                   failed_result(it->second,
                                 error.empty()
                                   ? *busy
                                   : "cannot read its workspace: " + error));
            return;
          }
          it->second.seed = std::move(*seed);
          it->second.seed_omitted = std::move(*omitted);
          st.queue.push_back(id);
          dispatch(self);
        });
      return id;
    },
    [=](atom::result, const std::string& id) -> caf::result<run_result> {
      auto& st = self->state;
      auto it = st.tasks.find(id);
      if (it == st.tasks.end())
        return unknown_run_error(id);
      if (it->second.result) {
        auto res = *it->second.result;
        if (st.deps.drop_collected)
          st.tasks.erase(it);
        return res;
      }
      auto rp = self->make_response_promise<run_result>();
      it->second.waiters.push_back(rp);
      return rp;
    },
    [=](atom::list) {
      std::vector<run_info> out;
      for (auto& kvp : self->state.tasks)
        out.push_back(kvp.second.info);
      return out;
    },
    [=](atom::status, const std::string& id) -> caf::result<run_info> {
      auto& st = self->state;
      auto it = st.tasks.find(id);
      if (it == st.tasks.end())
        return unknown_run_error(id);
      return it->second.info;
    },
    [=](atom::cancel, const std::string& id) {
      return cancel_tasks(self, id);
    },
    [=](atom::subscribe, const std::string& id, uint64_t, progress_sink sink) {
      auto& st = self->state;
      self->monitor(sink);
      if (id.empty()) {
        st.all_subscribers.push_back(std::move(sink));
        return;
      }
      auto it = st.tasks.find(id);
      if (it == st.tasks.end())
        return;
      if (it->second.result) {
        progress_event ev;
        ev.kind = progress_event::kind_t::run_finished;
        ev.run_id = id;
        ev.text = to_string(it->second.result->status);
        ev.ok = it->second.result->status != run_status::failed
                && it->second.result->status != run_status::cancelled;
        self->send(sink, atom::progress_v, ev);
        return;
      }
      it->second.subscribers.push_back(std::move(sink));
    },
    [=](atom::unsubscribe, const std::string& id, const progress_sink& sink) {
      auto& st = self->state;
      auto drop = [&](std::vector<progress_sink>& v) {
        v.erase(std::remove(v.begin(), v.end(), sink), v.end());
      };
      if (id.empty())
        drop(st.all_subscribers);
      else if (auto it = st.tasks.find(id); it != st.tasks.end())
        drop(it->second.subscribers);
    },
    [=](atom::progress, progress_event&) {
      // Only the coordinator's own workflow actors send these.
    },
    [=](atom::node_info) {
      std::vector<node_report> out;
      for (const auto& n : self->state.nodes) {
        out.push_back(node_report{n.address, n.alive, n.error, n.status});
        out.back().status.running = n.running;
      }
      return out;
    },
  };
}

} // namespace orch
