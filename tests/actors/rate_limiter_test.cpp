// The rate limiter actor and what the coordinator does with it, and the
// coordinator's audit events; on CAF's test coordinator with a clock moved
// by hand and the fake process runner.

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "actors/coordinator.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/system_config.hpp"
#include "runtime/audit_log.hpp"
#include "runtime/counters.hpp"
#include "runtime/hashing.hpp"
#include "runtime/state_dir.hpp"
#include "support/agents.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

constexpr int64_t t0 = 1'700'000'000'000;

class limiter_test : public ::testing::Test {
protected:
  limiter_test()
    : cfg_{true}, sys_{cfg_},
      sched_{dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())},
      clock_{std::make_shared<int64_t>(t0)},
      runner_{std::make_shared<fake_process_runner>()} {
    counters().reset();
    root_
      = fs::temp_directory_path()
        / ("orch-limiter-test-" + std::to_string(::getpid()) + "-"
           + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    std::string error;
    state_ = open_state_dir(root_ / "state", error);
    EXPECT_TRUE(state_) << error;
    auto a = test::command_agent("a");
    config_.agents = {a};
    workflow_config wf;
    wf.name = "one";
    wf.max_iterations = 1;
    wf.steps = {step_config{{step_item{"a", "implement", ""}}}};
    config_.workflows = {wf};
    config_.settings.workspace_dir = (root_ / "ws").string();
    fake_response ok;
    ok.out_lines = {"done"};
    ok.on_run = [](const process_spec& spec) {
      std::ofstream out{fs::path{spec.cwd} / "made.txt"};
      out << "made\n";
    };
    runner_->set_fallback(ok);
  }

  ~limiter_test() override {
    for (auto& a : spawned_)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched_.run();
    audit_close();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  rate_limiter_actor spawn_limiter(rate_limit_settings s, bool api = false) {
    rate_limiter_deps deps;
    deps.now_ms = [c = clock_] {
      return *c;
    };
    deps.api = api;
    auto l = sys_.spawn(rate_limiter_impl, s, deps);
    spawned_.push_back(caf::actor_cast<caf::actor>(l));
    return l;
  }

  admission admit(const rate_limiter_actor& l, const std::string& user) {
    caf::scoped_actor self{sys_};
    auto rh = self->request(l, caf::infinite, atom::admit_v, user);
    sched_.run();
    admission out;
    rh.receive(
      [&](admission& a) {
        out = std::move(a);
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
    return out;
  }

  coordinator_actor spawn_coordinator() {
    coordinator_deps d;
    d.runner = runner_;
    d.detached_workers = false;
    d.check_agent = [](const agent_config&) {
      return std::string{};
    };
    d.limit_clock = [c = clock_] {
      return *c;
    };
    auto c = sys_.spawn(coordinator_impl,
                        std::make_shared<const config>(config_), d);
    spawned_.push_back(caf::actor_cast<caf::actor>(c));
    sched_.run();
    return c;
  }

  caf::expected<std::string> submit(const coordinator_actor& c,
                                    const std::string& user,
                                    const std::string& task = "do it") {
    run_spec s;
    s.task = task;
    s.workflow = "one";
    s.user = user;
    caf::scoped_actor self{sys_};
    auto rh = self->request(c, caf::infinite, atom::submit_v, s);
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

  std::vector<nlohmann::json> audit_lines() {
    std::ifstream in{root_ / "state" / "audit" / audit_file_name};
    std::vector<nlohmann::json> out;
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      EXPECT_TRUE(j.is_object()) << line;
      if (j.is_object())
        out.push_back(j);
    }
    return out;
  }

  static std::vector<nlohmann::json>
  of_kind(const std::vector<nlohmann::json>& xs, const std::string& kind) {
    std::vector<nlohmann::json> out;
    for (auto& x : xs)
      if (x["kind"] == kind)
        out.push_back(x);
    return out;
  }

  system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  std::shared_ptr<int64_t> clock_;
  std::shared_ptr<fake_process_runner> runner_;
  std::vector<caf::actor> spawned_;
  fs::path root_;
  detail::unique_fd state_;
  config config_;
};

} // namespace

TEST_F(limiter_test,
       refuses_the_21st_request_of_a_20_burst_and_admits_it_after_the_refill) {
  rate_limit_settings s;
  s.enabled = true;
  s.requests_per_minute = 20;
  s.burst_size = 20;
  auto l = spawn_limiter(s);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(admit(l, "alice").admitted) << "request " << i + 1;
  auto refused = admit(l, "alice");
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.wait_ms, 3000);
  EXPECT_EQ(refused.user, "alice");
  EXPECT_EQ(refused.message, "rate limit: 20 runs per minute for user alice; "
                             "next run allowed in 3.0s");
  // Someone else is not held up by alice.
  EXPECT_TRUE(admit(l, "bob").admitted);
  *clock_ += 600;
  auto still = admit(l, "alice");
  EXPECT_FALSE(still.admitted);
  EXPECT_NE(still.message.find("next run allowed in 2.4s"), std::string::npos)
    << still.message;
  *clock_ += 2400;
  EXPECT_TRUE(admit(l, "alice").admitted);
  EXPECT_EQ(counters().get(counter::limiter_admitted, "alice"), 21u);
  EXPECT_EQ(counters().get(counter::limiter_refused, "alice"), 2u);
  EXPECT_EQ(counters().get(counter::limiter_admitted, "bob"), 1u);
}

TEST_F(limiter_test, api_request_decisions_are_counted_apart_from_runs) {
  rate_limit_settings s;
  s.enabled = true;
  s.requests_per_minute = 60;
  s.burst_size = 1;
  s.per_user = true;
  auto l = spawn_limiter(s, true);
  EXPECT_TRUE(admit(l, "addr:10.0.0.1").admitted);
  auto refused = admit(l, "addr:10.0.0.1");
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.message, "rate limit: 60 requests per minute for client "
                             "addr:10.0.0.1; next request allowed in 1.0s");
  EXPECT_EQ(counters().get(counter::api_limiter_admitted, "addr:10.0.0.1"), 1u);
  EXPECT_EQ(counters().get(counter::api_limiter_refused, "addr:10.0.0.1"), 1u);
  EXPECT_EQ(counters().get(counter::limiter_admitted, "addr:10.0.0.1"), 0u);
  EXPECT_EQ(counters().get(counter::limiter_refused, "addr:10.0.0.1"), 0u);
}

