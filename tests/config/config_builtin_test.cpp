// The built-in default and the example file that spells it out.

#include "config/config.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace orch;
using namespace std::chrono_literals;

namespace {

const std::string example_path = std::string{ORCH_SOURCE_DIR}
                                 + "/examples/ai-orchestrator.yaml";

std::string dump(const std::vector<config_error>& xs) {
  std::string out;
  for (const auto& x : xs)
    out += "  " + x.to_string() + "\n";
  return out;
}

std::vector<std::string> step_names(const workflow_config& wf) {
  std::vector<std::string> out;
  for (const auto& step : wf.steps)
    for (const auto& item : step.items)
      out.push_back(item.agent + ":" + item.task);
  return out;
}

// Field-by-field comparisons, so a mismatch names the field.

void expect_same_agent(const agent_config& a, const agent_config& b) {
  SCOPED_TRACE("agent " + a.name);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.command, b.command);
  EXPECT_EQ(a.args, b.args);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.enabled, b.enabled);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.env_allow, b.env_allow);
  EXPECT_EQ(a.env_set, b.env_set);
  EXPECT_EQ(a.limits.first_output, b.limits.first_output);
  EXPECT_EQ(a.limits.idle, b.limits.idle);
  EXPECT_EQ(a.limits.total, b.limits.total);
  EXPECT_EQ(a.max_concurrency, b.max_concurrency);
  EXPECT_EQ(a.prompt, b.prompt);
}

void expect_same_workflow(const workflow_config& a, const workflow_config& b) {
  SCOPED_TRACE("workflow " + a.name);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.max_iterations, b.max_iterations);
  EXPECT_EQ(a.min_suggestions_threshold, b.min_suggestions_threshold);
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    ASSERT_EQ(a.steps[i].items.size(), b.steps[i].items.size());
    for (size_t j = 0; j < a.steps[i].items.size(); ++j) {
      EXPECT_EQ(a.steps[i].items[j].agent, b.steps[i].items[j].agent);
      EXPECT_EQ(a.steps[i].items[j].task, b.steps[i].items[j].task);
      EXPECT_EQ(a.steps[i].items[j].description,
                b.steps[i].items[j].description);
    }
  }
}

void expect_same_settings(const settings& a, const settings& b) {
  EXPECT_EQ(a.max_iterations, b.max_iterations);
  EXPECT_EQ(a.min_suggestions_threshold, b.min_suggestions_threshold);
  EXPECT_EQ(a.workspace_dir, b.workspace_dir);
  EXPECT_EQ(a.max_task_chars, b.max_task_chars);
  EXPECT_EQ(a.output_cap_bytes, b.output_cap_bytes);
  EXPECT_EQ(a.kill_grace, b.kill_grace);
  EXPECT_EQ(a.log_level, b.log_level);
  EXPECT_EQ(a.scheduler_threads, b.scheduler_threads);
}

} // namespace

TEST(config_builtin, the_built_in_config_passes_its_own_validation) {
  auto errors = validate_config(builtin_config());
  EXPECT_TRUE(errors.empty()) << dump(errors);
}

TEST(config_builtin, the_built_in_config_has_the_seeds_agents_all_enabled) {
  auto cfg = builtin_config();
  EXPECT_EQ(cfg.source, "built-in");
  ASSERT_EQ(cfg.agents.size(), 4u);
  const char* names[] = {"codex", "gemini", "claude", "copilot"};
  const char* roles[] = {"implementation", "review", "refinement",
                         "suggestions"};
  for (size_t i = 0; i < 4; ++i) {
    const auto& a = cfg.agents[i];
    EXPECT_EQ(a.name, names[i]);
    EXPECT_EQ(to_string(a.kind), names[i]);
    EXPECT_EQ(a.command, names[i]);
    EXPECT_EQ(a.role, roles[i]);
    EXPECT_TRUE(a.enabled) << a.name;
    EXPECT_FALSE(a.description.empty());
    EXPECT_EQ(a.limits.first_output, 180s);
    EXPECT_EQ(a.limits.idle, 300s);
    EXPECT_EQ(a.limits.total, 1800s);
  }
  EXPECT_TRUE(cfg.tasks.empty());
}

