#include "runtime/workspace.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/snapshot_watch.hpp"

#include "runtime/fd_util.hpp"
#include "runtime/path_rules.hpp"
#include "runtime/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace orch {

using detail::errno_text;
using detail::join;
using detail::open_dirs;
using detail::printable;
using detail::unique_fd;
using detail::walk_result;

namespace {

// -- backup names -------------------------------------------------------------

// True when `name` ends in `.~N~` (our numbered-backup suffix).
bool has_backup_suffix(std::string_view name) {
  if (name.size() < 4 || name.back() != '~')
    return false;
  std::size_t i = name.size() - 1;
  std::size_t digits = 0;
  while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9') {
    --i;
    ++digits;
  }
  return digits > 0 && i >= 2 && name[i - 1] == '~' && name[i - 2] == '.';
}

std::string strip_backup_suffix(const std::string& name) {
  if (!has_backup_suffix(name))
    return name;
  return name.substr(0, name.rfind(".~"));
}

// The n-th name tried for a backup of `leaf`: `leaf`, `leaf.~1~`, ... (a
// name that already ends like a numbered backup always gets a suffix, so
// restore strips exactly one). Empty when there are no more names to try.
std::string backup_name(const std::string& leaf, int n) {
  if (n == 0 && has_backup_suffix(leaf))
    n = 1;
  if (n >= 10000)
    return {};
  return n == 0 ? leaf : leaf + ".~" + std::to_string(n) + "~";
}

// -- the file-system check of a path ------------------------------------------

enum class leaf_kind { missing, regular, symlink, folder, other, error };

struct leaf_info {
  leaf_kind kind = leaf_kind::missing;
  /// Open read-only when regular.
  unique_fd fd;
  /// Permission bits (no setuid/setgid/sticky) when regular.
  mode_t mode = 0;
  /// The open file's status when regular.
  struct stat st {};
  int err = 0;
};

// What is at `name` in `dir`, without following a symlink and without
// opening anything but a regular file (opening a device can have effects).
// `listed` is the entry's status from the folder listing, when the caller
// has it (it spares a second fstatat); it is checked again after the open.
leaf_info probe_leaf(int dir, const std::string& name,
                     const struct stat* listed = nullptr) {
  leaf_info info;
  struct stat st {};
  if (listed != nullptr)
    st = *listed;
  else if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    info.err = errno;
    info.kind = errno == ENOENT ? leaf_kind::missing : leaf_kind::error;
    return info;
  }
  if (S_ISLNK(st.st_mode)) {
    info.kind = leaf_kind::symlink;
    return info;
  }
  if (S_ISDIR(st.st_mode)) {
    info.kind = leaf_kind::folder;
    return info;
  }
  if (!S_ISREG(st.st_mode)) {
    info.kind = leaf_kind::other;
    return info;
  }
  // O_NOFOLLOW|O_NONBLOCK: swapped for a symlink or a FIFO since the stat,
  // it is refused instead of followed or waited on.
  info.fd = unique_fd{::openat(dir, name.c_str(),
                               O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)};
  if (!info.fd || ::fstat(info.fd.get(), &st) != 0) {
    info.err = errno;
    info.kind = errno == ELOOP ? leaf_kind::symlink : leaf_kind::error;
    info.fd.reset();
    return info;
  }
  if (!S_ISREG(st.st_mode)) {
    info.kind = leaf_kind::other;
    info.fd.reset();
    return info;
  }
  info.kind = leaf_kind::regular;
  info.mode = st.st_mode & 0777;
  info.st = st;
  return info;
}

// Why a leaf cannot be written over, or "" when it can (missing, regular).
std::string leaf_refusal(const leaf_info& leaf, const std::string& shown) {
  switch (leaf.kind) {
    case leaf_kind::missing:
    case leaf_kind::regular:
      return {};
    case leaf_kind::symlink:
      return shown + " is a symlink";
    case leaf_kind::folder:
      return shown + " is a folder";
    case leaf_kind::other:
      return shown + " is not a regular file";
    case leaf_kind::error:
      break;
  }
  return "cannot open " + shown + ": " + errno_text(leaf.err);
}

// Where a normalised path leads below the root.
struct located {
  /// The parent folder; empty when it does not exist (create = false).
  unique_fd dir;
  leaf_info leaf;
  /// Why the path is refused; empty when it may be written.
  std::string reason;
};

