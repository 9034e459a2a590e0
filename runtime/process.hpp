#pragma once

// The process runner seam: what to run (process_spec), what came of it
// (process_result), and an interface with a posix_spawn implementation and a
// fake for tests (tests/support/fake_process_runner.hpp).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orch {

/// Everything needed to start one subprocess. Never goes through a shell.
struct process_spec {
  /// argv[0] is a bare name (looked up on the PATH of `env`) or a path.
  std::vector<std::string> argv;
  /// The complete environment, `NAME=value` entries. Nothing is inherited;
  /// the runner adds one entry, ORCH_RUN_MARKER=<unique per run> (replacing
  /// any given), by which it finds the run's processes that left the group.
  std::vector<std::string> env;
  /// Written to stdin, which is then closed; nullopt = stdin is /dev/null.
  std::optional<std::string> stdin_data;
  /// Working directory; empty = inherit.
  std::string cwd;
  /// Zero disables a deadline.
  std::chrono::milliseconds first_output_deadline{0};
  /// Counts from the last byte on either stream; before the first byte it
  /// counts from the start, but only when first_output_deadline is zero.
  std::chrono::milliseconds idle_deadline{0};
  std::chrono::milliseconds total_deadline{0};
  /// Bytes kept per stream (stdout, stderr); the excess is read and dropped.
  std::size_t output_cap = std::size_t{16} * 1024 * 1024;
  /// Time between SIGTERM and SIGKILL to the process group.
  std::chrono::milliseconds kill_grace{std::chrono::seconds{3}};
};

/// Which deadline ended a process, if any.
enum class deadline_kind : uint8_t { none, first_output, idle, total };

/// Returns "first_output", "idle", "total" or "none".
std::string to_string(deadline_kind x);

enum class output_stream : uint8_t { out, err };

struct process_result {
  /// False when the program could not be started at all.
  bool started = false;
  /// errno of a failed start (ENOENT: not found, EACCES: not executable).
  /// ECANCELED (with `cancelled`): stopped before start, nothing was run.
  int spawn_errno = 0;
  /// Exit status when the process exited normally, else -1.
  int exit_code = -1;
  /// The signal that ended the process, else 0.
  int term_signal = 0;
  deadline_kind expired = deadline_kind::none;
  /// True when stopped by its cancel_token (a cancel, Ctrl-C).
  bool cancelled = false;
  /// True when a stream exceeded output_cap; `dropped_bytes` were discarded.
  bool truncated = false;
  std::size_t dropped_bytes = 0;
  /// The captured streams (at most output_cap bytes each).
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};

  /// Returns true when the process exited with status 0 by itself.
  bool clean_exit() const noexcept {
    return started && exit_code == 0 && expired == deadline_kind::none
           && !cancelled;
  }
};

/// Lets another thread stop a running process: its group gets SIGTERM, then
/// SIGKILL after the grace period. Thread-safe; cancel() is idempotent.
class cancel_token {
public:
  cancel_token();
  ~cancel_token();
  cancel_token(const cancel_token&) = delete;
  cancel_token& operator=(const cancel_token&) = delete;

  void cancel() noexcept;
  bool cancelled() const noexcept;
  /// A descriptor that becomes readable once cancelled (for poll).
  int fd() const noexcept;

private:
  std::atomic<bool> cancelled_{false};
  int fds_[2] = {-1, -1};
};

/// Called for each complete line (without the newline) as it arrives; a last
/// line without newline is delivered at EOF. Lines past the cap are not.
using line_callback = std::function<void(output_stream, std::string_view)>;

/// Runs subprocesses to completion. Implementations block the calling thread
/// (run them in a detached actor), honour every deadline, and never leave a
/// process of the run behind when they return: not of the group, and not
/// one that left it (see posix_process_runner.cpp for how, and its limits).
class process_runner {
public:
  virtual ~process_runner();

  /// Runs `spec`; `on_line` and `cancel` may be empty/null.
  virtual process_result run(const process_spec& spec,
                             const line_callback& on_line,
                             const cancel_token* cancel)
    = 0;
};

/// Returns the posix_spawn implementation. A run stops early only through
/// its cancel_token: signals (Ctrl-C) are messages to the actors
/// (actors/signals.hpp), never a flag read here.
std::shared_ptr<process_runner> make_posix_process_runner();

/// Resolves a bare program name against the PATH entry of `env` (or of this
/// process when `env` has none); only absolute PATH elements are searched,
/// since an empty or relative one would resolve against the agent's working
/// directory (the workspace). A name with a slash is returned as is when it
/// is executable. Returns an empty string when not found.
std::string find_executable(const std::string& name,
                            const std::vector<std::string>& env = {});

} // namespace orch
