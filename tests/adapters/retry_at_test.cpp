// Quota reset times (issue 12, part 2): a rate-limited outcome carries when
// the quota resets, from Claude's rate_limit_event (resetsAt in seconds or in
// milliseconds) or from a Retry-After / "try again in" text of a 429 error.

#include <gtest/gtest.h>

#include "adapters/detail.hpp"
#include "adapters/support.hpp"

using namespace orch;
using orch::test::exited;
using orch::test::read_fixture;
using orch::test::replay;

namespace {

constexpr int64_t now = 1764600000000; // 2025-12-01T14:40:00Z

TEST(RetryAt, RetryAfterHeadersAndTryAgainTextsAreRead) {
  using detail::find_retry_at;
  EXPECT_EQ(find_retry_at("HTTP 429\nretry-after: 30", now), now + 30000);
  EXPECT_EQ(find_retry_at("Retry-After: 0", now), now);
  EXPECT_EQ(find_retry_at("{\"retry_after\": 12}", now), now + 12000);
  EXPECT_EQ(find_retry_at("Rate limit reached. Please try again in 20s.", now),
            now + 20000);
  EXPECT_EQ(find_retry_at("try again in 5 minutes", now), now + 300000);
  EXPECT_EQ(find_retry_at("Try again in 1m30s", now), now + 90000);
  EXPECT_EQ(find_retry_at("quota exceeded, retry in 2 hours", now),
            now + 7200000);
  EXPECT_EQ(find_retry_at("try again in 250ms", now), now + 250);
}

TEST(RetryAt, TextsWithoutAWaitGiveNothing) {
  using detail::find_retry_at;
  EXPECT_EQ(find_retry_at("rate limited", now), 0);
  EXPECT_EQ(find_retry_at("try again later", now), 0);
  EXPECT_EQ(find_retry_at("try again in a while", now), 0);
  // Beyond a week nobody meant a wait.
  EXPECT_EQ(find_retry_at("retry-after: 99999999", now), 0);
}

TEST(RetryAt, EpochTimesAreReadInSecondsAndInMilliseconds) {
  EXPECT_EQ(detail::epoch_to_ms(1764600000.0), now);
  EXPECT_EQ(detail::epoch_to_ms(1764600000000.0), now);
  EXPECT_EQ(detail::epoch_to_ms(0), 0);
  EXPECT_EQ(detail::epoch_to_ms(-5), 0);
  EXPECT_EQ(detail::epoch_to_ms(42), 0);
}

/// Claude's recorded 429 with a rejected rate_limit_event put before it.
std::string claude_429_with(const std::string& resets_at) {
  auto out = read_fixture("claude", "api-429.stdout");
  auto first_newline = out.find('\n');
  std::string event = R"({"type":"rate_limit_event","rate_limit_info":)"
                      R"({"status":"rejected","resetsAt":)"
                      + resets_at
                      + R"(,"rateLimitType":"five_hour"},"session_id":"s"})";
  return out.substr(0, first_newline + 1) + event + "\n"
         + out.substr(first_newline + 1);
}

TEST(RetryAt, ClaudesRateLimitEventGivesTheResetTimeInSeconds) {
  auto res = replay(adapter_kind::claude,
                    exited(1, claude_429_with("1764600000")));
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited)
    << res.outcome.message;
  EXPECT_EQ(res.outcome.retry_at_ms, now);
  EXPECT_FALSE(res.of(event_kind::rate_limit).empty());
}

TEST(RetryAt, ClaudesRateLimitEventGivesTheResetTimeInMilliseconds) {
  auto res = replay(adapter_kind::claude,
                    exited(1, claude_429_with("1764600000123")));
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited);
  EXPECT_EQ(res.outcome.retry_at_ms, now + 123);
}

TEST(RetryAt, A429WithoutAResetTimeHasNone) {
  auto res = replay(adapter_kind::claude,
                    exited(1, read_fixture("claude", "api-429.stdout")));
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited);
  EXPECT_EQ(res.outcome.retry_at_ms, 0);
}

TEST(RetryAt, ATryAgainTextOnStderrOfA429GivesTheResetTime) {
  auto before = detail::wall_now_ms();
  auto res = replay(adapter_kind::codex,
                    exited(1, read_fixture("codex", "api-429.stdout"),
                           "Rate limit reached; please try again in 90 "
                           "seconds.\n"));
  auto after = detail::wall_now_ms();
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited)
    << res.outcome.message;
  EXPECT_GE(res.outcome.retry_at_ms, before + 90000);
  EXPECT_LE(res.outcome.retry_at_ms, after + 90000);
}

TEST(RetryAt, OnlyRateLimitedOutcomesCarryAResetTime) {
  auto res = replay(adapter_kind::claude,
                    exited(1, read_fixture("claude", "api-500.stdout"),
                           "try again in 30 seconds\n"));
  EXPECT_NE(res.outcome.failure, failure_kind::rate_limited);
  EXPECT_EQ(res.outcome.retry_at_ms, 0);
}

} // namespace
