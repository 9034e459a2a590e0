// The step cache's hit latency (issue 12, part 6): one step on a workspace of
// 100 files whose agent writes 100 files of 1 KiB, run for real (agent
// process through the posix runner and the guard, snapshots, file
// detection) against the same step answered by the cache: from memory (the
// cache actor already holds the entry) and from disk (a fresh cache actor
// reads `<state>/cache/<key>.entry`). Every step runs through an agent actor
// on a fresh workspace with the same content. Prints medians and ratios.
// Usage: cache_bench [runs]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <stdlib.h>

#include "actors/agent_actor.hpp"
#include "actors/cache_actor.hpp"
#include "actors/cached_step.hpp"
#include "actors/system_config.hpp"
#include "runtime/process.hpp"
#include "runtime/workspace.hpp"

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

/// A workspace with 100 files of 1 KiB, the same content every time.
fs::path fresh_workspace(const fs::path& base, int n) {
  auto ws = base / ("ws-" + std::to_string(n));
  fs::create_directories(ws / "src");
  for (int i = 0; i < 100; ++i) {
    std::ofstream out{ws / "src" / ("in" + std::to_string(i) + ".txt")};
    out << std::string(1023, static_cast<char>('a' + i % 26)) << '\n';
  }
  return ws;
}

orch::step_request request_for(const fs::path& ws, int n, bool no_cache) {
  orch::step_request req;
  req.run_id = "bench-" + std::to_string(n);
  req.agent = "writer";
  req.task_kind = "implement";
  req.prompt = "Task kind: implement\n\nWrite 100 files in " + ws.string()
               + "\n\nThis is iteration 1.\n";
  req.workspace = ws.string();
  req.no_cache = no_cache;
  return req;
}

/// Runs one step; returns its wall time in ms, or -1 when it failed or its
/// `cached` flag is not `want_cached`.
double run_step(caf::scoped_actor& self, const orch::agent_actor& agent,
                const orch::step_request& req, bool want_cached) {
  double ms = -1;
  auto t0 = clock_type::now();
  self->request(agent, caf::infinite, orch::atom::run_step_v, req)
    .receive(
      [&](orch::step_result& res) {
        auto elapsed = ms_since(t0);
        if (!res.outcome.ok || res.cached != want_cached
            || res.files.size() != 100) {
          std::fprintf(stderr, "step %s: ok=%d cached=%d files=%zu: %s\n",
                       req.run_id.c_str(), res.outcome.ok, res.cached,
                       res.files.size(), res.outcome.message.c_str());
          return;
        }
        ms = elapsed;
      },
      [&](caf::error&) {});
  return ms;
}

} // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
  std::string tmpl
    = (fs::temp_directory_path() / "orch-cache-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  fs::path base = tmpl;
  orch::system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  orch::agent_config writer;
  writer.name = "writer";
  writer.kind = orch::adapter_kind::command;
  writer.command = std::string{ORCH_BENCH_DIR} + "/hundred-files-agent";
  writer.limits.first_output = std::chrono::seconds{30};
  writer.limits.idle = std::chrono::seconds{30};
  writer.limits.total = std::chrono::seconds{30};
  orch::cache_deps cdeps;
  cdeps.state_dir = base / "state";
  auto spawn_cache = [&] {
    return sys.spawn<caf::detached>(orch::cache_impl, cdeps);
  };
  auto cache = spawn_cache();
  orch::agent_deps deps;
  deps.runner = orch::make_posix_process_runner();
  deps.cache = cache;
  auto agent = sys.spawn(orch::agent_impl, writer, deps);
  int n = 0;
  bool failed = false;
  auto measure = [&](bool no_cache, bool want_cached, bool fresh_cache) {
    std::vector<double> out;
    for (int i = 0; i < runs; ++i) {
      auto ws = fresh_workspace(base, n);
      auto req = request_for(ws, n++, no_cache);
      if (fresh_cache) {
        // An empty memory: the entry comes from disk.
        self->send_exit(cache, caf::exit_reason::user_shutdown);
        self->send_exit(agent, caf::exit_reason::user_shutdown);
        cache = spawn_cache();
        deps.cache = cache;
        agent = sys.spawn(orch::agent_impl, writer, deps);
      }
      auto ms = run_step(self, agent, req, want_cached);
      if (ms < 0)
        failed = true;
      else
        out.push_back(ms);
      fs::remove_all(ws);
    }
    return median(out);
  };
  // Prime: the first cached run stores the entry.
  if (run_step(self, agent, request_for(fresh_workspace(base, n), n, false),
               false)
      < 0)
    failed = true;
  ++n;
  auto real = measure(true, false, false);
  auto memory_hit = measure(false, true, false);
  auto disk_hit = measure(false, true, true);
  // Where a hit's time goes: the before-snapshot and the key, the lookup
  // (a round trip to the cache actor, the entry copied), and the replay.
  std::vector<double> snap_ms;
  std::vector<double> lookup_ms;
  std::vector<double> replay_ms;
  for (int i = 0; i < runs; ++i) {
    auto ws = fresh_workspace(base, n);
    auto req = request_for(ws, n++, false);
    auto t0 = clock_type::now();
    auto before = orch::snapshot_files(ws);
    auto key = orch::step_key(writer, req, before);
    snap_ms.push_back(ms_since(t0));
    orch::cache_lookup found;
    t0 = clock_type::now();
    self->request(cache, caf::infinite, orch::atom::cache_get_v, key)
      .receive(
        [&](orch::cache_lookup& x) {
          found = std::move(x);
        },
        [&](caf::error&) {});
    lookup_ms.push_back(ms_since(t0));
    if (!found.hit) {
      failed = true;
      continue;
    }
    t0 = clock_type::now();
    auto res = orch::replay_step(found.entry, req);
    replay_ms.push_back(ms_since(t0));
    if (res.files.size() != 100)
      failed = true;
    fs::remove_all(ws);
  }
  self->send_exit(agent, caf::exit_reason::user_shutdown);
  self->send_exit(cache, caf::exit_reason::user_shutdown);
  std::printf("step on 100 files writing 100 files of 1 KiB, median of %d "
              "runs each\n",
              runs);
  std::printf("  run for real (--no-cache): %8.2f ms\n", real);
  std::printf("  cache hit from memory:     %8.2f ms  (%.1fx faster)\n",
              memory_hit, memory_hit > 0 ? real / memory_hit : 0.0);
  std::printf("  cache hit from disk:       %8.2f ms  (%.1fx faster)\n",
              disk_hit, disk_hit > 0 ? real / disk_hit : 0.0);
  std::printf("  of a hit: snapshot + key %.2f ms, lookup %.2f ms, replay "
              "(100 writes) %.2f ms\n",
              median(snap_ms), median(lookup_ms), median(replay_ms));
  std::error_code ec;
  fs::remove_all(base, ec);
  if (failed) {
    std::fprintf(stderr, "some steps failed or were not (un)cached as "
                         "expected\n");
    return 1;
  }
  return 0;
}
