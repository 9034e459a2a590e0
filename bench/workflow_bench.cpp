// Measures the orchestrator's overhead against baselines taken in the same
// run on the same machine:
//  1. a 3-step workflow (three agent actors, one workflow-run actor, the
//     posix runner) with an instant agent, against 3 raw posix_spawn+wait
//     of the same agent; and, to show the guard's share, the same workflow
//     with one guard started per call (ORCH_AGENT_GUARD_POOL=0, as before
//     the serving guards) and without any guard, 3 raw spawns through a
//     guard started per call, and 3 calls of the process runner alone (a
//     step's process before any actor, snapshot or manifest);
//  2. the default workflow (implement, review, refine; 3 iterations = 9
//     calls) on instant fake agents, against the same 9 calls back to back;
//  3. one step on a workspace of 10,000 files (100 MB), against the agent's
//     own time in that step (the process runner's wall time, guard included)
//     and a raw spawn; the first step (nothing cached: every file hashed) is
//     shown apart, and so are the snapshots alone;
//  4. CLI start-up (`--version`, `agents`) against spawning /bin/true.
// Prints medians and ratios. Usage: workflow_bench [runs] [section 1-4]
// (one section only, e.g. under a profiler).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/agent_actor.hpp"
#include "actors/system_config.hpp"
#include "actors/workflow_actor.hpp"
#include "config/config.hpp"
#include "runtime/process.hpp"
#include "runtime/snapshot_watch.hpp"
#include "runtime/workspace.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0)
    .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}

/// The baseline: spawn `argv` with stdin/stdout on /dev/null and wait.
/// `guard_env` adds entries to the environment and gives the child a
/// descriptor 3 (the agent guard's status descriptor, here /dev/null).
void raw_spawn(const std::vector<std::string>& argv,
               const std::vector<std::string>& guard_env = {}) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  std::vector<char*> env;
  if (!guard_env.empty()) {
    posix_spawn_file_actions_addopen(&fa, 3, "/dev/null", O_WRONLY, 0);
    for (char** e = environ; *e != nullptr; ++e)
      env.push_back(*e);
    for (auto& e : guard_env)
      env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
  }
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(),
                  env.empty() ? environ : env.data())
      == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
  }
  posix_spawn_file_actions_destroy(&fa);
}

/// Spawns `agent` through the agent guard, as the runner does (the guard
/// forks and execs it, sweeps for the run's marker, exits as it did).
void guarded_spawn(const std::string& agent, int n) {
  raw_spawn({ORCH_GUARD_BINARY, std::to_string(::getpid()), "3", agent, agent},
            {"ORCH_RUN_MARKER=bench-" + std::to_string(n)});
}

/// Adds up the wall time of the runs it passes on: the agents' own time as
/// the orchestrator sees it (spawn, guard, output, wait).
class timed_runner final : public orch::process_runner {
public:
  explicit timed_runner(std::shared_ptr<orch::process_runner> inner)
    : inner_{std::move(inner)} {}

  orch::process_result run(const orch::process_spec& spec,
                           const orch::line_callback& on_line,
                           const orch::cancel_token* cancel) override {
    auto t0 = clock_type::now();
    auto res = inner_->run(spec, on_line, cancel);
    std::lock_guard<std::mutex> guard{mutex_};
    total_ms_ += ms_since(t0);
    return res;
  }

  /// Returns the time added up since the last call.
  double take_ms() {
    std::lock_guard<std::mutex> guard{mutex_};
    return std::exchange(total_ms_, 0.0);
  }

private:
  std::shared_ptr<orch::process_runner> inner_;
  std::mutex mutex_;
  double total_ms_ = 0;
};

orch::agent_config instant(std::string name, const std::string& command) {
  orch::agent_config a;
  a.name = std::move(name);
  a.kind = orch::adapter_kind::command;
  a.command = command;
  a.limits.first_output = std::chrono::seconds{10};
  a.limits.idle = std::chrono::seconds{10};
  a.limits.total = std::chrono::seconds{10};
  return a;
}

orch::config bench_config(const std::string& agent_path) {
  orch::config cfg;
  for (auto name : {"a1", "a2", "a3"})
    cfg.agents.push_back(instant(name, agent_path));
  orch::workflow_config wf;
  wf.name = "bench";
  wf.max_iterations = 1;
  wf.steps = {{{{"a1", "implement", ""}}},
              {{{"a2", "test", ""}}},
              {{{"a3", "document", ""}}}};
  cfg.workflows.push_back(wf);
  return cfg;
}

