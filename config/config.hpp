#pragma once

// Plain configuration structs and the functions that produce them. YAML is
// parsed here and nowhere else: everything downstream receives these structs.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orch {

// -- agents -------------------------------------------------------------------

/// Selects how a step is turned into a subprocess and how its output is read.
enum class adapter_kind : uint8_t { codex, claude, gemini, copilot, command };

/// Returns the config spelling of `x` ("codex", ...).
std::string to_string(adapter_kind x);

/// Parses the config spelling of an adapter kind.
std::optional<adapter_kind> parse_adapter_kind(std::string_view str);

/// The three deadlines of one agent invocation. Zero disables a deadline.
/// Invariant checked at load: first_output <= total and idle <= total.
struct deadlines {
  /// No byte on stdout/stderr within this time after start.
  std::chrono::milliseconds first_output{std::chrono::seconds{180}};
  /// No byte for this long once output started.
  std::chrono::milliseconds idle{std::chrono::seconds{300}};
  /// The whole invocation.
  std::chrono::milliseconds total{std::chrono::seconds{1800}};
};

/// How the `command` adapter hands the prompt to the program.
enum class prompt_mode : uint8_t {
  /// The prompt is written to stdin, which is then closed.
  stdin_text,
  /// The prompt replaces the `{prompt}` placeholder in `args`.
  argument,
};

/// Returns the config spelling of `x` ("stdin" or "argument").
std::string to_string(prompt_mode x);

/// Retries of a failed step (see retryable() in runtime/events.hpp): the
/// delay before retry n (1-based) is min(cap, base * 2^(n-1)), of which a
/// random part up to half is taken off (jitter).
struct retry_policy {
  /// Attempts in all: the first try plus up to attempts - 1 retries.
  int32_t attempts = 3;
  std::chrono::milliseconds base{std::chrono::seconds{2}};
  std::chrono::milliseconds cap{std::chrono::seconds{30}};
};

/// The circuit breaker of one agent: open after `failures` failures that say
/// the agent is unwell within `window`; half-open (one trial step) after
/// `cool_down`; closed again on a success.
struct breaker_policy {
  int32_t failures = 5;
  std::chrono::milliseconds window{std::chrono::minutes{10}};
  std::chrono::milliseconds cool_down{std::chrono::minutes{5}};
};

struct agent_config {
  std::string name;
  adapter_kind kind = adapter_kind::command;
  /// Executable: a bare name looked up on PATH, or a path. A relative path
  /// with a slash is resolved against the directory of the config file.
  std::string command;
  /// Extra arguments appended to the adapter's own argv.
  std::vector<std::string> args;
  /// Model name passed with the CLI's model flag; empty = the CLI's default.
  std::string model;
  bool enabled = true;
  /// Free text shown by `agents` (implementation, review, ...).
  std::string role;
  std::string description;
  /// Names of environment variables passed through to the process, on top
  /// of the base set (PATH, HOME, LANG, TERM, ...) and the adapter's own
  /// credential variables.
  std::vector<std::string> env_allow;
  /// Fixed environment entries NAME -> value set for the process.
  std::map<std::string, std::string> env_set;
  deadlines limits;
  /// Steps run at once on this agent; more wait in its queue.
  int32_t max_concurrency = 1;
  /// Only for the `command` adapter.
  prompt_mode prompt = prompt_mode::stdin_text;
  /// `settings.retry` unless the agent sets its own (key by key).
  retry_policy retry;
  /// `settings.circuit_breaker` unless the agent sets its own (key by key).
  breaker_policy circuit_breaker;
  /// Agents that take a step over, in order, when this one is not
  /// installed, not authenticated, open-circuited or out of quota beyond
  /// settings.max_quota_wait. Known agents, never itself.
  std::vector<std::string> fallback;
};

// -- workflows ----------------------------------------------------------------

/// One agent doing one kind of task.
struct step_item {
  std::string agent;
  /// implement, review, refine, test, document, security_review, or a
  /// custom task kind declared under `tasks:`.
  std::string task;
  std::string description;
};

/// A workflow step: one item, or several run at once (a parallel group).
struct step_config {
  std::vector<step_item> items;
  bool parallel() const noexcept {
    return items.size() > 1;
  }
};

struct workflow_config {
  std::string name;
  std::string description;
  int32_t max_iterations = 3;
  /// The run has converged when open findings <= this number.
  int32_t min_suggestions_threshold = 0;
  std::vector<step_config> steps;
};

/// Returns the steps as `a:implement → [b:review | c:review] → d:refine`.
std::string describe_steps(const workflow_config& wf);

/// Returns the names of the agents the workflow's steps use, sorted, each
/// once.
std::vector<std::string> agents_of(const workflow_config& wf);

/// A placeholder of a custom task prompt, written `{name}` in the template.
enum class prompt_placeholder : uint8_t {
  /// The task text.
  task,
  /// The open findings of the previous review.
  findings,
  /// The files in the workspace so far.
  files,
  /// The previous step's final text.
  previous_output,
  /// The absolute workspace path.
  workspace,
  /// The 1-based iteration number.
  iteration,
  /// The task kind of the step.
  task_kind,
};

