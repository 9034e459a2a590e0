// The posix_spawn process runner.
//
// One run() is one poll() loop over: the child's stdout and stderr, its stdin
// (while there is input left to write), a pidfd of the child (readable once
// it exits) and the cancel token. Every wait is a poll() with a timeout
// computed from the next deadline; nothing sleeps. A stop (cancel, Ctrl-C)
// comes only through the cancel token: signals are messages to the actors
// (actors/signals.hpp), never a flag read here.
//
// Process-group discipline: the agent leads its own group (pgid == its pid).
// The process we wait for is reaped only after kill(-pgid, SIGKILL) went to
// the rest of the group; until then its zombie, a member of the group, pins
// the group id, so the group signal can never hit an unrelated group that
// reused the number.
//
// No process of an agent may outlive its run. The agent is started through
// the guard program (agent_guard.cpp, built as ai-orchestrator-agent-guard):
// we spawn the guard, the guard forks and execs the agent in a new group led
// by the agent and joins that group. The guard is a child subreaper with a
// parent-death signal: it kills every descendant of the agent (also those
// that left the group with setsid) when the agent exits, when we send it
// SIGUSR1 (the SIGKILL step of a stop), and when this process dies, even by
// SIGKILL. Every run also gets a unique ORCH_RUN_MARKER=<id> environment
// entry; the guard and, as a backstop, this runner (once the guard or the
// agent exited) SIGKILL every process whose environment carries it.
//
// By default the guard serves (agent_guard.cpp --serve, protocol in
// guard_protocol.hpp): one guard process per agent call running at once,
// started on first use and reused call after call (guard_pool below), so
// a call costs no fork and exec besides the agent's. It posix_spawns the
// agent in its own group and hands us a pidfd of it; we signal the group
// through that pidfd (pidfd_send_signal with PIDFD_SIGNAL_PROCESS_GROUP,
// Linux 6.9), so a group id that was reused is never hit. A stop is 't'
// (SIGTERM went to the group: pass it on) and 'k' (kill everything) on
// the socket; the guard reports the agent's wait status once everything of
// the call is dead. Our death closes the socket: the guard kills the call
// and exits. A guard that dies mid-call ends the call: we SIGKILL the
// group through the pidfd and sweep the marker. A guard that does not
// answer within the backstop is killed and replaced. Without the kernel
// support, or with ORCH_AGENT_GUARD_POOL=0, a guard is started per call as
// described above.
//
// The guard is looked up in this order: $ORCH_AGENT_GUARD (a path; "none"
// turns the guard off), ai-orchestrator-agent-guard next to /proc/self/exe,
// the build tree's copy (ORCH_AGENT_GUARD_PATH, compiled in). Fallback when
// none is found: the agent is spawned directly, as its own group leader, and
// only the group kill plus the marker sweep remain: a descendant that left
// the group and scrubbed its environment survives, and nothing stops the
// agents when this process is killed with SIGKILL. This process is not made
// a child subreaper in that mode: with several runs at once it could not
// tell which run an orphan belongs to without the marker, and reaping with
// waitpid(-1) would steal another run's leader.
//
// What still escapes, with the guard: a process the agent gets started by
// someone outside its tree (systemd-run --user, D-Bus activation, at/cron,
// an already running tmux server, ssh localhost, a container daemon) that
// does not inherit the marker; a process of another user (setuid programs,
// sudo): it can be neither signalled nor identified; and, since the agent
// runs as our user, an agent that kills or stops its guard: its orphans go
// to init, and only the group kill and our marker sweep remain, which miss
// a process that left the group and dropped or overwrote its environment.
// The sweeps are bounded (2 s in the guard, 1 s here): a process stuck in
// uninterruptible sleep, or a fork bomb outpacing the rounds, may outlast
// them.

#include "runtime/agent_guards.hpp"
#include "runtime/guard_protocol.hpp"
#include "runtime/process.hpp"
#include "runtime/process_tree.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace orch {
namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t k_read_chunk = std::size_t{64} * 1024;
constexpr std::size_t k_write_chunk = std::size_t{64} * 1024;
// Without a pidfd (kernel < 5.3 or a seccomp filter) the leader's exit is
// checked with waitid(WNOHANG) at this interval.
constexpr milliseconds k_no_pidfd_tick{10};
// After the leader exited and its group got SIGKILL, the pipes normally hit
// EOF at once. Someone outside the group (setsid) may still hold them; we
// then give up reading after max(kill_grace, this).
constexpr milliseconds k_min_drain{100};
// The guard gets this long to kill everything after our SIGUSR1 before we
// SIGKILL the group and the guard ourselves.
constexpr milliseconds k_guard_backstop{3'000};
// Bounds the wait for the guard's status records after the spawn.
constexpr milliseconds k_guard_status_wait{10'000};
// Bounds our own sweep of the processes that carry the run's marker.
constexpr milliseconds k_sweep_wait{1'000};
// How long the sweep looks again at a process that read with no environment
// (one in the middle of execve) before taking it for unmarked.
constexpr milliseconds k_unsure_wait{100};
// The guard's status records reach it as this descriptor.
constexpr int k_guard_status_fd = 3;
constexpr const char* k_guard_name = "ai-orchestrator-agent-guard";

/// Owns a file descriptor.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other)
      reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() {
    reset();
  }

  int get() const noexcept {
    return fd_;
  }
  bool valid() const noexcept {
    return fd_ >= 0;
  }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }
  int release_fd() noexcept {
    return std::exchange(fd_, -1);
  }

private:
  int fd_ = -1;
};

/// Creates a close-on-exec pipe whose ends are both above 2, so the dup2
/// file actions that set up the child's stdio cannot clobber one another
/// even when this process runs with a closed stdin/stdout/stderr.
int make_pipe(unique_fd& read_end, unique_fd& write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return errno;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  for (unique_fd* end : {&read_end, &write_end}) {
    if (end->get() > 2)
      continue;
    int moved = fcntl(end->get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0)
      return errno;
    end->reset(moved);
  }
  return 0;
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0)
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/// Sets `attr` up for a child in its own process group with every signal at
/// its default action and none blocked; the first error, or 0.
int own_group_default_signals(posix_spawnattr_t& attr) {
  int rc = posix_spawnattr_setpgroup(&attr, 0);
  sigset_t all;
  sigfillset(&all);
  if (rc == 0)
    rc = posix_spawnattr_setsigdefault(&attr, &all);
  sigset_t none;
  sigemptyset(&none);
  if (rc == 0)
    rc = posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0)
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP
                                           | POSIX_SPAWN_SETSIGDEF
                                           | POSIX_SPAWN_SETSIGMASK);
  return rc;
}

