#include "cli/shell.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <nlohmann/json.hpp>

#include "actors/coordinator.hpp"
#include "actors/session_actor.hpp"
#include "actors/signals.hpp"
#include "actors/system_config.hpp"
#include "adapters/adapter.hpp"
#include "cli/commands.hpp"
#include "cli/line_editor.hpp"
#include "cli/progress_display.hpp"
#include "cli/terminal.hpp"
#include "runtime/audit_log.hpp"
#include "runtime/rate_limit_store.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/state_dir.hpp"
#include "runtime/text.hpp"

namespace orch::cli {

namespace {

using json = nlohmann::ordered_json;

/// The shell prints multi-line agent text as it is, made safe.
std::string shown_lines(std::string_view s) {
  return shown(s, true);
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// -- the shell -------------------------------------------------------------

constexpr auto result_poll = std::chrono::milliseconds{100};

const std::vector<std::pair<std::string, std::string>>& command_help() {
  static const std::vector<std::pair<std::string, std::string>> list = {
    {"/help", "Show all available commands"},
    {"/followup", "<msg>  Explicit follow-up to the previous task"},
    {"/agents", "List all available agents and their status"},
    {"/workflows", "List all available workflows"},
    {"/switch", "<agent>  Run the next tasks with that agent alone (/switch "
                "off: the workflow's agents again)"},
    {"/workflow", "<name>  Change the current workflow"},
    {"/history", "Show the conversation history"},
    {"/context", "Show the current context"},
    {"/save", "[name]  Save the session"},
    {"/load", "<name>  Load a saved session"},
    {"/reset", "Clear all context (asks first)"},
    {"/info", "Show system information"},
    {"/clear", "Clear the screen"},
    {"/exit", "Leave the shell"},
    {"/quit", "Leave the shell"},
  };
  return list;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                         prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::shared_ptr<rate_limit_store> limit_store(const config& cfg) {
  if (!cfg.rate_limiting.enabled)
    return nullptr;
  std::string error;
  auto dir = resolve_state_dir(cfg.settings.state_dir);
  if (!dir.empty())
    if (auto fd = open_state_dir(dir, error))
      return open_file_rate_limit_store(fd.get(), error);
  return nullptr;
}

/// The front door of one session: the line editor runs on this (the main)
/// thread and blocks; everything the shell knows of the session it asks the
/// session actor by messages, through a scoped actor, and waits for the
/// answer while watching the signal pipe.
class shell {
public:
  shell(std::shared_ptr<const config> cfg, int signal_fd)
    : cfg_{std::move(cfg)}, signal_fd_{signal_fd} {
    state_dir_ = resolve_state_dir(cfg_->settings.state_dir);
    if (!state_dir_.empty()) {
      std::string error;
      if (!open_state_dir(state_dir_, error)) {
        std::fprintf(stderr, "warning: no state directory: %s\n",
                     shown_lines(error).c_str());
        state_dir_.clear();
      }
    }
  }
  ~shell() {
    stop_actors();
  }

  int run(const shell_options& opts);

private:
  // ---- plumbing
  void start_actors();
  void stop_actors();
  /// Asks the session; prints the error (to `err`) and returns nullopt when
  /// it refuses.
  template<class T, class... Ts>
  std::optional<T> ask_session(std::FILE* err, Ts&&... xs) {
    std::optional<T> out;
    (*self_)
      ->request(session_, caf::infinite, std::forward<Ts>(xs)...)
      .receive(
        [&](T& x) {
          out = std::move(x);
        },
        [&](caf::error& e) {
          std::fprintf(err, "error: %s\n", shown_lines(error_text(e)).c_str());
        });
    return out;
  }
  std::optional<session_info> info() {
    return ask_session<session_info>(stdout, atom::info_v);
  }
  std::optional<run_result> wait_result(const std::string& id,
                                        const caf::actor& display);
  std::string ask(const std::string& question);
  bool confirm(const std::string& question);
  std::string prompt() {
    auto i = info();
    return "orchestrator (" + (i ? i->workflow : std::string{"?"}) + ") > ";
  }
  std::vector<std::string> complete(const std::string& before,
                                    const std::string& word) const;
  std::vector<std::string> saved_sessions() const;

  // ---- commands
  /// Returns false to leave the shell.
  bool dispatch(const std::string& line);
  void message_task(const std::string& msg, followup_mode mode);
  void cmd_help();
  void cmd_agents();
  void cmd_workflows();
  void cmd_switch(const std::string& arg);
  void cmd_workflow(const std::string& arg);
  void cmd_history();
  void cmd_context();
  void cmd_save(const std::string& name);
  bool load(const std::string& name, std::FILE* err);
  void cmd_reset();
  void cmd_info();
  bool leave();

  std::shared_ptr<const config> cfg_;
  int signal_fd_;
  std::filesystem::path state_dir_;
  std::unique_ptr<line_editor> editor_;
  std::unique_ptr<system_config> sys_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<caf::scoped_actor> self_;
  coordinator_actor coord_;
  session_actor session_;
  bool terminated_ = false;
};

void shell::start_actors() {
  // The system keeps a reference to its config: both live as long.
  sys_cfg_ = std::make_unique<system_config>(
    false, false, static_cast<size_t>(cfg_->settings.scheduler_threads));
  sys_ = std::make_unique<caf::actor_system>(*sys_cfg_);
  coordinator_deps deps;
  deps.runner = make_posix_process_runner();
  deps.limit_store = limit_store(*cfg_);
  if (!state_dir_.empty())
    deps.state_dir = state_dir_;
  coord_ = spawn_coordinator(*sys_, cfg_, deps);
  session_deps sdeps;
  sdeps.state_dir = state_dir_;
  sdeps.user = os_user_name();
  session_ = spawn_session(*sys_, cfg_, coord_, sdeps);
  self_ = std::make_unique<caf::scoped_actor>(*sys_);
  (*self_)->monitor(coord_);
  (*self_)->monitor(session_);
}

void shell::stop_actors() {
  if (!sys_)
    return;
  // The coordinator cancels its runs and stops their agents when it exits.
  (*self_)->send(coord_, atom::cancel_v, std::string{});
  (*self_)->send_exit(session_, caf::exit_reason::user_shutdown);
  (*self_)->send_exit(coord_, caf::exit_reason::user_shutdown);
  session_ = nullptr;
  coord_ = nullptr;
  self_.reset();
  sys_.reset();
  sys_cfg_.reset();
}

std::optional<run_result> shell::wait_result(const std::string& id,
                                             const caf::actor& display) {
  auto& self = *self_;
  self->send(session_, atom::result_v, id);
  using clock = std::chrono::steady_clock;
  std::optional<clock::time_point> cancelled_at;
  const auto grace = cfg_->settings.kill_grace + std::chrono::seconds{10};
  std::optional<run_result> out;
  bool done = false;
  while (!done) {
    self->receive(
      [&](run_result& r) {
        out = std::move(r);
        done = true;
      },
      [&](caf::error& e) {
        std::printf("error: %s\n", shown_lines(error_text(e)).c_str());
        done = true;
      },
      [&](bool) {
        // The answer to a cancel.
      },
      [&](caf::down_msg& dm) {
        if (dm.source == coord_.address() || dm.source == session_.address()) {
          std::printf("error: the session stopped (%s)\n",
                      sys_->render(dm.reason).c_str());
          terminated_ = true;
          done = true;
        }
        // A dead display only loses the live view.
        (void)display;
      },
      caf::after(result_poll) >>
        [&] {
          unsigned char b = 0;
          while (::read(signal_fd_, &b, 1) == 1) {
            if (b != SIGINT)
              terminated_ = true;
            if (!cancelled_at) {
              // Ctrl-C cancels this task only: the session asks the
              // coordinator, which stops its agents (killed after
              // settings.kill_grace).
              std::printf("\nCancelling the task…\n");
              std::fflush(stdout);
              self->send(session_, atom::cancel_v);
              cancelled_at = clock::now();
            }
          }
          if (cancelled_at && clock::now() - *cancelled_at > grace) {
            std::printf("error: the task did not stop\n");
            done = true;
          }
        });
  }
  return out;
}

std::string shell::ask(const std::string& question) {
  auto r = editor_->read(question);
  if (r.kind == line_read::terminated)
    terminated_ = true;
  if (r.kind != line_read::line)
    return {};
  return lower(orch::text::trimmed(r.text));
}

bool shell::confirm(const std::string& question) {
  auto a = ask(question + " [y/N] ");
  return a == "y" || a == "yes";
}

std::vector<std::string> shell::saved_sessions() const {
  std::vector<std::string> out;
  if (state_dir_.empty())
    return out;
  std::error_code ec;
  for (auto& e :
       std::filesystem::directory_iterator{state_dir_ / "sessions", ec}) {
    auto n = e.path().filename().string();
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0)
      out.push_back(n.substr(0, n.size() - 5));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> shell::complete(const std::string& before,
                                         const std::string& word) const {
  std::vector<std::string> pool;
  auto cmd = orch::text::trimmed(before);
  if (cmd.empty()) {
    pool = shell_commands();
  } else if (cmd == "/workflow") {
    for (auto& wf : cfg_->workflows)
      pool.push_back(wf.name);
  } else if (cmd == "/switch") {
    for (auto& a : cfg_->agents)
      pool.push_back(a.name);
    pool.push_back("off");
  } else if (cmd == "/load" || cmd == "/save") {
    pool = saved_sessions();
  }
  std::vector<std::string> out;
  for (auto& p : pool)
    if (p.compare(0, word.size(), word) == 0)
      out.push_back(p);
  return out;
}

int shell::run(const shell_options& opts) {
  if (!cfg_->find_workflow(opts.workflow)) {
    std::fprintf(stderr,
                 "error: unknown workflow '%s'; run `ai-orchestrator "
                 "workflows` for the list\n",
                 shown_lines(opts.workflow).c_str());
    return exit_usage;
  }
  start_actors();
  if (!ask_session<session_info>(stderr, atom::set_workflow_v, opts.workflow))
    return exit_usage;
  if (!opts.load.empty() && !load(opts.load, stderr))
    return exit_usage;
  history_options h;
  h.state_dir = state_dir_;
  editor_ = make_line_editor(
    signal_fd_, h, [this](const std::string& before, const std::string& word) {
      return complete(before, word);
    });
  if (editor_->interactive())
    std::printf("ai-orchestrator %s shell — /help lists the commands, /exit "
                "leaves.\n",
                ORCH_VERSION);
  for (;;) {
    std::fflush(stdout);
    auto r = editor_->read(prompt());
    if (r.kind == line_read::interrupted)
      continue;
    if (r.kind == line_read::terminated) {
      terminated_ = true;
      break;
    }
    if (r.kind == line_read::end_of_input) {
      // Ctrl-D; at the end of piped input there is nobody to ask.
      if (!editor_->interactive() || leave())
        break;
      continue;
    }
    auto line = orch::text::trimmed(r.text);
    if (line.empty())
      continue;
    editor_->remember(line);
    if (!dispatch(line) || terminated_)
      break;
  }
  editor_->save_history();
  stop_actors();
  if (terminated_)
    return exit_interrupted;
  std::printf("Goodbye!\n");
  return exit_ok;
}

bool shell::dispatch(const std::string& line) {
  if (line[0] != '/') {
    message_task(line, followup_mode::detect);
    return true;
  }
  auto sp = line.find_first_of(" \t");
  auto cmd = line.substr(0, sp);
  auto arg = sp == std::string::npos ? std::string{}
                                     : orch::text::trimmed(line.substr(sp));
  if (cmd == "/exit" || cmd == "/quit")
    return !leave();
  if (cmd == "/help") {
    cmd_help();
  } else if (cmd == "/followup") {
    auto ctx = ask_session<session_context>(stdout, atom::context_v);
    if (arg.empty())
      std::printf("Usage: /followup <message>\n");
    else if (ctx && !ctx->has_previous)
      std::printf("There is no previous task to follow up; send it as a "
                  "message.\n");
    else if (ctx)
      message_task(arg, followup_mode::followup);
  } else if (cmd == "/agents") {
    cmd_agents();
  } else if (cmd == "/workflows") {
    cmd_workflows();
  } else if (cmd == "/switch") {
    cmd_switch(arg);
  } else if (cmd == "/workflow") {
    cmd_workflow(arg);
  } else if (cmd == "/history") {
    cmd_history();
  } else if (cmd == "/context") {
    cmd_context();
  } else if (cmd == "/save") {
    cmd_save(arg);
  } else if (cmd == "/load") {
    auto i = info();
    if (arg.empty())
      std::printf("Usage: /load <name>\n");
    else if (i
             && (i->unsaved == 0
                 || confirm("The session has " + std::to_string(i->unsaved)
                            + " unsaved message(s). Load anyway?")))
      load(arg, stdout);
  } else if (cmd == "/reset") {
    cmd_reset();
  } else if (cmd == "/info") {
    cmd_info();
  } else if (cmd == "/clear") {
    std::printf("\x1b[H\x1b[2J\x1b[3J");
    std::fflush(stdout);
  } else {
    std::printf("Unknown command %s. Did you mean %s? (/help lists the "
                "commands)\n",
                shown_lines(cmd).c_str(), closest_command(cmd).c_str());
  }
  return true;
}

void shell::message_task(const std::string& msg, followup_mode mode) {
  auto display = sys_->spawn(display_impl, stdout, false);
  auto stop_display = [&] {
    (*self_)
      ->request(display, std::chrono::seconds{5}, atom::flush_v)
      .receive([](bool) {}, [](caf::error&) {});
    (*self_)->send_exit(display, caf::exit_reason::user_shutdown);
  };
  std::optional<session_submitted> sub;
  for (;;) {
    session_message m;
    m.text = msg;
    m.mode = mode;
    m.progress = progress_sink{display};
    sub = ask_session<session_submitted>(stdout, atom::say_v, std::move(m));
    if (!sub || sub->kind != message_kind::ambiguous)
      break;
    auto a = ask("Does this continue the previous task? continue / new / "
                 "cancel: ");
    if (a == "continue" || a == "c") {
      mode = followup_mode::followup;
    } else if (a == "new" || a == "n") {
      mode = followup_mode::new_task;
    } else {
      std::printf("Cancelled; nothing was run.\n");
      sub.reset();
      break;
    }
  }
  if (!sub) {
    stop_display();
    return;
  }
  if (sub->kind == message_kind::followup && mode == followup_mode::detect)
    std::printf("💡 Detected as follow-up to previous task\n");
  std::fflush(stdout);
  auto res = wait_result(sub->run_id, caf::actor_cast<caf::actor>(display));
  stop_display();
  if (!res)
    return;
  auto term = terminal::for_stream(stdout);
  bool good = res->status == run_status::converged
              || res->status == run_status::completed;
  if (good)
    std::printf("%s Task completed successfully!\n", term.green("✓").c_str());
  else if (res->status == run_status::cancelled)
    std::printf("%s Task cancelled.\n", term.yellow("⚠").c_str());
  else
    std::printf(
      "%s Task %s%s\n", term.red("✗").c_str(), to_string(res->status).c_str(),
      res->message.empty() ? "" : (": " + shown_lines(res->message)).c_str());
  if (!res->files.empty()) {
    std::printf("📁 Generated Files:\n");
    for (auto& f : res->files)
      std::printf("  📄 %s\n", shown_lines(f).c_str());
  }
  std::printf("Workspace: %s\n", shown_lines(res->workspace).c_str());
}

void shell::cmd_help() {
  std::printf("Commands:\n");
  for (auto& [cmd, text] : command_help())
    std::printf("  %-11s %s\n", cmd.c_str(), text.c_str());
  std::printf("Any other line runs the current workflow; a short message "
              "with a word like \"add\", \"fix\" or \"also\" continues the "
              "previous task.\nCtrl-C cancels a running task, Ctrl-D "
              "leaves.\n");
}

void shell::cmd_agents() {
  auto i = info();
  std::printf("%-16s %-10s %-16s %s\n", "AGENT", "ADAPTER", "ROLE", "STATUS");
  for (auto& a : cfg_->agents) {
    auto why = a.enabled ? probe_agent(a) : std::string{"disabled"};
    std::string status = why.empty() ? "available" : why;
    if (i && a.name == i->agent)
      status += " (selected by /switch)";
    std::printf("%-16s %-10s %-16s %s\n", shown_lines(a.name).c_str(),
                to_string(a.kind).c_str(),
                a.role.empty() ? "-" : shown_lines(a.role).c_str(),
                shown_lines(status).c_str());
  }
}

void shell::cmd_workflows() {
  auto i = info();
  for (auto& wf : cfg_->workflows)
    std::printf("%s %-16s %s%s%s\n", i && wf.name == i->workflow ? "*" : " ",
                shown_lines(wf.name).c_str(), describe_steps(wf).c_str(),
                wf.description.empty() ? "" : " — ",
                shown_lines(wf.description).c_str());
}

void shell::cmd_switch(const std::string& arg) {
  if (arg.empty()) {
    std::printf("Usage: /switch <agent> (or /switch off)\n");
    return;
  }
  if (arg != "off" && !cfg_->find_agent(arg)) {
    std::printf("Unknown agent '%s'; /agents lists them.\n",
                shown_lines(arg).c_str());
    return;
  }
  auto name = arg == "off" ? std::string{} : arg;
  if (!ask_session<session_info>(stdout, atom::set_agent_v, name))
    return;
  if (name.empty())
    std::printf("✓ The workflow's own agents run again.\n");
  else
    std::printf("✓ The next tasks run every step with %s alone.\n",
                shown_lines(name).c_str());
}

void shell::cmd_workflow(const std::string& arg) {
  if (arg.empty()) {
    auto i = info();
    std::printf("Current workflow: %s (/workflows lists them)\n",
                i ? shown_lines(i->workflow).c_str() : "?");
    return;
  }
  auto wf = cfg_->find_workflow(arg);
  if (!wf) {
    std::printf("Unknown workflow '%s'; /workflows lists them.\n",
                shown_lines(arg).c_str());
    return;
  }
  if (ask_session<session_info>(stdout, atom::set_workflow_v, arg))
    std::printf("✓ Workflow: %s (%s)\n", shown_lines(arg).c_str(),
                describe_steps(*wf).c_str());
}

void shell::cmd_history() {
  auto h = ask_session<std::vector<session_entry>>(stdout, atom::history_v);
  if (!h)
    return;
  if (h->empty()) {
    std::printf("No messages yet.\n");
    return;
  }
  size_t n = 0;
  for (auto& m : *h) {
    std::printf("%3zu. [%s] %s: %s\n", ++n, m.timestamp.c_str(),
                shown_lines(m.role).c_str(), shown_lines(m.content).c_str());
    for (auto& f : m.files)
      std::printf("       📄 %s\n", shown_lines(f).c_str());
  }
}

void shell::cmd_context() {
  auto i = info();
  auto c = ask_session<session_context>(stdout, atom::context_v);
  if (!i || !c)
    return;
  std::printf("Session:  %s%s\n", i->session_id.c_str(),
              i->name.empty() ? ""
                              : (" (" + shown_lines(i->name) + ")").c_str());
  std::printf("Workflow: %s\n", shown_lines(i->workflow).c_str());
  std::printf("Agent:    %s\n", i->agent.empty()
                                  ? "the workflow's"
                                  : shown_lines(i->agent).c_str());
  if (!c->has_previous) {
    std::printf("Previous task: none\n");
  } else {
    std::printf("Previous task: %s\n", shown_lines(c->previous_task).c_str());
    std::printf("Finished: %s (%s)\n", c->timestamp.c_str(),
                to_string(c->status).c_str());
    std::printf("Summary:  %s\n", shown_lines(c->summary).c_str());
    std::printf("Files:    %zu\n", c->files.size());
    for (auto& f : c->files)
      std::printf("  📄 %s\n", shown_lines(f).c_str());
  }
  auto ws = c->has_previous ? c->workspace : i->workspace;
  std::printf("Workspace: %s\n",
              ws.empty() ? "none yet" : shown_lines(ws).c_str());
}

void shell::cmd_save(const std::string& name) {
  if (auto path = ask_session<std::string>(stdout, atom::save_v, name, false))
    std::printf("✓ Session saved to: %s\n", shown_lines(*path).c_str());
}

bool shell::load(const std::string& name, std::FILE* err) {
  auto i = ask_session<session_info>(err, atom::load_v, name);
  if (!i)
    return false;
  std::printf("✓ Loaded session '%s': %d message(s), workflow %s\n",
              shown_lines(name).c_str(), i->messages,
              shown_lines(i->workflow).c_str());
  return true;
}

void shell::cmd_reset() {
  if (!confirm("Clear the whole session (history and context)?")) {
    std::printf("Nothing was cleared.\n");
    return;
  }
  if (ask_session<session_info>(stdout, atom::reset_v))
    std::printf("✓ The session is cleared.\n");
}

void shell::cmd_info() {
  auto i = info();
  if (!i)
    return;
  std::printf("ai-orchestrator %s (C++ Actor Framework 0.17)\n", ORCH_VERSION);
  std::printf("Config:    %s\n", shown_lines(cfg_->source).c_str());
  std::printf("Workflow:  %s\n", shown_lines(i->workflow).c_str());
  std::printf("Agent:     %s\n", i->agent.empty()
                                   ? "the workflow's"
                                   : shown_lines(i->agent).c_str());
  std::printf("Session:   %s%s, created %s, %d message(s), %d unsaved\n",
              i->session_id.c_str(),
              i->name.empty() ? ""
                              : (" (" + shown_lines(i->name) + ")").c_str(),
              i->created_at.c_str(), i->messages, i->unsaved);
  if (!i->path.empty())
    std::printf("File:      %s\n", shown_lines(i->path).c_str());
  std::printf("Workspace: %s\n", shown_lines(i->workspace).c_str());
  std::printf("State dir: %s\n", state_dir_.empty()
                                   ? "none"
                                   : shown_lines(state_dir_.string()).c_str());
  std::printf("Agents:    %zu, workflows: %zu\n", cfg_->agents.size(),
              cfg_->workflows.size());
}

bool shell::leave() {
  auto i = info();
  if (!i || i->unsaved == 0)
    return true;
  return confirm("The session has " + std::to_string(i->unsaved)
                 + " unsaved message(s). Leave anyway?");
}

} // namespace

const std::vector<std::string>& shell_commands() {
  static const std::vector<std::string> list = [] {
    std::vector<std::string> out;
    for (auto& [cmd, text] : command_help())
      out.push_back(cmd);
    return out;
  }();
  return list;
}

std::string closest_command(const std::string& typed) {
  std::string best;
  size_t best_d = std::string::npos;
  for (auto& c : shell_commands()) {
    auto d = edit_distance(lower(typed), c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

int cmd_shell(const shell_options& opts, load_result loaded) {
  auto usable = usable_or_report(std::move(loaded));
  if (!usable)
    return exit_usage;
  auto cfg = std::make_shared<const config>(std::move(*usable));
  int signal_fd = install_signal_handlers();
  shell sh{cfg, signal_fd};
  return sh.run(opts);
}

} // namespace orch::cli
