// Retries, quota waits, circuit breakers and fallback agents in the agent
// actor (issue 12, parts 1-4), on CAF's deterministic test coordinator with
// the fake process runner: the clock is advanced by hand, so "no spawn
// before the delay" is checked exactly.

#include <csignal>
#include <filesystem>
#include <fstream>
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
#include "runtime/counters.hpp"
#include "support/agents.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// 2025-12-01 14:40:00 UTC, a whole second.
constexpr int64_t t0 = 1764600000000;

struct recorder_state {
  std::shared_ptr<std::vector<progress_event>> events;
};

progress_sink::behavior_type
recorder(progress_sink::stateful_pointer<recorder_state> self,
         std::shared_ptr<std::vector<progress_event>> events) {
  self->state.events = std::move(events);
  return {
    [=](atom::progress, const progress_event& ev) {
      self->state.events->push_back(ev);
    },
  };
}

fake_response crash() {
  fake_response r;
  r.term_signal = SIGSEGV;
  return r;
}

fake_response ok_response(std::string text = "done") {
  fake_response r;
  r.out_lines = {std::move(text)};
  return r;
}

fake_response agent_error() {
  fake_response r;
  r.exit_code = 1;
  r.err = "bad flag";
  return r;
}

fake_response missing() {
  fake_response r;
  r.started = false;
  return r;
}

/// Claude's stream-json for a 429 whose rate_limit_event says when the quota
/// resets (seconds since the epoch).
fake_response claude_429(int64_t resets_at_s) {
  fake_response r;
  r.out_lines
    = {R"({"type":"system","subtype":"init","session_id":"s1"})",
       R"({"type":"rate_limit_event","rate_limit_info":{"status":"rejected",)"
       R"("resetsAt":)"
         + std::to_string(resets_at_s) + R"(,"rateLimitType":"five_hour"}})",
       R"({"type":"result","subtype":"success","is_error":true,)"
       R"("api_error_status":429,"result":"API Error: Request rejected (429))"
       R"( · rate limited","session_id":"s1"})"};
  r.exit_code = 1;
  return r;
}

fake_response claude_ok() {
  fake_response r;
  r.out_lines = {R"({"type":"system","subtype":"init","session_id":"s2"})",
                 R"({"type":"result","subtype":"success","is_error":false,)"
                 R"("result":"all done","session_id":"s2"})"};
  return r;
}

