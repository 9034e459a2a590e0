// What every JSON-lines parser must survive and how the process result
// alone is judged: truncation, garbage, unknown events, empty output,
// signals, deadlines, a missing executable, cancellation.

#include <csignal>

#include <cerrno>

#include <gtest/gtest.h>

#include "adapters/support.hpp"

using namespace orch;
using orch::test::exited;
using orch::test::read_fixture;
using orch::test::replay;
using orch::test::split_lines;

namespace {

/// One CLI and the fixture it succeeds with.
struct cli_case {
  adapter_kind kind;
  const char* name;
};

void PrintTo(const cli_case& c, std::ostream* os) {
  *os << c.name;
}

class EveryJsonParser : public ::testing::TestWithParam<cli_case> {
protected:
  adapter_kind kind() const {
    return GetParam().kind;
  }
  std::string cli() const {
    return GetParam().name;
  }
  std::string success_stdout() const {
    return read_fixture(cli(), "write-allowed.stdout");
  }
};

TEST_P(EveryJsonParser, ReadsTheSuccessFixtureAsSuccess) {
  auto res = replay(kind(), exited(0, success_stdout()));
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_FALSE(res.outcome.session_id.empty());
  EXPECT_EQ(res.outcome.reported_files.size(), 1u);
}

TEST_P(EveryJsonParser, ATruncatedLastLineIsNotACrashButNoResult) {
  auto out = success_stdout();
  // Cut the final (result) line in half, as a killed writer leaves it.
  auto last = out.rfind('\n', out.size() - 2);
  ASSERT_NE(last, std::string::npos);
  out.resize(last + 1 + (out.size() - last) / 2);
  auto res = replay(kind(), exited(0, out));
  EXPECT_FALSE(res.outcome.ok);
  EXPECT_EQ(res.outcome.failure, failure_kind::unparseable)
    << res.outcome.message;
  // What came before the cut is still read.
  EXPECT_FALSE(res.of(event_kind::text).empty());
  EXPECT_EQ(res.outcome.final_text,
            "Created version.py with the package version.\n");
}

TEST_P(EveryJsonParser, GarbageAndHugeLinesAreSkipped) {
  std::string junk = "{not json\n[1,2,3]\nnull\n\"a string\"\n"
                     "\x01\x02\xff\xfe binary\n}{\n{\"unterminated\": \"\n"
                     + std::string(2 * 1024 * 1024, 'x') + "\n{\"pad\":\""
                     + std::string(1024 * 1024, 'y') + "\"}\n";
  auto clean = replay(kind(), exited(0, success_stdout()));
  auto noisy = replay(kind(), exited(0, junk + success_stdout() + junk));
  EXPECT_TRUE(noisy.outcome.ok) << noisy.outcome.message;
  EXPECT_EQ(noisy.outcome.final_text, clean.outcome.final_text);
  EXPECT_EQ(noisy.outcome.reported_files, clean.outcome.reported_files);
  EXPECT_EQ(noisy.events.size(), clean.events.size());
}

TEST_P(EveryJsonParser, UnknownEventTypesAreIgnored) {
  std::string unknown = "{\"type\":\"brand.new\",\"data\":{\"x\":1}}\n"
                        "{\"type\":42}\n{\"no_type\":true}\n"
                        "{\"type\":\"result_v2\",\"status\":\"error\"}\n";
  auto clean = replay(kind(), exited(0, success_stdout()));
  auto res = replay(kind(), exited(0, unknown + success_stdout() + unknown));
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.events.size(), clean.events.size());
}

TEST_P(EveryJsonParser, WrongTypedFieldsDoNotThrow) {
  std::string odd
    = "{\"type\":\"result\",\"result\":5,\"usage\":[1],\"stats\":\"x\","
      "\"exitCode\":\"0\",\"status\":7,\"is_error\":\"no\",\"data\":3}\n"
      "{\"type\":\"item.completed\",\"item\":[]}\n"
      "{\"type\":\"assistant\",\"message\":{\"content\":\"text\"}}\n"
      "{\"type\":\"assistant.message\",\"data\":{\"content\":[]}}\n"
      "{\"type\":\"tool_use\",\"parameters\":null}\n";
  EXPECT_NO_THROW(replay(kind(), exited(1, odd)));
}

TEST_P(EveryJsonParser, EmptyOutputWithExitZeroIsUnparseable) {
  auto res = replay(kind(), exited(0));
  EXPECT_EQ(res.outcome.failure, failure_kind::unparseable);
  EXPECT_EQ(split_lines(res.outcome.message).at(0),
            cli() + ": unparseable output — exit 0 but nothing on stdout");
  EXPECT_FALSE(retryable(res.outcome.failure));
}

TEST_P(EveryJsonParser, NonZeroExitWithNothingRecognisableIsACrash) {
  auto res = replay(kind(), exited(3, "", "something odd happened\n"));
  EXPECT_EQ(res.outcome.failure, failure_kind::crashed);
  EXPECT_NE(res.outcome.message.find("exited with status 3"),
            std::string::npos);
  EXPECT_NE(res.outcome.message.find("something odd happened"),
            std::string::npos);
}

TEST_P(EveryJsonParser, ASignalIsACrashEvenAfterPartialOutput) {
  auto r = exited(-1, success_stdout().substr(0, 200));
  r.term_signal = SIGSEGV;
  auto res = replay(kind(), r);
  EXPECT_EQ(res.outcome.failure, failure_kind::crashed);
  EXPECT_EQ(split_lines(res.outcome.message).at(0),
            cli() + ": crashed — killed by SIGSEGV (11)");
}

