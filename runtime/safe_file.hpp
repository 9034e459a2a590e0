#pragma once

// Files the orchestrator writes itself (manifest, step outputs, backups,
// later sessions, cache and logs in the state directory): created relative to
// a folder descriptor opened once, never through a symlink at any component
// below that folder, and replaced atomically (unique O_EXCL|O_NOFOLLOW temp
// name, fsync, rename, fsync of the folder).

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/fd_util.hpp"

namespace orch {

/// Returns `x` as one plain file-name component of our own (a run id, an
/// agent name): characters outside [A-Za-z0-9._-] become `_`, at most 200
/// bytes are kept, and an empty name, `.` or `..` becomes `_`.
std::string plain_name(std::string x);

using detail::sync_mode;

/// Writes `content` to `<base>/<rel>` atomically. `rel` is relative,
/// '/'-separated, with no `.`/`..`/empty components (our own names only; it is
/// checked and refused otherwise). Missing folders below `base` are created
/// (0700 for new ones); no component below `base` may be a symlink, and a
/// symlink at the leaf is replaced by the rename, never followed. `base`
/// itself is the caller's (a user-given workspace may sit behind a link).
/// `sync` as for detail::replace_file (fsynced by default). Returns false
/// and sets `error` (naming the path) on failure.
bool write_file_atomic(const std::filesystem::path& base, std::string_view rel,
                       std::string_view content, std::string& error,
                       sync_mode sync = sync_mode::durable);

/// An exclusive advisory lock (flock) on `<workspace>/.orchestrator/lock`,
/// held for the lifetime of the object; the file records the holder's run
/// id and pid. Opened without following links.
class workspace_lock {
public:
  workspace_lock(workspace_lock&& other) noexcept;
  workspace_lock& operator=(workspace_lock&& other) noexcept;
  workspace_lock(const workspace_lock&) = delete;
  workspace_lock& operator=(const workspace_lock&) = delete;
  ~workspace_lock();

  /// Takes the lock for `run_id` without waiting, creating `.orchestrator`
  /// if missing. The meta dir and the lock file are reached through the
  /// workspace's descriptor with O_NOFOLLOW: a symlink at either, a lock that
  /// is not a regular file or has other hard links is refused. On success
  /// the file holds "run_id pid\n" (emptied again on release). When another
  /// holder has it, returns nullopt and sets `error` to a message naming the
  /// holder (e.g. "the workspace /x is in use by run 20261201-... (pid
  /// 1234)").
  static std::optional<workspace_lock>
  acquire(const std::filesystem::path& workspace, const std::string& run_id,
          std::string& error);

private:
  explicit workspace_lock(int fd) noexcept : fd_{fd} {}
  int fd_ = -1;
};

} // namespace orch
