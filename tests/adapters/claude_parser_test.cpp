// The claude parser on the real output of `claude -p --output-format
// stream-json --verbose` 2.1.330.

#include <gtest/gtest.h>

#include "adapters/support.hpp"

using namespace orch;
using orch::test::exited;
using orch::test::replay;
using orch::test::replay_fixture;

namespace {

constexpr auto claude = adapter_kind::claude;

TEST(ClaudeParser, ImplementSucceedsWithTheResultTextTokensAndCost) {
  auto res = replay_fixture(claude, "implement");
  const auto& o = res.outcome;
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.session_id, "089430ae-82b0-400b-b15d-4e4f3aa213ad");
  EXPECT_EQ(o.final_text.rfind("I created a small blog API", 0), 0u);
  EXPECT_EQ(o.tokens.input_tokens, 4440);
  EXPECT_EQ(o.tokens.output_tokens, 205);
  EXPECT_EQ(o.tokens.cached_tokens, 0);
  EXPECT_TRUE(o.tokens.has_cost);
  EXPECT_DOUBLE_EQ(o.tokens.cost_usd, 0.02186);
  EXPECT_TRUE(o.reported_files.empty());
}

TEST(ClaudeParser, TheSessionIsAnnouncedOnceAndTheResultComesLast) {
  auto res = replay_fixture(claude, "implement");
  EXPECT_EQ(res.of(event_kind::session_started).size(), 1u);
  EXPECT_EQ(res.events.front().kind, event_kind::session_started);
  EXPECT_EQ(res.events.back().kind, event_kind::result);
  EXPECT_EQ(res.events.back().detail, "success");
  ASSERT_EQ(res.of(event_kind::text).size(), 1u);
}

TEST(ClaudeParser, TheSingleJsonResultFormatIsReadToo) {
  auto res = replay_fixture(claude, "implement-json");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.session_id, "a5939080-8f82-4911-ac22-a20fb8ea724e");
  EXPECT_DOUBLE_EQ(res.outcome.tokens.cost_usd, 0.021868);
  EXPECT_EQ(res.outcome.tokens.input_tokens, 4442);
}

TEST(ClaudeParser, PartialMessageDeltasDoNotDuplicateTheText) {
  auto res = replay_fixture(claude, "implement-partial");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.of(event_kind::text).size(), 1u);
  EXPECT_EQ(res.outcome.final_text.rfind("I created a small blog API", 0), 0u);
}

TEST(ClaudeParser, ReviewAndFindingsBlockKeepTheirText) {
  auto review = replay_fixture(claude, "review");
  EXPECT_TRUE(review.outcome.ok);
  EXPECT_NE(review.outcome.final_text.find("[high] blog_api/routes.py:12"),
            std::string::npos);
  EXPECT_EQ(review.outcome.tokens.output_tokens, 140);
  auto block = replay_fixture(claude, "review-findings-block");
  EXPECT_TRUE(block.outcome.ok);
  EXPECT_NE(block.outcome.final_text.find("```json\n{\"findings\": ["),
            std::string::npos);
}

TEST(ClaudeParser, WriteAllowedReportsTheWriteToolsFilePath) {
  auto res = replay_fixture(claude, "write-allowed");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.reported_files,
            std::vector<std::string>{"/home/user/project/version.py"});
  auto calls = res.of(event_kind::tool_call);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].detail, "Write");
  EXPECT_EQ(calls[0].text, "/home/user/project/version.py");
  auto changes = res.of(event_kind::file_change);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].text, "Write");
  EXPECT_EQ(res.outcome.final_text,
            "Created version.py with the package version.\n");
  EXPECT_DOUBLE_EQ(res.outcome.tokens.cost_usd, 0.037648);
}

TEST(ClaudeParser, WriteRefusedReportsNoFileButAPermissionError) {
  auto res = replay_fixture(claude, "write-refused");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_TRUE(res.outcome.reported_files.empty());
  auto errors = res.of(event_kind::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].text.find("haven't granted it yet"), std::string::npos);
}

