// The gemini parser on the real output of `gemini -o stream-json` 0.61.0.

#include <gtest/gtest.h>

#include "adapters/support.hpp"

using namespace orch;
using orch::test::exited;
using orch::test::read_fixture;
using orch::test::replay;
using orch::test::replay_fixture;

namespace {

constexpr auto gemini = adapter_kind::gemini;

TEST(GeminiParser, ImplementConcatenatesTheAssistantDeltas) {
  auto res = replay_fixture(gemini, "implement");
  const auto& o = res.outcome;
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.session_id, "093625bc-682e-4c52-bd09-d76d6aabeab2");
  // The claude fixture holds the same answer in one piece.
  auto whole = replay_fixture(adapter_kind::claude, "implement");
  EXPECT_EQ(o.final_text, whole.outcome.final_text);
  EXPECT_EQ(o.tokens.input_tokens, 7831);
  EXPECT_EQ(o.tokens.output_tokens, 201);
  EXPECT_EQ(o.tokens.cached_tokens, 0);
  EXPECT_FALSE(o.tokens.has_cost);
  EXPECT_EQ(res.of(event_kind::text).size(), 19u);
}

TEST(GeminiParser, TheUserEchoIsNotAssistantText) {
  auto res = replay_fixture(gemini, "review");
  for (const auto& ev : res.of(event_kind::text))
    EXPECT_EQ(ev.text.find("Review the code in this directory"),
              std::string::npos);
  EXPECT_TRUE(res.outcome.ok);
  EXPECT_NE(res.outcome.final_text.find("[high] blog_api/routes.py:12"),
            std::string::npos);
}

TEST(GeminiParser, ReviewFindingsBlockIsReassembledIntoValidFencedJson) {
  auto res = replay_fixture(gemini, "review-findings-block");
  EXPECT_TRUE(res.outcome.ok);
  EXPECT_NE(res.outcome.final_text.find(
              "{\"severity\": \"high\", \"file\": \"blog_api/routes.py\""),
            std::string::npos);
}

TEST(GeminiParser, WriteAllowedReportsTheRelativePathAsGiven) {
  auto res = replay_fixture(gemini, "write-allowed");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.reported_files, std::vector<std::string>{"version.py"});
  auto calls = res.of(event_kind::tool_call);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].detail, "write_file");
  EXPECT_EQ(res.outcome.final_text,
            "Created version.py with the package version.\n");
  EXPECT_EQ(res.outcome.tokens.input_tokens, 15799);
}

TEST(GeminiParser, WriteRefusedSucceedsWithoutFiles) {
  auto res = replay_fixture(gemini, "write-refused");
  EXPECT_TRUE(res.outcome.ok);
  EXPECT_TRUE(res.outcome.reported_files.empty());
}

TEST(GeminiParser, Api401ExitsWith145AndIsNotAuthenticated) {
  auto res = replay_fixture(gemini, "api-401");
  EXPECT_EQ(res.outcome.exit_code, 145);
  EXPECT_EQ(res.outcome.failure, failure_kind::not_authenticated)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("HTTP 401"), std::string::npos);
  EXPECT_NE(res.outcome.message.find("invalid x-api-key"), std::string::npos);
}

TEST(GeminiParser, Api429IsRateLimitedFromTheExitCode) {
  // The message only says "rate limited"; exit 173 = 429 mod 256.
  auto res = replay_fixture(gemini, "api-429");
  EXPECT_EQ(res.outcome.exit_code, 173);
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited);
  EXPECT_NE(res.outcome.message.find("HTTP 429"), std::string::npos)
    << res.outcome.message;
}

TEST(GeminiParser, Api500IsTransient) {
  auto res = replay_fixture(gemini, "api-500");
  EXPECT_EQ(res.outcome.exit_code, 244);
  EXPECT_EQ(res.outcome.failure, failure_kind::transient);
  EXPECT_NE(res.outcome.message.find("HTTP 500"), std::string::npos);
}

TEST(GeminiParser, Exit41WithEmptyStdoutIsNotAuthenticated) {
  auto res = replay_fixture(gemini, "not-authenticated");
  EXPECT_EQ(res.outcome.failure, failure_kind::not_authenticated);
  EXPECT_EQ(orch::test::split_lines(res.outcome.message).at(0),
            "gemini: not authenticated — set GEMINI_API_KEY, or run `gemini` "
            "once and choose an auth method (~/.gemini/settings.json)");
  EXPECT_NE(res.outcome.message.find("Please set an Auth method"),
            std::string::npos);
}

TEST(GeminiParser, TheExitCodeAloneTellsTheStatusWhenStdoutIsEmpty) {
  EXPECT_EQ(replay(gemini, exited(173)).outcome.failure,
            failure_kind::rate_limited);
  EXPECT_EQ(replay(gemini, exited(145)).outcome.failure,
            failure_kind::not_authenticated);
  EXPECT_EQ(replay(gemini, exited(244)).outcome.failure,
            failure_kind::transient);
  EXPECT_EQ(replay(gemini, exited(1)).outcome.failure, failure_kind::crashed);
}

TEST(GeminiParser, AnUntrustedDirectoryIsAnAgentErrorNamingTheFix) {
  auto res = replay(gemini, exited(55, "",
                                   "Gemini CLI is not running in a "
                                   "trusted directory."));
  EXPECT_EQ(res.outcome.failure, failure_kind::agent_error);
  EXPECT_NE(res.outcome.message.find("--skip-trust"), std::string::npos);
}

TEST(GeminiParser, ThePrettyPrintedJsonFormatIsUnparseable) {
  // `-o json` spreads one object over many lines; the adapter uses
  // stream-json.
  auto res = replay_fixture(gemini, "implement-json");
  EXPECT_EQ(res.outcome.failure, failure_kind::unparseable);
}

TEST(GeminiParser, AFailedToolResultReportsNoFile) {
  auto res = replay(
    gemini,
    exited(0, "{\"type\":\"tool_use\",\"tool_name\":\"replace\",\"tool_id\":"
              "\"t1\",\"parameters\":{\"file_path\":\"a.py\"}}\n"
              "{\"type\":\"tool_result\",\"tool_id\":\"t1\",\"status\":"
              "\"error\"}\n{\"type\":\"result\",\"status\":\"success\"}\n"));
  EXPECT_TRUE(res.outcome.ok);
  EXPECT_TRUE(res.outcome.reported_files.empty());
}

} // namespace
