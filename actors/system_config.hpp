#pragma once

#include <cstddef>

#include <caf/actor_system_config.hpp>

namespace orch {

/// The actor system configuration every binary and test uses: registers the
/// one type-ID block, the error category, the middleman, and a fixed worker
/// count (CAF defaults to at least 4 threads, too many for small machines).
class system_config : public caf::actor_system_config {
public:
  /// `deterministic` selects CAF's test coordinator (actor unit tests);
  /// `network` loads the middleman (remote agents); `threads` is the number
  /// of scheduler threads (0: the default, 2). Blocking work never runs on
  /// them (it goes to detached actors), so few suffice.
  explicit system_config(bool deterministic = false, bool network = false,
                         std::size_t threads = 0);

  /// The scheduler threads when none are asked for.
  static constexpr std::size_t default_threads = 2;
};

} // namespace orch
