#include "runtime/process_tree.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace orch::proc {

namespace {

/// Reads all of a small /proc file; false when it cannot be opened.
bool read_file(const char* path, std::string& out) {
  out.clear();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  char buf[4096];
  for (;;) {
    ssize_t rc = read(fd, buf, sizeof buf);
    if (rc > 0) {
      out.append(buf, static_cast<std::size_t>(rc));
      continue;
    }
    if (rc < 0 && errno == EINTR)
      continue;
    break;
  }
  close(fd);
  return true;
}

/// Parses "pid (comm) S ppid pgrp ..."; comm may hold spaces and ')'.
bool parse_stat(const std::string& text, proc_info& out) {
  auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= text.size())
    return false;
  const char* p = text.c_str() + close_paren + 2;
  char state = *p;
  char* end = nullptr;
  long ppid = std::strtol(p + 1, &end, 10);
  if (end == p + 1)
    return false;
  const char* q = end;
  long pgrp = std::strtol(q, &end, 10);
  if (end == q)
    return false;
  // Fields 6..21 (session .. itrealvalue), then starttime (22).
  const char* r = end;
  for (int field = 6; field <= 21; ++field) {
    std::strtoll(r, &end, 10);
    if (end == r)
      return false;
    r = end;
  }
  unsigned long long start = std::strtoull(r, &end, 10);
  if (end == r)
    return false;
  out.start = start;
  out.pid = static_cast<pid_t>(std::strtol(text.c_str(), nullptr, 10));
  out.ppid = static_cast<pid_t>(ppid);
  out.pgrp = static_cast<pid_t>(pgrp);
  out.state = state;
  return true;
}

int pidfd_signal(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
  return static_cast<int>(
    syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
#else
  (void)pidfd;
  (void)sig;
  errno = ENOSYS;
  return -1;
#endif
}

/// Returns true when `pid` still matches `expected` and `entry`.
bool still_matches(const proc_info& expected, std::string_view entry) {
  proc_info now;
  if (!read_info(expected.pid, now) || now.dead())
    return false;
  if (now.ppid != expected.ppid)
    return false;
  // A process caught mid-execve reads empty; the pidfd already pins it.
  return entry.empty() || environ_mark(expected.pid, entry) != mark::absent;
}

} // namespace

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

bool read_info(pid_t pid, proc_info& out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::string text;
  return read_file(path, text) && parse_stat(text, out);
}

namespace {

/// Reads one number from a small /proc/sys file; -1 when unreadable.
long read_number(const char* path) {
  std::string text;
  if (!read_file(path, text))
    return -1;
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  return end == text.c_str() ? -1 : value;
}

/// The "processes" line of /proc/stat (forks since boot); 0 when unknown.
unsigned long long read_forks() {
  std::string text;
  if (!read_file("/proc/stat", text))
    return 0;
  auto at = text.find("\nprocesses ");
  if (at == std::string::npos)
    return 0;
  return std::strtoull(text.c_str() + at + 11, nullptr, 10);
}

/// Lists /proc and reads the stat file of each pid that `wanted` accepts.
template<class Predicate>
std::vector<proc_info> scan(Predicate wanted) {
  std::vector<proc_info> result;
  DIR* dir = opendir("/proc");
  if (dir == nullptr)
    return result;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || !wanted(pid))
      continue;
    proc_info info;
    if (read_info(static_cast<pid_t>(pid), info))
      result.push_back(info);
  }
  closedir(dir);
  return result;
}

/// True when `pid` leads its thread group (a process, not one of its other
/// threads, whose ids /proc resolves too without listing them).
bool leads_thread_group(long pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/status", pid);
  std::string text;
  if (!read_file(path, text))
    return false;
  constexpr std::string_view field = "\nTgid:";
  auto at = text.find(field);
  return at != std::string::npos
         && std::strtol(text.c_str() + at + field.size(), nullptr, 10) == pid;
}

