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
#include "actors/signals.hpp"
#include "actors/system_config.hpp"
#include "adapters/adapter.hpp"
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

std::string shown(const std::string& s) {
  return text::escape_for_terminal(s, true);
}

std::string now_iso() {
  auto t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string new_session_id() {
  std::random_device rd;
  std::mt19937_64 gen{(static_cast<uint64_t>(rd()) << 32) ^ rd()};
  char buf[40];
  uint64_t a = gen(), b = gen();
  std::snprintf(buf, sizeof(buf), "%08x-%04x-4%03x-%04x-%012llx",
                static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff),
                static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '\'') {
      cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty())
    out.push_back(std::move(cur));
  return out;
}

// -- the session (interim: the session actor of branch ha replaces it) -----

struct message {
  std::string role;
  std::string content;
  std::vector<std::string> files;
  std::string timestamp;
};

struct session_state {
  std::string id = new_session_id();
  std::string created_at = now_iso();
  std::string workflow = "default";
  /// /switch: every step runs with this agent; empty = the workflow's.
  std::string agent;
  std::vector<message> history;
  /// The workspace of the previous task (a follow-up runs there).
  std::string workspace;
  /// The name it was saved or loaded under.
  std::string name;
  /// Messages at the last save or load.
  size_t saved = 0;

  bool has_previous() const {
    for (auto& m : history)
      if (m.role == "assistant")
        return true;
    return false;
  }
  const message* last(const char* role) const {
    for (auto it = history.rbegin(); it != history.rend(); ++it)
      if (it->role == role)
        return &*it;
    return nullptr;
  }
  size_t unsaved() const {
    return history.size() > saved ? history.size() - saved : 0;
  }
};

enum class followup_kind { new_task, followup, ambiguous };

/// Interim follow-up rules: keywords as whole words (or the phrases), only
/// with a previous task; short with a keyword: follow-up; long with one:
/// ambiguous; none: a new task.
followup_kind classify(const session_state& s, const std::string& msg) {
  if (!s.has_previous())
    return followup_kind::new_task;
  static const std::vector<std::string> keywords
    = {"add", "also",   "now",    "then",   "next",        "improve",
       "fix", "change", "update", "modify", "additionally"};
  static const std::vector<std::vector<std::string>> phrases
    = {{"make", "it"}, {"can", "you"}, {"please"}, {"try"}, {"would", "you"}};
  auto w = words_of(msg);
  bool hit = false;
  for (auto& x : w)
    hit = hit
          || std::find(keywords.begin(), keywords.end(), x) != keywords.end();
  for (auto& p : phrases)
    for (size_t i = 0; !hit && i + p.size() <= w.size(); ++i)
      hit = std::equal(p.begin(), p.end(),
                       w.begin() + static_cast<std::ptrdiff_t>(i));
  if (!hit)
    return followup_kind::new_task;
  return w.size() < 10 ? followup_kind::followup : followup_kind::ambiguous;
}

constexpr size_t summary_limit = 2000;

json to_json(const session_state& s) {
  json j;
  j["session_id"] = s.id;
  j["created_at"] = s.created_at;
  j["workflow"] = s.workflow;
  auto hist = json::array();
  for (auto& m : s.history) {
    json e;
    e["role"] = m.role;
    e["content"] = m.content;
    if (m.role == "assistant")
      e["files"] = m.files;
    e["timestamp"] = m.timestamp;
    hist.push_back(std::move(e));
  }
  j["conversation_history"] = std::move(hist);
  j["workspace"] = s.workspace;
  json meta = json::object();
  if (!s.agent.empty())
    meta["agent"] = s.agent;
  j["metadata"] = std::move(meta);
  return j;
}

