#include "runtime/audit_log.hpp"

// Placeholder until the audit log is implemented (issue 12, part 7): the
// interface is fixed so that every layer can record events already.

namespace orch {

bool audit_open(const audit_options&, std::string&) {
  return true;
}

void audit(const audit_event&) {
  // nop: not implemented yet
}

bool audit_includes_task() {
  return false;
}

void audit_sync() {
  // nop: not implemented yet
}

void audit_close() {
  // nop: not implemented yet
}

} // namespace orch