class resilience_test : public ::testing::Test {
protected:
  resilience_test()
    : cfg_{true}, sys_{cfg_},
      sched_{dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())},
      runner_{std::make_shared<fake_process_runner>()}, self_{sys_},
      wall_{std::make_shared<int64_t>(t0)},
      events_{std::make_shared<std::vector<progress_event>>()},
      peers_{std::make_shared<std::map<std::string, caf::actor_addr>>()} {
    root_ = fs::temp_directory_path()
            / ("orch-resilience-test-" + std::to_string(::getpid()));
    fs::create_directories(root_ / "ws");
    counters().reset();
    sink_ = sys_.spawn(recorder, events_);
  }

  ~resilience_test() override {
    for (auto& a : spawned_)
      self_->send_exit(a, caf::exit_reason::user_shutdown);
    self_->send_exit(sink_, caf::exit_reason::user_shutdown);
    sched_.run();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static agent_config worker_config(std::string name = "worker") {
    auto a = test::command_agent(name);
    a.retry = retry_policy{3, 2s, 30s};
    a.circuit_breaker = breaker_policy{100, 10min, 60s};
    return a;
  }

  static agent_config claude_config() {
    agent_config a;
    a.name = "claude";
    a.kind = adapter_kind::claude;
    a.command = "claude";
    a.retry = retry_policy{3, 2s, 30s};
    a.circuit_breaker = breaker_policy{100, 10min, 60s};
    return a;
  }

  agent_actor spawn(agent_config a, fs::path state_dir = {}) {
    agent_deps deps;
    deps.runner = runner_;
    deps.detached_workers = false;
    deps.settings.max_quota_wait = 5min;
    deps.state_dir = std::move(state_dir);
    auto wall = wall_;
    deps.wall_clock = [wall] {
      return *wall;
    };
    deps.jitter = [] {
      return 0.0;
    };
    deps.peers = peers_;
    auto name = a.name;
    auto hdl = sys_.spawn(agent_impl, std::move(a), deps);
    (*peers_)[name] = hdl.address();
    spawned_.push_back(hdl);
    return hdl;
  }

  /// Advances the test clock and the fake wall clock together, then runs
  /// whatever became due.
  void advance(std::chrono::milliseconds d) {
    *wall_ += d.count();
    sched_.advance_time(d);
    sched_.run();
  }

  step_request request(const std::string& agent, std::string run_id = "r") {
    step_request req;
    req.run_id = std::move(run_id);
    req.step_index = 0;
    req.agent = agent;
    req.task_kind = "implement";
    req.prompt = "p";
    req.workspace = (root_ / "ws").string();
    req.progress = sink_;
    return req;
  }

  using handle_t = decltype(std::declval<caf::scoped_actor&>()->request(
    std::declval<agent_actor&>(), caf::infinite, atom::run_step_v,
    step_request{}));

  handle_t send(const agent_actor& a, step_request req) {
    return self_->request(a, caf::infinite, atom::run_step_v, std::move(req));
  }

  step_result result_of(handle_t& h) {
    step_result out;
    bool got = false;
    h.receive(
      [&](step_result& res) {
        out = std::move(res);
        got = true;
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
    EXPECT_TRUE(got);
    return out;
  }

  size_t calls_of(const std::string& program) const {
    size_t n = 0;
    for (auto& spec : runner_->calls())
      if (!spec.argv.empty() && spec.argv[0] == program)
        ++n;
    return n;
  }

  static agent_state& state_of(const agent_actor& hdl) {
    using impl = caf::stateful_actor<agent_state, agent_actor::base>;
    return dynamic_cast<impl&>(*caf::actor_cast<caf::abstract_actor*>(hdl))
      .state;
  }

  std::vector<std::string> notices() const {
    std::vector<std::string> out;
    for (auto& ev : *events_)
      if (ev.kind == progress_event::kind_t::step_notice)
        out.push_back(ev.text);
    return out;
  }

  system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  std::shared_ptr<fake_process_runner> runner_;
  caf::scoped_actor self_;
  std::shared_ptr<int64_t> wall_;
  std::shared_ptr<std::vector<progress_event>> events_;
  std::shared_ptr<std::map<std::string, caf::actor_addr>> peers_;
  progress_sink sink_;
  std::vector<agent_actor> spawned_;
  fs::path root_;
};

// -- retries ------------------------------------------------------------------

TEST_F(resilience_test, a_crash_is_retried_after_the_configured_backoff) {
  runner_->on("worker", crash());
  runner_->on("worker", crash());
  runner_->on("worker", ok_response());
  auto agent = spawn(worker_config());
  auto h = send(agent, request("worker"));
  sched_.run();
  EXPECT_EQ(runner_->call_count(), 1u);
  // Retry 2/3 after base = 2 s: nothing before it.
  advance(1999ms);
  EXPECT_EQ(runner_->call_count(), 1u);
  advance(1ms);
  EXPECT_EQ(runner_->call_count(), 2u);
  // Retry 3/3 after 2 * base = 4 s.
  advance(3999ms);
  EXPECT_EQ(runner_->call_count(), 2u);
  advance(1ms);
  EXPECT_EQ(runner_->call_count(), 3u);
  auto res = result_of(h);
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  ASSERT_EQ(res.attempts.size(), 3u);
  EXPECT_EQ(res.attempts[0].failure, failure_kind::crashed);
  EXPECT_EQ(res.attempts[1].failure, failure_kind::crashed);
  EXPECT_EQ(res.attempts[2].failure, failure_kind::none);
  EXPECT_NE(res.attempts[0].message.find("crashed"), std::string::npos);
  EXPECT_EQ(res.attempts[0].agent, "worker");
  EXPECT_EQ(res.ran_as, "worker");
  EXPECT_TRUE(res.fallback_reason.empty());
  EXPECT_EQ(counters().get(counter::retries, "worker"), 2u);
  auto texts = notices();
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[0].rfind("retry 2/3 in 2.0s (crashed: ", 0), 0u) << texts[0];
  EXPECT_EQ(texts[1].rfind("retry 3/3 in 4.0s (crashed: ", 0), 0u) << texts[1];
}

TEST_F(resilience_test, the_delay_is_capped_and_the_attempts_are_bounded) {
  runner_->on("worker", crash());
  auto a = worker_config();
  a.retry = retry_policy{4, 2s, 3s};
  auto agent = spawn(a);
  auto h = send(agent, request("worker"));
  sched_.run();
  advance(2s);
  EXPECT_EQ(runner_->call_count(), 2u);
  // 4 s capped at 3 s.
  advance(2999ms);
  EXPECT_EQ(runner_->call_count(), 2u);
  advance(1ms);
  EXPECT_EQ(runner_->call_count(), 3u);
  advance(3s);
  EXPECT_EQ(runner_->call_count(), 4u);
  auto res = result_of(h);
  EXPECT_FALSE(res.outcome.ok);
  EXPECT_EQ(res.outcome.failure, failure_kind::crashed);
  EXPECT_EQ(res.attempts.size(), 4u);
  // No fifth attempt, however long one waits.
  advance(10min);
  EXPECT_EQ(runner_->call_count(), 4u);
}

TEST_F(resilience_test, jitter_takes_up_to_half_of_the_delay_off) {
  runner_->on("worker", crash());
  runner_->on("worker", ok_response());
  agent_deps deps;
  deps.runner = runner_;
  deps.detached_workers = false;
  auto wall = wall_;
  deps.wall_clock = [wall] {
    return *wall;
  };
  deps.jitter = [] {
    return 1.0;
  };
  auto agent = sys_.spawn(agent_impl, worker_config(), deps);
  spawned_.push_back(agent);
  auto h = send(agent, request("worker"));
  sched_.run();
  advance(999ms);
  EXPECT_EQ(runner_->call_count(), 1u);
  advance(1ms);
  EXPECT_EQ(runner_->call_count(), 2u);
  EXPECT_TRUE(result_of(h).outcome.ok);
}

TEST_F(resilience_test, deterministic_failures_are_never_retried) {
  runner_->on("worker", agent_error());
  runner_->on("gone", missing());
  auto worker = spawn(worker_config());
  auto gone = spawn(worker_config("gone"));
  auto h1 = send(worker, request("worker"));
  auto h2 = send(gone, request("gone"));
  sched_.run();
  advance(10min);
  EXPECT_EQ(calls_of("worker"), 1u);
  EXPECT_EQ(calls_of("gone"), 1u);
  auto r1 = result_of(h1);
  EXPECT_EQ(r1.outcome.failure, failure_kind::agent_error);
  EXPECT_TRUE(r1.attempts.empty());
  auto r2 = result_of(h2);
  EXPECT_EQ(r2.outcome.failure, failure_kind::not_installed);
  EXPECT_TRUE(notices().empty());
  EXPECT_EQ(counters().total(counter::retries), 0u);
}

TEST_F(resilience_test, timeouts_before_first_output_are_retried) {
  fake_response hung;
  hung.expired = deadline_kind::first_output;
  runner_->on("worker", hung);
  runner_->on("worker", ok_response());
  auto agent = spawn(worker_config());
  auto h = send(agent, request("worker"));
  sched_.run();
  advance(2s);
  auto res = result_of(h);
  EXPECT_TRUE(res.outcome.ok);
  ASSERT_EQ(res.attempts.size(), 2u);
  EXPECT_EQ(res.attempts[0].failure, failure_kind::timeout_first_output);
}

TEST_F(resilience_test,
       a_cancel_during_the_backoff_wait_ends_the_step_at_once) {
  runner_->on("worker", crash());
  auto agent = spawn(worker_config());
  auto h = send(agent, request("worker", "r1"));
  sched_.run();
  ASSERT_EQ(runner_->call_count(), 1u);
  self_->send(agent, atom::cancel_v, std::string{"r1"});
  sched_.run();
  // Answered without waiting for the timer.
  auto res = result_of(h);
  EXPECT_EQ(res.outcome.failure, failure_kind::cancelled);
  ASSERT_EQ(res.attempts.size(), 2u);
  EXPECT_EQ(res.attempts[0].failure, failure_kind::crashed);
  EXPECT_TRUE(state_of(agent).running.empty());
  advance(1min);
  EXPECT_EQ(runner_->call_count(), 1u);
}

TEST_F(resilience_test, a_waiting_step_keeps_its_slot) {
  runner_->on("worker", crash());
  runner_->on("worker", ok_response());
  auto agent = spawn(worker_config()); // max_concurrency 1
  auto h1 = send(agent, request("worker"));
  auto h2 = send(agent, request("worker"));
  sched_.run();
  EXPECT_EQ(runner_->call_count(), 1u);
  EXPECT_EQ(state_of(agent).queue.size(), 1u);
  advance(2s);
  EXPECT_TRUE(result_of(h1).outcome.ok);
  EXPECT_TRUE(result_of(h2).outcome.ok);
  EXPECT_EQ(runner_->call_count(), 3u);
}

// -- quota waits
// ----------------------------------------------------------------

TEST_F(resilience_test, a_quota_reset_within_the_wait_is_waited_for) {
  runner_->on("claude", claude_429(t0 / 1000 + 60));
  runner_->on("claude", claude_ok());
  auto agent = spawn(claude_config());
  auto h = send(agent, request("claude"));
  sched_.run();
  EXPECT_EQ(runner_->call_count(), 1u);
  advance(59s);
  EXPECT_EQ(runner_->call_count(), 1u);
  advance(1s);
  EXPECT_EQ(runner_->call_count(), 2u);
  auto res = result_of(h);
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  ASSERT_EQ(res.attempts.size(), 2u);
  EXPECT_EQ(res.attempts[0].failure, failure_kind::rate_limited);
  EXPECT_EQ(counters().get(counter::quota_waits, "claude"), 1u);
  EXPECT_EQ(counters().get(counter::retries, "claude"), 0u);
  auto texts = notices();
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0].rfind("quota wait: retry 2/3 at ", 0), 0u) << texts[0];
  EXPECT_NE(texts[0].find("(in 60.0s)"), std::string::npos) << texts[0];
}

