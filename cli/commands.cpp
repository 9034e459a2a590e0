#include "cli/commands.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <nlohmann/json.hpp>

#include "actors/agent_probe.hpp"
#include "actors/coordinator.hpp"
#include "actors/run_report.hpp"
#include "actors/signals.hpp"
#include "actors/step_plan.hpp"
#include "actors/system_config.hpp"
#include "adapters/adapter.hpp"
#include "cli/progress_display.hpp"
#include "cli/terminal.hpp"
#include "config/config.hpp"
#include "runtime/audit_log.hpp"
#include "runtime/breaker.hpp"
#include "runtime/clock.hpp"
#include "runtime/counters.hpp"
#include "runtime/rate_limit_store.hpp"
#include "runtime/review.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/session_store.hpp"
#include "runtime/state_dir.hpp"
#include "runtime/text.hpp"
#include "runtime/workspace.hpp"
#include "server/serve.hpp"

namespace orch::cli {

namespace {

namespace fs = std::filesystem;

/// Returns a config diagnostic safe for the terminal: it quotes values of
/// the file, which may hold escape sequences.
template<class Diagnostic>
std::string diagnostic_text(const Diagnostic& d) {
  return text::escape_for_terminal(d.to_string(), true);
}

std::string pad(std::string s, size_t width) {
  // Width in code points, so the arrows and dots in cells line up.
  size_t cps = 0;
  for (unsigned char c : s)
    cps += (c & 0xC0) != 0x80;
  if (cps < width)
    s.append(width - cps, ' ');
  return s;
}

/// Prints rows as an aligned table; the last column is not padded. Cells
/// are escaped for the terminal.
void print_table(std::vector<std::vector<std::string>> rows) {
  for (auto& row : rows)
    for (auto& cell : row)
      cell = shown(cell);
  std::vector<size_t> widths;
  for (auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      size_t cps = 0;
      for (unsigned char c : row[i])
        cps += (c & 0xC0) != 0x80;
      if (widths.size() <= i)
        widths.push_back(0);
      widths[i] = std::max(widths[i], cps);
    }
  for (auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i)
      line += i + 1 < row.size() ? pad(row[i], widths[i] + 2) : row[i];
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

std::string shell_quote(const std::string& s) {
  if (!s.empty()
      && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                             "VWXYZ0123456789-_./=:,@+%")
           == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string seconds(std::chrono::milliseconds ms) {
  if (ms.count() == 0)
    return "off";
  return format_duration(ms.count());
}

void print_dry_run(const config& cfg, const workflow_config& wf,
                   const run_options& opts, const std::string& workspace,
                   int max_iterations) {
  std::printf("Dry run: nothing is executed and nothing is written.\n");
  std::printf("Workflow: %s (%s)\n", wf.name.c_str(),
              describe_steps(wf).c_str());
  std::printf("Iterations: at most %d; converged when open findings <= %d\n",
              max_iterations, wf.min_suggestions_threshold);
  std::printf("Workspace: %s\n", workspace.c_str());
  auto base_env = current_environment();
  int n = 0;
  for (auto& step : wf.steps) {
    ++n;
    std::printf("\nStep %d/%zu%s\n", n, wf.steps.size(),
                step.parallel() ? " (parallel group)" : "");
    for (auto& item : step.items) {
      auto agent = cfg.find_agent(item.agent);
      auto adapt = make_adapter(agent->kind);
      prompt_context ctx;
      ctx.task = opts.task;
      ctx.task_kind = item.task;
      ctx.workspace = workspace;
      // What the agent actor will run for this step (execute_step plans
      // through the same function).
      auto [prompt, spec] = plan_step(cfg, *agent, *adapt, ctx, base_env);
      std::string argv;
      for (auto& a : spec.argv) {
        auto shown = a == prompt ? std::string{"<prompt>"} : a;
        argv += (argv.empty() ? "" : " ") + shell_quote(shown);
      }
      std::printf("  %s · %s  [%s adapter]\n", item.agent.c_str(),
                  item.task.c_str(), to_string(agent->kind).c_str());
      std::printf("    argv:      %s\n", argv.c_str());
      std::printf(
        "    stdin:     %s\n",
        spec.stdin_data
          ? ("<prompt> (" + std::to_string(spec.stdin_data->size()) + " bytes)")
              .c_str()
          : "/dev/null");
      std::printf("    cwd:       %s\n", spec.cwd.c_str());
      std::string names;
      for (auto& e : spec.env)
        names += (names.empty() ? "" : " ") + e.substr(0, e.find('='));
      std::printf("    env:       %s\n", names.c_str());
      std::printf("    deadlines: first output %s, idle %s, total %s\n",
                  seconds(spec.first_output_deadline).c_str(),
                  seconds(spec.idle_deadline).c_str(),
                  seconds(spec.total_deadline).c_str());
      if (opts.verbose)
        std::printf("    prompt:\n%s\n", prompt.c_str());
    }
  }
}

/// Reads stdin into `out` up to `limit` bytes. Returns false (having read
/// `limit` + 1 bytes, no more) when stdin holds more.
bool read_stdin(std::size_t limit, std::string& out) {
  out.clear();
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto room = limit - std::min(limit, out.size()) + 1;
    auto n = std::fread(buf.data(), 1, std::min(buf.size(), room), stdin);
    if (n == 0)
      return true;
    out.append(buf.data(), n);
    if (out.size() > limit)
      return false;
  }
}

void print_summary(const run_result& res, const terminal& term) {
  std::printf("\n%s\n", term.bold("Summary").c_str());
  for (auto& it : res.iterations) {
    std::string line = "  iteration " + std::to_string(it.number) + ":";
    for (auto& s : it.steps) {
      line += "  " + (s.outcome.ok ? term.green("✓") : term.red("✗")) + " "
              + shown(s.agent) + " " + shown(s.task_kind);
    }
    if (it.open_findings >= 0)
      line += "  → " + std::to_string(it.open_findings) + " finding(s)";
    std::printf("%s\n", line.c_str());
  }
  auto status = to_string(res.status);
  bool good = res.status == run_status::converged
              || res.status == run_status::completed;
  bool bad = res.status == run_status::failed
             || res.status == run_status::cancelled;
  auto styled = good  ? term.green(status)
                : bad ? term.red(status)
                      : term.yellow(status);
  std::printf("Result: %s%s\n", styled.c_str(),
              res.message.empty() ? "" : (" — " + shown(res.message)).c_str());
  std::printf("Open findings: %zu\n", res.findings.size());
  for (auto& f : res.findings) {
    std::string where = f.file.empty() ? "" : f.file;
    if (f.line > 0)
      where += ":" + std::to_string(f.line);
    std::printf("  [%s] %s%s\n", shown(f.severity).c_str(),
                where.empty() ? "" : (shown(where) + " ").c_str(),
                shown(f.text).c_str());
  }
  std::vector<std::string> refused;
  for (auto& it : res.iterations)
    for (auto& s : it.steps)
      for (auto& r : s.refused)
        refused.push_back(shown(s.agent) + ": " + shown(r.path) + " ("
                          + shown(r.reason) + ")");
  if (!refused.empty()) {
    std::printf("Refused paths (%zu), nothing written:\n", refused.size());
    for (auto& r : refused)
      std::printf("  %s\n", r.c_str());
  }
  std::printf("Generated files (%zu):\n", res.files.size());
  for (auto& f : res.files)
    std::printf("  %s\n", shown(f).c_str());
  size_t backups = 0;
  std::vector<std::string> deleted;
  for (auto& it : res.iterations)
    for (auto& s : it.steps) {
      backups += s.backups.size();
      for (auto& d : s.deleted)
        deleted.push_back(shown(s.agent) + ": " + shown(d));
    }
  if (!deleted.empty()) {
    std::printf("Deleted by agents (%zu):\n", deleted.size());
    for (auto& d : deleted)
      std::printf("  %s\n", d.c_str());
  }
  if (res.preserved_files > 0 || backups > 0)
    std::printf("Backups: %d file(s) as they were before the run, %zu "
                "before an overwrite, in %s/%s/backups/%s/\n",
                res.preserved_files, backups, shown(res.workspace).c_str(),
                workspace_meta_dir, res.run_id.c_str());
  if (!res.preserve_error.empty())
    std::printf("Warning: existing files were not saved: %s\n",
                shown(res.preserve_error).c_str());
  std::printf("Workspace: %s\n", shown(res.workspace).c_str());
  std::printf("Manifest: %s/%s/manifest.json\n", shown(res.workspace).c_str(),
              workspace_meta_dir);
  std::string cost;
  if (res.tokens.has_cost) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), ", $%.4f", res.tokens.cost_usd);
    cost = buf;
  }
  std::printf("Usage: %lld input, %lld output, %lld cached tokens%s\n",
              static_cast<long long>(res.tokens.input_tokens),
              static_cast<long long>(res.tokens.output_tokens),
              static_cast<long long>(res.tokens.cached_tokens), cost.c_str());
}

