#pragma once

// The workspace of one run: safe relative paths, content snapshots to detect
// what an agent wrote itself, code blocks in agent text that name a file,
// and writes that back up whatever they would overwrite.

#include "runtime/fd_util.hpp"
#include "runtime/hashing.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
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
/// backslash, no `~` prefix, no `..` escaping, is not inside the meta dir or
/// a `.git` folder, and reaches under `root` without passing any symlink.
///
/// The rules, in the order they are checked (the first failing one is the
/// reason):
/// - not empty, at most 4096 bytes, no component longer than 255 bytes;
/// - no ASCII control character (0x00-0x1F, 0x7F, so no NUL) and no `\`;
/// - well-formed UTF-8 (shortest form, no surrogates, <= U+10FFFF). Other
///   non-ASCII text is allowed (`docs/café.md`, `col·lecció`) except
///   characters that could pass for path syntax or hide text: look-alikes of
///   `/ \ . : ~` (division, fraction, fullwidth, small, vertical, big and
///   combining-overlay solidus, dot leaders, hyphenation point, ideographic,
///   fullwidth, Armenian, Syriac, Ethiopic, Vai, Mongolian and runic stops
///   and colons, Arabic-Indic zeros, Lisu tone letters, ratio ...), C1
///   controls, invisible and bidi format characters (U+061C, U+200B-200F,
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
/// - under `root`, walked from a descriptor one component at a time with
///   O_NOFOLLOW (the same walk workspace::write does): no existing component
///   is a symlink (`g -> .git` cannot smuggle `g/config` into `.git`), every
///   existing parent is a folder, and the target is missing or a regular
///   file. Missing folders are fine: a write creates them.
path_check check_workspace_path(const std::filesystem::path& root,
                                std::string_view path);

/// The lexical half of check_workspace_path: every rule except those that
/// look at the file system.
path_check normalize_workspace_path(std::string_view path);

/// What identifies a file's content without reading it, as git's index
/// does: a rewrite changes the size, the modification time or, when those
/// are put back (`touch -d`, utimensat), the change time, which only the
/// kernel sets. A file replaced by another (rename) has another inode.
struct file_key {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;

  friend bool operator==(const file_key& a, const file_key& b) noexcept {
    return a.dev == b.dev && a.ino == b.ino && a.size == b.size
           && a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns;
  }
  friend bool operator!=(const file_key& a, const file_key& b) noexcept {
    return !(a == b);
  }
};

/// One file of a snapshot.
struct file_entry {
  /// `<size>:<sha256>` of the content: what changed_files compares.
  std::string hash;
  /// The file's key when it was read.
  file_key key;
  /// True when a later snapshot may take `hash` for a file with the same
  /// key without reading it. False for a file modified shortly before it was
  /// read (see snapshot_racy_margin).
  bool reusable = false;
};

/// Relative path -> content hash and key of every regular file under a
/// root, skipping the meta dir.
using file_snapshot = std::map<std::string, file_entry>;

/// A file whose modification or change time is less than this before the
/// start of the snapshot that reads it is hashed again by the next snapshot,
/// whatever its key (git's "racy" entries). Timestamps come from a clock
/// that ticks in jiffies (and in 2 s steps on FAT): a second write in the
/// same tick as the first, after our read, would leave the key as it was.
inline constexpr std::int64_t snapshot_racy_margin_ns = 2'000'000'000;

/// Counts of one snapshot's work (tests and benchmarks read them).
struct snapshot_stats {
  /// Files in the snapshot.
  std::size_t files = 0;
  /// Files opened and hashed.
  std::size_t hashed = 0;
  /// Files whose hash was taken from the previous snapshot unread.
  std::size_t reused = 0;
  /// Bytes hashed.
  std::uintmax_t bytes_hashed = 0;
};

/// How snapshot_files works.
struct snapshot_options {
  /// An earlier snapshot of the same root: a file with the same path and
  /// key, reusable there, keeps its hash without being read.
  const file_snapshot* previous = nullptr;
  /// Wall-clock time in ns since the epoch at which the walk starts, for the
  /// racy check; 0 reads the clock (tests pass a time of their choosing).
  std::int64_t now_ns = 0;
  /// Receives the counts when not null.
  snapshot_stats* stats = nullptr;
};

/// Walks `root` with openat/fdopendir without following symlinks: values
/// hold `<size>:<sha256>` and the file's key, keys are the raw bytes of the
/// names joined with `/`. Skips the meta dir at the top, every `.git`
/// folder, symlinks, special files, our own temp files (`.orch-tmp-*`) and
/// what cannot be read. Files are hashed in 64 KiB blocks, so memory does
/// not grow with their size; with `previous`, only files whose key changed
/// (or was racy there) are read at all. Never throws on odd names (any byte
/// but `/` and NUL).
file_snapshot snapshot_files(const std::filesystem::path& root,
                             const file_snapshot* previous = nullptr);

/// snapshot_files with every option.
file_snapshot snapshot_files(const std::filesystem::path& root,
                             const snapshot_options& options);

/// Remembers the last snapshot of the few most recently used roots, so that
/// the next snapshot of a root (the after-snapshot of a step, the
/// before-snapshot of the next step, of any run) reads only what changed
/// since. A cached hash is only ever used for a file whose key is the same
/// and was not racy, so an entry of another step or run is as good as our
/// own. Thread-safe; the walk runs outside the lock.
class snapshot_cache {
public:
  explicit snapshot_cache(std::size_t max_roots = 4);