TEST_P(EveryJsonParser, EachDeadlineGivesItsTimeoutKind) {
  const std::pair<deadline_kind, failure_kind> cases[]
    = {{deadline_kind::first_output, failure_kind::timeout_first_output},
       {deadline_kind::idle, failure_kind::timeout_idle},
       {deadline_kind::total, failure_kind::timeout_total}};
  for (auto [deadline, expected] : cases) {
    auto r = exited(-1);
    r.term_signal = SIGTERM;
    r.expired = deadline;
    r.elapsed = std::chrono::milliseconds{1500};
    auto res = replay(kind(), r);
    EXPECT_EQ(res.outcome.failure, expected) << res.outcome.message;
    EXPECT_NE(res.outcome.message.find("stopped after 1.5 s"),
              std::string::npos);
  }
}

TEST_P(EveryJsonParser, AnAnswerBeforeTheDeadlineStillCounts) {
  // Some CLIs print their result and then fail to exit.
  auto r = exited(-1, success_stdout());
  r.term_signal = SIGTERM;
  r.expired = deadline_kind::idle;
  auto res = replay(kind(), r);
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("idle deadline"), std::string::npos);
}

TEST_P(EveryJsonParser, AMissingExecutableIsNotInstalled) {
  for (int e : {ENOENT, EACCES}) {
    process_result r;
    r.started = false;
    r.spawn_errno = e;
    auto res = replay(kind(), r);
    EXPECT_EQ(res.outcome.failure, failure_kind::not_installed);
    EXPECT_EQ(res.outcome.message.rfind(cli()
                                          + ": not installed — could "
                                            "not start it (",
                                        0),
              0u)
      << res.outcome.message;
    EXPECT_NE(res.outcome.message.find("npm install -g"), std::string::npos);
  }
}

TEST_P(EveryJsonParser, CancellationWinsOverEverythingElse) {
  auto r = exited(-1, success_stdout().substr(0, 100));
  r.cancelled = true;
  r.term_signal = SIGTERM;
  auto res = replay(kind(), r);
  EXPECT_EQ(res.outcome.failure, failure_kind::cancelled);
}

TEST_P(EveryJsonParser, CancelledBeforeTheStartIsCancelledNotMissing) {
  process_result r;
  r.started = false;
  r.cancelled = true;
  r.spawn_errno = ECANCELED;
  EXPECT_EQ(replay(kind(), r).outcome.failure, failure_kind::cancelled);
}

TEST_P(EveryJsonParser, TruncationOfTheStreamIsReported) {
  auto r = exited(0, success_stdout());
  r.truncated = true;
  r.dropped_bytes = 1234;
  auto res = replay(kind(), r);
  EXPECT_TRUE(res.outcome.truncated);
  auto cut = exited(0, "{\"type\":\"x\"}\n");
  cut.truncated = true;
  cut.dropped_bytes = 99;
  auto lost = replay(kind(), cut);
  EXPECT_EQ(lost.outcome.failure, failure_kind::unparseable);
  EXPECT_NE(lost.outcome.message.find("99 bytes were dropped"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
  Clis, EveryJsonParser,
  ::testing::Values(cli_case{adapter_kind::codex, "codex"},
                    cli_case{adapter_kind::claude, "claude"},
                    cli_case{adapter_kind::gemini, "gemini"},
                    cli_case{adapter_kind::copilot, "copilot"}),
  [](const ::testing::TestParamInfo<cli_case>& info) {
    return std::string(info.param.name);
  });

// -- the command adapter's parser ---------------------------------------------

TEST(CommandParser, EachLineIsTextAndTheTrimmedStdoutIsTheAnswer) {
  auto res = replay(adapter_kind::command,
                    exited(0, "\n  first line\nsecond line\n\n"));
  EXPECT_TRUE(res.outcome.ok);
  EXPECT_EQ(res.outcome.final_text, "first line\nsecond line");
  EXPECT_EQ(res.of(event_kind::text).size(), 4u);
}

TEST(CommandParser, FedLinesAreTheAnswerWhenNoStdoutWasCaptured) {
  auto parser = make_adapter(adapter_kind::command)->make_parser();
  std::vector<agent_event> events;
  parser->feed("a", events);
  parser->feed("b", events);
  auto o = parser->finish(exited(0));
  EXPECT_EQ(o.final_text, "a\nb");
}

TEST(CommandParser, ANonZeroExitIsAnAgentErrorWithStderr) {
  auto res = replay(adapter_kind::command,
                    exited(2, "partial\n", "fatal: bad input\n"));
  EXPECT_FALSE(res.outcome.ok);
  EXPECT_EQ(res.outcome.failure, failure_kind::agent_error);
  EXPECT_EQ(split_lines(res.outcome.message).at(0),
            "command: agent error — exited with status 2");
  EXPECT_NE(res.outcome.message.find("fatal: bad input"), std::string::npos);
}

TEST(CommandParser, DeadlinesSignalsAndMissingProgramsAreJudgedAsForClis) {
  auto r = exited(-1);
  r.expired = deadline_kind::first_output;
  EXPECT_EQ(replay(adapter_kind::command, r).outcome.failure,
            failure_kind::timeout_first_output);
  auto s = exited(-1);
  s.term_signal = SIGKILL;
  EXPECT_EQ(replay(adapter_kind::command, s).outcome.failure,
            failure_kind::crashed);
  process_result n;
  n.spawn_errno = ENOENT;
  EXPECT_EQ(replay(adapter_kind::command, n).outcome.failure,
            failure_kind::not_installed);
}

TEST(CommandParser, AnOverlongArgumentSaysToUseStdin) {
  process_result r;
  r.spawn_errno = E2BIG;
  auto res = replay(adapter_kind::command, r);
  EXPECT_EQ(res.outcome.failure, failure_kind::agent_error);
  EXPECT_NE(res.outcome.message.find("128 KiB"), std::string::npos);
}

} // namespace
