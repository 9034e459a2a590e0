#pragma once

// The audit events of a run, as the coordinator records them: its
// submission, and once it ended, what its steps did (agents invoked, files
// written, paths refused) and how it ended. See runtime/audit_log.hpp.

#include <string>

#include "actors/vocabulary.hpp"

namespace orch {

/// Audits an accepted run: the task's sha256, and its text only when the log
/// keeps task texts (settings.audit.include_task).
void audit_run_submitted(const std::string& run_id,
                         const std::string& workspace,
                         const std::string& workflow, const std::string& user,
                         const std::string& task);

/// Audits what a finished run did: each agent invocation (a hash of its
/// argv), each file written, each path refused, then the end itself.
void audit_run_end(const std::string& user, const run_result& res);

} // namespace orch