// The one file-system rule for a path an agent names, used by every write
// and restore and by check_workspace_path: walk from the root one component
// at a time without following any symlink (a link anywhere is refused, so
// the .git and meta-dir rules judge the real location), and accept only a
// missing or regular file at the end.
located locate(int root_fd, const std::vector<std::string>& parts,
               bool create) {
  located out;
  walk_result walk = open_dirs(root_fd, parts, parts.size() - 1, create);
  if (!walk.ok()) {
    if (!create && walk.error == detail::walk_error::missing)
      return out; // the rest would be created by a write
    out.reason = walk.describe(printable(join(parts, 0, walk.failed_at + 1)));
    return out;
  }
  out.dir = std::move(walk.fd);
  out.leaf = probe_leaf(out.dir.get(), parts.back());
  out.reason = leaf_refusal(out.leaf, printable(join(parts)));
  return out;
}

unique_fd open_root(const fs::path& root) {
  // The root itself is the caller's: it may sit behind a link.
  return unique_fd{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
}

// -- walking a tree -----------------------------------------------------------

constexpr int max_depth = 256;

} // namespace

// Named, not anonymous: watched_snapshot_cache::impl (declared in the
// header) holds one.
namespace detail {

/// An inotify watch on every folder of a snapshot's walk, added before the
/// folder is listed: while it has seen no event, nothing in the tree
/// changed since the walk read it (see snapshot_options::reuse_unchanged).
struct tree_watch {
  /// Past this many folders the tree is not watched (each watch is kernel
  /// memory and counts against fs.inotify.max_user_watches).
  static constexpr std::size_t max_dirs = 4096;
  static constexpr std::uint32_t mask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE
                                        | IN_CREATE | IN_DELETE | IN_DELETE_SELF
                                        | IN_MOVE_SELF | IN_MOVED_FROM
                                        | IN_MOVED_TO | IN_ONLYDIR;

  /// Watches added to this inotify instance over its life, walks before
  /// included: past max_dirs twice, a walk starts a new instance.
  std::size_t lifetime_adds = 0;
  unique_fd fd;
  int root_wd = -1;
  std::uint64_t root_dev = 0;
  std::uint64_t root_ino = 0;
  std::size_t dirs = 0;
  /// Every folder of the walk is watched and was listed without error.
  bool complete = false;
  /// No event seen since the walk (once false, for good).
  bool quiet = true;

  /// A new inotify instance.
  tree_watch() : fd{::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)} {
    complete = static_cast<bool>(fd);
  }

  /// Takes over the inotify instance of an earlier walk's watch (closing an
  /// instance waits for the kernel's SRCU grace period: about 0.1 ms a
  /// walk). Its pending events are dropped: this walk reads the tree anew,
  /// and an event from now on is seen. The watches of that walk stay (one
  /// per folder: re-adding one returns it), so a folder that left the tree
  /// may still raise an event, which only costs a walk.
  explicit tree_watch(tree_watch& earlier)
    : lifetime_adds{earlier.lifetime_adds}, fd{std::move(earlier.fd)} {
    earlier.complete = false;
    earlier.quiet = false;
    alignas(struct inotify_event) char buf[8192];
    while (fd) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n > 0 || (n < 0 && errno == EINTR))
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      fd.reset(); // broken: not watched
    }
    complete = static_cast<bool>(fd);
  }

  /// True when an earlier walk's instance may serve this one.
  bool reusable() const {
    return complete && fd && lifetime_adds < 2 * max_dirs;
  }

  /// Watches the folder open as `dir` (the root when `root`).
  void add(int dir, bool root) {
    if (!complete)
      return;
    ++lifetime_adds;
    if (++dirs > max_dirs) {
      complete = false;
      fd.reset(); // drops every watch
      return;
    }
    char path[40];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", dir);
    int wd = ::inotify_add_watch(fd.get(), path, mask);
    if (wd < 0) {
      complete = false;
      fd.reset();
      return;
    }
    if (root) {
      struct stat st {};
      if (::fstat(dir, &st) != 0) {
        complete = false;
        return;
      }
      root_wd = wd;
      root_dev = static_cast<std::uint64_t>(st.st_dev);
      root_ino = static_cast<std::uint64_t>(st.st_ino);
    }
  }

  /// True when the tree at `root` is the one watched and nothing in it
  /// changed since. Our own bookkeeping in the meta dir does not count.
  bool unchanged(const fs::path& root) {
    if (!complete || !quiet)
      return false;
    alignas(struct inotify_event) char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n <= 0) {
        quiet = false;
        return false;
      }
      for (ssize_t at = 0; at < n;) {
        const auto* ev
          = reinterpret_cast<const struct inotify_event*>(buf + at);
        at += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
        bool ours = ev->wd == root_wd && ev->len > 0
                    && std::strcmp(ev->name, workspace_meta_dir) == 0
                    && (ev->mask & IN_Q_OVERFLOW) == 0;
        if (!ours)
          quiet = false;
      }
      if (!quiet)
        return false;
    }
    // The same folder still sits at that path (a parent renamed and a new
    // tree put in its place leaves the old one's watches silent).
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0
        || static_cast<std::uint64_t>(st.st_dev) != root_dev
        || static_cast<std::uint64_t>(st.st_ino) != root_ino) {
      quiet = false;
      return false;
    }
    return true;
  }
};

} // namespace detail

