// Tests of the /proc helpers the agent guard and the runner sweep with: a
// scan limited to the pids handed out since a mark still sees every process
// started after it, and skips the ones that were there before.

#include "runtime/process_tree.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <csignal>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using orch::proc::proc_info;

bool holds(const std::vector<proc_info>& all, pid_t pid) {
  return std::any_of(all.begin(), all.end(), [pid](const proc_info& p) {
    return p.pid == pid;
  });
}

/// A child that waits in pause() until killed, and is reaped on destruction.
struct paused_child {
  pid_t pid = fork();
  paused_child() {
    if (pid == 0) {
      pause();
      _exit(0);
    }
  }
  ~paused_child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

TEST(process_tree, snapshot_since_sees_what_started_after_the_mark) {
  paused_child before;
  ASSERT_GT(before.pid, 0);
  auto mark = orch::proc::mark_pids();
  paused_child after;
  ASSERT_GT(after.pid, 0);
  auto since = orch::proc::snapshot_since(mark);
  EXPECT_TRUE(holds(since, after.pid));
  auto all = orch::proc::snapshot();
  EXPECT_TRUE(holds(all, before.pid));
  EXPECT_TRUE(holds(all, getpid()));
  if (mark.last_pid > 0) {
    // The range is known here: what was there before is not read.
    EXPECT_FALSE(holds(since, before.pid));
    EXPECT_FALSE(holds(since, getpid()));
    EXPECT_LT(since.size(), all.size());
  }
}

TEST(process_tree, a_short_range_is_probed_and_threads_are_not_processes) {
  // A few pids since the mark are read one by one, not by listing /proc:
  // a thread started since has a pid in the range too, and must not be
  // taken for a process.
  auto mark = orch::proc::mark_pids();
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread t{[&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    while (!stop)
      std::this_thread::yield();
  }};
  while (tid == 0)
    std::this_thread::yield();
  paused_child after;
  ASSERT_GT(after.pid, 0);
  auto since = orch::proc::snapshot_since(mark);
  // The thread's stat file reads as a process's would.
  orch::proc::proc_info info;
  EXPECT_TRUE(orch::proc::read_info(tid, info));
  stop = true;
  t.join();
  EXPECT_TRUE(holds(since, after.pid));
  EXPECT_FALSE(holds(since, tid.load()));
}

TEST(process_tree, an_unknown_mark_reads_every_process) {
  orch::proc::pid_mark unknown; // last_pid -1
  auto since = orch::proc::snapshot_since(unknown);
  EXPECT_TRUE(holds(since, getpid()));
  EXPECT_TRUE(holds(since, getppid()) || getppid() == 0);
}

TEST(process_tree, descendants_follow_parentage) {
  paused_child child;
  ASSERT_GT(child.pid, 0);
  auto all = orch::proc::snapshot();
  auto tree = orch::proc::descendants(all, getpid());
  EXPECT_TRUE(holds(tree, child.pid));
  EXPECT_FALSE(holds(tree, getpid()));
}

/// A /bin/sh started with exactly `env`, that says it runs (so its image
/// and environment are in place) and then waits for stdin to close.
struct shell_with_env {
  pid_t pid = -1;
  int in = -1;
  explicit shell_with_env(std::vector<const char*> env) {
    int to_child[2];
    int from_child[2];
    // Close-on-exec: the shell holds no write end of its own stdin.
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0)
      return;
    env.push_back(nullptr);
    pid = fork();
    if (pid == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      const char* argv[] = {"sh", "-c", "echo up; read x", nullptr};
      execve("/bin/sh", const_cast<char**>(argv),
             const_cast<char**>(env.data()));
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    in = to_child[1];
    char buf[3];
    if (read(from_child[0], buf, sizeof buf) != 3)
      pid = -1;
    close(from_child[0]);
  }
  ~shell_with_env() {
    if (in >= 0)
      close(in);
    if (pid > 0)
      waitpid(pid, nullptr, 0);
  }
};

TEST(process_tree, environ_mark_tells_present_absent_and_empty) {
  using orch::proc::environ_mark;
  using orch::proc::mark;
  shell_with_env marked{{"A=1", "ORCH_RUN_MARK=42"}};
  shell_with_env other{{"ORCH_RUN_MARK=421"}};
  // What execve looks like before the new image's environment is set up,
  // and what a process started with none looks like: look again.
  shell_with_env empty{{}};
  ASSERT_GT(marked.pid, 0);
  ASSERT_GT(other.pid, 0);
  ASSERT_GT(empty.pid, 0);
  EXPECT_EQ(environ_mark(marked.pid, "ORCH_RUN_MARK=42"), mark::present);
  EXPECT_EQ(environ_mark(other.pid, "ORCH_RUN_MARK=42"), mark::absent);
  EXPECT_EQ(environ_mark(empty.pid, "ORCH_RUN_MARK=42"), mark::unknown);
  EXPECT_EQ(environ_mark(999'999'999, "ORCH_RUN_MARK=42"), mark::absent);
  proc_info self;
  ASSERT_TRUE(orch::proc::read_info(getpid(), self));
  EXPECT_EQ(orch::proc::marked_since(self, self.start + 1, "A=1"),
            mark::absent);
}

} // namespace
