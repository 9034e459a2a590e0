#include "runtime/fd_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/syscall.h>

namespace orch::detail {

std::string errno_text(int err) {
  return std::error_code{err, std::generic_category()}.message();
}

std::string join(const std::vector<std::string>& parts, std::size_t from,
                 std::size_t to) {
  std::string out;
  to = std::min(to, parts.size());
  for (std::size_t i = from; i < to; ++i) {
    if (i != from)
      out += '/';
    out += parts[i];
  }
  return out;
}

// -- walking folders ----------------------------------------------------------

std::string walk_result::describe(const std::string& shown) const {
  switch (error) {
    case walk_error::none:
      return {};
    case walk_error::missing:
      return shown + " does not exist";
    case walk_error::symlink:
      return shown + " is a symlink";
    case walk_error::not_a_folder:
      return shown + " exists and is not a folder";
    case walk_error::system:
      break;
  }
  return "cannot open " + shown + ": " + errno_text(err);
}

walk_result open_dirs(int dir, const std::vector<std::string>& parts,
                      std::size_t n, bool create, mode_t mode) {
  walk_result out;
  auto fail = [&out](walk_error e, std::size_t at, int err) {
    out.fd.reset();
    out.error = e;
    out.failed_at = at;
    out.err = err;
    return std::move(out);
  };
  unique_fd cur{::fcntl(dir, F_DUPFD_CLOEXEC, 0)};
  if (!cur)
    return fail(walk_error::system, 0, errno);
  n = std::min(n, parts.size());
  for (std::size_t i = 0; i < n; ++i) {
    const char* name = parts[i].c_str();
    constexpr int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    unique_fd next{::openat(cur.get(), name, flags)};
    if (!next && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), name, mode) != 0 && errno != EEXIST)
        return fail(walk_error::system, i, errno);
      // Open what is there now: it may not be what we created.
      next = unique_fd{::openat(cur.get(), name, flags)};
    }
    if (!next) {
      int err = errno;
      if (err == ENOENT)
        return fail(walk_error::missing, i, err);
      struct stat st {};
      if (::fstatat(cur.get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode))
          return fail(walk_error::symlink, i, err);
        if (!S_ISDIR(st.st_mode))
          return fail(walk_error::not_a_folder, i, err);
      }
      return fail(walk_error::system, i, err);
    }
    cur = std::move(next);
  }
  out.fd = std::move(cur);
  return out;
}

bool list_dir(
  int dir,
  const std::function<void(const std::string&, const struct stat&)>& visit) {
  // fdopendir takes over the descriptor: give it its own, opened afresh so
  // the listing starts at the beginning.
  int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return false;
  std::vector<std::string> names;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> d{::fdopendir(fd), &::closedir};
    if (!d) {
      int err = errno;
      ::close(fd);
      errno = err;
      return false;
    }
    errno = 0;
    while (const dirent* e = ::readdir(d.get())) {
      std::string name{e->d_name};
      if (name != "." && name != "..")
        names.push_back(std::move(name));
      errno = 0;
    }
    if (errno != 0)
      return false;
  }
  // The listing is closed before the callbacks: a visitor that recurses
  // keeps only its own folder's descriptor open per level.
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    struct stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue; // gone since the listing
    visit(name, st);
  }
  return true;
}

// -- reading and writing ------------------------------------------------------

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool read_blocks(int fd, const std::function<bool(std::string_view)>& sink) {
  // Not value-initialised: zeroing 64 KiB per file cost more than reading
  // a small file (a snapshot reads thousands).
  std::unique_ptr<char[]> buf{new char[io_block_size]};
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.get(), io_block_size, offset);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0)
      return true;
    offset += n;
    if (!sink(std::string_view{buf.get(), static_cast<std::size_t>(n)})) {
      if (errno == 0)
        errno = EIO;
      return false;
    }
  }
}

namespace {

bool all_zero(std::string_view block) {
  return !block.empty() && block.front() == 0
         && std::memcmp(block.data(), block.data() + 1, block.size() - 1) == 0;
}

} // namespace

