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
//
// Serving mode, the runner's default (runtime/guard_protocol.hpp):
//
//   ai-orchestrator-agent-guard --serve <runner pid> <socket fd>
//
// starts once per orchestrator (and per agent call running at the same
// time) and then serves one agent call after the other, so that a call costs
// no fork and exec of its own besides the agent's. It is a child subreaper
// for its whole life, in a process group of its own (a Ctrl-C meant for the
// orchestrator does not reach it), and serves one call at a time, so every
// process below it belongs to the call it serves. Per call it:
// - receives the program, argv, environment, working directory and the
//   stdio descriptors, and posix_spawns the agent as the leader of a new
//   process group (default signals, empty mask, no other descriptor);
// - sends the agent's pid with a pidfd of it: the runner signals the
//   agent's group through that pidfd (pidfd_send_signal with
//   PIDFD_SIGNAL_PROCESS_GROUP names the group by the pid the pidfd holds,
//   so a reused group id is never hit), and so does the guard;
// - on 't' passes SIGTERM on to the descendants outside the group; on 'k',
//   when the agent exits, and when the socket closes (the runner is done or
//   dead, even by SIGKILL: the kernel closes its end) it SIGKILLs the group,
//   every descendant and every marked process, as above, reaps, and reports
//   the agent's wait status; then it waits for the next call, or exits when
//   the socket closed or something of the call could not be killed.
// It is not in the agent's group: the agent cannot stop it with a group
// signal, and the runner's group SIGKILL does not end it.

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
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/guard_protocol.hpp"
#include "runtime/process_tree.hpp"

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

/// The longest the final sweep keeps trying (a process in uninterruptible
/// sleep may take its time to die); the runner kills the group after that.
constexpr std::chrono::milliseconds k_sweep_limit{2'000};
/// How long the sweep looks again at a process that read with no
/// environment (one in the middle of execve) before taking it for unmarked.
constexpr std::chrono::milliseconds k_unsure_limit{100};
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

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#  define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2)
#endif

/// The signals the guard takes through its signalfd.
sigset_t handled_signals() {
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD,
                  SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU})
    sigaddset(&handled, sig);
  return handled;
}

/// Now in clock ticks since boot, as /proc/<pid>/stat counts start times,
/// one tick early: a process started from here on has a start time at or
/// after it.
unsigned long long boot_ticks_now() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0)
    hz = 100;
  auto ticks = static_cast<unsigned long long>(ts.tv_sec)
                 * static_cast<unsigned long long>(hz)
               + static_cast<unsigned long long>(ts.tv_nsec)
                   / (1'000'000'000ULL / static_cast<unsigned long long>(hz));
  return ticks > 0 ? ticks - 1 : 0;
}

/// One agent call: the per-invocation guard (status_fd, exec mode) or one
/// call of a serving guard (sock).
class guard {
public:
  guard(pid_t parent, int status_fd, int sock, int sfd)
    : parent_(parent), status_fd_(status_fd), sock_(sock), sfd_(sfd) {}

  /// Exec mode: the marker comes from our own environment.
  void init_exec() {
    if (const char* marker
        = std::getenv(std::string{orch::proc::marker_name}.c_str()))
      marker_ = std::string{orch::proc::marker_name} + "=" + marker;
    orch::proc::proc_info self;
    if (orch::proc::read_info(getpid(), self))
      started_ = self.start;
    pids_ = orch::proc::mark_pids();
  }

