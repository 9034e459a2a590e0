#pragma once

// Internals shared by the adapters: reading JSON lines, classifying
// failures, and the skeleton of a JSON-lines output parser. Not part of the
// public adapter API (only adapters/*.cpp and their tests include it).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "runtime/text.hpp"

namespace orch::detail {

using json = nlohmann::json;

// -- JSON lines ---------------------------------------------------------------

/// Parses one output line as a JSON object. Returns nullopt for blank lines,
/// garbage, partial (truncated) JSON and non-object values; never throws.
std::optional<json> parse_json_object(std::string_view line);

/// Parses JSON text that may hold comments (settings files); never throws.
std::optional<json> parse_json_text(std::string_view text);

/// Returns `j[key]` when it is a string, else "".
std::string get_string(const json& j, std::string_view key);

/// Returns `j[key]` when it is a number, else `fallback`.
int64_t get_int(const json& j, std::string_view key, int64_t fallback = 0);

/// Returns `j[key]` when it is a number, else 0.
double get_double(const json& j, std::string_view key);

/// Returns `j[key]` when it is a boolean, else `fallback`.
bool get_bool(const json& j, std::string_view key, bool fallback = false);

/// Returns `&j[key]` when it is an object, else nullptr.
const json* get_object(const json& j, std::string_view key);

/// Returns `&j[key]` when it is an array, else nullptr.
const json* get_array(const json& j, std::string_view key);

// -- environment and files ----------------------------------------------------

/// Returns the value of `name` in `env` (`NAME=value` entries), or nullopt.
std::optional<std::string> env_get(const std::vector<std::string>& env,
                                   std::string_view name);

/// Returns true when `name` is set to a non-empty value in `env`.
bool env_has(const std::vector<std::string>& env, std::string_view name);

/// Returns the whole file, or nullopt when it cannot be read.
std::optional<std::string> read_small_file(const std::string& path);

/// Returns true when `path` names an existing regular file.
bool file_exists(const std::string& path);

// -- classification -----------------------------------------------------------

/// Returns the HTTP status (400..599) an error message mentions ("status
/// 401", "(429)", "HTTP 500", "\"code\":401", "Error: 500"), or 0.
int find_http_status(std::string_view text);

/// Maps an HTTP status to a failure: 401/403 not_authenticated, 429
/// rate_limited, 408/5xx transient; none for anything else.
failure_kind kind_for_http_status(int status);

/// Recognises auth, rate-limit and network/overload wording in a message;
/// none when nothing is recognised.
failure_kind kind_for_error_text(std::string_view text);

/// Returns when a rate-limited request may be tried again, as a 429 error's
/// words tell it: "Retry-After: 30" (seconds), "try again in 20 seconds",
/// "try again in 5 minutes", "retry in 2h", "try again in 1m30s"; wall clock
/// ms (`now_ms` plus the wait). 0 when the text names no wait.
int64_t find_retry_at(std::string_view text, int64_t now_ms);

/// Reads a reset time given as seconds or milliseconds since the epoch
/// (Claude's rate_limit_event resetsAt is seen both ways); returns ms, or 0
/// when `value` is no plausible time.
int64_t epoch_to_ms(double value);

/// The wall clock in ms since the epoch.
int64_t wall_now_ms();

/// The first line of a text without trailing blanks (runtime/text.hpp).
using text::first_line;

/// Returns `text` without leading and trailing whitespace.
std::string trim(std::string_view text);

/// Picks the most telling line of a CLI's stderr: the first line that
/// `kind_for_error_text` recognises, else the last line that is not known
/// noise (banners, terminal warnings, stack frames). "" when none.
std::string stderr_summary(std::string_view err);

/// Names a signal: "SIGSEGV (11)".
std::string signal_name(int sig);

/// What a parser learned about a failure from the CLI's own output.
struct failure_info {
  /// The kind the CLI's output itself implies (none = unknown).
  failure_kind kind = failure_kind::none;
  /// HTTP status when known, else 0.
  int http_status = 0;
  /// The CLI's own words (one or more lines).
  std::string message;
};

/// Fixed facts about one CLI, used in messages.
struct cli_info {
  /// "codex", "claude", ...
  std::string_view name;
  /// How to get credentials, e.g. "run `codex login` or set OPENAI_API_KEY".
  std::string_view auth_hint;
  /// How to install it, e.g. "npm install -g @openai/codex".
  std::string_view install_hint;
};

/// Fills `o.failure` and `o.message` (first line: "<cli>: <reason>", then
/// the CLI's own words and `extra` when non-empty).
void set_failure(step_outcome& o, const cli_info& cli, failure_kind kind,
                 int http_status, std::string_view detail,
                 std::string_view extra = {});

/// Judges what the process result alone tells: not started, cancelled, a
/// deadline (unless `final_ok`: the answer arrived before it), a signal.
/// Returns true when it decided `o`.
bool judge_process(const process_result& r, const cli_info& cli,
                   step_outcome& o, bool final_ok = false);

// -- JSON-lines parser skeleton -----------------------------------------------

/// Common state and judgement of the four JSON-lines parsers. Subclasses
/// read their CLI's events in on_json() and fill the protected state.
class json_lines_parser : public output_parser {
public:
  explicit json_lines_parser(const cli_info& cli);

