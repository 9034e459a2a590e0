#include "actors/cache_actor.hpp"

#include <chrono>
#include <utility>

#include <caf/stateful_actor.hpp>

#include "runtime/clock.hpp"
#include "runtime/logging.hpp"

namespace orch {

int64_t cache_state::now() const {
  if (deps.clock)
    return deps.clock();
  return wall_clock_ms();
}

cache_lookup cache_state::get(const std::string& key) {
  cache_lookup out;
  auto now_ms = now();
  auto ttl = deps.settings.ttl.count();
  if (const auto* e = memory->get(key)) {
    if (now_ms - e->created_ms <= ttl) {
      ++memory_hits;
      out.hit = true;
      out.entry = *e;
      return out;
    }
    memory->erase(key);
    if (disk)
      disk->erase(key);
  }
  if (disk) {
    auto found = disk->get(key, now_ms, ttl);
    if (found.entry) {
      ++disk_hits;
      memory->put(*found.entry);
      out.hit = true;
      out.entry = std::move(*found.entry);
      return out;
    }
  }
  ++misses;
  return out;
}

bool cache_state::put(step_cache_entry entry) {
  if (!valid_step_cache_key(entry.key))
    return false;
  bool stored = false;
  if (disk) {
    std::string err;
    stored = disk->put(entry, now(), deps.settings.ttl.count(), err);
    if (!stored)
      log().warn("cache-write-failed key={} reason={}", entry.key,
                 log_text(err));
  }
  memory->put(std::move(entry));
  return stored;
}

cache_actor::behavior_type
cache_impl(cache_actor::stateful_pointer<cache_state> self, cache_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.memory = std::make_unique<step_cache_memory>(
    st.deps.settings.max_entries, st.deps.settings.max_memory_bytes);
  if (!st.deps.state_dir.empty()) {
    st.disk = std::make_unique<step_cache_disk>(
      st.deps.state_dir, st.deps.settings.max_disk_bytes);
    if (!st.disk->ok()) {
      log().warn("cache-disk-off reason={} (entries are kept in memory only)",
                 log_text(st.disk->error()));
      st.disk.reset();
    }
  }
  return {
    [=](atom::cache_get, const std::string& key) {
      return self->state.get(key);
    },
    [=](atom::cache_put, step_cache_entry& entry) {
      return self->state.put(std::move(entry));
    },
  };
}

} // namespace orch
