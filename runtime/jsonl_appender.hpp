#pragma once

// The output of `batch`: a JSON-lines file that only grows by whole lines.
// Each line goes out in one write() on an O_APPEND descriptor opened without
// following a link; a write that fails half-way is cut back off, so a reader
// never meets a torn line written by a live process. Lines reach the disk
// in groups (fdatasync every N lines or after an interval, and at the end).
// A file left with a torn last line by a crash is repaired when it is opened
// to be continued (`--resume`).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "runtime/fd_util.hpp"

namespace orch {

/// When the appender calls fdatasync.
struct sync_policy {
  /// After this many unsynced lines (0: only by interval and at the end).
  std::size_t every_lines = 64;
  /// After this long with unsynced lines.
  std::chrono::milliseconds interval{1000};
};

/// What opening for `--resume` found in the file.
struct resume_scan {
  /// The "id" of every complete result line.
  std::unordered_set<std::string> ids;
  /// Complete lines read.
  std::size_t lines = 0;
  /// Bytes of a torn last line that were cut off (0: none).
  uint64_t truncated_bytes = 0;
  /// Line numbers of complete lines that are not a JSON object with a
  /// string "id" (kept, ignored).
  std::vector<uint64_t> unreadable;
};

class jsonl_appender {
public:
  /// Opens `path` for appending: created (0644 before umask) when missing,
  /// never through a symlink, a regular file only. Without `resume`, a file
  /// that already holds data is refused (its ids would mix with the new
  /// ones); with it, the file is scanned into `scan` and a torn last line
  /// (no '\n') is cut off with one ftruncate. Returns null and sets `error`
  /// when the file cannot be used.
  static std::unique_ptr<jsonl_appender>
  open(const std::string& path, bool resume, sync_policy policy,
       resume_scan& scan, std::string& error);

  /// Appends `line` and a '\n' in one write. `line` must hold no '\n'.
  /// On failure the file is cut back to its size before, `error` says why.
  bool append(std::string_view line, std::string& error);

  /// True when unsynced lines are due for fdatasync by the policy.
  bool sync_due() const noexcept;

  /// fdatasync when lines were appended since the last one.
  bool sync(std::string& error);

  /// Lines appended by this object.
  std::size_t appended() const noexcept {
    return appended_;
  }

  /// Lines appended and not yet synced.
  std::size_t unsynced() const noexcept {
    return unsynced_;
  }

private:
  jsonl_appender(detail::unique_fd fd, uint64_t size, sync_policy policy);

  detail::unique_fd fd_;
  uint64_t size_;
  sync_policy policy_;
  std::size_t appended_ = 0;
  std::size_t unsynced_ = 0;
  std::chrono::steady_clock::time_point last_sync_;
};

} // namespace orch
