#pragma once

// The wall clock as our records keep it: milliseconds since the Unix epoch
// (manifests, breaker and cache times, audit lines, sessions).

#include <chrono>
#include <cstdint>

namespace orch {

/// Returns the wall clock now, in ms since the epoch.
inline int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

} // namespace orch
