#pragma once

// Process-wide counters of what the resilience mechanisms did: retries,
// breaker transitions, quota waits, fallbacks, cache hits and misses, rate
// limiter decisions. Kept in one place so that `--json`, the log and the
// server's /metrics read the same numbers. Each counter has a name (one of
// the constants below) and an optional label (the agent's name, a failure
// kind); adding is thread-safe and cheap enough for once per step.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orch {

namespace counter {
inline constexpr std::string_view retries = "retries";
inline constexpr std::string_view quota_waits = "quota_waits";
inline constexpr std::string_view fallbacks = "fallbacks";
inline constexpr std::string_view breaker_opened = "breaker_opened";
inline constexpr std::string_view breaker_half_opened = "breaker_half_opened";
inline constexpr std::string_view breaker_closed = "breaker_closed";
inline constexpr std::string_view breaker_refusals = "breaker_refusals";
inline constexpr std::string_view cache_hits = "cache_hits";
inline constexpr std::string_view cache_misses = "cache_misses";
inline constexpr std::string_view cache_corrupt = "cache_corrupt";
inline constexpr std::string_view limiter_admitted = "limiter_admitted";
inline constexpr std::string_view limiter_refused = "limiter_refused";
/// The server's API rate limiter (`serve --rate-limit`), per client: kept
/// apart from the run admissions above.
inline constexpr std::string_view api_limiter_admitted = "api_limiter_admitted";
inline constexpr std::string_view api_limiter_refused = "api_limiter_refused";
inline constexpr std::string_view audit_errors = "audit_errors";
/// User messages of sessions, labelled by how they were read: new_task,
/// followup or ambiguous.
inline constexpr std::string_view session_messages = "session_messages";
/// Sessions saved, and saves or loads that failed (a bad name, a corrupt
/// file, a write error).
inline constexpr std::string_view session_saves = "session_saves";
inline constexpr std::string_view session_store_errors = "session_store_errors";
} // namespace counter

/// One counter's value.
struct counter_sample {
  std::string name;
  std::string label;
  uint64_t value = 0;
};

/// The counters of this process.
class counter_registry {
public:
  /// Adds `n` to the counter `name` with `label` (empty: unlabelled).
  void add(std::string_view name, std::string_view label = {}, uint64_t n = 1);

  /// Returns the value of one counter (0 when never added to).
  uint64_t get(std::string_view name, std::string_view label = {}) const;

  /// Returns the sum over every label of `name`.
  uint64_t total(std::string_view name) const;

  /// Returns every counter, sorted by name then label.
  std::vector<counter_sample> samples() const;

  /// Sets every counter back to 0 (tests).
  void reset();
};

/// The process-wide registry.
counter_registry& counters();

} // namespace orch