/// Returns 0 when `path` is an executable regular file, else the errno
/// execve would report for it.
int executable_status(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return errno;
  if (!S_ISREG(st.st_mode))
    return EACCES;
  if (faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) != 0)
    return errno;
  return 0;
}

/// The PATH to search: the entry of `env`, else this process's PATH, else
/// the same default as execvp.
std::string search_path(const std::vector<std::string>& env) {
  for (const auto& entry : env)
    if (entry.compare(0, 5, "PATH=") == 0)
      return entry.substr(5);
  if (const char* path = std::getenv("PATH"))
    return path;
  return "/bin:/usr/bin";
}

/// find_executable with the reason of a failure. A relative name with a
/// slash is checked below `base_dir` (the child's future working directory,
/// where exec will resolve it) but returned relative.
std::string resolve_executable(const std::string& name,
                               const std::vector<std::string>& env,
                               const std::string& base_dir, int& error) {
  auto probe_path = [&](const std::string& candidate) {
    if (candidate.front() == '/' || base_dir.empty())
      return candidate;
    return base_dir + "/" + candidate;
  };
  error = 0;
  if (name.empty()) {
    error = ENOENT;
    return {};
  }
  if (name.find('/') != std::string::npos) {
    error = executable_status(probe_path(name));
    return error == 0 ? name : std::string{};
  }
  // As execvp: a match that is not executable is reported as EACCES, but
  // only when no later directory has an executable one.
  bool saw_eacces = false;
  const std::string path = search_path(env);
  std::size_t begin = 0;
  for (;;) {
    std::size_t end = path.find(':', begin);
    std::string dir = path.substr(
      begin, end == std::string::npos ? std::string::npos : end - begin);
    // POSIX reads an empty or relative element against the current
    // directory, which for an agent is the workspace: a file an agent wrote
    // there, named like another agent, would run in a later step. Only
    // absolute elements count.
    if (!dir.empty() && dir.front() == '/') {
      std::string candidate = dir + "/" + name;
      int status = executable_status(candidate);
      if (status == 0)
        return candidate;
      if (status == EACCES)
        saw_eacces = true;
    }
    if (end == std::string::npos)
      break;
    begin = end + 1;
  }
  error = saw_eacces ? EACCES : ENOENT;
  return {};
}

/// Blocks SIGPIPE in the calling thread for its lifetime, so a write to the
/// stdin of a child that is gone fails with EPIPE instead of killing us, and
/// without touching the process-wide disposition.
class sigpipe_block {
public:
  sigpipe_block() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &saved_);
  }
  ~sigpipe_block() {
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  sigpipe_block(const sigpipe_block&) = delete;
  sigpipe_block& operator=(const sigpipe_block&) = delete;

  /// write() that never raises SIGPIPE: the signal a failed write leaves
  /// pending is consumed, unless one was pending already.
  static ssize_t write(int fd, const char* data, std::size_t size) {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    ssize_t rc = ::write(fd, data, size);
    if (rc < 0 && errno == EPIPE && !was_pending) {
      int saved = errno;
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&set, nullptr, &zero) < 0 && errno == EINTR) {
      }
      errno = saved;
    }
    return rc;
  }

private:
  sigset_t saved_;
};

/// Returns the guard program, or an empty string (see the top of the file).
std::string find_guard() {
  if (const char* given = std::getenv("ORCH_AGENT_GUARD")) {
    if (std::strcmp(given, "none") == 0)
      return {};
    if (*given != '\0' && executable_status(given) == 0)
      return given;
  }
  char self[PATH_MAX];
  ssize_t size = readlink("/proc/self/exe", self, sizeof self - 1);
  if (size > 0) {
    std::string path(self, static_cast<std::size_t>(size));
    auto slash = path.rfind('/');
    if (slash != std::string::npos) {
      path = path.substr(0, slash + 1) + k_guard_name;
      if (executable_status(path) == 0)
        return path;
    }
  }
#ifdef ORCH_AGENT_GUARD_PATH
  if (executable_status(ORCH_AGENT_GUARD_PATH) == 0)
    return ORCH_AGENT_GUARD_PATH;
#endif
  return {};
}

/// Returns a marker value no other run shares: our pid, a counter and 64
/// random bits.
std::string make_marker() {
  static std::atomic<unsigned> counter{0};
  uint64_t random = 0;
  if (getrandom(&random, sizeof random, GRND_NONBLOCK)
      != static_cast<ssize_t>(sizeof random))
    random
      = static_cast<uint64_t>(clock_type::now().time_since_epoch().count());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%d-%u-%016llx", static_cast<int>(getpid()),
                ++counter, static_cast<unsigned long long>(random));
  return buf;
}

milliseconds elapsed_since(clock_type::time_point start) {
  return std::chrono::duration_cast<milliseconds>(clock_type::now() - start);
}

/// Milliseconds for poll() until `when`, rounded up so that the loop never
/// wakes just before a deadline and spins.
int poll_timeout(clock_type::time_point now, clock_type::time_point when) {
  if (when <= now)
    return 0;
  auto ms = std::chrono::ceil<milliseconds>(when - now).count();
  return static_cast<int>(std::min<decltype(ms)>(ms, INT_MAX));
}

/// SIGKILLs every process whose environment holds `entry` (the run's
/// marker), round after round until none is left or k_sweep_wait passed.
/// Waits for the killed ones on pidfds. A process caught in the middle of
/// execve reads with no environment: it is looked at again for a little
/// while (k_unsure_wait) before it counts as unmarked.
void sweep_marked(const std::string& entry, unsigned long long since,
                  const proc::pid_mark& pids) {
  const auto start = clock_type::now();
  const auto until = start + k_sweep_wait;
  const auto unsure_until = start + k_unsure_wait;
  const pid_t self = getpid();
  for (;;) {
    std::vector<unique_fd> killed;
    bool unsure = false;
    for (const auto& p : proc::snapshot_since(pids)) {
      if (p.pid == self || p.dead())
        continue;
      auto found = proc::marked_since(p, since, entry);
      if (found == proc::mark::unknown && !p.kernel_thread())
        unsure = true;
      if (found != proc::mark::present)
        continue;
      unique_fd pidfd{proc::open_pidfd(p.pid)};
      if (proc::signal_checked(p, SIGKILL, entry) && pidfd.valid())
        killed.push_back(std::move(pidfd));
    }
    if (killed.empty()) {
      if (!unsure || clock_type::now() >= unsure_until)
        return;
      // Nothing to wait on: the exec finishes in microseconds.
      poll(nullptr, 0, 1);
      continue;
    }
    for (auto& pidfd : killed) {
      auto now = clock_type::now();
      if (now >= until)
        return;
      pollfd p{pidfd.get(), POLLIN, 0};
      poll(&p, 1, poll_timeout(now, until));
    }
    if (clock_type::now() >= until)
      return;
  }
}

