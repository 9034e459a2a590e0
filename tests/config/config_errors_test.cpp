// Every class of config error: each test checks that the message names the
// right line, column or key, so a user can find the mistake.

#include "config/config.hpp"
#include "config/config_test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

using namespace orch;

namespace {

constexpr const char* file_name = "/configs/test.yaml";

load_result parse(std::string_view text) {
  return test::parse_as(text, file_name);
}

using test::dump;

/// Succeeds when `res` failed and holds an error at `line` for `key` whose
/// message contains `text`.
testing::AssertionResult has_error(const load_result& res, int32_t line,
                                   std::string_view key,
                                   std::string_view text) {
  if (res.value)
    return testing::AssertionFailure() << "config loaded despite errors:\n"
                                       << dump(res);
  for (const auto& x : res.errors)
    if (x.line == line && x.key == key
        && x.message.find(text) != std::string::npos && x.file == file_name)
      return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << "no error at line " << line << " for " << key << " containing '"
         << text << "'; got:\n"
         << dump(res);
}

} // namespace

// -- document level -----------------------------------------------------------

TEST(config_errors, a_yaml_syntax_error_reports_the_parser_line_and_column) {
  auto res = parse(R"(
agents:
  codex: {command: codex
workflows: {}
)");
  ASSERT_FALSE(res.value);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].line, 3);
  EXPECT_GT(res.errors[0].column, 0);
  EXPECT_NE(res.errors[0].message.find("YAML syntax error"), std::string::npos);
  EXPECT_EQ(res.errors[0].file, file_name);
}

TEST(config_errors, an_empty_document_is_an_error) {
  auto res = parse("# nothing but a comment\n");
  ASSERT_FALSE(res.value);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_NE(res.errors[0].message.find("empty"), std::string::npos);
}

TEST(config_errors, a_document_that_is_not_a_mapping_is_an_error) {
  auto res = parse("- codex\n- gemini\n");
  ASSERT_FALSE(res.value);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].line, 1);
  EXPECT_NE(res.errors[0].message.find("got a list"), std::string::npos);
}

TEST(config_errors, a_second_yaml_document_is_an_error) {
  auto res = parse("agents: {codex: {}}\n---\nagents: {}\n");
  ASSERT_FALSE(res.value);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].line, 3);
}

TEST(config_errors, a_config_without_agents_is_an_error) {
  auto res = parse(R"(
settings:
  max_iterations: 2
)");
  EXPECT_TRUE(has_error(res, 1, "agents", "no agents defined"));
}

// -- keys ---------------------------------------------------------------------

TEST(config_errors, an_unknown_top_level_key_lists_the_allowed_keys) {
  auto res = parse(R"(
agents:
  codex: {}
agent:
  gemini: {}
)");
  EXPECT_TRUE(has_error(res, 3, "agent", "unknown key 'agent'"));
  EXPECT_TRUE(has_error(res, 3, "agent",
                        "allowed keys: agents, workflows, tasks, settings, "
                        "rate_limiting"));
}

TEST(config_errors, an_unknown_agent_key_names_the_agent_and_suggests_a_fix) {
  auto res = parse(R"(
agents:
  codex:
    comand: codex
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.comand",
                        "unknown key 'comand' (did you mean 'command'?)"));
  EXPECT_TRUE(has_error(res, 3, "agents.codex.comand", "max_concurrency"));
}

TEST(config_errors, an_unknown_deadline_key_is_reported_with_its_full_path) {
  auto res = parse(R"(
agents:
  codex:
    deadlines:
      first_byte: 10
)");
  EXPECT_TRUE(has_error(res, 4, "agents.codex.deadlines.first_byte",
                        "allowed keys: first_output, idle, total"));
}

TEST(config_errors, an_unknown_step_key_is_reported_with_the_step_index) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  default:
    - agent: codex
      task: implement
    - agent: codex
      tsk: test
)");
  EXPECT_TRUE(
    has_error(res, 8, "workflows.default.steps[1].tsk", "unknown key 'tsk'"));
  EXPECT_TRUE(has_error(res, 7, "workflows.default.steps[1].task",
                        "missing required key 'task'"));
}

