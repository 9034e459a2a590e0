#include "adapters/detail.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

#include "runtime/text.hpp"

namespace orch::detail {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool contains_any(const std::string& haystack,
                  std::initializer_list<std::string_view> needles) {
  for (auto needle : needles)
    if (haystack.find(needle) != std::string::npos)
      return true;
  return false;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Keeps messages readable when a CLI prints a whole JSON blob or a stack.
// Cuts on a UTF-8 character boundary: half a character would make the
// manifest's JSON invalid.
std::string clip(std::string_view text, std::size_t max = 400) {
  return orch::text::clip(text, max);
}

std::string seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s",
                static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

} // namespace

// -- JSON lines ---------------------------------------------------------------

std::optional<json> parse_json_object(std::string_view line) {
  // Cheap pre-check: every event of the four CLIs is one object per line,
  // so anything else (banners, blank lines) is skipped without a parse.
  std::size_t begin = 0;
  while (begin < line.size()
         && std::isspace(static_cast<unsigned char>(line[begin])))
    ++begin;
  if (begin == line.size() || line[begin] != '{')
    return std::nullopt;
  auto j = json::parse(line.substr(begin), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return std::nullopt;
  return j;
}

std::optional<json> parse_json_text(std::string_view text) {
  auto j = json::parse(text, nullptr, false, true);
  if (j.is_discarded())
    return std::nullopt;
  return j;
}

std::string get_string(const json& j, std::string_view key) {
  if (!j.is_object())
    return {};
  auto it = j.find(key);
  if (it == j.end() || !it->is_string())
    return {};
  return it->get<std::string>();
}

int64_t get_int(const json& j, std::string_view key, int64_t fallback) {
  if (!j.is_object())
    return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number())
    return fallback;
  if (it->is_number_float())
    return static_cast<int64_t>(it->get<double>());
  if (it->is_number_unsigned())
    return static_cast<int64_t>(it->get<uint64_t>());
  return it->get<int64_t>();
}

double get_double(const json& j, std::string_view key) {
  if (!j.is_object())
    return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number())
    return 0;
  return it->get<double>();
}

bool get_bool(const json& j, std::string_view key, bool fallback) {
  if (!j.is_object())
    return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_boolean())
    return fallback;
  return it->get<bool>();
}

const json* get_object(const json& j, std::string_view key) {
  if (!j.is_object())
    return nullptr;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object())
    return nullptr;
  return &*it;
}

const json* get_array(const json& j, std::string_view key) {
  if (!j.is_object())
    return nullptr;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array())
    return nullptr;
  return &*it;
}

// -- environment and files ----------------------------------------------------

std::optional<std::string> env_get(const std::vector<std::string>& env,
                                   std::string_view name) {
  for (const auto& entry : env) {
    if (entry.size() > name.size() && entry[name.size()] == '='
        && std::string_view(entry).substr(0, name.size()) == name)
      return entry.substr(name.size() + 1);
  }
  return std::nullopt;
}

bool env_has(const std::vector<std::string>& env, std::string_view name) {
  auto value = env_get(env, name);
  return value && !value->empty();
}

std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad())
    return std::nullopt;
  return buf.str();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// -- classification -----------------------------------------------------------

int64_t wall_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

int64_t epoch_to_ms(double value) {
  // Between 2001 and 2286 in seconds; larger values are milliseconds.
  if (!(value > 1e9) || value > 1e14)
    return 0;
  return value < 1e11 ? static_cast<int64_t>(value * 1000.0)
                      : static_cast<int64_t>(value);
}

namespace {

/// Reads "<number><unit>" sequences ("1m30s", "20 seconds", "5 minutes")
/// from `text` at `pos`; returns ms, or -1 when no number is there.
int64_t read_wait(const std::string& text, size_t pos) {
  int64_t total = -1;
  for (int parts = 0; parts < 3; ++parts) {
    while (pos < text.size() && text[pos] == ' ')
      ++pos;
    size_t start = pos;
    while (pos < text.size() && (is_digit(text[pos]) || text[pos] == '.'))
      ++pos;
    if (pos == start || pos - start > 9)
      break;
    double n = std::atof(text.substr(start, pos - start).c_str());
    while (pos < text.size() && text[pos] == ' ')
      ++pos;
    size_t unit_start = pos;
    while (pos < text.size()
           && std::isalpha(static_cast<unsigned char>(text[pos])))
      ++pos;
    auto unit = text.substr(unit_start, pos - unit_start);
    double scale = 1000.0;
    if (unit == "ms" || unit.rfind("millisecond", 0) == 0)
      scale = 1.0;
    else if (unit == "m" || unit == "min" || unit == "mins"
             || unit.rfind("minute", 0) == 0)
      scale = 60000.0;
    else if (unit == "h" || unit == "hr" || unit == "hrs"
             || unit.rfind("hour", 0) == 0)
      scale = 3600000.0;
    else if (!(unit.empty() || unit == "s" || unit == "sec" || unit == "secs"
               || unit.rfind("second", 0) == 0))
      break;
    total = std::max<int64_t>(total, 0) + static_cast<int64_t>(n * scale);
    if (unit.empty())
      break;
  }
  return total;
}

} // namespace

