#include "cli/node_commands.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/coordinator.hpp"
#include "actors/node_pool.hpp"
#include "actors/signals.hpp"
#include "actors/system_config.hpp"
#include "cli/terminal.hpp"
#include "runtime/state_dir.hpp"
#include "runtime/text.hpp"

namespace orch::cli {

namespace {

using node_signal_atom = caf::atom_constant<caf::atom("orchSignal")>;

std::string joined(const std::vector<std::string>& items,
                   const char* sep = ", ") {
  std::string out;
  for (const auto& x : items)
    out += (out.empty() ? "" : sep) + x;
  return out;
}

/// Prints rows as an aligned table (cells escaped for the terminal).
void print_rows(std::vector<std::vector<std::string>> rows) {
  std::vector<size_t> widths;
  for (auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      row[i] = shown(row[i]);
      if (widths.size() <= i)
        widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  for (auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line.append(widths[i] + 2 - row[i].size(), ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

/// The TLS options as given: "" when none or all three usable.
std::string tls_error(const tls_files& tls) {
  return tls.any() ? tls.check() : std::string{};
}

} // namespace

std::string check_pool_options(const std::string& workers,
                               const tls_files& tls) {
  auto addresses = split_addresses(workers);
  if (addresses.empty())
    return "--workers: no node address given (host:port,...)";
  if (auto e = tls_error(tls); !e.empty())
    return e;
  for (const auto& a : addresses) {
    std::string error;
    auto at = parse_host_port(a, error);
    if (!at)
      return "--workers: " + error;
    if (at->port == 0)
      return "--workers: '" + a + "' has no port";
    if (!tls.any() && !is_loopback(at->host))
      return "refusing to connect to " + a
             + " without TLS: off loopback, give --tls-ca, --tls-cert and "
               "--tls-key (mutual TLS; see the README's worker nodes)";
  }
  return {};
}

std::string pool_options::check() const {
  if (enabled())
    return check_pool_options(workers, tls);
  if (!out_dir.empty() || tls.any())
    return "--out-dir and --tls-* go with --workers";
  return {};
}

void prepare_pool_config(system_config& cfg, const tls_files& tls,
                         std::chrono::milliseconds node_timeout) {
  if (tls.any())
    enable_tls(cfg, tls);
  enable_node_heartbeat(cfg, node_timeout);
}

coordinator_actor start_node_pool(caf::actor_system& sys,
                                  const pool_options& opts, node_pool_deps deps,
                                  std::string& error) {
  bool tls = opts.tls.any();
  std::vector<node_link> links;
  size_t usable = 0;
  for (const auto& a : split_addresses(opts.workers)) {
    auto link = connect_node(sys, a, tls);
    if (link.error.empty())
      ++usable;
    else
      std::fprintf(stderr, "warning: %s\n", shown(link.error).c_str());
    links.push_back(std::move(link));
  }
  if (usable == 0) {
    error = "no worker node could be used";
    for (auto& l : links)
      error += "; " + l.error;
    return {};
  }
  deps.out_dir = opts.out_dir;
  deps.reconnect_for = std::chrono::milliseconds{
    static_cast<int64_t>(opts.reconnect_for * 1000)};
  if (deps.reconnect_for.count() > 0)
    deps.connect = [tls](caf::actor_system& s, const std::string& address) {
      return connect_node(s, address, tls);
    };
  return sys.spawn(node_pool_impl, std::move(links), std::move(deps));
}

int cmd_worker(const worker_options& opts, load_result loaded) {
  for (auto& w : loaded.warnings)
    std::fprintf(stderr, "warning: %s\n", shown(w.to_string()).c_str());
  if (!loaded.errors.empty() || !loaded.value) {
    for (auto& e : loaded.errors)
      std::fprintf(stderr, "error: %s\n", shown(e.to_string()).c_str());
    return exit_usage;
  }
  auto cfg = std::make_shared<const config>(std::move(*loaded.value));
  std::string error;
  auto at = parse_host_port(opts.listen, error);
  if (!at) {
    std::fprintf(stderr, "error: --listen: %s\n", shown(error).c_str());
    return exit_usage;
  }
  if (opts.slots < 1 || opts.slots > 1024) {
    std::fprintf(stderr, "error: --slots must be from 1 to 1024\n");
    return exit_usage;
  }
  if (auto e = tls_error(opts.tls); !e.empty()) {
    std::fprintf(stderr, "error: %s\n", shown(e).c_str());
    return exit_usage;
  }
  bool tls = opts.tls.any();
  if (!tls && !is_loopback(at->host)) {
    std::fprintf(stderr,
                 "error: refusing to listen on %s without TLS: off loopback, "
                 "give --tls-ca, --tls-cert and --tls-key (mutual TLS; see "
                 "the README's worker nodes)\n",
                 shown(opts.listen).c_str());
    return exit_usage;
  }
  // Agent availability is a PATH lookup: once, here.
  node_deps deps;
  deps.slots = opts.slots;
  deps.max_result_bytes = opts.max_result_bytes;
  for (const auto& a : cfg->agents) {
    auto why = a.enabled ? probe_agent(a) : std::string{"disabled"};
    if (why.empty())
      deps.agents.push_back(a.name);
    else
      deps.unavailable.push_back(a.name + ": " + why);
  }
  system_config sys_cfg{false, true,
                        static_cast<size_t>(cfg->settings.scheduler_threads)};
  if (tls)
    enable_tls(sys_cfg, opts.tls);
  enable_node_heartbeat(sys_cfg, std::chrono::milliseconds{static_cast<int64_t>(
                                   opts.node_timeout * 1000)});
  caf::actor_system sys{sys_cfg};
  coordinator_deps cdeps;
  cdeps.runner = make_posix_process_runner();
  if (auto dir = resolve_state_dir(cfg->settings.state_dir); !dir.empty()) {
    std::string e;
    if (open_state_dir(dir, e))
      cdeps.state_dir = dir;
  }
  auto coord = spawn_coordinator(sys, cfg, cdeps);
  deps.address = opts.listen;
  deps.workspace_root = cfg->settings.workspace_dir;
  auto node = sys.spawn(node_impl, coord, deps);
  auto port = publish_node(node, *at, tls);
  if (!port) {
    std::fprintf(stderr, "error: cannot listen on %s: %s\n",
                 shown(opts.listen).c_str(), sys.render(port.error()).c_str());
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
    return exit_failure;
  }
  auto address = (at->host.find(':') != std::string::npos ? "[" + at->host + "]"
                                                          : at->host)
                 + ":" + std::to_string(*port);
  std::printf("worker listening on %s (%s), %d slot(s), version %s, "
              "agents: %s\n",
              shown(address).c_str(),
              tls ? "mutual TLS" : "no TLS, loopback only", opts.slots,
              node_version().c_str(),
              deps.agents.empty() ? "none" : joined(deps.agents).c_str());
  for (auto& u : deps.unavailable)
    std::printf("  unavailable: %s\n", shown(u).c_str());
  std::fflush(stdout);
  int signo = 0;
  {
    caf::scoped_actor self{sys};
    signal_bridge signals{sys,
                          [waiter = caf::actor_cast<caf::actor>(self)](int s) {
                            caf::anon_send(waiter, node_signal_atom::value,
                                           static_cast<int32_t>(s));
                          }};
    self->receive([&](node_signal_atom, int32_t s) {
      signo = s;
    });
    signals.stop();
    self->send(coord, atom::cancel_v, std::string{});
  }
  std::printf("worker on %s stopping (signal %d): its runs are cancelled\n",
              shown(address).c_str(), signo);
  std::fflush(stdout);
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
  return exit_interrupted;
}

int cmd_workers(const workers_options& opts) {
  if (auto e = check_pool_options(opts.workers, opts.tls); !e.empty()) {
    std::fprintf(stderr, "error: %s\n", shown(e).c_str());
    return exit_usage;
  }
  bool tls = opts.tls.any();
  system_config sys_cfg{false, true};
  prepare_pool_config(sys_cfg, opts.tls);
  caf::actor_system sys{sys_cfg};
  std::vector<node_link> links;
  for (const auto& a : split_addresses(opts.workers))
    links.push_back(connect_node(sys, a, tls));
  bool all_ok = true;
  if (opts.json) {
    auto out = nlohmann::ordered_json::array();
    for (auto& l : links) {
      nlohmann::ordered_json j;
      j["address"] = l.address;
      j["ok"] = l.error.empty();
      if (!l.error.empty()) {
        all_ok = false;
        j["error"] = l.error;
      }
      if (!l.status.version.empty()) {
        j["version"] = l.status.version;
        j["vocabulary"] = l.status.vocabulary;
        j["slots"] = l.status.slots;
        j["running"] = l.status.running;
        j["finished"] = l.status.finished;
        j["agents"] = l.status.agents;
        j["unavailable"] = l.status.unavailable;
      }
      out.push_back(std::move(j));
    }
    std::printf(
      "%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                .c_str());
  } else {
    std::vector<std::vector<std::string>> rows{
      {"NODE", "VERSION", "SLOTS", "RUNNING", "AGENTS", "STATUS"}};
    for (auto& l : links) {
      if (!l.error.empty())
        all_ok = false;
      bool known = !l.status.version.empty();
      rows.push_back(
        {l.address, known ? l.status.version : "-",
         known ? std::to_string(l.status.slots) : "-",
         known ? std::to_string(l.status.running) : "-",
         known
           ? (l.status.agents.empty() ? "none" : joined(l.status.agents, ","))
           : "-",
         l.error.empty() ? "ok" : "error: " + l.error});
    }
    print_rows(std::move(rows));
  }
  return all_ok ? exit_ok : exit_failure;
}

} // namespace orch::cli
