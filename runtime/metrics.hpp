#pragma once

// The metrics registry of a long-lived process (`serve`): every Prometheus
// family the orchestrator exposes, created in one place on prometheus-cpp's
// core, and the text exposition `/metrics` answers. Thread-safe: the metrics
// feed actor records runs while HTTP threads render.
//
// Families (label dimensions in braces):
// - orchestrator_tasks_total{workflow,status}: runs finished, by run status
//   (converged, completed, max_iterations, no_progress, failed, cancelled);
// - orchestrator_task_duration_seconds{workflow}: histogram of run durations;
// - orchestrator_task_failures_total{workflow,kind}: runs that failed or were
//   cancelled, by the failure kind of the failing step (`cancelled`, or
//   `run_error` when no step failed, e.g. a workspace error);
// - orchestrator_task_success_rate{workflow}: runs not failed or cancelled /
//   runs finished, since the process started;
// - orchestrator_tasks_running: runs started and not finished;
// - orchestrator_agent_calls_total{agent}: agent invocations (each attempt of
//   a retried or fallen-back step; cached steps ran no process: not counted);
// - orchestrator_agent_errors_total{agent,kind}: failed invocations;
// - orchestrator_agent_response_time_seconds{agent}: histogram per attempt;
// - orchestrator_agent_availability{agent}: 1 available, 0 not;
// - orchestrator_agent_tokens_total{agent,type}: type input, output, cached;
// - orchestrator_agent_cost_usd_total{agent}: USD as the CLIs report it;
// - orchestrator_active_sessions, orchestrator_memory_usage_bytes (resident
//   set size, read at each render);
// - from the process counters (runtime/counters.hpp), read at each render:
//   orchestrator_cache_hits_total{agent}, orchestrator_cache_misses_total
//   {agent}, orchestrator_cache_corrupt_total, orchestrator_retries_total
//   {agent}, orchestrator_quota_waits_total{agent},
//   orchestrator_fallbacks_total{agent}, orchestrator_breaker_transitions_total
//   {agent,state}, orchestrator_breaker_refusals_total{agent},
//   orchestrator_rate_limiter_decisions_total{user,decision} (runs),
//   orchestrator_api_rate_limit_decisions_total{client,decision},
//   orchestrator_audit_errors_total, orchestrator_session_messages_total
//   {kind}, orchestrator_session_saves_total,
//   orchestrator_session_store_errors_total{op}; a counter added later that
//   this table does not know appears as orchestrator_<name>_total{label}.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace orch {

/// One finished run, as the metrics see it.
struct task_sample {
  std::string workflow;
  /// run_status as text (converged, completed, failed, ...).
  std::string status;
  /// False for failed and cancelled runs.
  bool ok = false;
  double duration_seconds = 0;
  /// When not ok: the failure kind of the failing step, `cancelled` or
  /// `run_error`.
  std::string failure;
};

/// One invocation of an agent's CLI (one attempt of a step).
struct agent_call_sample {
  std::string agent;
  bool ok = false;
  /// failure_kind as text when not ok.
  std::string failure;
  double seconds = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cached_tokens = 0;
  double cost_usd = 0;
};

/// The metric families of one process.
class metrics_registry {
public:
  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  /// Records a finished run (tasks, durations, failures, success rate).
  void record_task(const task_sample& x);

  /// Records one agent invocation (calls, errors, response time, tokens,
  /// cost).
  void record_agent_call(const agent_call_sample& x);

  /// Adds `delta` to the running-runs gauge (never below 0).
  void add_running(int delta);

  /// Sets an agent's availability gauge.
  void set_agent_available(std::string_view agent, bool available);

  /// Sets the live sessions gauge.
  void set_active_sessions(int64_t n);

  /// Waits until record_task has been called at least `n` times in all, or
  /// `limit` passed; true when it was.
  bool wait_recorded(uint64_t n, std::chrono::milliseconds limit) const;

  /// Returns the text exposition (Prometheus text format 0.0.4) of every
  /// family, the process counters and the memory gauge read now.
  std::string render() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Returns the resident set size of this process in bytes (0 when it cannot
/// be read).
int64_t resident_memory_bytes();

/// Returns `value` fit for a label value: bytes that are not UTF-8 become
/// U+FFFD and at most 128 bytes are kept (on a character boundary).
std::string metric_label(std::string_view value);

/// Content-Type of the text exposition.
inline constexpr const char* metrics_content_type
  = "text/plain; version=0.0.4; charset=utf-8";

} // namespace orch
