// A small driver of the node pool for the worker node tests
// (tests/nodes/worker_nodes.sh): connects to the workers, submits N tasks to
// a node pool, waits for every result, optionally kill -9s a worker once K
// results are in, and prints a JSON summary: results per node, statuses,
// whether every task ended exactly once. Exit 0 when it did, 1 otherwise,
// 2 when no node could be used. --poison-after K: once K results are in,
// an OpenSSL error is left in the error queue of the middleman's
// multiplexer thread (what a TLS connection that died with a FIN leaves
// there), the cause of the surviving connection being dropped after a
// kill -9 (actors/tls_error_queue.hpp); no connection may drop for it.
// --stop-pid/--stop-after: SIGSTOP instead of SIGKILL (a peer gone without
// a FIN); "stop_detected_ms" is how long until a task started again.
// --node-timeout MS: the middleman heartbeat (enable_node_heartbeat).
// --reconnect 1: lost nodes are connected to again (backoff 0.2 s .. 1 s).
// --rejoin ADDRESS: once the tasks are done, rounds of 8 more until one
// ends on ADDRESS (a restarted worker rejoined) or 90 s pass; "rejoined"
// says whether, "rejoin_rounds" how many rounds it took.
// Usage: node_pool_harness --workers A,B --tasks N [--workflow W]
//          [--kill-pid PID --kill-after K] [--out-dir D]
//          [--poison-after K] [--stop-pid PID --stop-after K]
//          [--node-timeout MS] [--reconnect 1] [--rejoin ADDRESS]
//          [--tls-ca CA --tls-cert CERT --tls-key KEY]

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/multiplexer.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "actors/node.hpp"
#include "actors/node_pool.hpp"
#include "actors/system_config.hpp"
#include "actors/tls_error_queue.hpp"

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
  int poison_after = std::atoi(get("--poison-after", "0").c_str());
  int stop_pid = std::atoi(get("--stop-pid", "0").c_str());
  int stop_after = std::atoi(get("--stop-after", "0").c_str());
  int node_timeout_ms = std::atoi(get("--node-timeout", "0").c_str());
  auto rejoin_address = get("--rejoin");
  system_config cfg{false, true};
  if (tls.any())
    enable_tls(cfg, tls);
  if (node_timeout_ms > 0)
    enable_node_heartbeat(cfg, std::chrono::milliseconds{node_timeout_ms});
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
  if (get("--reconnect") == "1") {
    deps.connect = [use_tls = tls.any()](caf::actor_system& s,
                                         const std::string& address) {
      return connect_node(s, address, use_tls);
    };
    deps.reconnect_min = std::chrono::milliseconds{200};
    deps.reconnect_max = std::chrono::seconds{1};
  }
  auto pool = sys.spawn(node_pool_impl, links, deps);
  caf::scoped_actor self{sys};
  // run_started events: a task started more than once was requeued.
  self->send(pool, atom::subscribe_v, std::string{}, uint64_t{0},
             caf::actor_cast<progress_sink>(self));
  std::map<std::string, int> starts;
  std::vector<std::string> ids;
  int submitted_tasks = 0;
  auto submit = [&](int n) {
    for (int i = 0; i < n; ++i) {
      run_spec spec;
      spec.task = "task " + std::to_string(submitted_tasks++);
      spec.workflow = get("--workflow", "default");
      self->request(pool, std::chrono::seconds{10}, atom::submit_v, spec)
        .receive(
          [&](std::string& id) {
            ids.push_back(id);
            self->send(pool, atom::result_v, id);
          },
          [&](caf::error& e) {
            std::fprintf(stderr, "submit: %s\n", sys.render(e).c_str());
          });
    }
  };
  submit(tasks);
  using clock = std::chrono::steady_clock;
  std::optional<clock::time_point> stopped_at;
  int64_t stop_detected_ms = -1;
  std::map<std::string, int> seen;
  std::map<std::string, int> by_node;
  std::map<std::string, int> statuses;
  nlohmann::json failures = nlohmann::json::array();
  size_t received = 0;
  bool timed_out = false;
  auto await_all = [&] {
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
          if (poison_after > 0 && static_cast<int>(received) == poison_after) {
            sys.middleman().backend().post([] {
              ERR_raise(ERR_LIB_SSL, SSL_R_UNEXPECTED_EOF_WHILE_READING);
            });
            std::fprintf(stderr,
                         "poisoned the multiplexer thread's OpenSSL "
                         "error queue after %zu results\n",
                         received);
          }
          if (stop_pid > 0 && static_cast<int>(received) == stop_after) {
            ::kill(stop_pid, SIGSTOP);
            stopped_at = clock::now();
            std::fprintf(stderr, "stopped %d after %zu results\n", stop_pid,
                         received);
          }
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
          if (ev.kind == progress_event::kind_t::run_started
              && ++starts[ev.run_id] > 1 && stopped_at && stop_detected_ms < 0)
            stop_detected_ms
              = std::chrono::duration_cast<std::chrono::milliseconds>(
                  clock::now() - *stopped_at)
                  .count();
        },
        caf::after(std::chrono::seconds{60}) >>
          [&] {
            timed_out = true;
          });
    }
  };
  await_all();
  bool rejoined = false;
  int rejoin_rounds = 0;
  if (!rejoin_address.empty()) {
    auto deadline = clock::now() + std::chrono::seconds{90};
    while (!rejoined && !timed_out && clock::now() < deadline) {
      ++rejoin_rounds;
      auto before = by_node[rejoin_address];
      submit(8);
      await_all();
      rejoined = by_node[rejoin_address] > before;
    }
  }
  bool exactly_once = seen.size() == ids.size()
                      && static_cast<int>(ids.size()) == submitted_tasks;
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
  out["stop_detected_ms"] = stop_detected_ms;
  out["rejoined"] = rejoined;
  out["rejoin_rounds"] = rejoin_rounds;
  out["tls_guard"] = tls_error_queue_guard_active();
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  return exactly_once && !timed_out ? 0 : 1;
}
