#include "actors/signals.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>
#include <system_error>

#include <caf/actor_system.hpp>
#include <caf/blocking_actor.hpp>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace orch {

namespace {

// Written by the handlers, so it must be lock-free.
std::atomic<int> g_signal_write{-1};
int g_signal_read = -1;
static_assert(std::atomic<int>::is_always_lock_free);

// Async-signal-safe: one non-blocking write; a full pipe drops the signal.
void post_signal(int signo) noexcept {
  int fd = g_signal_write.load();
  if (fd < 0)
    return;
  auto byte = static_cast<unsigned char>(signo);
  ssize_t rc;
  do {
    rc = write(fd, &byte, 1);
  } while (rc < 0 && errno == EINTR);
}

extern "C" void orch_signal_handler(int signo) {
  int saved = errno;
  post_signal(signo);
  errno = saved;
}

// SIGPIPE: a write to a pipe or socket without reader. When our stdout or
// stderr is that pipe (`ai-orchestrator run -v ... | head -5`), nobody reads
// the run any more: it is stopped like on Ctrl-C, instead of this process
// dying and leaving its agents behind. poll() is async-signal-safe; a pipe
// whose reader is gone reports POLLERR, a socket POLLHUP.
extern "C" void orch_sigpipe_handler(int signo) {
  int saved = errno;
  pollfd fds[2] = {{1, 0, 0}, {2, 0, 0}};
  if (poll(fds, 2, 0) > 0
      && ((fds[0].revents | fds[1].revents) & (POLLERR | POLLHUP)) != 0)
    post_signal(signo);
  errno = saved;
}

/// Reads every queued signal number without waiting.
template<class F>
void drain(int fd, F&& each) {
  unsigned char buf[64];
  for (;;) {
    ssize_t rc = read(fd, buf, sizeof buf);
    if (rc > 0) {
      for (ssize_t i = 0; i < rc; ++i)
        each(static_cast<int>(buf[i]));
      continue;
    }
    if (rc < 0 && errno == EINTR)
      continue;
    return; // EAGAIN: empty
  }
}

} // namespace

struct signal_bridge::wake_pipe {
  int fds[2] = {-1, -1};

  wake_pipe() {
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::system_error(errno, std::generic_category(),
                              "signal_bridge: pipe2");
  }
  ~wake_pipe() {
    close(fds[0]);
    close(fds[1]);
  }
  wake_pipe(const wake_pipe&) = delete;
  wake_pipe& operator=(const wake_pipe&) = delete;
};

namespace {

/// The watcher: waits on the signal pipe and the wake-up pipe, nothing else
/// (no timeout needed: stop() always writes the wake-up byte).
void watcher_impl(caf::blocking_actor*, int signal_fd,
                  std::shared_ptr<signal_bridge::wake_pipe> wake,
                  signal_bridge::handler on_signal) {
  for (;;) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {wake->fds[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    if (fds[1].revents != 0)
      return;
    if (fds[0].revents != 0)
      drain(signal_fd, [&](int signo) {
        try {
          on_signal(signo);
        } catch (...) {
          // A failing handler loses this signal, not the next ones.
        }
      });
  }
}

} // namespace

int install_signal_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::system_error(errno, std::generic_category(),
                              "install_signal_handlers: pipe2");
    g_signal_read = fds[0];
    g_signal_write.store(fds[1]);
    struct sigaction sa {};
    sa.sa_handler = orch_signal_handler;
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
  return g_signal_read;
}

signal_bridge::signal_bridge(caf::actor_system& sys, handler on_signal)
  : wake_(std::make_shared<wake_pipe>()) {
  int fd = install_signal_handlers();
  watcher_ = sys.spawn(watcher_impl, fd, wake_, std::move(on_signal));
}

signal_bridge::~signal_bridge() {
  stop();
}

void signal_bridge::stop() noexcept {
  // One byte, never drained: the watcher sees it whenever it polls next.
  ssize_t rc;
  do {
    rc = write(wake_->fds[1], "w", 1);
  } while (rc < 0 && errno == EINTR);
}

} // namespace orch
