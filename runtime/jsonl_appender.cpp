#include "runtime/jsonl_appender.hpp"

#include <cerrno>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runtime/jsonl_reader.hpp"

namespace orch {

namespace {

/// Result lines hold excerpts of long outputs, never whole files: a longer
/// line is not one of ours.
constexpr std::size_t max_result_line = std::size_t{256} << 20;

/// Reads every line of `fd` from the start into `scan`; cuts a torn last
/// line off. Returns false and sets `error` on a read or truncate error.
bool scan_existing(int fd, resume_scan& scan, uint64_t& size,
                   std::string& error) {
  if (::lseek(fd, 0, SEEK_SET) < 0) {
    error = "cannot seek: " + detail::errno_text(errno);
    return false;
  }
  jsonl_reader reader{fd, max_result_line};
  jsonl_line line;
  uint64_t end = 0;
  while (reader.next(line)) {
    if (line.unterminated) {
      // A write cut short by a crash (ours are whole lines): not a result.
      if (::ftruncate(fd, static_cast<off_t>(line.offset)) != 0) {
        error = "cannot cut off the torn last line: "
                + detail::errno_text(errno);
        return false;
      }
      scan.truncated_bytes = line.size;
      break;
    }
    end = line.offset + line.size + 1;
    if (line.text.empty() && !line.too_long)
      continue;
    ++scan.lines;
    auto j = nlohmann::json::parse(line.text, nullptr, false);
    if (line.too_long || j.is_discarded() || !j.is_object() || !j.contains("id")
        || !j["id"].is_string()) {
      scan.unreadable.push_back(line.number);
      continue;
    }
    scan.ids.insert(j["id"].get<std::string>());
  }
  if (!reader.error().empty()) {
    error = "cannot read: " + reader.error();
    return false;
  }
  size = end;
  return true;
}

} // namespace

jsonl_appender::jsonl_appender(detail::unique_fd fd, uint64_t size,
                               sync_policy policy)
  : fd_{std::move(fd)}, size_{size}, policy_{policy},
    last_sync_{std::chrono::steady_clock::now()} {
  // nop
}

std::unique_ptr<jsonl_appender>
jsonl_appender::open(const std::string& path, bool resume, sync_policy policy,
                     resume_scan& scan, std::string& error) {
  // O_RDWR for the resume scan; O_NONBLOCK only keeps a FIFO from hanging
  // the open (it is refused below).
  detail::unique_fd fd{::open(
    path.c_str(),
    O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644)};
  if (!fd) {
    int err = errno;
    error = "cannot open " + path + ": "
            + (err == ELOOP ? std::string{"it is a symlink"}
                            : detail::errno_text(err));
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    error = "cannot stat " + path + ": " + detail::errno_text(errno);
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    error = path + " is not a regular file";
    return nullptr;
  }
  ::fcntl(fd.get(), F_SETFL, O_APPEND);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > 0 && !resume) {
    error = path + " already holds " + std::to_string(size)
            + " bytes: pass --resume to continue it, or choose another file";
    return nullptr;
  }
  if (resume && size > 0 && !scan_existing(fd.get(), scan, size, error)) {
    error = path + ": " + error;
    return nullptr;
  }
  return std::unique_ptr<jsonl_appender>{
    new jsonl_appender{std::move(fd), size, policy}};
}

bool jsonl_appender::append(std::string_view line, std::string& error) {
  std::string data;
  data.reserve(line.size() + 1);
  data.append(line);
  data.push_back('\n');
  if (!detail::write_all(fd_.get(), data)) {
    error = "cannot write: " + detail::errno_text(errno);
    // A part may be in the file: cut it off so no torn line stays.
    if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0)
      error += "; cutting the partial line off failed too: "
               + detail::errno_text(errno);
    return false;
  }
  size_ += data.size();
  ++appended_;
  ++unsynced_;
  return true;
}

bool jsonl_appender::sync_due() const noexcept {
  if (unsynced_ == 0)
    return false;
  if (policy_.every_lines > 0 && unsynced_ >= policy_.every_lines)
    return true;
  return std::chrono::steady_clock::now() - last_sync_ >= policy_.interval;
}

bool jsonl_appender::sync(std::string& error) {
  if (unsynced_ == 0)
    return true;
  if (::fdatasync(fd_.get()) != 0) {
    error = "cannot sync: " + detail::errno_text(errno);
    return false;
  }
  unsynced_ = 0;
  last_sync_ = std::chrono::steady_clock::now();
  return true;
}

} // namespace orch