int64_t find_retry_at(std::string_view text, int64_t now_ms) {
  auto low = lower(text.substr(0, std::min<size_t>(text.size(), 1 << 16)));
  for (const char* key :
       {"retry-after:", "retry-after\":", "retry_after\":", "retry after",
        "try again in", "retry in", "retry-after", "retry after:"}) {
    auto pos = low.find(key);
    if (pos == std::string::npos)
      continue;
    pos += std::string_view{key}.size();
    while (pos < low.size() && (low[pos] == ' ' || low[pos] == '"'))
      ++pos;
    auto wait = read_wait(low, pos);
    // Beyond a week it is not a wait anybody meant.
    if (wait >= 0 && wait <= int64_t{7} * 24 * 3600 * 1000)
      return now_ms + wait;
  }
  return 0;
}

int find_http_status(std::string_view text) {
  auto low = lower(text);
  for (std::size_t i = 0; i + 3 <= low.size(); ++i) {
    if (!is_digit(low[i]) || !is_digit(low[i + 1]) || !is_digit(low[i + 2]))
      continue;
    // Whole three-digit numbers only: not part of 14386 or 1.500.
    if (i > 0 && (is_digit(low[i - 1]) || low[i - 1] == '.'))
      continue;
    if (i + 3 < low.size() && (is_digit(low[i + 3]) || low[i + 3] == '.'))
      continue;
    int value = (low[i] - '0') * 100 + (low[i + 1] - '0') * 10
                + (low[i + 2] - '0');
    if (value < 400 || value > 599)
      continue;
    if (i > 0 && low[i - 1] == '(' && i + 3 < low.size() && low[i + 3] == ')')
      return value;
    // A number is a status only next to a word that says so; "returns 500"
    // in prose is not.
    std::size_t from = i >= 16 ? i - 16 : 0;
    auto before = std::string_view(low).substr(from, i - from);
    for (std::string_view kw : {"status", "code", "http", "error"})
      if (before.find(kw) != std::string_view::npos)
        return value;
  }
  return 0;
}

failure_kind kind_for_http_status(int status) {
  if (status == 401 || status == 403)
    return failure_kind::not_authenticated;
  if (status == 429)
    return failure_kind::rate_limited;
  if (status == 408 || (status >= 500 && status <= 599))
    return failure_kind::transient;
  return failure_kind::none;
}

failure_kind kind_for_error_text(std::string_view text) {
  auto low = lower(text);
  if (contains_any(low, {"not logged in", "unauthorized", "unauthenticated",
                         "authentication_failed", "authentication failed",
                         "authentication_error", "invalid api key",
                         "invalid x-api-key", "incorrect api key",
                         "api key not valid", "no authentication information",
                         "please set an auth method", "invalid auth method",
                         "oauth token has expired", "please run /login"}))
    return failure_kind::not_authenticated;
  if (contains_any(low, {"rate limit", "rate_limit", "rate-limit",
                         "too many requests", "quota", "resource_exhausted",
                         "usage limit"}))
    return failure_kind::rate_limited;
  if (contains_any(low, {"high demand",
                         "overloaded",
                         "temporar",
                         "try again",
                         "timed out",
                         "timeout",
                         "network",
                         "connection",
                         "failed to connect",
                         "reconnecting",
                         "stream disconnected",
                         "econnreset",
                         "econnrefused",
                         "enotfound",
                         "eai_again",
                         "socket hang up",
                         "internal server error",
                         "service unavailable",
                         "bad gateway",
                         "gateway timeout",
                         "fetch failed",
                         "name does not resolve",
                         "dns"}))
    return failure_kind::transient;
  return failure_kind::none;
}