  int run(char* program, char** argv) {
    sigset_t handled = handled_signals();
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

  /// Serving mode: runs the call `req` with the stdio descriptors `fds`
  /// (closed here). Returns false when the guard must exit afterwards (the
  /// runner is gone, or something of the call could not be killed).
  bool serve_call(const orch::guard_protocol::request& req, int* fds,
                  std::size_t nfds) {
    namespace gp = orch::guard_protocol;
    const std::string prefix = std::string{orch::proc::marker_name} + "=";
    for (const auto& entry : req.envp)
      if (entry.compare(0, prefix.size(), prefix) == 0)
        marker_ = entry;
    started_ = boot_ticks_now();
    pids_ = orch::proc::mark_pids();
    int error = spawn_agent(req, fds, nfds);
    for (std::size_t i = 0; i < nfds; ++i)
      close(fds[i]);
    if (error != 0) {
      return gp::send_record(sock_, {gp::error_tag, error, 0}) == 0;
    }
    group_ = agent_;
    // A pidfd of our own unreaped child: it is the agent.
    agent_pidfd_ = orch::proc::open_pidfd(agent_);
    if (agent_pidfd_ < 0
        || gp::send_record(sock_, {gp::started_tag, agent_, 0}, agent_pidfd_)
             != 0)
      kill_now_ = true; // the runner cannot follow the call: end it
    while (!agent_done_ && !kill_now_)
      wait_and_handle(-1);
    sweep();
    bool clean = clean_;
    int status = agent_done_ ? agent_status_ : SIGKILL; // killed, unreaped
    if (agent_pidfd_ >= 0)
      close(agent_pidfd_);
    if (gp::send_record(sock_, {gp::exited_tag, status, clean ? 1 : 0}) != 0)
      runner_gone_ = true;
    return clean && !runner_gone_;
  }

private:
  int fail(int error) {
    report(status_fd_, 'e', error);
    return k_exit_failure;
  }

  /// posix_spawn of the agent for a serving guard; 0 or an errno.
  int spawn_agent(const orch::guard_protocol::request& req, int* fds,
                  std::size_t nfds) {
    bool with_stdin = (req.flags & orch::guard_protocol::flag_stdin) != 0;
    if (nfds != (with_stdin ? 3u : 2u) || req.argv.empty())
      return EINVAL;
    std::vector<char*> argv;
    for (const auto& a : req.argv)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : req.envp)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int error = posix_spawn_file_actions_init(&actions);
    if (error != 0)
      return error;
    error = posix_spawnattr_init(&attr);
    if (error != 0) {
      posix_spawn_file_actions_destroy(&actions);
      return error;
    }
    auto step = [&error](int rc) {
      if (error == 0)
        error = rc;
    };
    // The descriptors we received are all above 2 (our stdio is /dev/null).
    std::size_t next = 0;
    if (with_stdin)
      step(posix_spawn_file_actions_adddup2(&actions, fds[next++], 0));
    else
      step(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY,
                                            0));
    step(posix_spawn_file_actions_adddup2(&actions, fds[next++], 1));
    step(posix_spawn_file_actions_adddup2(&actions, fds[next++], 2));
    if (!req.cwd.empty())
      step(posix_spawn_file_actions_addchdir_np(&actions, req.cwd.c_str()));
#ifdef __GLIBC__
#  if __GLIBC_PREREQ(2, 34)
    step(posix_spawn_file_actions_addclosefrom_np(&actions, 3));
#  endif
#endif
    step(posix_spawnattr_setpgroup(&attr, 0));
    // Nothing is ignored in this process (it was started with default
    // signals and installs no handler): only the mask needs resetting.
    sigset_t none;
    sigemptyset(&none);
    step(posix_spawnattr_setsigmask(&attr, &none));
    step(posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP
                                           | POSIX_SPAWN_SETSIGMASK));
    pid_t pid = -1;
    if (error == 0)
      error = posix_spawn(&pid, req.program.c_str(), &actions, &attr,
                          argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (error == 0)
      agent_ = pid;
    return error;
  }

  /// Waits up to `timeout_ms` (-1: forever) for signals (and, serving, the
  /// runner's commands) and handles them.
  void wait_and_handle(int timeout_ms) {
    pollfd p[2] = {{sfd_, POLLIN, 0}, {sock_, POLLIN, 0}};
    nfds_t n = sock_ >= 0 && !runner_gone_ ? 2 : 1;
    if (poll(p, n, timeout_ms) <= 0)
      return;
    if (n == 2 && p[1].revents != 0)
      read_command();
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

  void read_command() {
    char c = 0;
    ssize_t rc = recv(sock_, &c, 1, MSG_DONTWAIT);
    if (rc < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (rc <= 0) {
      // The runner closed its end or died: end the call, then exit.
      runner_gone_ = true;
      kill_now_ = true;
      return;
    }
    if (c == orch::guard_protocol::kill_command)
      kill_now_ = true;
    else if (c == orch::guard_protocol::term_command && !kill_now_)
      forward(SIGTERM, parent_);
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
  /// marked processes outside it. `unsure` tells of a process outside the
  /// tree that read with no environment (one in the middle of execve).
  std::vector<orch::proc::proc_info> members(bool& marked_outside,
                                             bool& unsure) const {
    // Everything of the run started after us: only pids handed out since.
    auto all = orch::proc::snapshot_since(pids_);
    auto tree = orch::proc::descendants(all, getpid());
    marked_outside = false;
    unsure = false;
    if (!marker_.empty()) {
      for (const auto& p : all) {
        if (p.pid == getpid() || p.dead())
          continue;
        bool in_tree = false;
        for (const auto& t : tree)
          in_tree = in_tree || t.pid == p.pid;
        if (in_tree)
          continue;
        auto found = orch::proc::marked_since(p, started_, marker_);
        if (found == orch::proc::mark::present) {
          tree.push_back(p);
          marked_outside = true;
        } else if (found == orch::proc::mark::unknown && !p.kernel_thread()) {
          unsure = true;
        }
      }
    }
    return tree;
  }

  void forward(int sig, pid_t sender) {
    bool unused = false;
    bool unsure = false;
    auto tree = members(unused, unsure);
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
    // Serving: the agent's group first, named by the pidfd (safe even when
    // the agent has been reaped: the group is the one its pid led).
    if (agent_pidfd_ >= 0)
      syscall(SYS_pidfd_send_signal, agent_pidfd_, SIGKILL, nullptr,
              PIDFD_SIGNAL_PROCESS_GROUP);
    auto start = clock_type::now();
    auto until = start + k_sweep_limit;
    for (;;) {
      reap();
      bool marked_outside = false;
      bool unsure = false;
      auto tree = members(marked_outside, unsure);
      bool alive = false;
      for (const auto& p : tree) {
        if (p.dead())
          continue;
        alive = true;
        orch::proc::signal_checked(p, SIGKILL);
      }
      reap();
      // Done when nothing of the tree is left, not even a zombie to reap,
      // and no process outside it may still turn out to be marked.
      if (!alive && tree.empty()
          && (!unsure || clock_type::now() >= start + k_unsure_limit)) {
        clean_ = true;
        return;
      }
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
  /// Serving mode: the socket to the runner; -1 in exec mode.
  int sock_;
  std::string marker_;
  /// Our start time: only processes started since can carry the marker.
  unsigned long long started_ = 0;
  /// Pid allocation at our start: the agent and all it starts come after.
  orch::proc::pid_mark pids_;
  int sfd_ = -1;
  pid_t agent_ = -1;
  int agent_pidfd_ = -1;
  pid_t group_ = -1;
  bool agent_done_ = false;
  int agent_status_ = 0;
  bool kill_now_ = false;
  bool runner_gone_ = false;
  bool clean_ = false;
};

/// Serving mode: one call after the other until the socket closes.
int serve(pid_t parent, int sock) {
  namespace gp = orch::guard_protocol;
  sigset_t handled = handled_signals();
  sigprocmask(SIG_BLOCK, &handled, nullptr);
  int sfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    return k_exit_failure;
  fcntl(sock, F_SETFD, FD_CLOEXEC);
  for (;;) {
    // Idle: wait for a request; a stop signal from anyone ends the guard.
    pollfd p[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return k_exit_failure;
    }
    if (p[1].revents != 0) {
      signalfd_siginfo si;
      bool stop = false;
      while (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        int sig = static_cast<int>(si.ssi_signo);
        stop = stop || sig == SIGTERM || sig == SIGINT || sig == SIGHUP
               || sig == SIGQUIT;
      }
      // Strays of an earlier call cannot exist (each call left none), but
      // reap whatever comes.
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      if (stop || getppid() != parent)
        return 0;
    }
    if (p[0].revents == 0)
      continue;
    // A command the runner sent as the last call ended may come first:
    // it was meant for that call. The request's descriptors come with its
    // first byte.
    char tag = 0;
    int fds[4] = {-1, -1, -1, -1};
    std::size_t nfds = 0;
    int rc = gp::recv_with_fds(sock, &tag, 1, fds, 4, nfds, -1);
    auto close_fds = [&] {
      for (std::size_t i = 0; i < nfds; ++i)
        close(fds[i]);
    };
    if (rc == 0 && nfds == 0
        && (tag == gp::term_command || tag == gp::kill_command))
      continue;
    char length[4];
    std::size_t none = 0;
    if (rc != 0 || tag != gp::request_tag
        || gp::recv_with_fds(sock, length, sizeof length, nullptr, 0, none,
                             10'000)
             != 0) {
      close_fds();
      return 0; // closed (the orchestrator is done or gone), or garbage
    }
    std::uint32_t size = 0;
    std::memcpy(&size, length, 4);
    std::string body(size <= gp::max_body ? size : 0, '\0');
    std::size_t ignored = 0;
    gp::request req;
    if (size > gp::max_body
        || (size > 0
            && gp::recv_with_fds(sock, body.data(), size, nullptr, 0, ignored,
                                 10'000)
                 != 0)
        || !gp::decode_body(body, req)) {
      close_fds();
      return k_exit_failure;
    }
    guard g{parent, -1, sock, sfd};
    if (!g.serve_call(req, fds, nfds))
      return 0;
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 4
      && std::strcmp(argv[1], orch::guard_protocol::serve_flag) == 0) {
    auto parent = static_cast<pid_t>(std::strtol(argv[2], nullptr, 10));
    int sock = static_cast<int>(std::strtol(argv[3], nullptr, 10));
    return serve(parent, sock);
  }
  if (argc < 5) {
    std::fprintf(stderr, "usage: ai-orchestrator-agent-guard <runner pid> "
                         "<status fd> <program> <argv0> [args...]\n"
                         "Runs an agent for ai-orchestrator; not meant to be "
                         "started by hand.\n");
    return 2;
  }
  auto parent = static_cast<pid_t>(std::strtol(argv[1], nullptr, 10));
  int status_fd = static_cast<int>(std::strtol(argv[2], nullptr, 10));
  guard g{parent, status_fd, -1, -1};
  g.init_exec();
  return g.run(argv[3], argv + 4);
}
