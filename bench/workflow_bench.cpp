// Measures the orchestrator's overhead against a baseline taken in the same
// run on the same machine:
//  1. a 3-step workflow (three agent actors, one workflow-run actor, the
//     posix runner) with an instant agent, against 3 raw posix_spawn+wait
//     of the same agent;
//  2. CLI start-up (`--version`, `agents`) against spawning /bin/true.
// Prints medians and ratios. Usage: workflow_bench [runs]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include "actors/agent_actor.hpp"
#include "actors/system_config.hpp"
#include "actors/workflow_actor.hpp"
#include "config/config.hpp"

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0)
    .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

/// The baseline: spawn `argv` with stdin/stdout on /dev/null and wait.
void raw_spawn(const std::vector<std::string>& argv) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
  }
  posix_spawn_file_actions_destroy(&fa);
}

orch::config bench_config(const std::string& agent_path) {
  orch::config cfg;
  for (auto name : {"a1", "a2", "a3"}) {
    orch::agent_config a;
    a.name = name;
    a.kind = orch::adapter_kind::command;
    a.command = agent_path;
    a.limits.first_output = std::chrono::seconds{10};
    a.limits.idle = std::chrono::seconds{10};
    a.limits.total = std::chrono::seconds{10};
    cfg.agents.push_back(a);
  }
  orch::workflow_config wf;
  wf.name = "bench";
  wf.max_iterations = 1;
  wf.steps = {{{{"a1", "implement", ""}}},
              {{{"a2", "test", ""}}},
              {{{"a3", "document", ""}}}};
  cfg.workflows.push_back(wf);
  return cfg;
}

} // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 30;
  std::string agent = std::string{ORCH_BENCH_DIR} + "/instant-agent";
  std::string cli = ORCH_CLI_BINARY;
  auto tmp = std::filesystem::temp_directory_path() / "orch-bench";
  std::filesystem::remove_all(tmp);
  std::filesystem::create_directories(tmp);

  // -- 1. workflow vs raw spawns ---------------------------------------------
  auto cfg = std::make_shared<orch::config>(bench_config(agent));
  orch::system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  orch::agent_deps deps;
  deps.runner = orch::make_posix_process_runner();
  std::map<std::string, orch::agent_actor> agents;
  for (auto& a : cfg->agents)
    agents.emplace(a.name, sys.spawn(orch::agent_impl, a, deps));
  caf::scoped_actor self{sys};
  std::vector<double> wf_ms, raw_ms;
  for (int i = 0; i < runs; ++i) {
    auto ws = tmp / ("run" + std::to_string(i));
    std::filesystem::create_directories(ws);
    auto run = sys.spawn(orch::workflow_impl, cfg, agents);
    orch::run_request req;
    req.run_id = "bench" + std::to_string(i);
    req.task = "benchmark task";
    req.workflow = "bench";
    req.workspace = ws.string();
    auto t0 = clock_type::now();
    bool ok = false;
    self->request(run, caf::infinite, orch::atom::run_task_v, req)
      .receive(
        [&](orch::run_result& r) {
          ok = r.status == orch::run_status::completed;
        },
        [&](caf::error&) {});
    wf_ms.push_back(ms_since(t0));
    if (!ok) {
      std::fprintf(stderr, "workflow run %d did not complete\n", i);
      return 1;
    }
    t0 = clock_type::now();
    for (int k = 0; k < 3; ++k)
      raw_spawn({agent});
    raw_ms.push_back(ms_since(t0));
  }
  for (auto& kvp : agents)
    self->send_exit(kvp.second, caf::exit_reason::user_shutdown);
  auto wf = median(wf_ms);
  auto raw = median(raw_ms);
  std::printf("3-step workflow, instant agent (%d runs, medians)\n", runs);
  std::printf("  orchestrated workflow   %8.2f ms\n", wf);
  std::printf("  3 x raw posix_spawn     %8.2f ms\n", raw);
  std::printf("  ratio                   %8.2fx\n", raw > 0 ? wf / raw : 0);

  // -- 2. CLI start-up --------------------------------------------------------
  auto demo = std::string{ORCH_BENCH_DIR} + "/../examples/demo.yaml";
  std::vector<double> true_ms, version_ms, agents_ms;
  for (int i = 0; i < runs; ++i) {
    auto t0 = clock_type::now();
    raw_spawn({"/bin/true"});
    true_ms.push_back(ms_since(t0));
    t0 = clock_type::now();
    raw_spawn({cli, "--version"});
    version_ms.push_back(ms_since(t0));
    t0 = clock_type::now();
    raw_spawn({cli, "agents", "--config", demo});
    agents_ms.push_back(ms_since(t0));
  }
  auto base = median(true_ms);
  std::printf("CLI start-up (%d runs, medians)\n", runs);
  std::printf("  /bin/true               %8.2f ms\n", base);
  std::printf("  ai-orchestrator --version %6.2f ms  (%.1fx)\n",
              median(version_ms), base > 0 ? median(version_ms) / base : 0);
  std::printf("  ai-orchestrator agents  %8.2f ms  (%.1fx; probes 4 demo "
              "agents' --version)\n",
              median(agents_ms), base > 0 ? median(agents_ms) / base : 0);
  std::filesystem::remove_all(tmp);
  return 0;
}
