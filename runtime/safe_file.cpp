#include "runtime/safe_file.hpp"

// STUB: to be replaced by the real descriptor-based implementation.

#include <fstream>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace orch {

bool write_file_atomic(const std::filesystem::path& base, std::string_view rel,
                       std::string_view content, std::string& error) {
  auto path = base / std::string{rel};
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out{path, std::ios::trunc | std::ios::binary};
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) {
    error = "cannot write " + path.string();
    return false;
  }
  return true;
}

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
  if (fd_ >= 0)
    ::close(fd_);
}

std::optional<workspace_lock>
workspace_lock::acquire(const std::filesystem::path& workspace,
                        const std::string& /*run_id*/, std::string& error) {
  auto path = workspace / ".orchestrator" / "lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot open " + path.string();
    return std::nullopt;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    error = "the workspace is in use by another run";
    return std::nullopt;
  }
  return workspace_lock{fd};
}

} // namespace orch
