// Tasks per second through a node pool to one worker node on loopback
// (two actor systems in this process, connected over the middleman, with
// and without TLS), against the same tasks on a local coordinator in the
// same run. Each task is a whole run of a one-step workflow with an
// instant fake agent (bench/instant-agent): workspace, snapshots,
// manifest and the process included on both sides, so the difference is
// the node's share (the hop, the handshake per run, the files sent back).
// Usage: node_bench [tasks] [slots]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <unistd.h>

#include "actors/coordinator.hpp"
#include "actors/node.hpp"
#include "actors/node_pool.hpp"
#include "actors/system_config.hpp"
#include "config/config.hpp"

namespace {

namespace fs = std::filesystem;
using namespace orch;
using clock_type = std::chrono::steady_clock;

std::shared_ptr<const config> make_config(const fs::path& ws, int slots) {
  std::string yaml = "agents:\n  instant:\n    adapter: command\n"
                     "    command: " ORCH_BENCH_DIR "/instant-agent\n"
                     "    max_concurrency: "
                     + std::to_string(slots)
                     + "\nworkflows:\n  default:\n"
                       "    - {agent: instant, task: implement}\n"
                       "settings:\n  workspace_dir: "
                     + ws.string() + "\n";
  auto res = parse_config(yaml, "node_bench.yaml");
  if (!res.value) {
    for (auto& e : res.errors)
      std::fprintf(stderr, "config: %s\n", e.to_string().c_str());
    std::exit(2);
  }
  return std::make_shared<const config>(std::move(*res.value));
}

coordinator_deps local_deps() {
  coordinator_deps deps;
  deps.runner = make_posix_process_runner();
  return deps;
}

/// Submits `n` tasks to `coord` at once, waits for every result; returns
/// tasks per second (0 when one failed).
double drive(caf::actor_system& sys, const coordinator_actor& coord, int n) {
  caf::scoped_actor self{sys};
  auto t0 = clock_type::now();
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    run_spec spec;
    spec.task = "task " + std::to_string(i);
    spec.workflow = "default";
    self->request(coord, std::chrono::seconds{60}, atom::submit_v, spec)
      .receive(
        [&](std::string& id) {
          ids.push_back(std::move(id));
        },
        [&](caf::error& e) {
          std::fprintf(stderr, "submit: %s\n", sys.render(e).c_str());
        });
  }
  int ok = 0;
  for (auto& id : ids)
    self->request(coord, std::chrono::seconds{300}, atom::result_v, id)
      .receive(
        [&](run_result& r) {
          if (r.status == run_status::completed)
            ++ok;
          else
            std::fprintf(stderr, "run %s: %s %s\n", id.c_str(),
                         to_string(r.status).c_str(), r.message.c_str());
        },
        [&](caf::error& e) {
          std::fprintf(stderr, "result: %s\n", sys.render(e).c_str());
        });
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  return ok == n ? n / secs : 0.0;
}

double through_node(const fs::path& root, int tasks, int slots,
                    const tls_files* tls) {
  auto cfg = make_config(root / "node-ws", slots);
  system_config worker_cfg{false, true};
  if (tls != nullptr)
    enable_tls(worker_cfg, *tls);
  caf::actor_system worker{worker_cfg};
  auto coord = spawn_coordinator(worker, cfg, local_deps());
  node_deps nd;
  nd.slots = slots;
  nd.address = "127.0.0.1";
  auto node = worker.spawn(node_impl, coord, nd);
  auto port = publish_node(node, host_port{"127.0.0.1", 0}, tls != nullptr);
  if (!port) {
    std::fprintf(stderr, "publish: %s\n", worker.render(port.error()).c_str());
    std::exit(1);
  }
  double rate = 0;
  {
    system_config pool_cfg{false, true};
    if (tls != nullptr)
      enable_tls(pool_cfg, *tls);
    caf::actor_system client{pool_cfg};
    auto link = connect_node(client, "127.0.0.1:" + std::to_string(*port),
                             tls != nullptr);
    if (!link.error.empty()) {
      std::fprintf(stderr, "connect: %s\n", link.error.c_str());
      std::exit(1);
    }
    auto pool = client.spawn(node_pool_impl, std::vector<node_link>{link},
                             node_pool_deps{});
    rate = drive(client, pool, tasks);
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  }
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
  return rate;
}

double local(const fs::path& root, int tasks, int slots) {
  auto cfg = make_config(root / "local-ws", slots);
  system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto coord = spawn_coordinator(sys, cfg, local_deps());
  auto rate = drive(sys, coord, tasks);
  caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
  return rate;
}

/// A CA and one certificate it signs, made with the openssl command; false
/// when that fails (then the TLS figure is skipped, and says so).
bool make_certs(const fs::path& dir, tls_files& tls) {
  auto d = dir.string();
  std::string cmd
    = "cd '" + d
      + "' && openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
        "-days 1 -subj /CN=bench-ca >/dev/null 2>&1 && openssl req -newkey ec "
        "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout node.key -out "
        "node.csr -subj /CN=node >/dev/null 2>&1 && openssl x509 -req -in "
        "node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem "
        "-days 1 >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return false;
  tls = tls_files{d + "/ca.pem", d + "/node.pem", d + "/node.key"};
  return true;
}

} // namespace

int main(int argc, char** argv) {
  int tasks = argc > 1 ? std::atoi(argv[1]) : 200;
  int slots = argc > 2 ? std::atoi(argv[2]) : 8;
  auto root = fs::temp_directory_path()
              / ("orch-node-bench-" + std::to_string(::getpid()));
  fs::create_directories(root);
  std::printf("node_bench: %d runs of a one-step workflow (instant agent), "
              "%d at a time\n",
              tasks, slots);
  auto l = local(root, tasks, slots);
  std::printf("  local coordinator:              %7.1f tasks/s\n", l);
  auto n = through_node(root, tasks, slots, nullptr);
  std::printf(
    "  pool -> 1 worker node (plain):  %7.1f tasks/s  (%.2f x local)\n", n,
    l > 0 ? n / l : 0.0);
  tls_files tls;
  if (make_certs(root, tls)) {
    auto t = through_node(root, tasks, slots, &tls);
    std::printf(
      "  pool -> 1 worker node (TLS):    %7.1f tasks/s  (%.2f x local)\n", t,
      l > 0 ? t / l : 0.0);
  } else {
    std::printf("  pool -> 1 worker node (TLS):    skipped (openssl failed)\n");
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return l > 0 && n > 0 ? 0 : 1;
}
