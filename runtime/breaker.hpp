#pragma once

// The circuit breaker of one agent, and where its state is kept between
// processes. Pure logic on wall-clock milliseconds (no timers, no CAF): the
// agent actor asks it before each attempt and tells it each outcome; the
// open -> half-open move happens when a step asks after the cool-down.
//
//   closed --(failures within window)--> open --(cool-down over, a step
//   asks)--> half-open: one trial step --success--> closed
//                                      \--failure--> open again
//
// A quota reset time the CLI reported opens it until that time, so that the
// next `run` process reads `<state>/breakers/<agent>.json` and goes straight
// to the fallback agent.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "runtime/events.hpp"

namespace orch {

enum class breaker_state : uint8_t { closed, open, half_open };

/// Returns "closed", "open" or "half_open".
std::string to_string(breaker_state x);

/// What is persisted of a breaker.
struct breaker_snapshot {
  breaker_state state = breaker_state::closed;
  /// While open: when it may half-open (wall clock ms).
  int64_t open_until_ms = 0;
  /// Why it opened: the failure kind and the first line of its message.
  std::string reason;
  /// Times of the recent failures that count (within the window).
  std::vector<int64_t> failures;
  /// When the state last changed.
  int64_t changed_ms = 0;
};

/// A state change, for counters, the audit log and the progress display.
enum class breaker_transition : uint8_t { none, opened, half_opened, closed };

class circuit_breaker {
public:
  explicit circuit_breaker(breaker_policy policy = {},
                           breaker_snapshot state = {});

  /// May an attempt start at `now`? Closed: yes. Open: no until the
  /// cool-down is over, then it turns half-open and lets this one attempt
  /// through as the trial. Half-open: only when no trial is running.
  bool allow(int64_t now, breaker_transition* changed = nullptr);

  /// An attempt succeeded: a half-open (or open) breaker closes.
  breaker_transition on_success(int64_t now);

  /// An attempt failed with `kind` (`why`: its first line). Kinds that do
  /// not count (counts_for_breaker) change nothing but end a trial.
  /// `open_until` > now (a quota reset time) opens it until then at once.
  breaker_transition on_failure(failure_kind kind, const std::string& why,
                                int64_t now, int64_t open_until = 0);

  /// A trial ended without a verdict (cancelled): the next step may try.
  void end_trial() noexcept {
    trial_running_ = false;
  }

  const breaker_snapshot& snapshot() const noexcept {
    return state_;
  }

  /// The message of a refused step: why it is open and when it may close,
  /// e.g. "circuit open: 3 failures within 10m (last: transient: ...);
  /// may close at 15:40:00".
  std::string refusal(int64_t now) const;

private:
  breaker_transition open(int64_t until, std::string why, int64_t now);

  breaker_policy policy_;
  breaker_snapshot state_;
  bool trial_running_ = false;
};

/// Returns `ms` (wall clock) as local "HH:MM:SS" when it falls on the same
/// day as `now_ms`, else "YYYY-MM-DD HH:MM:SS".
std::string format_wall_time(int64_t ms, int64_t now_ms);

/// Returns a duration as "45s", "4m 10s", "2h 5m".
std::string format_wait(int64_t ms);

/// The file of `agent`'s breaker below the state directory:
/// "breakers/<plain_name(agent)>.json".
std::string breaker_file(const std::string& agent);

/// Writes the snapshot atomically (write_file_atomic) below `state_dir`.
bool save_breaker(const std::filesystem::path& state_dir,
                  const std::string& agent, const breaker_snapshot& snap,
                  std::string& error);

/// Reads a saved snapshot; nullopt when there is none, or (with `error` set)
/// when it cannot be read or is not a valid snapshot. Never follows a link
/// at the file.
std::optional<breaker_snapshot>
load_breaker(const std::filesystem::path& state_dir, const std::string& agent,
             std::string& error);

} // namespace orch