TEST(ClaudeParser, Api401IsNotAuthenticatedThoughTheSubtypeSaysSuccess) {
  auto res = replay_fixture(claude, "api-401");
  const auto& o = res.outcome;
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.failure, failure_kind::not_authenticated);
  EXPECT_EQ(o.message.rfind("claude: not authenticated (HTTP 401) — run "
                            "`claude` once and /login, or set "
                            "ANTHROPIC_API_KEY",
                            0),
            0u)
    << o.message;
  EXPECT_NE(o.message.find("Invalid API key"), std::string::npos);
  EXPECT_TRUE(o.final_text.empty());
  EXPECT_EQ(o.session_id, "63d5fb33-eee0-4938-86da-bf7e592f016c");
}

TEST(ClaudeParser, Api429IsRateLimited) {
  auto res = replay_fixture(claude, "api-429");
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("HTTP 429"), std::string::npos);
}

TEST(ClaudeParser, Api500IsTransient) {
  auto res = replay_fixture(claude, "api-500");
  EXPECT_EQ(res.outcome.failure, failure_kind::transient)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("HTTP 500"), std::string::npos);
}

TEST(ClaudeParser, NotLoggedInIsNotAuthenticatedWithoutAStatus) {
  auto res = replay_fixture(claude, "not-authenticated");
  const auto& o = res.outcome;
  EXPECT_EQ(o.failure, failure_kind::not_authenticated);
  EXPECT_EQ(orch::test::split_lines(o.message).at(0),
            "claude: not authenticated — run `claude` once and /login, or "
            "set ANTHROPIC_API_KEY");
  EXPECT_NE(o.message.find("Not logged in"), std::string::npos);
  EXPECT_FALSE(retryable(o.failure));
}

TEST(ClaudeParser, PlainTextOutputIsUnparseable) {
  auto res = replay_fixture(claude, "implement-text");
  EXPECT_EQ(res.outcome.failure, failure_kind::unparseable);
}

TEST(ClaudeParser, ARejectedRateLimitEventMakesAFailedRunRateLimited) {
  auto res = replay(
    claude,
    exited(1, "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\""
              ":\"rejected\",\"rateLimitType\":\"five_hour\",\"resetsAt\":"
              "1790000000},\"session_id\":\"s1\"}\n"
              "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,"
              "\"result\":\"Claude usage limit reached\",\"session_id\":"
              "\"s1\"}\n"));
  auto notices = res.of(event_kind::rate_limit);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].text, "rejected (five_hour)");
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited);
}

TEST(ClaudeParser, AnAllowedRateLimitEventIsNoNotice) {
  auto res = replay(claude,
                    exited(0, "{\"type\":\"rate_limit_event\",\"rate_limit_"
                              "info\":{\"status\":\"allowed\"}}\n"));
  EXPECT_TRUE(res.of(event_kind::rate_limit).empty());
}

TEST(ClaudeParser, AnErrorSubtypeIsAnAgentErrorWithItsErrors) {
  auto res = replay(
    claude, exited(1, "{\"type\":\"result\",\"subtype\":\"error_max_turns\","
                      "\"is_error\":true,\"errors\":[\"Reached maximum "
                      "number of turns (3)\"]}\n"));
  EXPECT_EQ(res.outcome.failure, failure_kind::agent_error);
  EXPECT_NE(res.outcome.message.find("Reached maximum number of turns"),
            std::string::npos);
}

TEST(ClaudeParser, CacheReadsCountAsCachedInputTokens) {
  auto res = replay(
    claude,
    exited(0, "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":"
              "false,\"result\":\"ok\",\"usage\":{\"input_tokens\":10,"
              "\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":"
              "100,\"output_tokens\":7},\"total_cost_usd\":0.5}\n"));
  EXPECT_TRUE(res.outcome.ok);
  EXPECT_EQ(res.outcome.tokens.input_tokens, 115);
  EXPECT_EQ(res.outcome.tokens.cached_tokens, 100);
  EXPECT_EQ(res.outcome.tokens.output_tokens, 7);
}

} // namespace