TEST(config_builtin, the_built_in_workflows_match_the_seed) {
  auto cfg = builtin_config();
  ASSERT_EQ(cfg.workflows.size(), 5u);
  struct expected {
    const char* name;
    int32_t iterations;
    std::vector<std::string> steps;
  };
  std::vector<expected> all{
    {"default", 3, {"codex:implement", "gemini:review", "claude:refine"}},
    {"quick", 1, {"codex:implement"}},
    {"thorough",
     5,
     {"codex:implement", "copilot:suggestions", "gemini:review",
      "claude:refine", "gemini:review"}},
    {"review-only", 2, {"gemini:review", "claude:refine"}},
    {"document", 2, {"claude:document", "gemini:review"}},
  };
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& wf = cfg.workflows[i];
    EXPECT_EQ(wf.name, all[i].name);
    EXPECT_EQ(wf.max_iterations, all[i].iterations) << wf.name;
    EXPECT_EQ(step_names(wf), all[i].steps) << wf.name;
    EXPECT_FALSE(wf.description.empty()) << wf.name;
    for (const auto& step : wf.steps)
      EXPECT_FALSE(step.parallel());
  }
}

TEST(config_builtin, the_built_in_settings_are_the_header_defaults) {
  expect_same_settings(builtin_config().settings, settings{});
  EXPECT_EQ(builtin_config().settings.log_level, "info");
}

TEST(config_builtin, the_example_config_loads_without_errors_or_warnings) {
  auto res = load_config_file(example_path);
  ASSERT_TRUE(res.value) << dump(res.errors);
  EXPECT_TRUE(res.warnings.empty()) << dump(res.warnings);
  EXPECT_EQ(res.value->source, example_path);
}

TEST(config_builtin, the_example_config_spells_out_the_built_in_default) {
  auto res = load_config_file(example_path);
  ASSERT_TRUE(res.value) << dump(res.errors);
  const auto& cfg = *res.value;
  auto builtin = builtin_config();
  for (const auto& agent : builtin.agents) {
    auto* x = cfg.find_agent(agent.name);
    ASSERT_NE(x, nullptr) << agent.name;
    expect_same_agent(*x, agent);
  }
  for (const auto& wf : builtin.workflows) {
    auto* x = cfg.find_workflow(wf.name);
    ASSERT_NE(x, nullptr) << wf.name;
    expect_same_workflow(*x, wf);
  }
  expect_same_settings(cfg.settings, builtin.settings);
}

TEST(config_builtin, the_example_config_demonstrates_the_rest_of_the_format) {
  auto res = load_config_file(example_path);
  ASSERT_TRUE(res.value) << dump(res.errors);
  const auto& cfg = *res.value;
  // A command agent, with its relative command resolved next to the file.
  const auto* local = cfg.find_agent("local-model");
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(local->kind, adapter_kind::command);
  EXPECT_EQ(local->prompt, prompt_mode::argument);
  EXPECT_EQ(local->command,
            std::string{ORCH_SOURCE_DIR} + "/examples/bin/local-agent");
  EXPECT_FALSE(local->enabled);
  EXPECT_EQ(local->env_set.at("LOCAL_MODEL_TEMPERATURE"), "0.2");
  // A custom task used inside a parallel group.
  const auto* lint = cfg.find_task("lint");
  ASSERT_NE(lint, nullptr);
  EXPECT_TRUE(lint->review);
  const auto* wf = cfg.find_workflow("parallel-review");
  ASSERT_NE(wf, nullptr);
  ASSERT_EQ(wf->steps.size(), 3u);
  ASSERT_TRUE(wf->steps[1].parallel());
  EXPECT_EQ(wf->steps[1].items.size(), 3u);
  EXPECT_EQ(wf->steps[1].items[2].task, "lint");
}
