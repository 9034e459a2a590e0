#include "runtime/process.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
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

// -- interruption -------------------------------------------------------------

namespace {

// Both are touched from the signal handler, so they must be lock-free.
std::atomic<bool> g_interrupted{false};
std::atomic<int> g_interrupt_read{-1};
std::atomic<int> g_interrupt_write{-1};
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(std::atomic<int>::is_always_lock_free);

// Async-signal-safe: an atomic store and a non-blocking write. A byte is
// written on every call (a full pipe is harmless), so the pipe is readable
// whenever the flag is set, whatever the interleaving with reset_interrupt.
void mark_interrupted() noexcept {
  g_interrupted.store(true);
  int fd = g_interrupt_write.load();
  if (fd >= 0) {
    ssize_t rc;
    do {
      rc = write(fd, "i", 1);
    } while (rc < 0 && errno == EINTR);
  }
}

extern "C" void orch_interrupt_handler(int) {
  int saved = errno;
  mark_interrupted();
  errno = saved;
}

// SIGPIPE: a write to a pipe or socket without reader. When our stdout or
// stderr is that pipe (`ai-orchestrator run -v ... | head -5`), nobody reads
// the run any more: it is stopped like on Ctrl-C, instead of this process
// dying and leaving its agents behind. Any other SIGPIPE is left to the
// EPIPE of the write that raised it. poll() is async-signal-safe; a pipe
// whose reader is gone reports POLLERR, a socket POLLHUP.
extern "C" void orch_sigpipe_handler(int) {
  int saved = errno;
  pollfd fds[2] = {{1, 0, 0}, {2, 0, 0}};
  if (poll(fds, 2, 0) > 0
      && ((fds[0].revents | fds[1].revents) & (POLLERR | POLLHUP)) != 0)
    mark_interrupted();
  errno = saved;
}

} // namespace

void install_interrupt_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::system_error(errno, std::generic_category(),
                              "install_interrupt_handlers: pipe2");
    g_interrupt_read.store(fds[0]);
    g_interrupt_write.store(fds[1]);
    // An interrupt raised before the pipe existed must still be visible.
    if (g_interrupted.load())
      mark_interrupted();
    struct sigaction sa {};
    sa.sa_handler = orch_interrupt_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    // A closed terminal: the agents sit in their own process groups and
    // would not get the SIGHUP, so they are stopped like on Ctrl-C.
    sigaction(SIGHUP, &sa, nullptr);
    struct sigaction pipe_sa {};
    pipe_sa.sa_handler = orch_sigpipe_handler;
    sigemptyset(&pipe_sa.sa_mask);
    pipe_sa.sa_flags = SA_RESTART;
    sigaction(SIGPIPE, &pipe_sa, nullptr);
  });
}

bool interrupted() noexcept {
  return g_interrupted.load();
}

int interrupt_fd() noexcept {
  return g_interrupt_read.load();
}

void raise_interrupt() noexcept {
  mark_interrupted();
}

void reset_interrupt() noexcept {
  g_interrupted.store(false);
  int fd = g_interrupt_read.load();
  if (fd < 0)
    return;
  char buf[256];
  for (;;) {
    ssize_t rc = read(fd, buf, sizeof buf);
    if (rc > 0 || (rc < 0 && errno == EINTR))
      continue;
    break; // EAGAIN: empty
  }
}

} // namespace orch
