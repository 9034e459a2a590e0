#include "runtime/safe_file.hpp"

#include "runtime/fd_util.hpp"
#include "runtime/path_rules.hpp"
#include "runtime/workspace.hpp"

#include <cerrno>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace orch {

using detail::errno_text;
using detail::printable;
using detail::unique_fd;

namespace {

// Splits our own relative name; refuses what could leave `base`.
bool split_own(std::string_view rel, std::vector<std::string>& parts,
               std::string& error) {
  parts.clear();
  std::size_t start = 0;
  while (start <= rel.size()) {
    std::size_t end = rel.find('/', start);
    if (end == std::string_view::npos)
      end = rel.size();
    std::string_view comp = rel.substr(start, end - start);
    if (comp.empty() || comp == "." || comp == ".."
        || comp.find('\0') != std::string_view::npos) {
      error = "refused to write " + printable(rel)
              + ": not a plain relative path";
      return false;
    }
    parts.emplace_back(comp);
    start = end + 1;
  }
  return true;
}

} // namespace

std::string plain_name(std::string x) {
  for (char& c : x) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      c = '_';
  }
  if (x.size() > 200)
    x.resize(200);
  if (x.empty() || x == "." || x == "..")
    x = "_";
  return x;
}

bool write_file_atomic(const std::filesystem::path& base, std::string_view rel,
                       std::string_view content, std::string& error,
                       sync_mode sync) {
  std::vector<std::string> parts;
  if (!split_own(rel, parts, error))
    return false;
  std::string shown = (base / std::string{rel}).string();
  // `base` is the caller's and may sit behind a link: create it if missing,
  // then never follow anything under it.
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  unique_fd base_fd{::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!base_fd) {
    error = "cannot write " + printable(shown) + ": cannot open "
            + printable(base.string()) + ": " + errno_text(errno);
    return false;
  }
  detail::walk_result dir = detail::open_dirs(base_fd.get(), parts,
                                              parts.size() - 1,
                                              /*create=*/true, 0700);
  if (!dir.ok()) {
    error
      = "cannot write " + printable(shown) + ": "
        + dir.describe(printable(detail::join(parts, 0, dir.failed_at + 1)));
    return false;
  }
  std::string why;
  if (!detail::replace_file(
        dir.fd.get(), parts.back(), 0666, false,
        [content](int fd) {
          return detail::write_all(fd, content);
        },
        why, sync)) {
    error = "cannot write " + printable(shown) + ": " + why;
    return false;
  }
  return true;
}

// -- workspace_lock -----------------------------------------------------------

workspace_lock::workspace_lock(workspace_lock&& other) noexcept
  : fd_{std::exchange(other.fd_, -1)} {}

workspace_lock& workspace_lock::operator=(workspace_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

workspace_lock::~workspace_lock() {
  if (fd_ >= 0) {
    // Still holding the lock: a stale holder line would only mislead.
    if (::ftruncate(fd_, 0) != 0) {
      // nop: the lock goes away with the descriptor anyway
    }
    ::close(fd_);
  }
}

namespace {

// The holder line "run_id pid" of a held lock, for the message.
std::string holder_of(int fd) {
  char buf[512];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n <= 0)
    return "another run";
  std::string_view line{buf, static_cast<std::size_t>(n)};
  line = line.substr(0, line.find('\n'));
  std::size_t space = line.rfind(' ');
  if (space == std::string_view::npos || space == 0)
    return "another run";
  return "run " + printable(line.substr(0, space)) + " (pid "
         + printable(line.substr(space + 1)) + ")";
}

} // namespace

std::optional<workspace_lock>
workspace_lock::acquire(const std::filesystem::path& workspace,
                        const std::string& run_id, std::string& error) {
  std::string shown = printable(workspace.string());
  unique_fd root{::open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!root) {
    error = "cannot lock the workspace " + shown + ": " + errno_text(errno);
    return std::nullopt;
  }
  detail::walk_result meta = detail::open_dirs(root.get(), {workspace_meta_dir},
                                               1, /*create=*/true);
  if (!meta.ok()) {
    error = "cannot lock the workspace " + shown + ": "
            + meta.describe(workspace_meta_dir);
    return std::nullopt;
  }
  // O_NOFOLLOW: a planted `lock -> elsewhere` is refused, not truncated;
  // O_NONBLOCK: a planted FIFO does not hang the open.
  unique_fd fd{::openat(meta.fd.get(), "lock",
                        O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                        0600)};
  std::string lock_name = std::string{workspace_meta_dir} + "/lock";
  if (!fd) {
    error = "cannot lock the workspace " + shown + ": "
            + (errno == ELOOP
                 ? lock_name + " is a symlink"
                 : "cannot open " + lock_name + ": " + errno_text(errno));
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    error = "cannot lock the workspace " + shown + ": " + lock_name
            + " is not a regular file";
    return std::nullopt;
  }
  // A hard link to a file elsewhere would be truncated below.
  if (st.st_nlink != 1) {
    error = "cannot lock the workspace " + shown + ": " + lock_name
            + " has other hard links";
    return std::nullopt;
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      error = "the workspace " + shown + " is in use by " + holder_of(fd.get());
    else
      error = "cannot lock the workspace " + shown + ": " + errno_text(errno);
    return std::nullopt;
  }
  std::string line = run_id + " " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0
      || ::pwrite(fd.get(), line.data(), line.size(), 0)
           != static_cast<ssize_t>(line.size())) {
    error = "cannot lock the workspace " + shown + ": cannot write " + lock_name
            + ": " + errno_text(errno);
    return std::nullopt;
  }
  return workspace_lock{fd.release()};
}

} // namespace orch
