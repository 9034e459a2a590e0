// ai-orchestrator: the command line. Parses arguments with CLI11 and hands
// each command to cli/commands.cpp; exit codes are in cli/terminal.hpp.

#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/node_commands.hpp"
#include "cli/shell.hpp"
#include "cli/terminal.hpp"
#include "config/config.hpp"
#include "runtime/audit_log.hpp"
#include "runtime/logging.hpp"
#include "runtime/state_dir.hpp"
#include "server/serve.hpp"

namespace {

/// Opens /dev/null on any of 0, 1, 2 the parent left closed, so that no file
/// we open later (a manifest, a pipe to an agent) becomes our stdout.
void ensure_standard_streams() {
  for (int fd = 0; fd <= 2; ++fd)
    if (fcntl(fd, F_GETFD) == -1)
      open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
}

/// The log file for one command: opened from the config's settings (its
/// warnings and errors are logged whichever command runs) and closed at the
/// end. Nothing of it reaches the terminal:
/// when the state directory or the file cannot be opened, the log is off.
class log_session {
public:
  log_session(const orch::load_result& res, const std::string& level_flag,
              std::string command)
    : command_{std::move(command)} {
    orch::settings settings = res.value ? res.value->settings
                                        : orch::settings{};
    orch::log_options opts;
    opts.level = level_flag.empty() ? settings.log_level : level_flag;
    auto dir = orch::resolve_state_dir(settings.state_dir);
    if (dir.empty())
      return;
    std::string error;
    auto fd = orch::open_state_dir(dir, error);
    if (!fd)
      return;
    if (orch::init_logging(fd.get(), opts, error)) {
      auto& log = orch::log();
      log.info("command-start cmd={} version={} config={}", command_,
               ORCH_VERSION, res.value ? res.value->source : "(invalid)");
      for (const auto& w : res.warnings)
        log.warn("config-warning {}", w.to_string());
      for (const auto& e : res.errors)
        log.error("config-error {}", e.to_string());
    }
    // The audit log, for the commands that do something worth auditing.
    if (res.value
        && (command_ == "run" || command_ == "shell" || command_ == "serve"
            || command_ == "batch"))
      open_audit(fd.get(), res.value->settings.audit);
  }
  log_session(const log_session&) = delete;
  log_session& operator=(const log_session&) = delete;
  ~log_session() {
    orch::audit_close();
    orch::shutdown_logging();
  }

  /// Logs the exit code and returns it.
  int end(int code) {
    orch::log().info("command-end cmd={} exit={}", command_, code);
    return code;
  }

private:
  /// Opens the audit log from settings.audit; when it cannot be used, says
  /// so on stderr (the run goes on, unaudited).
  static void open_audit(int state_fd, const orch::audit_settings& s) {
    orch::audit_options opts;
    opts.enabled = s.enabled;
    opts.include_task = s.include_task;
    opts.max_bytes = s.max_bytes;
    std::string error;
    if (orch::audit_open(state_fd, opts, error))
      return;
    orch::log().error("audit-off {}", error);
    std::fprintf(stderr, "warning: the audit log is off: %s\n", error.c_str());
  }

  std::string command_;
};

} // namespace