// -- the pool of serving guards -----------------------------------------------

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#  define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2)
#endif
#ifndef P_PIDFD
#  define P_PIDFD 3
#endif

/// pidfd_send_signal through the raw syscall; -1 with errno on failure.
int pidfd_signal(int pidfd, int sig, unsigned flags = 0) {
  return static_cast<int>(
    syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, flags));
}

/// True when this kernel names a process group by a pidfd (Linux 6.9):
/// what the runner needs to signal a group it did not start itself.
bool pidfd_groups_supported() {
  static const bool supported = [] {
    int self = proc::open_pidfd(getpid());
    if (self < 0)
      return false;
    // Signal 0 to the group our pid would lead: 0 or ESRCH when the flag is
    // known, EINVAL when it is not.
    int rc = pidfd_signal(self, 0, PIDFD_SIGNAL_PROCESS_GROUP);
    bool ok = rc == 0 || errno == ESRCH || errno == EPERM;
    ::close(self);
    return ok;
  }();
  return supported;
}

/// True when agent calls go through serving guards: unless
/// $ORCH_AGENT_GUARD_POOL is "0" (one guard started per call, as on kernels
/// before 6.9, which cannot name a group by a pidfd).
bool pool_enabled() {
  const char* given = std::getenv("ORCH_AGENT_GUARD_POOL");
  if (given != nullptr && std::strcmp(given, "0") == 0)
    return false;
  return pidfd_groups_supported();
}

/// One serving guard: our end of its socket, its pid and a pidfd of it.
struct guard_conn {
  int sock = -1;
  pid_t pid = -1;
  int pidfd = -1;
  std::string path;
};

/// The serving guards of this process: idle ones wait here between calls;
/// a call takes one (starting a new one when none is idle) and gives it
/// back when it ended cleanly. Guards that are dropped are reaped through
/// their pidfds later (never by pid alone, never with waitpid(-1)).
class guard_pool {
public:
  static guard_pool& instance() {
    static guard_pool* pool = [] {
      auto* p = new guard_pool; // never destroyed: used until exit
      pthread_atfork(&guard_pool::before_fork, &guard_pool::after_fork_parent,
                     &guard_pool::after_fork_child);
      return p;
    }();
    return *pool;
  }

  /// Returns an idle guard for `path`, or a new one; nullopt when none
  /// can be started.
  std::optional<guard_conn> acquire(const std::string& path) {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      reap_dropped_locked();
      // The most recently used first: call after call runs on one guard.
      for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
        if (it->path != path)
          continue;
        guard_conn c = *it;
        idle_.erase(std::next(it).base());
        return c;
      }
    }
    return start(path);
  }

  /// Takes back a guard that finished a call cleanly.
  void release(guard_conn c) {
    std::lock_guard<std::mutex> lock{mutex_};
    if (idle_.size() < k_max_idle) {
      idle_.push_back(std::move(c));
      return;
    }
    drop_locked(c);
  }

  /// Closes our end (the guard ends whatever it runs and exits) and reaps
  /// the guard later.
  void drop(guard_conn c) {
    std::lock_guard<std::mutex> lock{mutex_};
    drop_locked(c);
  }

  /// Closes every idle guard and waits (bounded) until every guard we
  /// dropped has exited and is reaped.
  void shutdown(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock{mutex_};
    for (auto& c : idle_)
      drop_locked(c);
    idle_.clear();
    auto until = clock_type::now() + limit;
    while (!dropped_.empty() && clock_type::now() < until) {
      pollfd p{dropped_.front(), POLLIN, 0};
      auto left
        = std::chrono::duration_cast<milliseconds>(until - clock_type::now());
      lock.unlock();
      poll(&p, 1, static_cast<int>(std::max<long long>(1, left.count())));
      lock.lock();
      reap_dropped_locked();
    }
  }

  /// The pids of the idle guards.
  std::vector<pid_t> idle_pids() {
    std::lock_guard<std::mutex> lock{mutex_};
    std::vector<pid_t> out;
    for (const auto& c : idle_)
      out.push_back(c.pid);
    return out;
  }

private:
  static constexpr std::size_t k_max_idle = 8;

  std::optional<guard_conn> start(const std::string& path) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return std::nullopt;
    unique_fd mine{sv[0]};
    unique_fd theirs{sv[1]};
    // Its stdio is /dev/null: a guard that outlives us briefly must not
    // hold our output pipes open.
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    int error = 0;
    auto step = [&error](int rc) {
      if (error == 0)
        error = rc;
    };
    for (int fd = 0; fd <= 2; ++fd)
      step(posix_spawn_file_actions_addopen(&actions, fd, "/dev/null",
                                            fd == 0 ? O_RDONLY : O_WRONLY, 0));
    step(posix_spawn_file_actions_adddup2(&actions, theirs.get(), 3));
#ifdef __GLIBC__
#  if __GLIBC_PREREQ(2, 34)
    step(posix_spawn_file_actions_addclosefrom_np(&actions, 4));
