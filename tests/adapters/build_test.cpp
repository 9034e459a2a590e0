// What each adapter asks the process runner to start: argv, environment,
// stdin, working directory and deadlines.

#include <algorithm>
#include <cstdlib>

#include <gtest/gtest.h>

#include "adapters/adapter.hpp"

using namespace orch;
using namespace std::chrono_literals;

namespace {

using strings = std::vector<std::string>;

bool has(const strings& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

/// True when `a` is immediately followed by `b` in argv.
bool has_pair(const strings& v, const std::string& a, const std::string& b) {
  for (std::size_t i = 0; i + 1 < v.size(); ++i)
    if (v[i] == a && v[i + 1] == b)
      return true;
  return false;
}

std::vector<std::string> names_of(const strings& env) {
  strings out;
  for (const auto& e : env)
    out.push_back(e.substr(0, e.find('=')));
  return out;
}

const strings base_env = {"PATH=/usr/bin:/bin",
                          "HOME=/home/u",
                          "USER=u",
                          "LOGNAME=u",
                          "LANG=C.UTF-8",
                          "LC_ALL=C",
                          "TERM=xterm",
                          "TMPDIR=/tmp",
                          "XDG_CONFIG_HOME=/home/u/.config",
                          "AWS_SECRET_ACCESS_KEY=leak",
                          "DATABASE_PASSWORD=leak",
                          "OPENAI_API_KEY=sk-openai",
                          "ANTHROPIC_API_KEY=sk-ant",
                          "GEMINI_API_KEY=gm-key",
                          "GH_TOKEN=gh-token",
                          "MY_TOOL_HOME=/opt/tool",
                          "SSH_AUTH_SOCK=/tmp/agent"};

agent_config agent_of(adapter_kind kind) {
  agent_config a;
  a.name = "a";
  a.kind = kind;
  a.limits.first_output = 11s;
  a.limits.idle = 22s;
  a.limits.total = 33s;
  return a;
}

step_input input(const std::string& prompt = "Write hello.py") {
  return {"implement", prompt, "/work/ws/run-1"};
}

// -- common to the four CLIs
// ---------------------------------------------------

class EveryCli : public ::testing::TestWithParam<adapter_kind> {};

TEST_P(EveryCli, ThePromptGoesOnStdinNeverIntoArgv) {
  auto ad = make_adapter(GetParam());
  const std::string prompt = "--help -rf / --yolo";
  auto spec = ad->build(agent_of(GetParam()), input(prompt), base_env);
  ASSERT_TRUE(spec.stdin_data.has_value());
  EXPECT_EQ(*spec.stdin_data, prompt);
  for (const auto& arg : spec.argv)
    EXPECT_EQ(arg.find("--help"), std::string::npos) << arg;
}

TEST_P(EveryCli, TheWorkspaceIsTheWorkingDirectoryAndLimitsAreDeadlines) {
  auto spec
    = make_adapter(GetParam())->build(agent_of(GetParam()), input(), base_env);
  EXPECT_EQ(spec.cwd, "/work/ws/run-1");
  EXPECT_EQ(spec.first_output_deadline, 11s);
  EXPECT_EQ(spec.idle_deadline, 22s);
  EXPECT_EQ(spec.total_deadline, 33s);
  EXPECT_EQ(spec.output_cap, process_spec{}.output_cap);
}

TEST_P(EveryCli, TheDefaultExecutableIsTheCliNameAndCommandOverridesIt) {
  auto ad = make_adapter(GetParam());
  auto a = agent_of(GetParam());
  EXPECT_EQ(ad->build(a, input(), base_env).argv.at(0),
            default_command(GetParam()));
  a.command = "/opt/bin/my-cli";
  EXPECT_EQ(ad->build(a, input(), base_env).argv.at(0), "/opt/bin/my-cli");
}

TEST_P(EveryCli, ExtraArgsComeAfterTheAdaptersOwnFlags) {
  auto ad = make_adapter(GetParam());
  auto a = agent_of(GetParam());
  auto plain = ad->build(a, input(), base_env).argv;
  a.args = {"--extra", "value"};
  auto argv = ad->build(a, input(), base_env).argv;
  ASSERT_EQ(argv.size(), plain.size() + 2);
  EXPECT_TRUE(has_pair(argv, "--extra", "value"));
  // codex keeps "-" (read stdin) last; the others end with the extras.
  if (GetParam() == adapter_kind::codex)
    EXPECT_EQ(argv.back(), "-");
  else
    EXPECT_EQ(argv.back(), "value");
}

TEST_P(EveryCli, TheEnvironmentHoldsOnlyAllowedNames) {
  auto ad = make_adapter(GetParam());
  auto spec = ad->build(agent_of(GetParam()), input(), base_env);
  auto names = names_of(spec.env);
  EXPECT_FALSE(has(names, "AWS_SECRET_ACCESS_KEY"));
  EXPECT_FALSE(has(names, "DATABASE_PASSWORD"));
  EXPECT_FALSE(has(names, "SSH_AUTH_SOCK"));
  EXPECT_FALSE(has(names, "MY_TOOL_HOME"));
  for (const char* base : {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL",
                           "TERM", "TMPDIR", "XDG_CONFIG_HOME"})
    EXPECT_TRUE(has(names, base)) << base;
  auto creds = ad->credential_vars();
  for (const auto& name : names)
    EXPECT_TRUE(has(creds, name) || name == "PATH" || name == "HOME"
                || name == "USER" || name == "LOGNAME" || name == "LANG"
                || name == "LC_ALL" || name == "TERM" || name == "TMPDIR"
                || name == "XDG_CONFIG_HOME")
      << name;
}

TEST_P(EveryCli, OnlyItsOwnCredentialsPassThrough) {
  auto ad = make_adapter(GetParam());
  auto env = ad->build(agent_of(GetParam()), input(), base_env).env;
  const std::pair<adapter_kind, const char*> own[]
    = {{adapter_kind::codex, "OPENAI_API_KEY=sk-openai"},
       {adapter_kind::claude, "ANTHROPIC_API_KEY=sk-ant"},
       {adapter_kind::gemini, "GEMINI_API_KEY=gm-key"},
       {adapter_kind::copilot, "GH_TOKEN=gh-token"}};
  for (auto [kind, entry] : own)
    EXPECT_EQ(has(env, entry), kind == GetParam()) << entry;
}

TEST_P(EveryCli, EnvAllowAndEnvSetAreHonoured) {
  auto a = agent_of(GetParam());
  a.env_allow = {"MY_TOOL_HOME"};
  a.env_set = {{"FAKE_CASE", "implement"}, {"TERM", "dumb"}};
  auto env = make_adapter(GetParam())->build(a, input(), base_env).env;
  EXPECT_TRUE(has(env, "MY_TOOL_HOME=/opt/tool"));
  EXPECT_TRUE(has(env, "FAKE_CASE=implement"));
  EXPECT_TRUE(has(env, "TERM=dumb"));
  EXPECT_FALSE(has(env, "TERM=xterm"));
}

INSTANTIATE_TEST_SUITE_P(Clis, EveryCli,
                         ::testing::Values(adapter_kind::codex,
                                           adapter_kind::claude,
                                           adapter_kind::gemini,
                                           adapter_kind::copilot),
                         [](const ::testing::TestParamInfo<adapter_kind>& i) {
                           return default_command(i.param);
                         });

// -- per CLI
// -------------------------------------------------------------------

TEST(CodexBuild, RunsExecJsonInAWritableSandboxReadingStdin) {
  auto a = agent_of(adapter_kind::codex);
  auto argv
    = make_adapter(adapter_kind::codex)->build(a, input(), base_env).argv;
  EXPECT_EQ(argv, (strings{"codex", "exec", "--json", "-s", "workspace-write",
                           "--skip-git-repo-check", "-"}));
  a.model = "gpt-5.5";
  argv = make_adapter(adapter_kind::codex)->build(a, input(), base_env).argv;
  EXPECT_TRUE(has_pair(argv, "-m", "gpt-5.5"));
  EXPECT_EQ(argv.back(), "-");
}

TEST(ClaudeBuild, RunsPrintStreamJsonVerboseAcceptingEdits) {
  auto a = agent_of(adapter_kind::claude);
  auto argv
    = make_adapter(adapter_kind::claude)->build(a, input(), base_env).argv;
  EXPECT_EQ(argv, (strings{"claude", "-p", "--output-format", "stream-json",
                           "--verbose", "--permission-mode", "acceptEdits"}));
  a.model = "sonnet";
  argv = make_adapter(adapter_kind::claude)->build(a, input(), base_env).argv;
  EXPECT_TRUE(has_pair(argv, "--model", "sonnet"));
}

TEST(GeminiBuild, RunsStreamJsonAutoEditInATrustedWorkspace) {
  auto a = agent_of(adapter_kind::gemini);
  auto argv
    = make_adapter(adapter_kind::gemini)->build(a, input(), base_env).argv;
  EXPECT_EQ(argv, (strings{"gemini", "-o", "stream-json", "--approval-mode",
                           "auto_edit", "--skip-trust"}));
  a.model = "gemini-3.8-flash";
  argv = make_adapter(adapter_kind::gemini)->build(a, input(), base_env).argv;
  EXPECT_TRUE(has_pair(argv, "-m", "gemini-3.8-flash"));
}

TEST(CopilotBuild, RunsJsonOutputAllowingToolsWithoutUpdating) {
  auto a = agent_of(adapter_kind::copilot);
  auto argv
    = make_adapter(adapter_kind::copilot)->build(a, input(), base_env).argv;
  EXPECT_EQ(argv, (strings{"copilot", "--output-format", "json",
                           "--allow-all-tools", "--no-auto-update"}));
  a.model = "gpt-5.4";
  argv = make_adapter(adapter_kind::copilot)->build(a, input(), base_env).argv;
  EXPECT_TRUE(has_pair(argv, "--model", "gpt-5.4"));
}

// -- command
// -------------------------------------------------------------------

TEST(CommandBuild, StdinModeRunsTheCommandWithItsArgsAndPipesThePrompt) {
  auto a = agent_of(adapter_kind::command);
  a.command = "./agent.sh";
  a.args = {"--fast", "{prompt}"};
  auto spec = make_adapter(adapter_kind::command)->build(a, input(), base_env);
  // In stdin mode "{prompt}" is just text.
  EXPECT_EQ(spec.argv, (strings{"./agent.sh", "--fast", "{prompt}"}));
  ASSERT_TRUE(spec.stdin_data.has_value());
  EXPECT_EQ(*spec.stdin_data, "Write hello.py");
  EXPECT_EQ(spec.cwd, "/work/ws/run-1");
}

TEST(CommandBuild, ArgumentModeSubstitutesEveryPlaceholder) {
  auto a = agent_of(adapter_kind::command);
  a.command = "llm";
  a.prompt = prompt_mode::argument;
  a.args = {"--prompt={prompt}", "--", "{prompt} / {prompt}"};
  auto spec = make_adapter(adapter_kind::command)
                ->build(a, input("-x {prompt} y"), base_env);
  EXPECT_EQ(spec.argv, (strings{"llm", "--prompt=-x {prompt} y", "--",
                                "-x {prompt} y / -x {prompt} y"}));
  EXPECT_FALSE(spec.stdin_data.has_value());
}

TEST(CommandBuild, ArgumentModeWithoutAPlaceholderAppendsThePrompt) {
  auto a = agent_of(adapter_kind::command);
  a.command = "llm";
  a.prompt = prompt_mode::argument;
  a.args = {"run"};
  auto spec = make_adapter(adapter_kind::command)->build(a, input(), base_env);
  EXPECT_EQ(spec.argv, (strings{"llm", "run", "Write hello.py"}));
}

TEST(CommandBuild, PassesNoCredentialsOfItsOwn) {
  auto ad = make_adapter(adapter_kind::command);
  EXPECT_TRUE(ad->credential_vars().empty());
  auto names = names_of(
    ad->build(agent_of(adapter_kind::command), input(), base_env).env);
  EXPECT_FALSE(has(names, "OPENAI_API_KEY"));
  EXPECT_FALSE(has(names, "GH_TOKEN"));
  EXPECT_EQ(ad->probe_auth(base_env, "/home/u"), auth_state::unknown);
}

// -- build_environment
// ---------------------------------------------------------

TEST(BuildEnvironment, KeepsTheBaseSetCredentialsAndAllowedNamesInOrder) {
  agent_config a;
  a.env_allow = {"MY_*"};
  auto env = build_environment(a, {"GH_TOKEN"}, base_env);
  EXPECT_EQ(env, (strings{"PATH=/usr/bin:/bin", "HOME=/home/u", "USER=u",
                          "LOGNAME=u", "LANG=C.UTF-8", "LC_ALL=C", "TERM=xterm",
                          "TMPDIR=/tmp", "XDG_CONFIG_HOME=/home/u/.config",
                          "GH_TOKEN=gh-token", "MY_TOOL_HOME=/opt/tool"}));
}

TEST(BuildEnvironment, EnvSetReplacesAndAddsEntries) {
  agent_config a;
  a.env_set = {{"PATH", "/fakes:/usr/bin"}, {"NEW", "1"}};
  auto env = build_environment(a, {}, base_env);
  EXPECT_TRUE(has(env, "PATH=/fakes:/usr/bin"));
  EXPECT_FALSE(has(env, "PATH=/usr/bin:/bin"));
  EXPECT_TRUE(has(env, "NEW=1"));
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) {
                            return e.rfind("PATH=", 0) == 0;
                          }),
            1);
}

TEST(BuildEnvironment, DropsMalformedEntriesAndLaterDuplicates) {
  agent_config a;
  auto env = build_environment(
    a, {}, {"PATH=/first", "PATH=/second", "=oops", "NOEQUALS", "HOME="});
  EXPECT_EQ(env, (strings{"PATH=/first", "HOME="}));
}

TEST(BuildEnvironment, APrefixIsNotAName) {
  agent_config a;
  a.env_allow = {"MY"};
  auto env = build_environment(a, {"GH"}, base_env);
  auto names = names_of(env);
  EXPECT_FALSE(has(names, "MY_TOOL_HOME"));
  EXPECT_FALSE(has(names, "GH_TOKEN"));
  // PATHX is not PATH.
  EXPECT_TRUE(build_environment(a, {}, {"PATHX=1"}).empty());
}

TEST(CurrentEnvironment, ReturnsThisProcesssEntries) {
  ::setenv("ORCH_ADAPTERS_TEST_VAR", "42", 1);
  auto env = current_environment();
  EXPECT_TRUE(has(env, "ORCH_ADAPTERS_TEST_VAR=42"));
  ::unsetenv("ORCH_ADAPTERS_TEST_VAR");
}

} // namespace
