// The metrics feed: what a finished run becomes in the metrics registry
// (pure functions), and the actor subscribed to a real coordinator that
// records runs as they end (threaded, fake runner, bounded waits).

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include "actors/coordinator.hpp"
#include "actors/metrics_feed.hpp"
#include "actors/system_config.hpp"
#include "runtime/counters.hpp"
#include "support/agents.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

constexpr auto k_max_test_wait = std::chrono::seconds{20};

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

step_result make_step(std::string agent, bool ok, failure_kind failure,
                      int64_t duration_ms) {
  step_result s;
  s.agent = std::move(agent);
  s.outcome.ok = ok;
  s.outcome.failure = failure;
  s.duration_ms = duration_ms;
  return s;
}

TEST(metrics_feed_samples, a_converged_run_is_ok_with_no_failure_kind) {
  run_result res;
  res.workflow = "default";
  res.status = run_status::converged;
  res.duration_ms = 2500;
  auto x = task_sample_of(res);
  EXPECT_EQ(x.workflow, "default");
  EXPECT_EQ(x.status, "converged");
  EXPECT_TRUE(x.ok);
  EXPECT_DOUBLE_EQ(x.duration_seconds, 2.5);
  EXPECT_EQ(x.failure, "");
}

TEST(metrics_feed_samples, a_failed_run_takes_its_last_failed_steps_kind) {
  run_result res;
  res.status = run_status::failed;
  iteration_record it;
  it.steps.push_back(make_step("a", false, failure_kind::transient, 10));
  it.steps.push_back(make_step("b", false, failure_kind::timeout_idle, 10));
  res.iterations.push_back(it);
  EXPECT_EQ(task_sample_of(res).failure, "timeout_idle");
  EXPECT_FALSE(task_sample_of(res).ok);
  res.iterations.clear();
  EXPECT_EQ(task_sample_of(res).failure, "run_error");
  res.status = run_status::cancelled;
  EXPECT_EQ(task_sample_of(res).failure, "cancelled");
}

TEST(metrics_feed_samples, each_attempt_is_a_call_and_cached_steps_none) {
  run_result res;
  iteration_record it;
  // One try by a fallback agent: the agent that ran it is counted.
  auto single = make_step("claude", true, failure_kind::none, 3000);
  single.ran_as = "codex";
  single.outcome.tokens.input_tokens = 100;
  single.outcome.tokens.output_tokens = 20;
  single.outcome.tokens.cost_usd = 0.5;
  single.outcome.tokens.has_cost = true;
  it.steps.push_back(single);
  // Retried once, then fine: two calls, tokens on the last.
  auto retried = make_step("gemini", true, failure_kind::none, 7000);
  retried.attempts.push_back(
    {"gemini", failure_kind::transient, "503", 0, 2000, {}});
  retried.attempts.push_back({"gemini", failure_kind::none, "", 0, 5000, {}});
  retried.outcome.tokens.output_tokens = 7;
  it.steps.push_back(retried);
  // Served from the cache: no process ran.
  auto cached = make_step("codex", true, failure_kind::none, 1);
  cached.cached = true;
  it.steps.push_back(cached);
  // Refused by an open breaker: no process ran.
  it.steps.push_back(make_step("claude", false, failure_kind::circuit_open, 0));
  res.iterations.push_back(it);
  auto calls = agent_calls_of(res);
  ASSERT_EQ(calls.size(), 3U);
  EXPECT_EQ(calls[0].agent, "codex");
  EXPECT_TRUE(calls[0].ok);
  EXPECT_DOUBLE_EQ(calls[0].seconds, 3.0);
  EXPECT_EQ(calls[0].input_tokens, 100);
  EXPECT_DOUBLE_EQ(calls[0].cost_usd, 0.5);
  EXPECT_EQ(calls[1].agent, "gemini");
  EXPECT_FALSE(calls[1].ok);
  EXPECT_EQ(calls[1].failure, "transient");
  EXPECT_EQ(calls[1].output_tokens, 0);
  EXPECT_TRUE(calls[2].ok);
  EXPECT_EQ(calls[2].output_tokens, 7);
  EXPECT_DOUBLE_EQ(calls[2].seconds, 5.0);
}

// -- the actor on a real coordinator -----------------------------------------

