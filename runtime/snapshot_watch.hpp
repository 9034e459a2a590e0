#pragma once

// snapshot_cache with inotify: the snapshot before an agent runs is not
// walked again when nothing changed in the tree since the last snapshot of
// the same root (a 10,000-file workspace costs one walk per step instead of
// two).

#include "runtime/workspace.hpp"

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <memory>

namespace orch {

/// Remembers the last snapshot of the few most recently used roots (as
/// snapshot_cache does: a walk reads only what changed since) and, with
/// it, an inotify watch on every folder of that walk, added before the
/// folder was listed. Thread-safe; walks run outside the lock.
class watched_snapshot_cache {
public:
  explicit watched_snapshot_cache(std::size_t max_roots = 4);

  /// Takes a snapshot of `root`. With `reuse_unchanged`, when the watch of
  /// the last snapshot of this root saw no event since (our own meta dir at
  /// the top aside), could watch every folder, and the root is still the
  /// same folder, that snapshot is returned without a walk. For the
  /// snapshot before an agent runs; the one after always walks, since a
  /// change an agent makes through a shared mapping raises no inotify
  /// event (it does change the file's times). Not seen either way: writes
  /// through an mmap by a process outside the run between two steps, and
  /// writes from another machine to a network file system.
  std::shared_ptr<const file_snapshot> take(const std::filesystem::path& root,
                                            bool reuse_unchanged,
                                            snapshot_stats* stats = nullptr);

  /// True when the last take() returned without a walk (tests, bench).
  bool last_from_watch() const noexcept {
    return last_from_watch_;
  }

  /// Returns the cache shared by the steps of this process.
  static watched_snapshot_cache& shared();

private:
  struct impl;
  std::shared_ptr<impl> impl_;
  std::atomic<bool> last_from_watch_{false};
};

} // namespace orch
