// Blocking work off the scheduler: a lane runs its jobs one after the other
// in the order sent (posted ones included) and answers a job that threw
// with its text; an agent actor runs its uncached steps on a lane it
// reuses, and ends its lanes when it ends.

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include "actors/agent_actor.hpp"
#include "actors/blocking_work.hpp"
#include "actors/system_config.hpp"
#include "support/agents.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

constexpr auto k_max_test_wait = std::chrono::seconds{30};

/// The threads of this process now.
std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator{"/proc/self/task"})
    ++n;
  return n;
}

TEST(blocking_lane, runs_jobs_in_the_order_sent_and_answers_a_throw) {
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto lane = sys.spawn<caf::detached>(blocking_lane_impl);
  auto seen = std::make_shared<std::vector<int>>();
  std::set<std::thread::id> threads;
  std::mutex mtx;
  auto job = [&](int x) {
    return [&, x] {
      std::lock_guard<std::mutex> guard{mtx};
      seen->push_back(x);
      threads.insert(std::this_thread::get_id());
    };
  };
  post_on_lane(lane, job(1));
  post_on_lane(lane, job(2));
  std::string answer = "none";
  self->request(lane, k_max_test_wait, atom::run_task_v, blocking_job{job(3)})
    .receive(
      [&](std::string& x) {
        answer = x;
      },
      [&](caf::error& e) {
        answer = sys.render(e);
      });
  EXPECT_EQ(answer, "");
  EXPECT_EQ(*seen, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_NE(threads.count(std::this_thread::get_id()), 1u);
  self
    ->request(lane, k_max_test_wait, atom::run_task_v, blocking_job{[] {
                throw std::runtime_error{"disk on fire"};
              }})
    .receive(
      [&](std::string& x) {
        answer = x;
      },
      [&](caf::error& e) {
        answer = sys.render(e);
      });
  EXPECT_EQ(answer, "disk on fire");
  self->send_exit(lane, caf::exit_reason::user_shutdown);
}

TEST(agent_lanes, uncached_steps_reuse_one_thread_and_it_ends_with_the_agent) {
  auto root = fs::temp_directory_path()
              / ("orch-lane-test-" + std::to_string(::getpid()));
  fs::create_directories(root);
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto runner = std::make_shared<fake_process_runner>();
  fake_response ok;
  ok.out_lines = {"done"};
  runner->set_fallback(ok);
  std::mutex mtx;
  std::set<std::thread::id> threads;
  runner->set_hook([&](const process_spec&) {
    std::lock_guard<std::mutex> guard{mtx};
    threads.insert(std::this_thread::get_id());
  });
  auto before = thread_count();
  agent_deps deps;
  deps.runner = runner;
  deps.detached_workers = true;
  auto agent = sys.spawn(agent_impl, test::command_agent("worker"), deps);
  for (int i = 0; i < 3; ++i) {
    step_request req;
    req.run_id = "r";
    req.step_index = i;
    req.agent = "worker";
    req.task_kind = "implement";
    req.prompt = "p";
    req.workspace = root.string();
    self->request(agent, k_max_test_wait, atom::run_step_v, req)
      .receive(
        [&](step_result& res) {
          EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
        },
        [&](caf::error& e) {
          ADD_FAILURE() << sys.render(e);
        });
  }
  EXPECT_EQ(runner->call_count(), 3u);
  EXPECT_EQ(threads.size(), 1u) << "each step started a thread of its own";
  EXPECT_EQ(thread_count(), before + 1);
  // The idle lane ends with the agent actor (no thread left behind).
  self->send_exit(agent, caf::exit_reason::user_shutdown);
  auto until = std::chrono::steady_clock::now() + k_max_test_wait;
  while (thread_count() > before && std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
  EXPECT_EQ(thread_count(), before);
  std::error_code ec;
  fs::remove_all(root, ec);
}

} // namespace
} // namespace orch