TEST(config_errors, an_unknown_settings_key_lists_the_compat_keys_too) {
  auto res = parse(R"(
agents:
  codex: {}
settings:
  max_iteration: 3
)");
  EXPECT_TRUE(has_error(res, 4, "settings.max_iteration",
                        "did you mean 'max_iterations'?"));
  EXPECT_TRUE(has_error(res, 4, "settings.max_iteration", "output_dir"));
}

TEST(config_errors, a_duplicate_key_is_reported_at_the_second_occurrence) {
  auto res = parse(R"(
agents:
  codex:
    role: implementation
    role: review
)");
  EXPECT_TRUE(has_error(res, 4, "agents.codex.role",
                        "duplicate key 'role' (first at line 3)"));
}

// -- types --------------------------------------------------------------------

TEST(config_errors, a_word_where_a_number_belongs_is_a_type_error) {
  auto res = parse(R"(
agents:
  codex:
    deadlines:
      idle: abc
)");
  EXPECT_TRUE(has_error(res, 4, "agents.codex.deadlines.idle",
                        "expected a number of seconds, got string 'abc'"));
  EXPECT_EQ(res.errors[0].column, 13);
}

TEST(config_errors, a_quoted_number_is_a_string_not_a_number) {
  auto res = parse(R"(
agents:
  codex:
    max_concurrency: "2"
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.max_concurrency",
                        "expected an integer, got string '2'"));
}

TEST(config_errors, a_fraction_where_an_integer_belongs_is_a_type_error) {
  auto res = parse(R"(
agents:
  codex: {}
settings:
  max_iterations: 2.5
)");
  EXPECT_TRUE(has_error(res, 4, "settings.max_iterations",
                        "expected an integer, got number '2.5'"));
}

TEST(config_errors, a_non_boolean_enabled_flag_is_a_type_error) {
  auto res = parse(R"(
agents:
  codex:
    enabled: sometimes
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.enabled",
                        "expected a boolean (true or false), got string "
                        "'sometimes'"));
}

TEST(config_errors, a_scalar_where_a_list_belongs_is_a_type_error) {
  auto res = parse(R"(
agents:
  codex:
    args: --full-auto
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.args",
                        "expected a list of strings, got string "
                        "'--full-auto'"));
}

TEST(config_errors, a_list_where_an_agent_mapping_belongs_is_a_type_error) {
  auto res = parse(R"(
agents:
  codex: [codex]
workflows:
  default:
    - {agent: codex, task: implement}
)");
  EXPECT_TRUE(has_error(res, 2, "agents.codex",
                        "expected a mapping, got a "
                        "list"));
  // The broken agent still exists, so the step naming it adds no noise.
  EXPECT_EQ(res.errors.size(), 1u);
}

TEST(config_errors, an_empty_string_value_is_reported_at_its_key) {
  auto res = parse(R"(
agents:
  codex:
    role:
)");
  EXPECT_TRUE(
    has_error(res, 3, "agents.codex.role", "expected a string, got null"));
}

TEST(config_errors, an_invalid_log_level_lists_the_valid_ones) {
  auto res = parse(R"(
agents:
  codex: {}
settings:
  log_level: verbose
)");
  EXPECT_TRUE(has_error(res, 4, "settings.log_level",
                        "expected trace, debug, info, warn, error or off"));
}

// -- agents -------------------------------------------------------------------

TEST(config_errors, an_unknown_adapter_lists_the_adapters) {
  auto res = parse(R"(
agents:
  helper:
    adapter: cursor
    command: cursor-agent
)");
  EXPECT_TRUE(has_error(res, 3, "agents.helper.adapter",
                        "unknown adapter 'cursor'; expected codex, claude, "
                        "gemini, copilot or command"));
  EXPECT_EQ(res.errors.size(), 1u);
}

TEST(config_errors, a_command_adapter_without_command_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
  local:
    role: review
)");
  EXPECT_TRUE(has_error(res, 3, "agents.local.command",
                        "the command adapter requires 'command'"));
}

TEST(config_errors, an_empty_command_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    command: ""
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.command", "must not be empty"));
}

TEST(config_errors, prompt_argument_without_a_placeholder_is_an_error) {
  auto res = parse(R"(
agents:
  local:
    command: my-agent
    args: ["--ask"]
    prompt: argument
)");
  EXPECT_TRUE(has_error(res, 5, "agents.local.prompt",
                        "needs an element of 'args' containing "
                        "\"{prompt}\""));
}

