// Adapters end to end: the spec an adapter builds, run by the posix process
// runner on a fake CLI (tests/fakes/<cli>, replaying the real CLI's recorded
// output), read back by the adapter's parser.

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <csignal>

#include <gtest/gtest.h>

#include "adapters/adapter.hpp"

using namespace orch;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// What one run gave.
struct run_result {
  process_result process;
  step_outcome outcome;
  std::vector<agent_event> events;
};

class EndToEnd : public ::testing::Test {
protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "orch-e2e-XXXXXX");
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    workspace_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(workspace_, ec);
  }

  /// An agent with deadlines short enough for tests.
  static agent_config agent_of(adapter_kind kind) {
    agent_config a;
    a.name = default_command(kind);
    a.kind = kind;
    a.env_allow = {"FAKE_CASE", "FAKE_FLOOD_BYTES"};
    a.limits.first_output = 10s;
    a.limits.idle = 10s;
    a.limits.total = 20s;
    return a;
  }

  /// The environment a fake sees: the fakes first on PATH, FAKE_CASE set,
  /// and a secret that must not reach it.
  std::vector<std::string> base_env(const std::string& fake_case) const {
    const char* path = std::getenv("PATH");
    return {"PATH=" + std::string(ORCH_TEST_FAKES) + ":"
              + (path ? path : "/usr/bin:/bin"),
            "HOME=" + workspace_, "FAKE_CASE=" + fake_case,
            "ORCH_TEST_SECRET=do-not-pass"};
  }

  run_result run(const agent_config& agent, const std::string& fake_case,
                 const std::string& prompt = "Create version.py",
                 std::size_t output_cap = 0) {
    auto ad = make_adapter(agent.kind);
    auto spec = ad->build(agent, {"implement", prompt, workspace_},
                          base_env(fake_case));
    spec.kill_grace = 500ms;
    if (output_cap != 0)
      spec.output_cap = output_cap;
    auto parser = ad->make_parser();
    run_result res;
    line_callback on_line = [&](output_stream s, std::string_view line) {
      if (s == output_stream::out)
        parser->feed(line, res.events);
    };
    res.process = make_posix_process_runner()->run(spec, on_line, nullptr);
    res.outcome = parser->finish(res.process);
    return res;
  }

  std::string workspace_;
};

class EveryFakeCli : public EndToEnd,
                     public ::testing::WithParamInterface<adapter_kind> {};

TEST_P(EveryFakeCli, ASuccessfulRunIsReadAsSuccess) {
  auto res = run(agent_of(GetParam()), "implement");
  EXPECT_TRUE(res.process.clean_exit());
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.final_text.rfind("I created a small blog API", 0), 0u);
  EXPECT_FALSE(res.outcome.session_id.empty());
  EXPECT_FALSE(res.events.empty());
}

TEST_P(EveryFakeCli, AWriteLeavesTheFileAndIsReported) {
  auto res = run(agent_of(GetParam()), "write");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_TRUE(fs::exists(fs::path(workspace_) / "version.py"));
  ASSERT_EQ(res.outcome.reported_files.size(), 1u);
  EXPECT_EQ(fs::path(res.outcome.reported_files[0]).filename(), "version.py");
}

TEST_P(EveryFakeCli, ARejectedKeyIsNotAuthenticated) {
  auto res = run(agent_of(GetParam()), "api-401");
  EXPECT_EQ(res.outcome.failure, failure_kind::not_authenticated)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("HTTP 401"), std::string::npos);
}

TEST_P(EveryFakeCli, AHangIsStoppedByTheFirstOutputDeadline) {
  auto agent = agent_of(GetParam());
  agent.limits.first_output = 300ms;
  auto res = run(agent, "hang");
  EXPECT_EQ(res.process.expired, deadline_kind::first_output);
  EXPECT_EQ(res.outcome.failure, failure_kind::timeout_first_output)
    << res.outcome.message;
  EXPECT_LT(res.process.elapsed, 5s);
}

TEST_P(EveryFakeCli, ACrashIsReportedWithItsSignal) {
  auto res = run(agent_of(GetParam()), "crash");
  EXPECT_EQ(res.process.term_signal, SIGSEGV);
  EXPECT_EQ(res.outcome.failure, failure_kind::crashed);
  EXPECT_NE(res.outcome.message.find("SIGSEGV"), std::string::npos);
}

TEST_P(EveryFakeCli, AnEndlessFloodIsCappedAndEndedByTheTotalDeadline) {
  auto agent = agent_of(GetParam());
  agent.limits.total = 1s;
  auto res = run(agent, "flood", "go", 64 * 1024);
  EXPECT_TRUE(res.outcome.truncated);
  EXPECT_LE(res.process.out.size(), 64u * 1024u);
  EXPECT_GT(res.process.dropped_bytes, 0u);
  EXPECT_EQ(res.outcome.failure, failure_kind::timeout_total)
    << res.outcome.message;
}