int main(int argc, char** argv) {
  using namespace orch::cli;
  ensure_standard_streams();
  CLI::App app{"ai-orchestrator: makes AI coding CLIs (codex, claude, gemini, "
               "copilot, any command) work together in workflows that iterate "
               "until the review is clean.",
               "ai-orchestrator"};
  // `--version` and the `version` command print the same line.
  const std::string version_text = "ai-orchestrator " ORCH_VERSION
                                   " (C++ Actor Framework 0.17)";
  app.set_version_flag("--version", version_text);
  app.require_subcommand(1);
  app.fallthrough();
  std::string config_path;
  app.add_option(
    "-c,--config", config_path,
    "Config file (default: ./ai-orchestrator.yaml, then "
    "$XDG_CONFIG_HOME/ai-orchestrator/config.yaml, then built-in)");
  std::string log_level;
  app
    .add_option("--log-level", log_level,
                "Level of the log file in the state directory: trace, debug, "
                "info, warn, error or off (default: settings.log_level)")
    ->check([](const std::string& text) -> std::string {
      if (!orch::normalize_log_level(text))
        return "unknown log level '" + text
               + "'; expected trace, debug, info, warn, error or off";
      return {};
    });
  app.footer("Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 no agent "
             "available, 4 over the rate limit, 130 interrupted.");

  bool agents_json = false;
  auto agents = app.add_subcommand(
    "agents", "List the configured agents: installed, version, status");
  agents->add_flag("--json", agents_json, "Print JSON instead of a table");

  auto validate = app.add_subcommand(
    "validate", "Check a config; every error names file, line, column and key");

  bool workflows_json = false;
  auto workflows = app.add_subcommand("workflows", "List the workflows");
  workflows->add_flag("--json", workflows_json,
                      "Print JSON instead of a table");

  bool sessions_json = false;
  auto sessions = app.add_subcommand(
    "sessions", "List the saved sessions of the interactive shell");
  sessions->add_flag("--json", sessions_json, "Print JSON instead of a table");

  auto version = app.add_subcommand("version", "Print the version");

  run_options run_opts;
  auto run = app.add_subcommand(
    "run", "Run a task through a workflow until the review is clean");
  run
    ->add_option("task", run_opts.task,
                 "What to build or change; `-` reads it from stdin")
    ->required();
  run->add_option("-w,--workflow", run_opts.workflow, "Workflow name")
    ->capture_default_str();
  run
    ->add_option("-m,--max-iterations", run_opts.max_iterations,
                 "Override the workflow's max_iterations")
    ->check(CLI::Range(1, 1000));
  run->add_option(
    "-o,--output", run_opts.output,
    "Workspace folder (default: <settings.workspace_dir>/<run-id>)");
  run->add_option("--agents", run_opts.agents,
                  "Agents for the steps: one name for all steps, or a comma "
                  "list with one per step");
  run->add_flag("-v,--verbose", run_opts.verbose,
                "Show the agents' tool calls and file changes live");
  run->add_flag(
    "--dry-run", run_opts.dry_run,
    "Print each step with the exact argv it would run; run nothing");
  run->add_flag("--json", run_opts.json,
                "Print the result as one JSON document on stdout");
  run->add_flag("--no-cache", run_opts.no_cache,
                "Run every step even when the step cache holds its outcome "
                "(and store none)");

  shell_options shell_opts;
  auto shell = app.add_subcommand(
    "shell", "Interactive shell: each message runs the workflow; slash "
             "commands (/help) steer the session");
  shell->alias("interactive");
  shell->add_option("--load", shell_opts.load, "Resume a saved session");
  shell->add_option("-w,--workflow", shell_opts.workflow, "Workflow name")
    ->capture_default_str();

  auto add_tls = [](CLI::App* cmd, orch::tls_files& tls) {
    cmd->add_option("--tls-ca", tls.ca,
                    "CA certificate (PEM) that signs every node's certificate");
    cmd->add_option("--tls-cert", tls.cert,
                    "This process's certificate (PEM), signed by --tls-ca");
    cmd->add_option("--tls-key", tls.key, "The key of --tls-cert (PEM)");
  };
  // The options of a command whose runs may go to worker nodes.
  auto add_pool_options = [&add_tls](CLI::App* cmd, pool_options& pool,
                                     const std::string& out_dir_help) {
    cmd->add_option("--workers", pool.workers,
                    "Run the tasks on these worker nodes (host:port,...; "
                    "see `worker`) instead of here");
    add_tls(cmd, pool.tls);
    cmd->add_option("--out-dir", pool.out_dir, out_dir_help);
    cmd
      ->add_option("--node-timeout", pool.node_timeout,
                   "With --workers: seconds without a sign of life "
                   "(heartbeats every quarter of it) before a node counts as "
                   "lost; its tasks go to another node, and it is tried again")
      ->check(CLI::Range(0.4, 3600.0))
      ->capture_default_str();
    cmd
      ->add_option("--reconnect-for", pool.reconnect_for,
                   "With --workers: seconds a lost node is tried again (waits "
                   "0.5 s doubling to 10 s); queued tasks wait meanwhile; 0: "
                   "never")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  };

  orch::server::server_options serve_opts;
  std::string serve_listen = "127.0.0.1:5001";
  auto serve = app.add_subcommand(
    "serve", "HTTP API: submit tasks, watch them live (SSE, WebSocket), "
             "read results; stops cleanly on SIGTERM");
  serve
    ->add_option("--listen", serve_listen,
                 "Address and port (HOST:PORT; port 0 picks a free one); "
                 "any address off loopback requires the API token")
    ->capture_default_str();
  serve->add_flag("--token-required", serve_opts.token_required,
                  "Require the API token even on loopback");
  serve
    ->add_option("--threads", serve_opts.threads,
                 "HTTP worker threads (each open stream or connection "
                 "holds one)")
    ->capture_default_str()
    ->check(CLI::Range(16, 4096));
  serve
    ->add_option("--max-body", serve_opts.max_body_bytes,
                 "Largest request body in bytes (413 beyond)")
    ->capture_default_str()
    ->check(CLI::Range(1024, 1 << 30));
  serve
    ->add_option("--rate-limit", serve_opts.rate_per_minute,
                 "API requests per minute per client (0: no limit)")
    ->capture_default_str()
    ->check(CLI::Range(0, 1000000));
  serve
    ->add_option("--rate-burst", serve_opts.rate_burst,
                 "API requests a client may send back to back")
    ->capture_default_str()
    ->check(CLI::Range(1, 1000000));

  serve
    ->add_option("--agent-events-per-second",
                 serve_opts.agent_events_per_second,
                 "Agent output lines per second per run sent to the event "
                 "streams after a burst of 100 (0: all)")
    ->capture_default_str()
    ->check(CLI::Range(0, 1000000));
  pool_options serve_pool;
  add_pool_options(serve, serve_pool,
                   "With --workers: where the files of the runs come back "
                   "(DIR/<run id>/; default: worker-files in the state "
                   "directory)");
  // -- h16a
  batch_options batch_opts;
  auto batch = app.add_subcommand(
    "batch", "Run every task of a JSON-lines file (one object per line: id, "
             "task, optional workflow, max_iterations, agents), many at once; "
             "one result line per task is appended to --out");
  batch->add_option("tasks", batch_opts.input, "The JSON-lines input file")
    ->required();
  batch->add_option("-o,--out", batch_opts.out, "The JSON-lines output file")
    ->required();
  batch
    ->add_option("-j,--concurrency", batch_opts.concurrency,
                 "Runs in flight at most (each agent's max_concurrency "
                 "still holds across them)")
    ->check(CLI::Range(1, 100000))
    ->capture_default_str();
  batch->add_flag("--resume", batch_opts.resume,
                  "Continue an existing output: skip the ids already in it");
  batch->add_flag("--strict", batch_opts.strict,
                  "Refuse to start when any input line is bad");
  batch
    ->add_option("-w,--workflow", batch_opts.workflow,
                 "Workflow of the tasks that name none")
    ->capture_default_str();
  batch->add_flag("--no-cache", batch_opts.no_cache,
                  "Run every step even when the step cache holds its outcome");
  batch
    ->add_option("--progress-interval", batch_opts.progress_interval,
                 "Seconds between progress lines when stderr is not a "
                 "terminal")
    ->check(CLI::Range(0.05, 86400.0))
    ->capture_default_str();
  add_pool_options(batch, batch_opts.pool,
                   "With --workers: write the files each run wrote under "
                   "DIR/<task id>/");

  // -- h16b: worker nodes
  worker_options worker_opts;
  std::size_t max_result_kib = orch::default_max_result_bytes >> 10;
  auto worker = app.add_subcommand(
    "worker", "Run workflow runs for coordinators on other machines "
              "(`batch --workers`): publish this node on HOST:PORT");
  worker
    ->add_option("--listen", worker_opts.listen,
                 "HOST:PORT to listen on (port 0: any free one, printed); "
                 "off loopback only with TLS")
    ->required();
  worker->add_option("--slots", worker_opts.slots, "Runs taken at once")
    ->capture_default_str();
  worker
    ->add_option("--max-result-kib", max_result_kib,
                 "Files of one run sent back, at most this many KiB in all "
                 "(the rest is named in the result)")
    ->capture_default_str();
  add_tls(worker, worker_opts.tls);
  worker
    ->add_option("--node-timeout", worker_opts.node_timeout,
                 "Seconds without a sign of life from a coordinator "
                 "(heartbeats every quarter of it) before its connection is "
                 "dropped and its runs cancelled")
    ->check(CLI::Range(0.4, 3600.0))
    ->capture_default_str();
  workers_options workers_opts;
  auto workers = app.add_subcommand(
    "workers", "Show each worker node: version, slots, running, agents");
  workers
    ->add_option("--workers", workers_opts.workers,
                 "Nodes as host:port,host:port")
    ->required();
  add_tls(workers, workers_opts.tls);
  workers->add_flag("--json", workers_opts.json,
                    "Print JSON instead of a table");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return exit_usage;
  }
  if (version->parsed()) {
    std::printf("%s\n", version_text.c_str());
    return exit_ok;
  }
  if (auto level = orch::normalize_log_level(log_level))
    log_level = *level;
  auto loaded = orch::load_config(config_path);
  log_session logs{loaded, log_level,
                   app.get_subcommands().empty()
                     ? std::string{"-"}
                     : app.get_subcommands().front()->get_name()};
  if (agents->parsed())
    return logs.end(cmd_agents(std::move(loaded), agents_json));
  if (validate->parsed())
    return logs.end(cmd_validate(config_path, loaded));
  if (workflows->parsed())
    return logs.end(cmd_workflows(std::move(loaded), workflows_json));
  if (run->parsed())
    return logs.end(cmd_run(run_opts, std::move(loaded)));
  if (shell->parsed())
    return logs.end(cmd_shell(shell_opts, std::move(loaded)));
  if (serve->parsed()) {
    std::string error;
    if (!orch::server::parse_listen(serve_listen, serve_opts, error)) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      return logs.end(exit_usage);
    }
    return logs.end(cmd_serve(serve_opts, serve_pool, std::move(loaded)));
  }
  if (worker->parsed()) {
    worker_opts.max_result_bytes = max_result_kib << 10;
    return logs.end(cmd_worker(worker_opts, std::move(loaded)));
  }
  if (workers->parsed())
    return logs.end(cmd_workers(workers_opts));
  if (sessions->parsed())
    return logs.end(cmd_sessions(std::move(loaded), sessions_json));
  if (batch->parsed())
    return logs.end(cmd_batch(batch_opts, std::move(loaded)));
  return logs.end(exit_usage);
}
