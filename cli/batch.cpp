// `ai-orchestrator batch`: the front door of actors/batch.hpp. Checks the
// input once (every bad line reported with its number), opens the output
// (continuing it with --resume), then hands the tasks to a batch actor that
// feeds a coordinator, and shows its progress until it ends or a signal
// stops it.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include "actors/batch.hpp"
#include "actors/coordinator.hpp"
#include "actors/node.hpp"
#include "actors/signals.hpp"
#include "actors/system_config.hpp"
#include "cli/commands.hpp"
#include "cli/node_commands.hpp"
#include "cli/terminal.hpp"
#include "runtime/audit_log.hpp"
#include "runtime/batch_task.hpp"
#include "runtime/jsonl_appender.hpp"
#include "runtime/text.hpp"

namespace orch::cli {

namespace {

/// A signal, sent by the signal bridge to the waiting CLI actor.
using batch_signal_atom = caf::atom_constant<caf::atom("orchBSig")>;

/// Bad lines printed one by one; the rest are counted.
constexpr std::size_t max_bad_lines_shown = 100;

/// The coordinator the batch feeds. Anything that speaks coordinator_actor
/// (submit, result, cancel) will do: this is where a pool of worker nodes
/// takes the local coordinator's place.
coordinator_actor batch_backend(caf::actor_system& sys,
                                std::shared_ptr<const config> cfg,
                                const batch_options& opts) {
  auto deps = local_coordinator_deps(*cfg);
  // The batch subscribes to nothing: no event is kept for a replay.
  deps.event_buffer = 0;
  // Every run is collected by the batch right after its submit: a finished
  // run is dropped once its result went out; the few finished before the
  // batch asked are kept until it does (at most one per slot).
  deps.drop_collected = true;
  deps.retained_runs = std::max<std::size_t>(100, opts.concurrency);
  // Runs beyond what the agents can take wait in the coordinator as their
  // request alone (no workflow actor, no step queued at an agent): twice
  // the agents' slots keeps every slot fed.
  std::size_t slots = 0;
  for (const auto& agent : cfg->agents)
    if (agent.enabled)
      slots += static_cast<std::size_t>(std::max(1, agent.max_concurrency));
  deps.max_active_runs = std::max<std::size_t>(16, 2 * slots);
  return spawn_coordinator(sys, std::move(cfg), std::move(deps));
}

/// Raises the soft limit of open files to the hard one: every run in flight
/// holds its workspace's lock open.
void raise_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

/// Returns "1m05s" for an ETA.
std::string eta_text(const batch_stats& s) {
  auto done = s.succeeded + s.failed;
  if (s.total == 0 || done == 0 || s.elapsed_ms <= 0 || done >= s.total)
    return "-";
  auto per_ms = static_cast<double>(done) / static_cast<double>(s.elapsed_ms);
  auto left = static_cast<double>(s.total - done) / per_ms;
  return format_duration(static_cast<long long>(left));
}

std::string rate_text(const batch_stats& s) {
  auto done = s.succeeded + s.failed;
  char buf[32];
  auto rate = s.elapsed_ms > 0 ? static_cast<double>(done) * 1000.0
                                   / static_cast<double>(s.elapsed_ms)
                               : 0.0;
  std::snprintf(buf, sizeof(buf), "%.1f/s", rate);
  return buf;
}

/// The live bar on a terminal (one line, redrawn).
std::string bar_line(const batch_stats& s, const terminal& term) {
  constexpr int width = 24;
  auto done = s.succeeded + s.failed;
  int filled = s.total > 0 ? static_cast<int>(static_cast<double>(width)
                                              * static_cast<double>(done)
                                              / static_cast<double>(s.total))
                           : 0;
  filled = std::clamp(filled, 0, width);
  std::string bar;
  for (int i = 0; i < width; ++i)
    bar += i < filled ? "█" : "░";
  return bar + " " + std::to_string(done) + "/" + std::to_string(s.total) + "  "
         + term.green("✓ " + std::to_string(s.succeeded)) + "  "
         + term.red("✗ " + std::to_string(s.failed)) + "  running "
         + std::to_string(s.running) + "  " + rate_text(s) + "  ETA "
         + eta_text(s);
}

/// A plain progress line (not a terminal).
std::string plain_line(const batch_stats& s) {
  auto done = s.succeeded + s.failed;
  return "batch: " + std::to_string(done) + "/" + std::to_string(s.total)
         + " done (" + std::to_string(s.succeeded) + " succeeded, "
         + std::to_string(s.failed) + " failed), " + std::to_string(s.running)
         + " running, " + rate_text(s) + ", ETA " + eta_text(s) + ", elapsed "
         + format_duration(s.elapsed_ms);
}

/// Reads the whole input once: counts the tasks and reports every bad line.
struct input_check {
  uint64_t tasks = 0;
  uint64_t bad = 0;
  /// The ids of the tasks.
  std::unordered_set<std::string> ids;
  std::string error;
};

input_check check_input(const batch_options& opts,
                        const batch_task_limits& limits) {
  input_check out;
  auto fd = open_batch_input(opts.input, out.error);
  if (!fd)
    return out;
  batch_task_source source{std::move(fd), limits};
  batch_task task;
  std::vector<bad_line> bad;
  auto report = [&] {
    for (auto& b : bad) {
      if (out.bad < max_bad_lines_shown)
        std::fprintf(stderr, "%s:%llu: %s\n", shown(opts.input).c_str(),
                     static_cast<unsigned long long>(b.line),
                     shown(b.error).c_str());
      ++out.bad;
    }
    bad.clear();
  };
  while (source.next(task, bad)) {
    report();
    ++out.tasks;
  }
  report();
  if (out.bad > max_bad_lines_shown)
    std::fprintf(
      stderr, "%s: ... and %llu more bad line(s)\n", shown(opts.input).c_str(),
      static_cast<unsigned long long>(out.bad - max_bad_lines_shown));
  out.ids = source.take_ids();
  if (!source.error().empty())
    out.error = "cannot read " + opts.input + ": " + source.error();
  return out;
}

/// How the wait for the batch ended.
struct batch_wait {
  std::optional<batch_stats> stats;
  bool signalled = false;
  /// Why there are no final stats.
  std::string failure;
};

batch_wait await_batch(caf::actor_system& sys, caf::blocking_actor& self,
                       const batch_actor& batch, const coordinator_actor& coord,
                       const batch_options& opts,
                       std::chrono::milliseconds kill_grace) {
  using clock = std::chrono::steady_clock;
  auto term = terminal::for_stream(stderr);
  const auto poll = term.tty ? std::chrono::milliseconds{250}
                             : std::chrono::milliseconds{static_cast<int64_t>(
                               std::max(0.05, opts.progress_interval) * 1000)};
  const auto grace = kill_grace + std::chrono::seconds{10};
  batch_wait out;
  self.monitor(batch);
  self.monitor(coord);
  self.send(batch, atom::run_task_v);
  std::optional<clock::time_point> signalled_at;
  std::optional<batch_stats> latest;
  bool drawn = false;
  auto draw = [&](const batch_stats& s) {
    if (term.tty) {
      std::fputs(("\r\x1b[K" + bar_line(s, term)).c_str(), stderr);
      drawn = true;
    } else {
      std::fputs((plain_line(s) + "\n").c_str(), stderr);
    }
    std::fflush(stderr);
  };
  bool done = false;
  while (!done) {
    self.receive(
      [&](batch_stats& s) {
        // Status answers, then the final one just before the batch's down
        // message.
        latest = std::move(s);
        draw(*latest);
      },
      [&](caf::error& e) {
        out.failure = sys.render(e);
        done = true;
      },
      [&](caf::down_msg& dm) {
        if (dm.source == batch.address()) {
          // The final stats came just before (same sender, in order).
          out.stats = latest;
          if (!dm.reason || dm.reason == caf::exit_reason::normal)
            done = true;
          else {
            out.failure = "the batch stopped: " + sys.render(dm.reason);
            done = true;
          }
        }
        // The coordinator's death reaches the batch, which then ends.
      },
      [&](batch_signal_atom, int32_t) {
        out.signalled = true;
        if (!signalled_at) {
          signalled_at = clock::now();
          if (drawn)
            std::fputs("\n", stderr);
          std::fprintf(stderr, "Interrupted: cancelling the runs in flight "
                               "(finished results are kept)...\n");
        }
        self.send(batch, atom::cancel_v);
      },
      caf::after(poll) >>
        [&] {
          if (signalled_at && clock::now() - *signalled_at > grace) {
            out.failure
              = "the runs did not stop within "
                + format_duration(
                  std::chrono::duration_cast<std::chrono::milliseconds>(grace)
                    .count());
            done = true;
            return;
          }
          self.send(batch, atom::status_v);
        });
  }
  if (drawn)
    std::fputs("\n", stderr);
  return out;
}

void print_summary(const batch_stats& s, const batch_options& opts,
                   std::size_t lines_before) {
  auto done = s.succeeded + s.failed;
  std::printf("Batch: %llu task(s) ended: %llu succeeded, %llu failed",
              static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(s.succeeded),
              static_cast<unsigned long long>(s.failed));
  if (s.refused > 0)
    std::printf(" (%llu refused before running)",
                static_cast<unsigned long long>(s.refused));
  std::printf(", in %s (%s)\n", format_duration(s.elapsed_ms).c_str(),
              rate_text(s).c_str());
  if (s.total > done)
    std::printf("Not run: %llu task(s) (run again with --resume)\n",
                static_cast<unsigned long long>(s.total - done));
  if (s.skipped > 0)
    std::printf("Skipped: %llu task(s) already in %s (%zu line(s) there "
                "before)\n",
                static_cast<unsigned long long>(s.skipped),
                shown(opts.out).c_str(), lines_before);
  if (s.bad_lines > 0)
    std::printf("Bad input lines: %llu (reported above, skipped)\n",
                static_cast<unsigned long long>(s.bad_lines));
  std::printf("Results: %s\n", shown(opts.out).c_str());
}

} // namespace

int cmd_batch(const batch_options& opts, load_result loaded) {
  auto usable = usable_or_report(std::move(loaded));
  if (!usable)
    return exit_usage;
  auto cfg = std::make_shared<const config>(std::move(*usable));
  if (cfg->find_workflow(opts.workflow) == nullptr) {
    std::fprintf(stderr, "error: unknown workflow '%s'\n",
                 shown(opts.workflow).c_str());
    return exit_usage;
  }
  // -- h16b: worker nodes (checked before anything is read or written)
  if (auto e = opts.pool.check(); !e.empty()) {
    std::fprintf(stderr, "error: %s\n", shown(e).c_str());
    return exit_usage;
  }
  raise_file_limit();
  batch_task_limits limits;
  limits.max_task_bytes = cfg->settings.max_task_chars;
  // -- the input: checked whole before anything starts ----------------------
  auto checked = check_input(opts, limits);
  if (!checked.error.empty()) {
    std::fprintf(stderr, "error: %s\n", shown(checked.error).c_str());
    return exit_usage;
  }
  if (checked.bad > 0 && opts.strict) {
    std::fprintf(
      stderr, "error: %llu bad line(s) in %s; nothing was run (--strict)\n",
      static_cast<unsigned long long>(checked.bad), shown(opts.input).c_str());
    return exit_usage;
  }
  // -- the output: --resume reads the ids done -------------------------------
  sync_policy policy;
  resume_scan scan;
  std::string error;
  auto out = jsonl_appender::open(opts.out, opts.resume, policy, scan, error);
  if (!out) {
    std::fprintf(stderr, "error: %s\n", shown(error).c_str());
    return exit_usage;
  }
  if (scan.truncated_bytes > 0)
    std::fprintf(stderr,
                 "warning: %s ended in a torn line (%llu bytes, no newline): "
                 "cut off; its task runs again\n",
                 shown(opts.out).c_str(),
                 static_cast<unsigned long long>(scan.truncated_bytes));
  for (auto n : scan.unreadable)
    std::fprintf(stderr,
                 "warning: %s:%llu is not a result line with an id "
                 "(ignored)\n",
                 shown(opts.out).c_str(), static_cast<unsigned long long>(n));
  uint64_t skipped = 0;
  for (auto& id : checked.ids)
    skipped += scan.ids.count(id);
  checked.ids.clear();
  checked.tasks -= skipped;
  auto input = open_batch_input(opts.input, error);
  if (!input) {
    std::fprintf(stderr, "error: %s\n", shown(error).c_str());
    return exit_usage;
  }
  std::fprintf(
    stderr, "Batch: %llu task(s) from %s, %zu at a time, results to %s%s\n",
    static_cast<unsigned long long>(checked.tasks), shown(opts.input).c_str(),
    opts.concurrency, shown(opts.out).c_str(),
    skipped > 0
      ? (" (" + std::to_string(skipped) + " already there, skipped)").c_str()
      : "");
  auto lines_before = scan.lines;
  batch_deps deps;
  deps.concurrency = std::max<std::size_t>(1, opts.concurrency);
  deps.source = std::make_shared<batch_task_source>(std::move(input), limits,
                                                    std::move(scan.ids));
  deps.out = std::shared_ptr<jsonl_appender>{std::move(out)};
  deps.default_workflow = opts.workflow;
  deps.user = os_user_name();
  deps.no_cache = opts.no_cache;
  deps.total = checked.tasks;
  deps.bad_lines = checked.bad;
  batch_wait outcome;
  {
    system_config sys_cfg{false, opts.pool.enabled(),
                          static_cast<size_t>(cfg->settings.scheduler_threads)};
    prepare_pool_config(sys_cfg, opts.pool.tls,
                        std::chrono::milliseconds{
                          static_cast<int64_t>(opts.pool.node_timeout * 1000)});
    caf::actor_system sys{sys_cfg};
    coordinator_actor coord;
    if (!opts.pool.enabled()) {
      coord = batch_backend(sys, cfg, opts);
    } else {
      // -- h16b: the tasks run on worker nodes; the pool speaks
      // coordinator_actor, so the batch does not know the difference.
      node_pool_deps pool_deps;
      // The batch collects every result right after its submit.
      pool_deps.drop_collected = true;
      std::string pool_error;
      coord = start_node_pool(sys, opts.pool, std::move(pool_deps), pool_error);
      if (!coord) {
        std::fprintf(stderr, "error: %s\n", shown(pool_error).c_str());
        return exit_failure;
      }
    }
    deps.coordinator = coord;
    auto batch = spawn_batch(sys, std::move(deps));
    caf::scoped_actor self{sys};
    // Signals become messages to the waiting actor, which stops the batch.
    signal_bridge signals{
      sys, [waiter = caf::actor_cast<caf::actor>(self)](int signo) {
        caf::anon_send(waiter, batch_signal_atom::value,
                       static_cast<int32_t>(signo));
      }};
    outcome = await_batch(sys, *self, batch, coord, opts,
                          cfg->settings.kill_grace);
    signals.stop();
    // Nothing may keep the actor system alive: the coordinator cancels what
    // is left and stops its agents when it exits.
    self->send_exit(batch, caf::exit_reason::user_shutdown);
    self->send(coord, atom::cancel_v, std::string{});
    self->send_exit(coord, caf::exit_reason::user_shutdown);
  }
  if (!outcome.stats) {
    std::fprintf(stderr, "error: %s\n",
                 shown(outcome.failure.empty() ? "the batch ended without "
                                                 "a result"
                                               : outcome.failure)
                   .c_str());
    return outcome.signalled ? exit_interrupted : exit_failure;
  }
  auto& s = *outcome.stats;
  print_summary(s, opts, lines_before);
  if (!outcome.failure.empty())
    std::fprintf(stderr, "error: %s\n", shown(outcome.failure).c_str());
  if (!s.error.empty())
    std::fprintf(stderr, "error: %s\n", shown(s.error).c_str());
  if (outcome.signalled)
    return exit_interrupted;
  if (!s.error.empty() || !outcome.failure.empty() || s.failed > 0
      || s.bad_lines > 0)
    return exit_failure;
  return exit_ok;
}

} // namespace orch::cli
