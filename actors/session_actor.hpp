#pragma once

// The session actor: one conversation (one per shell; the server will hold
// one per client). It keeps the history, the current workflow and agent
// override, the context of the previous task and the session's own
// workspace `<settings.workspace_dir>/session-<id>`, and submits each user
// message to the run coordinator as a new task or a follow-up (see
// runtime/followup.hpp). The interface is `session_actor` in
// actors/vocabulary.hpp.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/vocabulary.hpp"
#include "config/config.hpp"

namespace orch {

/// What a session needs besides the config and the coordinator.
struct session_deps {
  /// The state directory; sessions are saved in its `sessions/` folder.
  /// Empty: save and load fail with session_store_failed.
  std::filesystem::path state_dir;
  /// The session's id; empty: a new one (see make_session_id).
  std::string session_id;
  /// Wall clock, ms since the epoch; null: the system clock.
  std::function<int64_t()> wall_clock;
  /// At most this many characters of the previous output are kept in the
  /// context summary (and so in a follow-up's task).
  std::size_t summary_chars = 2000;
  /// Who submits the runs (run_spec::user); empty: the coordinator's user.
  std::string user;
};

/// Returns a new session id: 16 lowercase hex digits, random.
std::string make_session_id();

/// Returns `ms` (since the epoch) as UTC ISO 8601, "2024-01-15T10:00:00Z".
std::string iso_utc(int64_t ms);

/// The bounded summary of a finished run kept as a session's context: its
/// status and message, then the last step's final text, cut to `max_chars`
/// (on a UTF-8 boundary, "..." marking the cut).
std::string summarize_result(const run_result& res, std::size_t max_chars);

/// The task text a follow-up submits: the new request, then the previous
/// task's words, its bounded summary and the generated files. Never nests
/// earlier follow-ups' prompts.
std::string followup_task(const session_context& ctx,
                          const std::string& message);

struct session_state {
  static inline const char* name = "orch.session";

  std::shared_ptr<const config> cfg;
  coordinator_actor coordinator;
  session_deps deps;
  session_info info;
  std::vector<session_entry> history;
  session_context context;
  /// The running task: its user words and whether it was a follow-up.
  std::string running_words;
  bool running_followup = false;
  /// A cancel arrived while the run was being submitted: cancelled as soon
  /// as the coordinator names it.
  bool cancel_pending = false;
  /// Answered when the run ends, by run id.
  std::map<std::string, std::vector<caf::typed_response_promise<run_result>>>
    waiters;
  /// Results of finished runs kept for a late `result` (the last few).
  std::map<std::string, run_result> finished;
};

session_actor::behavior_type
session_impl(session_actor::stateful_pointer<session_state> self,
             std::shared_ptr<const config> cfg, coordinator_actor coordinator,
             session_deps deps);

/// Spawns a session bound to `coordinator`.
session_actor spawn_session(caf::actor_system& sys,
                            std::shared_ptr<const config> cfg,
                            coordinator_actor coordinator, session_deps deps);

} // namespace orch
