#pragma once

// The shell's line input: libedit (emacs keys, history, tab completion) when
// stdin is a terminal, plain reads otherwise (scripts pipe commands in).
// Both wait on stdin and on the signal self-pipe (actors/signals.hpp) at
// once, so a Ctrl-C at the prompt clears the line instead of killing the
// shell. Nothing here knows CAF.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace orch::cli {

/// What one read gave.
struct line_read {
  enum kind_t { line, end_of_input, interrupted, terminated } kind = line;
  std::string text;
};

class line_editor {
public:
  /// Completion candidates for the word being typed: `line` is the whole
  /// line before the cursor.
  using completer = std::function<std::vector<std::string>(
    const std::string& line, const std::string& word)>;

  virtual ~line_editor() = default;

  /// Shows `prompt` and reads one line. A SIGINT clears the line and returns
  /// `interrupted`; SIGTERM/SIGHUP return `terminated`; EOF (Ctrl-D on an
  /// empty line, or the end of a pipe) `end_of_input`.
  virtual line_read read(const std::string& prompt) = 0;

  /// Adds a line to the history (not for answers to questions).
  virtual void remember(const std::string& line) = 0;

  /// Writes the history (the last `history_limit` lines) back.
  virtual void save_history() = 0;

  /// True for the libedit editor.
  virtual bool interactive() const = 0;
};

/// Where the history is kept: `<state_dir>/history/shell`, at most `limit`
/// lines. An empty `state_dir` keeps none.
struct history_options {
  std::filesystem::path state_dir;
  std::size_t limit = 1000;
};

/// The editor for this process: libedit when stdin and stdout are
/// terminals, plain reads otherwise. `signal_fd` is the read end of the
/// signal self-pipe (install_signal_handlers()).
std::unique_ptr<line_editor> make_line_editor(int signal_fd,
                                              history_options history,
                                              line_editor::completer complete);

/// Reads history lines from `<state_dir>/history/shell` (never through a
/// link); empty when missing or unreadable.
std::vector<std::string> load_history(const std::filesystem::path& state_dir);

/// Writes the last `limit` of `lines` atomically to
/// `<state_dir>/history/shell`. Returns false with `error` set on failure.
bool store_history(const std::filesystem::path& state_dir,
                   const std::vector<std::string>& lines, std::size_t limit,
                   std::string& error);

} // namespace orch::cli