namespace {

using detail::tree_watch;

struct tree_visitor {
  /// Every entry that is not a folder, with the descriptor of its folder.
  std::function<void(int dir, const std::vector<std::string>& parts,
                     const struct stat& st)>
    entry;
  /// A folder that cannot be opened or listed, and why.
  std::function<void(const std::vector<std::string>& parts,
                     const std::string& why)>
    error;
  /// When set, every folder is watched before it is listed.
  tree_watch* watch = nullptr;
};

// Walks the folder `dir` without following symlinks, skipping the meta dir
// at the top and every `.git` folder. `parts` is the path of `dir`.
void walk_tree(int dir, std::vector<std::string>& parts,
               const tree_visitor& visit) {
  if (visit.watch != nullptr)
    visit.watch->add(dir, parts.empty());
  bool listed = detail::list_dir(dir, [&](const std::string& name,
                                          const struct stat& st) {
    if (S_ISDIR(st.st_mode)) {
      if ((parts.empty() && name == workspace_meta_dir) || name == ".git")
        return;
      parts.push_back(name);
      if (parts.size() > max_depth) {
        visit.error(parts, "nested deeper than " + std::to_string(max_depth)
                             + " folders");
      } else {
        unique_fd sub{::openat(
          dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
        if (sub)
          walk_tree(sub.get(), parts, visit);
        else
          visit.error(parts, "cannot open: " + errno_text(errno));
      }
      parts.pop_back();
      return;
    }
    parts.push_back(name);
    visit.entry(dir, parts, st);
    parts.pop_back();
  });
  if (!listed)
    visit.error(parts, "cannot list: " + errno_text(errno));
}

} // namespace

// -- paths --------------------------------------------------------------------

path_check normalize_workspace_path(std::string_view path) {
  path_check out;
  auto lex = detail::split_workspace_path(path, false);
  if (!lex.ok) {
    out.reason = std::move(lex.reason);
    return out;
  }
  out.ok = true;
  out.normalized = join(lex.parts);
  return out;
}

path_check check_workspace_path(const fs::path& root, std::string_view path) {
  auto lex = detail::split_workspace_path(path, false);
  if (!lex.ok)
    return {false, {}, std::move(lex.reason)};
  unique_fd root_fd = open_root(root);
  if (!root_fd) {
    if (errno == ENOENT)
      return {true, join(lex.parts), {}}; // a write creates the root
    return {false, {}, "cannot open the workspace: " + errno_text(errno)};
  }
  located loc = locate(root_fd.get(), lex.parts, false);
  if (!loc.reason.empty())
    return {false, {}, std::move(loc.reason)};
  return {true, join(lex.parts), {}};
}

// -- snapshots ----------------------------------------------------------------

namespace {

std::int64_t to_ns(const struct timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

file_key key_of(const struct stat& st) {
  file_key k;
  k.dev = static_cast<std::uint64_t>(st.st_dev);
  k.ino = static_cast<std::uint64_t>(st.st_ino);
  k.size = static_cast<std::int64_t>(st.st_size);
  k.mtime_ns = to_ns(st.st_mtim);
  k.ctime_ns = to_ns(st.st_ctim);
  return k;
}

std::int64_t wall_clock_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return to_ns(ts);
}

} // namespace

file_snapshot snapshot_files(const fs::path& root,
                             const file_snapshot* previous) {
  snapshot_options options;
  options.previous = previous;
  return snapshot_files(root, options);
}

namespace {

file_snapshot walk_snapshot(const fs::path& root,
                            const snapshot_options& options,
                            tree_watch* watch) {
  file_snapshot out;
  snapshot_stats stats;
  // Racy check (git's racy-git problem): a file written at time T, read by
  // this walk, then written again in the same timestamp tick (a jiffy, or
  // 2 s on FAT) keeps its key while its content changes. So only files
  // whose modification and change times are safely older than the start of
  // the walk may vouch for their hash in a later snapshot; the rest are
  // read again next time. A timestamp in the future (touch -d) is never
  // old enough, so such a file is always read.
  std::int64_t now = options.now_ns != 0 ? options.now_ns : wall_clock_ns();
  std::int64_t settled_before = now - snapshot_racy_margin_ns;
  unique_fd root_fd = open_root(root);
  // Names come sorted within each folder, so the previous entry of the next
  // file is most often the one after the last found: try it before a
  // lookup, and append to `out` with the end as the hint.
  file_snapshot::const_iterator next_previous;
  if (options.previous != nullptr)
    next_previous = options.previous->begin();
  auto find_previous = [&](const std::string& rel) {
    const file_snapshot& prev = *options.previous;
    if (next_previous != prev.end() && next_previous->first == rel)
      return next_previous++;
    auto it = prev.find(rel);
    next_previous = it == prev.end() ? it : std::next(it);
    return it;
  };
  if (root_fd) {
    std::vector<std::string> parts;
    tree_visitor visit;
    visit.entry = [&](int dir, const std::vector<std::string>& path,
                      const struct stat& st) {
      const std::string& name = path.back();
      if (!S_ISREG(st.st_mode)
          || name.compare(0, detail::temp_prefix.size(), detail::temp_prefix)
               == 0)
        return;
      std::string rel = join(path);
      file_key key = key_of(st);
      if (options.previous != nullptr) {
        auto it = find_previous(rel);
        if (it != options.previous->end() && it->second.reusable
            && it->second.key == key) {
          ++stats.reused;
          out.emplace_hint(out.end(), std::move(rel), it->second);
          return;
        }
      }
      leaf_info leaf = probe_leaf(dir, name, &st);
      if (leaf.kind != leaf_kind::regular)
        return;
      // The key of what is read: the file may have changed since the
      // listing, and a key older than the content only costs a re-read.
      key = key_of(leaf.st);
      std::string hex;
      std::uintmax_t size = 0;
      if (!sha256_file(leaf.fd.get(), hex, size))
        return;
      ++stats.hashed;
      stats.bytes_hashed += size;
      file_entry entry;
      entry.hash = std::to_string(size) + ":" + hex;
      // The size read must match the key's, else the file changed while it
      // was read.
      entry.reusable = key.mtime_ns < settled_before
                       && key.ctime_ns < settled_before
                       && static_cast<std::int64_t>(size) == key.size;
      entry.key = key;
      out.emplace_hint(out.end(), std::move(rel), std::move(entry));
    };
    visit.error = [watch](const std::vector<std::string>&, const std::string&) {
      // What cannot be read is not in the snapshot, and the tree is not
      // fully watched.
      if (watch != nullptr)
        watch->complete = false;
    };
    visit.watch = watch;
    walk_tree(root_fd.get(), parts, visit);
  } else if (watch != nullptr) {
    watch->complete = false;
  }
  stats.files = out.size();
  if (options.stats != nullptr)
    *options.stats = stats;
  return out;
}

} // namespace

file_snapshot snapshot_files(const fs::path& root,
                             const snapshot_options& options) {
  return walk_snapshot(root, options, nullptr);
}

std::vector<std::string> changed_files(const file_snapshot& before,
                                       const file_snapshot& after) {
  std::vector<std::string> out;
  for (const auto& [path, entry] : after) {
    auto it = before.find(path);
    if (it == before.end() || it->second.hash != entry.hash)
      out.push_back(path);
  }
  return out;
}

std::vector<std::string> removed_files(const file_snapshot& before,
                                       const file_snapshot& after) {
  std::vector<std::string> out;
  for (const auto& entry : before)
    if (after.find(entry.first) == after.end())
      out.push_back(entry.first);
  return out;
}

std::vector<std::string>
workspace_listing(const file_snapshot& snap,
                  const std::vector<std::string>& extra, std::size_t max) {
  auto listed = [](const std::string& path) {
    std::string_view rest = path;
    for (;;) {
      auto slash = rest.find('/');
      if (text::iequals(rest.substr(0, slash), ".git"))
        return false;
      if (slash == std::string_view::npos)
        return true;
      rest.remove_prefix(slash + 1);
    }
  };
  std::vector<std::string> out;
  auto from_extra = extra;
  std::sort(from_extra.begin(), from_extra.end());
  // Both sorted: merge until `max`.
  auto a = snap.begin();
  auto b = from_extra.begin();
  while (out.size() < max && (a != snap.end() || b != from_extra.end())) {
    const std::string* next = nullptr;
    if (b == from_extra.end() || (a != snap.end() && a->first <= *b)) {
      next = &a->first;
      if (b != from_extra.end() && a->first == *b)
        ++b;
      ++a;
    } else {
      next = &*b++;
    }
    if (listed(*next) && (out.empty() || out.back() != *next))
      out.push_back(*next);
  }
  return out;
}

// -- snapshot cache -----------------------------------------------------------

struct snapshot_cache::impl {
  std::mutex mutex;
  std::size_t max_roots = 0;
  /// Most recently used first.
  std::list<std::pair<std::string, std::shared_ptr<const file_snapshot>>> roots;
};

snapshot_cache::snapshot_cache(std::size_t max_roots)
  : impl_{std::make_shared<impl>()} {
  impl_->max_roots = std::max<std::size_t>(1, max_roots);
}

file_snapshot snapshot_cache::take(const fs::path& root,
                                   snapshot_options options) {
  const std::string& key = root.native();
  std::shared_ptr<const file_snapshot> previous;
  {
    std::lock_guard<std::mutex> guard{impl_->mutex};
    for (auto& kvp : impl_->roots)
      if (kvp.first == key) {
        previous = kvp.second;
        break;
      }
  }
  options.previous = previous.get();
  file_snapshot snap = snapshot_files(root, options);
  auto kept = std::make_shared<const file_snapshot>(snap);
  std::lock_guard<std::mutex> guard{impl_->mutex};
  auto& roots = impl_->roots;
  roots.remove_if([&key](const auto& kvp) {
    return kvp.first == key;
  });
  roots.emplace_front(key, std::move(kept));
  while (roots.size() > impl_->max_roots)
    roots.pop_back();
  return snap;
}

snapshot_cache& snapshot_cache::shared() {
  static snapshot_cache cache;
  return cache;
}

// -- watched snapshot cache ---------------------------------------------------

struct watched_snapshot_cache::impl {
  struct entry {
    std::string root;
    std::shared_ptr<const file_snapshot> snap;
    /// Watches the tree since `snap` was taken; null when it cannot.
    std::shared_ptr<tree_watch> watch;
  };
  std::mutex mutex;
  std::size_t max_roots = 0;
  /// Most recently used first.
  std::list<entry> roots;
};

watched_snapshot_cache::watched_snapshot_cache(std::size_t max_roots)
  : impl_{std::make_shared<impl>()} {
  impl_->max_roots = std::max<std::size_t>(1, max_roots);
}

std::shared_ptr<const file_snapshot>
watched_snapshot_cache::take(const fs::path& root, bool reuse_unchanged,
                             snapshot_stats* stats) {
  const std::string& key = root.native();
  std::shared_ptr<const file_snapshot> previous;
  std::shared_ptr<tree_watch> watch;
  {
    std::lock_guard<std::mutex> guard{impl_->mutex};
    auto& roots = impl_->roots;
    for (auto it = roots.begin(); it != roots.end(); ++it) {
      if (it->root != key)
        continue;
      previous = it->snap;
      if (reuse_unchanged && it->watch && it->watch->unchanged(root)) {
        if (stats != nullptr) {
          *stats = snapshot_stats{};
          stats->files = previous->size();
          stats->reused = previous->size();
        }
        last_from_watch_ = true;
        roots.splice(roots.begin(), roots, it);
        return previous;
      }
      // Walked again: with the last walk's inotify instance.
      if (it->watch && it->watch->reusable())
        watch = std::make_shared<tree_watch>(*it->watch);
      break;
    }
  }
  snapshot_options options;
  options.previous = previous.get();
  options.stats = stats;
  if (!watch)
    watch = std::make_shared<tree_watch>();
  auto kept = std::make_shared<const file_snapshot>(
    walk_snapshot(root, options, watch->complete ? watch.get() : nullptr));
  if (!watch->complete)
    watch.reset();
  // Entries dropped here are destroyed after the lock (closing an inotify
  // instance is slow).
  std::list<impl::entry> dropped;
  {
    std::lock_guard<std::mutex> guard{impl_->mutex};
    last_from_watch_ = false;
    auto& roots = impl_->roots;
    for (auto it = roots.begin(); it != roots.end();) {
      auto next = std::next(it);
      if (it->root == key)
        dropped.splice(dropped.end(), roots, it);
      it = next;
    }
    roots.push_front({key, kept, std::move(watch)});
    while (roots.size() > impl_->max_roots)
      dropped.splice(dropped.end(), roots, std::prev(roots.end()));
  }
  return kept;
}

watched_snapshot_cache& watched_snapshot_cache::shared() {
  static watched_snapshot_cache cache;
  return cache;
}

// -- workspace ----------------------------------------------------------------

workspace::workspace(fs::path root, std::string backup_id)
  : root_{std::move(root)}, backup_id_{plain_name(std::move(backup_id))} {}

bool workspace::ensure(std::string& error) const {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) {
    error = "cannot create " + root_.string() + ": " + ec.message();
    return false;
  }
  unique_fd root_fd = open_root(root_);
  if (!root_fd) {
    error = errno == ENOTDIR
              ? root_.string() + " is not a folder"
              : "cannot open " + root_.string() + ": " + errno_text(errno);
    return false;
  }
  walk_result meta = open_dirs(root_fd.get(), {workspace_meta_dir}, 1,
                               /*create=*/true);
  if (!meta.ok()) {
    error = meta.describe((root_ / workspace_meta_dir).string());
    return false;
  }
  return true;
}

namespace {

// Opens (creating) this run's backup folder for `parts` (an agent path or a
// user's file): `.orchestrator/backups/<id>/<parent folders>`, never
// through a symlink. `dirs` receives the folder's path.
unique_fd open_backup_dir(int root_fd, const std::string& backup_id,
                          const std::vector<std::string>& parts,
                          std::vector<std::string>& dirs, std::string& error) {
  dirs = {workspace_meta_dir, "backups", backup_id};
  dirs.insert(dirs.end(), parts.begin(), parts.end() - 1);
  walk_result dir = open_dirs(root_fd, dirs, dirs.size(), /*create=*/true);
  if (!dir.ok()) {
    error = "cannot back up: "
            + dir.describe(printable(join(dirs, 0, dir.failed_at + 1)));
    return {};
  }
  return std::move(dir.fd);
}

// Saves the content of `src` as a new backup of `parts`; never replaces
// another backup and never leaves a partial one (temp file, then a rename
// that refuses to replace). Sets `rel` to the backup's path.
bool make_backup(int root_fd, const std::string& backup_id,
                 const std::vector<std::string>& parts, int src, mode_t mode,
                 std::string& rel, std::uintmax_t& bytes, std::string& error) {
  std::vector<std::string> dirs;
  unique_fd dir = open_backup_dir(root_fd, backup_id, parts, dirs, error);
  if (!dir)
    return false;
  const std::string& leaf = parts.back();
  std::uintmax_t copied = 0;
  std::string chosen;
  std::string why;
  bool ok = detail::create_file_noreplace(
    dir.get(),
    [&leaf](int n) {
      return backup_name(leaf, n);
    },
    mode,
    [src, &copied](int fd) {
      return detail::copy_content(src, fd, copied);
    },
    chosen, why);
  if (!ok) {
    error = "cannot back up: " + why;
    return false;
  }
  dirs.push_back(chosen);
  rel = join(dirs);
  bytes += copied;
  return true;
}

// Saves a symlink as a symlink with the same target (never followed).
bool make_backup_link(int root_fd, const std::string& backup_id,
                      const std::vector<std::string>& parts,
                      const std::string& target, std::string& error) {
  std::vector<std::string> dirs;
  unique_fd dir = open_backup_dir(root_fd, backup_id, parts, dirs, error);
  if (!dir)
    return false;
  for (int n = 0;; ++n) {
    std::string name = backup_name(parts.back(), n);
    if (name.empty()) {
      error = "cannot back up: every name is taken";
      return false;
    }
    // symlinkat never replaces an existing name: a saved link is whole.
    if (::symlinkat(target.c_str(), dir.get(), name.c_str()) == 0)
      return true;
    if (errno != EEXIST) {
      error = "cannot back up: " + errno_text(errno);
      return false;
    }
  }
}

// New content for a file: agent text, or an open file (a backup).
struct content_source {
  std::string_view text;
  int fd = -1;
};

write_outcome do_write(const fs::path& root, const std::string& backup_id,
                       const std::vector<std::string>& parts,
                       content_source content, std::optional<mode_t> new_mode,
                       detail::sync_mode sync = detail::sync_mode::durable) {
  write_outcome out;
  out.path = join(parts);
  std::error_code ec;
  fs::create_directories(root, ec);
  unique_fd root_fd = open_root(root);
  if (!root_fd) {
    out.reason = "cannot open the workspace: " + errno_text(errno);
    return out;
  }
  located loc = locate(root_fd.get(), parts, /*create=*/true);
  if (!loc.reason.empty()) {
    out.reason = std::move(loc.reason);
    return out;
  }
  std::optional<mode_t> mode = new_mode;
  if (loc.leaf.kind == leaf_kind::regular) {
    bool equal = false;
    bool compared
      = content.fd >= 0
          ? detail::same_content(loc.leaf.fd.get(), content.fd, equal)
          : detail::same_content(loc.leaf.fd.get(), content.text, equal);
    if (!compared) {
      out.reason = "cannot read " + printable(out.path) + ": "
                   + errno_text(errno);
      return out;
    }
    if (equal) {
      out.reason = "unchanged";
      return out;
    }
    std::uintmax_t bytes = 0;
    std::string error;
    if (!make_backup(root_fd.get(), backup_id, parts, loc.leaf.fd.get(),
                     loc.leaf.mode, out.backup, bytes, error)) {
      out.reason = std::move(error);
      return out;
    }
    mode = loc.leaf.mode;
  }
  auto fill = [&content](int fd) {
    std::uintmax_t copied = 0;
    return content.fd >= 0 ? detail::copy_content(content.fd, fd, copied)
                           : detail::write_all(fd, content.text);
  };
  std::string error;
  if (!detail::replace_file(loc.dir.get(), parts.back(), mode.value_or(0666),
                            mode.has_value(), fill, error, sync)) {
    out.reason = std::move(error);
    return out;
  }
  out.written = true;
  return out;
}

const char* special_kind(mode_t mode) {
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISSOCK(mode))
    return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode))
    return "a device";
  return "not a regular file";
}

} // namespace

