// Tests of the /proc helpers the agent guard and the runner sweep with: a
// scan limited to the pids handed out since a mark still sees every process
// started after it, and skips the ones that were there before.

#include "runtime/process_tree.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include <csignal>
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

} // namespace