std::string trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text[0])))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return std::string(text);
}

std::string stderr_summary(std::string_view err) {
  std::string last;
  std::size_t pos = 0;
  while (pos < err.size()) {
    auto nl = err.find('\n', pos);
    auto raw = err.substr(pos,
                          nl == std::string_view::npos ? err.npos : nl - pos);
    pos = nl == std::string_view::npos ? err.size() : nl + 1;
    auto line = trim(raw);
    if (line.empty())
      continue;
    auto low = lower(line);
    // Terminal and sandbox warnings, startup metrics, stack frames and
    // banners say nothing about why a run failed.
    if (low.rfind("warning", 0) == 0 || low.rfind("[startup]", 0) == 0
        || low.rfind("at ", 0) == 0 || low.rfind("ripgrep", 0) == 0
        || low.rfind("reading additional input", 0) == 0 || line == "{"
        || line == "}" || line == "--------")
      continue;
    if (kind_for_error_text(line) != failure_kind::none
        || find_http_status(line) != 0)
      return clip(line);
    last = std::move(line);
  }
  return clip(last);
}

std::string signal_name(int sig) {
  const char* name = nullptr;
  switch (sig) {
    case SIGSEGV:
      name = "SIGSEGV";
      break;
    case SIGABRT:
      name = "SIGABRT";
      break;
    case SIGKILL:
      name = "SIGKILL";
      break;
    case SIGTERM:
      name = "SIGTERM";
      break;
    case SIGINT:
      name = "SIGINT";
      break;
    case SIGBUS:
      name = "SIGBUS";
      break;
    case SIGPIPE:
      name = "SIGPIPE";
      break;
    case SIGILL:
      name = "SIGILL";
      break;
    case SIGFPE:
      name = "SIGFPE";
      break;
    default:
      break;
  }
  std::string out = name ? name : "signal";
  return out + " (" + std::to_string(sig) + ")";
}

void set_failure(step_outcome& o, const cli_info& cli, failure_kind kind,
                 int http_status, std::string_view detail,
                 std::string_view extra) {
  o.ok = false;
  o.failure = kind;
  std::string status
    = http_status > 0 ? " (HTTP " + std::to_string(http_status) + ")" : "";
  std::string head = std::string(cli.name) + ": ";
  std::string hint;
  switch (kind) {
    case failure_kind::none:
      head += "failed";
      break;
    case failure_kind::not_installed:
      head += "not installed";
      hint = "install: " + std::string(cli.install_hint);
      break;
    case failure_kind::not_authenticated:
      head += "not authenticated" + status;
      hint = std::string(cli.auth_hint);
      break;
    case failure_kind::transient:
      head += "temporary API or network failure" + status;
      hint = "retry later";
      break;
    case failure_kind::rate_limited:
      head += "rate limited" + status;
      hint = "wait for the quota to refill, then retry";
      break;
    case failure_kind::timeout_first_output:
    case failure_kind::timeout_idle:
    case failure_kind::timeout_total:
      head += "timed out";
      break;
    case failure_kind::crashed:
      head += "crashed";
      break;
    case failure_kind::unparseable:
      head += "unparseable output";
      break;
    case failure_kind::agent_error:
      head += "agent error" + status;
      break;
    case failure_kind::cancelled:
      head += "cancelled";
      break;
    case failure_kind::circuit_open:
      head += "circuit open";
      break;
  }
  // The first line is the reason a person reads; the CLI's own words go
  // below it. Kinds without a fixed hint use the detail as the reason.
  std::string rest;
  if (hint.empty()) {
    auto line = first_line(detail);
    if (!line.empty())
      head += " — " + clip(line);
    auto nl = detail.find('\n');
    if (nl != std::string_view::npos)
      rest = trim(detail.substr(nl + 1));
  } else {
    if (kind == failure_kind::not_installed && !detail.empty())
      head += " — " + std::string(detail) + "; " + hint;
    else
      head += " — " + hint;
    if (kind != failure_kind::not_installed)
      rest = trim(detail);
  }
  o.message = head;
  if (!rest.empty())
    o.message += "\n" + clip(rest, 2000);
  if (!extra.empty())
    o.message += "\n" + std::string(extra);
}

