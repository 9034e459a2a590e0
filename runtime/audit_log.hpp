#pragma once

// The audit log: one JSON line per security-relevant event (run submitted
// and finished, agent invoked, file written, path refused, rate limit hit,
// circuit opened or closed), appended to `<state dir>/audit/audit.jsonl`.
// Process-wide: main opens it once from the config (audit_open); until then,
// and when disabled, audit() does nothing. Appending never blocks a caller
// for long and never throws; a write error is counted (counter::audit_errors)
// and logged once.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

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
/// A session written to `<state dir>/sessions/` (detail: the file).
inline constexpr const char* session_saved = "session_saved";
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
  /// Keep the task text itself in run_submitted, not only its hash.
  bool include_task = false;
  /// Rotate when the file would pass this size: audit.jsonl becomes
  /// audit.jsonl.1, .1 becomes .2, ... up to audit_rotated_files.
  uint64_t max_bytes = uint64_t{10} * 1024 * 1024;
};

/// The file of the audit log, in `<state dir>/audit`.
inline constexpr const char* audit_file_name = "audit.jsonl";
/// Rotated files kept (audit.jsonl.1 is the newest).
inline constexpr int audit_rotated_files = 3;

/// Opens (or replaces) the process-wide audit log in `<state>/audit`
/// (created 0700 through open_state_subdir; `state_fd` is the state
/// directory's descriptor, see open_state_dir). The file is opened for
/// appending with O_NOFOLLOW, created 0600; a link there, or anything but a
/// regular file with one name, is refused. Returns false with `error` set
/// when the log cannot be used; audit() then does nothing. When
/// `options.enabled` is false, closes any open log and returns true.
bool audit_open(int state_fd, const audit_options& options, std::string& error);

/// The OS user of this process (getpwuid of the real uid; the uid as text
/// when it has no name).
std::string os_user_name();

/// sha256 (hex) of `argv`, each element followed by a NUL byte: what the
/// audit log records of an agent invocation (the argv may hold the prompt).
std::string argv_sha256(const std::vector<std::string>& argv);

/// One audit line (no newline) for `ev` at `unix_ms` by `user`: a JSON
/// object with time (UTC ISO 8601 with ms), user, kind, run_id, then
/// agent, path and detail when not empty, then the extra fields.
std::string audit_line(const audit_event& ev, int64_t unix_ms,
                       const std::string& user);

/// Appends one event (no-op when no log is open).
void audit(const audit_event& ev);

/// Appends several events with one write (e.g. every file of a run).
void audit(const std::vector<audit_event>& events);

/// True when the open log keeps task texts (settings.audit.include_task).
bool audit_includes_task();

/// Flushes the appended lines to disk (fsync); called at the end of a run.
void audit_sync();

/// Closes the log (tests; main at exit).
void audit_close();

} // namespace orch