/// A signal, sent by the signal bridge to the waiting CLI actor.
using signal_atom = caf::atom_constant<caf::atom("orchSignal")>;

/// How the wait for a run ended.
struct run_wait {
  bool got_result = false;
  run_result result;
  /// Why there is no result.
  std::string failure;
  /// The coordinator died, or the run did not stop after a signal.
  bool run_lost = false;
  bool display_down = false;
  /// A SIGINT, SIGTERM, SIGHUP or broken-stdout SIGPIPE arrived.
  bool signalled = false;
};

/// Asks `coord` for the result of run `id` and waits for it, never without
/// a bound: the coordinator and the display are monitored, so the death of
/// either ends the wait (a dead display only loses the live view). Signals
/// arrive as messages (the signal bridge also cancels every run of the
/// coordinator); after the first, the run gets `kill_grace` plus a margin to
/// stop its agents and report before the wait gives up.
run_wait await_result(caf::actor_system& sys, caf::blocking_actor& self,
                      const coordinator_actor& coord,
                      const display_actor& display, const std::string& id,
                      std::chrono::milliseconds kill_grace) {
  using clock = std::chrono::steady_clock;
  constexpr auto poll = std::chrono::milliseconds{200};
  const auto grace = kill_grace + std::chrono::seconds{10};
  run_wait out;
  self.monitor(display);
  // A plain send: the reply arrives as an ordinary message, so one receive
  // sees it, the monitors' down messages and the signals alike.
  self.send(coord, atom::result_v, id);
  std::optional<clock::time_point> signalled_at;
  auto check_grace = [&] {
    if (!signalled_at || clock::now() - *signalled_at <= grace)
      return false;
    out.failure
      = "interrupted; the run did not stop within "
        + format_duration(
          std::chrono::duration_cast<std::chrono::milliseconds>(grace).count());
    out.run_lost = true;
    return true;
  };
  bool done = false;
  while (!done) {
    self.receive(
      [&](run_result& res) {
        out.result = std::move(res);
        out.got_result = true;
        done = true;
      },
      [&](caf::error& e) {
        out.failure = sys.render(e);
        out.run_lost = true;
        done = true;
      },
      [&](bool) {
        // The answer to a cancel: nothing to do.
      },
      [&](caf::down_msg& dm) {
        if (dm.source == coord.address()) {
          out.failure = "the run coordinator stopped without a result ("
                        + sys.render(dm.reason) + ")";
          out.run_lost = true;
          done = true;
        } else if (dm.source == display.address()) {
          out.display_down = true;
          std::fprintf(stderr, "warning: the progress display stopped (%s)\n",
                       sys.render(dm.reason).c_str());
        }
      },
      [&](signal_atom, int32_t) {
        // A second Ctrl-C changes nothing: the run is already stopping,
        // within the grace period.
        out.signalled = true;
        if (!signalled_at)
          signalled_at = clock::now();
        done = check_grace();
      },
      caf::after(poll) >>
        [&] {
          done = check_grace();
        });
  }
  self.demonitor(display.address());
  return out;
}