TEST(config_errors, prompt_on_a_cli_adapter_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    prompt: stdin
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.prompt",
                        "applies only to the command adapter"));
}

TEST(config_errors, an_unknown_prompt_mode_is_an_error) {
  auto res = parse(R"(
agents:
  local:
    command: my-agent
    prompt: file
)");
  EXPECT_TRUE(
    has_error(res, 4, "agents.local.prompt", "expected stdin or argument"));
}

TEST(config_errors, max_concurrency_below_one_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    max_concurrency: 0
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.max_concurrency",
                        "must be at least 1, got 0"));
}

TEST(config_errors, a_negative_deadline_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    deadlines:
      first_output: -1
)");
  EXPECT_TRUE(has_error(res, 4, "agents.codex.deadlines.first_output",
                        "must not be negative"));
}

TEST(config_errors, first_output_above_total_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    deadlines: {first_output: 600, total: 300}
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.deadlines.first_output",
                        "first_output (600 s) exceeds total (300 s)"));
}

TEST(config_errors, idle_above_total_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    deadlines:
      idle: 90.5
      total: 60
)");
  EXPECT_TRUE(has_error(res, 4, "agents.codex.deadlines.idle",
                        "idle (90.5 s) exceeds total (60 s)"));
}

TEST(config_errors, idle_above_a_total_set_by_timeout_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    timeout: 100
    deadlines: {idle: 200}
)");
  EXPECT_TRUE(
    has_error(res, 4, "agents.codex.deadlines.idle", "exceeds total (100 s)"));
}

TEST(config_errors, timeout_together_with_deadlines_total_is_a_conflict) {
  auto res = parse(R"(
agents:
  codex:
    timeout: 300
    deadlines:
      total: 600
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.timeout",
                        "conflicts with deadlines.total (line 5)"));
}

TEST(config_errors, an_invalid_environment_variable_name_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    env: [OPENAI_BASE_URL, "BAD NAME"]
    env_set: {1X: y}
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.env[1]",
                        "invalid environment variable name 'BAD NAME'"));
  EXPECT_TRUE(has_error(res, 4, "agents.codex.env_set.1X",
                        "invalid environment variable name '1X'"));
}

TEST(config_errors, an_env_entry_may_end_in_a_star_as_a_prefix) {
  // As the README says and adapters/ matches them ("LC_*").
  auto res = parse(R"(
agents:
  codex:
    env: [FAKE_*, OPENAI_BASE_URL]
workflows: {quick: [{agent: codex, task: implement}]}
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_EQ(res.value->agents[0].env_allow,
            (std::vector<std::string>{"FAKE_*", "OPENAI_BASE_URL"}));
}

TEST(config_errors, a_lone_star_or_a_star_inside_an_env_entry_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    env: ["*", "A*B", "**"]
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.env[0]",
                        "invalid environment variable name '*'"));
  EXPECT_TRUE(has_error(res, 3, "agents.codex.env[1]",
                        "invalid environment variable name 'A*B'"));
  EXPECT_TRUE(
    has_error(res, 3, "agents.codex.env[2]", "a prefix ending in '*'"));
}

TEST(config_errors, a_relative_state_dir_is_an_error) {
  auto res = parse(R"(
agents: {codex: {}}
settings: {state_dir: state}
)");
  EXPECT_TRUE(has_error(res, 2, "settings.state_dir",
                        "must be an absolute path or start with ~/"));
}

TEST(config_errors, scheduler_threads_are_bounded) {
  auto res = parse(R"(
agents: {codex: {}}
settings: {scheduler_threads: 0}
)");
  EXPECT_TRUE(
    has_error(res, 2, "settings.scheduler_threads", "must be at least 1"));
  res = parse(R"(
agents: {codex: {}}
settings: {scheduler_threads: 65}
)");
  EXPECT_TRUE(
    has_error(res, 2, "settings.scheduler_threads", "must be at most 64"));
}

TEST(config_errors, an_agent_name_with_a_dot_is_an_error) {
  auto res = parse(R"(
agents:
  my.agent:
    command: x
)");
  EXPECT_TRUE(has_error(res, 2, "agents.my.agent", "invalid agent name"));
}

// -- workflows ----------------------------------------------------------------