class metrics_feed_test : public ::testing::Test {
protected:
  metrics_feed_test()
    : runner_{std::make_shared<fake_process_runner>()}, cfg_{false}, sys_{
                                                                       cfg_} {
    root_ = fs::temp_directory_path()
            / ("orch-metrics-feed-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    auto a = test::command_agent("a");
    // A failed step is not retried: one call per run.
    a.retry.attempts = 1;
    config_.agents = {a};
    workflow_config wf;
    wf.name = "one";
    wf.max_iterations = 1;
    wf.steps = {step_config{{step_item{"a", "implement", ""}}}};
    config_.workflows = {wf};
    config_.settings.workspace_dir = (root_ / "ws").string();
  }

  ~metrics_feed_test() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  coordinator_actor spawn() {
    coordinator_deps d;
    d.runner = runner_;
    d.check_agent = [](const agent_config&) {
      return std::string{};
    };
    return spawn_coordinator(sys_, std::make_shared<const config>(config_), d);
  }

  std::string submit(caf::scoped_actor& self, const coordinator_actor& c) {
    run_spec s;
    s.task = "do it";
    s.workflow = "one";
    std::string out;
    self->request(c, k_max_test_wait, atom::submit_v, s)
      .receive(
        [&](std::string& id) {
          out = id;
        },
        [&](caf::error& e) {
          ADD_FAILURE() << sys_.render(e);
        });
    return out;
  }

  /// Waits (bounded) until `n` runs are recorded in `m`, then says whether
  /// the rendered metrics contain `what`.
  bool wait_for(const metrics_registry& m, uint64_t n,
                const std::string& what) {
    return m.wait_recorded(n, k_max_test_wait) && contains(m.render(), what);
  }

  fs::path root_;
  config config_;
  std::shared_ptr<fake_process_runner> runner_;
  system_config cfg_;
  caf::actor_system sys_;
};

TEST_F(metrics_feed_test, finished_runs_are_recorded_once_each) {
  fake_response ok;
  ok.out_lines = {"done"};
  ok.elapsed = std::chrono::milliseconds{1500};
  fake_response bad;
  bad.exit_code = 3;
  runner_->on("a", ok);
  runner_->on("a", bad);
  auto c = spawn();
  auto metrics = std::make_shared<metrics_registry>();
  auto feed = spawn_metrics_feed(sys_, c, metrics);
  caf::scoped_actor self{sys_};
  auto first = submit(self, c);
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(wait_for(*metrics, 1,
                       "orchestrator_tasks_total{status=\"completed\""
                       ",workflow=\"one\"} 1\n"))
    << metrics->render();
  auto second = submit(self, c);
  ASSERT_FALSE(second.empty());
  ASSERT_TRUE(wait_for(*metrics, 2,
                       "orchestrator_tasks_total{status=\"failed\","
                       "workflow=\"one\"} 1\n"))
    << metrics->render();
  auto text = metrics->render();
  EXPECT_TRUE(contains(text, "orchestrator_agent_calls_total{agent=\"a\"} 2\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_agent_errors_total{agent=\"a\","
                             "kind=\"agent_error\"} 1\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_task_failures_total{kind="
                             "\"agent_error\",workflow=\"one\"} 1\n"))
    << text;
  EXPECT_TRUE(
    contains(text, "orchestrator_task_success_rate{workflow=\"one\"} 0.5\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_tasks_running 0\n")) << text;
  // A second feed subscribing late replays both runs' events: the first
  // feed's registry is unchanged, the new one counts each run once.
  auto late = std::make_shared<metrics_registry>();
  spawn_metrics_feed(sys_, c, late);
  ASSERT_TRUE(wait_for(*late, 2,
                       "orchestrator_task_success_rate{workflow="
                       "\"one\"} 0.5\n"))
    << late->render();
  EXPECT_TRUE(contains(late->render(), "orchestrator_tasks_total{status="
                                       "\"completed\",workflow=\"one\"} 1\n"))
    << late->render();
  EXPECT_TRUE(contains(metrics->render(), "orchestrator_tasks_total{status="
                                          "\"completed\",workflow=\"one\"} "
                                          "1\n"));
  // The feed ends with its coordinator.
  self->monitor(feed);
  self->send_exit(c, caf::exit_reason::user_shutdown);
  bool down = false;
  self->receive(
    [&](const caf::down_msg& msg) {
      down = msg.source == feed;
    },
    caf::after(k_max_test_wait) >> [] {});
  EXPECT_TRUE(down);
}

} // namespace
} // namespace orch