/// The run spec of `run`'s options.
run_spec to_spec(const run_options& opts) {
  run_spec spec;
  spec.task = opts.task;
  spec.workflow = opts.workflow;
  spec.agents = opts.agents;
  spec.max_iterations = opts.max_iterations;
  spec.workspace = opts.output;
  // The CLI's user is the OS user (rate limiter, audit log).
  spec.user = os_user_name();
  spec.no_cache = opts.no_cache;
  return spec;
}

/// The rate limiter's buckets in the state directory, shared by every `run`
/// of the user; in memory (with a warning) when that folder is unusable.
std::shared_ptr<rate_limit_store> limit_store_for(const config& cfg) {
  if (!cfg.rate_limiting.enabled)
    return nullptr;
  std::string error;
  auto dir = resolve_state_dir(cfg.settings.state_dir);
  if (dir.empty()) {
    error = "no state directory (HOME is not set)";
  } else if (auto fd = open_state_dir(dir, error)) {
    if (auto store = open_file_rate_limit_store(fd.get(), error))
      return store;
  }
  std::fprintf(stderr,
               "warning: the rate limit applies to this process only: %s\n",
               shown(error).c_str());
  return nullptr;
}

/// Prints why `submit` refused a run and returns its exit code: 2 for a bad
/// request or a locked workspace, 3 when an agent is not available, 4 over
/// the rate limit, 1 otherwise.
int report_refusal(const caf::error& e) {
  auto text = error_text(e);
  if (e.category() != caf::atom("orch")) {
    std::fprintf(stderr, "error: %s\n", shown(text).c_str());
    return exit_failure;
  }
  switch (static_cast<errc>(e.code())) {
    case errc::unknown_name:
    case errc::invalid_request:
      std::fprintf(stderr, "error: %s\n", shown(text).c_str());
      return exit_usage;
    case errc::agent_unavailable:
      std::fprintf(stderr, "error: %s\n", shown(text).c_str());
      std::fprintf(stderr, "Run `ai-orchestrator agents` for the status of "
                           "every agent.\n");
      return exit_no_agent;
    case errc::workspace_locked:
      std::fprintf(stderr, "error: %s\n", shown(text).c_str());
      return exit_usage;
    case errc::rate_limited:
      std::fprintf(stderr, "error: %s\n", shown(text).c_str());
      return exit_rate_limited;
    default:
      std::fprintf(stderr, "error: %s\n", shown(text).c_str());
      return exit_failure;
  }
}

} // namespace

