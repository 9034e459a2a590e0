// Signals as messages (actors/signals.hpp): SIGINT, SIGTERM and SIGHUP reach
// the bridge's callback in order, a broken stdout's SIGPIPE too (and only
// that SIGPIPE), and stop() ends the watcher so the actor system can shut
// down.

#include <chrono>
#include <csignal>
#include <future>
#include <mutex>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/system_messages.hpp>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/signals.hpp"
#include "actors/system_config.hpp"

namespace orch {
namespace {

constexpr auto k_max_test_wait = std::chrono::seconds{60};

TEST(signal_bridge, delivers_each_signal_in_order_as_a_callback) {
  system_config cfg;
  caf::actor_system sys{cfg};
  std::mutex mutex;
  std::vector<int> seen;
  std::promise<void> all;
  signal_bridge bridge{sys, [&](int signo) {
                         std::lock_guard<std::mutex> guard{mutex};
                         seen.push_back(signo);
                         if (seen.size() == 3)
                           all.set_value();
                       }};
  // Handled: none of them ends the test process.
  ASSERT_EQ(raise(SIGINT), 0);
  ASSERT_EQ(raise(SIGTERM), 0);
  ASSERT_EQ(raise(SIGHUP), 0);
  ASSERT_EQ(all.get_future().wait_for(k_max_test_wait),
            std::future_status::ready);
  std::lock_guard<std::mutex> guard{mutex};
  EXPECT_EQ(seen, (std::vector<int>{SIGINT, SIGTERM, SIGHUP}));
}

TEST(signal_bridge, stop_ends_the_watcher) {
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  signal_bridge bridge{sys, [](int) {}};
  self->monitor(bridge.watcher());
  bridge.stop();
  bridge.stop(); // idempotent
  bool down = false;
  self->receive(
    [&](const caf::down_msg&) {
      down = true;
    },
    caf::after(k_max_test_wait) >> [] {});
  EXPECT_TRUE(down);
}

/// Runs `body` in a forked child and returns its wait status.
template<class F>
int in_child(F body) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(body());
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

/// Returns the signal numbers queued in the signal pipe, without waiting.
std::vector<int> queued(int fd) {
  std::vector<int> out;
  unsigned char buf[16];
  ssize_t rc;
  while ((rc = read(fd, buf, sizeof buf)) > 0)
    out.insert(out.end(), buf, buf + rc);
  return out;
}

TEST(signal_handlers, a_broken_stdout_is_a_signal_instead_of_a_death) {
  // `ai-orchestrator run ... | head -1`: SIGPIPE must stop the run (and its
  // agents) like Ctrl-C, and the write fail with EPIPE.
  int status = in_child([] {
    int fd = install_signal_handlers();
    int fds[2];
    if (pipe(fds) != 0)
      return 2;
    close(fds[0]);
    dup2(fds[1], 1);
    if (write(1, "x", 1) != -1 || errno != EPIPE)
      return 3;
    return queued(fd) == std::vector<int>{SIGPIPE} ? 0 : 4;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(signal_handlers, sigpipe_from_another_pipe_only_fails_the_write) {
  int status = in_child([] {
    int fd = install_signal_handlers();
    int fds[2];
    if (pipe(fds) != 0)
      return 2;
    close(fds[0]);
    if (write(fds[1], "x", 1) != -1 || errno != EPIPE)
      return 3;
    return queued(fd).empty() ? 0 : 4;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

} // namespace
} // namespace orch
