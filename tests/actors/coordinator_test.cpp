// The run coordinator: validation, shared agents across runs, per-run cancel,
// supervision, progress replay and run ids. Deterministic tests run on CAF's
// test coordinator; those that need a step to hang use a threaded system with
// the fake runner and bounded waits on events.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>

#include "actors/agent_actor.hpp"
#include "actors/coordinator.hpp"
#include "actors/system_config.hpp"
#include "runtime/text.hpp"
#include "support/agents.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

/// The longest a threaded test waits for an event.
constexpr auto k_max_test_wait = std::chrono::seconds{20};

using coordinator_type = std::remove_pointer_t<
  coordinator_actor::stateful_pointer<coordinator_state>>;
using agent_type
  = std::remove_pointer_t<agent_actor::stateful_pointer<agent_state>>;

using test::command_agent;

step_config one(std::string agent, std::string task = "implement") {
  return step_config{{step_item{std::move(agent), std::move(task), ""}}};
}

workflow_config make_workflow(std::string name,
                              std::vector<step_config> steps) {
  workflow_config wf;
  wf.name = std::move(name);
  wf.max_iterations = 1;
  wf.steps = std::move(steps);
  return wf;
}

/// Returns the run id a spec ran for: the name of its working directory.
std::string run_of(const process_spec& spec) {
  return fs::path{spec.cwd}.filename().string();
}

/// A fixture with a temporary workspace root and a config of agents a and b
/// (limit 1 each) and workflows one (a), two (a, a) and ab (a, b).
class coordinator_fixture : public ::testing::Test {
protected:
  coordinator_fixture() : runner_{std::make_shared<fake_process_runner>()} {
    root_
      = fs::temp_directory_path()
        / ("orch-coord-test-" + std::to_string(::getpid()) + "-"
           + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    config_.agents = {command_agent("a"), command_agent("b")};
    config_.workflows = {make_workflow("one", {one("a")}),
                         make_workflow("two", {one("a"), one("a")}),
                         make_workflow("ab", {one("a"), one("b")})};
    config_.settings.workspace_dir = (root_ / "ws").string();
    fake_response ok;
    ok.out_lines = {"done"};
    runner_->set_fallback(ok);
  }

  ~coordinator_fixture() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  coordinator_deps deps(bool detached) {
    coordinator_deps d;
    d.runner = runner_;
    d.detached_workers = detached;
    d.check_agent = [this](const agent_config& agent) {
      return unavailable_.count(agent.name) ? "not installed: test" : "";
    };
    return d;
  }

  static run_spec spec(std::string workflow, std::string task = "do it") {
    run_spec s;
    s.task = std::move(task);
    s.workflow = std::move(workflow);
    return s;
  }

  fs::path root_;
  config config_;
  std::shared_ptr<fake_process_runner> runner_;
  std::set<std::string> unavailable_;
};

// -- deterministic ------------------------------------------------------------

class coordinator_test : public coordinator_fixture {
protected:
  coordinator_test()
    : cfg_{true}, sys_{cfg_}, sched_{
                                dynamic_cast<caf::scheduler::test_coordinator&>(
                                  sys_.scheduler())} {
    // nop
  }

