// One list of prompt placeholders: every one config validation accepts is
// filled by render_prompt.

#include <string>

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "runtime/review.hpp"

namespace orch {
namespace {

TEST(prompt_placeholders, render_prompt_fills_every_one_the_config_accepts) {
  config cfg;
  prompt_context ctx;
  ctx.task = "the task";
  ctx.task_kind = "lint";
  ctx.findings = {finding{"high", "a.py", 3, "bug"}};
  ctx.files = {"a.py"};
  ctx.previous_output = "before";
  ctx.workspace = "/w";
  ctx.iteration = 4;
  for (const auto& [ph, name] : prompt_placeholders) {
    std::string word = "{" + std::string{name} + "}";
    cfg.tasks = {task_template{"lint", "<" + word + ">", false}};
    auto out = render_prompt(cfg, ctx);
    EXPECT_EQ(out.find(word), std::string::npos) << out;
    EXPECT_EQ(out.find("<>"), std::string::npos) << out;
  }
}

TEST(prompt_placeholders, iteration_and_task_kind_are_filled) {
  config cfg;
  cfg.tasks
    = {task_template{"lint", "round {iteration} of {task_kind}", false}};
  prompt_context ctx;
  ctx.task_kind = "lint";
  ctx.iteration = 3;
  EXPECT_EQ(render_prompt(cfg, ctx), "Task kind: lint\n\nround 3 of lint\n");
}

} // namespace
} // namespace orch