TEST_F(resilience_test, a_quota_reset_beyond_the_wait_fails_with_the_time) {
  runner_->on("claude", claude_429(t0 / 1000 + 3 * 3600));
  auto agent = spawn(claude_config());
  auto h = send(agent, request("claude"));
  sched_.run();
  advance(10min);
  EXPECT_EQ(runner_->call_count(), 1u);
  auto res = result_of(h);
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited);
  EXPECT_EQ(res.outcome.retry_at_ms, t0 + 3 * 3600 * 1000);
  EXPECT_NE(res.outcome.message.find("out of quota until "), std::string::npos)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("beyond settings.max_quota_wait 5m"),
            std::string::npos)
    << res.outcome.message;
  // The breaker stays open until the reset time.
  const auto& snap = state_of(agent).breaker.snapshot();
  EXPECT_EQ(snap.state, breaker_state::open);
  EXPECT_EQ(snap.open_until_ms, t0 + 3 * 3600 * 1000);
  EXPECT_EQ(counters().get(counter::breaker_opened, "claude"), 1u);
}

TEST_F(resilience_test, a_429_without_a_reset_time_is_retried_with_backoff) {
  auto no_reset = claude_429(0);
  no_reset.out_lines.erase(no_reset.out_lines.begin() + 1);
  runner_->on("claude", no_reset);
  runner_->on("claude", claude_ok());
  auto agent = spawn(claude_config());
  auto h = send(agent, request("claude"));
  sched_.run();
  advance(1999ms);
  EXPECT_EQ(runner_->call_count(), 1u);
  advance(1ms);
  EXPECT_TRUE(result_of(h).outcome.ok);
}