/// The one list of prompt placeholders with their spellings: config
/// validation warns about any other `{word}`, and render_prompt fills each.
inline constexpr std::pair<prompt_placeholder, std::string_view>
  prompt_placeholders[] = {
    {prompt_placeholder::task, "task"},
    {prompt_placeholder::findings, "findings"},
    {prompt_placeholder::files, "files"},
    {prompt_placeholder::previous_output, "previous_output"},
    {prompt_placeholder::workspace, "workspace"},
    {prompt_placeholder::iteration, "iteration"},
    {prompt_placeholder::task_kind, "task_kind"},
};

/// A custom task kind with its prompt template; see prompt_placeholders.
struct task_template {
  std::string name;
  std::string prompt;
  /// True when the step produces review findings.
  bool review = false;
};

/// `settings.audit`: the audit log of security-relevant events (see
/// runtime/audit_log.hpp).
struct audit_settings {
  /// Append events to `<state dir>/audit/audit.jsonl`.
  bool enabled = true;
  /// Keep the task text itself in `run_submitted`, not only its sha256.
  bool include_task = false;
  /// Rotate the file when it passes this size (audit.jsonl.1 .. .3 kept).
  std::size_t max_bytes = std::size_t{10} * 1024 * 1024;
};

/// The step cache (settings.cache): a successful step's outcome and files,
/// replayed when the same agent meets the same task, prompt and workspace
/// content again (see runtime/step_cache_store.hpp).
struct cache_settings {
  bool enabled = true;
  /// Entries older than this are misses (and removed).
  std::chrono::milliseconds ttl{std::chrono::hours{24 * 7}};
  /// Entries kept in memory (least recently used go first).
  std::size_t max_entries = 1000;
  /// Bytes of entries kept in memory.
  std::size_t max_memory_bytes = std::size_t{64} * 1024 * 1024;
  /// Bytes of entry files under `<state dir>/cache/` (oldest go first).
  std::size_t max_disk_bytes = std::size_t{512} * 1024 * 1024;
};

struct settings {
  int32_t max_iterations = 3;
  int32_t min_suggestions_threshold = 0;
  std::string workspace_dir = "./workspace";
  /// Longest accepted task text, in bytes.
  std::size_t max_task_chars = 100000;
  /// Bytes kept per stream of one agent invocation; the rest is dropped.
  std::size_t output_cap_bytes = std::size_t{16} * 1024 * 1024;
  /// SIGTERM -> SIGKILL grace period.
  std::chrono::milliseconds kill_grace{std::chrono::seconds{3}};
  /// trace, debug, info, warn, error or off: what the log file keeps.
  std::string log_level = "info";
  /// Where the log (and later sessions, cache, history) is kept: an
  /// absolute path or one starting with `~/`. Empty means
  /// `$XDG_STATE_HOME/ai-orchestrator`, else `~/.local/state/ai-orchestrator`
  /// (see runtime/state_dir.hpp).
  std::string state_dir;
  /// Threads of the actor scheduler. Blocking work (agent processes, file
  /// copies, snapshots) runs on threads of its own, so few are needed.
  int32_t scheduler_threads = 2;
  /// The audit log.
  audit_settings audit;
  /// Default retry policy of every agent.
  retry_policy retry;
  /// Default circuit breaker of every agent.
  breaker_policy circuit_breaker;
  /// A rate-limited step waits for the quota reset time its CLI reported
  /// when it is at most this far away; else it fails (or falls back).
  std::chrono::milliseconds max_quota_wait{std::chrono::minutes{5}};
  /// The step cache.
  cache_settings cache;
};

/// The top-level `rate_limiting` section: a token bucket per user, checked
/// when a run is submitted, shared between processes through the state
/// directory.
struct rate_limit_settings {
  /// Off unless the section says `enabled: true`.
  bool enabled = false;
  /// Refill rate of each bucket.
  int32_t requests_per_minute = 10;
  /// Capacity of each bucket: runs admitted back to back.
  int32_t burst_size = 20;
  /// One bucket per user; false: one bucket shared by all.
  bool per_user = true;
};

/// Returns the canonical log level for `text` (trace, debug, info, warn,
/// error, off; any case, and the original's WARNING and CRITICAL), or
/// nothing when it names none.
std::optional<std::string> normalize_log_level(std::string_view text);

/// The whole configuration, validated.
struct config {
  /// Agents in file order.
  std::vector<agent_config> agents;
  /// Workflows in file order.
  std::vector<workflow_config> workflows;
  std::vector<task_template> tasks;
  orch::settings settings;
  rate_limit_settings rate_limiting;
  /// The file it came from, or "built-in".
  std::string source = "built-in";

