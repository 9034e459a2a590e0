// The circuit breaker's logic on a hand-driven wall clock, and its state file
// in the state directory (issue 12, part 3).

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "runtime/breaker.hpp"

using namespace orch;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;

constexpr int64_t t0 = 1764600000000;

breaker_policy policy(int32_t failures, std::chrono::milliseconds window,
                      std::chrono::milliseconds cool_down) {
  return breaker_policy{failures, window, cool_down};
}

TEST(circuit_breaker, opens_after_n_counted_failures_within_the_window) {
  circuit_breaker b{policy(3, 60s, 30s)};
  EXPECT_TRUE(b.allow(t0));
  EXPECT_EQ(b.on_failure(failure_kind::transient, "503", t0),
            breaker_transition::none);
  EXPECT_EQ(b.on_failure(failure_kind::crashed, "SIGSEGV", t0 + 1000),
            breaker_transition::none);
  EXPECT_EQ(
    b.on_failure(failure_kind::timeout_idle, "stalled\nmore", t0 + 2000),
    breaker_transition::opened);
  const auto& s = b.snapshot();
  EXPECT_EQ(s.state, breaker_state::open);
  EXPECT_EQ(s.open_until_ms, t0 + 2000 + 30000);
  EXPECT_EQ(s.reason, "3 failure(s) within 1m (last: timeout_idle: stalled)");
  EXPECT_FALSE(b.allow(t0 + 31999));
  EXPECT_NE(b.refusal(t0 + 2000).find("may close at "), std::string::npos);
  EXPECT_NE(b.refusal(t0 + 2000).find("(in 30s)"), std::string::npos);
}

TEST(circuit_breaker,
     failures_that_do_not_say_the_agent_is_unwell_do_not_count) {
  circuit_breaker b{policy(1, 60s, 30s)};
  for (auto k : {failure_kind::cancelled, failure_kind::agent_error,
                 failure_kind::unparseable, failure_kind::not_installed,
                 failure_kind::circuit_open})
    EXPECT_EQ(b.on_failure(k, "x", t0), breaker_transition::none);
  EXPECT_EQ(b.snapshot().state, breaker_state::closed);
  EXPECT_TRUE(b.snapshot().failures.empty());
  EXPECT_EQ(b.on_failure(failure_kind::not_authenticated, "401", t0),
            breaker_transition::opened);
}

TEST(circuit_breaker, old_failures_leave_the_window) {
  circuit_breaker b{policy(2, 60s, 30s)};
  b.on_failure(failure_kind::transient, "a", t0);
  EXPECT_EQ(b.on_failure(failure_kind::transient, "b", t0 + 60000),
            breaker_transition::none);
  EXPECT_EQ(b.snapshot().failures.size(), 1u);
  EXPECT_EQ(b.on_failure(failure_kind::transient, "c", t0 + 61000),
            breaker_transition::opened);
}

TEST(circuit_breaker, half_opens_for_one_trial_and_closes_on_success) {
  circuit_breaker b{policy(1, 60s, 30s)};
  b.on_failure(failure_kind::transient, "a", t0);
  breaker_transition t = breaker_transition::none;
  EXPECT_FALSE(b.allow(t0 + 29999, &t));
  EXPECT_EQ(t, breaker_transition::none);
  EXPECT_TRUE(b.allow(t0 + 30000, &t));
  EXPECT_EQ(t, breaker_transition::half_opened);
  EXPECT_EQ(b.snapshot().state, breaker_state::half_open);
  // One trial at a time.
  EXPECT_FALSE(b.allow(t0 + 30001));
  EXPECT_NE(b.refusal(t0 + 30001).find("a trial step is running"),
            std::string::npos);
  EXPECT_EQ(b.on_success(t0 + 31000), breaker_transition::closed);
  EXPECT_EQ(b.snapshot().state, breaker_state::closed);
  EXPECT_TRUE(b.snapshot().failures.empty());
  EXPECT_TRUE(b.allow(t0 + 31001));
}

TEST(circuit_breaker, a_failed_trial_opens_it_for_another_cool_down) {
  circuit_breaker b{policy(1, 60s, 30s)};
  b.on_failure(failure_kind::transient, "a", t0);
  ASSERT_TRUE(b.allow(t0 + 30000));
  EXPECT_EQ(b.on_failure(failure_kind::crashed, "again", t0 + 30500),
            breaker_transition::opened);
  EXPECT_EQ(b.snapshot().open_until_ms, t0 + 60500);
  EXPECT_EQ(b.snapshot().reason.rfind("the trial step failed: crashed", 0), 0u);
}

