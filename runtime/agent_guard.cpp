// ai-orchestrator-agent-guard: the parent of every agent process, so that no
// process of an agent outlives its run. The process runner spawns it in place
// of the agent:
//
//   ai-orchestrator-agent-guard <runner pid> <status fd> <program> <argv0>...
//
// The guard
// - asks for SIGUSR2 when its parent dies (PR_SET_PDEATHSIG; posix_spawn
//   cannot set it in the agent itself) and checks that the parent is still
//   <runner pid>, since it may have died before the prctl;
// - becomes a child subreaper: whatever the agent starts and then orphans
//   (setsid, double fork, Node's `detached: true`) is reparented to the
//   guard instead of to init, so it stays findable;
// - forks and execs <program> with <argv0>... in a new process group led by
//   the agent, which the guard then joins, so the runner's group signals
//   reach both and the agent's pid is its group id; environment, working
//   directory and stdio are inherited; the guard then points its own stdio
//   at /dev/null so that the runner's pipes end with the agent's tree;
// - reports through <status fd> (close-on-exec): "p" + the agent's pid, and
//   "e" + errno when the exec failed;
// - forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT from the runner to the agent's
//   descendants outside the group (the group got the signal already), and
//   from anyone else outside the tree to the whole tree;
// - when the agent exits, the runner sends SIGUSR1 ("kill now") or the
//   runner dies: SIGKILLs every descendant and every process carrying this
//   run's ORCH_RUN_MARKER entry (found among the processes whose pids were
//   handed out since the guard started), reaps, and repeats until none is left
//   (bounded), then exits as the agent did: its exit code, or its
//   terminating signal re-raised (core dumps off), so the runner's
//   exit_code/term_signal stay truthful.
//
// Signals are taken only through a signalfd: no handler runs, so nothing
// here needs to be async-signal-safe except the forked child before exec.

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/process_tree.hpp"

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

/// The longest the final sweep keeps trying (a process in uninterruptible
/// sleep may take its time to die); the runner kills the group after that.
constexpr std::chrono::milliseconds k_sweep_limit{2'000};
/// How long one sweep round waits for SIGCHLD before looking again.
constexpr int k_sweep_tick_ms = 10;

constexpr int k_exit_failure = 127;

/// Writes a 5-byte status record; a pipe write of that size is atomic.
void report(int fd, char tag, int32_t value) {
  if (fd < 0)
    return;
  char record[5];
  record[0] = tag;
  std::memcpy(record + 1, &value, sizeof value);
  ssize_t rc;
  do {
    rc = write(fd, record, sizeof record);
  } while (rc < 0 && errno == EINTR);
}

class guard {
public:
  guard(pid_t parent, int status_fd) : parent_(parent), status_fd_(status_fd) {
    if (const char* marker
        = std::getenv(std::string{orch::proc::marker_name}.c_str()))
      marker_ = std::string{orch::proc::marker_name} + "=" + marker;
    orch::proc::proc_info self;
    if (orch::proc::read_info(getpid(), self))
      started_ = self.start;
    pids_ = orch::proc::mark_pids();
  }

  int run(char* program, char** argv) {
    sigset_t handled;
    sigemptyset(&handled);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD,
                    SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU})
      sigaddset(&handled, sig);
    sigset_t original;
    sigprocmask(SIG_BLOCK, &handled, &original);
    sfd_ = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd_ < 0)
      return fail(errno);
    // SIGUSR2 rather than SIGKILL: the guard must live to sweep.
    if (prctl(PR_SET_PDEATHSIG, SIGUSR2) != 0)
      return fail(errno);
    if (getppid() != parent_)
      return fail(ESRCH); // the runner is gone already
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
      return fail(errno);
    if (status_fd_ >= 0)
      fcntl(status_fd_, F_SETFD, FD_CLOEXEC);

    agent_ = fork();
    if (agent_ < 0)
      return fail(errno);
    if (agent_ == 0) {
      // The child: only async-signal-safe calls until exec.
      setpgid(0, 0);
      sigprocmask(SIG_SETMASK, &original, nullptr);
      execve(program, argv, environ);
      report(status_fd_, 'e', errno);
      _exit(k_exit_failure);
    }
    // Both sides set the group, whoever runs first; then the guard joins it.
    setpgid(agent_, agent_);
    setpgid(0, agent_);
    group_ = getpgrp();
    report(status_fd_, 'p', agent_);
    if (status_fd_ >= 0)
      close(status_fd_);
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
      for (int fd = 0; fd <= 2; ++fd)
        dup2(null_fd, fd);
      if (null_fd > 2)
        close(null_fd);
    }

    while (!agent_done_ && !kill_now_)
      wait_and_handle(-1);
    sweep();
    return finish();
  }