// -- the circuit breaker
// -------------------------------------------------------

TEST_F(resilience_test, the_breaker_opens_half_opens_and_closes) {
  runner_->on("worker", crash());
  runner_->on("worker", crash());
  runner_->on("worker", ok_response());
  auto a = worker_config();
  a.retry.attempts = 1;
  a.circuit_breaker = breaker_policy{2, 10min, 60s};
  auto agent = spawn(a);
  auto h1 = send(agent, request("worker"));
  sched_.run();
  EXPECT_EQ(state_of(agent).breaker.snapshot().state, breaker_state::closed);
  auto h2 = send(agent, request("worker"));
  sched_.run();
  EXPECT_EQ(result_of(h1).outcome.failure, failure_kind::crashed);
  EXPECT_EQ(result_of(h2).outcome.failure, failure_kind::crashed);
  EXPECT_EQ(state_of(agent).breaker.snapshot().state, breaker_state::open);
  EXPECT_EQ(counters().get(counter::breaker_opened, "worker"), 1u);
  // Open: refused at once, nothing spawned.
  auto h3 = send(agent, request("worker"));
  sched_.run();
  auto r3 = result_of(h3);
  EXPECT_EQ(r3.outcome.failure, failure_kind::circuit_open);
  EXPECT_NE(r3.outcome.message.find("2 failure(s) within 10m"),
            std::string::npos)
    << r3.outcome.message;
  EXPECT_NE(r3.outcome.message.find("may close at "), std::string::npos);
  EXPECT_EQ(runner_->call_count(), 2u);
  EXPECT_EQ(counters().get(counter::breaker_refusals, "worker"), 1u);
  // After the cool-down one trial step runs; its success closes it.
  *wall_ += 60000;
  auto h4 = send(agent, request("worker"));
  sched_.run();
  EXPECT_TRUE(result_of(h4).outcome.ok);
  EXPECT_EQ(runner_->call_count(), 3u);
  EXPECT_EQ(state_of(agent).breaker.snapshot().state, breaker_state::closed);
  EXPECT_EQ(counters().get(counter::breaker_half_opened, "worker"), 1u);
  EXPECT_EQ(counters().get(counter::breaker_closed, "worker"), 1u);
}