TEST(config_errors, a_step_naming_an_unknown_agent_lists_the_known_agents) {
  auto res = parse(R"(
agents:
  codex: {}
  gemini: {}
workflows:
  default:
    - agent: codex
      task: implement
    - agent: gemeni
      task: review
)");
  EXPECT_TRUE(has_error(res, 8, "workflows.default.steps[1].agent",
                        "unknown agent 'gemeni'; known agents: codex, "
                        "gemini"));
}

TEST(config_errors, a_step_naming_a_disabled_agent_is_a_located_warning) {
  auto res = parse(R"(
agents:
  codex: {}
  copilot:
    enabled: false
workflows:
  thorough:
    - {agent: codex, task: implement}
    - {agent: copilot, task: suggestions}
)");
  ASSERT_TRUE(res.value);
  EXPECT_TRUE(res.errors.empty());
  ASSERT_EQ(res.warnings.size(), 1u);
  EXPECT_EQ(res.warnings[0].line, 8);
  EXPECT_EQ(res.warnings[0].key, "workflows.thorough.steps[1].agent");
  EXPECT_NE(res.warnings[0].message.find("agent 'copilot' is disabled"),
            std::string::npos);
}

TEST(config_errors, an_unknown_task_kind_lists_the_known_kinds) {
  auto res = parse(R"(
agents:
  codex: {}
tasks:
  lint: {prompt: "Lint {task}"}
workflows:
  default:
    - agent: codex
      task: implemnt
)");
  EXPECT_TRUE(has_error(res, 8, "workflows.default.steps[0].task",
                        "unknown task kind 'implemnt'; built-in: implement"));
  EXPECT_TRUE(has_error(res, 8, "workflows.default.steps[0].task",
                        "custom (under 'tasks:'): lint"));
}

TEST(config_errors, an_empty_list_workflow_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  default: []
)");
  EXPECT_TRUE(has_error(res, 4, "workflows.default.steps",
                        "workflow 'default' has no steps"));
}

TEST(config_errors, a_workflow_without_a_value_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  default:
)");
  EXPECT_TRUE(has_error(res, 4, "workflows.default.steps", "has no steps"));
}

TEST(config_errors, a_dict_workflow_without_steps_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  custom:
    max_iterations: 2
)");
  EXPECT_TRUE(has_error(res, 4, "workflows.custom.steps",
                        "missing required key 'steps'"));
}

TEST(config_errors, a_dict_workflow_with_an_empty_step_list_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  custom:
    steps: []
)");
  EXPECT_TRUE(has_error(res, 5, "workflows.custom.steps", "has no steps"));
}

TEST(config_errors, an_empty_parallel_group_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  default:
    - parallel: []
)");
  EXPECT_TRUE(has_error(res, 5, "workflows.default.steps[0].parallel",
                        "empty parallel group"));
  EXPECT_EQ(res.errors.size(), 1u);
}

TEST(config_errors, a_parallel_group_of_one_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  default:
    - parallel:
        - {agent: codex}
)");
  EXPECT_TRUE(has_error(res, 6, "workflows.default.steps[0].parallel",
                        "needs at least 2 steps, got 1"));
  EXPECT_TRUE(has_error(res, 6, "workflows.default.steps[0].parallel[0].task",
                        "missing required key 'task'"));
  // The item is not reported again as a plain step.
  EXPECT_EQ(res.errors.size(), 2u);
}

TEST(config_errors, an_unknown_agent_inside_a_parallel_group_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
  gemini: {}
workflows:
  default:
    - parallel:
        - {agent: gemini, task: review}
        - {agent: claude, task: security_review}
)");
  EXPECT_TRUE(has_error(res, 8, "workflows.default.steps[0].parallel[1].agent",
                        "unknown agent 'claude'"));
}

TEST(config_errors, a_nested_parallel_group_is_an_unknown_key) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  default:
    - parallel:
        - {agent: codex, task: implement}
        - parallel: []
)");
  EXPECT_TRUE(has_error(res, 7,
                        "workflows.default.steps[0].parallel[1].parallel",
                        "allowed keys: agent, task, description"));
}

TEST(config_errors, a_step_that_is_not_a_mapping_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  default:
    - codex
)");
  EXPECT_TRUE(
    has_error(res, 5, "workflows.default.steps[0]", "expected a step"));
  EXPECT_EQ(res.errors.size(), 1u);
}

