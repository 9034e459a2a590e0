#pragma once

// Agent configurations the actor tests share.

#include <cstdint>
#include <string>

#include "config/config.hpp"

namespace orch::test {

/// A `command` agent named `name` whose program is `name` (a fake runner
/// answers it by that name), taking `limit` steps at once.
inline agent_config command_agent(const std::string& name, int32_t limit = 1) {
  agent_config a;
  a.name = name;
  a.kind = adapter_kind::command;
  a.command = name;
  a.max_concurrency = limit;
  return a;
}

} // namespace orch::test
