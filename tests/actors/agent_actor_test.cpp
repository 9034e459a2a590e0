// The agent actor on CAF's deterministic test coordinator: its concurrency
// limit, its queue, and cancellation of queued steps.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <gtest/gtest.h>

#include "actors/agent_actor.hpp"
#include "actors/system_config.hpp"
#include "support/agents.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

class agent_actor_test : public ::testing::Test {
protected:
  agent_actor_test()
    : cfg_{true}, sys_{cfg_},
      sched_{dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())},
      runner_{std::make_shared<fake_process_runner>()}, self_{sys_} {
    root_ = fs::temp_directory_path()
            / ("orch-agent-test-" + std::to_string(::getpid()));
    fs::create_directories(root_);
    fake_response ok;
    ok.out_lines = {"done"};
    runner_->on("worker", ok);
  }

  ~agent_actor_test() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  agent_actor spawn_agent(int32_t max_concurrency) {
    auto a = test::command_agent("worker", max_concurrency);
    agent_deps deps;
    deps.runner = runner_;
    deps.detached_workers = false;
    return sys_.spawn(agent_impl, a, deps);
  }

  /// Lets only `hdl` process its mailbox; spawned workers wait.
  void run_only(const agent_actor& hdl) {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(hdl);
    sched_.run_jobs_filtered([&](caf::resumable* job) {
      return dynamic_cast<caf::abstract_actor*>(job) == ptr;
    });
  }

  static agent_state& state_of(const agent_actor& hdl) {
    using impl = caf::stateful_actor<agent_state, agent_actor::base>;
    return dynamic_cast<impl&>(*caf::actor_cast<caf::abstract_actor*>(hdl))
      .state;
  }

  step_request request(int32_t index, std::string run_id = "r") const {
    step_request req;
    req.run_id = std::move(run_id);
    req.step_index = index;
    req.agent = "worker";
    req.task_kind = "implement";
    req.prompt = "p" + std::to_string(index);
    req.workspace = root_.string();
    return req;
  }

  system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  std::shared_ptr<fake_process_runner> runner_;
  caf::scoped_actor self_;
  fs::path root_;
};

TEST_F(agent_actor_test,
       runs_at_most_max_concurrency_steps_and_queues_the_rest) {
  auto agent = spawn_agent(2);
  std::vector<decltype(self_->request(agent, caf::infinite, atom::run_step_v,
                                      step_request{}))>
    handles;
  for (int32_t i = 0; i < 3; ++i)
    handles.push_back(
      self_->request(agent, caf::infinite, atom::run_step_v, request(i)));
  run_only(agent);
  EXPECT_EQ(state_of(agent).running.size(), 2u);
  EXPECT_EQ(state_of(agent).queue.size(), 1u);
  EXPECT_EQ(runner_->call_count(), 0u);
  sched_.run();
  EXPECT_EQ(runner_->call_count(), 3u);
  EXPECT_TRUE(state_of(agent).running.empty());
  EXPECT_TRUE(state_of(agent).queue.empty());
  for (int32_t i = 0; i < 3; ++i)
    handles[static_cast<size_t>(i)].receive(
      [&](step_result& res) {
        EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
        EXPECT_EQ(res.step_index, i);
        EXPECT_EQ(res.outcome.final_text, "done");
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
  self_->send_exit(agent, caf::exit_reason::user_shutdown);
  sched_.run();
}

TEST_F(agent_actor_test, a_limit_of_one_runs_steps_one_after_another) {
  auto agent = spawn_agent(1);
  for (int32_t i = 0; i < 3; ++i)
    self_->request(agent, caf::infinite, atom::run_step_v, request(i));
  run_only(agent);
  EXPECT_EQ(state_of(agent).running.size(), 1u);
  EXPECT_EQ(state_of(agent).queue.size(), 2u);
  sched_.run();
  ASSERT_EQ(runner_->call_count(), 3u);
  // Queue order is arrival order.
  auto calls = runner_->calls();
  for (size_t i = 0; i < calls.size(); ++i)
    EXPECT_EQ(*calls[i].stdin_data, "p" + std::to_string(i));
  self_->send_exit(agent, caf::exit_reason::user_shutdown);
  sched_.run();
}

TEST_F(agent_actor_test, cancel_answers_queued_steps_as_cancelled) {
  auto agent = spawn_agent(1);
  std::vector<decltype(self_->request(agent, caf::infinite, atom::run_step_v,
                                      step_request{}))>
    handles;
  for (int32_t i = 0; i < 3; ++i)
    handles.push_back(
      self_->request(agent, caf::infinite, atom::run_step_v, request(i)));
  run_only(agent);
  self_->send(agent, atom::cancel_v);
  sched_.run();
  int cancelled = 0;
  for (auto& h : handles)
    h.receive(
      [&](step_result& res) {
        if (res.outcome.failure == failure_kind::cancelled)
          ++cancelled;
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
  // The running one finished (its fake process never blocks); the two
  // queued ones were answered without running.
  EXPECT_EQ(cancelled, 2);
  EXPECT_EQ(runner_->call_count(), 1u);
  self_->send_exit(agent, caf::exit_reason::user_shutdown);
  sched_.run();
}

TEST_F(agent_actor_test, cancel_of_a_run_leaves_other_runs_steps_in_order) {
  auto agent = spawn_agent(1);
  std::vector<decltype(self_->request(agent, caf::infinite, atom::run_step_v,
                                      step_request{}))>
    handles;
  // Queue: r1 (runs), r2, r1, r2.
  for (int32_t i = 0; i < 4; ++i)
    handles.push_back(self_->request(agent, caf::infinite, atom::run_step_v,
                                     request(i, i % 2 == 0 ? "r1" : "r2")));
  run_only(agent);
  self_->send(agent, atom::cancel_v, std::string{"r1"});
  run_only(agent);
  // r1's queued step left the queue; r2's kept their order.
  ASSERT_EQ(state_of(agent).queue.size(), 2u);
  EXPECT_EQ(state_of(agent).queue[0].request.step_index, 1);
  EXPECT_EQ(state_of(agent).queue[1].request.step_index, 3);
  sched_.run();
  std::vector<std::string> outcomes;
  for (auto& h : handles)
    h.receive(
      [&](step_result& res) {
        outcomes.push_back(res.outcome.ok ? "ok"
                                          : to_string(res.outcome.failure));
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
  // r1's first step was already running (its fake process never blocks).
  EXPECT_EQ(outcomes,
            (std::vector<std::string>{"ok", "ok", "cancelled", "ok"}));
  auto calls = runner_->calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(*calls[1].stdin_data, "p1");
  EXPECT_EQ(*calls[2].stdin_data, "p3");
  self_->send_exit(agent, caf::exit_reason::user_shutdown);
  sched_.run();
}

} // namespace
} // namespace orch
