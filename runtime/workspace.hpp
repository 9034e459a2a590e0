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
path_check check_workspace_path(const std::filesystem::path& root,
                                std::string_view path);

/// Relative path -> content hash (with size) of every regular file under a
/// root, skipping the meta dir.
using file_snapshot = std::map<std::string, std::string>;

file_snapshot snapshot_files(const std::filesystem::path& root);

/// Returns the paths added or changed between two snapshots, sorted.
std::vector<std::string> changed_files(const file_snapshot& before,
                                       const file_snapshot& after);

/// A fenced code block in agent text that names its file.
struct code_block_file {
  std::string path;
  std::string content;
};

/// Finds fenced blocks naming a path: ```lang title=a/b.py (or file=, path=,
/// or ```a/b.py), a first line `# File: a/b.py` / `// File: a/b.py`, or a
/// path heading/line (`### a/b.py`, `**a/b.py**`, `File: a/b.py`) just above.
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
class workspace {
public:
  workspace(std::filesystem::path root, std::string backup_id);

  const std::filesystem::path& root() const noexcept {
    return root_;
  }

  /// Creates the root (and meta dir) if missing.
  bool ensure(std::string& error) const;

  /// Checks `path`, backs up an existing different file, writes `content`.
  /// Identical content is left alone (written = false, reason "unchanged").
  write_outcome write(std::string_view path, std::string_view content) const;

  /// Copies a backup back over the file it came from.
  bool restore(std::string_view backup_path, std::string& error) const;

private:
  std::filesystem::path root_;
  std::string backup_id_;
};

} // namespace orch