workspace::preserve_report
workspace::preserve_existing(std::uintmax_t max_bytes) const {
  preserve_report rep;
  unique_fd root_fd = open_root(root_);
  if (!root_fd) {
    if (errno != ENOENT)
      rep.error = "cannot open the workspace: " + errno_text(errno);
    return rep; // a workspace that does not exist yet has nothing to save
  }

  // First the list and the total, so that nothing is copied when it is too
  // much.
  struct item {
    std::vector<std::string> parts;
    bool link = false;
  };
  std::vector<item> items;
  std::vector<std::string> failed;
  std::uintmax_t total = 0;
  std::vector<std::string> parts;
  tree_visitor visit;
  visit.entry = [&](int, const std::vector<std::string>& path,
                    const struct stat& st) {
    if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
      items.push_back({path, S_ISLNK(st.st_mode)});
      total += static_cast<std::uintmax_t>(st.st_size);
    } else {
      rep.skipped.push_back(printable(join(path)) + " ("
                            + special_kind(st.st_mode) + ")");
    }
  };
  visit.error = [&failed](const std::vector<std::string>& path,
                          const std::string& why) {
    failed.push_back((path.empty() ? std::string{"."} : printable(join(path)))
                     + " (" + why + ")");
  };
  walk_tree(root_fd.get(), parts, visit);
  if (total > max_bytes) {
    rep.error = "the existing files take " + std::to_string(total)
                + " bytes, more than the " + std::to_string(max_bytes)
                + " this run copies before it starts; nothing was saved";
    return rep;
  }

  for (const auto& it : items) {
    std::string shown = printable(join(it.parts));
    std::string error;
    walk_result dir = open_dirs(root_fd.get(), it.parts, it.parts.size() - 1,
                                false);
    if (!dir.ok()) {
      failed.push_back(
        shown + " ("
        + dir.describe(printable(join(it.parts, 0, dir.failed_at + 1))) + ")");
      continue;
    }
    const std::string& name = it.parts.back();
    bool saved = false;
    if (it.link) {
      std::string target(4096, '\0');
      ssize_t n = ::readlinkat(dir.fd.get(), name.c_str(), target.data(),
                               target.size());
      if (n < 0 || static_cast<std::size_t>(n) >= target.size()) {
        error = n < 0 ? "cannot read the link: " + errno_text(errno)
                      : "the link's target is too long";
      } else {
        target.resize(static_cast<std::size_t>(n));
        saved = make_backup_link(root_fd.get(), backup_id_, it.parts, target,
                                 error);
        if (saved)
          rep.bytes += target.size();
      }
    } else {
      leaf_info leaf = probe_leaf(dir.fd.get(), name);
      if (leaf.kind != leaf_kind::regular) {
        error = leaf_refusal(leaf, "it");
        if (error.empty())
          error = "it is gone";
      } else {
        std::string rel;
        saved = make_backup(root_fd.get(), backup_id_, it.parts, leaf.fd.get(),
                            leaf.mode, rel, rep.bytes, error);
      }
    }
    if (saved)
      ++rep.files;
    else
      failed.push_back(shown + " (" + error + ")");
  }

  if (!failed.empty()) {
    constexpr std::size_t shown_max = 10;
    rep.error = "could not save " + std::to_string(failed.size())
                + " path(s) before the run: ";
    for (std::size_t i = 0; i < failed.size() && i < shown_max; ++i)
      rep.error += (i == 0 ? "" : "; ") + failed[i];
    if (failed.size() > shown_max)
      rep.error += "; and " + std::to_string(failed.size() - shown_max)
                   + " more";
  }
  return rep;
}

