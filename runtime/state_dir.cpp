#include "runtime/state_dir.hpp"

#include <cerrno>
#include <cstdlib>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace orch {

using detail::errno_text;
using detail::unique_fd;

namespace fs = std::filesystem;

namespace {

bool absolute_text(const char* x) {
  return x != nullptr && x[0] == '/';
}

} // namespace

fs::path resolve_state_dir(std::string_view configured,
                           const char* xdg_state_home, const char* home) {
  if (!configured.empty()) {
    if (configured.rfind("~/", 0) != 0)
      return fs::path{std::string{configured}}.lexically_normal();
    if (!absolute_text(home))
      return {};
    return (fs::path{home} / std::string{configured.substr(2)})
      .lexically_normal();
  }
  if (absolute_text(xdg_state_home) && xdg_state_home[1] != '\0')
    return (fs::path{xdg_state_home} / std::string{state_dir_name})
      .lexically_normal();
  if (!absolute_text(home))
    return {};
  return (fs::path{home} / ".local" / "state" / std::string{state_dir_name})
    .lexically_normal();
}

fs::path resolve_state_dir(std::string_view configured) {
  return resolve_state_dir(configured, std::getenv("XDG_STATE_HOME"),
                           std::getenv("HOME"));
}

unique_fd open_state_dir(const fs::path& given, std::string& error) {
  auto dir = given.lexically_normal();
  if (!dir.has_filename() && dir.has_parent_path())
    dir = dir.parent_path();
  if (!dir.is_absolute() || dir == dir.root_path()) {
    error = "the state directory '" + given.string()
            + "' is not an absolute path below /";
    return {};
  }
  // Parents one at a time, so each new one gets 0700 (before umask).
  fs::path prefix = dir.root_path();
  for (const auto& part : dir.relative_path()) {
    prefix /= part;
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      error = "cannot create the state directory: " + prefix.string() + ": "
              + errno_text(errno);
      return {};
    }
  }
  unique_fd fd{
    ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  if (!fd) {
    int err = errno;
    struct stat st {};
    if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      error = "the state directory " + dir.string()
              + " is a symlink; it must be a real folder";
    else
      error = "cannot open the state directory " + dir.string() + ": "
              + errno_text(err);
    return {};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    error = "cannot stat the state directory " + dir.string() + ": "
            + errno_text(errno);
    return {};
  }
  if (st.st_uid != ::geteuid()) {
    error = "the state directory " + dir.string() + " belongs to uid "
            + std::to_string(st.st_uid) + ", not to us";
    return {};
  }
  if ((st.st_mode & 077) != 0 && ::fchmod(fd.get(), 0700) != 0) {
    error = "cannot make the state directory " + dir.string()
            + " private (0700): " + errno_text(errno);
    return {};
  }
  return fd;
}

unique_fd open_state_subdir(int state_fd, const std::string& name,
                            std::string& error) {
  auto res = detail::open_dirs(state_fd, std::vector<std::string>{name}, 1,
                               true, 0700);
  if (!res.ok()) {
    error = "in the state directory: " + res.describe(name);
    return {};
  }
  return std::move(res.fd);
}

} // namespace orch