TEST(config_errors, max_iterations_below_one_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  custom:
    max_iterations: 0
    steps: [{agent: codex, task: implement}]
settings:
  max_iterations: -2
)");
  EXPECT_TRUE(has_error(res, 5, "workflows.custom.max_iterations",
                        "must be at least 1, got 0"));
  EXPECT_TRUE(
    has_error(res, 8, "settings.max_iterations", "must be at least 1, got -2"));
}

TEST(config_errors, a_negative_suggestions_threshold_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  custom:
    min_suggestions_threshold: -1
    steps: [{agent: codex, task: implement}]
)");
  EXPECT_TRUE(has_error(res, 5, "workflows.custom.min_suggestions_threshold",
                        "must not be negative, got -1"));
}

// -- tasks --------------------------------------------------------------------

TEST(config_errors, a_custom_task_without_a_prompt_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
tasks:
  lint:
    review: true
)");
  EXPECT_TRUE(has_error(res, 4, "tasks.lint.prompt", "non-empty prompt"));
}

TEST(config_errors, a_custom_task_may_not_redefine_a_built_in_kind) {
  auto res = parse(R"(
agents:
  codex: {}
tasks:
  review: {prompt: "Review {task}"}
)");
  EXPECT_TRUE(has_error(res, 4, "tasks.review", "is a built-in task kind"));
}

// -- ranges -------------------------------------------------------------------

TEST(config_errors, a_tiny_negative_deadline_is_negative_not_off) {
  // -0.0004 s rounds to 0 ms, which would silently turn the deadline off.
  auto res = parse(R"(
agents:
  codex:
    deadlines: {first_output: -0.0004}
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.deadlines.first_output",
                        "must not be negative"));
}

TEST(config_errors, a_positive_duration_below_one_millisecond_is_an_error) {
  auto res = parse(R"(
agents:
  codex:
    deadlines: {idle: 0.0004}
settings:
  kill_grace: 0.0001
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.deadlines.idle",
                        "must be 0 (off) or at least 0.001 s"));
  EXPECT_TRUE(
    has_error(res, 5, "settings.kill_grace", "must be 0 or at least 0.001 s"));
}

TEST(config_errors, deadlines_above_seven_days_are_errors) {
  auto res = parse(R"(
agents:
  codex:
    deadlines: {first_output: 1000000000, idle: 604801, total: 0}
  claude:
    timeout: 700000
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.deadlines.first_output",
                        "must be at most 604800 s (7 days), got 1000000000"));
  EXPECT_TRUE(has_error(res, 3, "agents.codex.deadlines.idle",
                        "must be at most 604800 s (7 days)"));
  EXPECT_TRUE(has_error(res, 5, "agents.claude.timeout",
                        "must be at most 604800 s (7 days)"));
}

TEST(config_errors, seven_days_and_ten_minutes_are_accepted) {
  auto res = parse(R"(
agents:
  codex:
    deadlines: {first_output: 604800, idle: 604800, total: 604800}
settings:
  kill_grace: 600
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_EQ(res.value->find_agent("codex")->limits.total,
            config_limits::max_deadline);
  EXPECT_EQ(res.value->settings.kill_grace, config_limits::max_kill_grace);
}

TEST(config_errors, settings_above_their_maxima_are_errors) {
  auto res = parse(R"(
agents:
  codex:
    max_concurrency: 65
settings:
  kill_grace: 601
  output_cap_bytes: 9223372036854775807
  max_task_chars: 8388609
  max_iterations: 1001
  min_suggestions_threshold: 100001
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.max_concurrency",
                        "must be at most 64, got 65"));
  EXPECT_TRUE(has_error(res, 5, "settings.kill_grace",
                        "must be at most 600 s (10 minutes), got 601"));
  EXPECT_TRUE(has_error(res, 6, "settings.output_cap_bytes",
                        "must be at most 1073741824 (1 GiB)"));
  EXPECT_TRUE(has_error(res, 7, "settings.max_task_chars",
                        "must be at most 8388608 (8 MiB), got 8388609"));
  EXPECT_TRUE(has_error(res, 8, "settings.max_iterations",
                        "must be at most 1000, got 1001"));
  EXPECT_TRUE(has_error(res, 9, "settings.min_suggestions_threshold",
                        "must be at most 100000"));
}