bool judge_process(const process_result& r, const cli_info& cli,
                   step_outcome& o, bool final_ok) {
  // Cancelled before the start (spawn_errno ECANCELED) is still cancelled.
  if (r.cancelled) {
    set_failure(o, cli, failure_kind::cancelled, 0,
                "stopped after " + seconds(r.elapsed));
    return true;
  }
  if (!r.started) {
    int e = r.spawn_errno;
    std::string why = e != 0 ? std::strerror(e) : "unknown error";
    if (e == ENOENT || e == EACCES || e == ENOTDIR || e == ELOOP || e == 0)
      set_failure(o, cli, failure_kind::not_installed, 0,
                  "could not start it (" + why + ")");
    else if (e == E2BIG)
      set_failure(o, cli, failure_kind::agent_error, 0,
                  "the command line is too long (E2BIG): Linux allows "
                  "128 KiB per argument; pass the prompt on stdin");
    else
      set_failure(o, cli, failure_kind::crashed, 0,
                  "could not start it (" + why + ")");
    return true;
  }
  if (r.expired != deadline_kind::none && !final_ok) {
    switch (r.expired) {
      case deadline_kind::first_output:
        set_failure(o, cli, failure_kind::timeout_first_output, 0,
                    "no output before the first-output deadline (stopped "
                    "after "
                      + seconds(r.elapsed) + ")");
        break;
      case deadline_kind::idle:
        set_failure(o, cli, failure_kind::timeout_idle, 0,
                    "output stalled until the idle deadline (stopped after "
                      + seconds(r.elapsed) + ")");
        break;
      default:
        set_failure(o, cli, failure_kind::timeout_total, 0,
                    "the total deadline passed (stopped after "
                      + seconds(r.elapsed) + ")");
        break;
    }
    return true;
  }
  // With a deadline expired the signal was ours (SIGTERM/SIGKILL).
  if (r.term_signal != 0 && r.expired == deadline_kind::none) {
    set_failure(o, cli, failure_kind::crashed, 0,
                "killed by " + signal_name(r.term_signal),
                stderr_summary(r.err));
    return true;
  }
  return false;
}

// -- JSON-lines parser skeleton -----------------------------------------------

json_lines_parser::json_lines_parser(const cli_info& cli) : cli_(cli) {}

void json_lines_parser::feed(std::string_view line,
                             std::vector<agent_event>& out) {
  ++lines_;
  auto j = parse_json_object(line);
  if (!j) {
    auto text = trim(line);
    if (!text.empty()) {
      if (noise_.size() == 3)
        noise_.erase(noise_.begin());
      noise_.push_back(clip(text, 300));
    }
    return;
  }
  on_json(*j, out);
}

bool json_lines_parser::explain_deadline(const process_result&, step_outcome&) {
  return false;
}

void json_lines_parser::explain_exit(const process_result&, failure_info&) {}

bool json_lines_parser::needs_final_text() const {
  return false;
}

void json_lines_parser::set_session(const std::string& id,
                                    std::vector<agent_event>& out) {
  if (id.empty() || id == session_id_)
    return;
  bool first = session_id_.empty();
  session_id_ = id;
  if (first) {
    agent_event ev;
    ev.kind = event_kind::session_started;
    ev.text = id;
    out.push_back(std::move(ev));
  }
}

void json_lines_parser::add_file(const std::string& path,
                                 std::vector<agent_event>& out,
                                 const std::string& text) {
  if (path.empty())
    return;
  if (std::find(files_.begin(), files_.end(), path) == files_.end())
    files_.push_back(path);
  agent_event ev;
  ev.kind = event_kind::file_change;
  ev.detail = path;
  ev.text = text;
  out.push_back(std::move(ev));
}

void json_lines_parser::add_usage(const orch::usage& tokens,
                                  std::vector<agent_event>& out) {
  tokens_ += tokens;
  agent_event ev;
  ev.kind = event_kind::usage;
  ev.tokens = tokens;
  out.push_back(std::move(ev));
}

void json_lines_parser::add_result(std::string text, std::string status,
                                   std::vector<agent_event>& out) {
  agent_event ev;
  ev.kind = event_kind::result;
  ev.text = std::move(text);
  ev.detail = std::move(status);
  out.push_back(std::move(ev));
}

void json_lines_parser::add_error(const std::string& message,
                                  std::vector<agent_event>& out) {
  errors_.push_back(message);
  agent_event ev;
  ev.kind = event_kind::error;
  ev.text = message;
  out.push_back(std::move(ev));
}