  /// Takes a snapshot of `root` reusing the last one taken here of the same
  /// root (spelled the same), and keeps it for the next call.
  /// `options.previous` is replaced by that snapshot.
  file_snapshot take(const std::filesystem::path& root,
                     snapshot_options options = {});

  /// Returns the cache shared by the steps of this process.
  static snapshot_cache& shared();

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// Returns the paths added or changed between two snapshots, sorted.
std::vector<std::string> changed_files(const file_snapshot& before,
                                       const file_snapshot& after);

/// Returns the paths present before and gone after, sorted.
std::vector<std::string> removed_files(const file_snapshot& before,
                                       const file_snapshot& after);

/// The most files a prompt lists.
inline constexpr std::size_t max_prompt_files = 1000;

/// Returns the files of `snap` that a prompt lists, sorted, at most `max`
/// (the first ones in byte order): every path of the snapshot (regular
/// files; no link, no special file, not the meta dir) but those with a
/// `.git` component in any case (a folder on a case-folding file system, or
/// a worktree's `.git` file), and with `extra` (files written since the
/// snapshot) merged in.
std::vector<std::string>
workspace_listing(const file_snapshot& snap,
                  const std::vector<std::string>& extra = {},
                  std::size_t max = max_prompt_files);

/// Returns true when `s` reads as a file path: no spaces or markup, and a
/// last component with an extension containing a letter, a dotfile name, or
/// a well-known extension-less name (Makefile, README, ...). Safety is
/// judged by check_workspace_path / workspace::write, not here.
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
/// (openat with O_NOFOLLOW|O_DIRECTORY, mkdirat for missing folders) and
/// refuse any symlink on the way, even one that stays inside the workspace:
/// the rules on `.git` and the meta dir then hold for the real location, and
/// swapping a folder for a symlink between check and write changes nothing.
/// The content goes to a temp file (O_EXCL|O_NOFOLLOW) in the target folder,
/// is fsynced and renamed over the target: readers never see half a file,
/// and a target hard-linked to a file outside is replaced, not modified.
/// Existing files are compared and backed up in 64 KiB blocks; a backup is
/// written to a temp file and renamed into place without replacing anything
/// (never partial, never overwriting another backup).
class workspace {
public:
  /// `backup_id` names the backup folder of this run; characters outside
  /// [A-Za-z0-9._-] become `_` (empty, `.` and `..` become `_`).
  workspace(std::filesystem::path root, std::string backup_id);

  const std::filesystem::path& root() const noexcept {
    return root_;
  }

  /// Creates the root (and meta dir) if missing. The meta dir is created
  /// and checked through the root's descriptor: a symlink or a file there
  /// is an error.
  bool ensure(std::string& error) const;

  /// Checks `path` (check_workspace_path's rules, on the descriptors used
  /// for the write), backs up an existing different file, writes `content`.
  /// Identical content is left alone (written = false, reason "unchanged").
  /// A symlink anywhere in the path is refused ("g is a symlink").
  /// A backup never overwrites another: the second backup of `a.py` in the
  /// same run is `a.py.~1~`, then `a.py.~2~` (a name that already ends in
  /// `.~N~` always gets such a suffix, so restore can strip exactly one).
  /// `sync` as for detail::replace_file: a caller writing many files at
  /// once (a cached step's replay) may skip the fsyncs and sync once.
  write_outcome
  write(std::string_view path, std::string_view content,
        detail::sync_mode sync = detail::sync_mode::durable) const;

  /// What preserve_existing did.
  struct preserve_report {
    /// Files and symlinks saved.
    std::size_t files = 0;
    /// Bytes saved (file contents and link targets).
    std::uintmax_t bytes = 0;
    /// Set when something could not be saved: the paths (printable, e.g.
    /// `a\xff`, `b\tc`) and why, or that the total is over the limit and
    /// nothing was saved. A run should not start when it is set.
    std::string error;
    /// Special files (FIFOs, sockets, devices) that have no content to
    /// save, each as "path (a FIFO)". Not an error.
    std::vector<std::string> skipped;
  };

  /// Saves the user's files already in the workspace into this run's backup
  /// folder, so that edits an agent makes in place (CLIs write files
  /// themselves) can be undone: the un-suffixed backup of a path is then its
  /// state before the run.
  ///
  /// This copies the user's files, not an agent's answer, so the agent-path
  /// rules do not apply: every regular file is copied byte for byte (in
  /// blocks, holes kept) and every symlink is re-created with the same
  /// target (never followed), whatever bytes their names hold. Skipped: the
  /// meta dir at the top, every `.git` folder (version control keeps its
  /// own history) and special files (listed in `skipped`). What cannot be
  /// read or saved is named in `error`. When the files and link targets add
  /// up to more than `max_bytes`, nothing is saved and `error` says so.
  preserve_report preserve_existing(std::uintmax_t max_bytes) const;

  /// Copies a backup back over the file it came from. `backup_path` is a
  /// write_outcome::backup (`.orchestrator/backups/<id>/<path>[.~N~]`, any
  /// run's id). The current file, if different, is backed up first. The
  /// backup and the target are both reached without following symlinks;
  /// a saved symlink is not restored by this (it is refused).
  bool restore(std::string_view backup_path, std::string& error) const;

private:
  std::filesystem::path root_;
  std::string backup_id_;
};

} // namespace orch
