#include "cli/line_editor.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

// libedit's readline interface (pkg-config libedit: -I/usr/include/editline).
#include <readline.h>

#include "config/config.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/state_dir.hpp"
#include "runtime/text.hpp"

namespace orch::cli {

namespace {

constexpr const char* history_dir = "history";
constexpr const char* history_file = "shell";
/// A history file larger than this is not read (it is ours, bounded).
constexpr std::size_t history_max_bytes = 4 * 1024 * 1024;

/// Reads one pending signal number from the self-pipe; 0 when none.
int take_signal(int signal_fd) {
  unsigned char b = 0;
  auto n = ::read(signal_fd, &b, 1);
  return n == 1 ? b : 0;
}

/// Waits until stdin or the signal pipe is readable. Returns 0 for stdin,
/// the signal's number for a signal.
int wait_input(int signal_fd) {
  for (;;) {
    pollfd fds[2] = {{0, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    int nfds = signal_fd >= 0 ? 2 : 1;
    auto rc = ::poll(fds, nfds, -1);
    if (rc < 0) {
      if (errno == EINTR)
        continue;
      return 0;
    }
    if (nfds == 2 && (fds[1].revents & POLLIN)) {
      if (auto signo = take_signal(signal_fd))
        return signo;
    }
    if (fds[0].revents)
      return 0;
  }
}

line_read signal_read(int signo) {
  line_read r;
  r.kind = signo == SIGINT ? line_read::interrupted : line_read::terminated;
  return r;
}

/// Plain reads from a pipe or file: the prompt and the line are echoed to
/// stdout so that a transcript reads like a session.
class plain_editor : public line_editor {
public:
  explicit plain_editor(int signal_fd) : signal_fd_{signal_fd} {}

  line_read read(const std::string& prompt) override {
    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
    line_read r;
    for (;;) {
      // Only the bytes not looked at yet: a long line costs one pass.
      auto nl = buf_.find('\n', scanned_);
      if (nl != std::string::npos) {
        r.text = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        scanned_ = 0;
        break;
      }
      scanned_ = buf_.size();
      if (eof_) {
        if (buf_.empty()) {
          std::fputs("\n", stdout);
          r.kind = line_read::end_of_input;
          return r;
        }
        r.text = std::move(buf_);
        buf_.clear();
        scanned_ = 0;
        held_ = 0;
        break;
      }
      if (auto signo = wait_input(signal_fd_)) {
        std::fputs("\n", stdout);
        return signal_read(signo);
      }
      char chunk[4096];
      auto n = ::read(0, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      append(chunk, static_cast<std::size_t>(n));
    }
    if (!r.text.empty() && r.text.back() == '\r')
      r.text.pop_back();
    // The echo stands for what a terminal shows: bounded, and no control
    // bytes reach the terminal.
    std::printf("%s\n",
                text::escape_for_terminal(text::clip(r.text, 1000)).c_str());
    std::fflush(stdout);
    if (r.text.size() >= max_line_bytes)
      std::fprintf(stderr,
                   "warning: the line is longer than %zu bytes; only its "
                   "first %zu bytes were read\n",
                   max_line_bytes - 1, max_line_bytes);
    return r;
  }

  void remember(const std::string&) override {}

  void save_history() override {}

  bool interactive() const override {
    return false;
  }

private:
  /// Adds input to the line being read. Beyond max_line_bytes the rest of
  /// that line is dropped (up to its newline): the line keeps one byte more
  /// than any task may have, so the task check refuses it with its length,
  /// and a flood without newlines holds bounded memory.
  void append(const char* data, std::size_t n) {
    std::string_view in{data, n};
    while (!in.empty()) {
      if (skipping_) {
        auto nl = in.find('\n');
        if (nl == std::string_view::npos)
          return;
        skipping_ = false;
        buf_ += '\n';
        held_ = 0;
        in.remove_prefix(nl + 1);
        continue;
      }
      auto nl = in.find('\n');
      auto line_part = in.substr(0, nl);
      if (held_ + line_part.size() > max_line_bytes) {
        buf_.append(line_part.substr(0, max_line_bytes - held_));
        held_ = max_line_bytes;
        skipping_ = true;
        in.remove_prefix(line_part.size());
        continue;
      }
      buf_.append(line_part);
      if (nl == std::string_view::npos) {
        held_ += line_part.size();
        return;
      }
      buf_ += '\n';
      held_ = 0;
      in.remove_prefix(nl + 1);
    }
  }

  /// One byte more than the longest task (config_limits::max_task_chars).
  static constexpr std::size_t max_line_bytes = config_limits::max_task_chars
                                                + 1;

  int signal_fd_;
  std::string buf_;
  /// buf_[0, scanned_) holds no newline.
  std::size_t scanned_ = 0;
  /// Bytes of the unfinished last line in buf_.
  std::size_t held_ = 0;
  bool eof_ = false;
  /// Dropping the rest of an overlong line.
  bool skipping_ = false;
};

/// libedit through its readline interface, in callback mode so that the
/// signal pipe is watched while the user types.
class edit_editor : public line_editor {
public:
  edit_editor(int signal_fd, history_options history, completer complete)
    : signal_fd_{signal_fd}, history_{std::move(history)}, complete_{std::move(
                                                             complete)} {
    current_ = this;
    // Signals stay ours: libedit must not install handlers that re-raise
    // SIGINT to the whole process group.
    rl_catch_signals = 0;
    rl_readline_name = "ai-orchestrator";
    rl_initialize();
    rl_attempted_completion_function = &edit_editor::attempt_completion;
    lines_ = load_history(history_.state_dir);
    for (auto& l : lines_)
      add_history(l.c_str());
  }

  ~edit_editor() override {
    current_ = nullptr;
  }

  line_read read(const std::string& prompt) override {
    got_.reset();
    eof_ = false;
    rl_callback_handler_install(prompt.c_str(), &edit_editor::on_line);
    line_read r;
    for (;;) {
      if (auto signo = wait_input(signal_fd_)) {
        // Ctrl-C at the prompt: drop what was typed, show a fresh prompt.
        rl_replace_line("", 0);
        rl_callback_handler_remove();
        std::fputs("^C\n", stdout);
        std::fflush(stdout);
        return signal_read(signo);
      }
      rl_callback_read_char();
      if (got_ || eof_)
        break;
    }
    rl_callback_handler_remove();
    if (eof_) {
      std::fputs("\n", stdout);
      std::fflush(stdout);
      r.kind = line_read::end_of_input;
      return r;
    }
    r.text = std::move(*got_);
    return r;
  }

  void remember(const std::string& line) override {
    if (line.empty() || (!lines_.empty() && lines_.back() == line))
      return;
    add_history(line.c_str());
    lines_.push_back(line);
    if (lines_.size() > 2 * history_.limit)
      lines_.erase(lines_.begin(), lines_.begin()
                                     + static_cast<std::ptrdiff_t>(
                                       lines_.size() - history_.limit));
  }

  void save_history() override {
    if (history_.state_dir.empty())
      return;
    std::string error;
    if (!store_history(history_.state_dir, lines_, history_.limit, error))
      std::fprintf(stderr, "warning: the shell history was not saved: %s\n",
                   error.c_str());
  }

  bool interactive() const override {
    return true;
  }

private:
  static void on_line(char* line) {
    if (!current_)
      return;
    if (!line) {
      current_->eof_ = true;
      return;
    }
    current_->got_ = std::string{line};
    std::free(line);
  }

  static char* next_candidate(const char*, int state) {
    if (!current_)
      return nullptr;
    if (state == 0)
      current_->index_ = 0;
    auto& c = current_->candidates_;
    if (current_->index_ >= c.size())
      return nullptr;
    return ::strdup(c[current_->index_++].c_str());
  }

  static char** attempt_completion(const char* text, int start, int) {
    if (!current_ || !current_->complete_)
      return nullptr;
    std::string before{rl_line_buffer ? rl_line_buffer : ""};
    before.resize(
      std::min<std::size_t>(before.size(), static_cast<std::size_t>(start)));
    current_->candidates_ = current_->complete_(before, text);
    if (current_->candidates_.empty())
      return nullptr;
    return rl_completion_matches(text, &edit_editor::next_candidate);
  }

  static inline edit_editor* current_ = nullptr;
  int signal_fd_;
  history_options history_;
  completer complete_;
  std::vector<std::string> lines_;
  std::optional<std::string> got_;
  bool eof_ = false;
  std::vector<std::string> candidates_;
  std::size_t index_ = 0;
};

} // namespace

std::vector<std::string> load_history(const std::filesystem::path& state_dir) {
  std::vector<std::string> out;
  if (state_dir.empty())
    return out;
  std::string error;
  auto dir = open_state_dir(state_dir, error);
  if (!dir)
    return out;
  auto sub = open_state_subdir(dir.get(), history_dir, error);
  if (!sub)
    return out;
  int fd = ::openat(sub.get(), history_file,
                    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return out;
  std::string text;
  char chunk[8192];
  for (;;) {
    auto n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    text.append(chunk, static_cast<std::size_t>(n));
    if (text.size() > history_max_bytes) {
      text.clear();
      break;
    }
  }
  ::close(fd);
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos)
      nl = text.size();
    if (nl > pos)
      out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

bool store_history(const std::filesystem::path& state_dir,
                   const std::vector<std::string>& lines, std::size_t limit,
                   std::string& error) {
  auto dir = open_state_dir(state_dir, error);
  if (!dir)
    return false;
  std::string text;
  auto first = lines.size() > limit ? lines.size() - limit : 0;
  for (auto i = first; i < lines.size(); ++i) {
    // One line per entry: a pasted newline would split it on the next load.
    if (lines[i].find('\n') != std::string::npos)
      continue;
    text += lines[i];
    text += '\n';
  }
  return write_file_atomic(
    state_dir, std::string{history_dir} + "/" + history_file, text, error);
}

std::unique_ptr<line_editor> make_line_editor(int signal_fd,
                                              history_options history,
                                              line_editor::completer complete) {
  if (::isatty(0) && ::isatty(1))
    return std::make_unique<edit_editor>(signal_fd, std::move(history),
                                         std::move(complete));
  return std::make_unique<plain_editor>(signal_fd);
}

} // namespace orch::cli