TEST_F(limiter_test, one_bucket_for_all_users_unless_per_user) {
  rate_limit_settings s;
  s.enabled = true;
  s.requests_per_minute = 1;
  s.burst_size = 1;
  s.per_user = false;
  auto l = spawn_limiter(s);
  EXPECT_TRUE(admit(l, "alice").admitted);
  auto refused = admit(l, "bob");
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.user, "*");
  EXPECT_EQ(refused.message, "rate limit: 1 runs per minute for all users; "
                             "next run allowed in 60.0s");
}

TEST_F(limiter_test, refusals_are_audited) {
  std::string error;
  ASSERT_TRUE(audit_open(state_.get(), {}, error)) << error;
  rate_limit_settings s;
  s.enabled = true;
  s.requests_per_minute = 1;
  s.burst_size = 1;
  auto l = spawn_limiter(s);
  ASSERT_TRUE(admit(l, "alice").admitted);
  ASSERT_FALSE(admit(l, "alice").admitted);
  auto lines = of_kind(audit_lines(), audit_kind::rate_limited);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["limited_user"], "alice");
  EXPECT_EQ(lines[0]["wait_ms"], "60000");
  EXPECT_NE(lines[0]["detail"].get<std::string>().find("rate limit: 1 runs"),
            std::string::npos);
}