std::optional<config> usable_or_report(load_result res) {
  for (auto& w : res.warnings)
    std::fprintf(stderr, "warning: %s\n", diagnostic_text(w).c_str());
  if (!res.errors.empty() || !res.value) {
    for (auto& e : res.errors)
      std::fprintf(stderr, "error: %s\n", diagnostic_text(e).c_str());
    return std::nullopt;
  }
  return std::move(res.value);
}

int cmd_agents(load_result loaded, bool json) {
  auto cfg = usable_or_report(std::move(loaded));
  if (!cfg)
    return exit_usage;
  system_config sys_cfg{false, false,
                        static_cast<size_t>(cfg->settings.scheduler_threads)};
  caf::actor_system sys{sys_cfg};
  auto statuses = probe_agents(sys, *cfg, make_posix_process_runner());
  auto state_dir = resolve_state_dir(cfg->settings.state_dir);
  if (json) {
    auto arr = nlohmann::ordered_json::array();
    for (auto& s : statuses) {
      auto j = to_json(s, read_breaker(state_dir, s.name));
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", dump_json(arr).c_str());
    return exit_ok;
  }
  std::printf("Config: %s\n\n", shown(cfg->source).c_str());
  std::vector<std::vector<std::string>> rows;
  rows.push_back(
    {"AGENT", "ADAPTER", "STATUS", "VERSION", "COMMAND", "ROLE", "BREAKER"});
  std::vector<std::string> breaker_notes;
  for (auto& s : statuses) {
    auto b = read_breaker(state_dir, s.name);
    rows.push_back({s.name, to_string(s.kind), to_string(s.status),
                    s.version.empty() ? "-" : s.version,
                    s.path.empty() ? s.command : s.path,
                    s.role.empty() ? "-" : s.role, b.text});
    if (!b.reason.empty())
      breaker_notes.push_back(shown(s.name) + ": circuit " + b.text + ": "
                              + shown(b.reason));
  }
  print_table(rows);
  if (!breaker_notes.empty()) {
    std::printf("\n");
    for (auto& n : breaker_notes)
      std::printf("%s\n", n.c_str());
  }
  bool any_detail = false;
  for (auto& s : statuses) {
    if (s.detail.empty() || s.status == availability::disabled)
      continue;
    if (!any_detail)
      std::printf("\n");
    any_detail = true;
    std::printf("%s: %s\n", shown(s.name).c_str(), shown(s.detail).c_str());
  }
  return exit_ok;
}

int cmd_validate(const std::string& config_path, const load_result& res) {
  auto path = find_config_path(config_path);
  auto source = path.empty() ? std::string{"built-in default"} : path;
  for (auto& w : res.warnings)
    std::printf("warning: %s\n", diagnostic_text(w).c_str());
  if (!res.errors.empty() || !res.value) {
    for (auto& e : res.errors)
      std::printf("error: %s\n", diagnostic_text(e).c_str());
    std::printf("%s: %zu error(s), %zu warning(s)\n", source.c_str(),
                res.errors.size(), res.warnings.size());
    return exit_usage;
  }
  auto& cfg = *res.value;
  size_t enabled = 0;
  for (auto& a : cfg.agents)
    enabled += a.enabled ? 1 : 0;
  std::printf("%s: valid — %zu agent(s) (%zu enabled), %zu workflow(s), "
              "%zu warning(s)\n",
              source.c_str(), cfg.agents.size(), enabled, cfg.workflows.size(),
              res.warnings.size());
  return exit_ok;
}

int cmd_workflows(load_result loaded, bool json) {
  auto cfg = usable_or_report(std::move(loaded));
  if (!cfg)
    return exit_usage;
  if (json) {
    auto arr = nlohmann::ordered_json::array();
    for (auto& wf : cfg->workflows) {
      nlohmann::ordered_json j;
      j["name"] = wf.name;
      j["description"] = wf.description;
      j["max_iterations"] = wf.max_iterations;
      j["min_suggestions_threshold"] = wf.min_suggestions_threshold;
      auto steps = nlohmann::ordered_json::array();
      for (auto& step : wf.steps) {
        auto items = nlohmann::ordered_json::array();
        for (auto& item : step.items)
          items.push_back({{"agent", item.agent}, {"task", item.task}});
        steps.push_back(std::move(items));
      }
      j["steps"] = std::move(steps);
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", dump_json(arr).c_str());
    return exit_ok;
  }
  std::printf("Config: %s\n\n", shown(cfg->source).c_str());
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"WORKFLOW", "ITER", "THRESHOLD", "STEPS", "DESCRIPTION"});
  for (auto& wf : cfg->workflows)
    rows.push_back({wf.name, std::to_string(wf.max_iterations),
                    std::to_string(wf.min_suggestions_threshold),
                    describe_steps(wf),
                    wf.description.empty() ? "-" : wf.description});
  print_table(rows);
  return exit_ok;
}

