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
#include "actors/step_output.hpp"
#include "actors/system_config.hpp"
#include "actors/workflow_actor.hpp"
#include "support/agents.hpp"

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

using test::command_agent;

/// An agent read with the codex parser (which reports file changes), run as
/// program `program`.
agent_config codex_agent(const std::string& name) {
  agent_config a;
  a.name = name;
  a.kind = adapter_kind::codex;
  a.command = name;
  return a;
}

/// Returns codex JSON lines reporting `changed` as file changes, then
/// `text` as the final message.
std::string codex_output(const std::vector<std::string>& changed,
                         const std::string& text) {
  nlohmann::json changes = nlohmann::json::array();
  for (auto& path : changed)
    changes.push_back({{"path", path}, {"kind", "update"}});
  std::string out = R"({"type":"thread.started","thread_id":"t-1"})"
                    "\n"
                    R"({"type":"turn.started"})"
                    "\n";
  out += nlohmann::json{{"type", "item.completed"},
                        {"item",
                         {{"id", "item_0"},
                          {"type", "file_change"},
                          {"changes", changes},
                          {"status", "completed"}}}}
           .dump()
         + "\n";
  out += nlohmann::json{{"type", "item.completed"},
                        {"item",
                         {{"id", "item_1"},
                          {"type", "agent_message"},
                          {"text", text}}}}
           .dump()
         + "\n";
  out += R"({"type":"turn.completed","usage":{"input_tokens":1,)"
         R"("cached_input_tokens":0,"output_tokens":1}})"
         "\n";
  return out;
}

std::string prompt_of(const process_spec& spec) {
  return spec.stdin_data ? *spec.stdin_data : spec.argv.back();
}

/// An agent actor that accepts steps and never answers (a hung or buggy
/// remote agent); killing it leaves its promises unanswered.
struct silent_agent_state {
  std::vector<caf::typed_response_promise<step_result>> held;
};

agent_actor::behavior_type
silent_agent(agent_actor::stateful_pointer<silent_agent_state> self) {
  return {
    [=](atom::run_step, step_request&) -> caf::result<step_result> {
      auto rp = self->make_response_promise<step_result>();
      self->state.held.push_back(rp);
      return rp;
    },
    [=](atom::cancel) {
      // nop
    },
    [=](atom::cancel, const std::string&) {
      // nop
    },
    [=](atom::retry, uint64_t) {
      // nop
    },
  };
}