TEST_F(resilience_test, a_failed_trial_opens_the_breaker_again) {
  runner_->on("worker", crash());
  auto a = worker_config();
  a.retry.attempts = 1;
  a.circuit_breaker = breaker_policy{1, 10min, 60s};
  auto agent = spawn(a);
  auto h1 = send(agent, request("worker"));
  sched_.run();
  result_of(h1);
  EXPECT_EQ(state_of(agent).breaker.snapshot().state, breaker_state::open);
  *wall_ += 60000;
  auto h2 = send(agent, request("worker"));
  sched_.run();
  EXPECT_EQ(result_of(h2).outcome.failure, failure_kind::crashed);
  const auto& snap = state_of(agent).breaker.snapshot();
  EXPECT_EQ(snap.state, breaker_state::open);
  EXPECT_EQ(snap.open_until_ms, *wall_ + 60000);
  EXPECT_NE(snap.reason.find("the trial step failed"), std::string::npos);
}

TEST_F(resilience_test, failures_outside_the_window_do_not_count) {
  runner_->on("worker", crash());
  auto a = worker_config();
  a.retry.attempts = 1;
  a.circuit_breaker = breaker_policy{2, 60s, 60s};
  auto agent = spawn(a);
  auto h1 = send(agent, request("worker"));
  sched_.run();
  *wall_ += 61000;
  auto h2 = send(agent, request("worker"));
  sched_.run();
  result_of(h1);
  result_of(h2);
  EXPECT_EQ(state_of(agent).breaker.snapshot().state, breaker_state::closed);
}

TEST_F(resilience_test, cancels_and_bad_answers_do_not_count) {
  fake_response cancelled;
  cancelled.cancelled = true;
  runner_->on("worker", cancelled);
  runner_->on("worker", agent_error());
  auto a = worker_config();
  a.circuit_breaker = breaker_policy{1, 10min, 60s};
  auto agent = spawn(a);
  auto h1 = send(agent, request("worker"));
  auto h2 = send(agent, request("worker"));
  sched_.run();
  EXPECT_EQ(result_of(h1).outcome.failure, failure_kind::cancelled);
  EXPECT_EQ(result_of(h2).outcome.failure, failure_kind::agent_error);
  EXPECT_EQ(state_of(agent).breaker.snapshot().state, breaker_state::closed);
}

TEST_F(resilience_test, the_breaker_persists_in_the_state_directory) {
  runner_->on("claude", claude_429(t0 / 1000 + 3 * 3600));
  auto state = root_ / "state";
  auto first = spawn(claude_config(), state);
  auto h1 = send(first, request("claude"));
  sched_.run();
  result_of(h1);
  auto file = state / "breakers" / "claude.json";
  ASSERT_TRUE(fs::exists(file));
  std::string error;
  auto snap = load_breaker(state, "claude", error);
  ASSERT_TRUE(snap) << error;
  EXPECT_EQ(snap->state, breaker_state::open);
  EXPECT_EQ(snap->open_until_ms, t0 + 3 * 3600 * 1000);
  // A new actor (the next process) reads it and refuses without spawning.
  auto second = spawn(claude_config(), state);
  auto h2 = send(second, request("claude"));
  sched_.run();
  auto res = result_of(h2);
  EXPECT_EQ(res.outcome.failure, failure_kind::circuit_open);
  EXPECT_NE(res.outcome.message.find("rate_limited"), std::string::npos)
    << res.outcome.message;
  EXPECT_EQ(runner_->call_count(), 1u);
}

