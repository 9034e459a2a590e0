#include "runtime/logging.hpp"

#include "config/config.hpp"
#include "runtime/fd_util.hpp"
#include "runtime/state_dir.hpp"

#include <cerrno>
#include <memory>
#include <mutex>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace orch {

using detail::errno_text;
using detail::unique_fd;

namespace {

/// A size-rotated log file reached only through the descriptor of its
/// folder. spdlog's own rotating sink opens files by path (following links,
/// without O_CLOEXEC, so agents would inherit it); this one opens with
/// O_NOFOLLOW|O_APPEND|O_CLOEXEC and renames with renameat in the folder,
/// which never follows a link. Each message is one write(): nothing is
/// buffered, so nothing is lost at exit, and with O_APPEND the lines of
/// several processes sharing the file do not overwrite each other.
class rotating_fd_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  rotating_fd_sink(unique_fd dir, std::string name, std::size_t max_bytes,
                   std::size_t max_files)
    : dir_{std::move(dir)}, name_{std::move(name)}, max_bytes_{max_bytes},
      max_files_{max_files} {
    // nop
  }

  /// Opens the current file; false with `error` set when it cannot be.
  bool open(std::string& error) {
    std::lock_guard<std::mutex> guard{mutex_};
    return open_file(error);
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    if (size_ > 0 && size_ + buf.size() > max_bytes_) {
      std::string ignored;
      rotate(ignored);
    }
    if (!file_)
      return;
    if (detail::write_all(file_.get(), {buf.data(), buf.size()}))
      size_ += buf.size();
  }

  void flush_() override {
    // nop: every message is written at once
  }

private:
  /// Returns the name of copy `i` (0: the current file), as spdlog names
  /// them: `x.log`, `x.1.log`, `x.2.log`.
  std::string file_name(std::size_t i) const {
    if (i == 0)
      return name_;
    auto dot = name_.rfind('.');
    if (dot == std::string::npos || dot == 0)
      return name_ + "." + std::to_string(i);
    return name_.substr(0, dot) + "." + std::to_string(i) + name_.substr(dot);
  }

  bool open_file(std::string& error) {
    file_.reset();
    size_ = 0;
    // O_NONBLOCK: a FIFO planted at the name must not block the open.
    unique_fd fd{::openat(dir_.get(), name_.c_str(),
                          O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC
                            | O_NOCTTY | O_NONBLOCK,
                          0600)};
    if (!fd) {
      error = "cannot open logs/" + name_ + ": "
              + (errno == ELOOP ? std::string{"it is a symlink"}
                                : errno_text(errno));
      return false;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      error = "cannot stat logs/" + name_ + ": " + errno_text(errno);
      return false;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != ::geteuid()) {
      error = "logs/" + name_
              + " is not a regular file of ours with a single link";
      return false;
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags != -1)
      ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    size_ = static_cast<std::size_t>(st.st_size);
    file_ = std::move(fd);
    return true;
  }

  /// Shifts the copies up by one (dropping the oldest) and starts a new
  /// file. When another process sharing the file rotated it already, only
  /// reopens.
  bool rotate(std::string& error) {
    struct stat mine {};
    struct stat there {};
    bool moved
      = file_ && ::fstat(file_.get(), &mine) == 0
        && ::fstatat(dir_.get(), name_.c_str(), &there, AT_SYMLINK_NOFOLLOW)
             == 0
        && (mine.st_ino != there.st_ino || mine.st_dev != there.st_dev);
    file_.reset();
    if (!moved) {
      if (max_files_ <= 1) {
        ::unlinkat(dir_.get(), name_.c_str(), 0);
      } else {
        for (std::size_t i = max_files_ - 1; i > 0; --i)
          ::renameat(dir_.get(), file_name(i - 1).c_str(), dir_.get(),
                     file_name(i).c_str());
      }
    }
    return open_file(error);
  }

  unique_fd dir_;
  std::string name_;
  std::size_t max_bytes_;
  std::size_t max_files_;
  unique_fd file_;
  std::size_t size_ = 0;
};

std::shared_ptr<spdlog::logger> make_logger() {
  auto out = std::make_shared<spdlog::logger>(std::string{log_name});
  out->set_level(spdlog::level::off);
  // spdlog reports its own errors on stderr by default; the log must never
  // reach the terminal.
  out->set_error_handler([](const std::string&) {
    // nop
  });
  spdlog::register_logger(out);
  return out;
}

const std::shared_ptr<spdlog::logger>& the_logger() {
  static const std::shared_ptr<spdlog::logger> instance = make_logger();
  return instance;
}

} // namespace

std::string log_text(std::string_view text, std::size_t max_bytes) {
  bool cut = text.size() > max_bytes;
  if (cut) {
    std::size_t n = max_bytes;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
      --n;
    text = text.substr(0, n);
  }
  std::string out;
  out.reserve(text.size() + 3);
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    } else {
      out += c;
    }
  }
  if (cut)
    out += "...";
  return out;
}

spdlog::logger& log() {
  return *the_logger();
}

bool init_logging(int state_fd, const log_options& opts, std::string& error) {
  const auto& logger = the_logger();
  // Stray spdlog::info() calls go here too instead of to stdout.
  spdlog::set_default_logger(logger);
  logger->sinks().clear();
  logger->set_level(spdlog::level::off);
  auto level = normalize_log_level(opts.level);
  if (!level) {
    error = "unknown log level '" + opts.level + "'";
    return false;
  }
  if (*level == "off")
    return true;
  auto dir = open_state_subdir(state_fd, "logs", error);
  if (!dir)
    return false;
  auto sink = std::make_shared<rotating_fd_sink>(
    std::move(dir), std::string{log_file_name}, opts.max_bytes, opts.max_files);
  if (!sink->open(error))
    return false;
  sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l [%P] %v");
  logger->sinks().push_back(std::move(sink));
  logger->set_level(spdlog::level::from_str(*level));
  return true;
}

void shutdown_logging() {
  const auto& logger = the_logger();
  logger->flush();
  logger->set_level(spdlog::level::off);
  logger->sinks().clear();
}

} // namespace orch
