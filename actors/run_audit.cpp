#include "actors/run_audit.hpp"

#include <utility>
#include <vector>

#include "runtime/audit_log.hpp"
#include "runtime/hashing.hpp"

namespace orch {

void audit_run_submitted(const std::string& run_id,
                         const std::string& workspace,
                         const std::string& workflow, const std::string& user,
                         const std::string& task) {
  audit_event ev;
  ev.kind = audit_kind::run_submitted;
  ev.run_id = run_id;
  ev.path = workspace;
  ev.detail = "workflow " + workflow;
  ev.extra["submitted_by"] = user;
  ev.extra["task_sha256"] = sha256_hex(task);
  if (audit_includes_task())
    ev.extra["task"] = task;
  audit(ev);
}

void audit_run_end(const std::string& user, const run_result& res) {
  // One write for the whole run.
  std::vector<audit_event> events;
  for (const auto& it : res.iterations)
    for (const auto& step : it.steps) {
      auto where = "iteration " + std::to_string(it.number) + " step "
                   + std::to_string(step.step_index + 1);
      // The agent that really ran: a fallback may have taken the step.
      const auto& agent = step.ran_as.empty() ? step.agent : step.ran_as;
      if (!step.argv_sha256.empty()) {
        audit_event ev;
        ev.kind = audit_kind::agent_invoked;
        ev.run_id = res.run_id;
        ev.agent = agent;
        ev.detail = where + " (" + step.task_kind + "): "
                    + (step.outcome.ok ? std::string{"ok"}
                                       : to_string(step.outcome.failure));
        ev.extra["argv_sha256"] = step.argv_sha256;
        events.push_back(std::move(ev));
      }
      for (const auto& file : step.files) {
        audit_event ev;
        ev.kind = audit_kind::file_written;
        ev.run_id = res.run_id;
        ev.agent = agent;
        ev.path = file;
        ev.detail = where;
        events.push_back(std::move(ev));
      }
      for (const auto& refused : step.refused) {
        audit_event ev;
        ev.kind = audit_kind::path_refused;
        ev.run_id = res.run_id;
        ev.agent = agent;
        ev.path = refused.path;
        ev.detail = refused.reason;
        events.push_back(std::move(ev));
      }
    }
  audit_event ev;
  ev.kind = audit_kind::run_finished;
  ev.run_id = res.run_id;
  ev.path = res.workspace;
  ev.detail = to_string(res.status);
  ev.extra["submitted_by"] = user;
  ev.extra["duration_ms"] = std::to_string(res.duration_ms);
  ev.extra["files"] = std::to_string(res.files.size());
  if (!res.message.empty())
    ev.extra["message"] = res.message;
  events.push_back(std::move(ev));
  audit(events);
}

} // namespace orch
