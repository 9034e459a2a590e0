#pragma once

// Signals as messages. SIGINT, SIGTERM and SIGHUP (and SIGPIPE while stdout
// or stderr is a pipe or socket whose reader is gone) are caught by a handler
// that only writes the signal's number to a self-pipe; a detached actor
// polls that pipe and hands each number to a callback that sends messages
// (cancel the runs of this process). No global flag: nothing below the
// front door learns of a signal except through a cancel message and the
// cancel_token it trips.

#include <functional>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace orch {

/// Installs the handlers, once per process (later calls only return the
/// same descriptor): SIGINT, SIGTERM and SIGHUP write their number, as one
/// byte, to a non-blocking self-pipe; SIGPIPE does the same only when
/// stdout or stderr is broken (then a write to it fails with EPIPE instead
/// of killing the process, and the run is stopped like on Ctrl-C); any other
/// SIGPIPE is left to the EPIPE of the write that raised it. Returns the
/// pipe's read end. A signal that finds the pipe full (65536 unread) is
/// dropped.
int install_signal_handlers();

/// Bridges the signal pipe to messages: a detached actor waits on the pipe
/// and calls `on_signal(signo)`, on its own thread, once per signal in
/// arrival order; `on_signal` should only send messages (it must not
/// block). Destroying the bridge (or stop()) wakes and ends that actor
/// through a second pipe, so it never holds up the actor system's shutdown
/// (its destructor waits for every actor). One bridge at a time per process:
/// they would share the signals.
class signal_bridge {
public:
  using handler = std::function<void(int signo)>;

  /// Installs the handlers (install_signal_handlers) and starts the watcher.
  signal_bridge(caf::actor_system& sys, handler on_signal);
  ~signal_bridge();
  signal_bridge(const signal_bridge&) = delete;
  signal_bridge& operator=(const signal_bridge&) = delete;

  /// Ends the watcher; signals that arrive later stay in the pipe for the
  /// next bridge. Idempotent.
  void stop() noexcept;

  /// The watcher actor (for monitoring).
  const caf::actor& watcher() const noexcept {
    return watcher_;
  }

  /// Shared with the watcher, which may outlive the bridge by a moment.
  struct wake_pipe;

private:
  std::shared_ptr<wake_pipe> wake_;
  caf::actor watcher_;
};

} // namespace orch
