// The message vocabulary crosses process boundaries: an agent actor
// published by one actor system runs a step for a workflow in another, over
// the middleman on loopback. (Every field's round trip: vocabulary_test.cpp.)

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>

#include "actors/agent_actor.hpp"
#include "actors/system_config.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

/// The one bound on every wait in these tests.
constexpr auto k_max_test_wait = std::chrono::seconds{30};

TEST(remote_agent, a_step_runs_on_an_agent_actor_published_by_another_node) {
  auto root = fs::temp_directory_path()
              / ("orch-remote-test-" + std::to_string(::getpid()));
  fs::create_directories(root);
  auto runner = std::make_shared<fake_process_runner>();
  fake_response answer;
  answer.out_lines = {"remote answer"};
  answer.on_run = [](const process_spec& spec) {
    std::ofstream{fs::path{spec.cwd} / "remote.txt"} << "made remotely\n";
  };
  runner->on("remote-agent", answer);

  // The node that runs the agent.
  system_config server_cfg{false, true};
  caf::actor_system server{server_cfg};
  agent_config a;
  a.name = "remote";
  a.kind = adapter_kind::command;
  a.command = "remote-agent";
  agent_deps deps;
  deps.runner = runner;
  auto agent = server.spawn(agent_impl, a, deps);
  auto port = server.middleman().publish(agent, 0, "127.0.0.1");
  ASSERT_TRUE(port) << server.render(port.error());

  {
    // The node that drives the workflow: it only knows the interface.
    system_config client_cfg{false, true};
    caf::actor_system client{client_cfg};
    auto remote = client.middleman().remote_actor<agent_actor>("127.0.0.1",
                                                               *port);
    ASSERT_TRUE(remote) << client.render(remote.error());
    caf::scoped_actor self{client};
    step_request req;
    req.run_id = "r";
    req.agent = "remote";
    req.task_kind = "implement";
    req.prompt = "do it remotely";
    req.workspace = root.string();
    bool answered = false;
    self->request(*remote, k_max_test_wait, atom::run_step_v, req)
      .receive(
        [&](step_result& res) {
          answered = true;
          EXPECT_TRUE(res.outcome.ok) << res.outcome.message;
          EXPECT_EQ(res.outcome.final_text, "remote answer");
          EXPECT_EQ(res.files, std::vector<std::string>{"remote.txt"});
        },
        [&](caf::error& e) {
          ADD_FAILURE() << client.render(e);
        });
    EXPECT_TRUE(answered);
    ASSERT_EQ(runner->call_count(), 1u);
    EXPECT_EQ(*runner->last_call().stdin_data, "do it remotely");
  }
  caf::anon_send_exit(agent, caf::exit_reason::user_shutdown);
  std::error_code ec;
  fs::remove_all(root, ec);
}

} // namespace
} // namespace orch