  ~coordinator_test() override {
    // The coordinator stops with its agents, as a front door stops it.
    for (auto& c : spawned_)
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  coordinator_actor spawn() {
    auto c = sys_.spawn(coordinator_impl,
                        std::make_shared<const config>(config_), deps(false));
    spawned_.push_back(c);
    sched_.run();
    return c;
  }

  static coordinator_state& state_of(const coordinator_actor& c) {
    return dynamic_cast<coordinator_type&>(
             *caf::actor_cast<caf::abstract_actor*>(c))
      .state;
  }

  /// Submits and runs everything; returns the id or the error text.
  caf::expected<std::string> submit(const coordinator_actor& c, run_spec s) {
    caf::scoped_actor self{sys_};
    auto rh = self->request(c, caf::infinite, atom::submit_v, std::move(s));
    sched_.run();
    caf::expected<std::string> out{std::string{}};
    rh.receive(
      [&](std::string& id) {
        out = std::move(id);
      },
      [&](caf::error& err) {
        out = std::move(err);
      });
    return out;
  }

  run_result result(const coordinator_actor& c, const std::string& id) {
    caf::scoped_actor self{sys_};
    auto rh = self->request(c, caf::infinite, atom::result_v, id);
    sched_.run();
    run_result out;
    rh.receive(
      [&](run_result& res) {
        out = std::move(res);
      },
      [&](caf::error& err) {
        ADD_FAILURE() << "no result: " << sys_.render(err);
      });
    return out;
  }

  system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  std::vector<coordinator_actor> spawned_;
};

TEST_F(coordinator_test, runs_sharing_an_agent_take_turns_in_arrival_order) {
  auto c = spawn();
  caf::scoped_actor self{sys_};
  // Both submitted before anything runs: two runs at once.
  auto ra = self->request(c, caf::infinite, atom::submit_v, spec("two"));
  auto rb = self->request(c, caf::infinite, atom::submit_v, spec("two"));
  auto agent = state_of(c).agents.at("a");
  auto& agent_state
    = dynamic_cast<agent_type&>(*caf::actor_cast<caf::abstract_actor*>(agent))
        .state;
  size_t most = 0;
  while (sched_.try_run_once())
    most = std::max(most, agent_state.running.size());
  std::string a;
  std::string b;
  ra.receive(
    [&](std::string& id) {
      a = id;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  rb.receive(
    [&](std::string& id) {
      b = id;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  ASSERT_LT(a, b);
  EXPECT_EQ(most, 1u);
  std::vector<std::string> order;
  for (auto& call : runner_->calls())
    order.push_back(run_of(call));
  // A's first step came first; B's first step waited in the queue ahead of
  // A's second, which arrived later.
  EXPECT_EQ(order, (std::vector<std::string>{a, b, a, b}));
  EXPECT_EQ(result(c, a).status, run_status::completed);
  EXPECT_EQ(result(c, b).status, run_status::completed);
}

TEST_F(coordinator_test, submit_validates_the_spec) {
  unavailable_ = {"b"};
  auto c = spawn();
  auto render = [&](const caf::expected<std::string>& x) {
    return x ? std::string{"ok"} : sys_.render(x.error());
  };
  auto unknown = submit(c, spec("nope"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), caf::make_error(errc::unknown_name));
  EXPECT_NE(render(unknown).find("unknown workflow 'nope'"), std::string::npos);
  // The plain message, for front doors that print their own prefix.
  EXPECT_EQ(error_text(unknown.error())
              .rfind("unknown workflow 'nope' (known: "
                     "one, two, ab)",
                     0),
            0u)
    << error_text(unknown.error());
  auto bad = spec("one");
  bad.agents = "zed";
  auto bad_agents = submit(c, bad);
  ASSERT_FALSE(bad_agents);
  EXPECT_NE(render(bad_agents).find("--agents: unknown agent 'zed'"),
            std::string::npos);
  bad.agents = "a,a,a";
  EXPECT_NE(render(submit(c, bad)).find("give one agent for every step"),
            std::string::npos);
  EXPECT_NE(render(submit(c, spec("one", " \n "))).find("empty"),
            std::string::npos);
  EXPECT_NE(render(submit(c, spec("one", std::string{"a\0b", 3}))).find("NUL"),
            std::string::npos);
  EXPECT_NE(render(submit(c, spec("one", std::string(100001, 'x'))))
              .find("settings.max_task_chars"),
            std::string::npos);
  auto missing = submit(c, spec("ab"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), caf::make_error(errc::agent_unavailable));
  EXPECT_NE(render(missing).find("b (not installed: test)"), std::string::npos);
  // A workspace another run holds is refused, naming the holder.
  std::string err;
  auto held = root_ / "held";
  fs::create_directories(held);
  auto lock = workspace_lock::acquire(held, "holder-run-1", err);
  ASSERT_TRUE(lock) << err;
  auto locked_spec = spec("one");
  locked_spec.workspace = held.string();
  auto locked = submit(c, locked_spec);
  ASSERT_FALSE(locked);
  EXPECT_EQ(locked.error(), caf::make_error(errc::workspace_locked));
  EXPECT_NE(render(locked).find("holder-run-1"), std::string::npos);
  // Nothing ran, and a valid spec still works.
  EXPECT_EQ(runner_->call_count(), 0u);
  auto fine = spec("one");
  fine.agents = "a";
  auto id = submit(c, fine);
  ASSERT_TRUE(id) << render(id);
  EXPECT_EQ(result(c, *id).status, run_status::completed);
}

TEST_F(coordinator_test, agents_override_travels_with_the_run_only) {
  auto c = spawn();
  auto s = spec("ab");
  s.agents = "a";
  auto id = submit(c, s);
  ASSERT_TRUE(id) << sys_.render(id.error());
  auto res = result(c, *id);
  EXPECT_EQ(res.status, run_status::completed);
  ASSERT_EQ(runner_->call_count(), 2u);
  for (auto& call : runner_->calls())
    EXPECT_EQ(call.argv.at(0), "a");
  // The shared workflow still names b.
  auto id2 = submit(c, spec("ab"));
  ASSERT_TRUE(id2);
  result(c, *id2);
  EXPECT_EQ(runner_->last_call().argv.at(0), "b");
}

TEST_F(coordinator_test, status_list_and_result_follow_a_run) {
  auto c = spawn();
  caf::scoped_actor self{sys_};
  auto rh = self->request(c, caf::infinite, atom::submit_v, spec("one"));
  sched_.run_once();
  std::string id;
  rh.receive(
    [&](std::string& x) {
      id = x;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  EXPECT_EQ(state_of(c).runs.at(id).info.state, "queued");
  while (state_of(c).runs.at(id).events.empty())
    ASSERT_TRUE(sched_.try_run_once());
  EXPECT_EQ(state_of(c).runs.at(id).info.state, "running");
  auto res = result(c, id);
  auto st = self->request(c, caf::infinite, atom::status_v, id);
  sched_.run();
  st.receive(
    [&](run_info& info) {
      EXPECT_EQ(info.state, "finished");
      EXPECT_EQ(info.status, run_status::completed);
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  EXPECT_EQ(res.status, run_status::completed);
  EXPECT_EQ(res.run_id, id);
  auto ls = self->request(c, caf::infinite, atom::list_v);
  sched_.run();
  ls.receive(
    [&](std::vector<run_info>& runs) {
      ASSERT_EQ(runs.size(), 1u);
      EXPECT_EQ(runs[0].run_id, id);
      EXPECT_EQ(runs[0].state, "finished");
      EXPECT_EQ(runs[0].status, run_status::completed);
      EXPECT_EQ(runs[0].workspace, (root_ / "ws" / id).string());
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  // The result is kept for late askers; unknown ids are an error.
  EXPECT_EQ(result(c, id).status, run_status::completed);
  auto unknown = self->request(c, caf::infinite, atom::result_v, "x");
  sched_.run();
  unknown.receive(
    [&](run_result&) {
      FAIL() << "a result for no run";
    },
    [&](caf::error& e) {
      EXPECT_EQ(e, caf::make_error(errc::unknown_run));
    });
  // A huge id that is not UTF-8 comes back clipped and valid.
  auto hostile = std::string(100'000, 'a') + "\xff\xfe";
  auto huge = self->request(c, caf::infinite, atom::result_v, "\xc3" + hostile);
  sched_.run();
  huge.receive(
    [&](run_result&) {
      FAIL() << "a result for no run";
    },
    [&](caf::error& e) {
      auto text = error_text(e);
      EXPECT_EQ(text.rfind("no run ", 0), 0u) << text;
      EXPECT_LT(text.size(), 100u);
      EXPECT_EQ(orch::text::to_valid_utf8(text), text);
    });
  EXPECT_TRUE(fs::exists(root_ / "ws" / id / ".orchestrator/manifest.json"));
}

TEST_F(coordinator_test, a_late_subscriber_replays_from_its_number_then_live) {
  auto c = spawn();
  caf::scoped_actor self{sys_};
  auto rh = self->request(c, caf::infinite, atom::submit_v, spec("two"));
  auto& st = state_of(c);
  // Run until the run has some events, but not all.
  while (st.runs.empty() || st.runs.begin()->second.events.size() < 3)
    ASSERT_TRUE(sched_.try_run_once());
  auto id = st.runs.begin()->first;
  ASSERT_FALSE(st.runs.begin()->second.result);
  rh.receive(
    [&](std::string& x) {
      EXPECT_EQ(x, id);
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  self->send(c, atom::subscribe_v, id, uint64_t{1},
             caf::actor_cast<progress_sink>(self));
  sched_.run();
  std::vector<progress_event> got;
  while (!self->mailbox().empty())
    self->receive([&](atom::progress, progress_event& ev) {
      got.push_back(ev);
    });
  ASSERT_GE(got.size(), 3u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 2) << "event " << i;
    EXPECT_EQ(got[i].run_id, id);
  }
  EXPECT_EQ(got.back().kind, progress_event::kind_t::run_finished);
  // Every event of the run, exactly once, from 2 on: none missed between the
  // replay and the live ones.
  EXPECT_EQ(got.back().seq, st.runs.at(id).next_seq - 1);
  // A subscriber after the end replays only what it asks for.
  self->send(c, atom::subscribe_v, id, got.back().seq - 1,
             caf::actor_cast<progress_sink>(self));
  sched_.run();
  std::vector<progress_event> tail;
  while (!self->mailbox().empty())
    self->receive([&](atom::progress, progress_event& ev) {
      tail.push_back(ev);
    });
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].kind, progress_event::kind_t::run_finished);
}

TEST_F(coordinator_test, an_all_runs_subscriber_gets_each_runs_own_sequence) {
  auto c = spawn();
  caf::scoped_actor self{sys_};
  self->send(c, atom::subscribe_v, std::string{}, uint64_t{0},
             caf::actor_cast<progress_sink>(self));
  sched_.run();
  auto a = submit(c, spec("one"));
  auto b = submit(c, spec("two"));
  ASSERT_TRUE(a && b);
  std::map<std::string, std::vector<progress_event>> by_run;
  while (!self->mailbox().empty())
    self->receive([&](atom::progress, progress_event& ev) {
      by_run[ev.run_id].push_back(ev);
    });
  ASSERT_EQ(by_run.size(), 2u);
  for (auto& [id, events] : by_run) {
    ASSERT_FALSE(events.empty());
    for (size_t i = 0; i < events.size(); ++i)
      EXPECT_EQ(events[i].seq, i + 1) << id;
    EXPECT_EQ(events.front().kind, progress_event::kind_t::run_started);
    EXPECT_EQ(events.back().kind, progress_event::kind_t::run_finished);
  }
}

TEST_F(coordinator_test, keeps_a_bounded_number_of_events_and_results) {
  auto d = deps(false);
  d.event_buffer = 3;
  d.retained_runs = 2;
  auto c = sys_.spawn(coordinator_impl, std::make_shared<const config>(config_),
                      d);
  spawned_.push_back(c);
  sched_.run();
  auto first = submit(c, spec("one"));
  auto second = submit(c, spec("one"));
  auto third = submit(c, spec("one"));
  ASSERT_TRUE(first && second && third);
  auto& st = state_of(c);
  EXPECT_EQ(st.runs.count(*first), 0u);
  ASSERT_EQ(st.runs.count(*third), 1u);
  auto last = st.runs.at(*third).next_seq - 1;
  ASSERT_GT(last, 3u);
  caf::scoped_actor self{sys_};
  self->send(c, atom::subscribe_v, *third, uint64_t{0},
             caf::actor_cast<progress_sink>(self));
  sched_.run();
  std::vector<uint64_t> seqs;
  while (!self->mailbox().empty())
    self->receive([&](atom::progress, progress_event& ev) {
      seqs.push_back(ev.seq);
    });
  EXPECT_EQ(seqs, (std::vector<uint64_t>{last - 2, last - 1, last}));
  auto gone = self->request(c, caf::infinite, atom::status_v, *first);
  sched_.run();
  gone.receive(
    [&](run_info&) {
      FAIL() << "the oldest run is still kept";
    },
    [&](caf::error& e) {
      EXPECT_EQ(e, caf::make_error(errc::unknown_run));
    });
}

TEST_F(coordinator_test, a_workflow_actor_that_dies_gives_a_failed_run) {
  auto c = spawn();
  caf::scoped_actor self{sys_};
  auto rh = self->request(c, caf::infinite, atom::submit_v, spec("two"));
  auto& st = state_of(c);
  while (st.runs.empty())
    ASSERT_TRUE(sched_.try_run_once());
  auto id = st.runs.begin()->first;
  rh.receive(
    [&](std::string& x) {
      EXPECT_EQ(x, id);
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  self->send(c, atom::subscribe_v, id, uint64_t{0},
             caf::actor_cast<progress_sink>(self));
  sched_.run_once();
  self->send_exit(st.runs.begin()->second.actor, caf::exit_reason::kill);
  auto res = result(c, id);
  EXPECT_EQ(res.status, run_status::failed);
  EXPECT_NE(res.message.find("workflow actor stopped"), std::string::npos)
    << res.message;
  EXPECT_TRUE(fs::exists(root_ / "ws" / id / ".orchestrator/manifest.json"));
  bool finished = false;
  while (!self->mailbox().empty())
    self->receive([&](atom::progress, progress_event& ev) {
      if (ev.kind == progress_event::kind_t::run_finished) {
        finished = true;
        EXPECT_FALSE(ev.ok);
      }
    });
  EXPECT_TRUE(finished);
  // The coordinator lives on: the workspace lock was released with the run.
  std::string err;
  EXPECT_TRUE(workspace_lock::acquire(root_ / "ws" / id, "next", err)) << err;
}

TEST_F(coordinator_test, an_unavailable_agent_with_a_fallback_runs_as_it) {
  // Issue 12: `a` is not installed but falls back to `b`; the run is
  // accepted and the step says who ran it and why.
  unavailable_ = {"a"};
  config_.agents[0].fallback = {"b"};
  fake_response missing;
  missing.started = false;
  runner_->on("a", missing);
  auto c = spawn();
  auto id = submit(c, spec("one"));
  ASSERT_TRUE(id) << sys_.render(id.error());
  auto res = result(c, *id);
  EXPECT_EQ(res.status, run_status::completed) << res.message;
  ASSERT_EQ(res.iterations.size(), 1u);
  ASSERT_EQ(res.iterations[0].steps.size(), 1u);
  const auto& step = res.iterations[0].steps[0];
  EXPECT_EQ(step.agent, "a");
  EXPECT_EQ(step.ran_as, "b");
  EXPECT_EQ(step.fallback_reason.rfind("not_installed: ", 0), 0u)
    << step.fallback_reason;
  ASSERT_EQ(step.attempts.size(), 2u);
  EXPECT_EQ(step.attempts[0].failure, failure_kind::not_installed);
  // Without an available fallback the run is refused as before.
  unavailable_ = {"a", "b"};
  auto refused = submit(c, spec("one"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), caf::make_error(errc::agent_unavailable));
}

TEST_F(coordinator_test, a_dead_agent_actor_refuses_new_runs_that_need_it) {
  auto c = spawn();
  caf::scoped_actor self{sys_};
  auto agent = state_of(c).agents.at("a");
  self->send_exit(agent, caf::exit_reason::kill);
  sched_.run();
  // The coordinator saw it go: a new run needing it is refused up front.
  auto refused = submit(c, spec("one"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), caf::make_error(errc::agent_unavailable));
  EXPECT_NE(sys_.render(refused.error()).find("agent actor is down"),
            std::string::npos);
}

TEST_F(coordinator_test,
       with_a_state_directory_a_repeated_run_replays_its_steps) {
  // The step cache: the coordinator spawns it when it has a state directory
  // (settings.cache.enabled by default) and hands it to the agents.
  auto d = deps(false);
  d.state_dir = root_ / "state";
  auto c = sys_.spawn(coordinator_impl, std::make_shared<const config>(config_),
                      d);
  spawned_.push_back(c);
  sched_.run();
  ASSERT_TRUE(state_of(c).cache);
  // Each run has a fresh workspace `<workspace_dir>/<run id>`, empty: the
  // same content, only the path (in the prompt) differs.
  auto first = submit(c, spec("one"));
  ASSERT_TRUE(first) << sys_.render(first.error());
  auto r1 = result(c, *first);
  ASSERT_EQ(r1.status, run_status::completed) << r1.message;
  EXPECT_FALSE(r1.iterations.at(0).steps.at(0).cached);
  auto second = submit(c, spec("one"));
  ASSERT_TRUE(second);
  auto r2 = result(c, *second);
  ASSERT_EQ(r2.status, run_status::completed) << r2.message;
  EXPECT_TRUE(r2.iterations.at(0).steps.at(0).cached);
  EXPECT_EQ(runner_->call_count(), 1u);
  EXPECT_TRUE(fs::is_directory(root_ / "state" / "cache"));
  // run_spec.no_cache reaches the step: the agent runs again.
  auto s = spec("one");
  s.no_cache = true;
  auto third = submit(c, s);
  ASSERT_TRUE(third);
  auto r3 = result(c, *third);
  EXPECT_FALSE(r3.iterations.at(0).steps.at(0).cached);
  EXPECT_EQ(runner_->call_count(), 2u);
  // Without a state directory there is no cache: the tests above rely on it.
  EXPECT_FALSE(state_of(spawn()).cache);
}

// -- run ids ------------------------------------------------------------------

TEST(run_id, ten_thousand_in_a_row_are_unique_and_sorted) {
  std::vector<std::string> ids;
  ids.reserve(10000);
  for (int i = 0; i < 10000; ++i)
    ids.push_back(make_run_id());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  std::set<std::string> unique{ids.begin(), ids.end()};
  EXPECT_EQ(unique.size(), ids.size());
  // YYYYMMDD-HHMMSS-mmm-xxxxxx
  ASSERT_EQ(ids[0].size(), 26u);
  for (size_t i : {8u, 15u, 19u})
    EXPECT_EQ(ids[0][i], '-') << ids[0];
}

// -- threaded (steps that hang until cancelled)
// --------------------------------

class coordinator_threaded_test : public coordinator_fixture {
protected:
  coordinator_threaded_test() : cfg_{false}, sys_{cfg_} {
    runner_->set_hook([this](const process_spec&) {
      std::lock_guard<std::mutex> guard{mutex_};
      ++started_;
      cv_.notify_all();
    });
  }

  /// Waits (bounded) until `n` processes have started.
  bool wait_started(size_t n) {
    std::unique_lock<std::mutex> guard{mutex_};
    return cv_.wait_for(guard, k_max_test_wait, [&] {
      return started_ >= n;
    });
  }

  std::string submit(caf::scoped_actor& self, const coordinator_actor& c,
                     run_spec s) {
    std::string out;
    self->request(c, k_max_test_wait, atom::submit_v, std::move(s))
      .receive(
        [&](std::string& id) {
          out = id;
        },
        [&](caf::error& e) {
          ADD_FAILURE() << sys_.render(e);
        });
    return out;
  }

  run_result result(caf::scoped_actor& self, const coordinator_actor& c,
                    const std::string& id) {
    run_result out;
    self->request(c, k_max_test_wait, atom::result_v, id)
      .receive(
        [&](run_result& res) {
          out = std::move(res);
        },
        [&](caf::error& e) {
          ADD_FAILURE() << "no result for " << id << ": " << sys_.render(e);
        });
    return out;
  }

  system_config cfg_;
  caf::actor_system sys_;
  std::mutex mutex_;
  std::condition_variable cv_;
  size_t started_ = 0;
};

TEST_F(coordinator_threaded_test, cancel_of_one_run_leaves_the_other_running) {
  // The first process hangs until cancelled; later ones answer at once.
  fake_response hang;
  hang.hang = true;
  fake_response ok;
  ok.out_lines = {"done"};
  runner_->on("a", hang);
  runner_->on("a", ok);
  auto c = spawn_coordinator(sys_, std::make_shared<const config>(config_),
                             deps(true));
  caf::scoped_actor self{sys_};
  auto a = submit(self, c, spec("one"));
  ASSERT_TRUE(wait_started(1));
  // B's step queues behind A's on the shared agent (limit 1).
  auto b = submit(self, c, spec("two"));
  bool found = false;
  self->request(c, k_max_test_wait, atom::cancel_v, a)
    .receive(
      [&](bool x) {
        found = x;
      },
      [&](caf::error& e) {
        FAIL() << sys_.render(e);
      });
  EXPECT_TRUE(found);
  auto ra = result(self, c, a);
  auto rb = result(self, c, b);
  EXPECT_EQ(ra.status, run_status::cancelled) << ra.message;
  EXPECT_EQ(rb.status, run_status::completed) << rb.message;
  ASSERT_EQ(rb.iterations.size(), 1u);
  EXPECT_EQ(rb.iterations[0].steps.size(), 2u);
  auto calls = runner_->calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(run_of(calls[0]), a);
  EXPECT_EQ(run_of(calls[1]), b);
  EXPECT_EQ(run_of(calls[2]), b);
  self->send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_F(coordinator_threaded_test, an_agent_actor_that_dies_mid_step_fails_it) {
  fake_response hang;
  hang.hang = true;
  runner_->on("a", hang);
  auto c = spawn_coordinator(sys_, std::make_shared<const config>(config_),
                             deps(true));
  caf::scoped_actor self{sys_};
  // Once it answered, its agent map is in place.
  auto id = submit(self, c, spec("one"));
  ASSERT_TRUE(wait_started(1));
  // The agent map is fixed after start (only a down message changes it).
  auto agent
    = dynamic_cast<coordinator_type&>(*caf::actor_cast<caf::abstract_actor*>(c))
        .state.agents.at("a");
  self->send_exit(agent, caf::exit_reason::kill);
  auto res = result(self, c, id);
  EXPECT_EQ(res.status, run_status::failed) << res.message;
  ASSERT_EQ(res.iterations.size(), 1u);
  ASSERT_EQ(res.iterations[0].steps.size(), 1u);
  EXPECT_EQ(res.iterations[0].steps[0].outcome.failure, failure_kind::crashed);
  self->send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_F(coordinator_threaded_test, an_exit_request_cancels_the_runs_then_stops) {
  fake_response hang;
  hang.hang = true;
  runner_->on("a", hang);
  auto c = spawn_coordinator(sys_, std::make_shared<const config>(config_),
                             deps(true));
  caf::scoped_actor self{sys_};
  auto id = submit(self, c, spec("one"));
  ASSERT_TRUE(wait_started(1));
  self->monitor(c);
  auto rh = self->request(c, k_max_test_wait, atom::result_v, id);
  self->send_exit(c, caf::exit_reason::user_shutdown);
  rh.receive(
    [&](run_result& res) {
      EXPECT_EQ(res.status, run_status::cancelled) << res.message;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  bool down = false;
  self->receive(
    [&](caf::down_msg& dm) {
      down = dm.source == c.address();
    },
    caf::after(k_max_test_wait) >> [] {});
  EXPECT_TRUE(down);
  EXPECT_TRUE(fs::exists(root_ / "ws" / id / ".orchestrator/manifest.json"));
}

TEST_F(coordinator_threaded_test, cancel_all_ends_every_run) {
  fake_response hang;
  hang.hang = true;
  runner_->on("a", hang);
  runner_->on("b", hang);
  auto c = spawn_coordinator(sys_, std::make_shared<const config>(config_),
                             deps(true));
  caf::scoped_actor self{sys_};
  auto a = submit(self, c, spec("one"));
  auto s = spec("one");
  s.agents = "b";
  auto b = submit(self, c, s);
  ASSERT_TRUE(wait_started(2));
  self->request(c, k_max_test_wait, atom::cancel_v, std::string{})
    .receive(
      [&](bool found) {
        EXPECT_TRUE(found);
      },
      [&](caf::error& e) {
        FAIL() << sys_.render(e);
      });
  EXPECT_EQ(result(self, c, a).status, run_status::cancelled);
  EXPECT_EQ(result(self, c, b).status, run_status::cancelled);
  self->send_exit(c, caf::exit_reason::user_shutdown);
}

// -- h16a: what a batch needs of the coordinator ------------------------------

class coordinator_batch_test : public coordinator_test {
protected:
  coordinator_actor spawn_with(coordinator_deps d) {
    auto c = sys_.spawn(coordinator_impl,
                        std::make_shared<const config>(config_), std::move(d));
    spawned_.push_back(c);
    sched_.run();
    return c;
  }
};

TEST_F(coordinator_batch_test, runs_beyond_max_active_wait_as_requests_alone) {
  auto d = deps(false);
  d.max_active_runs = 2;
  auto c = spawn_with(d);
  caf::scoped_actor self{sys_};
  using handle_t
    = decltype(self->request(c, caf::infinite, atom::submit_v, spec("two")));
  std::vector<handle_t> handles;
  for (int i = 0; i < 5; ++i)
    handles.push_back(
      self->request(c, caf::infinite, atom::submit_v, spec("two")));
  // Every submit is answered, but only two workflow actors are alive at
  // any time.
  auto& st = state_of(c);
  size_t most = 0;
  size_t most_waiting = 0;
  while (sched_.try_run_once()) {
    most = std::max(most, st.active);
    most_waiting = std::max(most_waiting, st.waiting.size());
  }
  std::vector<std::string> ids;
  for (auto& h : handles)
    h.receive(
      [&](std::string& id) {
        ids.push_back(id);
      },
      [&](caf::error& e) {
        FAIL() << sys_.render(e);
      });
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(most, 2u);
  EXPECT_EQ(most_waiting, 3u);
  for (auto& id : ids)
    EXPECT_EQ(result(c, id).status, run_status::completed) << id;
  EXPECT_EQ(st.active, 0u);
  EXPECT_TRUE(st.waiting.empty());
  EXPECT_TRUE(st.run_of_actor.empty());
  // They started in submission order.
  std::vector<std::string> first_calls;
  for (auto& call : runner_->calls())
    if (std::find(first_calls.begin(), first_calls.end(), run_of(call))
        == first_calls.end())
      first_calls.push_back(run_of(call));
  EXPECT_EQ(first_calls, ids);
}

TEST_F(coordinator_batch_test, a_waiting_run_is_cancelled_at_once) {
  auto d = deps(false);
  d.max_active_runs = 1;
  auto c = spawn_with(d);
  caf::scoped_actor self{sys_};
  auto h1 = self->request(c, caf::infinite, atom::submit_v, spec("one"));
  auto h2 = self->request(c, caf::infinite, atom::submit_v, spec("one"));
  // Until the second waits behind the first (which needs many more jobs to
  // end than the coordinator needs to accept the second).
  while (state_of(c).waiting.empty() && sched_.try_run_once()) {
    // next job
  }
  std::string first;
  std::string second;
  h1.receive(
    [&](std::string& id) {
      first = id;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  h2.receive(
    [&](std::string& id) {
      second = id;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  ASSERT_EQ(state_of(c).waiting.size(), 1u);
  auto rc = self->request(c, caf::infinite, atom::cancel_v, second);
  sched_.run();
  rc.receive(
    [](bool found) {
      EXPECT_TRUE(found);
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  auto res = result(c, second);
  EXPECT_EQ(res.status, run_status::cancelled);
  EXPECT_EQ(res.message, "cancelled before it started");
  EXPECT_EQ(result(c, first).status, run_status::completed);
  // The cancelled run never reached an agent.
  for (auto& call : runner_->calls())
    EXPECT_NE(run_of(call), second);
}

TEST_F(coordinator_batch_test, drops_a_run_once_its_result_is_collected) {
  auto d = deps(false);
  d.drop_collected = true;
  d.event_buffer = 0;
  auto c = spawn_with(d);
  caf::scoped_actor self{sys_};
  // Asked before it ends: dropped when it ends.
  auto h = self->request(c, caf::infinite, atom::submit_v, spec("one"));
  // The submit alone (the only job: the coordinator's).
  sched_.run_once();
  std::string asked;
  h.receive(
    [&](std::string& id) {
      asked = id;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  auto rr = self->request(c, caf::infinite, atom::result_v, asked);
  sched_.run();
  rr.receive(
    [&](run_result& res) {
      EXPECT_EQ(res.status, run_status::completed);
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  auto& st = state_of(c);
  EXPECT_EQ(st.runs.count(asked), 0u);
  // Ended before anyone asked: kept until asked once, then dropped.
  auto later = submit(c, spec("one"));
  ASSERT_TRUE(later);
  ASSERT_EQ(st.runs.count(*later), 1u);
  EXPECT_TRUE(st.runs.at(*later).events.empty());
  EXPECT_EQ(result(c, *later).status, run_status::completed);
  EXPECT_EQ(st.runs.count(*later), 0u);
  EXPECT_TRUE(st.finished.empty());
}

} // namespace
} // namespace orch
