// The names of events and failures, and which failures are worth a retry.

#include <set>

#include <gtest/gtest.h>

#include "runtime/events.hpp"

using namespace orch;

namespace {

TEST(Events, EveryEventKindHasADistinctSnakeCaseName) {
  std::set<std::string> names;
  for (auto k :
       {event_kind::session_started, event_kind::text, event_kind::tool_call,
        event_kind::file_change, event_kind::usage, event_kind::rate_limit,
        event_kind::error, event_kind::result})
    names.insert(to_string(k));
  EXPECT_EQ(names.size(), 8u);
  EXPECT_EQ(to_string(event_kind::session_started), "session_started");
  EXPECT_EQ(to_string(event_kind::file_change), "file_change");
}

TEST(Events, EveryFailureKindHasADistinctSnakeCaseName) {
  std::set<std::string> names;
  for (int i = 0; i <= static_cast<int>(failure_kind::circuit_open); ++i)
    names.insert(to_string(static_cast<failure_kind>(i)));
  EXPECT_EQ(names.size(), 13u);
  EXPECT_EQ(to_string(failure_kind::circuit_open), "circuit_open");
  EXPECT_EQ(names.count("unknown"), 0u);
  EXPECT_EQ(to_string(failure_kind::not_authenticated), "not_authenticated");
  EXPECT_EQ(to_string(failure_kind::timeout_first_output),
            "timeout_first_output");
}

TEST(Events, PassingTroubleIsRetryable) {
  EXPECT_TRUE(retryable(failure_kind::transient));
  EXPECT_TRUE(retryable(failure_kind::timeout_first_output));
  EXPECT_TRUE(retryable(failure_kind::timeout_idle));
  EXPECT_TRUE(retryable(failure_kind::crashed));
}

TEST(Events, RateLimitsWaitForTheQuotaInsteadOfABackoffRetry) {
  EXPECT_FALSE(retryable(failure_kind::rate_limited));
  EXPECT_TRUE(counts_for_breaker(failure_kind::rate_limited));
  EXPECT_TRUE(falls_back(failure_kind::rate_limited));
}

TEST(Events, TheBreakerCountsOnlyFailuresThatSayTheAgentIsUnwell) {
  for (auto k : {failure_kind::transient, failure_kind::timeout_first_output,
                 failure_kind::timeout_idle, failure_kind::timeout_total,
                 failure_kind::crashed, failure_kind::rate_limited,
                 failure_kind::not_authenticated})
    EXPECT_TRUE(counts_for_breaker(k)) << to_string(k);
  for (auto k : {failure_kind::none, failure_kind::not_installed,
                 failure_kind::unparseable, failure_kind::agent_error,
                 failure_kind::cancelled, failure_kind::circuit_open})
    EXPECT_FALSE(counts_for_breaker(k)) << to_string(k);
}

TEST(Events, FallbacksTakeOverWhenTheAgentCannotRunTheStep) {
  for (auto k : {failure_kind::not_installed, failure_kind::not_authenticated,
                 failure_kind::circuit_open, failure_kind::rate_limited})
    EXPECT_TRUE(falls_back(k)) << to_string(k);
  for (auto k : {failure_kind::none, failure_kind::transient,
                 failure_kind::crashed, failure_kind::agent_error,
                 failure_kind::cancelled, failure_kind::timeout_total})
    EXPECT_FALSE(falls_back(k)) << to_string(k);
}

TEST(Events, DeterministicFailuresAreNotRetryable) {
  EXPECT_FALSE(retryable(failure_kind::none));
  EXPECT_FALSE(retryable(failure_kind::not_installed));
  EXPECT_FALSE(retryable(failure_kind::not_authenticated));
  EXPECT_FALSE(retryable(failure_kind::timeout_total));
  EXPECT_FALSE(retryable(failure_kind::unparseable));
  EXPECT_FALSE(retryable(failure_kind::agent_error));
  EXPECT_FALSE(retryable(failure_kind::cancelled));
  EXPECT_FALSE(retryable(failure_kind::circuit_open));
}

TEST(Events, UsageAddsUpAndKeepsTheCostFlag) {
  usage a;
  a.input_tokens = 10;
  a.cached_tokens = 3;
  usage b;
  b.output_tokens = 5;
  b.cost_usd = 0.25;
  b.has_cost = true;
  a += b;
  EXPECT_EQ(a.input_tokens, 10);
  EXPECT_EQ(a.output_tokens, 5);
  EXPECT_EQ(a.cached_tokens, 3);
  EXPECT_TRUE(a.has_cost);
  EXPECT_DOUBLE_EQ(a.cost_usd, 0.25);
}

} // namespace