/// Parses a saved session; returns an error text (without the path) or "".
std::string from_json(const std::string& text, session_state& out) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return std::string{"not valid JSON: "} + e.what();
  }
  if (!j.is_object())
    return "not a JSON object";
  auto str = [&](const json& o, const char* key, std::string& dst,
                 bool required) -> std::string {
    if (!o.contains(key))
      return required ? std::string{"missing key '"} + key + "'" : "";
    if (!o[key].is_string())
      return std::string{"'"} + key + "' is not a string";
    dst = o[key].get<std::string>();
    return "";
  };
  session_state s;
  for (auto [key, dst] :
       {std::pair{"session_id", &s.id}, std::pair{"created_at", &s.created_at},
        std::pair{"workflow", &s.workflow}})
    if (auto e = str(j, key, *dst, true); !e.empty())
      return e;
  if (auto e = str(j, "workspace", s.workspace, false); !e.empty())
    return e;
  if (!j.contains("conversation_history")
      || !j["conversation_history"].is_array())
    return "'conversation_history' is missing or not a list";
  size_t i = 0;
  for (auto& e : j["conversation_history"]) {
    auto where = "conversation_history[" + std::to_string(i++) + "]";
    if (!e.is_object())
      return where + " is not an object";
    message m;
    for (auto [key, dst] :
         {std::pair{"role", &m.role}, std::pair{"content", &m.content}})
      if (auto err = str(e, key, *dst, true); !err.empty())
        return where + ": " + err;
    if (m.role != "user" && m.role != "assistant")
      return where + ": role '" + m.role + "' is not user or assistant";
    if (auto err = str(e, "timestamp", m.timestamp, false); !err.empty())
      return where + ": " + err;
    if (e.contains("files")) {
      if (!e["files"].is_array())
        return where + ": 'files' is not a list";
      for (auto& f : e["files"]) {
        if (!f.is_string())
          return where + ": 'files' holds a non-string";
        m.files.push_back(f.get<std::string>());
      }
    }
    s.history.push_back(std::move(m));
  }
  if (j.contains("metadata")) {
    if (!j["metadata"].is_object())
      return "'metadata' is not an object";
    if (auto err = str(j["metadata"], "agent", s.agent, false); !err.empty())
      return "metadata: " + err;
  }
  s.saved = s.history.size();
  out = std::move(s);
  return "";
}

// -- the shell -------------------------------------------------------------

constexpr auto result_poll = std::chrono::milliseconds{100};

class shell {
public:
  shell(std::shared_ptr<const config> cfg, int signal_fd)
    : cfg_{std::move(cfg)}, signal_fd_{signal_fd} {
    state_dir_ = resolve_state_dir(cfg_->settings.state_dir);
    if (!state_dir_.empty()) {
      std::string error;
      if (!open_state_dir(state_dir_, error)) {
        std::fprintf(stderr, "warning: no state directory: %s\n",
                     shown(error).c_str());
        state_dir_.clear();
      }
    }
  }

  int run(const shell_options& opts);

private:
  // ---- plumbing
  void start_actors();
  void stop_actors();
  std::optional<run_result> run_task(const run_spec& spec);
  std::string ask(const std::string& question);
  bool confirm(const std::string& question);
  std::string prompt() const {
    return "orchestrator (" + session_.workflow + ") > ";
  }
  std::vector<std::string> complete(const std::string& before,
                                    const std::string& word) const;
  std::vector<std::string> saved_sessions() const;
  std::string session_path(const std::string& name) const {
    return (state_dir_ / "sessions" / (name + ".json")).string();
  }

  // ---- commands; each returns false to leave the shell
  bool dispatch(const std::string& line);
  void message_task(const std::string& msg, bool forced_followup);
  void cmd_help();
  void cmd_agents();
  void cmd_workflows();
  void cmd_switch(const std::string& arg);
  void cmd_workflow(const std::string& arg);
  void cmd_history();
  void cmd_context();
  bool save(const std::string& name);
  bool load(const std::string& name, bool report);
  void cmd_reset();
  void cmd_info();
  bool leave();

  std::shared_ptr<const config> cfg_;
  int signal_fd_;
  std::filesystem::path state_dir_;
  session_state session_;
  std::unique_ptr<line_editor> editor_;
  std::unique_ptr<system_config> sys_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<caf::scoped_actor> self_;
  coordinator_actor coord_;
  bool terminated_ = false;
};

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
  self_ = std::make_unique<caf::scoped_actor>(*sys_);
  (*self_)->monitor(coord_);
}

void shell::stop_actors() {
  if (!sys_)
    return;
  (*self_)->send(coord_, atom::cancel_v, std::string{});
  (*self_)->send_exit(coord_, caf::exit_reason::user_shutdown);
  coord_ = nullptr;
  self_.reset();
  sys_.reset();
  sys_cfg_.reset();
}