/// The built-in configuration with every agent replaced by an instant one;
/// the reviewer always finds something new, so `default` runs its 3
/// iterations (9 calls).
orch::config default_config(const std::string& agent_path,
                            const std::string& reviewer_path) {
  orch::config cfg = orch::builtin_config();
  for (auto& a : cfg.agents)
    a = instant(a.name, a.name == "gemini" ? reviewer_path : agent_path);
  return cfg;
}

using agent_map = std::map<std::string, orch::agent_actor>;

agent_map spawn_agents(caf::actor_system& sys, const orch::config& cfg,
                       const orch::agent_deps& deps) {
  agent_map out;
  for (auto& a : cfg.agents)
    out.emplace(a.name, sys.spawn(orch::agent_impl, a, deps));
  return out;
}

void stop_agents(caf::scoped_actor& self, const agent_map& agents) {
  for (auto& kvp : agents)
    self->send_exit(kvp.second, caf::exit_reason::user_shutdown);
}

/// Runs `workflow` on a fresh workspace; returns the number of steps that
/// ran, or -1 when the run ended with another status than `expected`.
int run_workflow(caf::actor_system& sys, caf::scoped_actor& self,
                 const std::shared_ptr<orch::config>& cfg,
                 const agent_map& agents, const std::string& workflow,
                 const fs::path& ws, const std::string& id,
                 orch::run_status expected) {
  fs::create_directories(ws);
  // As the coordinator runs it: the file work on the run's own thread.
  orch::workflow_deps wdeps;
  wdeps.detached_workers = true;
  auto run = sys.spawn(orch::workflow_run_impl, cfg, agents, wdeps);
  orch::run_request req;
  req.run_id = id;
  req.task = "benchmark task";
  req.workflow = workflow;
  req.workspace = ws.string();
  int steps = -1;
  self->request(run, caf::infinite, orch::atom::run_task_v, req)
    .receive(
      [&](orch::run_result& r) {
        if (r.status != expected) {
          std::fprintf(stderr, "run %s: %s: %s\n", id.c_str(),
                       orch::to_string(r.status).c_str(), r.message.c_str());
          return;
        }
        steps = 0;
        for (auto& it : r.iterations)
          steps += static_cast<int>(it.steps.size());
      },
      [&](caf::error&) {});
  return steps;
}

