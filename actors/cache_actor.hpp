#pragma once

// The step cache as an actor: memory (LRU, bounded by entries and bytes) in
// front of the disk (`<state dir>/cache/`, bounded by bytes). Spawned by the
// coordinator, reached by the agent actors' workers through agent_deps; the
// entry format and both stores are in runtime/step_cache_store.hpp.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <caf/typed_event_based_actor.hpp>

#include "actors/vocabulary.hpp"
#include "config/config.hpp"
#include "runtime/step_cache_store.hpp"

namespace orch {

/// What a cache actor needs.
struct cache_deps {
  /// Bounds and ttl (settings.cache).
  cache_settings settings;
  /// The state directory; entries are kept in `cache/` there. Empty: memory
  /// only.
  std::filesystem::path state_dir;
  /// Wall clock in ms since the epoch; null reads the system clock (tests
  /// inject their own to expire entries).
  std::function<int64_t()> clock;
};

struct cache_state {
  static inline const char* name = "orch.cache";

  cache_deps deps;
  std::unique_ptr<step_cache_memory> memory;
  /// Null when memory only or when the folder could not be opened.
  std::unique_ptr<step_cache_disk> disk;
  /// Answers so far, for tests and the log.
  uint64_t memory_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t misses = 0;

  int64_t now() const;
  /// Memory first, then disk (a disk hit is kept in memory).
  cache_lookup get(const std::string& key);
  /// Stores in memory and on disk; returns true when it is on disk.
  bool put(step_cache_entry entry);
};

/// Returns the behaviour of the step cache: `cache_get(key)` answers the
/// entry (memory, else disk) or a miss, `cache_put(entry)` stores one and
/// answers whether it reached the disk.
/// Entries older than the ttl are misses and are dropped; a corrupt file on
/// disk is a miss, logged once, counted (counter::cache_corrupt) and
/// removed.
cache_actor::behavior_type
cache_impl(cache_actor::stateful_pointer<cache_state> self, cache_deps deps);

} // namespace orch
