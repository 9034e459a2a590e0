#include "runtime/events.hpp"

namespace orch {

std::string to_string(event_kind x) {
  switch (x) {
    case event_kind::session_started:
      return "session_started";
    case event_kind::text:
      return "text";
    case event_kind::tool_call:
      return "tool_call";
    case event_kind::file_change:
      return "file_change";
    case event_kind::usage:
      return "usage";
    case event_kind::rate_limit:
      return "rate_limit";
    case event_kind::error:
      return "error";
    case event_kind::result:
      return "result";
  }
  return "unknown";
}

std::string to_string(failure_kind x) {
  switch (x) {
    case failure_kind::none:
      return "none";
    case failure_kind::not_installed:
      return "not_installed";
    case failure_kind::not_authenticated:
      return "not_authenticated";
    case failure_kind::transient:
      return "transient";
    case failure_kind::rate_limited:
      return "rate_limited";
    case failure_kind::timeout_first_output:
      return "timeout_first_output";
    case failure_kind::timeout_idle:
      return "timeout_idle";
    case failure_kind::timeout_total:
      return "timeout_total";
    case failure_kind::crashed:
      return "crashed";
    case failure_kind::unparseable:
      return "unparseable";
    case failure_kind::agent_error:
      return "agent_error";
    case failure_kind::cancelled:
      return "cancelled";
    case failure_kind::circuit_open:
      return "circuit_open";
  }
  return "unknown";
}

bool retryable(failure_kind x) noexcept {
  switch (x) {
    // Vendor trouble that goes away by itself: network, 5xx, overload.
    case failure_kind::transient:
    // A CLI stuck at startup (MCP servers, a slow auth refresh) or in a
    // stalled stream usually gets through on a fresh start.
    case failure_kind::timeout_first_output:
    case failure_kind::timeout_idle:
    // A signal nobody sent on purpose (OOM killer, a segfault in a native
    // module) is rarely deterministic; the retry limit bounds the cost.
    case failure_kind::crashed:
      return true;
    // No success to wait for.
    case failure_kind::none:
    // The quota refills at its own time: the agent actor waits for the
    // reset time the CLI reported (settings.max_quota_wait), not a backoff.
    case failure_kind::rate_limited:
    // Running it again finds the same PATH and the same credentials.
    case failure_kind::not_installed:
    case failure_kind::not_authenticated:
    // The step did not fit the time budget; it would only burn it again.
    case failure_kind::timeout_total:
    // The CLI's output format is not what we read: deterministic.
    case failure_kind::unparseable:
    // The agent ran and reported a failed turn (bad flag, turn limit,
    // refused request): the same input gives the same answer.
    case failure_kind::agent_error:
    // Somebody wanted it stopped.
    case failure_kind::cancelled:
    // The breaker says when it may close; a fallback is the way on.
    case failure_kind::circuit_open:
      return false;
  }
  return false;
}

bool counts_for_breaker(failure_kind x) noexcept {
  switch (x) {
    case failure_kind::transient:
    case failure_kind::timeout_first_output:
    case failure_kind::timeout_idle:
    case failure_kind::timeout_total:
    case failure_kind::crashed:
    case failure_kind::rate_limited:
    case failure_kind::not_authenticated:
      return true;
    case failure_kind::none:
    case failure_kind::not_installed:
    case failure_kind::unparseable:
    case failure_kind::agent_error:
    case failure_kind::cancelled:
    case failure_kind::circuit_open:
      return false;
  }
  return false;
}

bool falls_back(failure_kind x) noexcept {
  return x == failure_kind::not_installed
         || x == failure_kind::not_authenticated
         || x == failure_kind::circuit_open || x == failure_kind::rate_limited;
}

} // namespace orch