/// The processes with a pid in (from, last]: their stat files read one by
/// one instead of listing /proc (hundreds of entries) for the few pids that
/// one agent call hands out.
std::vector<proc_info> probe_range(long from, long last) {
  std::vector<proc_info> result;
  for (long pid = from + 1; pid <= last; ++pid) {
    proc_info info;
    if (read_info(static_cast<pid_t>(pid), info) && leads_thread_group(pid))
      result.push_back(info);
  }
  return result;
}

/// Up to this many pids in a range are probed one by one.
constexpr long k_max_probed = 128;

} // namespace

std::vector<proc_info> snapshot() {
  return scan([](long) {
    return true;
  });
}

pid_mark mark_pids() {
  pid_mark mark;
  // The fork count first: a fork in between only widens the range.
  mark.forks = read_forks();
  mark.last_pid = mark.forks > 0 ? read_number("/proc/sys/kernel/ns_last_pid")
                                 : -1;
  return mark;
}

std::vector<proc_info> snapshot_since(const pid_mark& since) {
  long last = read_number("/proc/sys/kernel/ns_last_pid");
  unsigned long long forks = read_forks();
  long pid_max = read_number("/proc/sys/kernel/pid_max");
  // After a wrap the kernel starts again above 300 (RESERVED_PIDS); fewer
  // forks than that span cannot have lapped the range.
  bool known
    = since.last_pid > 0 && last > 0 && pid_max > 300 && forks >= since.forks
      && forks - since.forks < static_cast<unsigned long long>(pid_max - 300);
  if (!known)
    return snapshot();
  long from = since.last_pid;
  if (last >= from && last - from <= k_max_probed)
    return probe_range(from, last);
  if (last >= from) // no wrap: (from, last]
    return scan([from, last](long pid) {
      return pid > from && pid <= last;
    });
  // wrapped once: (from, pid_max) and [1, last]
  return scan([from, last](long pid) {
    return pid > from || pid <= last;
  });
}

std::vector<proc_info> descendants(const std::vector<proc_info>& all,
                                   pid_t root) {
  std::unordered_multimap<pid_t, const proc_info*> children;
  for (const auto& p : all)
    children.emplace(p.ppid, &p);
  std::vector<proc_info> result;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t parent = todo.back();
    todo.pop_back();
    auto [first, last] = children.equal_range(parent);
    for (auto i = first; i != last; ++i) {
      // pid 0 and self-parented entries cannot form a loop in /proc, but a
      // snapshot is not atomic: guard against a cycle of reused pids.
      if (i->second->pid == root || i->second->pid == parent)
        continue;
      result.push_back(*i->second);
      todo.push_back(i->second->pid);
      if (result.size() > all.size())
        return result;
    }
  }
  return result;
}

mark environ_mark(pid_t pid, std::string_view entry) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/environ", static_cast<int>(pid));
  std::string env;
  if (!read_file(path, env))
    return mark::absent;
  if (env.empty())
    return mark::unknown;
  std::size_t begin = 0;
  while (begin < env.size()) {
    std::size_t end = env.find('\0', begin);
    if (end == std::string::npos)
      end = env.size();
    if (std::string_view{env}.substr(begin, end - begin) == entry)
      return mark::present;
    begin = end + 1;
  }
  return mark::absent;
}

mark marked_since(const proc_info& p, unsigned long long since,
                  std::string_view entry) {
  return p.start >= since ? environ_mark(p.pid, entry) : mark::absent;
}

bool signal_checked(const proc_info& expected, int sig,
                    std::string_view entry) {
  int pidfd = open_pidfd(expected.pid);
  if (pidfd < 0) {
    if (errno == ESRCH)
      return false;
    // No pidfd support: check, then kill (a tiny window for pid reuse).
    return still_matches(expected, entry) && kill(expected.pid, sig) == 0;
  }
  bool sent = still_matches(expected, entry) && pidfd_signal(pidfd, sig) == 0;
  close(pidfd);
  return sent;
}

} // namespace orch::proc