bool copy_content(int src, int dst, std::uintmax_t& copied) {
  off_t start = ::lseek(dst, 0, SEEK_CUR);
  if (start < 0)
    return false;
  off_t pos = start;
  bool hole_at_end = false;
  bool ok = read_blocks(src, [&](std::string_view block) {
    if (all_zero(block)) {
      // Leave a hole; the final ftruncate gives the file its length.
      if (::lseek(dst, static_cast<off_t>(block.size()), SEEK_CUR) < 0)
        return false;
      hole_at_end = true;
    } else {
      if (!write_all(dst, block))
        return false;
      hole_at_end = false;
    }
    pos += static_cast<off_t>(block.size());
    copied += block.size();
    return true;
  });
  if (!ok)
    return false;
  return !hole_at_end || ::ftruncate(dst, pos) == 0;
}

bool same_content(int fd, std::string_view data, bool& equal) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return false;
  equal = static_cast<std::uintmax_t>(st.st_size) == data.size();
  if (!equal)
    return true;
  std::string_view rest = data;
  bool differs = false;
  bool ok = read_blocks(fd, [&](std::string_view block) {
    differs = block.size() > rest.size()
              || block != rest.substr(0, block.size());
    rest.remove_prefix(std::min(block.size(), rest.size()));
    return !differs; // stop at the first difference
  });
  if (!ok && !differs)
    return false; // a read error, not a difference
  equal = !differs && rest.empty();
  return true;
}

bool same_content(int a, int b, bool& equal) {
  struct stat sa {};
  struct stat sb {};
  if (::fstat(a, &sa) != 0 || ::fstat(b, &sb) != 0)
    return false;
  equal = sa.st_size == sb.st_size;
  if (!equal)
    return true;
  std::vector<char> other(io_block_size);
  off_t offset = 0;
  bool differs = false;
  bool ok = read_blocks(a, [&](std::string_view block) {
    std::size_t got = 0;
    while (got < block.size()) {
      ssize_t n = ::pread(b, other.data() + got, block.size() - got,
                          offset + static_cast<off_t>(got));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return false;
      if (n == 0) {
        differs = true; // `b` is shorter now
        return false;
      }
      got += static_cast<std::size_t>(n);
    }
    offset += static_cast<off_t>(block.size());
    differs = std::memcmp(block.data(), other.data(), block.size()) != 0;
    return !differs;
  });
  if (!ok && !differs)
    return false;
  equal = !differs;
  return true;
}

// -- atomic files -------------------------------------------------------------