/// An agent actor that answers every step at once with a listing of the
/// workspace that is not on disk, and keeps the prompts it got.
agent_actor::behavior_type
listing_agent(agent_actor::pointer,
              std::shared_ptr<std::vector<std::string>> prompts) {
  return {
    [=](atom::run_step, step_request& req) -> step_result {
      prompts->push_back(req.prompt);
      auto res = result_for(req);
      res.outcome.ok = true;
      res.outcome.final_text = "done";
      res.workspace_files = {"listed/by_" + req.agent + ".py"};
      res.listed = true;
      return res;
    },
    [=](atom::cancel) {
      // nop
    },
    [=](atom::cancel, const std::string&) {
      // nop
    },
    [=](atom::retry, uint64_t) {
      // nop
    },
  };
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
    return run_on(wf, agents);
  }

  /// Sends the run request to `wf`, runs every actor until nothing is left
  /// to do, and returns the answer (failing the test if there is none).
  run_result run_on(workflow_actor wf,
                    const std::map<std::string, agent_actor>& agents) {
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
    if (!self->has_next_message()) {
      ADD_FAILURE() << "the workflow actor never answered";
      return result;
    }
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

TEST_F(workflow_actor_test, a_step_prompt_lists_what_the_step_before_wrote) {
  // The listing for the next prompt is made with the previous step's file
  // work (one trip to the run's lane): it must come after that step.
  runner_->programs["impl"] = [](int, const process_spec&) {
    answer a;
    a.out = "done\n";
    a.writes["made/by_step_one.py"] = "x = 1\n";
    return a;
  };
  runner_->programs["ref"] = [](int, const process_spec&) {
    return answer{"done\n"};
  };
  set_workflow({one("impl", "implement"), one("ref", "refine")}, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::completed) << res.message;
  auto calls = runner_->calls_to("ref");
  ASSERT_EQ(calls.size(), 1u);
  auto prompt = prompt_of(calls[0]);
  EXPECT_NE(prompt.find("- made/by_step_one.py"), std::string::npos) << prompt;
  auto first = prompt_of(runner_->calls_to("impl").at(0));
  EXPECT_EQ(first.find("by_step_one.py"), std::string::npos) << first;
}

TEST_F(workflow_actor_test,
       a_single_item_listing_serves_the_next_prompt_and_a_group_is_walked) {
  // A step of one item brings the workspace's listing along (taken after
  // its agent): the next prompt uses it instead of walking the workspace.
  // After a parallel group the workspace is walked (each item listed it at
  // another time). The listings never reach the run's record.
  std::ofstream{root_ / "on_disk.py"} << "x = 1\n";
  auto prompts = std::make_shared<std::vector<std::string>>();
  step_config group{
    {step_item{"a", "implement", ""}, step_item{"b", "implement", ""}}};
  set_workflow({one("a", "implement"), group, one("a", "document")}, 1);
  auto cfg = std::make_shared<const config>(config_);
  std::map<std::string, agent_actor> agents{
    {"a", sys_.spawn(listing_agent, prompts)},
    {"b", sys_.spawn(listing_agent, prompts)}};
  auto wf = sys_.spawn(workflow_impl, cfg, agents);
  auto res = run_on(wf, agents);
  EXPECT_EQ(res.status, run_status::completed) << res.message;
  ASSERT_EQ(prompts->size(), 4u);
  // The first prompt: walked at the start.
  EXPECT_NE(prompts->at(0).find("- on_disk.py"), std::string::npos);
  EXPECT_EQ(prompts->at(0).find("listed/"), std::string::npos);
  // After step 1 (one item): its listing, not the disk.
  for (size_t i : {1u, 2u}) {
    EXPECT_NE(prompts->at(i).find("- listed/by_a.py"), std::string::npos)
      << prompts->at(i);
    EXPECT_EQ(prompts->at(i).find("on_disk.py"), std::string::npos);
  }
  // After the group: walked again.
  EXPECT_NE(prompts->at(3).find("- on_disk.py"), std::string::npos)
    << prompts->at(3);
  EXPECT_EQ(prompts->at(3).find("listed/"), std::string::npos);
  for (const auto& it : res.iterations)
    for (const auto& step : it.steps) {
      EXPECT_TRUE(step.workspace_files.empty());
      EXPECT_FALSE(step.listed);
    }
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

TEST_F(workflow_actor_test,
       a_long_output_is_saved_to_a_file_and_the_run_keeps_an_excerpt) {
  // 300 KiB of two-byte characters: a cut anywhere could split one.
  std::string big = "BEGIN\n";
  while (big.size() < 300 * 1024)
    big += "é";
  big += "\nEND";
  runner_->programs["impl"] = [big](int, const process_spec&) {
    return answer{big};
  };
  set_workflow({one("impl", "implement"), one("ref", "document")}, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::completed) << res.message;
  ASSERT_EQ(res.iterations.at(0).steps.size(), 2u);
  const auto& step = res.iterations[0].steps[0];
  EXPECT_EQ(step.output_file, ".orchestrator/outputs/run-1/i1-s1-1-impl.txt");
  const auto& text = step.outcome.final_text;
  EXPECT_LE(text.size(), max_inline_output + 200);
  EXPECT_EQ(text.rfind("BEGIN\n", 0), 0u);
  EXPECT_EQ(text.substr(text.size() - 4), "\nEND");
  EXPECT_NE(text.find("whole output in " + step.output_file),
            std::string::npos);
  std::ifstream saved{root_ / step.output_file, std::ios::binary};
  std::string whole{std::istreambuf_iterator<char>{saved}, {}};
  EXPECT_EQ(whole, big);
  // The manifest holds the excerpt, not the whole output.
  EXPECT_LT(fs::file_size(root_ / ".orchestrator" / "manifest.json"),
            200u * 1024);
  // The next prompt is built from the excerpt.
  auto ref = runner_->calls_to("ref");
  ASSERT_EQ(ref.size(), 1u);
  EXPECT_LT(prompt_of(ref[0]).size(), 100u * 1024);
}

TEST_F(workflow_actor_test,
       existing_files_that_cannot_be_saved_stop_the_run_before_any_step) {
  std::ofstream{root_ / "precious.txt"} << "mine\n";
  // The run's backup folder cannot be made: a file is in its place.
  fs::create_directories(root_ / ".orchestrator" / "backups");
  std::ofstream{root_ / ".orchestrator" / "backups" / "run-1"} << "x";
  set_workflow({one("impl", "implement")}, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::failed);
  EXPECT_EQ(res.message.rfind("existing files could not be saved: ", 0), 0u)
    << res.message;
  EXPECT_FALSE(res.preserve_error.empty());
  EXPECT_TRUE(runner_->calls.empty());
  EXPECT_TRUE(res.iterations.empty());
  EXPECT_TRUE(fs::exists(root_ / ".orchestrator" / "manifest.json"));
  std::ifstream now{root_ / "precious.txt"};
  std::string content{std::istreambuf_iterator<char>{now}, {}};
  EXPECT_EQ(content, "mine\n");
}

TEST_F(workflow_actor_test,
       an_agent_actor_that_dies_fails_its_step_as_crashed) {
  set_workflow({one("silent", "implement"), one("ref", "document")}, 1);
  auto cfg = std::make_shared<const config>(config_);
  auto silent = sys_.spawn(silent_agent);
  std::map<std::string, agent_actor> agents{{"silent", silent}};
  auto wf = sys_.spawn(workflow_impl, cfg, agents);
  caf::scoped_actor self{sys_};
  run_request req;
  req.run_id = "run-1";
  req.task = "build a thing";
  req.workflow = "wf";
  req.workspace = root_.string();
  auto rh = self->request(wf, caf::infinite, atom::run_task_v, req);
  sched_.run();
  // The step waits on the silent agent.
  ASSERT_FALSE(self->has_next_message());
  self->send_exit(silent, caf::exit_reason::kill);
  sched_.run();
  if (!self->has_next_message()) {
    ADD_FAILURE() << "the run never finished after its agent died";
    self->send_exit(wf, caf::exit_reason::kill);
    sched_.run();
    return;
  }
  rh.receive(
    [&](run_result& res) {
      EXPECT_EQ(res.status, run_status::failed);
      ASSERT_EQ(res.iterations.at(0).steps.size(), 1u);
      const auto& step = res.iterations[0].steps[0];
      EXPECT_EQ(step.outcome.failure, failure_kind::crashed);
      EXPECT_NE(step.outcome.message.find("silent: agent actor stopped"),
                std::string::npos)
        << step.outcome.message;
      EXPECT_TRUE(runner_->calls.empty());
    },
    [&](caf::error& e) {
      ADD_FAILURE() << sys_.render(e);
    });
}

TEST_F(workflow_actor_test,
       the_prompt_lists_regular_files_without_git_internals_or_links) {
  fs::create_directories(root_ / ".git" / "objects" / "ab");
  std::ofstream{root_ / ".git" / "HEAD"} << "ref: refs/heads/main\n";
  std::ofstream{root_ / ".git" / "objects" / "ab" / "cdef"} << "blob";
  fs::create_directories(root_ / "sub");
  std::ofstream{root_ / "sub" / ".git"} << "gitdir: ../.git/worktrees/sub\n";
  std::ofstream{root_ / "sub" / "x.py"} << "x = 1\n";
  std::ofstream{root_ / ".orchestrator-notes.md"} << "notes\n";
  std::ofstream{root_ / "real.py"} << "real\n";
  fs::create_symlink("real.py", root_ / "link.py");
  auto outside = root_.string() + "-outside";
  fs::create_directories(outside);
  std::ofstream{outside + "/secret.txt"} << "secret\n";
  fs::create_directory_symlink(outside, root_ / "linked");
  set_workflow({one("impl", "implement")}, 1);
  auto res = run();
  fs::remove_all(outside);
  auto calls = runner_->calls_to("impl");
  ASSERT_EQ(calls.size(), 1u);
  auto prompt = prompt_of(calls[0]);
  auto start = prompt.find("## Files in the workspace");
  ASSERT_NE(start, std::string::npos) << prompt;
  auto listing = prompt.substr(start);
  listing = listing.substr(0, listing.find("\n\nThis is iteration"));
  EXPECT_NE(listing.find("- .orchestrator-notes.md\n"), std::string::npos)
    << listing;
  EXPECT_NE(listing.find("- real.py\n"), std::string::npos) << listing;
  EXPECT_NE(listing.find("- sub/x.py"), std::string::npos) << listing;
  EXPECT_EQ(listing.find(".git"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("link.py"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("secret.txt"), std::string::npos) << listing;
  EXPECT_EQ(listing.find(".orchestrator/"), std::string::npos) << listing;
}

TEST_F(workflow_actor_test,
       parallel_items_keep_the_files_they_claim_and_share_conflicts) {
  // The items of a group run one after the other here, so the concurrent
  // windows are played out: "a" also writes b.py as if "b" had written it
  // during a's window, and "b" writes it again in its own.
  config_.agents.push_back(codex_agent("cx-a"));
  config_.agents.push_back(codex_agent("cx-b"));
  auto root = root_;
  runner_->programs["cx-a"] = [root](int, const process_spec&) {
    return answer{codex_output({(root / "a.py").string(), "shared.py"}, "a"),
                  0,
                  {{"a.py", "A\n"},
                   {"b.py", "B early\n"},
                   {"shared.py", "A\n"},
                   {"unclaimed.txt", "A\n"}}};
  };
  runner_->programs["cx-b"] = [](int, const process_spec&) {
    return answer{
      codex_output({"b.py", "./shared.py"}, "b"),
      0,
      {{"b.py", "B\n"}, {"shared.py", "B\n"}, {"unclaimed.txt", "B\n"}}};
  };
  step_config group{
    {step_item{"cx-a", "implement", ""}, step_item{"cx-b", "implement", ""}}};
  set_workflow({group}, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::completed) << res.message;
  ASSERT_EQ(res.iterations.at(0).steps.size(), 2u);
  const auto& a = res.iterations[0].steps[0];
  const auto& b = res.iterations[0].steps[1];
  ASSERT_EQ(a.agent, "cx-a");
  using strings = std::vector<std::string>;
  EXPECT_EQ(a.files, (strings{"a.py", "shared.py", "unclaimed.txt"}));
  EXPECT_EQ(b.files, (strings{"b.py", "shared.py", "unclaimed.txt"}));
  EXPECT_EQ(a.conflicts, (strings{"shared.py", "unclaimed.txt"}));
  EXPECT_EQ(b.conflicts, (strings{"shared.py", "unclaimed.txt"}));
  EXPECT_EQ(a.reported_files, (strings{"a.py", "shared.py"}));
  EXPECT_NE(res.message.find("shared.py"), std::string::npos) << res.message;
  EXPECT_EQ(res.files, (strings{"a.py", "b.py", "shared.py", "unclaimed.txt"}));
}

TEST_F(workflow_actor_test,
       parallel_items_writing_one_file_from_code_blocks_conflict) {
  runner_->programs["impl"] = [](int, const process_spec&) {
    return answer{"```python title=same.py\nfirst = 1\n```\n"};
  };
  runner_->programs["ref"] = [](int, const process_spec&) {
    return answer{"```python title=same.py\nsecond = 2\n```\n"
                  "```python title=own.py\nmine = 1\n```\n"};
  };
  step_config group{
    {step_item{"impl", "implement", ""}, step_item{"ref", "implement", ""}}};
  set_workflow({group}, 1);
  auto res = run();
  EXPECT_EQ(res.status, run_status::completed) << res.message;
  ASSERT_EQ(res.iterations.at(0).steps.size(), 2u);
  const auto& first = res.iterations[0].steps[0];
  const auto& second = res.iterations[0].steps[1];
  EXPECT_EQ(first.conflicts, std::vector<std::string>{"same.py"});
  EXPECT_EQ(second.conflicts, std::vector<std::string>{"same.py"});
  EXPECT_EQ(second.files, (std::vector<std::string>{"own.py", "same.py"}));
  EXPECT_EQ(first.files, std::vector<std::string>{"same.py"});
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
