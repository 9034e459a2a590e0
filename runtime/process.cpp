#include "runtime/process.hpp"

#include <atomic>
#include <cerrno>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

namespace orch {

std::string to_string(deadline_kind x) {
  switch (x) {
    case deadline_kind::first_output:
      return "first_output";
    case deadline_kind::idle:
      return "idle";
    case deadline_kind::total:
      return "total";
    case deadline_kind::none:
      break;
  }
  return "none";
}

process_runner::~process_runner() = default;

// -- cancel_token -------------------------------------------------------------

cancel_token::cancel_token() {
  // Both ends non-blocking: cancel() must never block, and the read end is
  // only ever polled, never read.
  if (pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(),
                            "cancel_token: pipe2");
}

cancel_token::~cancel_token() {
  close(fds_[0]);
  close(fds_[1]);
}

void cancel_token::cancel() noexcept {
  // One byte, written once, never drained: the read end stays readable.
  if (!cancelled_.exchange(true)) {
    ssize_t rc;
    do {
      rc = write(fds_[1], "c", 1);
    } while (rc < 0 && errno == EINTR);
  }
}

bool cancel_token::cancelled() const noexcept {
  return cancelled_.load();
}

int cancel_token::fd() const noexcept {
  return fds_[0];
}

} // namespace orch