namespace {

/// `run --dry-run`: checks the run like the coordinator's submit (nothing
/// is submitted, nothing written) and prints each step's plan.
int dry_run(const config& cfg, const run_options& opts) {
  auto resolved = resolve_run(cfg, to_spec(opts), make_run_id());
  if (!resolved)
    return report_refusal(resolved.error());
  const auto& wf = resolved->workflow;
  std::vector<std::string> missing;
  for (auto& name : agents_of(wf)) {
    auto why = probe_agent(*cfg.find_agent(name));
    if (!why.empty())
      missing.push_back(name + " (" + why + ")");
  }
  print_dry_run(cfg, wf, opts, resolved->workspace, resolved->max_iterations);
  for (auto& m : missing)
    std::printf("warning: agent %s\n", m.c_str());
  return exit_ok;
}

} // namespace

int cmd_run(const run_options& given, load_result loaded) {
  auto opts = given;
  auto usable = usable_or_report(std::move(loaded));
  if (!usable)
    return exit_usage;
  auto cfg = std::make_shared<const config>(std::move(*usable));
  if (opts.task == "-") {
    // Long tasks come through stdin: one argv element is capped at 128 KiB.
    // One byte past the limit is enough to refuse; the rest is never read.
    auto limit = cfg->settings.max_task_chars;
    if (!read_stdin(limit, opts.task)) {
      std::fprintf(stderr,
                   "error: the task text on stdin is longer than the limit "
                   "of %zu bytes (settings.max_task_chars)\n",
                   limit);
      return exit_usage;
    }
  }
  if (opts.dry_run)
    return dry_run(*cfg, opts);
  // -- the run: a request to the coordinator --------------------------------
  // It checks the task, the workflow, `--agents` (which travels in the
  // request: the shared config is never rewritten), the agents' availability
  // and the workspace and its lock, and answers with the run's id.
  auto spec = to_spec(opts);
  run_wait outcome;
  std::string run_id;
  std::string ws_str;
  {
    system_config sys_cfg{false, false,
                          static_cast<size_t>(cfg->settings.scheduler_threads)};
    caf::actor_system sys{sys_cfg};
    coordinator_deps deps;
    deps.runner = make_posix_process_runner();
    deps.limit_store = limit_store_for(*cfg);
    // The agents' circuit breakers outlive the process (issue 12).
    // Only a state directory that passes open_state_dir's checks (ours,
    // 0700, not a link) is used.
    if (auto dir = resolve_state_dir(cfg->settings.state_dir); !dir.empty()) {
      std::string error;
      if (open_state_dir(dir, error))
        deps.state_dir = dir;
    }
    auto coord = spawn_coordinator(sys, cfg, deps);
    caf::scoped_actor self{sys};
    self->monitor(coord);
    // Signals become messages: a cancel of every run of this process to
    // the coordinator, and a word to this actor (exit code, grace period).
    // Declared after `self` so that it stops first, and before the system's
    // destructor waits for its watcher.
    signal_bridge signals{
      sys, [coord, waiter = caf::actor_cast<caf::actor>(self)](int signo) {
        caf::anon_send(coord, atom::cancel_v, std::string{});
        caf::anon_send(waiter, signal_atom::value, static_cast<int32_t>(signo));
      }};
    caf::error refused;
    self->request(coord, caf::infinite, atom::submit_v, spec)
      .receive(
        [&](std::string& id) {
          run_id = std::move(id);
        },
        [&](caf::error& e) {
          refused = std::move(e);
        });
    if (refused) {
      signals.stop();
      self->send_exit(coord, caf::exit_reason::user_shutdown);
      return report_refusal(refused);
    }
    // What the run does, for the header: the coordinator resolved the same
    // spec the same way when it accepted it.
    auto plan = resolve_run(*cfg, spec, run_id);
    auto progress_out = opts.json ? stderr : stdout;
    if (plan)
      std::fprintf(progress_out,
                   "Run %s: workflow %s (%s), at most %d "
                   "iteration(s)\n",
                   run_id.c_str(), plan->workflow.name.c_str(),
                   describe_steps(plan->workflow).c_str(),
                   plan->max_iterations);
    auto display = sys.spawn(display_impl, progress_out, opts.verbose);
    self->send(coord, atom::subscribe_v, run_id, uint64_t{0},
               progress_sink{display});
    outcome = await_result(sys, *self, coord, display, run_id,
                           cfg->settings.kill_grace);
    signals.stop();
    if (!outcome.got_result) {
      // The run's workspace, for the message below.
      self->request(coord, std::chrono::seconds{5}, atom::status_v, run_id)
        .receive(
          [&](run_info& info) {
            ws_str = info.workspace;
          },
          [](caf::error&) {});
    }
    // Nothing may keep the actor system (its destructor waits for every
    // actor) alive: the coordinator cancels its steps and stops its agents
    // when it exits, and the display gets a bounded wait.
    if (!outcome.display_down)
      self->request(display, std::chrono::seconds{5}, atom::flush_v)
        .receive([](bool) {}, [](caf::error&) {});
    self->send(coord, atom::cancel_v, std::string{});
    self->send_exit(coord, caf::exit_reason::user_shutdown);
    self->send_exit(display, caf::exit_reason::user_shutdown);
  }
  if (!outcome.got_result) {
    std::fprintf(stderr, "error: %s\n", outcome.failure.c_str());
    if (outcome.run_lost)
      std::fprintf(stderr,
                   "The workspace %s may hold what the agents wrote "
                   "so far; its manifest may be missing or out of "
                   "date.\n",
                   ws_str.empty() ? "of the run" : shown(ws_str).c_str());
    return outcome.signalled ? exit_interrupted : exit_failure;
  }
  if (opts.json) {
    std::printf("%s\n", dump_json(run_json(outcome.result)).c_str());
  } else
    print_summary(outcome.result, terminal::for_stream(stdout));
  if (outcome.result.status == run_status::cancelled || outcome.signalled)
    return exit_interrupted;
  if (outcome.result.status == run_status::failed)
    return exit_failure;
  return exit_ok;
}