namespace {

std::atomic<uint64_t> temp_counter{0};

std::string temp_name() {
  uint64_t rnd = 0;
  if (::getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
    rnd = static_cast<uint64_t>(::time(nullptr)) ^ temp_counter.load();
  static constexpr char hex[] = "0123456789abcdef";
  std::string r;
  for (int i = 0; i < 12; ++i)
    r += hex[(rnd >> (4 * i)) & 0xF];
  return std::string{temp_prefix} + std::to_string(::getpid()) + "-"
         + std::to_string(temp_counter.fetch_add(1)) + "-" + r;
}

// Creates and fills a temp file in `dir`; on success it is fsynced (unless
// `sync` says not to) and closed, and its name is in `tmp`.
bool make_temp(int dir, mode_t mode, bool exact_mode, const fill_fn& fill,
               std::string& tmp, std::string& error,
               sync_mode sync = sync_mode::durable) {
  unique_fd fd;
  for (int attempt = 0; attempt < 100 && !fd; ++attempt) {
    tmp = temp_name();
    fd = unique_fd{
      ::openat(dir, tmp.c_str(),
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)};
    if (!fd && errno != EEXIST) {
      error = "cannot create a temp file: " + errno_text(errno);
      return false;
    }
  }
  if (!fd) {
    error = "cannot create a temp file: too many name clashes";
    return false;
  }
  errno = 0;
  bool ok = (!exact_mode || ::fchmod(fd.get(), mode) == 0) && fill(fd.get())
            && (sync == sync_mode::atomic_only || ::fsync(fd.get()) == 0);
  int err = errno != 0 ? errno : EIO;
  fd.reset();
  if (!ok) {
    ::unlinkat(dir, tmp.c_str(), 0);
    error = errno_text(err);
    return false;
  }
  return true;
}

} // namespace

int rename_noreplace(int dir, const char* from, const char* to) {
#ifdef SYS_renameat2
  constexpr unsigned rename_noreplace_flag = 1; // RENAME_NOREPLACE
  if (::syscall(SYS_renameat2, dir, from, dir, to, rename_noreplace_flag) == 0)
    return 0;
  if (errno != ENOSYS && errno != EINVAL)
    return errno;
#endif
  // No renameat2 here: a hard link never replaces an existing name either.
  if (::linkat(dir, from, dir, to, 0) != 0)
    return errno;
  ::unlinkat(dir, from, 0);
  return 0;
}

namespace {

/// Swaps `tmp` with an existing `name` and removes what is now at `tmp` (the
/// old entry). Returns 0, or an errno when nothing was swapped (no entry at
/// `name`, no support here) or the old entry was a folder (swapped back:
/// rename refuses to replace a folder by a file too).
///
/// Why not rename over `name`: on ext4 (auto_da_alloc), renaming a freshly
/// written file over an existing one makes the kernel allocate and start
/// writing out the new file's blocks first, about 0.5 ms here for a record
/// rewritten every step; an exchange does not. Readers see the old or the
/// new file at `name`, never none, as with a rename.
int exchange_and_drop(int dir, const char* tmp, const char* name) {
#ifdef SYS_renameat2
  constexpr unsigned rename_exchange_flag = 2; // RENAME_EXCHANGE
  if (::syscall(SYS_renameat2, dir, tmp, dir, name, rename_exchange_flag) != 0)
    return errno;
  if (::unlinkat(dir, tmp, 0) == 0)
    return 0;
  int err = errno;
  if (err == EISDIR || err == EPERM) {
    // A folder: put it back where it was.
    ::syscall(SYS_renameat2, dir, tmp, dir, name, rename_exchange_flag);
    return EISDIR;
  }
  return 0; // the new file is in place; the old one lingers as a temp file
#else
  (void)dir;
  (void)tmp;
  (void)name;
  return ENOSYS;
#endif
}

} // namespace

bool replace_file(int dir, const std::string& name, mode_t mode,
                  bool exact_mode, const fill_fn& fill, std::string& error,
                  sync_mode sync) {
  std::string tmp;
  std::string why;
  if (!make_temp(dir, mode, exact_mode, fill, tmp, why, sync)) {
    error = "cannot write " + name + ": " + why;
    return false;
  }
  // Not fsynced anyway: exchanged, so that ext4 does not write it out now.
  int err = sync == sync_mode::atomic_only
              ? exchange_and_drop(dir, tmp.c_str(), name.c_str())
              : ENOSYS;
  if (err != 0 && err != EISDIR)
    err = ::renameat(dir, tmp.c_str(), dir, name.c_str()) == 0 ? 0 : errno;
  if (err != 0) {
    ::unlinkat(dir, tmp.c_str(), 0);
    error = "cannot write " + name + ": " + errno_text(err);
    return false;
  }
  if (sync == sync_mode::durable)
    ::fsync(dir); // durability of the rename; failure here is not fatal
  return true;
}

bool create_file_noreplace(int dir,
                           const std::function<std::string(int)>& names,
                           mode_t mode, const fill_fn& fill,
                           std::string& chosen, std::string& error) {
  std::string tmp;
  if (!make_temp(dir, mode, true, fill, tmp, error))
    return false;
  for (int i = 0;; ++i) {
    std::string name = names(i);
    if (name.empty())
      break;
    int err = rename_noreplace(dir, tmp.c_str(), name.c_str());
    if (err == 0) {
      ::fsync(dir);
      chosen = std::move(name);
      return true;
    }
    if (err != EEXIST) {
      ::unlinkat(dir, tmp.c_str(), 0);
      error = errno_text(err);
      return false;
    }
  }
  ::unlinkat(dir, tmp.c_str(), 0);
  error = "every name is taken";
  return false;
}

} // namespace orch::detail
