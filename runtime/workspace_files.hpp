#pragma once

// The files of a workspace as a front door (the HTTP file API, the web
// editor) sees them: a bounded recursive listing of regular files, a read
// confined to the workspace, and the editor's save, which goes through the
// same path rules and backups as an agent's write (workspace::write). Every
// path is walked from the workspace's descriptor one component at a time
// without following symlinks (runtime/fd_util.hpp); nothing here follows a
// link that sits inside the workspace.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace orch {

/// Why a file operation was refused, in the terms an HTTP front door maps
/// to a status.
enum class file_error : uint8_t {
  none,
  /// The path breaks a lexical rule (absolute, `..` escaping, control or
  /// look-alike characters, meta dir, `.git`, ...): 400.
  invalid_path,
  /// The path reaches through a symlink, or names a symlink, a folder, a
  /// special file or a file with other hard links: 403.
  forbidden,
  /// Nothing there (or the workspace itself is missing): 404.
  not_found,
  /// A run holds the workspace's lock: 409.
  busy,
  /// Larger than the limit: 413.
  too_large,
  /// A system call failed: 500.
  io,
};

/// Returns the snake_case name of `x` ("invalid_path", ...).
std::string to_string(file_error x);

/// One regular file of a workspace.
struct listed_file {
  /// Workspace-relative, '/'-separated.
  std::string path;
  std::uintmax_t size = 0;
  /// Modification time, ms since the epoch.
  int64_t mtime_ms = 0;
};

/// Bounds of a listing.
struct list_limits {
  /// At most this many files are listed (then `truncated`).
  std::size_t max_files = 10000;
  /// Folders deeper than this are not entered (then `truncated`).
  std::size_t max_depth = 64;
  /// At most this many entries are looked at in all, files, folders and
  /// refused names together (then `truncated`).
  std::size_t max_entries = 100000;
};

/// A workspace's regular files.
struct file_listing {
  file_error error = file_error::none;
  /// Why, when `error` is set (no absolute path).
  std::string reason;
  /// Sorted by path.
  std::vector<listed_file> files;
  /// True when a limit cut the listing short.
  bool truncated = false;
  /// Entries left out because the file API could not address them (a name
  /// the path rules refuse: not UTF-8, control characters, ...), printable.
  std::vector<std::string> skipped;
};

/// Lists the regular files under `root` recursively: no symlink followed
/// (a linked folder or file is not listed), no special files, not the meta
/// dir (`.orchestrator`: backups, manifest) nor any `.git` folder, and only
/// names the path rules accept (others go to `skipped`, at most 100 named).
/// Never throws on odd names.
file_listing list_workspace_files(const std::filesystem::path& root,
                                  const list_limits& limits = {});

/// What read_workspace_file found.
struct file_content {
  file_error error = file_error::none;
  std::string reason;
  /// The normalised relative path.
  std::string path;
  std::string content;
  int64_t mtime_ms = 0;
};

/// Reads `<root>/<path>`: `path` must pass the lexical rules of
/// check_workspace_path; the folders are walked with O_NOFOLLOW and the file
/// opened with O_NOFOLLOW|O_NONBLOCK, so a symlink anywhere is refused
/// (forbidden), as are folders, special files (a FIFO never blocks the
/// reader) and files with other hard links (their content lives elsewhere
/// too). A file larger than `max_bytes` is too_large (nothing read).
file_content read_workspace_file(const std::filesystem::path& root,
                                 std::string_view path,
                                 std::uintmax_t max_bytes);

/// What write_workspace_file did.
struct file_saved {
  file_error error = file_error::none;
  std::string reason;
  /// The normalised relative path.
  std::string path;
  std::uintmax_t size = 0;
  /// Workspace-relative backup of the previous content; empty when the file
  /// is new or unchanged.
  std::string backup;
  /// False when the content was the same (nothing written).
  bool written = false;
};

/// The editor's save: writes `content` to `<root>/<path>` through
/// workspace::write (the agents' path rules, symlinks refused on the
/// descriptors used for the write, a backup of the previous content under
/// `.orchestrator/backups/<backup_id>/`, atomic replacement). The workspace
/// must exist. While a run holds the workspace's lock the save is refused
/// (busy, naming the run); the lock is held for the save itself. Content
/// larger than `max_bytes` is too_large.
file_saved write_workspace_file(const std::filesystem::path& root,
                                std::string_view path, std::string_view content,
                                const std::string& backup_id,
                                std::uintmax_t max_bytes);

/// Returns the Content-Type a front door may serve a workspace file with:
/// text types for source and text (`text/plain; charset=utf-8`, also for
/// HTML, SVG and JavaScript, so that an agent's file never runs in the UI's
/// origin), a few image types, else `application/octet-stream`.
std::string workspace_content_type(std::string_view path);

} // namespace orch