TEST(circuit_breaker, a_cancelled_trial_lets_the_next_step_try) {
  circuit_breaker b{policy(1, 60s, 30s)};
  b.on_failure(failure_kind::transient, "a", t0);
  ASSERT_TRUE(b.allow(t0 + 30000));
  b.end_trial();
  EXPECT_TRUE(b.allow(t0 + 30001));
}

TEST(circuit_breaker, a_quota_reset_time_opens_it_until_then) {
  circuit_breaker b{policy(5, 60s, 30s)};
  auto reset = t0 + 3 * 3600 * 1000;
  EXPECT_EQ(b.on_failure(failure_kind::rate_limited, "out of quota", t0, reset),
            breaker_transition::opened);
  EXPECT_EQ(b.snapshot().open_until_ms, reset);
  EXPECT_FALSE(b.allow(reset - 1));
  EXPECT_TRUE(b.allow(reset));
}

TEST(circuit_breaker, durations_and_times_read_well) {
  EXPECT_EQ(format_wait(0), "0s");
  EXPECT_EQ(format_wait(45000), "45s");
  EXPECT_EQ(format_wait(250000), "4m 10s");
  EXPECT_EQ(format_wait(240000), "4m");
  EXPECT_EQ(format_wait(7500000), "2h 5m");
  EXPECT_EQ(format_wall_time(t0 + 60000, t0).size(), 8u); // HH:MM:SS
  EXPECT_EQ(format_wall_time(t0 + 3 * 86400000LL, t0).size(), 19u);
}

class breaker_store_test : public ::testing::Test {
protected:
  breaker_store_test() {
    dir_ = fs::temp_directory_path()
           / ("orch-breaker-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~breaker_store_test() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(breaker_store_test, a_saved_breaker_reads_back_the_same) {
  circuit_breaker b{policy(1, 60s, 30s)};
  b.on_failure(failure_kind::rate_limited, "quota", t0, t0 + 99000);
  std::string error;
  ASSERT_TRUE(save_breaker(dir_, "claude", b.snapshot(), error)) << error;
  EXPECT_TRUE(fs::exists(dir_ / "breakers" / "claude.json"));
  auto snap = load_breaker(dir_, "claude", error);
  ASSERT_TRUE(snap) << error;
  EXPECT_EQ(snap->state, breaker_state::open);
  EXPECT_EQ(snap->open_until_ms, t0 + 99000);
  EXPECT_EQ(snap->reason, b.snapshot().reason);
  EXPECT_EQ(snap->failures, b.snapshot().failures);
  EXPECT_EQ(snap->changed_ms, t0);
  // A breaker built from it refuses until the same time.
  circuit_breaker again{policy(1, 60s, 30s), *snap};
  EXPECT_FALSE(again.allow(t0 + 98999));
  EXPECT_TRUE(again.allow(t0 + 99000));
}

TEST_F(breaker_store_test, no_file_is_a_closed_breaker_without_error) {
  std::string error;
  EXPECT_FALSE(load_breaker(dir_, "codex", error));
  EXPECT_TRUE(error.empty());
}

TEST_F(breaker_store_test, a_corrupt_file_is_reported) {
  fs::create_directories(dir_ / "breakers");
  std::ofstream{dir_ / "breakers" / "codex.json"} << "{not json";
  std::string error;
  EXPECT_FALSE(load_breaker(dir_, "codex", error));
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  std::ofstream{dir_ / "breakers" / "codex.json"} << R"({"state": "ajar"})";
  error.clear();
  EXPECT_FALSE(load_breaker(dir_, "codex", error));
  EXPECT_NE(error.find("unknown state 'ajar'"), std::string::npos) << error;
}

TEST_F(breaker_store_test, a_link_at_the_file_is_never_followed) {
  fs::create_directories(dir_ / "breakers");
  std::ofstream{dir_ / "elsewhere.json"} << R"({"state": "open"})";
  fs::create_symlink(dir_ / "elsewhere.json", dir_ / "breakers" / "codex.json");
  std::string error;
  EXPECT_FALSE(load_breaker(dir_, "codex", error));
  EXPECT_FALSE(error.empty());
  // Saving replaces the link, never writes through it.
  circuit_breaker b;
  ASSERT_TRUE(save_breaker(dir_, "codex", b.snapshot(), error)) << error;
  EXPECT_FALSE(fs::is_symlink(dir_ / "breakers" / "codex.json"));
  std::ifstream in{dir_ / "elsewhere.json"};
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, R"({"state": "open"})");
}

TEST_F(breaker_store_test, agent_names_become_plain_file_names) {
  EXPECT_EQ(breaker_file("claude"), "breakers/claude.json");
  EXPECT_EQ(breaker_file("../x"), "breakers/.._x.json");
}

} // namespace