std::optional<run_result> shell::run_task(const run_spec& spec) {
  auto& self = *self_;
  std::string id;
  caf::error refused;
  self->request(coord_, caf::infinite, atom::submit_v, spec)
    .receive(
      [&](std::string& x) {
        id = std::move(x);
      },
      [&](caf::error& e) {
        refused = std::move(e);
      });
  if (refused) {
    std::printf("%s %s\n", terminal::for_stream(stdout).red("✗").c_str(),
                shown(error_text(refused)).c_str());
    return std::nullopt;
  }
  auto display = sys_->spawn(display_impl, stdout, false);
  self->monitor(display);
  self->send(coord_, atom::subscribe_v, id, uint64_t{0},
             progress_sink{display});
  self->send(coord_, atom::result_v, id);
  using clock = std::chrono::steady_clock;
  std::optional<clock::time_point> cancelled_at;
  const auto grace = cfg_->settings.kill_grace + std::chrono::seconds{10};
  std::optional<run_result> out;
  bool done = false;
  bool display_down = false;
  while (!done) {
    self->receive(
      [&](run_result& r) {
        out = std::move(r);
        done = true;
      },
      [&](caf::error& e) {
        std::printf("error: %s\n", shown(sys_->render(e)).c_str());
        done = true;
      },
      [&](bool) {},
      [&](caf::down_msg& dm) {
        if (dm.source == coord_.address()) {
          std::printf("error: the run coordinator stopped\n");
          terminated_ = true;
          done = true;
        } else if (dm.source == display.address()) {
          display_down = true;
        }
      },
      caf::after(result_poll) >>
        [&] {
          unsigned char b = 0;
          while (::read(signal_fd_, &b, 1) == 1) {
            if (b != SIGINT)
              terminated_ = true;
            if (!cancelled_at) {
              // Ctrl-C cancels this task only: its agents are stopped (the
              // coordinator kills them after settings.kill_grace).
              std::printf("\nCancelling the task…\n");
              std::fflush(stdout);
              self->send(coord_, atom::cancel_v, id);
              cancelled_at = clock::now();
            }
          }
          if (cancelled_at && clock::now() - *cancelled_at > grace) {
            std::printf("error: the task did not stop\n");
            done = true;
          }
        });
  }
  if (!display_down)
    self->request(display, std::chrono::seconds{5}, atom::flush_v)
      .receive([](bool) {}, [](caf::error&) {});
  self->demonitor(display.address());
  self->send_exit(display, caf::exit_reason::user_shutdown);
  return out;
}

std::string shell::ask(const std::string& question) {
  auto r = editor_->read(question);
  if (r.kind == line_read::terminated)
    terminated_ = true;
  if (r.kind != line_read::line)
    return {};
  return lower(trim(r.text));
}

bool shell::confirm(const std::string& question) {
  auto a = ask(question + " [y/N] ");
  return a == "y" || a == "yes";
}

std::vector<std::string> shell::saved_sessions() const {
  std::vector<std::string> out;
  if (state_dir_.empty())
    return out;
  auto dir = state_dir_ / "sessions";
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator{dir, ec}) {
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
  auto cmd = trim(before);
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
                 shown(opts.workflow).c_str());
    return exit_usage;
  }
  session_.workflow = opts.workflow;
  if (!opts.load.empty() && !load(opts.load, false))
    return exit_usage;
  history_options h;
  h.state_dir = state_dir_;
  editor_ = make_line_editor(
    signal_fd_, h, [this](const std::string& before, const std::string& word) {
      return complete(before, word);
    });
  start_actors();
  if (editor_->interactive())
    std::printf("ai-orchestrator %s shell — /help lists the commands, /exit "
                "leaves.\n",
                ORCH_VERSION);
  if (!opts.load.empty())
    std::printf("Loaded session '%s': %zu message(s), workflow %s\n",
                shown(opts.load).c_str(), session_.history.size(),
                shown(session_.workflow).c_str());
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
    auto line = trim(r.text);
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
    message_task(line, false);
    return true;
  }
  auto sp = line.find_first_of(" \t");
  auto cmd = line.substr(0, sp);
  auto arg = sp == std::string::npos ? std::string{} : trim(line.substr(sp));
  if (cmd == "/exit" || cmd == "/quit")
    return !leave();
  if (cmd == "/help")
    cmd_help();
  else if (cmd == "/followup") {
    if (arg.empty())
      std::printf("Usage: /followup <message>\n");
    else if (!session_.has_previous())
      std::printf("There is no previous task to follow up; send it as a "
                  "message.\n");
    else
      message_task(arg, true);
  } else if (cmd == "/agents")
    cmd_agents();
  else if (cmd == "/workflows")
    cmd_workflows();
  else if (cmd == "/switch")
    cmd_switch(arg);
  else if (cmd == "/workflow")
    cmd_workflow(arg);
  else if (cmd == "/history")
    cmd_history();
  else if (cmd == "/context")
    cmd_context();
  else if (cmd == "/save") {
    auto name = arg.empty() ? (session_.name.empty()
                                 ? "session-" + session_.id.substr(0, 8)
                                 : session_.name)
                            : arg;
    save(name);
  } else if (cmd == "/load") {
    if (arg.empty())
      std::printf("Usage: /load <name>\n");
    else if (session_.unsaved() == 0
             || confirm("The session has " + std::to_string(session_.unsaved())
                        + " unsaved message(s). Load anyway?"))
      load(arg, true);
  } else if (cmd == "/reset")
    cmd_reset();
  else if (cmd == "/info")
    cmd_info();
  else if (cmd == "/clear") {
    std::printf("\x1b[H\x1b[2J\x1b[3J");
    std::fflush(stdout);
  } else {
    std::printf("Unknown command %s. Did you mean %s? (/help lists the "
                "commands)\n",
                shown(cmd).c_str(), closest_command(cmd).c_str());
  }
  return true;
}

