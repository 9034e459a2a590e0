#pragma once

// Finding and stopping the processes of one agent run through /proc: by
// parentage (every descendant of a pid) and by a marker entry in the
// environment (ORCH_RUN_MARKER=<unique>, set for each run and inherited by
// everything the agent starts unless it scrubs its environment). Shared by
// the process runner and the agent guard (agent_guard.cpp), so it depends on
// nothing but libc and the standard library. Linux only.

#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace orch::proc {

/// Name of the environment entry that marks every process of one run.
inline constexpr std::string_view marker_name = "ORCH_RUN_MARKER";

/// What /proc/<pid>/stat says about one process.
struct proc_info {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  /// R, S, D, Z (zombie), T, X, ...
  char state = '?';
  /// When it started, in clock ticks since boot (stat field 22): a process
  /// that started before a run began cannot carry that run's marker.
  unsigned long long start = 0;

  /// Returns true when the process has exited (a zombie or being reaped).
  bool dead() const noexcept {
    return state == 'Z' || state == 'X' || state == 'x';
  }

  /// Returns true for a kernel thread (kthreadd and its children): never
  /// an agent's, and its environment is always empty.
  bool kernel_thread() const noexcept {
    return pid == 2 || ppid == 2;
  }
};

/// Returns a pidfd for `pid` (pidfd_open through the raw syscall: glibc
/// 2.36's <sys/pidfd.h> lacks extern "C"), or -1 with errno set.
int open_pidfd(pid_t pid);

/// Reads /proc/<pid>/stat; false when the process is gone.
bool read_info(pid_t pid, proc_info& out);

/// Returns every process visible in /proc now.
std::vector<proc_info> snapshot();

/// Where pid allocation stood at one moment: the last pid handed out in our
/// pid namespace and the count of forks since boot (all namespaces).
struct pid_mark {
  /// -1 when unknown (then every pid may be new).
  long last_pid = -1;
  unsigned long long forks = 0;
};

/// Returns where pid allocation stands now.
pid_mark mark_pids();

/// Returns the processes visible in /proc now whose pid may have been handed
/// out since `since`: pids are allocated upwards and wrap once at pid_max, so
/// while fewer forks than pids happened since, every new process has a pid
/// in the (wrapping) range after `since.last_pid`. Reads the stat file of
/// those only (every process when the range is unknown or may have lapped),
/// so a sweep at the end of a step costs little on a busy machine.
std::vector<proc_info> snapshot_since(const pid_mark& since);

/// Returns the processes of `all` that descend from `root` (not `root`).
std::vector<proc_info> descendants(const std::vector<proc_info>& all,
                                   pid_t root);

/// What the environment of a process says about a marker.
enum class mark {
  absent,  ///< read, and the entry is not there (or not readable: another
           ///< user, a zombie)
  present, ///< the entry is there
  unknown, ///< read empty: a process in the middle of execve (the new image
           ///< has no environment pointers yet) or one started with none;
           ///< look again
};

/// Returns whether `p` carries the marker `entry`, for a process started
/// at or after `since` (a start time in clock ticks; older ones are
/// `absent` without a read). Only processes started since then are read, so
/// a sweep costs one stat per process instead of one environment read each.
mark marked_since(const proc_info& p, unsigned long long since,
                  std::string_view entry);

/// Returns whether the environment of `pid` holds exactly the entry `entry`
/// ("NAME=value"). `absent` for a zombie, for a process of another user and
/// for one that rewrote its environment block; `unknown` for an empty one.
mark environ_mark(pid_t pid, std::string_view entry);

/// Sends `sig` to `pid` only if it is still the process `expected` described
/// (same parent) and, when `entry` is not empty, still carries it. The check
/// is made after a pidfd pinned the process, so a pid reused in between is
/// never signalled (without pidfd support: a plain kill). Returns true when
/// the signal was sent.
bool signal_checked(const proc_info& expected, int sig,
                    std::string_view entry = {});

} // namespace orch::proc