TEST_P(EveryFakeCli, AResultPastTheCapIsLostAndSaidSo) {
  auto agent = agent_of(GetParam());
  agent.env_set = {{"FAKE_FLOOD_BYTES", "300000"}};
  auto res = run(agent, "flood", "go", 64 * 1024);
  EXPECT_TRUE(res.process.clean_exit());
  EXPECT_TRUE(res.outcome.truncated);
  EXPECT_EQ(res.outcome.failure, failure_kind::unparseable)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("output exceeded the cap"),
            std::string::npos);
}

TEST_P(EveryFakeCli, AMissingExecutableIsNotInstalled) {
  auto agent = agent_of(GetParam());
  agent.command = "orch-no-such-cli-installed";
  auto res = run(agent, "implement");
  EXPECT_FALSE(res.process.started);
  EXPECT_EQ(res.outcome.failure, failure_kind::not_installed);
  EXPECT_NE(res.outcome.message.find("npm install -g"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Clis, EveryFakeCli,
                         ::testing::Values(adapter_kind::codex,
                                           adapter_kind::claude,
                                           adapter_kind::gemini,
                                           adapter_kind::copilot),
                         [](const ::testing::TestParamInfo<adapter_kind>& i) {
                           return default_command(i.param);
                         });

TEST_F(EndToEnd, ClaudeGeminiAndCopilotWithoutCredentialsAreNotAuthenticated) {
  for (auto kind :
       {adapter_kind::claude, adapter_kind::gemini, adapter_kind::copilot}) {
    auto res = run(agent_of(kind), "not-authenticated");
    EXPECT_EQ(res.outcome.failure, failure_kind::not_authenticated)
      << res.outcome.message;
    EXPECT_FALSE(retryable(res.outcome.failure));
  }
}

TEST_F(EndToEnd, CodexWithoutNetworkIsEndedByTheIdleDeadlineAsTransient) {
  // The real codex prints "Reconnecting..." and never exits.
  auto agent = agent_of(adapter_kind::codex);
  agent.limits.idle = 400ms;
  auto res = run(agent, "not-authenticated");
  EXPECT_EQ(res.process.expired, deadline_kind::idle);
  EXPECT_EQ(res.outcome.failure, failure_kind::transient)
    << res.outcome.message;
  EXPECT_NE(res.outcome.message.find("idle deadline"), std::string::npos);
}

TEST_F(EndToEnd, RateLimitsAndServerErrorsAreRetryable) {
  for (auto kind : {adapter_kind::codex, adapter_kind::claude,
                    adapter_kind::gemini, adapter_kind::copilot}) {
    auto limited = run(agent_of(kind), "api-429");
    EXPECT_EQ(limited.outcome.failure, failure_kind::rate_limited)
      << limited.outcome.message;
    auto down = run(agent_of(kind), "api-500");
    EXPECT_EQ(down.outcome.failure, failure_kind::transient)
      << down.outcome.message;
  }
}

// -- the command adapter
// -------------------------------------------------------

TEST_F(EndToEnd, TheCommandAdapterPipesThePromptOnStdin) {
  auto agent = agent_of(adapter_kind::command);
  agent.command = "cat";
  auto res = run(agent, "unused", "-n --version\nsecond line\n");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.final_text, "-n --version\nsecond line");
  EXPECT_EQ(res.events.size(), 2u);
}

TEST_F(EndToEnd, TheCommandAdapterPassesThePromptAsOneArgument) {
  auto agent = agent_of(adapter_kind::command);
  agent.command = "printf";
  agent.prompt = prompt_mode::argument;
  agent.args = {"<%s>", "{prompt}"};
  auto res = run(agent, "unused", "-n $(rm -rf /) *");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.final_text, "<-n $(rm -rf /) *>");
}

TEST_F(EndToEnd, TheChildSeesOnlyTheFilteredEnvironment) {
  auto agent = agent_of(adapter_kind::command);
  agent.command = "env";
  auto res = run(agent, "visible");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_NE(res.outcome.final_text.find("FAKE_CASE=visible"),
            std::string::npos);
  EXPECT_EQ(res.outcome.final_text.find("ORCH_TEST_SECRET"), std::string::npos);
}

TEST_F(EndToEnd, TheCommandRunsInTheWorkspace) {
  auto agent = agent_of(adapter_kind::command);
  agent.command = "sh";
  agent.prompt = prompt_mode::argument;
  agent.args = {"-c", "pwd -P", "{prompt}"};
  auto res = run(agent, "unused", "ignored");
  EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
  EXPECT_EQ(res.outcome.final_text, fs::canonical(workspace_).string());
}

TEST_F(EndToEnd, AFailingCommandIsAnAgentError) {
  auto agent = agent_of(adapter_kind::command);
  agent.command = "sh";
  agent.prompt = prompt_mode::argument;
  agent.args = {"-c", "echo nope >&2; exit 3", "{prompt}"};
  auto res = run(agent, "unused");
  EXPECT_EQ(res.outcome.failure, failure_kind::agent_error);
  EXPECT_EQ(res.outcome.exit_code, 3);
  EXPECT_NE(res.outcome.message.find("nope"), std::string::npos);
}

} // namespace