void shell::message_task(const std::string& msg, bool forced_followup) {
  auto kind = forced_followup ? followup_kind::followup
                              : classify(session_, msg);
  if (kind == followup_kind::ambiguous) {
    for (;;) {
      auto a = ask("Does this continue the previous task? continue / new / "
                   "cancel: ");
      if (a == "continue" || a == "c") {
        kind = followup_kind::followup;
        break;
      }
      if (a == "new" || a == "n") {
        kind = followup_kind::new_task;
        break;
      }
      if (a.empty() || a == "cancel" || a == "x" || terminated_) {
        std::printf("Cancelled; nothing was run.\n");
        return;
      }
    }
  }
  run_spec spec;
  spec.workflow = session_.workflow;
  spec.agents = session_.agent;
  spec.user = os_user_name();
  spec.task = msg;
  auto term = terminal::for_stream(stdout);
  if (kind == followup_kind::followup) {
    if (!forced_followup)
      std::printf("💡 Detected as follow-up to previous task\n");
    auto prev_task = session_.last("user");
    auto prev_out = session_.last("assistant");
    std::string prompt = msg + "\n\nThis continues the previous task";
    if (prev_task)
      prompt += ": \"" + prev_task->content + "\"";
    prompt += ", in the same workspace.";
    if (prev_out) {
      prompt += "\nOutcome of the previous task: " + prev_out->content;
      if (!prev_out->files.empty()) {
        prompt += "\nFiles it generated:";
        for (auto& f : prev_out->files)
          prompt += " " + f;
      }
    }
    spec.task = prompt;
    spec.workspace = session_.workspace;
  }
  session_.history.push_back({"user", msg, {}, now_iso()});
  auto res = run_task(spec);
  if (!res) {
    session_.history.push_back(
      {"assistant", "The task did not run.", {}, now_iso()});
    return;
  }
  bool good = res->status == run_status::converged
              || res->status == run_status::completed;
  std::string summary = to_string(res->status);
  if (!res->message.empty())
    summary += ": " + res->message;
  if (!res->findings.empty())
    summary += " (" + std::to_string(res->findings.size())
               + " open finding(s))";
  summary = text::clip(summary, summary_limit);
  if (good)
    std::printf("%s Task completed successfully!\n", term.green("✓").c_str());
  else if (res->status == run_status::cancelled)
    std::printf("%s Task cancelled.\n", term.yellow("⚠").c_str());
  else
    std::printf("%s Task %s\n", term.red("✗").c_str(), shown(summary).c_str());
  if (!res->files.empty()) {
    std::printf("📁 Generated Files:\n");
    for (auto& f : res->files)
      std::printf("  📄 %s\n", shown(f).c_str());
  }
  std::printf("Workspace: %s\n", shown(res->workspace).c_str());
  session_.workspace = res->workspace;
  session_.history.push_back({"assistant", summary, res->files, now_iso()});
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
  std::printf("%-16s %-10s %-16s %s\n", "AGENT", "ADAPTER", "ROLE", "STATUS");
  for (auto& a : cfg_->agents) {
    auto why = a.enabled ? probe_agent(a) : std::string{"disabled"};
    std::string status = why.empty() ? "available" : why;
    if (a.name == session_.agent)
      status += " (selected by /switch)";
    std::printf("%-16s %-10s %-16s %s\n", shown(a.name).c_str(),
                to_string(a.kind).c_str(),
                a.role.empty() ? "-" : shown(a.role).c_str(),
                shown(status).c_str());
  }
}