  const agent_config* find_agent(std::string_view name) const;
  const workflow_config* find_workflow(std::string_view name) const;
  const task_template* find_task(std::string_view name) const;
};

// -- limits -------------------------------------------------------------------

/// Upper bounds of the numeric settings. parse_config and validate_config
/// report a value above one as an error, so no setting can overflow a
/// millisecond count or ask for absurd memory.
namespace config_limits {

/// `deadlines.first_output`, `.idle`, `.total` and `timeout`: 7 days.
inline constexpr std::chrono::milliseconds max_deadline{
  std::chrono::hours{24 * 7}};
/// `settings.kill_grace`: 10 minutes.
inline constexpr std::chrono::milliseconds max_kill_grace{
  std::chrono::minutes{10}};
/// `settings.output_cap_bytes`: 1 GiB per stream.
inline constexpr std::size_t max_output_cap_bytes = std::size_t{1} << 30;
/// `settings.max_task_chars`: 8 MiB.
inline constexpr std::size_t max_task_chars = std::size_t{8} << 20;
/// `agents.<name>.max_concurrency`.
inline constexpr int32_t max_concurrency = 64;
/// `settings.scheduler_threads`.
inline constexpr int32_t max_scheduler_threads = 64;
/// `max_iterations` of workflows and settings.
inline constexpr int32_t max_iterations = 1000;
/// `min_suggestions_threshold` of workflows and settings.
inline constexpr int32_t max_suggestions_threshold = 100000;
/// `rate_limiting.requests_per_minute` and `.burst_size`.
inline constexpr int32_t max_rate_limit = 1000000;
/// `settings.audit.max_bytes`: at least 4 KiB, at most 1 GiB.
inline constexpr std::size_t min_audit_bytes = 4096;
inline constexpr std::size_t max_audit_bytes = std::size_t{1} << 30;
/// `retry.attempts` (settings and agents).
inline constexpr int32_t max_retry_attempts = 20;
/// `retry.base` and `retry.cap`: 1 hour.
inline constexpr std::chrono::milliseconds max_retry_delay{
  std::chrono::hours{1}};
/// `circuit_breaker.failures`.
inline constexpr int32_t max_breaker_failures = 1000;
/// `circuit_breaker.window` and `.cool_down`, `settings.max_quota_wait`:
/// 7 days.
inline constexpr std::chrono::milliseconds max_breaker_time{
  std::chrono::hours{24 * 7}};
/// `settings.cache.ttl`: 365 days.
inline constexpr std::chrono::milliseconds max_cache_ttl{
  std::chrono::hours{24 * 365}};
/// `settings.cache.max_entries`.
inline constexpr std::size_t max_cache_entries = 1000000;
/// `settings.cache.max_memory_bytes`: 16 GiB.
inline constexpr std::size_t max_cache_memory_bytes = std::size_t{16} << 30;
/// `settings.cache.max_disk_bytes`: 1 TiB.
inline constexpr std::size_t max_cache_disk_bytes = std::size_t{1} << 40;

} // namespace config_limits

// -- loading ------------------------------------------------------------------

/// One problem found in a config file. `line` and `column` are 1-based; 0
/// when unknown.
struct config_error {
  std::string file;
  int32_t line = 0;
  int32_t column = 0;
  /// Dotted path of the offending key, e.g. `agents.codex.timeout`.
  std::string key;
  std::string message;

  /// Returns `file:line:column: key: message`; the position is left out
  /// when unknown (line 0) and the key when empty.
  std::string to_string() const;
};

/// The outcome of loading: a config, or every error found (not just the
/// first). Warnings never prevent a config.
struct load_result {
  std::optional<orch::config> value;
  std::vector<config_error> errors;
  std::vector<config_error> warnings;
};

/// The task kinds known without a `tasks:` section.
const std::vector<std::string>& builtin_task_kinds();

/// Returns the built-in default: the seed's four agents (codex, gemini,
/// claude and copilot, all enabled because `thorough` uses copilot) and five
/// workflows (default, quick, thorough, review-only, document).
orch::config builtin_config();

/// Checks a config built in code (such as the built-in one) with the same
/// rules that parse_config applies after reading a file: references between
/// steps, agents and tasks, deadline invariants and value ranges. Positions
/// are 0 because there is no file.
std::vector<config_error> validate_config(const orch::config& cfg);

/// Parses and validates YAML text. `file` names the source in errors and is
/// the base for relative agent commands.
load_result parse_config(std::string_view yaml_text, const std::string& file);

/// Reads and parses a file; a missing or unreadable file is an error.
load_result load_config_file(const std::string& path);

/// Where a config comes from, in lookup order: the explicit path, then
/// `./ai-orchestrator.yaml`, then
/// `$XDG_CONFIG_HOME/ai-orchestrator/config.yaml`
/// (`~/.config/...` when unset), else the built-in default (empty string).
std::string find_config_path(const std::string& explicit_path);

/// Looks the config up (see find_config_path) and loads it.
load_result load_config(const std::string& explicit_path);

} // namespace orch
