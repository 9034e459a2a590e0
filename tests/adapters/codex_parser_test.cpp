// The codex parser on the real output of `codex exec --json` 0.169.0.

#include <gtest/gtest.h>

#include "adapters/support.hpp"

using namespace orch;
using orch::test::exited;
using orch::test::read_fixture;
using orch::test::replay;
using orch::test::replay_fixture;

namespace {

constexpr auto codex = adapter_kind::codex;

TEST(CodexParser, ImplementSucceedsWithTheLastAgentMessageAndItsUsage) {
  auto res = replay_fixture(codex, "implement");
  const auto& o = res.outcome;
  EXPECT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.failure, failure_kind::none);
  EXPECT_EQ(o.session_id, "01a20d85-a741-70f2-80c3-57c5b6d12a55");
  EXPECT_EQ(o.final_text.rfind("I created a small blog API", 0), 0u);
  EXPECT_NE(o.final_text.find("flask --app blog_api.routes run"),
            std::string::npos);
  EXPECT_EQ(o.tokens.input_tokens, 6951);
  EXPECT_EQ(o.tokens.output_tokens, 239);
  EXPECT_EQ(o.tokens.cached_tokens, 0);
  EXPECT_FALSE(o.tokens.has_cost);
  EXPECT_TRUE(o.reported_files.empty());
  EXPECT_EQ(o.exit_code, 0);
}

TEST(CodexParser, EventsStartWithTheSessionAndEndWithTheResult) {
  auto res = replay_fixture(codex, "implement");
  ASSERT_GE(res.events.size(), 3u);
  EXPECT_EQ(res.events.front().kind, event_kind::session_started);
  EXPECT_EQ(res.events.front().text, "01a20d85-a741-70f2-80c3-57c5b6d12a55");
  EXPECT_EQ(res.events.back().kind, event_kind::result);
  EXPECT_EQ(res.events.back().text, res.outcome.final_text);
  ASSERT_EQ(res.of(event_kind::usage).size(), 1u);
  EXPECT_EQ(res.of(event_kind::usage)[0].tokens.input_tokens, 6951);
}

TEST(CodexParser, ReviewKeepsTheFindingsText) {
  auto res = replay_fixture(codex, "review");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_NE(res.outcome.final_text.find("[high] blog_api/routes.py:12"),
            std::string::npos);
  EXPECT_EQ(res.outcome.tokens.output_tokens, 174);
}

TEST(CodexParser, ReviewFindingsBlockKeepsTheFencedJson) {
  auto res = replay_fixture(codex, "review-findings-block");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_NE(res.outcome.final_text.find("```json\n{\"findings\": ["),
            std::string::npos);
}

TEST(CodexParser, WriteAllowedReportsTheAbsolutePathOfTheFileChange) {
  auto res = replay_fixture(codex, "write-allowed");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.reported_files,
            std::vector<std::string>{"/home/user/project/version.py"});
  auto changes = res.of(event_kind::file_change);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].detail, "/home/user/project/version.py");
  EXPECT_EQ(changes[0].text, "add");
  EXPECT_EQ(res.outcome.final_text,
            "Created version.py with the package version.\n");
  EXPECT_EQ(res.outcome.tokens.input_tokens, 14386);
}

TEST(CodexParser, WriteRefusedSucceedsButReportsNoFile) {
  // Codex says nothing about the refused patch; only the workspace tells.
  auto res = replay_fixture(codex, "write-refused");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_TRUE(res.outcome.reported_files.empty());
  EXPECT_TRUE(res.of(event_kind::file_change).empty());
}

TEST(CodexParser, Api401IsNotAuthenticatedWithTheStatusInTheMessage) {
  auto res = replay_fixture(codex, "api-401");
  const auto& o = res.outcome;
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.failure, failure_kind::not_authenticated);
  EXPECT_EQ(o.message.rfind("codex: not authenticated (HTTP 401) — run "
                            "`codex login`",
                            0),
            0u)
    << o.message;
  EXPECT_NE(o.message.find("Incorrect API key provided"), std::string::npos);
  EXPECT_EQ(o.session_id, "01a20d85-b1a5-76b0-85c0-81ad150aaa84");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_FALSE(res.of(event_kind::error).empty());
}

