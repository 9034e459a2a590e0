#pragma once

// The workspace of one run: safe relative paths, content snapshots to detect
// what an agent wrote itself, code blocks in agent text that name a file,
// and writes that back up whatever they would overwrite.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace orch {

/// Name of the folder inside a workspace that holds our own bookkeeping
/// (backups, manifest). Agents' files never go there and snapshots skip it.
inline constexpr const char* workspace_meta_dir = ".orchestrator";

/// Outcome of checking a path an agent named.
struct path_check {
  bool ok = false;
  /// Normalised relative path (forward slashes) when ok.
  std::string normalized;
  /// Why it was refused, when not ok.
  std::string reason;
};

/// Accepts `path` only if it is relative, has no control characters, no
/// backslash, no `~` prefix, no `..` escaping, is not inside the meta dir,
/// and stays inside `root` after resolving symlinks of existing parents.
///
/// The rules, in the order they are checked (the first failing one is the
/// reason):
/// - not empty, at most 4096 bytes, no component longer than 255 bytes;
/// - no ASCII control character (0x00-0x1F, 0x7F, so no NUL) and no `\`;
/// - well-formed UTF-8 (shortest form, no surrogates, <= U+10FFFF). Other
///   non-ASCII text is allowed (`docs/café.md`) except characters that could
///   pass for path syntax or hide text: look-alikes of `/ \ . : ~` (division,
///   fraction, fullwidth, small, vertical, big and combining-overlay
///   solidus, dot leaders, ideographic and fullwidth full stops, ratio ...),
///   C1 controls, invisible and bidi format characters (U+061C, U+200B-200F,
///   U+202A-202E, U+2060-206F incl. U+2066-2069, U+FEFF, variation
///   selectors, tags), non-ASCII spaces and line separators, U+FFFD and
///   noncharacters;
/// - not absolute (`/x`), no `~` prefix (`~`, `~/x`, `~user`), no Windows
///   drive (`C:`, `c:x`), no trailing `/`;
/// - `.` and empty components are dropped (`a/./b`, `a//b` -> `a/b`), `..`
///   removes the previous component and is refused when nothing is left to
///   remove (`a/../b` -> `b`, `a/../../x` refused); the last component must
///   name a file (not `.`/`..`), and the result must not be empty;
/// - the first component is not the meta dir and no component is `.git`
///   (both compared ASCII case-insensitively, for case-folding file systems);
/// - under `root`: every existing parent is a directory, a parent that is a
///   symlink must resolve inside `root`, and the target itself is not a
///   symlink, directory or special file.
path_check check_workspace_path(const std::filesystem::path& root,
                                std::string_view path);

/// The lexical half of check_workspace_path: every rule except those that
/// look at the file system.
path_check normalize_workspace_path(std::string_view path);

/// Relative path -> content hash (with size) of every regular file under a
/// root, skipping the meta dir.
using file_snapshot = std::map<std::string, std::string>;

/// Returns the SHA-256 of `data` as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);

/// Walks `root` without following symlinks: values are `<size>:<sha256>`.
/// Skips the meta dir at the top, every `.git` folder, symlinks, special
/// files, our own temp files (`.orch-tmp-*`) and what cannot be read.
file_snapshot snapshot_files(const std::filesystem::path& root);

/// Returns the paths added or changed between two snapshots, sorted.
std::vector<std::string> changed_files(const file_snapshot& before,
                                       const file_snapshot& after);

/// Returns the paths present before and gone after, sorted.
std::vector<std::string> removed_files(const file_snapshot& before,
                                       const file_snapshot& after);

/// Returns true when `s` reads as a file path: no spaces or markup, and a
/// last component with an extension containing a letter, a dotfile name, or
/// a well-known extension-less name (Makefile, README, ...). Safety is
/// judged by check_workspace_path, not here.
bool looks_like_path(std::string_view s);

/// A fenced code block in agent text that names its file.
struct code_block_file {
  std::string path;
  std::string content;
};

/// Finds fenced blocks naming a path: ```lang title=a/b.py (or file=, path=,
/// or ```a/b.py), a first line `# File: a/b.py` / `// File: a/b.py`, or a
/// path heading/line (`### a/b.py`, `**a/b.py**`, `File: a/b.py`) just above.
///
/// Precedence: info string, then the first-line marker (that line is always
/// dropped from the content), then the line above (at most two blank lines
/// between). Backtick and tilde fences of 3+ characters close on a bare fence
/// at least as long; inside a block, an opening fence with an info string
/// nests (so a README with ```bash examples stays whole). Unterminated
/// blocks, unnamed blocks and `diff`/`patch` blocks (unless the path ends
/// in .diff/.patch) are ignored. Paths are returned as written, unchecked
/// (workspace::write checks them); a path named twice keeps its first
/// position and its last content.
std::vector<code_block_file> extract_code_blocks(std::string_view text);

/// What a write did.
struct write_outcome {
  bool written = false;
  /// Relative path of the backup copy when an existing file was replaced.
  std::string backup;
  /// Why nothing was written (refused path, I/O error, unchanged content).
  std::string reason;
  std::string path;
};

/// Writes files into a workspace root, backing up before overwriting into
/// `<root>/.orchestrator/backups/<backup_id>/<path>`.
///
/// Writes walk from an open descriptor of the root one component at a time
/// (openat with O_NOFOLLOW, mkdirat for missing folders). A parent that is a
/// symlink is opened and the opened folder is checked to lie under the root
/// (by walking `..` up to the root's device/inode), so swapping a folder for
/// a symlink between check and write cannot redirect the write. The content
/// goes to a temp file (O_EXCL|O_NOFOLLOW) in the target folder, is fsynced
/// and renamed over the target: readers never see half a file, and a target
/// hard-linked to a file outside is replaced, not modified. The meta dir and
/// backups are never reached through a symlink.
class workspace {
public:
  /// `backup_id` names the backup folder of this run; characters outside
  /// [A-Za-z0-9._-] become `_` (empty, `.` and `..` become `_`).
  workspace(std::filesystem::path root, std::string backup_id);

  const std::filesystem::path& root() const noexcept {
    return root_;
  }

  /// Creates the root (and meta dir) if missing.
  bool ensure(std::string& error) const;

  /// Checks `path`, backs up an existing different file, writes `content`.
  /// Identical content is left alone (written = false, reason "unchanged").
  /// A backup never overwrites another: the second backup of `a.py` in the
  /// same run is `a.py.~1~`, then `a.py.~2~` (a name that already ends in
  /// `.~N~` always gets such a suffix, so restore can strip exactly one).
  write_outcome write(std::string_view path, std::string_view content) const;

  /// What preserve_existing did.
  struct preserve_report {
    std::size_t files = 0;
    std::uintmax_t bytes = 0;
    /// Set when nothing (or not everything) could be saved.
    std::string error;
  };

  /// Saves every file already in the workspace (not the meta dir, not .git)
  /// into this run's backup folder, so that edits an agent makes in place
  /// (CLIs write files themselves) can be undone: the un-suffixed backup of
  /// a path is then its state before the run. Saves nothing and reports an
  /// error when the files add up to more than `max_bytes`.
  preserve_report preserve_existing(std::uintmax_t max_bytes) const;

  /// Copies a backup back over the file it came from. `backup_path` is a
  /// write_outcome::backup (`.orchestrator/backups/<id>/<path>[.~N~]`, any
  /// run's id). The current file, if different, is backed up first.
  bool restore(std::string_view backup_path, std::string& error) const;

private:
  std::filesystem::path root_;
  std::string backup_id_;
};

} // namespace orch
