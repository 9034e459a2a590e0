// Workflow-run and agent actors on CAF's deterministic test coordinator, with
// a scripted process runner: iteration stop rules, parallel groups, failures,
// files and the manifest.

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/agent_actor.hpp"
#include "actors/run_report.hpp"
#include "actors/system_config.hpp"
#include "actors/workflow_actor.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

/// One scripted answer of an agent program.
struct answer {
  answer(std::string out = {}, int exit_code = 0,
         std::map<std::string, std::string> writes = {})
    : out(std::move(out)), exit_code(exit_code), writes(std::move(writes)) {
    // nop
  }
  std::string out;
  int exit_code;
  /// Files to create in the working directory before answering.
  std::map<std::string, std::string> writes;
};

/// A process runner whose programs are functions: argv[0] -> answer for the
/// n-th call (0-based). Records every spec.
class scripted_runner : public process_runner {
public:
  using script = std::function<answer(int call, const process_spec&)>;

  std::map<std::string, script> programs;
  std::vector<process_spec> calls;

  process_result run(const process_spec& spec, const line_callback& on_line,
                     const cancel_token*) override {
    calls.push_back(spec);
    auto& n = counts_[spec.argv.at(0)];
    auto a = programs.at(spec.argv.at(0))(n++, spec);
    for (auto& [path, content] : a.writes) {
      auto p = fs::path{spec.cwd} / path;
      fs::create_directories(p.parent_path());
      std::ofstream{p} << content;
    }
    process_result res;
    res.started = true;
    res.exit_code = a.exit_code;
    res.out = a.out;
    size_t pos = 0;
    while (on_line && pos < a.out.size()) {
      auto nl = a.out.find('\n', pos);
      auto end = nl == std::string::npos ? a.out.size() : nl;
      on_line(output_stream::out,
              std::string_view{a.out}.substr(pos, end - pos));
      pos = end + 1;
    }
    return res;
  }

  /// Returns the calls made to `program`.
  std::vector<process_spec> calls_to(const std::string& program) const {
    std::vector<process_spec> out;
    for (auto& c : calls)
      if (c.argv.at(0) == program)
        out.push_back(c);
    return out;
  }

private:
  std::map<std::string, int> counts_;
};

std::string findings_json(const std::vector<std::string>& texts) {
  nlohmann::json arr = nlohmann::json::array();
  int line = 1;
  for (auto& t : texts)
    arr.push_back({{"severity", "high"},
                   {"file", "app.py"},
                   {"line", line++},
                   {"text", t}});
  return "Review done.\n```json\n" + nlohmann::json{{"findings", arr}}.dump()
         + "\n```\n";
}

agent_config command_agent(const std::string& name) {
  agent_config a;
  a.name = name;
  a.kind = adapter_kind::command;
  a.command = name;
  return a;
}

