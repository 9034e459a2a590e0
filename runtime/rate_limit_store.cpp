#include "runtime/rate_limit_store.hpp"

#include <cerrno>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runtime/logging.hpp"
#include "runtime/state_dir.hpp"
#include "runtime/text.hpp"

namespace orch {

using detail::errno_text;
using detail::unique_fd;

namespace {

constexpr const char* lock_file_name = "lock";
/// More than this is not a file we wrote.
constexpr size_t max_buckets_bytes = size_t{16} << 20;

/// Reads the regular file `name` in `dir` (no links) into `out`. Returns 0,
/// ENOENT when missing, or another errno value.
int read_small_file(int dir, const char* name, std::string& out) {
  unique_fd fd{::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
  if (!fd)
    return errno;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return errno;
  if (!S_ISREG(st.st_mode))
    return EINVAL;
  if (static_cast<size_t>(st.st_size) > max_buckets_bytes)
    return EFBIG;
  out.clear();
  char buf[8192];
  for (;;) {
    auto n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno;
    if (n == 0)
      break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_buckets_bytes)
      return EFBIG;
  }
  return 0;
}

/// Holds an flock until destroyed.
class flock_guard {
public:
  explicit flock_guard(int fd) : fd_{fd} {
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        fd_ = -1;
        break;
      }
    }
  }
  flock_guard(const flock_guard&) = delete;
  flock_guard& operator=(const flock_guard&) = delete;
  ~flock_guard() {
    if (fd_ >= 0)
      ::flock(fd_, LOCK_UN);
  }
  bool locked() const {
    return fd_ >= 0;
  }

private:
  int fd_;
};

} // namespace

bucket_decision memory_rate_limit_store::take(const std::string& key,
                                              const bucket_params& p,
                                              int64_t now_ms) {
  auto it = buckets_.find(key);
  if (it == buckets_.end())
    it = buckets_.emplace(key, full_bucket(p, now_ms)).first;
  return take_token(it->second, p, now_ms);
}

file_rate_limit_store::file_rate_limit_store(unique_fd dir)
  : dir_{std::move(dir)} {
  // nop
}

bool parse_buckets(const std::string& text,
                   std::map<std::string, bucket_state>& out) {
  out.clear();
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1)
    return false;
  auto it = j.find("buckets");
  if (it == j.end() || !it->is_object())
    return false;
  for (auto& [key, b] : it->items()) {
    if (!b.is_object())
      return false;
    auto units = b.find("units");
    auto updated = b.find("updated_ms");
    if (units == b.end() || updated == b.end() || !units->is_number_integer()
        || !updated->is_number_integer())
      return false;
    out[key] = bucket_state{units->get<int64_t>(), updated->get<int64_t>()};
  }
  return true;
}

std::string format_buckets(const std::map<std::string, bucket_state>& buckets) {
  nlohmann::json j;
  j["version"] = 1;
  auto& obj = j["buckets"] = nlohmann::json::object();
  for (const auto& [key, b] : buckets)
    obj[key] = {{"units", b.units}, {"updated_ms", b.updated_ms}};
  // Keys are made valid UTF-8 by take(); replace anyway rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
         + "\n";
}

bucket_decision file_rate_limit_store::take(const std::string& user_key,
                                            const bucket_params& p,
                                            int64_t now_ms) {
  // The file is JSON: a key that is not UTF-8 (a Latin-1 passwd entry) is
  // stored and looked up in its replaced form, so its bucket still counts.
  const std::string key = text::to_valid_utf8(user_key);
  problem_.clear();
  auto admit_anyway = [&](std::string why) {
    problem_ = std::move(why);
    log().warn("rate-limit-state-error {}; admitting the request",
               log_text(problem_));
    bucket_decision out;
    out.admitted = true;
    return out;
  };
  try {
    unique_fd lock{::openat(dir_.get(), lock_file_name,
                            O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)};
    if (!lock)
      return admit_anyway(std::string{"cannot open limits/lock: "}
                          + errno_text(errno));
    flock_guard guard{lock.get()};
    if (!guard.locked())
      return admit_anyway(std::string{"cannot lock limits/lock: "}
                          + errno_text(errno));
    std::map<std::string, bucket_state> buckets;
    std::string text;
    auto rc = read_small_file(dir_.get(), buckets_file_name, text);
    if (rc == 0) {
      if (!parse_buckets(text, buckets)) {
        problem_ = "limits/buckets.json was not valid; reset";
        log().warn("rate-limit-state-reset limits/{} was corrupt; every "
                   "bucket starts full again",
                   buckets_file_name);
        buckets.clear();
      }
    } else if (rc != ENOENT) {
      // A link, a folder, an oversized file: not ours; replaced below.
      problem_ = std::string{"limits/buckets.json unreadable ("}
                 + errno_text(rc) + "); reset";
      log().warn("rate-limit-state-reset limits/{}: {}", buckets_file_name,
                 errno_text(rc));
    }
    auto it = buckets.find(key);
    if (it == buckets.end())
      it = buckets.emplace(key, full_bucket(p, now_ms)).first;
    auto decision = take_token(it->second, p, now_ms);
    // Full buckets say nothing a new one would not: the file stays small.
    for (auto b = buckets.begin(); b != buckets.end();) {
      if (b->first != key && bucket_is_full(b->second, p, now_ms))
        b = buckets.erase(b);
      else
        ++b;
    }
    auto content = format_buckets(buckets);
    std::string error;
    if (!detail::replace_file(
          dir_.get(), buckets_file_name, 0600, true,
          [&](int fd) {
            size_t done = 0;
            while (done < content.size()) {
              auto n = ::write(fd, content.data() + done,
                               content.size() - done);
              if (n < 0 && errno == EINTR)
                continue;
              if (n < 0)
                return false;
              done += static_cast<size_t>(n);
            }
            return true;
          },
          error, detail::sync_mode::atomic_only)) {
      problem_ = "cannot write limits/buckets.json: " + error;
      log().warn("rate-limit-state-error {}", log_text(problem_));
    }
    return decision;
  } catch (const std::exception& e) {
    return admit_anyway(std::string{"rate limit state: "} + e.what());
  }
}

std::shared_ptr<file_rate_limit_store>
open_file_rate_limit_store(int state_fd, std::string& error) {
  auto dir = open_state_subdir(state_fd, "limits", error);
  if (!dir)
    return nullptr;
  return std::make_shared<file_rate_limit_store>(std::move(dir));
}

} // namespace orch