int cmd_sessions(load_result loaded, bool json) {
  auto cfg = usable_or_report(std::move(loaded));
  if (!cfg)
    return exit_usage;
  auto state_dir = resolve_state_dir(cfg->settings.state_dir);
  if (state_dir.empty()) {
    std::fprintf(stderr, "error: no state directory: set settings.state_dir, "
                         "$XDG_STATE_HOME or $HOME\n");
    return exit_failure;
  }
  session_store store{state_dir};
  std::string error;
  auto all = store.list(error);
  if (!error.empty()) {
    std::fprintf(stderr, "error: %s\n", shown(error).c_str());
    return exit_failure;
  }
  if (json) {
    auto arr = nlohmann::ordered_json::array();
    for (auto& l : all) {
      nlohmann::ordered_json j;
      j["name"] = l.name;
      j["path"] = l.path.string();
      if (l.session) {
        j["session_id"] = l.session->session_id;
        j["created_at"] = l.session->created_at;
        j["messages"] = l.session->conversation_history.size();
        j["workflow"] = l.session->workflow;
        j["workspace"] = l.session->workspace;
        j["error"] = nullptr;
      } else {
        j["session_id"] = nullptr;
        j["created_at"] = nullptr;
        j["messages"] = nullptr;
        j["workflow"] = nullptr;
        j["workspace"] = nullptr;
        j["error"] = l.error;
      }
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", dump_json(arr).c_str());
    return exit_ok;
  }
  if (all.empty()) {
    std::printf("No saved sessions in %s.\n",
                shown(store.dir().string()).c_str());
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "CREATED", "MESSAGES", "WORKFLOW", "WORKSPACE"});
  std::vector<std::string> errors;
  for (auto& l : all) {
    if (l.session) {
      rows.push_back({l.name, l.session->created_at,
                      std::to_string(l.session->conversation_history.size()),
                      l.session->workflow, l.session->workspace});
    } else {
      rows.push_back({l.name, "-", "-", "-", "(unreadable, see below)"});
      errors.push_back(l.error);
    }
  }
  print_table(rows);
  if (!errors.empty()) {
    std::printf("\n");
    for (auto& e : errors)
      std::printf("error: %s\n", shown(e).c_str());
  }
  return exit_ok;
}

