// The message vocabulary crosses process boundaries: every payload survives
// a binary round trip, and an agent actor published by one actor system
// runs a step for a workflow in another, over the middleman on loopback.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
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

template<class T>
T roundtrip(caf::actor_system& sys, T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  EXPECT_FALSE(sink(x));
  T y;
  caf::binary_deserializer source{sys, buf};
  EXPECT_FALSE(source(y));
  return y;
}

step_result sample_result() {
  step_result r;
  r.agent = "codex";
  r.task_kind = "review";
  r.iteration = 2;
  r.step_index = 1;
  r.outcome.ok = false;
  r.outcome.failure = failure_kind::rate_limited;
  r.outcome.message = "429 — slow down";
  r.outcome.final_text = "text\nwith lines";
  r.outcome.session_id = "s-1";
  r.outcome.tokens = usage{10, 20, 5, 0.25, true};
  r.outcome.reported_files = {"/w/a.py"};
  r.outcome.exit_code = 1;
  r.outcome.truncated = true;
  r.findings = {finding{"high", "a.py", 3, "bug"}};
  r.files = {"a.py", "b/c.py"};
  r.refused = {refused_path{"../x", "escapes"}};
  r.started_ms = 123;
  r.duration_ms = 45;
  return r;
}

TEST(vocabulary, every_payload_survives_a_binary_round_trip) {
  system_config cfg;
  caf::actor_system sys{cfg};
  auto r = sample_result();
  auto r2 = roundtrip(sys, r);
  EXPECT_EQ(r2.agent, r.agent);
  EXPECT_EQ(r2.outcome.failure, failure_kind::rate_limited);
  EXPECT_EQ(r2.outcome.message, r.outcome.message);
  EXPECT_EQ(r2.outcome.tokens.cost_usd, 0.25);
  EXPECT_TRUE(r2.outcome.tokens.has_cost);
  EXPECT_EQ(r2.findings, r.findings);
  EXPECT_EQ(r2.files, r.files);
  ASSERT_EQ(r2.refused.size(), 1u);
  EXPECT_EQ(r2.refused[0].reason, "escapes");
  EXPECT_EQ(r2.duration_ms, 45);

  run_result run;
  run.run_id = "id";
  run.status = run_status::no_progress;
  run.iterations = {iteration_record{1, {r}, 1}};
  run.findings = r.findings;
  auto run2 = roundtrip(sys, run);
  EXPECT_EQ(run2.status, run_status::no_progress);
  ASSERT_EQ(run2.iterations.size(), 1u);
  EXPECT_EQ(run2.iterations[0].steps[0].outcome.session_id, "s-1");

  progress_event ev;
  ev.kind = progress_event::kind_t::step_finished;
  ev.agent = "gemini";
  ev.elapsed_ms = 7;
  auto ev2 = roundtrip(sys, ev);
  EXPECT_EQ(ev2.kind, progress_event::kind_t::step_finished);
  EXPECT_EQ(ev2.agent, "gemini");
}

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