  void feed(std::string_view line, std::vector<agent_event>& out) final;
  step_outcome finish(const process_result& result) final;

protected:
  /// Reads one parsed JSON line.
  virtual void on_json(const json& j, std::vector<agent_event>& out) = 0;

  /// Lets a CLI explain an expired deadline from what it printed (codex's
  /// reconnect loop). Returns true when it filled `o`.
  virtual bool explain_deadline(const process_result& r, step_outcome& o);

  /// Lets a CLI add what its exit code or stderr tells (gemini's exit
  /// codes). Called when no successful final event was seen.
  virtual void explain_exit(const process_result& r, failure_info& info);

  /// True when success also needs a non-empty final text (copilot).
  virtual bool needs_final_text() const;

  /// Records the session id; emits session_started the first time.
  void set_session(const std::string& id, std::vector<agent_event>& out);

  /// Records a file the CLI changed (deduplicated); emits file_change with
  /// `text` (the kind of change, or the tool that made it).
  void add_file(const std::string& path, std::vector<agent_event>& out,
                const std::string& text = {});

  /// Adds one report of token counts to the total; emits a usage event.
  void add_usage(const orch::usage& tokens, std::vector<agent_event>& out);

  /// Emits the result event: the final text and the CLI's own status word.
  static void add_result(std::string text, std::string status,
                         std::vector<agent_event>& out);

  /// Records an error message the CLI printed; emits an error event.
  void add_error(const std::string& message, std::vector<agent_event>& out);

  /// Folds a failure hint in: a known kind or status is kept unless a
  /// later, more specific one arrives.
  void note_failure(failure_kind kind, int http_status,
                    const std::string& message);

  cli_info cli_;
  std::string session_id_;
  std::string final_text_;
  orch::usage tokens_;
  std::vector<std::string> files_;
  /// Error messages in the order printed.
  std::vector<std::string> errors_;
  /// What the CLI told about a failure (from error events / final event).
  failure_info failure_;
  /// A final event was read, and it said success.
  bool final_seen_ = false;
  bool final_ok_ = false;
  /// A rate-limit event said the request was rejected.
  bool rate_rejected_ = false;
  /// When the quota resets, as a rate-limit event said (wall ms; 0 unknown).
  int64_t retry_at_ms_ = 0;
  /// Lines that were not JSON objects (last few kept, for messages).
  std::vector<std::string> noise_;
  std::size_t lines_ = 0;
};

/// Factories of the concrete adapters (one per .cpp).
std::unique_ptr<adapter> make_codex_adapter();
std::unique_ptr<adapter> make_claude_adapter();
std::unique_ptr<adapter> make_gemini_adapter();
std::unique_ptr<adapter> make_copilot_adapter();
std::unique_ptr<adapter> make_command_adapter();

/// The process_spec fields every adapter fills the same way: cwd, deadlines
/// from `agent.limits`, env from build_environment, stdin = the prompt.
process_spec base_spec(const agent_config& agent, const step_input& in,
                       const std::vector<std::string>& credential_vars,
                       const std::vector<std::string>& base_env);

/// `agent.command`, or `fallback` when it is empty.
std::string command_or(const agent_config& agent, std::string_view fallback);

} // namespace orch::detail