void shell::cmd_workflows() {
  for (auto& wf : cfg_->workflows)
    std::printf("%s %-16s %s%s%s\n", wf.name == session_.workflow ? "*" : " ",
                shown(wf.name).c_str(), describe_steps(wf).c_str(),
                wf.description.empty() ? "" : " — ",
                shown(wf.description).c_str());
}

void shell::cmd_switch(const std::string& arg) {
  if (arg.empty()) {
    std::printf("Usage: /switch <agent> (or /switch off)\n");
    return;
  }
  if (arg == "off") {
    session_.agent.clear();
    std::printf("✓ The workflow's own agents run again.\n");
    return;
  }
  auto a = cfg_->find_agent(arg);
  if (!a) {
    std::printf("Unknown agent '%s'; /agents lists them.\n",
                shown(arg).c_str());
    return;
  }
  auto why = a->enabled ? probe_agent(*a) : std::string{"disabled"};
  if (!why.empty())
    std::printf("warning: %s is not available now: %s\n", shown(arg).c_str(),
                shown(why).c_str());
  session_.agent = arg;
  std::printf("✓ The next tasks run every step with %s alone.\n",
              shown(arg).c_str());
}

void shell::cmd_workflow(const std::string& arg) {
  if (arg.empty()) {
    std::printf("Current workflow: %s (/workflows lists them)\n",
                shown(session_.workflow).c_str());
    return;
  }
  auto wf = cfg_->find_workflow(arg);
  if (!wf) {
    std::printf("Unknown workflow '%s'; /workflows lists them.\n",
                shown(arg).c_str());
    return;
  }
  session_.workflow = arg;
  std::printf("✓ Workflow: %s (%s)\n", shown(arg).c_str(),
              describe_steps(*wf).c_str());
}

void shell::cmd_history() {
  if (session_.history.empty()) {
    std::printf("No messages yet.\n");
    return;
  }
  size_t i = 0;
  for (auto& m : session_.history) {
    std::printf("%3zu. [%s] %s: %s\n", ++i, m.timestamp.c_str(), m.role.c_str(),
                shown(m.content).c_str());
    for (auto& f : m.files)
      std::printf("       📄 %s\n", shown(f).c_str());
  }
}

void shell::cmd_context() {
  std::printf(
    "Session:  %s%s\n", session_.id.c_str(),
    session_.name.empty() ? "" : (" (" + shown(session_.name) + ")").c_str());
  std::printf("Workflow: %s\n", shown(session_.workflow).c_str());
  std::printf("Agent:    %s\n", session_.agent.empty()
                                  ? "the workflow's"
                                  : shown(session_.agent).c_str());
  auto t = session_.last("user");
  auto o = session_.last("assistant");
  std::printf("Previous task: %s\n", t ? shown(t->content).c_str() : "none");
  if (o) {
    std::printf("Outcome:  %s\n", shown(o->content).c_str());
    std::printf("Files:    %zu\n", o->files.size());
    for (auto& f : o->files)
      std::printf("  📄 %s\n", shown(f).c_str());
  }
  std::printf("Workspace: %s\n", session_.workspace.empty()
                                   ? "none yet"
                                   : shown(session_.workspace).c_str());
}

bool shell::save(const std::string& name) {
  if (!valid_session_name(name)) {
    std::printf("error: '%s' is not a session name: use 1-64 letters, digits, "
                "'.', '_' or '-'\n",
                shown(name).c_str());
    return false;
  }
  if (state_dir_.empty()) {
    std::printf("error: no state directory to save sessions in\n");
    return false;
  }
  std::string error;
  auto text = to_json(session_).dump(2) + "\n";
  if (!write_file_atomic(state_dir_, "sessions/" + name + ".json", text,
                         error)) {
    std::printf("error: the session was not saved: %s\n", shown(error).c_str());
    return false;
  }
  session_.name = name;
  session_.saved = session_.history.size();
  std::printf("✓ Session saved to: %s\n", shown(session_path(name)).c_str());
  return true;
}

