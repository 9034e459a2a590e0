#pragma once

// The long-lived agent guards of the posix process runner: one per agent
// call running at once, reused call after call (runtime/agent_guard.cpp,
// serving mode). Tests use these to tell them from stray children.

#include <chrono>
#include <vector>

namespace orch {

/// Closes the idle agent guards and waits up to `limit` until every guard
/// let go has exited and is reaped; the next agent call starts a new one.
void stop_agent_guards(std::chrono::milliseconds limit);

/// The pids of the idle agent guards of this process (children of it).
std::vector<int> idle_agent_guards();

} // namespace orch