TEST(CodexParser, Api429IsRateLimited) {
  auto res = replay_fixture(codex, "api-429");
  EXPECT_EQ(res.outcome.failure, failure_kind::rate_limited)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("HTTP 429"), std::string::npos);
  // Not a backoff retry: rate_limited waits for the quota (issue 12), and
  // goes to a fallback agent when that is too far away.
  EXPECT_FALSE(retryable(res.outcome.failure));
  EXPECT_TRUE(falls_back(res.outcome.failure));
}

TEST(CodexParser, Api500IsTransientFromTheHighDemandWording) {
  // The 500 reaches the output only as "high demand ... temporary errors".
  auto res = replay_fixture(codex, "api-500");
  EXPECT_EQ(res.outcome.failure, failure_kind::transient)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("high demand"), std::string::npos);
}

TEST(CodexParser, ReconnectLoopEndedByTheTotalDeadlineIsTransient) {
  // Without network codex never exits; the deadline ends it.
  auto r = exited(-1, read_fixture("codex", "not-authenticated.stdout"),
                  read_fixture("codex", "not-authenticated.stderr"));
  r.term_signal = 15;
  r.expired = deadline_kind::total;
  auto res = replay(codex, r);
  EXPECT_EQ(res.outcome.failure, failure_kind::transient)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("Reconnecting... waiting for network"),
            std::string::npos);
  EXPECT_NE(res.outcome.message.find("total deadline"), std::string::npos);
  EXPECT_EQ(res.outcome.session_id, "01a20d86-aed2-7293-b2af-c5c6be02c8dc");
}

TEST(CodexParser, PlainTextOutputIsUnparseable) {
  // `codex exec` without --json prints the answer as text.
  auto res = replay_fixture(codex, "implement-text");
  EXPECT_FALSE(res.outcome.ok);
  EXPECT_EQ(res.outcome.failure, failure_kind::unparseable);
  EXPECT_NE(res.outcome.message.find("no final result event"),
            std::string::npos);
}

TEST(CodexParser, TurnFailedWinsOverALaterTurnCompleted) {
  auto r = exited(0, "{\"type\":\"turn.failed\",\"error\":{\"message\":"
                     "\"boom\"}}\n{\"type\":\"turn.completed\"}\n");
  auto res = replay(codex, r);
  EXPECT_FALSE(res.outcome.ok);
  EXPECT_EQ(res.outcome.failure, failure_kind::agent_error);
  EXPECT_NE(res.outcome.message.find("boom"), std::string::npos);
}

TEST(CodexParser, UsageOfSeveralTurnsIsSummed) {
  std::string turn = "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\""
                     ":10,\"cached_input_tokens\":4,\"output_tokens\":2}}\n";
  auto res = replay(codex, exited(0, turn + turn));
  EXPECT_EQ(res.outcome.tokens.input_tokens, 20);
  EXPECT_EQ(res.outcome.tokens.cached_tokens, 8);
  EXPECT_EQ(res.outcome.tokens.output_tokens, 4);
}

TEST(CodexParser, DeclinedFileChangesAreNotReported) {
  auto res = replay(
    codex,
    exited(0, "{\"type\":\"item.completed\",\"item\":{\"type\":\"file_change\""
              ",\"status\":\"declined\",\"changes\":[{\"path\":\"/w/a.py\","
              "\"kind\":\"add\"}]}}\n{\"type\":\"turn.completed\"}\n"));
  EXPECT_TRUE(res.outcome.ok);
  EXPECT_TRUE(res.outcome.reported_files.empty());
}

TEST(CodexParser, CommandExecutionIsAToolCall) {
  auto res = replay(
    codex, exited(0, "{\"type\":\"item.completed\",\"item\":{\"type\":"
                     "\"command_execution\",\"command\":\"ls -la\",\"status\":"
                     "\"completed\"}}\n{\"type\":\"turn.completed\"}\n"));
  auto calls = res.of(event_kind::tool_call);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].detail, "shell");
  EXPECT_EQ(calls[0].text, "ls -la");
}

} // namespace
