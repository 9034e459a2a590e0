#pragma once

#include <caf/actor_system_config.hpp>

namespace orch {

/// The actor system configuration every binary and test uses: registers the
/// one type-ID block, the error category, the middleman, and a fixed worker
/// count (CAF defaults to at least 4 threads, too many for small machines).
class system_config : public caf::actor_system_config {
public:
  /// `deterministic` selects CAF's test coordinator (actor unit tests);
  /// `network` loads the middleman (remote agents).
  explicit system_config(bool deterministic = false, bool network = false);
};

} // namespace orch