void json_lines_parser::note_failure(failure_kind kind, int http_status,
                                     const std::string& message) {
  if (kind != failure_kind::none)
    failure_.kind = kind;
  if (http_status != 0)
    failure_.http_status = http_status;
  if (!message.empty())
    failure_.message = message;
}

step_outcome json_lines_parser::finish(const process_result& r) {
  step_outcome o;
  o.exit_code = r.exit_code;
  o.truncated = r.truncated;
  o.session_id = session_id_;
  o.final_text = final_text_;
  o.tokens = tokens_;
  o.reported_files = files_;

  std::string cut;
  if (r.truncated)
    cut = "output exceeded the cap; " + std::to_string(r.dropped_bytes)
          + " bytes were dropped";

  if (r.started && !r.cancelled && r.expired != deadline_kind::none
      && !final_ok_ && explain_deadline(r, o))
    return o;
  if (judge_process(r, cli_, o, final_ok_))
    return o;

  if (final_seen_ && final_ok_) {
    if (needs_final_text() && trim(final_text_).empty()) {
      set_failure(o, cli_, failure_kind::agent_error, 0,
                  "the run ended without an answer", cut);
      return o;
    }
    o.ok = true;
    o.failure = failure_kind::none;
    if (r.expired != deadline_kind::none)
      o.message = std::string(cli_.name)
                  + ": finished, but the process only ended when the "
                  + to_string(r.expired) + " deadline stopped it";
    return o;
  }

  failure_info info = failure_;
  if (info.message.empty() && !errors_.empty())
    info.message = errors_.back();
  explain_exit(r, info);
  auto err_line = stderr_summary(r.err);
  if (info.http_status == 0)
    info.http_status = find_http_status(info.message);
  if (info.http_status == 0)
    info.http_status = find_http_status(err_line);

  failure_kind kind = info.kind;
  if (kind == failure_kind::none && rate_rejected_)
    kind = failure_kind::rate_limited;
  if (kind == failure_kind::none)
    kind = kind_for_http_status(info.http_status);
  if (kind == failure_kind::none)
    kind = kind_for_error_text(info.message);
  if (kind == failure_kind::none)
    kind = kind_for_error_text(err_line);

  std::string words = info.message;
  if (!err_line.empty() && words.find(err_line) == std::string::npos)
    words += (words.empty() ? "" : "\n") + ("stderr: " + err_line);
  if (words.empty() && !noise_.empty())
    words = "stdout: " + noise_.back();

  if (kind != failure_kind::none) {
    set_failure(o, cli_, kind, info.http_status, words, cut);
    if (kind == failure_kind::rate_limited) {
      o.retry_at_ms = retry_at_ms_;
      if (o.retry_at_ms == 0)
        o.retry_at_ms = find_retry_at(words + "\n" + r.err, wall_now_ms());
    }
    return o;
  }
  if (final_seen_) {
    set_failure(o, cli_, failure_kind::agent_error, info.http_status,
                words.empty() ? "the final event reports a failure" : words,
                cut);
    return o;
  }
  if (r.exit_code == 0) {
    std::string why = lines_ == 0
                        ? "exit 0 but nothing on stdout"
                        : "exit 0 but no final result event in "
                            + std::to_string(lines_) + " stdout lines";
    if (!words.empty())
      why += "\n" + words;
    set_failure(o, cli_, failure_kind::unparseable, 0, why, cut);
    return o;
  }
  std::string why = "exited with status " + std::to_string(r.exit_code)
                    + " without a final result";
  if (!words.empty())
    why += "\n" + words;
  set_failure(o, cli_, failure_kind::crashed, 0, why, cut);
  return o;
}

// -- spec helpers -------------------------------------------------------------

process_spec base_spec(const agent_config& agent, const step_input& in,
                       const std::vector<std::string>& credential_vars,
                       const std::vector<std::string>& base_env) {
  process_spec spec;
  spec.env = build_environment(agent, credential_vars, base_env);
  spec.stdin_data = in.prompt;
  spec.cwd = in.workspace;
  spec.first_output_deadline = agent.limits.first_output;
  spec.idle_deadline = agent.limits.idle;
  spec.total_deadline = agent.limits.total;
  return spec;
}

std::string command_or(const agent_config& agent, std::string_view fallback) {
  return agent.command.empty() ? std::string(fallback) : agent.command;
}

} // namespace orch::detail
