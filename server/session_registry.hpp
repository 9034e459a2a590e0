#pragma once

// The live sessions of `serve`, by name: each a session actor
// (actors/session_actor.hpp) with the server's own per-session setting,
// conversation mode. Handlers on civetweb threads look sessions up here;
// the lock is held only for the map, never while an actor is asked.

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "actors/vocabulary.hpp"

namespace orch::server {

/// One live session.
struct live_session {
  std::string name;
  session_actor actor;
  /// On: a message continues the previous task (a follow-up in the same
  /// workspace) when there is one. Off: every message is a new task.
  bool conversation = true;
  /// Wall clock ms: created, and last message or change.
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

class session_registry {
public:
  /// Adds `s` unless its name is taken; returns whether it was added.
  bool add(live_session s);

  /// Returns the session `name`, if live.
  std::optional<live_session> find(const std::string& name) const;

  /// Removes and returns the session `name`, if live.
  std::optional<live_session> remove(const std::string& name);

  /// Sets the conversation mode and/or marks it updated at `now_ms`;
  /// returns false when `name` is not live.
  bool update(const std::string& name, std::optional<bool> conversation,
              int64_t now_ms);

  /// Every live session, sorted by name.
  std::vector<live_session> all() const;

  /// Removes and returns every live session (the server's stop).
  std::vector<live_session> take_all();

  std::size_t size() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, live_session> sessions_;
};

} // namespace orch::server
