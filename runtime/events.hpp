#pragma once

// The typed vocabulary of what an agent invocation produced. Adapters turn
// each CLI's own output into these; actors, the CLI and the result manifest
// consume them. Plain structs, no CAF: actors/vocabulary.hpp adds `inspect`.

#include <cstdint>
#include <string>
#include <vector>

namespace orch {

/// Token counts and cost of one invocation (or a sum of them).
struct usage {
  /// Every prompt token, cached ones included (claude: input + cache
  /// creation + cache read; codex and gemini report it that way).
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  /// The part of `input_tokens` served from the prompt cache.
  int64_t cached_tokens = 0;
  /// USD as reported by the CLI (claude); 0 when `has_cost` is false.
  double cost_usd = 0;
  bool has_cost = false;

  usage& operator+=(const usage& other) noexcept {
    input_tokens += other.input_tokens;
    output_tokens += other.output_tokens;
    cached_tokens += other.cached_tokens;
    cost_usd += other.cost_usd;
    has_cost = has_cost || other.has_cost;
    return *this;
  }
};

enum class event_kind : uint8_t {
  /// `text` holds the session/thread id.
  session_started,
  /// Assistant text (a whole message or a delta).
  text,
  /// A tool call; `detail` names the tool, `text` its summary.
  tool_call,
  /// A file the CLI reports it changed; `detail` is the path.
  file_change,
  /// Token/cost numbers; see `tokens`.
  usage,
  /// A rate-limit notice; `text` describes it.
  rate_limit,
  /// An error the CLI reported; `text` is its message.
  error,
  /// The final outcome line; `text` is the final answer.
  result,
};

/// Returns the snake_case name of `x`.
std::string to_string(event_kind x);

struct agent_event {
  event_kind kind = event_kind::text;
  std::string text;
  std::string detail;
  orch::usage tokens;
};

/// Why a step failed. Each kind says whether retrying can help.
enum class failure_kind : uint8_t {
  none,
  /// The executable is not on PATH (or not executable).
  not_installed,
  /// The CLI says it has no credentials.
  not_authenticated,
  /// Network trouble or a 5xx from the vendor: retry later.
  transient,
  /// 429 or a rejected rate-limit event: retry after a delay.
  rate_limited,
  /// No output within the first-output deadline.
  timeout_first_output,
  /// No output for the idle deadline.
  timeout_idle,
  /// The total deadline passed.
  timeout_total,
  /// Killed by a signal or exited non-zero without a reason we recognise.
  crashed,
  /// Exited without a final event we can read.
  unparseable,
  /// The CLI reported a failed turn that is none of the above.
  agent_error,
  /// Stopped by the user (Ctrl-C) or by the orchestrator.
  cancelled,
  /// Refused without running: the agent's circuit breaker is open (it
  /// failed too often lately, or is out of quota); the message says why and
  /// when it may close.
  circuit_open,
};

/// Returns the snake_case name of `x`.
std::string to_string(failure_kind x);

/// Returns true when the agent actor retries a step that failed this way
/// (with exponential backoff, up to the agent's retry.attempts): transient,
/// timeout_first_output, timeout_idle and crashed. Never retried:
/// not_installed, not_authenticated, unparseable, agent_error,
/// timeout_total, cancelled, circuit_open. rate_limited is not retried by
/// this rule: it waits for the quota reset time (see quota_waitable).
bool retryable(failure_kind x) noexcept;

/// Returns true for failures that say the agent itself is unwell and count
/// toward opening its circuit breaker: transient, the timeouts, crashed,
/// rate_limited and not_authenticated (not a user's cancel, not a bad
/// answer).
bool counts_for_breaker(failure_kind x) noexcept;

/// Returns true for failures after which a step goes to the agent's
/// fallback agents: not_installed, not_authenticated, circuit_open and
/// rate_limited (out of quota beyond settings.max_quota_wait).
bool falls_back(failure_kind x) noexcept;

/// The outcome of one agent invocation, judged from its final event.
struct step_outcome {
  bool ok = false;
  failure_kind failure = failure_kind::none;
  /// Human-readable reason on failure (first line names the cause).
  std::string message;
  /// The final answer text.
  std::string final_text;
  std::string session_id;
  orch::usage tokens;
  /// Paths the CLI itself reported as changed (as it spelled them).
  std::vector<std::string> reported_files;
  int32_t exit_code = -1;
  /// Output exceeded the cap and was cut.
  bool truncated = false;
  /// For rate_limited: when the quota resets as the CLI reported it (a
  /// rate_limit_event's resetsAt, a Retry-After or "try again in N
  /// seconds" in a 429 error), wall clock ms since the epoch; 0 = unknown.
  int64_t retry_at_ms = 0;
};

} // namespace orch
