#pragma once

// Descriptor helpers shared by the workspace writer (workspace.cpp) and our
// own files (safe_file.cpp): one implementation of "walk folders without
// following links", "write a temp file and rename it into place" and
// streaming copy/compare, so both judge paths and write files the same way.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace orch::detail {

/// Size of the blocks files are read, hashed, compared and copied in, so
/// memory stays bounded whatever the size of a file.
inline constexpr std::size_t io_block_size = std::size_t{64} * 1024;

/// Prefix of every temp file we create (snapshots skip these names).
inline constexpr std::string_view temp_prefix = ".orch-tmp-";

// -- owning descriptor --------------------------------------------------------

/// Closes its descriptor on destruction.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_{fd} {}
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  unique_fd(unique_fd&& other) noexcept : fd_{std::exchange(other.fd_, -1)} {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~unique_fd() {
    reset();
  }

  [[nodiscard]] int get() const noexcept {
    return fd_;
  }
  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }
  void reset() noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }
  /// Gives up ownership.
  [[nodiscard]] int release() noexcept {
    return std::exchange(fd_, -1);
  }

private:
  int fd_ = -1;
};

/// Returns the text of an errno value.
std::string errno_text(int err);

// -- walking folders ----------------------------------------------------------

/// Why open_dirs stopped.
enum class walk_error {
  none,
  /// A component does not exist (and was not to be created).
  missing,
  /// A component is a symlink: never followed.
  symlink,
  /// A component exists and is not a folder.
  not_a_folder,
  /// A system call failed (`err` holds errno).
  system,
};

/// The folder open_dirs reached, or where and why it stopped.
struct walk_result {
  unique_fd fd;
  walk_error error = walk_error::none;
  /// Index of the component that stopped the walk.
  std::size_t failed_at = 0;
  int err = 0;

  [[nodiscard]] bool ok() const noexcept {
    return error == walk_error::none;
  }

  /// Returns a reason naming `shown` (the path up to the failed component),
  /// e.g. "g is a symlink".
  [[nodiscard]] std::string describe(const std::string& shown) const;
};

/// Opens the folder `parts[0..n)` below the folder `dir`, one component at a
/// time with openat(O_NOFOLLOW|O_DIRECTORY). A symlink anywhere is refused,
/// never followed, so the folder reached is the one the names say. Missing
/// folders are created with `mode` (before umask) when `create`.
walk_result open_dirs(int dir, const std::vector<std::string>& parts,
                      std::size_t n, bool create, mode_t mode = 0777);

/// Returns `parts[from..to)` joined with '/'.
std::string join(const std::vector<std::string>& parts, std::size_t from = 0,
                 std::size_t to = static_cast<std::size_t>(-1));

/// Calls `visit(name, st)` for every entry of the folder `dir` except `.`
/// and `..`, with `st` from fstatat(AT_SYMLINK_NOFOLLOW); names are raw
/// bytes. Returns false (with errno) when the folder cannot be listed.
bool list_dir(
  int dir,
  const std::function<void(const std::string&, const struct stat&)>& visit);

// -- reading and writing ------------------------------------------------------

/// Writes all of `data`, retrying short writes and EINTR.
bool write_all(int fd, std::string_view data);

/// Calls `sink(chunk)` for each block read from `fd` at offsets 0.. until
/// end of file (pread, so the file offset is left alone). Blocks are at most
/// io_block_size bytes. Returns false (errno set) on a read error or when
/// `sink` returns false.
bool read_blocks(int fd, const std::function<bool(std::string_view)>& sink);

/// Copies the content of `src` (from offset 0) to `dst` (at its offset) in
/// blocks; all-zero blocks become holes, so a sparse file stays sparse.
/// Adds the bytes copied to `copied`.
bool copy_content(int src, int dst, std::uintmax_t& copied);

/// Sets `equal` to whether the file `fd` holds exactly `data` (compared in
/// blocks). Returns false when `fd` cannot be read.
bool same_content(int fd, std::string_view data, bool& equal);

/// Sets `equal` to whether the files `a` and `b` hold the same bytes.
bool same_content(int a, int b, bool& equal);

// -- atomic files -------------------------------------------------------------

/// Fills a temp file in `dir`; returns false (errno set) to abandon it.
using fill_fn = std::function<bool(int fd)>;

/// Whether an atomic replacement also waits for the disk. `atomic_only`
/// still never shows a half-written file, but after a power loss the old
/// content, none or an empty file may come back: for records rewritten again
/// soon (the manifest after each step), where two fsyncs would cost more than
/// the step. It swaps the new file in (renameat2 RENAME_EXCHANGE, then
/// removes the old one) where it can, which spares ext4's write-out of the
/// new file on a rename over an existing one.
enum class sync_mode { durable, atomic_only };

/// Creates a unique temp file `.orch-tmp-<pid>-<counter>-<random>` in `dir`
/// (O_CREAT|O_EXCL|O_NOFOLLOW, `mode` before umask, then fchmod'ed to `mode`
/// when `exact_mode`), fills it, fsyncs it and renames it over `name` (a
/// symlink or hard link at `name` is replaced, never written through), then
/// fsyncs `dir`; `sync_mode::atomic_only` skips both fsyncs. On failure the
/// temp file is removed and `error` says why.
bool replace_file(int dir, const std::string& name, mode_t mode,
                  bool exact_mode, const fill_fn& fill, std::string& error,
                  sync_mode sync = sync_mode::durable);

/// Like replace_file, but never replaces an existing entry: tries the names
/// `names(0)`, `names(1)`, ... (an empty string ends the list) and links the
/// filled temp file under the first free one, which it stores in `chosen`.
/// Readers see the whole file or nothing.
bool create_file_noreplace(int dir,
                           const std::function<std::string(int)>& names,
                           mode_t mode, const fill_fn& fill,
                           std::string& chosen, std::string& error);

/// Renames `from` to `to` in `dir` unless `to` exists (renameat2 with
/// RENAME_NOREPLACE, or linkat + unlinkat where the file system lacks it).
/// Returns 0 or an errno value (EEXIST when `to` exists).
int rename_noreplace(int dir, const char* from, const char* to);

} // namespace orch::detail