TEST(config_errors, a_workflow_above_the_iteration_maximum_is_an_error) {
  auto res = parse(R"(
agents:
  codex: {}
workflows:
  custom:
    max_iterations: 5000
    steps: [{agent: codex, task: implement}]
)");
  EXPECT_TRUE(has_error(res, 5, "workflows.custom.max_iterations",
                        "must be at most 1000, got 5000"));
}

TEST(config_errors, a_config_built_in_code_is_checked_against_the_maxima) {
  auto cfg = builtin_config();
  cfg.settings.output_cap_bytes = std::size_t{1} << 40;
  cfg.agents.at(0).limits.idle = std::chrono::hours{24 * 30};
  auto errors = validate_config(cfg);
  auto has = [&](std::string_view key, std::string_view text) {
    for (const auto& e : errors)
      if (e.key == key && e.message.find(text) != std::string::npos)
        return true;
    return false;
  };
  EXPECT_TRUE(has("settings.output_cap_bytes", "must be at most"));
  EXPECT_TRUE(has("agents." + cfg.agents.at(0).name + ".deadlines.idle",
                  "must be at most 604800 s"));
}

// -- reporting ----------------------------------------------------------------

TEST(config_errors, all_errors_are_collected_in_file_order) {
  auto res = parse(R"(
agents:
  codex:
    max_concurrency: 0
    deadlines: {idle: -5}
  local: {}
workflows:
  default:
    - {agent: nobody, task: implement}
    - {agent: codex, task: dance}
settings:
  kill_grace: soon
)");
  ASSERT_FALSE(res.value);
  ASSERT_EQ(res.errors.size(), 6u) << dump(res);
  EXPECT_EQ(res.errors[0].key, "agents.codex.max_concurrency");
  EXPECT_EQ(res.errors[1].key, "agents.codex.deadlines.idle");
  EXPECT_EQ(res.errors[2].key, "agents.local.command");
  EXPECT_EQ(res.errors[3].key, "workflows.default.steps[0].agent");
  EXPECT_EQ(res.errors[4].key, "workflows.default.steps[1].task");
  EXPECT_EQ(res.errors[5].key, "settings.kill_grace");
  for (size_t i = 1; i < res.errors.size(); ++i)
    EXPECT_LE(res.errors[i - 1].line, res.errors[i].line);
}

TEST(config_errors, to_string_is_file_line_column_key_message) {
  config_error err{"a.yaml", 3, 7, "agents.codex.timeout", "bad"};
  EXPECT_EQ(err.to_string(), "a.yaml:3:7: agents.codex.timeout: bad");
  config_error no_pos{"a.yaml", 0, 0, "", "config file not found"};
  EXPECT_EQ(no_pos.to_string(), "a.yaml: config file not found");
}

TEST(config_errors, an_error_renders_with_its_position_and_key) {
  auto res = parse(R"(
agents:
  codex:
    deadlines: {idle: abc}
)");
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].to_string(),
            "/configs/test.yaml:3:23: agents.codex.deadlines.idle: expected "
            "a number of seconds, got string 'abc'");
}

TEST(config_errors, a_missing_file_is_an_error_naming_the_path) {
  auto res = load_config_file("/nonexistent/dir/ai-orchestrator.yaml");
  ASSERT_FALSE(res.value);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].file, "/nonexistent/dir/ai-orchestrator.yaml");
  EXPECT_NE(res.errors[0].to_string().find("not found"), std::string::npos);
}

TEST(config_errors, a_directory_is_not_a_config_file) {
  auto res = load_config_file(ORCH_SOURCE_DIR);
  ASSERT_FALSE(res.value);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].file, ORCH_SOURCE_DIR);
  EXPECT_NE(res.errors[0].message.find("directory"), std::string::npos);
}

TEST(config_errors, validate_config_checks_configs_built_in_code) {
  auto cfg = builtin_config();
  cfg.agents[0].limits.idle = std::chrono::seconds{-1};
  cfg.workflows[0].steps[0].items[0].agent = "nobody";
  auto errors = validate_config(cfg);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].key, "agents.codex.deadlines.idle");
  EXPECT_EQ(errors[1].key, "workflows.default.steps[0].agent");
  EXPECT_EQ(errors[0].file, "built-in");
  EXPECT_EQ(errors[0].line, 0);
}