#  endif
#endif
    // Its own process group: a Ctrl-C for us must not reach it. Default
    // signals: the agents it starts inherit what it ignores.
    step(own_group_default_signals(attr));
    std::string parent = std::to_string(getpid());
    std::string fd = "3";
    std::string flag = guard_protocol::serve_flag;
    char* argv[] = {const_cast<char*>(k_guard_name), flag.data(), parent.data(),
                    fd.data(), nullptr};
    char* envp[] = {nullptr};
    pid_t pid = -1;
    if (error == 0)
      error = posix_spawn(&pid, path.c_str(), &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (error != 0)
      return std::nullopt;
    guard_conn c;
    c.pid = pid;
    c.pidfd = proc::open_pidfd(pid);
    c.path = path;
    c.sock = mine.get();
    if (c.pidfd < 0) {
      // Cannot reap it safely later: stop it now.
      mine.reset();
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return std::nullopt;
    }
    (void)mine.release_fd();
    std::lock_guard<std::mutex> lock{mutex_};
    all_.push_back(c.sock);
    all_.push_back(c.pidfd);
    return c;
  }

  void forget_locked(int fd) {
    all_.erase(std::remove(all_.begin(), all_.end(), fd), all_.end());
  }

  void drop_locked(guard_conn& c) {
    if (c.sock >= 0) {
      forget_locked(c.sock);
      ::close(c.sock);
      c.sock = -1;
    }
    if (c.pidfd >= 0)
      dropped_.push_back(c.pidfd);
    c.pidfd = -1;
  }

  /// Reaps the dropped guards that have exited.
  void reap_dropped_locked() {
    for (auto it = dropped_.begin(); it != dropped_.end();) {
      siginfo_t info{};
      int rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(*it),
                      &info, WEXITED | WNOHANG);
      if (rc == 0 && info.si_pid == 0) {
        ++it; // still running
        continue;
      }
      // Reaped now, or by someone else already (ECHILD).
      forget_locked(*it);
      ::close(*it);
      it = dropped_.erase(it);
    }
  }

  static void before_fork() {
    instance().mutex_.lock();
  }
  static void after_fork_parent() {
    instance().mutex_.unlock();
  }
  /// A forked copy (no exec) must not share our guards: it closes its
  /// copies of every descriptor, so that our guards still see our end
  /// close when we die, and starts its own when it runs an agent.
  static void after_fork_child() {
    auto& pool = instance();
    for (int fd : pool.all_)
      ::close(fd);
    pool.all_.clear();
    pool.idle_.clear();
    pool.dropped_.clear();
    pool.mutex_.unlock();
  }

  std::mutex mutex_;
  std::vector<guard_conn> idle_;
  /// pidfds of guards to reap.
  std::vector<int> dropped_;
  /// Every descriptor of ours that leads to a guard (sockets, pidfds).
  std::vector<int> all_;
};

/// One output stream of the child: captures up to the cap and cuts lines.
struct stream_state {
  output_stream kind;
  unique_fd fd;
  std::string* sink = nullptr;
  std::size_t line_start = 0; // first byte not delivered as part of a line
  std::size_t scanned = 0;    // [line_start, scanned) holds no newline
  std::size_t dropped = 0;
};

/// The state of one run(). The destructor makes sure that no process is
/// left behind even when a callback throws.
class session {
public:
  session(const process_spec& spec, const line_callback& on_line,
          const cancel_token* cancel)
    : spec_(spec), on_line_(on_line), cancel_(cancel) {
    out_.kind = output_stream::out;
    out_.sink = &result_.out;
    err_.kind = output_stream::err;
    err_.sink = &result_.err;
  }

  ~session() {
    if (pooled_) {
      if (pid_ > 0 && !leader_exited_)
        stop_now();
    } else if (pid_ > 0 && !reaped_) {
      if (!leader_exited_)
        stop_now();
      reap();
    }
    if (pid_ > 0) {
      try {
        sweep_once();
      } catch (...) {
        // nop: best effort while unwinding (out of memory)
      }
    }
    finish_pooled();
  }

  session(const session&) = delete;
  session& operator=(const session&) = delete;

  process_result run() {
    start_ = clock_type::now();
    if (spec_.argv.empty()) {
      result_.spawn_errno = EINVAL;
    } else if (stop_requested()) {
      // Nothing is started once a stop was asked for.
      result_.cancelled = true;
      result_.spawn_errno = ECANCELED;
    } else if (spawn()) {
      loop();
    }
    result_.truncated = out_.dropped > 0 || err_.dropped > 0;
    result_.dropped_bytes = out_.dropped + err_.dropped;
    result_.elapsed = elapsed_since(start_);
    return std::move(result_);
  }

private:
  enum class phase {
    running,     // deadlines and stop requests are watched
    terminating, // SIGTERM sent, SIGKILL at kill_at_
    killing,     // SIGKILL sent, waiting for the leader to exit
    draining,    // leader reaped, reading what is left in the pipes
  };

  /// The child `pid` runs: its start time (nothing that started before it
  /// can carry its marker), and our ends of its pipes made non-blocking (an
  /// empty stdin closed at once).
  void mark_started(pid_t pid) {
    proc::proc_info child;
    if (proc::read_info(pid, child))
      started_ = child.start;
    result_.started = true;
    set_nonblocking(out_.fd.get());
    set_nonblocking(err_.fd.get());
    if (stdin_.valid()) {
      set_nonblocking(stdin_.get());
      if (spec_.stdin_data->empty())
        stdin_.reset();
    }
  }

  bool spawn() {
    // The program is resolved here, so that a missing or non-executable one
    // is reported as such (ENOENT, EACCES) and not hidden behind the guard.
    int error = 0;
    std::string path = resolve_executable(spec_.argv[0], spec_.env, spec_.cwd,
                                          error);
    if (path.empty()) {
      result_.spawn_errno = error;
      return false;
    }
    const std::string guard = find_guard();
    guarded_ = !guard.empty();
    pooled_ = guarded_ && pool_enabled();

    unique_fd in_read;
    unique_fd out_write;
    unique_fd err_write;
    unique_fd status_read;
    unique_fd status_write;
    if (spec_.stdin_data)
      error = make_pipe(in_read, stdin_);
    if (error == 0)
      error = make_pipe(out_.fd, out_write);
    if (error == 0)
      error = make_pipe(err_.fd, err_write);
    if (error == 0 && guarded_ && !pooled_)
      error = make_pipe(status_read, status_write);
    if (error != 0) {
      result_.spawn_errno = error;
      return false;
    }
    if (pooled_) {
      std::optional<bool> done = spawn_pooled(guard, path, in_read, out_write,
                                              err_write);
      if (done)
        return *done;
      // No serving guard could be had: one guard of our own for this call.
      pooled_ = false;
      error = make_pipe(status_read, status_write);
      if (error != 0) {
        result_.spawn_errno = error;
        return false;
      }
    }

    // guard <our pid> <status fd> <program> <argv0> [args...]
    std::vector<std::string> guard_args;
    if (guarded_)
      guard_args = {guard, std::to_string(getpid()),
                    std::to_string(k_guard_status_fd), path};
    std::vector<char*> argv;
    argv.reserve(guard_args.size() + spec_.argv.size() + 1);
    for (const auto& arg : guard_args)
      argv.push_back(const_cast<char*>(arg.c_str()));
    for (const auto& arg : spec_.argv)
      argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    // The environment of the spec, with this run's marker instead of any
    // marker it brought along (an orchestrator run by an agent).
    marker_ = std::string{proc::marker_name} + "=" + make_marker();
    const std::string marker_prefix = std::string{proc::marker_name} + "=";
    std::vector<char*> envp;
    envp.reserve(spec_.env.size() + 2);
    for (const auto& entry : spec_.env)
      if (entry.compare(0, marker_prefix.size(), marker_prefix) != 0)
        envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(marker_.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    if ((error = posix_spawn_file_actions_init(&actions)) != 0) {
      result_.spawn_errno = error;
      return false;
    }
    posix_spawnattr_t attr;
    if ((error = posix_spawnattr_init(&attr)) != 0) {
      posix_spawn_file_actions_destroy(&actions);
      result_.spawn_errno = error;
      return false;
    }
    // The first failing call decides; the rest are skipped.
    auto step = [&error](int rc) {
      if (error == 0)
        error = rc;
    };
    if (spec_.stdin_data)
      step(posix_spawn_file_actions_adddup2(&actions, in_read.get(), 0));
    else
      step(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY,
                                            0));
    step(posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1));
    step(posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2));
    // After the stdio copies, so that none of them can be overwritten.
    if (guarded_)
      step(posix_spawn_file_actions_adddup2(&actions, status_write.get(),
                                            k_guard_status_fd));
    if (!spec_.cwd.empty())
      step(posix_spawn_file_actions_addchdir_np(&actions, spec_.cwd.c_str()));