class workflow_actor_test : public ::testing::Test {
protected:
  workflow_actor_test()
    : cfg_{true}, sys_{cfg_},
      sched_{dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())},
      runner_{std::make_shared<scripted_runner>()} {
    root_
      = fs::temp_directory_path()
        / ("orch-actor-test-" + std::to_string(::getpid()) + "-"
           + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    config_.agents = {command_agent("impl"), command_agent("rev"),
                      command_agent("rev2"), command_agent("ref")};
    runner_->programs["impl"] = [](int, const process_spec&) {
      return answer{"implemented", 0, {{"app.py", "print('hi')\n"}}};
    };
    runner_->programs["ref"] = [](int call, const process_spec&) {
      return answer{"refined", 0, {{"app.py", "v" + std::to_string(call)}}};
    };
  }

  ~workflow_actor_test() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void set_workflow(std::vector<step_config> steps, int32_t max_iterations,
                    int32_t threshold = 0) {
    workflow_config wf;
    wf.name = "wf";
    wf.max_iterations = max_iterations;
    wf.min_suggestions_threshold = threshold;
    wf.steps = std::move(steps);
    config_.workflows = {wf};
  }

  static step_config one(std::string agent, std::string task) {
    return step_config{{step_item{std::move(agent), std::move(task), ""}}};
  }

  /// Runs the workflow "wf" to its end and returns the result.
  run_result run() {
    auto cfg = std::make_shared<const config>(config_);
    agent_deps deps;
    deps.runner = runner_;
    deps.detached_workers = false;
    std::map<std::string, agent_actor> agents;
    for (auto& a : config_.agents)
      agents.emplace(a.name, sys_.spawn(agent_impl, a, deps));
    auto wf = sys_.spawn(workflow_impl, cfg, agents);
    caf::scoped_actor self{sys_};
    run_request req;
    req.run_id = "run-1";
    req.task = "build a thing";
    req.workflow = "wf";
    req.workspace = root_.string();
    run_result result;
    bool done = false;
    auto rh = self->request(wf, caf::infinite, atom::run_task_v, req);
    sched_.run();
    rh.receive(
      [&](run_result& r) {
        result = std::move(r);
        done = true;
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
    EXPECT_TRUE(done);
    for (auto& kvp : agents)
      self->send_exit(kvp.second, caf::exit_reason::user_shutdown);
    sched_.run();
    return result;
  }

  system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  std::shared_ptr<scripted_runner> runner_;
  config config_;
  fs::path root_;
};

TEST_F(workflow_actor_test, converges_when_open_findings_reach_the_threshold) {
  runner_->programs["rev"] = [](int call, const process_spec&) {
    std::vector<std::vector<std::string>> rounds = {{"a", "b", "c"}, {"a"}, {}};
    return answer{findings_json(rounds.at(static_cast<size_t>(call)))};
  };
  set_workflow(
    {one("impl", "implement"), one("rev", "review"), one("ref", "refine")}, 5);
  auto res = run();
  EXPECT_EQ(res.status, run_status::converged);
  ASSERT_EQ(res.iterations.size(), 3u);
  EXPECT_EQ(res.iterations[0].open_findings, 3);
  EXPECT_EQ(res.iterations[1].open_findings, 1);
  EXPECT_EQ(res.iterations[2].open_findings, 0);
  // The last iteration stops right after the clean review: no refine.
  EXPECT_EQ(res.iterations[2].steps.size(), 2u);
  EXPECT_TRUE(res.findings.empty());
}

TEST_F(workflow_actor_test,
       a_threshold_lets_a_run_converge_with_findings_left) {
  runner_->programs["rev"] = [](int call, const process_spec&) {
    return answer{findings_json(call == 0 ? std::vector<std::string>{"a", "b"}
                                          : std::vector<std::string>{"a"})};
  };
  set_workflow({one("impl", "implement"), one("rev", "review")}, 5, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::converged);
  EXPECT_EQ(res.iterations.size(), 2u);
  ASSERT_EQ(res.findings.size(), 1u);
  EXPECT_EQ(res.findings[0].text, "a");
}

TEST_F(workflow_actor_test, stops_at_max_iterations_with_findings_open) {
  runner_->programs["rev"] = [](int call, const process_spec&) {
    // A different finding each round: progress, but never clean.
    return answer{findings_json({"issue " + std::to_string(call)})};
  };
  set_workflow(
    {one("impl", "implement"), one("rev", "review"), one("ref", "refine")}, 2);
  auto res = run();
  EXPECT_EQ(res.status, run_status::max_iterations);
  ASSERT_EQ(res.iterations.size(), 2u);
  EXPECT_EQ(res.iterations[1].steps.size(), 3u);
  ASSERT_EQ(res.findings.size(), 1u);
  EXPECT_EQ(res.findings[0].text, "issue 1");
  EXPECT_EQ(runner_->calls_to("rev").size(), 2u);
}

TEST_F(workflow_actor_test, stops_when_a_review_repeats_the_previous_findings) {
  runner_->programs["rev"] = [](int, const process_spec&) {
    return answer{findings_json({"same", "again"})};
  };
  set_workflow(
    {one("impl", "implement"), one("rev", "review"), one("ref", "refine")}, 10);
  auto res = run();
  EXPECT_EQ(res.status, run_status::no_progress);
  EXPECT_EQ(res.iterations.size(), 2u);
  EXPECT_EQ(res.findings.size(), 2u);
}

TEST_F(workflow_actor_test, the_next_round_prompt_carries_the_open_findings) {
  runner_->programs["rev"] = [](int call, const process_spec&) {
    return answer{findings_json(call == 0
                                  ? std::vector<std::string>{"SQL injection"}
                                  : std::vector<std::string>{})};
  };
  set_workflow(
    {one("impl", "implement"), one("rev", "review"), one("ref", "refine")}, 3);
  auto res = run();
  EXPECT_EQ(res.status, run_status::converged);
  auto impl_calls = runner_->calls_to("impl");
  ASSERT_EQ(impl_calls.size(), 2u);
  auto prompt_of = [](const process_spec& spec) {
    return spec.stdin_data ? *spec.stdin_data : spec.argv.back();
  };
  EXPECT_EQ(prompt_of(impl_calls[0]).find("SQL injection"), std::string::npos);
  EXPECT_NE(prompt_of(impl_calls[1]).find("SQL injection"), std::string::npos);
  auto ref_calls = runner_->calls_to("ref");
  ASSERT_EQ(ref_calls.size(), 1u);
  EXPECT_NE(prompt_of(ref_calls[0]).find("SQL injection"), std::string::npos);
}

TEST_F(workflow_actor_test,
       a_parallel_group_runs_every_item_and_merges_findings) {
  runner_->programs["rev"] = [](int, const process_spec&) {
    return answer{findings_json({"shared", "only rev"})};
  };
  runner_->programs["rev2"] = [](int, const process_spec&) {
    return answer{findings_json({"shared", "only rev2"})};
  };
  step_config group{
    {step_item{"rev", "review", ""}, step_item{"rev2", "security_review", ""}}};
  set_workflow({one("impl", "implement"), group}, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::max_iterations);
  ASSERT_EQ(res.iterations.size(), 1u);
  EXPECT_EQ(res.iterations[0].steps.size(), 3u);
  EXPECT_EQ(res.iterations[0].open_findings, 3);
  std::vector<std::string> texts;
  for (auto& f : res.findings)
    texts.push_back(f.text);
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(texts,
            (std::vector<std::string>{"only rev", "only rev2", "shared"}));
}

TEST_F(workflow_actor_test, a_failing_step_ends_the_run_and_keeps_the_files) {
  runner_->programs["impl"] = [](int, const process_spec&) {
    return answer{"boom", 7, {{"partial.py", "x = 1\n"}}};
  };
  runner_->programs["rev"] = [](int, const process_spec&) {
    return answer{findings_json({})};
  };
  set_workflow({one("impl", "implement"), one("rev", "review")}, 3);
  auto res = run();
  EXPECT_EQ(res.status, run_status::failed);
  EXPECT_NE(res.message.find("impl"), std::string::npos) << res.message;
  EXPECT_TRUE(runner_->calls_to("rev").empty());
  EXPECT_EQ(res.files, std::vector<std::string>{"partial.py"});
  EXPECT_TRUE(fs::exists(root_ / "partial.py"));
  EXPECT_TRUE(fs::exists(root_ / ".orchestrator" / "manifest.json"));
}

TEST_F(workflow_actor_test, a_workflow_without_review_completes_in_one_round) {
  set_workflow({one("impl", "implement"), one("ref", "document")}, 5);
  auto res = run();
  EXPECT_EQ(res.status, run_status::completed);
  EXPECT_EQ(res.iterations.size(), 1u);
  EXPECT_EQ(runner_->calls_to("impl").size(), 1u);
}

TEST_F(workflow_actor_test,
       code_blocks_naming_files_are_written_and_bad_paths_refused) {
  runner_->programs["impl"] = [](int, const process_spec&) {
    return answer{
      "Here:\n```python title=pkg/util.py\ndef f():\n    return 1\n```\n"
      "```python title=../escape.py\nbad = True\n```\n"};
  };
  set_workflow({one("impl", "implement")}, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::completed);
  EXPECT_TRUE(fs::exists(root_ / "pkg" / "util.py"));
  EXPECT_FALSE(fs::exists(root_.parent_path() / "escape.py"));
  ASSERT_EQ(res.iterations[0].steps.size(), 1u);
  auto& step = res.iterations[0].steps[0];
  EXPECT_EQ(step.files, std::vector<std::string>{"pkg/util.py"});
  ASSERT_EQ(step.refused.size(), 1u);
  EXPECT_EQ(step.refused[0].path, "../escape.py");
}

TEST_F(workflow_actor_test, the_manifest_records_every_step_and_file) {
  runner_->programs["rev"] = [](int call, const process_spec&) {
    return answer{findings_json(call == 0 ? std::vector<std::string>{"x"}
                                          : std::vector<std::string>{})};
  };
  set_workflow(
    {one("impl", "implement"), one("rev", "review"), one("ref", "refine")}, 3);
  auto res = run();
  std::ifstream in{root_ / ".orchestrator" / "manifest.json"};
  auto doc = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["status"], "converged");
  EXPECT_EQ(doc["run_id"], "run-1");
  ASSERT_EQ(doc["iterations"].size(), 2u);
  EXPECT_EQ(doc["iterations"][0]["steps"].size(), 3u);
  EXPECT_EQ(doc["iterations"][0]["steps"][0]["agent"], "impl");
  EXPECT_EQ(doc["iterations"][0]["open_findings"], 1);
  EXPECT_EQ(doc["files"], nlohmann::json::array({"app.py"}));
  EXPECT_EQ(res.files, std::vector<std::string>{"app.py"});
}

TEST_F(workflow_actor_test,
       files_edited_in_place_stay_recoverable_from_backups) {
  // The user's own file, which the agent rewrites itself (no code block,
  // so no write of ours could back it up).
  std::ofstream{root_ / "notes.txt"} << "mine\n";
  runner_->programs["impl"] = [](int, const process_spec&) {
    return answer{"rewrote it", 0, {{"notes.txt", "agent's\n"}}};
  };
  set_workflow({one("impl", "implement")}, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::completed);
  EXPECT_EQ(res.preserved_files, 1);
  EXPECT_EQ(res.files, std::vector<std::string>{"notes.txt"});
  std::ifstream saved{root_ / ".orchestrator" / "backups" / "run-1"
                      / "notes.txt"};
  std::string content{std::istreambuf_iterator<char>{saved}, {}};
  EXPECT_EQ(content, "mine\n");
}

TEST_F(workflow_actor_test, overwrites_by_code_block_are_backed_up_per_step) {
  std::ofstream{root_ / "app.py"} << "old\n";
  runner_->programs["impl"] = [](int, const process_spec&) {
    return answer{"```python title=app.py\nnew\n```\n"};
  };
  set_workflow({one("impl", "implement")}, 1);
  auto res = run();
  ASSERT_EQ(res.iterations.at(0).steps.size(), 1u);
  auto& step = res.iterations[0].steps[0];
  // The pre-run copy is app.py; the overwrite's backup gets a suffix.
  EXPECT_EQ(step.backups,
            std::vector<std::string>{".orchestrator/backups/run-1/app.py.~1~"});
  std::ifstream now{root_ / "app.py"};
  std::string content{std::istreambuf_iterator<char>{now}, {}};
  EXPECT_EQ(content, "new\n");
}

TEST_F(workflow_actor_test,
       files_an_agent_deletes_are_reported_and_kept_in_backups) {
  std::ofstream{root_ / "old.txt"} << "keep me\n";
  runner_->programs["impl"] = [this](int, const process_spec&) {
    fs::remove(root_ / "old.txt");
    return answer{"removed it"};
  };
  set_workflow({one("impl", "implement")}, 1);
  auto res = run();
  ASSERT_EQ(res.iterations.at(0).steps.size(), 1u);
  EXPECT_EQ(res.iterations[0].steps[0].deleted,
            std::vector<std::string>{"old.txt"});
  EXPECT_TRUE(
    fs::exists(root_ / ".orchestrator" / "backups" / "run-1" / "old.txt"));
}

TEST(same_findings, ignores_order_but_not_content) {
  finding a{"high", "x.py", 1, "a"};
  finding b{"low", "y.py", 2, "b"};
  EXPECT_TRUE(same_findings({a, b}, {b, a}));
  EXPECT_FALSE(same_findings({a, b}, {a}));
  EXPECT_FALSE(same_findings({a}, {b}));
}

} // namespace
} // namespace orch