/// Fills `root` with `folders` x `files` files of `size` bytes each, with
/// different contents.
void make_tree(const fs::path& root, int folders, int files, std::size_t size) {
  std::string buf(size, '\0');
  std::uint64_t x = 88172645463325252ULL;
  for (int d = 0; d < folders; ++d) {
    auto dir = root / ("dir" + std::to_string(d));
    fs::create_directories(dir);
    for (int f = 0; f < files; ++f) {
      for (auto& c : buf) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c = static_cast<char>('a' + x % 26);
      }
      auto p = dir / ("file" + std::to_string(f) + ".txt");
      int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
      if (fd < 0 || ::write(fd, buf.data(), buf.size()) < 0) {
        std::perror(p.c_str());
        std::exit(1);
      }
      ::close(fd);
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 30;
  int only = argc > 2 ? std::atoi(argv[2]) : 0;
  auto wanted = [only](int section) {
    return only == 0 || only == section;
  };
  std::string agent = std::string{ORCH_BENCH_DIR} + "/instant-agent";
  std::string reviewer = std::string{ORCH_BENCH_DIR} + "/instant-reviewer";
  std::string cli = ORCH_CLI_BINARY;
  auto tmp = fs::temp_directory_path()
             / ("orch-bench-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  orch::system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  caf::scoped_actor self{sys};
  auto timed
    = std::make_shared<timed_runner>(orch::make_posix_process_runner());
  orch::agent_deps deps;
  deps.runner = timed;

  // -- 1. 3-step workflow vs raw spawns ---------------------------------------
  if (wanted(1)) {
    auto cfg = std::make_shared<orch::config>(bench_config(agent));
    auto agents = spawn_agents(sys, *cfg, deps);
    std::vector<double> wf_ms, bare_ms, raw_ms, guarded_ms, per_call_ms,
      runner_ms;
    auto runner = orch::make_posix_process_runner();
    orch::process_spec runner_spec;
    runner_spec.argv = {agent};
    // The environment the raw spawns get (PATH and locale make the agent
    // slower or faster by about 1 ms here).
    for (char** e = environ; *e != nullptr; ++e)
      runner_spec.env.emplace_back(*e);
    runner_spec.stdin_data = "benchmark task";
    runner_spec.cwd = tmp.string();
    for (int i = 0; i < runs; ++i) {
      auto id = "bench" + std::to_string(i);
      auto t0 = clock_type::now();
      if (run_workflow(sys, self, cfg, agents, "bench", tmp / id, id,
                       orch::run_status::completed)
          != 3)
        return 1;
      wf_ms.push_back(ms_since(t0));
      // The same without the guard process (read at each spawn; nothing
      // runs while it is changed).
      ::setenv("ORCH_AGENT_GUARD", "none", 1);
      id = "bare" + std::to_string(i);
      t0 = clock_type::now();
      int steps = run_workflow(sys, self, cfg, agents, "bench", tmp / id, id,
                               orch::run_status::completed);
      bare_ms.push_back(ms_since(t0));
      ::unsetenv("ORCH_AGENT_GUARD");
      if (steps != 3)
        return 1;
      ::setenv("ORCH_AGENT_GUARD_POOL", "0", 1);
      id = "percall" + std::to_string(i);
      t0 = clock_type::now();
      steps = run_workflow(sys, self, cfg, agents, "bench", tmp / id, id,
                           orch::run_status::completed);
      per_call_ms.push_back(ms_since(t0));
      ::unsetenv("ORCH_AGENT_GUARD_POOL");
      if (steps != 3)
        return 1;
      t0 = clock_type::now();
      for (int k = 0; k < 3; ++k)
        raw_spawn({agent});
      raw_ms.push_back(ms_since(t0));
      t0 = clock_type::now();
      for (int k = 0; k < 3; ++k)
        guarded_spawn(agent, i * 3 + k);
      guarded_ms.push_back(ms_since(t0));
      // The process runner alone, as a step calls it (the prompt on stdin,
      // stdout and stderr read, the serving guard, the sweep).
      t0 = clock_type::now();
      for (int k = 0; k < 3; ++k)
        runner->run(runner_spec, {}, nullptr);
      runner_ms.push_back(ms_since(t0));
    }
    stop_agents(self, agents);
    auto wf = median(wf_ms);
    auto bare = median(bare_ms);
    auto raw = median(raw_ms);
    std::printf("3-step workflow, instant agent (%d runs, medians)\n", runs);
    std::printf("  orchestrated workflow     %8.2f ms\n", wf);
    std::printf("  3 x raw posix_spawn       %8.2f ms\n", raw);
    std::printf("  ratio                     %8.2fx  (target 1.10x)\n",
                ratio(wf, raw));
    std::printf("  a guard started per call  %8.2f ms  (%.2fx)\n",
                median(per_call_ms), ratio(median(per_call_ms), raw));
    std::printf("  without the agent guard   %8.2f ms  (%.2fx)\n", bare,
                ratio(bare, raw));
    std::printf("  3 x raw spawn via guard   %8.2f ms  (%.2fx)\n",
                median(guarded_ms), ratio(median(guarded_ms), raw));
    std::printf("  3 x process runner alone  %8.2f ms  (%.2fx)\n",
                median(runner_ms), ratio(median(runner_ms), raw));
  }

  // -- 2. default workflow, 9 calls, vs the 9 calls back to back -------------
  if (wanted(2)) {
    auto cfg = std::make_shared<orch::config>(default_config(agent, reviewer));
    auto agents = spawn_agents(sys, *cfg, deps);
    std::vector<double> wf_ms, raw_ms;
    for (int i = 0; i < runs; ++i) {
      auto id = "default" + std::to_string(i);
      auto t0 = clock_type::now();
      int steps = run_workflow(sys, self, cfg, agents, "default", tmp / id, id,
                               orch::run_status::max_iterations);
      wf_ms.push_back(ms_since(t0));
      if (steps != 9) {
        std::fprintf(stderr, "default workflow: %d steps, not 9\n", steps);
        return 1;
      }
      t0 = clock_type::now();
      for (int k = 0; k < 3; ++k) {
        raw_spawn({agent});
        raw_spawn({reviewer});
        raw_spawn({agent});
      }
      raw_ms.push_back(ms_since(t0));
    }
    stop_agents(self, agents);
    auto wf = median(wf_ms);
    auto raw = median(raw_ms);
    std::printf("default workflow, 9 instant calls (%d runs, medians)\n", runs);
    std::printf("  orchestrated workflow     %8.2f ms\n", wf);
    std::printf("  9 x raw posix_spawn       %8.2f ms\n", raw);
    std::printf("  ratio                     %8.2fx  (target 2x)\n",
                ratio(wf, raw));
  }

  // -- 3. one step on 10,000 files (100 MB) -----------------------------------
  if (wanted(3)) {
    auto ws = tmp / "big";
    make_tree(ws, 100, 100, 10'000);
    orch::config cfg;
    cfg.agents.push_back(instant("a1", agent));
    auto agents = spawn_agents(sys, cfg, deps);
    auto step = [&](int i, double& agent_ms) {
      orch::step_request req;
      req.run_id = "big" + std::to_string(i);
      req.agent = "a1";
      req.task_kind = "implement";
      req.prompt = "benchmark task";
      req.workspace = ws.string();
      timed->take_ms();
      auto t0 = clock_type::now();
      bool ok = false;
      self->request(agents.at("a1"), caf::infinite, orch::atom::run_step_v, req)
        .receive(
          [&](orch::step_result& r) {
            ok = r.outcome.ok;
          },
          [&](caf::error&) {});
      double ms = ms_since(t0);
      agent_ms = timed->take_ms();
      if (!ok) {
        std::fprintf(stderr, "step %d on the big workspace failed\n", i);
        std::exit(1);
      }
      return ms;
    };
    double cold_agent = 0;
    double cold = step(0, cold_agent);
    std::vector<double> step_ms, agent_ms, over_ms, raw_ms;
    for (int i = 1; i <= runs; ++i) {
      double own = 0;
      double ms = step(i, own);
      step_ms.push_back(ms);
      agent_ms.push_back(own);
      over_ms.push_back(ms - own);
      auto t0 = clock_type::now();
      raw_spawn({agent});
      raw_ms.push_back(ms_since(t0));
    }
    stop_agents(self, agents);
    // The snapshots alone: every file hashed, then every file reused.
    std::vector<double> full_ms, reuse_ms, watched_ms;
    orch::snapshot_stats full_stats;
    orch::snapshot_stats reuse_stats;
    for (int i = 0; i < std::min(runs, 5); ++i) {
      orch::snapshot_options options;
      options.stats = &full_stats;
      auto t0 = clock_type::now();
      auto first = orch::snapshot_files(ws, options);
      full_ms.push_back(ms_since(t0));
      options.previous = &first;
      options.stats = &reuse_stats;
      t0 = clock_type::now();
      orch::snapshot_files(ws, options);
      reuse_ms.push_back(ms_since(t0));
    }
    // The snapshot before a step when nothing changed since the last one:
    // the inotify watch says so, no walk.
    orch::watched_snapshot_cache watched;
    watched.take(ws, false);
    bool from_watch = true;
    for (int i = 0; i < runs; ++i) {
      auto t0 = clock_type::now();
      watched.take(ws, true);
      watched_ms.push_back(ms_since(t0));
      from_watch = from_watch && watched.last_from_watch();
    }
    std::printf("one step on 10,000 files / 100 MB (%d runs, medians)\n", runs);
    std::printf("  step                      %8.2f ms\n", median(step_ms));
    std::printf("  agent's own time in it    %8.2f ms\n", median(agent_ms));
    std::printf("  step minus agent          %8.2f ms  (target 50 ms)\n",
                median(over_ms));
    std::printf("  raw posix_spawn of agent  %8.2f ms\n", median(raw_ms));
    std::printf("  first step, nothing cached %7.2f ms  (agent %.2f ms)\n",
                cold, cold_agent);
    std::printf("  snapshot, all hashed      %8.2f ms  (%zu files, %ju MB)\n",
                median(full_ms), full_stats.hashed,
                full_stats.bytes_hashed / 1'000'000);
    std::printf("  snapshot, all reused      %8.2f ms  (%zu hashed)\n",
                median(reuse_ms), reuse_stats.hashed);
    std::printf("  snapshot, unchanged tree  %8.2f ms  (%s)\n",
                median(watched_ms),
                from_watch ? "inotify: no walk" : "walked: no watch");
  }

  // -- 4. CLI start-up --------------------------------------------------------
  if (wanted(4)) {
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
    std::printf("  /bin/true                 %8.2f ms\n", base);
    std::printf("  ai-orchestrator --version %8.2f ms  (%.1fx)\n",
                median(version_ms), ratio(median(version_ms), base));
    std::printf("  ai-orchestrator agents    %8.2f ms  (%.1fx; probes 4 demo "
                "agents' --version)\n",
                median(agents_ms), ratio(median(agents_ms), base));
  }
  fs::remove_all(tmp);
  return 0;
}