#ifdef __GLIBC__
#  if __GLIBC_PREREQ(2, 34)
    // Descriptors of this process that lack O_CLOEXEC (from libraries or
    // other threads) must not leak into the agent and keep pipes open.
    step(posix_spawn_file_actions_addclosefrom_np(
      &actions, guarded_ ? k_guard_status_fd + 1 : 3));
#  endif
#endif
    // Own process group; every signal back to its default action (SIGPIPE,
    // and SIGINT/SIGQUIT that may be ignored here) and nothing blocked,
    // whatever this thread's mask is (SIGPIPE is blocked right now, see
    // sigpipe_block).
    step(own_group_default_signals(attr));
    pid_t pid = -1;
    const char* program = guarded_ ? guard.c_str() : path.c_str();
    pids_ = proc::mark_pids(); // the child and all it starts come after
    if (error == 0)
      error = posix_spawn(&pid, program, &actions, &attr, argv.data(),
                          envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    status_write.reset();
    if (error == 0 && guarded_)
      error = read_guard_status(pid, status_read);
    if (error != 0) {
      result_.spawn_errno = error;
      out_.fd.reset();
      err_.fd.reset();
      stdin_.reset();
      return false;
    }
    pid_ = pid;
    if (!guarded_)
      pgid_ = pid;
    // posix_spawn returns after the exec and the guard reported after its
    // fork, so the agent already leads its own group: kill(-pgid_) reaches
    // it from here on.
    mark_started(pid);
    pidfd_.reset(proc::open_pidfd(pid_));
    return true;
  }

  /// The environment of the spec with this run's marker instead of any it
  /// brought along (an orchestrator run by an agent).
  std::vector<std::string> agent_env() {
    if (marker_.empty())
      marker_ = std::string{proc::marker_name} + "=" + make_marker();
    const std::string prefix = std::string{proc::marker_name} + "=";
    std::vector<std::string> env;
    env.reserve(spec_.env.size() + 1);
    for (const auto& entry : spec_.env)
      if (entry.compare(0, prefix.size(), prefix) != 0)
        env.push_back(entry);
    env.push_back(marker_);
    return env;
  }

  /// Starts the agent through a serving guard. Returns true when it runs,
  /// false when it could not be started (spawn_errno set), nullopt when no
  /// serving guard answered (then the caller starts a guard of its own).
  std::optional<bool> spawn_pooled(const std::string& guard,
                                   const std::string& path, unique_fd& in_read,
                                   unique_fd& out_write, unique_fd& err_write) {
    namespace gp = guard_protocol;
    gp::request req;
    req.flags = in_read.valid() ? gp::flag_stdin : 0;
    req.program = path;
    req.cwd = spec_.cwd;
    req.argv = spec_.argv;
    req.envp = agent_env();
    std::string message(gp::header_size, '\0');
    message[0] = gp::request_tag;
    std::string body = gp::encode_body(req);
    auto size = static_cast<std::uint32_t>(body.size());
    std::memcpy(&message[1], &size, sizeof size);
    message += body;
    int fds[3];
    std::size_t nfds = 0;
    if (in_read.valid())
      fds[nfds++] = in_read.get();
    fds[nfds++] = out_write.get();
    fds[nfds++] = err_write.get();
    // An idle guard may have died since its last call: then one more try
    // with a new one.
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto conn = guard_pool::instance().acquire(guard);
      if (!conn)
        return std::nullopt;
      // pids_ stays unknown: our own marker sweep is only a backstop for a
      // guard that died, and then reads every process.
      int error = gp::send_with_fds(conn->sock, message.data(), message.size(),
                                    fds, nfds);
      gp::record rec;
      int passed = -1;
      if (error == 0)
        error = gp::recv_record(conn->sock, rec, passed,
                                static_cast<int>(k_guard_status_wait.count()));
      unique_fd agent_pidfd{passed};
      if (error == ETIMEDOUT) {
        // A stopped or stuck guard: kill it, it cannot be trusted again.
        pidfd_signal(conn->pidfd, SIGKILL);
        guard_pool::instance().drop(*conn);
        result_.spawn_errno = ETIMEDOUT;
        return false;
      }
      if (error != 0) {
        guard_pool::instance().drop(*conn);
        continue; // gone: try a new one
      }
      if (rec.tag == gp::error_tag) {
        guard_pool::instance().release(*conn);
        result_.spawn_errno = rec.a != 0 ? rec.a : EIO;
        return false;
      }
      if (rec.tag != gp::started_tag || rec.a <= 0 || !agent_pidfd.valid()) {
        guard_pool::instance().drop(*conn);
        result_.spawn_errno = EPROTO;
        return false;
      }
      conn_ = *conn;
      agent_pidfd_ = std::move(agent_pidfd);
      pid_ = static_cast<pid_t>(rec.a);
      pgid_ = pid_;
      in_read.reset();
      out_write.reset();
      err_write.reset();
      mark_started(pid_);
      return true;
    }
    return std::nullopt;
  }

  /// Signals the agent's process group. Serving: through the agent's pidfd
  /// (never a reused group id); else by its id, which the caller knows is
  /// pinned.
  void group_signal(int sig) {
    if (pooled_) {
      if (agent_pidfd_.valid())
        pidfd_signal(agent_pidfd_.get(), sig, PIDFD_SIGNAL_PROCESS_GROUP);
      return;
    }
    kill(-pgid_, sig);
  }

  /// Sends a one-byte command to the serving guard.
  void guard_command(char c) {
    if (conn_.sock >= 0)
      while (send(conn_.sock, &c, 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {
      }
  }

  /// Reads the serving guard's record at the end of the call (or sees it
  /// died): the agent's exit status, and whether the guard swept
  /// everything. Then the same as check_leader.
  void check_pooled(clock_type::time_point now) {
    namespace gp = guard_protocol;
    gp::record rec;
    int passed = -1;
    int error = gp::recv_record(conn_.sock, rec, passed, 0);
    if (passed >= 0)
      ::close(passed);
    if (error == ETIMEDOUT || error == EAGAIN)
      return; // nothing complete yet
    leader_exited_ = true;
    reaped_ = true;
    if (error == 0 && rec.tag == gp::exited_tag) {
      int status = rec.a;
      if (WIFEXITED(status)) {
        result_.exit_code = WEXITSTATUS(status);
        result_.term_signal = 0;
      } else if (WIFSIGNALED(status)) {
        result_.exit_code = -1;
        result_.term_signal = WTERMSIG(status);
      }
      if (rec.b == 1) {
        swept_ = true;
        reusable_ = true;
      }
    } else {
      // The guard died (or spoke nonsense): the agent's group and the
      // marked processes are ours to kill.
      result_.exit_code = -1;
      result_.term_signal = SIGKILL;
    }
    if (!reusable_) {
      group_signal(SIGKILL);
      // Until the agent is dead its children are not yet reparented: the
      // marker sweep below checks each process's parent before the kill.
      if (agent_pidfd_.valid()) {
        pollfd p{agent_pidfd_.get(), POLLIN, 0};
        while (poll(&p, 1, static_cast<int>(k_sweep_wait.count())) < 0
               && errno == EINTR) {
        }
      }
    }
    backstop_armed_ = false;
    sweep_once();
    stdin_.reset();
    phase_ = phase::draining;
    drain_until_ = now + std::max(milliseconds{spec_.kill_grace}, k_min_drain);
  }

  /// Serving: gives the guard back when the call ended cleanly, else drops
  /// it (it kills what it still runs and exits).
  void finish_pooled() {
    if (conn_.sock < 0)
      return;
    if (reusable_)
      guard_pool::instance().release(conn_);
    else
      guard_pool::instance().drop(conn_);
    conn_ = guard_conn{};
  }

  /// Reads the guard's records until it closed the pipe: the agent's pid
  /// (its group id), and the errno of a failed exec. Returns 0 or the errno
  /// for spawn_errno; on an error the guard has been reaped.
  int read_guard_status(pid_t guard, unique_fd& status) {
    std::string records;
    const auto until = clock_type::now() + k_guard_status_wait;
    char buf[64];
    bool stuck = false;
    for (;;) {
      pollfd p{status.get(), POLLIN, 0};
      int rc = poll(&p, 1, poll_timeout(clock_type::now(), until));
      if (rc < 0 && errno == EINTR)
        continue;
      if (rc <= 0) {
        stuck = true; // a stopped guard, say: a failed start
        break;
      }
      ssize_t got = read(status.get(), buf, sizeof buf);
      if (got > 0) {
        records.append(buf, static_cast<std::size_t>(got));
        continue;
      }
      if (got < 0 && errno == EINTR)
        continue;
      break; // EOF: the agent was exec'd, or failed
    }
    pid_t agent = -1;
    int exec_error = 0;
    for (std::size_t i = 0; i + 5 <= records.size(); i += 5) {
      int32_t value = 0;
      std::memcpy(&value, records.data() + i + 1, sizeof value);
      if (records[i] == 'p')
        agent = static_cast<pid_t>(value);
      else if (records[i] == 'e' && exec_error == 0)
        exec_error = value != 0 ? value : EIO;
    }
    if (stuck)
      exec_error = ETIMEDOUT;
    else if (exec_error == 0 && agent <= 0)
      exec_error = ECHILD; // the guard failed before it could report
    if (exec_error != 0) {
      // Otherwise the guard exits by itself at once: the agent never ran.
      if (stuck) {
        if (agent > 0)
          kill(-agent, SIGKILL);
        kill(guard, SIGKILL);
      }
      int ignored = 0;
      while (waitpid(guard, &ignored, 0) < 0 && errno == EINTR) {
      }
      return exec_error;
    }
    pgid_ = agent;
    // The guard joined the agent's group before it reported: then its own
    // zombie pins the group id until we reap it (see the top).
    proc::proc_info info;
    guard_in_group_ = proc::read_info(guard, info) && info.pgrp == agent;
    return 0;
  }

  /// Kills everything at once (a callback threw): through the guard, and
  /// directly if it has not exited by the backstop.
  void stop_now() {
    if (pooled_) {
      // The guard kills and reports; past the backstop (or when it is
      // gone) we kill the group and the guard.
      guard_command(guard_protocol::kill_command);
      auto until = clock_type::now() + k_guard_backstop;
      while (!leader_exited_) {
        pollfd p{conn_.sock, POLLIN, 0};
        auto now = clock_type::now();
        if (now >= until)
          break;
        int rc = poll(&p, 1, poll_timeout(now, until));
        if (rc < 0 && errno == EINTR)
          continue;
        if (rc <= 0)
          break;
        check_pooled(clock_type::now());
      }
      if (!leader_exited_) {
        kill_directly();
        leader_exited_ = true;
        result_.exit_code = -1;
        result_.term_signal = SIGKILL;
      }
      return;
    }
    if (!guarded_) {
      kill(-pgid_, SIGKILL);
      return;
    }
    kill(pid_, SIGCONT);
    kill(pid_, SIGUSR1);
    if (pidfd_.valid()) {
      pollfd p{pidfd_.get(), POLLIN, 0};
      int timeout = static_cast<int>(k_guard_backstop.count());
      while (poll(&p, 1, timeout) < 0 && errno == EINTR) {
      }
      if (p.revents != 0)
        return; // exited: reap() collects it
    }
    kill_directly();
  }

  bool stop_requested() const noexcept {
    return cancel_ != nullptr && cancel_->cancelled();
  }

  /// The deadline that expires first, if any is active.
  std::pair<deadline_kind, clock_type::time_point> next_deadline() const {
    auto best = std::make_pair(deadline_kind::none, clock_type::time_point{});
    auto consider = [&](deadline_kind kind, clock_type::time_point when) {
      if (best.first == deadline_kind::none || when < best.second)
        best = {kind, when};
    };
    if (spec_.total_deadline.count() > 0)
      consider(deadline_kind::total, start_ + spec_.total_deadline);
    if (!any_output_) {
      // Before the first byte the idle deadline counts from the start, but
      // only when there is no first_output deadline for that silence.
      if (spec_.first_output_deadline.count() > 0)
        consider(deadline_kind::first_output,
                 start_ + spec_.first_output_deadline);
      else if (spec_.idle_deadline.count() > 0)
        consider(deadline_kind::idle, start_ + spec_.idle_deadline);
    } else if (spec_.idle_deadline.count() > 0) {
      consider(deadline_kind::idle, last_output_ + spec_.idle_deadline);
    }
    return best;
  }

  void begin_termination(clock_type::time_point now) {
    stdin_.reset();
    // The guard is in the group (serving: told so): it passes SIGTERM on to
    // the processes that left the group.
    group_signal(SIGTERM);
    // A stopped process would keep SIGTERM pending until continued.
    group_signal(SIGCONT);
    if (pooled_)
      guard_command(guard_protocol::term_command);
    if (spec_.kill_grace.count() > 0) {
      kill_at_ = now + spec_.kill_grace;
      phase_ = phase::terminating;
    } else {
      escalate(now);
    }
  }

  /// The SIGKILL step of a stop. With the guard it is asked to do it, as
  /// only it can find every descendant; the group and the guard get SIGKILL
  /// from us only if it has not exited by the backstop.
  void escalate(clock_type::time_point now) {
    phase_ = phase::killing;
    if (pooled_) {
      guard_command(guard_protocol::kill_command);
      backstop_at_ = now + k_guard_backstop;
      backstop_armed_ = true;
    } else if (guarded_) {
      kill(pid_, SIGCONT);
      kill(pid_, SIGUSR1);
      backstop_at_ = now + k_guard_backstop;
      backstop_armed_ = true;
    } else {
      kill(-pgid_, SIGKILL);
    }
  }

  /// SIGKILL to the group and to the process we spawned, whatever it is.
  void kill_directly() {
    backstop_armed_ = false;
    if (pooled_) {
      // The guard did not answer in time: it cannot be trusted again.
      group_signal(SIGKILL);
      if (conn_.pidfd >= 0)
        pidfd_signal(conn_.pidfd, SIGKILL);
      reusable_ = false;
      return;
    }
    if (group_pinned())
      kill(-pgid_, SIGKILL);
    kill(pid_, SIGKILL);
  }

  /// Returns true while a zombie or a live process of ours keeps the group
  /// id from being reused: the agent itself without the guard, else the
  /// guard once it joined the group.
  bool group_pinned() const noexcept {
    return !guarded_ || guard_in_group_;
  }

  /// Kills the marked processes once, at the end.
  void sweep_once() {
    if (swept_ || marker_.empty())
      return;
    swept_ = true;
    sweep_marked(marker_, started_, pids_);
  }

  /// Handles the leader's exit once waitid says it is a zombie: SIGKILL to
  /// the rest of the group first, then reap.
  void check_leader(clock_type::time_point now) {
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    int rc;
    do {
      rc = waitid(P_PID, static_cast<id_t>(pid_), &info,
                  WEXITED | WNOHANG | WNOWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0 && info.si_pid == 0)
      return; // still running
    leader_exited_ = true;
    // A guard that exited by itself finished its own sweep of the tree and
    // the marked processes; ours is the backstop for a guard that was
    // killed (or re-raised a signal, which looks the same).
    if (rc == 0 && guarded_ && info.si_code == CLD_EXITED)
      swept_ = true;
    if (rc == 0) {
      if (group_pinned())
        kill(-pgid_, SIGKILL);
      reap();
    } else {
      // ECHILD: someone else reaped our child (SIGCHLD ignored, or a
      // waitpid(-1) elsewhere). The group id is no longer pinned, so it is
      // not signalled: it might belong to someone else by now.
      reaped_ = true;
    }
    // Before draining: a marked process that escaped may hold the pipes.
    sweep_once();
    stdin_.reset();
    pidfd_.reset();
    phase_ = phase::draining;
    drain_until_ = now + std::max(milliseconds{spec_.kill_grace}, k_min_drain);
  }

  void reap() {
    int status = 0;
    pid_t rc;
    do {
      rc = waitpid(pid_, &status, 0);
    } while (rc < 0 && errno == EINTR);
    reaped_ = true;
    if (rc != pid_)
      return;
    if (WIFEXITED(status)) {
      result_.exit_code = WEXITSTATUS(status);
      result_.term_signal = 0;
    } else if (WIFSIGNALED(status)) {
      result_.exit_code = -1;
      result_.term_signal = WTERMSIG(status);
    }
  }

  void write_stdin() {
    const std::string& data = *spec_.stdin_data;
    std::size_t size = std::min(k_write_chunk, data.size() - written_);
    ssize_t rc = sigpipe_block::write(stdin_.get(), data.data() + written_,
                                      size);
    if (rc > 0) {
      written_ += static_cast<std::size_t>(rc);
      if (written_ == data.size())
        stdin_.reset(); // EOF for the child
    } else if (rc < 0 && errno != EAGAIN && errno != EINTR) {
      stdin_.reset(); // EPIPE: the child closed its stdin, fine
    }
  }

  /// Reads once from `s`; returns false at EOF or on an error.
  bool read_stream(stream_state& s, char* buf) {
    ssize_t rc = read(s.fd.get(), buf, k_read_chunk);
    if (rc > 0) {
      any_output_ = true;
      last_output_ = clock_type::now();
      append(s, buf, static_cast<std::size_t>(rc));
      return true;
    }
    if (rc < 0 && (errno == EAGAIN || errno == EINTR))
      return true;
    finish_stream(s);
    return false;
  }

  void append(stream_state& s, const char* data, std::size_t size) {
    std::size_t room = spec_.output_cap
                       - std::min(spec_.output_cap, s.sink->size());
    std::size_t keep = std::min(size, room);
    s.dropped += size - keep;
    if (keep == 0)
      return;
    s.sink->append(data, keep);
    for (;;) {
      std::size_t newline = s.sink->find('\n', s.scanned);
      if (newline == std::string::npos)
        break;
      std::size_t begin = s.line_start;
      s.line_start = s.scanned = newline + 1;
      if (on_line_)
        on_line_(s.kind,
                 std::string_view{*s.sink}.substr(begin, newline - begin));
    }
    s.scanned = s.sink->size();
  }

  /// Closes `s` and delivers its last unterminated line, unless the cap cut
  /// it (a partial line would only confuse a JSONL parser).
  void finish_stream(stream_state& s) {
    s.fd.reset();
    if (s.dropped == 0 && s.line_start < s.sink->size()) {
      std::size_t begin = s.line_start;
      s.line_start = s.scanned = s.sink->size();
      if (on_line_)
        on_line_(s.kind, std::string_view{*s.sink}.substr(begin));
    }
  }

  /// Reads what is buffered without waiting, then closes the stream. Bounded
  /// because a writer outside the group could keep it full forever.
  void sweep_stream(stream_state& s, char* buf) {
    for (int i = 0; i < 32 && s.fd.valid(); ++i) {
      ssize_t rc = read(s.fd.get(), buf, k_read_chunk);
      if (rc > 0)
        append(s, buf, static_cast<std::size_t>(rc));
      else if (!(rc < 0 && errno == EINTR))
        break;
    }
    if (s.fd.valid())
      finish_stream(s);
  }

  void loop() {
    auto buf = std::make_unique<char[]>(k_read_chunk);
    bool stop_seen = false; // a stop descriptor was readable
    const int cancel_fd = cancel_ != nullptr ? cancel_->fd() : -1;
    for (;;) {
      auto now = clock_type::now();
      if (leader_exited_ && !out_.fd.valid() && !err_.fd.valid())
        return;

      // -- state transitions
      if (phase_ == phase::running) {
        if (stop_seen || stop_requested()) {
          result_.cancelled = true;
          begin_termination(now);
        } else {
          auto [kind, when] = next_deadline();
          if (kind != deadline_kind::none && when <= now) {
            result_.expired = kind;
            begin_termination(now);
          }
        }
      }
      if (phase_ == phase::terminating && now >= kill_at_)
        escalate(now);
      if (phase_ == phase::killing && backstop_armed_ && now >= backstop_at_)
        kill_directly();
      if (phase_ == phase::draining && now >= drain_until_) {
        sweep_stream(out_, buf.get());
        sweep_stream(err_, buf.get());
        return;
      }

      // -- what to wait for, and until when
      pollfd fds[7];
      nfds_t count = 0;
      auto add = [&](int fd, short events) {
        fds[count] = pollfd{fd, events, 0};
        return static_cast<int>(count++);
      };
      int out_i = out_.fd.valid() ? add(out_.fd.get(), POLLIN) : -1;
      int err_i = err_.fd.valid() ? add(err_.fd.get(), POLLIN) : -1;
      int in_i = stdin_.valid() ? add(stdin_.get(), POLLOUT) : -1;
      int pid_i = pidfd_.valid() ? add(pidfd_.get(), POLLIN) : -1;
      int guard_i = pooled_ && !leader_exited_ && conn_.sock >= 0
                      ? add(conn_.sock, POLLIN)
                      : -1;
      int cancel_i = -1;
      if (phase_ == phase::running && cancel_fd >= 0)
        cancel_i = add(cancel_fd, POLLIN);
      int timeout = -1;
      switch (phase_) {
        case phase::running: {
          auto [kind, when] = next_deadline();
          if (kind != deadline_kind::none)
            timeout = poll_timeout(now, when);
          break;
        }
        case phase::terminating:
          timeout = poll_timeout(now, kill_at_);
          break;
        case phase::killing:
          if (backstop_armed_)
            timeout = poll_timeout(now, backstop_at_);
          break;
        case phase::draining:
          timeout = poll_timeout(now, drain_until_);
          break;
      }
      bool leader_unwatched = !pooled_ && !leader_exited_ && !pidfd_.valid();
      if (leader_unwatched) {
        int tick = static_cast<int>(k_no_pidfd_tick.count());
        timeout = timeout < 0 ? tick : std::min(timeout, tick);
      }

      if (poll(fds, count, timeout) < 0) {
        if (errno == EINTR)
          continue;
        throw std::system_error(errno, std::generic_category(),
                                "process_runner: poll");
      }

      // -- events
      constexpr short readable = POLLIN | POLLHUP | POLLERR;
      if (out_i >= 0 && (fds[out_i].revents & readable))
        read_stream(out_, buf.get());
      if (err_i >= 0 && (fds[err_i].revents & readable))
        read_stream(err_, buf.get());
      if (in_i >= 0 && stdin_.valid()
          && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)))
        write_stdin();
      if (cancel_i >= 0 && (fds[cancel_i].revents & readable))
        stop_seen = true;
      if (!leader_exited_
          && (leader_unwatched || (pid_i >= 0 && fds[pid_i].revents != 0)))
        check_leader(clock_type::now());
      if (guard_i >= 0 && !leader_exited_ && fds[guard_i].revents != 0)
        check_pooled(clock_type::now());
    }
  }

  const process_spec& spec_;
  const line_callback& on_line_;
  const cancel_token* cancel_;
  process_result result_;
  stream_state out_;
  stream_state err_;
  unique_fd stdin_;
  unique_fd pidfd_;
  std::size_t written_ = 0;
  /// The process we spawned and reap: the guard, or the agent without one.
  pid_t pid_ = -1;
  /// The child's start time (clock ticks since boot): the marker sweep only
  /// reads the environment of processes started since.
  unsigned long long started_ = 0;
  /// Pid allocation just before the spawn: the marker sweep reads only the
  /// processes with pids handed out since.
  proc::pid_mark pids_;
  /// The agent's process group (its pid).
  pid_t pgid_ = -1;
  bool guarded_ = false;
  bool guard_in_group_ = false;
  /// Started through a serving guard (conn_), which reports the exit.
  bool pooled_ = false;
  guard_conn conn_;
  /// Serving: a pidfd of the agent, through which its group is signalled.
  unique_fd agent_pidfd_;
  /// Serving: the guard reported a clean end and may serve again.
  bool reusable_ = false;
  bool backstop_armed_ = false;
  bool swept_ = false;
  /// The run's marker entry, ORCH_RUN_MARKER=<unique>.
  std::string marker_;
  bool leader_exited_ = false;
  bool reaped_ = false;
  bool any_output_ = false;
  phase phase_ = phase::running;
  clock_type::time_point start_;
  clock_type::time_point last_output_;
  clock_type::time_point kill_at_;
  clock_type::time_point drain_until_;
  clock_type::time_point backstop_at_;
};

class posix_process_runner final : public process_runner {
public:
  process_result run(const process_spec& spec, const line_callback& on_line,
                     const cancel_token* cancel) override {
    sigpipe_block no_sigpipe;
    session s{spec, on_line, cancel};
    return s.run();
  }
};

} // namespace

std::shared_ptr<process_runner> make_posix_process_runner() {
  return std::make_shared<posix_process_runner>();
}

void stop_agent_guards(std::chrono::milliseconds limit) {
  guard_pool::instance().shutdown(limit);
}

std::vector<int> idle_agent_guards() {
  std::vector<int> out;
  for (pid_t pid : guard_pool::instance().idle_pids())
    out.push_back(static_cast<int>(pid));
  return out;
}

std::string find_executable(const std::string& name,
                            const std::vector<std::string>& env) {
  int error = 0;
  return resolve_executable(name, env, {}, error);
}

} // namespace orch
