// A small driver of the node pool for the worker node tests
// (tests/nodes/worker_nodes.sh): connects to the workers, submits N tasks to
// a node pool, waits for every result, optionally kill -9s a worker once K
// results are in, and prints a JSON summary: results per node, statuses,
// whether every task ended exactly once. Exit 0 when it did, 1 otherwise,
// 2 when no node could be used.
// Usage: node_pool_harness --workers A,B --tasks N [--workflow W]
//          [--kill-pid PID --kill-after K] [--out-dir D]
//          [--tls-ca CA --tls-cert CERT --tls-key KEY]

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/node.hpp"
#include "actors/node_pool.hpp"
#include "actors/system_config.hpp"

int main(int argc, char** argv) {
  using namespace orch;
  std::map<std::string, std::string> opt;
  for (int i = 1; i + 1 < argc; i += 2)
    opt[argv[i]] = argv[i + 1];
  auto get = [&](const char* k, const char* dflt = "") {
    auto it = opt.find(k);
    return it == opt.end() ? std::string{dflt} : it->second;
  };
  tls_files tls{get("--tls-ca"), get("--tls-cert"), get("--tls-key")};
  int tasks = std::atoi(get("--tasks", "10").c_str());
  int kill_pid = std::atoi(get("--kill-pid", "0").c_str());
  int kill_after = std::atoi(get("--kill-after", "0").c_str());
  system_config cfg{false, true};
  if (tls.any())
    enable_tls(cfg, tls);
  caf::actor_system sys{cfg};
  std::vector<node_link> links;
  size_t usable = 0;
  for (auto& a : split_addresses(get("--workers"))) {
    links.push_back(connect_node(sys, a, tls.any()));
    if (links.back().error.empty())
      ++usable;
    else
      std::fprintf(stderr, "error: %s\n", links.back().error.c_str());
  }
  if (usable == 0)
    return 2;
  node_pool_deps deps;
  deps.out_dir = get("--out-dir");
  auto pool = sys.spawn(node_pool_impl, links, deps);
  caf::scoped_actor self{sys};
  // run_started events: a task started more than once was requeued.
  self->send(pool, atom::subscribe_v, std::string{}, uint64_t{0},
             caf::actor_cast<progress_sink>(self));
  std::map<std::string, int> starts;
  std::vector<std::string> ids;
  for (int i = 0; i < tasks; ++i) {
    run_spec spec;
    spec.task = "task " + std::to_string(i);
    spec.workflow = get("--workflow", "default");
    self->request(pool, std::chrono::seconds{10}, atom::submit_v, spec)
      .receive(
        [&](std::string& id) {
          ids.push_back(id);
        },
        [&](caf::error& e) {
          std::fprintf(stderr, "submit: %s\n", sys.render(e).c_str());
        });
  }
  for (auto& id : ids)
    self->send(pool, atom::result_v, id);
  std::map<std::string, int> seen;
  std::map<std::string, int> by_node;
  std::map<std::string, int> statuses;
  nlohmann::json failures = nlohmann::json::array();
  size_t received = 0;
  bool timed_out = false;
  while (received < ids.size() && !timed_out) {
    self->receive(
      [&](run_result& res) {
        ++received;
        ++seen[res.run_id];
        ++statuses[to_string(res.status)];
        auto ws = res.workspace;
        // "<host>:<port>:<path>" without --out-dir.
        auto second = ws.find(':', ws.find(':') + 1);
        ++by_node[deps.out_dir.empty() ? ws.substr(0, second) : "out-dir"];
        if (res.status == run_status::failed)
          failures.push_back(res.message);
        if (kill_pid > 0 && static_cast<int>(received) == kill_after) {
          ::kill(kill_pid, SIGKILL);
          std::fprintf(stderr, "killed %d after %zu results\n", kill_pid,
                       received);
        }
      },
      [&](caf::error& e) {
        ++received;
        failures.push_back(sys.render(e));
      },
      [&](atom::progress, progress_event& ev) {
        if (ev.kind == progress_event::kind_t::run_started)
          ++starts[ev.run_id];
      },
      caf::after(std::chrono::seconds{60}) >>
        [&] {
          timed_out = true;
        });
  }
  bool exactly_once = seen.size() == ids.size()
                      && static_cast<int>(ids.size()) == tasks;
  for (auto& kvp : seen)
    exactly_once = exactly_once && kvp.second == 1;
  nlohmann::json out;
  out["submitted"] = ids.size();
  out["results"] = received;
  out["exactly_once"] = exactly_once;
  out["timed_out"] = timed_out;
  out["by_node"] = by_node;
  out["statuses"] = statuses;
  out["failures"] = failures;
  int requeued = 0;
  for (auto& kvp : starts)
    requeued += kvp.second > 1 ? 1 : 0;
  out["requeued"] = requeued;
  out["ids"] = ids;
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  return exactly_once && !timed_out ? 0 : 1;
}