private:
  int fail(int error) {
    report(status_fd_, 'e', error);
    return k_exit_failure;
  }

  /// Waits up to `timeout_ms` (-1: forever) for signals and handles them.
  void wait_and_handle(int timeout_ms) {
    pollfd p{sfd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
      return;
    signalfd_siginfo si;
    while (read(sfd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      auto sender = static_cast<pid_t>(si.ssi_pid);
      switch (static_cast<int>(si.ssi_signo)) {
        case SIGCHLD:
          reap();
          break;
        case SIGUSR1:
          if (sender == parent_)
            kill_now_ = true;
          break;
        case SIGUSR2:
          break; // the parent check below decides
        case SIGTERM:
        case SIGINT:
        case SIGHUP:
        case SIGQUIT:
          if (!kill_now_)
            forward(static_cast<int>(si.ssi_signo), sender);
          break;
        default:
          break; // SIGPIPE, job control: ignored
      }
    }
    if (getppid() != parent_)
      kill_now_ = true; // the runner died: nobody else will stop the agent
    reap();
  }

  void reap() {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == agent_) {
        agent_done_ = true;
        agent_status_ = status;
      }
    }
  }

  /// The processes of this run now: the tree below the guard, then the
  /// marked processes outside it.
  std::vector<orch::proc::proc_info> members(bool& marked_outside) const {
    // Everything of the run started after us: only pids handed out since.
    auto all = orch::proc::snapshot_since(pids_);
    auto tree = orch::proc::descendants(all, getpid());
    marked_outside = false;
    if (!marker_.empty()) {
      for (const auto& p : all) {
        if (p.pid == getpid() || p.dead())
          continue;
        bool in_tree = false;
        for (const auto& t : tree)
          in_tree = in_tree || t.pid == p.pid;
        if (!in_tree && orch::proc::marked_since(p, started_, marker_)) {
          tree.push_back(p);
          marked_outside = true;
        }
      }
    }
    return tree;
  }

  void forward(int sig, pid_t sender) {
    bool unused = false;
    auto tree = members(unused);
    bool from_parent = sender == parent_;
    if (!from_parent)
      for (const auto& p : tree)
        if (p.pid == sender)
          return; // the agent signalled its own group: not ours to spread
    for (const auto& p : tree) {
      if (p.dead() || (from_parent && p.pgrp == group_))
        continue;
      orch::proc::signal_checked(p, sig);
      orch::proc::signal_checked(p, SIGCONT);
    }
  }

  /// SIGKILL to every member until none is left or the time is up.
  void sweep() {
    auto until = clock_type::now() + k_sweep_limit;
    for (;;) {
      reap();
      bool marked_outside = false;
      auto tree = members(marked_outside);
      bool alive = false;
      for (const auto& p : tree) {
        if (p.dead())
          continue;
        alive = true;
        orch::proc::signal_checked(p, SIGKILL);
      }
      reap();
      // Done when nothing of the tree is left, not even a zombie to reap.
      if (!alive && tree.empty())
        return;
      if (clock_type::now() >= until)
        return;
      wait_and_handle(k_sweep_tick_ms);
    }
  }

  int finish() {
    if (!agent_done_)
      return 128 + SIGKILL; // not reaped in time: report a kill
    if (WIFEXITED(agent_status_))
      return WEXITSTATUS(agent_status_);
    if (!WIFSIGNALED(agent_status_))
      return k_exit_failure;
    int sig = WTERMSIG(agent_status_);
    // Die of the same signal, without leaving a core file in the workspace.
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
    raise(sig);
    return 128 + sig;
  }

  pid_t parent_;
  int status_fd_;
  std::string marker_;
  /// Our start time: only processes started since can carry the marker.
  unsigned long long started_ = 0;
  /// Pid allocation at our start: the agent and all it starts come after.
  orch::proc::pid_mark pids_;
  int sfd_ = -1;
  pid_t agent_ = -1;
  pid_t group_ = -1;
  bool agent_done_ = false;
  int agent_status_ = 0;
  bool kill_now_ = false;
};

} // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: ai-orchestrator-agent-guard <runner pid> "
                         "<status fd> <program> <argv0> [args...]\n"
                         "Runs an agent for ai-orchestrator; not meant to be "
                         "started by hand.\n");
    return 2;
  }
  auto parent = static_cast<pid_t>(std::strtol(argv[1], nullptr, 10));
  int status_fd = static_cast<int>(std::strtol(argv[2], nullptr, 10));
  guard g{parent, status_fd};
  return g.run(argv[3], argv + 4);
}
