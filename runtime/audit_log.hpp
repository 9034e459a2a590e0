#pragma once

// The audit log: one JSON line per security-relevant event (run submitted
// and finished, agent invoked, file written, path refused, rate limit hit,
// circuit opened or closed), appended to `<state dir>/audit/audit.jsonl`.
// Process-wide: main opens it once from the config (audit_open); until then,
// and when disabled, audit() does nothing. Appending never blocks a caller
// for long and never throws; a write error is counted (counter::audit_errors)
// and logged once.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace orch {

/// The kinds of audit events.
namespace audit_kind {
inline constexpr const char* run_submitted = "run_submitted";
inline constexpr const char* run_finished = "run_finished";
inline constexpr const char* agent_invoked = "agent_invoked";
inline constexpr const char* file_written = "file_written";
inline constexpr const char* path_refused = "path_refused";
inline constexpr const char* rate_limited = "rate_limited";
inline constexpr const char* circuit_opened = "circuit_opened";
inline constexpr const char* circuit_closed = "circuit_closed";
} // namespace audit_kind

/// One event. Time and OS user are added by the log.
struct audit_event {
  std::string kind;
  std::string run_id;
  /// The agent concerned, if any.
  std::string agent;
  /// A workspace-relative path, for file events.
  std::string path;
  /// Free text (a reason, a status); never the task text.
  std::string detail;
  /// More string fields (e.g. "argv_sha256", "task_sha256").
  std::map<std::string, std::string> extra;
};

/// Where and how the audit log is written (from settings.audit).
struct audit_options {
  bool enabled = true;
  /// `<state dir>/audit`; the file is `audit.jsonl` in it.
  std::filesystem::path dir;
  /// Keep the task text itself in run_submitted, not only its hash.
  bool include_task = false;
  /// Rotate when the file passes this size (audit.jsonl.1 keeps the last).
  uint64_t max_bytes = uint64_t{10} * 1024 * 1024;
};

/// Opens (or replaces) the process-wide audit log. Returns false with
/// `error` set when the folder cannot be used; audit() then does nothing.
bool audit_open(const audit_options& options, std::string& error);

/// Appends one event (no-op when no log is open).
void audit(const audit_event& ev);

/// True when the open log keeps task texts (settings.audit.include_task).
bool audit_includes_task();

/// Flushes the appended lines to disk (fsync); called at the end of a run.
void audit_sync();

/// Closes the log (tests; main at exit).
void audit_close();

} // namespace orch
