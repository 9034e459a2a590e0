// Configs that load: every form of the format, the original's file, defaults
// and how relative commands are resolved.

#include "config/config.hpp"
#include "config/config_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

using namespace orch;
using namespace std::chrono_literals;

namespace {

constexpr const char* file_name = "/configs/team/ai-orchestrator.yaml";

load_result parse(std::string_view text) {
  return test::parse_as(text, file_name);
}

using test::dump;

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

const std::string original_path = std::string{ORCH_SOURCE_DIR}
                                  + "/tests/config/data/original-agents.yaml";

} // namespace

// -- agents -------------------------------------------------------------------

TEST(config_parse, a_minimal_config_gets_the_documented_defaults) {
  auto res = parse(R"(
agents:
  codex:
workflows:
  default:
    - {agent: codex, task: implement}
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_TRUE(res.warnings.empty()) << dump(res);
  const auto& cfg = *res.value;
  EXPECT_EQ(cfg.source, file_name);
  ASSERT_EQ(cfg.agents.size(), 1u);
  const auto& codex = cfg.agents[0];
  EXPECT_EQ(codex.name, "codex");
  EXPECT_EQ(codex.kind, adapter_kind::codex);
  EXPECT_EQ(codex.command, "codex");
  EXPECT_TRUE(codex.enabled);
  EXPECT_EQ(codex.max_concurrency, 1);
  EXPECT_EQ(codex.limits.first_output, 180s);
  EXPECT_EQ(codex.limits.idle, 300s);
  EXPECT_EQ(codex.limits.total, 1800s);
  EXPECT_EQ(codex.prompt, prompt_mode::stdin_text);
  const auto& s = cfg.settings;
  EXPECT_EQ(s.max_iterations, 3);
  EXPECT_EQ(s.min_suggestions_threshold, 0);
  EXPECT_EQ(s.workspace_dir, "./workspace");
  EXPECT_EQ(s.max_task_chars, 100000u);
  EXPECT_EQ(s.output_cap_bytes, 16u * 1024 * 1024);
  EXPECT_EQ(s.kill_grace, 3s);
  EXPECT_EQ(s.log_level, "info");
}

TEST(config_parse, every_agent_key_is_read) {
  auto res = parse(R"(
agents:
  coder:
    adapter: claude
    command: /opt/claude/bin/claude
    args: ["--foo", "bar"]
    model: opus
    enabled: true
    role: implementation
    description: "Writes code"
    deadlines: {first_output: 1.5, idle: 30, total: 0}
    env: [ANTHROPIC_BASE_URL, HTTPS_PROXY]
    env_set: {FOO: bar, EMPTY: ""}
    max_concurrency: 3
workflows:
  default: [{agent: coder, task: implement}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& a = res.value->agents.at(0);
  EXPECT_EQ(a.kind, adapter_kind::claude);
  EXPECT_EQ(a.command, "/opt/claude/bin/claude");
  EXPECT_EQ(a.args, (std::vector<std::string>{"--foo", "bar"}));
  EXPECT_EQ(a.model, "opus");
  EXPECT_EQ(a.role, "implementation");
  EXPECT_EQ(a.description, "Writes code");
  EXPECT_EQ(a.limits.first_output, 1500ms);
  EXPECT_EQ(a.limits.idle, 30s);
  EXPECT_EQ(a.limits.total, 0ms);
  EXPECT_EQ(a.env_allow,
            (std::vector<std::string>{"ANTHROPIC_BASE_URL", "HTTPS_PROXY"}));
  EXPECT_EQ(a.env_set.at("FOO"), "bar");
  EXPECT_EQ(a.env_set.at("EMPTY"), "");
  EXPECT_EQ(a.max_concurrency, 3);
}

TEST(config_parse, the_agent_name_selects_the_adapter_unless_adapter_is_set) {
  auto res = parse(R"(
agents:
  gemini: {}
  copilot: {}
  claude: {adapter: command, command: my-claude-wrapper}
  helper: {command: ./helper.sh}
workflows:
  default: [{agent: gemini, task: review}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& cfg = *res.value;
  EXPECT_EQ(cfg.find_agent("gemini")->kind, adapter_kind::gemini);
  EXPECT_EQ(cfg.find_agent("copilot")->kind, adapter_kind::copilot);
  EXPECT_EQ(cfg.find_agent("copilot")->command, "copilot");
  EXPECT_EQ(cfg.find_agent("claude")->kind, adapter_kind::command);
  EXPECT_EQ(cfg.find_agent("helper")->kind, adapter_kind::command);
  EXPECT_EQ(cfg.find_agent("nobody"), nullptr);
}

TEST(config_parse, a_command_agent_can_take_the_prompt_as_an_argument) {
  auto res = parse(R"(
agents:
  local:
    command: my-agent
    args: ["--prompt={prompt}", "--quiet"]
    prompt: argument
workflows:
  default: [{agent: local, task: implement}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_EQ(res.value->agents[0].prompt, prompt_mode::argument);
  EXPECT_EQ(to_string(res.value->agents[0].prompt), "argument");
}

TEST(config_parse, timeout_sets_the_total_and_caps_the_default_deadlines) {
  auto res = parse(R"(
agents:
  copilot:
    timeout: 120
  gemini:
    timeout: 240
    deadlines: {idle: 60}
workflows:
  default: [{agent: copilot, task: suggestions}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& copilot = *res.value->find_agent("copilot");
  EXPECT_EQ(copilot.limits.total, 120s);
  EXPECT_EQ(copilot.limits.first_output, 120s);
  EXPECT_EQ(copilot.limits.idle, 120s);
  const auto& gemini = *res.value->find_agent("gemini");
  EXPECT_EQ(gemini.limits.total, 240s);
  EXPECT_EQ(gemini.limits.first_output, 180s);
  EXPECT_EQ(gemini.limits.idle, 60s);
}

TEST(config_parse, a_zero_total_turns_the_total_deadline_off) {
  auto res = parse(R"(
agents:
  codex:
    deadlines: {first_output: 5000, idle: 0, total: 0}
workflows:
  default: [{agent: codex, task: implement}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& dl = res.value->agents[0].limits;
  EXPECT_EQ(dl.first_output, 5000s);
  EXPECT_EQ(dl.idle, 0s);
  EXPECT_EQ(dl.total, 0s);
}

TEST(config_parse, a_disabled_agent_is_fine_when_no_step_uses_it) {
  auto res = parse(R"(
agents:
  codex: {}
  copilot: {enabled: false}
workflows:
  default: [{agent: codex, task: implement}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_FALSE(res.value->find_agent("copilot")->enabled);
}

// -- commands -----------------------------------------------------------------

TEST(config_parse, a_relative_command_with_a_slash_resolves_against_the_file) {
  auto res = parse(R"(
agents:
  codex: {command: demo-agents/demo-codex}
  gemini: {command: ./bin/../tools/gemini}
  claude: {command: ../shared/claude}
workflows:
  default: [{agent: codex, task: implement}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& cfg = *res.value;
  EXPECT_EQ(cfg.find_agent("codex")->command,
            "/configs/team/demo-agents/demo-codex");
  EXPECT_EQ(cfg.find_agent("gemini")->command, "/configs/team/tools/gemini");
  EXPECT_EQ(cfg.find_agent("claude")->command, "/configs/shared/claude");
}

TEST(config_parse, bare_and_absolute_commands_stay_as_written) {
  auto res = parse(R"(
agents:
  codex: {command: codex-nightly}
  gemini: {command: /usr/local/bin/gemini}
workflows:
  default: [{agent: codex, task: implement}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_EQ(res.value->find_agent("codex")->command, "codex-nightly");
  EXPECT_EQ(res.value->find_agent("gemini")->command, "/usr/local/bin/gemini");
}

TEST(config_parse, a_relative_config_path_resolves_against_the_working_dir) {
  auto res = parse_config("agents: {x: {command: bin/x}}\n", "sub/conf.yaml");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& command = res.value->agents[0].command;
  EXPECT_EQ(command.front(), '/');
  EXPECT_NE(command.find("/sub/bin/x"), std::string::npos);
}

// -- workflows ----------------------------------------------------------------

TEST(config_parse, a_list_workflow_takes_the_settings_iterations) {
  auto res = parse(R"(
agents:
  codex: {}
  gemini: {}
workflows:
  default:
    - agent: codex
      task: implement
      description: "Initial implementation"
    - agent: gemini
      task: review
settings:
  max_iterations: 4
  min_suggestions_threshold: 2
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& wf = *res.value->find_workflow("default");
  EXPECT_EQ(wf.max_iterations, 4);
  EXPECT_EQ(wf.min_suggestions_threshold, 2);
  ASSERT_EQ(wf.steps.size(), 2u);
  EXPECT_FALSE(wf.steps[0].parallel());
  EXPECT_EQ(wf.steps[0].items[0].agent, "codex");
  EXPECT_EQ(wf.steps[0].items[0].task, "implement");
  EXPECT_EQ(wf.steps[0].items[0].description, "Initial implementation");
  EXPECT_EQ(wf.steps[1].items[0].description, "");
}

TEST(config_parse, a_dict_workflow_overrides_the_settings_iterations) {
  auto res = parse(R"(
agents:
  codex: {}
  gemini: {}
  claude: {}
workflows:
  custom:
    description: "Security pass"
    max_iterations: 4
    min_suggestions_threshold: 5
    steps:
      - agent: "codex"
        task: "implement"
      - agent: "gemini"
        task: "security_review"
      - agent: "claude"
        task: "refine"
  partial:
    steps: [{agent: codex, task: implement}]
settings:
  max_iterations: 2
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& custom = *res.value->find_workflow("custom");
  EXPECT_EQ(custom.description, "Security pass");
  EXPECT_EQ(custom.max_iterations, 4);
  EXPECT_EQ(custom.min_suggestions_threshold, 5);
  ASSERT_EQ(custom.steps.size(), 3u);
  EXPECT_EQ(custom.steps[1].items[0].task, "security_review");
  const auto& partial = *res.value->find_workflow("partial");
  EXPECT_EQ(partial.max_iterations, 2);
  EXPECT_EQ(partial.min_suggestions_threshold, 0);
}

TEST(config_parse, a_parallel_group_becomes_one_step_with_several_items) {
  auto res = parse(R"(
agents:
  codex: {}
  gemini: {}
  claude: {}
workflows:
  default:
    - agent: codex
      task: implement
    - parallel:
        - {agent: gemini, task: review}
        - {agent: claude, task: security_review, description: "Security"}
        - {agent: gemini, task: test}
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& wf = res.value->workflows.at(0);
  ASSERT_EQ(wf.steps.size(), 2u);
  ASSERT_TRUE(wf.steps[1].parallel());
  ASSERT_EQ(wf.steps[1].items.size(), 3u);
  EXPECT_EQ(wf.steps[1].items[1].agent, "claude");
  EXPECT_EQ(wf.steps[1].items[1].task, "security_review");
  EXPECT_EQ(wf.steps[1].items[1].description, "Security");
}

TEST(config_parse, workflows_and_agents_keep_file_order) {
  auto res = parse(R"(
workflows:
  zeta: [{agent: b, task: review}]
  alpha: [{agent: a, task: implement}]
agents:
  b: {command: bee}
  a: {command: ay}
)");
  ASSERT_TRUE(res.value) << dump(res);
  ASSERT_EQ(res.value->workflows.size(), 2u);
  EXPECT_EQ(res.value->workflows[0].name, "zeta");
  EXPECT_EQ(res.value->agents[0].name, "b");
}

TEST(config_parse, a_config_without_workflows_loads_with_a_warning) {
  auto res = parse("agents: {codex: {}}\n");
  ASSERT_TRUE(res.value) << dump(res);
  ASSERT_EQ(res.warnings.size(), 1u);
  EXPECT_EQ(res.warnings[0].key, "workflows");
}

// -- tasks --------------------------------------------------------------------

TEST(config_parse, a_custom_task_can_be_used_by_a_step) {
  auto res = parse(R"(
agents:
  gemini: {}
tasks:
  lint:
    prompt: "Lint {task} in {workspace}; list findings."
    review: true
  explain: {prompt: "Explain {files}"}
workflows:
  default: [{agent: gemini, task: lint}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_TRUE(res.warnings.empty()) << dump(res);
  const auto* lint = res.value->find_task("lint");
  ASSERT_NE(lint, nullptr);
  EXPECT_EQ(lint->prompt, "Lint {task} in {workspace}; list findings.");
  EXPECT_TRUE(lint->review);
  EXPECT_FALSE(res.value->find_task("explain")->review);
  EXPECT_EQ(res.value->find_task("review"), nullptr);
}

TEST(config_parse, an_unknown_placeholder_in_a_task_prompt_is_a_warning) {
  auto res = parse(R"(
agents:
  gemini: {}
tasks:
  lint: {prompt: "Lint {task} with {linter}; keep {\"json\": 1}"}
)");
  ASSERT_TRUE(res.value) << dump(res);
  ASSERT_EQ(res.warnings.size(), 2u) << dump(res);
  EXPECT_EQ(res.warnings[0].key, "tasks.lint.prompt");
  EXPECT_EQ(res.warnings[0].line, 4);
  EXPECT_NE(res.warnings[0].message.find("{linter}"), std::string::npos);
  EXPECT_EQ(res.warnings[1].key, "workflows");
}

TEST(config_parse, every_placeholder_the_prompt_renderer_fills_loads_quietly) {
  // {iteration} and {task_kind} used to load with "stays as written".
  auto res = parse(R"(
agents:
  gemini: {}
tasks:
  lint:
    prompt: "{task} {findings} {files} {previous_output} {workspace} {iteration} {task_kind}"
workflows:
  default: [{agent: gemini, task: lint}]
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_TRUE(res.warnings.empty()) << dump(res);
}

TEST(config_parse, the_unknown_placeholder_warning_lists_the_one_list) {
  auto res = parse(R"(
agents:
  gemini: {}
tasks:
  lint: {prompt: "{nope}"}
workflows:
  default: [{agent: gemini, task: lint}]
)");
  ASSERT_EQ(res.warnings.size(), 1u) << dump(res);
  for (const auto& [ph, name] : prompt_placeholders)
    EXPECT_NE(res.warnings[0].message.find("{" + std::string{name} + "}"),
              std::string::npos)
      << name;
}

TEST(config_parse, builtin_task_kinds_include_the_originals_suggestions) {
  const auto& kinds = builtin_task_kinds();
  for (auto kind : {"implement", "review", "refine", "test", "document",
                    "security_review", "suggestions"})
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), kind), kinds.end()) << kind;
  EXPECT_EQ(kinds.size(), 7u);
}

// -- settings -----------------------------------------------------------------

TEST(config_parse, every_setting_is_read) {
  auto res = parse(R"(
agents: {codex: {}}
workflows: {quick: [{agent: codex, task: implement}]}
settings:
  max_iterations: 7
  min_suggestions_threshold: 1
  workspace_dir: /tmp/ws
  max_task_chars: 5000
  output_cap_bytes: 1048576
  kill_grace: 0.25
  log_level: Debug
  state_dir: ~/orch-state
  scheduler_threads: 4
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& s = res.value->settings;
  EXPECT_EQ(s.max_iterations, 7);
  EXPECT_EQ(s.min_suggestions_threshold, 1);
  EXPECT_EQ(s.workspace_dir, "/tmp/ws");
  EXPECT_EQ(s.max_task_chars, 5000u);
  EXPECT_EQ(s.output_cap_bytes, 1048576u);
  EXPECT_EQ(s.kill_grace, 250ms);
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(s.state_dir, "~/orch-state");
  EXPECT_EQ(s.scheduler_threads, 4);
}

TEST(config_parse, log_levels_normalize_like_the_config_reads_them) {
  EXPECT_EQ(normalize_log_level("WARNING"), "warn");
  EXPECT_EQ(normalize_log_level("Info"), "info");
  EXPECT_EQ(normalize_log_level("critical"), "error");
  EXPECT_EQ(normalize_log_level("off"), "off");
  EXPECT_FALSE(normalize_log_level("loud"));
  EXPECT_FALSE(normalize_log_level(""));
}

TEST(config_parse, python_log_level_names_are_accepted) {
  for (auto [text, level] :
       {std::pair{"INFO", "info"}, std::pair{"WARNING", "warn"},
        std::pair{"CRITICAL", "error"}, std::pair{"off", "off"}}) {
    auto res = parse_config(std::string{"agents: {codex: {}}\n"
                                        "settings: {log_level: "}
                              + text + "}\n",
                            file_name);
    ASSERT_TRUE(res.value) << dump(res);
    EXPECT_EQ(res.value->settings.log_level, level);
  }
}

// -- the original's file ------------------------------------------------------

TEST(config_parse, the_originals_format_loads_with_warnings_only) {
  // The original shipped copilot disabled yet used it in `thorough`, which
  // adds a sixth warning; this variant enables it.
  auto text = read_file(original_path);
  auto at = text.find("enabled: false");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 14, "enabled: true ");
  auto res = parse_config(text, original_path);
  ASSERT_TRUE(res.value) << dump(res);
  ASSERT_EQ(res.warnings.size(), 5u) << dump(res);
  for (const auto& w : res.warnings)
    EXPECT_NE(w.message.find("not used"), std::string::npos) << w.to_string();
  EXPECT_EQ(res.warnings[0].key, "settings.output_dir");
  EXPECT_EQ(res.warnings[0].line, 87);
  const auto& cfg = *res.value;
  EXPECT_EQ(cfg.agents.size(), 4u);
  EXPECT_EQ(cfg.workflows.size(), 5u);
  EXPECT_EQ(cfg.find_agent("gemini")->limits.total, 180s);
  EXPECT_EQ(cfg.find_agent("gemini")->limits.idle, 180s);
  EXPECT_EQ(cfg.find_agent("codex")->limits.total, 300s);
  EXPECT_EQ(cfg.find_agent("codex")->limits.first_output, 180s);
  EXPECT_EQ(cfg.settings.log_level, "info");
  EXPECT_EQ(cfg.settings.min_suggestions_threshold, 3);
  EXPECT_EQ(cfg.find_workflow("thorough")->steps.size(), 5u);
  EXPECT_EQ(cfg.find_workflow("thorough")->min_suggestions_threshold, 3);
}

TEST(config_parse,
     the_originals_file_as_shipped_loads_warning_of_disabled_copilot) {
  auto res = load_config_file(original_path);
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_TRUE(res.errors.empty()) << dump(res);
  auto it = std::find_if(res.warnings.begin(), res.warnings.end(),
                         [](const config_error& w) {
                           return w.key == "workflows.thorough.steps[1].agent";
                         });
  ASSERT_NE(it, res.warnings.end()) << dump(res);
  EXPECT_EQ(it->line, 56);
  EXPECT_NE(it->message.find("disabled"), std::string::npos);
}
