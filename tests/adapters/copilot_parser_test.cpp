// The copilot parser on the real output of `copilot --output-format json`
// 1.0.102.

#include <gtest/gtest.h>

#include "adapters/support.hpp"

using namespace orch;
using orch::test::exited;
using orch::test::replay;
using orch::test::replay_fixture;

namespace {

constexpr auto copilot = adapter_kind::copilot;

TEST(CopilotParser, ImplementSucceedsWithTheLastAssistantMessage) {
  auto res = replay_fixture(copilot, "implement");
  const auto& o = res.outcome;
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.session_id, "3523a369-35b3-47cb-9ecd-508a402eaff1");
  auto whole = replay_fixture(adapter_kind::claude, "implement");
  EXPECT_EQ(o.final_text, whole.outcome.final_text);
  // Copilot's JSON stream carries no token counts.
  EXPECT_EQ(o.tokens.input_tokens, 0);
  EXPECT_EQ(o.tokens.output_tokens, 0);
  EXPECT_FALSE(o.tokens.has_cost);
  // 36 ephemeral deltas, one assistant.message.
  EXPECT_EQ(res.of(event_kind::text).size(), 1u);
  EXPECT_EQ(res.events.back().kind, event_kind::result);
}

TEST(CopilotParser, ReviewAndFindingsBlockKeepTheirText) {
  auto review = replay_fixture(copilot, "review");
  EXPECT_TRUE(review.outcome.ok) << review.outcome.message;
  EXPECT_NE(review.outcome.final_text.find("[high] blog_api/routes.py:12"),
            std::string::npos);
  auto block = replay_fixture(copilot, "review-findings-block");
  EXPECT_TRUE(block.outcome.ok);
  EXPECT_NE(block.outcome.final_text.find("{\"findings\": ["),
            std::string::npos);
}

TEST(CopilotParser, WriteAllowedReportsTheFileTheShellRedirectWrote) {
  auto res = replay_fixture(copilot, "write-allowed");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.reported_files, std::vector<std::string>{"version.py"});
  auto calls = res.of(event_kind::tool_call);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].detail, "bash");
  EXPECT_EQ(res.outcome.final_text,
            "Created version.py with the package version.\n");
}

TEST(CopilotParser, WriteRefusedReportsNoFileButTheDenial) {
  auto res = replay_fixture(copilot, "write-refused");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_TRUE(res.outcome.reported_files.empty());
  auto errors = res.of(event_kind::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].text.rfind("Permission denied", 0), 0u);
}

TEST(CopilotParser, Api401IsNotAuthenticated) {
  auto res = replay_fixture(copilot, "api-401");
  EXPECT_EQ(res.outcome.failure, failure_kind::not_authenticated)
    << res.outcome.message;
  EXPECT_EQ(res.outcome.message.rfind(
              "copilot: not authenticated (HTTP 401) — run `copilot` once", 0),
            0u)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("Authentication failed with provider"),
            std::string::npos);
  EXPECT_EQ(res.outcome.session_id, "659e8dc3-73b0-4704-9078-6dd0a4db8be5");
}

TEST(CopilotParser, Api429IsRateLimitedAndItsRetriesAreNoticed) {
  auto res = replay_fixture(copilot, "api-429");
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited);
  EXPECT_NE(res.outcome.message.find("HTTP 429"), std::string::npos);
  EXPECT_EQ(res.of(event_kind::rate_limit).size(), 5u);
}

TEST(CopilotParser, Api500IsTransient) {
  auto res = replay_fixture(copilot, "api-500");
  EXPECT_EQ(res.outcome.failure, failure_kind::transient)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("HTTP 500"), std::string::npos);
}

TEST(CopilotParser, NoAuthenticationInformationOnStderrIsNotAuthenticated) {
  auto res = replay_fixture(copilot, "not-authenticated");
  EXPECT_EQ(res.outcome.failure, failure_kind::not_authenticated)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("No authentication information found"),
            std::string::npos);
}

TEST(CopilotParser, PlainTextOutputIsUnparseable) {
  auto res = replay_fixture(copilot, "implement-text");
  EXPECT_EQ(res.outcome.failure, failure_kind::unparseable);
}

TEST(CopilotParser, ASuccessfulResultWithoutAnAnswerIsAnAgentError) {
  auto res = replay(copilot, exited(0, "{\"type\":\"result\",\"sessionId\":"
                                       "\"s\",\"exitCode\":0}\n"));
  EXPECT_FALSE(res.outcome.ok);
  EXPECT_EQ(res.outcome.failure, failure_kind::agent_error);
  EXPECT_NE(res.outcome.message.find("without an answer"), std::string::npos);
}

TEST(CopilotParser, AnEditToolReportsItsPathOnceItCompleted) {
  auto res = replay(
    copilot,
    exited(0, "{\"type\":\"tool.execution_start\",\"data\":{\"toolCallId\":"
              "\"c1\",\"toolName\":\"edit\",\"arguments\":{\"path\":"
              "\"/w/app.py\"}}}\n"
              "{\"type\":\"tool.execution_complete\",\"data\":{\"toolCallId\""
              ":\"c1\",\"success\":true}}\n"
              "{\"type\":\"assistant.message\",\"data\":{\"content\":\"done\""
              "}}\n{\"type\":\"result\",\"exitCode\":0}\n"));
  EXPECT_TRUE(res.outcome.ok);
  EXPECT_EQ(res.outcome.reported_files, std::vector<std::string>{"/w/app.py"});
  EXPECT_EQ(res.outcome.final_text, "done");
}

} // namespace
