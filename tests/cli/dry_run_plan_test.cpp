// `run --dry-run` shows what the real run starts: the plan of a step
// (actors/step_plan.hpp) equals the process_spec the runner receives when
// the workflow and agent actors run that step.

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>

#include "actors/agent_actor.hpp"
#include "actors/step_plan.hpp"
#include "actors/system_config.hpp"
#include "actors/workflow_actor.hpp"
#include "adapters/adapter.hpp"
#include "config/config.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

constexpr auto k_max_test_wait = std::chrono::seconds{60};

TEST(dry_run_plan, equals_the_spec_the_real_step_runs) {
  auto dir = fs::temp_directory_path()
             / ("orch-dry-run-plan-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto loaded
    = load_config(std::string{ORCH_SOURCE_DIR} + "/examples/demo.yaml");
  ASSERT_TRUE(loaded.value);
  auto cfg = std::make_shared<config>(std::move(*loaded.value));
  // Settings that differ from the defaults, so that applying them shows.
  cfg->settings.output_cap_bytes = 12345;
  cfg->settings.kill_grace = std::chrono::milliseconds{1234};
  const auto* wf = cfg->find_workflow("quick");
  ASSERT_NE(wf, nullptr);
  const auto& item = wf->steps.at(0).items.at(0);
  const auto* agent = cfg->find_agent(item.agent);
  ASSERT_NE(agent, nullptr);
  const std::string task = "Add error handling";
  const std::string ws = dir.string();

  // What the dry run prints from.
  prompt_context ctx;
  ctx.task = task;
  ctx.task_kind = item.task;
  ctx.workspace = ws;
  auto adapt = make_adapter(agent->kind);
  auto plan = plan_step(*cfg, *agent, *adapt, ctx, current_environment());

  // What the real run starts: the first step of iteration 1 on an empty
  // workspace, through the workflow and agent actors.
  auto runner = std::make_shared<fake_process_runner>();
  fake_response answer;
  answer.exit_code = 1;
  runner->set_fallback(answer);
  {
    system_config sys_cfg;
    caf::actor_system sys{sys_cfg};
    agent_deps deps;
    deps.runner = runner;
    deps.settings = cfg->settings;
    std::map<std::string, agent_actor> agents;
    agents.emplace(agent->name, sys.spawn(agent_impl, *agent, deps));
    auto run = sys.spawn(workflow_impl, std::shared_ptr<const config>{cfg},
                         agents);
    run_request req;
    req.run_id = "plan-test";
    req.task = task;
    req.workflow = wf->name;
    req.workspace = ws;
    caf::scoped_actor self{sys};
    bool answered = false;
    self->request(run, k_max_test_wait, atom::run_task_v, req)
      .receive(
        [&](const run_result&) {
          answered = true;
        },
        [&](const caf::error& e) {
          FAIL() << sys.render(e);
        });
    EXPECT_TRUE(answered);
    for (auto& kvp : agents)
      self->send_exit(kvp.second, caf::exit_reason::user_shutdown);
    self->send_exit(run, caf::exit_reason::user_shutdown);
  }
  ASSERT_GE(runner->call_count(), 1u);
  auto real = runner->calls().front();
  EXPECT_EQ(real.argv, plan.spec.argv);
  EXPECT_EQ(real.env, plan.spec.env);
  EXPECT_EQ(real.stdin_data, plan.spec.stdin_data);
  EXPECT_EQ(real.cwd, plan.spec.cwd);
  EXPECT_EQ(real.first_output_deadline, plan.spec.first_output_deadline);
  EXPECT_EQ(real.idle_deadline, plan.spec.idle_deadline);
  EXPECT_EQ(real.total_deadline, plan.spec.total_deadline);
  EXPECT_EQ(real.output_cap, 12345u);
  EXPECT_EQ(plan.spec.output_cap, 12345u);
  EXPECT_EQ(real.kill_grace, std::chrono::milliseconds{1234});
  EXPECT_EQ(plan.spec.kill_grace, std::chrono::milliseconds{1234});
  // The prompt reaches the agent: through stdin (codex) or argv.
  ASSERT_FALSE(plan.prompt.empty());
  EXPECT_TRUE(
    plan.spec.stdin_data == plan.prompt
    || std::find(plan.spec.argv.begin(), plan.spec.argv.end(), plan.prompt)
         != plan.spec.argv.end());
  std::error_code ec;
  fs::remove_all(dir, ec);
}

} // namespace
} // namespace orch