// -- fallbacks
// -------------------------------------------------------------------

TEST_F(resilience_test,
       out_of_quota_falls_back_and_the_result_names_the_agent) {
  runner_->on("claude", claude_429(t0 / 1000 + 3 * 3600));
  runner_->on("worker", ok_response("from worker"));
  auto c = claude_config();
  c.fallback = {"worker"};
  auto claude = spawn(c);
  spawn(worker_config());
  auto h = send(claude, request("claude"));
  sched_.run();
  auto res = result_of(h);
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.final_text, "from worker");
  EXPECT_EQ(res.agent, "claude");
  EXPECT_EQ(res.ran_as, "worker");
  EXPECT_EQ(res.fallback_reason.rfind("rate_limited: claude: out of quota", 0),
            0u)
    << res.fallback_reason;
  ASSERT_EQ(res.attempts.size(), 2u);
  EXPECT_EQ(res.attempts[0].agent, "claude");
  EXPECT_EQ(res.attempts[0].failure, failure_kind::rate_limited);
  EXPECT_EQ(res.attempts[1].agent, "worker");
  EXPECT_EQ(res.attempts[1].failure, failure_kind::none);
  EXPECT_EQ(counters().get(counter::fallbacks, "claude"), 1u);
  auto texts = notices();
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0].rfind("falling back to worker (rate_limited: ", 0), 0u)
    << texts[0];
  // The next step goes straight to the fallback: claude's breaker is open.
  auto h2 = send(claude, request("claude"));
  sched_.run();
  auto res2 = result_of(h2);
  EXPECT_TRUE(res2.outcome.ok);
  EXPECT_EQ(res2.ran_as, "worker");
  EXPECT_EQ(res2.fallback_reason.rfind("circuit_open: ", 0), 0u)
    << res2.fallback_reason;
  EXPECT_EQ(calls_of("claude"), 1u);
  EXPECT_EQ(calls_of("worker"), 2u);
}

TEST_F(resilience_test, fallbacks_are_tried_in_order) {
  runner_->on("claude", missing());
  runner_->on("gone", missing());
  runner_->on("worker", ok_response());
  auto c = claude_config();
  c.fallback = {"gone", "worker"};
  auto claude = spawn(c);
  spawn(worker_config("gone"));
  spawn(worker_config());
  auto h = send(claude, request("claude"));
  sched_.run();
  auto res = result_of(h);
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.ran_as, "worker");
  EXPECT_EQ(res.fallback_reason.rfind("not_installed: ", 0), 0u);
  ASSERT_EQ(res.attempts.size(), 3u);
  EXPECT_EQ(res.attempts[1].agent, "gone");
  EXPECT_EQ(res.attempts[1].failure, failure_kind::not_installed);
  EXPECT_EQ(calls_of("gone"), 1u);
}

TEST_F(resilience_test, a_failure_that_is_no_reason_to_fall_back_stays) {
  fake_response turn_failed;
  turn_failed.out_lines = {
    R"({"type":"result","subtype":"error_max_turns","is_error":true,)"
    R"("result":"Reached the turn limit","session_id":"s3"})"};
  turn_failed.exit_code = 1;
  runner_->on("claude", turn_failed);
  runner_->on("worker", ok_response());
  auto c = claude_config();
  c.retry.attempts = 1;
  c.fallback = {"worker"};
  auto claude = spawn(c);
  spawn(worker_config());
  auto h = send(claude, request("claude"));
  sched_.run();
  auto res = result_of(h);
  EXPECT_EQ(res.outcome.failure, failure_kind::agent_error);
  EXPECT_EQ(res.ran_as, "claude");
  EXPECT_EQ(calls_of("worker"), 0u);
}

TEST_F(resilience_test, a_fallback_does_not_fall_back_further) {
  runner_->on("claude", missing());
  runner_->on("worker", missing());
  auto c = claude_config();
  c.fallback = {"worker"};
  auto w = worker_config();
  w.fallback = {"claude"};
  auto claude = spawn(c);
  spawn(w);
  auto h = send(claude, request("claude"));
  sched_.run();
  auto res = result_of(h);
  EXPECT_EQ(res.outcome.failure, failure_kind::not_installed);
  EXPECT_EQ(res.ran_as, "worker");
  EXPECT_EQ(calls_of("claude"), 1u);
  EXPECT_EQ(calls_of("worker"), 1u);
}

} // namespace
} // namespace orch