write_outcome workspace::write(std::string_view path, std::string_view content,
                               detail::sync_mode sync) const {
  auto lex = detail::split_workspace_path(path, false);
  if (!lex.ok) {
    write_outcome out;
    out.path = std::string{path};
    out.reason = std::move(lex.reason);
    return out;
  }
  return do_write(root_, backup_id_, lex.parts, {content, -1}, std::nullopt,
                  sync);
}

bool workspace::restore(std::string_view backup_path,
                        std::string& error) const {
  auto lex = detail::split_workspace_path(backup_path, true);
  if (!lex.ok) {
    error = lex.reason;
    return false;
  }
  const auto& parts = lex.parts;
  if (parts.size() < 4 || parts[0] != workspace_meta_dir
      || parts[1] != "backups") {
    error = "not a backup path: " + printable(backup_path);
    return false;
  }
  std::vector<std::string> original(parts.begin() + 3, parts.end());
  original.back() = strip_backup_suffix(original.back());
  auto target = detail::split_workspace_path(join(original), false);
  if (!target.ok) {
    error = "backup of a refused path: " + target.reason;
    return false;
  }

  unique_fd root_fd = open_root(root_);
  if (!root_fd) {
    error = "cannot open the workspace: " + errno_text(errno);
    return false;
  }
  walk_result dir = open_dirs(root_fd.get(), parts, parts.size() - 1,
                              /*create=*/false);
  if (!dir.ok()) {
    error = dir.error == detail::walk_error::missing
              ? "no such backup: " + printable(join(parts))
              : "cannot read the backup: "
                  + dir.describe(printable(join(parts, 0, dir.failed_at + 1)));
    return false;
  }
  leaf_info backup = probe_leaf(dir.fd.get(), parts.back());
  if (backup.kind != leaf_kind::regular) {
    error = backup.kind == leaf_kind::missing
              ? "no such backup: " + printable(join(parts))
              : "cannot read the backup: "
                  + leaf_refusal(backup, printable(join(parts)));
    return false;
  }
  write_outcome w = do_write(root_, backup_id_, target.parts,
                             {{}, backup.fd.get()}, backup.mode);
  if (!w.written && w.reason != "unchanged") {
    error = w.reason;
    return false;
  }
  return true;
}

} // namespace orch