TEST_F(limiter_test,
       the_coordinator_refuses_a_run_over_the_limit_before_spawning_anything) {
  config_.rate_limiting.enabled = true;
  config_.rate_limiting.requests_per_minute = 1;
  config_.rate_limiting.burst_size = 2;
  auto c = spawn_coordinator();
  auto first = submit(c, "alice");
  ASSERT_TRUE(first) << sys_.render(first.error());
  auto second = submit(c, "alice");
  ASSERT_TRUE(second) << sys_.render(second.error());
  EXPECT_EQ(result(c, *first).status, run_status::completed);
  EXPECT_EQ(result(c, *second).status, run_status::completed);
  auto calls = runner_->call_count();
  auto workspaces = std::distance(fs::directory_iterator{root_ / "ws"},
                                  fs::directory_iterator{});
  *clock_ += 1000;
  auto third = submit(c, "alice");
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error(), caf::make_error(errc::rate_limited));
  EXPECT_EQ(error_text(third.error()),
            "rate limit: 1 runs per minute for user alice; next run allowed "
            "in 59.0s");
  // Nothing ran, nothing was created.
  EXPECT_EQ(runner_->call_count(), calls);
  EXPECT_EQ(std::distance(fs::directory_iterator{root_ / "ws"},
                          fs::directory_iterator{}),
            workspaces);
  // Another user still gets through; alice after the wait.
  EXPECT_TRUE(submit(c, "bob"));
  *clock_ += 59000;
  EXPECT_TRUE(submit(c, "alice"));
}

TEST_F(limiter_test, without_rate_limiting_the_coordinator_has_no_limiter) {
  auto c = spawn_coordinator();
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(submit(c, "alice"));
  EXPECT_EQ(counters().total(counter::limiter_admitted), 0u);
}

TEST_F(limiter_test, a_run_is_audited_from_submission_to_end) {
  std::string error;
  ASSERT_TRUE(audit_open(state_.get(), {}, error)) << error;
  auto c = spawn_coordinator();
  auto id = submit(c, "alice", "secret task text");
  ASSERT_TRUE(id) << sys_.render(id.error());
  auto res = result(c, *id);
  ASSERT_EQ(res.status, run_status::completed);
  ASSERT_EQ(res.iterations.size(), 1u);
  ASSERT_EQ(res.iterations[0].steps.size(), 1u);
  const auto& step = res.iterations[0].steps[0];
  ASSERT_EQ(runner_->call_count(), 1u);
  EXPECT_EQ(step.argv_sha256, argv_sha256(runner_->calls()[0].argv));
  auto lines = audit_lines();
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines.front()["kind"], "run_submitted");
  EXPECT_EQ(lines.back()["kind"], "run_finished");
  for (auto& l : lines)
    EXPECT_EQ(l["run_id"], *id);
  auto submitted = lines.front();
  EXPECT_EQ(submitted["submitted_by"], "alice");
  EXPECT_EQ(submitted["task_sha256"], sha256_hex("secret task text"));
  EXPECT_FALSE(submitted.contains("task"));
  auto invoked = of_kind(lines, audit_kind::agent_invoked);
  ASSERT_EQ(invoked.size(), 1u);
  EXPECT_EQ(invoked[0]["agent"], "a");
  EXPECT_EQ(invoked[0]["argv_sha256"], step.argv_sha256);
  auto written = of_kind(lines, audit_kind::file_written);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0]["path"], "made.txt");
  EXPECT_EQ(lines.back()["detail"], "completed");
  // Never the task text.
  std::ifstream in{root_ / "state" / "audit" / audit_file_name};
  std::stringstream all;
  all << in.rdbuf();
  EXPECT_EQ(all.str().find("secret task text"), std::string::npos);
}

TEST_F(limiter_test, the_task_text_is_audited_only_with_include_task) {
  std::string error;
  audit_options opts;
  opts.include_task = true;
  ASSERT_TRUE(audit_open(state_.get(), opts, error)) << error;
  auto c = spawn_coordinator();
  auto id = submit(c, "alice", "secret task text");
  ASSERT_TRUE(id);
  result(c, *id);
  auto submitted = of_kind(audit_lines(), audit_kind::run_submitted);
  ASSERT_EQ(submitted.size(), 1u);
  EXPECT_EQ(submitted[0]["task"], "secret task text");
}

} // namespace orch
