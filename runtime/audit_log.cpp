#include "runtime/audit_log.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runtime/clock.hpp"
#include "runtime/counters.hpp"
#include "runtime/fd_util.hpp"
#include "runtime/hashing.hpp"
#include "runtime/logging.hpp"
#include "runtime/state_dir.hpp"

namespace orch {

using detail::errno_text;
using detail::unique_fd;

namespace {

struct audit_state {
  std::mutex mutex;
  bool open = false;
  audit_options options;
  unique_fd dir;
  unique_fd file;
  std::string user;
  /// One log line per kind of failure is enough.
  bool error_logged = false;
};

audit_state& state() {
  static audit_state instance;
  return instance;
}

std::string iso_utc(int64_t ms) {
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", stamp,
                static_cast<int>(ms % 1000));
  return out;
}

/// Opens `audit.jsonl` in `dir` for appending: never through a link, a
/// regular file with a single name, 0600.
unique_fd open_audit_file(int dir, std::string& error) {
  unique_fd fd{::openat(
    dir, audit_file_name,
    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600)};
  if (!fd) {
    int err = errno;
    error = std::string{"cannot open audit/"} + audit_file_name + ": "
            + (err == ELOOP ? std::string{"it is a symlink"} : errno_text(err));
    return {};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    error = std::string{"cannot stat audit/"} + audit_file_name + ": "
            + errno_text(errno);
    return {};
  }
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
    error = std::string{"audit/"} + audit_file_name
            + " is not a regular file with a single name; refusing it";
    return {};
  }
  if (st.st_uid != ::geteuid()) {
    error = std::string{"audit/"} + audit_file_name
            + " belongs to another user; refusing it";
    return {};
  }
  if ((st.st_mode & 07777) != 0600)
    ::fchmod(fd.get(), 0600);
  // Blocking writes from here on (O_NONBLOCK only kept a FIFO from hanging
  // the open).
  ::fcntl(fd.get(), F_SETFL, O_WRONLY | O_APPEND);
  return fd;
}

void report_error(audit_state& st, const std::string& what) {
  counters().add(counter::audit_errors);
  if (st.error_logged)
    return;
  st.error_logged = true;
  log().error("audit-error {}", log_text(what));
}

/// Moves audit.jsonl to .1 (and .1 to .2, ...) unless another process did
/// it already, then reopens. Called with the mutex held.
void rotate(audit_state& st, size_t incoming) {
  // Across processes: one rotation at a time (an flock on the folder).
  while (::flock(st.dir.get(), LOCK_EX) != 0)
    if (errno != EINTR)
      return;
  struct stat mine {};
  struct stat cur {};
  bool same = ::fstat(st.file.get(), &mine) == 0
              && ::fstatat(st.dir.get(), audit_file_name, &cur,
                           AT_SYMLINK_NOFOLLOW)
                   == 0
              && cur.st_ino == mine.st_ino && cur.st_dev == mine.st_dev;
  if (same
      && static_cast<uint64_t>(cur.st_size) + incoming > st.options.max_bytes
      && cur.st_size > 0) {
    for (int i = audit_rotated_files - 1; i >= 1; --i) {
      auto from = std::string{audit_file_name} + "." + std::to_string(i);
      auto to = std::string{audit_file_name} + "." + std::to_string(i + 1);
      ::renameat(st.dir.get(), from.c_str(), st.dir.get(), to.c_str());
    }
    auto first = std::string{audit_file_name} + ".1";
    if (::renameat(st.dir.get(), audit_file_name, st.dir.get(), first.c_str())
        != 0)
      report_error(st, "cannot rotate the audit log: " + errno_text(errno));
  }
  // Ours was rotated (here or by another process): append to the new one.
  if (!same || cur.st_size > 0) {
    std::string error;
    auto fd = open_audit_file(st.dir.get(), error);
    if (fd)
      st.file = std::move(fd);
    else
      report_error(st, error);
  }
  ::flock(st.dir.get(), LOCK_UN);
}

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

} // namespace

std::string os_user_name() {
  auto uid = ::getuid();
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr
      && found->pw_name != nullptr && found->pw_name[0] != '\0')
    return found->pw_name;
  return std::to_string(uid);
}

std::string argv_sha256(const std::vector<std::string>& argv) {
  sha256_stream h;
  for (const auto& x : argv) {
    h.update(x);
    h.update(std::string_view{"\0", 1});
  }
  return h.hex_digest();
}

std::string audit_line(const audit_event& ev, int64_t unix_ms,
                       const std::string& user) {
  nlohmann::ordered_json j;
  j["time"] = iso_utc(unix_ms);
  j["user"] = user;
  j["kind"] = ev.kind;
  j["run_id"] = ev.run_id;
  if (!ev.agent.empty())
    j["agent"] = ev.agent;
  if (!ev.path.empty())
    j["path"] = ev.path;
  if (!ev.detail.empty())
    j["detail"] = ev.detail;
  for (const auto& [key, value] : ev.extra)
    if (!j.contains(key))
      j[key] = value;
  // Invalid UTF-8 (a file name) is replaced, never a reason to lose the
  // event.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool audit_open(int state_fd, const audit_options& options,
                std::string& error) {
  auto& st = state();
  std::lock_guard<std::mutex> guard{st.mutex};
  st.open = false;
  st.file.reset();
  st.dir.reset();
  st.error_logged = false;
  if (!options.enabled)
    return true;
  try {
    auto dir = open_state_subdir(state_fd, "audit", error);
    if (!dir)
      return false;
    auto file = open_audit_file(dir.get(), error);
    if (!file)
      return false;
    st.options = options;
    st.dir = std::move(dir);
    st.file = std::move(file);
    st.user = os_user_name();
    st.open = true;
    return true;
  } catch (const std::exception& e) {
    error = std::string{"cannot open the audit log: "} + e.what();
    return false;
  }
}

void audit(const audit_event& ev) {
  audit(std::vector<audit_event>{ev});
}

void audit(const std::vector<audit_event>& events) {
  auto& st = state();
  try {
    std::string user;
    {
      std::lock_guard<std::mutex> guard{st.mutex};
      if (!st.open || events.empty())
        return;
      user = st.user;
    }
    // Built outside the lock: the JSON work is the expensive part.
    std::string lines;
    auto now = wall_clock_ms();
    for (const auto& ev : events)
      lines += audit_line(ev, now, user) + "\n";
    std::lock_guard<std::mutex> guard{st.mutex};
    if (!st.open)
      return;
    struct stat sb {};
    if (::fstat(st.file.get(), &sb) == 0
        && static_cast<uint64_t>(sb.st_size) + lines.size()
             > st.options.max_bytes)
      rotate(st, lines.size());
    if (!write_all(st.file.get(), lines))
      report_error(st, "cannot append to the audit log: " + errno_text(errno));
  } catch (...) {
    // Never throws: events that cannot be recorded are counted.
    counters().add(counter::audit_errors);
  }
}

bool audit_includes_task() {
  auto& st = state();
  std::lock_guard<std::mutex> guard{st.mutex};
  return st.open && st.options.include_task;
}

void audit_sync() {
  auto& st = state();
  std::lock_guard<std::mutex> guard{st.mutex};
  if (st.open && ::fsync(st.file.get()) != 0)
    report_error(st, "cannot fsync the audit log: " + errno_text(errno));
}

void audit_close() {
  auto& st = state();
  std::lock_guard<std::mutex> guard{st.mutex};
  if (st.open)
    ::fsync(st.file.get());
  st.open = false;
  st.file.reset();
  st.dir.reset();
}

} // namespace orch
