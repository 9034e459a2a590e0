#pragma once

// The step cache seen from an agent's worker: the key of a step, the replay
// of a hit, the entry of a step that ran, and the ask-then-run path a worker
// takes when the cache is on (actors/agent_actor.cpp hands its worker here).

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include <caf/typed_event_based_actor.hpp>

#include "actors/agent_actor.hpp"
#include "actors/vocabulary.hpp"
#include "runtime/step_cache_store.hpp"

namespace orch {

/// The interface of the worker that runs one invocation for an agent actor.
using step_worker_actor = caf::typed_actor<
  caf::replies_to<atom::run_step, step_request>::with<step_result>>;

/// How long a worker waits for the cache's answer before running the step
/// anyway.
inline constexpr std::chrono::seconds cache_lookup_timeout{10};

/// Returns true when `req` goes through the cache: the agent has one, it is
/// enabled, and the run did not ask for `--no-cache`.
bool uses_step_cache(const agent_deps& deps, const step_request& req);

/// Returns the cache key of `req` run by `agent` on the workspace as
/// `before` shows it: agent, model, adapter kind, task kind, the prompt
/// without its run-specific parts (normalize_prompt), the agent's command,
/// arguments and the values of the variables it is given, and every file's
/// content hash.
std::string step_key(const agent_config& agent, const step_request& req,
                     const file_snapshot& before);

/// Replays a hit (blocking): the stored outcome (usage 0: nothing was
/// spent) and findings, the stored files written again through
/// workspace::write (backups included; a refusal is reported as for an
/// agent's write) and the stored deletions done again. No process runs.
step_result replay_step(const step_cache_entry& entry, const step_request& req);

/// Returns the entry to store for a step that ran (blocking: reads the
/// files it produced), or nothing when it is not to be stored: it failed,
/// was a replay, or its files cannot be read or add up to more than
/// `max_bytes`.
std::optional<step_cache_entry>
make_cache_entry(const std::string& key, const step_request& req,
                 const step_result& res, std::size_t max_bytes);

/// The worker's path when uses_step_cache: takes the before-snapshot and the
/// key, asks the cache; a hit is replayed (no process), a miss (or no answer
/// within cache_lookup_timeout) runs execute_step on that snapshot, and a
/// successful result is sent to the cache. Delivers through the returned
/// promise and quits `self` once it has answered.
caf::result<step_result>
run_cached_step(step_worker_actor::pointer self, const agent_config& agent,
                std::shared_ptr<const adapter> adapt, const agent_deps& deps,
                const step_request& req, std::shared_ptr<cancel_token> cancel);

} // namespace orch