bool shell::load(const std::string& name, bool report) {
  auto fail = [&](const std::string& why) {
    std::fprintf(report ? stdout : stderr,
                 "error: cannot load session '%s': %s\n", shown(name).c_str(),
                 shown(why).c_str());
    return false;
  };
  if (!valid_session_name(name))
    return fail("not a session name (1-64 letters, digits, '.', '_' or '-')");
  if (state_dir_.empty())
    return fail("no state directory");
  std::string error;
  auto dir = open_state_dir(state_dir_, error);
  if (!dir)
    return fail(error);
  auto path = session_path(name);
  auto sub = open_state_subdir(dir.get(), "sessions", error);
  if (!sub)
    return fail(error);
  int fd = ::openat(sub.get(), (name + ".json").c_str(),
                    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return fail(path + ": "
                + (errno == ENOENT ? std::string{"no such session"}
                                   : std::strerror(errno)));
  std::string text;
  char buf[8192];
  constexpr size_t max_bytes = 64 * 1024 * 1024;
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > max_bytes)
      break;
  }
  ::close(fd);
  if (text.size() > max_bytes)
    return fail(path + ": larger than 64 MiB");
  session_state s;
  if (auto why = from_json(text, s); !why.empty())
    return fail(path + ": " + why + " (the file is left as it is)");
  if (!cfg_->find_workflow(s.workflow)) {
    std::fprintf(report ? stdout : stderr,
                 "warning: the session's workflow '%s' is not in this config; "
                 "keeping %s\n",
                 shown(s.workflow).c_str(), shown(session_.workflow).c_str());
    s.workflow = session_.workflow;
  }
  s.name = name;
  session_ = std::move(s);
  if (report)
    std::printf("✓ Loaded session '%s': %zu message(s), workflow %s\n",
                shown(name).c_str(), session_.history.size(),
                shown(session_.workflow).c_str());
  return true;
}

void shell::cmd_reset() {
  if (!confirm("Clear the whole session (history and context)?")) {
    std::printf("Nothing was cleared.\n");
    return;
  }
  auto wf = session_.workflow;
  session_ = session_state{};
  session_.workflow = wf;
  std::printf("✓ The session is cleared.\n");
}

void shell::cmd_info() {
  std::printf("ai-orchestrator %s (C++ Actor Framework 0.17)\n", ORCH_VERSION);
  std::printf("Config:    %s\n", shown(cfg_->source).c_str());
  std::printf("Workflow:  %s\n", shown(session_.workflow).c_str());
  std::printf("Agent:     %s\n", session_.agent.empty()
                                   ? "the workflow's"
                                   : shown(session_.agent).c_str());
  std::printf("Session:   %s, %zu message(s), %zu unsaved\n",
              session_.id.c_str(), session_.history.size(), session_.unsaved());
  std::printf("State dir: %s\n",
              state_dir_.empty() ? "none" : shown(state_dir_.string()).c_str());
  std::printf("Agents:    %zu, workflows: %zu\n", cfg_->agents.size(),
              cfg_->workflows.size());
}

bool shell::leave() {
  if (session_.unsaved() == 0)
    return true;
  return confirm("The session has " + std::to_string(session_.unsaved())
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

bool valid_session_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-')
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_'
           || c == '-';
  });
}

int cmd_shell(const shell_options& opts, load_result loaded) {
  for (auto& w : loaded.warnings)
    std::fprintf(stderr, "warning: %s\n",
                 text::escape_for_terminal(w.to_string(), true).c_str());
  if (!loaded.errors.empty() || !loaded.value) {
    for (auto& e : loaded.errors)
      std::fprintf(stderr, "error: %s\n",
                   text::escape_for_terminal(e.to_string(), true).c_str());
    return exit_usage;
  }
  auto cfg = std::make_shared<const config>(std::move(*loaded.value));
  int signal_fd = install_signal_handlers();
  shell sh{cfg, signal_fd};
  return sh.run(opts);
}

} // namespace orch::cli
