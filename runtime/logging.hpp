#pragma once

// The log file: one named spdlog logger, `orch`, writing only to
// `<state_dir>/logs/ai-orchestrator.log` (rotated by size), never to stdout
// or stderr. Any actor logs through orch::log(); before init_logging (and in
// tests) the logger has no sink and every call is a cheap no-op.
//
// Messages start with a stable event id, then key=value fields:
//   orch::log().info("run-start id={} workflow={}", id, workflow);

#include <cstddef>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace orch {

/// Name of the logger in spdlog's registry (spdlog::get("orch")).
inline constexpr std::string_view log_name = "orch";

/// Name of the log file inside `<state_dir>/logs/`; rotated copies are
/// `ai-orchestrator.1.log` (newest) up to `.N.log`.
inline constexpr std::string_view log_file_name = "ai-orchestrator.log";

/// How the log file is written.
struct log_options {
  /// trace, debug, info, warn, error or off (see normalize_log_level).
  std::string level = "info";
  /// The file is rotated before it would grow past this size.
  std::size_t max_bytes = std::size_t{5} * 1024 * 1024;
  /// Files kept in all, the current one included.
  std::size_t max_files = 3;
};

/// Opens (creating 0700) `logs/` in the state directory `state_fd` and the
/// log file in it (0600, O_APPEND|O_NOFOLLOW|O_CLOEXEC: never through a
/// link, never inherited by an agent), then points the `orch` logger, also
/// made spdlog's default, at it with `opts.level`. Rotation renames within
/// that folder's descriptor and reopens the same way. With level `off`
/// nothing is opened. Call before any actor runs (it changes the logger's
/// sinks). Returns false with `error` set when the file cannot be opened;
/// the logger then stays silent.
bool init_logging(int state_fd, const log_options& opts, std::string& error);

/// Flushes and detaches the log file: later calls go nowhere. Call after
/// every actor has stopped.
void shutdown_logging();

/// Returns `text` fit for one log line: control characters (newlines
/// included, so no text can forge a line) become `\n`, `\t` or `\xHH`, and
/// at most `max_bytes` of it are kept (cut on a UTF-8 boundary, "..." added).
std::string log_text(std::string_view text, std::size_t max_bytes = 300);

/// Returns the `orch` logger (the same object before and after
/// init_logging).
spdlog::logger& log();

} // namespace orch