int cmd_serve(const orch::server::server_options& opts,
              const pool_options& pool, load_result loaded) {
  auto usable = usable_or_report(std::move(loaded));
  if (!usable)
    return exit_usage;
  if (auto e = pool.check(); !e.empty()) {
    std::fprintf(stderr, "error: %s\n", shown(e).c_str());
    return exit_usage;
  }
  auto cfg = std::make_shared<const config>(std::move(*usable));
  orch::server::serve_backend backend;
  if (pool.enabled()) {
    // -- the runs go to worker nodes: the routes talk to a node pool.
    backend.network = true;
    backend.prepare = [&pool](system_config& sys_cfg) {
      prepare_pool_config(sys_cfg, pool.tls,
                          std::chrono::milliseconds{
                            static_cast<int64_t>(pool.node_timeout * 1000)});
    };
    backend.spawn = [&pool](caf::actor_system& sys,
                            const std::filesystem::path& state_dir,
                            std::string& error) -> coordinator_actor {
      auto with_dir = pool;
      if (with_dir.out_dir.empty()) {
        if (state_dir.empty()) {
          error = "--workers: the files of the runs come back to the state "
                  "directory, which cannot be used; give --out-dir";
          return {};
        }
        with_dir.out_dir = (state_dir / "worker-files").string();
      }
      node_pool_deps deps;
      // As many finished runs as a local coordinator keeps.
      deps.retained_runs = coordinator_deps{}.retained_runs;
      return start_node_pool(sys, with_dir, std::move(deps), error);
    };
  }
  return orch::server::serve(opts, cfg, backend);
}

} // namespace orch::cli

// -- h16a

namespace orch::cli {

coordinator_deps local_coordinator_deps(const config& cfg) {
  coordinator_deps deps;
  deps.runner = make_posix_process_runner();
  deps.limit_store = limit_store_for(cfg);
  if (auto dir = resolve_state_dir(cfg.settings.state_dir); !dir.empty()) {
    std::string error;
    if (open_state_dir(dir, error))
      deps.state_dir = dir;
  }
  return deps;
}

} // namespace orch::cli
